/*
** index.cu -- index_select, gather and their adjoints index_add and
** scatter_add, scatter with its reductions, nonzero's placing of
** coordinates, and index_copy (CUDA).
**
** The CUDA twin of core/cpu/index.c.  Index tensors hold 1-based positions,
** int64 or int32, any strides.  A bad index is not reported by the call:
** the kernel that moves data skips the elements it names and records the
** first one (in the index's row-major order, the one the CPU reports) as a
** deferred error (cuda_internal.h), which the next to_host or synchronize
** reports with the CPU's message.  dst is then unspecified (the good
** elements are moved).  Per op that costs one launch more than the data
** kernel (the follow-up that stores the bad value) and no wait.
**
** One thread per element moved.  The adds are atomic (two indices may name
** one destination): float32/float64 atomicAdd (so a float sum over
** duplicates may differ from the CPU's serial sum by rounding), int32 and
** int64 as wrapping unsigned adds, uint8 (and bool in scatter_add, which
** the CPU adds as bytes) by compare-and-swap on the containing 32-bit word,
** and bool in index_add as a logical or, the CPU's bool add.  index_copy
** is index_add's kernel with a store for the add: with a repeated index
** one of the slices lands, not necessarily the last (the CPU's), which
** PyTorch leaves unspecified too.
*/
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "cuda_internal.h"

/* {======================================================================
** Checking the indices on the device
** ======================================================================= */

/* The check op (the check_index slot), and the check of an index whose
   data kernel has no thread (dst or src empty): every element e of idx in
   lo..hi, or equal to skip. */
template <class I, class OC>
__global__ void k_check_index(const I *idx, OC oc,
                              typename OC::index_type total, int64_t lo,
                              int64_t hi, int has_skip, int64_t skip,
                              ember_cuda_defer df) {
  CU_FOR_T(typename OC::index_type, e, total) {
    int64_t v = (int64_t)idx[oc.get(e)[0]];
    if ((v < lo || v > hi) && !(has_skip && v == skip)) cu_defer_fail(df, e);
  }
}

template <class I>
static int check_typed(const ember_tensor *idx, int64_t lo, int64_t hi,
                       int has_skip, int64_t skip, const ember_cuda_defer &df) {
  int64_t total = cu_numel(idx);
  cu_geom g;
  if (cu_geom_of(&g, "check_index", {idx}) < 0) return -1;
  return cu_with_offsets<1>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_check_index<I, OC><<<cu_blocks(total), CU_THREADS>>>(
        (const I *)cu_data(idx), oc, (typename OC::index_type)total, lo, hi,
        has_skip, skip, df);
    CU_LAUNCH_CHECK("check_index");
    return 0;
  });
}

static int check_run(const ember_tensor *idx, int64_t lo, int64_t hi,
                     int has_skip, int64_t skip, const ember_cuda_defer &df) {
  if (idx->dtype == EMBER_INT32)
    return check_typed<int32_t>(idx, lo, hi, has_skip, skip, df);
  return check_typed<int64_t>(idx, lo, hi, has_skip, skip, df);
}

int ember_cuda_check_index(const ember_tensor *idx, int64_t lo, int64_t hi,
                           int has_skip, int64_t skip, const char *prefix,
                           const char *suffix) {
  if (cu_numel(idx) == 0) return 0;
  ember_cuda_defer df;
  if (ember_cuda_defer_begin(prefix, suffix, &df) < 0 ||
      check_run(idx, lo, hi, has_skip, skip, df) < 0)
    return -1;
  return ember_cuda_defer_end(&df, cu_data(idx), idx->dtype, cu_layout_of(idx));
}

/* An index op's deferred error: the CPU's message for an index of dim
   (0-based) out of 1..size. */
static int defer_index(const char *fn, int dim, int64_t size,
                       ember_cuda_defer *df) {
  char prefix[64], suffix[128];
  snprintf(prefix, sizeof prefix, "%s: index ", fn);
  snprintf(suffix, sizeof suffix, " is out of range for dimension %d of "
           "size %lld", dim + 1, (long long)size);
  return ember_cuda_defer_begin(prefix, suffix, df);
}

/* }====================================================================== */

/* {======================================================================
** Atomic accumulation, one functor per rule
** ======================================================================= */

struct acc_f32 {
  typedef float T;
  __device__ static void apply(T *p, T v) { atomicAdd(p, v); }
};
struct acc_f64 {
  typedef double T;
  __device__ static void apply(T *p, T v) { atomicAdd(p, v); }
};
struct acc_i32 {           /* wraps, as the CPU's uint32_t add */
  typedef int32_t T;
  __device__ static void apply(T *p, T v) {
    atomicAdd((unsigned int *)p, (unsigned int)v);
  }
};
struct acc_i64 {           /* wraps, as the CPU's uint64_t add */
  typedef int64_t T;
  __device__ static void apply(T *p, T v) {
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
  __device__ static void apply(T *p, T v) {
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

/* index_copy's rule: the store (E: an unsigned type of the element's
   size, the bits copied as they are) */
template <class E>
struct acc_put {
  typedef E T;
  __device__ static void apply(T *p, T v) { *p = v; }
};

struct acc_bool_or {       /* bool's add in index_add: logical (bitwise) or */
  typedef uint8_t T;
  __device__ static void apply(T *p, T v) {
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
** oc gives (dst, src without dim, coordinate j along dim); sdim is src's
** stride along dim (has_dim false: a 0-d src).  A bad index[j] (outside
** 1..size) is skipped and reported at position j by every thread of its
** slice (the same key: atomicMin keeps one).
*/
template <class E, class I, class OC>
__global__ void k_index_select(E *dst, const E *src, OC oc, const I *idx,
                               int64_t istride, int64_t sdim, bool has_dim,
                               int64_t size, typename OC::index_type total,
                               ember_cuda_defer df) {
  CU_FOR_T(typename OC::index_type, e, total) {
    auto o = oc.get(e);
    int64_t soff = o[1];
    if (has_dim) {
      int64_t j = (int64_t)o[2], v = (int64_t)idx[j * istride] - 1;
      if (v < 0 || v >= size) {
        cu_defer_fail(df, j);
        continue;
      }
      soff += v * sdim;
    }
    dst[o[0]] = src[soff];
  }
}

/* index_add: one thread per element of src; slice j of src goes to slice
   index[j] of dst.  oc gives (src, dst without dim, coordinate j along
   dim); ddim is dst's stride along dim.  Bad indices as in
   k_index_select. */
template <class A, class I, class OC>
__global__ void k_index_add(typename A::T *dst, const typename A::T *src,
                            OC oc, const I *idx, int64_t istride, int64_t ddim,
                            bool has_dim, int64_t size,
                            typename OC::index_type total, ember_cuda_defer df) {
  CU_FOR_T(typename OC::index_type, e, total) {
    auto o = oc.get(e);
    int64_t doff = o[1];
    if (has_dim) {
      int64_t j = (int64_t)o[2], v = (int64_t)idx[j * istride] - 1;
      if (v < 0 || v >= size) {
        cu_defer_fail(df, j);
        continue;
      }
      doff += v * ddim;
    }
    A::apply(dst + doff, src[o[0]]);
  }
}

template <class I>
static int index_select_typed(ember_tensor *dst, const ember_tensor *src,
                              int dim, const ember_tensor *index,
                              int64_t total, const ember_cuda_defer &df) {
  const I *idx = (const I *)cu_data(index);
  int64_t is = index->ndim ? index->strides[0] : 0;
  bool has_dim = dim < dst->ndim;
  int64_t sdim = has_dim ? src->strides[dim] : 0;
  int64_t size = has_dim ? src->shape[dim] : 1;
  cu_geom g = slice_geom(dst->ndim, dst->shape, dst->strides, src->strides, dim);
  unsigned nb = cu_blocks(total);
  return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T U;
    return cu_with_offsets<3>(g, [&](auto oc) {
      typedef decltype(oc) OC;
      k_index_select<U, I, OC><<<nb, CU_THREADS>>>(
          (U *)cu_data(dst), (const U *)cu_data(src), oc, idx, is, sdim,
          has_dim, size, (typename OC::index_type)total, df);
      CU_LAUNCH_CHECK("index_select");
      return 0;
    });
  });
}

/* index_select and index_add_: the data kernel checks as it goes; with no
   element to move, the check kernel alone (the CPU checks the index even
   then). */
int ember_cuda_index_select(ember_tensor *dst, const ember_tensor *src, int dim,
                            const ember_tensor *index) {
  if (cu_numel(index) == 0) return 0;
  ember_cuda_defer df;
  if (defer_index("index_select", dim, src->shape[dim], &df) < 0) return -1;
  int64_t total = cu_numel(dst);
  int rc = total == 0 ? check_run(index, 1, src->shape[dim], 0, 0, df)
           : index->dtype == EMBER_INT32
               ? index_select_typed<int32_t>(dst, src, dim, index, total, df)
               : index_select_typed<int64_t>(dst, src, dim, index, total, df);
  if (rc < 0) return -1;
  return ember_cuda_defer_end(&df, cu_data(index), index->dtype,
                              cu_layout_of(index));
}

template <class A, class I>
static int index_add_run(ember_tensor *dst, int dim, const ember_tensor *index,
                         const ember_tensor *src, int64_t total,
                         const ember_cuda_defer &df) {
  typedef typename A::T T;
  int64_t is = index->ndim ? index->strides[0] : 0;
  bool has_dim = dim < src->ndim;
  int64_t ddim = has_dim ? dst->strides[dim] : 0;
  int64_t size = has_dim ? dst->shape[dim] : 1;
  cu_geom g = slice_geom(src->ndim, src->shape, src->strides, dst->strides, dim);
  return cu_with_offsets<3>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_index_add<A, I, OC><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(dst), (const T *)cu_data(src), oc,
        (const I *)cu_data(index), is, ddim, has_dim, size,
        (typename OC::index_type)total, df);
    CU_LAUNCH_CHECK("index_add_");  /* index_copy_ too */
    return 0;
  });
}

template <class I>
static int index_add_typed(ember_tensor *dst, int dim,
                           const ember_tensor *index, const ember_tensor *src,
                           int64_t total, const ember_cuda_defer &df) {
  return ember_cuda_dispatch(dst->dtype, [&](auto ty) {
    constexpr int DT = decltype(ty)::dt;
    if constexpr (DT == EMBER_FLOAT32) return index_add_run<acc_f32, I>(dst, dim, index, src, total, df);
    else if constexpr (DT == EMBER_FLOAT64) return index_add_run<acc_f64, I>(dst, dim, index, src, total, df);
    else if constexpr (DT == EMBER_INT32) return index_add_run<acc_i32, I>(dst, dim, index, src, total, df);
    else if constexpr (DT == EMBER_INT64) return index_add_run<acc_i64, I>(dst, dim, index, src, total, df);
    else if constexpr (DT == EMBER_BOOL) return index_add_run<acc_bool_or, I>(dst, dim, index, src, total, df);
    else return index_add_run<acc_u8, I>(dst, dim, index, src, total, df);
  });
}

int ember_cuda_index_add(ember_tensor *dst, int dim, const ember_tensor *index,
                         const ember_tensor *src) {
  if (cu_numel(index) == 0) return 0;
  ember_cuda_defer df;
  if (defer_index("index_add_", dim, dst->shape[dim], &df) < 0) return -1;
  int64_t total = cu_numel(src);
  int rc = total == 0 ? check_run(index, 1, dst->shape[dim], 0, 0, df)
           : index->dtype == EMBER_INT32
               ? index_add_typed<int32_t>(dst, dim, index, src, total, df)
               : index_add_typed<int64_t>(dst, dim, index, src, total, df);
  if (rc < 0) return -1;
  return ember_cuda_defer_end(&df, cu_data(index), index->dtype,
                              cu_layout_of(index));
}

template <class I>
static int index_copy_typed(ember_tensor *dst, int dim,
                            const ember_tensor *index, const ember_tensor *src,
                            int64_t total, const ember_cuda_defer &df) {
  return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T U;
    return index_add_run<acc_put<U>, I>(dst, dim, index, src, total, df);
  });
}

int ember_cuda_index_copy(const char *fn, ember_tensor *dst, int dim,
                          const ember_tensor *index, const ember_tensor *src) {
  if (cu_numel(index) == 0) return 0;
  ember_cuda_defer df;
  if (defer_index(fn, dim, dst->shape[dim], &df) < 0) return -1;
  int64_t total = cu_numel(src);
  int rc = total == 0 ? check_run(index, 1, dst->shape[dim], 0, 0, df)
           : index->dtype == EMBER_INT32
               ? index_copy_typed<int32_t>(dst, dim, index, src, total, df)
               : index_copy_typed<int64_t>(dst, dim, index, src, total, df);
  if (rc < 0) return -1;
  return ember_cuda_defer_end(&df, cu_data(index), index->dtype,
                              cu_layout_of(index));
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
** (index, dst, src without dim); sdim is src's stride along dim.  A bad
** index[e] is skipped and reported at position e (row-major, as the
** simplified geometry keeps it).
*/
template <class E, class I, class OC>
__global__ void k_gather(E *dst, const E *src, const I *idx, OC oc,
                         int64_t sdim, int64_t size,
                         typename OC::index_type total, ember_cuda_defer df) {
  CU_FOR_T(typename OC::index_type, e, total) {
    auto o = oc.get(e);
    int64_t v = (int64_t)idx[o[0]] - 1;
    if (v < 0 || v >= size) {
      cu_defer_fail(df, (int64_t)e);
      continue;
    }
    dst[o[1]] = src[(int64_t)o[2] + v * sdim];
  }
}

/* scatter_add: one thread per element e of index: dst at e's coordinates,
   with dim's replaced by index[e] - 1, += src[e].  oc gives (index, src,
   dst without dim); ddim is dst's stride along dim.  Bad indices as in
   k_gather. */
template <class A, class I, class OC>
__global__ void k_scatter_add(typename A::T *dst, const typename A::T *src,
                              const I *idx, OC oc, int64_t ddim, int64_t size,
                              typename OC::index_type total,
                              ember_cuda_defer df) {
  CU_FOR_T(typename OC::index_type, e, total) {
    auto o = oc.get(e);
    int64_t v = (int64_t)idx[o[0]] - 1;
    if (v < 0 || v >= size) {
      cu_defer_fail(df, (int64_t)e);
      continue;
    }
    A::apply(dst + (int64_t)o[2] + v * ddim, src[o[1]]);
  }
}

template <class I>
static int gather_typed(ember_tensor *dst, const ember_tensor *src, int dim,
                        const ember_tensor *index, int64_t total,
                        const ember_cuda_defer &df) {
  const I *idx = (const I *)cu_data(index);
  int64_t sdim = dim < src->ndim ? src->strides[dim] : 0;
  int64_t size = dim < src->ndim ? src->shape[dim] : 1;
  cu_geom g = gather_geom(index, dst->strides, src->strides, dim);
  unsigned nb = cu_blocks(total);
  return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T U;
    return cu_with_offsets<3>(g, [&](auto oc) {
      typedef decltype(oc) OC;
      k_gather<U, I, OC><<<nb, CU_THREADS>>>(
          (U *)cu_data(dst), (const U *)cu_data(src), idx, oc, sdim, size,
          (typename OC::index_type)total, df);
      CU_LAUNCH_CHECK("gather");
      return 0;
    });
  });
}

/* gather and scatter_add_: one thread per index element, which checks it */
int ember_cuda_gather(ember_tensor *dst, const ember_tensor *src, int dim,
                      const ember_tensor *index) {
  int64_t total = cu_numel(index);
  if (total == 0) return 0;
  ember_cuda_defer df;
  if (defer_index("gather", dim, src->shape[dim], &df) < 0) return -1;
  int rc = index->dtype == EMBER_INT32
               ? gather_typed<int32_t>(dst, src, dim, index, total, df)
               : gather_typed<int64_t>(dst, src, dim, index, total, df);
  if (rc < 0) return -1;
  return ember_cuda_defer_end(&df, cu_data(index), index->dtype,
                              cu_layout_of(index));
}

template <class A, class I>
static int scatter_add_run(ember_tensor *dst, int dim,
                           const ember_tensor *index, const ember_tensor *src,
                           int64_t total, const ember_cuda_defer &df,
                           const char *fn = "scatter_add_") {
  typedef typename A::T T;
  int64_t ddim = dim < dst->ndim ? dst->strides[dim] : 0;
  int64_t size = dim < dst->ndim ? dst->shape[dim] : 1;
  cu_geom g = gather_geom(index, src->strides, dst->strides, dim);
  return cu_with_offsets<3>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_scatter_add<A, I, OC><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(dst), (const T *)cu_data(src), (const I *)cu_data(index),
        oc, ddim, size, (typename OC::index_type)total, df);
    CU_LAUNCH_CHECK(fn);
    return 0;
  });
}

/* bool adds as bytes here (the CPU's move_one), unlike index_add */
template <class I>
static int scatter_add_typed(ember_tensor *dst, int dim,
                             const ember_tensor *index,
                             const ember_tensor *src, int64_t total,
                             const ember_cuda_defer &df) {
  return ember_cuda_dispatch(dst->dtype, [&](auto ty) {
    constexpr int DT = decltype(ty)::dt;
    if constexpr (DT == EMBER_FLOAT32) return scatter_add_run<acc_f32, I>(dst, dim, index, src, total, df);
    else if constexpr (DT == EMBER_FLOAT64) return scatter_add_run<acc_f64, I>(dst, dim, index, src, total, df);
    else if constexpr (DT == EMBER_INT32) return scatter_add_run<acc_i32, I>(dst, dim, index, src, total, df);
    else if constexpr (DT == EMBER_INT64) return scatter_add_run<acc_i64, I>(dst, dim, index, src, total, df);
    else return scatter_add_run<acc_u8, I>(dst, dim, index, src, total, df);
  });
}

int ember_cuda_scatter_add(ember_tensor *dst, int dim,
                           const ember_tensor *index,
                           const ember_tensor *src) {
  int64_t total = cu_numel(index);
  if (total == 0) return 0;
  ember_cuda_defer df;
  if (defer_index("scatter_add_", dim, dst->shape[dim], &df) < 0) return -1;
  int rc = index->dtype == EMBER_INT32
               ? scatter_add_typed<int32_t>(dst, dim, index, src, total, df)
               : scatter_add_typed<int64_t>(dst, dim, index, src, total, df);
  if (rc < 0) return -1;
  return ember_cuda_defer_end(&df, cu_data(index), index->dtype,
                              cu_layout_of(index));
}

/* }====================================================================== */

/* {======================================================================
** scatter: assign, or reduce with a product, max or min
** ======================================================================= */

/*
** A read-modify-write *p = f(*p, v) by compare-and-swap on the word
** holding *p: the element itself for 4 and 8 bytes, its aligned 32-bit
** word for a byte (word_of).  Bits are compared, so a NaN ends the loop
** like any other value.
*/
template <class T, class F>
__device__ static void cas_update(T *p, T v, F f) {
  if constexpr (sizeof(T) == 8) {
    unsigned long long *w = (unsigned long long *)p, old = *w, assumed, nw;
    do {
      assumed = old;
      T cur, nv;
      memcpy(&cur, &assumed, 8);
      nv = f(cur, v);
      memcpy(&nw, &nv, 8);
      old = atomicCAS(w, assumed, nw);
    } while (old != assumed);
  } else if constexpr (sizeof(T) == 4) {
    unsigned int *w = (unsigned int *)p, old = *w, assumed, nw;
    do {
      assumed = old;
      T cur, nv;
      memcpy(&cur, &assumed, 4);
      nv = f(cur, v);
      memcpy(&nw, &nv, 4);
      old = atomicCAS(w, assumed, nw);
    } while (old != assumed);
  } else {
    unsigned shift;
    unsigned int *w = word_of((uint8_t *)p, &shift);
    unsigned int old = *w, assumed;
    do {
      assumed = old;
      T nv = f((T)((assumed >> shift) & 0xffu), v);
      unsigned int nw = (assumed & ~(0xffu << shift)) | ((unsigned int)(uint8_t)nv << shift);
      old = atomicCAS(w, assumed, nw);
    } while (old != assumed);
  }
}

/* The reductions, as the CPU's reduce_float and reduce_int: integer
   products wrap (done unsigned), a NaN wins max and min (b != b is false
   for integers). */
struct op_prod {
  template <class T> __device__ T operator()(T a, T b) const {
    if constexpr (std::is_floating_point<T>::value) return a * b;
    else return (T)((typename std::make_unsigned<T>::type)a *
                    (typename std::make_unsigned<T>::type)b);
  }
};
struct op_max {
  template <class T> __device__ T operator()(T a, T b) const {
    return b != b || b > a ? b : a;
  }
};
struct op_min {
  template <class T> __device__ T operator()(T a, T b) const {
    return b != b || b < a ? b : a;
  }
};

template <class TT, class F> struct acc_cas {
  typedef TT T;
  __device__ static void apply(T *p, T v) { cas_update(p, v, F()); }
};

template <class I>
static int scatter_typed(ember_scatter_reduce op, ember_tensor *dst, int dim,
                         const ember_tensor *index, const ember_tensor *src,
                         int64_t total, const ember_cuda_defer &df) {
  if (op == EMBER_SCATTER_ASSIGN)
    return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
      typedef typename decltype(ty)::T U;
      /* ASSIGN: index_copy's store of the element's bits; of two indices
         naming one place, either store may land last (PyTorch's CUDA
         scatter alike) */
      return scatter_add_run<acc_put<U>, I>(dst, dim, index, src, total, df, "scatter");
    });
  if (op == EMBER_SCATTER_SUM)
    return scatter_add_typed<I>(dst, dim, index, src, total, df);
  return ember_cuda_dispatch(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    if (op == EMBER_SCATTER_PROD)
      return scatter_add_run<acc_cas<T, op_prod>, I>(dst, dim, index, src, total, df, "scatter");
    if (op == EMBER_SCATTER_AMAX)
      return scatter_add_run<acc_cas<T, op_max>, I>(dst, dim, index, src, total, df, "scatter");
    return scatter_add_run<acc_cas<T, op_min>, I>(dst, dim, index, src, total, df, "scatter");
  });
}

/* One thread per index element, which checks it (as scatter_add_). */
int ember_cuda_scatter(ember_scatter_reduce op, ember_tensor *dst, int dim,
                       const ember_tensor *index, const ember_tensor *src) {
  int64_t total = cu_numel(index);
  if (total == 0) return 0;
  ember_cuda_defer df;
  if (defer_index("scatter", dim, dst->shape[dim], &df) < 0) return -1;
  int rc = index->dtype == EMBER_INT32
               ? scatter_typed<int32_t>(op, dst, dim, index, src, total, df)
               : scatter_typed<int64_t>(op, dst, dim, index, src, total, df);
  if (rc < 0) return -1;
  return ember_cuda_defer_end(&df, cu_data(index), index->dtype,
                              cu_layout_of(index));
}

/* }====================================================================== */

/* {======================================================================
** nonzero: coordinates placed by a running count
** ======================================================================= */

struct nz_shape { int64_t s[EMBER_MAX_DIMS]; };

/* One thread per element i of the tensor read flat: where the count steps
   up, i's 1-based coordinates go to row cs[i] of dst ([N, ndim]), so the
   rows are in row-major order without any ordering between threads. */
__global__ void k_nonzero(int64_t *dst, const int64_t *cs, int64_t total,
                          int ndim, nz_shape sh) {
  CU_FOR(i, total) {
    int64_t c = cs[i], prev = i ? cs[i - 1] : 0;
    if (c == prev) continue;
    int64_t *row = dst + (c - 1) * ndim, rest = i;
    for (int d = ndim - 1; d >= 0; d--) {
      row[d] = rest % sh.s[d] + 1;
      rest /= sh.s[d];
    }
  }
}

int ember_cuda_nonzero(ember_tensor *dst, const ember_tensor *cs, int ndim,
                       const int64_t *shape) {
  int64_t total = cu_numel(cs);
  if (total == 0 || ndim == 0) return 0;
  nz_shape sh;
  memset(&sh, 0, sizeof sh);
  for (int d = 0; d < ndim; d++) sh.s[d] = shape[d];
  k_nonzero<<<cu_blocks(total), CU_THREADS>>>((int64_t *)cu_data(dst),
                                              (const int64_t *)cu_data(cs),
                                              total, ndim, sh);
  CU_LAUNCH_CHECK("nonzero");
  return 0;
}

/* }====================================================================== */
