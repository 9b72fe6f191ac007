/*
** half_adapt.c -- bfloat16 and float16 for every CPU kernel that has no
** half path of its own: the kernel runs in float32 on widened twins of
** its half operands, and what it wrote is rounded back once.
**
** That is PyTorch's rule on the CPU for these types (load, compute and
** accumulate in float32, round when storing), so a reduction, a softmax,
** a norm or an optimizer step on bfloat16 gives what PyTorch gives,
** without a second copy of each kernel.  The price is a float32
** temporary per half operand and two extra passes over memory; the
** products (matmul, conv, attention) are not adapted here (they get half
** kernels of their own), nor are the hot elementwise maps (unary, binary,
** unary backward) when all their operands share one half dtype:
** elementwise.c converts those a block at a time, with no temporaries.
**
** A twin keeps its tensor's geometry, only the element changes: the same
** shape and, for a broadcast operand, the same zero strides (the data of
** the broadcast value is widened once, not once per repeat); otherwise
** it is contiguous, so a kernel that wants contiguous operands gets them
** whenever the caller's were.  One tensor passed twice (an in-place op's
** dst and src) gets one twin.  Outputs are narrowed back only when the
** kernel succeeded: a failed call changes nothing.
*/
#include "../core.h"
#include "cpu.h"

#define TWINS 8

typedef struct twin {
  const ember_tensor *orig;
  ember_tensor wide;       /* what the kernel sees */
  ember_tensor rwide, rorig;  /* both with the zero-stride dims cut to 1:
                                 the elements that really differ */
  int out;
} twin;

typedef struct twins {
  int n, failed;
  twin t[TWINS];
} twins;

/* Widen t (a half tensor, else returned as is); out: narrow it back at the
   end.  NULL stays NULL.  On failure marks the set failed. */
static ember_tensor *twin_of(twins *s, const ember_tensor *t, int out) {
  if (!t || !ember_dtype_is_half(t->dtype)) return (ember_tensor *)t;
  for (int i = 0; i < s->n; i++)
    if (s->t[i].orig == t) {
      s->t[i].out |= out;
      return &s->t[i].wide;
    }
  if (s->failed || s->n == TWINS) {
    if (!s->failed) ember_set_error("internal: more than %d half operands", TWINS);
    s->failed = 1;
    return (ember_tensor *)t;
  }
  twin *w = &s->t[s->n];
  w->orig = t;
  w->out = out;
  w->rorig = *t;
  w->rorig.grad_info = NULL;
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (t->strides[d] == 0) w->rorig.shape[d] = 1;
    n *= w->rorig.shape[d];
  }
  ember_storage *st = ember_storage_new(EMBER_CPU, (size_t)(n > 0 ? n : 1) * sizeof(float));
  if (!st) {
    s->failed = 1;
    return (ember_tensor *)t;
  }
  w->rwide = w->rorig;
  w->rwide.storage = st;
  w->rwide.offset = 0;
  w->rwide.dtype = EMBER_FLOAT32;
  ember_contiguous_strides(t->ndim, w->rwide.shape, w->rwide.strides);
  w->wide = w->rwide;
  for (int d = 0; d < t->ndim; d++) {
    w->wide.shape[d] = t->shape[d];
    if (t->strides[d] == 0) w->wide.strides[d] = 0;
  }
  s->n++;
  /* every operand is read in: a kernel may accumulate into an output */
  if (n > 0 && ember_cpu_copy(&w->rwide, &w->rorig) < 0) s->failed = 1;
  return &w->wide;
}

#define IN(t) twin_of(&s, (t), 0)
#define OUT(t) twin_of(&s, (t), 1)

/* Narrow the outputs back when rc says the kernel succeeded; free the
   twins.  Returns rc. */
static int twins_done(twins *s, int rc) {
  for (int i = 0; i < s->n; i++) {
    twin *w = &s->t[i];
    if (rc == 0 && w->out && ember_numel(&w->rorig) > 0 &&
        ember_cpu_copy(&w->rorig, &w->rwide) < 0)
      rc = -1;
    ember_storage_release(w->rwide.storage);
  }
  return rc;
}

/* Does any of the n tensors (NULLs allowed) hold a half type? */
static int any_half(int n, const ember_tensor *const *ts) {
  for (int i = 0; i < n; i++)
    if (ts[i] && ember_dtype_is_half(ts[i]->dtype)) return 1;
  return 0;
}

#define HALF(...) any_half((int)(sizeof((const ember_tensor *[]){__VA_ARGS__}) / \
                                   sizeof(const ember_tensor *)),            \
                            (const ember_tensor *[]){__VA_ARGS__})

/* Are all n tensors of one half dtype?  Then the elementwise kernels
   (unary, binary, unary backward) convert a block at a time themselves
   (elementwise.c) and need no twins. */
static int one_half(int n, const ember_tensor *const *ts) {
  if (!ember_dtype_is_half(ts[0]->dtype)) return 0;
  for (int i = 1; i < n; i++)
    if (ts[i]->dtype != ts[0]->dtype) return 0;
  return 1;
}

#define ONE_HALF(...) one_half((int)(sizeof((const ember_tensor *[]){__VA_ARGS__}) / \
                                     sizeof(const ember_tensor *)),          \
                               (const ember_tensor *[]){__VA_ARGS__})
/* The kernel's return value on the twins, or -1 when they could not be
   made (the kernel then does not run: every twin is made before it). */
#define RUN(call) twins_done(&s, s.failed ? -1 : (call))

/* {======================================================================
** The adapted slots, in backend.h's order
** ======================================================================= */

int ember_cpu_h_unary(ember_unary_op op, ember_tensor *dst,
                      const ember_tensor *src, double p0, double p1) {
  if (!HALF(dst, src) || ONE_HALF(dst, src))
    return ember_cpu_unary(op, dst, src, p0, p1);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *i0 = IN(src);
  return RUN(ember_cpu_unary(op, d, i0, p0, p1));
}

int ember_cpu_h_binary(ember_binary_op op, ember_tensor *dst,
                       const ember_tensor *a, const ember_tensor *b) {
  if (!HALF(dst, a, b) || ONE_HALF(dst, a, b))
    return ember_cpu_binary(op, dst, a, b);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *x = IN(a);
  const ember_tensor *i0 = IN(b);
  return RUN(ember_cpu_binary(op, d, x, i0));
}

int ember_cpu_h_compare(ember_cmp_op op, ember_tensor *dst,
                        const ember_tensor *a, const ember_tensor *b) {
  if (!HALF(a, b)) return ember_cpu_compare(op, dst, a, b);
  twins s = {0};
  const ember_tensor *x = IN(a);
  const ember_tensor *i0 = IN(b);
  return RUN(ember_cpu_compare(op, dst, x, i0));
}

int ember_cpu_h_where(ember_tensor *dst, const ember_tensor *cond,
                      const ember_tensor *a, const ember_tensor *b) {
  if (!HALF(dst, a, b)) return ember_cpu_where(dst, cond, a, b);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *x = IN(a);
  const ember_tensor *i0 = IN(b);
  return RUN(ember_cpu_where(d, cond, x, i0));
}

int ember_cpu_h_reduce(ember_reduce_op op, ember_tensor *dst,
                       const ember_tensor *src, int correction) {
  if (!HALF(dst, src)) return ember_cpu_reduce(op, dst, src, correction);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *i0 = IN(src);
  return RUN(ember_cpu_reduce(op, d, i0, correction));
}

int ember_cpu_h_softmax(ember_tensor *dst, const ember_tensor *src, int log) {
  if (!HALF(dst, src)) return ember_cpu_softmax(dst, src, log);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *i0 = IN(src);
  return RUN(ember_cpu_softmax(d, i0, log));
}

int ember_cpu_h_softmax_backward(ember_tensor *dx, const ember_tensor *g,
                                 const ember_tensor *y, int log) {
  if (!HALF(dx, g, y)) return ember_cpu_softmax_backward(dx, g, y, log);
  twins s = {0};
  ember_tensor *d = OUT(dx);
  const ember_tensor *gw = IN(g);
  const ember_tensor *i0 = IN(y);
  return RUN(ember_cpu_softmax_backward(d, gw, i0, log));
}

int ember_cpu_h_layer_norm(ember_tensor *y, ember_tensor *mean,
                           ember_tensor *rstd, const ember_tensor *x,
                           const ember_tensor *w, const ember_tensor *b,
                           int64_t n, double eps, int rms) {
  if (!HALF(y, mean, rstd, x, w, b))
    return ember_cpu_layer_norm(y, mean, rstd, x, w, b, n, eps, rms);
  twins s = {0};
  ember_tensor *yw = OUT(y), *mw = OUT(mean), *rw = OUT(rstd);
  const ember_tensor *xw = IN(x), *ww = IN(w);
  const ember_tensor *i0 = IN(b);
  return RUN(ember_cpu_layer_norm(yw, mw, rw, xw, ww, i0, n, eps, rms));
}

int ember_cpu_h_layer_norm_backward(ember_tensor *dx, ember_tensor *dw,
                                    ember_tensor *db, const ember_tensor *g,
                                    const ember_tensor *x,
                                    const ember_tensor *mean,
                                    const ember_tensor *rstd,
                                    const ember_tensor *w, int64_t n, int rms) {
  if (!HALF(dx, dw, db, g, x, mean, rstd, w))
    return ember_cpu_layer_norm_backward(dx, dw, db, g, x, mean, rstd, w, n, rms);
  twins s = {0};
  ember_tensor *dxw = OUT(dx), *dww = OUT(dw), *dbw = OUT(db);
  const ember_tensor *gw = IN(g), *xw = IN(x), *mw = IN(mean), *rw = IN(rstd);
  const ember_tensor *i0 = IN(w);
  return RUN(ember_cpu_layer_norm_backward(dxw, dww, dbw, gw, xw, mw, rw, i0, n, rms));
}

int ember_cpu_h_lstm_cell(ember_tensor *hc, ember_tensor *act,
                          const ember_tensor *gates, const ember_tensor *c_prev) {
  if (!HALF(hc, act, gates, c_prev)) return ember_cpu_lstm_cell(hc, act, gates, c_prev);
  twins s = {0};
  ember_tensor *hw = OUT(hc), *aw = OUT(act);
  const ember_tensor *gw = IN(gates);
  const ember_tensor *i0 = IN(c_prev);
  return RUN(ember_cpu_lstm_cell(hw, aw, gw, i0));
}

int ember_cpu_h_lstm_cell_backward(ember_tensor *dgates, ember_tensor *dc_prev,
                                   const ember_tensor *dhc, const ember_tensor *act,
                                   const ember_tensor *c_prev, const ember_tensor *hc) {
  if (!HALF(dgates, dc_prev, dhc, act, c_prev, hc))
    return ember_cpu_lstm_cell_backward(dgates, dc_prev, dhc, act, c_prev, hc);
  twins s = {0};
  ember_tensor *gw = OUT(dgates), *cw = OUT(dc_prev);
  const ember_tensor *dw = IN(dhc), *aw = IN(act), *pw = IN(c_prev);
  const ember_tensor *i0 = IN(hc);
  return RUN(ember_cpu_lstm_cell_backward(gw, cw, dw, aw, pw, i0));
}

int ember_cpu_h_gru_cell(ember_tensor *hn, ember_tensor *act, const ember_tensor *gx,
                         const ember_tensor *gh, const ember_tensor *h) {
  if (!HALF(hn, act, gx, gh, h)) return ember_cpu_gru_cell(hn, act, gx, gh, h);
  twins s = {0};
  ember_tensor *nw = OUT(hn), *aw = OUT(act);
  const ember_tensor *xw = IN(gx), *hw = IN(gh);
  const ember_tensor *i0 = IN(h);
  return RUN(ember_cpu_gru_cell(nw, aw, xw, hw, i0));
}

int ember_cpu_h_gru_cell_backward(ember_tensor *dgx, ember_tensor *dgh,
                                  ember_tensor *dh, const ember_tensor *g,
                                  const ember_tensor *act, const ember_tensor *gh,
                                  const ember_tensor *h) {
  if (!HALF(dgx, dgh, dh, g, act, gh, h))
    return ember_cpu_gru_cell_backward(dgx, dgh, dh, g, act, gh, h);
  twins s = {0};
  ember_tensor *xw = OUT(dgx), *hw = OUT(dgh), *dw = OUT(dh);
  const ember_tensor *gw = IN(g), *aw = IN(act), *ghw = IN(gh);
  const ember_tensor *i0 = IN(h);
  return RUN(ember_cpu_gru_cell_backward(xw, hw, dw, gw, aw, ghw, i0));
}

int ember_cpu_h_cross_entropy(ember_tensor *loss, ember_tensor *wt,
                              ember_tensor *lse, const ember_tensor *x,
                              const ember_tensor *t, const ember_tensor *w,
                              int64_t ignore, double smoothing) {
  if (!HALF(loss, wt, lse, x, w))
    return ember_cpu_cross_entropy(loss, wt, lse, x, t, w, ignore, smoothing);
  twins s = {0};
  ember_tensor *lw = OUT(loss), *tw = OUT(wt), *ew = OUT(lse);
  const ember_tensor *xw = IN(x);
  const ember_tensor *i0 = IN(w);
  return RUN(ember_cpu_cross_entropy(lw, tw, ew, xw, t, i0, ignore, smoothing));
}

int ember_cpu_h_cross_entropy_backward(ember_tensor *dx, const ember_tensor *gs,
                                       const ember_tensor *x, const ember_tensor *lse,
                                       const ember_tensor *t, const ember_tensor *w,
                                       int64_t ignore, double smoothing) {
  if (!HALF(dx, gs, x, lse, w))
    return ember_cpu_cross_entropy_backward(dx, gs, x, lse, t, w, ignore, smoothing);
  twins s = {0};
  ember_tensor *dw = OUT(dx);
  const ember_tensor *gw = IN(gs), *xw = IN(x), *lw = IN(lse);
  const ember_tensor *i0 = IN(w);
  return RUN(ember_cpu_cross_entropy_backward(dw, gw, xw, lw, t, i0, ignore, smoothing));
}

int ember_cpu_h_random(int kind, ember_tensor *dst, uint64_t seed,
                       uint64_t counter, double a, double b) {
  if (!HALF(dst)) return ember_cpu_random(kind, dst, seed, counter, a, b);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  return RUN(ember_cpu_random(kind, d, seed, counter, a, b));
}

int ember_cpu_h_multinomial(ember_tensor *dst, const ember_tensor *probs,
                            int replacement, uint64_t seed, uint64_t counter) {
  if (!HALF(probs)) return ember_cpu_multinomial(dst, probs, replacement, seed, counter);
  twins s = {0};
  const ember_tensor *i0 = IN(probs);
  return RUN(ember_cpu_multinomial(dst, i0, replacement, seed, counter));
}

int ember_cpu_h_unary_backward(ember_unary_op op, ember_tensor *dst,
                               const ember_tensor *g, const ember_tensor *sv,
                               double p0, double p1) {
  if (!HALF(dst, g, sv) || ONE_HALF(dst, g, sv))
    return ember_cpu_unary_backward(op, dst, g, sv, p0, p1);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *gw = IN(g);
  const ember_tensor *i0 = IN(sv);
  return RUN(ember_cpu_unary_backward(op, d, gw, i0, p0, p1));
}

int ember_cpu_h_index_add(ember_tensor *dst, int dim, const ember_tensor *index,
                          const ember_tensor *src) {
  if (!HALF(dst, src)) return ember_cpu_index_add(dst, dim, index, src);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *i0 = IN(src);
  return RUN(ember_cpu_index_add(d, dim, index, i0));
}

int ember_cpu_h_scatter_add(ember_tensor *dst, int dim, const ember_tensor *index,
                            const ember_tensor *src) {
  if (!HALF(dst, src)) return ember_cpu_scatter_add(dst, dim, index, src);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *i0 = IN(src);
  return RUN(ember_cpu_scatter_add(d, dim, index, i0));
}

/* ASSIGN moves bits and works on any element size; the reductions compute */
int ember_cpu_h_scatter(ember_scatter_reduce op, ember_tensor *dst, int dim,
                        const ember_tensor *index, const ember_tensor *src) {
  if (!HALF(dst, src)) return ember_cpu_scatter(op, dst, dim, index, src);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *i0 = IN(src);
  return RUN(ember_cpu_scatter(op, d, dim, index, i0));
}

int ember_cpu_h_sgd_step(ember_tensor *p, const ember_tensor *g,
                         ember_tensor *buf, const ember_optim_hp *hp) {
  if (!HALF(p, g, buf)) return ember_cpu_sgd_step(p, g, buf, hp);
  twins s = {0};
  ember_tensor *pw = OUT(p), *bw = OUT(buf);
  const ember_tensor *i0 = IN(g);
  return RUN(ember_cpu_sgd_step(pw, i0, bw, hp));
}

int ember_cpu_h_adam_step(ember_tensor *p, const ember_tensor *g, ember_tensor *m,
                          ember_tensor *v, ember_tensor *vmax,
                          const ember_optim_hp *hp) {
  if (!HALF(p, g, m, v, vmax)) return ember_cpu_adam_step(p, g, m, v, vmax, hp);
  twins s = {0};
  ember_tensor *pw = OUT(p), *mw = OUT(m), *vw = OUT(v), *xw = OUT(vmax);
  const ember_tensor *i0 = IN(g);
  return RUN(ember_cpu_adam_step(pw, i0, mw, vw, xw, hp));
}

int ember_cpu_h_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                             ember_tensor *sq, ember_tensor *buf,
                             ember_tensor *gavg, const ember_optim_hp *hp) {
  if (!HALF(p, g, sq, buf, gavg)) return ember_cpu_rmsprop_step(p, g, sq, buf, gavg, hp);
  twins s = {0};
  ember_tensor *pw = OUT(p), *qw = OUT(sq), *bw = OUT(buf), *aw = OUT(gavg);
  const ember_tensor *i0 = IN(g);
  return RUN(ember_cpu_rmsprop_step(pw, i0, qw, bw, aw, hp));
}

int ember_cpu_h_adagrad_step(ember_tensor *p, const ember_tensor *g,
                             ember_tensor *sum, const ember_optim_hp *hp) {
  if (!HALF(p, g, sum)) return ember_cpu_adagrad_step(p, g, sum, hp);
  twins s = {0};
  ember_tensor *pw = OUT(p), *sw = OUT(sum);
  const ember_tensor *i0 = IN(g);
  return RUN(ember_cpu_adagrad_step(pw, i0, sw, hp));
}

int ember_cpu_h_max_pool2d(ember_tensor *y, ember_tensor *idx, const ember_tensor *x,
                           const ember_pool2d_geom *g) {
  if (!HALF(y, x)) return ember_cpu_max_pool2d(y, idx, x, g);
  twins s = {0};
  ember_tensor *yw = OUT(y);
  const ember_tensor *i0 = IN(x);
  return RUN(ember_cpu_max_pool2d(yw, idx, i0, g));
}

int ember_cpu_h_max_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                    const ember_tensor *idx,
                                    const ember_pool2d_geom *g) {
  if (!HALF(gx, gy)) return ember_cpu_max_pool2d_backward(gx, gy, idx, g);
  twins s = {0};
  ember_tensor *xw = OUT(gx);
  const ember_tensor *i0 = IN(gy);
  return RUN(ember_cpu_max_pool2d_backward(xw, i0, idx, g));
}

int ember_cpu_h_avg_pool2d(ember_tensor *y, const ember_tensor *x,
                           const ember_pool2d_geom *g) {
  if (!HALF(y, x)) return ember_cpu_avg_pool2d(y, x, g);
  twins s = {0};
  ember_tensor *yw = OUT(y);
  const ember_tensor *i0 = IN(x);
  return RUN(ember_cpu_avg_pool2d(yw, i0, g));
}

int ember_cpu_h_avg_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                    const ember_pool2d_geom *g) {
  if (!HALF(gx, gy)) return ember_cpu_avg_pool2d_backward(gx, gy, g);
  twins s = {0};
  ember_tensor *xw = OUT(gx);
  const ember_tensor *i0 = IN(gy);
  return RUN(ember_cpu_avg_pool2d_backward(xw, i0, g));
}

int ember_cpu_h_scan(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                     const ember_tensor *src, int dim, int reverse) {
  if (!HALF(dst, src)) return ember_cpu_scan(op, dst, idx, src, dim, reverse);
  twins s = {0};
  ember_tensor *d = OUT(dst);
  const ember_tensor *i0 = IN(src);
  return RUN(ember_cpu_scan(op, d, idx, i0, dim, reverse));
}

int ember_cpu_h_sort(ember_tensor *values, ember_tensor *indices,
                     const ember_tensor *src, int dim, int64_t k, int descending) {
  if (!HALF(values, src)) return ember_cpu_sort(values, indices, src, dim, k, descending);
  twins s = {0};
  ember_tensor *v = OUT(values);
  const ember_tensor *i0 = IN(src);
  return RUN(ember_cpu_sort(v, indices, i0, dim, k, descending));
}

/* }====================================================================== */
