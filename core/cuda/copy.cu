/*
** copy.cu -- the copy (with dtype conversion), fill and arange kernels of
** the CUDA backend, the twins of the CPU's (core/cpu/elementwise.c), with
** the same conversion rules.
*/
#include <type_traits>

#include "cuda_internal.h"

/* {======================================================================
** Conversions, as the CPU's copy (core/cpu/elementwise.c) does them
** ======================================================================= */

/* Float to integer saturates, NaN -> 0 (the CPU's sat_*). */
__device__ static inline int64_t cu_sat_i64(double x) {
  if (x != x) return 0;
  if (x >= 9223372036854775807.0) return INT64_MAX;
  if (x <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)x;
}
__device__ static inline int32_t cu_sat_i32(double x) {
  if (x != x) return 0;
  if (x >= 2147483647.0) return INT32_MAX;
  if (x <= -2147483648.0) return INT32_MIN;
  return (int32_t)x;
}
__device__ static inline uint8_t cu_sat_u8(double x) {
  if (x != x || x <= 0) return 0;
  if (x >= 255.0) return 255;
  return (uint8_t)x;
}

/* x (of C type TS, a compute type: a half source is loaded as float)
   converted to dtype DT: floats by C's conversion, the halves through
   float32 then rounded to nearest even (as the CPU: a double is rounded
   twice); integers from floats saturating, from integers keeping the low
   bits; bool as x != 0 (NaN is true). */
template <int DT, typename TS>
__device__ static inline typename ember_cuda_type<DT>::T cu_convert(TS x) {
  constexpr bool from_float = std::is_floating_point<TS>::value;
  if constexpr (DT == EMBER_FLOAT32) {
    return (float)x;
  } else if constexpr (DT == EMBER_BFLOAT16 || DT == EMBER_FLOAT16) {
    return cu_store<typename ember_cuda_type<DT>::T>((float)x);
  } else if constexpr (DT == EMBER_FLOAT64) {
    return (double)x;
  } else if constexpr (DT == EMBER_BOOL) {
    return (uint8_t)(x != 0);
  } else if constexpr (from_float) {
    if constexpr (DT == EMBER_INT32) return cu_sat_i32((double)x);
    else if constexpr (DT == EMBER_INT64) return cu_sat_i64((double)x);
    else return cu_sat_u8((double)x);
  } else {
    uint64_t bits = (uint64_t)(int64_t)x;
    if constexpr (DT == EMBER_INT32) return (int32_t)(uint32_t)bits;
    else if constexpr (DT == EMBER_INT64) return (int64_t)bits;
    else return (uint8_t)bits;
  }
}

/* }====================================================================== */

/* {======================================================================
** copy, fill, arange
** ======================================================================= */

/*
** One thread per element (grid-stride).  dst's and src's offsets come from
** one offset calculator (index_math.h; oc gives (dst, src) offsets, plain
** i when both are contiguous).  dst and src have the same shape.
*/
template <int DDT, typename TS, class OC>
__global__ void k_copy(typename ember_cuda_type<DDT>::T *d, const TS *s, OC oc,
                       typename OC::index_type n) {
  CU_FOR_T(typename OC::index_type, i, n) {
    auto o = oc.get(i);
    auto x = cu_load(s[o[1]]);
    d[o[0]] = cu_convert<DDT>(x);
  }
}

/* Same dtype: move the bits (an unsigned type of the element's size, so
   NaN payloads survive). */
template <typename T, class OC>
__global__ void k_copy_bits(T *d, const T *s, OC oc,
                            typename OC::index_type n) {
  CU_FOR_T(typename OC::index_type, i, n) {
    auto o = oc.get(i);
    d[o[0]] = s[o[1]];
  }
}

template <int DDT>
static int copy_to(ember_tensor *dst, const ember_tensor *src, int64_t n,
                   const cu_geom &g) {
  typedef typename ember_cuda_type<DDT>::T TD;
  TD *d = (TD *)cu_data(dst);
  return ember_cuda_dispatch_half(src->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T TS;
    return cu_with_offsets<2>(g, [&](auto oc) {
      typedef decltype(oc) OC;
      k_copy<DDT, TS, OC><<<cu_blocks(n), CU_THREADS>>>(
          d, (const TS *)cu_data(src), oc, (typename OC::index_type)n);
      CU_LAUNCH_CHECK("copy");
      return 0;
    });
  });
}

int ember_cuda_copy(ember_tensor *dst, const ember_tensor *src) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  cu_geom g;
  if (cu_geom_of(&g, "copy", {dst, src}) < 0) return -1;
  if (dst->dtype == src->dtype) {
    size_t es = cu_elsize(dst->dtype);
    void *d = cu_data(dst);
    const void *s = cu_data(src);
    if (cu_geom_contig(g)) {
      if (d != s)
        CU_CHECK(cudaMemcpyAsync(d, s, (size_t)n * es,
                                 cudaMemcpyDeviceToDevice, 0));
      return 0;
    }
    return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
      typedef typename decltype(ty)::T U;
      return cu_with_offsets<2>(g, [&](auto oc) {
        typedef decltype(oc) OC;
        k_copy_bits<U, OC><<<cu_blocks(n), CU_THREADS>>>(
            (U *)d, (const U *)s, oc, (typename OC::index_type)n);
        CU_LAUNCH_CHECK("copy");
        return 0;
      });
    });
  }
  return ember_cuda_dispatch_half(dst->dtype, [&](auto ty) {
    return copy_to<decltype(ty)::dt>(dst, src, n, g);
  });
}

template <typename T, class OC>
__global__ void k_fill(T *d, OC oc, T v, typename OC::index_type n) {
  CU_FOR_T(typename OC::index_type, i, n) d[oc.get(i)[0]] = v;
}

/* The value as the CPU's fill_row takes it: floats from `value`, integers
   from `ivalue` (keeping the low bits), bool from `value != 0`. */
int ember_cuda_fill(ember_tensor *dst, double value, int64_t ivalue) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  cu_geom g;
  if (cu_geom_of(&g, "fill", {dst}) < 0) return -1;
  unsigned nb = cu_blocks(n);
  return ember_cuda_dispatch_half(dst->dtype, [&](auto ty) {
    constexpr int DT = decltype(ty)::dt;
    typedef typename decltype(ty)::T T;
    T v;
    /* the halves through float32, as the CPU's fill */
    if constexpr (cu_is_float<T>::value)
      v = cu_store<T>((typename decltype(ty)::C)value);
    else if constexpr (DT == EMBER_BOOL) v = (uint8_t)(value != 0);
    else v = (T)(typename decltype(ty)::U)(uint64_t)ivalue;   /* low bits */
    return cu_with_offsets<1>(g, [&](auto oc) {
      typedef decltype(oc) OC;
      k_fill<T, OC><<<nb, CU_THREADS>>>((T *)cu_data(dst), oc, v,
                                        (typename OC::index_type)n);
      CU_LAUNCH_CHECK("fill");
      return 0;
    });
  });
}

/* dst[i] = start + i * step in double, then converted as the CPU's arange
   does.  __dmul_rn/__dadd_rn keep the multiply and the add apart (no fused
   multiply-add), so the doubles are the CPU's to the bit. */
template <int DT>
__global__ void k_arange(typename ember_cuda_type<DT>::T *d, double start,
                         double step, int64_t n) {
  CU_FOR(i, n) {
    double v = __dadd_rn(start, __dmul_rn((double)i, step));
    if constexpr (DT == EMBER_FLOAT32) d[i] = (float)v;
    else if constexpr (DT == EMBER_FLOAT64) d[i] = v;
    else if constexpr (DT == EMBER_BFLOAT16 || DT == EMBER_FLOAT16)
      d[i] = cu_store<typename ember_cuda_type<DT>::T>((float)v);
    else if constexpr (DT == EMBER_INT32) d[i] = cu_sat_i32(v);
    else if constexpr (DT == EMBER_INT64) d[i] = cu_sat_i64(v);
    else if constexpr (DT == EMBER_UINT8) d[i] = cu_sat_u8(v);
    else d[i] = (uint8_t)(v != 0);
  }
}

/* dst is contiguous (the core creates it). */
int ember_cuda_arange(ember_tensor *dst, double start, double step) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  unsigned nb = cu_blocks(n);
  int rc = ember_cuda_dispatch_half(dst->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    k_arange<decltype(ty)::dt><<<nb, CU_THREADS>>>((T *)cu_data(dst), start,
                                                   step, n);
    return 0;
  });
  if (rc < 0) return -1;    /* a dtype it refuses */
  CU_LAUNCH_CHECK("arange");
  return 0;
}

/* }====================================================================== */
