/*
** random.c -- the CPU's random kernels.
**
** Element i of a draw is made from Philox-4x32-10 of (seed, counter + i)
** (core/philox.h, the one definition core/cuda/random.cu uses too), so a
** draw is the same on any number of threads, any platform and either
** device.
*/
#include <math.h>

#include "../philox.h"
#include "cpu.h"

__extension__ typedef unsigned __int128 u128;

/* uniform in [0, 1) with 53 random bits */
static inline double u01(const uint32_t w[4]) {
  uint64_t x = ((uint64_t)w[0] << 32 | w[1]) >> 11;
  return (double)x * 0x1.0p-53;
}

/* Box-Muller: a standard normal from words 2 and 3 (u1 in (0, 1]) */
static inline double normal01(const uint32_t w[4]) {
  double u1 = ((double)w[2] + 1.0) * 0x1.0p-32;
  double u2 = (double)w[3] * 0x1.0p-32;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* dst is contiguous (the core creates it): element i is counter + i */
int ember_cpu_random(int kind, ember_tensor *dst, uint64_t seed,
                     uint64_t counter, double a, double b) {
  int64_t n = ember_numel(dst);
  char *d = ember_data(dst);
  /* kind 2: b - a + 1 in unsigned arithmetic (0 means all 2^64 values;
     the int64 difference could overflow) */
  uint64_t range = (uint64_t)(int64_t)b - (uint64_t)(int64_t)a + 1;
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (n >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t i = 0; i < n; i++) {
    uint32_t w[4];
    ember_philox(seed, counter + (uint64_t)i, w);
    double v = 0;
    int64_t iv = 0;
    if (kind == 0) v = a + (b - a) * u01(w);
    else if (kind == 1) v = a + b * normal01(w);
    else {
      uint64_t x = (uint64_t)w[0] << 32 | w[1];
      /* multiply-shift maps 64 random bits onto the range (bias < 2^-64 * range) */
      uint64_t hi = range ? (uint64_t)(((u128)x * range) >> 64) : x;
      iv = (int64_t)((uint64_t)(int64_t)a + hi);
    }
    switch (dst->dtype) {
      case EMBER_FLOAT32: {
        float f = kind == 2 ? (float)iv : (float)v;
        /* rounding can reach the open upper bound of [a, b): step back */
        if (kind == 0 && f >= (float)b && b > a) f = nextafterf((float)b, -INFINITY);
        ((float *)d)[i] = f;
        break;
      }
      case EMBER_FLOAT64: ((double *)d)[i] = kind == 2 ? (double)iv : v; break;
      case EMBER_INT32: ((int32_t *)d)[i] = (int32_t)iv; break;
      case EMBER_INT64: ((int64_t *)d)[i] = iv; break;
      default: ((uint8_t *)d)[i] = (uint8_t)iv; break;
    }
  }
  return 0;
}
