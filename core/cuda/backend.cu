/*
** backend.cu -- the CUDA plugin: its entry point and its tables (the
** kernels of core/backend.h and the device functions of core/device.h).
** The kernels live one concern per file; the caching allocator in
** allocator.cu, the data-error flag, cuBLAS and the device functions in
** runtime.cu, copy/fill/arange in copy.cu.
**
** Contract (core/device.h): the core dlopens libember_cuda.so and calls
** ember_device_plugin_init with an ember_core_api; we answer with our
** ember_device_plugin (device functions and the kernel table of
** core/backend.h), or NULL and the reason when there is no usable device.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#include "cuda_internal.h"

const ember_core_api *ember_cuda_api;
int ember_cuda_sync_launches;   /* EMBER_CUDA_SYNC / CUDA_LAUNCH_BLOCKING */

/* {======================================================================
** Every entry on the process's device, and EMBER_CUDA_SYNC
** ======================================================================= */

/* cudaSetDevice is per host thread: a thread that never called it works
   on device 0, whatever the process chose (core/device.c picks the device
   once, from EMBER_CUDA_DEVICE or the MPI local rank, and hands it to
   ember_cuda_select_device on the thread that loaded the plugin).  So
   every entry of the plugin first puts its thread on the process's device.
   The thread remembers the device it is on, so the common case is one
   atomic load and one compare; cudaSetDevice runs once per thread (and
   again after ember.cuda.set_device).  The core selects a device before it
   publishes the plugin (inside its pthread_once), so no thread can arrive
   before one is chosen; should one, it gets an error, not device 0. */
static thread_local int cu_thread_device = -1;

static int cu_use_device(void) {
  int d = ember_cuda_device();
  if (__builtin_expect(d == cu_thread_device && d >= 0, 1)) return 0;
  if (d < 0)
    return cu_error("cuda: no device has been selected yet (the core selects the "
                    "process's device when it loads the plugin)");
  cudaError_t e = cudaSetDevice(d);
  if (e != cudaSuccess)
    return cu_error("cuda: %s (cudaSetDevice(%d) on a new host thread)",
                    cudaGetErrorString(e), d);
  cu_thread_device = d;
  return 0;
}

/* EMBER_CUDA_SYNC=1: after an entry succeeds, wait for the device, so a
   fault in what it queued (its kernels, or cuBLAS's inside matmul and
   conv, which CU_LAUNCH_CHECK does not see) is reported by that op, and
   so is a data error it found (a bad index), which is otherwise deferred
   to the next sync. */
static int cu_sync_after(const char *name) {
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess)
    return cu_error("cuda: %s: %s (found by the synchronisation after the op, "
                    "EMBER_CUDA_SYNC=1)", name, cudaGetErrorString(e));
  return ember_cuda_deferred_error();
}

/* The entry F of the tables, guarded: cu_guard<F>::call has F's signature
   (a table slot takes it as is), puts the thread on the process's device,
   calls F and, in sync mode, synchronises after it.  `name` is the slot's
   (CU_SLOT sets it) for the sync-mode message.  void entries (free,
   empty_cache) run even when the device cannot be set: freeing must not
   leak, and there is no way to report it. */
template <auto F> struct cu_guard;
template <typename R, typename... A, R (*F)(A...)>
struct cu_guard<F> {
  static inline const char *name = "?";
  static R call(A... a) {
    int ok = cu_use_device() == 0;
    if constexpr (std::is_void_v<R>) {
      F(a...);
    } else if constexpr (std::is_pointer_v<R>) {
      if (!ok) return nullptr;
      return F(a...);      /* alloc: queues nothing */
    } else {
      if (!ok) return -1;
      R r = F(a...);
      if (r == 0 && ember_cuda_sync_launches && cu_sync_after(name) < 0) return -1;
      return r;
    }
  }
};

/* Is the variable set to something other than "" or "0"? */
static int cu_env_on(const char *var) {
  const char *v = getenv(var);
  return v && *v && strcmp(v, "0") != 0;
}

/* }====================================================================== */

/* {======================================================================
** The plugin
** ======================================================================= */

/*
** The kernel table, filled slot by slot by name (not positionally: several
** slots share a signature, index_select/gather and index_add/scatter_add,
** so a positional initialiser in the wrong order would compile and be
** wrong).  Every slot of backend.h is set.
*/
static ember_backend_i cu_table;
static ember_device_plugin cu_plugin;

/* Slot `s` of a table gets ember_cuda_<s>, guarded (cu_guard). */
#define CU_SLOT(t, s)                                                       \
  ((t)->s = cu_guard<ember_cuda_##s>::call, cu_guard<ember_cuda_##s>::name = #s)

static void cu_fill_tables(void) {
  ember_backend_i *t = &cu_table;
  memset(t, 0, sizeof *t);
  t->name = "cuda";
  CU_SLOT(t, alloc);
  CU_SLOT(t, free);
  CU_SLOT(t, copy);
  CU_SLOT(t, fill);
  CU_SLOT(t, arange);
  CU_SLOT(t, unary);
  CU_SLOT(t, binary);
  CU_SLOT(t, compare);
  CU_SLOT(t, where);
  CU_SLOT(t, reduce);
  CU_SLOT(t, softmax);
  CU_SLOT(t, softmax_backward);
  CU_SLOT(t, layer_norm);
  CU_SLOT(t, layer_norm_backward);
  CU_SLOT(t, lstm_cell);
  CU_SLOT(t, lstm_cell_backward);
  CU_SLOT(t, gru_cell);
  CU_SLOT(t, gru_cell_backward);
  CU_SLOT(t, cross_entropy);
  CU_SLOT(t, cross_entropy_backward);
  CU_SLOT(t, scan);
  CU_SLOT(t, attention);
  CU_SLOT(t, attention_backward);
  CU_SLOT(t, sort);
  CU_SLOT(t, matmul);
  CU_SLOT(t, index_select);
  CU_SLOT(t, gather);
  CU_SLOT(t, random);
  CU_SLOT(t, multinomial);
  CU_SLOT(t, unary_backward);
  CU_SLOT(t, index_add);
  CU_SLOT(t, index_copy);
  CU_SLOT(t, scatter_add);
  CU_SLOT(t, sgd_step);
  CU_SLOT(t, adam_step);
  CU_SLOT(t, rmsprop_step);
  CU_SLOT(t, adagrad_step);
  CU_SLOT(t, conv2d);
  CU_SLOT(t, conv2d_backward);
  CU_SLOT(t, max_pool2d);
  CU_SLOT(t, max_pool2d_backward);
  CU_SLOT(t, avg_pool2d);
  CU_SLOT(t, avg_pool2d_backward);
  CU_SLOT(t, check_index);
  CU_SLOT(t, scatter);
  CU_SLOT(t, nonzero);

  /* Device functions: those that touch the device are guarded too;
     device_count, set_device (it sets the device itself), get_device,
     stats (host counters) and the TF32 switch need no device. */
  ember_device_plugin *p = &cu_plugin;
  memset(p, 0, sizeof *p);
  p->abi = EMBER_PLUGIN_ABI;
  p->backend = &cu_table;
  p->device_count = ember_cuda_device_count;
  CU_SLOT(p, to_host);
  CU_SLOT(p, from_host);
  CU_SLOT(p, synchronize);
  p->set_device = ember_cuda_select_device;
  p->get_device = ember_cuda_device;
  p->stats = ember_cuda_memory_stats;
  CU_SLOT(p, empty_cache);
  p->set_allow_tf32 = ember_cuda_set_allow_tf32;
  p->get_allow_tf32 = ember_cuda_get_allow_tf32;
}

extern "C" __attribute__((visibility("default")))
const ember_device_plugin *ember_device_plugin_init(const ember_core_api *api,
                                                    char *why, size_t why_len) {
  if (why && why_len) why[0] = '\0';
  if (!api || api->abi != EMBER_PLUGIN_ABI) {
    if (why && why_len)
      snprintf(why, why_len, "the CUDA plugin speaks ABI %d, the core %d",
               EMBER_PLUGIN_ABI, api ? api->abi : -1);
    return NULL;
  }
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why && why_len)
      snprintf(why, why_len, "no CUDA device (cudaGetDeviceCount: %s)",
               e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    cudaGetLastError();
    return NULL;
  }
  ember_cuda_api = api;
  /* read once: CU_LAUNCH_CHECK and cu_guard test the flag on every op */
  ember_cuda_sync_launches = cu_env_on("EMBER_CUDA_SYNC") || cu_env_on("CUDA_LAUNCH_BLOCKING");
  cu_fill_tables();
  return &cu_plugin;
}

/* }====================================================================== */
