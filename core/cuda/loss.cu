/*
** loss.cu -- fused cross entropy over rows of logits and its backward
** (CUDA).
**
** The CUDA twin of core/cpu/loss.c: same slots, same formulas (stated
** there), sums in double.  One row per warp (C <= 1024) or per block
** (row_group.h); the forward makes the row's max, sum of exponentials and
** (with label smoothing) weighted sum of logits in three group
** reductions; the backward writes softmax minus the smoothed one-hot in
** one pass.  Targets were checked by the front door (ember_check_index).
*/
#include <math.h>

#include "row_group.h"

__device__ static inline float ce_exp(float v) { return expf(v); }
__device__ static inline double ce_exp(double v) { return exp(v); }

template <bool W, class T>
__global__ void k_cross_entropy(T *loss, T *wt, T *lse_out, const T *x,
                                const int64_t *tg, const T *w, int64_t rows,
                                int64_t c, int64_t ignore, double s,
                                const double *wsum_p) {
  typedef row_group<W> g;
  __shared__ double sh[32];
  double wsum = wsum_p ? *wsum_p : (double)c;
  __shared__ T shm[32];
  for (int64_t r = g::first(); r < rows; r += g::step()) {
    const T *xr = x + r * c;
    T mx = (T)-INFINITY;
    for (int64_t k = g::rank(); k < c; k += g::size()) mx = rg_max()(mx, xr[k]);
    mx = rg_all<W>(mx, rg_max(), (T)-INFINITY, shm);
    double sum = 0;
    for (int64_t k = g::rank(); k < c; k += g::size())
      sum += (double)ce_exp((T)(xr[k] - mx));
    double lse = (double)mx + log(rg_all<W>(sum, rg_add(), 0.0, sh));
    int64_t t = tg[r];
    int keep = t != ignore;
    double wtv = keep ? (w ? (double)w[t - 1] : 1.0) : 0.0;
    double l = keep ? wtv * (lse - (double)xr[t - 1]) : 0.0;
    if (s > 0) {
      double sw = 0;
      if (keep)
        for (int64_t k = g::rank(); k < c; k += g::size())
          sw += (double)xr[k] * (w ? (double)w[k] : 1.0);
      sw = rg_all<W>(sw, rg_add(), 0.0, sh);
      l = (1 - s) * l + s / (double)c * (keep ? wsum * lse - sw : 0.0);
    }
    if (g::rank() == 0) {
      loss[r] = (T)l;
      wt[r] = (T)wtv;
      lse_out[r] = (T)lse;
    }
  }
}

template <bool W, class T>
__global__ void k_cross_entropy_backward(T *dx, const T *gs, const T *x,
                                         const T *lse, const int64_t *tg,
                                         const T *w, int64_t rows, int64_t c,
                                         int64_t ignore, double s,
                                         const double *wsum_p) {
  typedef row_group<W> g;
  double wsum = wsum_p ? *wsum_p : (double)c;
  for (int64_t r = g::first(); r < rows; r += g::step()) {
    int64_t t = tg[r];
    int keep = t != ignore;
    double wtv = keep ? (w ? (double)w[t - 1] : 1.0) : 0.0;
    double gv = (double)gs[r];
    double hard = gv * (1 - s) * wtv, soft = gv * (s / (double)c) * keep;
    T l = lse[r];
    for (int64_t k = g::rank(); k < c; k += g::size()) {
      double p = (double)ce_exp((T)(x[r * c + k] - l));
      double d = hard * p;
      if (s > 0) d += soft * (wsum * p - (w ? (double)w[k] : 1.0));
      if (keep && k == t - 1) d -= hard;
      dx[r * c + k] = (T)d;
    }
  }
}

/* W: the sum of the class weights (needed with label smoothing; C
   without weights).  Reading the weights on the host would wait, so one
   block sums them on the device into a temporary the row kernels read. */
template <class T>
__global__ void k_weight_total(double *out, const T *w, int64_t c) {
  __shared__ double sh[32];
  double s = 0;
  for (int64_t k = threadIdx.x; k < c; k += blockDim.x) s += (double)w[k];
  s = rg_all<false>(s, rg_add(), 0.0, sh);
  if (threadIdx.x == 0) *out = s;
}

/* The temporary holding W, or NULL when the kernels use C (no weights or
   no smoothing); *fail set when the allocation or launch failed. */
template <class T>
static double *weight_total(const ember_tensor *w, int64_t c, double s,
                            int *fail) {
  *fail = 0;
  if (!w || !(s > 0)) return NULL;
  double *p = (double *)ember_cuda_alloc(sizeof(double));
  if (!p) {
    *fail = 1;
    return NULL;
  }
  k_weight_total<T><<<1, CU_THREADS>>>(p, (const T *)cu_data(w), c);
  return p;
}

int ember_cuda_cross_entropy(ember_tensor *loss, ember_tensor *wt,
                             ember_tensor *lse, const ember_tensor *x,
                             const ember_tensor *t, const ember_tensor *w,
                             int64_t ignore, double smoothing) {
  int64_t rows = x->shape[0], c = x->shape[1];
  if (rows == 0) return 0;
  return ember_cuda_dispatch_float(x->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    int fail;
    double *ws = weight_total<T>(w, c, smoothing, &fail);
    if (fail) return -1;
    const T *wp = w ? (const T *)cu_data(w) : NULL;
    if (rg_use_warps(c))
      k_cross_entropy<true, T><<<rg_grid(rows, true), CU_THREADS>>>(
          (T *)cu_data(loss), (T *)cu_data(wt), (T *)cu_data(lse),
          (const T *)cu_data(x), (const int64_t *)cu_data(t), wp, rows, c,
          ignore, smoothing, ws);
    else
      k_cross_entropy<false, T><<<rg_grid(rows, false), CU_THREADS>>>(
          (T *)cu_data(loss), (T *)cu_data(wt), (T *)cu_data(lse),
          (const T *)cu_data(x), (const int64_t *)cu_data(t), wp, rows, c,
          ignore, smoothing, ws);
    if (ws) ember_cuda_free(ws);      /* stream-ordered: reused after ours */
    CU_LAUNCH_CHECK("cross_entropy");
    return 0;
  });
}

int ember_cuda_cross_entropy_backward(ember_tensor *dx, const ember_tensor *gs,
                                      const ember_tensor *x,
                                      const ember_tensor *lse,
                                      const ember_tensor *t,
                                      const ember_tensor *w, int64_t ignore,
                                      double smoothing) {
  int64_t rows = x->shape[0], c = x->shape[1];
  if (rows == 0 || c == 0) return 0;
  return ember_cuda_dispatch_float(x->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    int fail;
    double *ws = weight_total<T>(w, c, smoothing, &fail);
    if (fail) return -1;
    const T *wp = w ? (const T *)cu_data(w) : NULL;
    if (rg_use_warps(c))
      k_cross_entropy_backward<true, T><<<rg_grid(rows, true), CU_THREADS>>>(
          (T *)cu_data(dx), (const T *)cu_data(gs), (const T *)cu_data(x),
          (const T *)cu_data(lse), (const int64_t *)cu_data(t), wp, rows, c,
          ignore, smoothing, ws);
    else
      k_cross_entropy_backward<false, T><<<rg_grid(rows, false), CU_THREADS>>>(
          (T *)cu_data(dx), (const T *)cu_data(gs), (const T *)cu_data(x),
          (const T *)cu_data(lse), (const int64_t *)cu_data(t), wp, rows, c,
          ignore, smoothing, ws);
    if (ws) ember_cuda_free(ws);
    CU_LAUNCH_CHECK("cross_entropy backward");
    return 0;
  });
}
