/*
** index.c -- gather and index_select on the CPU.
**
** Index tensors hold 1-based positions (int64 or int32).  Every index is
** checked before anything is written, so a bad index leaves dst untouched
** and the call fails with the offending value.
*/
#include <string.h>

#include "cpu.h"

static inline int64_t index_at(const ember_tensor *idx, int64_t off) {
  const char *p = idx->storage->data;
  return idx->dtype == EMBER_INT32 ? ((const int32_t *)p)[off]
                                   : ((const int64_t *)p)[off];
}

int ember_cpu_index_select(ember_tensor *dst, const ember_tensor *src, int dim,
                           const ember_tensor *index) {
  int64_t n = index->ndim ? index->shape[0] : 1;
  int64_t istride = index->ndim ? index->strides[0] : 0;
  for (int64_t j = 0; j < n; j++) {
    int64_t v = index_at(index, index->offset + j * istride);
    if (v < 1 || v > src->shape[dim])
      return ember_set_error("index_select: index %lld is out of range for "
                             "dimension %d of size %lld", (long long)v,
                             dim + 1, (long long)src->shape[dim]);
  }
  for (int64_t j = 0; j < n; j++) {
    int64_t v = index_at(index, index->offset + j * istride) - 1;
    /* the slices are views built on the stack: no allocation */
    ember_tensor s = *src, d = *dst;
    s.offset += v * src->strides[dim];
    d.offset += j * dst->strides[dim];
    s.shape[dim] = d.shape[dim] = 1;
    ember_cpu_copy(&d, &s);
  }
  return 0;
}

int ember_cpu_gather(ember_tensor *dst, const ember_tensor *src, int dim,
                     const ember_tensor *index) {
  int nd = index->ndim;
  int64_t total = ember_numel(index);
  size_t es = ember_dtype_size(src->dtype);
  int64_t pos[EMBER_MAX_DIMS] = {0};
  /* two passes over the same odometer: check, then copy */
  for (int pass = 0; pass < 2; pass++) {
    memset(pos, 0, sizeof pos);
    for (int64_t e = 0; e < total; e++) {
      int64_t ioff = index->offset, soff = src->offset, doff = dst->offset;
      for (int d = 0; d < nd; d++) {
        ioff += pos[d] * index->strides[d];
        doff += pos[d] * dst->strides[d];
        if (d != dim) soff += pos[d] * src->strides[d];
      }
      int64_t v = index_at(index, ioff);
      if (pass == 0) {
        if (v < 1 || v > src->shape[dim])
          return ember_set_error("gather: index %lld is out of range for "
                                 "dimension %d of size %lld", (long long)v,
                                 dim + 1, (long long)src->shape[dim]);
      } else {
        soff += (v - 1) * src->strides[dim];
        memcpy((char *)dst->storage->data + doff * (int64_t)es,
               (const char *)src->storage->data + soff * (int64_t)es, es);
      }
      for (int d = nd - 1; d >= 0; d--) {
        if (++pos[d] < index->shape[d]) break;
        pos[d] = 0;
      }
    }
  }
  return 0;
}

int ember_cpu_index_add(ember_tensor *dst, int dim, const ember_tensor *index,
                        const ember_tensor *src) {
  int64_t n = index->ndim ? index->shape[0] : 1;
  int64_t istride = index->ndim ? index->strides[0] : 0;
  for (int64_t j = 0; j < n; j++) {
    int64_t v = index_at(index, index->offset + j * istride);
    if (v < 1 || v > dst->shape[dim])
      return ember_set_error("index_add_: index %lld is out of range for "
                             "dimension %d of size %lld", (long long)v,
                             dim + 1, (long long)dst->shape[dim]);
  }
  /* serial over j: two indices may name the same slice */
  for (int64_t j = 0; j < n; j++) {
    int64_t v = index_at(index, index->offset + j * istride) - 1;
    ember_tensor s = *src, d = *dst;
    s.offset += j * src->strides[dim];
    d.offset += v * dst->strides[dim];
    s.shape[dim] = d.shape[dim] = 1;
    ember_cpu_binary(EMBER_ADD, &d, &d, &s);
  }
  return 0;
}

#define SCATTER_ADD(T)                                                       \
  ((T *)dst->storage->data)[doff] += ((const T *)src->storage->data)[soff]

int ember_cpu_scatter_add(ember_tensor *dst, int dim,
                          const ember_tensor *index, const ember_tensor *src) {
  int nd = index->ndim;
  int64_t total = ember_numel(index);
  int64_t pos[EMBER_MAX_DIMS] = {0};
  for (int pass = 0; pass < 2; pass++) {
    memset(pos, 0, sizeof pos);
    for (int64_t e = 0; e < total; e++) {
      int64_t ioff = index->offset, soff = src->offset, doff = dst->offset;
      for (int d = 0; d < nd; d++) {
        ioff += pos[d] * index->strides[d];
        soff += pos[d] * src->strides[d];
        if (d != dim) doff += pos[d] * dst->strides[d];
      }
      int64_t v = index_at(index, ioff);
      if (pass == 0) {
        if (v < 1 || v > dst->shape[dim])
          return ember_set_error("scatter_add_: index %lld is out of range for "
                                 "dimension %d of size %lld", (long long)v,
                                 dim + 1, (long long)dst->shape[dim]);
      } else {
        doff += (v - 1) * dst->strides[dim];
        switch (dst->dtype) {
          case EMBER_FLOAT32: SCATTER_ADD(float); break;
          case EMBER_FLOAT64: SCATTER_ADD(double); break;
          case EMBER_INT32: SCATTER_ADD(int32_t); break;
          case EMBER_INT64: SCATTER_ADD(int64_t); break;
          default: SCATTER_ADD(uint8_t); break;
        }
      }
      for (int d = nd - 1; d >= 0; d--) {
        if (++pos[d] < index->shape[d]) break;
        pos[d] = 0;
      }
    }
  }
  return 0;
}
