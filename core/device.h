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

#define EMBER_PLUGIN_ABI 1

/* What the core gives a plugin. */
typedef struct ember_core_api {
  int abi;                                     /* EMBER_PLUGIN_ABI */
  int (*set_error)(const char *fmt, ...);      /* ember_set_error */
} ember_core_api;

/* What a plugin gives the core.  Functions returning int return 0, or -1
   after api->set_error. */
typedef struct ember_device_plugin {
  int abi;                                     /* EMBER_PLUGIN_ABI */
  const ember_backend_i *backend;
  int (*device_count)(void);
  /* n bytes between host memory and device memory (blocking) */
  int (*to_host)(void *dst, const void *src, size_t n);
  int (*from_host)(void *dst, const void *src, size_t n);
  int (*synchronize)(void);
  size_t (*memory_allocated)(void);            /* bytes in live tensors */
  size_t (*memory_reserved)(void);             /* bytes held by the cache */
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
