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
** The scratch stays under CHUNK_ELEMS elements whatever the batch: a chunk
** holds as many whole images as fit, or, for one image too big alone, a
** band of its output rows.  A chunk of one image needs no Y (the GEMM
** writes y's rows in place), and a 1x1 kernel with stride 1 and no padding
** needs no col either (x's block is the col).
**
** Backward, per chunk and group, from gY (gy's rows gathered like Y):
**   gW_g += gY x col^T          (accumulated over the chunks)
**   gcol  = W_g^T x gY, then col2im adds gcol into gx
**   gb[o] = sum of gy[., o, .]
**
** Threads: OpenMP runs the copies (im2col, col2im, row moves) and BLAS
** threads the GEMMs, so the two never nest (see core/threads.c).
*/
#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

/* Scratch per chunk, in elements: bounds col and Y (16 MiB in float32). */
#define CHUNK_ELEMS ((int64_t)1 << 22)

/* {======================================================================
** im2col and col2im
** ======================================================================= */

/*
** Output columns ow in [*lo, *hi) read input column ow*s - p + off inside
** [0, W); the columns outside read padding.  Splitting the row this way
** keeps the inner loops free of bounds tests, so they vectorise.
*/
static void valid_range(int64_t W, int64_t OW, int64_t s, int64_t p,
                        int64_t off, int64_t *lo, int64_t *hi) {
  int64_t a = p - off, e = W + p - off;     /* need a <= ow*s < e */
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  *hi = e <= 0 ? 0 : (e + s - 1) / s;
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
  static void im2col_##SUF(const T *x, T *col, int64_t ld, int64_t Cg,       \
                           int64_t oh0, int64_t oh1,                         \
                           const ember_conv2d_geom *g) {                     \
    int64_t H = g->H, W = g->W, OW = g->OW, sw = g->sw;                      \
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
            int64_t at = (c * H + h) * W - g->pw + j * g->dw;                \
            for (int64_t ow = 0; ow < lo; ow++) row[ow] = 0;                 \
            if (sw == 1)                   /* a straight run: one memcpy */  \
              memcpy(row + lo, x + at + lo, (size_t)(hi - lo) * sizeof(T));  \
            else                                                             \
              for (int64_t ow = lo; ow < hi; ow++) row[ow] = x[at + ow * sw]; \
            for (int64_t ow = hi; ow < OW; ow++) row[ow] = 0;                \
          }                                                                  \
        }                                                                    \
  }                                                                          \
  static void col2im_##SUF(const T *col, T *x, int64_t ld, int64_t Cg,       \
                           int64_t oh0, int64_t oh1,                         \
                           const ember_conv2d_geom *g) {                     \
    int64_t H = g->H, W = g->W, OW = g->OW;                                  \
    for (int64_t c = 0; c < Cg; c++)                                         \
      for (int64_t i = 0; i < g->KH; i++)                                    \
        for (int64_t j = 0; j < g->KW; j++) {                                \
          const T *row = col + ((c * g->KH + i) * g->KW + j) * ld;           \
          int64_t lo, hi;                                                    \
          valid_range(W, OW, g->sw, g->pw, j * g->dw, &lo, &hi);             \
          for (int64_t oh = oh0; oh < oh1; oh++, row += OW) {                \
            int64_t h = oh * g->sh - g->ph + i * g->dh;                      \
            if (h < 0 || h >= H) continue;                                   \
            int64_t at = (c * H + h) * W - g->pw + j * g->dw;                \
            for (int64_t ow = lo; ow < hi; ow++) x[at + ow * g->sw] += row[ow]; \
          }                                                                  \
        }                                                                    \
  }

DEFINE_IM2COL(f32, float)
DEFINE_IM2COL(f64, double)

/* A chunk of the work (backend.h: ember_conv_chunk). */
typedef ember_conv_chunk chunk;

/*
** im2col (to_col) or col2im of group gi of a chunk, x holding whole images
** from image 0.  Image b's columns start at b * band length; each (image,
** channel) pair is one task: im2col writes its own col rows, col2im its
** own gx plane, so no two threads write the same element.
*/
static void im2col_chunk(ember_dtype dt, char *x, char *col, const chunk *ch,
                         int64_t gi, const ember_conv2d_geom *g, int to_col) {
  size_t es = ember_dtype_size(dt);
  int64_t Cg = g->C / g->groups, HW = g->H * g->W;
  int64_t len = (ch->oh1 - ch->oh0) * g->OW, KK = g->KH * g->KW;
  #pragma omp parallel for collapse(2) num_threads(ember_cpu_threads()) if (ch->cols * Cg * KK >= EMBER_CPU_PARALLEL_MIN)
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
** GEMM and row moves
** ======================================================================= */

/* C [M,N] = op(A) op(B) + beta C, row-major; the core has checked that
   every size fits BLAS's int. */
static void gemm(ember_dtype dt, int ta, int tb, int64_t M, int64_t N,
                 int64_t K, const void *A, int64_t lda, const void *B,
                 int64_t ldb, double beta, void *C, int64_t ldc) {
  enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE TB = tb ? CblasTrans : CblasNoTrans;
  if (dt == EMBER_FLOAT32)
    cblas_sgemm(CblasRowMajor, TA, TB, (int)M, (int)N, (int)K, 1.0f, A,
                (int)lda, B, (int)ldb, (float)beta, C, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, TA, TB, (int)M, (int)N, (int)K, 1.0, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/*
** Move the rows of group gi between the chunk's images t [nb, O, P] and
** a [Og, nb*P] matrix m: to_m gathers (for gy), else scatters (for y).
*/
static void move_rows(size_t es, char *t, char *m, int64_t nb, int64_t gi,
                      const ember_conv2d_geom *g, int to_m) {
  int64_t Og = g->O / g->groups, P = g->OH * g->OW;
  size_t row = (size_t)P * es;
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (nb * Og * P >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t b = 0; b < nb; b++)
    for (int64_t o = 0; o < Og; o++) {
      char *tp = t + ((b * g->O + gi * Og + o) * P) * (int64_t)es;
      char *mp = m + (o * nb * P + b * P) * (int64_t)es;
      if (to_m) memcpy(mp, tp, row);
      else memcpy(tp, mp, row);
    }
}

/* y[n, o, :] += b[o] */
static void add_bias(ember_tensor *y, const ember_tensor *b,
                     const ember_conv2d_geom *g) {
  int64_t NO = g->N * g->O, P = g->OH * g->OW;
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (NO * P >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t r = 0; r < NO; r++) {
    int64_t o = r % g->O;
    if (y->dtype == EMBER_FLOAT32) {
      float *yp = (float *)ember_data(y) + r * P, v = ((const float *)ember_data(b))[o];
      for (int64_t p = 0; p < P; p++) yp[p] += v;
    } else {
      double *yp = (double *)ember_data(y) + r * P, v = ((const double *)ember_data(b))[o];
      for (int64_t p = 0; p < P; p++) yp[p] += v;
    }
  }
}

/* gb[o] = sum over n and p of gy[n, o, p], accumulated in double */
static void bias_grad(ember_tensor *gb, const ember_tensor *gy,
                      const ember_conv2d_geom *g) {
  int64_t P = g->OH * g->OW;
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (g->N * g->O * P >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t o = 0; o < g->O; o++) {
    double acc = 0;
    for (int64_t n = 0; n < g->N; n++) {
      int64_t at = (n * g->O + o) * P;
      if (gy->dtype == EMBER_FLOAT32) {
        const float *p = (const float *)ember_data(gy) + at;
        for (int64_t i = 0; i < P; i++) acc += p[i];
      } else {
        const double *p = (const double *)ember_data(gy) + at;
        for (int64_t i = 0; i < P; i++) acc += p[i];
      }
    }
    if (gb->dtype == EMBER_FLOAT32) ((float *)ember_data(gb))[o] = (float)acc;
    else ((double *)ember_data(gb))[o] = acc;
  }
}

/* }====================================================================== */

/* {======================================================================
** The kernels
** ======================================================================= */

/* How to cut the work: B images per chunk, as many as keep col and Y
   within CHUNK_ELEMS, or bands of rows of one image (backend.h). */
static int64_t plan(const ember_conv2d_geom *g, int64_t *B, int64_t *band) {
  int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
  return ember_conv_plan(g, K > Og ? K : Og, CHUNK_ELEMS, B, band);
}

/* Scratch: col (unless pointwise with single images) and Y (several). */
typedef struct {
  char *col, *mat;
} scratch;

static int scratch_get(scratch *s, const ember_conv2d_geom *g, int64_t B,
                       int64_t cols, size_t es, const char *fn) {
  int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
  int need_col = B > 1 || !ember_conv_pointwise(g);
  s->col = need_col ? malloc((size_t)(K * cols) * es) : NULL;
  s->mat = B > 1 ? malloc((size_t)(Og * cols) * es) : NULL;
  if ((need_col && !s->col) || (B > 1 && !s->mat)) {
    free(s->col);
    free(s->mat);
    return ember_set_error("%s: out of memory for the im2col buffer", fn);
  }
  return 0;
}

/* The col matrix of group gi of a chunk, and its leading dimension. */
static const char *chunk_col(const scratch *s, ember_dtype dt, const char *x,
                             const chunk *ch, int64_t gi,
                             const ember_conv2d_geom *g, int64_t *ld) {
  size_t es = ember_dtype_size(dt);
  int64_t Cg = g->C / g->groups, HW = g->H * g->W;
  if (ch->nb == 1 && ember_conv_pointwise(g)) {
    *ld = HW;                                 /* = OH*OW here */
    return x + ((ch->n0 * g->C + gi * Cg) * HW + ch->oh0 * g->OW) * (int64_t)es;
  }
  *ld = ch->cols;
  im2col_chunk(dt, (char *)x, s->col, ch, gi, g, 1);
  return s->col;
}

/* Offset (elements) of group gi's first row in a single-image chunk of
   y or gy, at the chunk's first output row: rows are P apart. */
static int64_t out_at(const chunk *ch, int64_t gi, const ember_conv2d_geom *g) {
  int64_t Og = g->O / g->groups, P = g->OH * g->OW;
  return (ch->n0 * g->O + gi * Og) * P + ch->oh0 * g->OW;
}

int ember_cpu_conv2d(ember_tensor *y, const ember_tensor *x,
                     const ember_tensor *w, const ember_tensor *b,
                     const ember_conv2d_geom *g) {
  ember_dtype dt = x->dtype;
  int64_t es = (int64_t)ember_dtype_size(dt), B, band, ld;
  int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
  int64_t P = g->OH * g->OW;
  if (g->N == 0) return 0;
  int64_t most = plan(g, &B, &band);
  scratch s;
  if (scratch_get(&s, g, B, most, (size_t)es, "conv2d") < 0) return -1;
  char *Y = ember_data(y);
  chunk ch = {0, 0, 0, 0, 0};
  while (ember_conv_next_chunk(&ch, B, band, g)) {
    for (int64_t gi = 0; gi < g->groups; gi++) {
      const char *col = chunk_col(&s, dt, ember_data(x), &ch, gi, g, &ld);
      const char *wg = (const char *)ember_data(w) + gi * Og * K * es;
      if (ch.nb == 1) {
        /* the GEMM writes straight into y (rows P apart) */
        gemm(dt, 0, 0, Og, ch.cols, K, wg, K, col, ld, 0.0,
             Y + out_at(&ch, gi, g) * es, P);
      } else {
        gemm(dt, 0, 0, Og, ch.cols, K, wg, K, col, ld, 0.0, s.mat, ch.cols);
        move_rows((size_t)es, Y + ch.n0 * g->O * P * es, s.mat, ch.nb, gi, g, 0);
      }
    }
  }
  free(s.col);
  free(s.mat);
  if (b) add_bias(y, b, g);
  return 0;
}

/* gW_g += gY col^T and gx += col2im(W_g^T gY) for one chunk and group;
   gY is [Og, cols] with rows ldy apart. */
static void backward_group(const scratch *s, ember_tensor *gx, ember_tensor *gw,
                           const char *gY, int64_t ldy, const ember_tensor *x,
                           const ember_tensor *w, const chunk *ch, int64_t gi,
                           const ember_conv2d_geom *g) {
  ember_dtype dt = x->dtype;
  int64_t es = (int64_t)ember_dtype_size(dt), ld;
  int64_t K = g->C / g->groups * g->KH * g->KW, Og = g->O / g->groups;
  int64_t Cg = g->C / g->groups, HW = g->H * g->W;
  const char *wg = (const char *)ember_data(w) + gi * Og * K * es;
  if (gw) {
    const char *col = chunk_col(s, dt, ember_data(x), ch, gi, g, &ld);
    gemm(dt, 0, 1, Og, K, ch->cols, gY, ldy, col, ld, 1.0,
         (char *)ember_data(gw) + gi * Og * K * es, K);
  }
  if (!gx) return;
  if (ch->nb == 1 && ember_conv_pointwise(g)) {
    /* col2im is the identity: the GEMM writes gx's rows directly */
    char *gxc = (char *)ember_data(gx) +
                ((ch->n0 * g->C + gi * Cg) * HW + ch->oh0 * g->OW) * es;
    gemm(dt, 1, 0, Cg, ch->cols, Og, wg, K, gY, ldy, 0.0, gxc, HW);
  } else {
    /* col is free again once gW has used it */
    gemm(dt, 1, 0, K, ch->cols, Og, wg, K, gY, ldy, 0.0, s->col, ch->cols);
    im2col_chunk(dt, ember_data(gx), s->col, ch, gi, g, 0);
  }
}

int ember_cpu_conv2d_backward(ember_tensor *gx, ember_tensor *gw,
                              ember_tensor *gb, const ember_tensor *gy,
                              const ember_tensor *x, const ember_tensor *w,
                              const ember_conv2d_geom *g) {
  int64_t es = (int64_t)ember_dtype_size(x->dtype), B, band;
  int64_t P = g->OH * g->OW;
  /* gw accumulates over the chunks and col2im adds into gx: start at 0 */
  if (gx) memset(ember_data(gx), 0, (size_t)(ember_numel(gx) * es));
  if (gw) memset(ember_data(gw), 0, (size_t)(ember_numel(gw) * es));
  if (gb) bias_grad(gb, gy, g);
  if ((!gx && !gw) || g->N == 0) return 0;
  int64_t most = plan(g, &B, &band);
  scratch s;
  if (scratch_get(&s, g, B, most, (size_t)es, "conv2d_backward") < 0) return -1;
  char *GY = ember_data(gy);
  chunk ch = {0, 0, 0, 0, 0};
  while (ember_conv_next_chunk(&ch, B, band, g)) {
    for (int64_t gi = 0; gi < g->groups; gi++) {
      if (ch.nb == 1) {
        backward_group(&s, gx, gw, GY + out_at(&ch, gi, g) * es, P, x, w,
                       &ch, gi, g);
      } else {
        move_rows((size_t)es, GY + ch.n0 * g->O * P * es, s.mat, ch.nb, gi, g, 1);
        backward_group(&s, gx, gw, s.mat, ch.cols, x, w, &ch, gi, g);
      }
    }
  }
  free(s.col);
  free(s.mat);
  return 0;
}

/* }====================================================================== */
