/*
** optim.c -- CPU kernels of the fused optimizer steps.
**
** Contract (core/optim.c guarantees it): p, g and every state tensor are
** contiguous with the same numel and float dtype, and no two of them share
** memory; a NULL state tensor means its option is off; hp holds PyTorch's
** scalars for this step.  Each kernel is one pass over the elements: every
** element is loaded, updated in double (so float32 parameters get
** correctly rounded updates, not a chain of float32 roundings) and stored
** back.  The per-element math is a static inline function on doubles; the
** two dtypes only differ in the loop that loads and stores: float32's is
** specialised per option set (below), float64's is one plain loop that
** reads the options as it goes and serves as the reference.
**
** Speed.  The float32 loops vectorise (AVX-512 handles 8 doubles at a
** time): each kernel is a range function [lo, hi) carrying EMBER_SIMD, which a
** parallel region calls on each thread's slice (OpenMP's outlined bodies
** are not cloned, see cpu.h).  Inside, the loop (an always-inlined helper
** called with constant options) is chosen once per call
** from which state tensors exist, so no loop body loads or stores
** conditionally; an option that is a scalar (maximize, weight decay,
** nesterov) becomes a select between two computed values, which costs a
** blend and changes no bit.  The common configuration of each optimizer
** (no weight decay, not maximizing, ...) has a loop with those selects
** compiled out.  sqrt vectorises because the build passes -fno-math-errno,
** and -std=c11 keeps a*b+c unfused, so every clone and every loop gives
** the bits of the scalar code: spec/optim/fused_spec.lua checks each loop
** against the same arithmetic done in Lua, bit for bit.  The vector loop
** is bound by the double divides (bench/NOTES.md has the figures).
**
** The order of the operations follows torch.optim's single-tensor code
** (torch/optim/sgd.py, adam.py, adamw.py, rmsprop.py, adagrad.py).
*/
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu.h"

/* The options that choose between two values, as masks for pick(): all
   ones when on, 0 when off. */
typedef struct { uint64_t maximize, wd, first, nesterov; } optim_flags;

/* What one step reads and writes: the parameter, its gradient and up to
   three state tensors (NULL: option off), as raw element pointers of the
   parameter's dtype; the step's scalars by value (a copy, so that a store
   through a double pointer cannot be feared to change them) and its
   flags. */
typedef struct {
  void *p, *s1, *s2, *s3;
  const void *g;
  ember_optim_hp hp;
  optim_flags f;
} optim_args;

static uint64_t mask_of(int on) { return on ? ~(uint64_t)0 : 0; }

static optim_flags flags_of(const ember_optim_hp *hp) {
  optim_flags f = {mask_of(hp->maximize), mask_of(hp->weight_decay != 0),
                   mask_of(hp->first_step), mask_of(hp->nesterov)};
  return f;
}

/* The common case: no weight decay and not maximizing.  Its loops pass
   constant 0 masks, so the compiler drops the work they select out. */
static inline int flags_plain(const optim_flags *f) {
  return !f->maximize && !f->wd;
}

/* `mask ? a : b`, bit for bit, written with integer operations: GCC does
   not if-convert a select on a loop-invariant condition for AVX2 or SSE
   (the loop would not vectorise), but it vectorises these. */
static inline double pick(uint64_t mask, double a, double b) {
  uint64_t x, y;
  memcpy(&x, &a, sizeof x);
  memcpy(&y, &b, sizeof y);
  x = (x & mask) | (y & ~mask);
  double r;
  memcpy(&r, &x, sizeof r);
  return r;
}

/* A kernel on the elements [lo, hi). */
typedef void (*optim_range_fn)(const optim_args *a, int64_t lo, int64_t hi);

/* Run fn over [0, n): on this thread when n is small, else in equal
   slices, one per thread, each a multiple of 16 elements (whole vectors
   and whole cache lines, so no two threads write to one line). */
static void run_range(optim_range_fn fn, const optim_args *a, int64_t n) {
  int nt = ember_cpu_threads();
  if (n < EMBER_CPU_PARALLEL_MIN || nt < 2) {
    fn(a, 0, n);
    return;
  }
#ifdef _OPENMP
  #pragma omp parallel num_threads(nt)
  {
    int id = omp_get_thread_num(), k = omp_get_num_threads();
    int64_t slice = ((n + k - 1) / k + 15) / 16 * 16;
    int64_t lo = id * slice, hi = lo + slice < n ? lo + slice : n;
    if (lo < hi) fn(a, lo, hi);
  }
#else
  fn(a, 0, n);
#endif
}

/* The gradient as the update sees it: negated to maximize, plus the L2
   penalty `weight_decay * p` (Adam's coupled decay, SGD, RMSprop,
   Adagrad; AdamW passes weight_decay 0 and decays p itself).  The penalty
   is added only when weight_decay != 0, which keeps the bits of a -0
   gradient and of an infinite p. */
static inline double grad_of(double g, double p, const ember_optim_hp *hp,
                             const optim_flags *f) {
  double d = pick(f->maximize, -g, g);
  return pick(f->wd, d + hp->weight_decay * p, d);
}

/* {======================================================================
** SGD: buf = momentum * buf + (1 - dampening) * d (d itself the first
** time); the update is buf, or d + momentum * buf with nesterov.
** ======================================================================= */

/* has_buf is a constant at every call. */
static inline double sgd_elem(double p, double g, double *buf, int has_buf,
                              const ember_optim_hp *hp, const optim_flags *f) {
  double d = grad_of(g, p, hp, f);
  if (has_buf) {
    double b = pick(f->first, d,
                    hp->momentum * *buf + (1 - hp->dampening) * d);
    *buf = b;
    d = pick(f->nesterov, d + hp->momentum * b, b);
  }
  return p - hp->lr * d;
}

/* One loop of sgd_f32, for constant has_buf and flags f: always inlined,
   so each call site compiles to a loop with its own options folded in. */
static EMBER_ALWAYS_INLINE void sgd_loop_f32(float *restrict p,
                                             float *restrict buf,
                                             const float *restrict g,
                                             int64_t lo, int64_t hi,
                                             int has_buf,
                                             const ember_optim_hp *h,
                                             const optim_flags *f) {
  #pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
    double b = has_buf ? (double)buf[i] : 0;
    p[i] = (float)sgd_elem(p[i], g[i], &b, has_buf, h, f);
    if (has_buf) buf[i] = (float)b;
  }
}

static EMBER_SIMD void sgd_f32(const optim_args *a, int64_t lo, int64_t hi) {
  const ember_optim_hp h = a->hp;
  const optim_flags f = a->f, plain = {0, 0, f.first, f.nesterov};
  float *p = a->p, *buf = a->s1;
  const float *g = a->g;
  if (!buf && flags_plain(&f)) sgd_loop_f32(p, NULL, g, lo, hi, 0, &h, &plain);
  else if (!buf) sgd_loop_f32(p, NULL, g, lo, hi, 0, &h, &f);
  else if (flags_plain(&f)) sgd_loop_f32(p, buf, g, lo, hi, 1, &h, &plain);
  else sgd_loop_f32(p, buf, g, lo, hi, 1, &h, &f);
}

/* float64: one loop, the options read as they come */
static void sgd_f64(const optim_args *a, int64_t lo, int64_t hi) {
  double *restrict p = a->p, *restrict buf = a->s1;
  const double *restrict g = a->g;
  for (int64_t i = lo; i < hi; i++) {
    double b = buf ? buf[i] : 0;
    p[i] = sgd_elem(p[i], g[i], &b, buf != NULL, &a->hp, &a->f);
    if (buf) buf[i] = b;
  }
}

int ember_cpu_sgd_step(ember_tensor *p, const ember_tensor *g,
                       ember_tensor *buf, const ember_optim_hp *hp) {
  optim_args a = {ember_data(p), buf ? ember_data(buf) : NULL, NULL, NULL,
                  ember_data(g), *hp, flags_of(hp)};
  run_range(p->dtype == EMBER_FLOAT32 ? sgd_f32 : sgd_f64, &a, ember_numel(p));
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Adam / AdamW: p *= decay (AdamW); m = beta1 m + (1 - beta1) d;
** v = beta2 v + (1 - beta2) d^2; vmax = max(vmax, v) with amsgrad;
** p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
** ======================================================================= */

typedef struct { double p, m, v, vmax; } adam_state;

/* ams is a constant at every call.  p *= decay is done whatever decay is:
   multiplying by 1 changes no bit. */
static inline void adam_elem(adam_state *s, double g, int ams,
                             const ember_optim_hp *hp, const optim_flags *f) {
  double d = grad_of(g, s->p, hp, f);
  s->p *= hp->decay;
  s->m = hp->beta1 * s->m + (1 - hp->beta1) * d;
  s->v = hp->beta2 * s->v + (1 - hp->beta2) * d * d;
  double v = s->v;
  if (ams) {
    s->vmax = v > s->vmax ? v : s->vmax;   /* keeps vmax when v is NaN */
    v = s->vmax;
  }
  s->p -= hp->lr * (s->m / (sqrt(v) / hp->bc2_sqrt + hp->eps));
}

/* One loop of adam_f32, for constant ams and flags f (as sgd_loop_f32). */
static EMBER_ALWAYS_INLINE void adam_loop_f32(float *restrict p,
                                              float *restrict m,
                                              float *restrict v,
                                              float *restrict vmax,
                                              const float *restrict g,
                                              int64_t lo, int64_t hi, int ams,
                                              const ember_optim_hp *h,
                                              const optim_flags *f) {
  #pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
    adam_state s = {p[i], m[i], v[i], ams ? (double)vmax[i] : 0};
    adam_elem(&s, g[i], ams, h, f);
    p[i] = (float)s.p; m[i] = (float)s.m; v[i] = (float)s.v;
    if (ams) vmax[i] = (float)s.vmax;
  }
}

static EMBER_SIMD void adam_f32(const optim_args *a, int64_t lo, int64_t hi) {
  const ember_optim_hp h = a->hp;
  const optim_flags f = a->f, plain = {0, 0, 0, 0};
  float *p = a->p, *m = a->s1, *v = a->s2, *vmax = a->s3;
  const float *g = a->g;
  if (!vmax && flags_plain(&f)) adam_loop_f32(p, m, v, NULL, g, lo, hi, 0, &h, &plain);
  else if (!vmax) adam_loop_f32(p, m, v, NULL, g, lo, hi, 0, &h, &f);
  else adam_loop_f32(p, m, v, vmax, g, lo, hi, 1, &h, &f);
}

static void adam_f64(const optim_args *a, int64_t lo, int64_t hi) {
  double *restrict p = a->p, *restrict m = a->s1, *restrict v = a->s2;
  double *restrict vmax = a->s3;
  const double *restrict g = a->g;
  for (int64_t i = lo; i < hi; i++) {
    adam_state s = {p[i], m[i], v[i], vmax ? vmax[i] : 0};
    adam_elem(&s, g[i], vmax != NULL, &a->hp, &a->f);
    p[i] = s.p; m[i] = s.m; v[i] = s.v;
    if (vmax) vmax[i] = s.vmax;
  }
}

int ember_cpu_adam_step(ember_tensor *p, const ember_tensor *g,
                        ember_tensor *m, ember_tensor *v, ember_tensor *vmax,
                        const ember_optim_hp *hp) {
  optim_args a = {ember_data(p), ember_data(m), ember_data(v),
                  vmax ? ember_data(vmax) : NULL, ember_data(g), *hp,
                  flags_of(hp)};
  run_range(p->dtype == EMBER_FLOAT32 ? adam_f32 : adam_f64, &a,
            ember_numel(p));
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** RMSprop: sq = alpha sq + (1 - alpha) d^2; centered: ga = alpha ga +
** (1 - alpha) d and avg = sqrt(sq - ga^2), else sqrt(sq); avg += eps;
** with momentum buf = momentum buf + d / avg and p -= lr buf, else
** p -= lr d / avg.
** ======================================================================= */

typedef struct { double p, sq, buf, ga; } rms_state;

/* has_buf and centered are constants at every call. */
static inline void rms_elem(rms_state *s, double g, int has_buf, int centered,
                            const ember_optim_hp *hp, const optim_flags *f) {
  double d = grad_of(g, s->p, hp, f);
  s->sq = hp->alpha * s->sq + (1 - hp->alpha) * d * d;
  double avg;
  if (centered) {
    s->ga = hp->alpha * s->ga + (1 - hp->alpha) * d;
    avg = sqrt(s->sq - s->ga * s->ga);
  } else {
    avg = sqrt(s->sq);
  }
  avg += hp->eps;
  if (has_buf) {
    s->buf = hp->momentum * s->buf + d / avg;
    s->p -= hp->lr * s->buf;
  } else {
    s->p -= hp->lr * (d / avg);
  }
}

/* One loop of rms_f32, for constant has_buf, centered and flags f (as
   sgd_loop_f32). */
static EMBER_ALWAYS_INLINE void rms_loop_f32(float *restrict p,
                                             float *restrict sq,
                                             float *restrict buf,
                                             float *restrict gavg,
                                             const float *restrict g,
                                             int64_t lo, int64_t hi,
                                             int has_buf, int centered,
                                             const ember_optim_hp *h,
                                             const optim_flags *f) {
  #pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
    rms_state s = {p[i], sq[i], has_buf ? (double)buf[i] : 0,
                   centered ? (double)gavg[i] : 0};
    rms_elem(&s, g[i], has_buf, centered, h, f);
    p[i] = (float)s.p; sq[i] = (float)s.sq;
    if (has_buf) buf[i] = (float)s.buf;
    if (centered) gavg[i] = (float)s.ga;
  }
}

static EMBER_SIMD void rms_f32(const optim_args *a, int64_t lo, int64_t hi) {
  const ember_optim_hp h = a->hp;
  const optim_flags f = a->f, plain = {0, 0, 0, 0};
  float *p = a->p, *sq = a->s1, *buf = a->s2, *gavg = a->s3;
  const float *g = a->g;
  if (!buf && !gavg && flags_plain(&f))
    rms_loop_f32(p, sq, NULL, NULL, g, lo, hi, 0, 0, &h, &plain);
  else if (!buf && !gavg) rms_loop_f32(p, sq, NULL, NULL, g, lo, hi, 0, 0, &h, &f);
  else if (!gavg) rms_loop_f32(p, sq, buf, NULL, g, lo, hi, 1, 0, &h, &f);
  else if (!buf) rms_loop_f32(p, sq, NULL, gavg, g, lo, hi, 0, 1, &h, &f);
  else rms_loop_f32(p, sq, buf, gavg, g, lo, hi, 1, 1, &h, &f);
}

static void rms_f64(const optim_args *a, int64_t lo, int64_t hi) {
  double *restrict p = a->p, *restrict sq = a->s1, *restrict buf = a->s2;
  double *restrict gavg = a->s3;
  const double *restrict g = a->g;
  for (int64_t i = lo; i < hi; i++) {
    rms_state s = {p[i], sq[i], buf ? buf[i] : 0, gavg ? gavg[i] : 0};
    rms_elem(&s, g[i], buf != NULL, gavg != NULL, &a->hp, &a->f);
    p[i] = s.p; sq[i] = s.sq;
    if (buf) buf[i] = s.buf;
    if (gavg) gavg[i] = s.ga;
  }
}

int ember_cpu_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                           ember_tensor *sq, ember_tensor *buf,
                           ember_tensor *gavg, const ember_optim_hp *hp) {
  optim_args a = {ember_data(p), ember_data(sq), buf ? ember_data(buf) : NULL,
                  gavg ? ember_data(gavg) : NULL, ember_data(g), *hp,
                  flags_of(hp)};
  run_range(p->dtype == EMBER_FLOAT32 ? rms_f32 : rms_f64, &a, ember_numel(p));
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Adagrad: sum += d^2; p -= clr d / (sqrt(sum) + eps), where clr (hp->lr)
** is lr / (1 + (t - 1) lr_decay).
** ======================================================================= */

static inline double adagrad_elem(double p, double g, double *sum,
                                  const ember_optim_hp *hp,
                                  const optim_flags *f) {
  double d = grad_of(g, p, hp, f);
  double s = *sum + d * d;
  *sum = s;
  return p - hp->lr * (d / (sqrt(s) + hp->eps));
}

/* One loop of adagrad_f32, for constant flags f (as sgd_loop_f32). */
static EMBER_ALWAYS_INLINE void adagrad_loop_f32(float *restrict p,
                                                 float *restrict sum,
                                                 const float *restrict g,
                                                 int64_t lo, int64_t hi,
                                                 const ember_optim_hp *h,
                                                 const optim_flags *f) {
  #pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
    double s = sum[i];
    p[i] = (float)adagrad_elem(p[i], g[i], &s, h, f);
    sum[i] = (float)s;
  }
}

static EMBER_SIMD void adagrad_f32(const optim_args *a, int64_t lo,
                                   int64_t hi) {
  const ember_optim_hp h = a->hp;
  const optim_flags f = a->f, plain = {0, 0, 0, 0};
  if (flags_plain(&f)) adagrad_loop_f32(a->p, a->s1, a->g, lo, hi, &h, &plain);
  else adagrad_loop_f32(a->p, a->s1, a->g, lo, hi, &h, &f);
}

static void adagrad_f64(const optim_args *a, int64_t lo, int64_t hi) {
  double *restrict p = a->p, *restrict sum = a->s1;
  const double *restrict g = a->g;
  for (int64_t i = lo; i < hi; i++) {
    double s = sum[i];
    p[i] = adagrad_elem(p[i], g[i], &s, &a->hp, &a->f);
    sum[i] = s;
  }
}

int ember_cpu_adagrad_step(ember_tensor *p, const ember_tensor *g,
                           ember_tensor *sum, const ember_optim_hp *hp) {
  optim_args a = {ember_data(p), ember_data(sum), NULL, NULL, ember_data(g),
                  *hp, flags_of(hp)};
  run_range(p->dtype == EMBER_FLOAT32 ? adagrad_f32 : adagrad_f64, &a,
            ember_numel(p));
  return 0;
}

/* }====================================================================== */
