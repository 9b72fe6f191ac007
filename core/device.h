/*
** device.h -- the interface between the core and a device plugin.
**
** A device backend other than the CPU lives in its own shared object (the
** CUDA one: libember_cuda.so, built from core/cuda/ by nvcc), loaded by
** core/device.c on first use.  The plugin links against none of the core's
** symbols (the core may itself be a module loaded with RTLD_LOCAL), so the
** core hands it the few functions it needs in an ember_core_api, and the
** plugin answers with an ember_device_plugin: its kernel table and its
** device functions.
*/
#ifndef EMBER_DEVICE_H
#define EMBER_DEVICE_H

#include <stddef.h>

#include "backend.h"

#define EMBER_PLUGIN_ABI 2

/* What the core gives a plugin. */
typedef struct ember_core_api {
  int abi;                                     /* EMBER_PLUGIN_ABI */
  int (*set_error)(const char *fmt, ...);      /* ember_set_error */
} ember_core_api;

/* A plugin's memory counts (ember_device_plugin.stats). */
typedef struct ember_device_stats {
  unsigned long long allocations;  /* device mallocs made (cudaMalloc) */
  unsigned long long releases;     /* device frees made (cudaFree) */
  size_t allocated_bytes;          /* in blocks handed out (live tensors) */
  size_t cached_bytes;             /* in free blocks kept for reuse */
} ember_device_stats;

/*
** What a plugin gives the core.  Functions returning int return 0, or -1
** after api->set_error.
**
** Kernels run asynchronously, in order, on one queue.  A data error a
** kernel finds on the device (an index out of range) is not reported by
** the call that queued it: it is recorded in a sticky error, and the next
** synchronising call (to_host, synchronize) fails with its message, which
** names the op that set it, and clears it.  Only to_host and synchronize
** wait for the queue; the core counts them (ember_cuda_stats).
*/
typedef struct ember_device_plugin {
  int abi;                                     /* EMBER_PLUGIN_ABI */
  const ember_backend_i *backend;
  int (*device_count)(void);
  /* The process's device (0-based): set before the first allocation, and
     again only while no device memory is allocated; every host thread
     uses it. */
  int (*set_device)(int n);
  int (*get_device)(void);
  /* n bytes from device memory to the host: waits for the queue, then
     reports a deferred error */
  int (*to_host)(void *dst, const void *src, size_t n);
  /* n bytes from the host to device memory: returns once src may be
     reused, without waiting for the queue (pinned staging) */
  int (*from_host)(void *dst, const void *src, size_t n);
  /* waits for the queue, then reports a deferred error */
  int (*synchronize)(void);
  void (*stats)(ember_device_stats *out);
  void (*empty_cache)(void);                   /* give cached blocks back */
  void (*set_allow_tf32)(int on);              /* matmul and conv in TF32 */
  int (*get_allow_tf32)(void);
} ember_device_plugin;

/* The plugin's one exported symbol: its table, or NULL with the reason
   (no driver, no device, ...) written to why. */
typedef const ember_device_plugin *(*ember_plugin_init_fn)(
    const ember_core_api *api, char *why, size_t why_len);
#define EMBER_PLUGIN_INIT "ember_device_plugin_init"

/* The loaded CUDA plugin, or NULL (core/device.c); loads it on first call. */
const ember_device_plugin *ember_cuda_plugin(void);

#endif
