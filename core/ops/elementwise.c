/*
** elementwise.c -- elementwise math, front door to backward: unary ops
** (with their parameter forms and clamp), binary ops with broadcasting and
** type promotion, comparisons, where, masked_fill, equal, copy_ and fill_.
**
** Contract of every op here:
**   - arguments are checked once, at the front door, before anything is
**     allocated or written; a failed call changes nothing;
**   - the result dtype follows PyTorch's promotion (result_type below):
**     a 0-d operand (a Lua number arrives as one) only decides the dtype
**     when it is of a higher category than the tensor beside it;
**   - broadcasting gives the result shape; operands are cast and expanded
**     (views, no copy) to it, then one kernel of the backend's table runs;
**   - in-place forms (name_) keep the tensor's dtype and shape: a result
**     that would need another of either is an error; a source sharing the
**     target's storage is read from a copy;
**   - recording: the result is computed first (recording paused only
**     around the public ops used internally), then, when an input requires
**     grad and the result is float, a node is recorded holding the op's
**     saved state (a struct per op) and what its backward reads.  In-place
**     forms check autograd's rules, build the node and save what backward
**     needs before the write, then make the node the target's history.
**   - each backward follows PyTorch's tools/autograd/derivatives.yaml and
**     sits right after its forward; a gradient may keep the broadcast shape
**     or another float dtype, the engine sums and casts it to the input
**     (autograd.c: fit_grad).
*/
#include <math.h>
#include <string.h>

#include "ops.h"

static const char *const unary_names[EMBER_NUNARY] = {
  "neg", "abs", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu",
  "clamp", "erf", "log1p", "expm1", "gelu", "leaky_relu", "floor", "ceil",
  "round", "trunc", "sign", "erfinv", "silu",
};
static const char *const binary_names[EMBER_NBINARY] = {
  "add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder", "fmod",
  "atan2", "hypot",
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

/* Is `shape` (n dims) exactly t's shape? */
static int is_shape_of(const ember_tensor *t, int n, const int64_t *shape) {
  return n == t->ndim && memcmp(shape, t->shape, (size_t)n * sizeof *shape) == 0;
}

/* A gradient that passes through unchanged (copy_, and fill_'s node,
   which has no inputs). */
static int pass_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  (void)n;
  ember_tensor_retain(g);
  gin[0] = g;
  return 0;
}

/* {======================================================================
** Unary ops and clamp
** ======================================================================= */

/* p0, p1: what the backend's unary_backward kernel reads: the op's
   parameter (gelu's approximation, leaky_relu's slope) in p0, or clamp's
   bounds in both */
struct unary_saved {
  int op;
  double p0, p1;
};

static const char *const unary_node_names[EMBER_NUNARY] = {
  "NegBackward", "AbsBackward", "ExpBackward", "LogBackward", "SqrtBackward",
  "SinBackward", "CosBackward", "TanhBackward", "SigmoidBackward",
  "ReluBackward", "ClampBackward", "ErfBackward", "Log1pBackward",
  "Expm1Backward", "GeluBackward", "LeakyReluBackward", "FloorBackward",
  "CeilBackward", "RoundBackward", "TruncBackward", "SignBackward",
  "ErfinvBackward", "SiluBackward",
};

static int unary_backward(ember_node *n, ember_tensor *g, ember_tensor **gin);

/* Rounding and sign: piecewise constant, so their gradient is zero and
   backward reads nothing. */
static int zero_grad(ember_unary_op op) {
  return op == EMBER_FLOOR || op == EMBER_CEIL || op == EMBER_ROUND ||
         op == EMBER_TRUNC || op == EMBER_SIGN;
}

/* Ops that produce floats promote integer inputs to float32. */
static int float_only(ember_unary_op op) {
  return op != EMBER_NEG && op != EMBER_ABS && op != EMBER_RELU &&
         op != EMBER_CLAMP && !zero_grad(op);
}

/* Ops whose derivative is written with their output rather than input. */
static int uses_output(ember_unary_op op) {
  return op == EMBER_EXP || op == EMBER_EXPM1 || op == EMBER_SQRT ||
         op == EMBER_TANH || op == EMBER_SIGMOID || op == EMBER_RELU ||
         op == EMBER_ERFINV;
}

/* Does op's backward read the input's value (a copy, for an in-place op)? */
static int uses_input(ember_unary_op op) {
  return !uses_output(op) && op != EMBER_NEG && !zero_grad(op);
}

/* The node for op over t: x is t's value (a copy when t is about to be
   overwritten), out the result; p0, p1 as in struct unary_saved. */
static ember_node *unary_node(ember_unary_op op, const ember_tensor *t,
                              const ember_tensor *x, const ember_tensor *out,
                              double p0, double p1) {
  ember_node *n = ember_ag_node2(unary_node_names[op], unary_backward, t, NULL);
  if (!n) return NULL;
  struct unary_saved *s = EMBER_NODE_STATE(n, struct unary_saved);
  s->op = op;
  s->p0 = p0;
  s->p1 = p1;
  if (op != EMBER_NEG && !zero_grad(op) &&
      ember_ag_save(n, uses_output(op) ? out : x) < 0) {
    ember_ag_node_release(n);
    return NULL;
  }
  return n;
}

/* out = op(t); t's checks are done.  Integer inputs of float-only ops are
   cast first (never recorded: an integer tensor does not require grad). */
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

/* The op and its parameter; gelu names the function in its message
   ("gelu" or "gelu_"). */
static int check_unary(const char *gelu, ember_unary_op op, double param) {
  if ((unsigned)op >= EMBER_NUNARY || op == EMBER_CLAMP)
    return ember_set_error("unary: bad op");
  if (op == EMBER_GELU && param != 0 && param != 1)
    return ember_set_error("%s: approximation must be 0 (none) or 1 (tanh)", gelu);
  return 0;
}

ember_tensor *ember_unary_p(ember_unary_op op, const ember_tensor *t,
                            double param) {
  if (check_unary("gelu", op, param) < 0) return NULL;
  double p0, p1;
  unary_params(op, param, &p0, &p1);
  ember_tensor *out = unary_impl(op, t, p0, p1);
  if (!out || !ember_ag_active1(t) || !ember_dtype_is_float(t->dtype))
    return out;
  return ember_ag_finish(unary_node(op, t, t, out, param, INFINITY), out, 0);
}

ember_tensor *ember_unary(ember_unary_op op, const ember_tensor *t) {
  if (op == EMBER_CLAMP) return ember_clamp(t, -INFINITY, INFINITY);
  return ember_unary_p(op, t, default_param(op));
}

static int unary_inplace_check(ember_unary_op op, const ember_tensor *t) {
  const char *fn = unary_names[op];
  if (float_only(op) && !ember_dtype_is_float(t->dtype))
    return ember_set_error("%s_: result type float32 can't be cast to the "
                           "tensor's dtype %s", fn, ember_dtype_name(t->dtype));
  if (t->dtype == EMBER_BOOL)
    return ember_set_error("%s_: not supported for bool tensors", fn);
  if (has_internal_overlap(t))
    return ember_set_error("%s_: cannot write in place to an expanded tensor "
                           "(several elements share memory); clone it first", fn);
  return 0;
}

/* The node of an in-place unary op, built before t changes: what it saves
   is taken now (a copy of t when backward reads the input; t itself when
   it reads the output, whose version unary_inplace_run brings up to date). */
static ember_node *unary_inplace_node(ember_unary_op op, ember_tensor *t,
                                      double p0, double p1) {
  if (!uses_input(op)) return unary_node(op, t, NULL, t, p0, p1);
  int prev = ember_ag_pause();
  ember_tensor *x = ember_clone(t);
  ember_ag_resume(prev);
  ember_node *n = x ? unary_node(op, t, x, NULL, p0, p1) : NULL;
  ember_tensor_release(x);
  return n;
}

/* Run the in-place kernel over t; with a node n (recording), make it t's
   history.  A failed write releases n and leaves t as it was. */
static int unary_inplace_run(ember_unary_op op, ember_tensor *t, double p0,
                             double p1, ember_node *n) {
  if (ember_backend_of(t)->unary(op, t, t, p0, p1) < 0) {
    ember_ag_node_release(n);
    return -1;
  }
  ember_bump_version(t);
  if (!n) return 0;
  if (uses_output(op)) n->saved_version[0] = t->storage->version;
  return ember_ag_rebase(t, n, 1);
}

int ember_unary_p_(ember_unary_op op, ember_tensor *t, double param) {
  if (check_unary("gelu_", op, param) < 0) return -1;
  int rec = ember_ag_active1(t);
  if (rec && ember_ag_check_inplace(unary_node_names[op], t) < 0) return -1;
  if (unary_inplace_check(op, t) < 0) return -1;
  ember_node *n = NULL;
  if (rec && !(n = unary_inplace_node(op, t, param, INFINITY))) return -1;
  double p0, p1;
  unary_params(op, param, &p0, &p1);
  return unary_inplace_run(op, t, p0, p1, n);
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
  ember_tensor *out;
  if (!ember_dtype_is_float(t->dtype) && (fractional(lo) || fractional(hi))) {
    /* not recorded: an integer tensor does not require grad */
    ember_tensor *f = ember_cast(t, EMBER_FLOAT32);
    out = f ? unary_impl(EMBER_CLAMP, f, lo, hi) : NULL;
    ember_tensor_release(f);
  } else {
    out = unary_impl(EMBER_CLAMP, t, lo, hi);
  }
  if (!out || !ember_ag_active1(t)) return out;
  return ember_ag_finish(unary_node(EMBER_CLAMP, t, t, out, lo, hi), out, 0);
}

int ember_clamp_(ember_tensor *t, double lo, double hi) {
  if (check_clamp(lo, hi) < 0) return -1;
  int rec = ember_ag_active1(t);
  if (rec && ember_ag_check_inplace("clamp_", t) < 0) return -1;
  if (unary_inplace_check(EMBER_CLAMP, t) < 0) return -1;
  ember_node *n = NULL;
  if (rec && !(n = unary_inplace_node(EMBER_CLAMP, t, lo, hi))) return -1;
  return unary_inplace_run(EMBER_CLAMP, t, lo, hi, n);
}

/* Every unary op but neg through the backend's unary_backward kernel:
   g * op'(x), with x or the output saved (uses_output); neg is -g. */
static int unary_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct unary_saved *st = EMBER_NODE_STATE(n, struct unary_saved);
  ember_unary_op op = (ember_unary_op)st->op;
  if (op == EMBER_NEG) return (gin[0] = ember_unary(EMBER_NEG, g)) ? 0 : -1;
  if (zero_grad(op))
    return (gin[0] = ember_zeros_on(g->storage->device, g->ndim, g->shape,
                                    g->dtype)) ? 0 : -1;
  const ember_tensor *s = n->saved[0];
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gc = ember_temp(&T, ember_cast(g, s->dtype));
  ember_tensor *out = gc ? ember_empty_on(g->storage->device, g->ndim,
                                          g->shape, s->dtype) : NULL;
  if (out && ember_backend_of(out)->unary_backward(op, out, gc, s, st->p0,
                                                   st->p1) < 0) {
    ember_tensor_release(out);
    out = NULL;
  }
  ember_temps_release(&T);
  return (gin[0] = out) ? 0 : -1;
}

/* }====================================================================== */

/* {======================================================================
** Binary ops
** ======================================================================= */

/* Where backward finds a, b and the result among the node's saved
   tensors (-1: not saved, the op's backward does not read it). */
struct binary_saved {
  int op;
  signed char slot_a, slot_b, slot_out;
};

static const char *const binary_node_names[EMBER_NBINARY] = {
  "AddBackward", "SubBackward", "MulBackward", "DivBackward", "PowBackward",
  "MaximumBackward", "MinimumBackward", "RemainderBackward", "FmodBackward",
  "Atan2Backward", "HypotBackward",
};

static int binary_backward(ember_node *n, ember_tensor *g, ember_tensor **gin);

/* The dtype a binary op computes in, or -1 (with a message). */
static int binary_dtype(ember_binary_op op, const ember_tensor *a,
                        const ember_tensor *b, ember_dtype *out) {
  ember_dtype dt = a->dtype == b->dtype ? a->dtype : result_type(a, b);
  const char *fn = binary_names[op];
  if ((op == EMBER_DIV || op == EMBER_ATAN2 || op == EMBER_HYPOT) &&
      !ember_dtype_is_float(dt))
    dt = EMBER_FLOAT32;
  if (dt == EMBER_BOOL && (op == EMBER_SUB || op == EMBER_POW ||
                           op == EMBER_REMAINDER || op == EMBER_FMOD))
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

/* An integer remainder or fmod by 0 has no result (as PyTorch). */
static int check_int_divisor(ember_binary_op op, const ember_tensor *b) {
  ember_tensor *zero = ember_scalar_as(b, 0.0);
  ember_tensor *z = zero ? ember_compare(EMBER_EQ, b, zero) : NULL;
  ember_tensor *any = z ? ember_reduce(EMBER_MAX, z, 0) : NULL;
  int64_t v = 0;
  int rc = any ? ember_item_int(any, &v) : (z && ember_numel(z) == 0 ? 0 : -1);
  ember_tensor_release(any);
  ember_tensor_release(z);
  ember_tensor_release(zero);
  if (rc == 0 && v)
    return ember_set_error("%s: integer division by zero", binary_names[op]);
  return rc;
}

/* The dtype checks that depend on b's values. */
static int check_values(ember_binary_op op, const ember_tensor *b,
                        ember_dtype dt) {
  if (ember_dtype_is_float(dt)) return 0;
  if (op == EMBER_POW) return check_int_pow(b);
  if (op == EMBER_REMAINDER || op == EMBER_FMOD) {
    int prev = ember_ag_pause();
    int rc = check_int_divisor(op, b);
    ember_ag_resume(prev);
    return rc;
  }
  return 0;
}

/* Which of a, b, out the backward of op needs, given which inputs need a
   gradient (ga, gb). */
static void binary_saves(ember_binary_op op, int ga, int gb, int *sa, int *sb,
                         int *so) {
  *sa = *sb = *so = 0;
  switch (op) {
    case EMBER_MUL: *sa = gb; *sb = ga; break;
    case EMBER_DIV: *sb = 1; *so = gb; break;
    case EMBER_POW: *sa = 1; *sb = 1; *so = gb; break;
    case EMBER_MAXIMUM: case EMBER_MINIMUM: *sa = *sb = 1; break;
    case EMBER_REMAINDER: case EMBER_FMOD: *sa = gb; *sb = gb; break;
    case EMBER_ATAN2: *sa = *sb = 1; break;
    case EMBER_HYPOT: *sa = ga; *sb = gb; *so = 1; break;
    default: break;
  }
}

/* Save t for backward, noting its slot; a no-op when !want. */
static int save_slot(ember_node *n, int want, const ember_tensor *t,
                     signed char *slot) {
  if (!want) return 0;
  *slot = (signed char)n->nsaved;
  return ember_ag_save(n, t);
}

/* Node for a op b; x is a's value (a copy when a is about to be
   overwritten, made here only if backward reads it), out the result. */
static ember_node *binary_node(ember_binary_op op, const ember_tensor *a,
                               const ember_tensor *b, int copy_a,
                               const ember_tensor *out) {
  ember_node *n = ember_ag_node2(binary_node_names[op], binary_backward, a, b);
  if (!n) return NULL;
  int sa, sb, so;
  binary_saves(op, n->needs[0], n->ninputs > 1 && n->needs[1], &sa, &sb, &so);
  struct binary_saved *s = EMBER_NODE_STATE(n, struct binary_saved);
  s->op = op;
  s->slot_a = s->slot_b = s->slot_out = -1;
  ember_tensor *x = NULL;
  if (sa && copy_a) {
    int prev = ember_ag_pause();
    x = ember_clone(a);
    ember_ag_resume(prev);
    if (!x) { ember_ag_node_release(n); return NULL; }
  }
  int rc = 0;
  if (save_slot(n, sa, x ? x : a, &s->slot_a) < 0 ||
      save_slot(n, sb, b, &s->slot_b) < 0 ||
      save_slot(n, so, out, &s->slot_out) < 0)
    rc = -1;
  ember_tensor_release(x);
  if (rc < 0) { ember_ag_node_release(n); return NULL; }
  return n;
}

/* a op b over the broadcast shape, operands cast to dt (public ops:
   recording is paused around them). */
static ember_tensor *binary_broadcast(const char *fn, ember_binary_op op,
                                      const ember_backend_i *be,
                                      const ember_tensor *a,
                                      const ember_tensor *b, ember_dtype dt) {
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &n,
                             shape) < 0)
    return NULL;
  int prev = ember_ag_pause();
  ember_tensor *ca = ember_cast(a, dt), *cb = ca ? ember_cast(b, dt) : NULL;
  ember_ag_resume(prev);
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

/*
** out = a op b into a fresh tensor.  The common case (same shape, same
** dtype, no cast) allocates only the result: this is the path a tiny `a + b`
** takes, plain and recording, so it stays short.
*/
ember_tensor *ember_binary(ember_binary_op op, const ember_tensor *a,
                           const ember_tensor *b) {
  if ((unsigned)op >= EMBER_NBINARY) { ember_set_error("binary: bad op"); return NULL; }
  const char *fn = binary_names[op];
  if (same_device(fn, a, b) < 0) return NULL;
  ember_dtype dt;
  if (binary_dtype(op, a, b, &dt) < 0) return NULL;
  if (check_values(op, b, dt) < 0) return NULL;
  const ember_backend_i *be = a->storage->device == EMBER_CPU ? &ember_cpu_backend
                                                            : ember_backend_of(a);
  ember_tensor *out;
  if (a->dtype == dt && b->dtype == dt && same_shape(a, b)) {
    out = ember_empty_on(a->storage->device, a->ndim, a->shape, dt);
    if (out) out = ember_kernel_result(out, be->binary(op, out, a, b));
  } else {
    out = binary_broadcast(fn, op, be, a, b, dt);
  }
  if (!out || !ember_ag_active2(a, b) || !ember_dtype_is_float(dt)) return out;
  return ember_ag_finish(binary_node(op, a, b, 0, out), out, 0);
}

/* Can a result of dtype `from` be stored in `to` (PyTorch's can_cast)? */
static int can_cast(ember_dtype from, ember_dtype to) {
  if (ember_dtype_is_float(from)) return ember_dtype_is_float(to);
  if (ember_dtype_is_int(from)) return to != EMBER_BOOL;
  return 1;
}

/* The checks of a op= b; *dt: the dtype it computes in. */
static int binary_inplace_check(ember_binary_op op, const ember_tensor *a,
                                const ember_tensor *b, ember_dtype *dt) {
  const char *fn = binary_names[op];
  if (same_device(fn, a, b) < 0) return -1;
  if (binary_dtype(op, a, b, dt) < 0) return -1;
  if (!can_cast(*dt, a->dtype))
    return ember_set_error("%s_: result type %s can't be cast to the "
                           "destination dtype %s", fn, ember_dtype_name(*dt),
                           ember_dtype_name(a->dtype));
  if (has_internal_overlap(a))
    return ember_set_error("%s_: cannot write in place to an expanded tensor "
                           "(several elements share memory); clone it first", fn);
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes(fn, a->ndim, a->shape, b->ndim, b->shape, &n,
                             shape) < 0)
    return -1;
  if (!is_shape_of(a, n, shape)) {
    char b1[128], b2[128];
    return ember_set_error("%s_: the result shape %s differs from the shape "
                           "%s of the tensor written in place", fn,
                           ember_shape_str(b1, sizeof b1, n, shape),
                           ember_shape_str(b2, sizeof b2, a->ndim, a->shape));
  }
  if (check_values(op, b, *dt) < 0) return -1;
  return 0;
}

/* a op= b, checked; computes in dt.  Uses public ops on b (copies, casts):
   the caller pauses recording. */
static int binary_inplace_write(ember_binary_op op, ember_tensor *a,
                                const ember_tensor *b, ember_dtype dt) {
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

int ember_binary_(ember_binary_op op, ember_tensor *a, const ember_tensor *b) {
  if ((unsigned)op >= EMBER_NBINARY) return ember_set_error("binary: bad op");
  const char *name = binary_node_names[op];
  int rec = ember_ag_active2(a, b);
  if (rec) {
    if (ember_ag_check_inplace(name, a) < 0 || ember_ag_check_target(name, a) < 0)
      return -1;
    if (!ember_dtype_is_float(a->dtype))
      return ember_set_error("%s_: an integer tensor cannot take a gradient "
                             "in place", name);
  }
  ember_dtype dt;
  if (binary_inplace_check(op, a, b, &dt) < 0) return -1;
  /* as the unary ops: everything saved before a changes; a saved output
     is a itself, its version updated after the write */
  ember_node *n = NULL;
  if (rec && !(n = binary_node(op, a, b, 1, a))) return -1;
  /* the write's copies and casts of b are not recorded (without rec
     nothing is: neither a nor b requires grad, or recording is off, as
     when backward accumulates a gradient) */
  int prev = rec ? ember_ag_pause() : 0;
  int rc = binary_inplace_write(op, a, b, dt);
  if (rec) ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  ember_bump_version(a);
  if (!n) return 0;
  int so = EMBER_NODE_STATE(n, struct binary_saved)->slot_out;
  if (so >= 0) n->saved_version[so] = a->storage->version;
  return ember_ag_rebase(a, n, 1);
}

static const ember_tensor *saved_slot(ember_node *n, int slot) {
  return slot >= 0 ? n->saved[slot] : NULL;
}

static int binary_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct binary_saved *st = EMBER_NODE_STATE(n, struct binary_saved);
  ember_binary_op op = (ember_binary_op)st->op;
  const ember_tensor *a = saved_slot(n, st->slot_a), *b = saved_slot(n, st->slot_b),
                     *out = saved_slot(n, st->slot_out);
  int ga = n->needs[0], gb = n->ninputs > 1 && n->needs[1];
  switch (op) {   /* first the ops that need no temporaries */
    case EMBER_ADD:
      if (ga) { ember_tensor_retain(g); gin[0] = g; }
      if (gb) { ember_tensor_retain(g); gin[1] = g; }
      return 0;
    case EMBER_SUB:
      if (ga) { ember_tensor_retain(g); gin[0] = g; }
      if (gb && !(gin[1] = ember_unary(EMBER_NEG, g))) return -1;
      return 0;
    case EMBER_MUL:
      if (ga && !(gin[0] = ember_binary(EMBER_MUL, g, b))) return -1;
      if (gb && !(gin[1] = ember_binary(EMBER_MUL, g, a))) return -1;
      return 0;
    case EMBER_REMAINDER:
    case EMBER_FMOD:
      if (ga) { ember_tensor_retain(g); gin[0] = g; }
      if (!gb) return 0;
      break;
    default:
      break;
  }
  ember_temps T;
  ember_temps_init(&T);
  int rc = 0;
  switch (op) {
    case EMBER_DIV:
      if (ga && !(gin[0] = ember_binary(EMBER_DIV, g, b))) return -1;
      if (gb) {   /* -g * out / b */
        ember_tensor *t = ember_temp(&T, ember_binary(EMBER_MUL, g, out));
        ember_tensor *u = ember_temp(&T, t ? ember_binary(EMBER_DIV, t, b) : NULL);
        if (!u || !(gin[1] = ember_unary(EMBER_NEG, u))) rc = -1;
      }
      break;
    case EMBER_POW:
      if (ga) {   /* g * b * a^(b-1), 0 where b == 0 */
        ember_tensor *one = ember_temp(&T, ember_scalar_as(b, 1.0));
        ember_tensor *bm1 = ember_temp(&T, one ? ember_binary(EMBER_SUB, b, one) : NULL);
        ember_tensor *p = ember_temp(&T, bm1 ? ember_binary(EMBER_POW, a, bm1) : NULL);
        ember_tensor *q = ember_temp(&T, p ? ember_binary(EMBER_MUL, p, b) : NULL);
        if (!q || !(gin[0] = ember_binary(EMBER_MUL, g, q))) rc = -1;
      }
      if (gb && rc == 0) {   /* g * out * log(a), 0 where a == 0 and b >= 0 */
        ember_tensor *la = ember_temp(&T, ember_unary(EMBER_LOG, a));
        ember_tensor *t = ember_temp(&T, la ? ember_binary(EMBER_MUL, out, la) : NULL);
        ember_tensor *zero = ember_temp(&T, t ? ember_scalar_as(a, 0.0) : NULL);
        ember_tensor *az = ember_temp(&T, zero ? ember_compare(EMBER_EQ, a, zero) : NULL);
        ember_tensor *bz = ember_temp(&T, az ? ember_compare(EMBER_GE, b, zero) : NULL);
        ember_tensor *mask = ember_temp(&T, bz ? ember_binary(EMBER_MUL, az, bz) : NULL);
        ember_tensor *safe = ember_temp(&T, mask ? ember_masked_fill(t, mask, 0.0) : NULL);
        if (!safe || !(gin[1] = ember_binary(EMBER_MUL, g, safe))) rc = -1;
      }
      break;
    case EMBER_MAXIMUM:
    case EMBER_MINIMUM: {
      /* the larger (smaller) side takes g; ties share it equally */
      ember_cmp_op win = op == EMBER_MAXIMUM ? EMBER_GT : EMBER_LT;
      ember_tensor *half = ember_temp(&T, ember_scalar_as(g, 0.5));
      ember_tensor *eq = ember_temp(&T, half ? ember_compare(EMBER_EQ, a, b) : NULL);
      ember_tensor *gh = ember_temp(&T, eq ? ember_binary(EMBER_MUL, g, half) : NULL);
      ember_tensor *zero = ember_temp(&T, gh ? ember_scalar_as(g, 0.0) : NULL);
      rc = zero ? 0 : -1;
      for (int side = 0; side < 2 && rc == 0; side++) {
        if (!(side == 0 ? ga : gb)) continue;
        ember_tensor *w = ember_temp(&T, side == 0 ? ember_compare(win, a, b)
                                                   : ember_compare(win, b, a));
        ember_tensor *t = ember_temp(&T, w ? ember_where(w, g, zero) : NULL);
        if (!t || !(gin[side] = ember_where(eq, gh, t))) rc = -1;
      }
      break;
    }
    case EMBER_REMAINDER:
    case EMBER_FMOD: {   /* db = -floor(a / b) g (fmod: trunc) */
      ember_unary_op r = op == EMBER_REMAINDER ? EMBER_FLOOR : EMBER_TRUNC;
      ember_tensor *q = ember_temp(&T, ember_binary(EMBER_DIV, a, b));
      ember_tensor *f = ember_temp(&T, q ? ember_unary(r, q) : NULL);
      ember_tensor *t = ember_temp(&T, f ? ember_binary(EMBER_MUL, g, f) : NULL);
      if (!t || !(gin[1] = ember_unary(EMBER_NEG, t))) rc = -1;
      break;
    }
    case EMBER_ATAN2: {   /* da = g b / (a^2 + b^2), db = -g a / (a^2 + b^2) */
      ember_tensor *a2 = ember_temp(&T, ember_binary(EMBER_MUL, a, a));
      ember_tensor *b2 = ember_temp(&T, a2 ? ember_binary(EMBER_MUL, b, b) : NULL);
      ember_tensor *r2 = ember_temp(&T, b2 ? ember_binary(EMBER_ADD, a2, b2) : NULL);
      ember_tensor *gr = ember_temp(&T, r2 ? ember_binary(EMBER_DIV, g, r2) : NULL);
      rc = gr ? 0 : -1;
      if (rc == 0 && ga && !(gin[0] = ember_binary(EMBER_MUL, gr, b))) rc = -1;
      if (rc == 0 && gb) {
        ember_tensor *t = ember_temp(&T, ember_binary(EMBER_MUL, gr, a));
        if (!t || !(gin[1] = ember_unary(EMBER_NEG, t))) rc = -1;
      }
      break;
    }
    case EMBER_HYPOT: {   /* da = g a / out, db = g b / out */
      ember_tensor *go = ember_temp(&T, ember_binary(EMBER_DIV, g, out));
      rc = go ? 0 : -1;
      if (rc == 0 && ga && !(gin[0] = ember_binary(EMBER_MUL, go, a))) rc = -1;
      if (rc == 0 && gb && !(gin[1] = ember_binary(EMBER_MUL, go, b))) rc = -1;
      break;
    }
    default:
      rc = ember_set_error("backward: bad binary op");
      break;
  }
  ember_temps_release(&T);
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
  /* a bool result is never recorded; the casts are not either */
  int prev = ember_ag_pause();
  ember_tensor *ca = ember_cast(a, dt), *cb = ca ? ember_cast(b, dt) : NULL;
  ember_ag_resume(prev);
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

/* where and masked_fill share a node: the condition (bool) is saved, and
   `first` names the input that the condition's true side selects (-1:
   none, masked_fill's filled places get no gradient) */
struct where_saved {
  int first;
};

static int where_backward(ember_node *n, ember_tensor *g, ember_tensor **gin);

static int check_mask(const char *fn, const ember_tensor *mask) {
  if (mask->dtype != EMBER_BOOL)
    return ember_set_error("%s: expected a bool mask, got %s", fn,
                           ember_dtype_name(mask->dtype));
  return 0;
}

/* A node over (a, b) saving cond, whose true side is input `first`. */
static ember_node *where_node(const char *name, const ember_tensor *a,
                              const ember_tensor *b, const ember_tensor *cond,
                              int first) {
  ember_node *n = ember_ag_node2(name, where_backward, a, b);
  if (!n) return NULL;
  EMBER_NODE_STATE(n, struct where_saved)->first = first;
  if (ember_ag_save(n, cond) < 0) { ember_ag_node_release(n); return NULL; }
  return n;
}

ember_tensor *ember_where(const ember_tensor *cond, const ember_tensor *a,
                          const ember_tensor *b) {
  if (check_mask("where", cond) < 0 || same_device("where", cond, a) < 0 ||
      same_device("where", a, b) < 0)
    return NULL;
  int n, n2;
  int64_t s1[EMBER_MAX_DIMS], shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes("where", a->ndim, a->shape, b->ndim, b->shape, &n,
                             s1) < 0 ||
      ember_broadcast_shapes("where", cond->ndim, cond->shape, n, s1, &n2,
                             shape) < 0)
    return NULL;
  ember_dtype dt = result_type(a, b);
  int prev = ember_ag_pause();
  ember_tensor *ca = ember_cast(a, dt), *cb = ca ? ember_cast(b, dt) : NULL;
  ember_ag_resume(prev);
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
  if (!out || !ember_ag_active2(a, b) || !ember_dtype_is_float(dt)) return out;
  return ember_ag_finish(where_node("WhereBackward", a, b, cond, 0), out, 0);
}

/* The checks of masked_fill over t (in place: t must not be expanded). */
/* src broadcasts to dst's shape exactly (dst does not grow); msg is the
   error's format, with src's and dst's shapes for its two %s. */
static int broadcasts_onto(const char *fn, const char *msg,
                           const ember_tensor *src, const ember_tensor *dst) {
  int n;
  int64_t shape[EMBER_MAX_DIMS];
  if (ember_broadcast_shapes(fn, dst->ndim, dst->shape, src->ndim,
                             src->shape, &n, shape) < 0)
    return -1;
  if (!is_shape_of(dst, n, shape)) {
    char b1[128], b2[128];
    return ember_set_error(msg,
                           ember_shape_str(b1, sizeof b1, src->ndim, src->shape),
                           ember_shape_str(b2, sizeof b2, dst->ndim, dst->shape));
  }
  return 0;
}

static int masked_fill_check(const ember_tensor *t, const ember_tensor *mask,
                             int inplace) {
  if (check_mask("masked_fill", mask) < 0 ||
      same_device("masked_fill", t, mask) < 0)
    return -1;
  if (inplace && has_internal_overlap(t))
    return ember_set_error("masked_fill_: cannot write in place to an "
                           "expanded tensor; clone it first");
  return broadcasts_onto("masked_fill", "masked_fill: mask of shape %s does "
                         "not broadcast to the tensor's shape %s", mask, t);
}

static int fill_plain(ember_tensor *dst, double value);

/* t[mask] = value, checked; t is not recorded here. */
static int masked_fill_write(ember_tensor *t, const ember_tensor *mask,
                             double value) {
  ember_tensor *v = ember_empty_on(t->storage->device, 0, NULL, t->dtype);
  if (!v) return -1;
  if (fill_plain(v, value) < 0) { ember_tensor_release(v); return -1; }
  ember_tensor *ev = ember_broadcast_to(v, t->ndim, t->shape);
  ember_tensor *em = ev ? ember_broadcast_to(mask, t->ndim, t->shape) : NULL;
  int rc = em ? ember_backend_of(t)->where(t, em, ev, t) : -1;
  ember_tensor_release(em);
  ember_tensor_release(ev);
  ember_tensor_release(v);
  return rc;
}

int ember_masked_fill_(ember_tensor *t, const ember_tensor *mask,
                       double value) {
  int rec = ember_ag_active1(t);
  if (rec && ember_ag_check_inplace("masked_fill_", t) < 0) return -1;
  if (masked_fill_check(t, mask, 1) < 0) return -1;
  ember_node *n = NULL;
  /* input 0 is the "false" side: the filled places get no gradient */
  if (rec && !(n = where_node("MaskedFillBackward", t, NULL, mask, 1))) return -1;
  if (masked_fill_write(t, mask, value) < 0) { ember_ag_node_release(n); return -1; }
  ember_bump_version(t);
  return n ? ember_ag_rebase(t, n, 1) : 0;
}

ember_tensor *ember_masked_fill(const ember_tensor *t, const ember_tensor *mask,
                                double value) {
  if (masked_fill_check(t, mask, 0) < 0) return NULL;
  int prev = ember_ag_pause();
  ember_tensor *out = ember_clone(t);
  ember_ag_resume(prev);
  if (out && masked_fill_write(out, mask, value) < 0) {
    ember_tensor_release(out);
    return NULL;
  }
  if (!out || !ember_ag_active1(t) || !ember_dtype_is_float(out->dtype))
    return out;
  return ember_ag_finish(where_node("MaskedFillBackward", t, NULL, mask, 1),
                         out, 0);
}

/* The side the condition selects gets g where it holds, the other side
   where it does not. */
static int where_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_tensor *cond = n->saved[0];
  int first = EMBER_NODE_STATE(n, struct where_saved)->first;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *zero = ember_temp(&T, ember_scalar_as(g, 0.0));
  int rc = zero ? 0 : -1;
  for (int i = 0; i < n->ninputs && rc == 0; i++) {
    if (!n->needs[i]) continue;
    gin[i] = i == first ? ember_where(cond, g, zero) : ember_where(cond, zero, g);
    if (!gin[i]) rc = -1;
  }
  ember_temps_release(&T);
  return rc;
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

/* {======================================================================
** copy_ and fill_
** ======================================================================= */

static int fill_plain(ember_tensor *dst, double value) {
  int64_t iv = 0;
  if (!ember_dtype_is_float(dst->dtype)) {
    if (isnan(value)) value = 0;
    iv = value >= 9.2e18 ? INT64_MAX : value <= -9.2e18 ? INT64_MIN
                                                        : (int64_t)value;
  }
  return ember_backend_of(dst)->fill(dst, value, iv);
}

static int copy_check(ember_tensor *dst, const ember_tensor *src) {
  for (int i = 0; i < dst->ndim && ember_numel(src) > 1; i++)
    if (dst->strides[i] == 0 && dst->shape[i] > 1)
      return ember_set_error("copy: cannot write to an expanded tensor "
                             "(several elements share memory); clone it first");
  return broadcasts_onto("copy", "copy: source shape %s does not broadcast "
                         "to destination shape %s", src, dst);
}

/* dst = src, checked.  Uses public ops on src: the caller pauses
   recording. */
static int copy_write(ember_tensor *dst, const ember_tensor *src) {
  /* another view of dst's own storage (t:copy(t:t())) is read from a
     snapshot, so no element is overwritten before it is read; a source on
     another device is brought over first (as PyTorch's copy_ does) */
  ember_tensor *snap = NULL;
  if (src->storage->device != dst->storage->device) {
    if (!(snap = ember_to_device(src, dst->storage->device))) return -1;
    src = snap;
  } else if (src->storage == dst->storage && src != dst) {
    if (!(snap = ember_clone(src))) return -1;
    src = snap;
  }
  ember_tensor *s = ember_broadcast_to(src, dst->ndim, dst->shape);
  int rc = s ? ember_backend_of(dst)->copy(dst, s) : -1;
  ember_tensor_release(s);
  ember_tensor_release(snap);
  return rc;
}

/* dst's old value is gone: the gradient flows to src only (CopyBackward
   passes it through); after a fill_ or a copy from a constant, a non-leaf
   keeps requires_grad with a node of no edges. */
int ember_copy_(ember_tensor *dst, const ember_tensor *src) {
  int rec = ember_ag_active2(dst, src);
  if (rec && (ember_ag_check_inplace("copy_", dst) < 0 ||
              ember_ag_check_target("copy_", dst) < 0))
    return -1;
  if (copy_check(dst, src) < 0) return -1;
  ember_node *n = NULL;
  int flows = ember_ag_requires(src) && ember_dtype_is_float(dst->dtype);
  if (rec && (flows || ember_ag_requires(dst))) {
    n = flows ? ember_ag_node2("CopyBackward", pass_backward, src, NULL)
              : ember_ag_node("CopyBackward", pass_backward, 0, NULL);
    if (!n) return -1;
  }
  int prev = rec ? ember_ag_pause() : 0;   /* without rec nothing records */
  int rc = copy_write(dst, src);
  if (rec) ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  ember_bump_version(dst);
  return n ? ember_ag_rebase(dst, n, 1) : 0;
}

int ember_fill_(ember_tensor *dst, double value) {
  ember_node *n = NULL;
  if (ember_ag_active1(dst)) {
    if (ember_ag_check_inplace("fill_", dst) < 0) return -1;
    if (!(n = ember_ag_node("FillBackward", pass_backward, 0, NULL))) return -1;
  }
  if (fill_plain(dst, value) < 0) { ember_ag_node_release(n); return -1; }
  ember_bump_version(dst);
  return n ? ember_ag_rebase(dst, n, 1) : 0;
}

/* An int64 reaches an integer tensor's kernel as itself, never through a
   double: 2^53 + 1 stays 2^53 + 1.  Integer tensors cannot require grad,
   so only a float tensor may need ember_fill_'s recording.  The ranges
   are PyTorch's: uint8 takes -255..255, a negative one wrapping as in C
   (-1 is 255). */
int ember_fill_int_(ember_tensor *dst, int64_t value) {
  if (ember_dtype_is_float(dst->dtype)) return ember_fill_(dst, (double)value);
  if ((dst->dtype == EMBER_INT32 && (value < INT32_MIN || value > INT32_MAX)) ||
      (dst->dtype == EMBER_UINT8 && (value < -255 || value > 255)))
    return ember_set_error("fill_: value %lld cannot be converted to %s "
                           "without overflow", (long long)value,
                           ember_dtype_name(dst->dtype));
  if (ember_backend_of(dst)->fill(dst, (double)value, value) < 0) return -1;
  ember_bump_version(dst);
  return 0;
}

/* }====================================================================== */
