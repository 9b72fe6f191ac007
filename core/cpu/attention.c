/*
** attention.c -- CPU fused scaled dot-product attention, the `attention`
** and `attention_backward` slots (flash-attention style).
**
** q [N,L,E], k [N,S,E], v [N,S,Ev], o [N,L,Ev], lse [N,L], contiguous, one
** float dtype (ember_attention_geom, core/backend.h).  The work is cut in
** tiles of ATT_BQ queries by ATT_BK keys; a tile's scores
** (q k^T * scale + mask, -inf where the causal rule hides a key) live in a
** thread's scratch only, so no [L,S] matrix is ever made: the memory beyond
** the inputs and outputs is O(L) per batch (lse, and delta in backward).
**
** Forward, per (batch, query block), the blocks on threads: walk the key
** blocks keeping each row's running max m and sum l of exp(score - m) and
** the unnormalised output acc (the online softmax: a new max rescales l and
** acc by exp(m_old - m_new)); at the end o = acc / l and lse = m + log l.
** A causal block stops at the last key its last query sees.
**
** Backward (the recomputation of FlashAttention-2): delta = rowsum(go * o),
** then p = exp(score - lse) and ds = p * (go v^T - delta) * scale tile by
** tile.  gk and gv gather over query blocks and gq over key blocks.  With
** batches (batch * heads) enough for every thread (ATT_BATCHES_PER_THREAD),
** a thread takes whole batches and one pass over the tiles sums all three
** (gv += p^T go, gk += ds^T q, gq += ds k).  With fewer, two passes, each
** writing only rows it owns (no atomics, no per-thread copies of the
** gradients): pass A per (batch, key block) sums gv and gk; pass B per
** (batch, query block) sums gq; the scores are computed twice, the price
** of owning the rows.
**
** A row with no visible key (every score -inf: a mask hiding all, or
** S = 0) gives o = 0, lse = -inf and zero gradients, as PyTorch >= 2.5
** (_safe_softmax); a NaN score makes its row NaN.  The products go
** through ember_cpu_sgemm (float32, Ember's small-matrix kernels) and
** cblas_dgemm (float64), one thread each inside the parallel loops.
*/
#include <math.h>
#include <stdlib.h>

#include <cblas.h>

#include "cpu.h"
#include "vmath.h"

#define ATT_BQ 64
#define ATT_BK 64
/* With this many batches (batch * heads) a thread or more, the backward
   gives each thread whole batches and runs one pass (pass A adding gq as
   it goes): the scores are computed once instead of twice. */
#define ATT_BATCHES_PER_THREAD 4

/* C [M,N] (= or +=) op(A) op(B), row-major; a leading dimension of a
   zero-width matrix is 1, as BLAS wants. */
static void att_gemm_f32(int ta, int tb, int64_t M, int64_t N, int64_t K,
                         const float *A, int64_t lda, const float *B,
                         int64_t ldb, int acc, float *C, int64_t ldc) {
  ember_cpu_sgemm(ta, tb, M, N, K, A, lda > 1 ? lda : 1, B, ldb > 1 ? ldb : 1,
                  acc, C, ldc > 1 ? ldc : 1, 0);
}

static void att_gemm_f64(int ta, int tb, int64_t M, int64_t N, int64_t K,
                         const double *A, int64_t lda, const double *B,
                         int64_t ldb, int acc, double *C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0, A,
              (int)(lda > 1 ? lda : 1), B, (int)(ldb > 1 ? ldb : 1),
              acc ? 1.0 : 0.0, C, (int)(ldc > 1 ? ldc : 1));
}

static inline int64_t att_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* The last key (exclusive) any query of [i0, i0 + nq) sees. */
static inline int64_t att_key_end(const ember_attention_geom *g, int64_t i0,
                                  int64_t nq) {
  return g->causal ? att_min(g->S, i0 + nq) : g->S;
}

/* Threads for a job of `units` tiles of about L*S*(E+Ev) work in all. */
static int att_threads(const ember_attention_geom *g, int64_t units) {
  double work = (double)g->N * (double)g->L * (double)g->S *
                (double)(g->E + g->Ev + 1);
  if (units < 2 || work < 8.0 * EMBER_CPU_PARALLEL_MIN) return 1;
  int nt = ember_cpu_threads();
  return units < nt ? (int)units : nt;
}

/* row[c] = exp(row[c] - sub) for c < n, returning their sum: the exp of
   every score, vectorised for float32 (vm_expf; libm's expf was about a
   fifth of the time at L 256). */
static EMBER_SIMD float att_expsum_f32(float *row, int64_t n, float sub) {
  float sum = 0;
  _Pragma("omp simd reduction(+:sum)")
  for (int64_t c = 0; c < n; c++) {
    float e = vm_expf(row[c] - sub);
    row[c] = e;
    sum += e;
  }
  return sum;
}

static double att_expsum_f64(double *row, int64_t n, double sub) {
  double sum = 0;
  for (int64_t c = 0; c < n; c++) sum += (row[c] = exp(row[c] - sub));
  return sum;
}

/*
** One dtype: T the element, GEMM its product, EXP and LOG its functions,
** EXPSUM its att_expsum.
**
** NAME_scores: s [nq, ATT_BK] = the scores of queries [i0, i0+nq) against
** keys [j0, j0+nk) of batch n.
** NAME_probs: s becomes p = exp(s - lse) (0 where lse = -inf, a row that
** sees nothing); with ds, ds [nq, ATT_BK] becomes p * (go v^T - delta) *
** scale, the scores' gradient.
*/
#define ATT_TYPED(NAME, T, GEMM, EXP, LOG, EXPSUM)                             \
  typedef struct NAME##_job {                                                  \
    const ember_attention_geom *g;                                             \
    const T *q, *k, *v, *mask, *o, *go, *lse;                                  \
    T *out, *lse_out, *gq, *gk, *gv, *delta;                                   \
  } NAME##_job;                                                                \
                                                                               \
  /* kt [E, ATT_BK] = the key block transposed, and vt [Ev, ATT_BK] the      \
     value block (when not NULL): the score products then run as A B, the   \
     shape Ember's small GEMM kernels do fastest (A B^T runs as dots). */    \
  static void NAME##_load_t(const NAME##_job *jb, int64_t n, int64_t j0,       \
                            int64_t nk, T *kt, T *vt) {                        \
    const ember_attention_geom *g = jb->g;                                     \
    const T *kb = jb->k + (n * g->S + j0) * g->E;                              \
    const T *vb = jb->v + (n * g->S + j0) * g->Ev;                             \
    for (int64_t c = 0; c < nk; c++)                                           \
      for (int64_t e = 0; e < g->E; e++) kt[e * ATT_BK + c] = kb[c * g->E + e]; \
    if (vt)                                                                    \
      for (int64_t c = 0; c < nk; c++)                                         \
        for (int64_t e = 0; e < g->Ev; e++)                                    \
          vt[e * ATT_BK + c] = vb[c * g->Ev + e];                              \
  }                                                                            \
                                                                               \
  static void NAME##_scores(const NAME##_job *jb, int64_t n, int64_t i0,       \
                            int64_t nq, int64_t j0, int64_t nk, const T *kt,   \
                            T *s) {                                            \
    const ember_attention_geom *g = jb->g;                                     \
    GEMM(0, 0, nq, nk, g->E, jb->q + (n * g->L + i0) * g->E, g->E, kt, ATT_BK, \
         0, s, ATT_BK);                                                        \
    const T *m = jb->mask ? jb->mask + (g->mask_batched ? n : 0) * g->L * g->S \
                          : NULL;                                              \
    for (int64_t r = 0; r < nq; r++) {                                         \
      T *row = s + r * ATT_BK;                                                 \
      const T *mr = m ? m + (i0 + r) * g->S + j0 : NULL;                       \
      for (int64_t c = 0; c < nk; c++) {                                       \
        T x = row[c] * (T)g->scale;                                            \
        if (mr) x += mr[c];                                                    \
        if (g->causal && j0 + c > i0 + r) x = -(T)INFINITY;                    \
        row[c] = x;                                                            \
      }                                                                        \
    }                                                                          \
  }                                                                            \
                                                                               \
  static void NAME##_probs(const NAME##_job *jb, int64_t n, int64_t i0,        \
                           int64_t nq, int64_t j0, int64_t nk, const T *kt,    \
                           const T *vt, T *s, T *ds) {                         \
    const ember_attention_geom *g = jb->g;                                     \
    NAME##_scores(jb, n, i0, nq, j0, nk, kt, s);                               \
    for (int64_t r = 0; r < nq; r++) {                                         \
      T *row = s + r * ATT_BK, lse = jb->lse[n * g->L + i0 + r];               \
      if (lse == -(T)INFINITY)                                                 \
        for (int64_t c = 0; c < nk; c++) row[c] = 0;                           \
      else                                                                     \
        EXPSUM(row, nk, lse);                                                  \
    }                                                                          \
    if (!ds) return;                                                           \
    GEMM(0, 0, nq, nk, g->Ev, jb->go + (n * g->L + i0) * g->Ev, g->Ev, vt,     \
         ATT_BK, 0, ds, ATT_BK);                                               \
    for (int64_t r = 0; r < nq; r++) {                                         \
      T *dr = ds + r * ATT_BK, d = jb->delta[n * g->L + i0 + r];               \
      const T *pr = s + r * ATT_BK;                                            \
      for (int64_t c = 0; c < nk; c++)                                         \
        dr[c] = pr[c] * (dr[c] - d) * (T)g->scale;                             \
    }                                                                          \
  }                                                                            \
                                                                               \
  /* One query block: scratch s [ATT_BQ*ATT_BK], kt, acc [ATT_BQ*Ev], m, l. */ \
  static void NAME##_fwd_block(const NAME##_job *jb, int64_t n, int64_t i0,    \
                               T *s, T *kt, T *acc, T *m, T *l) {              \
    const ember_attention_geom *g = jb->g;                                     \
    int64_t nq = att_min(ATT_BQ, g->L - i0), jend = att_key_end(g, i0, nq);    \
    for (int64_t r = 0; r < nq; r++) m[r] = -(T)INFINITY, l[r] = 0;            \
    for (int64_t e = 0; e < nq * g->Ev; e++) acc[e] = 0;                       \
    for (int64_t j0 = 0; j0 < jend; j0 += ATT_BK) {                            \
      int64_t nk = att_min(ATT_BK, jend - j0);                                 \
      NAME##_load_t(jb, n, j0, nk, kt, NULL);                                  \
      NAME##_scores(jb, n, i0, nq, j0, nk, kt, s);                             \
      for (int64_t r = 0; r < nq; r++) {                                       \
        T *row = s + r * ATT_BK, mx = m[r], sum = 0;                           \
        for (int64_t c = 0; c < nk; c++) if (row[c] > mx) mx = row[c];         \
        if (mx == -(T)INFINITY) {   /* nothing seen yet: only a NaN counts */  \
          for (int64_t c = 0; c < nk; c++) {                                   \
            row[c] = row[c] != row[c] ? row[c] : 0;                            \
            sum += row[c];                                                     \
          }                                                                    \
          l[r] += sum;                                                         \
          continue;                                                            \
        }                                                                      \
        T alpha = EXP(m[r] - mx);                                              \
        sum = EXPSUM(row, nk, mx);                                             \
        l[r] = l[r] * alpha + sum;                                             \
        m[r] = mx;                                                             \
        if (alpha != 1)                                                        \
          for (int64_t e = 0; e < g->Ev; e++) acc[r * g->Ev + e] *= alpha;     \
      }                                                                        \
      GEMM(0, 0, nq, g->Ev, nk, s, ATT_BK, jb->v + (n * g->S + j0) * g->Ev,    \
           g->Ev, 1, acc, g->Ev);                                              \
    }                                                                          \
    for (int64_t r = 0; r < nq; r++) {                                         \
      T *o = jb->out + (n * g->L + i0 + r) * g->Ev;                            \
      T inv = l[r] == 0 ? 0 : 1 / l[r];                                        \
      for (int64_t e = 0; e < g->Ev; e++) o[e] = acc[r * g->Ev + e] * inv;     \
      jb->lse_out[n * g->L + i0 + r] =                                         \
          l[r] == 0 ? -(T)INFINITY : m[r] + LOG(l[r]);                         \
    }                                                                          \
  }                                                                            \
                                                                               \
  /* Pass A: gk, gv of one key block, over the query blocks that see it;      \
     with_q also adds the block's share of gq (the thread owns batch n). */    \
  static void NAME##_bwd_kv(const NAME##_job *jb, int64_t n, int64_t j0,       \
                            T *s, T *ds, T *kt, T *vt, int with_q) {           \
    const ember_attention_geom *g = jb->g;                                     \
    int64_t nk = att_min(ATT_BK, g->S - j0);                                   \
    T *gk = jb->gk + (n * g->S + j0) * g->E;                                   \
    T *gv = jb->gv + (n * g->S + j0) * g->Ev;                                  \
    for (int64_t e = 0; e < nk * g->E; e++) gk[e] = 0;                         \
    for (int64_t e = 0; e < nk * g->Ev; e++) gv[e] = 0;                        \
    NAME##_load_t(jb, n, j0, nk, kt, vt);                                      \
    for (int64_t i0 = g->causal ? j0 : 0; i0 < g->L; i0 += ATT_BQ) {           \
      int64_t nq = att_min(ATT_BQ, g->L - i0);                                 \
      NAME##_probs(jb, n, i0, nq, j0, nk, kt, vt, s, ds);                      \
      GEMM(1, 0, nk, g->Ev, nq, s, ATT_BK, jb->go + (n * g->L + i0) * g->Ev,   \
           g->Ev, 1, gv, g->Ev);                                               \
      GEMM(1, 0, nk, g->E, nq, ds, ATT_BK, jb->q + (n * g->L + i0) * g->E,     \
           g->E, 1, gk, g->E);                                                 \
      if (with_q)                                                              \
        GEMM(0, 0, nq, g->E, nk, ds, ATT_BK, jb->k + (n * g->S + j0) * g->E,   \
             g->E, 1, jb->gq + (n * g->L + i0) * g->E, g->E);                  \
    }                                                                          \
  }                                                                            \
                                                                               \
  /* The whole backward of batch n in one pass over its tiles. */              \
  static void NAME##_bwd_batch(const NAME##_job *jb, int64_t n, T *s, T *ds,  \
                               T *kt, T *vt) {                                 \
    const ember_attention_geom *g = jb->g;                                     \
    T *gq = jb->gq + n * g->L * g->E;                                          \
    for (int64_t e = 0; e < g->L * g->E; e++) gq[e] = 0;                       \
    for (int64_t j0 = 0; j0 < g->S; j0 += ATT_BK)                              \
      NAME##_bwd_kv(jb, n, j0, s, ds, kt, vt, 1);                              \
  }                                                                            \
                                                                               \
  /* Pass B: gq of one query block, over the key blocks it sees. */            \
  static void NAME##_bwd_q(const NAME##_job *jb, int64_t n, int64_t i0,        \
                           T *s, T *ds, T *kt, T *vt) {                        \
    const ember_attention_geom *g = jb->g;                                     \
    int64_t nq = att_min(ATT_BQ, g->L - i0), jend = att_key_end(g, i0, nq);    \
    T *gq = jb->gq + (n * g->L + i0) * g->E;                                   \
    for (int64_t e = 0; e < nq * g->E; e++) gq[e] = 0;                         \
    for (int64_t j0 = 0; j0 < jend; j0 += ATT_BK) {                            \
      int64_t nk = att_min(ATT_BK, jend - j0);                                 \
      NAME##_load_t(jb, n, j0, nk, kt, vt);                                    \
      NAME##_probs(jb, n, i0, nq, j0, nk, kt, vt, s, ds);                      \
      GEMM(0, 0, nq, g->E, nk, ds, ATT_BK, jb->k + (n * g->S + j0) * g->E,     \
           g->E, 1, gq, g->E);                                                 \
    }                                                                          \
  }                                                                            \
                                                                               \
  /* Every unit of a pass (0 forward, 1 backward kv, 2 backward q, 3 the     \
     whole backward of a batch) on nt threads, each with its own scratch;    \
     -1 when a scratch failed. */                                            \
  static int NAME##_run(const NAME##_job *jb, int pass, int64_t units,         \
                        int64_t per_n) {                                       \
    const ember_attention_geom *g = jb->g;                                     \
    int nt = att_threads(g, units), failed = 0;                                \
    size_t tile = (size_t)ATT_BQ * ATT_BK;                                     \
    size_t kvt = (size_t)ATT_BK * (size_t)(g->E + g->Ev);                      \
    size_t need = 2 * tile + kvt + (size_t)ATT_BQ * (size_t)(g->Ev + 2);       \
    _Pragma("omp parallel num_threads(nt)") {                                  \
      T *buf = malloc(need * sizeof(T));                                       \
      if (!buf) {                                                              \
        _Pragma("omp atomic write") failed = 1;                                \
      }                                                                        \
      _Pragma("omp for schedule(dynamic, 1)")                                  \
      for (int64_t u = 0; u < units; u++) {                                    \
        if (!buf) continue;                                                    \
        int64_t n = u / per_n, b = u % per_n;                                  \
        /* s, ds | kt, vt | acc, m, l */                                       \
        T *kt = buf + 2 * tile, *vt = kt + ATT_BK * g->E, *acc = kt + kvt;     \
        if (pass == 0)                                                         \
          NAME##_fwd_block(jb, n, b * ATT_BQ, buf, kt, acc,                    \
                           acc + ATT_BQ * g->Ev, acc + ATT_BQ * (g->Ev + 1));  \
        else if (pass == 1)                                                    \
          NAME##_bwd_kv(jb, n, b * ATT_BK, buf, buf + tile, kt, vt, 0);        \
        else if (pass == 2)                                                    \
          NAME##_bwd_q(jb, n, b * ATT_BQ, buf, buf + tile, kt, vt);            \
        else                                                                   \
          NAME##_bwd_batch(jb, n, buf, buf + tile, kt, vt);                    \
      }                                                                        \
      free(buf);                                                               \
    }                                                                          \
    return failed ? -1 : 0;                                                    \
  }                                                                            \
                                                                               \
  static int NAME##_forward(NAME##_job *jb) {                                  \
    const ember_attention_geom *g = jb->g;                                     \
    int64_t qb = (g->L + ATT_BQ - 1) / ATT_BQ;                                 \
    return NAME##_run(jb, 0, g->N * qb, qb);                                   \
  }                                                                            \
                                                                               \
  static int NAME##_backward(NAME##_job *jb) {                                 \
    const ember_attention_geom *g = jb->g;                                     \
    int64_t qb = (g->L + ATT_BQ - 1) / ATT_BQ, kb = (g->S + ATT_BK - 1) / ATT_BK; \
    int64_t rows = g->N * g->L;                                                \
    T *delta = malloc((size_t)(rows > 0 ? rows : 1) * sizeof(T));              \
    if (!delta) return -1;                                                     \
    jb->delta = delta;                                                         \
    _Pragma("omp parallel for num_threads(att_threads(g, rows)) schedule(static)") \
    for (int64_t i = 0; i < rows; i++) {                                       \
      T d = 0;                                                                 \
      for (int64_t e = 0; e < g->Ev; e++)                                      \
        d += jb->go[i * g->Ev + e] * jb->o[i * g->Ev + e];                     \
      delta[i] = d;                                                            \
    }                                                                          \
    int rc;                                                                    \
    if (g->N >= ATT_BATCHES_PER_THREAD * ember_cpu_threads()) {                \
      rc = NAME##_run(jb, 3, g->N, 1);                                         \
    } else {                                                                   \
      rc = NAME##_run(jb, 1, g->N * kb, kb);                                   \
      if (rc == 0) rc = NAME##_run(jb, 2, g->N * qb, qb);                      \
    }                                                                          \
    free(delta);                                                               \
    return rc;                                                                 \
  }

ATT_TYPED(att_f32, float, att_gemm_f32, vm_expf, logf, att_expsum_f32)
ATT_TYPED(att_f64, double, att_gemm_f64, exp, log, att_expsum_f64)

int ember_cpu_attention(ember_tensor *o, ember_tensor *lse,
                        const ember_tensor *q, const ember_tensor *k,
                        const ember_tensor *v, const ember_tensor *mask,
                        const ember_attention_geom *g) {
  int rc;
  if (q->dtype == EMBER_FLOAT64) {
    att_f64_job jb = {g, ember_data(q), ember_data(k), ember_data(v),
                      mask ? ember_data(mask) : NULL, NULL, NULL, NULL,
                      ember_data(o), ember_data(lse), NULL, NULL, NULL, NULL};
    rc = att_f64_forward(&jb);
  } else {
    att_f32_job jb = {g, ember_data(q), ember_data(k), ember_data(v),
                      mask ? ember_data(mask) : NULL, NULL, NULL, NULL,
                      ember_data(o), ember_data(lse), NULL, NULL, NULL, NULL};
    rc = att_f32_forward(&jb);
  }
  return rc < 0 ? ember_set_error("scaled_dot_product_attention: out of "
                                  "memory for the attention's scratch")
                : 0;
}

int ember_cpu_attention_backward(ember_tensor *gq, ember_tensor *gk,
                                 ember_tensor *gv, const ember_tensor *go,
                                 const ember_tensor *q, const ember_tensor *k,
                                 const ember_tensor *v, const ember_tensor *o,
                                 const ember_tensor *lse,
                                 const ember_tensor *mask,
                                 const ember_attention_geom *g) {
  int rc;
  if (q->dtype == EMBER_FLOAT64) {
    att_f64_job jb = {g, ember_data(q), ember_data(k), ember_data(v),
                      mask ? ember_data(mask) : NULL, ember_data(o),
                      ember_data(go), ember_data(lse), NULL, NULL,
                      ember_data(gq), ember_data(gk), ember_data(gv), NULL};
    rc = att_f64_backward(&jb);
  } else {
    att_f32_job jb = {g, ember_data(q), ember_data(k), ember_data(v),
                      mask ? ember_data(mask) : NULL, ember_data(o),
                      ember_data(go), ember_data(lse), NULL, NULL,
                      ember_data(gq), ember_data(gk), ember_data(gv), NULL};
    rc = att_f32_backward(&jb);
  }
  return rc < 0 ? ember_set_error("scaled_dot_product_attention_backward: "
                                  "out of memory for the attention's scratch")
                : 0;
}
