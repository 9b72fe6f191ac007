/*
** norm.cu -- fused layer norm and RMS norm and their backward (CUDA).
**
** The CUDA twin of core/cpu/norm.c (same slots, same formulas, statistics
** in double).  Forward and the dx part of the backward: one row per warp
** (n <= 1024) or per block (row_group.h).  dweight and dbias are column
** sums over the rows, made in two passes without atomics, so they are
** deterministic: blocks of 32 columns by LN_CHUNK rows write partial sums
** (double) to a temporary, then one thread per column adds the chunks in
** order.
**
** bfloat16 and float16: elements load as float (cu_load) and results are
** rounded once when stored; the saved mean and rstd are of the compute
** type C (float32 for the halves, as PyTorch keeps them: the core makes
** them so), T itself otherwise.
*/
#include <math.h>

#include "row_group.h"

#define LN_CHUNK 64   /* rows per partial column sum */

template <bool W, class T, class C = typename cu_elem<T>::C>
__global__ void k_layer_norm(T *y, C *mean, C *rstd, const T *x, const T *w,
                             const T *b, int64_t rows, int64_t n, double eps,
                             int rms) {
  typedef row_group<W> g;
  __shared__ double sh[32];
  for (int64_t r = g::first(); r < rows; r += g::step()) {
    const T *xr = x + r * n;
    double m = 0, ss = 0;
    if (!rms) {
      double s = 0;
      for (int64_t i = g::rank(); i < n; i += g::size()) s += (double)cu_load(xr[i]);
      m = rg_all<W>(s, rg_add(), 0.0, sh) / (double)n;
    }
    for (int64_t i = g::rank(); i < n; i += g::size()) {
      double d = (double)cu_load(xr[i]) - m;
      ss += d * d;
    }
    double rs = 1.0 / sqrt(rg_all<W>(ss, rg_add(), 0.0, sh) / (double)n + eps);
    if (g::rank() == 0) {
      if (mean) mean[r] = (C)m;
      rstd[r] = (C)rs;
    }
    /* the statistics rounded to C, as the CPU uses them */
    double mt = (double)(C)m, rt = (double)(C)rs;
    for (int64_t i = g::rank(); i < n; i += g::size()) {
      double v = ((double)cu_load(xr[i]) - mt) * rt;
      if (w) v *= (double)cu_load(w[i]);
      if (b) v += (double)cu_load(b[i]);
      y[r * n + i] = cu_store<T>((C)v);
    }
  }
}

template <bool W, class T, class C = typename cu_elem<T>::C>
__global__ void k_layer_norm_dx(T *dx, const T *gy, const T *x, const C *mean,
                                const C *rstd, const T *w, int64_t rows,
                                int64_t n, int rms) {
  typedef row_group<W> g;
  __shared__ double sh[32];
  for (int64_t r = g::first(); r < rows; r += g::step()) {
    const T *xr = x + r * n, *gr = gy + r * n;
    double m = rms ? 0.0 : (double)mean[r], rs = (double)rstd[r];
    double sg = 0, sgx = 0;
    for (int64_t i = g::rank(); i < n; i += g::size()) {
      double gw = (double)cu_load(gr[i]) * (w ? (double)cu_load(w[i]) : 1.0);
      sg += gw;
      sgx += gw * ((double)cu_load(xr[i]) - m) * rs;
    }
    sg = rms ? 0.0 : rg_all<W>(sg, rg_add(), 0.0, sh);
    sgx = rg_all<W>(sgx, rg_add(), 0.0, sh);
    double c1 = sg / (double)n, c2 = sgx / (double)n;
    for (int64_t i = g::rank(); i < n; i += g::size()) {
      double gw = (double)cu_load(gr[i]) * (w ? (double)cu_load(w[i]) : 1.0);
      double xh = ((double)cu_load(xr[i]) - m) * rs;
      dx[r * n + i] = cu_store<T>((C)(rs * (gw - c1 - xh * c2)));
    }
  }
}

/* Pass 1: block (32, 8) over columns [32 bx, 32 bx + 32) and rows
   [per by, per (by + 1)): part[by][c] (dw) and part[chunks + by][c] (db). */
template <class T, class C = typename cu_elem<T>::C>
__global__ void k_layer_norm_cols(double *part, const T *gy, const T *x,
                                  const C *mean, const C *rstd, int64_t rows,
                                  int64_t n, int64_t per, int64_t chunks,
                                  int rms,
                                  int want_w, int want_b) {
  __shared__ double sw[8][33], sb[8][33];
  int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
  int64_t r0 = (int64_t)blockIdx.y * per;
  int64_t r1 = r0 + per < rows ? r0 + per : rows;
  double aw = 0, ab = 0;
  if (c < n)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
      double gv = (double)cu_load(gy[r * n + c]);
      double m = rms ? 0.0 : (double)mean[r];
      aw += gv * ((double)cu_load(x[r * n + c]) - m) * (double)rstd[r];
      ab += gv;
    }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < n) {
    double tw = 0, tb = 0;
    for (int k = 0; k < 8; k++) {
      tw += sw[k][threadIdx.x];
      tb += sb[k][threadIdx.x];
    }
    if (want_w) part[blockIdx.y * n + c] = tw;
    if (want_b) part[(chunks + blockIdx.y) * n + c] = tb;
  }
}

/* Pass 2: one thread per column adds the chunks in order. */
template <class T>
__global__ void k_layer_norm_cols_sum(T *dw, T *db, const double *part,
                                      int64_t n, int64_t chunks) {
  CU_FOR(c, n) {
    double tw = 0, tb = 0;
    for (int64_t k = 0; k < chunks; k++) {
      if (dw) tw += part[k * n + c];
      if (db) tb += part[(chunks + k) * n + c];
    }
    if (dw) dw[c] = cu_store<T>((typename cu_elem<T>::C)tw);
    if (db) db[c] = cu_store<T>((typename cu_elem<T>::C)tb);
  }
}

static inline void *opt_data(const ember_tensor *t) {
  return t ? cu_data(t) : NULL;
}

int ember_cuda_layer_norm(ember_tensor *y, ember_tensor *mean,
                          ember_tensor *rstd, const ember_tensor *x,
                          const ember_tensor *w, const ember_tensor *b,
                          int64_t n, double eps, int rms) {
  int64_t rows = cu_numel(rstd);
  if (rows == 0) return 0;
  bool warps = rg_use_warps(n);
  return ember_cuda_dispatch_float_half(x->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    typedef typename decltype(ty)::C C;
    if (warps)
      k_layer_norm<true, T><<<rg_grid(rows, true), CU_THREADS>>>(
          (T *)cu_data(y), (C *)opt_data(mean), (C *)cu_data(rstd),
          (const T *)cu_data(x), (const T *)opt_data(w), (const T *)opt_data(b),
          rows, n, eps, rms);
    else
      k_layer_norm<false, T><<<rg_grid(rows, false), CU_THREADS>>>(
          (T *)cu_data(y), (C *)opt_data(mean), (C *)cu_data(rstd),
          (const T *)cu_data(x), (const T *)opt_data(w), (const T *)opt_data(b),
          rows, n, eps, rms);
    CU_LAUNCH_CHECK(rms ? "rms_norm" : "layer_norm");
    return 0;
  });
}

int ember_cuda_layer_norm_backward(ember_tensor *dx, ember_tensor *dw,
                                   ember_tensor *db, const ember_tensor *g,
                                   const ember_tensor *x,
                                   const ember_tensor *mean,
                                   const ember_tensor *rstd,
                                   const ember_tensor *w, int64_t n, int rms) {
  int64_t rows = cu_numel(rstd);
  const char *what = rms ? "rms_norm backward" : "layer_norm backward";
  return ember_cuda_dispatch_float_half(x->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    typedef typename decltype(ty)::C C;
    const T *gp = (const T *)cu_data(g), *xp = (const T *)cu_data(x);
    const C *mp = (const C *)opt_data(mean), *rp = (const C *)cu_data(rstd);
    if (dx && rows > 0 && n > 0) {
      if (rg_use_warps(n))
        k_layer_norm_dx<true, T><<<rg_grid(rows, true), CU_THREADS>>>(
            (T *)cu_data(dx), gp, xp, mp, rp, (const T *)opt_data(w), rows, n, rms);
      else
        k_layer_norm_dx<false, T><<<rg_grid(rows, false), CU_THREADS>>>(
            (T *)cu_data(dx), gp, xp, mp, rp, (const T *)opt_data(w), rows, n, rms);
      CU_LAUNCH_CHECK(what);
    }
    if ((dw || db) && n > 0) {
      int64_t per = LN_CHUNK;        /* grid.y stays under 65536 */
      while ((rows + per - 1) / per > 65535) per *= 2;
      int64_t chunks = (rows + per - 1) / per;   /* no rows: zero sums */
      double *part = (double *)ember_cuda_alloc(
          (size_t)(chunks ? 2 * chunks * n : 1) * sizeof(double));
      if (!part) return -1;
      int rc = 0;
      if (chunks > 0) {
        dim3 grid((unsigned)((n + 31) / 32), (unsigned)chunks), block(32, 8);
        k_layer_norm_cols<T><<<grid, block>>>(part, gp, xp, mp, rp, rows, n,
                                              per, chunks, rms, dw != NULL,
                                              db != NULL);
      }
      k_layer_norm_cols_sum<T><<<cu_blocks(n), CU_THREADS>>>(
          (T *)opt_data(dw), (T *)opt_data(db), part, n, chunks);
      cudaError_t e = cudaGetLastError();
      if (e != cudaSuccess)
        rc = cu_error("cuda: %s: kernel launch failed: %s", what,
                      cudaGetErrorString(e));
      ember_cuda_free(part);          /* stream-ordered: reused after ours */
      return rc;
    }
    return 0;
  });
}
