/*
** reduce.c -- reductions, front door to backward: sum, mean, prod, max,
** min, argmax, argmin, var, std over everything or over one dimension, and
** max/min over a dimension with their indices.
**
** Contract:
**   - kernels reduce the last dimension, so a reduction over dim d views
**     the tensor with d moved last (strides only, no copy) and a reduction
**     over everything views it as one row;
**   - result dtypes follow PyTorch: sum and prod of integers give int64,
**     max/min keep the dtype, arg* give int64 (1-based positions); mean,
**     var and std compute integers as float32;
**   - max, min and the arg* of an empty tensor (or of a dimension of size
**     0) are an error, the others give their empty value;
**   - dims are checked once, at the front door; a 0-d tensor takes dim 0
**     (or -1) as a reduction over its one element;
**   - recording: the result is computed first (recording paused around the
**     casts and views used inside), then a float result of an input that
**     requires grad gets a node (struct reduce_saved: op, dim, keepdim,
**     correction) saving the input and the output where its backward reads
**     them; arg* are not differentiable.  Each backward follows PyTorch's
**     tools/autograd/derivatives.yaml and sits right after its forward.
*/
#include <string.h>

#include "ops.h"

static const char *const reduce_names[EMBER_NREDUCE] = {
  "sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std",
};

/* {======================================================================
** Reductions over everything or one dimension
** ======================================================================= */

/* dim: 0-based, -1 for a reduction over everything (whose 0-d result
   broadcasts as it is in backward) */
struct reduce_saved {
  int op, dim, keepdim, correction;
};

static int reduce_backward(ember_node *n, ember_tensor *g, ember_tensor **gin);

/* The dtype the kernel reads, and the one it writes. */
static void reduce_dtypes(ember_reduce_op op, ember_dtype in, ember_dtype *src,
                          ember_dtype *dst) {
  *src = in;
  switch (op) {
    case EMBER_SUM: case EMBER_PROD:
      *dst = ember_dtype_is_float(in) ? in : EMBER_INT64;
      break;
    case EMBER_MEAN: case EMBER_VAR: case EMBER_STD:
      if (!ember_dtype_is_float(in)) *src = EMBER_FLOAT32;
      *dst = *src;
      break;
    case EMBER_ARGMAX: case EMBER_ARGMIN:
      *dst = EMBER_INT64;
      break;
    default:
      *dst = in;
      break;
  }
}

static int needs_elements(ember_reduce_op op) {
  return op == EMBER_MAX || op == EMBER_MIN || op == EMBER_ARGMAX ||
         op == EMBER_ARGMIN;
}

/* Run the kernel: src viewed as [..., n] with the reduced dim last.  The
   cast is a public op: callers pause recording. */
static ember_tensor *run_reduce(ember_reduce_op op, const ember_tensor *src,
                                int outdim, const int64_t *outshape,
                                int correction) {
  ember_dtype sdt, ddt;
  reduce_dtypes(op, src->dtype, &sdt, &ddt);
  ember_tensor *s = ember_cast(src, sdt);
  if (!s) return NULL;
  ember_tensor *out = ember_empty_on(src->storage->device, outdim, outshape, ddt);
  if (out && ember_backend_of(out)->reduce(op, out, s, correction) < 0) {
    ember_tensor_release(out);
    out = NULL;
  }
  ember_tensor_release(s);
  return out;
}

/* Check a reduction of t over dim; *dim becomes 0-based, or -1 for a 0-d
   t (a reduction over its one element). */
static int reduce_check_dim(ember_reduce_op op, const ember_tensor *t,
                            int *dim) {
  const char *fn = reduce_names[op];
  if (t->ndim == 0) {
    if (*dim != 0 && *dim != -1)
      return ember_set_error("%s: dimension %d out of range for a 0-d tensor",
                             fn, *dim >= 0 ? *dim + 1 : *dim);
    *dim = -1;
    return 0;
  }
  int d = ember_wrap_dim(fn, *dim, t->ndim);
  if (d < 0) return -1;
  if (t->shape[d] == 0 && needs_elements(op))
    return ember_set_error("%s: cannot reduce dimension %d of size 0", fn, d + 1);
  *dim = d;
  return 0;
}

/* op over everything, checked; recording paused by the caller. */
static ember_tensor *reduce_all_run(ember_reduce_op op, const ember_tensor *t,
                                    int correction) {
  int64_t n = ember_numel(t), one = 1;
  ember_tensor *c = ember_contiguous(t);
  if (!c) return NULL;
  ember_tensor *row = ember_tensor_alias(c, 1, &n, &one, c->offset);
  ember_tensor *out = row ? run_reduce(op, row, 0, NULL, correction) : NULL;
  ember_tensor_release(row);
  ember_tensor_release(c);
  return out;
}

/* op over dim (checked, 0-based; -1: everything), with an optional kept
   size-1 dim in the result; recording paused by the caller. */
static ember_tensor *reduce_dim_run(ember_reduce_op op, const ember_tensor *t,
                                    int dim, int keepdim, int correction) {
  if (dim < 0) return reduce_all_run(op, t, correction);
  /* move dim last: shape/strides of the others, then dim */
  int64_t sh[EMBER_MAX_DIMS], st[EMBER_MAX_DIMS], outshape[EMBER_MAX_DIMS];
  int k = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != dim) { sh[k] = t->shape[i]; st[k] = t->strides[i]; outshape[k] = sh[k]; k++; }
  sh[k] = t->shape[dim];
  st[k] = t->strides[dim];
  ember_tensor *src = ember_tensor_alias(t, t->ndim, sh, st, t->offset);
  ember_tensor *out = src ? run_reduce(op, src, k, outshape, correction) : NULL;
  ember_tensor_release(src);
  if (out && keepdim) {
    ember_tensor *u = ember_unsqueeze(out, dim);
    ember_tensor_release(out);
    out = u;
  }
  return out;
}

/* Record out = op(t) over dim (-1: everything); t requires grad. */
static ember_tensor *record_reduce(ember_reduce_op op, const ember_tensor *t,
                                   ember_tensor *out, int dim, int keepdim,
                                   int correction) {
  static const char *const names[EMBER_NREDUCE] = {
    "SumBackward", "MeanBackward", "ProdBackward", "MaxBackward",
    "MinBackward", "ArgmaxBackward", "ArgminBackward", "VarBackward",
    "StdBackward",
  };
  if (!out) return NULL;
  if (op == EMBER_ARGMAX || op == EMBER_ARGMIN || !ember_dtype_is_float(out->dtype))
    return out;
  ember_node *n = ember_ag_node2(names[op], reduce_backward, t, NULL);
  if (!n) { ember_tensor_release(out); return NULL; }
  struct reduce_saved *s = EMBER_NODE_STATE(n, struct reduce_saved);
  s->op = op;
  s->dim = dim;
  s->keepdim = keepdim;
  s->correction = correction;
  int rc = 0;
  if (op != EMBER_SUM && op != EMBER_MEAN) rc = ember_ag_save(n, t);   /* saved[0] */
  if (rc == 0 && (op == EMBER_PROD || op == EMBER_MAX || op == EMBER_MIN ||
                  op == EMBER_STD))
    rc = ember_ag_save(n, out);                                      /* saved[1] */
  if (rc < 0) { ember_ag_node_release(n); n = NULL; }
  return ember_ag_finish(n, out, 0);
}

ember_tensor *ember_reduce(ember_reduce_op op, const ember_tensor *t,
                           int correction) {
  if ((unsigned)op >= EMBER_NREDUCE) { ember_set_error("reduce: bad op"); return NULL; }
  if (ember_numel(t) == 0 && needs_elements(op)) {
    ember_set_error("%s: cannot reduce an empty tensor (it has no elements)",
                    reduce_names[op]);
    return NULL;
  }
  /* the copies, casts and views inside are not recorded (without rec
     nothing is) */
  int rec = ember_ag_active1(t);
  int prev = rec ? ember_ag_pause() : 0;
  ember_tensor *out = reduce_all_run(op, t, correction);
  if (rec) ember_ag_resume(prev);
  return rec ? record_reduce(op, t, out, -1, 0, correction) : out;
}

/* Reduce dim (0-based) with an optional kept size-1 dim in the result. */
ember_tensor *ember_reduce_dim(ember_reduce_op op, const ember_tensor *t,
                               int dim, int keepdim, int correction) {
  if ((unsigned)op >= EMBER_NREDUCE) { ember_set_error("reduce: bad op"); return NULL; }
  if (reduce_check_dim(op, t, &dim) < 0) return NULL;
  if (dim < 0) keepdim = 0;   /* a 0-d tensor: the result is 0-d */
  int rec = ember_ag_active1(t);
  int prev = rec ? ember_ag_pause() : 0;
  ember_tensor *out = reduce_dim_run(op, t, dim, keepdim, correction);
  if (rec) ember_ag_resume(prev);
  return rec ? record_reduce(op, t, out, dim, keepdim, correction) : out;
}

ember_tensor *ember_sum_dim(const ember_tensor *t, int dim, int keepdim) {
  return ember_reduce_dim(EMBER_SUM, t, dim, keepdim, 0);
}

/* op over dim, kept (dim < 0: over everything) */
static ember_tensor *reduce_kept(ember_reduce_op op, const ember_tensor *x,
                                 int dim) {
  return dim < 0 ? ember_reduce(op, x, 0) : ember_reduce_dim(op, x, dim, 1, 0);
}

/* g shared equally among the elements of x equal to the result ok (kept
   dims; dim < 0: over everything), as PyTorch's evenly_distribute_backward:
   a NaN result shares among the NaNs. */
ember_tensor *ember_tie_share(const ember_tensor *x, const ember_tensor *ok,
                              const ember_tensor *gk, int dim) {
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *eq = ember_temp(&T, ember_compare(EMBER_EQ, x, ok));
  ember_tensor *xn = ember_temp(&T, eq ? ember_compare(EMBER_NE, x, x) : NULL);
  ember_tensor *on = ember_temp(&T, xn ? ember_compare(EMBER_NE, ok, ok) : NULL);
  ember_tensor *nn = ember_temp(&T, on ? ember_binary(EMBER_MINIMUM, xn, on) : NULL);
  ember_tensor *hit = ember_temp(&T, nn ? ember_binary(EMBER_MAXIMUM, eq, nn) : NULL);
  ember_tensor *hf = ember_temp(&T, hit ? ember_to_dtype(hit, gk->dtype) : NULL);
  ember_tensor *cnt = ember_temp(&T, hf ? reduce_kept(EMBER_SUM, hf, dim) : NULL);
  ember_tensor *share = ember_temp(&T, cnt ? ember_binary(EMBER_DIV, gk, cnt) : NULL);
  ember_tensor *r = share ? ember_binary(EMBER_MUL, hf, share) : NULL;
  ember_temps_release(&T);
  return r;
}

/* saved: [0] input, [1] output, when the op needs them (record_reduce) */
static int reduce_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct reduce_saved *st = EMBER_NODE_STATE(n, struct reduce_saved);
  ember_reduce_op op = (ember_reduce_op)st->op;
  int dim = st->dim, keep = st->keepdim, corr = st->correction;
  const ember_in_meta *m = &n->in[0];
  int64_t count = 1;
  if (dim < 0) for (int i = 0; i < m->ndim; i++) count *= m->shape[i];
  else count = m->shape[dim];
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gk = ember_temp(&T, ember_keep_dim(g, dim, keep));
  ember_tensor *r = NULL;
  if (gk) switch (op) {
    case EMBER_SUM:
      r = ember_expand(gk, m->ndim, m->shape);
      break;
    case EMBER_MEAN: {
      ember_tensor *c = ember_temp(&T, ember_scalar_as(g, (double)count));
      ember_tensor *q = ember_temp(&T, c ? ember_binary(EMBER_DIV, gk, c) : NULL);
      r = q ? ember_expand(q, m->ndim, m->shape) : NULL;
      break;
    }
    case EMBER_PROD: {
      /* g * out / x where the slice has no zero; where it has exactly one,
         the zero's gradient is the product of the others and the rest get
         nothing; with two or more zeros every gradient is 0 */
      const ember_tensor *x = n->saved[0];
      ember_tensor *ok = ember_temp(&T, ember_keep_dim(n->saved[1], dim, keep));
      ember_tensor *zero = ember_temp(&T, ok ? ember_scalar_as(x, 0.0) : NULL);
      ember_tensor *one = ember_temp(&T, zero ? ember_scalar_as(x, 1.0) : NULL);
      ember_tensor *isz = ember_temp(&T, one ? ember_compare(EMBER_EQ, x, zero) : NULL);
      ember_tensor *zf = ember_temp(&T, isz ? ember_to_dtype(isz, x->dtype) : NULL);
      ember_tensor *nz = ember_temp(&T, zf ? reduce_kept(EMBER_SUM, zf, dim) : NULL);
      ember_tensor *x1 = ember_temp(&T, nz ? ember_where(isz, one, x) : NULL);
      ember_tensor *p1 = ember_temp(&T, x1 ? reduce_kept(EMBER_PROD, x1, dim) : NULL);
      ember_tensor *q = ember_temp(&T, p1 ? ember_binary(EMBER_DIV, ok, x) : NULL);  /* no zero */
      ember_tensor *none = ember_temp(&T, q ? ember_compare(EMBER_EQ, nz, zero) : NULL);
      ember_tensor *single = ember_temp(&T, none ? ember_compare(EMBER_EQ, nz, one) : NULL);
      /* the lone zero of a slice */
      ember_tensor *pick = ember_temp(&T, single ? ember_binary(EMBER_MUL, single, isz) : NULL);
      ember_tensor *alt = ember_temp(&T, pick ? ember_where(pick, p1, zero) : NULL);
      ember_tensor *d = ember_temp(&T, alt ? ember_where(none, q, alt) : NULL);
      r = d ? ember_binary(EMBER_MUL, gk, d) : NULL;
      break;
    }
    case EMBER_MAX:
    case EMBER_MIN: {    /* shared equally among the elements that tie */
      ember_tensor *ok = ember_temp(&T, ember_keep_dim(n->saved[1], dim, keep));
      r = ok ? ember_tie_share(n->saved[0], ok, gk, dim) : NULL;
      break;
    }
    case EMBER_VAR:
    case EMBER_STD: {    /* g * 2 (x - mean) / (N - c), std: / (2 std) */
      const ember_tensor *x = n->saved[0];
      ember_tensor *mean = ember_temp(&T, reduce_kept(EMBER_MEAN, x, dim));
      ember_tensor *d = ember_temp(&T, mean ? ember_binary(EMBER_SUB, x, mean) : NULL);
      ember_tensor *c = ember_temp(&T, d ? ember_scalar_as(g, op == EMBER_VAR ? 2.0 / (double)(count - corr)
                                                                   : 1.0 / (double)(count - corr)) : NULL);
      ember_tensor *t = ember_temp(&T, c ? ember_binary(EMBER_MUL, d, c) : NULL);
      ember_tensor *u = ember_temp(&T, t ? ember_binary(EMBER_MUL, t, gk) : NULL);
      if (u && op == EMBER_VAR) {
        ember_tensor_retain(u);
        r = u;
      } else if (u) {
        ember_tensor *ok = ember_temp(&T, ember_keep_dim(n->saved[1], dim, keep));
        r = ok ? ember_binary(EMBER_DIV, u, ok) : NULL;
      }
      break;
    }
    default:
      ember_set_error("backward: %s is not differentiable", n->name);
      break;
  }
  ember_temps_release(&T);
  return (gin[0] = r) ? 0 : -1;
}

/* }====================================================================== */

/* {======================================================================
** max/min over a dimension, with indices
** ======================================================================= */


static int extreme_dim(int is_max, const ember_tensor *t, int dim, int keepdim,
                       ember_tensor **values, ember_tensor **indices) {
  ember_reduce_op vop = is_max ? EMBER_MAX : EMBER_MIN;
  ember_reduce_op iop = is_max ? EMBER_ARGMAX : EMBER_ARGMIN;
  *values = *indices = NULL;
  if (reduce_check_dim(vop, t, &dim) < 0) return -1;
  if (dim < 0) keepdim = 0;
  int prev = ember_ag_pause();
  ember_tensor *v = reduce_dim_run(vop, t, dim, keepdim, 0);
  ember_tensor *i = v ? reduce_dim_run(iop, t, dim, keepdim, 0) : NULL;
  ember_ag_resume(prev);
  if (!i) { ember_tensor_release(v); return -1; }
  if (ember_ag_active1(t) && ember_dtype_is_float(v->dtype) && dim >= 0) {
    /* the gradient goes to the chosen position only */
    ember_node *n = ember_ag_node2(is_max ? "MaxBackward" : "MinBackward",
                                   ember_pick_backward, t, NULL);
    if (n) {
      ember_pick_saved *s = EMBER_NODE_STATE(n, ember_pick_saved);
      s->dim = dim;
      s->keepdim = keepdim;
      if (ember_ag_save(n, i) < 0) { ember_ag_node_release(n); n = NULL; }
    }
    if (!(v = ember_ag_finish(n, v, 0))) { ember_tensor_release(i); return -1; }
  }
  *values = v;
  *indices = i;
  return 0;
}

int ember_max_dim(const ember_tensor *t, int dim, int keepdim,
                  ember_tensor **values, ember_tensor **indices) {
  return extreme_dim(1, t, dim, keepdim, values, indices);
}

int ember_min_dim(const ember_tensor *t, int dim, int keepdim,
                  ember_tensor **values, ember_tensor **indices) {
  return extreme_dim(0, t, dim, keepdim, values, indices);
}

/* g scattered to the positions the indices chose, zeros elsewhere (max,
   min, and the selections of core/ops/sort.c) */
int ember_pick_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_pick_saved *st = EMBER_NODE_STATE(n, ember_pick_saved);
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gk = ember_temp(&T, ember_keep_dim(g, st->dim, st->keepdim));
  ember_tensor *ik = ember_temp(&T, gk ? ember_keep_dim(n->saved[0], st->dim,
                                                        st->keepdim) : NULL);
  ember_tensor *z = ik ? ember_zeros_meta(g, &n->in[0]) : NULL;
  if (z && ember_scatter_add_(z, st->dim, ik, gk) < 0) {
    ember_tensor_release(z);
    z = NULL;
  }
  ember_temps_release(&T);
  return (gin[0] = z) ? 0 : -1;
}

/* }====================================================================== */
