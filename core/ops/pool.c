/*
** pool.c -- 2-D max and average pooling, front door to backward.
**
** Semantics are PyTorch's (torch.nn.functional.max_pool2d, avg_pool2d),
** including its output-size formula, the ceil_mode rule and the "padding
** at most half the kernel" rule.  Inputs are [N,C,H,W] or unbatched
** [C,H,W]; the kernels (backend slots *_pool2d and *_pool2d_backward:
** core/cpu/pool.c, core/cuda/) see contiguous planes.  The gradient entry
** points ember_*_pool2d_backward are public; the autograd nodes call them.
*/
#include "nchw.h"

static const int ONES[2] = {1, 1}, ZEROS[2] = {0, 0};

/* {======================================================================
** Geometry
** ======================================================================= */

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

/* Checks the arguments of a pooling op and fills g. */
static int pool_geom(const char *fn, const ember_tensor *x, const int k[2],
                     const int s[2], const int p[2], const int d[2],
                     int ceil_mode, ember_pool2d_geom *g) {
  char b[128];
  if (ember_nchw_check_input(fn, x) < 0 ||
      ember_nchw_check_pair(fn, "kernel_size", k, 1) < 0 ||
      ember_nchw_check_pair(fn, "stride", s, 1) < 0 ||
      ember_nchw_check_pair(fn, "padding", p, 0) < 0 ||
      ember_nchw_check_pair(fn, "dilation", d, 1) < 0)
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

/* }====================================================================== */

/* {======================================================================
** Max pooling
** ======================================================================= */

/* max_pool2d without recording; idx NULL: the indices are not wanted */
static ember_tensor *max_pool_forward(const ember_tensor *x, const int kernel[2],
                                      const int stride[2], const int padding[2],
                                      const int dilation[2], int ceil_mode,
                                      ember_tensor **indices) {
  ember_pool2d_geom g;
  if (indices) *indices = NULL;
  if (pool_geom("max_pool2d", x, kernel, stride ? stride : kernel,
                padding ? padding : ZEROS, dilation ? dilation : ONES,
                ceil_mode, &g) < 0)
    return NULL;
  const ember_backend_i *be = ember_nchw_backend(
      "max_pool2d", x, ember_backend_of(x)->max_pool2d != NULL);
  if (!be) return NULL;
  int64_t shape[4];
  ember_nchw_shape_with(x, -1, g.OH, g.OW, shape);
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
  if (ember_nchw_check_input(fn, x) < 0 ||
      ember_nchw_check_like(fn, "grad_output", gy, x) < 0)
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
  if (ember_nchw_check_shape_is(fn, "indices", indices, nd, gy->shape) < 0)
    return NULL;
  const ember_backend_i *be = ember_nchw_backend(
      fn, x, ember_backend_of(x)->max_pool2d_backward != NULL);
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

/* saved: [0] x, [1] the indices of the maxima */
static int max_pool2d_backward(ember_node *n, ember_tensor *g,
                               ember_tensor **gin) {
  return (gin[0] = ember_max_pool2d_backward(g, n->saved[0], n->saved[1]))
             ? 0 : -1;
}

ember_tensor *ember_max_pool2d(const ember_tensor *x, const int kernel[2],
                               const int stride[2], const int padding[2],
                               const int dilation[2], int ceil_mode,
                               ember_tensor **indices) {
  if (!ember_ag_active1(x))
    return max_pool_forward(x, kernel, stride, padding, dilation, ceil_mode,
                            indices);
  /* recording: the backward needs the indices whether or not the caller
     asked for them; a strided input's copy is a step, not a node */
  ember_tensor *idx = NULL;
  if (indices) *indices = NULL;
  int prev = ember_ag_pause();
  ember_tensor *out = max_pool_forward(x, kernel, stride, padding, dilation,
                                       ceil_mode, &idx);
  ember_ag_resume(prev);
  if (!out) return NULL;
  ember_node *n = ember_ag_node2("MaxPool2DBackward", max_pool2d_backward, x, NULL);
  if (n && (ember_ag_save(n, x) < 0 || ember_ag_save(n, idx) < 0)) {
    ember_ag_node_release(n);
    n = NULL;
  }
  if (!(out = ember_ag_finish(n, out, 0))) {
    ember_tensor_release(idx);
    return NULL;
  }
  if (indices) *indices = idx;
  else ember_tensor_release(idx);
  return out;
}

/* }====================================================================== */

/* {======================================================================
** Average pooling
** ======================================================================= */

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
      ember_nchw_check_like(fn, "grad_output", gy, x) < 0)
    return NULL;
  g.count_include_pad = count_include_pad != 0;
  ember_nchw_shape_with(x, -1, g.OH, g.OW, shape);
  if (ember_nchw_check_shape_is(fn, "grad_output", gy, x->ndim, shape) < 0)
    return NULL;
  const ember_backend_i *be = ember_nchw_backend(
      fn, x, ember_backend_of(x)->avg_pool2d_backward != NULL);
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

/* What avg_pool2d_backward needs besides saved[0] x (stride resolved:
   the kernel when the caller gave none). */
struct avg_pool_saved {
  int kernel[2], stride[2], padding[2], ceil_mode, count_include_pad;
};

static int avg_pool2d_backward(ember_node *n, ember_tensor *g,
                               ember_tensor **gin) {
  const struct avg_pool_saved *s = EMBER_NODE_STATE(n, struct avg_pool_saved);
  gin[0] = ember_avg_pool2d_backward(g, n->saved[0], s->kernel, s->stride,
                                     s->padding, s->ceil_mode,
                                     s->count_include_pad);
  return gin[0] ? 0 : -1;
}

/* avg_pool2d without recording */
static ember_tensor *avg_pool_forward(const ember_tensor *x, const int kernel[2],
                                      const int stride[2], const int padding[2],
                                      int ceil_mode, int count_include_pad) {
  ember_pool2d_geom g;
  if (pool_geom("avg_pool2d", x, kernel, stride ? stride : kernel,
                padding ? padding : ZEROS, ONES, ceil_mode, &g) < 0)
    return NULL;
  g.count_include_pad = count_include_pad != 0;
  const ember_backend_i *be = ember_nchw_backend(
      "avg_pool2d", x, ember_backend_of(x)->avg_pool2d != NULL);
  if (!be) return NULL;
  int64_t shape[4];
  ember_nchw_shape_with(x, -1, g.OH, g.OW, shape);
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

ember_tensor *ember_avg_pool2d(const ember_tensor *x, const int kernel[2],
                               const int stride[2], const int padding[2],
                               int ceil_mode, int count_include_pad) {
  if (!ember_ag_active1(x))
    return avg_pool_forward(x, kernel, stride, padding, ceil_mode,
                            count_include_pad);
  int prev = ember_ag_pause();
  ember_tensor *out = avg_pool_forward(x, kernel, stride, padding, ceil_mode,
                                       count_include_pad);
  ember_ag_resume(prev);
  if (!out) return NULL;
  ember_node *n = ember_ag_node2("AvgPool2DBackward", avg_pool2d_backward, x, NULL);
  if (n) {
    struct avg_pool_saved *s = EMBER_NODE_STATE(n, struct avg_pool_saved);
    const int *st = stride ? stride : kernel, *pd = padding ? padding : ZEROS;
    for (int i = 0; i < 2; i++) {
      s->kernel[i] = kernel[i];
      s->stride[i] = st[i];
      s->padding[i] = pd[i];
    }
    s->ceil_mode = ceil_mode;
    s->count_include_pad = count_include_pad;
    if (ember_ag_save(n, x) < 0) { ember_ag_node_release(n); n = NULL; }
  }
  return ember_ag_finish(n, out, 0);
}

/* }====================================================================== */
