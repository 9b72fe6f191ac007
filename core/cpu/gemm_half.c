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
** Four paths (gemm_path; EMBER_BF16_GEMM=small|fma|dpbf16|widen forces
** one):
**
**   small  the default on AVX-512 for a training step's products (K up to
**          1024, C up to 512K elements, a dimension up to 384): the
**          operands widened to float32 (B row-major, A a row block at a
**          time in L2) and handed to ember_cpu_sgemm's unpacked AVX-512
**          kernels, the ones float32 runs on at these shapes.
**   fma    the default on AVX-512 for the others: packed panels
**          (gemm_packed) widened to float32 as they are packed (exact: a
**          16-bit float is a float32 with fewer mantissa bits), an
**          AVX-512 FMA micro-kernel.
**   dpbf16 bfloat16 on AVX512-BF16: the same blocking, pair-interleaved
**          bfloat16 panels, VDPBF16PS.
**   widen  without AVX-512: the operands widened to float32 and handed to
**          ember_cpu_sgemm (OpenBLAS).  O(MK + KN) extra against O(MNK).
** float16 takes small, fma (or widen).
**
** Why fma and not dpbf16 by default: on the Xeon these kernels were
** written on (Sapphire Rapids class, AMX not exposed), VDPBF16PS zmm
** retires one every 2 cycles (16 multiply-adds a cycle) where float32 FMA
** retires two a cycle (32), so the widened panels win there
** (bench/bf16_probe.c measures it; bench/NOTES.md has the figures).
** There is no AMX path: no CPU here to test one on.
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

/* 16 bfloat16 (float16) at s widened to float32 */
static inline __attribute__((always_inline, target("avx512f"))) __m512 widen16(
    const uint16_t *s, ember_dtype dt) {
  __m256i h = _mm256_loadu_si256((const __m256i *)s);
  return dt == EMBER_BFLOAT16
             ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
             : _mm512_cvtph_ps(h);
}

/* r[i] = column i of the 16 x 16 matrix whose rows are r (the three
   rounds of unpacks and lane shuffles of a 4 x 4 block transpose) */
static inline __attribute__((always_inline, target("avx512f"))) void transpose16(
    __m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  /* u[4g + c], lane L: rows 4g..4g+3 of column 4L + c */
  for (int g = 0; g < 4; g++) {
    __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 2]);
    __m512d c = _mm512_castps_pd(t[4 * g + 1]), d = _mm512_castps_pd(t[4 * g + 3]);
    u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int c = 0; c < 4; c++) {
    __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    __m512 w = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(v, w, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(v, w, 0xdd);
    r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

/* The f32 panels of the fma kernel: the same blocks widened to float32,
   A as [k][MR] and B as [k][NR] (no pairs). */
static __attribute__((target("avx512f"))) void pack_a_f32(
    float *d, const uint16_t *A, int64_t sam, int64_t sak, int64_t M, int64_t i0,
    int64_t mc, int64_t k0, int64_t kc, ember_dtype dt) {
  for (int64_t t = 0; t < mc; t += MR, d += kc * MR) {
    int64_t rows = M - (i0 + t) < MR ? M - (i0 + t) : MR;
    const uint16_t *a = A + (i0 + t) * sam + k0 * sak;
    int64_t k = 0;
    if (rows == MR && sak == 1) {
      /* row-major: 16 k of the 12 rows at a time, transposed in registers
         (lanes 12..15 of each column are the zero rows 12..15) */
      for (; k + 16 <= kc; k += 16) {
        __m512 v[16];
        for (int r = 0; r < 16; r++)
          v[r] = r < MR ? widen16(a + r * sam + k, dt) : _mm512_setzero_ps();
        transpose16(v);
        for (int j = 0; j < 16; j++)
          _mm512_mask_storeu_ps(d + (k + j) * MR, (__mmask16)((1u << MR) - 1), v[j]);
      }
    }
    if (rows == MR && sam == 1) {
      /* transposed: each k's 12 rows are adjacent, read in order */
      for (; k < kc; k++)
        for (int r = 0; r < MR; r++) d[k * MR + r] = widen1(a[k * sak + r], dt);
    }
    /* the rest (ragged rows, other strides, the last k) row by row */
    for (int r = 0; r < MR; r++) {
      const uint16_t *ar = a + r * sam;
      float *dr = d + r;
      for (int64_t kk = k; kk < kc; kk++)
        dr[kk * MR] = r < rows ? widen1(ar[kk * sak], dt) : 0.0f;
    }
  }
}

static __attribute__((target("avx512f"))) void pack_b_f32(
    float *d, const uint16_t *B, int64_t sbk, int64_t sbn, int64_t N, int64_t k0,
    int64_t kc, int64_t j0, int64_t nc, ember_dtype dt) {
  for (int64_t t = 0; t < nc; t += NR, d += kc * NR) {
    int64_t cols = N - (j0 + t) < NR ? N - (j0 + t) : NR;
    const uint16_t *b = B + k0 * sbk + (j0 + t) * sbn;
    int64_t k = 0;
    if (cols == NR && sbn == 1) {
      /* row-major: each k's 32 columns are two vectors */
      for (; k < kc; k++) {
        _mm512_storeu_ps(d + k * NR, widen16(b + k * sbk, dt));
        _mm512_storeu_ps(d + k * NR + 16, widen16(b + k * sbk + 16, dt));
      }
    } else if (cols == NR && sbk == 1) {
      /* transposed (a weight's w:t()): 16 k of 16 columns at a time,
         transposed in registers */
      for (; k + 16 <= kc; k += 16)
        for (int h = 0; h < NR; h += 16) {
          __m512 v[16];
          for (int c = 0; c < 16; c++) v[c] = widen16(b + (h + c) * sbn + k, dt);
          transpose16(v);
          for (int j = 0; j < 16; j++) _mm512_storeu_ps(d + (k + j) * NR + h, v[j]);
        }
    }
    for (; k < kc; k++) {
      const uint16_t *bk = b + k * sbk;
      float *dk = d + k * NR;
      for (int c = 0; c < cols; c++) dk[c] = widen1(bk[c * sbn], dt);
      for (int c = (int)(cols > 0 ? cols : 0); c < NR; c++) dk[c] = 0.0f;
    }
  }
}

/* The micro-kernels' epilogue: rows [0, mr) and columns [0, nr) of the
   accumulators c (two vectors a row) into C, rows ldc apart, added to
   what C holds when acc. */
static inline __attribute__((always_inline, target("avx512f"))) void store_tile(
    __m512 c[][2], float *C, int64_t ldc, int mr, int nr, int acc) {
  __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
  __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
  for (int r = 0; r < mr; r++) {
    float *cr = C + r * ldc;
    __m512 v0 = c[r][0], v1 = c[r][1];
    if (acc) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    _mm512_mask_storeu_ps(cr + 16, m1, v1);
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
  store_tile(c, C, ldc, mr, nr, acc);
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
  store_tile(c, C, ldc, mr, nr, acc);
}

static __attribute__((target("avx512f"))) void micro_fma(
    const float *Ap, const float *Bp, int64_t kc, float *C, int64_t ldc,
    int mr, int nr, int acc) {
  if (mr > 8) fma_tile(Ap, Bp, kc, C, ldc, mr, nr, acc, MR);
  else if (mr > 4) fma_tile(Ap, Bp, kc, C, ldc, mr, nr, acc, 8);
  else if (mr > 1) fma_tile(Ap, Bp, kc, C, ldc, mr, nr, acc, 4);
  else fma_tile(Ap, Bp, kc, C, ldc, mr, nr, acc, 1);
}

static int have_avx512(void) { return ember_cpu_features() & EMBER_CPU_AVX512; }

static int have_bf16(void) { return ember_cpu_features() & EMBER_CPU_AVX512_BF16; }

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

/* {======================================================================
** small: widened copies through Ember's own float32 kernels
**
** The products of a small model's training step (the char GPT's: 768 x
** 128 by 128 x 384 and their gradients) are small enough that
** ember_cpu_sgemm's unpacked AVX-512 kernels take them in float32, at the
** FMA rate bfloat16 cannot beat here (see the top of the file).  So the
** operands are widened once into float32 copies, B row-major (the layout
** those kernels run fastest on: a weight's transpose is transposed as it
** is widened, 16 x 16 tiles in registers) and A as it is stored, and the
** float32 GEMM runs on them: the product costs float32's plus one pass
** over each operand, where the packed path is slower on these shapes
** (bench/NOTES.md, "autocast("bf16") and the char GPT step").  The sums
** are the same float32 sums of exact products either way.
** ======================================================================= */

/* ember_cpu_sgemm's small kernels take any K up to this with a row-major
   B; SMALL_MAX_MN bounds C, and one dimension must be at most
   SMALL_MAX_MIN, so that the packed path keeps the products where its
   blocking pays (one thread: from about 448 x 448 x 448, bench/NOTES.md) */
#define SMALL_MAX_K 1024
#define SMALL_MAX_MN (512 * 1024)
#define SMALL_MAX_MIN 384

/* One 16 x 16 tile of widen_transposed: rows x cols of s from (r0, c0)
   to d.  A ragged edge tile is copied into a zero-padded one first. */
static __attribute__((target("avx512f"))) void widen_transposed_tile(
    float *d, const uint16_t *s, int64_t R, int64_t ld, ember_dtype dt,
    int64_t r0, int64_t c0, int rows, int cols) {
  __mmask16 m = (__mmask16)((1u << rows) - 1);
  __m512 v[16];
  if (rows == 16 && cols == 16) {
    for (int i = 0; i < 16; i++) v[i] = widen16(s + (r0 + i) * ld + c0, dt);
  } else {
    uint16_t pad[16][16];
    memset(pad, 0, sizeof pad);
    for (int i = 0; i < rows; i++)
      memcpy(pad[i], s + (r0 + i) * ld + c0, (size_t)cols * sizeof *s);
    for (int i = 0; i < 16; i++) v[i] = widen16(pad[i], dt);
  }
  transpose16(v);
  for (int j = 0; j < cols; j++) _mm512_mask_storeu_ps(d + (c0 + j) * R + r0, m, v[j]);
}

/* d [C, R] float32 (row-major) = the transpose of s [R, C] (rows ld
   apart), widened; tiles split over the threads when allowed.  The
   tile's work is a function of its own: clang outlines an OpenMP region
   into a function without this one's target attribute, where vector
   values cannot be passed. */
static void widen_transposed(
    float *d, const uint16_t *s, int64_t R, int64_t C, int64_t ld,
    ember_dtype dt, int threads) {
  int nt = threads && R * C >= (1 << 16) ? ember_cpu_threads() : 1;
  (void)nt;
  #pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r0 = 0; r0 < R; r0 += 16) {
    int rows = R - r0 < 16 ? (int)(R - r0) : 16;
    for (int64_t c0 = 0; c0 < C; c0 += 16)
      widen_transposed_tile(d, s, R, ld, dt, r0, c0, rows,
                            C - c0 < 16 ? (int)(C - c0) : 16);
  }
}

/* d [R, C] float32 (contiguous) = s [R, C] (rows ld apart) widened, in
   registers: the blocks of the small path are many short rows (a
   transposed A's block is K rows of a few dozen), where a call of
   ember_cpu_half_to_f32 per row costs more than its conversions. */
static __attribute__((target("avx512f"))) void widen_rows(
    float *d, const uint16_t *s, int64_t R, int64_t C, int64_t ld,
    ember_dtype dt) {
  if (ld == C) {   /* one run */
    C *= R;
    R = 1;
  }
  for (int64_t r = 0; r < R; r++, d += C, s += ld) {
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) _mm512_storeu_ps(d + c, widen16(s + c, dt));
    for (; c < C; c++) d[c] = widen1(s[c], dt);
  }
}

/* Does the small path take this product? */
static int small_shape(int64_t M, int64_t N, int64_t K) {
  return K <= SMALL_MAX_K && M * N <= SMALL_MAX_MN &&
         (M <= SMALL_MAX_MIN || N <= SMALL_MAX_MIN || K <= SMALL_MAX_MIN);
}

/* The small path: B widened whole, A a block of rows at a time into a
   buffer that stays in L2 (a gradient's A, 768 x 384, widened whole would
   go out to L3 and back).  The threads take whole row blocks, each with
   its own buffer, in one parallel region (parallel GEMMs per block would
   fork and join for a few tiles each).  -1 (out of memory) leaves C as it
   was. */
#define SMALL_A_BLOCK (32 * 1024)   /* float32 of A per block: 128 KB */

static int gemm_small(ember_dtype dt, int ta, int tb, int64_t M, int64_t N,
                      int64_t K, const uint16_t *A, int64_t lda,
                      const uint16_t *B, int64_t ldb, int accumulate, float *C,
                      int64_t ldc, int threads) {
  int nt = threads && 2 * M * N * K >= (1 << 21) ? ember_cpu_threads() : 1;
  int64_t rows = SMALL_A_BLOCK / K;
  if (rows < 16) rows = 16;
  int64_t nblocks = (M + rows - 1) / rows;
  nblocks = (nblocks + nt - 1) / nt * nt;             /* even shares */
  /* whole 16-row blocks: the kernel's 8-row tiles, and whole vectors
     along a transposed A's rows */
  rows = ((M + nblocks - 1) / nblocks + 15) / 16 * 16;
  nblocks = (M + rows - 1) / rows;
  if (nt > nblocks) nt = (int)nblocks;
  float *fb = malloc((size_t)(K * N + nt * rows * K) * sizeof *fb);
  if (!fb) {
    ember_set_error("matmul: out of memory (%lld float32 for widened operands)",
                    (long long)(K * N + nt * rows * K));
    return -1;
  }
  if (tb) widen_transposed(fb, B, N, K, ldb, dt, threads);
  else widen(fb, B, K, N, ldb, dt, threads);
  #pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t ib = 0; ib < nblocks; ib++) {
#ifdef _OPENMP
    float *fa = fb + K * N + omp_get_thread_num() * rows * K;
#else
    float *fa = fb + K * N;
#endif
    int64_t i0 = ib * rows, m = M - i0 < rows ? M - i0 : rows;
    /* rows [i0, i0+m) of A: as stored, m rows of K, or K rows of m */
    if (ta) widen_rows(fa, A + i0, K, m, lda, dt);
    else widen_rows(fa, A + i0 * lda, m, K, lda, dt);
    ember_cpu_sgemm(ta, 0, m, N, K, fa, ta ? (m > 1 ? m : 1) : K, fb, N > 1 ? N : 1,
                    accumulate, C + i0 * ldc, ldc, 0);
  }
  free(fb);
  return 0;
}

/* }====================================================================== */
#endif

/* The path of a product (below).  EMBER_BF16_GEMM=widen|small|fma|dpbf16
   forces bfloat16's (read once; float16 takes small, fma or widen); by
   default (AUTO) small for the shapes it takes, else fma, wherever
   AVX-512 is (see the top of the file for why not dpbf16). */
enum { PATH_WIDEN, PATH_AUTO, PATH_SMALL, PATH_FMA, PATH_DPBF16 };

static int gemm_path(ember_dtype dt) {
#ifdef HAVE_DPBF16
  static _Atomic int known = -1;
  int k = atomic_load_explicit(&known, memory_order_relaxed);
  if (k < 0) {
    const char *e = getenv("EMBER_BF16_GEMM");
    k = !have_avx512() ? PATH_WIDEN
        : !e ? PATH_AUTO
        : strcmp(e, "widen") == 0 ? PATH_WIDEN
        : strcmp(e, "small") == 0 ? PATH_SMALL
        : strcmp(e, "fma") == 0 ? PATH_FMA
        : strcmp(e, "dpbf16") == 0 && have_bf16() ? PATH_DPBF16 : PATH_AUTO;
    atomic_store_explicit(&known, k, memory_order_relaxed);
  }
  return k == PATH_DPBF16 && dt != EMBER_BFLOAT16 ? PATH_FMA : k;
#else
  (void)dt;
  return PATH_WIDEN;
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
  if (path == PATH_AUTO) path = small_shape(M, N, K) ? PATH_SMALL : PATH_FMA;
  if (path == PATH_SMALL)
    return gemm_small(dt, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc, threads);
  if (path != PATH_WIDEN)
    return gemm_packed(path == PATH_DPBF16, dt, M, N, K, A, ta ? 1 : lda, ta ? lda : 1, B,
                       tb ? 1 : ldb, tb ? ldb : 1, accumulate, C, ldc, threads);
#endif
  return gemm_widen(dt, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc,
                    threads);
}
