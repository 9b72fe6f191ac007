/*
** ops.h -- what the op families of core/ops/ share (internal).
**
** Each file of core/ops/ holds one family of ops from front door to
** backward: the public function, its argument checks (once), the call
** into the backend's kernel table, the recording of the autograd node
** (after the result is computed), and the backward function.  See
** docs/internals.md for the walk through one op and the checklist for a
** new one.
**
** The recording pattern, for an op `f` with inputs a, b:
**
**     ember_tensor *ember_f(const ember_tensor *a, const ember_tensor *b) {
**       ...checks, compute `out` through the kernel table...
**       if (!ember_ag_active2(a, b)) return out;
**       ember_node *n = ember_ag_node2("FBackward", f_backward, a, b);
**       struct f_saved *s = n ? EMBER_NODE_STATE(n, struct f_saved) : NULL;
**       ...fill s, ember_ag_save what backward needs...
**       return ember_ag_finish(n, out, 0);
**     }
**
** Backward functions run with recording off, so the public ops they call
** take their plain path.  Their temporaries go in one ember_temps list,
** released at the end on success and on error alike:
**
**     ember_temps T;
**     ember_temps_init(&T);
**     ember_tensor *x = ember_temp(&T, ember_exp(g));
**     ember_tensor *y = ember_temp(&T, x ? ember_mul(x, g) : NULL);
**     ...
**     ember_temps_release(&T);
*/
#ifndef EMBER_OPS_H
#define EMBER_OPS_H

#include "../autograd.h"

/* {======================================================================
** Temporaries of a backward (or of any multi-step op)
** ======================================================================= */

#define EMBER_TEMPS_MAX 24

typedef struct ember_temps {
  int n;
  ember_tensor *t[EMBER_TEMPS_MAX];
} ember_temps;

/* Start an empty list.  Only the count is set: a backward runs it on
   every call, and zeroing the whole array would cost more than the
   count (the slots beyond it are never read). */
static inline void ember_temps_init(ember_temps *l) { l->n = 0; }

/* Keep t (a new reference, or NULL, which passes through) for
   ember_temps_release, and return it.  A full list releases t and fails
   (NULL, with an error): a programming error, found by the specs. */
ember_tensor *ember_temp(ember_temps *l, ember_tensor *t);
/* Release every tensor the list holds; the list is empty after. */
void ember_temps_release(ember_temps *l);

/* }====================================================================== */

/* {======================================================================
** Recording
** ======================================================================= */

/* A node over inputs (a, b); b may be NULL (a one-input node). */
ember_node *ember_ag_node2(const char *name, ember_backward_fn fn,
                           const ember_tensor *a, const ember_tensor *b);

/* Make `node` the history of the in-place target t (a non-leaf's old
   history is replaced; "rebase" in PyTorch).  Consumes node.  requires:
   whether t requires grad after the op. */
int ember_ag_rebase(ember_tensor *t, ember_node *node, int requires);

/* An in-place write of a value that requires grad into a tensor that does
   not: fine for a tensor of its own, but a view's base would never learn
   of it, so refuse (-1 with an error naming fn). */
int ember_ag_check_target(const char *fn, const ember_tensor *t);

/* Record out, computed from t by ember_to_device (device.c), as a copy of
   t whose gradient goes back to t's device (shape.c); consumes out. */
ember_tensor *ember_ag_record_to_device(const ember_tensor *t,
                                        ember_tensor *out);

/* }====================================================================== */

/* {======================================================================
** Small tensors backward functions build
** ======================================================================= */

/* A 0-d tensor holding v, of like's dtype and on its device. */
ember_tensor *ember_scalar_as(const ember_tensor *like, double v);
/* Zeros of an input's shape (m), of like's dtype and device. */
ember_tensor *ember_zeros_meta(const ember_tensor *like,
                               const ember_in_meta *m);
/* g with a size-1 dim put back at `dim` when a reduction dropped it
   (keepdim false); dim < 0 means a reduction over everything, whose 0-d
   result broadcasts as it is.  New reference. */
ember_tensor *ember_keep_dim(ember_tensor *g, int dim, int keepdim);

/* }====================================================================== */

/* {======================================================================
** Backward functions op families share (core/ops/reduce.c)
** ======================================================================= */

/* The state of a node whose input's gradient is g put back at the
   positions a selection chose (max/min over a dim, sort, topk, kthvalue,
   median): dim 0-based, keepdim as the forward's; saved[0] holds the
   1-based indices (int64, the values' shape). */
typedef struct ember_pick_saved {
  int dim, keepdim;
} ember_pick_saved;
int ember_pick_backward(ember_node *n, ember_tensor *g, ember_tensor **gin);

/* gk (a reduction's gradient, dims kept) shared equally among the elements
   of x equal to the result ok (dims kept; dim < 0: over everything); a
   NaN result shares among the NaNs.  New reference. */
ember_tensor *ember_tie_share(const ember_tensor *x, const ember_tensor *ok,
                              const ember_tensor *gk, int dim);

/* {======================================================================
** Mixed precision (matmul.c)
** ======================================================================= */

/* The ops whose CPU kernels compute in float32 only (convolution,
   attention, the recurrent cells) take bfloat16/float16 inputs as
   recorded float32 copies and round the result once to the input's dtype:
   the sums are float32 either way, as PyTorch's CPU kernels do them, and
   each gradient comes back through the casts in its input's dtype.
   ember_widen_half: out[i] = in[i] as float32 (a new reference; NULL stays
   NULL); 0, or -1 with nothing left made.  ember_narrow_to: y cast to dt,
   recorded; consumes y (NULL passes through). */
int ember_widen_half(int n, const ember_tensor *const *in, ember_tensor **out);
ember_tensor *ember_narrow_to(ember_tensor *y, ember_dtype dt);

/* }====================================================================== */

#endif
