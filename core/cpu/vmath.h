/*
** vmath.h -- float32 exp, log, tanh, sigmoid and erf that GCC vectorises.
**
** glibc's expf/logf/erff are scalar calls, so a loop over them runs one
** element at a time (the fused cross entropy on a GPT-2 vocabulary spent
** most of its time in expf).  These are static inline, branch-free (both
** sides of a range split are computed and one is selected) and use only
** arithmetic, bit casts and fmaf, so a loop calling them inside an
** EMBER_SIMD function becomes AVX2/AVX-512 code; in the baseline clone fmaf
** is a libm call and they run scalar, still correct.  Loops that want them
** vectorised must read through restrict locals, not through a struct's
** pointers (GCC then gives up: "no vectype").
**
** Accuracy (spec/core/vmath_spec.lua sweeps floats against float64 libm;
** worst seen over every 997th float): exp 0.98 ulp, log 0.76, tanh 1.25,
** erf 1.08, sigmoid 2.45; NaN, +-inf, +-0 and subnormal inputs and results
** as C99 says.  Every clone gives the same bits (fmaf is exact
** everywhere).  float64 stays on libm.
*/
#ifndef EMBER_VMATH_H
#define EMBER_VMATH_H

#include <math.h>
#include <stdint.h>

/* Always inlined: a kernel with many cases (unary_f32) passes GCC's
   inlining limits, and a call in a loop stops its vectorisation. */
#if defined(__GNUC__) || defined(__clang__)
#define VM_INLINE static inline __attribute__((always_inline))
#else
#define VM_INLINE static inline
#endif

VM_INLINE int32_t vm_bits(float x) {
  union { float f; int32_t i; } u = {x};
  return u.i;
}

VM_INLINE float vm_float(int32_t i) {
  union { int32_t i; float f; } u = {i};
  return u.f;
}

/* c ? a : b with both computed, as bit masks: GCC sinks a value that only
   one arm of a ?: uses into a branch, and under -ftrapping-math (the
   default) it will not turn a branch holding float arithmetic back into a
   select, so the loop would not vectorise ("control flow in loop"). */
VM_INLINE float vm_select(int c, float a, float b) {
  int32_t m = -(int32_t)(c != 0);
  return vm_float((vm_bits(a) & m) | (vm_bits(b) & ~m));
}

/* e^x: x = n ln2 + r with |r| <= ln2 / 2 (Cody-Waite, the split of ln2
   exact under fma), e^r by Cephes' expf polynomial, 2^n as two factors
   2^(n/2) 2^(n - n/2) so that results down to the subnormals (n to -150)
   and up to the overflow round once.  n comes from the float rounding
   trick (x log2e + 1.5 2^23: its low mantissa bits are n), which never
   converts a NaN to an integer; the clamp keeps n in range and passes NaN
   (comparisons with it are false). */
VM_INLINE float vm_expf(float x) {
  const float shift = 12582912.0f;                       /* 1.5 * 2^23 */
  float xc = x > 88.8f ? 88.8f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  float t = fmaf(xc, 1.44269504088896341f, shift);
  int32_t n = vm_bits(t) - vm_bits(shift);
  float fn = t - shift;
  float r = fmaf(fn, -0.693145751953125f, xc);           /* ln2, high part */
  r = fmaf(fn, -1.428606765330187e-06f, r);              /* and the rest */
  float p = 1.9875691500e-4f;
  p = fmaf(p, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  p = fmaf(p, r * r, r) + 1.0f;
  int32_t n1 = n >> 1, n2 = n - n1;
  /* 2^n1 2^n2 built in unsigned arithmetic: for a NaN x, n is whatever the
     NaN's bits give, and a signed shift or product could overflow (the
     result is replaced by x below, but the overflow itself would be UB) */
  float y = p * vm_float((int32_t)((uint32_t)(n1 + 127) << 23)) *
            vm_float((int32_t)((uint32_t)(n2 + 127) << 23));
  return vm_select(isnan(x), x, y);
}

/* log x = e ln2 + log m with m in [sqrt(1/2), sqrt(2)) (Cephes' logf
   polynomial on m - 1); subnormals are scaled by 2^25 first.  log 0 =
   -inf, log of a negative or NaN is NaN, log inf = inf. */
VM_INLINE float vm_logf(float x) {
  int sub = x < 1.17549435e-38f;
  float xbig = x * 33554432.0f;                          /* 2^25 */
  float xs = vm_select(sub, xbig, x);
  int32_t i = vm_bits(xs);
  int32_t e = ((i >> 23) & 0xff) - 126 - (sub ? 25 : 0);
  float m = vm_float((i & 0x007fffff) | 0x3f000000);     /* in [0.5, 1) */
  int low = m < 0.70710678118654752f;
  float fe = (float)(e - low);
  float m2 = m + m;
  float f = vm_select(low, m2, m) - 1.0f;
  float z = f * f;
  float p = 7.0376836292e-2f;
  p = fmaf(p, f, -1.1514610310e-1f);
  p = fmaf(p, f, 1.1676998740e-1f);
  p = fmaf(p, f, -1.2420140846e-1f);
  p = fmaf(p, f, 1.4249322787e-1f);
  p = fmaf(p, f, -1.6668057665e-1f);
  p = fmaf(p, f, 2.0000714765e-1f);
  p = fmaf(p, f, -2.4999993993e-1f);
  p = fmaf(p, f, 3.3333331174e-1f);
  float y = f * z * p;
  y = fmaf(fe, -2.12194440e-4f, y);
  y = fmaf(z, -0.5f, y);
  float r = fmaf(fe, 0.693359375f, f + y);
  r = vm_select(x == INFINITY, x, r);
  r = vm_select(x == 0.0f, -INFINITY, r);
  r = vm_select(x < 0.0f, NAN, r);
  return vm_select(isnan(x), x, r);
}

/* tanh: Cephes' odd polynomial below |x| 0.625, 1 - 2 / (e^2|x| + 1)
   above (no cancellation there: the quotient is below 0.45), sign put
   back by copysign; |x| > 9.1 is +-1 in float. */
VM_INLINE float vm_tanhf(float x) {
  float a = fabsf(x);
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = fmaf(p, z, 2.06390887954e-2f);
  p = fmaf(p, z, -5.37397155531e-2f);
  p = fmaf(p, z, 1.33314422036e-1f);
  p = fmaf(p, z, -3.33332819422e-1f);
  float small = copysignf(fmaf(a * z, p, a), x);   /* -0 stays -0 */
  float a2 = a + a;
  float e = vm_expf(a2 > 18.2f ? 18.2f : a2);   /* clamped after doubling:
                                                  GCC sinks a product into
                                                  a ?: arm */
  float big = copysignf(1.0f - 2.0f / (e + 1.0f), x);
  big = vm_select(isnan(x), x, big);
  return vm_select(a < 0.625f, small, big);
}

/* 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below (so that e^-x does
   not overflow while the result is still a float) */
VM_INLINE float vm_sigmoidf(float x) {
  float e = vm_expf(-fabsf(x));
  float s = 1.0f / (1.0f + e);
  float es = e * s;
  return vm_select((x >= 0.0f) | isnan(x), s, es);
}

/* erf: x + x P(x^2) below |x| 0.921875, 1 - N(u) / D(u) above, u = |x| -
   0.921875, N / D a rational fit to erfc on [0.921875, 3.95] (beyond,
   erf is 1 in float); least-squares fits to the exact function
   (spec/reference/make_vmath_coefficients.py).  No exp: with 1 - e^Q(|x|)
   here before, GELU's erf form took twice PyTorch's time. */
VM_INLINE float vm_erff(float x) {
  float a = fabsf(x);
  float s = x * x;
  float p = -6.046571070328355e-4f;
  p = fmaf(p, s, 5.005493760108948e-3f);
  p = fmaf(p, s, -2.677629515528679e-2f);
  p = fmaf(p, s, 1.1282136291265488e-1f);
  p = fmaf(p, s, -3.761253356933594e-1f);
  p = fmaf(p, s, 1.2837916612625122e-1f);
  float small = fmaf(x, p, x);
  /* u clamped to the fitted range, so that D stays away from 0 in the
     lanes that take `small`; a NaN goes through the clamps and the
     arithmetic (no select for it) */
  float t = a < 0.921875f ? 0.921875f : a;
  t = t > 3.95f ? 3.95f : t;
  float u = t - 0.921875f;
  int one = a >= 3.95f;
  float nu = 3.835606621578336e-4f;
  nu = fmaf(nu, u, -6.310942582786083e-3f);
  nu = fmaf(nu, u, 4.367765784263611e-2f);
  nu = fmaf(nu, u, -1.62948876619339e-1f);
  nu = fmaf(nu, u, 3.460054099559784e-1f);
  nu = fmaf(nu, u, -3.969001770019531e-1f);
  nu = fmaf(nu, u, 1.9232629239559174e-1f);
  float de = 2.3445552214980125e-2f;
  de = fmaf(de, u, 3.463253751397133e-2f);
  de = fmaf(de, u, 1.4955225586891174e-1f);
  de = fmaf(de, u, 2.177376002073288e-1f);
  de = fmaf(de, u, 6.014676690101624e-1f);
  de = fmaf(de, u, 4.44327175617218e-1f);
  de = fmaf(de, u, 1.0f);
  float big = copysignf(vm_select(one, 1.0f, 1.0f - nu / de), x);
  return vm_select(a < 0.921875f, small, big);
}

#endif
