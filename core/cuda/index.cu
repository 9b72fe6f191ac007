/*
** index.cu -- index_select, gather and their adjoints index_add and
** scatter_add (CUDA).
**
** The CUDA twin of core/cpu/index.c.  Index tensors hold 1-based positions,
** int64 or int32, any strides.  As on the CPU, every index is checked
** before anything is written: a first kernel finds the first bad index (in
** the index's row-major order, the one the CPU reports), the host reads
** the device flag, and only then does the kernel that moves data run, so a
** bad index leaves dst untouched and fails with the CPU's message.
**
** One thread per element moved.  The adds are atomic (two indices may name
** one destination): float32/float64 atomicAdd (so a float sum over
** duplicates may differ from the CPU's serial sum by rounding), int32 and
** int64 as wrapping unsigned adds, uint8 (and bool in scatter_add, which
** the CPU adds as bytes) by compare-and-swap on the containing 32-bit word,
** and bool in index_add as a logical or, the CPU's bool add.
*/
#include <string.h>

#include "cuda_internal.h"

/* {======================================================================
** Checking the indices on the device
** ======================================================================= */

/*
** flag[0] collects, for every bad index at (row-major) position e of
** `total`, the value total - e by atomicMax: nonzero iff some index is
** bad, and then total - flag[0] is the first bad position.
*/
template <class I>
__global__ void k_index_check(const I *idx, cu_layout il, int64_t total,
                              int64_t size, unsigned long long *flag) {
  CU_FOR(e, total) {
    int64_t v = (int64_t)idx[cu_offset(il, e)];
    if (v < 1 || v > size) atomicMax(flag, (unsigned long long)(total - e));
  }
}

/* After k_index_check: the first bad index's value into flag[1]. */
template <class I>
__global__ void k_index_detail(const I *idx, cu_layout il, int64_t total,
                               int64_t *flag) {
  if (flag[0] != 0) flag[1] = (int64_t)idx[cu_offset(il, total - flag[0])];
}

/* Every entry of index in 1..size, else the CPU's error.  Synchronises
   (the flag comes back to the host). */
static int check_index(const char *fn, const ember_tensor *index, int dim,
                       int64_t size) {
  int64_t total = cu_numel(index);
  if (total == 0) return 0;
  int64_t *flag = ember_cuda_flag_reset();
  if (!flag) return -1;
  cu_layout il = cu_layout_of(index);
  if (index->dtype == EMBER_INT32) {
    const int32_t *p = (const int32_t *)cu_data(index);
    k_index_check<int32_t><<<cu_blocks(total), CU_THREADS>>>(
        p, il, total, size, (unsigned long long *)flag);
    CU_LAUNCH_CHECK(fn);
    k_index_detail<int32_t><<<1, 1>>>(p, il, total, flag);
    CU_LAUNCH_CHECK(fn);
  } else {
    const int64_t *p = (const int64_t *)cu_data(index);
    k_index_check<int64_t><<<cu_blocks(total), CU_THREADS>>>(
        p, il, total, size, (unsigned long long *)flag);
    CU_LAUNCH_CHECK(fn);
    k_index_detail<int64_t><<<1, 1>>>(p, il, total, flag);
    CU_LAUNCH_CHECK(fn);
  }
  int64_t fl[2];
  if (ember_cuda_flag_read(fl) < 0) return -1;
  if (fl[0] != 0)
    return cu_error("%s: index %lld is out of range for dimension %d of "
                    "size %lld", fn, (long long)fl[1], dim + 1,
                    (long long)size);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Atomic accumulation, one functor per rule
** ======================================================================= */

struct acc_f32 {
  typedef float T;
  __device__ static void add(T *p, T v) { atomicAdd(p, v); }
};
struct acc_f64 {
  typedef double T;
  __device__ static void add(T *p, T v) { atomicAdd(p, v); }
};
struct acc_i32 {           /* wraps, as the CPU's uint32_t add */
  typedef int32_t T;
  __device__ static void add(T *p, T v) {
    atomicAdd((unsigned int *)p, (unsigned int)v);
  }
};
struct acc_i64 {           /* wraps, as the CPU's uint64_t add */
  typedef int64_t T;
  __device__ static void add(T *p, T v) {
    atomicAdd((unsigned long long *)p, (unsigned long long)v);
  }
};

/* The aligned 32-bit word holding byte p, and p's bit offset in it
   (little-endian).  Device allocations are at least 256-byte aligned, so
   the word never leaves the allocation's pages. */
__device__ static inline unsigned int *word_of(uint8_t *p, unsigned *shift) {
  uintptr_t a = (uintptr_t)p;
  *shift = (unsigned)(a & 3) * 8;
  return (unsigned int *)(a & ~(uintptr_t)3);
}

struct acc_u8 {            /* a byte add that wraps (uint8; bool in scatter) */
  typedef uint8_t T;
  __device__ static void add(T *p, T v) {
    unsigned shift;
    unsigned int *w = word_of(p, &shift);
    unsigned int old = *w, assumed;
    do {
      assumed = old;
      unsigned int b = ((assumed >> shift) + v) & 0xffu;
      unsigned int nw = (assumed & ~(0xffu << shift)) | (b << shift);
      old = atomicCAS(w, assumed, nw);
    } while (old != assumed);
  }
};

struct acc_bool_or {       /* bool's add in index_add: logical (bitwise) or */
  typedef uint8_t T;
  __device__ static void add(T *p, T v) {
    unsigned shift;
    unsigned int *w = word_of(p, &shift);
    atomicOr(w, (unsigned int)v << shift);
  }
};

/* }====================================================================== */

/* {======================================================================
** index_select and index_add: slices along dim, a 1-d (or 0-d) index
** ======================================================================= */

/*
** index_select: one thread per element of dst (src's shape with dim's
** size the index's length).  Element bits are copied as they are (E is an
** unsigned type of the element's size), as the CPU's same-dtype copy.
*/
template <class E, class I>
__global__ void k_index_select(E *dst, cu_layout dl, const E *src,
                               cu_layout sl, const I *idx, int64_t istride,
                               int dim, int64_t total) {
  CU_FOR(e, total) {
    int64_t r = e, doff = 0, soff = 0;
    for (int d = dl.ndim - 1; d >= 0; d--) {
      int64_t c = r % dl.shape[d];
      r /= dl.shape[d];
      doff += c * dl.strides[d];
      if (d == dim) c = (int64_t)idx[c * istride] - 1;
      soff += c * sl.strides[d];
    }
    dst[doff] = src[soff];
  }
}

/* index_add: one thread per element of src; slice j of src goes to slice
   index[j] of dst. */
template <class A, class I>
__global__ void k_index_add(typename A::T *dst, cu_layout dl,
                            const typename A::T *src, cu_layout sl,
                            const I *idx, int64_t istride, int dim,
                            int64_t total) {
  CU_FOR(e, total) {
    int64_t r = e, doff = 0, soff = 0;
    for (int d = sl.ndim - 1; d >= 0; d--) {
      int64_t c = r % sl.shape[d];
      r /= sl.shape[d];
      soff += c * sl.strides[d];
      if (d == dim) c = (int64_t)idx[c * istride] - 1;
      doff += c * dl.strides[d];
    }
    A::add(dst + doff, src[soff]);
  }
}

template <class I>
static int index_select_typed(ember_tensor *dst, const ember_tensor *src,
                              int dim, const ember_tensor *index,
                              int64_t total) {
  const I *idx = (const I *)cu_data(index);
  int64_t is = index->ndim ? index->strides[0] : 0;
  cu_layout dl = cu_layout_of(dst), sl = cu_layout_of(src);
  unsigned nb = cu_blocks(total);
  return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T U;
    k_index_select<U, I><<<nb, CU_THREADS>>>(
        (U *)cu_data(dst), dl, (const U *)cu_data(src), sl, idx, is, dim, total);
    CU_LAUNCH_CHECK("index_select");
    return 0;
  });
}

int ember_cuda_index_select(ember_tensor *dst, const ember_tensor *src, int dim,
                            const ember_tensor *index) {
  if (check_index("index_select", index, dim, src->shape[dim]) < 0) return -1;
  int64_t total = cu_numel(dst);
  if (total == 0) return 0;
  if (index->dtype == EMBER_INT32)
    return index_select_typed<int32_t>(dst, src, dim, index, total);
  return index_select_typed<int64_t>(dst, src, dim, index, total);
}

template <class A, class I>
static int index_add_run(ember_tensor *dst, int dim, const ember_tensor *index,
                         const ember_tensor *src, int64_t total) {
  typedef typename A::T T;
  int64_t is = index->ndim ? index->strides[0] : 0;
  k_index_add<A, I><<<cu_blocks(total), CU_THREADS>>>(
      (T *)cu_data(dst), cu_layout_of(dst), (const T *)cu_data(src),
      cu_layout_of(src), (const I *)cu_data(index), is, dim, total);
  CU_LAUNCH_CHECK("index_add_");
  return 0;
}

template <class I>
static int index_add_typed(ember_tensor *dst, int dim,
                           const ember_tensor *index, const ember_tensor *src,
                           int64_t total) {
  return ember_cuda_dispatch(dst->dtype, [&](auto ty) {
    constexpr int DT = decltype(ty)::dt;
    if constexpr (DT == EMBER_FLOAT32) return index_add_run<acc_f32, I>(dst, dim, index, src, total);
    else if constexpr (DT == EMBER_FLOAT64) return index_add_run<acc_f64, I>(dst, dim, index, src, total);
    else if constexpr (DT == EMBER_INT32) return index_add_run<acc_i32, I>(dst, dim, index, src, total);
    else if constexpr (DT == EMBER_INT64) return index_add_run<acc_i64, I>(dst, dim, index, src, total);
    else if constexpr (DT == EMBER_BOOL) return index_add_run<acc_bool_or, I>(dst, dim, index, src, total);
    else return index_add_run<acc_u8, I>(dst, dim, index, src, total);
  });
}

int ember_cuda_index_add(ember_tensor *dst, int dim, const ember_tensor *index,
                         const ember_tensor *src) {
  if (check_index("index_add_", index, dim, dst->shape[dim]) < 0) return -1;
  int64_t total = cu_numel(src);
  if (total == 0) return 0;
  if (index->dtype == EMBER_INT32)
    return index_add_typed<int32_t>(dst, dim, index, src, total);
  return index_add_typed<int64_t>(dst, dim, index, src, total);
}

/* }====================================================================== */

/* {======================================================================
** gather and scatter_add: an index shaped like the data
** ======================================================================= */

/*
** gather: one thread per element e of index (= dst's shape): dst[e] =
** src at e's coordinates, with dim's replaced by index[e] - 1.
*/
template <class E, class I>
__global__ void k_gather(E *dst, cu_layout dl, const E *src, cu_layout sl,
                         const I *idx, cu_layout il, int dim, int64_t total) {
  CU_FOR(e, total) {
    int64_t r = e, ioff = 0, doff = 0, soff = 0;
    for (int d = il.ndim - 1; d >= 0; d--) {
      int64_t c = r % il.shape[d];
      r /= il.shape[d];
      ioff += c * il.strides[d];
      doff += c * dl.strides[d];
      if (d != dim) soff += c * sl.strides[d];
    }
    soff += ((int64_t)idx[ioff] - 1) * sl.strides[dim];
    dst[doff] = src[soff];
  }
}

/* scatter_add: one thread per element e of index: dst at e's coordinates,
   with dim's replaced by index[e] - 1, += src[e]. */
template <class A, class I>
__global__ void k_scatter_add(typename A::T *dst, cu_layout dl,
                              const typename A::T *src, cu_layout sl,
                              const I *idx, cu_layout il, int dim,
                              int64_t total) {
  CU_FOR(e, total) {
    int64_t r = e, ioff = 0, doff = 0, soff = 0;
    for (int d = il.ndim - 1; d >= 0; d--) {
      int64_t c = r % il.shape[d];
      r /= il.shape[d];
      ioff += c * il.strides[d];
      soff += c * sl.strides[d];
      if (d != dim) doff += c * dl.strides[d];
    }
    doff += ((int64_t)idx[ioff] - 1) * dl.strides[dim];
    A::add(dst + doff, src[soff]);
  }
}

template <class I>
static int gather_typed(ember_tensor *dst, const ember_tensor *src, int dim,
                        const ember_tensor *index, int64_t total) {
  const I *idx = (const I *)cu_data(index);
  cu_layout dl = cu_layout_of(dst), sl = cu_layout_of(src);
  cu_layout il = cu_layout_of(index);
  unsigned nb = cu_blocks(total);
  return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T U;
    k_gather<U, I><<<nb, CU_THREADS>>>(
        (U *)cu_data(dst), dl, (const U *)cu_data(src), sl, idx, il, dim, total);
    CU_LAUNCH_CHECK("gather");
    return 0;
  });
}

int ember_cuda_gather(ember_tensor *dst, const ember_tensor *src, int dim,
                      const ember_tensor *index) {
  if (check_index("gather", index, dim, src->shape[dim]) < 0) return -1;
  int64_t total = cu_numel(index);
  if (total == 0) return 0;
  if (index->dtype == EMBER_INT32)
    return gather_typed<int32_t>(dst, src, dim, index, total);
  return gather_typed<int64_t>(dst, src, dim, index, total);
}

template <class A, class I>
static int scatter_add_run(ember_tensor *dst, int dim,
                           const ember_tensor *index, const ember_tensor *src,
                           int64_t total) {
  typedef typename A::T T;
  k_scatter_add<A, I><<<cu_blocks(total), CU_THREADS>>>(
      (T *)cu_data(dst), cu_layout_of(dst), (const T *)cu_data(src),
      cu_layout_of(src), (const I *)cu_data(index), cu_layout_of(index), dim,
      total);
  CU_LAUNCH_CHECK("scatter_add_");
  return 0;
}

/* bool adds as bytes here (the CPU's move_one), unlike index_add */
template <class I>
static int scatter_add_typed(ember_tensor *dst, int dim,
                             const ember_tensor *index,
                             const ember_tensor *src, int64_t total) {
  return ember_cuda_dispatch(dst->dtype, [&](auto ty) {
    constexpr int DT = decltype(ty)::dt;
    if constexpr (DT == EMBER_FLOAT32) return scatter_add_run<acc_f32, I>(dst, dim, index, src, total);
    else if constexpr (DT == EMBER_FLOAT64) return scatter_add_run<acc_f64, I>(dst, dim, index, src, total);
    else if constexpr (DT == EMBER_INT32) return scatter_add_run<acc_i32, I>(dst, dim, index, src, total);
    else if constexpr (DT == EMBER_INT64) return scatter_add_run<acc_i64, I>(dst, dim, index, src, total);
    else return scatter_add_run<acc_u8, I>(dst, dim, index, src, total);
  });
}

int ember_cuda_scatter_add(ember_tensor *dst, int dim,
                           const ember_tensor *index,
                           const ember_tensor *src) {
  if (check_index("scatter_add_", index, dim, dst->shape[dim]) < 0) return -1;
  int64_t total = cu_numel(index);
  if (total == 0) return 0;
  if (index->dtype == EMBER_INT32)
    return scatter_add_typed<int32_t>(dst, dim, index, src, total);
  return scatter_add_typed<int64_t>(dst, dim, index, src, total);
}

/* }====================================================================== */
