/*
** optim.c -- CPU kernels of the fused optimizer steps.
**
** Contract (core/optim.c guarantees it): p, g and every state tensor are
** contiguous with the same numel and float dtype; a NULL state tensor means
** its option is off; hp holds PyTorch's scalars for this step.  Each kernel
** is one pass over the elements: every element is loaded, updated in double
** (so float32 parameters get correctly rounded updates, not a chain of
** float32 roundings) and stored back.  The per-element math is a static
** inline function on doubles; the two dtypes only differ in the loop that
** loads and stores, which LOOP() writes once for each.
**
** The order of the operations follows torch.optim's single-tensor code
** (torch/optim/sgd.py, adam.py, adamw.py, rmsprop.py, adagrad.py).
*/
#include <math.h>

#include "cpu.h"

/* Run the body (the variadic part, so that its commas need no
   parentheses) for i in [0, n), on several threads when n is large. */
#define LOOP(n, ...)                                                         \
  do {                                                                       \
    int64_t n_ = (n);                                                        \
    _Pragma("omp parallel for schedule(static) if (n_ >= EMBER_CPU_PARALLEL_MIN) num_threads(ember_cpu_threads())") \
    for (int64_t i = 0; i < n_; i++) { __VA_ARGS__; }                        \
  } while (0)

/* The gradient as the update sees it: negated to maximize, plus the L2
   penalty `weight_decay * p` (Adam's coupled decay, SGD, RMSprop,
   Adagrad; AdamW passes weight_decay 0 and decays p itself). */
static inline double grad_of(double g, double p, const ember_optim_hp *hp) {
  double d = hp->maximize ? -g : g;
  if (hp->weight_decay != 0) d += hp->weight_decay * p;
  return d;
}

/* {======================================================================
** SGD: buf = momentum * buf + (1 - dampening) * d (d itself the first
** time); the update is buf, or d + momentum * buf with nesterov.
** ======================================================================= */

static inline double sgd_elem(double p, double g, double *buf, int has_buf,
                              const ember_optim_hp *hp) {
  double d = grad_of(g, p, hp);
  if (has_buf) {
    double b = hp->first_step ? d
                              : hp->momentum * *buf + (1 - hp->dampening) * d;
    *buf = b;
    d = hp->nesterov ? d + hp->momentum * b : b;
  }
  return p - hp->lr * d;
}

#define SGD_LOOP(T)                                                          \
  do {                                                                       \
    T *p_ = ember_data(p), *b_ = buf ? ember_data(buf) : NULL;               \
    const T *g_ = ember_data(g);                                             \
    int has_buf = b_ != NULL;                                                \
    LOOP(ember_numel(p), {                                                   \
      double b = has_buf ? (double)b_[i] : 0;                                \
      p_[i] = (T)sgd_elem(p_[i], g_[i], &b, has_buf, hp);                    \
      if (has_buf) b_[i] = (T)b;                                             \
    });                                                                      \
  } while (0)

int ember_cpu_sgd_step(ember_tensor *p, const ember_tensor *g,
                       ember_tensor *buf, const ember_optim_hp *hp) {
  if (p->dtype == EMBER_FLOAT32) SGD_LOOP(float);
  else SGD_LOOP(double);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Adam / AdamW: p *= decay (AdamW); m = beta1 m + (1 - beta1) d;
** v = beta2 v + (1 - beta2) d^2; vmax = max(vmax, v) with amsgrad;
** p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
** ======================================================================= */

typedef struct { double p, m, v, vmax; } adam_state;

static inline void adam_elem(adam_state *s, double g, int ams,
                             const ember_optim_hp *hp) {
  double d = grad_of(g, s->p, hp);
  s->p *= hp->decay;
  s->m = hp->beta1 * s->m + (1 - hp->beta1) * d;
  s->v = hp->beta2 * s->v + (1 - hp->beta2) * d * d;
  double v = s->v;
  if (ams) {
    if (v > s->vmax) s->vmax = v;
    v = s->vmax;
  }
  s->p -= hp->lr * (s->m / (sqrt(v) / hp->bc2_sqrt + hp->eps));
}

#define ADAM_LOOP(T)                                                         \
  do {                                                                       \
    T *p_ = ember_data(p), *m_ = ember_data(m), *v_ = ember_data(v);         \
    T *x_ = vmax ? ember_data(vmax) : NULL;                                  \
    const T *g_ = ember_data(g);                                             \
    int ams = x_ != NULL;                                                    \
    LOOP(ember_numel(p), {                                                   \
      adam_state s = {p_[i], m_[i], v_[i], ams ? (double)x_[i] : 0};         \
      adam_elem(&s, g_[i], ams, hp);                                         \
      p_[i] = (T)s.p; m_[i] = (T)s.m; v_[i] = (T)s.v;                        \
      if (ams) x_[i] = (T)s.vmax;                                            \
    });                                                                      \
  } while (0)

int ember_cpu_adam_step(ember_tensor *p, const ember_tensor *g,
                        ember_tensor *m, ember_tensor *v, ember_tensor *vmax,
                        const ember_optim_hp *hp) {
  if (p->dtype == EMBER_FLOAT32) ADAM_LOOP(float);
  else ADAM_LOOP(double);
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

static inline void rms_elem(rms_state *s, double g, int has_buf, int centered,
                            const ember_optim_hp *hp) {
  double d = grad_of(g, s->p, hp);
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

#define RMS_LOOP(T)                                                          \
  do {                                                                       \
    T *p_ = ember_data(p), *s_ = ember_data(sq);                             \
    T *b_ = buf ? ember_data(buf) : NULL, *a_ = gavg ? ember_data(gavg) : NULL; \
    const T *g_ = ember_data(g);                                             \
    int has_buf = b_ != NULL, centered = a_ != NULL;                         \
    LOOP(ember_numel(p), {                                                   \
      rms_state s = {p_[i], s_[i], has_buf ? (double)b_[i] : 0,              \
                     centered ? (double)a_[i] : 0};                          \
      rms_elem(&s, g_[i], has_buf, centered, hp);                            \
      p_[i] = (T)s.p; s_[i] = (T)s.sq;                                       \
      if (has_buf) b_[i] = (T)s.buf;                                         \
      if (centered) a_[i] = (T)s.ga;                                         \
    });                                                                      \
  } while (0)

int ember_cpu_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                           ember_tensor *sq, ember_tensor *buf,
                           ember_tensor *gavg, const ember_optim_hp *hp) {
  if (p->dtype == EMBER_FLOAT32) RMS_LOOP(float);
  else RMS_LOOP(double);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Adagrad: sum += d^2; p -= clr d / (sqrt(sum) + eps), where clr (hp->lr)
** is lr / (1 + (t - 1) lr_decay).
** ======================================================================= */

#define ADAGRAD_LOOP(T)                                                      \
  do {                                                                       \
    T *p_ = ember_data(p), *s_ = ember_data(sum);                            \
    const T *g_ = ember_data(g);                                             \
    LOOP(ember_numel(p), {                                                   \
      double pi = p_[i], d = grad_of(g_[i], pi, hp);                         \
      double s = (double)s_[i] + d * d;                                      \
      s_[i] = (T)s;                                                          \
      p_[i] = (T)(pi - hp->lr * (d / (sqrt(s) + hp->eps)));                  \
    });                                                                      \
  } while (0)

int ember_cpu_adagrad_step(ember_tensor *p, const ember_tensor *g,
                           ember_tensor *sum, const ember_optim_hp *hp) {
  if (p->dtype == EMBER_FLOAT32) ADAGRAD_LOOP(float);
  else ADAGRAD_LOOP(double);
  return 0;
}

/* }====================================================================== */
