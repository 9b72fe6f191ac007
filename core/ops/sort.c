/*
** sort.c -- sorting and selection along a dimension: sort, topk,
** kthvalue, median, front door to backward.
**
** Contract:
**   - dims are 0-based here (the bindings take 1-based dims), negative
**     from the end; a 0-d tensor counts as one element (dim 0 or -1);
**   - indices are int64 and 1-based;
**   - order: ascending puts NaN after everything, descending first, as
**     PyTorch; -0.0 and 0.0 tie; ties keep their original order (stable),
**     so topk and kthvalue choose the lowest positions among ties;
**   - every op is one call of the `sort` kernel slot (core/cpu/sort.c,
**     core/cuda/sort.cu), which writes the first k of each sorted line:
**     sort takes all n, topk k (the CPU selects before it sorts),
**     kthvalue and median the first k and keep the last;
**   - median (the lower one, as PyTorch) of a line holding a NaN is NaN,
**     at the first NaN's position: a second call (the largest element,
**     NaN first) says which lines hold one;
**   - recording: float values get a node whose backward puts g at the
**     chosen indices (ember_pick_backward, shared with max/min); median
**     over everything shares g among the elements equal to the result,
**     as PyTorch's evenly_distribute_backward (ember_tie_share).
*/
#include <math.h>

#include "ops.h"

static ember_tensor *retained(ember_tensor *t) {
  ember_tensor_retain(t);
  return t;
}

/* {======================================================================
** Running the kernel
** ======================================================================= */

/*
** The first k of each line along dim of t (an n-d tensor, n >= 1, any
** layout; dim wrapped) in the order asked, not recorded: new contiguous
** values (t's dtype) and indices (int64) of t's shape with k at dim.
*/
static int sort_run(const char *fn, const ember_tensor *t, int dim, int64_t k,
                    int descending, ember_tensor **values,
                    ember_tensor **indices) {
  *values = *indices = NULL;
  const ember_backend_i *be = ember_backend_of(t);
  if (!be) return -1;
  if (!be->sort) return ember_set_error("%s: not supported on %s", fn, be->name);
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  int64_t shape[EMBER_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
  shape[dim] = k;
  ember_device dev = t->storage->device;
  ember_tensor *c = ember_temp(&T, ember_contiguous(t));
  ember_tensor *v = c ? ember_temp(&T, ember_empty_on(dev, t->ndim, shape, t->dtype)) : NULL;
  ember_tensor *ix = v ? ember_temp(&T, ember_empty_on(dev, t->ndim, shape, EMBER_INT64)) : NULL;
  int ok = ix != NULL;
  if (ok && ember_numel(v) > 0 && be->sort(v, ix, c, dim, k, descending) < 0)
    ok = 0;
  if (ok) {
    *values = retained(v);
    *indices = retained(ix);
  }
  ember_temps_release(&T);
  ember_ag_resume(prev);
  return ok ? 0 : -1;
}

/* Drop dim (size 1) from *v and *i unless keepdim; releases both on error. */
static int squeeze_pair(int dim, int keepdim, ember_tensor **v,
                        ember_tensor **i) {
  if (keepdim) return 0;
  ember_tensor *sv = ember_squeeze(*v, dim);
  ember_tensor *si = sv ? ember_squeeze(*i, dim) : NULL;
  ember_tensor_release(*v);
  ember_tensor_release(*i);
  *v = sv;
  *i = si;
  if (si) return 0;
  ember_tensor_release(sv);
  *v = NULL;
  return -1;
}

/* }====================================================================== */

/* {======================================================================
** Front doors
** ======================================================================= */

/* The checks every op makes: a tensor, dim in range (wrapped into *dim),
   a dtype the op takes (bool only for sort). */
static int check_input(const char *fn, const ember_tensor *t, int *dim,
                       int bool_ok) {
  if (!t) return ember_set_error("%s: no tensor", fn);
  if ((*dim = ember_wrap_dim(fn, *dim, t->ndim)) < 0) return -1;
  if (t->ndim == 0) *dim = 0;
  if (t->dtype == EMBER_BOOL && !bool_ok)
    return ember_set_error("%s: bool tensors are not supported (as in "
                           "PyTorch); convert with :long() or :float()", fn);
  return 0;
}

/* The length of dim for a check: 1 for a 0-d tensor. */
static int64_t dim_size(const ember_tensor *t, int dim) {
  return t->ndim == 0 ? 1 : t->shape[dim];
}

/* Hand out v and i (new references, taken over), v recorded as picked
   from t at i along dim when t requires grad and v is float. */
static int record_pick(const char *node, const ember_tensor *t, int dim,
                       int keepdim, ember_tensor *v, ember_tensor *i,
                       ember_tensor **values, ember_tensor **indices) {
  if (ember_ag_active1(t) && ember_dtype_is_float(v->dtype)) {
    ember_node *n = ember_ag_node2(node, ember_pick_backward, t, NULL);
    if (n) {
      ember_pick_saved *s = EMBER_NODE_STATE(n, ember_pick_saved);
      s->dim = dim;
      s->keepdim = keepdim;
      if (ember_ag_save(n, i) < 0) { ember_ag_node_release(n); n = NULL; }
    }
    v = n ? ember_ag_finish(n, v, 0) : (ember_tensor_release(v), NULL);
    if (!v) { ember_tensor_release(i); return -1; }
  }
  *values = v;
  *indices = i;
  return 0;
}

/*
** The selection every op is: the first k along dim in the order asked,
** recorded (pick_backward) when t requires grad and is float; keepdim
** false keeps only the k-th (the last taken) and drops dim.  A 0-d t runs
** as [1] through recorded reshapes, so its gradient flows back the same
** way.
*/
static int select_op(const char *fn, const char *node, const ember_tensor *t,
                     int dim, int64_t k, int descending, int last_only,
                     int keepdim, ember_tensor **values,
                     ember_tensor **indices) {
  *values = *indices = NULL;
  if (t->ndim == 0) {
    int64_t one = 1;
    ember_tensor *t1 = ember_reshape(t, 1, &one), *v1, *i1;
    int rc = t1 ? select_op(fn, node, t1, 0, k, descending, last_only, 1,
                            &v1, &i1) : -1;
    ember_tensor_release(t1);
    if (rc < 0) return -1;
    if (k == 0) {                        /* topk(0): empty, shape [0] */
      *values = v1;
      *indices = i1;
      return 0;
    }
    /* a 0-d input gives 0-d results, whatever keepdim says (PyTorch) */
    *values = ember_reshape(v1, 0, &one);
    *indices = *values ? ember_reshape(i1, 0, &one) : NULL;
    ember_tensor_release(v1);
    ember_tensor_release(i1);
    if (*indices) return 0;
    ember_tensor_release(*values);
    *values = NULL;
    return -1;
  }
  ember_tensor *v, *i;
  if (sort_run(fn, t, dim, k, descending, &v, &i) < 0) return -1;
  if (last_only) {                        /* the k-th alone: a view of it */
    int prev = ember_ag_pause();
    ember_tensor *nv = ember_narrow(v, dim, k - 1, 1);
    ember_tensor *ni = nv ? ember_narrow(i, dim, k - 1, 1) : NULL;
    ember_ag_resume(prev);
    ember_tensor_release(v);
    ember_tensor_release(i);
    v = nv;
    i = ni;
    if (!i || squeeze_pair(dim, keepdim, &v, &i) < 0) {
      ember_tensor_release(v);
      return -1;
    }
  } else {
    keepdim = 1;
  }
  return record_pick(node, t, dim, keepdim, v, i, values, indices);
}

int ember_sort(const ember_tensor *t, int dim, int descending,
               ember_tensor **values, ember_tensor **indices) {
  *values = *indices = NULL;
  if (check_input("sort", t, &dim, 1) < 0) return -1;
  return select_op("sort", "SortBackward", t, dim, dim_size(t, dim),
                   descending, 0, 1, values, indices);
}

int ember_topk(const ember_tensor *t, int64_t k, int dim, int largest,
               ember_tensor **values, ember_tensor **indices) {
  *values = *indices = NULL;
  if (check_input("topk", t, &dim, 0) < 0) return -1;
  int64_t n = dim_size(t, dim);
  if (k < 0)
    return ember_set_error("topk: k (%lld) must be >= 0", (long long)k);
  if (k > n)
    return ember_set_error("topk: k (%lld) is larger than the size of dim "
                           "%d (%lld)", (long long)k, dim + 1, (long long)n);
  return select_op("topk", "TopkBackward", t, dim, k, largest, 0, 1, values,
                   indices);
}

int ember_kthvalue(const ember_tensor *t, int64_t k, int dim, int keepdim,
                   ember_tensor **values, ember_tensor **indices) {
  *values = *indices = NULL;
  if (check_input("kthvalue", t, &dim, 0) < 0) return -1;
  int64_t n = dim_size(t, dim);
  if (k < 1 || k > n)
    return ember_set_error("kthvalue: k (%lld) is out of range for dim %d of "
                           "size %lld (expected 1..%lld)", (long long)k,
                           dim + 1, (long long)n, (long long)n);
  return select_op("kthvalue", "KthvalueBackward", t, dim, k, 0, 1, keepdim,
                   values, indices);
}

/* Where a line holds a NaN, its median is that NaN (the first one): the
   largest element of each line, NaN first, tells which lines hold one.
   *v and *i (dims kept) are replaced in place; x is the input. */
static int median_nan(const ember_tensor *x, int dim, ember_tensor **v,
                      ember_tensor **i) {
  ember_tensor *tv, *ti;
  if (sort_run("median", x, dim, 1, 1, &tv, &ti) < 0) return -1;
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  ember_temp(&T, tv);
  ember_temp(&T, ti);
  ember_tensor *isn = ember_temp(&T, ember_compare(EMBER_NE, tv, tv));
  ember_tensor *nv = isn ? ember_where(isn, tv, *v) : NULL;
  ember_tensor *ni = nv ? ember_where(isn, ti, *i) : NULL;
  ember_temps_release(&T);
  ember_ag_resume(prev);
  if (!ni) { ember_tensor_release(nv); return -1; }
  ember_tensor_release(*v);
  ember_tensor_release(*i);
  *v = nv;
  *i = ni;
  return 0;
}

int ember_median_dim(const ember_tensor *t, int dim, int keepdim,
                     ember_tensor **values, ember_tensor **indices) {
  *values = *indices = NULL;
  if (check_input("median", t, &dim, 0) < 0) return -1;
  int64_t n = dim_size(t, dim);
  if (n == 0)
    return ember_set_error("median: dim %d has size 0 (no median)", dim + 1);
  if (t->ndim == 0 || !ember_dtype_is_float(t->dtype))
    return select_op("median", "MedianBackward", t, dim, (n + 1) / 2, 0, 1,
                     keepdim, values, indices);
  /* floats: select with dims kept, fix the lines with a NaN, then record */
  ember_tensor *v, *i;
  int prev = ember_ag_pause();
  int rc = select_op("median", "MedianBackward", t, dim, (n + 1) / 2, 0, 1, 1,
                     &v, &i);
  ember_ag_resume(prev);
  if (rc < 0) return -1;
  if (median_nan(t, dim, &v, &i) < 0 || squeeze_pair(dim, keepdim, &v, &i) < 0) {
    ember_tensor_release(v);
    ember_tensor_release(i);
    return -1;
  }
  return record_pick("MedianBackward", t, dim, keepdim, v, i, values, indices);
}

/* median over everything: saved[0] the input, saved[1] the result */
static int median_all_backward(ember_node *n, ember_tensor *g,
                               ember_tensor **gin) {
  gin[0] = ember_tie_share(n->saved[0], n->saved[1], g, -1);
  return gin[0] ? 0 : -1;
}

ember_tensor *ember_median(const ember_tensor *t) {
  if (!t) { ember_set_error("median: no tensor"); return NULL; }
  if (t->dtype == EMBER_BOOL) {
    int d = -1;                          /* a dim any tensor has */
    check_input("median", t, &d, 0);     /* sets the bool message */
    return NULL;
  }
  int64_t numel = ember_numel(t);
  if (numel == 0) {
    if (!ember_dtype_is_float(t->dtype)) {
      ember_set_error("median: an empty %s tensor has no median",
                      ember_dtype_name(t->dtype));
      return NULL;
    }
    return ember_full_on(t->storage->device, 0, NULL, NAN, t->dtype);
  }
  int prev = ember_ag_pause();
  ember_tensor *flat = ember_reshape(t, 1, &numel), *v = NULL, *i = NULL;
  int rc = flat ? ember_median_dim(flat, 0, 0, &v, &i) : -1;
  ember_ag_resume(prev);
  ember_tensor_release(flat);
  ember_tensor_release(i);
  if (rc < 0) return NULL;
  if (!ember_ag_active1(t) || !ember_dtype_is_float(t->dtype)) return v;
  ember_node *n = ember_ag_node2("MedianBackward", median_all_backward, t, NULL);
  if (n && (ember_ag_save(n, t) < 0 || ember_ag_save(n, v) < 0)) {
    ember_ag_node_release(n);
    n = NULL;
  }
  return n ? ember_ag_finish(n, v, 0) : (ember_tensor_release(v), NULL);
}

/* }====================================================================== */
