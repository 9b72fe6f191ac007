/*
** mask.c -- selection by mask and by flat position: nonzero,
** masked_select, masked_scatter (and in place), take; front door to
** backward.
**
** Contract:
**   - masks are bool; masked_select broadcasts mask and t together,
**     masked_scatter_ broadcasts mask to t (t does not grow), the out of
**     place masked_scatter broadcasts both as PyTorch does;
**   - everything is built on one primitive, the flat positions where a
**     tensor is nonzero (`nonzero` of it read as 1-D): masked_select is a
**     take of those positions, masked_scatter a scatter to them of src's
**     first elements.  The positions are valid by construction, so only
**     take (user indices) can meet a bad index;
**   - nonzero is a running count (the scan slot) and the `nonzero` slot,
**     which places each nonzero element's coordinates at its row.  The
**     result's size is the count's last element, read back to the host:
**     on a device that is the one wait these ops make (every op here that
**     selects by mask has a data-dependent size);
**   - take checks its indices (ember_check_index, the message naming
**     take) and then gathers from t read flat;
**   - recording: masked_select's gradient is masked_scatter of g into
**     zeros; masked_scatter's is g with the written places zeroed for t
**     and g's selected elements (zeros after them) for src; take's is a
**     scatter_add of g into zeros.
*/
#include <stdio.h>
#include <string.h>

#include "ops.h"

static int check_mask(const char *fn, const ember_tensor *t,
                      const ember_tensor *mask) {
  if (mask->dtype != EMBER_BOOL)
    return ember_set_error("%s: expected a bool mask, got %s", fn,
                           ember_dtype_name(mask->dtype));
  if (mask->storage->device != t->storage->device)
    return ember_set_error("%s: mask is on %s, tensor on %s", fn,
                           ember_device_name(mask->storage->device),
                           ember_device_name(t->storage->device));
  return 0;
}

/* t as a contiguous 1-D tensor (a view when t allows it). */
static ember_tensor *flat(const ember_tensor *t) {
  int64_t n = ember_numel(t);
  return ember_reshape(t, 1, &n);
}

/* {======================================================================
** nonzero
** ======================================================================= */

/* Not recorded (an int64 result). */
ember_tensor *ember_nonzero(const ember_tensor *t) {
  const ember_backend_i *b = ember_backend_of(t);
  if (!b->nonzero || !b->scan) {
    ember_set_error("nonzero: not supported on %s",
                    ember_device_name(t->storage->device));
    return NULL;
  }
  int64_t total = ember_numel(t), count = 0, last = total - 1;
  ember_device dev = t->storage->device;
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *zero = ember_temp(&T, ember_zeros_on(dev, 0, NULL, t->dtype));
  ember_tensor *nz = ember_temp(&T, zero ? ember_compare(EMBER_NE, t, zero) : NULL);
  ember_tensor *f = ember_temp(&T, nz ? flat(nz) : NULL);
  /* the running count, int64 (none for an empty t) */
  ember_tensor *cs = f && total ? ember_temp(&T, ember_cumsum(f, 0, EMBER_INT64)) : NULL;
  int rc = f && (cs || total == 0) ? 0 : -1;
  if (rc == 0 && total > 0) rc = ember_get_int(cs, &last, &count);  /* the wait */
  int64_t shape[2] = {count, t->ndim};
  ember_tensor *out = rc == 0 ? ember_empty_on(dev, 2, shape, EMBER_INT64) : NULL;
  if (out && count > 0 && t->ndim > 0)
    out = ember_kernel_result(out, b->nonzero(out, cs, t->ndim, t->shape));
  ember_temps_release(&T);
  ember_ag_resume(prev);
  return out;
}

/* The 1-based flat positions (1-D int64) where a bool tensor holds. */
static ember_tensor *true_positions(const ember_tensor *m) {
  ember_tensor *f = flat(m);
  ember_tensor *nz = f ? ember_nonzero(f) : NULL;
  int64_t n = nz ? nz->shape[0] : 0;
  ember_tensor *pos = nz ? ember_view(nz, 1, &n) : NULL;
  ember_tensor_release(nz);
  ember_tensor_release(f);
  return pos;
}

/* }====================================================================== */

/* {======================================================================
** take
** ======================================================================= */

/* t read flat at 1-based positions pos (any shape, checked), shaped like
   pos; not recorded. */
static ember_tensor *take_plain(const ember_tensor *t, const ember_tensor *pos) {
  char suffix[96];
  snprintf(suffix, sizeof suffix, " is out of range for a tensor of %lld "
           "elements", (long long)ember_numel(t));
  if (ember_check_index(pos, 1, ember_numel(t), 0, 0, "take: index ", suffix) < 0)
    return NULL;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *ft = ember_temp(&T, flat(t));
  ember_tensor *fp = ember_temp(&T, ft ? flat(pos) : NULL);
  ember_tensor *g = ember_temp(&T, fp ? ember_gather(ft, 0, fp) : NULL);
  ember_tensor *out = g ? ember_reshape(g, pos->ndim, pos->shape) : NULL;
  ember_temps_release(&T);
  return out;
}

/* zeros of t's (numel) with g added at the flat positions, t's shape */
static int take_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_in_meta *m = &n->in[0];
  int64_t numel = 1;
  for (int d = 0; d < m->ndim; d++) numel *= m->shape[d];
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *z = ember_temp(&T, ember_zeros_on(g->storage->device, 1, &numel, g->dtype));
  ember_tensor *fp = ember_temp(&T, z ? flat(n->saved[0]) : NULL);
  ember_tensor *fg = ember_temp(&T, fp ? flat(g) : NULL);
  int rc = fg ? ember_scatter_add_(z, 0, fp, fg) : -1;
  gin[0] = rc == 0 ? ember_reshape(z, m->ndim, m->shape) : NULL;
  ember_temps_release(&T);
  return gin[0] ? 0 : -1;
}

ember_tensor *ember_take(const ember_tensor *t, const ember_tensor *index) {
  if (index->dtype != EMBER_INT64 && index->dtype != EMBER_INT32) {
    ember_set_error("take: expected an int64 or int32 index tensor, got %s",
                    ember_dtype_name(index->dtype));
    return NULL;
  }
  if (index->storage->device != t->storage->device) {
    ember_set_error("take: index is on %s, tensor on %s",
                    ember_device_name(index->storage->device),
                    ember_device_name(t->storage->device));
    return NULL;
  }
  int prev = ember_ag_pause();
  ember_tensor *out = take_plain(t, index);
  ember_ag_resume(prev);
  if (!out || !ember_ag_active1(t) || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *n = ember_ag_node2("TakeBackward", take_backward, t, NULL);
  if (n && ember_ag_save(n, index) < 0) { ember_ag_node_release(n); n = NULL; }
  return ember_ag_finish(n, out, 0);
}

/* }====================================================================== */

/* {======================================================================
** masked_select and masked_scatter
** ======================================================================= */

/* t's elements where mask holds, both broadcast to shape; not recorded */
static ember_tensor *select_plain(const ember_tensor *t, const ember_tensor *mask,
                                  int n, const int64_t *shape) {
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *em = ember_temp(&T, ember_broadcast_to(mask, n, shape));
  ember_tensor *et = ember_temp(&T, em ? ember_broadcast_to(t, n, shape) : NULL);
  ember_tensor *pos = ember_temp(&T, et ? true_positions(em) : NULL);
  ember_tensor *out = pos ? take_plain(et, pos) : NULL;
  ember_temps_release(&T);
  return out;
}

/* masked_scatter of g into zeros of the broadcast shape (the engine sums
   it down to t's) */
static int select_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_tensor *mask = n->saved[0];
  int nd;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes("masked_select", n->in[0].ndim, n->in[0].shape,
                             mask->ndim, mask->shape, &nd, shape) < 0)
    return -1;
  ember_tensor *z = ember_zeros_on(g->storage->device, nd, shape, g->dtype);
  if (z && ember_masked_scatter_(z, mask, g) < 0) {
    ember_tensor_release(z);
    z = NULL;
  }
  gin[0] = z;
  return z ? 0 : -1;
}

ember_tensor *ember_masked_select(const ember_tensor *t,
                                  const ember_tensor *mask) {
  if (check_mask("masked_select", t, mask) < 0) return NULL;
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes("masked_select", t->ndim, t->shape, mask->ndim,
                             mask->shape, &n, shape) < 0)
    return NULL;
  int prev = ember_ag_pause();
  ember_tensor *out = select_plain(t, mask, n, shape);
  ember_ag_resume(prev);
  if (!out || !ember_ag_active1(t) || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *node = ember_ag_node2("MaskedSelectBackward", select_backward, t, NULL);
  if (node && ember_ag_save(node, mask) < 0) { ember_ag_node_release(node); node = NULL; }
  return ember_ag_finish(node, out, 0);
}

/* The checks of masked_scatter_ (in place: mask broadcasts to t exactly,
   t not expanded); src's size is checked once the positions are known. */
static int scatter_check(const char *fn, const ember_tensor *t,
                         const ember_tensor *mask, const ember_tensor *src) {
  if (check_mask(fn, t, mask) < 0) return -1;
  if (src->storage->device != t->storage->device)
    return ember_set_error("%s: source is on %s, tensor on %s", fn,
                           ember_device_name(src->storage->device),
                           ember_device_name(t->storage->device));
  if (src->dtype != t->dtype)
    return ember_set_error("%s: source dtype %s differs from the tensor's %s",
                           fn, ember_dtype_name(src->dtype),
                           ember_dtype_name(t->dtype));
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes(fn, t->ndim, t->shape, mask->ndim, mask->shape,
                             &n, shape) < 0)
    return -1;
  if (n != t->ndim || memcmp(shape, t->shape, (size_t)n * sizeof *shape)) {
    char b1[128], b2[128];
    return ember_set_error("%s: mask of shape %s does not broadcast to the "
                           "tensor's shape %s", fn,
                           ember_shape_str(b1, sizeof b1, mask->ndim, mask->shape),
                           ember_shape_str(b2, sizeof b2, t->ndim, t->shape));
  }
  for (int i = 0; i < t->ndim; i++)
    if (t->strides[i] == 0 && t->shape[i] > 1)
      return ember_set_error("%s: cannot write in place to an expanded tensor "
                             "(several elements share memory); clone it first",
                             fn);
  return 0;
}

/* t[mask] = src's first elements, checked (src large enough) before t is
   written; not recorded.  t is written through a contiguous copy when it
   is not contiguous itself. */
static int scatter_plain(const char *fn, ember_tensor *t,
                         const ember_tensor *mask, const ember_tensor *src) {
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *em = ember_temp(&T, ember_broadcast_to(mask, t->ndim, t->shape));
  ember_tensor *pos = ember_temp(&T, em ? true_positions(em) : NULL);
  if (!pos) { ember_temps_release(&T); return -1; }
  int64_t n = pos->shape[0];
  if (ember_numel(src) < n) {
    ember_temps_release(&T);
    return ember_set_error("%s: source has %lld elements, the mask selects "
                           "%lld", fn, (long long)ember_numel(src), (long long)n);
  }
  int rc = 0;
  if (n > 0) {
    ember_tensor *fs = ember_temp(&T, flat(src));
    ember_tensor *vals = ember_temp(&T, fs ? ember_narrow(fs, 0, 0, n) : NULL);
    ember_tensor *tc = ember_temp(&T, vals ? ember_contiguous(t) : NULL);
    ember_tensor *ft = ember_temp(&T, tc ? flat(tc) : NULL);
    const ember_backend_i *b = ember_backend_of(t);
    rc = !ft ? -1 : !b->scatter ? ember_set_error("%s: not supported on %s", fn,
                                                  ember_device_name(t->storage->device))
                                : b->scatter(EMBER_SCATTER_ASSIGN, ft, 0, pos, vals);
    if (rc == 0 && tc != t) rc = b->copy(t, tc);
  }
  ember_temps_release(&T);
  return rc;
}

/* t: g where the mask does not hold; src: g's selected elements, then
   zeros up to src's size */
static int mscatter_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_tensor *mask = n->saved[0];
  int rc = 0;
  if (n->needs[0] && !(gin[0] = ember_masked_fill(g, mask, 0.0))) rc = -1;
  if (rc == 0 && n->needs[1]) {
    const ember_in_meta *m = &n->in[1];
    ember_tensor *sel = ember_masked_select(g, mask);
    ember_tensor *z = sel ? ember_zeros_meta(g, m) : NULL;
    ember_tensor *fz = z ? flat(z) : NULL;
    ember_tensor *head = fz ? ember_narrow(fz, 0, 0, sel->shape[0]) : NULL;
    if (!head || ember_copy_(head, sel) < 0) rc = -1;
    ember_tensor_release(head);
    /* fz is a view of z (zeros made contiguous) */
    ember_tensor_release(fz);
    ember_tensor_release(sel);
    if (rc == 0) gin[1] = z;
    else ember_tensor_release(z);
  }
  return rc;
}

static ember_node *mscatter_node(const ember_tensor *t, const ember_tensor *mask,
                                 const ember_tensor *src) {
  ember_node *n = ember_ag_node2("MaskedScatterBackward", mscatter_backward, t, src);
  if (n && ember_ag_save(n, mask) < 0) { ember_ag_node_release(n); n = NULL; }
  return n;
}

int ember_masked_scatter_(ember_tensor *t, const ember_tensor *mask,
                          const ember_tensor *src) {
  int rec = ember_ag_active2(t, src) && ember_dtype_is_float(t->dtype);
  if (rec && (ember_ag_check_inplace("masked_scatter_", t) < 0 ||
              ember_ag_check_target("masked_scatter_", t) < 0))
    return -1;
  if (scatter_check("masked_scatter_", t, mask, src) < 0) return -1;
  ember_node *n = rec ? mscatter_node(t, mask, src) : NULL;
  if (rec && !n) return -1;
  int prev = ember_ag_pause();
  int rc = scatter_plain("masked_scatter_", t, mask, src);
  ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  ember_bump_version(t);
  return n ? ember_ag_rebase(t, n, 1) : 0;
}

/* Out of place: t and mask broadcast together first (PyTorch's rule). */
ember_tensor *ember_masked_scatter(const ember_tensor *t,
                                   const ember_tensor *mask,
                                   const ember_tensor *src) {
  if (check_mask("masked_scatter", t, mask) < 0) return NULL;
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes("masked_scatter", t->ndim, t->shape, mask->ndim,
                             mask->shape, &n, shape) < 0)
    return NULL;
  int prev = ember_ag_pause();
  ember_tensor *et = ember_broadcast_to(t, n, shape);
  ember_tensor *out = et ? ember_clone(et) : NULL;
  ember_tensor_release(et);
  if (out && (scatter_check("masked_scatter", out, mask, src) < 0 ||
              scatter_plain("masked_scatter", out, mask, src) < 0)) {
    ember_tensor_release(out);
    out = NULL;
  }
  ember_ag_resume(prev);
  if (!out || !ember_ag_active2(t, src) || !ember_dtype_is_float(out->dtype))
    return out;
  return ember_ag_finish(mscatter_node(t, mask, src), out, 0);
}

/* }====================================================================== */
