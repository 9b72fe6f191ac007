/*
** pool.c -- 2-D max and average pooling on the CPU.
**
** The core hands us `planes` contiguous H x W input planes (N*C of them)
** and as many OH x OW output planes.  Planes are independent, so the loops
** run one plane per OpenMP iteration; backward kernels scatter into their
** own plane only, so no two threads ever write the same element.
**
** The window rules are PyTorch's (ATen's MaxPoolKernel.cpp, AvgPoolKernel.cpp):
**   max: the window's taps outside the input are skipped (padding acts as
**        -inf); the first maximum wins a tie, and a NaN wins over anything
**        (the last NaN if several), so NaN propagates.
**   avg: the window is clipped to the padded input [-p, H+p) for the
**        count_include_pad divisor and to the input [0, H) for the sum
**        and the other divisor.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"

/* Total taps, to decide whether threads pay off (in double: a huge
   kernel over a small padded input would overflow int64). */
static int parallel_worth(const ember_pool2d_geom *g) {
  return (double)g->planes * (double)(g->OH * g->OW) * (double)g->kh *
         (double)g->kw >= EMBER_CPU_PARALLEL_MIN;
}

/* First tap at or after `start` (which may lie in the padding) that is
   inside the input, stepping by d. */
static inline int64_t first_inside(int64_t start, int64_t d) {
  return start >= 0 ? start : start + (-start + d - 1) / d * d;
}

/* The taps [*lo, *hi) of output o's window along one axis of n inputs
   (stride s, padding p, kernel k, dilation d): the first tap inside the
   input, and the end clipped to it; the caller steps by d. */
static inline void window_taps(int64_t o, int64_t s, int64_t p, int64_t k,
                               int64_t d, int64_t n, int64_t *lo,
                               int64_t *hi) {
  int64_t start = o * s - p, end = start + (k - 1) * d + 1;
  *hi = end > n ? n : end;
  *lo = first_inside(start, d);
}

/* {======================================================================
** Max pooling
** ======================================================================= */

/* One step of the scan, branch-free: v (at position pos) takes over
   when it is larger or a NaN.  The selects are on bits, so that even the
   scalar code of a short row has no branch to mispredict on random data. */
static inline void take_f32(float *m, int64_t *best, float v, int64_t pos) {
  int32_t t = -(int32_t)((v > *m) | (v != v));       /* all ones: take */
  int32_t mb, vb;
  memcpy(&mb, m, 4);
  memcpy(&vb, &v, 4);
  mb = (mb & ~t) | (vb & t);
  memcpy(m, &mb, 4);
  *best = (*best & ~(int64_t)t) | (pos & (int64_t)t);
}

/* The maximum of the 2x2 window whose top-left is x[at] (0-based in the
   plane, rows W apart), scanned in max_plane's order; its 1-based
   position in *best. */
static inline float window2x2_f32(const float *x, int64_t at, int64_t W,
                                  int64_t *best) {
  float m = x[at];
  *best = at + 1;
  take_f32(&m, best, x[at + 1], at + 2);
  take_f32(&m, best, x[at + W], at + W + 1);
  take_f32(&m, best, x[at + W + 1], at + W + 2);
  return m;
}

/* The 2x2 / stride 2 rows of a float32 plane, as max_plane's straight
   path computes them (the same scan order and rule), in blocks of 8
   outputs, which vectorise whole: a row of OW >= 8 outputs is covered by
   blocks at 0, 8, ... and one ending at OW (overlapping the one before:
   its outputs are written twice, with the same values).  Rows this short
   (13 for a 26x26 plane) would otherwise run almost all in the scalar
   remainder of a 16-wide loop; shorter ones (5) run scalar, branch-free. */
static EMBER_SIMD void max2x2_f32(const float *x, float *y, int64_t *idx,
                                  const ember_pool2d_geom *g) {
  const int64_t W = g->W, OW = g->OW, step = 8;
  for (int64_t oh = 0; oh < g->OH; oh++) {
    const int64_t row = 2 * oh * W;              /* the windows' top row */
    float *yr = y + oh * OW;
    int64_t *ir = idx ? idx + oh * OW : NULL;
    if (OW < 8) {                       /* small planes: max2x2_small_f32 */
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t best;
        yr[ow] = window2x2_f32(x, row + 2 * ow, W, &best);
        if (ir) ir[ow] = best;
      }
      continue;
    }
    for (int64_t o0 = 0; o0 < OW; o0 += step) {
      int64_t s = o0 + step <= OW ? o0 : OW - step;
      #pragma omp simd
      for (int64_t k = 0; k < step; k++) {
        int64_t best;
        yr[s + k] = window2x2_f32(x, row + 2 * (s + k), W, &best);
        if (ir) ir[s + k] = best;
      }
    }
  }
}

/* Planes of fewer than 8 outputs a row (5x5 from 11x11): the plane's
   OH*OW outputs as one run, in blocks of 8 as above, each output reading
   its window at off[e] (its top-left, 0-based, in the plane). */
static EMBER_SIMD void max2x2_small_f32(const float *x, float *y, int64_t *idx,
                                        const int32_t *off, int64_t n,
                                        int64_t W) {
  for (int64_t e0 = 0; e0 < n; e0 += 8) {
    int64_t s = e0 + 8 <= n ? e0 : n - 8;
    #pragma omp simd
    for (int64_t k = 0; k < 8; k++) {
      int64_t best;
      y[s + k] = window2x2_f32(x, off[s + k], W, &best);
      if (idx) idx[s + k] = best;
    }
  }
}

static int is_2x2(const ember_pool2d_geom *g) {
  return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 &&
         g->pw == 0 && g->dh == 1 && g->dw == 1 && 2 * g->OH <= g->H &&
         2 * g->OW <= g->W;
}

/*
** One plane, any window: y and (if idx) the 1-based flat position of each
** maximum, scanning the window's taps row by row; a larger value or a NaN
** takes over.  float32's 2x2 / stride 2 windows take max2x2_f32 instead,
** with the same order and rule (so the same results); float64 is the
** reference and always comes here.
*/
static void max_plane_f32(const float *x, float *y, int64_t *idx,
                          const ember_pool2d_geom *g) {
  for (int64_t oh = 0; oh < g->OH; oh++) {
    int64_t h0, h1;
    window_taps(oh, g->sh, g->ph, g->kh, g->dh, g->H, &h0, &h1);
    for (int64_t ow = 0; ow < g->OW; ow++) {
      int64_t w0, w1;
      window_taps(ow, g->sw, g->pw, g->kw, g->dw, g->W, &w0, &w1);
      int64_t best = h0 * g->W + w0;
      float m = -INFINITY;
      for (int64_t h = h0; h < h1; h += g->dh)
        for (int64_t w = w0; w < w1; w += g->dw) {
          float v = x[h * g->W + w];
          if (v > m || isnan(v)) { m = v; best = h * g->W + w; }
        }
      y[oh * g->OW + ow] = m;
      if (idx) idx[oh * g->OW + ow] = best + 1;
    }
  }
}

static void max_plane_f64(const double *x, double *y, int64_t *idx,
                          const ember_pool2d_geom *g) {
  for (int64_t oh = 0; oh < g->OH; oh++) {
    int64_t h0, h1;
    window_taps(oh, g->sh, g->ph, g->kh, g->dh, g->H, &h0, &h1);
    for (int64_t ow = 0; ow < g->OW; ow++) {
      int64_t w0, w1;
      window_taps(ow, g->sw, g->pw, g->kw, g->dw, g->W, &w0, &w1);
      int64_t best = h0 * g->W + w0;
      double m = -INFINITY;
      for (int64_t h = h0; h < h1; h += g->dh)
        for (int64_t w = w0; w < w1; w += g->dw) {
          double v = x[h * g->W + w];
          if (v > m || isnan(v)) { m = v; best = h * g->W + w; }
        }
      y[oh * g->OW + ow] = m;
      if (idx) idx[oh * g->OW + ow] = best + 1;
    }
  }
}

int ember_cpu_max_pool2d(ember_tensor *y, ember_tensor *idx,
                         const ember_tensor *x, const ember_pool2d_geom *g) {
  int64_t in = g->H * g->W, out = g->OH * g->OW;
  int f32 = x->dtype == EMBER_FLOAT32, two = is_2x2(g);
  /* the window offsets of a small plane (max2x2_small_f32) */
  int32_t off_small[64];
  int small = f32 && two && g->OW < 8 && out >= 8 && out <= 64;
  if (small)
    for (int64_t e = 0; e < out; e++)
      off_small[e] = (int32_t)(2 * (e / g->OW) * g->W + 2 * (e % g->OW));
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (parallel_worth(g))
  for (int64_t p = 0; p < g->planes; p++) {
    int64_t *ip = idx ? (int64_t *)ember_data(idx) + p * out : NULL;
    if (small)
      max2x2_small_f32((const float *)ember_data(x) + p * in,
                       (float *)ember_data(y) + p * out, ip, off_small, out,
                       g->W);
    else if (f32 && two)
      max2x2_f32((const float *)ember_data(x) + p * in,
                 (float *)ember_data(y) + p * out, ip, g);
    else if (f32)
      max_plane_f32((const float *)ember_data(x) + p * in,
                    (float *)ember_data(y) + p * out, ip, g);
    else
      max_plane_f64((const double *)ember_data(x) + p * in,
                    (double *)ember_data(y) + p * out, ip, g);
  }
  return 0;
}

/* Whether every index lies in [1, in]: a vectorised scan (the backward
   of a training step checks some hundred thousand of them). */
static EMBER_SIMD int indices_in_range(const int64_t *ix, int64_t n, int64_t in) {
  int64_t bad = 0;
  #pragma omp simd reduction(|:bad)
  for (int64_t e = 0; e < n; e++) bad |= (ix[e] < 1) | (ix[e] > in);
  return bad == 0;
}

/* Every index is checked before anything is written, so a bad one leaves
   gx untouched and names the offending value. */
int ember_cpu_max_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                  const ember_tensor *idx,
                                  const ember_pool2d_geom *g) {
  int64_t in = g->H * g->W, out = g->OH * g->OW, n = g->planes * out;
  const int64_t *ix = ember_data(idx);
  if (!indices_in_range(ix, n, in))          /* then find the first bad one */
    for (int64_t e = 0; e < n; e++)
      if (ix[e] < 1 || ix[e] > in)
        return ember_set_error("max_pool2d_backward: index %lld is out of range "
                               "for an input plane of %lld elements (%lldx%lld)",
                               (long long)ix[e], (long long)in,
                               (long long)g->H, (long long)g->W);
  int f32 = gx->dtype == EMBER_FLOAT32;
  size_t es = ember_dtype_size(gx->dtype);
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (g->planes * out >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t p = 0; p < g->planes; p++) {
    const int64_t *ip = ix + p * out;
    memset((char *)ember_data(gx) + p * in * (int64_t)es, 0, (size_t)in * es);
    if (f32) {
      float *d = (float *)ember_data(gx) + p * in;
      const float *s = (const float *)ember_data(gy) + p * out;
      for (int64_t e = 0; e < out; e++) d[ip[e] - 1] += s[e];
    } else {
      double *d = (double *)ember_data(gx) + p * in;
      const double *s = (const double *)ember_data(gy) + p * out;
      for (int64_t e = 0; e < out; e++) d[ip[e] - 1] += s[e];
    }
  }
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Average pooling
** ======================================================================= */

/* The window of output (oh, ow) clipped to the input, and its divisor;
   0 when the window holds no input element (its output is 0). */
typedef struct {
  int64_t h0, h1, w0, w1;
  double div;
} avg_window;

static int avg_window_at(const ember_pool2d_geom *g, int64_t oh, int64_t ow,
                         avg_window *a) {
  int64_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw;
  int64_t h1 = h0 + g->kh, w1 = w0 + g->kw;
  if (h1 > g->H + g->ph) h1 = g->H + g->ph;
  if (w1 > g->W + g->pw) w1 = g->W + g->pw;
  int64_t padded = (h1 - h0) * (w1 - w0);
  a->h0 = h0 < 0 ? 0 : h0;
  a->w0 = w0 < 0 ? 0 : w0;
  a->h1 = h1 > g->H ? g->H : h1;
  a->w1 = w1 > g->W ? g->W : w1;
  if (a->h0 >= a->h1 || a->w0 >= a->w1) return 0;
  a->div = (double)(g->count_include_pad ? padded
                                         : (a->h1 - a->h0) * (a->w1 - a->w0));
  return 1;
}

/* One plane: each output the mean of its window (sums in double). */
static void avg_plane_f32(const float *x, float *y, const ember_pool2d_geom *g) {
  avg_window a;
  for (int64_t oh = 0; oh < g->OH; oh++)
    for (int64_t ow = 0; ow < g->OW; ow++) {
      double s = 0;
      if (avg_window_at(g, oh, ow, &a)) {
        for (int64_t h = a.h0; h < a.h1; h++)
          for (int64_t w = a.w0; w < a.w1; w++) s += x[h * g->W + w];
        s /= a.div;
      }
      y[oh * g->OW + ow] = (float)s;
    }
}

static void avg_plane_f64(const double *x, double *y,
                          const ember_pool2d_geom *g) {
  avg_window a;
  for (int64_t oh = 0; oh < g->OH; oh++)
    for (int64_t ow = 0; ow < g->OW; ow++) {
      double s = 0;
      if (avg_window_at(g, oh, ow, &a)) {
        for (int64_t h = a.h0; h < a.h1; h++)
          for (int64_t w = a.w0; w < a.w1; w++) s += x[h * g->W + w];
        s /= a.div;
      }
      y[oh * g->OW + ow] = s;
    }
}

/* One plane's gradient: each output's share added to its window. */
static void avg_plane_back_f32(float *gx, const float *gy,
                               const ember_pool2d_geom *g) {
  avg_window a;
  for (int64_t oh = 0; oh < g->OH; oh++)
    for (int64_t ow = 0; ow < g->OW; ow++) {
      if (!avg_window_at(g, oh, ow, &a)) continue;
      float d = (float)(gy[oh * g->OW + ow] / a.div);
      for (int64_t h = a.h0; h < a.h1; h++)
        for (int64_t w = a.w0; w < a.w1; w++) gx[h * g->W + w] += d;
    }
}

static void avg_plane_back_f64(double *gx, const double *gy,
                               const ember_pool2d_geom *g) {
  avg_window a;
  for (int64_t oh = 0; oh < g->OH; oh++)
    for (int64_t ow = 0; ow < g->OW; ow++) {
      if (!avg_window_at(g, oh, ow, &a)) continue;
      double d = gy[oh * g->OW + ow] / a.div;
      for (int64_t h = a.h0; h < a.h1; h++)
        for (int64_t w = a.w0; w < a.w1; w++) gx[h * g->W + w] += d;
    }
}

int ember_cpu_avg_pool2d(ember_tensor *y, const ember_tensor *x,
                         const ember_pool2d_geom *g) {
  int64_t in = g->H * g->W, out = g->OH * g->OW;
  int f32 = x->dtype == EMBER_FLOAT32;
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (parallel_worth(g))
  for (int64_t p = 0; p < g->planes; p++) {
    if (f32)
      avg_plane_f32((const float *)ember_data(x) + p * in,
                    (float *)ember_data(y) + p * out, g);
    else
      avg_plane_f64((const double *)ember_data(x) + p * in,
                    (double *)ember_data(y) + p * out, g);
  }
  return 0;
}

int ember_cpu_avg_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                  const ember_pool2d_geom *g) {
  int64_t in = g->H * g->W, out = g->OH * g->OW;
  int f32 = gx->dtype == EMBER_FLOAT32;
  memset(ember_data(gx), 0, (size_t)(g->planes * in) * ember_dtype_size(gx->dtype));
  #pragma omp parallel for num_threads(ember_cpu_threads()) if (parallel_worth(g))
  for (int64_t p = 0; p < g->planes; p++) {
    if (f32)
      avg_plane_back_f32((float *)ember_data(gx) + p * in,
                         (const float *)ember_data(gy) + p * out, g);
    else
      avg_plane_back_f64((double *)ember_data(gx) + p * in,
                         (const double *)ember_data(gy) + p * out, g);
  }
  return 0;
}

/* }====================================================================== */
