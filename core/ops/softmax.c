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

/* softmax: y (g - sum(g y)); log_softmax: g - exp(y) sum(g) */
static int softmax_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct softmax_saved *st = EMBER_NODE_STATE(n, struct softmax_saved);
  int dim = st->dim;
  const ember_tensor *y = n->saved[0];
  if (y->ndim == 0) return (gin[0] = ember_scalar_as(g, 0.0)) ? 0 : -1;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *r = NULL;
  if (st->log) {
    ember_tensor *s = ember_temp(&T, ember_sum_dim(g, dim, 1));
    ember_tensor *e = ember_temp(&T, s ? ember_unary(EMBER_EXP, y) : NULL);
    ember_tensor *t = ember_temp(&T, e ? ember_binary(EMBER_MUL, e, s) : NULL);
    r = t ? ember_binary(EMBER_SUB, g, t) : NULL;
  } else {
    ember_tensor *gy = ember_temp(&T, ember_binary(EMBER_MUL, g, y));
    ember_tensor *s = ember_temp(&T, gy ? ember_sum_dim(gy, dim, 1) : NULL);
    ember_tensor *d = ember_temp(&T, s ? ember_binary(EMBER_SUB, g, s) : NULL);
    r = d ? ember_binary(EMBER_MUL, y, d) : NULL;
  }
  ember_temps_release(&T);
  return (gin[0] = r) ? 0 : -1;
}
