/*
** loss.c -- cross entropy of rows of logits against class indices, fused
** (log-softmax and the pick in one pass), front door to backward.
**
** Contract:
**   - x is [N, C] float32/float64 logits (any strides), target [N] int64
**     or int32 1-based classes, each in 1..C or equal to ignore_index
**     (checked where the target lives: on a GPU a bad one is reported by
**     the next sync, ember_check_index); weight [C] (optional) has x's
**     dtype and device and gets no gradient (as in PyTorch);
**   - the result is the per-row loss [N]: (1 - s) w[t] (lse - x[t]) plus,
**     with label smoothing s > 0, s / C (sum_c w_c (lse - x_c)); 0 on an
**     ignored row.  *row_weight (when asked for) receives w[t] per row (0
**     where ignored), the denominator of the "mean" reduction, which the
**     caller applies (lua/ember/nn/loss_functional.lua);
**   - the forward saves x, the target, the row log-sum-exp and weight;
**     the backward is one kernel call: gs[i] (softmax - smoothed one-hot)
**     (formula in core/cpu/loss.c).
*/
#include <stdio.h>

#include "ops.h"

struct ce_saved {
  int64_t ignore;
  double smoothing;
  int has_w;
};

static int ce_backward(ember_node *n, ember_tensor *g, ember_tensor **gin);

static int ce_check(const ember_tensor *x, const ember_tensor *t,
                    const ember_tensor *w, int64_t ignore, double s) {
  if (!ember_dtype_is_float(x->dtype))
    return ember_set_error("cross_entropy: expected floating logits, got %s", ember_dtype_name(x->dtype));
  if (x->ndim != 2)
    return ember_set_error("cross_entropy: expected logits of shape [N,C], got "
                           "%d dims", x->ndim);
  if ((t->dtype != EMBER_INT64 && t->dtype != EMBER_INT32) || t->ndim != 1 ||
      t->shape[0] != x->shape[0])
    return ember_set_error("cross_entropy: expected int64 class indices of "
                           "shape [%lld], got a %s target with %d dims",
                           (long long)x->shape[0], ember_dtype_name(t->dtype),
                           t->ndim);
  if (w && (w->ndim != 1 || w->shape[0] != x->shape[1] || w->dtype != x->dtype))
    return ember_set_error("cross_entropy: weight must be a %s tensor of shape "
                           "[%lld] (one per class)", ember_dtype_name(x->dtype),
                           (long long)x->shape[1]);
  if (t->storage->device != x->storage->device ||
      (w && w->storage->device != x->storage->device))
    return ember_set_error("cross_entropy: expected the logits, target and "
                           "weight on one device");
  if (!(s >= 0 && s <= 1))
    return ember_set_error("cross_entropy: label_smoothing must be in [0, 1], "
                           "got %g", s);
  char suffix[160];
  snprintf(suffix, sizeof suffix, " is out of range for %lld classes (expected "
           "1..%lld or ignore_index %lld)", (long long)x->shape[1],
           (long long)x->shape[1], (long long)ignore);
  return ember_check_index(t, 1, x->shape[1], 1, ignore, "cross_entropy: target ",
                           suffix);
}

ember_tensor *ember_cross_entropy_rows(const ember_tensor *x,
                                       const ember_tensor *target,
                                       const ember_tensor *weight,
                                       int64_t ignore_index,
                                       double label_smoothing,
                                       ember_tensor **row_weight) {
  if (row_weight) *row_weight = NULL;
  if (ce_check(x, target, weight, ignore_index, label_smoothing) < 0) return NULL;
  const ember_backend_i *be = ember_backend_of(x);
  if (!be->cross_entropy)
    return ember_set_error("cross_entropy: not supported on %s", be->name), NULL;
  ember_device dev = x->storage->device;
  int64_t rows = x->shape[0];
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *xc = ember_temp(&T, ember_contiguous(x));
  ember_tensor *tc = ember_temp(&T, ember_cast(target, EMBER_INT64));
  tc = tc ? ember_temp(&T, ember_contiguous(tc)) : NULL;
  ember_tensor *wc = weight ? ember_temp(&T, ember_contiguous(weight)) : NULL;
  ember_tensor *lse = ember_temp(&T, ember_empty_on(dev, 1, &rows, x->dtype));
  ember_tensor *wt = ember_empty_on(dev, 1, &rows, x->dtype);
  ember_tensor *out = ember_empty_on(dev, 1, &rows, x->dtype);
  int ok = xc && tc && lse && wt && out && (!weight || wc);
  if (ok && be->cross_entropy(out, wt, lse, xc, tc, wc, ignore_index,
                              label_smoothing) < 0) ok = 0;
  ember_ag_resume(prev);
  if (!ok) {
    ember_tensor_release(out);
    ember_tensor_release(wt);
    ember_temps_release(&T);
    return NULL;
  }
  if (row_weight) *row_weight = wt;
  else ember_tensor_release(wt);
  if (!ember_ag_active1(x)) {
    ember_temps_release(&T);
    return out;
  }
  ember_node *n = ember_ag_node2("CrossEntropyBackward", ce_backward, x, NULL);
  if (n) {
    struct ce_saved *s = EMBER_NODE_STATE(n, struct ce_saved);
    s->ignore = ignore_index;
    s->smoothing = label_smoothing;
    s->has_w = wc != NULL;
    /* saved: x, target (int64), lse, then weight when given */
    if (ember_ag_save(n, xc) < 0 || ember_ag_save(n, tc) < 0 ||
        ember_ag_save(n, lse) < 0 || (wc && ember_ag_save(n, wc) < 0)) {
      ember_ag_node_release(n);
      n = NULL;
    }
  }
  ember_temps_release(&T);
  out = ember_ag_finish(n, out, 0);
  if (!out && row_weight) {
    ember_tensor_release(*row_weight);
    *row_weight = NULL;
  }
  return out;
}

static int ce_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct ce_saved *s = EMBER_NODE_STATE(n, struct ce_saved);
  const ember_tensor *x = n->saved[0], *t = n->saved[1], *lse = n->saved[2];
  const ember_tensor *w = s->has_w ? n->saved[3] : NULL;
  ember_tensor *gc = ember_contiguous(g);
  ember_tensor *dx = gc ? ember_empty_on(x->storage->device, 2, x->shape,
                                         x->dtype) : NULL;
  int rc = dx ? ember_backend_of(x)->cross_entropy_backward(
                    dx, gc, x, lse, t, w, s->ignore, s->smoothing) : -1;
  ember_tensor_release(gc);
  if (rc < 0) {
    ember_tensor_release(dx);
    return -1;
  }
  gin[0] = dx;
  return 0;
}
