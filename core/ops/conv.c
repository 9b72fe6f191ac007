/*
** conv.c -- 2-D convolution, front door to backward: ember_conv2d, its
** fused form ember_conv2d_relu, padding = "same" (ember_conv2d_ex), the
** gradient entry points ember_conv2d_backward / _relu_backward, and the
** autograd node's backward that calls them.
**
** Semantics are PyTorch's (torch.nn.functional.conv2d), its output-size
** formula included.  Inputs are [N,C,H,W] or unbatched [C,H,W]; the
** kernels (backend slots conv2d and conv2d_backward: core/cpu/ and
** core/cuda/conv.cu) see N = 1 for the latter and contiguous data (a
** strided input is copied here first), so the results are allocated
** directly with the caller's number of dims.  docs/internals.md walks
** this file from the Lua call down to the kernels and back.
*/
#include <limits.h>

#include "nchw.h"

static const int ONES[2] = {1, 1}, ZEROS[2] = {0, 0};

/* {======================================================================
** Checks
** ======================================================================= */

/* The weight against the input: shape, channels, groups. */
static int check_weight(const char *fn, const ember_tensor *x,
                        const ember_tensor *w, int groups) {
  char b1[128], b2[128];
  if (w->ndim != 4)
    return ember_set_error("%s: expected a 4-D weight [out_channels, "
                           "in_channels/groups, kH, kW], got %d-D", fn, w->ndim);
  if (ember_nchw_check_like(fn, "weight", w, x) < 0) return -1;
  ember_shape_str(b1, sizeof b1, 4, w->shape);
  ember_shape_str(b2, sizeof b2, x->ndim, x->shape);
  for (int d = 0; d < 4; d++)
    if (w->shape[d] == 0)
      return ember_set_error("%s: weight %s has an empty dimension", fn, b1);
  /* keeps dilation * (kernel - 1) far from int64 overflow */
  if (w->shape[2] > INT_MAX || w->shape[3] > INT_MAX)
    return ember_set_error("%s: weight %s: kernel too large", fn, b1);
  if (groups < 1)
    return ember_set_error("%s: groups must be positive, got %d", fn, groups);
  int64_t C = x->shape[x->ndim - 3], O = w->shape[0];
  if (C % groups)
    return ember_set_error("%s: input channels (%lld) are not divisible by "
                           "groups (%d)", fn, (long long)C, groups);
  if (O % groups)
    return ember_set_error("%s: output channels (%lld) are not divisible by "
                           "groups (%d)", fn, (long long)O, groups);
  if (w->shape[1] * groups != C)
    return ember_set_error("%s: weight %s with groups=%d expects %lld input "
                           "channels, but input %s has %lld", fn, b1, groups,
                           (long long)(w->shape[1] * groups), b2, (long long)C);
  return 0;
}

/* Checks every argument of conv2d and its backward and fills g. */
static int conv_geom(const char *fn, const ember_tensor *x,
                     const ember_tensor *w, const ember_tensor *b,
                     const int s[2], const int p[2], const int d[2],
                     int groups, ember_conv2d_geom *g) {
  char b1[128];
  if (ember_nchw_check_input(fn, x) < 0 || check_weight(fn, x, w, groups) < 0 ||
      ember_nchw_check_pair(fn, "stride", s, 1) < 0 ||
      ember_nchw_check_pair(fn, "padding", p, 0) < 0 ||
      ember_nchw_check_pair(fn, "dilation", d, 1) < 0)
    return -1;
  if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
    return ember_set_error("%s: expected a bias of shape [%lld], got %s", fn,
                           (long long)w->shape[0],
                           ember_shape_str(b1, sizeof b1, b->ndim, b->shape));
  if (b && ember_nchw_check_like(fn, "bias", b, x) < 0) return -1;
  int nd = x->ndim;
  *g = (ember_conv2d_geom){
    .N = nd == 4 ? x->shape[0] : 1, .C = x->shape[nd - 3],
    .H = x->shape[nd - 2], .W = x->shape[nd - 1], .O = w->shape[0],
    .KH = w->shape[2], .KW = w->shape[3], .sh = s[0], .sw = s[1],
    .ph = p[0], .pw = p[1], .dh = d[0], .dw = d[1], .groups = groups};
  int64_t eh = g->dh * (g->KH - 1) + 1, ew = g->dw * (g->KW - 1) + 1;
  int64_t ih = g->H + 2 * g->ph, iw = g->W + 2 * g->pw;
  if (ih < eh || iw < ew)
    return ember_set_error("%s: kernel %lldx%lld (%lldx%lld with dilation) "
                           "is larger than the padded input %lldx%lld", fn,
                           (long long)g->KH, (long long)g->KW, (long long)eh,
                           (long long)ew, (long long)ih, (long long)iw);
  g->OH = (ih - eh) / g->sh + 1;
  g->OW = (iw - ew) / g->sw + 1;
  /* the GEMMs take int sizes */
  int64_t K = g->C / groups * g->KH * g->KW;
  if (g->OH > INT_MAX || g->OW > INT_MAX || g->OH * g->OW > INT_MAX ||
      K > INT_MAX || g->O > INT_MAX)
    return ember_set_error("%s: sizes too large for one matrix product", fn);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Gradients: the public entry points
** ======================================================================= */

/* Allocate what the caller asked for, run the kernel; 0 or -1. */
static int conv_backward_run(const ember_backend_i *be, const ember_tensor *gy,
                             const ember_tensor *mask, const ember_tensor *x,
                             const ember_tensor *w, const ember_conv2d_geom *g,
                             ember_tensor **gx, ember_tensor **gw,
                             ember_tensor **gb) {
  ember_device dev = x->storage->device;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *ox = NULL, *ow = NULL, *ob = NULL;
  /* bfloat16/float16: the kernel runs on float32 copies, and each
     gradient is rounded once to x's dtype (ops.h) */
  ember_dtype cdt = ember_dtype_is_half(x->dtype) ? EMBER_FLOAT32 : x->dtype;
  ember_tensor *gyc = ember_temp(&T, ember_contiguous(gy));
  ember_tensor *xc = ember_temp(&T, ember_contiguous(x));
  ember_tensor *wc = ember_temp(&T, ember_contiguous(w));
  ember_tensor *mc = mask ? ember_temp(&T, ember_contiguous(mask)) : NULL;
  int rc = -1;
  if (!gyc || !xc || !wc || (mask && !mc)) goto done;
  if (cdt != x->dtype &&
      (!(gyc = ember_temp(&T, ember_cast(gyc, cdt))) ||
       !(xc = ember_temp(&T, ember_cast(xc, cdt))) ||
       !(wc = ember_temp(&T, ember_cast(wc, cdt))) ||
       (mask && !(mc = ember_temp(&T, ember_cast(mc, cdt))))))
    goto done;
  if (gx && !(ox = ember_empty_on(dev, x->ndim, x->shape, cdt))) goto done;
  if (gw && !(ow = ember_empty_on(dev, 4, w->shape, cdt))) goto done;
  if (gb && !(ob = ember_empty_on(dev, 1, w->shape, cdt))) goto done;
  rc = be->conv2d_backward(ox, ow, ob, gyc, mc, xc, wc, g);
  if (rc == 0 && cdt != x->dtype) {
    ox = ember_narrow_to(ox, x->dtype);
    ow = ember_narrow_to(ow, x->dtype);
    ob = ember_narrow_to(ob, x->dtype);
    if ((gx && !ox) || (gw && !ow) || (gb && !ob)) rc = -1;
  }
done:
  ember_temps_release(&T);
  if (rc < 0) {
    ember_tensor_release(ox);
    ember_tensor_release(ow);
    ember_tensor_release(ob);
    return -1;
  }
  if (gx) *gx = ox;
  if (gw) *gw = ow;
  if (gb) *gb = ob;
  return 0;
}

/* The gradients of conv2d (y NULL) or of conv2d_relu (y its output). */
static int conv_backward(const char *fn, const ember_tensor *gy,
                         const ember_tensor *y, const ember_tensor *x,
                         const ember_tensor *w, const int stride[2],
                         const int padding[2], const int dilation[2],
                         int groups, ember_tensor **gx, ember_tensor **gw,
                         ember_tensor **gb) {
  ember_conv2d_geom g;
  int64_t shape[4];
  if (gx) *gx = NULL;
  if (gw) *gw = NULL;
  if (gb) *gb = NULL;
  if (conv_geom(fn, x, w, NULL, stride ? stride : ONES,
                padding ? padding : ZEROS, dilation ? dilation : ONES, groups,
                &g) < 0 ||
      ember_nchw_check_like(fn, "grad_output", gy, x) < 0 ||
      (y && ember_nchw_check_like(fn, "output", y, x) < 0))
    return -1;
  ember_nchw_shape_with(x, g.O, g.OH, g.OW, shape);
  if (ember_nchw_check_shape_is(fn, "grad_output", gy, x->ndim, shape) < 0 ||
      (y && ember_nchw_check_shape_is(fn, "output", y, x->ndim, shape) < 0))
    return -1;
  g.relu = y != NULL;
  const ember_backend_i *be =
      ember_nchw_backend(fn, x, ember_backend_of(x)->conv2d_backward != NULL);
  if (!be) return -1;
  return conv_backward_run(be, gy, y, x, w, &g, gx, gw, gb);
}

int ember_conv2d_backward(const ember_tensor *gy, const ember_tensor *x,
                          const ember_tensor *w, const int stride[2],
                          const int padding[2], const int dilation[2],
                          int groups, ember_tensor **gx, ember_tensor **gw,
                          ember_tensor **gb) {
  return conv_backward("conv2d_backward", gy, NULL, x, w, stride, padding,
                       dilation, groups, gx, gw, gb);
}

int ember_conv2d_relu_backward(const ember_tensor *gy, const ember_tensor *y,
                               const ember_tensor *x, const ember_tensor *w,
                               const int stride[2], const int padding[2],
                               const int dilation[2], int groups,
                               ember_tensor **gx, ember_tensor **gw,
                               ember_tensor **gb) {
  if (!y) {
    if (gx) *gx = NULL;
    if (gw) *gw = NULL;
    if (gb) *gb = NULL;
    return ember_set_error("conv2d_relu_backward: expected the forward's "
                           "output, got NULL");
  }
  return conv_backward("conv2d_relu_backward", gy, y, x, w, stride, padding,
                       dilation, groups, gx, gw, gb);
}

/* }====================================================================== */

/* {======================================================================
** The autograd node
** ======================================================================= */

/* What conv2d_backward needs besides saved[0] x, saved[1] w and, for the
   fused relu, saved[2] the output (its mask). */
struct conv_saved { int stride[2], padding[2], dilation[2], groups, relu; };

static int conv2d_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct conv_saved *s = EMBER_NODE_STATE(n, struct conv_saved);
  ember_tensor **gx = n->needs[0] ? &gin[0] : NULL;
  ember_tensor **gw = n->needs[1] ? &gin[1] : NULL;
  ember_tensor **gb = n->ninputs > 2 && n->needs[2] ? &gin[2] : NULL;
  if (s->relu)
    return ember_conv2d_relu_backward(g, n->saved[2], n->saved[0],
                                      n->saved[1], s->stride, s->padding,
                                      s->dilation, s->groups, gx, gw, gb);
  return ember_conv2d_backward(g, n->saved[0], n->saved[1], s->stride,
                               s->padding, s->dilation, s->groups, gx, gw, gb);
}

static void put2(int dst[2], const int *v, int def) {
  dst[0] = v ? v[0] : def;
  dst[1] = v ? v[1] : def;
}

/* Record y = conv2d(x, w, b, ...) (relu: the fused form); consumes y. */
static ember_tensor *record_conv(const ember_tensor *x, const ember_tensor *w,
                                 const ember_tensor *b, const int stride[2],
                                 const int padding[2], const int dilation[2],
                                 int groups, int relu, ember_tensor *y) {
  const ember_tensor *in[3] = {x, w, b};
  ember_node *n = ember_ag_node(relu ? "ConvolutionReluBackward"
                                     : "ConvolutionBackward",
                                conv2d_backward, b ? 3 : 2, in);
  if (n) {
    struct conv_saved *s = EMBER_NODE_STATE(n, struct conv_saved);
    put2(s->stride, stride, 1);
    put2(s->padding, padding, 0);
    put2(s->dilation, dilation, 1);
    s->groups = groups;
    s->relu = relu;
    if (ember_ag_save(n, x) < 0 || ember_ag_save(n, w) < 0 ||
        (relu && ember_ag_save(n, y) < 0)) {
      ember_ag_node_release(n);
      n = NULL;
    }
  }
  return ember_ag_finish(n, y, 0);
}

/* }====================================================================== */

/* {======================================================================
** Forward: check, compute, then record
** ======================================================================= */

/* conv2d, and relu of it fused (relu = 1), without recording */
static ember_tensor *conv_forward(const ember_tensor *x, const ember_tensor *w,
                                  const ember_tensor *b, const int stride[2],
                                  const int padding[2], const int dilation[2],
                                  int groups, int relu) {
  const char *fn = relu ? "conv2d_relu" : "conv2d";
  ember_conv2d_geom g;
  if (conv_geom(fn, x, w, b, stride ? stride : ONES, padding ? padding : ZEROS,
                dilation ? dilation : ONES, groups, &g) < 0)
    return NULL;
  g.relu = relu;
  const ember_backend_i *be =
      ember_nchw_backend(fn, x, ember_backend_of(x)->conv2d != NULL);
  if (!be) return NULL;
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *xc = ember_temp(&T, ember_contiguous(x));
  ember_tensor *wc = ember_temp(&T, ember_contiguous(w));
  ember_tensor *bc = b ? ember_temp(&T, ember_contiguous(b)) : NULL, *y = NULL;
  if (xc && wc && (!b || bc)) {
    int64_t shape[4];
    ember_nchw_shape_with(x, g.O, g.OH, g.OW, shape);
    y = ember_empty_on(x->storage->device, x->ndim, shape, x->dtype);
    if (y && be->conv2d(y, xc, wc, bc, &g) < 0) {
      ember_tensor_release(y);
      y = NULL;
    }
  }
  ember_temps_release(&T);
  return y;
}

static ember_tensor *conv_op(const ember_tensor *x, const ember_tensor *w,
                             const ember_tensor *b, const int stride[2],
                             const int padding[2], const int dilation[2],
                             int groups, int relu) {
  const ember_tensor *in[3] = {x, w, b};
  if (ember_autocast_wants(3, in)) {
    /* autocast: the operands rounded to its dtype, summed in float32 */
    int dt = ember_get_autocast();
    ember_tensor *f[3];
    if (ember_autocast_round(3, in, f) < 0) return NULL;
    ember_tensor *y = conv_op(f[0], f[1], f[2], stride, padding, dilation,
                              groups, relu);
    ember_autocast_resume(dt);
    for (int i = 0; i < 3; i++) ember_tensor_release(f[i]);
    return y;
  }
  if (ember_dtype_is_half(x->dtype)) {
    /* bfloat16/float16: checked as given (the messages name their
       dtypes), then computed in float32 and rounded once (ops.h) */
    ember_conv2d_geom g;
    if (conv_geom(relu ? "conv2d_relu" : "conv2d", x, w, b,
                  stride ? stride : ONES, padding ? padding : ZEROS,
                  dilation ? dilation : ONES, groups, &g) < 0)
      return NULL;
    ember_tensor *f[3];
    if (ember_widen_half(3, in, f) < 0) return NULL;
    ember_tensor *y = conv_op(f[0], f[1], f[2], stride, padding, dilation,
                              groups, relu);
    for (int i = 0; i < 3; i++) ember_tensor_release(f[i]);
    return ember_narrow_to(y, x->dtype);
  }
  if (!(ember_grad_mode_ && (ember_ag_requires(x) || ember_ag_requires(w) ||
                             ember_ag_requires(b))))
    return conv_forward(x, w, b, stride, padding, dilation, groups, relu);
  /* a strided input's contiguous copy is a step of this op, not a node */
  int prev = ember_ag_pause();
  ember_tensor *y = conv_forward(x, w, b, stride, padding, dilation, groups,
                                 relu);
  ember_ag_resume(prev);
  if (!y) return NULL;
  return record_conv(x, w, b, stride, padding, dilation, groups, relu, y);
}

ember_tensor *ember_conv2d(const ember_tensor *x, const ember_tensor *w,
                           const ember_tensor *b, const int stride[2],
                           const int padding[2], const int dilation[2],
                           int groups) {
  return conv_op(x, w, b, stride, padding, dilation, groups, 0);
}

ember_tensor *ember_conv2d_relu(const ember_tensor *x, const ember_tensor *w,
                                const ember_tensor *b, const int stride[2],
                                const int padding[2], const int dilation[2],
                                int groups) {
  return conv_op(x, w, b, stride, padding, dilation, groups, 1);
}

/* }====================================================================== */

/* {======================================================================
** padding = "same"
** ======================================================================= */

int ember_conv2d_same_padding(const ember_tensor *w, const int stride[2],
                              const int dilation[2], int before[2],
                              int after[2]) {
  if (!stride) stride = ONES;
  if (!dilation) dilation = ONES;
  if (stride[0] != 1 || stride[1] != 1)
    return ember_set_error("conv2d: padding='same' is not supported for "
                           "strided convolutions");
  for (int i = 0; i < 2; i++) {
    /* a bad weight or dilation pads nothing here: conv2d's own checks
       then name the real problem */
    int64_t k = w->ndim == 4 ? w->shape[2 + i] : 1;
    int64_t total = dilation[i] >= 1 && k >= 1 ? (int64_t)dilation[i] * (k - 1) : 0;
    if (total / 2 + 1 > INT_MAX)
      return ember_set_error("conv2d: kernel too large");
    before[i] = (int)(total / 2);
    after[i] = (int)(total - total / 2);
  }
  return 0;
}

/*
** PyTorch pads an odd total with the extra element on the right/bottom.
** The kernels pad symmetrically, so pad both sides by the larger half:
** the output is then one longer in that dim and shifted by one, and its
** first element goes (a narrow: the same numbers, and a view autograd
** follows).
*/
ember_tensor *ember_conv2d_ex(const ember_tensor *x, const ember_tensor *w,
                              const ember_tensor *b, const int stride[2],
                              const int padding[2], const int dilation[2],
                              int groups, ember_pad_mode mode, int relu) {
  int pad[2], after[2];
  switch (mode) {
    case EMBER_PAD_EXPLICIT:
      return conv_op(x, w, b, stride, padding, dilation, groups, relu != 0);
    case EMBER_PAD_VALID:
      return conv_op(x, w, b, stride, ZEROS, dilation, groups, relu != 0);
    case EMBER_PAD_SAME:
      break;
    default:
      ember_set_error("conv2d: bad padding mode %d", (int)mode);
      return NULL;
  }
  if (ember_conv2d_same_padding(w, stride, dilation, pad, after) < 0)
    return NULL;
  ember_tensor *y = conv_op(x, w, b, stride, after, dilation, groups,
                            relu != 0);
  for (int i = 0; i < 2 && y; i++) {
    if (after[i] == pad[i]) continue;
    int d = y->ndim - 2 + i;
    ember_tensor *v = ember_narrow(y, d, 1, y->shape[d] - 1);
    ember_tensor_release(y);
    y = v;
  }
  return y;
}

/* }====================================================================== */
