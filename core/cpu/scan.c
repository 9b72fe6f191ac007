/*
** scan.c -- CPU inclusive scans along a dimension (cumsum, cumprod,
** cummax, logcumsumexp), the `scan` slot.
**
** src and dst are contiguous, seen as [outer, n, inner] around the scanned
** dim.  The work comes in units: an outer slice and a block of up to
** SCAN_BLOCK columns, whose n rows we walk in order carrying one
** accumulator per column (every row read is a contiguous run, the
** accumulators stay on the stack).  Floats accumulate in double (as
** PyTorch's CPU kernels, acc_type), then round into dst; integers wrap in
** unsigned arithmetic of their width.
**
** Threads.  Units are independent: with at least as many units as
** threads, each thread takes whole units.  With fewer (one long line, a
** few columns) and at least three threads a unit, the rows of each unit
** are cut into chunks, a chunk per thread, and scanned in two passes (reduce, then scan): pass 1 folds
** each chunk but the last into its total, the totals are folded in order
** into each chunk's carry, and pass 2 scans each chunk from its carry and
** writes.  That folds the line in another order than one thread would, so
** float sums and products may differ in double's last bits before the
** result is rounded (maxima, indices and integers are the same); each
** step is the combine rule that makes this exact for max: the later of
** equal values wins, a NaN wins (core/cuda/scan_math.h, which the tiled
** CUDA kernel shares).
*/
#include <math.h>
#include <stdlib.h>

#include "cpu.h"

#define SCAN_BLOCK 64
/* rows per chunk at least, when a unit is cut among threads */
#define SCAN_CHUNK_MIN 16384

/* log(exp(a) + exp(b)) as PyTorch's log_add_exp: two infinities of one
   sign give that infinity (not NaN from inf - inf). */
static inline double log_add_exp(double a, double b) {
  double mn = a < b ? a : b, mx = a < b ? b : a;
  if (isnan(a) || isnan(b)) return NAN;
  if (mn != mx || isfinite(mn)) return mx + log1p(exp(mn - mx));
  return a;
}

/* A unit's state between chunks: each column's accumulator (f for the
   float dtypes, u for the integers, which need all 64 bits) and, for max,
   the position it holds. */
typedef struct scan_carry {
  double f[SCAN_BLOCK];
  uint64_t u[SCAN_BLOCK];
  int64_t pos[SCAN_BLOCK];
} scan_carry;

/*
** One dtype: T the element, A the accumulator, F the carry's field (f or
** u).  NAME_rows scans m rows of w columns (s, d at the unit's first
** column; row k at k * inner), positions k0, k0 + step, ...: from the
** carry c when `started`, else from the first row; the carry is updated;
** d (and ix) written when `write`.  The switch hands the loop constant
** options, which EMBER_ALWAYS_INLINE folds in: no branch on op, and no
** column loop for one column (a long line of a 1-d tensor).
*/
#define SCAN_TYPED(NAME, T, A, F)                                              \
  static EMBER_ALWAYS_INLINE void NAME##_step(int op, A *acc, int64_t *pos,    \
                                              A x, int64_t k) {                \
    if (op == EMBER_SCAN_SUM) {                                                \
      *acc = *acc + x;                                                         \
    } else if (op == EMBER_SCAN_PROD) {                                        \
      *acc = *acc * x;                                                         \
    } else if (op == EMBER_SCAN_MAX) {                                         \
      T xv = (T)x, av = (T)*acc;                                               \
      if (xv != xv || (av == av && xv >= av)) {                                \
        *acc = x;                                                              \
        *pos = k;                                                              \
      }                                                                        \
    } else {                                                                   \
      *acc = (A)log_add_exp((double)*acc, (double)x);                          \
    }                                                                          \
  }                                                                            \
  static EMBER_ALWAYS_INLINE void NAME##_loop(                                 \
      int op, int64_t w, int write, T *d, int64_t *ix, const T *s,            \
      int64_t inner, int64_t k0, int64_t step, int64_t m, scan_carry *c,      \
      int started) {                                                           \
    A acc[SCAN_BLOCK];                                                         \
    int64_t pos[SCAN_BLOCK];                                                   \
    int64_t r = 0;                                                             \
    if (!started) {                                                            \
      for (int64_t j = 0; j < w; j++) {                                        \
        acc[j] = (A)s[k0 * inner + j];                                         \
        pos[j] = k0;                                                           \
      }                                                                        \
      r = 1;                                                                   \
    } else {                                                                   \
      for (int64_t j = 0; j < w; j++) {                                        \
        acc[j] = (A)c->F[j];                                                   \
        pos[j] = c->pos[j];                                                    \
      }                                                                        \
    }                                                                          \
    if (write && !started)                                                     \
      for (int64_t j = 0; j < w; j++) {                                        \
        d[k0 * inner + j] = (T)acc[j];                                         \
        if (ix) ix[k0 * inner + j] = k0 + 1;                                   \
      }                                                                        \
    for (; r < m; r++) {                                                       \
      int64_t k = k0 + r * step, base = k * inner;                             \
      for (int64_t j = 0; j < w; j++) {                                        \
        NAME##_step(op, &acc[j], &pos[j], (A)s[base + j], k);                  \
        if (write) {                                                           \
          d[base + j] = (T)acc[j];                                             \
          if (op == EMBER_SCAN_MAX && ix) ix[base + j] = pos[j] + 1;           \
        }                                                                      \
      }                                                                        \
    }                                                                          \
    for (int64_t j = 0; j < w; j++) {                                          \
      c->F[j] = acc[j];                                                        \
      c->pos[j] = pos[j];                                                      \
    }                                                                          \
  }                                                                            \
  static EMBER_SIMD void NAME##_rows(                                          \
      int op, int64_t w, int write, T *d, int64_t *ix, const T *s,            \
      int64_t inner, int64_t k0, int64_t step, int64_t m, scan_carry *c,      \
      int started) {                                                           \
    if (m <= 0) return;                                                        \
    switch (op * 4 + (w == 1) * 2 + (write != 0)) {                            \
      SCAN_CASES(NAME, EMBER_SCAN_SUM)                                         \
      SCAN_CASES(NAME, EMBER_SCAN_PROD)                                        \
      SCAN_CASES(NAME, EMBER_SCAN_MAX)                                         \
      default:                                                                 \
      SCAN_CASES(NAME, EMBER_SCAN_LOGSUMEXP)                                   \
    }                                                                          \
  }                                                                            \
  /* the carry b (a later chunk's total) folded into a (the chunks before) */ \
  static void NAME##_combine(scan_carry *a, const scan_carry *b, int64_t w,  \
                             int op) {                                         \
    for (int64_t j = 0; j < w; j++) {                                          \
      A acc = (A)a->F[j];                                                      \
      NAME##_step(op, &acc, &a->pos[j], (A)b->F[j], b->pos[j]);               \
      a->F[j] = acc;                                                           \
    }                                                                          \
  }

/* The four cases of op OP: one column or several, writing or not. */
#define SCAN_CASES(NAME, OP)                                                   \
  case OP * 4 + 0: NAME##_loop(OP, w, 0, d, ix, s, inner, k0, step, m, c, started); break; \
  case OP * 4 + 1: NAME##_loop(OP, w, 1, d, ix, s, inner, k0, step, m, c, started); break; \
  case OP * 4 + 2: NAME##_loop(OP, 1, 0, d, ix, s, inner, k0, step, m, c, started); break; \
  case OP * 4 + 3: NAME##_loop(OP, 1, 1, d, ix, s, inner, k0, step, m, c, started); break;

SCAN_TYPED(scan_f32, float, double, f)
SCAN_TYPED(scan_f64, double, double, f)
SCAN_TYPED(scan_i32, int32_t, uint32_t, u)
SCAN_TYPED(scan_i64, int64_t, uint64_t, u)
SCAN_TYPED(scan_u8, uint8_t, uint32_t, u)

/* {======================================================================
** Splitting the work
** ======================================================================= */

static int64_t scan_min(int64_t a, int64_t b) { return a < b ? a : b; }

typedef struct scan_job {
  int op, reverse;
  ember_dtype dt;
  char *d;
  int64_t *ix;
  const char *s;
  size_t es;                            /* element size */
  int64_t n, inner, blocks;             /* blocks: column blocks per slice */
} scan_job;

/* Rows [r0, r0 + m) (in scan order) of unit u, from carry c when started. */
static void scan_unit(const scan_job *jb, int64_t u, int64_t r0, int64_t m,
                      scan_carry *c, int started, int write) {
  int64_t o = u / jb->blocks, j0 = (u % jb->blocks) * SCAN_BLOCK;
  int64_t w = scan_min(jb->inner - j0, SCAN_BLOCK);
  int64_t first = o * jb->n * jb->inner + j0;          /* element offset */
  int64_t step = jb->reverse ? -1 : 1;
  int64_t k0 = jb->reverse ? jb->n - 1 - r0 : r0;
  void *d = jb->d + first * jb->es;
  const void *s = jb->s + first * jb->es;
  int64_t *ix = jb->ix ? jb->ix + first : NULL;
  int op = jb->op;
  switch (jb->dt) {
    case EMBER_FLOAT32: scan_f32_rows(op, w, write, d, ix, s, jb->inner, k0, step, m, c, started); break;
    case EMBER_FLOAT64: scan_f64_rows(op, w, write, d, ix, s, jb->inner, k0, step, m, c, started); break;
    case EMBER_INT32: scan_i32_rows(op, w, write, d, ix, s, jb->inner, k0, step, m, c, started); break;
    case EMBER_INT64: scan_i64_rows(op, w, write, d, ix, s, jb->inner, k0, step, m, c, started); break;
    default: scan_u8_rows(op, w, write, d, ix, s, jb->inner, k0, step, m, c, started); break;
  }
}

/* b folded into a, for unit u's columns. */
static void scan_fold(const scan_job *jb, int64_t u, scan_carry *a,
                      const scan_carry *b) {
  int64_t j0 = (u % jb->blocks) * SCAN_BLOCK;
  int64_t w = scan_min(jb->inner - j0, SCAN_BLOCK);
  switch (jb->dt) {
    case EMBER_FLOAT32: scan_f32_combine(a, b, w, jb->op); break;
    case EMBER_FLOAT64: scan_f64_combine(a, b, w, jb->op); break;
    case EMBER_INT32: scan_i32_combine(a, b, w, jb->op); break;
    case EMBER_INT64: scan_i64_combine(a, b, w, jb->op); break;
    default: scan_u8_combine(a, b, w, jb->op); break;
  }
}

/* Few units, long rows: chunks of each unit's rows, two passes. */
static int scan_chunked(const scan_job *jb, int64_t units, int64_t chunks,
                        int nt) {
  int64_t len = (jb->n + chunks - 1) / chunks, cnt = units * chunks;
  scan_carry *cs = malloc((size_t)cnt * sizeof *cs);
  if (!cs)
    return ember_set_error("%s: out of memory for the scan's carries",
                           jb->op == EMBER_SCAN_SUM ? "cumsum" :
                           jb->op == EMBER_SCAN_PROD ? "cumprod" :
                           jb->op == EMBER_SCAN_MAX ? "cummax" : "logcumsumexp");
  /* pass 1: each chunk's total (the last chunk's is never needed) */
  #pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t q = 0; q < cnt; q++) {
    int64_t c = q % chunks, r0 = c * len;
    if (c < chunks - 1 && r0 < jb->n)
      scan_unit(jb, q / chunks, r0, scan_min(len, jb->n - r0), &cs[q], 0, 0);
  }
  /* the carries, in order: cs[c] becomes the total of chunks 0..c */
  for (int64_t u = 0; u < units; u++)
    for (int64_t c = 1; c < chunks - 1 && c * len < jb->n; c++) {
      scan_carry t = cs[u * chunks + c - 1];
      scan_fold(jb, u, &t, &cs[u * chunks + c]);
      cs[u * chunks + c] = t;
    }
  /* pass 2: each chunk from the carry of the chunks before it */
  #pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t q = 0; q < cnt; q++) {
    int64_t c = q % chunks, r0 = c * len;
    if (r0 >= jb->n) continue;
    scan_carry carry;
    if (c > 0) carry = cs[q - 1];
    scan_unit(jb, q / chunks, r0, scan_min(len, jb->n - r0), &carry, c > 0, 1);
  }
  free(cs);
  return 0;
}

int ember_cpu_scan(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                   const ember_tensor *src, int dim, int reverse) {
  int64_t outer = 1, inner = 1, n = src->shape[dim];
  for (int i = 0; i < dim; i++) outer *= src->shape[i];
  for (int i = dim + 1; i < src->ndim; i++) inner *= src->shape[i];
  if (outer == 0 || inner == 0 || n == 0) return 0;
  scan_job jb = {(int)op, reverse, src->dtype, ember_data(dst),
                 op == EMBER_SCAN_MAX && idx ? (int64_t *)ember_data(idx) : NULL,
                 ember_data(src), ember_dtype_size(src->dtype),
                 n, inner, (inner + SCAN_BLOCK - 1) / SCAN_BLOCK};
  int64_t units = outer * jb.blocks;
  int nt = outer * n * inner >= EMBER_CPU_PARALLEL_MIN ? ember_cpu_threads() : 1;
  int64_t chunks = units >= nt ? 1 : (nt + units - 1) / units;
  if (chunks > n / SCAN_CHUNK_MIN) chunks = n / SCAN_CHUNK_MIN;
  /* two chunks gain nothing: the reduce of the first costs what the
     halving saves (each pass walks the dependent chain of its chunk) */
  if (chunks > 2) return scan_chunked(&jb, units, chunks, nt);
  #pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && units > 1)
  for (int64_t u = 0; u < units; u++) {
    scan_carry c;
    scan_unit(&jb, u, 0, n, &c, 0, 1);
  }
  return 0;
}

/* }====================================================================== */
