/*
** ops_linalg.c -- matmul, cat/stack, index_select and gather.
*/
#include <stdlib.h>
#include <string.h>

#include "grad_ops.h"

/* {======================================================================
** matmul
** ======================================================================= */

/* Can BLAS read this [B,R,C] operand as it is? */
static int blas_ready(const ember_tensor *t) {
  int64_t R = t->shape[1], C = t->shape[2], sr = t->strides[1], sc = t->strides[2];
  return (sc == 1 && sr >= (C > 1 ? C : 1)) || (sr == 1 && sc >= (R > 1 ? R : 1));
}

/* t as a [B,R,C] operand the kernel accepts (copying only if it must) */
static ember_tensor *as_batch(const ember_tensor *t, int64_t B) {
  int64_t shape[3] = {B, t->shape[t->ndim - 2], t->shape[t->ndim - 1]};
  ember_tensor *r = ember_reshape(t, 3, shape);
  if (r && !blas_ready(r)) {
    ember_tensor *c = ember_clone(r);
    ember_tensor_release(r);
    r = c;
  }
  return r;
}

/*
** torch.matmul: 1-D operands gain a dim (a leading one for a, a trailing
** one for b) that the result loses again; batch dims broadcast.  A batched
** a times a plain matrix b becomes one big GEMM when a's rows are laid out
** evenly, which is the common case of a linear layer.
*/
ember_tensor *ember_matmul(const ember_tensor *a, const ember_tensor *b) {
  if (ember_ag_active2(a, b)) return ember_ag_matmul(a, b);
  char b1[128], b2[128];
  if (a->ndim == 0 || b->ndim == 0) {
    ember_set_error("matmul: both arguments need at least 1 dimension, got "
                    "%d-d and %d-d", a->ndim, b->ndim);
    return NULL;
  }
  if (a->storage->device != b->storage->device) {
    ember_set_error("matmul: expected tensors on the same device, got %s and %s",
                    ember_device_name(a->storage->device),
                    ember_device_name(b->storage->device));
    return NULL;
  }
  ember_dtype dt = ember_promote(a->dtype, b->dtype);
  if (dt == EMBER_BOOL) {
    ember_set_error("matmul: not supported for bool tensors");
    return NULL;
  }
  ember_tensor *A = a->ndim == 1 ? ember_unsqueeze(a, 0) : ember_cast(a, a->dtype);
  ember_tensor *Bt = b->ndim == 1 ? ember_unsqueeze(b, 1) : ember_cast(b, b->dtype);
  ember_tensor *ca = NULL, *cb = NULL, *ea = NULL, *eb = NULL, *ba = NULL,
               *bb = NULL, *out = NULL, *res = NULL;
  if (!A || !Bt) goto done;
  int64_t M = A->shape[A->ndim - 2], K = A->shape[A->ndim - 1];
  int64_t K2 = Bt->shape[Bt->ndim - 2], N = Bt->shape[Bt->ndim - 1];
  if (K != K2) {
    ember_set_error("matmul: shapes %s and %s do not align (%lld vs %lld)",
                    ember_shape_str(b1, sizeof b1, a->ndim, a->shape),
                    ember_shape_str(b2, sizeof b2, b->ndim, b->shape),
                    (long long)K, (long long)K2);
    goto done;
  }
  if (!(ca = ember_cast(A, dt)) || !(cb = ember_cast(Bt, dt))) goto done;
  /* batch shape */
  int nb;
  int64_t batch[EMBER_MAX_DIMS], B = 1;
  if (ember_broadcast_shapes("matmul", ca->ndim - 2, ca->shape, cb->ndim - 2,
                             cb->shape, &nb, batch) < 0)
    goto done;
  for (int i = 0; i < nb; i++) B *= batch[i];
  int64_t outshape[EMBER_MAX_DIMS];
  memcpy(outshape, batch, (size_t)nb * sizeof *batch);
  outshape[nb] = M;
  outshape[nb + 1] = N;
  if (nb + 2 > EMBER_MAX_DIMS) { ember_set_error("matmul: too many dimensions"); goto done; }
  if (cb->ndim == 2 && nb > 0) {
    /* [batch..., M, K] x [K, N]: one GEMM of (B*M) x K by K x N */
    int64_t rows[2] = {B * M, K};
    ember_tensor *flat = ember_reshape(ca, 2, rows);
    int64_t s3[3] = {1, B * M, K};
    ba = flat ? ember_reshape(flat, 3, s3) : NULL;
    ember_tensor_release(flat);
    if (ba && !blas_ready(ba)) { ember_tensor *c = ember_clone(ba); ember_tensor_release(ba); ba = c; }
    bb = ba ? as_batch(cb, 1) : NULL;
  } else {
    int64_t sa[EMBER_MAX_DIMS], sb[EMBER_MAX_DIMS];
    memcpy(sa, batch, (size_t)nb * sizeof *batch);
    memcpy(sb, batch, (size_t)nb * sizeof *batch);
    sa[nb] = M; sa[nb + 1] = K;
    sb[nb] = K; sb[nb + 1] = N;
    if (!(ea = ember_expand(ca, nb + 2, sa)) || !(eb = ember_expand(cb, nb + 2, sb)))
      goto done;
    ba = as_batch(ea, B);
    bb = ba ? as_batch(eb, B) : NULL;
  }
  if (!bb) goto done;
  if (ember_check_shape("matmul", nb + 2, outshape) < 0) goto done;
  {
    int64_t s3[3] = {ba->shape[0], ba->shape[1], N};
    out = ember_empty_on(a->storage->device, 3, s3, dt);
  }
  if (!out || ember_backend_of(out)->matmul(out, ba, bb) < 0) goto done;
  {
    /* drop the dims that 1-D operands gained */
    int64_t fin[EMBER_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < nb; i++) fin[k++] = batch[i];
    if (a->ndim > 1) fin[k++] = M;
    if (b->ndim > 1) fin[k++] = N;
    res = ember_view(out, k, fin);
  }
done:
  ember_tensor_release(out);
  ember_tensor_release(bb);
  ember_tensor_release(ba);
  ember_tensor_release(eb);
  ember_tensor_release(ea);
  ember_tensor_release(cb);
  ember_tensor_release(ca);
  ember_tensor_release(Bt);
  ember_tensor_release(A);
  return res;
}

/* }====================================================================== */

/* {======================================================================
** cat and stack
** ======================================================================= */

ember_tensor *ember_cat(int n, ember_tensor *const *ts, int dim) {
  if (n < 1) { ember_set_error("cat: expected a non-empty list of tensors"); return NULL; }
  if (ember_ag_active_n(n, ts)) return ember_ag_cat(n, ts, dim);
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
  return out;
}

ember_tensor *ember_stack(int n, ember_tensor *const *ts, int dim) {
  if (n < 1) { ember_set_error("stack: expected a non-empty list of tensors"); return NULL; }
  if (n > 1 << 20) { ember_set_error("stack: too many tensors"); return NULL; }
  if (ember_ag_active_n(n, ts)) return ember_ag_stack(n, ts, dim);
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
  int k = 0;
  ember_tensor *out = NULL;
  for (; k < n; k++)
    if (!(us[k] = ember_unsqueeze(ts[k], dim))) break;
  if (k == n) out = ember_cat(n, us, dim);
  for (int i = 0; i < k; i++) ember_tensor_release(us[i]);
  free(us);
  return out;
}

/* }====================================================================== */

/* {======================================================================
** index_select and gather
** ======================================================================= */

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
  if (ember_ag_active1(t)) return ember_ag_index_select(t, dim, index);
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
  return out;
}

ember_tensor *ember_gather(const ember_tensor *t, int dim,
                           const ember_tensor *index) {
  if (check_index("gather", t, index) < 0) return NULL;
  if (ember_ag_active1(t)) return ember_ag_gather(t, dim, index);
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
  return out;
}

/* }====================================================================== */

/* {======================================================================
** index_add_ and scatter_add_: the adjoints of index_select and gather
** ======================================================================= */

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
  for (int i = 0; i < t->ndim; i++)
    if (t->strides[i] == 0 && t->shape[i] > 1)
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
  int ok = src->ndim == t->ndim && src->shape[dim] == ember_numel(index);
  for (int d = 0; ok && d < t->ndim; d++)
    if (d != dim && src->shape[d] != t->shape[d]) ok = 0;
  if (!ok) {
    char b1[128], b2[128];
    return ember_set_error("index_add_: source of shape %s does not match the "
                           "tensor's shape %s with %lld indices in dimension %d",
                           ember_shape_str(b1, sizeof b1, src->ndim, src->shape),
                           ember_shape_str(b2, sizeof b2, t->ndim, t->shape),
                           (long long)ember_numel(index), dim + 1);
  }
  if (ember_backend_of(t)->index_add(t, dim, index, src) < 0) return -1;
  ember_bump_version(t);
  return 0;
}

int ember_scatter_add_(ember_tensor *t, int dim, const ember_tensor *index,
                       const ember_tensor *src) {
  if (check_index("scatter_add_", t, index) < 0 ||
      check_add_target("scatter_add_", t, src) < 0)
    return -1;
  if ((dim = ember_wrap_dim("scatter_add_", dim, t->ndim)) < 0) return -1;
  int ok = index->ndim == t->ndim && src->ndim == t->ndim;
  for (int d = 0; ok && d < t->ndim; d++)
    if (index->shape[d] > src->shape[d] || (d != dim && index->shape[d] > t->shape[d]))
      ok = 0;
  if (!ok) {
    char b1[128], b2[128], b3[128];
    return ember_set_error("scatter_add_: index of shape %s does not fit the "
                           "source %s and the tensor %s",
                           ember_shape_str(b1, sizeof b1, index->ndim, index->shape),
                           ember_shape_str(b2, sizeof b2, src->ndim, src->shape),
                           ember_shape_str(b3, sizeof b3, t->ndim, t->shape));
  }
  if (ember_backend_of(t)->scatter_add(t, dim, index, src) < 0) return -1;
  ember_bump_version(t);
  return 0;
}

/* }====================================================================== */
