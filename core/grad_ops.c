/*
** grad_ops.c -- recording the differentiable ops, and their backward
** functions.
**
** Pattern of a recording form: pause recording, run the public op (which
** then takes its plain path), build a node whose edges lead to the inputs,
** save what the backward function needs, attach the node to the result.
** Backward functions run with recording off and use the public ops; a
** gradient may keep the broadcast shape or another float dtype, the engine
** sums and casts it to the input (autograd.c: fit_grad).
**
** Formulas follow PyTorch's tools/autograd/derivatives.yaml.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad_ops.h"
#include "ops/ops.h"

/* {======================================================================
** Helpers
** ======================================================================= */

/* op over dim, kept (dim < 0: over everything) */
static ember_tensor *reduce_kept(ember_reduce_op op, const ember_tensor *x,
                                 int dim) {
  return dim < 0 ? ember_reduce(op, x, 0) : ember_reduce_dim(op, x, dim, 1, 0);
}

/* }====================================================================== */

/* {======================================================================
** Unary ops and clamp
** ======================================================================= */

/* Ops whose derivative is written with their output rather than input. */
static int uses_output(ember_unary_op op) {
  return op == EMBER_EXP || op == EMBER_EXPM1 || op == EMBER_SQRT ||
         op == EMBER_TANH || op == EMBER_SIGMOID || op == EMBER_RELU;
}

static const char *const unary_node_names[EMBER_NUNARY] = {
  "NegBackward", "AbsBackward", "ExpBackward", "LogBackward", "SqrtBackward",
  "SinBackward", "CosBackward", "TanhBackward", "SigmoidBackward",
  "ReluBackward", "ClampBackward", "ErfBackward", "Log1pBackward",
  "Expm1Backward", "GeluBackward", "LeakyReluBackward",
};

static int unary_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  ember_unary_op op = (ember_unary_op)n->ip[0];
  if (op == EMBER_NEG) return (gin[0] = ember_unary(EMBER_NEG, g)) ? 0 : -1;
  const ember_tensor *s = n->saved[0];
  ember_tensor *gc = ember_cast(g, s->dtype);
  if (!gc) return -1;
  ember_tensor *out = ember_empty_on(g->storage->device, g->ndim, g->shape,
                                     s->dtype);
  int rc = out ? ember_backend_of(out)->unary_backward(op, out, gc, s,
                                                       n->p[0], n->p[1]) : -1;
  ember_tensor_release(gc);
  if (rc < 0) { ember_tensor_release(out); return -1; }
  gin[0] = out;
  return 0;
}

/* The node for op over t with result out (input value `x`: the tensor
   before an in-place op overwrote it). */
static ember_node *unary_node(ember_unary_op op, const ember_tensor *t,
                              const ember_tensor *x, const ember_tensor *out,
                              double p0, double p1) {
  ember_node *n = ember_ag_node2(unary_node_names[op], unary_backward, t, NULL);
  if (!n) return NULL;
  n->ip[0] = op;
  n->p[0] = p0;
  n->p[1] = p1;
  if (op != EMBER_NEG &&
      ember_ag_save(n, uses_output(op) ? out : x) < 0) {
    ember_ag_node_release(n);
    return NULL;
  }
  return n;
}

ember_tensor *ember_ag_unary(ember_unary_op op, const ember_tensor *t,
                             double param) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_unary_p(op, t, param);
  ember_ag_resume(prev);
  if (!out) return NULL;
  if (!ember_dtype_is_float(t->dtype)) return out;
  return ember_ag_finish(unary_node(op, t, t, out, param, INFINITY), out, 0);
}

/* In place: the node is built (and what it saves taken) before t changes,
   so a failure leaves t as it was; a saved output is t itself, whose
   version is then brought up to date. */
int ember_ag_unary_(ember_unary_op op, ember_tensor *t, double param) {
  if (ember_ag_check_inplace(unary_node_names[op], t) < 0) return -1;
  int prev = ember_ag_pause();
  int keep_input = !uses_output(op) && op != EMBER_NEG;
  ember_tensor *x = keep_input ? ember_clone(t) : NULL;
  ember_node *n = !keep_input || x ? unary_node(op, t, x, t, param, INFINITY)
                                   : NULL;
  int rc = n ? ember_unary_p_(op, t, param) : -1;
  if (rc == 0 && uses_output(op)) n->saved_version[0] = t->storage->version;
  ember_tensor_release(x);
  ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  return ember_ag_rebase(t, n, 1);
}

ember_tensor *ember_ag_clamp(const ember_tensor *t, double lo, double hi) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_clamp(t, lo, hi);
  ember_ag_resume(prev);
  if (!out) return NULL;
  return ember_ag_finish(unary_node(EMBER_CLAMP, t, t, out, lo, hi), out, 0);
}

int ember_ag_clamp_(ember_tensor *t, double lo, double hi) {
  if (ember_ag_check_inplace("clamp_", t) < 0) return -1;
  int prev = ember_ag_pause();
  ember_tensor *x = ember_clone(t);
  ember_node *n = x ? unary_node(EMBER_CLAMP, t, x, NULL, lo, hi) : NULL;
  int rc = n ? ember_clamp_(t, lo, hi) : -1;
  ember_tensor_release(x);
  ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  return ember_ag_rebase(t, n, 1);
}

/* }====================================================================== */

/* {======================================================================
** Binary ops
** ======================================================================= */

static const char *const binary_node_names[EMBER_NBINARY] = {
  "AddBackward", "SubBackward", "MulBackward", "DivBackward", "PowBackward",
  "MaximumBackward", "MinimumBackward",
};

/* saved: [0] a, [1] b, [2] out, as the op needs them (ip[1..3] say which) */
static const ember_tensor *saved_at(ember_node *n, int which) {
  int k = (int)n->ip[1 + which];
  return k >= 0 ? n->saved[k] : NULL;
}

static int binary_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  ember_binary_op op = (ember_binary_op)n->ip[0];
  const ember_tensor *a = saved_at(n, 0), *b = saved_at(n, 1),
                     *out = saved_at(n, 2);
  int ga = n->needs[0], gb = n->ninputs > 1 && n->needs[1];
  switch (op) {
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
    case EMBER_DIV:
      if (ga && !(gin[0] = ember_binary(EMBER_DIV, g, b))) return -1;
      if (gb) {   /* -g * out / b */
        ember_tensor *t = ember_binary(EMBER_MUL, g, out);
        ember_tensor *u = t ? ember_binary(EMBER_DIV, t, b) : NULL;
        ember_tensor_release(t);
        if (!u || !(gin[1] = ember_unary(EMBER_NEG, u))) { ember_tensor_release(u); return -1; }
        ember_tensor_release(u);
      }
      return 0;
    case EMBER_POW: {
      int rc = 0;
      if (ga) {   /* g * b * a^(b-1), 0 where b == 0 */
        ember_tensor *one = ember_scalar_as(b, 1.0);
        ember_tensor *bm1 = one ? ember_binary(EMBER_SUB, b, one) : NULL;
        ember_tensor *p = bm1 ? ember_binary(EMBER_POW, a, bm1) : NULL;
        ember_tensor *q = p ? ember_binary(EMBER_MUL, p, b) : NULL;
        gin[0] = q ? ember_binary(EMBER_MUL, g, q) : NULL;
        if (!gin[0]) rc = -1;
        ember_tensor_release(q);
        ember_tensor_release(p);
        ember_tensor_release(bm1);
        ember_tensor_release(one);
      }
      if (gb && rc == 0) {   /* g * out * log(a), 0 where a == 0 and b >= 0 */
        ember_tensor *la = ember_unary(EMBER_LOG, a);
        ember_tensor *t = la ? ember_binary(EMBER_MUL, out, la) : NULL;
        ember_tensor *zero = t ? ember_scalar_as(a, 0.0) : NULL;
        ember_tensor *az = zero ? ember_compare(EMBER_EQ, a, zero) : NULL;
        ember_tensor *bz = az ? ember_compare(EMBER_GE, b, zero) : NULL;
        ember_tensor *mask = bz ? ember_binary(EMBER_MUL, az, bz) : NULL;
        ember_tensor *safe = mask ? ember_masked_fill(t, mask, 0.0) : NULL;
        gin[1] = safe ? ember_binary(EMBER_MUL, g, safe) : NULL;
        if (!gin[1]) rc = -1;
        ember_tensor_release(safe);
        ember_tensor_release(mask);
        ember_tensor_release(bz);
        ember_tensor_release(az);
        ember_tensor_release(zero);
        ember_tensor_release(t);
        ember_tensor_release(la);
      }
      return rc;
    }
    case EMBER_MAXIMUM:
    case EMBER_MINIMUM: {
      /* the larger (smaller) side takes g; ties share it equally */
      ember_cmp_op win = op == EMBER_MAXIMUM ? EMBER_GT : EMBER_LT;
      ember_tensor *half = ember_scalar_as(g, 0.5);
      ember_tensor *eq = half ? ember_compare(EMBER_EQ, a, b) : NULL;
      ember_tensor *gh = eq ? ember_binary(EMBER_MUL, g, half) : NULL;
      ember_tensor *zero = gh ? ember_scalar_as(g, 0.0) : NULL;
      int rc = zero ? 0 : -1;
      for (int side = 0; side < 2 && rc == 0; side++) {
        if (!(side == 0 ? ga : gb)) continue;
        ember_tensor *w = side == 0 ? ember_compare(win, a, b)
                                    : ember_compare(win, b, a);
        ember_tensor *t = w ? ember_where(w, g, zero) : NULL;
        gin[side] = t ? ember_where(eq, gh, t) : NULL;
        if (!gin[side]) rc = -1;
        ember_tensor_release(t);
        ember_tensor_release(w);
      }
      ember_tensor_release(zero);
      ember_tensor_release(gh);
      ember_tensor_release(eq);
      ember_tensor_release(half);
      return rc;
    }
    default:
      return ember_set_error("backward: bad binary op");
  }
}

/* Which of a, b, out the backward of op needs. */
static void binary_saves(ember_binary_op op, int ga, int gb, int *sa, int *sb,
                         int *so) {
  *sa = *sb = *so = 0;
  switch (op) {
    case EMBER_MUL: *sa = gb; *sb = ga; break;
    case EMBER_DIV: *sb = 1; *so = gb; break;
    case EMBER_POW: *sa = 1; *sb = 1; *so = gb; break;
    case EMBER_MAXIMUM: case EMBER_MINIMUM: *sa = *sb = 1; break;
    default: break;
  }
}

/* Node for a op b; x is a's value (a copy when a is about to be
   overwritten), out the result. */
static ember_node *binary_node(ember_binary_op op, const ember_tensor *a,
                               const ember_tensor *b, const ember_tensor *x,
                               const ember_tensor *out) {
  ember_node *n = ember_ag_node2(binary_node_names[op], binary_backward, a, b);
  if (!n) return NULL;
  int sa, sb, so;
  binary_saves(op, n->needs[0], n->needs[1], &sa, &sb, &so);
  n->ip[0] = op;
  n->ip[1] = n->ip[2] = n->ip[3] = -1;
  if ((sa && (n->ip[1] = n->nsaved, ember_ag_save(n, x)) < 0) ||
      (sb && (n->ip[2] = n->nsaved, ember_ag_save(n, b)) < 0) ||
      (so && (n->ip[3] = n->nsaved, ember_ag_save(n, out)) < 0)) {
    ember_ag_node_release(n);
    return NULL;
  }
  return n;
}

ember_tensor *ember_ag_binary(ember_binary_op op, const ember_tensor *a,
                              const ember_tensor *b) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_binary(op, a, b);
  ember_ag_resume(prev);
  if (!out) return NULL;
  if (!ember_dtype_is_float(out->dtype)) return out;
  return ember_ag_finish(binary_node(op, a, b, a, out), out, 0);
}

int ember_ag_binary_(ember_binary_op op, ember_tensor *a, const ember_tensor *b) {
  if (ember_ag_check_inplace(binary_node_names[op], a) < 0 ||
      ember_ag_check_target(binary_node_names[op], a) < 0)
    return -1;
  if (!ember_dtype_is_float(a->dtype))
    return ember_set_error("%s_: an integer tensor cannot take a gradient "
                           "in place", binary_node_names[op]);
  int prev = ember_ag_pause();
  /* as ember_ag_unary_: everything saved before a changes; a saved output
     is a itself, its version updated after the write */
  int sa, sb, so;
  binary_saves(op, 1, 1, &sa, &sb, &so);
  ember_tensor *x = sa ? ember_clone(a) : NULL;
  ember_node *n = !sa || x ? binary_node(op, a, b, x ? x : a, a) : NULL;
  int rc = n ? ember_binary_(op, a, b) : -1;
  if (rc == 0 && n->ip[3] >= 0) n->saved_version[n->ip[3]] = a->storage->version;
  ember_tensor_release(x);
  ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  return ember_ag_rebase(a, n, 1);
}

/* }====================================================================== */

/* {======================================================================
** where, masked_fill, copy_, fill_
** ======================================================================= */

/* saved[0] is the condition (bool), which side it selects is ip[0] */
static int where_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_tensor *cond = n->saved[0];
  ember_tensor *zero = ember_scalar_as(g, 0.0);
  if (!zero) return -1;
  int rc = 0;
  int first = (int)n->ip[0];    /* input index of the "true" side */
  for (int i = 0; i < n->ninputs && rc == 0; i++) {
    if (!n->needs[i]) continue;
    gin[i] = i == first ? ember_where(cond, g, zero) : ember_where(cond, zero, g);
    if (!gin[i]) rc = -1;
  }
  ember_tensor_release(zero);
  return rc;
}

ember_tensor *ember_ag_where(const ember_tensor *cond, const ember_tensor *a,
                             const ember_tensor *b) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_where(cond, a, b);
  ember_ag_resume(prev);
  if (!out || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *n = ember_ag_node2("WhereBackward", where_backward, a, b);
  if (n && ember_ag_save(n, cond) < 0) { ember_ag_node_release(n); n = NULL; }
  if (n) n->ip[0] = 0;
  return ember_ag_finish(n, out, 0);
}

/* masked_fill: input 0 is the tensor, the mask's true side gets nothing */
static ember_node *masked_node(const ember_tensor *t, const ember_tensor *mask) {
  ember_node *n = ember_ag_node2("MaskedFillBackward", where_backward, t, NULL);
  if (n && ember_ag_save(n, mask) < 0) { ember_ag_node_release(n); return NULL; }
  if (n) n->ip[0] = 1;   /* input 0 is the "false" side */
  return n;
}

ember_tensor *ember_ag_masked_fill(const ember_tensor *t,
                                   const ember_tensor *mask, double value) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_masked_fill(t, mask, value);
  ember_ag_resume(prev);
  if (!out || !ember_dtype_is_float(out->dtype)) return out;
  return ember_ag_finish(masked_node(t, mask), out, 0);
}

int ember_ag_masked_fill_(ember_tensor *t, const ember_tensor *mask,
                          double value) {
  if (ember_ag_check_inplace("masked_fill_", t) < 0) return -1;
  int prev = ember_ag_pause();
  ember_node *n = masked_node(t, mask);
  int rc = n ? ember_masked_fill_(t, mask, value) : -1;
  ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  return ember_ag_rebase(t, n, 1);
}

static int pass_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  (void)n;
  ember_tensor_retain(g);
  gin[0] = g;
  return 0;
}

/* dst's old value is gone: the gradient flows to src only */
int ember_ag_copy_(ember_tensor *dst, const ember_tensor *src) {
  if (ember_ag_check_inplace("copy_", dst) < 0 || ember_ag_check_target("copy_", dst) < 0)
    return -1;
  int prev = ember_ag_pause();
  int needs = ember_ag_requires(src) && ember_dtype_is_float(dst->dtype);
  ember_node *n = needs ? ember_ag_node2("CopyBackward", pass_backward, src, NULL) : NULL;
  int rc = !needs || n ? ember_copy_(dst, src) : -1;
  ember_ag_resume(prev);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  if (!n) {   /* a constant now: a non-leaf keeps requires_grad, no edges */
    if (!ember_ag_requires(dst)) return 0;
    n = ember_ag_node("CopyBackward", pass_backward, 0, NULL);
    if (!n) return -1;
  }
  return ember_ag_rebase(dst, n, 1);
}

int ember_ag_fill_(ember_tensor *dst, double value) {
  if (ember_ag_check_inplace("fill_", dst) < 0) return -1;
  int prev = ember_ag_pause();
  int rc = ember_fill_(dst, value);
  ember_ag_resume(prev);
  if (rc < 0) return -1;
  ember_node *n = ember_ag_node("FillBackward", pass_backward, 0, NULL);
  return n ? ember_ag_rebase(dst, n, 1) : -1;
}

/* }====================================================================== */

/* {======================================================================
** Reductions and softmax
** ======================================================================= */

/* ip: [0] op, [1] dim (-1: all), [2] keepdim, [3] correction;
   saved: [0] input, [1] output, when the op needs them */
static int reduce_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  ember_reduce_op op = (ember_reduce_op)n->ip[0];
  int dim = (int)n->ip[1], keep = (int)n->ip[2], corr = (int)n->ip[3];
  const ember_in_meta *m = &n->in[0];
  int64_t count = 1;
  if (dim < 0) for (int i = 0; i < m->ndim; i++) count *= m->shape[i];
  else count = m->shape[dim];
  ember_tensor *gk = ember_keep_dim(g, dim, keep);
  if (!gk) return -1;
  ember_tensor *r = NULL;
  switch (op) {
    case EMBER_SUM:
      r = ember_expand(gk, m->ndim, m->shape);
      break;
    case EMBER_MEAN: {
      ember_tensor *c = ember_scalar_as(g, (double)count);
      ember_tensor *q = c ? ember_binary(EMBER_DIV, gk, c) : NULL;
      r = q ? ember_expand(q, m->ndim, m->shape) : NULL;
      ember_tensor_release(q);
      ember_tensor_release(c);
      break;
    }
    case EMBER_PROD: {
      /* g * out / x where the slice has no zero; where it has exactly one,
         the zero's gradient is the product of the others and the rest get
         nothing; with two or more zeros every gradient is 0 */
      const ember_tensor *x = n->saved[0];
      ember_tensor *ok = ember_keep_dim(n->saved[1], dim, keep);
      ember_tensor *zero = ok ? ember_scalar_as(x, 0.0) : NULL;
      ember_tensor *one = zero ? ember_scalar_as(x, 1.0) : NULL;
      ember_tensor *isz = one ? ember_compare(EMBER_EQ, x, zero) : NULL;
      ember_tensor *zf = isz ? ember_to_dtype(isz, x->dtype) : NULL;
      ember_tensor *nz = zf ? reduce_kept(EMBER_SUM, zf, dim) : NULL;
      ember_tensor *x1 = nz ? ember_where(isz, one, x) : NULL;
      ember_tensor *p1 = x1 ? reduce_kept(EMBER_PROD, x1, dim) : NULL;
      ember_tensor *q = p1 ? ember_binary(EMBER_DIV, ok, x) : NULL;           /* no zero */
      ember_tensor *none = q ? ember_compare(EMBER_EQ, nz, zero) : NULL;
      ember_tensor *single = none ? ember_compare(EMBER_EQ, nz, one) : NULL;
      /* the lone zero of a slice */
      ember_tensor *pick = single ? ember_binary(EMBER_MUL, single, isz) : NULL;
      ember_tensor *alt = pick ? ember_where(pick, p1, zero) : NULL;
      ember_tensor *d = alt ? ember_where(none, q, alt) : NULL;
      r = d ? ember_binary(EMBER_MUL, gk, d) : NULL;
      ember_tensor *tmp[] = {d, alt, pick, single, none, q, p1, x1, nz, zf, isz,
                             one, zero, ok};
      for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) ember_tensor_release(tmp[i]);
      break;
    }
    case EMBER_MAX:
    case EMBER_MIN: {    /* shared equally among the elements that tie */
      const ember_tensor *x = n->saved[0];
      ember_tensor *ok = ember_keep_dim(n->saved[1], dim, keep);
      ember_tensor *hit = ok ? ember_compare(EMBER_EQ, x, ok) : NULL;
      ember_tensor *hf = hit ? ember_to_dtype(hit, g->dtype) : NULL;
      ember_tensor *cnt = hf ? reduce_kept(EMBER_SUM, hf, dim) : NULL;
      ember_tensor *share = cnt ? ember_binary(EMBER_DIV, gk, cnt) : NULL;
      r = share ? ember_binary(EMBER_MUL, hf, share) : NULL;
      ember_tensor_release(share);
      ember_tensor_release(cnt);
      ember_tensor_release(hf);
      ember_tensor_release(hit);
      ember_tensor_release(ok);
      break;
    }
    case EMBER_VAR:
    case EMBER_STD: {    /* g * 2 (x - mean) / (N - c), std: / (2 std) */
      const ember_tensor *x = n->saved[0];
      ember_tensor *mean = reduce_kept(EMBER_MEAN, x, dim);
      ember_tensor *d = mean ? ember_binary(EMBER_SUB, x, mean) : NULL;
      ember_tensor *c = d ? ember_scalar_as(g, op == EMBER_VAR ? 2.0 / (double)(count - corr)
                                                         : 1.0 / (double)(count - corr)) : NULL;
      ember_tensor *t = c ? ember_binary(EMBER_MUL, d, c) : NULL;
      ember_tensor *u = t ? ember_binary(EMBER_MUL, t, gk) : NULL;
      if (u && op == EMBER_STD) {
        ember_tensor *ok = ember_keep_dim(n->saved[1], dim, keep);
        r = ok ? ember_binary(EMBER_DIV, u, ok) : NULL;
        ember_tensor_release(ok);
      } else if (u) {
        ember_tensor_retain(u);
        r = u;
      }
      ember_tensor_release(u);
      ember_tensor_release(t);
      ember_tensor_release(c);
      ember_tensor_release(d);
      ember_tensor_release(mean);
      break;
    }
    default:
      ember_set_error("backward: %s is not differentiable", n->name);
      break;
  }
  ember_tensor_release(gk);
  if (!r) return -1;
  gin[0] = r;
  return 0;
}

static const char *reduce_node_name(ember_reduce_op op) {
  static const char *const names[EMBER_NREDUCE] = {
    "SumBackward", "MeanBackward", "ProdBackward", "MaxBackward",
    "MinBackward", "ArgmaxBackward", "ArgminBackward", "VarBackward",
    "StdBackward",
  };
  return names[op];
}

static ember_tensor *record_reduce(ember_reduce_op op, const ember_tensor *t,
                                   ember_tensor *out, int dim, int keepdim,
                                   int correction) {
  if (!out) return NULL;
  if (op == EMBER_ARGMAX || op == EMBER_ARGMIN || !ember_dtype_is_float(out->dtype))
    return out;
  ember_node *n = ember_ag_node2(reduce_node_name(op), reduce_backward, t, NULL);
  if (!n) { ember_tensor_release(out); return NULL; }
  n->ip[0] = op;
  n->ip[1] = dim;
  n->ip[2] = keepdim;
  n->ip[3] = correction;
  int rc = 0;
  if (op != EMBER_SUM && op != EMBER_MEAN) rc = ember_ag_save(n, t);
  if (rc == 0 && (op == EMBER_PROD || op == EMBER_MAX || op == EMBER_MIN ||
                  op == EMBER_STD))
    rc = ember_ag_save(n, out);
  if (rc < 0) { ember_ag_node_release(n); n = NULL; }
  return ember_ag_finish(n, out, 0);
}

ember_tensor *ember_ag_reduce(ember_reduce_op op, const ember_tensor *t,
                              int correction) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_reduce(op, t, correction);
  ember_ag_resume(prev);
  return record_reduce(op, t, out, -1, 0, correction);
}

ember_tensor *ember_ag_reduce_dim(ember_reduce_op op, const ember_tensor *t,
                                  int dim, int keepdim, int correction) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_reduce_dim(op, t, dim, keepdim, correction);
  ember_ag_resume(prev);
  if (!out) return NULL;
  if (t->ndim == 0) return record_reduce(op, t, out, -1, 0, correction);
  dim = dim < 0 ? dim + t->ndim : dim;
  return record_reduce(op, t, out, dim, keepdim, correction);
}

/* max/min over a dim with indices: the gradient goes to the chosen
   position only (saved[0]: indices, 1-based) */
static int select_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  int dim = (int)n->ip[0], keep = (int)n->ip[1];
  ember_tensor *gk = ember_keep_dim(g, dim, keep);
  ember_tensor *ik = gk ? ember_keep_dim(n->saved[0], dim, keep) : NULL;
  ember_tensor *z = ik ? ember_zeros_meta(g, &n->in[0]) : NULL;
  int rc = z ? ember_scatter_add_(z, dim, ik, gk) : -1;
  ember_tensor_release(ik);
  ember_tensor_release(gk);
  if (rc < 0) { ember_tensor_release(z); return -1; }
  gin[0] = z;
  return 0;
}

int ember_ag_extreme_dim(int is_max, const ember_tensor *t, int dim,
                         int keepdim, ember_tensor **values,
                         ember_tensor **indices) {
  int prev = ember_ag_pause();
  int rc = is_max ? ember_max_dim(t, dim, keepdim, values, indices)
                  : ember_min_dim(t, dim, keepdim, values, indices);
  ember_ag_resume(prev);
  if (rc < 0 || !ember_dtype_is_float((*values)->dtype) || t->ndim == 0) return rc;
  ember_node *n = ember_ag_node2(is_max ? "MaxBackward" : "MinBackward", select_backward,
                        t, NULL);
  if (n) {
    n->ip[0] = dim < 0 ? dim + t->ndim : dim;
    n->ip[1] = keepdim;
    if (ember_ag_save(n, *indices) < 0) { ember_ag_node_release(n); n = NULL; }
  }
  if (!(*values = ember_ag_finish(n, *values, 0))) {
    ember_tensor_release(*indices);
    *indices = NULL;
    return -1;
  }
  return 0;
}

/* softmax: y (g - sum(g y)); log_softmax: g - exp(y) sum(g) */
static int softmax_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  int dim = (int)n->ip[0], log = (int)n->ip[1];
  const ember_tensor *y = n->saved[0];
  if (y->ndim == 0) return (gin[0] = ember_scalar_as(g, 0.0)) ? 0 : -1;
  ember_tensor *r = NULL;
  if (log) {
    ember_tensor *s = ember_sum_dim(g, dim, 1);
    ember_tensor *e = s ? ember_unary(EMBER_EXP, y) : NULL;
    ember_tensor *t = e ? ember_binary(EMBER_MUL, e, s) : NULL;
    r = t ? ember_binary(EMBER_SUB, g, t) : NULL;
    ember_tensor_release(t);
    ember_tensor_release(e);
    ember_tensor_release(s);
  } else {
    ember_tensor *gy = ember_binary(EMBER_MUL, g, y);
    ember_tensor *s = gy ? ember_sum_dim(gy, dim, 1) : NULL;
    ember_tensor *d = s ? ember_binary(EMBER_SUB, g, s) : NULL;
    r = d ? ember_binary(EMBER_MUL, y, d) : NULL;
    ember_tensor_release(d);
    ember_tensor_release(s);
    ember_tensor_release(gy);
  }
  if (!r) return -1;
  gin[0] = r;
  return 0;
}

ember_tensor *ember_ag_softmax(const ember_tensor *t, int dim, int log) {
  int prev = ember_ag_pause();
  ember_tensor *out = log ? ember_log_softmax(t, dim) : ember_softmax(t, dim);
  ember_ag_resume(prev);
  if (!out) return NULL;
  ember_node *n = ember_ag_node2(log ? "LogSoftmaxBackward" : "SoftmaxBackward",
                        softmax_backward, t, NULL);
  if (n) {
    int nd = t->ndim ? t->ndim : 1;
    n->ip[0] = dim < 0 ? dim + nd : dim;
    n->ip[1] = log;
    if (ember_ag_save(n, out) < 0) { ember_ag_node_release(n); n = NULL; }
  }
  return ember_ag_finish(n, out, 0);
}

/* }====================================================================== */
