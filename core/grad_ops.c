/*
** grad_ops.c -- recording the differentiable ops, and their backward
** functions.
**
** Pattern of a recording form: pause recording, run the public op (which
** then takes its plain path), build a node whose edges lead to the inputs,
** save what the backward function needs, attach the node to the result.
** Backward functions run with recording off and use the public ops; a
** gradient may keep the broadcast shape or another float dtype, the engine
** sums and casts it to the input (autograd.c: fit_grad).
**
** Formulas follow PyTorch's tools/autograd/derivatives.yaml.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad_ops.h"
#include "ops/ops.h"

/* {======================================================================
** Helpers
** ======================================================================= */

int ember_ag_active_n(int n, ember_tensor *const *ts) {
  if (!ember_grad_mode_) return 0;
  for (int i = 0; i < n; i++)
    if (ember_ag_requires(ts[i])) return 1;
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** matmul, cat, stack, index_select, gather
** ======================================================================= */

/* a as a matrix stack: 1-D a is [1, K], 1-D b is [K, 1] */
static ember_tensor *as_2d(const ember_tensor *t, int is_b) {
  if (t->ndim != 1) { ember_tensor_retain((ember_tensor *)t); return (ember_tensor *)t; }
  return ember_unsqueeze(t, is_b ? 1 : 0);
}

static ember_tensor *mT(const ember_tensor *t) {
  return ember_transpose(t, t->ndim - 2, t->ndim - 1);
}

/* ga = g b^T, gb = a^T g, over the 2-D forms; the engine sums batch
   broadcasting away and the reshape restores 1-D operands */
static int matmul_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_tensor *a = n->saved[0], *b = n->saved[1];
  ember_tensor *A = as_2d(a, 0), *B = A ? as_2d(b, 1) : NULL;
  ember_tensor *G = NULL;
  int rc = -1;
  if (B) {
    /* g reshaped to the 2-D forms' result: batch, M (or 1), N (or 1) */
    int64_t full[EMBER_MAX_DIMS];
    int nb = 0, batch = g->ndim - (a->ndim > 1) - (b->ndim > 1);
    for (int i = 0; i < batch; i++) full[nb++] = g->shape[i];
    full[nb++] = a->ndim > 1 ? a->shape[a->ndim - 2] : 1;
    full[nb++] = b->ndim > 1 ? b->shape[b->ndim - 1] : 1;
    G = ember_reshape(g, nb, full);
    rc = G ? 0 : -1;
  }
  for (int side = 0; side < 2 && rc == 0; side++) {
    if (!n->needs[side]) continue;
    const ember_tensor *op = side == 0 ? A : B;
    ember_tensor *r;
    if (op->ndim == 2 && G->ndim == 2 && op->strides[0] == 1 &&
        op->shape[0] > 1 && op->shape[1] > 1) {
      /* a transposed view (a Linear's w:t()): its gradient in the same
         layout, so that the transpose's backward hands the leaf a
         contiguous tensor (no strided copy into .grad) */
      ember_tensor *GT = mT(G);
      ember_tensor *rT = GT ? (side == 0 ? ember_matmul(B, GT) : ember_matmul(GT, A)) : NULL;
      ember_tensor_release(GT);
      r = rT ? mT(rT) : NULL;
      ember_tensor_release(rT);
    } else {
      ember_tensor *oT = side == 0 ? mT(B) : mT(A);
      r = oT ? (side == 0 ? ember_matmul(G, oT) : ember_matmul(oT, G)) : NULL;
      ember_tensor_release(oT);
    }
    const ember_tensor *orig = side == 0 ? a : b;
    const ember_tensor *two = side == 0 ? A : B;
    ember_tensor *s = r ? ember_ag_sum_to(r, two->ndim, two->shape) : NULL;
    ember_tensor_release(r);
    gin[side] = s ? ember_reshape(s, orig->ndim, orig->shape) : NULL;
    ember_tensor_release(s);
    if (!gin[side]) rc = -1;
  }
  ember_tensor_release(G);
  ember_tensor_release(B);
  ember_tensor_release(A);
  return rc;
}

ember_tensor *ember_ag_matmul(const ember_tensor *a, const ember_tensor *b) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_matmul(a, b);
  ember_ag_resume(prev);
  if (!out || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *n = ember_ag_node2("MmBackward", matmul_backward, a, b);
  if (n && (ember_ag_save(n, a) < 0 || ember_ag_save(n, b) < 0)) {
    ember_ag_node_release(n);
    n = NULL;
  }
  return ember_ag_finish(n, out, 0);
}

/* cat: input i gets its slice of g; stack: its select */
static int cat_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  int dim = (int)n->ip[0], stack = (int)n->ip[1];
  int64_t at = 0;
  for (int i = 0; i < n->ninputs; i++) {
    int64_t len = stack ? 1 : n->in[i].shape[dim];
    if (n->needs[i]) {
      gin[i] = stack ? ember_select(g, dim, i) : ember_narrow(g, dim, at, len);
      if (!gin[i]) return -1;
    }
    at += len;
  }
  return 0;
}

static ember_tensor *record_cat(int n, ember_tensor *const *ts, int dim,
                                int stack, ember_tensor *out) {
  if (!out || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *node = ember_ag_node(stack ? "StackBackward" : "CatBackward",
                                   cat_backward, n,
                                   (const ember_tensor *const *)ts);
  if (node) {
    int nd = stack ? out->ndim : ts[0]->ndim;
    node->ip[0] = dim < 0 ? dim + nd : dim;
    node->ip[1] = stack;
  }
  return ember_ag_finish(node, out, 0);
}

ember_tensor *ember_ag_cat(int n, ember_tensor *const *ts, int dim) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_cat(n, ts, dim);
  ember_ag_resume(prev);
  return record_cat(n, ts, dim, 0, out);
}

ember_tensor *ember_ag_stack(int n, ember_tensor *const *ts, int dim) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_stack(n, ts, dim);
  ember_ag_resume(prev);
  return record_cat(n, ts, dim, 1, out);
}

/* index_select: index_add of g; gather: scatter_add of g */
static int index_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  int dim = (int)n->ip[0];
  ember_tensor *z = ember_zeros_meta(g, &n->in[0]);
  if (!z) return -1;
  int rc = n->ip[1] ? ember_scatter_add_(z, dim, n->saved[0], g)
                    : ember_index_add_(z, dim, n->saved[0], g);
  if (rc < 0) { ember_tensor_release(z); return -1; }
  gin[0] = z;
  return 0;
}

static ember_tensor *record_index(const ember_tensor *t, int dim,
                                  const ember_tensor *index, int gather,
                                  ember_tensor *out) {
  if (!out || !ember_dtype_is_float(out->dtype)) return out;
  ember_node *n = ember_ag_node2(gather ? "GatherBackward" : "IndexSelectBackward",
                        index_backward, t, NULL);
  if (n) {
    n->ip[0] = dim < 0 ? dim + t->ndim : dim;
    n->ip[1] = gather;
    if (ember_ag_save(n, index) < 0) { ember_ag_node_release(n); n = NULL; }
  }
  return ember_ag_finish(n, out, 0);
}

ember_tensor *ember_ag_index_select(const ember_tensor *t, int dim,
                                    const ember_tensor *index) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_index_select(t, dim, index);
  ember_ag_resume(prev);
  return record_index(t, dim, index, 0, out);
}

ember_tensor *ember_ag_gather(const ember_tensor *t, int dim,
                              const ember_tensor *index) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_gather(t, dim, index);
  ember_ag_resume(prev);
  return record_index(t, dim, index, 1, out);
}

/* }====================================================================== */

/* {======================================================================
** Views and copies
** ======================================================================= */

/* ip: [0] kind, [1] a0, [2] a1; extra: the permutation */
static int view_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const ember_in_meta *m = &n->in[0];
  int a0 = (int)n->ip[1];
  ember_tensor *r = NULL;
  switch ((ember_ag_view_kind)n->ip[0]) {
    case EMBER_AG_RESHAPE:
      r = ember_reshape(g, m->ndim, m->shape);
      break;
    case EMBER_AG_EXPAND:        /* the engine sums broadcast dims away */
    case EMBER_AG_CLONE:
    case EMBER_AG_CONVERT:
      ember_tensor_retain(g);
      r = g;
      break;
    case EMBER_AG_TO_DEVICE:
      r = ember_to_device(g, (ember_device)a0);
      break;
    case EMBER_AG_TRANSPOSE:
      r = ember_transpose(g, a0, (int)n->ip[2]);
      break;
    case EMBER_AG_PERMUTE: {
      const int *perm = n->extra;
      int inv[EMBER_MAX_DIMS];
      for (int i = 0; i < m->ndim; i++) inv[perm[i]] = i;
      r = ember_permute(g, m->ndim, inv);
      break;
    }
    case EMBER_AG_NARROW:
    case EMBER_AG_SELECT: {
      ember_tensor *z = ember_zeros_meta(g, m);
      ember_tensor *part = !z ? NULL
                           : n->ip[0] == EMBER_AG_NARROW
                               ? ember_narrow(z, a0, n->ip[2], g->ndim ? g->shape[a0] : 1)
                               : ember_select(z, a0, n->ip[2]);
      if (part && ember_copy_(part, g) == 0) { r = z; z = NULL; }
      ember_tensor_release(part);
      ember_tensor_release(z);
      break;
    }
  }
  if (!r) return -1;
  gin[0] = r;
  return 0;
}

ember_tensor *ember_ag_record_view(ember_ag_view_kind kind, const char *name,
                                   const ember_tensor *t, ember_tensor *out,
                                   int64_t a0, int64_t a1, const int *perm) {
  if (!out || out == t || !ember_dtype_is_float(out->dtype)) return out;
  if (out->grad_info) {   /* a nested op recorded it already */
    ember_ag_meta_free(out->grad_info);
    out->grad_info = NULL;
  }
  ember_node *n = ember_ag_node2(name, view_backward, t, NULL);
  if (n) {
    n->ip[0] = kind;
    n->ip[1] = a0;
    n->ip[2] = a1;
    if (perm) {
      int *p = n->extra = malloc(EMBER_MAX_DIMS * sizeof *p);
      if (p) {
        memcpy(p, perm, (size_t)t->ndim * sizeof *p);
      } else {
        ember_set_error("out of memory");
        ember_ag_node_release(n);
        n = NULL;
      }
    }
  }
  int is_view = kind != EMBER_AG_CLONE && kind != EMBER_AG_CONVERT &&
                kind != EMBER_AG_TO_DEVICE && out->storage == t->storage;
  return ember_ag_finish(n, out, is_view);
}

/* }====================================================================== */

/* {======================================================================
** Convolution and pooling
** ======================================================================= */

/* ip: [0..1] stride, [2..3] padding, [4..5] dilation, [6] groups (conv) or
   [6] ceil_mode, [7] count_include_pad (avg pool); kernel in p[0..1] */
static void put2(int64_t *dst, const int *v, int def0, int def1) {
  dst[0] = v ? v[0] : def0;
  dst[1] = v ? v[1] : def1;
}

static void get2(const int64_t *src, int *v) {
  v[0] = (int)src[0];
  v[1] = (int)src[1];
}

/* saved: x, w, and for conv2d_relu its output (the mask) */
static int conv2d_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  int st[2], pd[2], dl[2];
  get2(n->ip, st);
  get2(n->ip + 2, pd);
  get2(n->ip + 4, dl);
  ember_tensor **gx = n->needs[0] ? &gin[0] : NULL;
  ember_tensor **gw = n->needs[1] ? &gin[1] : NULL;
  ember_tensor **gb = n->ninputs > 2 && n->needs[2] ? &gin[2] : NULL;
  if (n->ip[7])
    return ember_conv2d_relu_backward(g, n->saved[2], n->saved[0],
                                      n->saved[1], st, pd, dl, (int)n->ip[6],
                                      gx, gw, gb);
  return ember_conv2d_backward(g, n->saved[0], n->saved[1], st, pd, dl,
                               (int)n->ip[6], gx, gw, gb);
}

ember_tensor *ember_ag_conv2d(const ember_tensor *x, const ember_tensor *w,
                              const ember_tensor *b, const int stride[2],
                              const int padding[2], const int dilation[2],
                              int groups, int relu) {
  int prev = ember_ag_pause();
  ember_tensor *out =
      relu ? ember_conv2d_relu(x, w, b, stride, padding, dilation, groups)
           : ember_conv2d(x, w, b, stride, padding, dilation, groups);
  ember_ag_resume(prev);
  if (!out) return NULL;
  const ember_tensor *in[3] = {x, w, b};
  ember_node *n = ember_ag_node(relu ? "ConvolutionReluBackward"
                                     : "ConvolutionBackward",
                                conv2d_backward, b ? 3 : 2, in);
  if (n) {
    put2(n->ip, stride, 1, 1);
    put2(n->ip + 2, padding, 0, 0);
    put2(n->ip + 4, dilation, 1, 1);
    n->ip[6] = groups;
    n->ip[7] = relu;
    if (ember_ag_save(n, x) < 0 || ember_ag_save(n, w) < 0 ||
        (relu && ember_ag_save(n, out) < 0)) {
      ember_ag_node_release(n);
      n = NULL;
    }
  }
  return ember_ag_finish(n, out, 0);
}

static int max_pool2d_backward(ember_node *n, ember_tensor *g,
                               ember_tensor **gin) {
  return (gin[0] = ember_max_pool2d_backward(g, n->saved[0], n->saved[1]))
             ? 0 : -1;
}

ember_tensor *ember_ag_max_pool2d(const ember_tensor *x, const int kernel[2],
                                  const int stride[2], const int padding[2],
                                  const int dilation[2], int ceil_mode,
                                  ember_tensor **indices) {
  ember_tensor *idx = NULL;
  int prev = ember_ag_pause();
  ember_tensor *out = ember_max_pool2d(x, kernel, stride, padding, dilation,
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

static int avg_pool2d_backward(ember_node *n, ember_tensor *g,
                               ember_tensor **gin) {
  int k[2], st[2], pd[2];
  get2(n->ip, st);
  get2(n->ip + 2, pd);
  k[0] = (int)n->p[0];
  k[1] = (int)n->p[1];
  gin[0] = ember_avg_pool2d_backward(g, n->saved[0], k, st, pd,
                                     (int)n->ip[6], (int)n->ip[7]);
  return gin[0] ? 0 : -1;
}

ember_tensor *ember_ag_avg_pool2d(const ember_tensor *x, const int kernel[2],
                                  const int stride[2], const int padding[2],
                                  int ceil_mode, int count_include_pad) {
  int prev = ember_ag_pause();
  ember_tensor *out = ember_avg_pool2d(x, kernel, stride, padding, ceil_mode,
                                       count_include_pad);
  ember_ag_resume(prev);
  if (!out) return NULL;
  ember_node *n = ember_ag_node2("AvgPool2DBackward", avg_pool2d_backward, x, NULL);
  if (n) {
    n->p[0] = kernel[0];
    n->p[1] = kernel[1];
    put2(n->ip, stride ? stride : kernel, 0, 0);
    put2(n->ip + 2, padding, 0, 0);
    n->ip[6] = ceil_mode;
    n->ip[7] = count_include_pad;
    if (ember_ag_save(n, x) < 0) { ember_ag_node_release(n); n = NULL; }
  }
  return ember_ag_finish(n, out, 0);
}

/* }====================================================================== */
