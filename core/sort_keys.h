/*
** sort_keys.h -- the order-preserving keys of the `sort` slot, shared by
** the CPU kernel (core/cpu/sort.c) and the CUDA one (core/cuda/sort.cu) so
** that both order every value the same way.
**
** An element becomes an unsigned integer whose order is PyTorch's
** ascending order: floats by the sign-flip trick (negative: all bits
** flipped; positive: the sign bit set), with -0.0 read as +0.0 (they tie,
** as PyTorch compares them) and every NaN as the all-ones key, above +inf
** (NaNs tie with each other, after every number); signed integers with
** the sign bit flipped; uint8 and bool as they are.  Descending order is
** the complement of the key (within its width), so NaN comes first.
*/
#ifndef EMBER_SORT_KEYS_H
#define EMBER_SORT_KEYS_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define EMBER_KEY_FN __host__ __device__ static inline
#else
#define EMBER_KEY_FN static inline
#endif

/* Written without branches, so that a loop of them vectorises: x + 0.0
   turns -0.0 into +0.0 (round to nearest), the arithmetic shift makes the
   mask that flips a negative number's bits, and the NaN test is a select. */
EMBER_KEY_FN uint32_t ember_key_f32(float x) {
  float y = x + 0.0f;
  uint32_t u;
  memcpy(&u, &y, sizeof u);
  uint32_t key = u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u);
  return x != x ? 0xFFFFFFFFu : key;
}

EMBER_KEY_FN uint64_t ember_key_f64(double x) {
  double y = x + 0.0;
  uint64_t u;
  memcpy(&u, &y, sizeof u);
  uint64_t key = u ^ ((uint64_t)((int64_t)u >> 63) | (UINT64_C(1) << 63));
  return x != x ? UINT64_MAX : key;
}

EMBER_KEY_FN uint32_t ember_key_i32(int32_t x) { return (uint32_t)x ^ 0x80000000u; }
EMBER_KEY_FN uint64_t ember_key_i64(int64_t x) {
  return (uint64_t)x ^ (UINT64_C(1) << 63);
}
EMBER_KEY_FN uint8_t ember_key_u8(uint8_t x) { return x; }

#endif
