/*
** index.c -- joining and indexing: cat, stack, index_select, gather, and
** their adjoints index_add_ and scatter_add_, front door to backward.
**
** cat copies each input into its slice of one new tensor (the backend's
** copy slot); stack is cat of the inputs each unsqueezed at dim.
** index_select and gather read through an index tensor (1-based values,
** as everywhere in Ember; backend slots index_select and gather);
** index_add_ and scatter_add_ are their adjoints and serve as their
** backward.  index_copy_ and index_fill_ write whole slices (one kernel
** slot, index_copy: a fill is a copy from an expanded 0-d value) and are
** recorded as in-place ops, as copy_.  Kernels: core/cpu/index.c,
** core/cuda/.
*/
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Does any of n tensors need recording? */
static int active_n(int n, ember_tensor *const *ts) {
  if (!ember_grad_mode_) return 0;
  for (int i = 0; i < n; i++)
    if (ember_ag_requires(ts[i])) return 1;
  return 0;
}

/* {======================================================================
** cat and stack
** ======================================================================= */

/* What cat_backward needs: the dim joined along (wrapped), and whether the
   op was stack (each input one index of dim) rather than cat (a slice). */
struct cat_saved { int dim, stack; };

/* input i gets its slice of g (cat) or its select (stack) */
static int cat_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct cat_saved *s = EMBER_NODE_STATE(n, struct cat_saved);
  int64_t at = 0;
  for (int i = 0; i < n->ninputs; i++) {
    int64_t len = s->stack ? 1 : n->in[i].shape[s->dim];
    if (n->needs[i]) {
      gin[i] = s->stack ? ember_select(g, s->dim, i)
                        : ember_narrow(g, s->dim, at, len);
      if (!gin[i]) return -1;
    }
    at += len;
  }
  return 0;
}

/* Record out = cat (or stack) of ts along dim (wrapped); consumes out. */
static ember_tensor *record_cat(int n, ember_tensor *const *ts, int dim,
                                int stack, ember_tensor *out) {
  if (!out || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *node = ember_ag_node(stack ? "StackBackward" : "CatBackward",
                                   cat_backward, n,
                                   (const ember_tensor *const *)ts);
  if (node) {
    struct cat_saved *s = EMBER_NODE_STATE(node, struct cat_saved);
    s->dim = dim;
    s->stack = stack;
  }
  return ember_ag_finish(node, out, 0);
}

/* cat without recording; *wdim receives dim wrapped */
static ember_tensor *cat_forward(int n, ember_tensor *const *ts, int dim,
                                 int *wdim) {
  const ember_tensor *t0 = ts[0];
  if (t0->ndim == 0) { ember_set_error("cat: zero-dimensional tensors cannot be concatenated"); return NULL; }
  if ((dim = ember_wrap_dim("cat", dim, t0->ndim)) < 0) return NULL;
  ember_dtype dt = t0->dtype;
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    const ember_tensor *t = ts[i];
    char b1[128], b2[128];
    if (t->storage->device != t0->storage->device) {
      ember_set_error("cat: tensor %d is on %s, tensor 1 on %s", i + 1,
                      ember_device_name(t->storage->device),
                      ember_device_name(t0->storage->device));
      return NULL;
    }
    int ok = t->ndim == t0->ndim;
    for (int d = 0; ok && d < t->ndim; d++)
      if (d != dim && t->shape[d] != t0->shape[d]) ok = 0;
    if (!ok) {
      ember_set_error("cat: tensor %d has shape %s, expected %s except in "
                      "dimension %d", i + 1,
                      ember_shape_str(b1, sizeof b1, t->ndim, t->shape),
                      ember_shape_str(b2, sizeof b2, t0->ndim, t0->shape), dim + 1);
      return NULL;
    }
    dt = ember_promote(dt, t->dtype);
    total += t->shape[dim];
  }
  int64_t shape[EMBER_MAX_DIMS];
  memcpy(shape, t0->shape, sizeof shape);
  shape[dim] = total;
  ember_tensor *out = ember_empty_on(t0->storage->device, t0->ndim, shape, dt);
  if (!out) return NULL;
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    ember_tensor *slot = ember_narrow(out, dim, at, ts[i]->shape[dim]);
    int rc = slot ? ember_backend_of(out)->copy(slot, ts[i]) : -1;
    ember_tensor_release(slot);
    if (rc < 0) { ember_tensor_release(out); return NULL; }
    at += ts[i]->shape[dim];
  }
  *wdim = dim;
  return out;
}

ember_tensor *ember_cat(int n, ember_tensor *const *ts, int dim) {
  if (n < 1) { ember_set_error("cat: expected a non-empty list of tensors"); return NULL; }
  ember_tensor *out = cat_forward(n, ts, dim, &dim);
  if (!active_n(n, ts)) return out;
  return record_cat(n, ts, dim, 0, out);
}

ember_tensor *ember_stack(int n, ember_tensor *const *ts, int dim) {
  if (n < 1) { ember_set_error("stack: expected a non-empty list of tensors"); return NULL; }
  if (n > 1 << 20) { ember_set_error("stack: too many tensors"); return NULL; }
  if ((dim = ember_wrap_dim("stack", dim, ts[0]->ndim + 1)) < 0) return NULL;
  for (int i = 1; i < n; i++) {
    if (ts[i]->ndim != ts[0]->ndim ||
        memcmp(ts[i]->shape, ts[0]->shape, (size_t)ts[0]->ndim * sizeof(int64_t))) {
      char b1[128], b2[128];
      ember_set_error("stack: expected all tensors of shape %s, tensor %d has %s",
                      ember_shape_str(b1, sizeof b1, ts[0]->ndim, ts[0]->shape),
                      i + 1, ember_shape_str(b2, sizeof b2, ts[i]->ndim, ts[i]->shape));
      return NULL;
    }
  }
  ember_tensor **us = malloc((size_t)n * sizeof *us);
  if (!us) { ember_set_error("out of memory"); return NULL; }
  /* the unsqueezed inputs are steps of this op, not nodes of the graph */
  int rec = active_n(n, ts);
  int prev = ember_ag_pause();
  int k = 0, wdim;
  ember_tensor *out = NULL;
  for (; k < n; k++)
    if (!(us[k] = ember_unsqueeze(ts[k], dim))) break;
  if (k == n) out = cat_forward(n, us, dim, &wdim);
  ember_ag_resume(prev);
  for (int i = 0; i < k; i++) ember_tensor_release(us[i]);
  free(us);
  if (!rec) return out;
  return record_cat(n, ts, dim, 1, out);
}

/* }====================================================================== */

/* {======================================================================
** index_select and gather
** ======================================================================= */

/* What index_backward needs besides the index (saved[0]): the dim
   (wrapped) and which op it was. */
struct index_saved { int dim, gather; };

/* index_select: index_add_ of g into zeros; gather: scatter_add_ */
static int index_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct index_saved *s = EMBER_NODE_STATE(n, struct index_saved);
  ember_tensor *z = ember_zeros_meta(g, &n->in[0]);
  if (!z) return -1;
  int rc = s->gather ? ember_scatter_add_(z, s->dim, n->saved[0], g)
                     : ember_index_add_(z, s->dim, n->saved[0], g);
  if (rc < 0) { ember_tensor_release(z); return -1; }
  gin[0] = z;
  return 0;
}

/* Record out = index_select/gather(t, dim, index); consumes out. */
static ember_tensor *record_index(const ember_tensor *t, int dim,
                                  const ember_tensor *index, int gather,
                                  ember_tensor *out) {
  if (!out || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *n = ember_ag_node2(gather ? "GatherBackward" : "IndexSelectBackward",
                                 index_backward, t, NULL);
  if (n) {
    struct index_saved *s = EMBER_NODE_STATE(n, struct index_saved);
    s->dim = dim;
    s->gather = gather;
    if (ember_ag_save(n, index) < 0) { ember_ag_node_release(n); n = NULL; }
  }
  return ember_ag_finish(n, out, 0);
}

static int check_index(const char *fn, const ember_tensor *t,
                       const ember_tensor *index) {
  if (index->dtype != EMBER_INT64 && index->dtype != EMBER_INT32)
    return ember_set_error("%s: expected an int64 or int32 index tensor, got %s",
                           fn, ember_dtype_name(index->dtype));
  if (index->storage->device != t->storage->device)
    return ember_set_error("%s: index is on %s, tensor on %s", fn,
                           ember_device_name(index->storage->device),
                           ember_device_name(t->storage->device));
  return 0;
}

ember_tensor *ember_index_select(const ember_tensor *t, int dim,
                                 const ember_tensor *index) {
  if (check_index("index_select", t, index) < 0) return NULL;
  if (index->ndim > 1) {
    ember_set_error("index_select: index must be 1-d, got %d-d", index->ndim);
    return NULL;
  }
  if (t->ndim == 0) { ember_set_error("index_select: cannot index a 0-d tensor"); return NULL; }
  if ((dim = ember_wrap_dim("index_select", dim, t->ndim)) < 0) return NULL;
  int64_t shape[EMBER_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  shape[dim] = ember_numel(index);
  ember_tensor *out = ember_empty_on(t->storage->device, t->ndim, shape, t->dtype);
  if (out && ember_backend_of(out)->index_select(out, t, dim, index) < 0) {
    ember_tensor_release(out);
    return NULL;
  }
  if (!ember_ag_active1(t)) return out;
  return record_index(t, dim, index, 0, out);
}

ember_tensor *ember_gather(const ember_tensor *t, int dim,
                           const ember_tensor *index) {
  if (check_index("gather", t, index) < 0) return NULL;
  if (index->ndim != t->ndim) {
    ember_set_error("gather: index has %d dimensions, the tensor %d",
                    index->ndim, t->ndim);
    return NULL;
  }
  if (t->ndim == 0) { ember_set_error("gather: cannot index a 0-d tensor"); return NULL; }
  if ((dim = ember_wrap_dim("gather", dim, t->ndim)) < 0) return NULL;
  for (int d = 0; d < t->ndim; d++)
    if (d != dim && index->shape[d] > t->shape[d]) {
      ember_set_error("gather: index size %lld exceeds the tensor's size %lld "
                      "in dimension %d", (long long)index->shape[d],
                      (long long)t->shape[d], d + 1);
      return NULL;
    }
  ember_tensor *out = ember_empty_on(t->storage->device, index->ndim,
                                     index->shape, t->dtype);
  if (out && ember_backend_of(out)->gather(out, t, dim, index) < 0) {
    ember_tensor_release(out);
    return NULL;
  }
  if (!ember_ag_active1(t)) return out;
  return record_index(t, dim, index, 1, out);
}

/* }====================================================================== */

/* {======================================================================
** index_add_ and scatter_add_: the adjoints of index_select and gather
** ======================================================================= */

/* src holds the slices index_add_/index_copy_ write: t's shape with dim's
   size the index's length (dim wrapped). */
static int check_slices_shape(const char *fn, const ember_tensor *t, int dim,
                              const ember_tensor *index,
                              const ember_tensor *src) {
  int ok = src->ndim == t->ndim && src->shape[dim] == ember_numel(index);
  for (int d = 0; ok && d < t->ndim; d++)
    if (d != dim && src->shape[d] != t->shape[d]) ok = 0;
  if (ok) return 0;
  char b1[128], b2[128];
  return ember_set_error("%s: source of shape %s does not match the "
                         "tensor's shape %s with %lld indices in dimension %d",
                         fn, ember_shape_str(b1, sizeof b1, src->ndim, src->shape),
                         ember_shape_str(b2, sizeof b2, t->ndim, t->shape),
                         (long long)ember_numel(index), dim + 1);
}

/* Cannot write in place where several elements share memory. */
static int has_expanded_dim(const ember_tensor *t) {
  for (int i = 0; i < t->ndim; i++)
    if (t->strides[i] == 0 && t->shape[i] > 1) return 1;
  return 0;
}

static int check_add_target(const char *fn, ember_tensor *t,
                            const ember_tensor *src) {
  if (t->dtype != src->dtype)
    return ember_set_error("%s: source dtype %s differs from the tensor's %s",
                           fn, ember_dtype_name(src->dtype),
                           ember_dtype_name(t->dtype));
  if (src->storage->device != t->storage->device)
    return ember_set_error("%s: source is on %s, tensor on %s", fn,
                           ember_device_name(src->storage->device),
                           ember_device_name(t->storage->device));
  if (t->ndim == 0) return ember_set_error("%s: cannot index a 0-d tensor", fn);
  if (ember_ag_active1(t) || ember_ag_active1(src))
    return ember_set_error("%s: not differentiable; run it under no_grad", fn);
  if (has_expanded_dim(t))
    return ember_set_error("%s: cannot write in place to an expanded tensor", fn);
  return 0;
}

int ember_index_add_(ember_tensor *t, int dim, const ember_tensor *index,
                     const ember_tensor *src) {
  if (check_index("index_add_", t, index) < 0 ||
      check_add_target("index_add_", t, src) < 0)
    return -1;
  if (index->ndim > 1)
    return ember_set_error("index_add_: index must be 1-d, got %d-d", index->ndim);
  if ((dim = ember_wrap_dim("index_add_", dim, t->ndim)) < 0) return -1;
  if (check_slices_shape("index_add_", t, dim, index, src) < 0) return -1;
  if (ember_backend_of(t)->index_add(t, dim, index, src) < 0) return -1;
  ember_bump_version(t);
  return 0;
}

/* The shapes of a scatter (dim wrapped): index has t's dims and fits src
   and, outside dim, t.  A 0-d src (a value) fits any index. */
static int check_scatter_fit(const char *fn, const ember_tensor *t, int dim,
                             const ember_tensor *index,
                             const ember_tensor *src) {
  int value = src->ndim == 0;
  int ok = index->ndim == t->ndim && (value || src->ndim == t->ndim);
  for (int d = 0; ok && d < t->ndim; d++)
    if ((!value && index->shape[d] > src->shape[d]) ||
        (d != dim && index->shape[d] > t->shape[d]))
      ok = 0;
  if (ok) return 0;
  char b1[128], b2[128], b3[128];
  return ember_set_error("%s: index of shape %s does not fit the source %s "
                         "and the tensor %s", fn,
                         ember_shape_str(b1, sizeof b1, index->ndim, index->shape),
                         ember_shape_str(b2, sizeof b2, src->ndim, src->shape),
                         ember_shape_str(b3, sizeof b3, t->ndim, t->shape));
}

int ember_scatter_add_(ember_tensor *t, int dim, const ember_tensor *index,
                       const ember_tensor *src) {
  if (check_index("scatter_add_", t, index) < 0 ||
      check_add_target("scatter_add_", t, src) < 0)
    return -1;
  if ((dim = ember_wrap_dim("scatter_add_", dim, t->ndim)) < 0) return -1;
  if (src->ndim == 0)   /* a value is scatter_'s form, not scatter_add_'s */
    return ember_set_error("scatter_add_: expected a source with the tensor's "
                           "%d dims, got a 0-d tensor", t->ndim);
  if (check_scatter_fit("scatter_add_", t, dim, index, src) < 0) return -1;
  if (ember_backend_of(t)->scatter_add(t, dim, index, src) < 0) return -1;
  ember_bump_version(t);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** index_copy_ and index_fill_: whole slices written, recorded
** ======================================================================= */

/* What index_write_backward needs besides the index (saved[0]): the dim,
   and whether input 1 is index_fill's 0-d value (else index_copy's
   source). */
struct index_write_saved { int dim, fill; };

/* t's old value keeps g outside the written slices; index_copy's source
   gets its slices of g (index_select, as PyTorch: a repeated index gives
   each of its slices g), index_fill's value the sum of g over the filled
   places, each once (the sum of g less the sum of what t keeps). */
static int index_write_backward(ember_node *n, ember_tensor *g,
                                ember_tensor **gin) {
  const struct index_write_saved *s = EMBER_NODE_STATE(n, struct index_write_saved);
  const ember_tensor *index = n->saved[0];
  int want_src = n->ninputs > 1 && n->needs[1];
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *zero = ember_temp(&T, ember_scalar_as(g, 0.0));
  ember_tensor *kept = zero && (n->needs[0] || (want_src && s->fill))
                           ? ember_temp(&T, ember_index_fill(g, s->dim, index, zero))
                           : NULL;
  int rc = zero && (kept || !n->needs[0]) ? 0 : -1;
  if (rc == 0 && n->needs[0]) {
    ember_tensor_retain(kept);
    gin[0] = kept;
  }
  if (rc == 0 && want_src) {
    if (s->fill) {
      ember_tensor *d = kept ? ember_temp(&T, ember_binary(EMBER_SUB, g, kept)) : NULL;
      gin[1] = d ? ember_reduce(EMBER_SUM, d, 0) : NULL;
    } else {
      gin[1] = ember_index_select(g, s->dim, index);
    }
    if (!gin[1]) rc = -1;
  }
  ember_temps_release(&T);
  return rc;
}

/* Everything index_copy_ checks before writing (dim wrapped in *dim);
   fn names the caller. */
static int index_write_check(const char *fn, const ember_tensor *t, int *dim,
                             const ember_tensor *index,
                             const ember_tensor *src) {
  if (check_index(fn, t, index) < 0) return -1;
  if (index->ndim > 1)
    return ember_set_error("%s: index must be 1-d, got %d-d", fn, index->ndim);
  if (t->ndim == 0) return ember_set_error("%s: cannot index a 0-d tensor", fn);
  if ((*dim = ember_wrap_dim(fn, *dim, t->ndim)) < 0) return -1;
  if (src->storage->device != t->storage->device)
    return ember_set_error("%s: source is on %s, tensor on %s", fn,
                           ember_device_name(src->storage->device),
                           ember_device_name(t->storage->device));
  if (src->dtype != t->dtype)
    return ember_set_error("%s: source dtype %s differs from the tensor's %s",
                           fn, ember_dtype_name(src->dtype),
                           ember_dtype_name(t->dtype));
  if (has_expanded_dim(t))
    return ember_set_error("%s: cannot write in place to an expanded tensor; "
                           "clone it first", fn);
  return check_slices_shape(fn, t, *dim, index, src);
}

/* t's slices at index along dim (wrapped, checked) = src's; recorded as
   copy_ is: a leaf that requires grad refuses, a non-leaf's history is
   replaced.  `value`: index_fill's 0-d value, which src expands and which
   the node takes as its input (NULL for index_copy). */
static int index_write(const char *fn, ember_tensor *t, int dim,
                       const ember_tensor *index, const ember_tensor *src,
                       const ember_tensor *value) {
  const ember_tensor *in = value ? value : src;
  int rec = ember_ag_active2(t, in);
  if (rec && (ember_ag_check_inplace(fn, t) < 0 ||
              (ember_ag_requires(in) && ember_ag_check_target(fn, t) < 0)))
    return -1;
  ember_node *n = NULL;
  if (rec && ember_dtype_is_float(t->dtype)) {
    n = ember_ag_node2(value ? "IndexFillBackward" : "IndexCopyBackward",
                       index_write_backward, t,
                       ember_ag_requires(in) ? in : NULL);
    if (!n) return -1;
    struct index_write_saved *s = EMBER_NODE_STATE(n, struct index_write_saved);
    s->dim = dim;
    s->fill = value != NULL;
    if (ember_ag_save(n, index) < 0) { ember_ag_node_release(n); return -1; }
  }
  /* a source sharing t's memory is read from a snapshot, as copy_ does */
  ember_tensor *snap = NULL;
  if (src->storage == t->storage) {
    int prev = ember_ag_pause();
    snap = ember_clone(src);
    ember_ag_resume(prev);
    if (!snap) { ember_ag_node_release(n); return -1; }
  }
  int rc = ember_backend_of(t)->index_copy(fn, t, dim, index, snap ? snap : src);
  ember_tensor_release(snap);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  ember_bump_version(t);
  return n ? ember_ag_rebase(t, n, 1) : 0;
}

static int index_copy_at(const char *fn, ember_tensor *t, int dim,
                         const ember_tensor *index, const ember_tensor *src) {
  if (index_write_check(fn, t, &dim, index, src) < 0) return -1;
  return index_write(fn, t, dim, index, src, NULL);
}

/* The value cast to t's dtype and moved to its device (both recorded), then
   expanded (unrecorded: the node takes the value) to the written slices'
   shape: a source index_copy's kernel reads with stride 0. */
static int index_fill_at(const char *fn, ember_tensor *t, int dim,
                         const ember_tensor *index, const ember_tensor *value) {
  if (value->ndim != 0)
    return ember_set_error("%s: the value must be a number or a 0-d tensor, "
                           "got a %d-d tensor", fn, value->ndim);
  if (check_index(fn, t, index) < 0) return -1;
  if (t->ndim == 0) return ember_set_error("%s: cannot index a 0-d tensor", fn);
  if ((dim = ember_wrap_dim(fn, dim, t->ndim)) < 0) return -1;
  int64_t shape[EMBER_MAX_DIMS];
  memcpy(shape, t->shape, sizeof shape);
  shape[dim] = ember_numel(index);
  ember_temps T;
  ember_temps_init(&T);
  const ember_tensor *v = value;
  if (v->storage->device != t->storage->device)
    v = ember_temp(&T, ember_to_device(v, t->storage->device));
  if (v && v->dtype != t->dtype) v = ember_temp(&T, ember_to_dtype(v, t->dtype));
  ember_tensor *src = v ? ember_temp(&T, ember_broadcast_to(v, t->ndim, shape)) : NULL;
  int rc = src ? index_write_check(fn, t, &dim, index, src) : -1;
  if (rc == 0) rc = index_write(fn, t, dim, index, src, v);
  ember_temps_release(&T);
  return rc;
}

int ember_index_copy_(ember_tensor *t, int dim, const ember_tensor *index,
                      const ember_tensor *src) {
  return index_copy_at("index_copy_", t, dim, index, src);
}

int ember_index_fill_(ember_tensor *t, int dim, const ember_tensor *index,
                      const ember_tensor *value) {
  return index_fill_at("index_fill_", t, dim, index, value);
}

/* The out-of-place forms write into a recorded clone, whose history the
   in-place write then extends. */
ember_tensor *ember_index_copy(const ember_tensor *t, int dim,
                               const ember_tensor *index,
                               const ember_tensor *src) {
  ember_tensor *out = ember_clone(t);
  if (out && index_copy_at("index_copy", out, dim, index, src) < 0) {
    ember_tensor_release(out);
    return NULL;
  }
  return out;
}

ember_tensor *ember_index_fill(const ember_tensor *t, int dim,
                               const ember_tensor *index,
                               const ember_tensor *value) {
  ember_tensor *out = ember_clone(t);
  if (out && index_fill_at("index_fill", out, dim, index, value) < 0) {
    ember_tensor_release(out);
    return NULL;
  }
  return out;
}

/* }====================================================================== */

/* {======================================================================
** check_index: an index tensor's bounds, checked where it lives
** ======================================================================= */

/*
** The library validates class labels and embedding rows with this rather
** than by reading the index's min and max (two synchronisations on a
** GPU).  On the CPU a bad element fails now; on a device the kernel
** records it and the next synchronising call reports it (core/device.h).
*/
int ember_check_index(const ember_tensor *idx, int64_t lo, int64_t hi,
                      int has_skip, int64_t skip, const char *prefix,
                      const char *suffix) {
  if (idx->dtype != EMBER_INT64 && idx->dtype != EMBER_INT32)
    return ember_set_error("check_index: expected an int64 or int32 index "
                           "tensor, got %s", ember_dtype_name(idx->dtype));
  if (ember_numel(idx) == 0) return 0;
  const ember_backend_i *b = ember_backend_of(idx);
  if (!b->check_index)
    return ember_set_error("check_index: not supported on %s",
                           ember_device_name(idx->storage->device));
  return b->check_index(idx, lo, hi, has_skip != 0, skip, prefix ? prefix : "",
                        suffix ? suffix : "");
}

/* }====================================================================== */

/* {======================================================================
** scatter and scatter_: write (or reduce) src into t at an index
** ======================================================================= */

static const char *const reduce_names[EMBER_NSCATTER] = {
  "none", "sum", "prod", "amax", "amin", "mean"
};

/* What scatter_backward needs: the dim (wrapped) and the op.  Saved:
   index, and for PROD/AMAX/AMIN also t's value before the op and src
   (from which the backward computes the result again). */
struct scatter_saved { int dim; ember_scatter_reduce op; };

static int scatter_needs_values(ember_scatter_reduce op) {
  return op == EMBER_SCATTER_PROD || op == EMBER_SCATTER_AMAX ||
         op == EMBER_SCATTER_AMIN;
}

static int scatter_check(const char *fn, const ember_tensor *t, int *dim,
                         const ember_tensor *index, const ember_tensor *src,
                         ember_scatter_reduce op) {
  if ((unsigned)op >= EMBER_NSCATTER)
    return ember_set_error("%s: bad reduce op %d", fn, (int)op);
  if (check_index(fn, t, index) < 0) return -1;
  if (src->storage->device != t->storage->device)
    return ember_set_error("%s: source is on %s, tensor on %s", fn,
                           ember_device_name(src->storage->device),
                           ember_device_name(t->storage->device));
  if (t->dtype != src->dtype)
    return ember_set_error("%s: source dtype %s differs from the tensor's %s",
                           fn, ember_dtype_name(src->dtype),
                           ember_dtype_name(t->dtype));
  if (op != EMBER_SCATTER_ASSIGN && t->dtype == EMBER_BOOL)
    return ember_set_error("%s: reduce \"%s\" does not support bool tensors",
                           fn, reduce_names[op]);
  if (t->ndim == 0) return ember_set_error("%s: cannot index a 0-d tensor", fn);
  if ((*dim = ember_wrap_dim(fn, *dim, t->ndim)) < 0) return -1;
  return check_scatter_fit(fn, t, *dim, index, src);
}

/* dst = its MEAN with src at index (t's own value counted): the counts
   first (they check the index before dst is touched), then the sum, then
   the division, floored for integers (exact below 2^53). */
static int scatter_mean(ember_tensor *dst, int dim, const ember_tensor *index,
                        const ember_tensor *src) {
  const ember_backend_i *b = ember_backend_of(dst);
  ember_device dev = dst->storage->device;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *cnt = ember_temp(&T, ember_ones_on(dev, dst->ndim, dst->shape, dst->dtype));
  ember_tensor *one = ember_temp(&T, cnt ? ember_ones_on(dev, index->ndim, index->shape,
                                                         dst->dtype) : NULL);
  int rc = one ? b->scatter(EMBER_SCATTER_SUM, cnt, dim, index, one) : -1;
  if (rc == 0) rc = b->scatter(EMBER_SCATTER_SUM, dst, dim, index, src);
  if (rc == 0 && ember_dtype_is_float(dst->dtype)) {
    rc = b->binary(EMBER_DIV, dst, dst, cnt);
  } else if (rc == 0) {
    ember_tensor *a = ember_temp(&T, ember_to_dtype(dst, EMBER_FLOAT64));
    ember_tensor *c = ember_temp(&T, a ? ember_to_dtype(cnt, EMBER_FLOAT64) : NULL);
    ember_tensor *q = ember_temp(&T, c ? ember_binary(EMBER_DIV, a, c) : NULL);
    ember_tensor *f = ember_temp(&T, q ? ember_unary(EMBER_FLOOR, q) : NULL);
    rc = f ? b->copy(dst, f) : -1;
  }
  ember_temps_release(&T);
  return rc;
}

/* dst op= src at index, checked; not recorded (the caller pauses). */
static int scatter_write(ember_tensor *dst, int dim, const ember_tensor *index,
                         const ember_tensor *src, ember_scatter_reduce op) {
  const ember_backend_i *b = ember_backend_of(dst);
  if (!b->scatter)
    return ember_set_error("scatter: not supported on %s",
                           ember_device_name(dst->storage->device));
  if (ember_numel(index) == 0) return 0;
  ember_tensor *s = NULL;   /* a value, expanded to index's shape */
  if (src->ndim == 0 && !(src = s = ember_broadcast_to(src, index->ndim, index->shape)))
    return -1;
  int rc = op == EMBER_SCATTER_MEAN ? scatter_mean(dst, dim, index, src)
                                    : b->scatter(op, dst, dim, index, src);
  ember_tensor_release(s);
  return rc;
}

/* A gradient of index's shape put in a gradient for src: as it is when
   src has index's shape, in the leading corner of zeros when src is
   larger, summed when src was a 0-d value. */
static ember_tensor *grad_for_src(ember_tensor *gi, const ember_in_meta *m) {
  if (m->ndim == 0) return ember_reduce(EMBER_SUM, gi, 0);
  if (m->ndim == gi->ndim &&
      !memcmp(m->shape, gi->shape, (size_t)m->ndim * sizeof(int64_t))) {
    ember_tensor_retain(gi);
    return gi;
  }
  ember_tensor *z = ember_zeros_meta(gi, m), *corner = z;
  ember_tensor_retain(corner);
  for (int d = 0; corner && d < gi->ndim; d++) {
    ember_tensor *c = ember_narrow(corner, d, 0, gi->shape[d]);
    ember_tensor_release(corner);
    corner = c;
  }
  int rc = corner ? ember_copy_(corner, gi) : -1;
  ember_tensor_release(corner);
  if (rc < 0) { ember_tensor_release(z); return NULL; }
  return z;
}

/* src cut down to index's shape (the elements a scatter reads). */
static ember_tensor *src_as_index(const ember_tensor *src,
                                  const ember_tensor *index) {
  if (src->ndim == 0) return ember_broadcast_to(src, index->ndim, index->shape);
  ember_tensor *c = (ember_tensor *)src;
  ember_tensor_retain(c);
  for (int d = 0; c && d < index->ndim; d++) {
    ember_tensor *n = ember_narrow(c, d, 0, index->shape[d]);
    ember_tensor_release(c);
    c = n;
  }
  return c;
}

ember_tensor *ember_scatter(const ember_tensor *t, int dim,
                            const ember_tensor *index, const ember_tensor *src,
                            ember_scatter_reduce op);

/*
** PROD: PyTorch's rule (scatter_reduce_backward), which keeps the
** gradient right where zeros are multiplied in: t's gradient is g times
** the product of the other factors, computed with t's zeros made 1; a src
** element that is the only zero scattered to its place gets g times the
** product of the others there, the rest g * result / src.
*/
static int prod_backward(const ember_node *n, int dim, ember_tensor *g,
                         const ember_tensor *self, const ember_tensor *s,
                         const ember_tensor *res, ember_tensor **gself,
                         ember_tensor **gsrc) {
  const ember_tensor *index = n->saved[0];
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *zero = ember_temp(&T, ember_scalar_as(g, 0.0));
  ember_tensor *one = ember_temp(&T, zero ? ember_scalar_as(g, 1.0) : NULL);
  int rc = one ? 0 : -1;
  if (rc == 0 && n->needs[0]) {
    ember_tensor *sz = ember_temp(&T, ember_compare(EMBER_EQ, self, zero));
    ember_tensor *ms = ember_temp(&T, sz ? ember_masked_fill(self, sz, 1.0) : NULL);
    ember_tensor *msr = ember_temp(&T, ms ? ember_scatter(ms, dim, index, s, EMBER_SCATTER_PROD) : NULL);
    ember_tensor *gm = ember_temp(&T, msr ? ember_binary(EMBER_MUL, g, msr) : NULL);
    if (!gm || !(*gself = ember_binary(EMBER_DIV, gm, ms))) rc = -1;
  }
  if (rc == 0 && n->needs[1]) {
    ember_tensor *szero = ember_temp(&T, ember_compare(EMBER_EQ, s, zero));
    ember_tensor *zf = ember_temp(&T, szero ? ember_to_dtype(szero, g->dtype) : NULL);
    ember_tensor *zs = ember_temp(&T, zf ? ember_zeros_meta(g, &n->in[0]) : NULL);
    ember_tensor *nz = ember_temp(&T, zs ? ember_scatter(zs, dim, index, zf, EMBER_SCATTER_SUM) : NULL);
    ember_tensor *nzi = ember_temp(&T, nz ? ember_gather(nz, dim, index) : NULL);
    ember_tensor *is1 = ember_temp(&T, nzi ? ember_compare(EMBER_EQ, nzi, one) : NULL);
    ember_tensor *single = ember_temp(&T, is1 ? ember_where(szero, is1, szero) : NULL);
    ember_tensor *msrc = ember_temp(&T, single ? ember_masked_fill(s, single, 1.0) : NULL);
    ember_tensor *mres = ember_temp(&T, msrc ? ember_scatter(self, dim, index, msrc, EMBER_SCATTER_PROD) : NULL);
    ember_tensor *gmr = ember_temp(&T, mres ? ember_binary(EMBER_MUL, g, mres) : NULL);
    ember_tensor *a = ember_temp(&T, gmr ? ember_gather(gmr, dim, index) : NULL);
    ember_tensor *gr = ember_temp(&T, a ? ember_binary(EMBER_MUL, g, res) : NULL);
    ember_tensor *gri = ember_temp(&T, gr ? ember_gather(gr, dim, index) : NULL);
    ember_tensor *sd = ember_temp(&T, gri ? ember_masked_fill(s, szero, 1.0) : NULL);
    ember_tensor *bq = ember_temp(&T, sd ? ember_binary(EMBER_DIV, gri, sd) : NULL);
    if (!bq || !(*gsrc = ember_where(single, a, bq))) rc = -1;
  }
  ember_temps_release(&T);
  return rc;
}

/* AMAX/AMIN: the gradient of each place is split evenly among the
   elements equal to the result there, t's own included (PyTorch's rule). */
static int extreme_backward(const ember_node *n, int dim, ember_tensor *g,
                            const ember_tensor *self, const ember_tensor *s,
                            const ember_tensor *res, ember_tensor **gself,
                            ember_tensor **gsrc) {
  const ember_tensor *index = n->saved[0];
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *eb = ember_temp(&T, ember_compare(EMBER_EQ, self, res));
  ember_tensor *ef = ember_temp(&T, eb ? ember_to_dtype(eb, g->dtype) : NULL);
  ember_tensor *ri = ember_temp(&T, ef ? ember_gather(res, dim, index) : NULL);
  ember_tensor *sb = ember_temp(&T, ri ? ember_compare(EMBER_EQ, s, ri) : NULL);
  ember_tensor *sf = ember_temp(&T, sb ? ember_to_dtype(sb, g->dtype) : NULL);
  ember_tensor *cnt = ember_temp(&T, sf ? ember_scatter(ef, dim, index, sf, EMBER_SCATTER_SUM) : NULL);
  ember_tensor *gd = ember_temp(&T, cnt ? ember_binary(EMBER_DIV, g, cnt) : NULL);
  int rc = gd ? 0 : -1;
  if (rc == 0 && n->needs[0] && !(*gself = ember_binary(EMBER_MUL, ef, gd))) rc = -1;
  if (rc == 0 && n->needs[1]) {
    ember_tensor *gdi = ember_temp(&T, ember_gather(gd, dim, index));
    if (!gdi || !(*gsrc = ember_binary(EMBER_MUL, sf, gdi))) rc = -1;
  }
  ember_temps_release(&T);
  return rc;
}

/* ASSIGN: t's scattered places get nothing, src its places' gradient;
   SUM: both pass it; MEAN: both get it divided by the count (t's own
   value counted); PROD, AMAX, AMIN above.  gin[1] is then fitted to
   src's shape. */
static int scatter_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct scatter_saved *st = EMBER_NODE_STATE(n, struct scatter_saved);
  const ember_tensor *index = n->saved[0];
  int dim = st->dim;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gs = NULL;   /* src's gradient, of index's shape */
  int rc = 0;
  if (scatter_needs_values(st->op)) {
    const ember_tensor *self = n->saved[1];
    ember_tensor *s = ember_temp(&T, src_as_index(n->saved[2], index));
    ember_tensor *res = ember_temp(&T, s ? ember_scatter(self, dim, index, s, st->op) : NULL);
    rc = !res ? -1 : st->op == EMBER_SCATTER_PROD
                         ? prod_backward(n, dim, g, self, s, res, &gin[0], &gs)
                         : extreme_backward(n, dim, g, self, s, res, &gin[0], &gs);
  } else {
    ember_tensor *gm = g;
    if (st->op == EMBER_SCATTER_MEAN) {
      ember_tensor *o = ember_temp(&T, ember_ones_on(g->storage->device, g->ndim,
                                                     g->shape, g->dtype));
      ember_tensor *v = ember_temp(&T, o ? ember_scalar_as(g, 1.0) : NULL);
      ember_tensor *cnt = ember_temp(&T, v ? ember_scatter(o, dim, index, v,
                                                           EMBER_SCATTER_SUM) : NULL);
      gm = ember_temp(&T, cnt ? ember_binary(EMBER_DIV, g, cnt) : NULL);
    }
    if (!gm) rc = -1;
    if (rc == 0 && n->needs[0]) {
      if (st->op == EMBER_SCATTER_ASSIGN) {
        ember_tensor *z = ember_temp(&T, ember_scalar_as(g, 0.0));
        gin[0] = z ? ember_scatter(g, dim, index, z, EMBER_SCATTER_ASSIGN) : NULL;
      } else {
        ember_tensor_retain(gm);
        gin[0] = gm;
      }
      if (!gin[0]) rc = -1;
    }
    if (rc == 0 && n->ninputs > 1 && n->needs[1] && !(gs = ember_gather(gm, dim, index)))
      rc = -1;
  }
  if (rc == 0 && gs) {
    gin[1] = grad_for_src(gs, &n->in[1]);
    if (!gin[1]) rc = -1;
  }
  ember_tensor_release(gs);
  ember_temps_release(&T);
  return rc;
}

/* The node of a scatter over (t, src); self: t's value before the op. */
static ember_node *scatter_node(const ember_tensor *t, int dim,
                                const ember_tensor *index,
                                const ember_tensor *src,
                                const ember_tensor *self,
                                ember_scatter_reduce op) {
  ember_node *n = ember_ag_node2(op == EMBER_SCATTER_ASSIGN ? "ScatterBackward"
                                                            : "ScatterReduceBackward",
                                 scatter_backward, t, src);
  if (!n) return NULL;
  struct scatter_saved *st = EMBER_NODE_STATE(n, struct scatter_saved);
  st->dim = dim;
  st->op = op;
  int rc = ember_ag_save(n, index);
  if (rc == 0 && scatter_needs_values(op))
    rc = ember_ag_save(n, self) < 0 || ember_ag_save(n, src) < 0 ? -1 : 0;
  if (rc < 0) { ember_ag_node_release(n); return NULL; }
  return n;
}

ember_tensor *ember_scatter(const ember_tensor *t, int dim,
                            const ember_tensor *index, const ember_tensor *src,
                            ember_scatter_reduce op) {
  if (scatter_check("scatter", t, &dim, index, src, op) < 0) return NULL;
  int prev = ember_ag_pause();
  ember_tensor *out = ember_clone(t);
  if (out && scatter_write(out, dim, index, src, op) < 0) {
    ember_tensor_release(out);
    out = NULL;
  }
  ember_ag_resume(prev);
  if (!out || !ember_ag_active2(t, src) || !ember_dtype_is_float(out->dtype))
    return out;
  return ember_ag_finish(scatter_node(t, dim, index, src, t, op), out, 0);
}

/* In place: the node is made before t changes (its edge is t's old
   history; PROD/AMAX/AMIN keep a copy of t's old value). */
int ember_scatter_(ember_tensor *t, int dim, const ember_tensor *index,
                   const ember_tensor *src, ember_scatter_reduce op) {
  int rec = ember_ag_active2(t, src) && ember_dtype_is_float(t->dtype);
  if (rec && (ember_ag_check_inplace("scatter_", t) < 0 ||
              ember_ag_check_target("scatter_", t) < 0))
    return -1;
  if (scatter_check("scatter_", t, &dim, index, src, op) < 0) return -1;
  for (int i = 0; i < t->ndim; i++)
    if (t->strides[i] == 0 && t->shape[i] > 1)
      return ember_set_error("scatter_: cannot write in place to an expanded "
                             "tensor (several elements share memory); clone "
                             "it first");
  ember_node *n = NULL;
  int prev = ember_ag_pause();
  if (rec) {
    ember_tensor *old = scatter_needs_values(op) ? ember_clone(t) : NULL;
    if (!scatter_needs_values(op) || old)
      n = scatter_node(t, dim, index, src, old, op);
    ember_tensor_release(old);
  }
  int rc = rec && !n ? -1 : scatter_write(t, dim, index, src, op);
  ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  ember_bump_version(t);
  return n ? ember_ag_rebase(t, n, 1) : 0;
}

/* }====================================================================== */
