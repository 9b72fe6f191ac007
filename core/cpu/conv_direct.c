/*
** conv_direct.c -- the direct convolution of a first layer on the CPU
** (float32, K = C*KH*KW <= EMBER_CONV_DIRECT_MAX_K, stride 1, no dilation,
** one group).  There the GEMMs of the im2col path (conv_gemm.c) would be
** thin (K = 9 for a 3x3 kernel over one channel) and im2col's copy would
** cost as much as the arithmetic, so the sums run straight from the image.
** conv_gemm.c's entry points call in here when ember_cpu_conv_direct_ok.
*/
#include <math.h>
#include <string.h>

#include <omp.h>

#include "conv.h"

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
** true sum, so such an x takes the im2col path instead (ember_cpu_all_finite).
** ======================================================================= */

int ember_cpu_conv_direct_ok(const ember_conv2d_geom *g, ember_dtype dt) {
  return dt == EMBER_FLOAT32 && g->groups == 1 && g->sh == 1 && g->sw == 1 &&
         g->dh == 1 && g->dw == 1 &&
         g->C * g->KH * g->KW <= EMBER_CONV_DIRECT_MAX_K;
}

typedef struct {
  int64_t Hp, Wp, plane, K, L;  /* L = OH*Wp: the gf row length */
  int64_t off[EMBER_CONV_DIRECT_MAX_K];
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
   the bias and ReLU as conv_gemm.c's finish_f32; blocks of 8 as conv_gemm.c's copy_run_f32 */
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
      for (int64_t k0 = 0; k0 < OW; k0 += step) {   /* blocks as copy_run_f32's */
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

int ember_cpu_all_finite(const ember_tensor *x) {
  const float *p = ember_data(x);
  int64_t n = ember_numel(x);
  float acc = 0;
  #pragma omp simd reduction(+:acc)
  for (int64_t k = 0; k < n; k++) acc += p[k] - p[k];  /* NaN from Inf too */
  return acc == 0;
}

int ember_cpu_conv_direct_forward(ember_tensor *y, const ember_tensor *x,
                                  const ember_tensor *w, const ember_tensor *b,
                                  const ember_conv2d_geom *g) {
  direct_geom d;
  direct_geom_init(&d, g);
  int nt = direct_threads(g);
  size_t xp_b = ember_cpu_lines((size_t)d.plane * sizeof(float));
  size_t per = xp_b + ember_cpu_lines((size_t)(4 * d.L) * sizeof(float));
  ember_cpu_block blk;
  if (!ember_cpu_block_get(&blk, per * (size_t)nt))
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
  ember_cpu_block_put(&blk);
  return 0;
}

/* gw and/or gb by the direct path. */
int ember_cpu_conv_direct_backward(ember_tensor *gw, ember_tensor *gb,
                                   const ember_tensor *gy,
                                   const ember_tensor *mask,
                                   const ember_tensor *x,
                                   const ember_conv2d_geom *g) {
  direct_geom d;
  direct_geom_init(&d, g);
  int nt = direct_threads(g);
  int64_t OK = g->O * d.K;
  size_t xp_b = ember_cpu_lines((size_t)d.plane * sizeof(float));
  size_t gf_b = ember_cpu_lines((size_t)(g->O * d.L) * sizeof(float));
  size_t acc_b = ember_cpu_lines((size_t)(OK + g->O) * sizeof(double));
  size_t per = xp_b + gf_b + acc_b;
  ember_cpu_block blk;
  if (!ember_cpu_block_get(&blk, per * (size_t)nt))
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
  ember_cpu_block_put(&blk);
  return 0;
}

/* }====================================================================== */
