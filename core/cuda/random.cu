/*
** random.cu -- the random kernels (CUDA).
**
** The CUDA twin of core/cpu/random.c: element i of a draw is made from
** Philox-4x32-10 of (seed, counter + i) (core/philox.h, the CPU's very
** function) by the same formulas in double,
** then converted to dst's dtype as the CPU does (bfloat16/float16: the
** float32 value rounded), so a seeded draw gives
** the same numbers on both devices:
**   kind 0  uniform [a, b): a + (b - a) * u, u from 53 bits of words 0-1;
**   kind 1  normal(a, b):   a + b * Box-Muller of words 2 and 3;
**   kind 2  integers [a, b]: a + the high 64 bits of (64 random bits *
**           range), range = b - a + 1 (0 meaning all 2^64 values).
** The products and sums are written with explicit round-to-nearest
** intrinsics so that nvcc cannot fuse them into FMAs the CPU does not use.
** Uniforms and integers are bit-identical to the CPU's.  Normals go
** through log and cos, whose last bit may differ between CUDA's libm and
** the host's: float32 results agree but for ~1e-9 of the elements, float64
** ones to an ulp or two.
*/
#include <math.h>
#include <type_traits>

#include "../philox.h"
#include "cuda_internal.h"

/* uniform in [0, 1) with 53 random bits (exact: no rounding) */
__device__ static inline double u01(const uint32_t w[4]) {
  uint64_t x = ((uint64_t)w[0] << 32 | w[1]) >> 11;
  return __dmul_rn((double)x, 0x1.0p-53);
}

/* Box-Muller: a standard normal from words 2 and 3 (u1 in (0, 1]) */
__device__ static inline double normal01(const uint32_t w[4]) {
  double u1 = __dmul_rn(__dadd_rn((double)w[2], 1.0), 0x1.0p-32);
  double u2 = __dmul_rn((double)w[3], 0x1.0p-32);
  return __dmul_rn(sqrt(__dmul_rn(-2.0, log(u1))),
                   cos(__dmul_rn(6.283185307179586, u2)));
}

/* Element i of the draw into d (element i of a row-major walk of dst's
   layout, at the offset calculator's offset: i when contiguous). */
template <class T, class OC>
__global__ void k_random(T *d, OC oc, typename OC::index_type n, int kind,
                         uint64_t seed, uint64_t counter, double a, double b,
                         int64_t ia, uint64_t range) {
  CU_FOR_T(typename OC::index_type, i, n) {
    uint32_t w[4];
    ember_philox(seed, counter + (uint64_t)i, w);
    double v = 0;
    int64_t iv = 0;
    if (kind == 0) {
      v = __dadd_rn(a, __dmul_rn(__dsub_rn(b, a), u01(w)));
    } else if (kind == 1) {
      v = __dadd_rn(a, __dmul_rn(b, normal01(w)));
    } else {
      uint64_t x = (uint64_t)w[0] << 32 | w[1];
      /* multiply-shift maps 64 random bits onto the range */
      uint64_t hi = range ? __umul64hi(x, range) : x;
      iv = (int64_t)((uint64_t)ia + hi);
    }
    auto off = oc.get(i)[0];
    if constexpr (std::is_same<T, float>::value || cu_is_half<T>::value) {
      float f = kind == 2 ? (float)iv : (float)v;
      /* rounding can reach the open upper bound of [a, b): step back */
      if (kind == 0 && f >= (float)b && b > a)
        f = nextafterf((float)b, -INFINITY);
      /* the halves: float32's draw rounded, as the CPU's adapted kernel */
      d[off] = cu_store<T>(f);
    } else if constexpr (std::is_same<T, double>::value) {
      d[off] = kind == 2 ? (double)iv : v;
    } else {                           /* integer dtypes: iv, truncated */
      d[off] = (T)iv;
    }
  }
}

template <class T>
static int random_typed(int kind, ember_tensor *dst, int64_t n, uint64_t seed,
                        uint64_t counter, double a, double b, int64_t ia,
                        uint64_t range) {
  cu_geom g;
  if (cu_geom_of(&g, "random", {dst}) < 0) return -1;
  return cu_with_offsets<1>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_random<T, OC><<<cu_blocks(n), CU_THREADS>>>(
        (T *)cu_data(dst), oc, (typename OC::index_type)n, kind, seed,
        counter, a, b, ia, range);
    CU_LAUNCH_CHECK("random");
    return 0;
  });
}

int ember_cuda_random(int kind, ember_tensor *dst, uint64_t seed,
                      uint64_t counter, double a, double b) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  /* kind 2: the CPU's range, (int64)b - (int64)a + 1 wrapping in uint64 */
  int64_t ia = 0;
  uint64_t range = 0;
  if (kind == 2) {
    ia = (int64_t)a;
    range = (uint64_t)(int64_t)b - (uint64_t)ia + 1;
  }
  return ember_cuda_dispatch_half(dst->dtype, [&](auto ty) {
    return random_typed<typename decltype(ty)::T>(kind, dst, n, seed, counter,
                                                  a, b, ia, range);
  });
}
