/*
** optim.c -- the front door of the fused optimizer steps.
**
** Each step checks its tensors and hyper-parameters, folds what depends on
** the step count (Adam's bias corrections, Adagrad's decayed lr) into the
** plain scalars of an ember_optim_hp, and calls one backend slot.  Kernels
** want every operand contiguous and apart from the others (they are
** vectorised over several arrays at once): a strided gradient (an
** expanded one from the backward of a sum, say), or one sharing memory
** with a tensor the step writes, is copied here; a strided parameter is
** stepped in a contiguous copy that is written back; two state tensors
** sharing memory are an error.
** Nothing is written until every check has passed.
*/
#include <math.h>

#include "core.h"

/* {======================================================================
** Checks
** ======================================================================= */

static int same_shape(const ember_tensor *a, const ember_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

/* Does `o` agree with the parameter p (shape, dtype, device)? */
static int check_like(const char *fn, const char *name, const ember_tensor *p,
                      const ember_tensor *o) {
  char b1[128], b2[128];
  if (!same_shape(p, o))
    return ember_set_error("%s: %s has shape %s but the parameter has %s", fn,
                           name, ember_shape_str(b1, sizeof b1, o->ndim, o->shape),
                           ember_shape_str(b2, sizeof b2, p->ndim, p->shape));
  if (o->dtype != p->dtype)
    return ember_set_error("%s: %s has dtype %s but the parameter has %s", fn,
                           name, ember_dtype_name(o->dtype),
                           ember_dtype_name(p->dtype));
  if (o->storage->device != p->storage->device)
    return ember_set_error("%s: %s is on %s but the parameter is on %s", fn,
                           name, ember_device_name(o->storage->device),
                           ember_device_name(p->storage->device));
  return 0;
}

/* The parameter and its gradient. */
static int check_param(const char *fn, const ember_tensor *p,
                       const ember_tensor *g) {
  if (!p || !g) return ember_set_error("%s: the parameter and its gradient "
                                       "must not be NULL", fn);
  if (!ember_dtype_is_float(p->dtype))
    return ember_set_error("%s: the parameter has dtype %s; only float32 and "
                           "float64 parameters can be optimized", fn,
                           ember_dtype_name(p->dtype));
  for (int i = 0; i < p->ndim; i++)
    if (p->strides[i] == 0 && p->shape[i] > 1)
      return ember_set_error("%s: cannot write in place to an expanded "
                             "parameter (several elements share memory)", fn);
  return check_like(fn, "the gradient", p, g);
}

/* A state tensor: like p, contiguous, and not p's own memory (the update
   would then read values it has just overwritten). */
static int check_state(const char *fn, const char *name, const ember_tensor *p,
                       const ember_tensor *s) {
  if (!s) return ember_set_error("%s: %s must not be NULL", fn, name);
  if (check_like(fn, name, p, s) < 0) return -1;
  if (!ember_is_contiguous(s))
    return ember_set_error("%s: %s must be contiguous", fn, name);
  if (s->storage == p->storage)
    return ember_set_error("%s: %s shares memory with the parameter", fn, name);
  return 0;
}

/* `v >= lo` (false for NaN). */
static int check_min(const char *fn, const char *name, double v, double lo) {
  if (!(v >= lo)) return ember_set_error("%s: %s must be >= %g, got %g", fn,
                                         name, lo, v);
  return 0;
}

/* A beta or alpha in [0, 1). */
static int check_unit(const char *fn, const char *name, double v) {
  if (!(v >= 0 && v < 1))
    return ember_set_error("%s: %s must be in [0, 1), got %g", fn, name, v);
  return 0;
}

/* `has_slot`: does p's backend implement this step? */
static int check_device(const char *fn, const ember_tensor *p, int has_slot) {
  if (!has_slot) return ember_set_error("%s: not supported on %s", fn,
                                    ember_device_name(p->storage->device));
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Contiguous operands
** ======================================================================= */

/* Two state tensors must not share memory: each element's update reads
   and writes both. */
static int check_apart(const char *fn, const char *n1, const ember_tensor *s1,
                       const char *n2, const ember_tensor *s2) {
  if (s1 && s2 && s1->storage == s2->storage)
    return ember_set_error("%s: %s and %s share memory", fn, n1, n2);
  return 0;
}

/* The parameter and gradient as the kernels want them.  pc is p itself
   when p is contiguous, else a contiguous copy to write back.  gc is g,
   or a copy when g is strided or shares memory with what the step writes
   (p.grad = p, say): the vectorised kernels read each operand as its own
   array, and the step must see the gradient as it was. */
typedef struct { ember_tensor *pc, *gc; } operands;

static int operands_open(operands *o, ember_tensor *p, const ember_tensor *g,
                         const ember_tensor *s1, const ember_tensor *s2,
                         const ember_tensor *s3) {
  o->pc = ember_contiguous(p);
  o->gc = o->pc ? ember_contiguous(g) : NULL;
  if (!o->gc) {
    ember_tensor_release(o->pc);
    return -1;
  }
  const ember_storage *gs = o->gc->storage;
  if (gs == o->pc->storage || (s1 && gs == s1->storage) ||
      (s2 && gs == s2->storage) || (s3 && gs == s3->storage)) {
    ember_tensor *c = ember_clone(o->gc);
    ember_tensor_release(o->gc);
    o->gc = c;
    if (!c) {
      ember_tensor_release(o->pc);
      return -1;
    }
  }
  return 0;
}

/* Write a stepped copy back into p, bump the versions of every tensor the
   step wrote, release the operands.  `rc` is the kernel's status. */
static int operands_close(operands *o, ember_tensor *p, int rc,
                          ember_tensor *s1, ember_tensor *s2,
                          ember_tensor *s3) {
  if (rc == 0 && o->pc != p) rc = ember_backend_of(p)->copy(p, o->pc);
  ember_tensor_release(o->pc);
  ember_tensor_release(o->gc);
  if (rc < 0) return -1;
  ember_bump_version(p);
  if (s1) ember_bump_version(s1);
  if (s2) ember_bump_version(s2);
  if (s3) ember_bump_version(s3);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** The steps
** ======================================================================= */

int ember_sgd_step(ember_tensor *p, const ember_tensor *g,
                   ember_tensor *momentum_buf, double lr, double momentum,
                   double dampening, double weight_decay, int nesterov,
                   int maximize, int first_step) {
  const char *fn = "sgd_step";
  if (check_param(fn, p, g) < 0 || check_min(fn, "lr", lr, 0) < 0 ||
      check_min(fn, "momentum", momentum, 0) < 0 ||
      check_min(fn, "weight_decay", weight_decay, 0) < 0 ||
      check_device(fn, p, ember_backend_of(p)->sgd_step != NULL) < 0)
    return -1;
  if (!isfinite(dampening))
    return ember_set_error("%s: dampening must be finite, got %g", fn, dampening);
  if (nesterov && (momentum <= 0 || dampening != 0))
    return ember_set_error("%s: nesterov momentum requires a momentum > 0 and "
                           "zero dampening", fn);
  if (momentum != 0 && check_state(fn, "the momentum buffer", p, momentum_buf) < 0)
    return -1;
  if (momentum == 0) momentum_buf = NULL;  /* unused: PyTorch keeps none */
  ember_optim_hp hp = {.lr = lr, .momentum = momentum, .dampening = dampening,
                       .weight_decay = weight_decay, .nesterov = nesterov != 0,
                       .maximize = maximize != 0, .first_step = first_step != 0,
                       .decay = 1};
  operands o;
  if (operands_open(&o, p, g, momentum_buf, NULL, NULL) < 0) return -1;
  int rc = ember_backend_of(p)->sgd_step(o.pc, o.gc, momentum_buf, &hp);
  return operands_close(&o, p, rc, momentum_buf, NULL, NULL);
}

int ember_adam_step(ember_tensor *p, const ember_tensor *g,
                    ember_tensor *exp_avg, ember_tensor *exp_avg_sq,
                    ember_tensor *max_exp_avg_sq, int64_t step, double lr,
                    double beta1, double beta2, double eps,
                    double weight_decay, int decoupled, int maximize) {
  const char *fn = decoupled ? "adamw_step" : "adam_step";
  if (check_param(fn, p, g) < 0 || check_min(fn, "lr", lr, 0) < 0 ||
      check_unit(fn, "beta1", beta1) < 0 || check_unit(fn, "beta2", beta2) < 0 ||
      check_min(fn, "eps", eps, 0) < 0 ||
      check_min(fn, "weight_decay", weight_decay, 0) < 0 ||
      check_state(fn, "exp_avg", p, exp_avg) < 0 ||
      check_state(fn, "exp_avg_sq", p, exp_avg_sq) < 0 ||
      (max_exp_avg_sq && check_state(fn, "max_exp_avg_sq", p, max_exp_avg_sq) < 0) ||
      check_apart(fn, "exp_avg", exp_avg, "exp_avg_sq", exp_avg_sq) < 0 ||
      check_apart(fn, "exp_avg", exp_avg, "max_exp_avg_sq",
                  max_exp_avg_sq) < 0 ||
      check_apart(fn, "exp_avg_sq", exp_avg_sq, "max_exp_avg_sq",
                  max_exp_avg_sq) < 0 ||
      check_device(fn, p, ember_backend_of(p)->adam_step != NULL) < 0)
    return -1;
  if (step < 1) return ember_set_error("%s: step must be >= 1, got %lld", fn,
                                       (long long)step);
  /* PyTorch's scalars, in double: step_size = lr / (1 - beta1^t) and
     denom = sqrt(v) / sqrt(1 - beta2^t) + eps */
  ember_optim_hp hp = {
    .lr = lr / (1 - pow(beta1, (double)step)),
    .beta1 = beta1, .beta2 = beta2, .eps = eps,
    .bc2_sqrt = sqrt(1 - pow(beta2, (double)step)),
    .weight_decay = decoupled ? 0 : weight_decay,
    .decay = decoupled ? 1 - lr * weight_decay : 1,
    .maximize = maximize != 0,
  };
  operands o;
  if (operands_open(&o, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq) < 0)
    return -1;
  int rc = ember_backend_of(p)->adam_step(o.pc, o.gc, exp_avg, exp_avg_sq,
                                          max_exp_avg_sq, &hp);
  return operands_close(&o, p, rc, exp_avg, exp_avg_sq, max_exp_avg_sq);
}

int ember_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                       ember_tensor *square_avg, ember_tensor *momentum_buf,
                       ember_tensor *grad_avg, double lr, double alpha,
                       double eps, double weight_decay, double momentum,
                       int maximize) {
  const char *fn = "rmsprop_step";
  if (check_param(fn, p, g) < 0 || check_min(fn, "lr", lr, 0) < 0 ||
      check_min(fn, "alpha", alpha, 0) < 0 || check_min(fn, "eps", eps, 0) < 0 ||
      check_min(fn, "weight_decay", weight_decay, 0) < 0 ||
      check_min(fn, "momentum", momentum, 0) < 0 ||
      check_state(fn, "square_avg", p, square_avg) < 0 ||
      (momentum > 0 && check_state(fn, "the momentum buffer", p, momentum_buf) < 0) ||
      (grad_avg && check_state(fn, "grad_avg", p, grad_avg) < 0) ||
      check_device(fn, p, ember_backend_of(p)->rmsprop_step != NULL) < 0)
    return -1;
  if (momentum == 0) momentum_buf = NULL;
  if (check_apart(fn, "square_avg", square_avg, "the momentum buffer",
                  momentum_buf) < 0 ||
      check_apart(fn, "square_avg", square_avg, "grad_avg", grad_avg) < 0 ||
      check_apart(fn, "the momentum buffer", momentum_buf, "grad_avg",
                  grad_avg) < 0)
    return -1;
  ember_optim_hp hp = {.lr = lr, .alpha = alpha, .eps = eps,
                       .weight_decay = weight_decay, .momentum = momentum,
                       .maximize = maximize != 0, .decay = 1};
  operands o;
  if (operands_open(&o, p, g, square_avg, momentum_buf, grad_avg) < 0)
    return -1;
  int rc = ember_backend_of(p)->rmsprop_step(o.pc, o.gc, square_avg,
                                             momentum_buf, grad_avg, &hp);
  return operands_close(&o, p, rc, square_avg, momentum_buf, grad_avg);
}

int ember_adagrad_step(ember_tensor *p, const ember_tensor *g,
                       ember_tensor *state_sum, int64_t step, double lr,
                       double lr_decay, double weight_decay, double eps,
                       int maximize) {
  const char *fn = "adagrad_step";
  if (check_param(fn, p, g) < 0 || check_min(fn, "lr", lr, 0) < 0 ||
      check_min(fn, "lr_decay", lr_decay, 0) < 0 ||
      check_min(fn, "eps", eps, 0) < 0 ||
      check_min(fn, "weight_decay", weight_decay, 0) < 0 ||
      check_state(fn, "the state sum", p, state_sum) < 0 ||
      check_device(fn, p, ember_backend_of(p)->adagrad_step != NULL) < 0)
    return -1;
  if (step < 1) return ember_set_error("%s: step must be >= 1, got %lld", fn,
                                       (long long)step);
  ember_optim_hp hp = {.lr = lr / (1 + (double)(step - 1) * lr_decay),
                       .eps = eps, .weight_decay = weight_decay,
                       .maximize = maximize != 0, .decay = 1};
  operands o;
  if (operands_open(&o, p, g, state_sum, NULL, NULL) < 0) return -1;
  int rc = ember_backend_of(p)->adagrad_step(o.pc, o.gc, state_sum, &hp);
  return operands_close(&o, p, rc, state_sum, NULL, NULL);
}

/* }====================================================================== */
