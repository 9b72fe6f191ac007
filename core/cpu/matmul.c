/*
** matmul.c -- batched matrix products: OpenBLAS for float32/float64, a
** plain loop for the integer types, and Ember's own AVX-512 kernels for
** the small float32 shapes of a training step.
**
** a is [B,M,K], b is [B,K,N], dst is [B,M,N] and contiguous.  The core
** guarantees that each matrix operand has unit stride in one of its two
** matrix dims, so it is either row-major (no transpose) or column-major
** (transposed) for BLAS, with the other stride as its leading dimension.
*/
#include <cblas.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu.h"

/* {======================================================================
** Small float32 GEMMs on AVX-512
**
** A linear layer's GEMMs at batch 32 are small and skinny: the MLP's
** first layer is [32,784] x [784,128] forward and [128,32] x [32,784] (or
** [784,32] x [32,128]) for its weight gradient, K = 32.  OpenBLAS packs
** both operands for each call and, as configured on these machines
** (OPENBLAS_CORETYPE=Haswell), runs AVX2 kernels, so on such shapes two
** register-tiled AVX-512 kernels without packing do about twice the work
** per second (bench/NOTES.md has the figures):
**
**   bcast  b has unit stride along n (row-major): a tile of 8 rows x 48
**          columns of C sits in 24 registers; for each k, 3 vectors of
**          b's row k and 8 broadcast elements of a's column k make 24
**          FMAs.  b's [K,48] panel stays in L1 while the row tiles go by,
**          hence K <= BCAST_MAX_K.
**   dot    a and b both have unit stride along k (b is a weight's
**          transpose, w:t()): 4 x 4 dot products, 16 lanes of k at a time,
**          each reduced at the end.  a is read again for every 4 columns,
**          so it must stay in L2: M * K <= DOT_MAX_MK.
**
** Each element of C is one sum over k in a fixed order, whatever the
** thread count, so results do not depend on threads.  Other shapes,
** float64, and CPUs without AVX-512 (or compilers without the target
** attribute) go to OpenBLAS.
** ======================================================================= */

#define BCAST_MAX_K 256
#define DOT_MAX_MK (128 * 1024)
/* a long-K product whose C has at most this many elements (256 KB) goes
   to bcast in K panels rather than to OpenBLAS */
#define BCAST_PANEL_MAX_MN (256 * 1024)
/* from this many rows, ember_cpu_matmul copies a dot-layout b row-major
   and runs bcast */
#define DOT_COPY_MIN_M 256
/* below this many flops a GEMM runs on one thread (~10 us of work) */
#define SMALL_PARALLEL_FLOPS (2 * 1024 * 1024)

/* One float32 GEMM: C[M,N] = A[M,K] B[K,N] (+ C when acc), element (i,k)
   of A at A + i*sam + k*sak, (k,j) of B at B + k*sbk + j*sbn, C
   row-major with rows ldc apart. */
typedef struct {
  int64_t M, N, K, sam, sak, sbk, sbn;
  const float *A, *B;
  float *C;
  int64_t ldc;
  int acc;
} small_gemm;

/* The tiles [t0, t1) of one kernel. */
typedef void (*tile_fn)(const small_gemm *g, int64_t t0, int64_t t1);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX512_KERNELS 1
#define AVX512 __attribute__((target("avx512f")))
#define INLINE_AVX512 \
  static inline __attribute__((always_inline, target("avx512f")))

/* Lanes [0, n) of a vector (n in 1..16). */
INLINE_AVX512 __mmask16 lanes(int64_t n) {
  return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

/*
** bcast: rows [i, i+MR) and columns [j, j+16*NV) of C, the last vector
** holding `last` lanes.  MR and NV are constants at each call, so that the
** unrolled loops keep acc in registers.
*/
INLINE_AVX512 void bcast_tile(const small_gemm *g, int64_t i, int64_t j,
                              const int MR, const int NV, __mmask16 last) {
  __m512 acc[8][3];
  float *c = g->C + i * g->ldc + j;
  _Pragma("GCC unroll 8")
  for (int r = 0; r < MR; r++) {
    _Pragma("GCC unroll 3")
    for (int v = 0; v < NV; v++)
      acc[r][v] = g->acc ? _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xFFFF,
                                                 c + r * g->ldc + 16 * v)
                         : _mm512_setzero_ps();
  }
  const float *a = g->A + i * g->sam, *b = g->B + j * g->sbn;
  for (int64_t k = 0; k < g->K; k++) {
    __m512 bv[3];
    _Pragma("GCC unroll 3")
    for (int v = 0; v < NV; v++)
      bv[v] = _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xFFFF, b + 16 * v);
    _Pragma("GCC unroll 8")
    for (int r = 0; r < MR; r++) {
      __m512 av = _mm512_set1_ps(a[r * g->sam]);
      _Pragma("GCC unroll 3")
      for (int v = 0; v < NV; v++)
        acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
    a += g->sak;
    b += g->sbk;
  }
  _Pragma("GCC unroll 8")
  for (int r = 0; r < MR; r++) {
    _Pragma("GCC unroll 3")
    for (int v = 0; v < NV; v++)
      _mm512_mask_storeu_ps(c + r * g->ldc + 16 * v, v == NV - 1 ? last : 0xFFFF,
                            acc[r][v]);
  }
}

/* Tile t is column block t / nI (48 columns), row block t % nI (8 rows;
   the last one row by row). */
static AVX512 void bcast_tiles(const small_gemm *g, int64_t t0, int64_t t1) {
  int64_t nI = (g->M + 7) / 8;
  for (int64_t t = t0; t < t1; t++) {
    int64_t i = t % nI * 8, j = t / nI * 48;
    int64_t cols = g->N - j < 48 ? g->N - j : 48;
    int nv = (int)((cols + 15) / 16);
    __mmask16 last = lanes(cols - 16 * (nv - 1));
    if (i + 8 <= g->M) {
      if (nv == 3) bcast_tile(g, i, j, 8, 3, last);
      else if (nv == 2) bcast_tile(g, i, j, 8, 2, last);
      else bcast_tile(g, i, j, 8, 1, last);
    } else {
      for (; i < g->M; i++) {
        if (nv == 3) bcast_tile(g, i, j, 1, 3, last);
        else if (nv == 2) bcast_tile(g, i, j, 1, 2, last);
        else bcast_tile(g, i, j, 1, 1, last);
      }
    }
  }
}

/* dot: C[i..i+MR, j..j+NR]; b's column j is the row of k at B + j*sbn. */
INLINE_AVX512 void dot_tile(const small_gemm *g, int64_t i, int64_t j,
                            const int MR, const int NR) {
  __m512 acc[4][4];
  _Pragma("GCC unroll 4")
  for (int r = 0; r < MR; r++) {
    _Pragma("GCC unroll 4")
    for (int c = 0; c < NR; c++) acc[r][c] = _mm512_setzero_ps();
  }
  const float *a = g->A + i * g->sam, *b = g->B + j * g->sbn;
  for (int64_t k = 0; k < g->K; k += 16) {
    __mmask16 m = lanes(g->K - k);
    __m512 av[4], bv[4];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < MR; r++)
      av[r] = _mm512_maskz_loadu_ps(m, a + r * g->sam + k);
    _Pragma("GCC unroll 4")
    for (int c = 0; c < NR; c++)
      bv[c] = _mm512_maskz_loadu_ps(m, b + c * g->sbn + k);
    _Pragma("GCC unroll 4")
    for (int r = 0; r < MR; r++) {
      _Pragma("GCC unroll 4")
      for (int c = 0; c < NR; c++)
        acc[r][c] = _mm512_fmadd_ps(av[r], bv[c], acc[r][c]);
    }
  }
  float *cp = g->C + i * g->ldc + j;
  _Pragma("GCC unroll 4")
  for (int r = 0; r < MR; r++) {
    _Pragma("GCC unroll 4")
    for (int c = 0; c < NR; c++) {
      float v = _mm512_reduce_add_ps(acc[r][c]);
      cp[r * g->ldc + c] = g->acc ? cp[r * g->ldc + c] + v : v;
    }
  }
}

/* Tile t is column block t / nI (4 columns), row block t % nI (4 rows);
   the ragged edges go one row or one column at a time. */
static AVX512 void dot_tiles(const small_gemm *g, int64_t t0, int64_t t1) {
  int64_t nI = (g->M + 3) / 4;
  for (int64_t t = t0; t < t1; t++) {
    int64_t i = t % nI * 4, j = t / nI * 4;
    int full_i = i + 4 <= g->M, full_j = j + 4 <= g->N;
    if (full_i && full_j) {
      dot_tile(g, i, j, 4, 4);
      continue;
    }
    for (int64_t jj = j; jj < j + 4 && jj < g->N; jj += full_j ? 4 : 1)
      for (int64_t ii = i; ii < i + 4 && ii < g->M; ii += full_i ? 4 : 1) {
        if (full_i) dot_tile(g, ii, jj, 4, 1);
        else if (full_j) dot_tile(g, ii, jj, 1, 4);
        else dot_tile(g, ii, jj, 1, 1);
      }
  }
}

static int have_avx512(void) { return ember_cpu_features() & EMBER_CPU_AVX512; }
#endif

/* Run fn over the tiles [0, ntiles), split in contiguous ranges across
   the threads when the GEMM is big enough to pay for them (and threads,
   0 inside a parallel region, allows). */
static void run_tiles(tile_fn fn, const small_gemm *g, int64_t ntiles,
                      int threads) {
  int nt = threads ? ember_cpu_threads() : 1;
  if (nt < 2 || 2 * g->M * g->N * g->K < SMALL_PARALLEL_FLOPS || ntiles < 2) {
    fn(g, 0, ntiles);
    return;
  }
#ifdef _OPENMP
  #pragma omp parallel num_threads(nt)
  {
    int id = omp_get_thread_num(), k = omp_get_num_threads();
    int64_t lo = ntiles * id / k, hi = ntiles * (id + 1) / k;
    if (lo < hi) fn(g, lo, hi);
  }
#else
  fn(g, 0, ntiles);
#endif
}

/* C = A B (+ C) with a kernel of this section; 0 when none fits
   (OpenBLAS's turn).  A dimension of size 1 may have any stride.  bcast
   takes a K above BCAST_MAX_K in equal panels, each after the first
   adding to C (K = 288: two of 144): up to 4 panels, or any number when C
   has at most BCAST_PANEL_MAX_MN elements (it stays in L2). */
static int small_sgemm(const small_gemm *g, int threads) {
#ifdef HAVE_AVX512_KERNELS
  if (!have_avx512()) return 0;
  if ((g->sbn == 1 || g->N == 1) &&
      (g->K <= 4 * BCAST_MAX_K || g->M * g->N <= BCAST_PANEL_MAX_MN)) {
    int64_t panels = (g->K + BCAST_MAX_K - 1) / BCAST_MAX_K, k0 = 0;
    for (int64_t p = 0; p < panels; p++) {
      int64_t k1 = g->K * (p + 1) / panels;
      small_gemm part = *g;
      part.K = k1 - k0;
      part.A = g->A + k0 * g->sak;
      part.B = g->B + k0 * g->sbk;
      part.acc = g->acc || p > 0;
      run_tiles(bcast_tiles, &part, (g->N + 47) / 48 * ((g->M + 7) / 8), threads);
      k0 = k1;
    }
    return 1;
  }
  if ((g->sak == 1 && g->sbk == 1) || g->K == 1) {
    if (g->M * g->K > DOT_MAX_MK) return 0;
    run_tiles(dot_tiles, g, (g->N + 3) / 4 * ((g->M + 3) / 4), threads);
    return 1;
  }
#else
  (void)g;
  (void)threads;
  (void)run_tiles;
#endif
  return 0;
}

/*
** small_sgemm for ember_cpu_matmul, taking in row blocks a product whose
** operands pass a kernel's cache limits only in part: the projection of a
** whole sequence, (B*L, 128) x (128, 512), is M * K = 320K for dot, and its
** input gradient, (B*L, 512) x (512, 128), has a C of 320K elements for
** bcast's K panels.  Each block is a GEMM of its own (threads inside it).
** 0 when neither kernel takes the shape (OpenBLAS's turn).
*/
static int small_sgemm_rows(const small_gemm *g) {
  int64_t rows = g->M;
  if (g->sbn == 1 || g->N == 1) {
    if (g->K > BCAST_MAX_K && g->M * g->N > BCAST_PANEL_MAX_MN &&
        8 * g->N <= BCAST_PANEL_MAX_MN)
      rows = BCAST_PANEL_MAX_MN / g->N / 8 * 8;
  } else if ((g->sak == 1 && g->sbk == 1) || g->K == 1) {
    if ((g->M >= DOT_COPY_MIN_M || g->M * g->K > DOT_MAX_MK) && g->K > 1 &&
        g->K * g->N <= DOT_MAX_MK) {
      /* many rows times a weight's transpose (a Linear's forward on a
         whole sequence): b copied row-major once (a small part of the
         work at this many rows), so that bcast, 2-3x dot's speed, takes it */
      float *bt = malloc((size_t)(g->K * g->N) * sizeof *bt);
      if (bt) {
        for (int64_t k = 0; k < g->K; k++)
          for (int64_t j = 0; j < g->N; j++) bt[k * g->N + j] = g->B[k + j * g->sbn];
        small_gemm nn = *g;
        nn.B = bt;
        nn.sbk = g->N;
        nn.sbn = 1;
        int done = small_sgemm_rows(&nn);
        free(bt);
        if (done) return 1;
      }
    }
    if (g->M * g->K > DOT_MAX_MK && 4 * g->K <= DOT_MAX_MK)
      rows = DOT_MAX_MK / g->K / 4 * 4;
  }
  if (rows >= g->M) return small_sgemm(g, 1);
  for (int64_t i = 0; i < g->M; i += rows) {
    small_gemm part = *g;
    part.M = g->M - i < rows ? g->M - i : rows;
    part.A = g->A + i * g->sam;
    part.C = g->C + i * g->ldc;
    if (!small_sgemm(&part, 1)) return 0;   /* only the first block can */
  }
  return 1;
}

void ember_cpu_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
                     const float *A, int64_t lda, const float *B, int64_t ldb,
                     int accumulate, float *C, int64_t ldc, int threads) {
  small_gemm g = {M, N, K, ta ? 1 : lda, ta ? lda : 1, tb ? 1 : ldb,
                  tb ? ldb : 1, A, B, C, ldc, accumulate};
  if (M == 0 || N == 0) return;
  if (K > 0 && small_sgemm(&g, threads)) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A,
              (int)lda, B, (int)ldb, accumulate ? 1.0f : 0.0f, C, (int)ldc);
}

/* }====================================================================== */

/* Transpose flag and leading dimension of a [R,C] matrix with strides
   (sr, sc); BLAS wants the leading dimension >= max(1, columns). */
static void blas_layout(int64_t R, int64_t C, int64_t sr, int64_t sc,
                        enum CBLAS_TRANSPOSE *tr, int64_t *ld) {
  if (sc == 1 && sr >= (C > 1 ? C : 1)) { *tr = CblasNoTrans; *ld = sr; }
  else if (sr == 1 && sc >= (R > 1 ? R : 1)) { *tr = CblasTrans; *ld = sc; }
  else { *tr = CblasNoTrans; *ld = C > 1 ? C : 1; }  /* contiguous (R or C is 1) */
}

/* Element `at` of an integer matrix, widened as the product wants it:
   signed values sign-extended. */
static inline uint64_t int_at(const char *m, ember_dtype dt, int64_t at) {
  switch (dt) {
    case EMBER_INT32: return (uint64_t)((const int32_t *)m)[at];
    case EMBER_INT64: return (uint64_t)((const int64_t *)m)[at];
    default: return ((const uint8_t *)m)[at];
  }
}

/* C [M,N] = A B for the integer dtypes (the core refuses bool), summing in
   uint64 so that overflow wraps: the low bits are what the dtype keeps. */
static void int_matmul(ember_dtype dt, char *C, const char *A,
                       const char *Bm, int64_t M, int64_t N, int64_t K,
                       const int64_t *sa, const int64_t *sb) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      uint64_t acc = 0;
      for (int64_t k = 0; k < K; k++)
        acc += int_at(A, dt, i * sa[1] + k * sa[2]) *
               int_at(Bm, dt, k * sb[1] + j * sb[2]);
      switch (dt) {
        case EMBER_INT32: ((int32_t *)C)[i * N + j] = (int32_t)acc; break;
        case EMBER_INT64: ((int64_t *)C)[i * N + j] = (int64_t)acc; break;
        default: ((uint8_t *)C)[i * N + j] = (uint8_t)acc; break;
      }
    }
}

int ember_cpu_matmul(ember_tensor *dst, const ember_tensor *a,
                     const ember_tensor *b) {
  int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
  size_t es = ember_dtype_size(a->dtype);
  enum CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb;
  blas_layout(M, K, a->strides[1], a->strides[2], &ta, &lda);
  blas_layout(K, N, b->strides[1], b->strides[2], &tb, &ldb);
  /* half operands: each product in float32, rounded once into dst unless
     dst is float32 (see the slot's comment in core/backend.h) */
  int half = ember_dtype_is_half(a->dtype);
  float *c32 = NULL;
  if (half && dst->dtype != EMBER_FLOAT32 && M * N > 0) {
    if (!(c32 = malloc((size_t)(M * N) * sizeof *c32))) {
      ember_set_error("matmul: out of memory");
      return -1;
    }
  }
  size_t ces = ember_dtype_size(dst->dtype);
  for (int64_t bi = 0; bi < B; bi++) {
    const char *A = (const char *)ember_data(a) + bi * a->strides[0] * (int64_t)es;
    const char *Bm = (const char *)ember_data(b) + bi * b->strides[0] * (int64_t)es;
    char *Cm = (char *)ember_data(dst) + bi * M * N * (int64_t)ces;
    if (M == 0 || N == 0) continue;
    if (half) {
      float *C = c32 ? c32 : (float *)Cm;
      if (ember_cpu_gemm_half(a->dtype, ta == CblasTrans, tb == CblasTrans, M, N,
                              K, A, lda, Bm, ldb, 0, C, N, 1) < 0) {
        free(c32);
        return -1;
      }
      if (c32) ember_cpu_half_from_f32(Cm, c32, M * N, dst->dtype);
      continue;
    }
    switch (a->dtype) {
      case EMBER_FLOAT32:
        if (K == 0) { for (int64_t i = 0; i < M * N; i++) ((float *)Cm)[i] = 0; break; }
        {
          small_gemm g = {M, N, K, a->strides[1], a->strides[2], b->strides[1],
                          b->strides[2], (const float *)A, (const float *)Bm,
                          (float *)Cm, N, 0};
          /* bcast's K panels are for conv_gemm.c's GEMMs, for a weight
             gradient whose K is a folded batch (a Linear on (12, 64,
             128): [512,768] x [768,128]; an LSTM's input projection:
             K = B*L), whose C stays in L2 across the panels, and for K
             up to 512 in row blocks; a longer-K product with a large C
             is square-ish, OpenBLAS's ground */
          int fits = g.K <= 2 * BCAST_MAX_K || g.sbn != 1 || g.N == 1 ||
                     g.M * g.N <= BCAST_PANEL_MAX_MN;
          if (fits && small_sgemm_rows(&g)) break;
        }
        cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0f,
                    (const float *)A, (int)lda, (const float *)Bm, (int)ldb,
                    0.0f, (float *)Cm, (int)N);
        break;
      case EMBER_FLOAT64:
        if (K == 0) { for (int64_t i = 0; i < M * N; i++) ((double *)Cm)[i] = 0; break; }
        cblas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0,
                    (const double *)A, (int)lda, (const double *)Bm, (int)ldb,
                    0.0, (double *)Cm, (int)N);
        break;
      default:
        int_matmul(a->dtype, Cm, A, Bm, M, N, K, a->strides, b->strides);
        break;
    }
  }
  free(c32);
  return 0;
}
