/*
** norm.c -- fused layer norm and RMS norm over rows, and their backward
** (CPU).
**
** Contract (core/backend.h, slots layer_norm and layer_norm_backward):
** x, g, y, dx are contiguous [rows, n]; mean and rstd [rows]; w, b, dw,
** db [n]; all of one float dtype.  Per row, in double:
**   layer norm: mean = sum x / n, var = sum (x - mean)^2 / n (two passes,
**               biased, as PyTorch), rstd = 1 / sqrt(var + eps);
**   RMS norm:   rstd = 1 / sqrt(sum x^2 / n + eps), no mean;
**   y = (x - mean) rstd w + b.
** The backward is PyTorch's (aten/src/ATen/native/cpu/layer_norm_kernel.cpp)
** with xhat = (x - mean) rstd and gw = g w:
**   dx = rstd (gw - sum(gw) / n - xhat sum(gw xhat) / n)
** (the sum(gw) term absent for RMS norm), dw = sum over rows of g xhat,
** db = sum over rows of g.
**
** Threads take equal ranges of rows when the work is large.  dw and db are
** summed in double per thread into its own buffer, then the buffers are
** added in thread order: the same thread count gives the same bits.
** The row loops are written once over an `is64` flag that the EMBER_SIMD
** wrappers pass as a constant, so each clone is a plain typed loop.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu.h"

typedef struct {
  void *y, *mean, *rstd, *dx;
  const void *x, *g, *w, *b;
  double *dw, *db;              /* per-thread partial sums, [nt][n] */
  int64_t n;
  double eps;
  int rms;
} norm_args;

static EMBER_ALWAYS_INLINE double ld(const void *p, int64_t i, int is64) {
  return is64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static EMBER_ALWAYS_INLINE void st(void *p, int64_t i, double v, int is64) {
  if (is64) ((double *)p)[i] = v;
  else ((float *)p)[i] = (float)v;
}

/* {======================================================================
** Forward
** ======================================================================= */

/* hw, hb (weight, bias given): constants at each call, as the backward's
   flags */
static EMBER_ALWAYS_INLINE void ln_fwd_rows(const norm_args *a, int64_t lo,
                                            int64_t hi, int is64, int hw,
                                            int hb) {
  const int64_t n = a->n;
  for (int64_t r = lo; r < hi; r++) {
    const int64_t o = r * n;
    double mean = 0, ss = 0;
    if (!a->rms) {
      double s = 0;
      #pragma omp simd reduction(+:s)
      for (int64_t i = 0; i < n; i++) s += ld(a->x, o + i, is64);
      mean = s / (double)n;
    }
    #pragma omp simd reduction(+:ss)
    for (int64_t i = 0; i < n; i++) {
      double d = ld(a->x, o + i, is64) - mean;
      ss += d * d;
    }
    double rstd = 1.0 / sqrt(ss / (double)n + a->eps);
    if (a->mean) st(a->mean, r, mean, is64);
    st(a->rstd, r, rstd, is64);
    /* the saved statistics, rounded to the dtype, are what the backward
       sees; the forward uses them rounded too, as PyTorch's float kernel */
    double m = mean, rs = rstd;
    if (!is64) { m = (float)mean; rs = (float)rstd; }
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      double v = (ld(a->x, o + i, is64) - m) * rs;
      if (hw) v *= ld(a->w, i, is64);
      if (hb) v += ld(a->b, i, is64);
      st(a->y, o + i, v, is64);
    }
  }
}

static EMBER_ALWAYS_INLINE void ln_fwd_any(const norm_args *a, int64_t lo,
                                           int64_t hi, int is64) {
  if (a->w && a->b) ln_fwd_rows(a, lo, hi, is64, 1, 1);
  else if (a->w) ln_fwd_rows(a, lo, hi, is64, 1, 0);
  else if (a->b) ln_fwd_rows(a, lo, hi, is64, 0, 1);
  else ln_fwd_rows(a, lo, hi, is64, 0, 0);
}

static EMBER_SIMD void ln_fwd_f32(const norm_args *a, int64_t lo, int64_t hi) {
  ln_fwd_any(a, lo, hi, 0);
}

static EMBER_SIMD void ln_fwd_f64(const norm_args *a, int64_t lo, int64_t hi) {
  ln_fwd_any(a, lo, hi, 1);
}

/* }====================================================================== */

/* {======================================================================
** Backward
** ======================================================================= */

/* Rows [lo, hi); dw and db point at this thread's own partial sums (both
   or neither: the column sums are cheap beside the row's passes).  hw
   (weight given), want_dx and acc (dw/db wanted) are constants at each
   call, so every combination compiles to its own branch-free loops. */
static EMBER_ALWAYS_INLINE void ln_bwd_rows(const norm_args *a, double *dw,
                                            double *db, int64_t lo,
                                            int64_t hi, int is64, int hw,
                                            int want_dx, int acc) {
  const int64_t n = a->n;
  for (int64_t r = lo; r < hi; r++) {
    const int64_t o = r * n;
    double mean = a->rms ? 0 : ld(a->mean, r, is64), rstd = ld(a->rstd, r, is64);
    double c1 = 0, c2 = 0;
    if (want_dx) {
      double sg = 0, sgx = 0;
      #pragma omp simd reduction(+:sg, sgx)
      for (int64_t i = 0; i < n; i++) {
        double gw = ld(a->g, o + i, is64) * (hw ? ld(a->w, i, is64) : 1.0);
        sg += gw;
        sgx += gw * (ld(a->x, o + i, is64) - mean) * rstd;
      }
      c1 = a->rms ? 0 : sg / (double)n;
      c2 = sgx / (double)n;
    }
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      double gv = ld(a->g, o + i, is64);
      double xh = (ld(a->x, o + i, is64) - mean) * rstd;
      if (want_dx) {
        double gw = gv * (hw ? ld(a->w, i, is64) : 1.0);
        st(a->dx, o + i, rstd * (gw - c1 - xh * c2), is64);
      }
      if (acc) {
        dw[i] += gv * xh;
        db[i] += gv;
      }
    }
  }
}

/* The variant for a's flags. */
static EMBER_ALWAYS_INLINE void ln_bwd_any(const norm_args *a, double *dw,
                                           double *db, int64_t lo, int64_t hi,
                                           int is64) {
  int hw = a->w != NULL, dx = a->dx != NULL, acc = dw != NULL;
  if (dx && acc && hw) ln_bwd_rows(a, dw, db, lo, hi, is64, 1, 1, 1);
  else if (dx && acc) ln_bwd_rows(a, dw, db, lo, hi, is64, 0, 1, 1);
  else if (dx && hw) ln_bwd_rows(a, dw, db, lo, hi, is64, 1, 1, 0);
  else if (dx) ln_bwd_rows(a, dw, db, lo, hi, is64, 0, 1, 0);
  else if (acc) ln_bwd_rows(a, dw, db, lo, hi, is64, 0, 0, 1);
}

static EMBER_SIMD void ln_bwd_f32(const norm_args *a, double *dw, double *db,
                                  int64_t lo, int64_t hi) {
  ln_bwd_any(a, dw, db, lo, hi, 0);
}

static EMBER_SIMD void ln_bwd_f64(const norm_args *a, double *dw, double *db,
                                  int64_t lo, int64_t hi) {
  ln_bwd_any(a, dw, db, lo, hi, 1);
}

/* }====================================================================== */

/* Threads for rows x n elements: one below EMBER_CPU_PARALLEL_MIN, and
   never more than rows. */
static int threads_for(int64_t rows, int64_t n) {
  int nt = ember_cpu_threads();
  if (rows * n < EMBER_CPU_PARALLEL_MIN || nt < 2) return 1;
  return rows < nt ? (int)rows : nt;
}

/* Thread id of k's rows: equal contiguous ranges. */
static void range_of(int id, int k, int64_t rows, int64_t *lo, int64_t *hi) {
  *lo = rows * id / k;
  *hi = rows * (id + 1) / k;
}

int ember_cpu_layer_norm(ember_tensor *y, ember_tensor *mean, ember_tensor *rstd,
                         const ember_tensor *x, const ember_tensor *w,
                         const ember_tensor *b, int64_t n, double eps, int rms) {
  int64_t rows = n ? ember_numel(x) / n : ember_numel(rstd);
  norm_args a = {ember_data(y), mean ? ember_data(mean) : NULL,
                 ember_data(rstd), NULL, ember_data(x), NULL,
                 w ? ember_data(w) : NULL, b ? ember_data(b) : NULL,
                 NULL, NULL, n, eps, rms};
  void (*fn)(const norm_args *, int64_t, int64_t) =
      x->dtype == EMBER_FLOAT64 ? ln_fwd_f64 : ln_fwd_f32;
  int nt = threads_for(rows, n);
#ifdef _OPENMP
  #pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int64_t lo, hi;
    range_of(omp_get_thread_num(), omp_get_num_threads(), rows, &lo, &hi);
    fn(&a, lo, hi);
  }
#else
  (void)nt;
  fn(&a, 0, rows);
#endif
  return 0;
}

int ember_cpu_layer_norm_backward(ember_tensor *dx, ember_tensor *dw,
                                  ember_tensor *db, const ember_tensor *g,
                                  const ember_tensor *x,
                                  const ember_tensor *mean,
                                  const ember_tensor *rstd,
                                  const ember_tensor *w, int64_t n, int rms) {
  int64_t rows = ember_numel(rstd);
  int nt = threads_for(rows, n);
  int is64 = x->dtype == EMBER_FLOAT64;
  double *part = NULL;
  int cols = dw || db ? 2 : 0;     /* dw then db, both summed when either is wanted */
  if (cols && n > 0) {
    part = calloc((size_t)nt * (size_t)cols * (size_t)n, sizeof *part);
    if (!part) return ember_set_error("layer_norm: out of memory");
  }
  norm_args a = {NULL, NULL, NULL, dx ? ember_data(dx) : NULL, ember_data(x),
                 ember_data(g), w ? ember_data(w) : NULL, NULL, NULL, NULL,
                 n, 0, rms};
  a.mean = mean ? ember_data(mean) : NULL;
  a.rstd = ember_data(rstd);
  void (*fn)(const norm_args *, double *, double *, int64_t, int64_t) =
      is64 ? ln_bwd_f64 : ln_bwd_f32;
#ifdef _OPENMP
  #pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int id = omp_get_thread_num(), k = omp_get_num_threads();
    int64_t lo, hi;
    range_of(id, k, rows, &lo, &hi);
    double *mine = part ? part + (size_t)id * cols * n : NULL;
    fn(&a, mine, mine ? mine + n : NULL, lo, hi);
  }
#else
  fn(&a, part, part ? part + n : NULL, 0, rows);
#endif
  /* the threads' partial sums, added in thread order */
  for (int c = 0; c < cols; c++) {
    ember_tensor *dst = c == 0 ? dw : db;
    if (!dst) continue;
    void *d = ember_data(dst);
    for (int64_t i = 0; i < n; i++) {
      double s = 0;
      for (int t = 0; t < nt; t++) s += part[((size_t)t * cols + c) * n + i];
      st(d, i, s, is64);
    }
  }
  free(part);
  return 0;
}
