/*
** half.h -- the two 16-bit float formats, bfloat16 and IEEE float16, as
** they are stored (a uint16_t each) and converted to and from float32.
**
** Narrowing rounds to nearest, ties to even, as PyTorch and the hardware
** conversions do; subnormals are kept (no flush to zero); a NaN stays a
** (quiet) NaN; a float32 beyond a format's range becomes infinity.
** Widening is exact.  Arithmetic on these formats is done in float32: a
** kernel widens its operands, computes, and rounds once when it stores.
*/
#ifndef EMBER_HALF_H
#define EMBER_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t ember_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float ember_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* bfloat16 is float32's upper half: the same exponent, 7 mantissa bits. */
static inline float ember_bf16_to_f32(uint16_t h) {
  return ember_bits_f32((uint32_t)h << 16);
}

static inline uint16_t ember_f32_to_bf16(float f) {
  uint32_t u = ember_f32_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u)            /* NaN: keep it quiet */
    return (uint16_t)((u >> 16) | 0x40);
  u += 0x7FFFu + ((u >> 16) & 1);                 /* ties to even */
  return (uint16_t)(u >> 16);
}

/* float16: 5 exponent bits (bias 15), 10 mantissa bits. */
static inline float ember_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, em = h & 0x7FFFu, u;
  if (em >= 0x7C00u) u = 0x7F800000u | (em & 0x3FFu) << 13;    /* inf, NaN */
  else if (em >= 0x400u) u = (em << 13) + 0x38000000u;         /* normal */
  else u = ember_f32_bits((float)em * 0x1p-24f);              /* subnormal */
  return ember_bits_f32(u | sign);
}

static inline uint16_t ember_f32_to_f16(float f) {
  uint32_t u = ember_f32_bits(f), sign = (u >> 16) & 0x8000u;
  u &= 0x7FFFFFFFu;
  if (u >= 0x7F800000u)                                        /* inf, NaN */
    return (uint16_t)(sign | 0x7C00u | (u > 0x7F800000u ? 0x200u | (u >> 13 & 0x3FFu) : 0));
  if (u >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  /* >= 65520 */
  if (u < 0x38800000u) {                          /* below 2^-14: subnormal */
    /* 0.5 + |f| has an ulp of 2^-24, float16's subnormal step: the add
       rounds to nearest even, and the low bits are the result */
    float a = ember_bits_f32(u) + 0.5f;
    return (uint16_t)(sign | (ember_f32_bits(a) - 0x3F000000u));
  }
  u += 0xC8000FFFu + ((u >> 13) & 1);   /* exponent bias 127 -> 15, round */
  return (uint16_t)(sign | (u >> 13));
}

#endif
