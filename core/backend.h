/*
** backend.h -- the per-device kernel table and the core's internal helpers.
**
** A backend holds kernels only.  The core's front door (ops_*.c) checks
** arguments, works out shapes and dtypes, allocates the result and then calls
** one slot of the table of the device the tensors live on.  By then:
**   - every tensor handed to a kernel has the same shape as the output
**     (broadcast operands arrive as expanded views with stride 0);
**   - operands of arithmetic kernels share one dtype (the promoted one);
**     only `copy` converts between dtypes;
**   - reductions and softmax see the reduced dimension last.
** Kernels return 0, or -1 after ember_set_error() when the data itself is
** bad (an index out of range, an integer to a negative power).
** A NULL slot means "not supported on this device".
*/
#ifndef EMBER_BACKEND_H
#define EMBER_BACKEND_H

#include "include/ember.h"

typedef struct ember_backend_i {
  const char *name;
  /* device memory (unused for the CPU, whose storage the core allocates
     in one block with its header) */
  void *(*alloc)(size_t nbytes);               /* NULL on failure */
  void (*free)(void *ptr);

  /* dst[i] = (dst dtype) src[i]; same shape */
  int (*copy)(ember_tensor *dst, const ember_tensor *src);
  int (*fill)(ember_tensor *dst, double value, int64_t ivalue);
  /* dst[i] = start + i * step over a contiguous dst */
  int (*arange)(ember_tensor *dst, double start, double step);
  int (*unary)(ember_unary_op op, ember_tensor *dst, const ember_tensor *src,
               double p0, double p1);
  int (*binary)(ember_binary_op op, ember_tensor *dst, const ember_tensor *a,
                const ember_tensor *b);
  /* dst is bool */
  int (*compare)(ember_cmp_op op, ember_tensor *dst, const ember_tensor *a,
                 const ember_tensor *b);
  /* cond is bool; a, b and dst share a dtype */
  int (*where)(ember_tensor *dst, const ember_tensor *cond,
               const ember_tensor *a, const ember_tensor *b);
  /* src is [..., n] (n = last dim), dst is [...]: reduces the last dim.
     ARGMAX/ARGMIN write int64 1-based positions into dst. */
  int (*reduce)(ember_reduce_op op, ember_tensor *dst, const ember_tensor *src,
                int correction);
  /* softmax over the last dim of src into dst (same shape) */
  int (*softmax)(ember_tensor *dst, const ember_tensor *src, int log);
  /* [B,M,K] x [B,K,N] -> [B,M,N]; each operand has unit stride in one of
     its two matrix dims; dst is contiguous. */
  int (*matmul)(ember_tensor *dst, const ember_tensor *a,
                const ember_tensor *b);
  /* dst = src with `dim` taken at index[j] (1-based), j over index */
  int (*index_select)(ember_tensor *dst, const ember_tensor *src, int dim,
                      const ember_tensor *index);
  /* dst[.., j, ..] = src[.., index[.., j, ..], ..] along dim */
  int (*gather)(ember_tensor *dst, const ember_tensor *src, int dim,
                const ember_tensor *index);
  /* kind 0 uniform [a,b), 1 normal(a, b), 2 integers [a, b] */
  int (*random)(int kind, ember_tensor *dst, uint64_t seed, uint64_t counter,
                double a, double b);
} ember_backend_i;

extern const ember_backend_i ember_cpu_backend;
const ember_backend_i *ember_backend_of(const ember_tensor *t);

/* Internal helpers shared by the ops files. */
ember_storage *ember_storage_new(ember_device dev, size_t nbytes);
void ember_storage_release(ember_storage *s);
/* A tensor over `s` (retained) with the given geometry. */
ember_tensor *ember_tensor_make(ember_storage *s, ember_dtype dt, int ndim,
                                const int64_t *shape, const int64_t *strides,
                                int64_t offset);
/* A new view of t with other geometry (same storage). */
ember_tensor *ember_tensor_alias(const ember_tensor *t, int ndim,
                                 const int64_t *shape, const int64_t *strides,
                                 int64_t offset);
ember_tensor *ember_empty_on(ember_device dev, int ndim, const int64_t *shape,
                             ember_dtype dt);
void ember_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Checks a shape (0..8 dims, sizes >= 0, numel fits in int64). */
int ember_check_shape(const char *fn, int ndim, const int64_t *shape);
/* Broadcast two shapes; -1 with a message naming fn on failure. */
int ember_broadcast_shapes(const char *fn, int na, const int64_t *sa, int nb,
                           const int64_t *sb, int *nout, int64_t *sout);
/* A view of t expanded to (ndim, shape): broadcasting without checks. */
ember_tensor *ember_broadcast_to(const ember_tensor *t, int ndim,
                                 const int64_t *shape);
/* t converted to dt (t retained when it already has dt). */
ember_tensor *ember_cast(const ember_tensor *t, ember_dtype dt);

/* Every in-place write to t's data calls this (autograd's check that a
   tensor saved for backward was not modified). */
static inline void ember_bump_version(ember_tensor *t) { t->storage->version++; }

#endif
