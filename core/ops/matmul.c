/*
** matmul.c -- the matrix product, front door to backward.
**
** ember_matmul has torch.matmul's semantics: 1-D operands gain a dim (a
** leading one for a, a trailing one for b) that the result loses again;
** batch dims broadcast.  The kernel (backend slot `matmul`, core/cpu/
** matmul.c and core/cuda/) multiplies [B,M,K] by [B,K,N] stacks whose
** matrices BLAS can read as they are (row- or column-major).
**
** The backward is ga = g b^T, gb = a^T g over the 2-D forms; the engine
** sums batch broadcasting away.  A batched a times a matrix b (a Linear
** on (B, T, C)) folds the batch into rows both ways: the forward and ga
** are one (B*T, K) GEMM each, gb one (K, B*T) x (B*T, N) GEMM.
**
** bfloat16 and float16 products sum in float32 and round once to the
** result's dtype (PyTorch's semantics); ember_matmul_f32, internal to the
** core (ops.h), keeps that float32 sum as the result, for mixed precision.
*/
#include <string.h>

#include "ops.h"

/* {======================================================================
** Forward
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
** The product without recording (the caller pauses recording: the
** reshapes and casts below are steps of one op, not nodes of the graph).
** A batched a times a plain matrix b becomes one big GEMM when a's rows
** are laid out evenly, which is the common case of a linear layer.
*/
static ember_tensor *matmul_forward(const ember_tensor *a, const ember_tensor *b,
                                    int out_f32) {
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
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *res = NULL;
  ember_tensor *A = ember_temp(&T, a->ndim == 1 ? ember_unsqueeze(a, 0)
                                                : ember_cast(a, a->dtype));
  ember_tensor *Bt = ember_temp(&T, b->ndim == 1 ? ember_unsqueeze(b, 1)
                                                 : ember_cast(b, b->dtype));
  ember_tensor *ca, *cb, *ba, *bb, *out;
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
  if (!(ca = ember_temp(&T, ember_cast(A, dt))) ||
      !(cb = ember_temp(&T, ember_cast(Bt, dt))))
    goto done;
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
    int64_t rows[2] = {B * M, K}, s3[3] = {1, B * M, K};
    ember_tensor *flat = ember_temp(&T, ember_reshape(ca, 2, rows));
    ba = flat ? ember_temp(&T, ember_reshape(flat, 3, s3)) : NULL;
    if (ba && !blas_ready(ba)) ba = ember_temp(&T, ember_clone(ba));
    bb = ba ? ember_temp(&T, as_batch(cb, 1)) : NULL;
  } else {
    int64_t sa[EMBER_MAX_DIMS], sb[EMBER_MAX_DIMS];
    memcpy(sa, batch, (size_t)nb * sizeof *batch);
    memcpy(sb, batch, (size_t)nb * sizeof *batch);
    sa[nb] = M; sa[nb + 1] = K;
    sb[nb] = K; sb[nb + 1] = N;
    ember_tensor *ea = ember_temp(&T, ember_expand(ca, nb + 2, sa));
    ember_tensor *eb = ea ? ember_temp(&T, ember_expand(cb, nb + 2, sb)) : NULL;
    ba = eb ? ember_temp(&T, as_batch(ea, B)) : NULL;
    bb = ba ? ember_temp(&T, as_batch(eb, B)) : NULL;
  }
  if (!bb) goto done;
  if (ember_check_shape("matmul", nb + 2, outshape) < 0) goto done;
  {
    int64_t s3[3] = {ba->shape[0], ba->shape[1], N};
    /* out_f32: a bfloat16/float16 product kept in float32 (ember_matmul_f32) */
    ember_dtype odt = out_f32 && ember_dtype_is_half(dt) ? EMBER_FLOAT32 : dt;
    out = ember_temp(&T, ember_empty_on(a->storage->device, 3, s3, odt));
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
  ember_temps_release(&T);
  return res;
}

/* }====================================================================== */

/* {======================================================================
** Backward
** ======================================================================= */

/* a as a matrix stack: 1-D a is [1, K], 1-D b is [K, 1] */
static ember_tensor *as_2d(const ember_tensor *t, int is_b) {
  if (t->ndim != 1) { ember_tensor_retain((ember_tensor *)t); return (ember_tensor *)t; }
  return ember_unsqueeze(t, is_b ? 1 : 0);
}

static ember_tensor *mT(const ember_tensor *t) {
  return ember_transpose(t, t->ndim - 2, t->ndim - 1);
}

/* saved: [0] a, [1] b.  ga = g b^T, gb = a^T g, over the 2-D forms; the
   engine sums batch broadcasting away and the reshape restores 1-D
   operands. */
static ember_tensor *matmul_op(const ember_tensor *a, const ember_tensor *b,
                               int out_f32);

/* A product of the backward: mixed, a half product rounded once to the
   operands' dtype, which is the gradient's (as PyTorch's, whose product
   and so whose gradients are half), else ember_matmul.  Rounded here
   rather than by the engine (which casts each gradient to its input's
   dtype): one pass into a half tensor of the product's layout, where the
   engine would copy a transposed float32 gradient through strides. */
static ember_tensor *backward_product(const ember_tensor *x, const ember_tensor *y,
                                      int mixed) {
  return mixed ? matmul_op(x, y, 0) : ember_matmul(x, y);
}

static int matmul_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_tensor *a = n->saved[0], *b = n->saved[1];
  ember_temps T;
  ember_temps_init(&T);
  int rc = -1;
  /* a float32 gradient of a product of two bfloat16 (float16) operands,
     which autocast makes (ember_matmul_f32): the backward's products run
     in the operands' dtype too, g rounded to it as PyTorch's autocast
     does (its product's result, and so its gradient, is half), each
     product's float32 sums rounded once to that dtype (backward_product) */
  int mixed = ember_dtype_is_half(a->dtype) && b->dtype == a->dtype &&
              g->dtype == EMBER_FLOAT32;
  if (mixed && !(g = ember_temp(&T, ember_to_dtype(g, a->dtype)))) {
    ember_temps_release(&T);
    return -1;
  }
  ember_tensor *A = ember_temp(&T, as_2d(a, 0));
  ember_tensor *B = A ? ember_temp(&T, as_2d(b, 1)) : NULL;
  ember_tensor *G = NULL;
  if (B) {
    /* g reshaped to the 2-D forms' result: batch, M (or 1), N (or 1) */
    int64_t full[EMBER_MAX_DIMS];
    int nb = 0, batch = g->ndim - (a->ndim > 1) - (b->ndim > 1);
    for (int i = 0; i < batch; i++) full[nb++] = g->shape[i];
    full[nb++] = a->ndim > 1 ? a->shape[a->ndim - 2] : 1;
    full[nb++] = b->ndim > 1 ? b->shape[b->ndim - 1] : 1;
    G = ember_temp(&T, ember_reshape(g, nb, full));
    rc = G ? 0 : -1;
  }
  for (int side = 0; side < 2 && rc == 0; side++) {
    if (!n->needs[side]) continue;
    const ember_tensor *op = side == 0 ? A : B;
    const ember_tensor *A2 = A, *G2 = G;
    ember_tensor *r;
    if (side == 1 && B->ndim == 2 && A->ndim > 2) {
      /* a batched a times a matrix b (a Linear on (B, T, C)): gb sums
         a_i^T g_i over the batch, which is one GEMM of the stacked rows,
         (B*T, K)^T x (B*T, N), instead of B small products and a sum.
         Reshape copies only a or g that cannot be viewed as rows. */
      int64_t ra[2] = {1, A->shape[A->ndim - 1]}, rg[2] = {1, G->shape[G->ndim - 1]};
      for (int i = 0; i < A->ndim - 1; i++) ra[0] *= A->shape[i];
      rg[0] = ra[0];
      A2 = ember_temp(&T, ember_reshape(A, 2, ra));
      G2 = A2 ? ember_temp(&T, ember_reshape(G, 2, rg)) : NULL;
      if (!G2) { rc = -1; break; }
    }
    if (op->ndim == 2 && G2->ndim == 2 && op->strides[0] == 1 &&
        op->shape[0] > 1 && op->shape[1] > 1) {
      /* a transposed view (a Linear's w:t()): its gradient in the same
         layout, so that the transpose's backward hands the leaf a
         contiguous tensor (no strided copy into .grad) */
      ember_tensor *GT = ember_temp(&T, mT(G2));
      ember_tensor *rT = GT ? ember_temp(&T, side == 0 ? backward_product(B, GT, mixed)
                                                       : backward_product(GT, A2, mixed))
                            : NULL;
      r = rT ? ember_temp(&T, mT(rT)) : NULL;
    } else {
      ember_tensor *oT = ember_temp(&T, side == 0 ? mT(B) : mT(A2));
      r = oT ? ember_temp(&T, side == 0 ? backward_product(G2, oT, mixed)
                                        : backward_product(oT, G2, mixed))
             : NULL;
    }
    const ember_tensor *orig = side == 0 ? a : b;
    const ember_tensor *two = side == 0 ? A : B;
    ember_tensor *s = r ? ember_temp(&T, ember_ag_sum_to(r, two->ndim, two->shape))
                        : NULL;
    gin[side] = s ? ember_reshape(s, orig->ndim, orig->shape) : NULL;
    if (!gin[side]) rc = -1;
  }
  ember_temps_release(&T);
  return rc;
}

/* }====================================================================== */

/* {======================================================================
** The public function: check and compute, then record
** ======================================================================= */

/* The product, recorded; out_f32 as in matmul_forward.  The backward's
   products take g's dtype with the saved operands' (float32 g and
   bfloat16 operands: float32 products), and the engine casts each
   gradient to its input's dtype. */
static ember_tensor *matmul_op(const ember_tensor *a, const ember_tensor *b,
                               int out_f32) {
  if (!ember_ag_active2(a, b)) return matmul_forward(a, b, out_f32);
  int prev = ember_ag_pause();
  ember_tensor *out = matmul_forward(a, b, out_f32);
  ember_ag_resume(prev);
  if (!out || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *n = ember_ag_node2("MmBackward", matmul_backward, a, b);
  if (n && (ember_ag_save(n, a) < 0 || ember_ag_save(n, b) < 0)) {
    ember_ag_node_release(n);
    n = NULL;
  }
  return ember_ag_finish(n, out, 0);
}

ember_tensor *ember_matmul(const ember_tensor *a, const ember_tensor *b) {
  const ember_tensor *in[2] = {a, b};
  if (ember_autocast_wants(2, in)) {
    /* autocast: the operands in its dtype, the float32 sums kept */
    ember_tensor *h[2];
    if (ember_autocast_operands(2, in, h) < 0) return NULL;
    ember_tensor *r = matmul_op(h[0], h[1], 1);
    ember_tensor_release(h[0]);
    ember_tensor_release(h[1]);
    return r;
  }
  return matmul_op(a, b, 0);
}

ember_tensor *ember_matmul_f32(const ember_tensor *a, const ember_tensor *b) {
  return matmul_op(a, b, 1);
}

/* }====================================================================== */

/* {======================================================================
** bfloat16/float16 through float32 kernels (ops.h)
** ======================================================================= */

int ember_widen_half(int n, const ember_tensor *const *in, ember_tensor **out) {
  for (int i = 0; i < n; i++) {
    out[i] = !in[i] ? NULL
             : ember_dtype_is_half(in[i]->dtype) ? ember_to_dtype(in[i], EMBER_FLOAT32)
             : (ember_tensor_retain((ember_tensor *)in[i]), (ember_tensor *)in[i]);
    if (in[i] && !out[i]) {
      while (i-- > 0) ember_tensor_release(out[i]);
      return -1;
    }
  }
  return 0;
}

ember_tensor *ember_narrow_to(ember_tensor *y, ember_dtype dt) {
  if (!y || y->dtype == dt) return y;
  ember_tensor *r = ember_to_dtype(y, dt);
  ember_tensor_release(y);
  return r;
}

/* }====================================================================== */
