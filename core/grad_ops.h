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

ember_tensor *ember_ag_unary(ember_unary_op op, const ember_tensor *t,
                             double param);
int ember_ag_unary_(ember_unary_op op, ember_tensor *t, double param);
ember_tensor *ember_ag_clamp(const ember_tensor *t, double lo, double hi);
int ember_ag_clamp_(ember_tensor *t, double lo, double hi);
ember_tensor *ember_ag_binary(ember_binary_op op, const ember_tensor *a,
                              const ember_tensor *b);
int ember_ag_binary_(ember_binary_op op, ember_tensor *a, const ember_tensor *b);
ember_tensor *ember_ag_where(const ember_tensor *cond, const ember_tensor *a,
                             const ember_tensor *b);
ember_tensor *ember_ag_masked_fill(const ember_tensor *t,
                                   const ember_tensor *mask, double value);
int ember_ag_masked_fill_(ember_tensor *t, const ember_tensor *mask,
                          double value);
int ember_ag_copy_(ember_tensor *dst, const ember_tensor *src);
int ember_ag_fill_(ember_tensor *dst, double value);

ember_tensor *ember_ag_reduce(ember_reduce_op op, const ember_tensor *t,
                              int correction);
ember_tensor *ember_ag_reduce_dim(ember_reduce_op op, const ember_tensor *t,
                                  int dim, int keepdim, int correction);
int ember_ag_extreme_dim(int is_max, const ember_tensor *t, int dim,
                         int keepdim, ember_tensor **values,
                         ember_tensor **indices);
ember_tensor *ember_ag_softmax(const ember_tensor *t, int dim, int log);

#endif
