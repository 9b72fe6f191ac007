/*
** ops_reduce.c -- softmax and log_softmax: the front door.  (The
** reductions moved to core/ops/reduce.c.)
*/
#include <string.h>

#include "grad_ops.h"

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
