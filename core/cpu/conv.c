/*
** conv.c -- 2-D convolution on the CPU: im2col + GEMM (OpenBLAS).
**
** Layouts (contiguous; the core sees to it), Cg = C/groups, Og = O/groups:
**   x [N,C,H,W]   w [O,Cg,KH,KW]   y [N,O,OH,OW]
** For one group g and a chunk of B images, with K = Cg*KH*KW and P = OH*OW,
** the convolution is one GEMM:
**   col [K, B*P]    im2col of the chunk (image b's columns at b*P)
**   Y   [Og, B*P] = W_g [Og, K] x col
** and Y's rows are then copied to y[n, g*Og + o, :].  Putting several
** small images in one GEMM keeps BLAS efficient on MNIST-sized inputs.
** A chunk holds as many whole images as fit its scratch, or, for one
** image too big alone, a band of its output rows.  A chunk of one image
** needs no Y (the GEMM writes y's rows in place), and a 1x1 kernel with
** stride 1 and no padding needs no col either (x's block is the col).
**
** Backward, per chunk and group, from gY (gy's rows gathered like Y):
**   gW_g += gY x col^T          (accumulated over the chunks)
**   gcol  = W_g^T x gY, then col2im adds gcol into gx
**   gb[o] = sum of gy[., o, .]
**
** The rows' move to y carries the bias and, for a convolution fused with
** ReLU (g->relu), the activation: y is written once.  In the backward the
** gather of gy applies ReLU's mask (gy counts where the forward's y > 0).
**
** A first layer (few input channels: K = C*KH*KW <= DIRECT_MAX_K, float32,
** stride 1, no dilation or groups) takes a direct path instead, where the
** GEMMs would be thin (K = 9 for a 3x3 kernel on one channel) and im2col's
** copy would cost as much as the arithmetic: see "Direct convolution".
**
** Threads (see "How to cut the work"): with enough images the OpenMP
** threads split the batch, each with chunks small enough to stay in its
** core's cache and single-threaded GEMMs; otherwise the chunks go one
** after the other (up to CHUNK_ELEMS of scratch), OpenMP runs the copies
** and BLAS threads each GEMM, so the two never nest (core/threads.c).
**
** Scratch comes from one block kept between calls (block_get), so a
** training step does not map, fault in and unmap megabytes of fresh
** memory for every convolution.
*/
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "cpu.h"

/* Scratch per chunk, in elements: bounds col and Y (16 MiB in float32). */
#define CHUNK_ELEMS ((int64_t)1 << 22)

/* The direct path's bound on K = C*KH*KW (a 3x3 kernel over 3 channels
   is 27). */
#define DIRECT_MAX_K 32

/* {======================================================================
** Scratch: one block kept between calls
** ======================================================================= */

/* The kept block serves one call at a time (a second thread's call, say
   from another Lua state, takes a malloc of its own).  Blocks above
   KEEP_MAX are not kept: that much memory is returned when the call ends. */
#define KEEP_MAX ((size_t)80 << 20)

static atomic_flag kept_busy = ATOMIC_FLAG_INIT;
static void *kept;
static size_t kept_size;

typedef struct {
  char *base;
  int is_kept;
} block;

/* n bytes (64-byte aligned) into b->base; NULL when out of memory. */
static void *block_get(block *b, size_t n) {
  b->is_kept = 0;
  if (n == 0) n = 1;
  if (n <= KEEP_MAX && !atomic_flag_test_and_set(&kept_busy)) {
    if (kept_size < n) {
      free(kept);
      kept = aligned_alloc(64, (n + 63) / 64 * 64);
      kept_size = kept ? n : 0;
    }
    if (kept) {
      b->is_kept = 1;
      return b->base = kept;
    }
    atomic_flag_clear(&kept_busy);
  }
  return b->base = aligned_alloc(64, (n + 63) / 64 * 64);
}

static void block_put(block *b) {
  if (b->is_kept) atomic_flag_clear(&kept_busy);
  else free(b->base);
  b->base = NULL;
}

/* Bytes rounded up to whole cache lines, to carve one block in parts. */
static size_t lines(size_t n) { return (n + 63) / 64 * 64; }

/* }====================================================================== */

/* {======================================================================
** im2col and col2im
** ======================================================================= */

/*
** Output columns ow in [*lo, *hi) read input column ow*s - p + off inside
** [0, W); the columns outside read padding.  Splitting the row this way
** keeps the inner loops free of bounds tests, so they vectorise.
*/
static inline void valid_range(int64_t W, int64_t OW, int64_t s, int64_t p,
                               int64_t off, int64_t *lo, int64_t *hi) {
  int64_t a = p - off, e = W + p - off;     /* need a <= ow*s < e */
  if (s == 1) {                             /* no divisions for the usual */
    *lo = a <= 0 ? 0 : a;
    *hi = e <= 0 ? 0 : e;
  } else {
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    *hi = e <= 0 ? 0 : (e + s - 1) / s;
  }
  if (*lo > OW) *lo = OW;
  if (*hi > OW) *hi = OW;
  if (*hi < *lo) *hi = *lo;
}

/*
** Output rows [oh0, oh1) of one image's channels [0, Cg) into col rows
** (c*KH + i)*KW + j, each (oh1-oh0)*OW long, `ld` apart.  col2im is the
** adjoint: it adds each col entry back onto the input pixel it was read
** from (pixels read by several windows sum their contributions).
*/
#define DEFINE_IM2COL(SUF, T)                                                \
  static EMBER_SIMD void im2col_##SUF(const T *x, T *col, int64_t ld, int64_t Cg,       \
                           int64_t oh0, int64_t oh1,                         \
                           const ember_conv2d_geom *g) {                     \
    int64_t H = g->H, W = g->W, OW = g->OW, sw = g->sw;                      \
    if (sw == 1 && g->sh == 1 && g->pw == 0 && g->ph == 0 && g->dw == 1 &&   \
        g->dh == 1) {           /* the usual: every window row a straight run */ \
      for (int64_t c = 0; c < Cg; c++)                                       \
        for (int64_t i = 0; i < g->KH; i++)                                  \
          for (int64_t j = 0; j < g->KW; j++) {                              \
            T *row = col + ((c * g->KH + i) * g->KW + j) * ld;               \
            const T *src = x + (c * H + oh0 + i) * W + j;                    \
            for (int64_t oh = oh0; oh < oh1; oh++, row += OW, src += W)      \
              copy_run_##SUF(row, src, OW);                                  \
          }                                                                  \
      return;                                                                \
    }                                                                        \
    for (int64_t c = 0; c < Cg; c++)                                         \
      for (int64_t i = 0; i < g->KH; i++)                                    \
        for (int64_t j = 0; j < g->KW; j++) {                                \
          T *row = col + ((c * g->KH + i) * g->KW + j) * ld;                 \
          int64_t lo, hi;                                                    \
          valid_range(W, OW, g->sw, g->pw, j * g->dw, &lo, &hi);             \
          for (int64_t oh = oh0; oh < oh1; oh++, row += OW) {                \
            int64_t h = oh * g->sh - g->ph + i * g->dh;                      \
            if (h < 0 || h >= H) {                                           \
              memset(row, 0, (size_t)OW * sizeof(T));                        \
              continue;                                                      \
            }                                                                \
            const T *src = x + (c * H + h) * W - g->pw + j * g->dw;         \
            for (int64_t ow = 0; ow < lo; ow++) row[ow] = 0;                 \
            if (sw == 1)      /* a straight run, short: no memcpy call */    \
              copy_run_##SUF(row + lo, src + lo, hi - lo);                   \
            else                                                             \
              for (int64_t ow = lo; ow < hi; ow++) row[ow] = src[ow * sw];   \
            for (int64_t ow = hi; ow < OW; ow++) row[ow] = 0;                \
          }                                                                  \
        }                                                                    \
  }                                                                          \
  static EMBER_SIMD void col2im_##SUF(const T *col, T *x, int64_t ld,     \
                                      int64_t Cg,                            \
                           int64_t oh0, int64_t oh1,                         \
                           const ember_conv2d_geom *g) {                     \
    int64_t H = g->H, W = g->W, OW = g->OW;                                  \
    if (g->sw == 1 && g->sh == 1 && g->pw == 0 && g->ph == 0 && g->dw == 1 && \
        g->dh == 1) {           /* the usual: every window row a straight run */ \
      for (int64_t c = 0; c < Cg; c++)                                       \
        for (int64_t i = 0; i < g->KH; i++)                                  \
          for (int64_t j = 0; j < g->KW; j++) {                              \
            const T *row = col + ((c * g->KH + i) * g->KW + j) * ld;         \
            T *dst = x + (c * H + oh0 + i) * W + j;                          \
            for (int64_t oh = oh0; oh < oh1; oh++, row += OW, dst += W)      \
              add_run_##SUF(dst, row, OW);                                   \
          }                                                                  \
      return;                                                                \
    }                                                                        \
    for (int64_t c = 0; c < Cg; c++)                                         \
      for (int64_t i = 0; i < g->KH; i++)                                    \
        for (int64_t j = 0; j < g->KW; j++) {                                \
          const T *row = col + ((c * g->KH + i) * g->KW + j) * ld;           \
          int64_t lo, hi;                                                    \
          valid_range(W, OW, g->sw, g->pw, j * g->dw, &lo, &hi);             \
          for (int64_t oh = oh0; oh < oh1; oh++, row += OW) {                \
            int64_t h = oh * g->sh - g->ph + i * g->dh;                      \
            if (h < 0 || h >= H) continue;                                   \
            T *dst = x + (c * H + h) * W - g->pw + j * g->dw;               \
            if (g->sw == 1) {          /* whole blocks of 8 vectorise */    \
              int64_t ow = lo;                                               \
              for (; ow + 8 <= hi; ow += 8) {                                \
                _Pragma("omp simd")                                          \
                for (int64_t k = 0; k < 8; k++) dst[ow + k] += row[ow + k];  \
              }                                                              \
              for (; ow < hi; ow++) dst[ow] += row[ow];                      \
            } else {                                                         \
              for (int64_t ow = lo; ow < hi; ow++) dst[ow * g->sw] += row[ow]; \
            }                                                                \
          }                                                                  \
        }                                                                    \
  }

/* A window row is a few dozen elements: a library memcpy's call costs
   more than the copy, and a vectorised loop would run it all in its
   scalar remainder.  Blocks of 8, the last one ending at n (overlapping
   the one before: a copy may write an element twice), vectorise whole. */
#define COPY_RUN(T, d, s, n)                                                 \
  do {                                                                       \
    if ((n) < 8) {                                                           \
      for (int64_t k_ = 0; k_ < (n); k_++) (d)[k_] = (s)[k_];                \
      break;                                                                 \
    }                                                                        \
    for (int64_t k0_ = 0; k0_ < (n); k0_ += 8) {                             \
      int64_t b_ = k0_ + 8 <= (n) ? k0_ : (n) - 8;                           \
      _Pragma("omp simd")                                                    \
      for (int64_t k_ = 0; k_ < 8; k_++) (d)[b_ + k_] = (s)[b_ + k_];        \
    }                                                                        \
  } while (0)

/* d += s over a run of n: whole blocks of 8, then one by one (a last
   block overlapping the one before, as COPY_RUN's, would load what was
   just stored at another offset, which stalls store-to-load forwarding). */
#define ADD_RUN(T, d, s, n)                                                  \
  do {                                                                       \
    int64_t k0_ = 0;                                                         \
    for (; k0_ + 8 <= (n); k0_ += 8) {                                       \
      _Pragma("omp simd")                                                    \
      for (int64_t k_ = 0; k_ < 8; k_++) (d)[k0_ + k_] += (s)[k0_ + k_];     \
    }                                                                        \
    for (; k0_ < (n); k0_++) (d)[k0_] += (s)[k0_];                           \
  } while (0)

static inline void add_run_f32(float *restrict d, const float *restrict s,
                               int64_t n) {
  ADD_RUN(float, d, s, n);
}
static inline void add_run_f64(double *restrict d, const double *restrict s,
                               int64_t n) {
  ADD_RUN(double, d, s, n);
}

static inline void copy_run_f32(float *restrict d, const float *restrict s,
                                int64_t n) {
  COPY_RUN(float, d, s, n);
}
static inline void copy_run_f64(double *restrict d, const double *restrict s,
                                int64_t n) {
  COPY_RUN(double, d, s, n);
}

DEFINE_IM2COL(f32, float)
DEFINE_IM2COL(f64, double)

/* A chunk of the work (backend.h: ember_conv_chunk). */
typedef ember_conv_chunk chunk;

/*
** im2col (to_col) or col2im of group gi of a chunk, x holding whole images
** from image 0; par: on several threads if worth it (0 inside a parallel
** region).  Image b's columns start at b * band length; each (image,
** channel) pair is one task: im2col writes its own col rows, col2im its
** own gx plane, so no two threads write the same element.
*/
static void im2col_chunk(ember_dtype dt, char *x, char *col, const chunk *ch,
                         int64_t gi, const ember_conv2d_geom *g, int to_col,
                         int par) {
  size_t es = ember_dtype_size(dt);
  int64_t Cg = g->C / g->groups, HW = g->H * g->W;
  int64_t len = (ch->oh1 - ch->oh0) * g->OW, KK = g->KH * g->KW;
  #pragma omp parallel for collapse(2) num_threads(ember_cpu_threads()) if (par && ch->cols * Cg * KK >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t b = 0; b < ch->nb; b++)
    for (int64_t c = 0; c < Cg; c++) {
      char *xs = x + ((ch->n0 + b) * g->C + gi * Cg + c) * HW * (int64_t)es;
      char *cs = col + (c * KK * ch->cols + b * len) * (int64_t)es;
      if (dt == EMBER_FLOAT32 && to_col)
        im2col_f32((const float *)xs, (float *)cs, ch->cols, 1, ch->oh0, ch->oh1, g);
      else if (dt == EMBER_FLOAT32)
        col2im_f32((const float *)cs, (float *)xs, ch->cols, 1, ch->oh0, ch->oh1, g);
      else if (to_col)
        im2col_f64((const double *)xs, (double *)cs, ch->cols, 1, ch->oh0, ch->oh1, g);
      else
        col2im_f64((const double *)cs, (double *)xs, ch->cols, 1, ch->oh0, ch->oh1, g);
    }
}

/* }====================================================================== */

/* {======================================================================
** GEMM, and the moves of rows between y/gy and the GEMMs' matrices
** ======================================================================= */

/* C [M,N] = op(A) op(B) + beta C (beta 0 or 1), row-major; the core has
   checked that every size fits BLAS's int.  float32 goes through
   ember_cpu_sgemm (matmul.c: Ember's AVX-512 kernels where they fit);
   par: may it use threads (0 inside a parallel region). */
static void gemm(ember_dtype dt, int ta, int tb, int64_t M, int64_t N,
                 int64_t K, const void *A, int64_t lda, const void *B,
                 int64_t ldb, double beta, void *C, int64_t ldc, int par) {
  if (dt == EMBER_FLOAT32) {
    ember_cpu_sgemm(ta, tb, M, N, K, A, lda, B, ldb, beta != 0, C, ldc, par);
    return;
  }
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0, A,
              (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/*
** The row kernels.  finish: dst = src + bias (has_bias), then ReLU (relu)
** as ember_relu computes it (a NaN stays NaN); dst may be src.  mask_in:
** dst = mask > 0 ? src : 0 (ReLU's backward; mask NULL: a copy).
*/
#define DEFINE_ROWS(SUF, T)                                                  \
  static EMBER_SIMD void finish_##SUF(T *dst, const T *src, int64_t n,      \
                                      T bias, int has_bias, int relu) {      \
    if (relu) {                                                              \
      _Pragma("omp simd")                                                    \
      for (int64_t k = 0; k < n; k++) {                                      \
        T v = has_bias ? src[k] + bias : src[k];                             \
        dst[k] = v > 0 ? v : (v != v ? v : (T)0);                            \
      }                                                                      \
    } else {                                                                 \
      _Pragma("omp simd")                                                    \
      for (int64_t k = 0; k < n; k++)                                        \
        dst[k] = has_bias ? src[k] + bias : src[k];                          \
    }                                                                        \
  }                                                                          \
  static EMBER_SIMD void mask_in_##SUF(T *restrict dst, const T *src,       \
                                       const T *mask, int64_t n) {           \
    if (!mask) {                                                             \
      memcpy(dst, src, (size_t)n * sizeof(T));                               \
      return;                                                                \
    }                                                                        \
    _Pragma("omp simd")                                                      \
    for (int64_t k = 0; k < n; k++) dst[k] = mask[k] > 0 ? src[k] : (T)0;    \
  }                                                                          \
  /* the sum of a row of mask_in's output: eight running sums (blocks of   \
     8 vectorise whole, and a random mask costs no branches), added in     \
     double at the end */                                                    \
  static EMBER_SIMD double masked_sum_##SUF(const T *src, const T *mask,    \
                                            int64_t n) {                     \
    T lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                    \
    int64_t k0 = 0;                                                          \
    for (; k0 + 8 <= n; k0 += 8) {                                           \
      _Pragma("omp simd")                                                    \
      for (int k = 0; k < 8; k++)                                            \
        lane[k] += !mask || mask[k0 + k] > 0 ? src[k0 + k] : (T)0;           \
    }                                                                        \
    double acc = 0;                                                          \
    for (int k = 0; k < 8; k++) acc += lane[k];                              \
    for (; k0 < n; k0++) acc += !mask || mask[k0] > 0 ? src[k0] : (T)0;      \
    return acc;                                                              \
  }

DEFINE_ROWS(f32, float)
DEFINE_ROWS(f64, double)

/* Element k of a bias tensor (or 0 without one), as T. */
static double bias_at(const ember_tensor *b, int64_t k) {
  if (!b) return 0;
  return b->dtype == EMBER_FLOAT32 ? ((const float *)ember_data(b))[k]
                                   : ((const double *)ember_data(b))[k];
}

/* finish() over channel `o`'s run of n elements at dst/src */
static void finish_run(ember_dtype dt, char *dst, const char *src, int64_t n,
                       const ember_tensor *b, int64_t o, int relu) {
  if (dt == EMBER_FLOAT32)
    finish_f32((float *)dst, (const float *)src, n, (float)bias_at(b, o),
               b != NULL, relu);
  else
    finish_f64((double *)dst, (const double *)src, n, bias_at(b, o),
               b != NULL, relu);
}

/*
** Move the rows of group gi of a chunk between t (its images [nb, O, P])
** and a [Og, nb*len] matrix m: of each row, the len elements from off (a
** band of output rows; whole images: 0 and P).  to_m gathers (for gy;
** mask, laid out like t, applies ReLU's backward), else scatters (for y;
** with the bias and, with g->relu, the activation).  par as
** im2col_chunk's.
*/
static void move_rows(ember_dtype dt, char *t, const char *mask, char *m,
                      int64_t nb, int64_t off, int64_t len, int64_t gi,
                      const ember_tensor *b, const ember_conv2d_geom *g,
                      int to_m, int par) {
  int64_t Og = g->O / g->groups, P = g->OH * g->OW;
  int64_t es = (int64_t)ember_dtype_size(dt);
  #pragma omp parallel for collapse(2) num_threads(ember_cpu_threads()) if (par && nb * Og * len >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t bi = 0; bi < nb; bi++)
    for (int64_t o = 0; o < Og; o++) {
      int64_t at = ((bi * g->O + gi * Og + o) * P + off) * es;
      char *mp = m + (o * nb * len + bi * len) * es;
      if (!to_m)
        finish_run(dt, t + at, mp, len, b, gi * Og + o, g->relu);
      else if (dt == EMBER_FLOAT32)
        mask_in_f32((float *)mp, (const float *)(t + at),
                    mask ? (const float *)(mask + at) : NULL, len);
      else
        mask_in_f64((double *)mp, (const double *)(t + at),
                    mask ? (const double *)(mask + at) : NULL, len);
    }
}

/* gb[o] = sum over n and p of gy[n, o, p] (where mask > 0, with a mask),
   accumulated in double */
static void bias_grad(ember_tensor *gb, const ember_tensor *gy,
                      const ember_tensor *mask, const ember_conv2d_geom *g) {
  int64_t P = g->OH * g->OW;
  int f32 = gy->dtype == EMBER_FLOAT32;
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (g->N * g->O * P >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t o = 0; o < g->O; o++) {
    double acc = 0;
    for (int64_t n = 0; n < g->N; n++) {
      int64_t at = (n * g->O + o) * P;
      if (f32)
        acc += masked_sum_f32((const float *)ember_data(gy) + at,
                              mask ? (const float *)ember_data(mask) + at : NULL, P);
      else
        acc += masked_sum_f64((const double *)ember_data(gy) + at,
                              mask ? (const double *)ember_data(mask) + at : NULL, P);
    }
    if (f32) ((float *)ember_data(gb))[o] = (float)acc;
    else ((double *)ember_data(gb))[o] = acc;
  }
}

/* }====================================================================== */

/* {======================================================================
** Direct convolution (float32, K = C*KH*KW small, stride 1, no dilation,
** one group)
**
** Each image is first copied into a zero-padded plane stack xp
** [C, Hp, Wp] (Hp = H + 2ph, Wp = W + 2pw) with Wp elements of slack, so
** no loop tests a bound.  Tap t = (c, i, j) of output (oh, ow) reads
** xp[off[t] + oh*Wp + ow], off[t] = (c*Hp + i)*Wp + j.
**   forward: y[o, oh, ow] = sum_t w[o, t] * xp[off[t] + oh*Wp + ow], in
**            float with fused multiply-adds, summed in rows Wp wide (the
**            columns past OW are thrown away), + b[o], ReLU: y is
**            written once.
**   gW:      the same sums read the other way.  gy (masked by ReLU) goes
**            into rows gf[o] Wp wide (zeros past OW), so that
**            gw[o, t] = sum_q gf[o, q] * xp[off[t] + q], q < OH*Wp: long
**            dot products, four outputs by three taps at a time.  Images
**            are split between the threads, each summing into doubles of
**            its own, added up in thread order at the end.
** The zeros of gf's margins multiply real pixels (the next row's): with
** an Inf or NaN in x that would give NaN where the im2col path gives the
** true sum, so such an x takes the im2col path instead (all_finite).
** ======================================================================= */

static int direct_ok(const ember_conv2d_geom *g, ember_dtype dt) {
  return dt == EMBER_FLOAT32 && g->groups == 1 && g->sh == 1 && g->sw == 1 &&
         g->dh == 1 && g->dw == 1 && g->C * g->KH * g->KW <= DIRECT_MAX_K;
}

typedef struct {
  int64_t Hp, Wp, plane, K, L;  /* L = OH*Wp: the gf row length */
  int64_t off[DIRECT_MAX_K];
} direct_geom;

static void direct_geom_init(direct_geom *d, const ember_conv2d_geom *g) {
  d->Hp = g->H + 2 * g->ph;
  d->Wp = g->W + 2 * g->pw;
  d->plane = g->C * d->Hp * d->Wp + d->Wp;   /* + slack */
  d->K = g->C * g->KH * g->KW;
  d->L = g->OH * d->Wp;
  for (int64_t c = 0, t = 0; c < g->C; c++)
    for (int64_t i = 0; i < g->KH; i++)
      for (int64_t j = 0; j < g->KW; j++) d->off[t++] = (c * d->Hp + i) * d->Wp + j;
}

/* Image x [C, H, W] into xp (zeroed margins and slack). */
static void pad_image(float *xp, const float *x, const ember_conv2d_geom *g,
                      const direct_geom *d) {
  if (g->ph == 0 && g->pw == 0) {
    memcpy(xp, x, (size_t)(g->C * g->H * g->W) * sizeof(float));
    memset(xp + g->C * g->H * g->W, 0, (size_t)d->Wp * sizeof(float));
    return;
  }
  memset(xp, 0, (size_t)d->plane * sizeof(float));
  for (int64_t c = 0; c < g->C; c++)
    for (int64_t h = 0; h < g->H; h++)
      memcpy(xp + (c * d->Hp + h + g->ph) * d->Wp + g->pw,
             x + (c * g->H + h) * g->W, (size_t)g->W * sizeof(float));
}

/* acc[k][q] += sum over taps t of w[(o+k)*K + t] * xp[off[t] + q] for
   the nk (<= 4) channels from o, q < L: three taps by nk rows at a time,
   so each x value loaded serves up to twelve multiply-adds. */
static EMBER_SIMD void direct_rows(float *acc, const float *xp,
                                   const float *w, int64_t o, int64_t nk,
                                   const direct_geom *d) {
  int64_t K = d->K, L = d->L, t = 0;
  float *a0 = acc, *a1 = acc + L, *a2 = acc + 2 * L, *a3 = acc + 3 * L;
  if (nk == 4) {
    const float *w0 = w + o * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
    for (; t + 3 <= K; t += 3) {
      const float *x0 = xp + d->off[t], *x1 = xp + d->off[t + 1],
                  *x2 = xp + d->off[t + 2];
      #pragma omp simd
      for (int64_t q = 0; q < L; q++) {
        float u = x0[q], v = x1[q], z = x2[q];
        a0[q] = fmaf(w0[t + 2], z, fmaf(w0[t + 1], v, fmaf(w0[t], u, a0[q])));
        a1[q] = fmaf(w1[t + 2], z, fmaf(w1[t + 1], v, fmaf(w1[t], u, a1[q])));
        a2[q] = fmaf(w2[t + 2], z, fmaf(w2[t + 1], v, fmaf(w2[t], u, a2[q])));
        a3[q] = fmaf(w3[t + 2], z, fmaf(w3[t + 1], v, fmaf(w3[t], u, a3[q])));
      }
    }
  }
  for (; t < K; t++)                          /* what the blocks leave */
    for (int64_t k = 0; k < nk; k++) {
      const float *x0 = xp + d->off[t];
      float wk = w[(o + k) * K + t], *ak = acc + k * L;
      #pragma omp simd
      for (int64_t q = 0; q < L; q++) ak[q] = fmaf(wk, x0[q], ak[q]);
    }
}

/* rows (OH of them, Wp apart in acc) of one channel's sums into y, with
   the bias and ReLU as finish(); blocks of 8 as COPY_RUN's */
static EMBER_SIMD void finish_rows(float *restrict y, const float *restrict acc,
                                   int64_t OH, int64_t OW, int64_t Wp,
                                   float bias, int has_bias, int relu) {
  int64_t step = OW >= 8 ? 8 : 1;
  for (int64_t oh = 0; oh < OH; oh++) {
    const float *a = acc + oh * Wp;
    float *yr = y + oh * OW;
    for (int64_t k0 = 0; k0 < OW; k0 += step) {
      int64_t s = k0 + step <= OW ? k0 : OW - step;
      #pragma omp simd
      for (int64_t k = 0; k < step; k++) {
        float v = has_bias ? a[s + k] + bias : a[s + k];
        if (relu) v = v > 0 ? v : (v != v ? v : 0.0f);
        yr[s + k] = v;
      }
    }
  }
}

/* One image: y [O, OH, OW] from its padded planes, through rows of
   sums Wp wide (acc [4, L], of which the first OW of each row count). */
static void direct_forward_image(float *y, float *acc, const float *xp,
                                 const float *w, const float *b,
                                 const ember_conv2d_geom *g,
                                 const direct_geom *d) {
  int64_t OW = g->OW, P = g->OH * OW;
  for (int64_t o = 0; o < g->O; o += 4) {
    int64_t nk = g->O - o < 4 ? g->O - o : 4;
    memset(acc, 0, (size_t)(nk * d->L) * sizeof(float));
    direct_rows(acc, xp, w, o, nk, d);
    for (int64_t k = 0; k < nk; k++)
      finish_rows(y + (o + k) * P, acc + k * d->L, g->OH, OW, d->Wp,
                  b ? b[o + k] : 0.0f, b != NULL, g->relu);
  }
}

/* gf [O, L] from one image's gy [O, OH, OW] and its mask (or NULL); adds
   each channel's sum (the bias gradient) to gbd. */
static EMBER_SIMD void direct_gather(float *gf, const float *gy,
                                     const float *mask,
                                     const ember_conv2d_geom *g,
                                     const direct_geom *d, double *gbd) {
  int64_t OW = g->OW, Wp = d->Wp, L = d->L, step = OW >= 8 ? 8 : 1;
  for (int64_t o = 0; o < g->O; o++) {
    float *r = gf + o * L;
    for (int64_t oh = 0; oh < g->OH; oh++) {
      int64_t at = (o * g->OH + oh) * OW;
      float *ro = r + oh * Wp;
      for (int64_t ow = OW; ow < Wp; ow++) ro[ow] = 0;
      for (int64_t k0 = 0; k0 < OW; k0 += step) {   /* blocks as COPY_RUN's */
        int64_t s = k0 + step <= OW ? k0 : OW - step;
        #pragma omp simd
        for (int64_t k = 0; k < step; k++)
          ro[s + k] = !mask || mask[at + s + k] > 0 ? gy[at + s + k] : 0.0f;
      }
    }
    float s = 0;
    #pragma omp simd reduction(+:s)
    for (int64_t q = 0; q < L; q++) s += r[q];
    gbd[o] += s;
  }
}

/* gwd[o*K + t] += sum_q gf[o, q] * xp[off[t] + q]: 4 channels by 3 taps
   per pass, twelve independent sums; what the blocks leave, one by one. */
static EMBER_SIMD void direct_gw_image(double *gwd, const float *gf,
                                       const float *xp, int64_t O,
                                       const direct_geom *d) {
  int64_t K = d->K, L = d->L, o = 0;
  for (; o + 4 <= O; o += 4) {
    const float *g0 = gf + o * L, *g1 = g0 + L, *g2 = g1 + L, *g3 = g2 + L;
    int64_t t = 0;
    for (; t + 3 <= K; t += 3) {
      const float *x0 = xp + d->off[t], *x1 = xp + d->off[t + 1],
                  *x2 = xp + d->off[t + 2];
      float s00 = 0, s01 = 0, s02 = 0, s10 = 0, s11 = 0, s12 = 0;
      float s20 = 0, s21 = 0, s22 = 0, s30 = 0, s31 = 0, s32 = 0;
      #pragma omp simd reduction(+:s00,s01,s02,s10,s11,s12,s20,s21,s22,s30,s31,s32)
      for (int64_t q = 0; q < L; q++) {
        float a = x0[q], bq = x1[q], c = x2[q];
        s00 += g0[q] * a; s01 += g0[q] * bq; s02 += g0[q] * c;
        s10 += g1[q] * a; s11 += g1[q] * bq; s12 += g1[q] * c;
        s20 += g2[q] * a; s21 += g2[q] * bq; s22 += g2[q] * c;
        s30 += g3[q] * a; s31 += g3[q] * bq; s32 += g3[q] * c;
      }
      double *r = gwd + o * K + t;
      r[0] += s00; r[1] += s01; r[2] += s02;
      r[K] += s10; r[K + 1] += s11; r[K + 2] += s12;
      r[2 * K] += s20; r[2 * K + 1] += s21; r[2 * K + 2] += s22;
      r[3 * K] += s30; r[3 * K + 1] += s31; r[3 * K + 2] += s32;
    }
    for (; t < K; t++)
      for (int64_t k = 0; k < 4; k++) {
        const float *gk = gf + (o + k) * L, *x0 = xp + d->off[t];
        float s = 0;
        #pragma omp simd reduction(+:s)
        for (int64_t q = 0; q < L; q++) s += gk[q] * x0[q];
        gwd[(o + k) * K + t] += s;
      }
  }
  for (; o < O; o++)
    for (int64_t t = 0; t < K; t++) {
      const float *gk = gf + o * L, *x0 = xp + d->off[t];
      float s = 0;
      #pragma omp simd reduction(+:s)
      for (int64_t q = 0; q < L; q++) s += gk[q] * x0[q];
      gwd[o * K + t] += s;
    }
}

/* Threads for the direct path: one image each at least. */
static int direct_threads(const ember_conv2d_geom *g) {
  int nt = ember_cpu_threads();
  return nt > g->N ? (int)g->N : nt;          /* N >= 1 here */
}

static int all_finite(const ember_tensor *x) {
  const float *p = ember_data(x);
  int64_t n = ember_numel(x);
  float acc = 0;
  #pragma omp simd reduction(+:acc)
  for (int64_t k = 0; k < n; k++) acc += p[k] - p[k];  /* NaN from Inf too */
  return acc == 0;
}

static int direct_forward(ember_tensor *y, const ember_tensor *x,
                          const ember_tensor *w, const ember_tensor *b,
                          const ember_conv2d_geom *g) {
  direct_geom d;
  direct_geom_init(&d, g);
  int nt = direct_threads(g);
  size_t xp_b = lines((size_t)d.plane * sizeof(float));
  size_t per = xp_b + lines((size_t)(4 * d.L) * sizeof(float));
  block blk;
  if (!block_get(&blk, per * (size_t)nt))
    return ember_set_error("conv2d: out of memory for the padded input");
  const float *X = ember_data(x), *Wt = ember_data(w);
  const float *B = b ? ember_data(b) : NULL;
  float *Y = ember_data(y);
  int64_t in = g->C * g->H * g->W, out = g->O * g->OH * g->OW;
  #pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int id = omp_get_thread_num();
    float *xp = (float *)(blk.base + per * (size_t)id);
    float *acc = (float *)(blk.base + per * (size_t)id + xp_b);
    #pragma omp for schedule(static)
    for (int64_t n = 0; n < g->N; n++) {
      pad_image(xp, X + n * in, g, &d);
      direct_forward_image(Y + n * out, acc, xp, Wt, B, g, &d);
    }
  }
  block_put(&blk);
  return 0;
}

/* gw and/or gb by the direct path. */
static int direct_backward(ember_tensor *gw, ember_tensor *gb,
                           const ember_tensor *gy, const ember_tensor *mask,
                           const ember_tensor *x, const ember_conv2d_geom *g) {
  direct_geom d;
  direct_geom_init(&d, g);
  int nt = direct_threads(g);
  int64_t OK = g->O * d.K;
  size_t xp_b = lines((size_t)d.plane * sizeof(float));
  size_t gf_b = lines((size_t)(g->O * d.L) * sizeof(float));
  size_t acc_b = lines((size_t)(OK + g->O) * sizeof(double));
  size_t per = xp_b + gf_b + acc_b;
  block blk;
  if (!block_get(&blk, per * (size_t)nt))
    return ember_set_error("conv2d_backward: out of memory for the scratch");
  memset(blk.base, 0, per * (size_t)nt);
  const float *X = ember_data(x), *GY = ember_data(gy);
  const float *M = mask ? ember_data(mask) : NULL;
  int64_t in = g->C * g->H * g->W, out = g->O * g->OH * g->OW;
  #pragma omp parallel num_threads(nt) if (nt > 1)
  {
    char *mine = blk.base + per * (size_t)omp_get_thread_num();
    float *xp = (float *)mine, *gf = (float *)(mine + xp_b);
    double *acc = (double *)(mine + xp_b + gf_b);
    #pragma omp for schedule(static)
    for (int64_t n = 0; n < g->N; n++) {
      direct_gather(gf, GY + n * out, M ? M + n * out : NULL, g, &d, acc + OK);
      if (gw) {
        pad_image(xp, X + n * in, g, &d);
        direct_gw_image(acc, gf, xp, g->O, &d);
      }
    }
  }
  /* the threads' sums, added in thread order: the same bits every run */
  double *tot = (double *)(blk.base + xp_b + gf_b);
  for (int k = 1; k < nt; k++) {
    const double *a = (const double *)(blk.base + per * (size_t)k + xp_b + gf_b);
    for (int64_t e = 0; e < OK + g->O; e++) tot[e] += a[e];
  }
  if (gw)
    for (int64_t e = 0; e < OK; e++) ((float *)ember_data(gw))[e] = (float)tot[e];
  if (gb)
    for (int64_t o = 0; o < g->O; o++) ((float *)ember_data(gb))[o] = (float)tot[OK + o];
  block_put(&blk);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** The kernels
** ======================================================================= */

/*
** How to cut the work.  With several threads and enough images, the
** threads split the batch: each takes whole units (B images, or one image
** in bands of rows), with col and Y sized to stay in its core's cache
** (CACHE_ELEMS), and calls a single-threaded GEMM (OpenBLAS runs on one
** thread inside a parallel region).  Otherwise the units go one after the
** other, with chunks up to CHUNK_ELEMS, and BLAS threads each GEMM.
*/
#define CACHE_ELEMS ((int64_t)1 << 18)

typedef struct {
  int64_t B, band;      /* images per unit; output rows per band (B = 1) */
  int64_t most;         /* the most columns a chunk has */
  int64_t units;
  int nt;               /* threads splitting the units */
} conv_plan;

static void plan(conv_plan *pl, const ember_conv2d_geom *g) {
  int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
  int64_t rows = K > Og ? K : Og;
  int nt = ember_cpu_threads();
  for (int pass = 0; pass < 2; pass++) {
    pl->most = ember_conv_plan(g, rows, pass == 0 ? CACHE_ELEMS : CHUNK_ELEMS,
                               &pl->B, &pl->band);
    if (pass == 0 && pl->B > 1) {
      /* as many images a unit as fit, but a multiple of nt units, so no
         thread idles through the last one (32 images of 12 would be
         units of 12, 12 and 8: 4 units of 8 instead) */
      int64_t k = (g->N + pl->B * nt - 1) / (pl->B * nt);
      pl->B = (g->N + k * nt - 1) / (k * nt);
      pl->most = pl->B * g->OH * g->OW;
    }
    pl->units = (g->N + pl->B - 1) / pl->B;
    pl->nt = pass == 0 ? nt : 1;
    if (pass == 1 || pl->units >= nt) return;
  }
}

/* The next chunk of unit u (c->nb == 0: the first); 0 when there is none. */
static int unit_next(chunk *c, int64_t u, const conv_plan *pl,
                     const ember_conv2d_geom *g) {
  if (c->nb == 0) {
    c->n0 = u * pl->B;
    c->nb = g->N - c->n0 < pl->B ? g->N - c->n0 : pl->B;
    c->oh0 = 0;
  } else if (c->oh1 < g->OH) {
    c->oh0 = c->oh1;                          /* the image's next band */
  } else {
    return 0;
  }
  c->oh1 = c->nb > 1 || c->oh0 + pl->band > g->OH ? g->OH : c->oh0 + pl->band;
  c->cols = c->nb * (c->oh1 - c->oh0) * g->OW;
  return 1;
}

/* A thread's scratch: col (unless pointwise with single images), mat (Y
   of several images, or gy gathered through a mask), matT (gY transposed,
   for the float32 weight gradient) and gwp (its share of gw when the
   threads split the batch, or gw transposed), carved from one block. */
typedef struct {
  size_t col_b, mat_b, matT_b, gwp_b, per;
} scratch_plan;

typedef struct {
  char *col, *mat, *matT, *gwp;
} scratch;

static void scratch_plan_for(scratch_plan *sp, const conv_plan *pl,
                             const ember_conv2d_geom *g, size_t es,
                             int need_mat, int need_matT, int need_gwp) {
  int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
  int need_col = pl->B > 1 || !ember_conv_pointwise(g);
  sp->col_b = need_col ? lines((size_t)(K * pl->most) * es) : 0;
  sp->mat_b = need_mat ? lines((size_t)(Og * pl->most) * es) : 0;
  sp->matT_b = need_matT ? lines((size_t)(Og * pl->most) * es) : 0;
  sp->gwp_b = need_gwp ? lines((size_t)(g->O * K) * es) : 0;
  sp->per = sp->col_b + sp->mat_b + sp->matT_b + sp->gwp_b;
}

static scratch scratch_of(const block *blk, const scratch_plan *sp, int id) {
  char *mine = blk->base + sp->per * (size_t)id;
  scratch s = {sp->col_b ? mine : NULL, sp->mat_b ? mine + sp->col_b : NULL,
               sp->matT_b ? mine + sp->col_b + sp->mat_b : NULL,
               sp->gwp_b ? mine + sp->col_b + sp->mat_b + sp->matT_b : NULL};
  return s;
}

/* dst [cols, rows] = src [rows, cols] (rows lds apart), in 16 x 16 blocks
   that stay in L1 both ways. */
static EMBER_SIMD void transpose_f32(float *restrict dst,
                                     const float *restrict src, int64_t rows,
                                     int64_t cols, int64_t lds) {
  for (int64_t r0 = 0; r0 < rows; r0 += 16)
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      int64_t r1 = r0 + 16 < rows ? r0 + 16 : rows;
      int64_t c1 = c0 + 16 < cols ? c0 + 16 : cols;
      for (int64_t c = c0; c < c1; c++)
        for (int64_t r = r0; r < r1; r++) dst[c * rows + r] = src[r * lds + c];
    }
}

/* The col matrix of group gi of a chunk, and its leading dimension. */
static const char *chunk_col(const scratch *s, ember_dtype dt, const char *x,
                             const chunk *ch, int64_t gi,
                             const ember_conv2d_geom *g, int64_t *ld, int par) {
  size_t es = ember_dtype_size(dt);
  int64_t Cg = g->C / g->groups, HW = g->H * g->W;
  if (ch->nb == 1 && ember_conv_pointwise(g)) {
    *ld = HW;                                 /* = OH*OW here */
    return x + ((ch->n0 * g->C + gi * Cg) * HW + ch->oh0 * g->OW) * (int64_t)es;
  }
  *ld = ch->cols;
  im2col_chunk(dt, (char *)x, s->col, ch, gi, g, 1, par);
  return s->col;
}

/* Offset (elements) of group gi's first row in a single-image chunk of
   y or gy, at the chunk's first output row: rows are P apart. */
static int64_t out_at(const chunk *ch, int64_t gi, const ember_conv2d_geom *g) {
  int64_t Og = g->O / g->groups, P = g->OH * g->OW;
  return (ch->n0 * g->O + gi * Og) * P + ch->oh0 * g->OW;
}

/* Unit u of the forward. */
static void forward_unit(ember_tensor *y, const ember_tensor *x,
                         const ember_tensor *w, const ember_tensor *b,
                         const ember_conv2d_geom *g, const conv_plan *pl,
                         const scratch *s, int64_t u, int par) {
  ember_dtype dt = x->dtype;
  int64_t es = (int64_t)ember_dtype_size(dt), ld;
  int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
  int64_t P = g->OH * g->OW;
  char *Y = ember_data(y);
  chunk ch = {0, 0, 0, 0, 0};
  while (unit_next(&ch, u, pl, g)) {
    for (int64_t gi = 0; gi < g->groups; gi++) {
      const char *col = chunk_col(s, dt, ember_data(x), &ch, gi, g, &ld, par);
      const char *wg = (const char *)ember_data(w) + gi * Og * K * es;
      if (ch.nb == 1) {
        /* the GEMM writes straight into y (rows P apart); bias and ReLU
           follow on those rows while they are in cache */
        char *y0 = Y + out_at(&ch, gi, g) * es;
        gemm(dt, 0, 0, Og, ch.cols, K, wg, K, col, ld, 0.0, y0, P, par);
        if (b || g->relu)
          for (int64_t o = 0; o < Og; o++)
            finish_run(dt, y0 + o * P * es, y0 + o * P * es, ch.cols, b,
                       gi * Og + o, g->relu);
      } else {
        gemm(dt, 0, 0, Og, ch.cols, K, wg, K, col, ld, 0.0, s->mat, ch.cols, par);
        move_rows(dt, Y + ch.n0 * g->O * P * es, NULL, s->mat, ch.nb, 0, P, gi,
                  b, g, 0, par);
      }
    }
  }
}

int ember_cpu_conv2d(ember_tensor *y, const ember_tensor *x,
                     const ember_tensor *w, const ember_tensor *b,
                     const ember_conv2d_geom *g) {
  ember_dtype dt = x->dtype;
  if (g->N == 0) return 0;
  if (direct_ok(g, dt)) return direct_forward(y, x, w, b, g);
  conv_plan pl;
  scratch_plan sp;
  block blk;
  plan(&pl, g);
  scratch_plan_for(&sp, &pl, g, ember_dtype_size(dt), pl.B > 1, 0, 0);
  if (!block_get(&blk, sp.per * (size_t)pl.nt))
    return ember_set_error("conv2d: out of memory for the im2col buffer");
  if (pl.nt == 1) {
    scratch s = scratch_of(&blk, &sp, 0);
    for (int64_t u = 0; u < pl.units; u++) forward_unit(y, x, w, b, g, &pl, &s, u, 1);
  } else {
    #pragma omp parallel num_threads(pl.nt)
    {
      scratch s = scratch_of(&blk, &sp, omp_get_thread_num());
      #pragma omp for schedule(static)
      for (int64_t u = 0; u < pl.units; u++) forward_unit(y, x, w, b, g, &pl, &s, u, 0);
    }
  }
  block_put(&blk);
  return 0;
}

/* gW_g += gY col^T (into gwp, when not NULL) and gx += col2im(W_g^T gY)
   for one chunk and group; gY is [Og, cols] with rows ldy apart.
   float32 sums gW_g^T [K, Og] += col gY^T instead (gwp then holds gw
   transposed): with gY^T in matT, row-major, that is the product Ember's
   AVX-512 kernel streams best (matmul.c's bcast); gY col^T would go to
   its dot kernel, at about half the speed on these shapes. */
static void backward_group(const scratch *s, ember_tensor *gx, char *gwp,
                           const char *gY, int64_t ldy, const ember_tensor *x,
                           const ember_tensor *w, const chunk *ch, int64_t gi,
                           const ember_conv2d_geom *g, int par) {
  ember_dtype dt = x->dtype;
  int64_t es = (int64_t)ember_dtype_size(dt), ld;
  int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
  int64_t Cg = g->C / g->groups, HW = g->H * g->W;
  const char *wg = (const char *)ember_data(w) + gi * Og * K * es;
  if (gwp && dt == EMBER_FLOAT32) {
    const char *col = chunk_col(s, dt, ember_data(x), ch, gi, g, &ld, par);
    transpose_f32((float *)s->matT, (const float *)gY, Og, ch->cols, ldy);
    gemm(dt, 0, 0, K, Og, ch->cols, col, ld, s->matT, Og, 1.0,
         gwp + gi * Og * K * es, Og, par);
  } else if (gwp) {
    const char *col = chunk_col(s, dt, ember_data(x), ch, gi, g, &ld, par);
    gemm(dt, 0, 1, Og, K, ch->cols, gY, ldy, col, ld, 1.0,
         gwp + gi * Og * K * es, K, par);
  }
  if (!gx) return;
  if (ch->nb == 1 && ember_conv_pointwise(g)) {
    /* col2im is the identity: the GEMM writes gx's rows directly */
    char *gxc = (char *)ember_data(gx) +
                ((ch->n0 * g->C + gi * Cg) * HW + ch->oh0 * g->OW) * es;
    gemm(dt, 1, 0, Cg, ch->cols, Og, wg, K, gY, ldy, 0.0, gxc, HW, par);
  } else {
    /* col is free again once gW has used it */
    gemm(dt, 1, 0, K, ch->cols, Og, wg, K, gY, ldy, 0.0, s->col, ch->cols, par);
    im2col_chunk(dt, ember_data(gx), s->col, ch, gi, g, 0, par);
  }
}

/* Unit u of the backward; gw's sums go to gwp. */
static void backward_unit(ember_tensor *gx, char *gwp, const ember_tensor *gy,
                          const ember_tensor *mask, const ember_tensor *x,
                          const ember_tensor *w, const ember_conv2d_geom *g,
                          const conv_plan *pl, const scratch *s, int64_t u,
                          int par) {
  ember_dtype dt = x->dtype;
  int64_t es = (int64_t)ember_dtype_size(dt), P = g->OH * g->OW;
  char *GY = ember_data(gy);
  const char *MK = mask ? ember_data(mask) : NULL;
  chunk ch = {0, 0, 0, 0, 0};
  while (unit_next(&ch, u, pl, g)) {
    for (int64_t gi = 0; gi < g->groups; gi++) {
      if (ch.nb == 1 && !mask) {
        backward_group(s, gx, gwp, GY + out_at(&ch, gi, g) * es, P, x, w,
                       &ch, gi, g, par);
      } else {            /* whole images, or a band of one; masked or not */
        int64_t at = ch.n0 * g->O * P * es;
        move_rows(dt, GY + at, MK ? MK + at : NULL, s->mat, ch.nb,
                  ch.oh0 * g->OW, (ch.oh1 - ch.oh0) * g->OW, gi, NULL, g, 1, par);
        backward_group(s, gx, gwp, s->mat, ch.cols, x, w, &ch, gi, g, par);
      }
    }
  }
}

int ember_cpu_conv2d_backward(ember_tensor *gx, ember_tensor *gw,
                              ember_tensor *gb, const ember_tensor *gy,
                              const ember_tensor *mask, const ember_tensor *x,
                              const ember_tensor *w, const ember_conv2d_geom *g) {
  ember_dtype dt = x->dtype;
  int64_t es = (int64_t)ember_dtype_size(dt);
  /* gw accumulates over the chunks and col2im adds into gx: start at 0 */
  if (gx) memset(ember_data(gx), 0, (size_t)(ember_numel(gx) * es));
  if (gw) memset(ember_data(gw), 0, (size_t)(ember_numel(gw) * es));
  if (g->N == 0) {
    if (gb) memset(ember_data(gb), 0, (size_t)(ember_numel(gb) * es));
    return 0;
  }
  if (direct_ok(g, dt) && (gw || gb) && (!gw || all_finite(x))) {
    if (direct_backward(gw, gb, gy, mask, x, g) < 0) return -1;
    gw = NULL;                                /* done; gx may be left */
  } else if (gb) {
    bias_grad(gb, gy, mask, g);
  }
  if (!gx && !gw) return 0;
  conv_plan pl;
  scratch_plan sp;
  block blk;
  plan(&pl, g);
  /* float32 sums gw transposed (backward_group), in gwp even on one
     thread; float64 sums into gw itself on one thread */
  int f32 = dt == EMBER_FLOAT32;
  scratch_plan_for(&sp, &pl, g, (size_t)es, pl.B > 1 || mask != NULL,
                   gw && f32, gw && (pl.nt > 1 || f32));
  if (!block_get(&blk, sp.per * (size_t)pl.nt))
    return ember_set_error("conv2d_backward: out of memory for the im2col buffer");
  if (pl.nt == 1) {
    scratch s = scratch_of(&blk, &sp, 0);
    if (s.gwp) memset(s.gwp, 0, sp.gwp_b);
    char *gwp = s.gwp ? s.gwp : gw ? ember_data(gw) : NULL;
    for (int64_t u = 0; u < pl.units; u++)
      backward_unit(gx, gwp, gy, mask, x, w, g, &pl, &s, u, 1);
  } else {
    #pragma omp parallel num_threads(pl.nt)
    {
      scratch s = scratch_of(&blk, &sp, omp_get_thread_num());
      if (s.gwp) memset(s.gwp, 0, sp.gwp_b);
      #pragma omp for schedule(static)
      for (int64_t u = 0; u < pl.units; u++)
        backward_unit(gx, s.gwp, gy, mask, x, w, g, &pl, &s, u, 0);
    }
  }
  if (gw && sp.gwp_b) {         /* the threads' shares, in thread order */
    int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
    int64_t n = ember_numel(gw);
    for (int k = 0; k < pl.nt; k++) {
      scratch s = scratch_of(&blk, &sp, k);
      if (f32) {                /* [groups][K][Og] into [O][K] */
        float *d = ember_data(gw);
        const float *p = (const float *)s.gwp;
        for (int64_t gi = 0; gi < g->groups; gi++)
          for (int64_t t = 0; t < K; t++)
            for (int64_t o = 0; o < Og; o++)
              d[(gi * Og + o) * K + t] += p[(gi * K + t) * Og + o];
      } else {
        double *d = ember_data(gw);
        const double *p = (const double *)s.gwp;
        for (int64_t e = 0; e < n; e++) d[e] += p[e];
      }
    }
  }
  block_put(&blk);
  return 0;
}

/* }====================================================================== */
