/*
** tensor.c -- creating tensors, views that share storage, copies.
**
** Views only compute new geometry (shape, strides, offset) over the same
** storage; nothing here touches elements except through the backend's
** copy/fill/arange kernels.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "grad_ops.h"

/* {======================================================================
** Creation
** ======================================================================= */

ember_tensor *ember_full(int ndim, const int64_t *shape, double value,
                         ember_dtype dt) {
  ember_tensor *t = ember_empty(ndim, shape, dt);
  if (t && ember_fill_(t, value) < 0) {
    ember_tensor_release(t);
    return NULL;
  }
  return t;
}

ember_tensor *ember_zeros(int ndim, const int64_t *shape, ember_dtype dt) {
  return ember_full(ndim, shape, 0.0, dt);
}

ember_tensor *ember_ones(int ndim, const int64_t *shape, ember_dtype dt) {
  return ember_full(ndim, shape, 1.0, dt);
}

ember_tensor *ember_scalar(double value, ember_dtype dt) {
  return ember_full(0, NULL, value, dt);
}

ember_tensor *ember_scalar_int(int64_t ivalue, ember_dtype dt) {
  ember_tensor *t = ember_empty(0, NULL, dt);
  if (t) ember_cpu_backend.fill(t, (double)ivalue, ivalue);
  return t;
}

ember_tensor *ember_scalar_like(const ember_tensor *t, double value,
                                int64_t ivalue, int is_integer) {
  ember_dtype dt = t->dtype;
  if (!is_integer && !ember_dtype_is_float(dt)) dt = EMBER_FLOAT32;
  else if (is_integer && dt == EMBER_BOOL) dt = EMBER_INT64;
  if (is_integer && (dt == EMBER_INT32 || dt == EMBER_UINT8)) {
    int64_t lo = dt == EMBER_INT32 ? INT32_MIN : 0;
    int64_t hi = dt == EMBER_INT32 ? INT32_MAX : 255;
    if (ivalue < lo || ivalue > hi) {
      ember_set_error("value %lld cannot be converted to %s without overflow",
                      (long long)ivalue, ember_dtype_name(dt));
      return NULL;
    }
  }
  ember_tensor *s = ember_empty_on(t->storage->device, 0, NULL, dt);
  if (!s) return NULL;
  if (is_integer && !ember_dtype_is_float(dt))
    return ember_kernel_result(s, ember_backend_of(s)->fill(s, value, ivalue));
  return ember_kernel_result(s, ember_fill_(s, value));
}

ember_tensor *ember_arange(double start, double end, double step,
                           ember_dtype dt) {
  if (!isfinite(start) || !isfinite(end) || !isfinite(step)) {
    ember_set_error("arange: start, end and step must be finite");
    return NULL;
  }
  if (step == 0) { ember_set_error("arange: step must be nonzero"); return NULL; }
  if ((end - start) / step < 0) {
    ember_set_error("arange: step %g goes away from end (start %g, end %g)",
                    step, start, end);
    return NULL;
  }
  double nd = ceil((end - start) / step);
  if (nd > 1e15) { ember_set_error("arange: too many elements"); return NULL; }
  int64_t n = (int64_t)nd;
  ember_tensor *t = ember_empty(1, &n, dt);
  return t ? ember_kernel_result(t, ember_backend_of(t)->arange(t, start, step)) : NULL;
}

ember_tensor *ember_linspace(double start, double end, int64_t steps,
                             ember_dtype dt) {
  if (steps < 0) {
    ember_set_error("linspace: number of steps must be >= 0, got %lld",
                    (long long)steps);
    return NULL;
  }
  if (ember_check_shape("linspace", 1, &steps) < 0) return NULL;
  ember_tensor *t = ember_empty(1, &steps, dt);
  double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
  return t ? ember_kernel_result(t, ember_backend_of(t)->arange(t, start, step)) : NULL;
}

ember_tensor *ember_eye(int64_t n, int64_t m, ember_dtype dt) {
  int64_t shape[2] = {n, m < 0 ? n : m};
  if (ember_check_shape("eye", 2, shape) < 0) return NULL;
  ember_tensor *t = ember_zeros(2, shape, dt);
  if (!t) return NULL;
  /* the diagonal is a 1-D view with stride m + 1 */
  int64_t d = shape[0] < shape[1] ? shape[0] : shape[1];
  int64_t st = shape[1] + 1;
  ember_tensor *diag = ember_tensor_alias(t, 1, &d, &st, 0);
  if (!diag) { ember_tensor_release(t); return NULL; }
  ember_fill_(diag, 1.0);
  ember_tensor_release(diag);
  return t;
}

/* }====================================================================== */

/* {======================================================================
** Views
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
  return 0;
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
  ember_tensor *c = ember_clone(t);
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
   bounds may be so because its end overflows int64 (found by the fuzzer:
   narrow(2, 2, math.maxinteger)). */
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

ember_tensor *ember_broadcast_to(const ember_tensor *t, int ndim,
                                 const int64_t *shape) {
  return expand_plain(t, ndim, shape);
}

static ember_tensor *flatten_plain(const ember_tensor *t, int start, int end) {
  if (t->ndim == 0) return ember_reshape(t, 1, (int64_t[]){1});
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
  return ember_reshape(t, k, sh);
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
** Copies and element access
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

ember_tensor *ember_contiguous(const ember_tensor *t) {
  if (ember_is_contiguous(t)) {
    ember_tensor_retain((ember_tensor *)t);
    return (ember_tensor *)t;
  }
  return ember_clone(t);
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

ember_tensor *ember_cast(const ember_tensor *t, ember_dtype dt) {
  if (t->dtype == dt) {
    ember_tensor_retain((ember_tensor *)t);
    return (ember_tensor *)t;
  }
  return ember_to_dtype(t, dt);
}

/* Offset of an element; -1 with a message if out of range. */
static int64_t element_offset(const char *fn, const ember_tensor *t,
                              const int64_t *index) {
  int64_t off = t->offset;
  for (int i = 0; i < t->ndim; i++) {
    if (index[i] < 0 || index[i] >= t->shape[i])
      return ember_set_error("%s: index %lld is out of range for dimension %d "
                             "of size %lld", fn, (long long)index[i] + 1, i + 1,
                             (long long)t->shape[i]);
    off += index[i] * t->strides[i];
  }
  return off;
}

/* A host pointer to the element at index: into the data on the CPU, into
   buf (a copy of the element) on other devices; NULL with a message. */
static const char *element_at(const char *fn, const ember_tensor *t,
                              const int64_t *index, char buf[8]) {
  int64_t off = element_offset(fn, t, index);
  if (off < 0) return NULL;
  size_t es = ember_dtype_size(t->dtype);
  const char *p = (const char *)t->storage->data + off * (int64_t)es;
  if (t->storage->device == EMBER_CPU) return p;
  return ember_device_memcpy(EMBER_CPU, buf, t->storage->device, p, es) < 0 ? NULL : buf;
}

int ember_get(const ember_tensor *t, const int64_t *index, double *out) {
  char buf[8];
  const char *p = element_at("get", t, index, buf);
  if (!p) return -1;
  switch (t->dtype) {
    case EMBER_FLOAT32: *out = *(const float *)p; break;
    case EMBER_FLOAT64: *out = *(const double *)p; break;
    case EMBER_INT32: *out = *(const int32_t *)p; break;
    case EMBER_INT64: *out = (double)*(const int64_t *)p; break;
    case EMBER_UINT8: case EMBER_BOOL: *out = *(const uint8_t *)p; break;
    default: return ember_set_error("get: bad dtype");
  }
  return 0;
}

int ember_get_int(const ember_tensor *t, const int64_t *index, int64_t *out) {
  if (ember_dtype_is_float(t->dtype)) {
    double d;
    if (ember_get(t, index, &d) < 0) return -1;
    *out = (int64_t)d;
    return 0;
  }
  char buf[8];
  const char *p = element_at("get", t, index, buf);
  if (!p) return -1;
  switch (t->dtype) {
    case EMBER_INT32: *out = *(const int32_t *)p; break;
    case EMBER_INT64: *out = *(const int64_t *)p; break;
    default: *out = *(const uint8_t *)p; break;
  }
  return 0;
}

static int check_item(const ember_tensor *t) {
  if (ember_numel(t) != 1) {
    char b[128];
    return ember_set_error("item: only a tensor with one element can be "
                           "converted to a number, got shape %s",
                           ember_shape_str(b, sizeof b, t->ndim, t->shape));
  }
  return 0;
}

int ember_item(const ember_tensor *t, double *out) {
  int64_t zero[EMBER_MAX_DIMS] = {0};
  return check_item(t) < 0 ? -1 : ember_get(t, zero, out);
}

int ember_item_int(const ember_tensor *t, int64_t *out) {
  int64_t zero[EMBER_MAX_DIMS] = {0};
  return check_item(t) < 0 ? -1 : ember_get_int(t, zero, out);
}

/* }====================================================================== */

/* {======================================================================
** The public views and copies: the plain forms above, recorded for
** autograd when their input requires grad.
** ======================================================================= */

#define RECORD(kind, name, t, expr, a0, a1, perm)                            \
  (ember_ag_active1(t) ? ember_ag_record_view(kind, name, t, (expr), a0, a1, perm) \
                       : (expr))

ember_tensor *ember_view(const ember_tensor *t, int ndim, const int64_t *shape) {
  return RECORD(EMBER_AG_RESHAPE, "ViewBackward", t, view_plain(t, ndim, shape), 0, 0, NULL);
}

ember_tensor *ember_reshape(const ember_tensor *t, int ndim, const int64_t *shape) {
  return RECORD(EMBER_AG_RESHAPE, "ReshapeBackward", t, reshape_plain(t, ndim, shape), 0, 0, NULL);
}

ember_tensor *ember_flatten(const ember_tensor *t, int start, int end) {
  return RECORD(EMBER_AG_RESHAPE, "FlattenBackward", t, flatten_plain(t, start, end), 0, 0, NULL);
}

ember_tensor *ember_squeeze(const ember_tensor *t, int dim) {
  return RECORD(EMBER_AG_RESHAPE, "SqueezeBackward", t, squeeze_plain(t, dim), 0, 0, NULL);
}

ember_tensor *ember_unsqueeze(const ember_tensor *t, int dim) {
  return RECORD(EMBER_AG_RESHAPE, "UnsqueezeBackward", t, unsqueeze_plain(t, dim), 0, 0, NULL);
}

ember_tensor *ember_expand(const ember_tensor *t, int ndim, const int64_t *shape) {
  return RECORD(EMBER_AG_EXPAND, "ExpandBackward", t, expand_plain(t, ndim, shape), 0, 0, NULL);
}

ember_tensor *ember_transpose(const ember_tensor *t, int d0, int d1) {
  return RECORD(EMBER_AG_TRANSPOSE, "TransposeBackward", t, transpose_plain(t, d0, d1), d0, d1, NULL);
}

ember_tensor *ember_permute(const ember_tensor *t, int ndim, const int *perm) {
  ember_tensor *r = permute_plain(t, ndim, perm);
  if (!r || !ember_ag_active1(t)) return r;
  int p[EMBER_MAX_DIMS];
  for (int i = 0; i < ndim; i++) p[i] = perm[i] < 0 ? perm[i] + ndim : perm[i];
  return ember_ag_record_view(EMBER_AG_PERMUTE, "PermuteBackward", t, r, 0, 0, p);
}

ember_tensor *ember_narrow(const ember_tensor *t, int dim, int64_t start,
                           int64_t length) {
  ember_tensor *r = narrow_plain(t, dim, start, length);
  if (!r || !ember_ag_active1(t)) return r;
  return ember_ag_record_view(EMBER_AG_NARROW, "NarrowBackward", t, r,
                              dim < 0 ? dim + t->ndim : dim, start, NULL);
}

ember_tensor *ember_select(const ember_tensor *t, int dim, int64_t index) {
  ember_tensor *r = select_plain(t, dim, index);
  if (!r || !ember_ag_active1(t)) return r;
  return ember_ag_record_view(EMBER_AG_SELECT, "SelectBackward", t, r,
                              dim < 0 ? dim + t->ndim : dim, index, NULL);
}

ember_tensor *ember_clone(const ember_tensor *t) {
  return RECORD(EMBER_AG_CLONE, "CloneBackward", t, clone_plain(t), 0, 0, NULL);
}

ember_tensor *ember_to_dtype(const ember_tensor *t, ember_dtype dt) {
  return RECORD(EMBER_AG_CONVERT, "ToCopyBackward", t, to_dtype_plain(t, dt), 0, 0, NULL);
}

/* }====================================================================== */
