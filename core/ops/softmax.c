/*
** softmax.c -- softmax and log_softmax over one dimension, front door to
** backward.
**
** Contract:
**   - the kernel works along the last dimension, so input and result are
**     both viewed with `dim` moved last (a permutation of strides, no
**     copy); a 0-d tensor is a single element (softmax 1, log_softmax 0);
**   - integer inputs compute as float32; float inputs keep their dtype;
**   - dim is checked once; a 0-d tensor takes dim 0 (or -1);
**   - recording: the result is computed first (recording paused around
**     the cast and the views), then, when the input requires grad, a node
**     (struct softmax_saved: the 0-based dim, and whether it is the log
**     form) saves the output, which is all the backward reads.  The
**     backward follows PyTorch's tools/autograd/derivatives.yaml
**     (_softmax_backward_data, _log_softmax_backward_data).
*/
#include "ops.h"

struct softmax_saved {
  int dim, log;
};

static int softmax_backward(ember_node *n, ember_tensor *g, ember_tensor **gin);

/* t viewed with dim moved last, where the kernels want it */
static ember_tensor *dim_last(const ember_tensor *t, int dim) {
  int perm[EMBER_MAX_DIMS], k = 0;
  for (int i = 0; i < t->ndim; i++) if (i != dim) perm[k++] = i;
  perm[k] = dim;
  return ember_permute(t, t->ndim, perm);
}

static ember_tensor *softmax_impl(const char *fn, const ember_tensor *t,
                                  int dim, int log) {
  int nd = t->ndim ? t->ndim : 1;
  if ((dim = ember_wrap_dim(fn, dim, nd)) < 0) return NULL;
  ember_dtype dt = ember_dtype_is_float(t->dtype) ? t->dtype : EMBER_FLOAT32;
  int prev = ember_ag_pause();
  ember_tensor *src = ember_cast(t, dt);
  ember_tensor *out = src ? ember_empty_on(t->storage->device, t->ndim,
                                           t->shape, dt) : NULL;
  if (out && t->ndim > 0) {
    ember_tensor *ps = dim_last(src, dim);
    ember_tensor *po = ps ? dim_last(out, dim) : NULL;
    int rc = po ? ember_backend_of(out)->softmax(po, ps, log) : -1;
    ember_tensor_release(po);
    ember_tensor_release(ps);
    if (rc < 0) {
      ember_tensor_release(out);
      out = NULL;
    }
  } else if (out && ember_fill_(out, log ? 0.0 : 1.0) < 0) {  /* a single element */
    ember_tensor_release(out);
    out = NULL;
  }
  ember_tensor_release(src);
  ember_ag_resume(prev);
  if (!out || !ember_ag_active1(t)) return out;
  ember_node *n = ember_ag_node2(log ? "LogSoftmaxBackward" : "SoftmaxBackward",
                                 softmax_backward, t, NULL);
  if (n) {
    struct softmax_saved *s = EMBER_NODE_STATE(n, struct softmax_saved);
    s->dim = dim;
    s->log = log;
    if (ember_ag_save(n, out) < 0) { ember_ag_node_release(n); n = NULL; }
  }
  return ember_ag_finish(n, out, 0);
}

ember_tensor *ember_softmax(const ember_tensor *t, int dim) {
  return softmax_impl("softmax", t, dim, 0);
}

ember_tensor *ember_log_softmax(const ember_tensor *t, int dim) {
  return softmax_impl("log_softmax", t, dim, 1);
}

/* softmax: y (g - sum(g y)); log_softmax: g - exp(y) sum(g): one kernel
   (the backend's softmax_backward) over the rows of dim */
static int softmax_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct softmax_saved *st = EMBER_NODE_STATE(n, struct softmax_saved);
  int dim = st->dim;
  const ember_tensor *y = n->saved[0];
  if (y->ndim == 0) return (gin[0] = ember_scalar_as(g, 0.0)) ? 0 : -1;
  int prev = ember_ag_pause();
  ember_tensor *gc = ember_cast(g, y->dtype);
  ember_tensor *dx = gc ? ember_empty_on(y->storage->device, y->ndim, y->shape,
                                         y->dtype) : NULL;
  ember_tensor *pd = dx ? dim_last(dx, dim) : NULL;
  ember_tensor *pg = pd ? dim_last(gc, dim) : NULL;
  ember_tensor *py = pg ? dim_last(y, dim) : NULL;
  int rc = py ? ember_backend_of(dx)->softmax_backward(pd, pg, py, st->log) : -1;
  ember_tensor_release(py);
  ember_tensor_release(pg);
  ember_tensor_release(pd);
  ember_tensor_release(gc);
  ember_ag_resume(prev);
  if (rc < 0) {
    ember_tensor_release(dx);
    return -1;
  }
  gin[0] = dx;
  return 0;
}
