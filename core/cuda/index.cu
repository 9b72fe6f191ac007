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
template <class I, class OC>
__global__ void k_index_check(const I *idx, OC il, int64_t total,
                              int64_t size, unsigned long long *flag) {
  CU_FOR_T(typename OC::index_type, e, total) {
    int64_t v = (int64_t)idx[il.get(e)[0]];
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
  cu_geom ig;
  if (cu_geom_of(&ig, fn, {index}) < 0) return -1;
  if (index->dtype == EMBER_INT32) {
    const int32_t *p = (const int32_t *)cu_data(index);
    if (cu_with_offsets<1>(ig, [&](auto oc) {
          k_index_check<int32_t, decltype(oc)><<<cu_blocks(total), CU_THREADS>>>(
              p, oc, total, size, (unsigned long long *)flag);
          CU_LAUNCH_CHECK(fn);
          return 0;
        }) < 0)
      return -1;
    k_index_detail<int32_t><<<1, 1>>>(p, il, total, flag);
    CU_LAUNCH_CHECK(fn);
  } else {
    const int64_t *p = (const int64_t *)cu_data(index);
    if (cu_with_offsets<1>(ig, [&](auto oc) {
          k_index_check<int64_t, decltype(oc)><<<cu_blocks(total), CU_THREADS>>>(
              p, oc, total, size, (unsigned long long *)flag);
          CU_LAUNCH_CHECK(fn);
          return 0;
        }) < 0)
      return -1;
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
** The geometry of a slice kernel: `shape`'s elements, with the offsets of
** `here` (the tensor iterated over), of `there` without dim's term (added
** by the kernel from the index), and of a pseudo-operand whose offset is
** the coordinate along dim (stride 1 there, 0 elsewhere).  dim >= ndim
** (a 0-d tensor): no dim at all; the kernel reads no index then.
*/
static cu_geom slice_geom(int ndim, const int64_t *shape, const int64_t *here,
                          const int64_t *there, int dim) {
  int64_t tz[EMBER_MAX_DIMS], pc[EMBER_MAX_DIMS];
  for (int d = 0; d < ndim; d++) {
    tz[d] = d == dim ? 0 : there[d];
    pc[d] = d == dim ? 1 : 0;
  }
  const int64_t *st[3] = {here, tz, pc};
  return cu_geom_make(ndim, shape, 3, st);
}

/*
** index_select: one thread per element of dst (src's shape with dim's
** size the index's length).  Element bits are copied as they are (E is an
** unsigned type of the element's size), as the CPU's same-dtype copy.
** oc gives (dst, src without dim, coordinate along dim); sdim is src's
** stride along dim (0: no dim).
*/
template <class E, class I, class OC>
__global__ void k_index_select(E *dst, const E *src, OC oc, const I *idx,
                               int64_t istride, int64_t sdim, bool has_dim,
                               typename OC::index_type total) {
  CU_FOR_T(typename OC::index_type, e, total) {
    auto o = oc.get(e);
    int64_t soff = o[1];
    if (has_dim) soff += ((int64_t)idx[(int64_t)o[2] * istride] - 1) * sdim;
    dst[o[0]] = src[soff];
  }
}

/* index_add: one thread per element of src; slice j of src goes to slice
   index[j] of dst.  oc gives (src, dst without dim, coordinate along
   dim); ddim is dst's stride along dim. */
template <class A, class I, class OC>
__global__ void k_index_add(typename A::T *dst, const typename A::T *src,
                            OC oc, const I *idx, int64_t istride, int64_t ddim,
                            bool has_dim, typename OC::index_type total) {
  CU_FOR_T(typename OC::index_type, e, total) {
    auto o = oc.get(e);
    int64_t doff = o[1];
    if (has_dim) doff += ((int64_t)idx[(int64_t)o[2] * istride] - 1) * ddim;
    A::add(dst + doff, src[o[0]]);
  }
}

template <class I>
static int index_select_typed(ember_tensor *dst, const ember_tensor *src,
                              int dim, const ember_tensor *index,
                              int64_t total) {
  const I *idx = (const I *)cu_data(index);
  int64_t is = index->ndim ? index->strides[0] : 0;
  bool has_dim = dim < dst->ndim;
  int64_t sdim = has_dim ? src->strides[dim] : 0;
  cu_geom g = slice_geom(dst->ndim, dst->shape, dst->strides, src->strides, dim);
  unsigned nb = cu_blocks(total);
  return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T U;
    return cu_with_offsets<3>(g, [&](auto oc) {
      typedef decltype(oc) OC;
      k_index_select<U, I, OC><<<nb, CU_THREADS>>>(
          (U *)cu_data(dst), (const U *)cu_data(src), oc, idx, is, sdim,
          has_dim, (typename OC::index_type)total);
      CU_LAUNCH_CHECK("index_select");
      return 0;
    });
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
  bool has_dim = dim < src->ndim;
  int64_t ddim = has_dim ? dst->strides[dim] : 0;
  cu_geom g = slice_geom(src->ndim, src->shape, src->strides, dst->strides, dim);
  return cu_with_offsets<3>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_index_add<A, I, OC><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(dst), (const T *)cu_data(src), oc,
        (const I *)cu_data(index), is, ddim, has_dim,
        (typename OC::index_type)total);
    CU_LAUNCH_CHECK("index_add_");
    return 0;
  });
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
** The geometry of gather and scatter_add: index's elements, with the
** offsets of index, of `same` (the tensor of index's shape: gather's dst,
** scatter_add's src) and of `other` without dim's term (added by the
** kernel from the index).
*/
static cu_geom gather_geom(const ember_tensor *index, const int64_t *same,
                           const int64_t *other, int dim) {
  int64_t oz[EMBER_MAX_DIMS];
  for (int d = 0; d < index->ndim; d++) oz[d] = d == dim ? 0 : other[d];
  const int64_t *st[3] = {index->strides, same, oz};
  return cu_geom_make(index->ndim, index->shape, 3, st);
}

/*
** gather: one thread per element e of index (= dst's shape): dst[e] =
** src at e's coordinates, with dim's replaced by index[e] - 1.  oc gives
** (index, dst, src without dim); sdim is src's stride along dim.
*/
template <class E, class I, class OC>
__global__ void k_gather(E *dst, const E *src, const I *idx, OC oc,
                         int64_t sdim, typename OC::index_type total) {
  CU_FOR_T(typename OC::index_type, e, total) {
    auto o = oc.get(e);
    int64_t soff = (int64_t)o[2] + ((int64_t)idx[o[0]] - 1) * sdim;
    dst[o[1]] = src[soff];
  }
}

/* scatter_add: one thread per element e of index: dst at e's coordinates,
   with dim's replaced by index[e] - 1, += src[e].  oc gives (index, src,
   dst without dim); ddim is dst's stride along dim. */
template <class A, class I, class OC>
__global__ void k_scatter_add(typename A::T *dst, const typename A::T *src,
                              const I *idx, OC oc, int64_t ddim,
                              typename OC::index_type total) {
  CU_FOR_T(typename OC::index_type, e, total) {
    auto o = oc.get(e);
    int64_t doff = (int64_t)o[2] + ((int64_t)idx[o[0]] - 1) * ddim;
    A::add(dst + doff, src[o[1]]);
  }
}

template <class I>
static int gather_typed(ember_tensor *dst, const ember_tensor *src, int dim,
                        const ember_tensor *index, int64_t total) {
  const I *idx = (const I *)cu_data(index);
  int64_t sdim = dim < src->ndim ? src->strides[dim] : 0;
  cu_geom g = gather_geom(index, dst->strides, src->strides, dim);
  unsigned nb = cu_blocks(total);
  return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T U;
    return cu_with_offsets<3>(g, [&](auto oc) {
      typedef decltype(oc) OC;
      k_gather<U, I, OC><<<nb, CU_THREADS>>>(
          (U *)cu_data(dst), (const U *)cu_data(src), idx, oc, sdim,
          (typename OC::index_type)total);
      CU_LAUNCH_CHECK("gather");
      return 0;
    });
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
  int64_t ddim = dim < dst->ndim ? dst->strides[dim] : 0;
  cu_geom g = gather_geom(index, src->strides, dst->strides, dim);
  return cu_with_offsets<3>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_scatter_add<A, I, OC><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(dst), (const T *)cu_data(src), (const I *)cu_data(index),
        oc, ddim, (typename OC::index_type)total);
    CU_LAUNCH_CHECK("scatter_add_");
    return 0;
  });
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
