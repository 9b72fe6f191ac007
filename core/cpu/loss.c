/*
** loss.c -- fused cross entropy over rows of logits, and its backward
** (CPU).
**
** Contract (core/backend.h, slots cross_entropy and
** cross_entropy_backward): x [N, C] contiguous float32/float64, t [N]
** contiguous int64 holding 1..C or the ignore value (the front door has
** checked them), w [C] or NULL.  With s the label smoothing, W = sum w
** (C without w), wt = w[t] (1 without w; 0 and keep = 0 on an ignored row):
**   lse  = max + log sum exp(x - max)   (the sum in double; a NaN wins max)
**   loss = (1 - s) wt (lse - x[t]) + s / C keep (W lse - sum_c w_c x_c)
**   dx_c = gs ((1 - s) wt (p_c - [c = t]) + s / C keep (W p_c - w_c)),
**          p_c = exp(x_c - lse)
** which is log_softmax + nll (+ the smoothing term) of
** lua/ember/nn/loss_functional.lua in one pass per row forward and one
** backward, without the [N, C] log-probabilities in between.  Rows are
** independent: threads take them in static ranges when the work is large.
*/
#include <math.h>

#include "cpu.h"
#include "vmath.h"

typedef struct {
  const void *x, *w, *gs, *lse_in;
  const int64_t *t;
  void *loss, *wt, *lse, *dx;
  int64_t c, ignore;
  double s;
} ce_args;

static EMBER_ALWAYS_INLINE double ld(const void *p, int64_t i, int is64) {
  return is64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static EMBER_ALWAYS_INLINE void st(void *p, int64_t i, double v, int is64) {
  if (is64) ((double *)p)[i] = v;
  else ((float *)p)[i] = (float)v;
}

/* exp in the dtype's precision (float32 rows use vm_expf, as softmax) */
static EMBER_ALWAYS_INLINE double ex(double v, int is64) {
  return is64 ? exp(v) : (double)vm_expf((float)v);
}

/* The target's weight and whether the row counts (0 when ignored). */
static EMBER_ALWAYS_INLINE double target_weight(const ce_args *a, int64_t t,
                                                int is64) {
  if (t == a->ignore) return 0;
  return a->w ? ld(a->w, t - 1, is64) : 1.0;
}

/* W: the sum of the class weights (C without them). */
static double weight_total(const ce_args *a, int is64) {
  if (!a->w) return (double)a->c;
  double s = 0;
  for (int64_t k = 0; k < a->c; k++) s += ld(a->w, k, is64);
  return s;
}

static EMBER_ALWAYS_INLINE void ce_fwd_rows(const ce_args *a, double wsum,
                                            int64_t lo, int64_t hi, int is64) {
  const int64_t c = a->c;
  /* the pointers in locals: read through the struct in the loops, GCC
     does not vectorise them */
  const void *x = a->x;
  for (int64_t r = lo; r < hi; r++) {
    const int64_t o = r * c;
    double mx = -INFINITY;
    int nan = 0;
    #pragma omp simd reduction(max:mx) reduction(|:nan)
    for (int64_t k = 0; k < c; k++) {
      double v = ld(x, o + k, is64);
      mx = v > mx ? v : mx;
      nan |= v != v;
    }
    if (nan) mx = NAN;
    double sum = 0;
    #pragma omp simd reduction(+:sum)
    for (int64_t k = 0; k < c; k++) sum += ex(ld(x, o + k, is64) - mx, is64);
    double lse = mx + log(sum);
    int64_t t = a->t[r];
    int keep = t != a->ignore;
    double wt = target_weight(a, t, is64);
    double loss = keep ? wt * (lse - ld(x, o + t - 1, is64)) : 0;
    if (a->s > 0) {
      double sw = 0;
      if (keep) {
        #pragma omp simd reduction(+:sw)
        for (int64_t k = 0; k < c; k++)
          sw += ld(a->x, o + k, is64) * (a->w ? ld(a->w, k, is64) : 1.0);
      }
      double smooth = keep ? wsum * lse - sw : 0;
      loss = (1 - a->s) * loss + a->s / (double)c * smooth;
    }
    st(a->loss, r, loss, is64);
    st(a->wt, r, wt, is64);
    st(a->lse, r, lse, is64);
  }
}

static EMBER_SIMD void ce_fwd_f32(const ce_args *a, double wsum, int64_t lo,
                                  int64_t hi) {
  ce_fwd_rows(a, wsum, lo, hi, 0);
}

static EMBER_SIMD void ce_fwd_f64(const ce_args *a, double wsum, int64_t lo,
                                  int64_t hi) {
  ce_fwd_rows(a, wsum, lo, hi, 1);
}

static EMBER_ALWAYS_INLINE void ce_bwd_rows(const ce_args *a, double wsum,
                                            int64_t lo, int64_t hi, int is64) {
  const int64_t c = a->c;
  const double s = a->s, sc = a->s / (double)c;
  const void *x = a->x, *w = a->w;
  void *dx = a->dx;
  for (int64_t r = lo; r < hi; r++) {
    const int64_t o = r * c;
    int64_t t = a->t[r];
    double keep = t != a->ignore, wt = target_weight(a, t, is64);
    double gs = ld(a->gs, r, is64), lse = ld(a->lse_in, r, is64);
    double hard = gs * (1 - s) * wt, soft = gs * sc * keep;
    if (s > 0) {
      #pragma omp simd
      for (int64_t k = 0; k < c; k++) {
        double p = ex(ld(x, o + k, is64) - lse, is64);
        st(dx, o + k, hard * p + soft * (wsum * p - (w ? ld(w, k, is64) : 1.0)), is64);
      }
    } else {
      #pragma omp simd
      for (int64_t k = 0; k < c; k++)
        st(dx, o + k, hard * ex(ld(x, o + k, is64) - lse, is64), is64);
    }
    if (keep) {   /* the one-hot's part, on the target alone */
      double d = ld(a->dx, o + t - 1, is64) - hard;
      st(a->dx, o + t - 1, d, is64);
    }
  }
}

static EMBER_SIMD void ce_bwd_f32(const ce_args *a, double wsum, int64_t lo,
                                  int64_t hi) {
  ce_bwd_rows(a, wsum, lo, hi, 0);
}

static EMBER_SIMD void ce_bwd_f64(const ce_args *a, double wsum, int64_t lo,
                                  int64_t hi) {
  ce_bwd_rows(a, wsum, lo, hi, 1);
}

typedef void (*ce_range_fn)(const ce_args *a, double wsum, int64_t lo,
                            int64_t hi);

/* fn over the rows [0, n), in static ranges on threads when large */
static void run_rows(ce_range_fn fn, const ce_args *a, double wsum, int64_t n) {
  int nt = ember_cpu_threads();
  if (n * a->c < EMBER_CPU_PARALLEL_MIN || nt < 2 || n < 2) {
    fn(a, wsum, 0, n);
    return;
  }
  #pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < n; r++) fn(a, wsum, r, r + 1);
}

int ember_cpu_cross_entropy(ember_tensor *loss, ember_tensor *wt,
                            ember_tensor *lse, const ember_tensor *x,
                            const ember_tensor *t, const ember_tensor *w,
                            int64_t ignore, double smoothing) {
  int is64 = x->dtype == EMBER_FLOAT64;
  ce_args a = {ember_data(x), w ? ember_data(w) : NULL, NULL, NULL,
               ember_data(t), ember_data(loss), ember_data(wt), ember_data(lse),
               NULL, x->shape[1], ignore, smoothing};
  run_rows(is64 ? ce_fwd_f64 : ce_fwd_f32, &a, weight_total(&a, is64),
           x->shape[0]);
  return 0;
}

int ember_cpu_cross_entropy_backward(ember_tensor *dx, const ember_tensor *gs,
                                     const ember_tensor *x,
                                     const ember_tensor *lse,
                                     const ember_tensor *t,
                                     const ember_tensor *w, int64_t ignore,
                                     double smoothing) {
  int is64 = x->dtype == EMBER_FLOAT64;
  ce_args a = {ember_data(x), w ? ember_data(w) : NULL, ember_data(gs),
               ember_data(lse), ember_data(t), NULL, NULL, NULL,
               ember_data(dx), x->shape[1], ignore, smoothing};
  run_rows(is64 ? ce_bwd_f64 : ce_bwd_f32, &a, weight_total(&a, is64),
           x->shape[0]);
  return 0;
}
