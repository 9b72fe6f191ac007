/*
** tensor.c -- creating tensors, element access.
**
** Nothing here touches elements except through the backend's
** copy/fill/arange kernels.  Views and copies (view, reshape, transpose,
** clone, ...) are in core/ops/shape.c, copy_ and fill_ in
** core/ops/elementwise.c; headers, strides and aliases in storage.c.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autograd.h"
#include "half.h"

/* {======================================================================
** Creation
** ======================================================================= */

/* The creation functions make the tensor on its device and fill it there:
   a "cuda" tensor is never made on the CPU and copied over. */
ember_tensor *ember_full_on(ember_device dev, int ndim, const int64_t *shape,
                            double value, ember_dtype dt) {
  ember_tensor *t = ember_empty_on(dev, ndim, shape, dt);
  if (t && ember_fill_(t, value) < 0) {
    ember_tensor_release(t);
    return NULL;
  }
  return t;
}

ember_tensor *ember_zeros_on(ember_device dev, int ndim, const int64_t *shape,
                             ember_dtype dt) {
  return ember_full_on(dev, ndim, shape, 0.0, dt);
}

ember_tensor *ember_ones_on(ember_device dev, int ndim, const int64_t *shape,
                            ember_dtype dt) {
  return ember_full_on(dev, ndim, shape, 1.0, dt);
}

ember_tensor *ember_full(int ndim, const int64_t *shape, double value,
                         ember_dtype dt) {
  return ember_full_on(EMBER_CPU, ndim, shape, value, dt);
}

ember_tensor *ember_zeros(int ndim, const int64_t *shape, ember_dtype dt) {
  return ember_full_on(EMBER_CPU, ndim, shape, 0.0, dt);
}

ember_tensor *ember_ones(int ndim, const int64_t *shape, ember_dtype dt) {
  return ember_full_on(EMBER_CPU, ndim, shape, 1.0, dt);
}

ember_tensor *ember_scalar(double value, ember_dtype dt) {
  return ember_full(0, NULL, value, dt);
}

ember_tensor *ember_scalar_int(int64_t ivalue, ember_dtype dt) {
  ember_tensor *t = ember_empty(0, NULL, dt);
  if (t) ember_cpu_backend.fill(t, (double)ivalue, ivalue);
  return t;
}

ember_tensor *ember_scalar_like(const ember_tensor *t, double value,
                                int64_t ivalue, int is_integer) {
  ember_dtype dt = t->dtype;
  if (!is_integer && !ember_dtype_is_float(dt)) dt = EMBER_FLOAT32;
  else if (is_integer && dt == EMBER_BOOL) dt = EMBER_INT64;
  if (is_integer && (dt == EMBER_INT32 || dt == EMBER_UINT8)) {
    int64_t lo = dt == EMBER_INT32 ? INT32_MIN : 0;
    int64_t hi = dt == EMBER_INT32 ? INT32_MAX : 255;
    if (ivalue < lo || ivalue > hi) {
      ember_set_error("value %lld cannot be converted to %s without overflow",
                      (long long)ivalue, ember_dtype_name(dt));
      return NULL;
    }
  }
  ember_tensor *s = ember_empty_on(t->storage->device, 0, NULL, dt);
  if (!s) return NULL;
  if (is_integer && !ember_dtype_is_float(dt))
    return ember_kernel_result(s, ember_backend_of(s)->fill(s, value, ivalue));
  return ember_kernel_result(s, ember_fill_(s, value));
}

ember_tensor *ember_arange(double start, double end, double step,
                           ember_dtype dt) {
  if (!isfinite(start) || !isfinite(end) || !isfinite(step)) {
    ember_set_error("arange: start, end and step must be finite");
    return NULL;
  }
  if (step == 0) { ember_set_error("arange: step must be nonzero"); return NULL; }
  if ((end - start) / step < 0) {
    ember_set_error("arange: step %g goes away from end (start %g, end %g)",
                    step, start, end);
    return NULL;
  }
  double nd = ceil((end - start) / step);
  if (nd > 1e15) { ember_set_error("arange: too many elements"); return NULL; }
  int64_t n = (int64_t)nd;
  ember_tensor *t = ember_empty(1, &n, dt);
  return t ? ember_kernel_result(t, ember_backend_of(t)->arange(t, start, step)) : NULL;
}

ember_tensor *ember_linspace(double start, double end, int64_t steps,
                             ember_dtype dt) {
  if (steps < 0) {
    ember_set_error("linspace: number of steps must be >= 0, got %lld",
                    (long long)steps);
    return NULL;
  }
  if (ember_check_shape("linspace", 1, &steps) < 0) return NULL;
  ember_tensor *t = ember_empty(1, &steps, dt);
  double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
  return t ? ember_kernel_result(t, ember_backend_of(t)->arange(t, start, step)) : NULL;
}

ember_tensor *ember_eye(int64_t n, int64_t m, ember_dtype dt) {
  int64_t shape[2] = {n, m < 0 ? n : m};
  if (ember_check_shape("eye", 2, shape) < 0) return NULL;
  ember_tensor *t = ember_zeros(2, shape, dt);
  if (!t) return NULL;
  /* the diagonal is a 1-D view with stride m + 1 */
  int64_t d = shape[0] < shape[1] ? shape[0] : shape[1];
  int64_t st = shape[1] + 1;
  ember_tensor *diag = ember_tensor_alias(t, 1, &d, &st, 0);
  if (!diag) { ember_tensor_release(t); return NULL; }
  ember_fill_(diag, 1.0);
  ember_tensor_release(diag);
  return t;
}

/* }====================================================================== */

/* {======================================================================
** Element access
** ======================================================================= */

/* Offset of an element; -1 with a message if out of range. */
static int64_t element_offset(const char *fn, const ember_tensor *t,
                              const int64_t *index) {
  int64_t off = t->offset;
  for (int i = 0; i < t->ndim; i++) {
    if (index[i] < 0 || index[i] >= t->shape[i])
      return ember_set_error("%s: index %lld is out of range for dimension %d "
                             "of size %lld", fn, (long long)index[i] + 1, i + 1,
                             (long long)t->shape[i]);
    off += index[i] * t->strides[i];
  }
  return off;
}

/* A host pointer to the element at index: into the data on the CPU, into
   buf (a copy of the element) on other devices; NULL with a message. */
static const char *element_at(const char *fn, const ember_tensor *t,
                              const int64_t *index, char buf[8]) {
  int64_t off = element_offset(fn, t, index);
  if (off < 0) return NULL;
  size_t es = ember_dtype_size(t->dtype);
  const char *p = (const char *)t->storage->data + off * (int64_t)es;
  if (t->storage->device == EMBER_CPU) return p;
  return ember_device_memcpy(EMBER_CPU, buf, t->storage->device, p, es) < 0 ? NULL : buf;
}

int ember_get(const ember_tensor *t, const int64_t *index, double *out) {
  char buf[8];
  const char *p = element_at("get", t, index, buf);
  if (!p) return -1;
  switch (t->dtype) {
    case EMBER_FLOAT32: *out = *(const float *)p; break;
    case EMBER_FLOAT64: *out = *(const double *)p; break;
    case EMBER_BFLOAT16: *out = ember_bf16_to_f32(*(const uint16_t *)p); break;
    case EMBER_FLOAT16: *out = ember_f16_to_f32(*(const uint16_t *)p); break;
    case EMBER_INT32: *out = *(const int32_t *)p; break;
    case EMBER_INT64: *out = (double)*(const int64_t *)p; break;
    case EMBER_UINT8: case EMBER_BOOL: *out = *(const uint8_t *)p; break;
    default: return ember_set_error("get: bad dtype");
  }
  return 0;
}

int ember_get_int(const ember_tensor *t, const int64_t *index, int64_t *out) {
  if (ember_dtype_is_float(t->dtype)) {
    double d;
    if (ember_get(t, index, &d) < 0) return -1;
    *out = (int64_t)d;
    return 0;
  }
  char buf[8];
  const char *p = element_at("get", t, index, buf);
  if (!p) return -1;
  switch (t->dtype) {
    case EMBER_INT32: *out = *(const int32_t *)p; break;
    case EMBER_INT64: *out = *(const int64_t *)p; break;
    default: *out = *(const uint8_t *)p; break;
  }
  return 0;
}

static int check_item(const ember_tensor *t) {
  if (ember_numel(t) != 1) {
    char b[128];
    return ember_set_error("item: only a tensor with one element can be "
                           "converted to a number, got shape %s",
                           ember_shape_str(b, sizeof b, t->ndim, t->shape));
  }
  return 0;
}

int ember_item(const ember_tensor *t, double *out) {
  int64_t zero[EMBER_MAX_DIMS] = {0};
  return check_item(t) < 0 ? -1 : ember_get(t, zero, out);
}

int ember_item_int(const ember_tensor *t, int64_t *out) {
  int64_t zero[EMBER_MAX_DIMS] = {0};
  return check_item(t) < 0 ? -1 : ember_get_int(t, zero, out);
}

/* }====================================================================== */
