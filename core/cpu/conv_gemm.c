/*
** conv_gemm.c -- 2-D convolution on the CPU: im2col + GEMM, and the entry
** points of the backend table.
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
** A first layer (few input channels: K = C*KH*KW <=
** EMBER_CONV_DIRECT_MAX_K, float32, stride 1, no dilation or groups) takes
** a direct path instead (conv_direct.c), where the GEMMs would be thin
** (K = 9 for a 3x3 kernel on one channel) and im2col's copy would cost as
** much as the arithmetic.
**
** Threads (see "How to cut the work"): with enough images the OpenMP
** threads split the batch, each with chunks small enough to stay in its
** core's cache and single-threaded GEMMs; otherwise the chunks go one
** after the other (up to CHUNK_ELEMS of scratch), OpenMP runs the copies
** and BLAS threads each GEMM, so the two never nest (core/threads.c).
**
** Scratch comes from one block kept between calls (ember_cpu_block_get,
** shared with the direct path), so a training step does not map, fault in
** and unmap megabytes of fresh memory for every convolution.
*/
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "conv.h"

/* Scratch per chunk, in elements: bounds col and Y (16 MiB in float32). */
#define CHUNK_ELEMS ((int64_t)1 << 22)

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

void *ember_cpu_block_get(ember_cpu_block *b, size_t n) {
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

void ember_cpu_block_put(ember_cpu_block *b) {
  if (b->is_kept) atomic_flag_clear(&kept_busy);
  else free(b->base);
  b->base = NULL;
}

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
**
** float32 is written for speed: the usual geometry (stride 1, no padding
** or dilation) makes every window row a straight run, and otherwise each
** row splits into its padding and its valid run (valid_range).  float64
** is the reference: one bounds test per element, in the same order, so
** col2im's sums come out the same.
*/

/* A window row is a few dozen elements: a library memcpy's call costs
   more than the copy, and a vectorised loop would run it all in its
   scalar remainder.  Blocks of 8, the last one ending at n (overlapping
   the one before: a copy may write an element twice), vectorise whole. */
static inline void copy_run_f32(float *restrict d, const float *restrict s,
                                int64_t n) {
  if (n < 8) {
    for (int64_t k = 0; k < n; k++) d[k] = s[k];
    return;
  }
  for (int64_t k0 = 0; k0 < n; k0 += 8) {
    int64_t b = k0 + 8 <= n ? k0 : n - 8;
    #pragma omp simd
    for (int64_t k = 0; k < 8; k++) d[b + k] = s[b + k];
  }
}

/* d += s over a run of n: whole blocks of 8, then one by one (a last
   block overlapping the one before, as copy_run_f32's, would load what
   was just stored at another offset, which stalls store-to-load
   forwarding). */
static inline void add_run_f32(float *restrict d, const float *restrict s,
                               int64_t n) {
  int64_t k0 = 0;
  for (; k0 + 8 <= n; k0 += 8) {
    #pragma omp simd
    for (int64_t k = 0; k < 8; k++) d[k0 + k] += s[k0 + k];
  }
  for (; k0 < n; k0++) d[k0] += s[k0];
}

/* the usual geometry: stride 1, no padding, no dilation */
static int plain_geom(const ember_conv2d_geom *g) {
  return g->sw == 1 && g->sh == 1 && g->pw == 0 && g->ph == 0 &&
         g->dw == 1 && g->dh == 1;
}

static EMBER_SIMD void im2col_f32(const float *x, float *col, int64_t ld,
                                  int64_t Cg, int64_t oh0, int64_t oh1,
                                  const ember_conv2d_geom *g) {
  int64_t H = g->H, W = g->W, OW = g->OW, sw = g->sw;
  if (plain_geom(g)) {          /* every window row a straight run */
    for (int64_t c = 0; c < Cg; c++)
      for (int64_t i = 0; i < g->KH; i++)
        for (int64_t j = 0; j < g->KW; j++) {
          float *row = col + ((c * g->KH + i) * g->KW + j) * ld;
          const float *src = x + (c * H + oh0 + i) * W + j;
          for (int64_t oh = oh0; oh < oh1; oh++, row += OW, src += W)
            copy_run_f32(row, src, OW);
        }
    return;
  }
  for (int64_t c = 0; c < Cg; c++)
    for (int64_t i = 0; i < g->KH; i++)
      for (int64_t j = 0; j < g->KW; j++) {
        float *row = col + ((c * g->KH + i) * g->KW + j) * ld;
        int64_t lo, hi;
        valid_range(W, OW, sw, g->pw, j * g->dw, &lo, &hi);
        for (int64_t oh = oh0; oh < oh1; oh++, row += OW) {
          int64_t h = oh * g->sh - g->ph + i * g->dh;
          if (h < 0 || h >= H) {
            memset(row, 0, (size_t)OW * sizeof(float));
            continue;
          }
          const float *src = x + (c * H + h) * W - g->pw + j * g->dw;
          for (int64_t ow = 0; ow < lo; ow++) row[ow] = 0;
          if (sw == 1)          /* a straight run, short: no memcpy call */
            copy_run_f32(row + lo, src + lo, hi - lo);
          else
            for (int64_t ow = lo; ow < hi; ow++) row[ow] = src[ow * sw];
          for (int64_t ow = hi; ow < OW; ow++) row[ow] = 0;
        }
      }
}

static EMBER_SIMD void col2im_f32(const float *col, float *x, int64_t ld,
                                  int64_t Cg, int64_t oh0, int64_t oh1,
                                  const ember_conv2d_geom *g) {
  int64_t H = g->H, W = g->W, OW = g->OW, sw = g->sw;
  if (plain_geom(g)) {          /* every window row a straight run */
    for (int64_t c = 0; c < Cg; c++)
      for (int64_t i = 0; i < g->KH; i++)
        for (int64_t j = 0; j < g->KW; j++) {
          const float *row = col + ((c * g->KH + i) * g->KW + j) * ld;
          float *dst = x + (c * H + oh0 + i) * W + j;
          for (int64_t oh = oh0; oh < oh1; oh++, row += OW, dst += W)
            add_run_f32(dst, row, OW);
        }
    return;
  }
  for (int64_t c = 0; c < Cg; c++)
    for (int64_t i = 0; i < g->KH; i++)
      for (int64_t j = 0; j < g->KW; j++) {
        const float *row = col + ((c * g->KH + i) * g->KW + j) * ld;
        int64_t lo, hi;
        valid_range(W, OW, sw, g->pw, j * g->dw, &lo, &hi);
        for (int64_t oh = oh0; oh < oh1; oh++, row += OW) {
          int64_t h = oh * g->sh - g->ph + i * g->dh;
          if (h < 0 || h >= H) continue;
          float *dst = x + (c * H + h) * W - g->pw + j * g->dw;
          if (sw == 1) {        /* whole blocks of 8 vectorise */
            int64_t ow = lo;
            for (; ow + 8 <= hi; ow += 8) {
              #pragma omp simd
              for (int64_t k = 0; k < 8; k++) dst[ow + k] += row[ow + k];
            }
            for (; ow < hi; ow++) dst[ow] += row[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ow++) dst[ow * sw] += row[ow];
          }
        }
      }
}

static void im2col_f64(const double *x, double *col, int64_t ld, int64_t Cg,
                       int64_t oh0, int64_t oh1, const ember_conv2d_geom *g) {
  int64_t H = g->H, W = g->W, OW = g->OW;
  for (int64_t c = 0; c < Cg; c++)
    for (int64_t i = 0; i < g->KH; i++)
      for (int64_t j = 0; j < g->KW; j++) {
        double *row = col + ((c * g->KH + i) * g->KW + j) * ld;
        for (int64_t oh = oh0; oh < oh1; oh++, row += OW) {
          int64_t h = oh * g->sh - g->ph + i * g->dh;
          for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w = ow * g->sw - g->pw + j * g->dw;
            row[ow] = h >= 0 && h < H && w >= 0 && w < W ? x[(c * H + h) * W + w] : 0;
          }
        }
      }
}

static void col2im_f64(const double *col, double *x, int64_t ld, int64_t Cg,
                       int64_t oh0, int64_t oh1, const ember_conv2d_geom *g) {
  int64_t H = g->H, W = g->W, OW = g->OW;
  for (int64_t c = 0; c < Cg; c++)
    for (int64_t i = 0; i < g->KH; i++)
      for (int64_t j = 0; j < g->KW; j++) {
        const double *row = col + ((c * g->KH + i) * g->KW + j) * ld;
        for (int64_t oh = oh0; oh < oh1; oh++, row += OW) {
          int64_t h = oh * g->sh - g->ph + i * g->dh;
          if (h < 0 || h >= H) continue;
          for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w = ow * g->sw - g->pw + j * g->dw;
            if (w >= 0 && w < W) x[(c * H + h) * W + w] += row[ow];
          }
        }
      }
}

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
      switch (dt) {
        case EMBER_FLOAT32:
          if (to_col) im2col_f32((const float *)xs, (float *)cs, ch->cols, 1, ch->oh0, ch->oh1, g);
          else col2im_f32((const float *)cs, (float *)xs, ch->cols, 1, ch->oh0, ch->oh1, g);
          break;
        default:
          if (to_col) im2col_f64((const double *)xs, (double *)cs, ch->cols, 1, ch->oh0, ch->oh1, g);
          else col2im_f64((const double *)cs, (double *)xs, ch->cols, 1, ch->oh0, ch->oh1, g);
          break;
      }
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
** masked_sum: the sum of a row of mask_in's output, in eight running sums
** (blocks of 8 vectorise whole, and a random mask costs no branches),
** added in double at the end; float64 keeps the same order of sums, so
** its bits do not depend on the path either.
*/
static EMBER_SIMD void finish_f32(float *dst, const float *src, int64_t n,
                                  float bias, int has_bias, int relu) {
  if (relu) {
    #pragma omp simd
    for (int64_t k = 0; k < n; k++) {
      float v = has_bias ? src[k] + bias : src[k];
      dst[k] = v > 0 ? v : (v != v ? v : 0.0f);
    }
  } else {
    #pragma omp simd
    for (int64_t k = 0; k < n; k++) dst[k] = has_bias ? src[k] + bias : src[k];
  }
}

static void finish_f64(double *dst, const double *src, int64_t n,
                       double bias, int has_bias, int relu) {
  for (int64_t k = 0; k < n; k++) {
    double v = has_bias ? src[k] + bias : src[k];
    dst[k] = !relu || v > 0 ? v : (v != v ? v : 0.0);
  }
}

static EMBER_SIMD void mask_in_f32(float *restrict dst, const float *src,
                                   const float *mask, int64_t n) {
  if (!mask) {
    memcpy(dst, src, (size_t)n * sizeof(float));
    return;
  }
  #pragma omp simd
  for (int64_t k = 0; k < n; k++) dst[k] = mask[k] > 0 ? src[k] : 0.0f;
}

static void mask_in_f64(double *restrict dst, const double *src,
                        const double *mask, int64_t n) {
  for (int64_t k = 0; k < n; k++) dst[k] = !mask || mask[k] > 0 ? src[k] : 0.0;
}

static EMBER_SIMD double masked_sum_f32(const float *src, const float *mask,
                                        int64_t n) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k0 = 0;
  for (; k0 + 8 <= n; k0 += 8) {
    #pragma omp simd
    for (int k = 0; k < 8; k++)
      lane[k] += !mask || mask[k0 + k] > 0 ? src[k0 + k] : 0.0f;
  }
  double acc = 0;
  for (int k = 0; k < 8; k++) acc += lane[k];
  for (; k0 < n; k0++) acc += !mask || mask[k0] > 0 ? src[k0] : 0.0f;
  return acc;
}

static double masked_sum_f64(const double *src, const double *mask,
                             int64_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k0 = 0;
  for (; k0 + 8 <= n; k0 += 8)
    for (int k = 0; k < 8; k++)
      lane[k] += !mask || mask[k0 + k] > 0 ? src[k0 + k] : 0.0;
  double acc = 0;
  for (int k = 0; k < 8; k++) acc += lane[k];
  for (; k0 < n; k0++) acc += !mask || mask[k0] > 0 ? src[k0] : 0.0;
  return acc;
}

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
  sp->col_b = need_col ? ember_cpu_lines((size_t)(K * pl->most) * es) : 0;
  sp->mat_b = need_mat ? ember_cpu_lines((size_t)(Og * pl->most) * es) : 0;
  sp->matT_b = need_matT ? ember_cpu_lines((size_t)(Og * pl->most) * es) : 0;
  sp->gwp_b = need_gwp ? ember_cpu_lines((size_t)(g->O * K) * es) : 0;
  sp->per = sp->col_b + sp->mat_b + sp->matT_b + sp->gwp_b;
}

static scratch scratch_of(const ember_cpu_block *blk, const scratch_plan *sp, int id) {
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
  if (ember_cpu_conv_direct_ok(g, dt))
    return ember_cpu_conv_direct_forward(y, x, w, b, g);
  conv_plan pl;
  scratch_plan sp;
  ember_cpu_block blk;
  plan(&pl, g);
  scratch_plan_for(&sp, &pl, g, ember_dtype_size(dt), pl.B > 1, 0, 0);
  if (!ember_cpu_block_get(&blk, sp.per * (size_t)pl.nt))
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
  ember_cpu_block_put(&blk);
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
  if (ember_cpu_conv_direct_ok(g, dt) && (gw || gb) &&
      (!gw || ember_cpu_all_finite(x))) {
    if (ember_cpu_conv_direct_backward(gw, gb, gy, mask, x, g) < 0) return -1;
    gw = NULL;                                /* done; gx may be left */
  } else if (gb) {
    bias_grad(gb, gy, mask, g);
  }
  if (!gx && !gw) return 0;
  conv_plan pl;
  scratch_plan sp;
  ember_cpu_block blk;
  plan(&pl, g);
  /* float32 sums gw transposed (backward_group), in gwp even on one
     thread; float64 sums into gw itself on one thread */
  int f32 = dt == EMBER_FLOAT32;
  scratch_plan_for(&sp, &pl, g, (size_t)es, pl.B > 1 || mask != NULL,
                   gw && f32, gw && (pl.nt > 1 || f32));
  if (!ember_cpu_block_get(&blk, sp.per * (size_t)pl.nt))
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
  ember_cpu_block_put(&blk);
  return 0;
}

/* }====================================================================== */
