/*
** scan.c -- CPU inclusive scans along a dimension (cumsum, cumprod,
** cummax, logcumsumexp), the `scan` slot.
**
** src and dst are contiguous, seen as [outer, n, inner] around the scanned
** dim.  For each outer slice we walk the n rows in order and carry one
** accumulator per column, a block of SCAN_BLOCK columns at a time: every
** row read is a contiguous run, and the accumulators stay on the stack.
** Floats accumulate in double (as PyTorch's CPU kernels, acc_type), then
** round into dst; integers wrap in unsigned arithmetic of their width.
*/
#include <math.h>

#include "cpu.h"

#define SCAN_BLOCK 64

/* log(exp(a) + exp(b)) as PyTorch's log_add_exp: two infinities of one
   sign give that infinity (not NaN from inf - inf). */
static inline double log_add_exp(double a, double b) {
  double mn = a < b ? a : b, mx = a < b ? b : a;
  if (isnan(a) || isnan(b)) return NAN;
  if (mn != mx || isfinite(mn)) return mx + log1p(exp(mn - mx));
  return a;
}

/* One dtype: T the element, A the accumulator.  `first` starts a column,
   `step` folds x into acc (both see acc, x, and for MAX the position k). */
#define SCAN_TYPED(NAME, T, A)                                                 \
  static void NAME(ember_scan_op op, T *d, int64_t *ix, const T *s,           \
                   int64_t outer, int64_t n, int64_t inner, int reverse) {    \
    A acc[SCAN_BLOCK];                                                         \
    int64_t pos[SCAN_BLOCK];                                                   \
    for (int64_t o = 0; o < outer; o++)                                        \
      for (int64_t j0 = 0; j0 < inner; j0 += SCAN_BLOCK) {                     \
        int64_t w = inner - j0 < SCAN_BLOCK ? inner - j0 : SCAN_BLOCK;         \
        for (int64_t r = 0; r < n; r++) {                                      \
          int64_t k = reverse ? n - 1 - r : r;                                 \
          int64_t base = (o * n + k) * inner + j0;                             \
          for (int64_t j = 0; j < w; j++) {                                    \
            A x = (A)s[base + j];                                              \
            if (r == 0) {                                                      \
              acc[j] = x;                                                      \
              pos[j] = k;                                                      \
            } else if (op == EMBER_SCAN_SUM) {                                 \
              acc[j] = acc[j] + x;                                             \
            } else if (op == EMBER_SCAN_PROD) {                                \
              acc[j] = acc[j] * x;                                             \
            } else if (op == EMBER_SCAN_MAX) {                                 \
              T xv = s[base + j], av = (T)acc[j];                              \
              if (xv != xv || (av == av && xv >= av)) {                        \
                acc[j] = x;                                                    \
                pos[j] = k;                                                    \
              }                                                                \
            } else {                                                           \
              acc[j] = (A)log_add_exp((double)acc[j], (double)x);              \
            }                                                                  \
            d[base + j] = (T)acc[j];                                           \
            if (ix) ix[base + j] = pos[j] + 1;                                 \
          }                                                                    \
        }                                                                      \
      }                                                                        \
  }

SCAN_TYPED(scan_f32, float, double)
SCAN_TYPED(scan_f64, double, double)
SCAN_TYPED(scan_i32, int32_t, uint32_t)
SCAN_TYPED(scan_i64, int64_t, uint64_t)
SCAN_TYPED(scan_u8, uint8_t, uint32_t)

int ember_cpu_scan(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                   const ember_tensor *src, int dim, int reverse) {
  int64_t outer = 1, inner = 1, n = src->shape[dim];
  for (int i = 0; i < dim; i++) outer *= src->shape[i];
  for (int i = dim + 1; i < src->ndim; i++) inner *= src->shape[i];
  if (outer == 0 || inner == 0 || n == 0) return 0;
  int64_t *ix = op == EMBER_SCAN_MAX && idx ? (int64_t *)ember_data(idx) : NULL;
  void *d = ember_data(dst);
  const void *s = ember_data(src);
  switch (src->dtype) {
    case EMBER_FLOAT32: scan_f32(op, d, ix, s, outer, n, inner, reverse); break;
    case EMBER_FLOAT64: scan_f64(op, d, ix, s, outer, n, inner, reverse); break;
    case EMBER_INT32: scan_i32(op, d, ix, s, outer, n, inner, reverse); break;
    case EMBER_INT64: scan_i64(op, d, ix, s, outer, n, inner, reverse); break;
    default: scan_u8(op, d, ix, s, outer, n, inner, reverse); break;
  }
  return 0;
}
