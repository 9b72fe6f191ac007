/*
** nchw.h -- checks and shapes shared by the NCHW op families, conv.c and
** pool.c (internal; definitions in nchw.c).
*/
#ifndef EMBER_OPS_NCHW_H
#define EMBER_OPS_NCHW_H

#include "ops.h"

/* A 3-D or 4-D float tensor whose C, H and W are not empty (N may be 0). */
int ember_nchw_check_input(const char *fn, const ember_tensor *x);
/* t must share x's dtype and device (`what` names t in the message). */
int ember_nchw_check_like(const char *fn, const char *what,
                          const ember_tensor *t, const ember_tensor *x);
/* Both of v at least min (1: "positive", 0: "non-negative"). */
int ember_nchw_check_pair(const char *fn, const char *what, const int v[2],
                          int min);
/* got's shape must be want's (ndim dims); names both on failure. */
int ember_nchw_check_shape_is(const char *fn, const char *what,
                              const ember_tensor *got, int ndim,
                              const int64_t *want);
/* x's shape with the last two dims (and, if c >= 0, the channel dim)
   replaced, into shape. */
void ember_nchw_shape_with(const ember_tensor *x, int64_t c, int64_t h,
                           int64_t w, int64_t *shape);
/* x's backend when it has the slot (has != 0), else NULL with "fn: not
   supported on <device>". */
const ember_backend_i *ember_nchw_backend(const char *fn,
                                          const ember_tensor *x, int has);

#endif
