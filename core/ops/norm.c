/*
** norm.c -- layer norm and RMS norm over the trailing dims as one fused
** op each, front door to backward.
**
** Contract:
**   - x (a float dtype, any strides) is normalised over its last
**     `normalized_ndim` dims, n elements; the leading dims are rows.  The
**     kernels (slots layer_norm / layer_norm_backward, core/cpu/norm.c,
**     core/cuda/norm.cu) see x contiguous as [rows, n];
**   - weight and bias (optional; RMS norm has no bias) have the shape of
**     those trailing dims and x's dtype and device;
**   - the forward saves x, the per-row rstd (and mean for layer norm) in
**     x's dtype, float32 for a bfloat16/float16 x (the accumulation type,
**     as PyTorch); the backward makes dx, dweight and dbias in one kernel
**     call, computing only those the node needs (PyTorch's
**     native_layer_norm_backward formulas, stated in core/cpu/norm.c);
**   - the backward itself is not recorded (no double backward through
**     these ops, as for the other fused kernels).
*/
#include <stdio.h>

#include "ops.h"

struct norm_saved {
  int64_t n;
  int k, rms, has_w;    /* k: normalized_ndim */
};

/* "[2,3]" of the trailing k dims of x into buf */
static const char *trailing_str(const ember_tensor *t, int k, char *buf,
                                size_t len) {
  size_t o = 0;
  o += (size_t)snprintf(buf, len, "[");
  for (int i = t->ndim - k; i < t->ndim && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", i > t->ndim - k ? "," : "",
                          (long long)t->shape[i]);
  if (o < len) snprintf(buf + o, len - o, "]");
  return buf;
}

/* weight or bias: NULL, or x's trailing k dims, dtype and device */
static int check_param(const char *fn, const char *what, const ember_tensor *x,
                       int k, const ember_tensor *p) {
  if (!p) return 0;
  int ok = p->ndim == k;
  for (int i = 0; ok && i < k; i++) ok = p->shape[i] == x->shape[x->ndim - k + i];
  if (!ok) {
    char want[256], got[256];
    return ember_set_error("%s: %s must have shape %s, got %s", fn, what,
                           trailing_str(x, k, want, sizeof want),
                           trailing_str(p, p->ndim, got, sizeof got));
  }
  if (p->dtype != x->dtype)
    return ember_set_error("%s: %s has dtype %s but the input %s", fn, what,
                           ember_dtype_name(p->dtype), ember_dtype_name(x->dtype));
  if (p->storage->device != x->storage->device)
    return ember_set_error("%s: %s is on %s but the input on %s", fn, what,
                           ember_device_name(p->storage->device),
                           ember_device_name(x->storage->device));
  return 0;
}

static int norm_backward(ember_node *n, ember_tensor *g, ember_tensor **gin);

static ember_tensor *norm_impl(const char *fn, const ember_tensor *x, int k,
                               const ember_tensor *w, const ember_tensor *b,
                               double eps, int rms) {
  if (!ember_dtype_is_float(x->dtype))
    return ember_set_error("%s: expected a floating input, got %s",
                           fn, ember_dtype_name(x->dtype)), NULL;
  if (k < 1 || k > x->ndim)
    return ember_set_error("%s: normalized_ndim must be in 1..%d (the input's "
                           "dims), got %d", fn, x->ndim, k), NULL;
  if (check_param(fn, "weight", x, k, w) < 0 ||
      check_param(fn, "bias", x, k, b) < 0) return NULL;
  if (!(eps >= 0)) return ember_set_error("%s: eps must be >= 0, got %g", fn, eps), NULL;
  const ember_backend_i *be = ember_backend_of(x);
  if (!be->layer_norm)
    return ember_set_error("%s: not supported on %s", fn, be->name), NULL;
  int64_t n = 1, rows = 1;
  for (int i = 0; i < x->ndim; i++) *(i < x->ndim - k ? &rows : &n) *= x->shape[i];
  ember_device dev = x->storage->device;
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *xc = ember_temp(&T, ember_contiguous(x));
  ember_tensor *wc = w ? ember_temp(&T, ember_contiguous(w)) : NULL;
  ember_tensor *bc = b ? ember_temp(&T, ember_contiguous(b)) : NULL;
  ember_tensor *out = ember_empty_on(dev, x->ndim, x->shape, x->dtype);
  /* the saved statistics in the accumulation type: float32 for a half x
     (as PyTorch keeps them), so the backward does not use them rounded */
  ember_dtype st = ember_dtype_is_half(x->dtype) ? EMBER_FLOAT32 : x->dtype;
  ember_tensor *rstd = ember_temp(&T, ember_empty_on(dev, 1, &rows, st));
  ember_tensor *mean = rms ? NULL : ember_temp(&T, ember_empty_on(dev, 1, &rows, st));
  int ok = out && xc && rstd && (rms || mean) && (!w || wc) && (!b || bc);
  if (ok && be->layer_norm(out, mean, rstd, xc, wc, bc, n, eps, rms) < 0) ok = 0;
  ember_ag_resume(prev);
  if (!ok) {
    ember_tensor_release(out);
    ember_temps_release(&T);
    return NULL;
  }
  if (!ember_grad_mode_ || !(ember_ag_requires(x) || ember_ag_requires(w) ||
                             ember_ag_requires(b))) {
    ember_temps_release(&T);
    return out;
  }
  const ember_tensor *in[3] = {x, w, b};
  ember_node *node = ember_ag_node(rms ? "RmsNormBackward" : "LayerNormBackward",
                                   norm_backward, rms ? 2 : 3, in);
  if (node) {
    struct norm_saved *s = EMBER_NODE_STATE(node, struct norm_saved);
    s->n = n;
    s->k = k;
    s->rms = rms;
    s->has_w = w != NULL;
    /* saved: x, rstd, then mean (layer norm), then w (when given) */
    if (ember_ag_save(node, xc) < 0 || ember_ag_save(node, rstd) < 0 ||
        (!rms && ember_ag_save(node, mean) < 0) ||
        (wc && ember_ag_save(node, wc) < 0)) {
      ember_ag_node_release(node);
      node = NULL;
    }
  }
  ember_temps_release(&T);
  return ember_ag_finish(node, out, 0);
}

ember_tensor *ember_layer_norm(const ember_tensor *x, int normalized_ndim,
                               const ember_tensor *weight,
                               const ember_tensor *bias, double eps) {
  return norm_impl("layer_norm", x, normalized_ndim, weight, bias, eps, 0);
}

ember_tensor *ember_rms_norm(const ember_tensor *x, int normalized_ndim,
                             const ember_tensor *weight, double eps) {
  return norm_impl("rms_norm", x, normalized_ndim, weight, NULL, eps, 1);
}

/* gin: x, weight, bias (each only when the node needs it), from one
   kernel call. */
static int norm_backward(ember_node *node, ember_tensor *g, ember_tensor **gin) {
  const struct norm_saved *s = EMBER_NODE_STATE(node, struct norm_saved);
  const ember_tensor *x = node->saved[0], *rstd = node->saved[1];
  const ember_tensor *mean = s->rms ? NULL : node->saved[2];
  const ember_tensor *w = s->has_w ? node->saved[s->rms ? 2 : 3] : NULL;
  ember_device dev = x->storage->device;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gc = ember_temp(&T, ember_contiguous(g));
  ember_tensor *dx = NULL, *dw = NULL, *db = NULL;
  int ok = gc != NULL;
  if (ok && node->needs[0])
    ok = (dx = ember_empty_on(dev, x->ndim, x->shape, x->dtype)) != NULL;
  if (ok && w && node->needs[1])
    ok = (dw = ember_empty_on(dev, w->ndim, w->shape, x->dtype)) != NULL;
  if (ok && !s->rms && node->needs[2])   /* bias: x's trailing k dims */
    ok = (db = ember_empty_on(dev, s->k, x->shape + x->ndim - s->k,
                              x->dtype)) != NULL;
  if (ok && (dx || dw || db))
    ok = ember_backend_of(x)->layer_norm_backward(dx, dw, db, gc, x, mean, rstd,
                                                  w, s->n, s->rms) == 0;
  ember_temps_release(&T);
  if (!ok) {
    ember_tensor_release(dx);
    ember_tensor_release(dw);
    ember_tensor_release(db);
    return -1;
  }
  gin[0] = dx;
  if (w) gin[1] = dw;
  if (!s->rms) gin[2] = db;
  return 0;
}
