/*
** ops_reduce.c -- reductions and softmax: the front door.
**
** Kernels reduce the last dimension, so a reduction over dim d permutes d
** to the end (a view, no copy) and a reduction over everything views the
** tensor as one row.  Result dtypes follow PyTorch: sum and prod of
** integers give int64, max/min keep the dtype, arg* give int64 (1-based
** positions); mean, var and std compute integers as float32.
*/
#include <string.h>

#include "grad_ops.h"

static const char *const reduce_names[EMBER_NREDUCE] = {
  "sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std",
};

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

/* Run the kernel: src viewed as [..., n] with the reduced dim last. */
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

ember_tensor *ember_reduce(ember_reduce_op op, const ember_tensor *t,
                           int correction) {
  if ((unsigned)op >= EMBER_NREDUCE) { ember_set_error("reduce: bad op"); return NULL; }
  if (ember_ag_active1(t)) return ember_ag_reduce(op, t, correction);
  int64_t n = ember_numel(t);
  if (n == 0 && needs_elements(op)) {
    ember_set_error("%s: cannot reduce an empty tensor (it has no elements)",
                    reduce_names[op]);
    return NULL;
  }
  ember_tensor *c = ember_contiguous(t);
  if (!c) return NULL;
  int64_t one = 1;
  ember_tensor *row = ember_tensor_alias(c, 1, &n, &one, c->offset);
  ember_tensor *out = row ? run_reduce(op, row, 0, NULL, correction) : NULL;
  ember_tensor_release(row);
  ember_tensor_release(c);
  return out;
}

/* Reduce dim (0-based) with an optional kept size-1 dim in the result. */
ember_tensor *ember_reduce_dim(ember_reduce_op op, const ember_tensor *t,
                               int dim, int keepdim, int correction) {
  if ((unsigned)op >= EMBER_NREDUCE) { ember_set_error("reduce: bad op"); return NULL; }
  if (ember_ag_active1(t)) return ember_ag_reduce_dim(op, t, dim, keepdim, correction);
  const char *fn = reduce_names[op];
  if (t->ndim == 0) {
    if (dim != 0 && dim != -1) {
      ember_set_error("%s: dimension %d out of range for a 0-d tensor", fn,
                      dim >= 0 ? dim + 1 : dim);
      return NULL;
    }
    return ember_reduce(op, t, correction);
  }
  if ((dim = ember_wrap_dim(fn, dim, t->ndim)) < 0) return NULL;
  if (t->shape[dim] == 0 && needs_elements(op)) {
    ember_set_error("%s: cannot reduce dimension %d of size 0", fn, dim + 1);
    return NULL;
  }
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

ember_tensor *ember_sum_dim(const ember_tensor *t, int dim, int keepdim) {
  return ember_reduce_dim(EMBER_SUM, t, dim, keepdim, 0);
}

static int extreme_dim(ember_reduce_op vop, ember_reduce_op iop,
                       const ember_tensor *t, int dim, int keepdim,
                       ember_tensor **values, ember_tensor **indices) {
  *indices = NULL;
  *values = ember_reduce_dim(vop, t, dim, keepdim, 0);
  if (!*values) return -1;
  *indices = ember_reduce_dim(iop, t, dim, keepdim, 0);
  if (!*indices) {
    ember_tensor_release(*values);
    *values = NULL;
    return -1;
  }
  return 0;
}

int ember_max_dim(const ember_tensor *t, int dim, int keepdim,
                  ember_tensor **values, ember_tensor **indices) {
  if (ember_ag_active1(t)) return ember_ag_extreme_dim(1, t, dim, keepdim, values, indices);
  return extreme_dim(EMBER_MAX, EMBER_ARGMAX, t, dim, keepdim, values, indices);
}

int ember_min_dim(const ember_tensor *t, int dim, int keepdim,
                  ember_tensor **values, ember_tensor **indices) {
  if (ember_ag_active1(t)) return ember_ag_extreme_dim(0, t, dim, keepdim, values, indices);
  return extreme_dim(EMBER_MIN, EMBER_ARGMIN, t, dim, keepdim, values, indices);
}

static ember_tensor *softmax_impl(const char *fn, const ember_tensor *t,
                                  int dim, int log) {
  int nd = t->ndim ? t->ndim : 1;
  if ((dim = ember_wrap_dim(fn, dim, nd)) < 0) return NULL;
  ember_dtype dt = ember_dtype_is_float(t->dtype) ? t->dtype : EMBER_FLOAT32;
  ember_tensor *src = ember_cast(t, dt);
  if (!src) return NULL;
  ember_tensor *out = ember_empty_on(t->storage->device, t->ndim, t->shape, dt);
  if (out && t->ndim > 0) {
    /* both viewed with dim moved last */
    int perm[EMBER_MAX_DIMS], k = 0;
    for (int i = 0; i < t->ndim; i++) if (i != dim) perm[k++] = i;
    perm[k] = dim;
    ember_tensor *ps = ember_permute(src, t->ndim, perm);
    ember_tensor *po = ps ? ember_permute(out, t->ndim, perm) : NULL;
    int rc = po ? ember_backend_of(out)->softmax(po, ps, log) : -1;
    ember_tensor_release(po);
    ember_tensor_release(ps);
    if (rc < 0) {
      ember_tensor_release(out);
      out = NULL;
    }
  } else if (out) {
    ember_fill_(out, log ? 0.0 : 1.0);   /* a single element */
  }
  ember_tensor_release(src);
  return out;
}

ember_tensor *ember_softmax(const ember_tensor *t, int dim) {
  if (ember_ag_active1(t)) return ember_ag_softmax(t, dim, 0);
  return softmax_impl("softmax", t, dim, 0);
}

ember_tensor *ember_log_softmax(const ember_tensor *t, int dim) {
  if (ember_ag_active1(t)) return ember_ag_softmax(t, dim, 1);
  return softmax_impl("log_softmax", t, dim, 1);
}
