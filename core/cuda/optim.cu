/*
** optim.cu -- the fused optimizer steps on the GPU (the twin of
** core/cpu/optim.c).
**
** Contract (core/optim.c guarantees it): p, g and every state tensor are
** contiguous with the same numel and a float dtype; a NULL state tensor
** means its option is off; hp holds PyTorch's scalars for this step, with
** what depends on the step count already folded in.  Each step is one
** elementwise kernel, one thread per element (grid-stride): load, update in
** double, store -- the CPU's formulas in the CPU's order.
**
** Bit-for-bit parity with the CPU: the CPU is built with -std=c11 (no
** floating-point contraction) for baseline x86-64 (no FMA), so each of its
** `a * b + c` rounds twice.  nvcc would fuse those into FMAs, which round
** once, so the arithmetic here is spelled with the IEEE intrinsics
** (__dmul_rn, __dadd_rn, ... never contracted, correctly rounded), and the
** results match the CPU's exactly, float32 stores included (both round to
** nearest).  bfloat16/float16 tensors load as float and store through
** float32 (ld, st), as the CPU's adapted kernel.
*/
#include "cuda_internal.h"

/* {======================================================================
** Double arithmetic without contraction
** ======================================================================= */

__device__ static inline double mul(double a, double b) {
  return __dmul_rn(a, b);
}
__device__ static inline double add(double a, double b) {
  return __dadd_rn(a, b);
}
__device__ static inline double sub(double a, double b) {
  return __dsub_rn(a, b);
}
__device__ static inline double dvd(double a, double b) {
  return __ddiv_rn(a, b);
}
__device__ static inline double root(double a) { return __dsqrt_rn(a); }

/* An element as a double, and a double stored as T: through T's compute
   type, so a bfloat16/float16 step rounds as the CPU's (its float32 kernel
   on widened twins, the results rounded to float32 then to the half). */
template <typename T> __device__ static inline double ld(T x) {
  return (double)cu_load(x);
}
template <typename T> __device__ static inline T st(double x) {
  return cu_store<T>((typename cu_elem<T>::C)x);
}

/* The gradient as the update sees it: negated to maximize, plus the L2
   penalty weight_decay * p (AdamW passes weight_decay 0). */
__device__ static inline double grad_of(double g, double p,
                                        const ember_optim_hp &hp) {
  double d = hp.maximize ? -g : g;
  if (hp.weight_decay != 0) d = add(d, mul(hp.weight_decay, p));
  return d;
}

/* }====================================================================== */

/* {======================================================================
** SGD: buf = momentum * buf + (1 - dampening) * d (d itself the first
** time); the update is buf, or d + momentum * buf with nesterov.
** ======================================================================= */

template <typename T>
static __global__ void sgd_kernel(T *p, const T *g, T *buf, ember_optim_hp hp,
                                  int64_t n) {
  CU_FOR(i, n) {
    double pi = ld(p[i]), d = grad_of(ld(g[i]), pi, hp);
    if (buf) {
      double b = hp.first_step
                     ? d
                     : add(mul(hp.momentum, ld(buf[i])),
                           mul(sub(1, hp.dampening), d));
      buf[i] = st<T>(b);
      d = hp.nesterov ? add(d, mul(hp.momentum, b)) : b;
    }
    p[i] = st<T>(sub(pi, mul(hp.lr, d)));
  }
}

int ember_cuda_sgd_step(ember_tensor *p, const ember_tensor *g,
                        ember_tensor *buf, const ember_optim_hp *hp) {
  int64_t n = cu_numel(p);
  if (n == 0) return 0;
  int rc = ember_cuda_dispatch_float_half(p->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    sgd_kernel<T><<<cu_blocks(n), CU_THREADS>>>(
        (T *)cu_data(p), (const T *)cu_data(g),
        buf ? (T *)cu_data(buf) : NULL, *hp, n);
    return 0;
  });
  if (rc < 0) return -1;
  CU_LAUNCH_CHECK("sgd_step");
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Adam / AdamW: p *= decay (AdamW); m = beta1 m + (1 - beta1) d;
** v = beta2 v + (1 - beta2) d^2; vmax = max(vmax, v) with amsgrad;
** p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
** ======================================================================= */

template <typename T>
static __global__ void adam_kernel(T *p, const T *g, T *m, T *v, T *vmax,
                                   ember_optim_hp hp, int64_t n) {
  CU_FOR(i, n) {
    double pi = ld(p[i]), d = grad_of(ld(g[i]), pi, hp);
    pi = mul(pi, hp.decay);
    double mi = add(mul(hp.beta1, ld(m[i])), mul(sub(1, hp.beta1), d));
    double vi = add(mul(hp.beta2, ld(v[i])),
                    mul(mul(sub(1, hp.beta2), d), d));
    double vv = vi;
    if (vmax) {
      double x = ld(vmax[i]);
      if (vi > x) x = vi;       /* the CPU's test: a NaN v keeps vmax */
      vmax[i] = st<T>(x);
      vv = x;
    }
    pi = sub(pi, mul(hp.lr, dvd(mi, add(dvd(root(vv), hp.bc2_sqrt), hp.eps))));
    p[i] = st<T>(pi);
    m[i] = st<T>(mi);
    v[i] = st<T>(vi);
  }
}

int ember_cuda_adam_step(ember_tensor *p, const ember_tensor *g,
                         ember_tensor *m, ember_tensor *v, ember_tensor *vmax,
                         const ember_optim_hp *hp) {
  int64_t n = cu_numel(p);
  if (n == 0) return 0;
  int rc = ember_cuda_dispatch_float_half(p->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    adam_kernel<T><<<cu_blocks(n), CU_THREADS>>>(
        (T *)cu_data(p), (const T *)cu_data(g), (T *)cu_data(m),
        (T *)cu_data(v), vmax ? (T *)cu_data(vmax) : NULL, *hp, n);
    return 0;
  });
  if (rc < 0) return -1;
  CU_LAUNCH_CHECK("adam_step");
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** RMSprop: sq = alpha sq + (1 - alpha) d^2; centered: ga = alpha ga +
** (1 - alpha) d and avg = sqrt(sq - ga^2), else sqrt(sq); avg += eps;
** with momentum buf = momentum buf + d / avg and p -= lr buf, else
** p -= lr d / avg.
** ======================================================================= */

template <typename T>
static __global__ void rmsprop_kernel(T *p, const T *g, T *sq, T *buf, T *gavg,
                                      ember_optim_hp hp, int64_t n) {
  CU_FOR(i, n) {
    double pi = ld(p[i]), d = grad_of(ld(g[i]), pi, hp);
    double s = add(mul(hp.alpha, ld(sq[i])),
                   mul(mul(sub(1, hp.alpha), d), d));
    double avg;
    if (gavg) {
      double ga = add(mul(hp.alpha, ld(gavg[i])),
                      mul(sub(1, hp.alpha), d));
      gavg[i] = st<T>(ga);
      avg = root(sub(s, mul(ga, ga)));
    } else {
      avg = root(s);
    }
    avg = add(avg, hp.eps);
    if (buf) {
      double b = add(mul(hp.momentum, ld(buf[i])), dvd(d, avg));
      buf[i] = st<T>(b);
      pi = sub(pi, mul(hp.lr, b));
    } else {
      pi = sub(pi, mul(hp.lr, dvd(d, avg)));
    }
    p[i] = st<T>(pi);
    sq[i] = st<T>(s);
  }
}

int ember_cuda_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                            ember_tensor *sq, ember_tensor *buf,
                            ember_tensor *gavg, const ember_optim_hp *hp) {
  int64_t n = cu_numel(p);
  if (n == 0) return 0;
  int rc = ember_cuda_dispatch_float_half(p->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    rmsprop_kernel<T><<<cu_blocks(n), CU_THREADS>>>(
        (T *)cu_data(p), (const T *)cu_data(g), (T *)cu_data(sq),
        buf ? (T *)cu_data(buf) : NULL,
        gavg ? (T *)cu_data(gavg) : NULL, *hp, n);
    return 0;
  });
  if (rc < 0) return -1;
  CU_LAUNCH_CHECK("rmsprop_step");
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Adagrad: sum += d^2; p -= clr d / (sqrt(sum) + eps), where clr (hp.lr)
** is lr / (1 + (t - 1) lr_decay).  The update uses the sum in double, as
** the CPU does, not its stored (rounded) value.
** ======================================================================= */

template <typename T>
static __global__ void adagrad_kernel(T *p, const T *g, T *sum,
                                      ember_optim_hp hp, int64_t n) {
  CU_FOR(i, n) {
    double pi = ld(p[i]), d = grad_of(ld(g[i]), pi, hp);
    double s = add(ld(sum[i]), mul(d, d));
    sum[i] = st<T>(s);
    p[i] = st<T>(sub(pi, mul(hp.lr, dvd(d, add(root(s), hp.eps)))));
  }
}

int ember_cuda_adagrad_step(ember_tensor *p, const ember_tensor *g,
                            ember_tensor *sum, const ember_optim_hp *hp) {
  int64_t n = cu_numel(p);
  if (n == 0) return 0;
  int rc = ember_cuda_dispatch_float_half(p->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    adagrad_kernel<T><<<cu_blocks(n), CU_THREADS>>>(
        (T *)cu_data(p), (const T *)cu_data(g),
        (T *)cu_data(sum), *hp, n);
    return 0;
  });
  if (rc < 0) return -1;
  CU_LAUNCH_CHECK("adagrad_step");
  return 0;
}

/* }====================================================================== */
