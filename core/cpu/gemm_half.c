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
** Three paths (gemm_path; EMBER_BF16_GEMM=fma|dpbf16|widen overrides):
**
**   fma    the default on AVX-512: packed panels (gemm_packed) widened to
**          float32 as they are packed (exact: a 16-bit float is a float32
**          with fewer mantissa bits), an AVX-512 FMA micro-kernel.
**   dpbf16 bfloat16 on AVX512-BF16: the same blocking, pair-interleaved
**          bfloat16 panels, VDPBF16PS.
**   widen  without AVX-512: the operands widened to float32 and handed to
**          ember_cpu_sgemm (OpenBLAS).  O(MK + KN) extra against O(MNK).
** float16 takes fma (or widen).
**
** Why fma and not dpbf16 by default: on the Xeon these kernels were
** written on (Sapphire Rapids class, AMX not exposed), VDPBF16PS zmm
** retires one every 2 cycles (16 multiply-adds a cycle) where float32 FMA
** retires two a cycle (32), so the widened panels win there
** (bench/NOTES.md has the figures).  There is no AMX path: no CPU here
** to test one on.
*/
#include <stdatomic.h>
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

/* {======================================================================
** dpbf16: VDPBF16PS on packed panels
**
** VDPBF16PS adds to each float32 lane the two products of a pair of
** bfloat16s (k and k+1), so both operands are packed pair-interleaved:
**   A panel  MR rows x KC: for each pair p, the MR rows' (A[i,2p], A[i,2p+1])
**            one 32-bit unit each, broadcast to every lane in turn;
**   B panel  KC x NR: for each pair p, the NR columns' (B[2p,j], B[2p+1,j]),
**            NR/16 vectors.
** An odd K, and rows or columns past the edges, are padded with zeros
** (adding nothing).  The register tile is MR x NR = 12 x 32 float32 (24
** accumulators, 2 B vectors, 1 broadcast of 32 registers).  Blocking as
** BLIS: a KC x NC block of B packed once and shared by the threads (it
** stays in L2), each thread packing MC x KC blocks of A (L1/L2) and
** sweeping the B panels.  Each C element is one float32 sum over k in a
** fixed order, whatever the thread count.
** ======================================================================= */

#define MR 12
#define NR 32
#define KC 256            /* k per block: a 32 x KC float32 B micro-panel is 32 KB (L1) */
#define MC 96             /* rows of A per packed block (8 tiles) */
#define NC 1024           /* columns of B per packed block */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    (__GNUC__ >= 10 || defined(__clang__))
#define HAVE_DPBF16 1
#include <immintrin.h>

/* Packing.  A block's k range lies inside [0, K) (kc <= K - k0), so only
   rows or columns past the matrix's edge, and the second half of the
   last pair of an odd K, read as zeros. */

static inline float widen1(uint16_t h, ember_dtype dt) {
  return dt == EMBER_BFLOAT16 ? ember_bf16_to_f32(h) : ember_f16_to_f32(h);
}

/* A rows [i0, i0+mc) x k [k0, k0+kc) into mc/MR panels of pairs. */
static void pack_a(uint32_t *d, const uint16_t *A, int64_t sam, int64_t sak,
                   int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t k0,
                   int64_t kc) {
  int64_t kp = (kc + 1) / 2;
  for (int64_t t = 0; t < mc; t += MR) {
    int64_t rows = M - (i0 + t) < MR ? M - (i0 + t) : MR;
    const uint16_t *a = A + (i0 + t) * sam + k0 * sak;
    for (int64_t p = 0; p < kp; p++, d += MR) {
      int second = k0 + 2 * p + 1 < K;
      for (int r = 0; r < rows; r++) {
        const uint16_t *x = a + r * sam + 2 * p * sak;
        d[r] = x[0] | (second ? (uint32_t)x[sak] << 16 : 0);
      }
      for (int r = (int)(rows > 0 ? rows : 0); r < MR; r++) d[r] = 0;
    }
  }
}

/* B k [k0, k0+kc) x columns [j0, j0+nc) into nc/NR panels of pairs. */
static void pack_b(uint32_t *d, const uint16_t *B, int64_t sbk, int64_t sbn,
                   int64_t K, int64_t N, int64_t k0, int64_t kc, int64_t j0,
                   int64_t nc) {
  int64_t kp = (kc + 1) / 2;
  for (int64_t t = 0; t < nc; t += NR) {
    int64_t cols = N - (j0 + t) < NR ? N - (j0 + t) : NR;
    const uint16_t *b = B + k0 * sbk + (j0 + t) * sbn;
    for (int64_t p = 0; p < kp; p++, d += NR) {
      int second = k0 + 2 * p + 1 < K;
      const uint16_t *b0 = b + 2 * p * sbk, *b1 = b0 + sbk;
      for (int c = 0; c < cols; c++)
        d[c] = b0[c * sbn] | (second ? (uint32_t)b1[c * sbn] << 16 : 0);
      for (int c = (int)(cols > 0 ? cols : 0); c < NR; c++) d[c] = 0;
    }
  }
}

/* The f32 panels of the fma kernel: the same blocks widened to float32,
   A as [k][MR] and B as [k][NR] (no pairs). */
static void pack_a_f32(float *d, const uint16_t *A, int64_t sam, int64_t sak,
                       int64_t M, int64_t i0, int64_t mc, int64_t k0,
                       int64_t kc, ember_dtype dt) {
  for (int64_t t = 0; t < mc; t += MR, d += kc * MR) {
    int64_t rows = M - (i0 + t) < MR ? M - (i0 + t) : MR;
    const uint16_t *a = A + (i0 + t) * sam + k0 * sak;
    /* row by row: a row-major A (sak 1) is read in order, the panel
       written MR floats apart */
    for (int r = 0; r < MR; r++) {
      const uint16_t *ar = a + r * sam;
      float *dr = d + r;
      if (r >= rows)
        for (int64_t k = 0; k < kc; k++) dr[k * MR] = 0.0f;
      else if (dt == EMBER_BFLOAT16)
        for (int64_t k = 0; k < kc; k++) dr[k * MR] = ember_bf16_to_f32(ar[k * sak]);
      else
        for (int64_t k = 0; k < kc; k++) dr[k * MR] = ember_f16_to_f32(ar[k * sak]);
    }
  }
}

static void pack_b_f32(float *d, const uint16_t *B, int64_t sbk, int64_t sbn,
                       int64_t N, int64_t k0, int64_t kc, int64_t j0,
                       int64_t nc, ember_dtype dt) {
  for (int64_t t = 0; t < nc; t += NR) {
    int64_t cols = N - (j0 + t) < NR ? N - (j0 + t) : NR;
    const uint16_t *b = B + k0 * sbk + (j0 + t) * sbn;
    for (int64_t k = 0; k < kc; k++, d += NR) {
      const uint16_t *bk = b + k * sbk;
      if (sbn == 1 && cols == NR && dt == EMBER_BFLOAT16)
        for (int c = 0; c < NR; c++) d[c] = ember_bf16_to_f32(bk[c]);
      else {
        for (int c = 0; c < cols; c++) d[c] = widen1(bk[c * sbn], dt);
        for (int c = (int)(cols > 0 ? cols : 0); c < NR; c++) d[c] = 0.0f;
      }
    }
  }
}

#define BF16_TARGET __attribute__((target("avx512f,avx512bf16")))

/* C[0..mr, 0..nr) (rows ldc apart) = (acc ? C : 0) + Ap Bp over kp pairs. */
static BF16_TARGET void micro_dpbf16(const uint32_t *Ap, const uint32_t *Bp,
                                     int64_t kp, float *C, int64_t ldc,
                                     int mr, int nr, int acc) {
  __m512 c[MR][2];
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp; p++) {
    __m512bh b0 = (__m512bh)_mm512_loadu_si512(Bp), b1 = (__m512bh)_mm512_loadu_si512(Bp + 16);
    _Pragma("GCC unroll 12")
    for (int r = 0; r < MR; r++) {
      __m512bh a = (__m512bh)_mm512_set1_epi32((int)Ap[r]);
      c[r][0] = _mm512_dpbf16_ps(c[r][0], a, b0);
      c[r][1] = _mm512_dpbf16_ps(c[r][1], a, b1);
    }
    Ap += MR;
    Bp += NR;
  }
  __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
  __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
  for (int r = 0; r < mr; r++) {
    float *cr = C + r * ldc;
    if (acc) {
      c[r][0] = _mm512_add_ps(c[r][0], _mm512_maskz_loadu_ps(m0, cr));
      c[r][1] = _mm512_add_ps(c[r][1], _mm512_maskz_loadu_ps(m1, cr + 16));
    }
    _mm512_mask_storeu_ps(cr, m0, c[r][0]);
    _mm512_mask_storeu_ps(cr + 16, m1, c[r][1]);
  }
}

/* The same tile from float32 panels with FMA, one k per step, over R rows
   (a constant at each call, so that the unrolled loops keep c in
   registers): a bottom tile of few rows (a matrix-vector product's one)
   does only its rows' work. */
static inline __attribute__((always_inline, target("avx512f"))) void fma_tile(
    const float *Ap, const float *Bp, int64_t kc, float *C, int64_t ldc,
    int mr, int nr, int acc, const int R) {
  __m512 c[MR][2];
  _Pragma("GCC unroll 12")
  for (int r = 0; r < R; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m512 b0 = _mm512_loadu_ps(Bp), b1 = _mm512_loadu_ps(Bp + 16);
    _Pragma("GCC unroll 12")
    for (int r = 0; r < R; r++) {
      __m512 a = _mm512_set1_ps(Ap[r]);
      c[r][0] = _mm512_fmadd_ps(a, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(a, b1, c[r][1]);
    }
    Ap += MR;
    Bp += NR;
  }
  __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
  __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
  for (int r = 0; r < mr; r++) {
    float *cr = C + r * ldc;
    if (acc) {
      c[r][0] = _mm512_add_ps(c[r][0], _mm512_maskz_loadu_ps(m0, cr));
      c[r][1] = _mm512_add_ps(c[r][1], _mm512_maskz_loadu_ps(m1, cr + 16));
    }
    _mm512_mask_storeu_ps(cr, m0, c[r][0]);
    _mm512_mask_storeu_ps(cr + 16, m1, c[r][1]);
  }
}

static __attribute__((target("avx512f"))) void micro_fma(
    const float *Ap, const float *Bp, int64_t kc, float *C, int64_t ldc,
    int mr, int nr, int acc) {
  if (mr > 8) fma_tile(Ap, Bp, kc, C, ldc, mr, nr, acc, MR);
  else if (mr > 4) fma_tile(Ap, Bp, kc, C, ldc, mr, nr, acc, 8);
  else if (mr > 1) fma_tile(Ap, Bp, kc, C, ldc, mr, nr, acc, 4);
  else fma_tile(Ap, Bp, kc, C, ldc, mr, nr, acc, 1);
}

static int have_avx512(void) {
  static _Atomic int known = -1;   /* every thread stores the same */
  int k = atomic_load_explicit(&known, memory_order_relaxed);
  if (k < 0) {
    k = __builtin_cpu_supports("avx512f") ? 1 : 0;
    atomic_store_explicit(&known, k, memory_order_relaxed);
  }
  return k;
}

static int have_bf16(void) {
  static _Atomic int known = -1;   /* every thread stores the same */
  int k = atomic_load_explicit(&known, memory_order_relaxed);
  if (k < 0) {
    k = __builtin_cpu_supports("avx512bf16") ? 1 : 0;
    atomic_store_explicit(&known, k, memory_order_relaxed);
  }
  return k;
}

/* The packed paths (pairs: dpbf16 on bfloat16 pairs; else fma on
   widened float32 panels): -1 (out of memory) before anything is written.
   Loops: rows in super-blocks of MS; in each, per K block, the whole
   super-block of A packed once (threads over tiles), then per NC block
   of columns B's block packed once (threads over panels) and the MC-row
   blocks computed (threads over blocks).  So each operand is packed
   about once (B once per MS rows), and a thread's B micro-panel stays in
   L1 across the MC / MR tiles of its block. */
#define MS 4032           /* rows of A packed at a time: 42 MC blocks, ~4 MB */

static int gemm_packed(int pairs, ember_dtype dt, int64_t M, int64_t N,
                       int64_t K, const uint16_t *A, int64_t sam, int64_t sak,
                       const uint16_t *B, int64_t sbk, int64_t sbn,
                       int accumulate, float *C, int64_t ldc, int threads) {
  int nt = threads && 2 * M * N * K >= (1 << 21) ? ember_cpu_threads() : 1;
  int64_t ncmax = N < NC ? (N + NR - 1) / NR * NR : NC;
  int64_t msmax = ((M < MS ? M : MS) + MR - 1) / MR * MR;
  int64_t kcmax = K < KC ? K : KC;
  /* units of 4 bytes: one a k (f32) or a pair of k (dpbf16) */
  int64_t kumax = pairs ? (kcmax + 1) / 2 : kcmax;
  uint32_t *bp = malloc((size_t)(ncmax * kumax) * sizeof *bp);
  uint32_t *ap = malloc((size_t)(msmax * kumax) * sizeof *ap);
  if (!bp || !ap) {
    free(bp);
    free(ap);
    return ember_set_error("matmul: out of memory (packed 16-bit panels)");
  }
  for (int64_t m0 = 0; m0 < M; m0 += MS) {
    int64_t ms = M - m0 < MS ? M - m0 : MS, msp = (ms + MR - 1) / MR * MR;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      int64_t kc = K - k0 < KC ? K - k0 : KC, ku = pairs ? (kc + 1) / 2 : kc;
      int acc = accumulate || k0 > 0;
      for (int64_t j0 = 0; j0 < N; j0 += NC) {
        int64_t nc = N - j0 < NC ? N - j0 : NC, ncp = (nc + NR - 1) / NR * NR;
        int64_t nblocks = (ms + MC - 1) / MC;
        /* one parallel region per block: the packing loops, a barrier
           (the end of the second), then the tiles */
        #pragma omp parallel num_threads(nt) if (nt > 1)
        {
          if (j0 == 0) {
            #pragma omp for schedule(static) nowait
            for (int64_t it = 0; it < msp; it += MR) {
              if (pairs) pack_a(ap + it * ku, A, sam, sak, M, K, m0 + it, MR, k0, kc);
              else pack_a_f32((float *)ap + it * ku, A, sam, sak, M, m0 + it, MR, k0, kc, dt);
            }
          }
          #pragma omp for schedule(static)
          for (int64_t jt = 0; jt < ncp; jt += NR) {
            if (pairs) pack_b(bp + jt * ku, B, sbk, sbn, K, N, k0, kc, j0 + jt, NR);
            else pack_b_f32((float *)bp + jt * ku, B, sbk, sbn, N, k0, kc, j0 + jt, NR, dt);
          }
          #pragma omp for schedule(static)
          for (int64_t ib = 0; ib < nblocks; ib++) {
            int64_t i0 = ib * MC, mc = ms - i0 < MC ? ms - i0 : MC;
            for (int64_t jt = 0; jt < ncp; jt += NR)
              for (int64_t it = i0; it < i0 + mc; it += MR) {
                int64_t mr = ms - it < MR ? ms - it : MR, nr = nc - jt < NR ? nc - jt : NR;
                float *Ct = C + (m0 + it) * ldc + j0 + jt;
                if (pairs)
                  micro_dpbf16(ap + it * ku, bp + jt * ku, ku, Ct, ldc, (int)mr, (int)nr, acc);
                else
                  micro_fma((const float *)ap + it * ku, (const float *)bp + jt * ku, ku,
                            Ct, ldc, (int)mr, (int)nr, acc);
              }
          }
        }
      }
    }
  }
  free(bp);
  free(ap);
  return 0;
}
#endif

/* The path of a product (below): 0 widen, 1 fma, 2 dpbf16.
   EMBER_BF16_GEMM=widen|fma|dpbf16 picks bfloat16's (read once; float16
   takes fma or widen); by default fma wherever AVX-512 is (see the top of
   the file for why not dpbf16). */
static int gemm_path(ember_dtype dt) {
#ifdef HAVE_DPBF16
  static _Atomic int known = -1;
  int k = atomic_load_explicit(&known, memory_order_relaxed);
  if (k < 0) {
    const char *e = getenv("EMBER_BF16_GEMM");
    k = !have_avx512() ? 0
        : e && strcmp(e, "widen") == 0 ? 0
        : e && strcmp(e, "dpbf16") == 0 && have_bf16() ? 2 : 1;
    atomic_store_explicit(&known, k, memory_order_relaxed);
  }
  return k == 2 && dt != EMBER_BFLOAT16 ? 1 : k;
#else
  (void)dt;
  return 0;
#endif
}

/* }====================================================================== */

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
#ifdef HAVE_DPBF16
  int path = gemm_path(dt);
  if (path)
    return gemm_packed(path == 2, dt, M, N, K, A, ta ? 1 : lda, ta ? lda : 1, B,
                       tb ? 1 : ldb, tb ? ldb : 1, accumulate, C, ldc, threads);
#endif
  return gemm_widen(dt, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc,
                    threads);
}
