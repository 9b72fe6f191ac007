/*
** half.c -- bulk conversions between float32 and the 16-bit floats
** (core/half.h has the format and the rounding rule).
**
** They are the inner loop of every bfloat16 and float16 kernel, which
** widens a block of its operands to float32, computes, and narrows what it
** stores, so they run AVX-512 where the processor has it: bfloat16 with
** integer arithmetic (the same rounding as the scalar rule: VCVTNEPS2BF16
** would flush subnormals to zero), float16 with VCVTPS2PH/VCVTPH2PS, which
** round to nearest even and keep subnormals.  The scalar rule handles the
** tail and other processors.
*/
#include "cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX512 1
#define AVX512 __attribute__((target("avx512f,avx512bw")))

static int have_avx512(void) { return ember_cpu_features() & EMBER_CPU_AVX512; }

static AVX512 int64_t bf16_from_f32_avx512(uint16_t *d, const float *s, int64_t n) {
  const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
  const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
  const __m512i quiet = _mm512_set1_epi32(0x400000);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i u = _mm512_castps_si512(_mm512_loadu_ps(s + i));
    __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, absmask), inf);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, odd));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, quiet));
    _mm256_storeu_si256((__m256i *)(d + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
  }
  return i;
}

static AVX512 int64_t f32_from_bf16_avx512(float *d, const uint16_t *s, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i)));
    _mm512_storeu_ps(d + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  return i;
}

static AVX512 int64_t f16_from_f32_avx512(uint16_t *d, const float *s, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i *)(d + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT |
                                                                 _MM_FROUND_NO_EXC));
  return i;
}

static AVX512 int64_t f32_from_f16_avx512(float *d, const uint16_t *s, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
  return i;
}
#endif

void ember_cpu_bf16_from_f32(uint16_t *d, const float *s, int64_t n) {
  int64_t i = 0;
#ifdef HAVE_AVX512
  if (have_avx512()) i = bf16_from_f32_avx512(d, s, n);
#endif
  for (; i < n; i++) d[i] = ember_f32_to_bf16(s[i]);
}

void ember_cpu_f32_from_bf16(float *d, const uint16_t *s, int64_t n) {
  int64_t i = 0;
#ifdef HAVE_AVX512
  if (have_avx512()) i = f32_from_bf16_avx512(d, s, n);
#endif
  for (; i < n; i++) d[i] = ember_bf16_to_f32(s[i]);
}

void ember_cpu_f16_from_f32(uint16_t *d, const float *s, int64_t n) {
  int64_t i = 0;
#ifdef HAVE_AVX512
  if (have_avx512()) i = f16_from_f32_avx512(d, s, n);
#endif
  for (; i < n; i++) d[i] = ember_f32_to_f16(s[i]);
}

void ember_cpu_f32_from_f16(float *d, const uint16_t *s, int64_t n) {
  int64_t i = 0;
#ifdef HAVE_AVX512
  if (have_avx512()) i = f32_from_f16_avx512(d, s, n);
#endif
  for (; i < n; i++) d[i] = ember_f16_to_f32(s[i]);
}

void ember_cpu_half_to_f32(float *d, const void *s, int64_t n, ember_dtype dt) {
  if (dt == EMBER_BFLOAT16) ember_cpu_f32_from_bf16(d, s, n);
  else ember_cpu_f32_from_f16(d, s, n);
}

void ember_cpu_half_from_f32(void *d, const float *s, int64_t n, ember_dtype dt) {
  if (dt == EMBER_BFLOAT16) ember_cpu_bf16_from_f32(d, s, n);
  else ember_cpu_f16_from_f32(d, s, n);
}
