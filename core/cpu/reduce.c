/*
** reduce.c -- CPU reductions over the last dimension, and softmax.
**
** The core hands us src as [outer..., n] and dst as [outer...].  We iterate
** over the outer elements with the common iterator (dst and src with its
** last dim dropped) and reduce n elements at src's last stride for each.
** Floating sums accumulate in double; integer sums and products wrap in
** 64-bit unsigned arithmetic, as PyTorch's int64 results do.
*/
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "vmath.h"

typedef struct {
  ember_reduce_op op;
  ember_dtype sdt, ddt;
  int64_t n;          /* length of the reduced dim */
  int64_t sstride;    /* its stride, in bytes */
  int correction;
} reduce_ctx;

static inline double load_f(const char *p, ember_dtype dt) {
  switch (dt) {
    case EMBER_FLOAT32: return *(const float *)p;
    case EMBER_FLOAT64: return *(const double *)p;
    case EMBER_INT32: return *(const int32_t *)p;
    case EMBER_INT64: return (double)*(const int64_t *)p;
    default: return *(const uint8_t *)p;
  }
}

static inline int64_t load_i(const char *p, ember_dtype dt) {
  switch (dt) {
    case EMBER_INT32: return *(const int32_t *)p;
    case EMBER_INT64: return *(const int64_t *)p;
    default: return *(const uint8_t *)p;
  }
}

static inline void store_f(char *p, ember_dtype dt, double v) {
  switch (dt) {
    case EMBER_FLOAT32: *(float *)p = (float)v; break;
    case EMBER_FLOAT64: *(double *)p = v; break;
    default: break;   /* the core sends float results to float dsts only */
  }
}

static inline void store_i(char *p, ember_dtype dt, int64_t v) {
  switch (dt) {
    case EMBER_INT32: *(int32_t *)p = (int32_t)v; break;
    case EMBER_INT64: *(int64_t *)p = v; break;
    default: *(uint8_t *)p = (uint8_t)v; break;
  }
}

/* {======================================================================
** Row loops in lanes.  A reduction over a row keeps LANES partial results
** (one AVX-512 register of floats) in a local array, updated by an
** element-wise `omp simd` loop over each block of LANES elements, the
** tail's elements going into the first lanes, and combines them at the end
** in a fixed tree.  Not `omp simd reduction`: GCC fills and combines its
** lanes through stack arrays with scalar loops, which cost more than the
** whole work on a row of 64 (softmax (4096, 64) and the sum over its last
** dim spent most of their time there), and its lane count, so the order of
** the sum, differed between the AVX-512 and AVX2 clones.  Here the order
** is the source's: every clone and thread count gives the same bits.
** ======================================================================= */

#define LANES 16   /* lanes_sum and lanes_max are written for 16 */

/* the tree written out, each level one vector operation */
static EMBER_ALWAYS_INLINE double lanes_sum(double *a) {
  _Pragma("omp simd") for (int j = 0; j < 8; j++) a[j] += a[j + 8];
  _Pragma("omp simd") for (int j = 0; j < 4; j++) a[j] += a[j + 4];
  return (a[0] + a[2]) + (a[1] + a[3]);
}

/* b > a ? b : a: a NaN in b is passed over (softmax needs no NaN test, see
   softmax_lanes_f32), and it vectorises as one compare and blend */
static EMBER_ALWAYS_INLINE float max_f(float a, float b) { return b > a ? b : a; }

static EMBER_ALWAYS_INLINE float lanes_max(float *a) {
  _Pragma("omp simd") for (int j = 0; j < 8; j++) a[j] = max_f(a[j], a[j + 8]);
  _Pragma("omp simd") for (int j = 0; j < 4; j++) a[j] = max_f(a[j], a[j + 4]);
  return max_f(max_f(a[0], a[2]), max_f(a[1], a[3]));
}

/* sum of a contiguous float32 row in double (the order of the additions
   differs from a plain loop's by far less than float32 can show) */
static EMBER_ALWAYS_INLINE double sum_lanes_f32(const float *restrict x, int64_t n) {
  double acc[LANES] = {0};
  int64_t nb = n - n % LANES;
  for (int64_t i = 0; i < nb; i += LANES) {
    _Pragma("omp simd") for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
  }
  for (int64_t i = nb; i < n; i++) acc[i - nb] += x[i];
  return lanes_sum(acc);
}

static EMBER_SIMD double sum_contig_f32(const float *restrict x, int64_t n) {
  return sum_lanes_f32(x, n);
}

/* sums (or means) of `rows` contiguous float32 rows of n, rs bytes apart,
   stored as float32 ds bytes apart: the row loop inside the clone, so a
   short row costs no call */
static EMBER_SIMD void sum_rows_f32(char *d, int64_t ds, const char *s, int64_t rs,
                                    int64_t rows, int64_t n, int mean) {
  for (int64_t r = 0; r < rows; r++) {
    double v = sum_lanes_f32((const float *)(s + r * rs), n);
    if (mean) v = n ? v / (double)n : NAN;
    *(float *)(d + r * ds) = (float)v;
  }
}

/* }====================================================================== */

/* sum of one float32 row, contiguous or not, in double */
static double sum_f32(const char *s, int64_t n, int64_t ss) {
  double acc = 0;
  if (ss == 4) {
    acc = sum_contig_f32((const float *)s, n);
  } else {
    for (int64_t i = 0; i < n; i++) acc += *(const float *)(s + i * ss);
  }
  return acc;
}

static double sum_f(const char *s, int64_t n, int64_t ss, ember_dtype dt) {
  if (dt == EMBER_FLOAT32) return sum_f32(s, n, ss);
  double acc = 0;
  for (int64_t i = 0; i < n; i++) acc += load_f(s + i * ss, dt);
  return acc;
}

/* one reduction of n elements starting at s, result stored at d */
static void reduce_one(const reduce_ctx *c, char *d, const char *s) {
  int64_t n = c->n, ss = c->sstride;
  ember_dtype dt = c->sdt;
  int isf = ember_dtype_is_float(dt);
  switch (c->op) {
    case EMBER_SUM:
      if (isf) { store_f(d, c->ddt, sum_f(s, n, ss, dt)); }
      else {
        uint64_t acc = 0;
        for (int64_t i = 0; i < n; i++) acc += (uint64_t)load_i(s + i * ss, dt);
        store_i(d, c->ddt, (int64_t)acc);
      }
      break;
    case EMBER_MEAN:
      store_f(d, c->ddt, n ? sum_f(s, n, ss, dt) / (double)n : NAN);
      break;
    case EMBER_PROD:
      if (isf) {
        double acc = 1;
        for (int64_t i = 0; i < n; i++) acc *= load_f(s + i * ss, dt);
        store_f(d, c->ddt, acc);
      } else {
        uint64_t acc = 1;
        for (int64_t i = 0; i < n; i++) acc *= (uint64_t)load_i(s + i * ss, dt);
        store_i(d, c->ddt, (int64_t)acc);
      }
      break;
    case EMBER_VAR: case EMBER_STD: {
      double mean = n ? sum_f(s, n, ss, dt) / (double)n : NAN, acc = 0;
      for (int64_t i = 0; i < n; i++) {
        double x = load_f(s + i * ss, dt) - mean;
        acc += x * x;
      }
      double dof = (double)n - c->correction;
      double v = dof > 0 ? acc / dof : NAN;
      store_f(d, c->ddt, c->op == EMBER_STD ? sqrt(v) : v);
      break;
    }
    case EMBER_MAX: case EMBER_MIN: case EMBER_ARGMAX: case EMBER_ARGMIN: {
      /* first extreme wins; a NaN is an extreme that nothing replaces */
      int want_max = c->op == EMBER_MAX || c->op == EMBER_ARGMAX;
      int64_t best = 0;
      if (isf) {
        double bv = load_f(s, dt);
        for (int64_t i = 1; i < n && bv == bv; i++) {
          double x = load_f(s + i * ss, dt);
          if (x != x || (want_max ? x > bv : x < bv)) { bv = x; best = i; }
        }
        if (c->op == EMBER_MAX || c->op == EMBER_MIN) store_f(d, c->ddt, bv);
      } else {
        int64_t bv = load_i(s, dt);
        for (int64_t i = 1; i < n; i++) {
          int64_t x = load_i(s + i * ss, dt);
          if (want_max ? x > bv : x < bv) { bv = x; best = i; }
        }
        if (c->op == EMBER_MAX || c->op == EMBER_MIN) store_i(d, c->ddt, bv);
      }
      if (c->op == EMBER_ARGMAX || c->op == EMBER_ARGMIN)
        *(int64_t *)d = best + 1;            /* 1-based, as every index */
      break;
    }
    default: break;
  }
}

static void reduce_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  const reduce_ctx *c = ctx;
  if ((c->op == EMBER_SUM || c->op == EMBER_MEAN) && c->sdt == EMBER_FLOAT32 &&
      c->ddt == EMBER_FLOAT32 && c->sstride == 4) {
    sum_rows_f32(p[0], st[0], p[1], st[1], n, c->n, c->op == EMBER_MEAN);
    return;
  }
  for (int64_t i = 0; i < n; i++) reduce_one(c, p[0] + i * st[0], p[1] + i * st[1]);
}

/* A view of src without its last dimension: the outer elements. */
static ember_tensor outer_view(const ember_tensor *src) {
  ember_tensor o = *src;
  o.ndim = src->ndim - 1;
  return o;
}

int ember_cpu_reduce(ember_reduce_op op, ember_tensor *dst,
                     const ember_tensor *src, int correction) {
  reduce_ctx c = {op, src->dtype, dst->dtype, src->shape[src->ndim - 1],
                  src->strides[src->ndim - 1] * (int64_t)ember_dtype_size(src->dtype),
                  correction};
  ember_tensor outer = outer_view(src);
  const ember_tensor *ops[2] = {dst, &outer};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 2, ops);
  ember_cpu_iter_run_work(&it, reduce_row, &c, c.n);
  return 0;
}

/* {======================================================================
** softmax and log_softmax over the last dim (float32/float64)
** ======================================================================= */

typedef struct { int64_t n, ss, ds; int log; ember_dtype dt; } softmax_ctx;

/* One row of n elements, ss and ds bytes apart: subtract the max for
   stability, then normalise; the sum of the exponentials in double.  A
   NaN needs no test: whatever the max, its exponential is NaN, so the sum,
   hence every result of its row, is NaN (an inf likewise: inf - inf).  A
   contiguous row goes through softmax_lanes_f32 (the lanes of "Row loops
   in lanes" above), rows of a call inside one clone. */
static EMBER_ALWAYS_INLINE void softmax_lanes_f32(float *restrict d,
                                                  const float *restrict x,
                                                  int64_t n, int log_) {
  int64_t nb = n - n % LANES;
  float ml[LANES];
  for (int j = 0; j < LANES; j++) ml[j] = -INFINITY;
  for (int64_t i = 0; i < nb; i += LANES) {
    _Pragma("omp simd") for (int j = 0; j < LANES; j++) ml[j] = max_f(ml[j], x[i + j]);
  }
  for (int64_t i = nb; i < n; i++) ml[i - nb] = max_f(ml[i - nb], x[i]);
  float mx = lanes_max(ml);
  double sl[LANES] = {0};
  if (log_) {
    for (int64_t i = 0; i < nb; i += LANES) {
      _Pragma("omp simd") for (int j = 0; j < LANES; j++) sl[j] += vm_expf(x[i + j] - mx);
    }
    for (int64_t i = nb; i < n; i++) sl[i - nb] += vm_expf(x[i] - mx);
    float lse = (float)log(lanes_sum(sl));
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = x[i] - mx - lse;
  } else {
    /* the exponentials stored, then scaled: one exp an element */
    for (int64_t i = 0; i < nb; i += LANES) {
      _Pragma("omp simd") for (int j = 0; j < LANES; j++) {
        float e = vm_expf(x[i + j] - mx);
        d[i + j] = e;
        sl[j] += e;
      }
    }
    for (int64_t i = nb; i < n; i++) {
      float e = vm_expf(x[i] - mx);
      d[i] = e;
      sl[i - nb] += e;
    }
    float inv = (float)(1.0 / lanes_sum(sl));
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] *= inv;
  }
}

/* `rows` contiguous float32 rows of n, ds and xs bytes apart */
static EMBER_SIMD void softmax_rows_f32(char *d, int64_t ds, const char *x, int64_t xs,
                                        int64_t rows, int64_t n, int log_) {
  for (int64_t r = 0; r < rows; r++)
    softmax_lanes_f32((float *)(d + r * ds), (const float *)(x + r * xs), n, log_);
}

static void softmax_row_f32(char *d, const char *s, int64_t n, int64_t ss,
                            int64_t ds, int log_) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    float x = *(const float *)(s + i * ss);
    if (x > mx || x != x) mx = x;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += vm_expf(*(const float *)(s + i * ss) - mx);
  if (log_) {
    float lse = (float)log(sum);
    for (int64_t i = 0; i < n; i++)
      *(float *)(d + i * ds) = *(const float *)(s + i * ss) - mx - lse;
  } else {
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
      *(float *)(d + i * ds) = vm_expf(*(const float *)(s + i * ss) - mx) * inv;
  }
}

static void softmax_row_f64(char *d, const char *s, int64_t n, int64_t ss,
                            int64_t ds, int log_) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    double x = *(const double *)(s + i * ss);
    if (x > mx || x != x) mx = x;
  }
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += exp(*(const double *)(s + i * ss) - mx);
  if (log_) {
    double lse = log(sum);
    for (int64_t i = 0; i < n; i++)
      *(double *)(d + i * ds) = *(const double *)(s + i * ss) - mx - lse;
  } else {
    double inv = 1.0 / sum;
    for (int64_t i = 0; i < n; i++)
      *(double *)(d + i * ds) = exp(*(const double *)(s + i * ss) - mx) * inv;
  }
}

static void softmax_row(char **p, const int64_t *st, int64_t cnt, void *ctx) {
  const softmax_ctx *c = ctx;
  if (c->dt == EMBER_FLOAT32 && c->ss == 4 && c->ds == 4) {
    softmax_rows_f32(p[0], st[0], p[1], st[1], cnt, c->n, c->log);
    return;
  }
  for (int64_t r = 0; r < cnt; r++) {
    char *d = p[0] + r * st[0];
    const char *s = p[1] + r * st[1];
    if (c->dt == EMBER_FLOAT32) softmax_row_f32(d, s, c->n, c->ss, c->ds, c->log);
    else softmax_row_f64(d, s, c->n, c->ss, c->ds, c->log);
  }
}

int ember_cpu_softmax(ember_tensor *dst, const ember_tensor *src, int log) {
  int last = src->ndim - 1;
  size_t es = ember_dtype_size(src->dtype);
  softmax_ctx c = {src->shape[last], src->strides[last] * (int64_t)es,
                   dst->strides[last] * (int64_t)es, log, src->dtype};
  ember_tensor od = outer_view(dst), os = outer_view(src);
  const ember_tensor *ops[2] = {&od, &os};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 2, ops);
  ember_cpu_iter_run_work(&it, softmax_row, &c, c.n);
  return 0;
}

/* The backward of one row: s = sum g y (softmax) or sum g (log_softmax)
   in double, then dx = y (g - s) or g - exp(y) s.  Contiguous float32
   rows go in lanes; the others (strided, float64) load through doubles. */
static EMBER_ALWAYS_INLINE void softmax_bwd_lanes_f32(float *restrict d,
                                                      const float *restrict g,
                                                      const float *restrict y,
                                                      int64_t n, int log_) {
  int64_t nb = n - n % LANES;
  double sl[LANES] = {0};
  /* log_ tested outside the loops: a product in one arm of a ?: inside
     one stops its vectorisation (vmath.h's vm_select says why) */
  if (log_) {
    for (int64_t i = 0; i < nb; i += LANES) {
      _Pragma("omp simd") for (int j = 0; j < LANES; j++) sl[j] += g[i + j];
    }
    for (int64_t i = nb; i < n; i++) sl[i - nb] += g[i];
  } else {
    for (int64_t i = 0; i < nb; i += LANES) {
      _Pragma("omp simd") for (int j = 0; j < LANES; j++) sl[j] += (double)g[i + j] * y[i + j];
    }
    for (int64_t i = nb; i < n; i++) sl[i - nb] += (double)g[i] * y[i];
  }
  float sf = (float)lanes_sum(sl);
  if (log_) {
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] - vm_expf(y[i]) * sf;
  } else {
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = y[i] * (g[i] - sf);
  }
}

static EMBER_SIMD void softmax_bwd_rows_f32(char *d, int64_t ds, const char *g, int64_t gs,
                                            const char *y, int64_t ys, int64_t rows,
                                            int64_t n, int log_) {
  for (int64_t r = 0; r < rows; r++)
    softmax_bwd_lanes_f32((float *)(d + r * ds), (const float *)(g + r * gs),
                          (const float *)(y + r * ys), n, log_);
}

static void softmax_bwd_row_any(char *d, const char *g, const char *y,
                                const softmax_ctx *c, int64_t gs, int64_t ys) {
  int64_t n = c->n, ds = c->ds;
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    double gv = load_f(g + i * gs, c->dt);
    s += c->log ? gv : gv * load_f(y + i * ys, c->dt);
  }
  if (c->dt == EMBER_FLOAT32) s = (float)s;   /* as the contiguous rows */
  for (int64_t i = 0; i < n; i++) {
    double gv = load_f(g + i * gs, c->dt), yv = load_f(y + i * ys, c->dt);
    double e = c->dt == EMBER_FLOAT32 ? (double)vm_expf((float)yv) : exp(yv);
    store_f(d + i * ds, c->dt, c->log ? gv - e * s : yv * (gv - s));
  }
}

typedef struct { softmax_ctx c; int64_t gs, ys; } softmax_bwd_ctx;

static void softmax_bwd_row(char **p, const int64_t *st, int64_t cnt, void *ctx) {
  const softmax_bwd_ctx *b = ctx;
  const softmax_ctx *c = &b->c;
  if (c->dt == EMBER_FLOAT32 && c->ds == 4 && b->gs == 4 && b->ys == 4) {
    softmax_bwd_rows_f32(p[0], st[0], p[1], st[1], p[2], st[2], cnt, c->n, c->log);
    return;
  }
  for (int64_t r = 0; r < cnt; r++)
    softmax_bwd_row_any(p[0] + r * st[0], p[1] + r * st[1], p[2] + r * st[2], c, b->gs, b->ys);
}

int ember_cpu_softmax_backward(ember_tensor *dx, const ember_tensor *g,
                               const ember_tensor *y, int log) {
  int last = y->ndim - 1;
  int64_t es = (int64_t)ember_dtype_size(y->dtype);
  softmax_bwd_ctx b = {{y->shape[last], 0, dx->strides[last] * es, log, y->dtype},
                       g->strides[last] * es, y->strides[last] * es};
  ember_tensor od = outer_view(dx), og = outer_view(g), oy = outer_view(y);
  const ember_tensor *ops[3] = {&od, &og, &oy};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 3, ops);
  ember_cpu_iter_run_work(&it, softmax_bwd_row, &b, b.c.n);
  return 0;
}

/* }====================================================================== */
