/*
** row_group.h -- one row per group of threads, for the fused row kernels
** (norm.cu, loss.cu).
**
** A group is a warp (W = true: a block of CU_THREADS holds 8 rows) or the
** whole block (W = false, for long rows).  Rows are dealt to groups in a
** grid-stride loop whose bounds are uniform within a group, so every
** member reaches each reduction.  The reductions use xor shuffles and a
** fixed tree, so every member gets the same value, the same on each run.
*/
#ifndef EMBER_CUDA_ROW_GROUP_H
#define EMBER_CUDA_ROW_GROUP_H

#include "cuda_internal.h"

template <bool W> struct row_group {
  __device__ static int64_t first() {
    return W ? (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32
             : (int64_t)blockIdx.x;
  }
  __device__ static int64_t step() {
    return W ? (int64_t)gridDim.x * (blockDim.x / 32) : (int64_t)gridDim.x;
  }
  __device__ static int rank() { return W ? threadIdx.x & 31 : threadIdx.x; }
  __device__ static int size() { return W ? 32 : blockDim.x; }
};

/* C(a, b) over the warp, every lane getting the result. */
template <class T, class C>
__device__ static inline T rg_warp(T v, C comb) {
  for (int d = 16; d > 0; d >>= 1) v = comb(v, __shfl_xor_sync(0xffffffffu, v, d));
  return v;
}

/* C over the group; sh: 32 T of shared memory (block groups only), id the
   combine's identity.  Every member of the group calls it. */
template <bool W, class T, class C>
__device__ static inline T rg_all(T v, C comb, T id, T *sh) {
  v = rg_warp(v, comb);
  if (W) return v;
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  __syncthreads();                 /* sh may still be read by a last call */
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  v = lane < (int)(blockDim.x >> 5) ? sh[lane] : id;
  return rg_warp(v, comb);
}

struct rg_add {
  template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};

/* the CPU's running max: a NaN, once met, stays */
struct rg_max {
  template <class T> __device__ T operator()(T a, T b) const {
    return (b > a || b != b) ? b : a;
  }
};

/* Launch geometry: warps for rows of up to 1024 elements, else blocks. */
static inline bool rg_use_warps(int64_t n) { return n <= 1024; }

static inline unsigned rg_grid(int64_t rows, bool warps) {
  int64_t per = warps ? CU_THREADS / 32 : 1;
  int64_t b = (rows + per - 1) / per;
  if (b < 1) b = 1;
  if (b > 65535 * 8) b = 65535 * 8;
  return (unsigned)b;
}

#endif
