/*
** gemm_half.c -- products of bfloat16 and float16 matrices on the CPU.
**
** Contract: C [M,N] (float32, row-major, rows ldc apart) = op(A) op(B)
** (+ C with accumulate), A and B bfloat16 or float16 (both the same type),
** row-major with leading dimensions as cblas's, ta/tb their transposes.
** Every product is summed in float32 and C stays float32: the caller
** rounds it to the output dtype once (ember_cpu_matmul), or keeps it
** (the mixed-precision "bf16 in, float32 out" of docs/internals.md).
**
** Two paths, chosen by what the CPU has:
**
**   widen  the operands widened to float32 (exact: a 16-bit float is a
**          float32 with fewer mantissa bits) and handed to
**          ember_cpu_sgemm (OpenBLAS, or matmul.c's small kernels).  The
**          widening is O(MK + KN) against the product's O(MNK).  float16
**          always goes this way, as does bfloat16 without AVX512-BF16.
**   dpbf16 bfloat16 with AVX512-BF16: VDPBF16PS on packed panels (below).
**
** Which is faster is a property of the CPU, not of the code: on the Xeon
** (Sapphire Rapids class, AMX not exposed) these kernels were written on,
** VDPBF16PS zmm retires one every 2 cycles (16 multiply-adds a cycle),
** while float32 FMA retires two a cycle (32 multiply-adds), so widening and
** OpenBLAS's AVX-512 sgemm is the faster there, and dpbf16 runs only where
** EMBER_BF16_GEMM=dpbf16 asks for it (bench/NOTES.md has the figures).
** ======================================================================= */
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu.h"

/* A [R, C] matrix stored with rows ld apart, widened into a contiguous
   [R, C] float32 matrix; rows split over the threads when allowed. */
static void widen(float *d, const uint16_t *s, int64_t R, int64_t C,
                  int64_t ld, ember_dtype dt, int threads) {
  int nt = threads && R * C >= (1 << 16) ? ember_cpu_threads() : 1;
  (void)nt;
  #pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < R; r++) ember_cpu_half_to_f32(d + r * C, s + r * ld, C, dt);
}

/* The widen path.  -1 (out of memory) leaves C as it was. */
static int gemm_widen(ember_dtype dt, int ta, int tb, int64_t M, int64_t N,
                      int64_t K, const uint16_t *A, int64_t lda,
                      const uint16_t *B, int64_t ldb, int accumulate, float *C,
                      int64_t ldc, int threads) {
  /* as stored: A is [M,K] or, transposed, [K,M]; B [K,N] or [N,K] */
  int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  float *fa = malloc((size_t)(ar * ac + br * bc) * sizeof *fa);
  if (!fa) {
    ember_set_error("matmul: out of memory (%lld float32 for widened operands)",
                    (long long)(ar * ac + br * bc));
    return -1;
  }
  float *fb = fa + ar * ac;
  widen(fa, A, ar, ac, lda, dt, threads);
  widen(fb, B, br, bc, ldb, dt, threads);
  ember_cpu_sgemm(ta, tb, M, N, K, fa, ac > 1 ? ac : 1, fb, bc > 1 ? bc : 1,
                  accumulate, C, ldc, threads);
  free(fa);
  return 0;
}

int ember_cpu_gemm_half(ember_dtype dt, int ta, int tb, int64_t M, int64_t N,
                        int64_t K, const void *A, int64_t lda, const void *B,
                        int64_t ldb, int accumulate, float *C, int64_t ldc,
                        int threads) {
  if (M == 0 || N == 0) return 0;
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof *C);
    return 0;
  }
  return gemm_widen(dt, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc,
                    threads);
}
