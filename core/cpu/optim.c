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
** two dtypes only differ in the loop that loads and stores.
**
** Speed.  The loops vectorise (AVX-512 handles 8 doubles at a time): each
** kernel is a range function [lo, hi) carrying EMBER_SIMD, which a
** parallel region calls on each thread's slice (OpenMP's outlined bodies
** are not cloned, see cpu.h).  Inside, the loop is chosen once per call
** from which state tensors exist, so no loop body loads or stores
** conditionally; an option that is a scalar (maximize, weight decay,
** nesterov) becomes a select between two computed values, which costs a
** blend and changes no bit.  The common configuration of each optimizer
** (no weight decay, not maximizing, ...) has a loop with those selects
** compiled out.  sqrt vectorises because the build passes -fno-math-errno,
** and -std=c11 keeps a*b+c unfused, so every clone and every loop gives
** the bits of the scalar code: spec/optim/fused_spec.lua checks each loop
** against the same arithmetic done in Lua, bit for bit.  On one Zen 5
** core, Adam over the MLP's 109,386 float32 parameters went from 414 us
** (scalar, sqrt through errno) to 53 us, bound by the double divides.
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

/* One loop of SGD_RANGE, with the flags F; BUF is 0 or 1. */
#define SGD_LOOP(T, BUF, F)                                                  \
  _Pragma("omp simd")                                                        \
  for (int64_t i = lo; i < hi; i++) {                                        \
    double b = BUF ? (double)b_[i] : 0;                                      \
    p_[i] = (T)sgd_elem(p_[i], g_[i], &b, BUF, &h, &(F));                    \
    if (BUF) b_[i] = (T)b;                                                   \
  }

#define SGD_RANGE(T)                                                         \
  do {                                                                       \
    const ember_optim_hp h = a->hp;                                          \
    const optim_flags f = a->f, plain = {0, 0, f.first, f.nesterov};         \
    T *restrict p_ = a->p, *restrict b_ = a->s1;                             \
    const T *restrict g_ = a->g;                                             \
    if (!b_ && flags_plain(&f)) { SGD_LOOP(T, 0, plain) }                    \
    else if (!b_) { SGD_LOOP(T, 0, f) }                                      \
    else if (flags_plain(&f)) { SGD_LOOP(T, 1, plain) }                      \
    else { SGD_LOOP(T, 1, f) }                                               \
  } while (0)

static EMBER_SIMD void sgd_f32(const optim_args *a, int64_t lo, int64_t hi) {
  SGD_RANGE(float);
}

static EMBER_SIMD void sgd_f64(const optim_args *a, int64_t lo, int64_t hi) {
  SGD_RANGE(double);
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

/* One loop of ADAM_RANGE, with the flags F; AMS is 0 or 1. */
#define ADAM_LOOP(T, AMS, F)                                                 \
  _Pragma("omp simd")                                                        \
  for (int64_t i = lo; i < hi; i++) {                                        \
    adam_state s = {p_[i], m_[i], v_[i], AMS ? (double)x_[i] : 0};           \
    adam_elem(&s, g_[i], AMS, &h, &(F));                                     \
    p_[i] = (T)s.p; m_[i] = (T)s.m; v_[i] = (T)s.v;                          \
    if (AMS) x_[i] = (T)s.vmax;                                              \
  }

#define ADAM_RANGE(T)                                                        \
  do {                                                                       \
    const ember_optim_hp h = a->hp;                                          \
    const optim_flags f = a->f, plain = {0, 0, 0, 0};                        \
    T *restrict p_ = a->p, *restrict m_ = a->s1, *restrict v_ = a->s2;       \
    T *restrict x_ = a->s3;                                                  \
    const T *restrict g_ = a->g;                                             \
    if (!x_ && flags_plain(&f)) { ADAM_LOOP(T, 0, plain) }                   \
    else if (!x_) { ADAM_LOOP(T, 0, f) }                                     \
    else { ADAM_LOOP(T, 1, f) }                                              \
  } while (0)

static EMBER_SIMD void adam_f32(const optim_args *a, int64_t lo, int64_t hi) {
  ADAM_RANGE(float);
}

static EMBER_SIMD void adam_f64(const optim_args *a, int64_t lo, int64_t hi) {
  ADAM_RANGE(double);
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

/* One loop of RMS_RANGE, with the flags F; BUF and CEN are 0 or 1. */
#define RMS_LOOP(T, BUF, CEN, F)                                             \
  _Pragma("omp simd")                                                        \
  for (int64_t i = lo; i < hi; i++) {                                        \
    rms_state s = {p_[i], s_[i], BUF ? (double)b_[i] : 0,                    \
                   CEN ? (double)a_[i] : 0};                                 \
    rms_elem(&s, g_[i], BUF, CEN, &h, &(F));                                 \
    p_[i] = (T)s.p; s_[i] = (T)s.sq;                                         \
    if (BUF) b_[i] = (T)s.buf;                                               \
    if (CEN) a_[i] = (T)s.ga;                                                \
  }

#define RMS_RANGE(T)                                                         \
  do {                                                                       \
    const ember_optim_hp h = a->hp;                                          \
    const optim_flags f = a->f, plain = {0, 0, 0, 0};                        \
    T *restrict p_ = a->p, *restrict s_ = a->s1, *restrict b_ = a->s2;       \
    T *restrict a_ = a->s3;                                                  \
    const T *restrict g_ = a->g;                                             \
    if (!b_ && !a_ && flags_plain(&f)) { RMS_LOOP(T, 0, 0, plain) }          \
    else if (!b_ && !a_) { RMS_LOOP(T, 0, 0, f) }                            \
    else if (!a_) { RMS_LOOP(T, 1, 0, f) }                                   \
    else if (!b_) { RMS_LOOP(T, 0, 1, f) }                                   \
    else { RMS_LOOP(T, 1, 1, f) }                                            \
  } while (0)

static EMBER_SIMD void rms_f32(const optim_args *a, int64_t lo, int64_t hi) {
  RMS_RANGE(float);
}

static EMBER_SIMD void rms_f64(const optim_args *a, int64_t lo, int64_t hi) {
  RMS_RANGE(double);
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

/* One loop of ADAGRAD_RANGE, with the flags F. */
#define ADAGRAD_LOOP(T, F)                                                   \
  _Pragma("omp simd")                                                        \
  for (int64_t i = lo; i < hi; i++) {                                        \
    double s = s_[i];                                                        \
    p_[i] = (T)adagrad_elem(p_[i], g_[i], &s, &h, &(F));                     \
    s_[i] = (T)s;                                                            \
  }

#define ADAGRAD_RANGE(T)                                                     \
  do {                                                                       \
    const ember_optim_hp h = a->hp;                                          \
    const optim_flags f = a->f, plain = {0, 0, 0, 0};                        \
    T *restrict p_ = a->p, *restrict s_ = a->s1;                             \
    const T *restrict g_ = a->g;                                             \
    if (flags_plain(&f)) { ADAGRAD_LOOP(T, plain) }                          \
    else { ADAGRAD_LOOP(T, f) }                                              \
  } while (0)

static EMBER_SIMD void adagrad_f32(const optim_args *a, int64_t lo,
                                   int64_t hi) {
  ADAGRAD_RANGE(float);
}

static EMBER_SIMD void adagrad_f64(const optim_args *a, int64_t lo,
                                   int64_t hi) {
  ADAGRAD_RANGE(double);
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
