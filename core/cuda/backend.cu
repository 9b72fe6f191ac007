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
#include <string.h>

#include "cuda_internal.h"

const ember_core_api *ember_cuda_api;

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

static void cu_fill_tables(void) {
  ember_backend_i *t = &cu_table;
  memset(t, 0, sizeof *t);
  t->name = "cuda";
  t->alloc = ember_cuda_alloc;
  t->free = ember_cuda_free;
  t->copy = ember_cuda_copy;
  t->fill = ember_cuda_fill;
  t->arange = ember_cuda_arange;
  t->unary = ember_cuda_unary;
  t->binary = ember_cuda_binary;
  t->compare = ember_cuda_compare;
  t->where = ember_cuda_where;
  t->reduce = ember_cuda_reduce;
  t->softmax = ember_cuda_softmax;
  t->matmul = ember_cuda_matmul;
  t->index_select = ember_cuda_index_select;
  t->gather = ember_cuda_gather;
  t->random = ember_cuda_random;
  t->unary_backward = ember_cuda_unary_backward;
  t->index_add = ember_cuda_index_add;
  t->scatter_add = ember_cuda_scatter_add;
  t->sgd_step = ember_cuda_sgd_step;
  t->adam_step = ember_cuda_adam_step;
  t->rmsprop_step = ember_cuda_rmsprop_step;
  t->adagrad_step = ember_cuda_adagrad_step;
  t->conv2d = ember_cuda_conv2d;
  t->conv2d_backward = ember_cuda_conv2d_backward;
  t->max_pool2d = ember_cuda_max_pool2d;
  t->max_pool2d_backward = ember_cuda_max_pool2d_backward;
  t->avg_pool2d = ember_cuda_avg_pool2d;
  t->avg_pool2d_backward = ember_cuda_avg_pool2d_backward;
  t->check_index = ember_cuda_check_index;

  ember_device_plugin *p = &cu_plugin;
  memset(p, 0, sizeof *p);
  p->abi = EMBER_PLUGIN_ABI;
  p->backend = &cu_table;
  p->device_count = ember_cuda_device_count;
  p->to_host = ember_cuda_to_host;
  p->from_host = ember_cuda_from_host;
  p->synchronize = ember_cuda_synchronize;
  p->set_device = ember_cuda_select_device;
  p->get_device = ember_cuda_device;
  p->stats = ember_cuda_memory_stats;
  p->empty_cache = ember_cuda_empty_cache;
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
  cu_fill_tables();
  return &cu_plugin;
}

/* }====================================================================== */
