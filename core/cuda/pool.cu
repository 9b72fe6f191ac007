/*
** pool.cu -- 2-D max and average pooling on the GPU (the twin of
** core/cpu/pool.c).
**
** `planes` (N*C) contiguous H x W input planes, as many OH x OW output
** planes (ember_pool2d_geom).  The window rules are the CPU's, which are
** PyTorch's:
**   max: taps outside the input are skipped (padding acts as -inf); the
**        first maximum wins a tie, and a NaN wins over anything (the last
**        NaN if several), so NaN propagates.
**   avg: the window is clipped to the padded input [-p, H+p) for the
**        count_include_pad divisor and to the input [0, H) for the sum and
**        the other divisor.
** Forward kernels run one thread per output element, each doing exactly
** the CPU's loop for its window, so their results are bit-exact.  The avg
** backward runs one thread per input element and sums the windows that
** cover it in the CPU's order (bit-exact too).  The max backward scatters
** with atomicAdd (its geometry has no window to gather over), so where
** windows overlap and pick the same input the sum's order, hence its
** rounding, may differ from the CPU's.
*/
#include <math.h>

#include <stdio.h>

#include "cuda_internal.h"

/* First tap at or after `start` (which may lie in the padding) that is
   inside the input, stepping by d. */
__device__ static inline int64_t first_inside(int64_t start, int64_t d) {
  return start >= 0 ? start : start + (-start + d - 1) / d * d;
}

/* {======================================================================
** Max pooling
** ======================================================================= */

/* y (and idx: the 1-based flat position of each maximum in its plane)
   over planes * OH * OW outputs; the CPU's max_plane loop per output. */
template <typename T>
static __global__ void max_pool_kernel(T *y, int64_t *idx, const T *x,
                                       ember_pool2d_geom g, int64_t total) {
  CU_FOR(e, total) {
    int64_t ow = e % g.OW, oh = e / g.OW % g.OH, p = e / (g.OW * g.OH);
    const T *xp = x + p * g.H * g.W;
    int64_t h0 = oh * g.sh - g.ph, h1 = h0 + (g.kh - 1) * g.dh + 1;
    if (h1 > g.H) h1 = g.H;
    h0 = first_inside(h0, g.dh);
    int64_t w0 = ow * g.sw - g.pw, w1 = w0 + (g.kw - 1) * g.dw + 1;
    if (w1 > g.W) w1 = g.W;
    w0 = first_inside(w0, g.dw);
    int64_t best = h0 * g.W + w0;
    T m = -INFINITY;
    for (int64_t h = h0; h < h1; h += g.dh)
      for (int64_t w = w0; w < w1; w += g.dw) {
        T v = xp[h * g.W + w];
        if (v > m || isnan(v)) { m = v; best = h * g.W + w; }
      }
    y[e] = m;
    if (idx) idx[e] = best + 1;
  }
}

int ember_cuda_max_pool2d(ember_tensor *y, ember_tensor *idx,
                          const ember_tensor *x, const ember_pool2d_geom *g) {
  int64_t total = g->planes * g->OH * g->OW;
  if (total == 0) return 0;
  int64_t *ip = idx ? (int64_t *)cu_data(idx) : NULL;
  int rc = ember_cuda_dispatch_float(x->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    max_pool_kernel<T><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(y), ip, (const T *)cu_data(x), *g, total);
    return 0;
  });
  if (rc < 0) return -1;    /* a dtype it refuses */
  CU_LAUNCH_CHECK("max_pool2d");
  return 0;
}

/*
** gx[plane, idx - 1] += gy, one thread per gy element.  A bad index is
** skipped and deferred at its position e (the earliest one wins, the one
** the CPU's check names): the next sync reports it, and gx is then
** unspecified.  One launch more than the scatter, no wait.
*/
template <typename T>
static __global__ void max_pool_back_kernel(T *gx, const T *gy,
                                            const int64_t *ix, int64_t in,
                                            int64_t out, int64_t total,
                                            ember_cuda_defer df) {
  CU_FOR(e, total) {
    int64_t k = ix[e];
    if (k < 1 || k > in) {
      cu_defer_fail(df, e);
      continue;
    }
    atomicAdd(&gx[e / out * in + (k - 1)], gy[e]);
  }
}

int ember_cuda_max_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                   const ember_tensor *idx,
                                   const ember_pool2d_geom *g) {
  int64_t in = g->H * g->W, out = g->OH * g->OW, total = g->planes * out;
  size_t es = cu_elsize(gx->dtype);
  if (g->planes * in == 0) return 0;                 /* N = 0 */
  CU_CHECK(cudaMemsetAsync(cu_data(gx), 0, (size_t)(g->planes * in) * es));
  if (total == 0) return 0;
  char suffix[128];
  snprintf(suffix, sizeof suffix, " is out of range for an input plane of "
           "%lld elements (%lldx%lld)", (long long)in, (long long)g->H,
           (long long)g->W);
  ember_cuda_defer df;
  if (ember_cuda_defer_begin("max_pool2d_backward: index ", suffix, &df) < 0)
    return -1;
  const int64_t *ix = (const int64_t *)cu_data(idx);
  int rc = ember_cuda_dispatch_float(gx->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    max_pool_back_kernel<T><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(gx), (const T *)cu_data(gy), ix, in, out, total, df);
    return 0;
  });
  if (rc < 0) return -1;    /* a dtype it refuses */
  CU_LAUNCH_CHECK("max_pool2d_backward");
  cu_layout il;                     /* idx is contiguous: e at ix[e] */
  il.ndim = 1;
  il.shape[0] = total;
  il.strides[0] = 1;
  return ember_cuda_defer_end(&df, ix, EMBER_INT64, il);
}

/* }====================================================================== */

/* {======================================================================
** Average pooling
** ======================================================================= */

/* The window of output (oh, ow) clipped to the input, and its divisor;
   0 when the window holds no input element (its output is 0).  The CPU's
   avg_window_at, line for line. */
namespace {
struct avg_window {
  int64_t h0, h1, w0, w1;
  double div;
};
}  /* namespace */

__device__ static int avg_window_at(const ember_pool2d_geom &g, int64_t oh,
                                    int64_t ow, avg_window *a) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = h0 + g.kh, w1 = w0 + g.kw;
  if (h1 > g.H + g.ph) h1 = g.H + g.ph;
  if (w1 > g.W + g.pw) w1 = g.W + g.pw;
  int64_t padded = (h1 - h0) * (w1 - w0);
  a->h0 = h0 < 0 ? 0 : h0;
  a->w0 = w0 < 0 ? 0 : w0;
  a->h1 = h1 > g.H ? g.H : h1;
  a->w1 = w1 > g.W ? g.W : w1;
  if (a->h0 >= a->h1 || a->w0 >= a->w1) return 0;
  a->div = (double)(g.count_include_pad ? padded
                                        : (a->h1 - a->h0) * (a->w1 - a->w0));
  return 1;
}

/* One thread per output: the window's sum in double, in row-major order,
   divided in double, as the CPU. */
template <typename T>
static __global__ void avg_pool_kernel(T *y, const T *x, ember_pool2d_geom g,
                                       int64_t total) {
  CU_FOR(e, total) {
    int64_t ow = e % g.OW, oh = e / g.OW % g.OH, p = e / (g.OW * g.OH);
    const T *xp = x + p * g.H * g.W;
    avg_window a;
    double s = 0;
    if (avg_window_at(g, oh, ow, &a)) {
      for (int64_t h = a.h0; h < a.h1; h++)
        for (int64_t w = a.w0; w < a.w1; w++) s += xp[h * g.W + w];
      s /= a.div;
    }
    y[e] = (T)s;
  }
}

/*
** Outputs along one axis whose window covers input position h: window o
** spans [o*s - p, o*s - p + k) (its clipping to [0, H) and [-p, H+p)
** never excludes an input position h in [0, H)), so o*s <= h + p and
** o*s > h + p - k.  Writes [*lo, *hi]; empty when *lo > *hi.
*/
__device__ static inline void covering(int64_t h, int64_t k, int64_t s,
                                       int64_t p, int64_t O, int64_t *lo,
                                       int64_t *hi) {
  int64_t t = h + p - k;
  *lo = t < 0 ? 0 : t / s + 1;
  *hi = (h + p) / s;
  if (*hi > O - 1) *hi = O - 1;
}

/*
** One thread per input element: gx = sum over the windows (oh, ow) that
** cover it, in increasing (oh, ow) order, of (T)(gy / div), accumulated
** in T from 0 -- the very sequence of additions the CPU's scatter makes
** into a zeroed gx, so no atomics and the same rounding.
*/
template <typename T>
static __global__ void avg_pool_back_kernel(T *gx, const T *gy,
                                            ember_pool2d_geom g,
                                            int64_t total) {
  CU_FOR(e, total) {
    int64_t w = e % g.W, h = e / g.W % g.H, p = e / (g.W * g.H);
    const T *gp = gy + p * g.OH * g.OW;
    int64_t oh0, oh1, ow0, ow1;
    covering(h, g.kh, g.sh, g.ph, g.OH, &oh0, &oh1);
    covering(w, g.kw, g.sw, g.pw, g.OW, &ow0, &ow1);
    T acc = 0;
    avg_window a;
    for (int64_t oh = oh0; oh <= oh1; oh++)
      for (int64_t ow = ow0; ow <= ow1; ow++) {
        if (!avg_window_at(g, oh, ow, &a)) continue;   /* cannot happen */
        acc += (T)(gp[oh * g.OW + ow] / a.div);
      }
    gx[e] = acc;
  }
}

int ember_cuda_avg_pool2d(ember_tensor *y, const ember_tensor *x,
                          const ember_pool2d_geom *g) {
  int64_t total = g->planes * g->OH * g->OW;
  if (total == 0) return 0;
  int rc = ember_cuda_dispatch_float(x->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    avg_pool_kernel<T><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(y), (const T *)cu_data(x), *g, total);
    return 0;
  });
  if (rc < 0) return -1;    /* a dtype it refuses */
  CU_LAUNCH_CHECK("avg_pool2d");
  return 0;
}

int ember_cuda_avg_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                   const ember_pool2d_geom *g) {
  int64_t total = g->planes * g->H * g->W;
  if (total == 0) return 0;
  int rc = ember_cuda_dispatch_float(gx->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    avg_pool_back_kernel<T><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(gx), (const T *)cu_data(gy), *g, total);
    return 0;
  });
  if (rc < 0) return -1;    /* a dtype it refuses */
  CU_LAUNCH_CHECK("avg_pool2d_backward");
  return 0;
}

/* }====================================================================== */
