/*
** ops_nn.c -- convolution and pooling: argument checks, output shapes,
** dispatch to the backend's conv2d / *_pool2d slots.
**
** Semantics are PyTorch's (torch.nn.functional.conv2d, max_pool2d,
** avg_pool2d), including its output-size formula, the ceil_mode rule and
** the "padding at most half the kernel" rule of pooling.  Inputs are
** [N,C,H,W] or unbatched [C,H,W]; the kernels see N = 1 for the latter and
** contiguous data (a strided input is copied here first), so the results
** are allocated directly with the caller's number of dims.
*/
#include <limits.h>
#include <string.h>

#include "grad_ops.h"

static const int ONES[2] = {1, 1}, ZEROS[2] = {0, 0};

/* {======================================================================
** Checks shared by the ops
** ======================================================================= */

/* A 3-D or 4-D float tensor whose C, H and W are not empty (N may be 0). */
static int check_input(const char *fn, const ember_tensor *x) {
  char b[128];
  if (x->ndim != 3 && x->ndim != 4)
    return ember_set_error("%s: expected a 3-D or 4-D input, got %d-D", fn,
                           x->ndim);
  if (!ember_dtype_is_float(x->dtype))
    return ember_set_error("%s: expected a float32 or float64 input, got %s",
                           fn, ember_dtype_name(x->dtype));
  for (int d = x->ndim - 3; d < x->ndim; d++)
    if (x->shape[d] == 0)
      return ember_set_error("%s: input %s has an empty channel or spatial "
                             "dimension", fn,
                             ember_shape_str(b, sizeof b, x->ndim, x->shape));
  return 0;
}

/* t must share x's dtype and device. */
static int check_like(const char *fn, const char *what, const ember_tensor *t,
                      const ember_tensor *x) {
  if (t->dtype != x->dtype)
    return ember_set_error("%s: %s is %s but input is %s", fn, what,
                           ember_dtype_name(t->dtype), ember_dtype_name(x->dtype));
  if (t->storage->device != x->storage->device)
    return ember_set_error("%s: %s is on %s but input is on %s", fn, what,
                           ember_device_name(t->storage->device),
                           ember_device_name(x->storage->device));
  return 0;
}

static int check_pair(const char *fn, const char *what, const int v[2],
                      int min) {
  if (v[0] < min || v[1] < min)
    return ember_set_error("%s: %s must be %s, got {%d, %d}", fn, what,
                           min > 0 ? "positive" : "non-negative", v[0], v[1]);
  return 0;
}

/* got's shape must be want's (ndim dims); names both on failure */
static int check_shape_is(const char *fn, const char *what,
                          const ember_tensor *got, int ndim,
                          const int64_t *want) {
  char b1[128], b2[128];
  if (got->ndim == ndim &&
      !memcmp(got->shape, want, (size_t)ndim * sizeof *want))
    return 0;
  return ember_set_error("%s: expected %s of shape %s, got %s", fn, what,
                         ember_shape_str(b1, sizeof b1, ndim, want),
                         ember_shape_str(b2, sizeof b2, got->ndim, got->shape));
}

/* PyTorch's pooling_output_shape: floor (or ceil) division, and with
   ceil_mode the last window must start inside the input or left padding.
   0 when even one window does not fit. */
static int64_t out_size(int64_t in, int k, int s, int p, int d, int ceil_mode) {
  int64_t num = in + 2 * (int64_t)p - (int64_t)d * (k - 1) - 1 +
                (ceil_mode ? s - 1 : 0);
  if (num < 0) return 0;
  int64_t o = num / s + 1;
  if (ceil_mode && (o - 1) * s >= in + p) o--;
  return o;
}

/* x's shape with the last two dims (and, if c >= 0, the channel dim)
   replaced. */
static void shape_with(const ember_tensor *x, int64_t c, int64_t h, int64_t w,
                       int64_t *shape) {
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  if (c >= 0) shape[x->ndim - 3] = c;
  shape[x->ndim - 2] = h;
  shape[x->ndim - 1] = w;
}

static const ember_backend_i *backend_with(const char *fn,
                                           const ember_tensor *x, int has) {
  if (has) return ember_backend_of(x);
  ember_set_error("%s: not supported on %s", fn,
                  ember_device_name(x->storage->device));
  return NULL;
}

/* }====================================================================== */

/* {======================================================================
** Convolution
** ======================================================================= */

/* The weight against the input: shape, channels, groups. */
static int check_weight(const char *fn, const ember_tensor *x,
                        const ember_tensor *w, int groups) {
  char b1[128], b2[128];
  if (w->ndim != 4)
    return ember_set_error("%s: expected a 4-D weight [out_channels, "
                           "in_channels/groups, kH, kW], got %d-D", fn, w->ndim);
  if (check_like(fn, "weight", w, x) < 0) return -1;
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
  if (check_input(fn, x) < 0 || check_weight(fn, x, w, groups) < 0 ||
      check_pair(fn, "stride", s, 1) < 0 ||
      check_pair(fn, "padding", p, 0) < 0 ||
      check_pair(fn, "dilation", d, 1) < 0)
    return -1;
  if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
    return ember_set_error("%s: expected a bias of shape [%lld], got %s", fn,
                           (long long)w->shape[0],
                           ember_shape_str(b1, sizeof b1, b->ndim, b->shape));
  if (b && check_like(fn, "bias", b, x) < 0) return -1;
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

/* conv2d, and relu of it fused (relu = 1) */
static ember_tensor *conv_forward(const ember_tensor *x, const ember_tensor *w,
                                  const ember_tensor *b, const int stride[2],
                                  const int padding[2], const int dilation[2],
                                  int groups, int relu) {
  const char *fn = relu ? "conv2d_relu" : "conv2d";
  if (ember_grad_mode_ &&
      (ember_ag_requires(x) || ember_ag_requires(w) || ember_ag_requires(b)))
    return ember_ag_conv2d(x, w, b, stride, padding, dilation, groups, relu);
  ember_conv2d_geom g;
  if (conv_geom(fn, x, w, b, stride ? stride : ONES, padding ? padding : ZEROS,
                dilation ? dilation : ONES, groups, &g) < 0)
    return NULL;
  g.relu = relu;
  const ember_backend_i *be = backend_with(fn, x,
                                           ember_backend_of(x)->conv2d != NULL);
  if (!be) return NULL;
  ember_tensor *xc = ember_contiguous(x), *wc = ember_contiguous(w);
  ember_tensor *bc = b ? ember_contiguous(b) : NULL, *y = NULL;
  if (xc && wc && (!b || bc)) {
    int64_t shape[4];
    shape_with(x, g.O, g.OH, g.OW, shape);
    y = ember_empty_on(x->storage->device, x->ndim, shape, x->dtype);
    if (y && be->conv2d(y, xc, wc, bc, &g) < 0) {
      ember_tensor_release(y);
      y = NULL;
    }
  }
  ember_tensor_release(bc);
  ember_tensor_release(wc);
  ember_tensor_release(xc);
  return y;
}

ember_tensor *ember_conv2d(const ember_tensor *x, const ember_tensor *w,
                           const ember_tensor *b, const int stride[2],
                           const int padding[2], const int dilation[2],
                           int groups) {
  return conv_forward(x, w, b, stride, padding, dilation, groups, 0);
}

ember_tensor *ember_conv2d_relu(const ember_tensor *x, const ember_tensor *w,
                                const ember_tensor *b, const int stride[2],
                                const int padding[2], const int dilation[2],
                                int groups) {
  return conv_forward(x, w, b, stride, padding, dilation, groups, 1);
}

/* Allocate what the caller asked for, run the kernel; 0 or -1. */
static int conv_backward_run(const ember_backend_i *be, const ember_tensor *gy,
                             const ember_tensor *mask, const ember_tensor *x,
                             const ember_tensor *w, const ember_conv2d_geom *g,
                             ember_tensor **gx, ember_tensor **gw,
                             ember_tensor **gb) {
  ember_device dev = x->storage->device;
  ember_tensor *ox = NULL, *ow = NULL, *ob = NULL;
  ember_tensor *gyc = ember_contiguous(gy), *xc = ember_contiguous(x),
               *wc = ember_contiguous(w);
  ember_tensor *mc = mask ? ember_contiguous(mask) : NULL;
  int rc = -1;
  if (!gyc || !xc || !wc || (mask && !mc)) goto done;
  if (gx && !(ox = ember_empty_on(dev, x->ndim, x->shape, x->dtype))) goto done;
  if (gw && !(ow = ember_empty_on(dev, 4, w->shape, x->dtype))) goto done;
  if (gb && !(ob = ember_empty_on(dev, 1, w->shape, x->dtype))) goto done;
  rc = be->conv2d_backward(ox, ow, ob, gyc, mc, xc, wc, g);
done:
  ember_tensor_release(mc);
  ember_tensor_release(wc);
  ember_tensor_release(xc);
  ember_tensor_release(gyc);
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
      check_like(fn, "grad_output", gy, x) < 0 ||
      (y && check_like(fn, "output", y, x) < 0))
    return -1;
  shape_with(x, g.O, g.OH, g.OW, shape);
  if (check_shape_is(fn, "grad_output", gy, x->ndim, shape) < 0 ||
      (y && check_shape_is(fn, "output", y, x->ndim, shape) < 0))
    return -1;
  g.relu = y != NULL;
  const ember_backend_i *be =
      backend_with(fn, x, ember_backend_of(x)->conv2d_backward != NULL);
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
** Pooling
** ======================================================================= */

/* Checks the arguments of a pooling op and fills g. */
static int pool_geom(const char *fn, const ember_tensor *x, const int k[2],
                     const int s[2], const int p[2], const int d[2],
                     int ceil_mode, ember_pool2d_geom *g) {
  char b[128];
  if (check_input(fn, x) < 0 || check_pair(fn, "kernel_size", k, 1) < 0 ||
      check_pair(fn, "stride", s, 1) < 0 ||
      check_pair(fn, "padding", p, 0) < 0 ||
      check_pair(fn, "dilation", d, 1) < 0)
    return -1;
  if (p[0] > k[0] / 2 || p[1] > k[1] / 2)
    return ember_set_error("%s: padding {%d, %d} must be at most half the "
                           "kernel size {%d, %d}", fn, p[0], p[1], k[0], k[1]);
  int nd = x->ndim;
  *g = (ember_pool2d_geom){
    .planes = x->shape[nd - 3] * (nd == 4 ? x->shape[0] : 1),
    .H = x->shape[nd - 2], .W = x->shape[nd - 1], .kh = k[0], .kw = k[1],
    .sh = s[0], .sw = s[1], .ph = p[0], .pw = p[1], .dh = d[0], .dw = d[1]};
  g->OH = out_size(g->H, k[0], s[0], p[0], d[0], ceil_mode);
  g->OW = out_size(g->W, k[1], s[1], p[1], d[1], ceil_mode);
  if (g->OH < 1 || g->OW < 1)
    return ember_set_error("%s: input %s is too small for the window: the "
                           "output would be %lldx%lld", fn,
                           ember_shape_str(b, sizeof b, nd, x->shape),
                           (long long)g->OH, (long long)g->OW);
  return 0;
}

ember_tensor *ember_max_pool2d(const ember_tensor *x, const int kernel[2],
                               const int stride[2], const int padding[2],
                               const int dilation[2], int ceil_mode,
                               ember_tensor **indices) {
  if (ember_ag_active1(x))
    return ember_ag_max_pool2d(x, kernel, stride, padding, dilation, ceil_mode,
                               indices);
  ember_pool2d_geom g;
  if (indices) *indices = NULL;
  if (pool_geom("max_pool2d", x, kernel, stride ? stride : kernel,
                padding ? padding : ZEROS, dilation ? dilation : ONES,
                ceil_mode, &g) < 0)
    return NULL;
  const ember_backend_i *be =
      backend_with("max_pool2d", x, ember_backend_of(x)->max_pool2d != NULL);
  if (!be) return NULL;
  int64_t shape[4];
  shape_with(x, -1, g.OH, g.OW, shape);
  ember_device dev = x->storage->device;
  ember_tensor *xc = ember_contiguous(x), *idx = NULL;
  ember_tensor *y = xc ? ember_empty_on(dev, x->ndim, shape, x->dtype) : NULL;
  if (y && indices && !(idx = ember_empty_on(dev, x->ndim, shape, EMBER_INT64))) {
    ember_tensor_release(y);
    y = NULL;
  }
  if (y && be->max_pool2d(y, idx, xc, &g) < 0) {
    ember_tensor_release(y);
    ember_tensor_release(idx);
    y = idx = NULL;
  }
  ember_tensor_release(xc);
  if (indices) *indices = idx;
  return y;
}

ember_tensor *ember_max_pool2d_backward(const ember_tensor *gy,
                                        const ember_tensor *x,
                                        const ember_tensor *indices) {
  const char *fn = "max_pool2d_backward";
  char b1[128], b2[128];
  if (check_input(fn, x) < 0 || check_like(fn, "grad_output", gy, x) < 0)
    return NULL;
  int nd = x->ndim;
  if (gy->ndim != nd || (nd == 4 && gy->shape[0] != x->shape[0]) ||
      gy->shape[nd - 3] != x->shape[nd - 3]) {
    ember_set_error("%s: grad_output %s does not match input %s in its "
                    "batch and channel dimensions", fn,
                    ember_shape_str(b1, sizeof b1, gy->ndim, gy->shape),
                    ember_shape_str(b2, sizeof b2, nd, x->shape));
    return NULL;
  }
  if (indices->dtype != EMBER_INT64 ||
      indices->storage->device != x->storage->device) {
    ember_set_error("%s: expected int64 indices on %s, got %s on %s", fn,
                    ember_device_name(x->storage->device),
                    ember_dtype_name(indices->dtype),
                    ember_device_name(indices->storage->device));
    return NULL;
  }
  if (check_shape_is(fn, "indices", indices, nd, gy->shape) < 0) return NULL;
  const ember_backend_i *be =
      backend_with(fn, x, ember_backend_of(x)->max_pool2d_backward != NULL);
  if (!be) return NULL;
  ember_pool2d_geom g = {
    .planes = x->shape[nd - 3] * (nd == 4 ? x->shape[0] : 1),
    .H = x->shape[nd - 2], .W = x->shape[nd - 1],
    .OH = gy->shape[nd - 2], .OW = gy->shape[nd - 1]};
  ember_tensor *gyc = ember_contiguous(gy), *ic = ember_contiguous(indices);
  ember_tensor *gx = gyc && ic ? ember_empty_on(x->storage->device, nd,
                                                x->shape, x->dtype) : NULL;
  if (gx && be->max_pool2d_backward(gx, gyc, ic, &g) < 0) {
    ember_tensor_release(gx);
    gx = NULL;
  }
  ember_tensor_release(ic);
  ember_tensor_release(gyc);
  return gx;
}

ember_tensor *ember_avg_pool2d(const ember_tensor *x, const int kernel[2],
                               const int stride[2], const int padding[2],
                               int ceil_mode, int count_include_pad) {
  if (ember_ag_active1(x))
    return ember_ag_avg_pool2d(x, kernel, stride, padding, ceil_mode,
                               count_include_pad);
  ember_pool2d_geom g;
  if (pool_geom("avg_pool2d", x, kernel, stride ? stride : kernel,
                padding ? padding : ZEROS, ONES, ceil_mode, &g) < 0)
    return NULL;
  g.count_include_pad = count_include_pad != 0;
  const ember_backend_i *be =
      backend_with("avg_pool2d", x, ember_backend_of(x)->avg_pool2d != NULL);
  if (!be) return NULL;
  int64_t shape[4];
  shape_with(x, -1, g.OH, g.OW, shape);
  ember_tensor *xc = ember_contiguous(x);
  ember_tensor *y = xc ? ember_empty_on(x->storage->device, x->ndim, shape,
                                        x->dtype) : NULL;
  if (y && be->avg_pool2d(y, xc, &g) < 0) {
    ember_tensor_release(y);
    y = NULL;
  }
  ember_tensor_release(xc);
  return y;
}

ember_tensor *ember_avg_pool2d_backward(const ember_tensor *gy,
                                        const ember_tensor *x,
                                        const int kernel[2],
                                        const int stride[2],
                                        const int padding[2], int ceil_mode,
                                        int count_include_pad) {
  const char *fn = "avg_pool2d_backward";
  ember_pool2d_geom g;
  int64_t shape[4];
  if (pool_geom(fn, x, kernel, stride ? stride : kernel,
                padding ? padding : ZEROS, ONES, ceil_mode, &g) < 0 ||
      check_like(fn, "grad_output", gy, x) < 0)
    return NULL;
  g.count_include_pad = count_include_pad != 0;
  shape_with(x, -1, g.OH, g.OW, shape);
  if (check_shape_is(fn, "grad_output", gy, x->ndim, shape) < 0) return NULL;
  const ember_backend_i *be =
      backend_with(fn, x, ember_backend_of(x)->avg_pool2d_backward != NULL);
  if (!be) return NULL;
  ember_tensor *gyc = ember_contiguous(gy);
  ember_tensor *gx = gyc ? ember_empty_on(x->storage->device, x->ndim,
                                          x->shape, x->dtype) : NULL;
  if (gx && be->avg_pool2d_backward(gx, gyc, &g) < 0) {
    ember_tensor_release(gx);
    gx = NULL;
  }
  ember_tensor_release(gyc);
  return gx;
}

/* }====================================================================== */
