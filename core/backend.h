/*
** backend.h -- the per-device kernel table: what a backend implements.
**
** This header is shared with the device plugins (core/cuda/ through
** device.h, tools/fake_cuda.c), so it holds only what a kernel needs: the
** table, the geometry structs and the chunking of convolutions.  The
** core's own helpers (allocation, views, broadcasting) are in core.h.
**
** A backend holds kernels only.  The core's front door (ops_*.c) checks
** arguments, works out shapes and dtypes, allocates the result and then calls
** one slot of the table of the device the tensors live on.  By then:
**   - every tensor handed to a kernel has the same shape as the output
**     (broadcast operands arrive as expanded views with stride 0);
**   - operands of arithmetic kernels share one dtype (the promoted one);
**     only `copy` converts between dtypes;
**   - reductions and softmax see the reduced dimension last.
** Kernels return 0, or -1 after ember_set_error() when the data itself is
** bad (an index out of range, an integer to a negative power).
** A NULL slot means "not supported on this device".
*/
#ifndef EMBER_BACKEND_H
#define EMBER_BACKEND_H

#include <limits.h>

#include "include/ember.h"

/* Hyper-parameters of one fused optimizer step (core/optim.c), with what
   depends on the step count already folded into plain scalars by the front
   door, so that a kernel is a single elementwise pass on any device. */
typedef struct ember_optim_hp {
  double lr;            /* Adam: lr / (1 - beta1^t); Adagrad: the decayed lr */
  double momentum, dampening, weight_decay;
  double beta1, beta2;  /* Adam */
  double bc2_sqrt;      /* Adam: sqrt(1 - beta2^t) */
  double decay;         /* AdamW: 1 - lr * weight_decay; else 1 */
  double alpha, eps;    /* RMSprop: alpha; Adam, RMSprop, Adagrad: eps */
  int nesterov, maximize, first_step;
} ember_optim_hp;

/* Geometry of fused scaled dot-product attention for the attention slots
   (core/ops/attention.c fills it): q [N,L,E], k [N,S,E], v [N,S,Ev],
   o [N,L,Ev], lse [N,L], one float dtype, every tensor contiguous (the
   batch dims of the caller flattened into N). */
typedef struct ember_attention_geom {
  int64_t N, L, S, E, Ev;
  double scale;      /* scores are q.k * scale (+ mask) */
  int causal;        /* query i (0-based) sees key j only when j <= i: the
                        top-left alignment, PyTorch's for L != S too */
  int mask_batched;  /* the additive mask is [N,L,S] (1) or one [L,S]
                        shared by every batch (0); unused with no mask */
} ember_attention_geom;

/* Geometry of a 2-D convolution for the conv2d slots (core/ops/conv.c fills it):
   x [N,C,H,W], w [O,C/groups,KH,KW], y [N,O,OH,OW], every tensor
   contiguous (an unbatched call arrives with N = 1). */
typedef struct ember_conv2d_geom {
  int64_t N, C, H, W;         /* input */
  int64_t O, KH, KW;          /* weight */
  int64_t OH, OW;             /* output, both >= 1 */
  int64_t sh, sw, ph, pw, dh, dw;  /* stride, padding, dilation */
  int64_t groups;             /* divides C and O */
  int relu;                   /* forward: y = relu(conv + b), fused; the
                                 backward then gets that y as its mask */
} ember_conv2d_geom;

/*
** How a backend cuts a convolution into chunks of bounded scratch (the CPU
** and the CUDA kernels share this): a chunk is images [n0, n0+nb) and, of
** each, output rows [oh0, oh1); cols = nb * (oh1-oh0) * OW columns.
** Several images come whole; a single big image comes in bands of rows.
*/
typedef struct ember_conv_chunk {
  int64_t n0, nb, oh0, oh1, cols;
} ember_conv_chunk;

/* A 1x1 kernel, stride 1, no padding: col is x itself (dilation is moot). */
static inline int ember_conv_pointwise(const ember_conv2d_geom *g) {
  return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 &&
         g->pw == 0;
}

/* For `rows` scratch rows per column and at most `limit` scratch elements:
   B images per chunk, as many as fit; when one image alone is bigger, B = 1
   and `band` output rows per chunk instead (at least one).  Returns the
   most columns a chunk has.  (Divisions rather than products: rows may be
   near 2^62.  BLAS sizes are int, so cols stays within INT_MAX.) */
static inline int64_t ember_conv_plan(const ember_conv2d_geom *g, int64_t rows,
                                      int64_t limit, int64_t *B, int64_t *band) {
  int64_t P = g->OH * g->OW;
  *B = limit / rows / P;
  if (*B > g->N) *B = g->N;
  if (*B > INT_MAX / P) *B = INT_MAX / P;
  *band = g->OH;
  if (*B >= 1) return *B * P;
  *B = 1;
  *band = limit / rows / g->OW;
  if (*band < 1) *band = 1;
  if (*band > g->OH) *band = g->OH;
  return *band * g->OW;
}

/* The chunk after c (c->nb == 0: the first); 0 when there is none. */
static inline int ember_conv_next_chunk(ember_conv_chunk *c, int64_t B,
                                        int64_t band, const ember_conv2d_geom *g) {
  if (c->nb > 0 && c->oh1 < g->OH) {
    c->oh0 = c->oh1;                          /* next band of the image */
  } else {
    c->n0 += c->nb;
    if (c->n0 >= g->N) return 0;
    c->nb = g->N - c->n0 < B ? g->N - c->n0 : B;
    c->oh0 = 0;
  }
  c->oh1 = c->nb > 1 || c->oh0 + band > g->OH ? g->OH : c->oh0 + band;
  c->cols = c->nb * (c->oh1 - c->oh0) * g->OW;
  return 1;
}

/* Geometry of 2-D pooling: `planes` (N*C) independent H x W planes, each
   pooled to OH x OW; tensors contiguous.  Window (oh, ow) covers rows
   oh*sh - ph + i*dh, i < kh (columns alike); avg pooling has dh = dw = 1. */
typedef struct ember_pool2d_geom {
  int64_t planes, H, W, OH, OW;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int count_include_pad;      /* avg pooling's divisor rule */
} ember_pool2d_geom;

/* The scans of the `scan` slot (core/ops/scan.c). */
typedef enum ember_scan_op {
  EMBER_SCAN_SUM, EMBER_SCAN_PROD, EMBER_SCAN_MAX, EMBER_SCAN_LOGSUMEXP
} ember_scan_op;

typedef struct ember_backend_i {
  const char *name;
  /* device memory (unused for the CPU, whose storage the core allocates
     in one block with its header) */
  void *(*alloc)(size_t nbytes);               /* NULL after set_error */
  void (*free)(void *ptr);

  /* dst[i] = (dst dtype) src[i]; same shape */
  int (*copy)(ember_tensor *dst, const ember_tensor *src);
  int (*fill)(ember_tensor *dst, double value, int64_t ivalue);
  /* dst[i] = start + i * step over a contiguous dst */
  int (*arange)(ember_tensor *dst, double start, double step);
  int (*unary)(ember_unary_op op, ember_tensor *dst, const ember_tensor *src,
               double p0, double p1);
  int (*binary)(ember_binary_op op, ember_tensor *dst, const ember_tensor *a,
                const ember_tensor *b);
  /* dst is bool */
  int (*compare)(ember_cmp_op op, ember_tensor *dst, const ember_tensor *a,
                 const ember_tensor *b);
  /* cond is bool; a, b and dst share a dtype */
  int (*where)(ember_tensor *dst, const ember_tensor *cond,
               const ember_tensor *a, const ember_tensor *b);
  /* src is [..., n] (n = last dim), dst is [...]: reduces the last dim.
     ARGMAX/ARGMIN write int64 1-based positions into dst. */
  int (*reduce)(ember_reduce_op op, ember_tensor *dst, const ember_tensor *src,
                int correction);
  /* softmax over the last dim of src into dst (same shape) */
  int (*softmax)(ember_tensor *dst, const ember_tensor *src, int log);
  /* Its backward over the last dim, one pass a row: dx = y (g - sum g y)
     (softmax) or g - exp(y) sum g (log_softmax), y the saved output; dx,
     g, y share shape and dtype. */
  int (*softmax_backward)(ember_tensor *dx, const ember_tensor *g,
                          const ember_tensor *y, int log);
  /* Layer norm (rms = 0) or RMS norm (rms = 1) of the rows of a
     contiguous x viewed as [rows, n]: y [rows, n]; mean and rstd [rows]
     (mean NULL for rms), x's dtype, saved for the backward; w and b are
     [n] or NULL (b always NULL for rms).  Statistics in double. */
  int (*layer_norm)(ember_tensor *y, ember_tensor *mean, ember_tensor *rstd,
                    const ember_tensor *x, const ember_tensor *w,
                    const ember_tensor *b, int64_t n, double eps, int rms);
  /* Its backward in one pass over the rows: dx [rows, n] (or NULL) and the
     column sums dw = sum g xhat, db = sum g [n] (each may be NULL); g, x
     contiguous.  dw/db are summed in a fixed order (deterministic). */
  int (*layer_norm_backward)(ember_tensor *dx, ember_tensor *dw,
                             ember_tensor *db, const ember_tensor *g,
                             const ember_tensor *x, const ember_tensor *mean,
                             const ember_tensor *rstd, const ember_tensor *w,
                             int64_t n, int rms);
  /* One LSTM cell step from the gate pre-activations, all contiguous:
     gates [B, 4H] in PyTorch's order i, f, g, o; c_prev [B, H].  Writes
     hc [2, B, H] (h = o tanh(c), then c = f c_prev + i g) and, unless
     NULL, act [B, 4H] (sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)),
     which the backward reads. */
  int (*lstm_cell)(ember_tensor *hc, ember_tensor *act,
                   const ember_tensor *gates, const ember_tensor *c_prev);
  /* Its backward in one pass: dgates [B, 4H] and, unless NULL, dc_prev
     [B, H] from dhc [2, B, H] (the gradients of h and c) and the saved
     act, c_prev and hc (tanh(c) is recomputed from c). */
  int (*lstm_cell_backward)(ember_tensor *dgates, ember_tensor *dc_prev,
                            const ember_tensor *dhc, const ember_tensor *act,
                            const ember_tensor *c_prev, const ember_tensor *hc);
  /* One GRU cell step, all contiguous: gx = x W_ih^T + b_ih and gh =
     h W_hh^T + b_hh [B, 3H] in PyTorch's order r, z, n; h [B, H].  Writes
     hn [B, H] = (1 - z) n + z h with r = sigmoid(gx_r + gh_r), z =
     sigmoid(gx_z + gh_z), n = tanh(gx_n + r gh_n), and, unless NULL, act
     [B, 3H] (r, z, n) for the backward. */
  int (*gru_cell)(ember_tensor *hn, ember_tensor *act, const ember_tensor *gx,
                  const ember_tensor *gh, const ember_tensor *h);
  /* Its backward in one pass from g [B, H]: dgx, dgh [B, 3H] and dh
     [B, H] (each may be NULL), from the saved act, gh and h. */
  int (*gru_cell_backward)(ember_tensor *dgx, ember_tensor *dgh,
                           ember_tensor *dh, const ember_tensor *g,
                           const ember_tensor *act, const ember_tensor *gh,
                           const ember_tensor *h);
  /* Cross entropy of the rows of contiguous logits x [N, C] against
     1-based int64 targets t [N] (checked: 1..C or ignore): loss [N] is
     (1 - s) w[t] (lse - x[t]) + s / C (sum_c w_c (lse - x_c)), 0 on an
     ignored row; wt [N] is w[t] (1 without w, 0 where ignored); lse [N]
     the row's log-sum-exp, saved for the backward.  w is [C] or NULL. */
  int (*cross_entropy)(ember_tensor *loss, ember_tensor *wt, ember_tensor *lse,
                       const ember_tensor *x, const ember_tensor *t,
                       const ember_tensor *w, int64_t ignore, double smoothing);
  /* dx [N, C] = gs[i] d loss[i] / d x[i, c] in one pass: softmax minus
     the (smoothed, weighted) one-hot, from x and the saved lse. */
  int (*cross_entropy_backward)(ember_tensor *dx, const ember_tensor *gs,
                                const ember_tensor *x, const ember_tensor *lse,
                                const ember_tensor *t, const ember_tensor *w,
                                int64_t ignore, double smoothing);
  /* [B,M,K] x [B,K,N] -> [B,M,N]; each operand has unit stride in one of
     its two matrix dims; dst is contiguous.  a and b have one dtype; dst
     has it too, except that bfloat16/float16 operands may have a float32
     dst: the products are always summed in float32, and a float32 dst
     receives those sums unrounded (mixed precision, ember_matmul_f32). */
  int (*matmul)(ember_tensor *dst, const ember_tensor *a,
                const ember_tensor *b);
  /* dst = src with `dim` taken at index[j] (1-based), j over index */
  int (*index_select)(ember_tensor *dst, const ember_tensor *src, int dim,
                      const ember_tensor *index);
  /* dst[.., j, ..] = src[.., index[.., j, ..], ..] along dim */
  int (*gather)(ember_tensor *dst, const ember_tensor *src, int dim,
                const ember_tensor *index);
  /* kind 0 uniform [a,b), 1 normal(a, b), 2 integers [a, b] */
  int (*random)(int kind, ember_tensor *dst, uint64_t seed, uint64_t counter,
                double a, double b);
  /* probs [R,K] (float32/float64, contiguous) -> dst [R,n] int64 1-based
     category indices, contiguous.  Sample j of row r uses Philox counter
     counter + r*n + j.  The kernel checks the data (a negative, inf or NaN
     weight, a row summing to zero, fewer positive weights than n without
     replacement) with the messages of ember_multinomial. */
  int (*multinomial)(ember_tensor *dst, const ember_tensor *probs,
                     int replacement, uint64_t seed, uint64_t counter);
  /* dst = g * op'(.) where s is what the op's backward needs: its input
     for most ops, its output for exp, expm1, sqrt, tanh, sigmoid and relu;
     p0, p1 as for unary.  Float dtypes only; all the same shape. */
  int (*unary_backward)(ember_unary_op op, ember_tensor *dst,
                        const ember_tensor *g, const ember_tensor *s,
                        double p0, double p1);
  /* dst's slice index[j] along dim += src's slice j (index checked here) */
  int (*index_add)(ember_tensor *dst, int dim, const ember_tensor *index,
                   const ember_tensor *src);
  /* dst's slice index[j] along dim = src's slice j (index checked here,
     a bad one reported as fn's; src may be expanded, stride 0; a repeated
     index: one of its slices) */
  int (*index_copy)(const char *fn, ember_tensor *dst, int dim, const ember_tensor *index,
                    const ember_tensor *src);
  /* dst[.., index[e], ..] += src[e] along dim, e over index (= src shape) */
  int (*scatter_add)(ember_tensor *dst, int dim, const ember_tensor *index,
                     const ember_tensor *src);
  /* Fused optimizer steps, in place.  p, g and the state tensors share
     shape and a float dtype and are all contiguous; a NULL state tensor
     means its option is off (SGD buf: momentum 0; Adam vmax: no amsgrad;
     RMSprop buf: momentum 0, gavg: not centered). */
  int (*sgd_step)(ember_tensor *p, const ember_tensor *g, ember_tensor *buf,
                  const ember_optim_hp *hp);
  int (*adam_step)(ember_tensor *p, const ember_tensor *g, ember_tensor *m,
                   ember_tensor *v, ember_tensor *vmax,
                   const ember_optim_hp *hp);
  int (*rmsprop_step)(ember_tensor *p, const ember_tensor *g,
                      ember_tensor *sq, ember_tensor *buf, ember_tensor *gavg,
                      const ember_optim_hp *hp);
  int (*adagrad_step)(ember_tensor *p, const ember_tensor *g,
                      ember_tensor *sum, const ember_optim_hp *hp);
  /* Convolution and pooling (float32/float64; see the geometry structs).
     Outputs are written whole, never accumulated into. */
  /* y = conv(x, w) + b (relu of it with g->relu); b is [O] or NULL */
  int (*conv2d)(ember_tensor *y, const ember_tensor *x, const ember_tensor *w,
                const ember_tensor *b, const ember_conv2d_geom *g);
  /* grads of conv2d from gy; any of gx, gw, gb may be NULL (not wanted).
     mask: NULL, or the output of a forward fused with ReLU, and then gy
     counts only where mask > 0 (ReLU's backward, done on the way in). */
  int (*conv2d_backward)(ember_tensor *gx, ember_tensor *gw, ember_tensor *gb,
                         const ember_tensor *gy, const ember_tensor *mask,
                         const ember_tensor *x, const ember_tensor *w,
                         const ember_conv2d_geom *g);
  /* idx (int64, 1-based position in the plane) may be NULL */
  int (*max_pool2d)(ember_tensor *y, ember_tensor *idx, const ember_tensor *x,
                    const ember_pool2d_geom *g);
  /* gx = gy scattered to idx; fails on an index outside the plane */
  int (*max_pool2d_backward)(ember_tensor *gx, const ember_tensor *gy,
                             const ember_tensor *idx,
                             const ember_pool2d_geom *g);
  int (*avg_pool2d)(ember_tensor *y, const ember_tensor *x,
                    const ember_pool2d_geom *g);
  int (*avg_pool2d_backward)(ember_tensor *gx, const ember_tensor *gy,
                             const ember_pool2d_geom *g);
  /* Fused attention: o = softmax(q k^T * scale + mask) v row by row, with
     lse (q's dtype) the log-sum-exp of each row's scores, all a backward
     needs besides the inputs and o; a row with no key to attend (every
     score -inf) gives o = 0 and lse = -inf.  mask is NULL or an additive
     float mask of q's dtype ([N,L,S] or [L,S], g->mask_batched).  Never
     materialises a full [L,S] score matrix. */
  int (*attention)(ember_tensor *o, ember_tensor *lse, const ember_tensor *q,
                   const ember_tensor *k, const ember_tensor *v,
                   const ember_tensor *mask, const ember_attention_geom *g);
  /* Its gradients from go (o's shape), recomputing the scores block by
     block from q, k, v, o and lse; gq, gk, gv written whole (none NULL). */
  int (*attention_backward)(ember_tensor *gq, ember_tensor *gk,
                            ember_tensor *gv, const ember_tensor *go,
                            const ember_tensor *q, const ember_tensor *k,
                            const ember_tensor *v, const ember_tensor *o,
                            const ember_tensor *lse, const ember_tensor *mask,
                            const ember_attention_geom *g);
  /* Inclusive scan along dim (0-based) of src into dst: contiguous, same
     shape and dtype (SUM, PROD, MAX: any dtype; LOGSUMEXP: floats), dim
     of size >= 1.  Floats accumulate in double, integers wrap.  MAX also
     writes idx (int64, contiguous, src's shape): the 1-based position of
     the running max, the latest on ties, a NaN winning (torch.cummax);
     idx is NULL for the others.  reverse scans from the end of dim. */
  int (*scan)(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
              const ember_tensor *src, int dim, int reverse);
  /* The first k (1 <= k <= n) of each line along dim (0-based) of src,
     sorted stably: ascending with NaN after everything, or descending
     with NaN first (PyTorch's order); -0.0 ties with 0.0.  src is
     contiguous with n = src->shape[dim] >= 1; values (src's dtype) and
     indices (int64: 1-based positions in the line) are contiguous, src's
     shape with k at dim.  Any dtype (bool as uint8). */
  int (*sort)(ember_tensor *values, ember_tensor *indices,
              const ember_tensor *src, int dim, int64_t k, int descending);
  /* Every element of idx (int64 or int32, any strides) in lo..hi, or equal
     to skip when has_skip; else the error prefix<value>suffix for the
     first bad element in row-major order.  A device kernel defers it (the
     next synchronising call reports it: device.h); the CPU fails at once. */
  int (*check_index)(const ember_tensor *idx, int64_t lo, int64_t hi,
                     int has_skip, int64_t skip, const char *prefix,
                     const char *suffix);
  /* dst[.., index[e], ..] op= src[e] along dim, e over index (src at least
     index's shape), as scatter_add but for any op but MEAN (the front door
     composes it): ASSIGN copies the element's bits (any dtype; the last
     write wins on the CPU, any one on a device), SUM adds as scatter_add,
     PROD multiplies (integers wrap), AMAX/AMIN keep the larger/smaller, a
     NaN winning (torch.scatter_reduce); the reductions see no bool.  A bad
     index fails with "scatter: index ..." (deferred on a device). */
  int (*scatter)(ember_scatter_reduce op, ember_tensor *dst, int dim,
                 const ember_tensor *index, const ember_tensor *src);
  /* The coordinates of the nonzero elements of a tensor of `shape` (ndim
     dims), row-major: dst is [N, ndim] int64, contiguous, 1-based; cs is
     the inclusive running count of nonzeros over the tensor read flat
     (int64, contiguous, prod(shape) long, its last element N), so element
     i is nonzero when cs[i] > cs[i-1] and goes to row cs[i]. */
  int (*nonzero)(ember_tensor *dst, const ember_tensor *cs, int ndim,
                 const int64_t *shape);
} ember_backend_i;

/* The CPU table (core/cpu/backend.c); the stand-in CUDA plugin
   (tools/fake_cuda.c) forwards some slots to it. */
extern const ember_backend_i ember_cpu_backend;

/*
** Multinomial sampling (core/cpu/sampling.c states the algorithm,
** core/cuda/sampling.cu mirrors it): a row's weights are cut into chunks
** of EMBER_MULTINOMIAL_CHUNK, each into 4 parts whose totals are added in
** double, left to right; the row keeps the running sums of the chunk
** totals, and a draw descends chunk, part, weight by running sums.  Both
** devices add the same numbers in the same order, so the same state gives
** the same indices, bit for bit; a draw without replacement zeroes the
** drawn weight and recomputes one chunk and the chunk sums after it.
*/
#define EMBER_MULTINOMIAL_CHUNK 1024
/* The data errors, each followed by the 1-based row (both devices). */
#define EMBER_MULTINOMIAL_BAD "multinomial: probability tensor contains " \
  "either `inf`, `nan` or element < 0 (row "
#define EMBER_MULTINOMIAL_ZERO "multinomial: invalid multinomial " \
  "distribution (sum of probabilities <= 0) (row "
#define EMBER_MULTINOMIAL_FEW "multinomial: invalid multinomial " \
  "distribution (with replacement=False, not enough non-negative " \
  "category to sample) (row "

#endif
