/*
** nchw.c -- checks and shapes shared by conv.c and pool.c (see nchw.h).
*/
#include <string.h>

#include "nchw.h"

int ember_nchw_check_input(const char *fn, const ember_tensor *x) {
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

int ember_nchw_check_like(const char *fn, const char *what,
                          const ember_tensor *t, const ember_tensor *x) {
  if (t->dtype != x->dtype)
    return ember_set_error("%s: %s is %s but input is %s", fn, what,
                           ember_dtype_name(t->dtype), ember_dtype_name(x->dtype));
  if (t->storage->device != x->storage->device)
    return ember_set_error("%s: %s is on %s but input is on %s", fn, what,
                           ember_device_name(t->storage->device),
                           ember_device_name(x->storage->device));
  return 0;
}

int ember_nchw_check_pair(const char *fn, const char *what, const int v[2],
                          int min) {
  if (v[0] < min || v[1] < min)
    return ember_set_error("%s: %s must be %s, got {%d, %d}", fn, what,
                           min > 0 ? "positive" : "non-negative", v[0], v[1]);
  return 0;
}

int ember_nchw_check_shape_is(const char *fn, const char *what,
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

void ember_nchw_shape_with(const ember_tensor *x, int64_t c, int64_t h,
                           int64_t w, int64_t *shape) {
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
  if (c >= 0) shape[x->ndim - 3] = c;
  shape[x->ndim - 2] = h;
  shape[x->ndim - 1] = w;
}

const ember_backend_i *ember_nchw_backend(const char *fn,
                                          const ember_tensor *x, int has) {
  if (has) return ember_backend_of(x);
  ember_set_error("%s: not supported on %s", fn,
                  ember_device_name(x->storage->device));
  return NULL;
}
