/*
** grad_ops.h -- the recording forms of the differentiable ops (internal).
**
** Each public op begins with `if (ember_ag_active..(inputs)) return
** ember_ag_OP(...)`; the ember_ag_ form (grad_ops.c) pauses recording,
** calls the public op again (its plain path), and records a node holding
** the op's backward function.  In-place forms check autograd's rules first.
*/
#ifndef EMBER_GRAD_OPS_H
#define EMBER_GRAD_OPS_H

#include "autograd.h"

ember_tensor *ember_ag_matmul(const ember_tensor *a, const ember_tensor *b);
ember_tensor *ember_ag_cat(int n, ember_tensor *const *ts, int dim);
ember_tensor *ember_ag_stack(int n, ember_tensor *const *ts, int dim);
ember_tensor *ember_ag_index_select(const ember_tensor *t, int dim,
                                    const ember_tensor *index);
ember_tensor *ember_ag_gather(const ember_tensor *t, int dim,
                              const ember_tensor *index);

ember_tensor *ember_ag_conv2d(const ember_tensor *x, const ember_tensor *w,
                              const ember_tensor *b, const int stride[2],
                              const int padding[2], const int dilation[2],
                              int groups, int relu);
ember_tensor *ember_ag_max_pool2d(const ember_tensor *x, const int kernel[2],
                                  const int stride[2], const int padding[2],
                                  const int dilation[2], int ceil_mode,
                                  ember_tensor **indices);
ember_tensor *ember_ag_avg_pool2d(const ember_tensor *x, const int kernel[2],
                                  const int stride[2], const int padding[2],
                                  int ceil_mode, int count_include_pad);

/* Views and copies.  `kind` names the view op; ip carries its arguments. */
typedef enum {
  EMBER_AG_RESHAPE, EMBER_AG_EXPAND, EMBER_AG_TRANSPOSE, EMBER_AG_PERMUTE,
  EMBER_AG_NARROW, EMBER_AG_SELECT, EMBER_AG_CLONE, EMBER_AG_CONVERT,
  EMBER_AG_TO_DEVICE   /* a0: the input's device */
} ember_ag_view_kind;
/* Record `out` (already computed, from t) as a view/copy of t; consumes out. */
ember_tensor *ember_ag_record_view(ember_ag_view_kind kind, const char *name,
                                   const ember_tensor *t, ember_tensor *out,
                                   int64_t a0, int64_t a1, const int *perm);

/* Does any of n tensors need recording? */
int ember_ag_active_n(int n, ember_tensor *const *ts);

#endif
