/*
** shape.c -- views and copies, front door to backward: view, reshape,
** flatten, squeeze, unsqueeze, expand/broadcast_to, transpose, permute,
** narrow, slice, select (views: new geometry over the same storage), clone,
** to_dtype/cast and contiguous (copies), and the recording of
** ember_to_device (device.c).
**
** Views only compute new geometry (shape, strides, offset); the copies go
** through the backend's copy slot.  Every public function computes its
** plain form, then, when its input requires grad, records one node whose
** backward (view_backward) undoes the view: a reshape's is a reshape back,
** a transpose's the same transpose, a narrow's a zero tensor with g
** copied into the slice.  What a node needs is a struct view_saved.
*/
#include <string.h>

#include "ops.h"

/* {======================================================================
** Shapes and strides
** ======================================================================= */

/* Resolve one -1 in a requested shape against numel. */
static int infer_shape(const char *fn, const ember_tensor *t, int ndim,
                       const int64_t *in, int64_t *out) {
  if (ndim < 0 || ndim > EMBER_MAX_DIMS)
    return ember_set_error("%s: at most %d dimensions are supported, got %d",
                           fn, EMBER_MAX_DIMS, ndim);
  int64_t known = 1, numel = ember_numel(t);
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    if (in[i] == -1) {
      if (infer >= 0) return ember_set_error("%s: only one dimension can be -1", fn);
      infer = i;
    } else if (in[i] < 0) {
      return ember_set_error("%s: invalid size %lld", fn, (long long)in[i]);
    } else {
      if (in[i] > 0 && known > INT64_MAX / in[i])
        return ember_set_error("%s: shape is too large", fn);
      known *= in[i];
    }
    out[i] = in[i];
  }
  char b1[128], b2[128];
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      return ember_set_error("%s: shape %s is invalid for input of size %lld",
                             fn, ember_shape_str(b1, sizeof b1, ndim, in),
                             (long long)numel);
    out[infer] = numel / known;
  } else if (known != numel) {
    return ember_set_error("%s: shape %s is invalid for input of size %lld "
                           "(shape %s)", fn,
                           ember_shape_str(b1, sizeof b1, ndim, in),
                           (long long)numel,
                           ember_shape_str(b2, sizeof b2, t->ndim, t->shape));
  }
  /* an empty input takes any sizes beside a zero, and their strides
     (products of trailing sizes, a zero counted as one) must still fit */
  return ember_check_shape(fn, ndim, out);
}

/*
** Strides for viewing t with a new shape without copying, or -1 when the
** memory layout does not allow it (PyTorch's computeStride): walk the old
** dims in chunks that are contiguous among themselves and map each chunk to
** the new dims whose sizes multiply to it.
*/
static int view_strides(const ember_tensor *t, int ndim, const int64_t *shape,
                        int64_t *strides) {
  int64_t numel = ember_numel(t);
  if (numel == 0 || t->ndim == 0) {
    ember_contiguous_strides(ndim, shape, strides);
    return 0;
  }
  int view_d = ndim - 1;
  int64_t chunk = 1, tensor_numel = 1;
  int64_t chunk_base = t->strides[t->ndim - 1];
  for (int d = t->ndim - 1; d >= 0; d--) {
    tensor_numel *= t->shape[d];
    if (d == 0 || (t->shape[d - 1] != 1 &&
                   t->strides[d - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (chunk < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = chunk * chunk_base;
        chunk *= shape[view_d];
        view_d--;
      }
      if (chunk != tensor_numel) return -1;
      if (d > 0) {
        chunk_base = t->strides[d - 1];
        tensor_numel = 1;
        chunk = 1;
      }
    }
  }
  return view_d == -1 ? 0 : -1;
}

/* }====================================================================== */

/* {======================================================================
** Copies without recording
** ======================================================================= */

static ember_tensor *clone_plain(const ember_tensor *t) {
  ember_tensor *c = ember_empty_on(t->storage->device, t->ndim, t->shape,
                                   t->dtype);
  if (c && ember_backend_of(c)->copy(c, t) < 0) {
    ember_tensor_release(c);
    return NULL;
  }
  return c;
}

static ember_tensor *to_dtype_plain(const ember_tensor *t, ember_dtype dt) {
  if ((unsigned)dt >= EMBER_NDTYPES) { ember_set_error("to: bad dtype"); return NULL; }
  ember_tensor *c = ember_empty_on(t->storage->device, t->ndim, t->shape, dt);
  if (c && ember_backend_of(c)->copy(c, t) < 0) {
    ember_tensor_release(c);
    return NULL;
  }
  return c;
}

/* }====================================================================== */

/* {======================================================================
** Views without recording
** ======================================================================= */

static ember_tensor *view_plain(const ember_tensor *t, int ndim,
                         const int64_t *shape) {
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  if (infer_shape("view", t, ndim, shape, sh) < 0) return NULL;
  if (view_strides(t, ndim, sh, st) < 0) {
    char b1[128], b2[128];
    ember_set_error("view: shape %s is not compatible with the strides of "
                    "the input (shape %s, not contiguous); use reshape",
                    ember_shape_str(b1, sizeof b1, ndim, sh),
                    ember_shape_str(b2, sizeof b2, t->ndim, t->shape));
    return NULL;
  }
  return ember_tensor_alias(t, ndim, sh, st, t->offset);
}

static ember_tensor *reshape_plain(const ember_tensor *t, int ndim,
                            const int64_t *shape) {
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  if (infer_shape("reshape", t, ndim, shape, sh) < 0) return NULL;
  if (view_strides(t, ndim, sh, st) == 0)
    return ember_tensor_alias(t, ndim, sh, st, t->offset);
  ember_tensor *c = clone_plain(t);
  if (!c) return NULL;
  ember_contiguous_strides(ndim, sh, st);
  ember_tensor *r = ember_tensor_alias(c, ndim, sh, st, 0);
  ember_tensor_release(c);
  return r;
}

static ember_tensor *transpose_plain(const ember_tensor *t, int d0, int d1) {
  if (t->ndim == 0 && (d0 == 0 || d0 == -1) && (d1 == 0 || d1 == -1))
    return ember_tensor_alias(t, 0, NULL, NULL, t->offset);
  if ((d0 = ember_wrap_dim("transpose", d0, t->ndim)) < 0) return NULL;
  if ((d1 = ember_wrap_dim("transpose", d1, t->ndim)) < 0) return NULL;
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  memcpy(sh, t->shape, sizeof sh);
  memcpy(st, t->strides, sizeof st);
  sh[d0] = t->shape[d1]; sh[d1] = t->shape[d0];
  st[d0] = t->strides[d1]; st[d1] = t->strides[d0];
  return ember_tensor_alias(t, t->ndim, sh, st, t->offset);
}

static ember_tensor *permute_plain(const ember_tensor *t, int ndim, const int *perm) {
  if (ndim != t->ndim) {
    ember_set_error("permute: expected %d dimensions for a %d-d tensor, got %d",
                    t->ndim, t->ndim, ndim);
    return NULL;
  }
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  int seen[EMBER_MAX_DIMS] = {0};
  for (int i = 0; i < ndim; i++) {
    int d = ember_wrap_dim("permute", perm[i], ndim);
    if (d < 0) return NULL;
    if (seen[d]) {
      ember_set_error("permute: dimension %d appears twice", d + 1);
      return NULL;
    }
    seen[d] = 1;
    sh[i] = t->shape[d];
    st[i] = t->strides[d];
  }
  return ember_tensor_alias(t, ndim, sh, st, t->offset);
}

/* start + length for an error message, saturated: a range that is out of
   bounds may be so because its end overflows int64 (narrow(2, 2,
   math.maxinteger)). */
static long long sat_add(int64_t start, int64_t length) {
  if (length > 0 && start > INT64_MAX - length) return INT64_MAX;
  if (length < 0 && start < INT64_MIN - length) return INT64_MIN;
  return (long long)(start + length);
}

static ember_tensor *narrow_plain(const ember_tensor *t, int dim, int64_t start,
                           int64_t length) {
  if (t->ndim == 0) { ember_set_error("narrow: cannot narrow a 0-d tensor"); return NULL; }
  if ((dim = ember_wrap_dim("narrow", dim, t->ndim)) < 0) return NULL;
  if (start < 0 || length < 0 || start > t->shape[dim] ||
      length > t->shape[dim] - start) {
    ember_set_error("narrow: range %lld..%lld is out of bounds for dimension "
                    "%d of size %lld", sat_add(start, 1),
                    sat_add(start, length), dim + 1,
                    (long long)t->shape[dim]);
    return NULL;
  }
  int64_t sh[EMBER_MAX_DIMS];
  memcpy(sh, t->shape, sizeof sh);
  sh[dim] = length;
  return ember_tensor_alias(t, t->ndim, sh, t->strides,
                            t->offset + start * t->strides[dim]);
}

/* slice(t, dim, start, stop, step): positions start, start + step, ...
   below stop (0-based, PyTorch's t[start:stop:step]); a view whose stride
   along dim is step times t's.  Slicing's ranges and steps come here. */
static ember_tensor *slice_plain(const ember_tensor *t, int dim, int64_t start,
                                 int64_t stop, int64_t step) {
  if (t->ndim == 0) { ember_set_error("slice: cannot slice a 0-d tensor"); return NULL; }
  if ((dim = ember_wrap_dim("slice", dim, t->ndim)) < 0) return NULL;
  if (step <= 0) {
    ember_set_error("slice: step must be positive, got %lld", (long long)step);
    return NULL;
  }
  if (start < 0 || stop < start || stop > t->shape[dim]) {
    ember_set_error("slice: range %lld..%lld is out of bounds for dimension "
                    "%d of size %lld", (long long)start + 1, (long long)stop,
                    dim + 1, (long long)t->shape[dim]);
    return NULL;
  }
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  memcpy(sh, t->shape, sizeof sh);
  memcpy(st, t->strides, sizeof st);
  sh[dim] = stop == start ? 0 : (stop - start - 1) / step + 1;
  st[dim] = t->strides[dim] * step;
  return ember_tensor_alias(t, t->ndim, sh, st,
                            t->offset + start * t->strides[dim]);
}

static ember_tensor *select_plain(const ember_tensor *t, int dim, int64_t index) {
  if (t->ndim == 0) { ember_set_error("select: cannot index a 0-d tensor"); return NULL; }
  if ((dim = ember_wrap_dim("select", dim, t->ndim)) < 0) return NULL;
  if (index < 0 || index >= t->shape[dim]) {
    ember_set_error("select: index %lld is out of range for dimension %d of "
                    "size %lld", (long long)index + 1, dim + 1,
                    (long long)t->shape[dim]);
    return NULL;
  }
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != dim) { sh[k] = t->shape[i]; st[k] = t->strides[i]; k++; }
  return ember_tensor_alias(t, k, sh, st, t->offset + index * t->strides[dim]);
}

/* diagonal(t, offset, d1, d2): the diagonal of dims d1, d2 as the last dim,
   a view with stride s1 + s2 (PyTorch's).  offset > 0 is above the main
   diagonal (columns of d2 shifted), < 0 below; an offset past the edge gives
   an empty diagonal, as PyTorch. */
static ember_tensor *diagonal_plain(const ember_tensor *t, int64_t offset,
                                    int d1, int d2) {
  if (t->ndim < 2) {
    ember_set_error("diagonal: expected a tensor with at least 2 dimensions, "
                    "got a %d-d tensor", t->ndim);
    return NULL;
  }
  if ((d1 = ember_wrap_dim("diagonal", d1, t->ndim)) < 0) return NULL;
  if ((d2 = ember_wrap_dim("diagonal", d2, t->ndim)) < 0) return NULL;
  if (d1 == d2) {
    ember_set_error("diagonal: dimensions d1 and d2 must differ, both are %d",
                    d1 + 1);
    return NULL;
  }
  int64_t n1 = t->shape[d1], n2 = t->shape[d2], len, off = t->offset;
  if (offset >= 0) {
    len = offset >= n2 ? 0 : (n1 < n2 - offset ? n1 : n2 - offset);
    if (len > 0) off += offset * t->strides[d2];
  } else {
    /* offset <= -n1, not -offset >= n1: -INT64_MIN overflows */
    len = offset <= -n1 ? 0 : (n2 < n1 + offset ? n2 : n1 + offset);
    if (len > 0) off += -offset * t->strides[d1];
  }
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != d1 && i != d2) { sh[k] = t->shape[i]; st[k] = t->strides[i]; k++; }
  sh[k] = len;
  st[k] = t->strides[d1] + t->strides[d2];
  return ember_tensor_alias(t, k + 1, sh, st, off);
}

static ember_tensor *squeeze_plain(const ember_tensor *t, int dim) {
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  int k = 0;
  if (dim != EMBER_ALL_DIMS && t->ndim > 0) {
    if ((dim = ember_wrap_dim("squeeze", dim, t->ndim)) < 0) return NULL;
  }
  for (int i = 0; i < t->ndim; i++) {
    int drop = t->shape[i] == 1 && (dim == EMBER_ALL_DIMS || dim == i);
    if (!drop) { sh[k] = t->shape[i]; st[k] = t->strides[i]; k++; }
  }
  return ember_tensor_alias(t, k, sh, st, t->offset);
}

static ember_tensor *unsqueeze_plain(const ember_tensor *t, int dim) {
  if (t->ndim >= EMBER_MAX_DIMS) {
    ember_set_error("unsqueeze: a tensor has at most %d dimensions", EMBER_MAX_DIMS);
    return NULL;
  }
  if (dim < -(t->ndim + 1) || dim > t->ndim) {
    ember_set_error("unsqueeze: dimension %d out of range for a %d-d tensor "
                    "(expected 1..%d)", dim >= 0 ? dim + 1 : dim, t->ndim,
                    t->ndim + 1);
    return NULL;
  }
  if (dim < 0) dim += t->ndim + 1;
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  int k = 0;
  for (int i = 0; i <= t->ndim; i++) {
    if (i == dim) {
      sh[i] = 1;
      st[i] = i < t->ndim ? t->shape[k] * t->strides[k] : 1;
    } else {
      sh[i] = t->shape[k]; st[i] = t->strides[k]; k++;
    }
  }
  return ember_tensor_alias(t, t->ndim + 1, sh, st, t->offset);
}

static ember_tensor *expand_plain(const ember_tensor *t, int ndim,
                           const int64_t *shape) {
  char b1[128], b2[128];
  if (ndim < t->ndim || ndim > EMBER_MAX_DIMS) {
    ember_set_error("expand: cannot expand shape %s to %s",
                    ember_shape_str(b1, sizeof b1, t->ndim, t->shape),
                    ember_shape_str(b2, sizeof b2, ndim, shape));
    return NULL;
  }
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS];
  int lead = ndim - t->ndim;
  for (int i = 0; i < ndim; i++) {
    int64_t want = shape[i];
    if (i < lead) {
      if (want < 0) {
        ember_set_error("expand: -1 is not allowed for a new leading dimension");
        return NULL;
      }
      sh[i] = want; st[i] = 0;
      continue;
    }
    int64_t have = t->shape[i - lead];
    if (want == -1 || want == have) {
      sh[i] = have; st[i] = t->strides[i - lead];
    } else if (have == 1 && want >= 0) {
      sh[i] = want; st[i] = 0;
    } else {
      ember_set_error("expand: cannot expand shape %s to %s (dimension %d: "
                      "%lld vs %lld)",
                      ember_shape_str(b1, sizeof b1, t->ndim, t->shape),
                      ember_shape_str(b2, sizeof b2, ndim, shape), i + 1,
                      (long long)have, (long long)want);
      return NULL;
    }
  }
  if (ember_check_shape("expand", ndim, sh) < 0) return NULL;
  return ember_tensor_alias(t, ndim, sh, st, t->offset);
}

static ember_tensor *flatten_plain(const ember_tensor *t, int start, int end) {
  if (t->ndim == 0) return reshape_plain(t, 1, (int64_t[]){1});
  if ((start = ember_wrap_dim("flatten", start, t->ndim)) < 0) return NULL;
  if ((end = ember_wrap_dim("flatten", end, t->ndim)) < 0) return NULL;
  if (start > end) {
    ember_set_error("flatten: start dimension %d comes after end dimension %d",
                    start + 1, end + 1);
    return NULL;
  }
  int64_t sh[EMBER_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (i <= start || i > end) sh[k++] = t->shape[i];
    else sh[k - 1] *= t->shape[i];
  }
  return reshape_plain(t, k, sh);
}

/* }====================================================================== */

/* {======================================================================
** Broadcasting
** ======================================================================= */

ember_tensor *ember_broadcast_to(const ember_tensor *t, int ndim,
                                 const int64_t *shape) {
  return expand_plain(t, ndim, shape);
}

int ember_broadcast_shapes(const char *fn, int na, const int64_t *sa, int nb,
                           const int64_t *sb, int *nout, int64_t *sout) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = i - (n - na), ib = i - (n - nb);
    int64_t x = ia >= 0 ? sa[ia] : 1, y = ib >= 0 ? sb[ib] : 1;
    if (x != y && x != 1 && y != 1) {
      char b1[128], b2[128];
      return ember_set_error("%s: shapes %s and %s cannot be broadcast "
                             "(dimension %d: %lld vs %lld)", fn,
                             ember_shape_str(b1, sizeof b1, na, sa),
                             ember_shape_str(b2, sizeof b2, nb, sb), i + 1,
                             (long long)x, (long long)y);
    }
    sout[i] = x == 1 ? y : x;
  }
  *nout = n;
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** The autograd node of views and copies
** ======================================================================= */

enum view_kind {
  VIEW_RESHAPE,      /* view, reshape, flatten, squeeze, unsqueeze */
  VIEW_EXPAND,
  VIEW_TRANSPOSE,
  VIEW_PERMUTE,
  VIEW_NARROW,
  VIEW_SLICE,        /* dim, start, step */
  VIEW_SELECT,
  VIEW_DIAGONAL,     /* dim, dim1: the pair; start: the offset */
  VIEW_CLONE,
  VIEW_CONVERT,      /* to_dtype */
  VIEW_TO_DEVICE
};

/* What view_backward needs: which op, and its arguments as given (dim,
   dim1: transpose's pair; dim, start: narrow's range or select's index;
   step: slice's; perm: permute's order, wrapped; device: where
   to_device's input was). */
struct view_saved {
  int kind, dim, dim1, device;
  int64_t start, step;
  int perm[EMBER_MAX_DIMS];
};

/* The part of acc (shaped as the view's input) that the view took, for a
   gradient g shaped as its output; a new view of acc. */
static ember_tensor *part_view(const struct view_saved *s, ember_tensor *acc,
                               const ember_tensor *g) {
  switch ((enum view_kind)s->kind) {
    case VIEW_NARROW:
      return ember_narrow(acc, s->dim, s->start, g->ndim ? g->shape[s->dim] : 1);
    case VIEW_SLICE:
      return ember_slice(acc, s->dim, s->start,
                         s->start + (g->shape[s->dim]
                                         ? (g->shape[s->dim] - 1) * s->step + 1
                                         : 0),
                         s->step);
    case VIEW_DIAGONAL:
      return ember_diagonal(acc, s->start, s->dim, s->dim1);
    default:
      return ember_select(acc, s->dim, s->start);
  }
}

/* acc's part += g (ember_add_part_fn): the engine calls it with the
   gradient of the view's input so far, instead of view_backward. */
static int add_part(ember_node *n, const ember_tensor *g, ember_tensor *acc) {
  const struct view_saved *s = EMBER_NODE_STATE(n, struct view_saved);
  ember_tensor *part = part_view(s, acc, g);
  int rc = part ? ember_binary_(EMBER_ADD, part, g) : -1;
  ember_tensor_release(part);
  return rc;
}

static int view_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct view_saved *s = EMBER_NODE_STATE(n, struct view_saved);
  const ember_in_meta *m = &n->in[0];
  ember_tensor *r = NULL;
  switch ((enum view_kind)s->kind) {
    case VIEW_RESHAPE:
      r = ember_reshape(g, m->ndim, m->shape);
      break;
    case VIEW_EXPAND:        /* the engine sums broadcast dims away */
    case VIEW_CLONE:
    case VIEW_CONVERT:       /* ... and casts to the input's dtype */
      ember_tensor_retain(g);
      r = g;
      break;
    case VIEW_TO_DEVICE:
      r = ember_to_device(g, (ember_device)s->device);
      break;
    case VIEW_TRANSPOSE:
      r = ember_transpose(g, s->dim, s->dim1);
      break;
    case VIEW_PERMUTE: {
      int inv[EMBER_MAX_DIMS];
      for (int i = 0; i < m->ndim; i++) inv[s->perm[i]] = i;
      r = ember_permute(g, m->ndim, inv);
      break;
    }
    case VIEW_NARROW:
    case VIEW_SLICE:
    case VIEW_DIAGONAL:
    case VIEW_SELECT: {      /* zeros, with g in the part that was taken */
      ember_tensor *z = ember_zeros_meta(g, m);
      ember_tensor *part = z ? part_view(s, z, g) : NULL;
      if (part && ember_copy_(part, g) == 0) r = z;
      else ember_tensor_release(z);
      ember_tensor_release(part);
      break;
    }
  }
  if (!r) return -1;
  gin[0] = r;
  return 0;
}

/* Record out (already computed from t) as a view or copy of t; consumes
   out.  An integer result (no gradient) and an op that returned t itself
   are left as they are. */
static ember_tensor *record_view(const char *name, const ember_tensor *t,
                                 ember_tensor *out,
                                 const struct view_saved *saved) {
  if (!out || out == t || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *n = ember_ag_node2(name, view_backward, t, NULL);
  if (n) *EMBER_NODE_STATE(n, struct view_saved) = *saved;
  if (n && (saved->kind == VIEW_NARROW || saved->kind == VIEW_SLICE ||
            saved->kind == VIEW_DIAGONAL || saved->kind == VIEW_SELECT))
    n->add_part = add_part;
  int is_view = saved->kind != VIEW_CLONE && saved->kind != VIEW_CONVERT &&
                saved->kind != VIEW_TO_DEVICE && out->storage == t->storage;
  return ember_ag_finish(n, out, is_view);
}

ember_tensor *ember_ag_record_to_device(const ember_tensor *t,
                                        ember_tensor *out) {
  struct view_saved s = {.kind = VIEW_TO_DEVICE,
                         .device = (int)t->storage->device};
  return record_view("ToCopyBackward", t, out, &s);
}

/* }====================================================================== */

/* {======================================================================
** The public views and copies: the plain form, then the record
** ======================================================================= */

ember_tensor *ember_view(const ember_tensor *t, int ndim, const int64_t *shape) {
  ember_tensor *r = view_plain(t, ndim, shape);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("ViewBackward", t, r,
                     &(struct view_saved){.kind = VIEW_RESHAPE});
}

ember_tensor *ember_reshape(const ember_tensor *t, int ndim, const int64_t *shape) {
  ember_tensor *r = reshape_plain(t, ndim, shape);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("ReshapeBackward", t, r,
                     &(struct view_saved){.kind = VIEW_RESHAPE});
}

ember_tensor *ember_flatten(const ember_tensor *t, int start, int end) {
  ember_tensor *r = flatten_plain(t, start, end);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("FlattenBackward", t, r,
                     &(struct view_saved){.kind = VIEW_RESHAPE});
}

ember_tensor *ember_squeeze(const ember_tensor *t, int dim) {
  ember_tensor *r = squeeze_plain(t, dim);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("SqueezeBackward", t, r,
                     &(struct view_saved){.kind = VIEW_RESHAPE});
}

ember_tensor *ember_unsqueeze(const ember_tensor *t, int dim) {
  ember_tensor *r = unsqueeze_plain(t, dim);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("UnsqueezeBackward", t, r,
                     &(struct view_saved){.kind = VIEW_RESHAPE});
}

ember_tensor *ember_expand(const ember_tensor *t, int ndim, const int64_t *shape) {
  ember_tensor *r = expand_plain(t, ndim, shape);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("ExpandBackward", t, r,
                     &(struct view_saved){.kind = VIEW_EXPAND});
}

ember_tensor *ember_transpose(const ember_tensor *t, int d0, int d1) {
  ember_tensor *r = transpose_plain(t, d0, d1);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("TransposeBackward", t, r,
                     &(struct view_saved){.kind = VIEW_TRANSPOSE, .dim = d0,
                                          .dim1 = d1});
}

ember_tensor *ember_permute(const ember_tensor *t, int ndim, const int *perm) {
  ember_tensor *r = permute_plain(t, ndim, perm);
  if (!r || !ember_ag_active1(t)) return r;
  struct view_saved s = {.kind = VIEW_PERMUTE};
  for (int i = 0; i < ndim; i++) s.perm[i] = perm[i] < 0 ? perm[i] + ndim : perm[i];
  return record_view("PermuteBackward", t, r, &s);
}

ember_tensor *ember_narrow(const ember_tensor *t, int dim, int64_t start,
                           int64_t length) {
  ember_tensor *r = narrow_plain(t, dim, start, length);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("NarrowBackward", t, r,
                     &(struct view_saved){.kind = VIEW_NARROW,
                                          .dim = dim < 0 ? dim + t->ndim : dim,
                                          .start = start});
}

ember_tensor *ember_slice(const ember_tensor *t, int dim, int64_t start,
                          int64_t stop, int64_t step) {
  ember_tensor *r = slice_plain(t, dim, start, stop, step);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("SliceBackward", t, r,
                     &(struct view_saved){.kind = VIEW_SLICE,
                                          .dim = dim < 0 ? dim + t->ndim : dim,
                                          .start = start, .step = step});
}

ember_tensor *ember_select(const ember_tensor *t, int dim, int64_t index) {
  ember_tensor *r = select_plain(t, dim, index);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("SelectBackward", t, r,
                     &(struct view_saved){.kind = VIEW_SELECT,
                                          .dim = dim < 0 ? dim + t->ndim : dim,
                                          .start = index});
}

ember_tensor *ember_diagonal(const ember_tensor *t, int64_t offset, int d1,
                             int d2) {
  ember_tensor *r = diagonal_plain(t, offset, d1, d2);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("DiagonalBackward", t, r,
                     &(struct view_saved){.kind = VIEW_DIAGONAL,
                                          .dim = d1 < 0 ? d1 + t->ndim : d1,
                                          .dim1 = d2 < 0 ? d2 + t->ndim : d2,
                                          .start = offset});
}

ember_tensor *ember_clone(const ember_tensor *t) {
  ember_tensor *r = clone_plain(t);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("CloneBackward", t, r,
                     &(struct view_saved){.kind = VIEW_CLONE});
}

ember_tensor *ember_to_dtype(const ember_tensor *t, ember_dtype dt) {
  ember_tensor *r = to_dtype_plain(t, dt);
  if (!r || !ember_ag_active1(t)) return r;
  return record_view("ToCopyBackward", t, r,
                     &(struct view_saved){.kind = VIEW_CONVERT});
}

/* t itself when already contiguous, else a recorded clone */
ember_tensor *ember_contiguous(const ember_tensor *t) {
  if (ember_is_contiguous(t)) {
    ember_tensor_retain((ember_tensor *)t);
    return (ember_tensor *)t;
  }
  return ember_clone(t);
}

/* t itself when of dtype dt, else a recorded to_dtype */
ember_tensor *ember_cast(const ember_tensor *t, ember_dtype dt) {
  if (t->dtype == dt) {
    ember_tensor_retain((ember_tensor *)t);
    return (ember_tensor *)t;
  }
  return ember_to_dtype(t, dt);
}

/* }====================================================================== */
