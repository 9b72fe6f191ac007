/*
** core.h -- helpers private to the core (the .c files of core/ and core/ops/).
**
** What the ops files share beyond the public API: the backend of a tensor,
** allocation, views over a storage, broadcasting and casts, and the two
** small rules every op follows (a failed kernel gives no result; an
** in-place write bumps the storage's version).  None of this is seen by a
** device plugin: backend.h, which this includes, is the part they share.
** autograd.h includes this header, so the files of core/ops/ get it through
** "../autograd.h" (or ops.h).
*/
#ifndef EMBER_CORE_H
#define EMBER_CORE_H

#include "backend.h"

/* The table of the device t lives on. */
const ember_backend_i *ember_backend_of(const ember_tensor *t);
/* The table of a device: the CPU's, the loaded plugin's, or NULL
   (device.c). */
const ember_backend_i *ember_device_backend(ember_device dev);
/* n bytes between a device and the host (one side is the CPU). */
int ember_device_memcpy(ember_device dst_dev, void *dst, ember_device src_dev,
                        const void *src, size_t n);

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

/* Autocast (autocast.c).  ember_autocast_wants: whether a product of
   these n operands (NULL ones skipped) runs in the autocast dtype: autocast
   is on, and each operand is float32 or already that dtype, one at least
   float32.  ember_autocast_operands: out[i] = in[i] cast to it (recorded;
   NULL for NULL); on failure -1 and nothing is held. */
int ember_autocast_wants(int n, const ember_tensor *const *t);
int ember_autocast_operands(int n, const ember_tensor *const *in, ember_tensor **out);
/* For the products whose kernels compute in float32 (conv2d, attention):
   out[i] = in[i] rounded to the autocast dtype and widened back to float32
   (recorded: the gradient is rounded on its way back, as through a
   bfloat16 operand), and autocast paused so that the caller's float32
   call does not come back here; the caller then calls
   ember_autocast_resume(dt) with the dtype it had (also after a failure
   of its call; on -1 from here nothing is held or paused). */
int ember_autocast_round(int n, const ember_tensor *const *in, ember_tensor **out);
void ember_autocast_resume(int dt);

/* A fresh result whose kernel returned rc: itself, or NULL (released) when
   the kernel failed (a GPU launch error, bad data), its message set. */
static inline ember_tensor *ember_kernel_result(ember_tensor *out, int rc) {
  if (out && rc < 0) {
    ember_tensor_release(out);
    return NULL;
  }
  return out;
}

/* Every in-place write to t's data calls this (autograd's check that a
   tensor saved for backward was not modified). */
static inline void ember_bump_version(ember_tensor *t) { t->storage->version++; }

/* Files mapped into memory (mapping.c): ember_load_safetensors_ex with
   EMBER_LOAD_MMAP.  A mapping starts with one reference, its opener's. */
typedef struct ember_mapping ember_mapping;
/* The first len bytes of fd, mapped MAP_PRIVATE (copy-on-write) and
   protected against the file shrinking; NULL with a message naming path. */
ember_mapping *ember_mapping_open(int fd, size_t len, const char *path);
void *ember_mapping_data(const ember_mapping *m);
void ember_mapping_retain(ember_mapping *m);
void ember_mapping_release(ember_mapping *m);      /* NULL is fine */
/* Did a SIGBUS replace the mapping's pages with zeros? */
int ember_mapping_lost(const ember_mapping *m);
const char *ember_mapping_path(const ember_mapping *m);
/* A contiguous CPU tensor whose data is the mapping's bytes from offset
   (storage.c, "Mapped storage"); it holds a reference to m. */
ember_tensor *ember_tensor_mapped(ember_mapping *m, size_t offset,
                                  ember_dtype dt, int ndim,
                                  const int64_t *shape);

#endif
