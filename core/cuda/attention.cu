/*
** attention.cu -- fused scaled dot-product attention, the `attention` and
** `attention_backward` slots (CUDA).
**
** The CUDA twin of core/cpu/attention.c, written for correctness over
** speed: the same geometry (ember_attention_geom), the same online softmax,
** the same log-sum-exp saved for backward and the same rule for a row with
** nothing to attend (o = 0, lse = -inf, zero gradients).
**
**   - forward: a block per (batch, tile of ATT_ROWS queries), a thread per
**     query row; the thread walks the keys it may see keeping its running
**     max and sum, and uses its own output row as the accumulator (scaled
**     when the max grows), then divides by the sum;
**   - backward: delta = rowsum(go * o) (a thread per row, in a temporary
**     from ember_cuda_alloc); gk and gv with a thread per key row walking
**     the queries that see it; gq with a thread per query row walking its
**     keys.  Each thread writes only its own row: no atomics.
**
** Scores are recomputed from q and k as the CPU does; no [L,S] matrix is
** made.  Everything runs on the default stream and nothing waits.
*/
#include <math.h>

#include "cuda_internal.h"

#define ATT_ROWS 64

/* score of query i against key j of batch n: q.k * scale + mask, -inf
   where the causal rule hides j */
template <class T>
static __device__ T att_score(const T *q, const T *k, const T *mask,
                              ember_attention_geom g, int64_t n, int64_t i,
                              int64_t j) {
  if (g.causal && j > i) return -(T)INFINITY;
  const T *qi = q + (n * g.L + i) * g.E, *kj = k + (n * g.S + j) * g.E;
  T s = 0;
  for (int64_t e = 0; e < g.E; e++) s += qi[e] * kj[e];
  s *= (T)g.scale;
  if (mask) s += mask[((g.mask_batched ? n : 0) * g.L + i) * g.S + j];
  return s;
}

/* p = exp(score - lse), 0 in a row that sees nothing */
template <class T>
static __device__ T att_prob(T s, T lse) {
  return lse == -(T)INFINITY ? (T)0 : exp(s - lse);
}

static __device__ int64_t att_key_end(ember_attention_geom g, int64_t i) {
  return g.causal ? (i + 1 < g.S ? i + 1 : g.S) : g.S;
}

template <class T>
static __global__ void k_att_forward(T *o, T *lse, const T *q, const T *k,
                                     const T *v, const T *mask,
                                     ember_attention_geom g) {
  int64_t n = blockIdx.y, i = (int64_t)blockIdx.x * ATT_ROWS + threadIdx.x;
  if (i >= g.L) return;
  T *oi = o + (n * g.L + i) * g.Ev;
  for (int64_t e = 0; e < g.Ev; e++) oi[e] = 0;
  T m = -(T)INFINITY, l = 0;
  int64_t jend = att_key_end(g, i);
  for (int64_t j = 0; j < jend; j++) {
    T s = att_score(q, k, mask, g, n, i, j);
    if (s != s) {                   /* a NaN score: the row is NaN */
      l = s;
      continue;
    }
    if (s == -(T)INFINITY) continue;
    T p;
    if (s > m) {
      T alpha = exp(m - s);
      for (int64_t e = 0; e < g.Ev; e++) oi[e] *= alpha;
      l *= alpha;
      m = s;
      p = 1;
    } else {
      p = exp(s - m);
    }
    l += p;
    const T *vj = v + (n * g.S + j) * g.Ev;
    for (int64_t e = 0; e < g.Ev; e++) oi[e] += p * vj[e];
  }
  T inv = l == 0 ? (T)0 : (T)1 / l;
  for (int64_t e = 0; e < g.Ev; e++) oi[e] *= inv;
  lse[n * g.L + i] = l == 0 ? -(T)INFINITY : m + log(l);
}

template <class T>
static __global__ void k_att_delta(T *delta, const T *go, const T *o,
                                   int64_t rows, int64_t Ev) {
  CU_FOR(r, rows) {
    T d = 0;
    for (int64_t e = 0; e < Ev; e++) d += go[r * Ev + e] * o[r * Ev + e];
    delta[r] = d;
  }
}

/* gk, gv of key row j: over the queries that see it */
template <class T>
static __global__ void k_att_backward_kv(T *gk, T *gv, const T *go,
                                         const T *q, const T *k, const T *v,
                                         const T *lse, const T *delta,
                                         const T *mask,
                                         ember_attention_geom g) {
  int64_t n = blockIdx.y, j = (int64_t)blockIdx.x * ATT_ROWS + threadIdx.x;
  if (j >= g.S) return;
  T *gkj = gk + (n * g.S + j) * g.E, *gvj = gv + (n * g.S + j) * g.Ev;
  const T *vj = v + (n * g.S + j) * g.Ev;
  for (int64_t e = 0; e < g.E; e++) gkj[e] = 0;
  for (int64_t e = 0; e < g.Ev; e++) gvj[e] = 0;
  for (int64_t i = g.causal ? j : 0; i < g.L; i++) {
    int64_t r = n * g.L + i;
    T p = att_prob(att_score(q, k, mask, g, n, i, j), lse[r]);
    const T *goi = go + r * g.Ev, *qi = q + r * g.E;
    T dp = 0;
    for (int64_t e = 0; e < g.Ev; e++) {
      gvj[e] += p * goi[e];
      dp += goi[e] * vj[e];
    }
    T ds = p * (dp - delta[r]) * (T)g.scale;
    for (int64_t e = 0; e < g.E; e++) gkj[e] += ds * qi[e];
  }
}

/* gq of query row i: over the keys it sees */
template <class T>
static __global__ void k_att_backward_q(T *gq, const T *go, const T *q,
                                        const T *k, const T *v, const T *lse,
                                        const T *delta, const T *mask,
                                        ember_attention_geom g) {
  int64_t n = blockIdx.y, i = (int64_t)blockIdx.x * ATT_ROWS + threadIdx.x;
  if (i >= g.L) return;
  int64_t r = n * g.L + i;
  T *gqi = gq + r * g.E;
  const T *goi = go + r * g.Ev;
  for (int64_t e = 0; e < g.E; e++) gqi[e] = 0;
  int64_t jend = att_key_end(g, i);
  for (int64_t j = 0; j < jend; j++) {
    T p = att_prob(att_score(q, k, mask, g, n, i, j), lse[r]);
    const T *vj = v + (n * g.S + j) * g.Ev, *kj = k + (n * g.S + j) * g.E;
    T dp = 0;
    for (int64_t e = 0; e < g.Ev; e++) dp += goi[e] * vj[e];
    T ds = p * (dp - delta[r]) * (T)g.scale;
    for (int64_t e = 0; e < g.E; e++) gqi[e] += ds * kj[e];
  }
}

/* A grid of tiles of ATT_ROWS rows by N batches (N < 65536: gridDim.y). */
static int att_grid(const char *fn, const ember_attention_geom *g,
                    int64_t rows, dim3 *grid) {
  if (g->N > 65535)
    return cu_error("cuda: %s: at most 65535 batches, got %lld", fn,
                    (long long)g->N);
  *grid = dim3((unsigned)((rows + ATT_ROWS - 1) / ATT_ROWS), (unsigned)g->N);
  return 0;
}

int ember_cuda_attention(ember_tensor *o, ember_tensor *lse,
                         const ember_tensor *q, const ember_tensor *k,
                         const ember_tensor *v, const ember_tensor *mask,
                         const ember_attention_geom *g) {
  if (g->N == 0 || g->L == 0) return 0;
  dim3 grid;
  if (att_grid("scaled_dot_product_attention", g, g->L, &grid) < 0) return -1;
  return ember_cuda_dispatch_float(q->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    k_att_forward<T><<<grid, ATT_ROWS>>>(
        (T *)cu_data(o), (T *)cu_data(lse), (const T *)cu_data(q),
        (const T *)cu_data(k), (const T *)cu_data(v),
        mask ? (const T *)cu_data(mask) : NULL, *g);
    CU_LAUNCH_CHECK("scaled_dot_product_attention");
    return 0;
  });
}

int ember_cuda_attention_backward(ember_tensor *gq, ember_tensor *gk,
                                  ember_tensor *gv, const ember_tensor *go,
                                  const ember_tensor *q, const ember_tensor *k,
                                  const ember_tensor *v, const ember_tensor *o,
                                  const ember_tensor *lse,
                                  const ember_tensor *mask,
                                  const ember_attention_geom *g) {
  const char *fn = "scaled_dot_product_attention_backward";
  if (g->N == 0) return 0;
  dim3 gkv, gqg;
  if (att_grid(fn, g, g->S, &gkv) < 0 || att_grid(fn, g, g->L, &gqg) < 0)
    return -1;
  return ember_cuda_dispatch_float(q->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    int64_t rows = g->N * g->L;
    T *delta = (T *)ember_cuda_alloc((size_t)(rows > 0 ? rows : 1) * sizeof(T));
    if (!delta) return -1;
    const T *m = mask ? (const T *)cu_data(mask) : NULL;
    if (rows > 0) {
      k_att_delta<T><<<cu_blocks(rows), CU_THREADS>>>(
          delta, (const T *)cu_data(go), (const T *)cu_data(o), rows, g->Ev);
    }
    if (g->S > 0)
      k_att_backward_kv<T><<<gkv, ATT_ROWS>>>(
          (T *)cu_data(gk), (T *)cu_data(gv), (const T *)cu_data(go),
          (const T *)cu_data(q), (const T *)cu_data(k), (const T *)cu_data(v),
          (const T *)cu_data(lse), delta, m, *g);
    if (g->L > 0)
      k_att_backward_q<T><<<gqg, ATT_ROWS>>>(
          (T *)cu_data(gq), (const T *)cu_data(go), (const T *)cu_data(q),
          (const T *)cu_data(k), (const T *)cu_data(v),
          (const T *)cu_data(lse), delta, m, *g);
    ember_cuda_free(delta);        /* stream-ordered: reused after our work */
    CU_LAUNCH_CHECK("scaled_dot_product_attention_backward");
    return 0;
  });
}
