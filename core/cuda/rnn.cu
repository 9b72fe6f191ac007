/*
** rnn.cu -- the fused LSTM and GRU cell steps and their backward (CUDA).
**
** The CUDA twin of core/cpu/rnn.c (same slots, same formulas, stated
** there): one thread per (b, k) element of the (B, H) state, reading its
** gates; the nonlinearities in the dtype's precision (expf, tanhf
** for float32: on the GPU they are fast, unlike glibc's tanhf).
*/
#include <math.h>

#include "cuda_internal.h"

template <class T> __device__ static inline T c_exp(T x) { return exp(x); }
template <> __device__ inline float c_exp<float>(float x) { return expf(x); }
template <class T> __device__ static inline T c_tanh(T x) { return tanh(x); }
template <> __device__ inline float c_tanh<float>(float x) { return tanhf(x); }
template <class T> __device__ static inline T c_sigm(T x) {
  return T(1) / (T(1) + c_exp<T>(-x));
}

static inline void *opt_ptr(const ember_tensor *t) { return t ? cu_data(t) : NULL; }

template <class T>
__global__ void k_lstm_cell(T *hc, T *act, const T *gates, const T *cp,
                            int64_t B, int64_t H) {
  int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= B * H) return;
  int64_t b = e / H, k = e % H, gr = b * 4 * H;
  T i = c_sigm<T>(gates[gr + k]), f = c_sigm<T>(gates[gr + H + k]);
  T g = c_tanh<T>(gates[gr + 2 * H + k]), o = c_sigm<T>(gates[gr + 3 * H + k]);
  T c = f * cp[e] + i * g;
  hc[e] = o * c_tanh<T>(c);
  hc[B * H + e] = c;
  if (act) {
    act[gr + k] = i;
    act[gr + H + k] = f;
    act[gr + 2 * H + k] = g;
    act[gr + 3 * H + k] = o;
  }
}

template <class T>
__global__ void k_lstm_cell_backward(T *dg, T *dcp, const T *dhc, const T *act,
                                     const T *cp, const T *hc, int64_t B,
                                     int64_t H) {
  int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= B * H) return;
  int64_t b = e / H, k = e % H, gr = b * 4 * H;
  T i = act[gr + k], f = act[gr + H + k], g = act[gr + 2 * H + k];
  T o = act[gr + 3 * H + k];
  T tc = c_tanh<T>(hc[B * H + e]), dh = dhc[e];
  T dc = dhc[B * H + e] + dh * o * (T(1) - tc * tc);
  dg[gr + k] = dc * g * i * (T(1) - i);
  dg[gr + H + k] = dc * cp[e] * f * (T(1) - f);
  dg[gr + 2 * H + k] = dc * i * (T(1) - g * g);
  dg[gr + 3 * H + k] = dh * tc * o * (T(1) - o);
  if (dcp) dcp[e] = dc * f;
}

int ember_cuda_lstm_cell(ember_tensor *hc, ember_tensor *act,
                         const ember_tensor *gates, const ember_tensor *c_prev) {
  int64_t B = c_prev->shape[0], H = c_prev->shape[1];
  if (B * H == 0) return 0;
  return ember_cuda_dispatch_float(gates->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    k_lstm_cell<T><<<cu_blocks(B * H), CU_THREADS>>>(
        (T *)cu_data(hc), (T *)opt_ptr(act),
        (const T *)cu_data(gates), (const T *)cu_data(c_prev), B, H);
    CU_LAUNCH_CHECK("lstm_cell");
    return 0;
  });
}

int ember_cuda_lstm_cell_backward(ember_tensor *dgates, ember_tensor *dc_prev,
                                  const ember_tensor *dhc, const ember_tensor *act,
                                  const ember_tensor *c_prev, const ember_tensor *hc) {
  int64_t B = c_prev->shape[0], H = c_prev->shape[1];
  if (B * H == 0) return 0;
  return ember_cuda_dispatch_float(act->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    k_lstm_cell_backward<T><<<cu_blocks(B * H), CU_THREADS>>>(
        (T *)cu_data(dgates), (T *)opt_ptr(dc_prev),
        (const T *)cu_data(dhc), (const T *)cu_data(act),
        (const T *)cu_data(c_prev), (const T *)cu_data(hc), B, H);
    CU_LAUNCH_CHECK("lstm_cell backward");
    return 0;
  });
}

template <class T>
__global__ void k_gru_cell(T *hn, T *act, const T *gx, const T *gh, const T *h,
                           int64_t B, int64_t H) {
  int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= B * H) return;
  int64_t b = e / H, k = e % H, gr = b * 3 * H;
  T r = c_sigm<T>(gx[gr + k] + gh[gr + k]);
  T z = c_sigm<T>(gx[gr + H + k] + gh[gr + H + k]);
  T n = c_tanh<T>(gx[gr + 2 * H + k] + r * gh[gr + 2 * H + k]);
  hn[e] = n + z * (h[e] - n);
  if (act) {
    act[gr + k] = r;
    act[gr + H + k] = z;
    act[gr + 2 * H + k] = n;
  }
}

template <class T>
__global__ void k_gru_cell_backward(T *dgx, T *dgh, T *dh, const T *g,
                                    const T *act, const T *gh, const T *h,
                                    int64_t B, int64_t H) {
  int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= B * H) return;
  int64_t b = e / H, k = e % H, gr = b * 3 * H;
  T r = act[gr + k], z = act[gr + H + k], n = act[gr + 2 * H + k], ge = g[e];
  T dnp = ge * (T(1) - z) * (T(1) - n * n);
  T dr = dnp * gh[gr + 2 * H + k] * r * (T(1) - r);
  T dz = ge * (h[e] - n) * z * (T(1) - z);
  if (dgx) {
    dgx[gr + k] = dr;
    dgx[gr + H + k] = dz;
    dgx[gr + 2 * H + k] = dnp;
  }
  if (dgh) {
    dgh[gr + k] = dr;
    dgh[gr + H + k] = dz;
    dgh[gr + 2 * H + k] = dnp * r;
  }
  if (dh) dh[e] = ge * z;
}

int ember_cuda_gru_cell(ember_tensor *hn, ember_tensor *act, const ember_tensor *gx,
                        const ember_tensor *gh, const ember_tensor *h) {
  int64_t B = h->shape[0], H = h->shape[1];
  if (B * H == 0) return 0;
  return ember_cuda_dispatch_float(h->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    k_gru_cell<T><<<cu_blocks(B * H), CU_THREADS>>>(
        (T *)cu_data(hn), (T *)opt_ptr(act), (const T *)cu_data(gx),
        (const T *)cu_data(gh), (const T *)cu_data(h), B, H);
    CU_LAUNCH_CHECK("gru_cell");
    return 0;
  });
}

int ember_cuda_gru_cell_backward(ember_tensor *dgx, ember_tensor *dgh, ember_tensor *dh,
                                 const ember_tensor *g, const ember_tensor *act,
                                 const ember_tensor *gh, const ember_tensor *h) {
  int64_t B = h->shape[0], H = h->shape[1];
  if (B * H == 0) return 0;
  return ember_cuda_dispatch_float(h->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    k_gru_cell_backward<T><<<cu_blocks(B * H), CU_THREADS>>>(
        (T *)opt_ptr(dgx), (T *)opt_ptr(dgh), (T *)opt_ptr(dh), (const T *)cu_data(g),
        (const T *)cu_data(act), (const T *)cu_data(gh), (const T *)cu_data(h), B, H);
    CU_LAUNCH_CHECK("gru_cell backward");
    return 0;
  });
}
