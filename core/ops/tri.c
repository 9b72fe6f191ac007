/*
** tri.c -- tril and triu (the lower and upper triangles of matrices),
** out of place and in place, front door to backward.
**
** Contract:
**   - the op works on the last two dims (rows R, columns C) and is
**     batched over the leading ones; a tensor of fewer than 2 dims is an
**     error naming the function;
**   - k is PyTorch's diagonal offset: tril keeps element (i, j) (0-based)
**     when j - i <= k, triu when j - i >= k; everything else becomes 0
**     (false for bool), so any dtype works;
**   - composed from existing ops, so every device that has them runs it:
**     a [R, C] bool mask of the dropped places is made on t's device (two
**     aranges and one comparison, no upload), then masked_fill writes the
**     zeros;
**   - recording: the result is computed with recording paused; a float
**     input that requires grad gets a node "TrilBackward"/"TriuBackward"
**     (struct tri_saved: k and which triangle) that saves nothing, since
**     the gradient is the same triangle of the incoming gradient.  The in
**     place forms rebase the tensor's history on that node, as every
**     in-place op does.
*/
#include "ops.h"

struct tri_saved {
  int64_t k;
  int upper;
};

static const char *tri_name(int upper, int inplace) {
  static const char *names[2][2] = {{"tril", "tril_"}, {"triu", "triu_"}};
  return names[upper != 0][inplace != 0];
}

/* The checks both forms share: at least two dims. */
static int tri_check(const char *fn, const ember_tensor *t) {
  if (t->ndim < 2)
    return ember_set_error("%s: expected a tensor with at least 2 dims, got "
                           "%d", fn, t->ndim);
  return 0;
}

/* A 1-D int64 tensor start, start+1, ..., start+n-1 on dev, made there. */
static ember_tensor *arange_on(ember_device dev, int64_t start, int64_t n) {
  ember_tensor *r = ember_empty_on(dev, 1, &n, EMBER_INT64);
  return r ? ember_kernel_result(r, ember_backend_of(r)->arange(r, (double)start, 1.0))
           : NULL;
}

/* The places the op zeroes, as a [R, C] bool tensor on t's device (it
   broadcasts over t's leading dims).  With rows[i] = i + k and cols[j] = j,
   tril drops cols > rows and triu drops cols < rows.  k is clamped to
   [-R, C] first: beyond that range every place is kept or dropped alike,
   and the clamped values stay exact in the arange's doubles. */
static ember_tensor *tri_drop_mask(const ember_tensor *t, int64_t k, int upper) {
  int64_t R = t->shape[t->ndim - 2], C = t->shape[t->ndim - 1];
  if (k < -R) k = -R;
  if (k > C) k = C;
  ember_device dev = t->storage->device;
  int64_t col_shape[2] = {R, 1};
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *rows = ember_temp(&T, arange_on(dev, k, R));
  ember_tensor *rcol = ember_temp(&T, rows ? ember_view(rows, 2, col_shape) : NULL);
  ember_tensor *cols = ember_temp(&T, rcol ? arange_on(dev, 0, C) : NULL);
  ember_tensor *drop = cols ? ember_compare(upper ? EMBER_LT : EMBER_GT, cols, rcol)
                            : NULL;
  ember_temps_release(&T);
  return drop;
}

/* t's triangle, not recorded. */
static ember_tensor *tri_plain(const ember_tensor *t, int64_t k, int upper) {
  int prev = ember_ag_pause();
  ember_tensor *drop = tri_drop_mask(t, k, upper);
  ember_tensor *out = drop ? ember_masked_fill(t, drop, 0.0) : NULL;
  ember_tensor_release(drop);
  ember_ag_resume(prev);
  return out;
}

/* The gradient of a triangle is the same triangle of g. */
static int tri_backward(ember_node *n, ember_tensor *g, ember_tensor **gin) {
  const struct tri_saved *s = EMBER_NODE_STATE(n, struct tri_saved);
  gin[0] = tri_plain(g, s->k, s->upper);
  return gin[0] ? 0 : -1;
}

static ember_node *tri_node(const ember_tensor *t, int64_t k, int upper) {
  ember_node *n = ember_ag_node2(upper ? "TriuBackward" : "TrilBackward",
                                 tri_backward, t, NULL);
  if (n) {
    struct tri_saved *s = EMBER_NODE_STATE(n, struct tri_saved);
    s->k = k;
    s->upper = upper;
  }
  return n;
}

static ember_tensor *tri_op(const ember_tensor *t, int64_t k, int upper) {
  if (tri_check(tri_name(upper, 0), t) < 0) return NULL;
  ember_tensor *out = tri_plain(t, k, upper);
  if (!out || !ember_ag_active1(t) || !ember_dtype_is_float(out->dtype))
    return out;
  return ember_ag_finish(tri_node(t, k, upper), out, 0);
}

/* In place: the node is made before t changes (its edge is t's old
   history), then masked_fill_ writes with recording paused. */
static int tri_inplace(ember_tensor *t, int64_t k, int upper) {
  const char *fn = tri_name(upper, 1);
  int rec = ember_ag_active1(t);
  if (rec && ember_ag_check_inplace(fn, t) < 0) return -1;
  if (tri_check(fn, t) < 0) return -1;
  for (int i = 0; i < t->ndim; i++)
    if (t->strides[i] == 0 && t->shape[i] > 1)
      return ember_set_error("%s: cannot write in place to an expanded tensor "
                             "(several elements share memory); clone it first",
                             fn);
  ember_node *n = rec ? tri_node(t, k, upper) : NULL;
  if (rec && !n) return -1;
  int prev = ember_ag_pause();
  ember_tensor *drop = tri_drop_mask(t, k, upper);
  int rc = drop ? ember_masked_fill_(t, drop, 0.0) : -1;
  ember_ag_resume(prev);
  ember_tensor_release(drop);
  if (rc < 0) { ember_ag_node_release(n); return -1; }
  return n ? ember_ag_rebase(t, n, 1) : 0;
}

ember_tensor *ember_tril(const ember_tensor *t, int64_t k) { return tri_op(t, k, 0); }
ember_tensor *ember_triu(const ember_tensor *t, int64_t k) { return tri_op(t, k, 1); }
int ember_tril_(ember_tensor *t, int64_t k) { return tri_inplace(t, k, 0); }
int ember_triu_(ember_tensor *t, int64_t k) { return tri_inplace(t, k, 1); }
