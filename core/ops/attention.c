/*
** attention.c -- scaled dot-product attention, fused: front door, the
** recording and the backward.
**
** ember_scaled_dot_product_attention(q, k, v, mask, is_causal, scale) is
** PyTorch 2.x's torch.nn.functional.scaled_dot_product_attention without
** dropout: softmax(q k^T * scale + mask) v over the last two dims, with
** q (..., L, E), k (..., S, E), v (..., S, Ev) sharing their batch dims
** (no broadcasting between them, as PyTorch's fused kernels).  With
** dropout, ember_scaled_dot_product_attention_dropout takes PyTorch's
** math path instead (below the forward).
**
** Contract:
**   - q, k, v float32 or float64, one dtype and one device; scale NAN means
**     1/sqrt(E); bfloat16 and float16 run on float32 copies, the result
**     rounded once to their dtype (attention_half);
**   - mask NULL, bool (true: may attend, false adds -inf) or of q's dtype
**     (added to the scores), broadcastable to (..., L, S); it gets no
**     gradient (a constant, as a mask usually is); is_causal (key j seen by
**     query i when j <= i, the top-left alignment PyTorch uses for L != S)
**     with a mask is an error, as PyTorch;
**   - a row that sees no key gives zeros (and zero gradients), PyTorch
**     >= 2.5's rule (_safe_softmax); PyTorch 2.0-2.4's math path gave NaN;
**   - the kernel slot (`attention`, core/backend.h) gets the batch dims
**     flattened into N, contiguous tensors, and the mask as an additive
**     float [N,L,S], or [L,S] when every batch shares it (no copy per
**     batch of a (L, S) mask); with is_causal and no mask nothing of size
**     L x S is ever made;
**   - recording: the node saves q, k, v (contiguous, 3-D), o, the rows'
**     log-sum-exp and the mask; the backward (`attention_backward` slot)
**     recomputes the scores tile by tile.
*/
#include <math.h>

#include "ops.h"

static const char *FN = "scaled_dot_product_attention";

struct attention_saved {
  double scale;
  int causal, mask_batched;
};

static int attention_backward(ember_node *n, ember_tensor *g,
                              ember_tensor **gin);

/* Shapes, dtypes and devices of q, k, v and the mask; fills the geometry
   (scale and causal by the caller) and the batch size of the mask's
   broadcast ((1) when every batch shares it). */
static int attention_check(const ember_tensor *q, const ember_tensor *k,
                           const ember_tensor *v, const ember_tensor *mask,
                           int is_causal, ember_attention_geom *g) {
  const ember_tensor *t3[3] = {q, k, v};
  const char *names[3] = {"query", "key", "value"};
  for (int i = 0; i < 3; i++) {
    if (!t3[i])
      return ember_set_error("%s: expected a %s tensor, got NULL", FN, names[i]);
    if (t3[i]->ndim < 2)
      return ember_set_error("%s: expected %s to have at least 2 dims "
                             "(..., L, E), got %d", FN, names[i], t3[i]->ndim);
    if (!ember_dtype_is_float(t3[i]->dtype))
      return ember_set_error("%s: expected %s of a float dtype, "
                             "got %s", FN, names[i],
                             ember_dtype_name(t3[i]->dtype));
  }
  for (int i = 1; i < 3; i++) {
    if (t3[i]->dtype != q->dtype)
      return ember_set_error("%s: expected query, key and value of one dtype, "
                             "got %s, %s and %s", FN, ember_dtype_name(q->dtype),
                             ember_dtype_name(k->dtype), ember_dtype_name(v->dtype));
    if (t3[i]->storage->device != q->storage->device)
      return ember_set_error("%s: expected query, key and value on one "
                             "device, got %s and %s", FN,
                             ember_device_name(q->storage->device),
                             ember_device_name(t3[i]->storage->device));
    int same = t3[i]->ndim == q->ndim;
    for (int d = 0; same && d < q->ndim - 2; d++)
      same = t3[i]->shape[d] == q->shape[d];
    if (!same)
      return ember_set_error("%s: expected query and %s to have the same "
                             "batch dims (all but the last two)", FN, names[i]);
  }
  int nd = q->ndim;
  g->L = q->shape[nd - 2];
  g->E = q->shape[nd - 1];
  g->S = k->shape[nd - 2];
  g->Ev = v->shape[nd - 1];
  g->N = 1;
  for (int d = 0; d < nd - 2; d++) g->N *= q->shape[d];
  if (k->shape[nd - 1] != g->E)
    return ember_set_error("%s: expected the last dim of key (%lld) to match "
                           "that of query (%lld)", FN,
                           (long long)k->shape[nd - 1], (long long)g->E);
  if (v->shape[nd - 2] != g->S)
    return ember_set_error("%s: expected key and value to have the same "
                           "length S, got %lld and %lld", FN, (long long)g->S,
                           (long long)v->shape[nd - 2]);
  g->mask_batched = 0;
  if (!mask) return 0;
  if (is_causal)
    return ember_set_error("%s: an explicit attn_mask should not be set when "
                           "is_causal is true", FN);
  if (mask->dtype != EMBER_BOOL && mask->dtype != q->dtype)
    return ember_set_error("%s: expected attn_mask of dtype bool or %s (the "
                           "query's), got %s", FN, ember_dtype_name(q->dtype),
                           ember_dtype_name(mask->dtype));
  if (mask->storage->device != q->storage->device)
    return ember_set_error("%s: expected attn_mask on %s, got %s", FN,
                           ember_device_name(q->storage->device),
                           ember_device_name(mask->storage->device));
  int64_t want[EMBER_MAX_DIMS], got[EMBER_MAX_DIMS];
  int ng;
  for (int d = 0; d < nd; d++) want[d] = q->shape[d];
  want[nd - 1] = g->S;
  int ok = mask->ndim <= nd &&
           ember_broadcast_shapes(FN, mask->ndim, mask->shape, nd, want, &ng,
                                  got) == 0;
  for (int d = 0; ok && d < nd; d++) ok = got[d] == want[d];
  if (!ok) {
    return ember_set_error("%s: attn_mask of %d dims does not broadcast to "
                           "(..., L, S) = (..., %lld, %lld)", FN, mask->ndim,
                           (long long)g->L, (long long)g->S);
  }
  for (int d = 0; d < mask->ndim - 2; d++)
    if (mask->shape[d] != 1) g->mask_batched = 1;
  return 0;
}

/* The mask as the kernel takes it: additive, q's dtype, contiguous, [N,L,S]
   or [L,S] (g->mask_batched).  Recording paused by the caller. */
static ember_tensor *attention_mask(const ember_tensor *q,
                                    const ember_tensor *mask,
                                    const ember_attention_geom *g) {
  ember_temps T;
  ember_temps_init(&T);
  const ember_tensor *add = mask;
  if (mask->dtype == EMBER_BOOL) {
    ember_tensor *zero = ember_temp(&T, ember_scalar_as(q, 0.0));
    ember_tensor *ninf = ember_temp(&T, zero ? ember_scalar_as(q, -INFINITY) : NULL);
    add = ember_temp(&T, ninf ? ember_where(mask, zero, ninf) : NULL);
  }
  int64_t shape[EMBER_MAX_DIMS];
  int nd = q->ndim;
  for (int d = 0; d < nd; d++) shape[d] = q->shape[d];
  shape[nd - 1] = g->S;
  int64_t flat[3] = {g->N, g->L, g->S};
  ember_tensor *full = ember_temp(&T, add ? (g->mask_batched
                                  ? ember_broadcast_to(add, nd, shape)
                                  : ember_broadcast_to(add, 2, shape + nd - 2))
                                  : NULL);
  ember_tensor *r = full ? ember_reshape(full, g->mask_batched ? 3 : 2,
                                         g->mask_batched ? flat : flat + 1)
                         : NULL;
  ember_temps_release(&T);
  if (!r) return NULL;
  ember_tensor *c = ember_contiguous(r);
  ember_tensor_release(r);
  return c;
}

/* bfloat16/float16 q, k, v (and an additive mask of their dtype): the
   attention of their float32 copies (scores, softmax and sums in float32),
   rounded once to q's dtype; recorded through the casts (ops.h).  dropout
   p < 0: the fused path. */
static ember_tensor *attention_half(const ember_tensor *q, const ember_tensor *k,
                                    const ember_tensor *v, const ember_tensor *mask,
                                    int is_causal, double scale, double p,
                                    ember_generator *gen) {
  const ember_tensor *in[4] = {q, k, v, mask};
  ember_tensor *f[4];
  if (ember_widen_half(4, in, f) < 0) return NULL;
  ember_tensor *o = p < 0
      ? ember_scaled_dot_product_attention(f[0], f[1], f[2], f[3], is_causal, scale)
      : ember_scaled_dot_product_attention_dropout(f[0], f[1], f[2], f[3],
                                                   is_causal, scale, p, gen);
  for (int i = 0; i < 4; i++) ember_tensor_release(f[i]);
  return ember_narrow_to(o, q->dtype);
}

/* Autocast: q, k and v rounded to its dtype (an additive mask is left as
   it is), the attention computed in float32 and kept so.  1 when it ran
   (*out its result, NULL on failure), 0 when autocast does not apply. */
static int attention_autocast(const ember_tensor *q, const ember_tensor *k,
                              const ember_tensor *v, const ember_tensor *mask,
                              int is_causal, double scale, double p,
                              ember_generator *gen, ember_tensor **out) {
  const ember_tensor *in[3] = {q, k, v};
  if (!ember_autocast_wants(3, in)) return 0;
  int dt = ember_get_autocast();
  ember_tensor *f[3];
  *out = NULL;
  if (ember_autocast_round(3, in, f) < 0) return 1;
  *out = p < 0
      ? ember_scaled_dot_product_attention(f[0], f[1], f[2], mask, is_causal, scale)
      : ember_scaled_dot_product_attention_dropout(f[0], f[1], f[2], mask,
                                                   is_causal, scale, p, gen);
  ember_autocast_resume(dt);
  for (int i = 0; i < 3; i++) ember_tensor_release(f[i]);
  return 1;
}

ember_tensor *ember_scaled_dot_product_attention(const ember_tensor *q,
                                                 const ember_tensor *k,
                                                 const ember_tensor *v,
                                                 const ember_tensor *mask,
                                                 int is_causal, double scale) {
  ember_attention_geom g;
  ember_tensor *ac;
  if (attention_autocast(q, k, v, mask, is_causal, scale, -1, NULL, &ac)) return ac;
  if (attention_check(q, k, v, mask, is_causal, &g) < 0) return NULL;
  if (ember_dtype_is_half(q->dtype))
    return attention_half(q, k, v, mask, is_causal, scale, -1, NULL);
  g.scale = isnan(scale) ? 1.0 / sqrt((double)g.E) : scale;
  g.causal = is_causal != 0;
  const ember_backend_i *be = ember_backend_of(q);
  if (!be->attention)
    return ember_set_error("%s: not supported on %s", FN, be->name), NULL;
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  int64_t sq[3] = {g.N, g.L, g.E}, sk[3] = {g.N, g.S, g.E},
          sv[3] = {g.N, g.S, g.Ev}, so[3] = {g.N, g.L, g.Ev};
  ember_device dev = q->storage->device;
  /* reshape of a contiguous tensor is a view; else it copies once */
  ember_tensor *qc = ember_temp(&T, ember_contiguous(q));
  ember_tensor *kc = ember_temp(&T, qc ? ember_contiguous(k) : NULL);
  ember_tensor *vc = ember_temp(&T, kc ? ember_contiguous(v) : NULL);
  ember_tensor *q3 = ember_temp(&T, vc ? ember_reshape(qc, 3, sq) : NULL);
  ember_tensor *k3 = ember_temp(&T, q3 ? ember_reshape(kc, 3, sk) : NULL);
  ember_tensor *v3 = ember_temp(&T, k3 ? ember_reshape(vc, 3, sv) : NULL);
  ember_tensor *m3 = v3 && mask ? ember_temp(&T, attention_mask(q, mask, &g)) : NULL;
  ember_tensor *o3 = ember_temp(&T, v3 && (!mask || m3)
                                ? ember_empty_on(dev, 3, so, q->dtype) : NULL);
  ember_tensor *lse = ember_temp(&T, o3 ? ember_empty_on(dev, 2, so, q->dtype) : NULL);
  ember_tensor *out = NULL;
  if (lse && be->attention(o3, lse, q3, k3, v3, m3, &g) == 0) {
    int64_t shape[EMBER_MAX_DIMS];
    for (int d = 0; d < q->ndim; d++) shape[d] = q->shape[d];
    shape[q->ndim - 1] = g.Ev;
    out = ember_reshape(o3, q->ndim, shape);
  }
  ember_ag_resume(prev);
  const ember_tensor *in[3] = {q, k, v};
  if (out && ember_grad_mode_ &&
      (ember_ag_requires(q) || ember_ag_requires(k) || ember_ag_requires(v))) {
    ember_node *n = ember_ag_node("ScaledDotProductAttentionBackward",
                                  attention_backward, 3, in);
    if (n) {
      struct attention_saved *s = EMBER_NODE_STATE(n, struct attention_saved);
      s->scale = g.scale;
      s->causal = g.causal;
      s->mask_batched = g.mask_batched;
      if (ember_ag_save(n, q3) < 0 || ember_ag_save(n, k3) < 0 ||
          ember_ag_save(n, v3) < 0 || ember_ag_save(n, o3) < 0 ||
          ember_ag_save(n, lse) < 0 || (m3 && ember_ag_save(n, m3) < 0)) {
        ember_ag_node_release(n);
        n = NULL;
      }
    }
    out = ember_ag_finish(n, out, 0);
  }
  ember_temps_release(&T);
  return out;
}

/* dropout_p > 0: PyTorch's math path, which the fused kernels do not take.
   The weights softmax(q k^T scale + mask), a row that sees no key zeros
   (the fused kernels' rule, so p -> 0 meets them), dropped with
   probability p from gen and scaled by 1 / (1 - p), times v.  Composed of
   recorded ops, so autograd goes through them; it makes the (..., L, S)
   weights the fused kernels never store. */
ember_tensor *ember_scaled_dot_product_attention_dropout(
    const ember_tensor *q, const ember_tensor *k, const ember_tensor *v,
    const ember_tensor *mask, int is_causal, double scale, double p,
    ember_generator *gen) {
  ember_attention_geom g;
  ember_tensor *ac;
  if (p > 0 && attention_autocast(q, k, v, mask, is_causal, scale, p, gen, &ac))
    return ac;
  if (attention_check(q, k, v, mask, is_causal, &g) < 0) return NULL;
  if (!(p >= 0 && p <= 1))
    return ember_set_error("%s: dropout_p must be in [0, 1], got %g", FN, p), NULL;
  if (p == 0) return ember_scaled_dot_product_attention(q, k, v, mask, is_causal, scale);
  if (ember_dtype_is_half(q->dtype))
    return attention_half(q, k, v, mask, is_causal, scale, p, gen);
  if (!gen) gen = ember_default_generator();
  const int nd = q->ndim;
  ember_device dev = q->storage->device;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *zero = ember_temp(&T, ember_scalar_as(q, 0.0));
  ember_tensor *ninf = ember_temp(&T, zero ? ember_scalar_as(q, -INFINITY) : NULL);
  ember_tensor *sc = ember_temp(&T, ninf ? ember_scalar_as(q, isnan(scale)
                                ? 1.0 / sqrt((double)g.E) : scale) : NULL);
  ember_tensor *kt = ember_temp(&T, sc ? ember_transpose(k, nd - 2, nd - 1) : NULL);
  ember_tensor *qk = ember_temp(&T, kt ? ember_matmul(q, kt) : NULL);
  ember_tensor *s = ember_temp(&T, qk ? ember_binary(EMBER_MUL, qk, sc) : NULL);
  const ember_tensor *allow = mask;      /* bool: may attend; or additive */
  if (s && is_causal) {
    int64_t ls[2] = {g.L, g.S};
    ember_tensor *ones = ember_temp(&T, ember_ones_on(dev, 2, ls, EMBER_BOOL));
    allow = ember_temp(&T, ones ? ember_tril(ones, 0) : NULL);
  }
  if (s && (mask || is_causal))         /* hide with -inf, or add */
    s = !allow ? NULL : ember_temp(&T, allow->dtype == EMBER_BOOL
                                   ? ember_where(allow, s, ninf)
                                   : ember_binary(EMBER_ADD, s, allow));
  /* seen: the rows with a score above -inf (NaN rows stay, and give NaN) */
  ember_tensor *mx = ember_temp(&T, s ? ember_reduce_dim(EMBER_MAX, s, nd - 1, 1, 0) : NULL);
  ember_tensor *seen = ember_temp(&T, mx ? ember_compare(EMBER_NE, mx, ninf) : NULL);
  ember_tensor *s0 = ember_temp(&T, seen ? ember_where(seen, s, zero) : NULL);
  ember_tensor *sm = ember_temp(&T, s0 ? ember_softmax(s0, nd - 1) : NULL);
  ember_tensor *w = ember_temp(&T, sm ? ember_where(seen, sm, zero) : NULL);
  /* the dropout: keep where u >= p, u uniform in [0, 1) (F.dropout's draw);
     p = 1 keeps nothing, and the factor is 0, not 1/0 */
  ember_tensor *u = ember_temp(&T, w ? ember_rand_gen(gen, dev, w->ndim, w->shape,
                                                      q->dtype) : NULL);
  ember_tensor *pt = ember_temp(&T, u ? ember_scalar_as(q, p) : NULL);
  ember_tensor *keep = ember_temp(&T, pt ? ember_compare(EMBER_GE, u, pt) : NULL);
  ember_tensor *kf = ember_temp(&T, keep ? ember_to_dtype(keep, q->dtype) : NULL);
  ember_tensor *inv = ember_temp(&T, kf ? ember_scalar_as(q, p < 1 ? 1.0 / (1.0 - p)
                                                                    : 0.0) : NULL);
  ember_tensor *kw = ember_temp(&T, inv ? ember_binary(EMBER_MUL, kf, inv) : NULL);
  ember_tensor *wd = ember_temp(&T, kw ? ember_binary(EMBER_MUL, w, kw) : NULL);
  ember_tensor *out = wd ? ember_matmul(wd, v) : NULL;
  ember_temps_release(&T);
  return out;
}

/* saved: q, k, v [N,L|S,E|Ev], o [N,L,Ev], lse [N,L], mask (optional) */
static int attention_backward(ember_node *n, ember_tensor *g,
                              ember_tensor **gin) {
  const struct attention_saved *s = EMBER_NODE_STATE(n, struct attention_saved);
  ember_tensor *q = n->saved[0], *k = n->saved[1], *v = n->saved[2];
  ember_tensor *o = n->saved[3], *lse = n->saved[4];
  ember_tensor *m = n->nsaved > 5 ? n->saved[5] : NULL;
  ember_attention_geom geo = {q->shape[0], q->shape[1], k->shape[1],
                              q->shape[2], v->shape[2], s->scale, s->causal,
                              s->mask_batched};
  const ember_backend_i *be = ember_backend_of(q);
  if (!be->attention_backward)
    return ember_set_error("%s: backward not supported on %s", FN, be->name);
  ember_temps T;
  ember_temps_init(&T);
  ember_device dev = q->storage->device;
  ember_tensor *gc = ember_temp(&T, ember_to_dtype(g, q->dtype));
  ember_tensor *g3 = ember_temp(&T, gc ? ember_reshape(gc, 3, o->shape) : NULL);
  ember_tensor *gs[3];
  const ember_tensor *like[3] = {q, k, v};
  for (int i = 0; i < 3; i++)
    gs[i] = ember_temp(&T, ember_empty_on(dev, 3, like[i]->shape, q->dtype));
  int rc = -1;
  if (g3 && gs[0] && gs[1] && gs[2])
    rc = be->attention_backward(gs[0], gs[1], gs[2], g3, q, k, v, o, lse, m,
                                &geo);
  for (int i = 0; i < 3 && rc == 0; i++)
    if (n->needs[i] &&
        !(gin[i] = ember_reshape(gs[i], n->in[i].ndim, n->in[i].shape)))
      rc = -1;
  ember_temps_release(&T);
  return rc;
}
