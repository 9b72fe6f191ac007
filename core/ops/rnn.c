/*
** rnn.c -- the fused LSTM and GRU cell steps, front door to backward.
**
** ember_gru_cell(gx, gh, h): gx = x W_ih^T + b_ih and gh = h W_hh^T + b_hh
** (B, 3H) in PyTorch's order r, z, n, h (B, H); returns h' (B, H) (slots
** gru_cell / gru_cell_backward), saving r, z, n (B, 3H), gh and h.
**
** The LSTM's contract:
**   - gates (B, 4H) are the pre-activations of one time step (x W_ih^T +
**     b_ih + h W_hh^T + b_hh) in PyTorch's gate order i, f, g, o; c_prev
**     (B, H) the cell state; one float dtype and device, any strides
**     (bfloat16/float16 computed in float32, rounded once: ops.h);
**   - the result is one (2, B, H) tensor: [1] is h = o tanh(c), [2] is
**     c = f c_prev + i g (one output, so one autograd node: the engine
**     adds the gradients of the two selects in place);
**   - the forward (slot lstm_cell, core/cpu/rnn.c, core/cuda/rnn.cu)
**     saves the activated gates (B, 4H), c_prev and the result; the
**     backward (slot lstm_cell_backward) makes d gates and d c_prev in
**     one pass and is not itself recorded (no double backward, as the
**     other fused kernels).
*/
#include "ops.h"

static int lstm_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_tensor *act = n->saved[0], *cp = n->saved[1], *hc = n->saved[2];
  ember_device dev = act->storage->device;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gc = ember_temp(&T, ember_cast(g, act->dtype));
  gc = gc ? ember_temp(&T, ember_contiguous(gc)) : NULL;
  ember_tensor *dg = gc ? ember_empty_on(dev, act->ndim, act->shape, act->dtype) : NULL;
  ember_tensor *dcp = dg && n->needs[1]
                          ? ember_empty_on(dev, cp->ndim, cp->shape, cp->dtype) : NULL;
  int ok = dg && (!n->needs[1] || dcp) &&
           ember_backend_of(act)->lstm_cell_backward(dg, dcp, gc, act, cp, hc) == 0;
  ember_temps_release(&T);
  if (!ok) {
    ember_tensor_release(dg);
    ember_tensor_release(dcp);
    return -1;
  }
  if (n->needs[0]) gin[0] = dg;
  else ember_tensor_release(dg);
  gin[1] = dcp;
  return 0;
}

static int check_cell(const ember_tensor *gates, const ember_tensor *c_prev) {
  char b1[128], b2[128];
  if (!ember_dtype_is_float(gates->dtype))
    return ember_set_error("lstm_cell: expected floating gates, got %s",
                           ember_dtype_name(gates->dtype));
  if (c_prev->dtype != gates->dtype)
    return ember_set_error("lstm_cell: c_prev is %s but the gates are %s",
                           ember_dtype_name(c_prev->dtype),
                           ember_dtype_name(gates->dtype));
  if (c_prev->storage->device != gates->storage->device)
    return ember_set_error("lstm_cell: c_prev is on %s but the gates on %s",
                           ember_device_name(c_prev->storage->device),
                           ember_device_name(gates->storage->device));
  if (gates->ndim != 2 || c_prev->ndim != 2 || c_prev->shape[0] != gates->shape[0] ||
      gates->shape[1] != 4 * c_prev->shape[1])
    return ember_set_error("lstm_cell: expected gates (B, 4H) and c_prev (B, H), "
                           "got %s and %s",
                           ember_shape_str(b1, sizeof b1, gates->ndim, gates->shape),
                           ember_shape_str(b2, sizeof b2, c_prev->ndim, c_prev->shape));
  if (!ember_backend_of(gates)->lstm_cell)
    return ember_set_error("lstm_cell: not supported on %s",
                           ember_backend_of(gates)->name);
  return 0;
}

ember_tensor *ember_lstm_cell(const ember_tensor *gates, const ember_tensor *c_prev) {
  if (check_cell(gates, c_prev) < 0) return NULL;
  if (ember_dtype_is_half(gates->dtype)) {   /* in float32, rounded once (ops.h) */
    const ember_tensor *in[2] = {gates, c_prev};
    ember_tensor *f[2];
    if (ember_widen_half(2, in, f) < 0) return NULL;
    ember_tensor *out = ember_lstm_cell(f[0], f[1]);
    ember_tensor_release(f[0]);
    ember_tensor_release(f[1]);
    return ember_narrow_to(out, gates->dtype);
  }
  int rec = ember_ag_active2(gates, c_prev);
  ember_device dev = gates->storage->device;
  int64_t hs[3] = {2, c_prev->shape[0], c_prev->shape[1]};
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gc = ember_temp(&T, ember_contiguous(gates));
  ember_tensor *cc = ember_temp(&T, ember_contiguous(c_prev));
  ember_tensor *act = rec ? ember_temp(&T, ember_empty_on(dev, 2, gates->shape,
                                                          gates->dtype))
                          : NULL;
  ember_tensor *out = ember_empty_on(dev, 3, hs, gates->dtype);
  int ok = gc && cc && out && (!rec || act) &&
           ember_backend_of(gates)->lstm_cell(out, act, gc, cc) == 0;
  ember_ag_resume(prev);
  if (!ok) {
    ember_tensor_release(out);
    ember_temps_release(&T);
    return NULL;
  }
  ember_node *n = NULL;
  if (rec) {
    n = ember_ag_node2("LstmCellBackward", lstm_backward, gates, c_prev);
    if (n && (ember_ag_save(n, act) < 0 || ember_ag_save(n, cc) < 0 ||
              ember_ag_save(n, out) < 0)) {
      ember_ag_node_release(n);
      n = NULL;
    }
  }
  ember_temps_release(&T);
  return rec ? ember_ag_finish(n, out, 0) : out;
}

/* {======================================================================
** GRU
** ======================================================================= */

/* saved: act (r, z, n), gh, h; gin: gx, gh, h from one kernel call */
static int gru_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_tensor *act = n->saved[0], *gh = n->saved[1], *h = n->saved[2];
  ember_device dev = h->storage->device;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *gc = ember_temp(&T, ember_cast(g, h->dtype));
  gc = gc ? ember_temp(&T, ember_contiguous(gc)) : NULL;
  ember_tensor *d[3] = {NULL, NULL, NULL};
  int ok = gc != NULL;
  for (int k = 0; k < 3 && ok; k++) {
    const ember_tensor *like = k < 2 ? act : h;
    if (n->needs[k])
      ok = (d[k] = ember_empty_on(dev, like->ndim, like->shape, h->dtype)) != NULL;
  }
  ok = ok && ember_backend_of(h)->gru_cell_backward(d[0], d[1], d[2], gc, act,
                                                     gh, h) == 0;
  ember_temps_release(&T);
  for (int k = 0; k < 3; k++) {
    if (ok) gin[k] = d[k];
    else ember_tensor_release(d[k]);
  }
  return ok ? 0 : -1;
}

static int check_gru(const ember_tensor *gx, const ember_tensor *gh,
                     const ember_tensor *h) {
  char b1[128], b2[128], b3[128];
  if (!ember_dtype_is_float(h->dtype))
    return ember_set_error("gru_cell: expected a floating h, got %s",
                           ember_dtype_name(h->dtype));
  if (gx->dtype != h->dtype || gh->dtype != h->dtype)
    return ember_set_error("gru_cell: gx, gh and h must have one dtype, got %s, "
                           "%s and %s", ember_dtype_name(gx->dtype),
                           ember_dtype_name(gh->dtype), ember_dtype_name(h->dtype));
  if (gx->storage->device != h->storage->device ||
      gh->storage->device != h->storage->device)
    return ember_set_error("gru_cell: gx, gh and h must be on one device");
  if (gx->ndim != 2 || gh->ndim != 2 || h->ndim != 2 ||
      gx->shape[0] != h->shape[0] || gh->shape[0] != h->shape[0] ||
      gx->shape[1] != 3 * h->shape[1] || gh->shape[1] != 3 * h->shape[1])
    return ember_set_error("gru_cell: expected gx and gh (B, 3H) and h (B, H), "
                           "got %s, %s and %s",
                           ember_shape_str(b1, sizeof b1, gx->ndim, gx->shape),
                           ember_shape_str(b2, sizeof b2, gh->ndim, gh->shape),
                           ember_shape_str(b3, sizeof b3, h->ndim, h->shape));
  if (!ember_backend_of(h)->gru_cell)
    return ember_set_error("gru_cell: not supported on %s", ember_backend_of(h)->name);
  return 0;
}

ember_tensor *ember_gru_cell(const ember_tensor *gx, const ember_tensor *gh,
                             const ember_tensor *h) {
  if (check_gru(gx, gh, h) < 0) return NULL;
  if (ember_dtype_is_half(h->dtype)) {       /* in float32, rounded once (ops.h) */
    const ember_tensor *in[3] = {gx, gh, h};
    ember_tensor *f[3];
    if (ember_widen_half(3, in, f) < 0) return NULL;
    ember_tensor *out = ember_gru_cell(f[0], f[1], f[2]);
    for (int i = 0; i < 3; i++) ember_tensor_release(f[i]);
    return ember_narrow_to(out, h->dtype);
  }
  int rec = ember_grad_mode_ && (ember_ag_requires(gx) || ember_ag_requires(gh) ||
                                 ember_ag_requires(h));
  ember_device dev = h->storage->device;
  int prev = ember_ag_pause();
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *xc = ember_temp(&T, ember_contiguous(gx));
  ember_tensor *hc = ember_temp(&T, ember_contiguous(gh));
  ember_tensor *h0 = ember_temp(&T, ember_contiguous(h));
  ember_tensor *act = rec ? ember_temp(&T, ember_empty_on(dev, 2, gx->shape, h->dtype))
                          : NULL;
  ember_tensor *out = ember_empty_on(dev, 2, h->shape, h->dtype);
  int ok = xc && hc && h0 && out && (!rec || act) &&
           ember_backend_of(h)->gru_cell(out, act, xc, hc, h0) == 0;
  ember_ag_resume(prev);
  if (!ok) {
    ember_tensor_release(out);
    ember_temps_release(&T);
    return NULL;
  }
  ember_node *n = NULL;
  if (rec) {
    const ember_tensor *in[3] = {gx, gh, h};
    n = ember_ag_node("GruCellBackward", gru_backward, 3, in);
    if (n && (ember_ag_save(n, act) < 0 || ember_ag_save(n, hc) < 0 ||
              ember_ag_save(n, h0) < 0)) {
      ember_ag_node_release(n);
      n = NULL;
    }
  }
  ember_temps_release(&T);
  return rec ? ember_ag_finish(n, out, 0) : out;
}

/* }====================================================================== */
