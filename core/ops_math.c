/*
** ops_math.c -- the front door of elementwise math: unary ops, binary ops
** with broadcasting and type promotion, comparisons, where, masked_fill.
**
** Each op: check devices, work out the result shape (broadcast) and dtype
** (promotion), cast operands that need it, expand them to the result shape,
** allocate the result, call one kernel.  In-place variants compute into a
** temporary first whenever the kernel could not write `a` safely, so a
** failed call leaves `a` unchanged.
*/
#include <math.h>
#include <string.h>

#include "grad_ops.h"

static const char *const unary_names[EMBER_NUNARY] = {
  "neg", "abs", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu",
  "clamp", "erf", "log1p", "expm1", "gelu", "leaky_relu",
};
static const char *const binary_names[EMBER_NBINARY] = {
  "add", "sub", "mul", "div", "pow", "maximum", "minimum",
};
static const char *const cmp_names[EMBER_NCMP] = {
  "eq", "ne", "lt", "le", "gt", "ge",
};

static int same_device(const char *fn, const ember_tensor *a,
                       const ember_tensor *b) {
  if (a->storage->device != b->storage->device)
    return ember_set_error("%s: expected tensors on the same device, got %s "
                           "and %s", fn, ember_device_name(a->storage->device),
                           ember_device_name(b->storage->device));
  return 0;
}

/*
** PyTorch's result type for two operands: a 0-dim tensor (and so a Lua
** number, which arrives as one) only decides the dtype when it is of a
** higher category (bool < integer < float) than the tensor beside it;
** otherwise the dimensioned tensor's dtype wins.
*/
static int category(ember_dtype dt) {
  return ember_dtype_is_float(dt) ? 2 : dt == EMBER_BOOL ? 0 : 1;
}

static ember_dtype result_type(const ember_tensor *a, const ember_tensor *b) {
  if ((a->ndim == 0) == (b->ndim == 0)) return ember_promote(a->dtype, b->dtype);
  const ember_tensor *dim = a->ndim ? a : b, *zero = a->ndim ? b : a;
  return category(zero->dtype) > category(dim->dtype) ? zero->dtype : dim->dtype;
}

static int same_shape(const ember_tensor *a, const ember_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)   /* not memcmp: a call, for 1..4 dims */
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

/* Does writing t touch one memory location twice (an expanded view)? */
static int has_internal_overlap(const ember_tensor *t) {
  for (int i = 0; i < t->ndim; i++)
    if (t->strides[i] == 0 && t->shape[i] > 1) return 1;
  return 0;
}

/* {======================================================================
** Unary
** ======================================================================= */

/* Ops that produce floats promote integer inputs to float32. */
static int float_only(ember_unary_op op) {
  return op != EMBER_NEG && op != EMBER_ABS && op != EMBER_RELU &&
         op != EMBER_CLAMP;
}

static ember_tensor *unary_impl(ember_unary_op op, const ember_tensor *t,
                                double p0, double p1) {
  const char *fn = unary_names[op];
  if (t->dtype == EMBER_BOOL && !float_only(op)) {
    ember_set_error("%s: not supported for bool tensors", fn);
    return NULL;
  }
  ember_dtype dt = float_only(op) && !ember_dtype_is_float(t->dtype)
                       ? EMBER_FLOAT32 : t->dtype;
  ember_tensor *src = ember_cast(t, dt);
  if (!src) return NULL;
  ember_tensor *out = ember_empty_on(t->storage->device, t->ndim, t->shape, dt);
  if (out && ember_backend_of(out)->unary(op, out, src, p0, p1) < 0) {
    ember_tensor_release(out);
    out = NULL;
  }
  ember_tensor_release(src);
  return out;
}

/* The kernel's parameters for an op with parameter `param`. */
static void unary_params(ember_unary_op op, double param, double *p0,
                         double *p1) {
  *p0 = -INFINITY;
  *p1 = INFINITY;
  if (op == EMBER_GELU || op == EMBER_LEAKY_RELU) *p0 = param;
}

static double default_param(ember_unary_op op) {
  return op == EMBER_LEAKY_RELU ? 0.01 : 0;
}

ember_tensor *ember_unary_p(ember_unary_op op, const ember_tensor *t,
                            double param) {
  if ((unsigned)op >= EMBER_NUNARY || op == EMBER_CLAMP) {
    ember_set_error("unary: bad op");
    return NULL;
  }
  if (op == EMBER_GELU && param != 0 && param != 1) {
    ember_set_error("gelu: approximation must be 0 (none) or 1 (tanh)");
    return NULL;
  }
  if (ember_ag_active1(t)) return ember_ag_unary(op, t, param);
  double p0, p1;
  unary_params(op, param, &p0, &p1);
  return unary_impl(op, t, p0, p1);
}

ember_tensor *ember_unary(ember_unary_op op, const ember_tensor *t) {
  if (op == EMBER_CLAMP) return ember_clamp(t, -INFINITY, INFINITY);
  return ember_unary_p(op, t, default_param(op));
}

static int unary_inplace(ember_unary_op op, ember_tensor *t, double p0,
                         double p1) {
  const char *fn = unary_names[op];
  if (float_only(op) && !ember_dtype_is_float(t->dtype))
    return ember_set_error("%s_: result type float32 can't be cast to the "
                           "tensor's dtype %s", fn, ember_dtype_name(t->dtype));
  if (t->dtype == EMBER_BOOL)
    return ember_set_error("%s_: not supported for bool tensors", fn);
  if (has_internal_overlap(t))
    return ember_set_error("%s_: cannot write in place to an expanded tensor "
                           "(several elements share memory); clone it first", fn);
  return ember_backend_of(t)->unary(op, t, t, p0, p1);
}

int ember_unary_p_(ember_unary_op op, ember_tensor *t, double param) {
  if ((unsigned)op >= EMBER_NUNARY || op == EMBER_CLAMP)
    return ember_set_error("unary: bad op");
  if (op == EMBER_GELU && param != 0 && param != 1)
    return ember_set_error("gelu_: approximation must be 0 (none) or 1 (tanh)");
  if (ember_ag_active1(t)) return ember_ag_unary_(op, t, param);
  double p0, p1;
  unary_params(op, param, &p0, &p1);
  if (unary_inplace(op, t, p0, p1) < 0) return -1;
  ember_bump_version(t);
  return 0;
}

int ember_unary_(ember_unary_op op, ember_tensor *t) {
  if (op == EMBER_CLAMP) return ember_clamp_(t, -INFINITY, INFINITY);
  return ember_unary_p_(op, t, default_param(op));
}

static int check_clamp(double lo, double hi) {
  if (lo > hi) return ember_set_error("clamp: min %g is greater than max %g", lo, hi);
  return 0;
}

/* A fractional bound makes an integer tensor's result float32, as the
   result type of PyTorch's clamp with a float. */
static int fractional(double v) { return isfinite(v) && v != floor(v); }

ember_tensor *ember_clamp(const ember_tensor *t, double lo, double hi) {
  if (check_clamp(lo, hi) < 0) return NULL;
  if (ember_ag_active1(t)) return ember_ag_clamp(t, lo, hi);
  if (!ember_dtype_is_float(t->dtype) && (fractional(lo) || fractional(hi))) {
    ember_tensor *f = ember_cast(t, EMBER_FLOAT32);
    ember_tensor *r = f ? unary_impl(EMBER_CLAMP, f, lo, hi) : NULL;
    ember_tensor_release(f);
    return r;
  }
  return unary_impl(EMBER_CLAMP, t, lo, hi);
}

int ember_clamp_(ember_tensor *t, double lo, double hi) {
  if (check_clamp(lo, hi) < 0) return -1;
  if (ember_ag_active1(t)) return ember_ag_clamp_(t, lo, hi);
  if (unary_inplace(EMBER_CLAMP, t, lo, hi) < 0) return -1;
  ember_bump_version(t);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Binary
** ======================================================================= */

/* The dtype a binary op computes in, or -1 (with a message). */
static int binary_dtype(ember_binary_op op, const ember_tensor *a,
                        const ember_tensor *b, ember_dtype *out) {
  ember_dtype dt = a->dtype == b->dtype ? a->dtype : result_type(a, b);
  const char *fn = binary_names[op];
  if (op == EMBER_DIV && !ember_dtype_is_float(dt)) dt = EMBER_FLOAT32;
  if (dt == EMBER_BOOL && (op == EMBER_SUB || op == EMBER_POW))
    return ember_set_error("%s: not supported for bool tensors; use ints", fn);
  *out = dt;
  return 0;
}

/* Integers to a negative power have no integer result (as PyTorch). */
static int check_int_pow(const ember_tensor *b) {
  if (ember_dtype_is_float(b->dtype) || b->dtype == EMBER_BOOL) return 0;
  ember_tensor *mn = ember_reduce(EMBER_MIN, b, 0);
  if (!mn) return ember_numel(b) == 0 ? 0 : -1;
  int64_t v = 0;
  int rc = ember_item_int(mn, &v);
  ember_tensor_release(mn);
  if (rc == 0 && v < 0)
    return ember_set_error("pow: integers to negative integer powers are not "
                           "allowed");
  return rc;
}

/*
** out = a op b into a fresh tensor.  The common case (same shape, same
** dtype, no cast) allocates only the result: this is the path a tiny `a + b`
** takes, so it stays short.
*/
ember_tensor *ember_binary(ember_binary_op op, const ember_tensor *a,
                           const ember_tensor *b) {
  if ((unsigned)op >= EMBER_NBINARY) { ember_set_error("binary: bad op"); return NULL; }
  if (ember_ag_active2(a, b)) return ember_ag_binary(op, a, b);
  const char *fn = binary_names[op];
  if (same_device(fn, a, b) < 0) return NULL;
  ember_dtype dt;
  if (binary_dtype(op, a, b, &dt) < 0) return NULL;
  if (op == EMBER_POW && !ember_dtype_is_float(dt) && check_int_pow(b) < 0)
    return NULL;
  const ember_backend_i *be = a->storage->device == EMBER_CPU ? &ember_cpu_backend
                                                            : ember_backend_of(a);
  if (a->dtype == dt && b->dtype == dt && same_shape(a, b)) {
    ember_tensor *out = ember_empty_on(a->storage->device, a->ndim, a->shape, dt);
    return out ? ember_kernel_result(out, be->binary(op, out, a, b)) : NULL;
  }
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &n,
                             shape) < 0)
    return NULL;
  ember_tensor *ca = ember_cast(a, dt), *cb = ca ? ember_cast(b, dt) : NULL;
  ember_tensor *ea = cb ? ember_broadcast_to(ca, n, shape) : NULL;
  ember_tensor *eb = ea ? ember_broadcast_to(cb, n, shape) : NULL;
  ember_tensor *out = eb ? ember_empty_on(a->storage->device, n, shape, dt) : NULL;
  if (out) out = ember_kernel_result(out, be->binary(op, out, ea, eb));
  ember_tensor_release(eb);
  ember_tensor_release(ea);
  ember_tensor_release(cb);
  ember_tensor_release(ca);
  return out;
}

/* Can a result of dtype `from` be stored in `to` (PyTorch's can_cast)? */
static int can_cast(ember_dtype from, ember_dtype to) {
  if (ember_dtype_is_float(from)) return ember_dtype_is_float(to);
  if (ember_dtype_is_int(from)) return to != EMBER_BOOL;
  return 1;
}

static int binary_inplace(ember_binary_op op, ember_tensor *a,
                          const ember_tensor *b);

int ember_binary_(ember_binary_op op, ember_tensor *a, const ember_tensor *b) {
  if ((unsigned)op >= EMBER_NBINARY) return ember_set_error("binary: bad op");
  if (ember_ag_active2(a, b)) return ember_ag_binary_(op, a, b);
  if (binary_inplace(op, a, b) < 0) return -1;
  ember_bump_version(a);
  return 0;
}

static int binary_inplace(ember_binary_op op, ember_tensor *a,
                          const ember_tensor *b) {
  const char *fn = binary_names[op];
  if (same_device(fn, a, b) < 0) return -1;
  ember_dtype dt;
  if (binary_dtype(op, a, b, &dt) < 0) return -1;
  if (!can_cast(dt, a->dtype))
    return ember_set_error("%s_: result type %s can't be cast to the "
                           "destination dtype %s", fn, ember_dtype_name(dt),
                           ember_dtype_name(a->dtype));
  if (has_internal_overlap(a))
    return ember_set_error("%s_: cannot write in place to an expanded tensor "
                           "(several elements share memory); clone it first", fn);
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &n,
                             shape) < 0)
    return -1;
  if (n != a->ndim || memcmp(shape, a->shape, (size_t)n * sizeof *shape) != 0) {
    char b1[128], b2[128];
    return ember_set_error("%s_: the result shape %s differs from the shape "
                           "%s of the tensor written in place", fn,
                           ember_shape_str(b1, sizeof b1, n, shape),
                           ember_shape_str(b2, sizeof b2, a->ndim, a->shape));
  }
  if (op == EMBER_POW && !ember_dtype_is_float(dt) && check_int_pow(b) < 0)
    return -1;
  /* b overlapping a (another view of its storage) is read from a copy */
  ember_tensor *src = b->storage == a->storage && b != a ? ember_clone(b)
                                                         : ember_cast(b, dt);
  if (src && src->dtype != dt) {
    ember_tensor *c = ember_cast(src, dt);
    ember_tensor_release(src);
    src = c;
  }
  ember_tensor *eb = src ? ember_broadcast_to(src, a->ndim, a->shape) : NULL;
  int rc = -1;
  if (eb) {
    const ember_backend_i *be = ember_backend_of(a);
    if (a->dtype == dt) {
      rc = be->binary(op, a, a, eb);
    } else {
      /* compute in the promoted dtype, then convert into a */
      ember_tensor *ca = ember_cast(a, dt);
      if (ca && (rc = be->binary(op, ca, ca, eb)) == 0) rc = be->copy(a, ca);
      ember_tensor_release(ca);
    }
  }
  ember_tensor_release(eb);
  ember_tensor_release(src);
  return rc;
}

/* }====================================================================== */

/* {======================================================================
** Comparisons, where, masked_fill, equal
** ======================================================================= */

ember_tensor *ember_compare(ember_cmp_op op, const ember_tensor *a,
                            const ember_tensor *b) {
  if ((unsigned)op >= EMBER_NCMP) { ember_set_error("compare: bad op"); return NULL; }
  const char *fn = cmp_names[op];
  if (same_device(fn, a, b) < 0) return NULL;
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &n,
                             shape) < 0)
    return NULL;
  ember_dtype dt = result_type(a, b);
  ember_tensor *ca = ember_cast(a, dt), *cb = ca ? ember_cast(b, dt) : NULL;
  ember_tensor *ea = cb ? ember_broadcast_to(ca, n, shape) : NULL;
  ember_tensor *eb = ea ? ember_broadcast_to(cb, n, shape) : NULL;
  ember_tensor *out = eb ? ember_empty_on(a->storage->device, n, shape, EMBER_BOOL)
                         : NULL;
  if (out) out = ember_kernel_result(out, ember_backend_of(out)->compare(op, out, ea, eb));
  ember_tensor_release(eb);
  ember_tensor_release(ea);
  ember_tensor_release(cb);
  ember_tensor_release(ca);
  return out;
}

static int check_mask(const char *fn, const ember_tensor *mask) {
  if (mask->dtype != EMBER_BOOL)
    return ember_set_error("%s: expected a bool mask, got %s", fn,
                           ember_dtype_name(mask->dtype));
  return 0;
}

ember_tensor *ember_where(const ember_tensor *cond, const ember_tensor *a,
                          const ember_tensor *b) {
  if (check_mask("where", cond) < 0 || same_device("where", cond, a) < 0 ||
      same_device("where", a, b) < 0)
    return NULL;
  if (ember_ag_active2(a, b)) return ember_ag_where(cond, a, b);
  int n, n2;
  int64_t s1[EMBER_MAX_DIMS], shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes("where", a->ndim, a->shape, b->ndim, b->shape, &n,
                             s1) < 0 ||
      ember_broadcast_shapes("where", cond->ndim, cond->shape, n, s1, &n2,
                             shape) < 0)
    return NULL;
  ember_dtype dt = result_type(a, b);
  ember_tensor *ca = ember_cast(a, dt), *cb = ca ? ember_cast(b, dt) : NULL;
  ember_tensor *ea = cb ? ember_broadcast_to(ca, n2, shape) : NULL;
  ember_tensor *eb = ea ? ember_broadcast_to(cb, n2, shape) : NULL;
  ember_tensor *ec = eb ? ember_broadcast_to(cond, n2, shape) : NULL;
  ember_tensor *out = ec ? ember_empty_on(a->storage->device, n2, shape, dt) : NULL;
  if (out) out = ember_kernel_result(out, ember_backend_of(out)->where(out, ec, ea, eb));
  ember_tensor_release(ec);
  ember_tensor_release(eb);
  ember_tensor_release(ea);
  ember_tensor_release(cb);
  ember_tensor_release(ca);
  return out;
}

static int masked_fill_inplace(ember_tensor *t, const ember_tensor *mask,
                               double value);

int ember_masked_fill_(ember_tensor *t, const ember_tensor *mask,
                       double value) {
  if (ember_ag_active1(t)) return ember_ag_masked_fill_(t, mask, value);
  if (masked_fill_inplace(t, mask, value) < 0) return -1;
  ember_bump_version(t);
  return 0;
}

static int masked_fill_inplace(ember_tensor *t, const ember_tensor *mask,
                               double value) {
  if (check_mask("masked_fill", mask) < 0 ||
      same_device("masked_fill", t, mask) < 0)
    return -1;
  if (has_internal_overlap(t))
    return ember_set_error("masked_fill_: cannot write in place to an "
                           "expanded tensor; clone it first");
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes("masked_fill", t->ndim, t->shape, mask->ndim,
                             mask->shape, &n, shape) < 0)
    return -1;
  if (n != t->ndim || memcmp(shape, t->shape, (size_t)n * sizeof *shape) != 0) {
    char b1[128], b2[128];
    return ember_set_error("masked_fill: mask of shape %s does not broadcast "
                           "to the tensor's shape %s",
                           ember_shape_str(b1, sizeof b1, mask->ndim, mask->shape),
                           ember_shape_str(b2, sizeof b2, t->ndim, t->shape));
  }
  ember_tensor *v = ember_empty_on(t->storage->device, 0, NULL, t->dtype);
  if (!v) return -1;
  ember_fill_(v, value);
  ember_tensor *ev = ember_broadcast_to(v, t->ndim, t->shape);
  ember_tensor *em = ev ? ember_broadcast_to(mask, t->ndim, t->shape) : NULL;
  int rc = em ? ember_backend_of(t)->where(t, em, ev, t) : -1;
  ember_tensor_release(em);
  ember_tensor_release(ev);
  ember_tensor_release(v);
  return rc;
}

ember_tensor *ember_masked_fill(const ember_tensor *t, const ember_tensor *mask,
                                double value) {
  if (check_mask("masked_fill", mask) < 0) return NULL;
  if (ember_ag_active1(t)) return ember_ag_masked_fill(t, mask, value);
  ember_tensor *out = ember_clone(t);
  if (out && ember_masked_fill_(out, mask, value) < 0) {
    ember_tensor_release(out);
    return NULL;
  }
  return out;
}

int ember_equal(const ember_tensor *a, const ember_tensor *b) {
  if (same_device("equal", a, b) < 0) return -1;
  if (!same_shape(a, b)) return 0;
  if (ember_numel(a) == 0) return 1;
  ember_tensor *eq = ember_compare(EMBER_EQ, a, b);
  ember_tensor *all = eq ? ember_reduce(EMBER_MIN, eq, 0) : NULL;
  int64_t v = 0;
  int rc = all ? ember_item_int(all, &v) : -1;
  ember_tensor_release(all);
  ember_tensor_release(eq);
  return rc < 0 ? -1 : v != 0;
}

/* }====================================================================== */
