/*
** scan.cu -- inclusive scans along a dimension (cumsum, cumprod, cummax,
** logcumsumexp), the `scan` slot (CUDA).
**
** The CUDA twin of core/cpu/scan.c.  src and dst are contiguous (the core
** makes them so), seen as [outer, n, inner] around the scanned dim.  One
** thread per independent line (an (outer, inner) pair) walks its n
** elements in order at stride inner: neighbouring threads read
** neighbouring columns, so the loads coalesce whenever inner > 1.  The
** results are the CPU's: floats accumulate in double and round into dst
** at each step, integers wrap in unsigned arithmetic, cummax keeps the
** latest position on ties and lets a NaN win, log_add_exp is PyTorch's.
** A scan over a long dim with few lines leaves the GPU mostly idle; a
** blocked parallel scan would be the next step if that case matters.
*/
#include <math.h>

#include "cuda_internal.h"

/* the accumulator of each element type: double for floats, the unsigned
   type for integers (wrapping as the CPU does) */
template <class T> struct scan_acc { typedef double A; };
template <> struct scan_acc<int32_t> { typedef uint32_t A; };
template <> struct scan_acc<int64_t> { typedef uint64_t A; };
template <> struct scan_acc<uint8_t> { typedef uint32_t A; };

static __device__ double scan_log_add_exp(double a, double b) {
  double mn = a < b ? a : b, mx = a < b ? b : a;
  if (isnan(a) || isnan(b)) return __longlong_as_double(0x7ff8000000000000LL);
  if (mn != mx || isfinite(mn)) return mx + log1p(exp(mn - mx));
  return a;
}

template <class T, int OP>
static __global__ void k_scan(T *d, int64_t *ix, const T *s, int64_t lines,
                              int64_t n, int64_t inner, int reverse) {
  typedef typename scan_acc<T>::A A;
  CU_FOR(line, lines) {
    int64_t o = line / inner, j = line - o * inner;
    int64_t base = o * n * inner + j;
    A acc = 0;
    int64_t pos = 0;
    for (int64_t r = 0; r < n; r++) {
      int64_t k = reverse ? n - 1 - r : r;
      int64_t e = base + k * inner;
      T xv = s[e];
      A x = (A)xv;
      if (r == 0) {
        acc = x;
        pos = k;
      } else if (OP == EMBER_SCAN_SUM) {
        acc = acc + x;
      } else if (OP == EMBER_SCAN_PROD) {
        acc = acc * x;
      } else if (OP == EMBER_SCAN_MAX) {
        T av = (T)acc;
        if (xv != xv || (av == av && xv >= av)) {
          acc = x;
          pos = k;
        }
      } else {
        acc = (A)scan_log_add_exp((double)acc, (double)x);
      }
      d[e] = (T)acc;
      if (OP == EMBER_SCAN_MAX && ix) ix[e] = pos + 1;
    }
  }
}

template <class T>
static int scan_typed(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                      const ember_tensor *src, int64_t outer, int64_t n,
                      int64_t inner, int reverse) {
  T *d = (T *)cu_data(dst);
  const T *s = (const T *)cu_data(src);
  int64_t *ix = idx ? (int64_t *)cu_data(idx) : NULL;
  int64_t lines = outer * inner;
  unsigned nb = cu_blocks(lines);
  switch (op) {
    case EMBER_SCAN_SUM:
      k_scan<T, EMBER_SCAN_SUM><<<nb, CU_THREADS>>>(d, NULL, s, lines, n, inner, reverse);
      break;
    case EMBER_SCAN_PROD:
      k_scan<T, EMBER_SCAN_PROD><<<nb, CU_THREADS>>>(d, NULL, s, lines, n, inner, reverse);
      break;
    case EMBER_SCAN_MAX:
      k_scan<T, EMBER_SCAN_MAX><<<nb, CU_THREADS>>>(d, ix, s, lines, n, inner, reverse);
      break;
    default:
      k_scan<T, EMBER_SCAN_LOGSUMEXP><<<nb, CU_THREADS>>>(d, NULL, s, lines, n, inner, reverse);
      break;
  }
  CU_LAUNCH_CHECK("scan");
  return 0;
}

int ember_cuda_scan(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                    const ember_tensor *src, int dim, int reverse) {
  int64_t outer = 1, inner = 1, n = src->shape[dim];
  for (int i = 0; i < dim; i++) outer *= src->shape[i];
  for (int i = dim + 1; i < src->ndim; i++) inner *= src->shape[i];
  if (outer == 0 || inner == 0 || n == 0) return 0;
  if (op == EMBER_SCAN_LOGSUMEXP)
    return ember_cuda_dispatch_float(src->dtype, [&](auto ty) {
      return scan_typed<typename decltype(ty)::T>(op, dst, idx, src, outer, n,
                                                   inner, reverse);
    });
  return ember_cuda_dispatch(src->dtype, [&](auto ty) {
    return scan_typed<typename decltype(ty)::T>(op, dst, idx, src, outer, n,
                                                 inner, reverse);
  });
}
