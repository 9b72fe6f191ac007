/*
** scan.c -- cumulative ops along a dimension: cumsum, cumprod, cummax
** (values and 1-based indices) and logcumsumexp, front door to backward.
**
** Contract:
**   - dim is 0-based here (the bindings take 1-based dims), negative from
**     the end; a 0-d tensor scans as one element (dim 0 or -1);
**   - cumsum and cumprod take an optional dtype (-1: PyTorch's default):
**     the input is first cast to it (a recorded cast), and by default bool
**     and integer inputs accumulate in int64, floats in their own dtype;
**     cummax keeps the input's dtype (any); logcumsumexp takes floats only;
**   - every op is one `scan` kernel call (core/cpu/scan.c,
**     core/cuda/scan.cu) on a contiguous copy: O(n) per row, never a
**     composition of n reductions;
**   - recording: float results of an input that requires grad get a node:
**     CumsumBackward (the reverse cumsum of g), CumprodBackward (saves x
**     and the result; handles zeros exactly, see cumprod_backward),
**     CummaxBackward (g scattered to the saved indices) and
**     LogcumsumexpBackward (saves x and the result; PyTorch's log-space
**     formula, split by the sign of g).
*/
#include <math.h>

#include "ops.h"

static ember_tensor *retained(ember_tensor *t) {
  ember_tensor_retain(t);
  return t;
}

static const char *scan_name(ember_scan_op op) {
  static const char *names[] = {"cumsum", "cumprod", "cummax", "logcumsumexp"};
  return names[op];
}

/* {======================================================================
** Running the kernel
** ======================================================================= */

/* op over dim of t (dim already wrapped; t of any layout), not recorded:
   a new contiguous tensor of t's dtype, and for MAX the indices in *idx. */
static ember_tensor *scan_run(ember_scan_op op, const ember_tensor *t, int dim,
                              int reverse, ember_tensor **idx) {
  const char *fn = scan_name(op);
  if (idx) *idx = NULL;
  const ember_backend_i *be = ember_backend_of(t);
  if (!be) return NULL;
  if (!be->scan) {
    ember_set_error("%s: not supported on %s", fn, be->name);
    return NULL;
  }
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  int64_t one = 1;
  const ember_tensor *src = t;
  if (t->ndim == 0) {                            /* one element, as [1] */
    src = ember_temp(&T, ember_reshape(t, 1, &one));
    dim = 0;
  }
  ember_tensor *c = src ? ember_temp(&T, ember_contiguous(src)) : NULL;
  ember_device dev = t->storage->device;
  ember_tensor *out = c ? ember_temp(&T, ember_empty_on(dev, c->ndim, c->shape, c->dtype))
                        : NULL;
  ember_tensor *ix = NULL;
  if (out && op == EMBER_SCAN_MAX)
    ix = ember_temp(&T, ember_empty_on(dev, c->ndim, c->shape, EMBER_INT64));
  int ok = out && (op != EMBER_SCAN_MAX || ix);
  if (ok && ember_numel(c) > 0 &&
      be->scan(op, out, ix, c, dim, reverse) < 0)
    ok = 0;
  ember_tensor *r = NULL, *ri = NULL;
  if (ok) {
    r = t->ndim == 0 ? ember_reshape(out, 0, &one) : retained(out);
    if (r && ix) {
      ri = t->ndim == 0 ? ember_reshape(ix, 0, &one) : retained(ix);
      if (!ri) { ember_tensor_release(r); r = NULL; }
    }
  }
  ember_temps_release(&T);
  ember_ag_resume(prev);
  if (idx) *idx = ri;
  return r;
}

/* }====================================================================== */

/* {======================================================================
** Backward
** ======================================================================= */

struct scan_saved {
  int dim;
};

/* d cumsum: the reverse cumsum of g. */
static int cumsum_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct scan_saved *s = EMBER_NODE_STATE(n, struct scan_saved);
  gin[0] = scan_run(EMBER_SCAN_SUM, g, s->dim, 1, NULL);
  return gin[0] ? 0 : -1;
}

/*
** d cumprod, saved x and y = cumprod(x).  Along a row, with z the first
** zero of x (if any):
**   k before z:  grad_k = sum_{j>=k} g_j y_j / x_k  (x_k != 0; the terms
**                past z are 0 as y_j is);
**   k = z:       grad_z = sum_{j>=z} g_j prod_{i<=j, i!=z} x_i, which is
**                the reverse cumsum of g * cumprod(x with x_z set to 1);
**   k after z:   0 (every product holds x_z = 0).
** One formula for all rows, O(n) with a second cumprod; rows without zeros
** take the first case throughout.
*/
static int cumprod_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct scan_saved *s = EMBER_NODE_STATE(n, struct scan_saved);
  const ember_tensor *x = n->saved[0], *y = n->saved[1];
  int d = s->dim;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *zero = ember_temp(&T, ember_scalar_as(x, 0.0));
  ember_tensor *onev = zero ? ember_temp(&T, ember_scalar_as(x, 1.0)) : NULL;
  ember_tensor *gy = onev ? ember_temp(&T, ember_binary(EMBER_MUL, g, y)) : NULL;
  ember_tensor *a = gy ? ember_temp(&T, scan_run(EMBER_SCAN_SUM, gy, d, 1, NULL)) : NULL;
  ember_tensor *ax = a ? ember_temp(&T, ember_binary(EMBER_DIV, a, x)) : NULL;
  ember_tensor *isz = ax ? ember_temp(&T, ember_compare(EMBER_EQ, x, zero)) : NULL;
  ember_tensor *iszl = isz ? ember_temp(&T, ember_to_dtype(isz, EMBER_INT64)) : NULL;
  ember_tensor *cz = iszl ? ember_temp(&T, scan_run(EMBER_SCAN_SUM, iszl, d, 0, NULL)) : NULL;
  ember_tensor *iz0 = cz ? ember_temp(&T, ember_scalar_as(cz, 0.0)) : NULL;
  ember_tensor *iz1 = iz0 ? ember_temp(&T, ember_scalar_as(cz, 1.0)) : NULL;
  ember_tensor *before = iz1 ? ember_temp(&T, ember_compare(EMBER_EQ, cz, iz0)) : NULL;
  ember_tensor *c1 = before ? ember_temp(&T, ember_compare(EMBER_EQ, cz, iz1)) : NULL;
  ember_tensor *first = c1 ? ember_temp(&T, ember_where(isz, c1, isz)) : NULL;
  ember_tensor *x1 = first ? ember_temp(&T, ember_where(first, onev, x)) : NULL;
  ember_tensor *y1 = x1 ? ember_temp(&T, scan_run(EMBER_SCAN_PROD, x1, d, 0, NULL)) : NULL;
  ember_tensor *gy1 = y1 ? ember_temp(&T, ember_binary(EMBER_MUL, g, y1)) : NULL;
  ember_tensor *b = gy1 ? ember_temp(&T, scan_run(EMBER_SCAN_SUM, gy1, d, 1, NULL)) : NULL;
  ember_tensor *bz = b ? ember_temp(&T, ember_where(first, b, zero)) : NULL;
  gin[0] = bz ? ember_where(before, ax, bz) : NULL;
  ember_temps_release(&T);
  return gin[0] ? 0 : -1;
}

/* d cummax: g scattered to the saved indices (zeros elsewhere). */
static int cummax_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct scan_saved *s = EMBER_NODE_STATE(n, struct scan_saved);
  if (g->ndim == 0) {                 /* one element: its own running max */
    gin[0] = ember_clone(g);
    return gin[0] ? 0 : -1;
  }
  ember_tensor *z = ember_zeros_meta(g, &n->in[0]);
  if (z && ember_scatter_add_(z, s->dim, n->saved[0], g) < 0) {
    ember_tensor_release(z);
    z = NULL;
  }
  gin[0] = z;
  return z ? 0 : -1;
}

/* exp(x + reverse_logcumsumexp(log(h) - y)) for h >= 0: the reverse
   cumsum of h * exp(x - y), in log space so nothing overflows. */
static ember_tensor *lse_part(const ember_tensor *h, const ember_tensor *x,
                              const ember_tensor *y, int d) {
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *lh = ember_temp(&T, ember_unary(EMBER_LOG, h));
  ember_tensor *a = lh ? ember_temp(&T, ember_binary(EMBER_SUB, lh, y)) : NULL;
  ember_tensor *r = a ? ember_temp(&T, scan_run(EMBER_SCAN_LOGSUMEXP, a, d, 1, NULL)) : NULL;
  ember_tensor *e = r ? ember_temp(&T, ember_binary(EMBER_ADD, x, r)) : NULL;
  ember_tensor *out = e ? ember_unary(EMBER_EXP, e) : NULL;
  ember_temps_release(&T);
  return out;
}

/* d logcumsumexp, saved x and y: grad_k = sum_{j>=k} g_j exp(x_k - y_j),
   the positive and negative parts of g apart (PyTorch's way). */
static int logcumsumexp_backward(ember_node *n, ember_tensor *g,
                                 ember_tensor **gin) {
  const struct scan_saved *s = EMBER_NODE_STATE(n, struct scan_saved);
  const ember_tensor *x = n->saved[0], *y = n->saved[1];
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gp = ember_temp(&T, ember_clamp(g, 0.0, INFINITY));
  ember_tensor *gn = gp ? ember_temp(&T, ember_clamp(g, -INFINITY, 0.0)) : NULL;
  ember_tensor *gn2 = gn ? ember_temp(&T, ember_unary(EMBER_NEG, gn)) : NULL;
  ember_tensor *p = gn2 ? ember_temp(&T, lse_part(gp, x, y, s->dim)) : NULL;
  ember_tensor *q = p ? ember_temp(&T, lse_part(gn2, x, y, s->dim)) : NULL;
  gin[0] = q ? ember_binary(EMBER_SUB, p, q) : NULL;
  ember_temps_release(&T);
  return gin[0] ? 0 : -1;
}

/* }====================================================================== */

/* {======================================================================
** Front doors
** ======================================================================= */

/* The node for op over dim of x (its result y, indices idx for MAX);
   NULL (not an error) when nothing is recorded.  *err on failure. */
static ember_node *scan_node(ember_scan_op op, const ember_tensor *x, int dim,
                             ember_tensor *y, ember_tensor *idx) {
  static const char *names[] = {"CumsumBackward", "CumprodBackward",
                                "CummaxBackward", "LogcumsumexpBackward"};
  static const ember_backward_fn fns[] = {cumsum_backward, cumprod_backward,
                                          cummax_backward, logcumsumexp_backward};
  ember_node *n = ember_ag_node2(names[op], fns[op], x, NULL);
  if (!n) return NULL;
  EMBER_NODE_STATE(n, struct scan_saved)->dim = dim;
  int rc = 0;
  if (op == EMBER_SCAN_MAX) rc = ember_ag_save(n, idx);
  else if (op != EMBER_SCAN_SUM)
    rc = ember_ag_save(n, x) < 0 ? -1 : ember_ag_save(n, y);
  if (rc < 0) { ember_ag_node_release(n); return NULL; }
  return n;
}

/* cumsum / cumprod / logcumsumexp (dtype: an ember_dtype or -1). */
static ember_tensor *scan_op(ember_scan_op op, const ember_tensor *t, int dim,
                             int dtype) {
  const char *fn = scan_name(op);
  if (!t) { ember_set_error("%s: no tensor", fn); return NULL; }
  if ((dim = ember_wrap_dim(fn, dim, t->ndim)) < 0) return NULL;
  if (t->ndim == 0) dim = 0;
  if (op == EMBER_SCAN_LOGSUMEXP && !ember_dtype_is_float(t->dtype)) {
    ember_set_error("%s: expected a float tensor, got %s", fn,
                    ember_dtype_name(t->dtype));
    return NULL;
  }
  ember_dtype dt = t->dtype;
  if (dtype >= 0) {
    if (dtype >= EMBER_NDTYPES) {
      ember_set_error("%s: invalid dtype %d", fn, dtype);
      return NULL;
    }
    dt = (ember_dtype)dtype;
  } else if (!ember_dtype_is_float(dt)) {
    dt = EMBER_INT64;                         /* PyTorch: ints and bool */
  }
  if (dt == EMBER_BOOL) {
    ember_set_error("%s: cannot accumulate in dtype bool", fn);
    return NULL;
  }
  /* the cast is an op of its own, recorded as usual */
  ember_tensor *x = dt == t->dtype ? retained((ember_tensor *)t)
                                   : ember_to_dtype(t, dt);
  if (!x) return NULL;
  ember_tensor *y = scan_run(op, x, dim, 0, NULL);
  if (y && ember_ag_active1(x) && ember_dtype_is_float(y->dtype)) {
    ember_node *n = scan_node(op, x, dim, y, NULL);
    y = n ? ember_ag_finish(n, y, 0) : (ember_tensor_release(y), NULL);
  }
  ember_tensor_release(x);
  return y;
}

ember_tensor *ember_cumsum(const ember_tensor *t, int dim, int dtype) {
  return scan_op(EMBER_SCAN_SUM, t, dim, dtype);
}

ember_tensor *ember_cumprod(const ember_tensor *t, int dim, int dtype) {
  return scan_op(EMBER_SCAN_PROD, t, dim, dtype);
}

ember_tensor *ember_logcumsumexp(const ember_tensor *t, int dim) {
  return scan_op(EMBER_SCAN_LOGSUMEXP, t, dim, -1);
}

int ember_cummax(const ember_tensor *t, int dim, ember_tensor **values,
                 ember_tensor **indices) {
  *values = *indices = NULL;
  if (!t) return ember_set_error("cummax: no tensor");
  if ((dim = ember_wrap_dim("cummax", dim, t->ndim)) < 0) return -1;
  if (t->ndim == 0) dim = 0;
  ember_tensor *i;
  ember_tensor *v = scan_run(EMBER_SCAN_MAX, t, dim, 0, &i);
  if (!v) return -1;
  if (ember_ag_active1(t) && ember_dtype_is_float(v->dtype)) {
    ember_node *n = scan_node(EMBER_SCAN_MAX, t, dim, v, i);
    v = n ? ember_ag_finish(n, v, 0) : (ember_tensor_release(v), NULL);
    if (!v) { ember_tensor_release(i); return -1; }
  }
  *values = v;
  *indices = i;
  return 0;
}

/* }====================================================================== */
