/*
** allocator.cu -- the CUDA backend's device memory: the caching allocator
** of core/cuda/devcache.c over cudaMalloc / cudaFree (ember_cuda_alloc /
** ember_cuda_free, also the table's alloc/free slots), and the counts
** behind ember.cuda.stats / memory_allocated / memory_reserved /
** empty_cache.
**
** Everything runs on the default stream, so freeing a block back to the
** cache and handing it to the next op is ordered after every kernel that
** used it: no event and no synchronisation is needed on the per-op path.
*/
#include <cstring>

#include "cuda_internal.h"
#include "devcache.h"

/* {======================================================================
** The raw allocator: cudaMalloc / cudaFree
** ======================================================================= */

/* cudaMalloc, telling out-of-memory (which the cache answers by giving
   its free segments back and trying again) from every other failure.
   Those are mostly a sticky error that a faulting kernel left on the
   context: no amount of freeing helps, and calling it "out of memory"
   would send the user looking in the wrong place. */
static int cu_raw_malloc(void *ctx, void **p, size_t n) {
  (void)ctx;
  cudaError_t e = cudaMalloc(p, n);
  if (e == cudaSuccess) return 0;
  cudaGetLastError();          /* out of memory is not sticky: clear it */
  if (e == cudaErrorMemoryAllocation) return EMBER_DEVCACHE_OOM;
  return cu_error("cuda: %s (cudaMalloc of %zu bytes); if an earlier kernel "
                  "faulted, the device stays in this error until the process "
                  "exits: run with EMBER_CUDA_SYNC=1 to name the op that "
                  "faulted", cudaGetErrorString(e), n);
}

/* cudaFree waits for the device first, so a cached block that a queued
   kernel still uses is not given back under it. */
static void cu_raw_free(void *ctx, void *p, size_t n) {
  (void)ctx;
  (void)n;
  cudaFree(p);
  cudaGetLastError();    /* a failed cudaFree must not blame a later launch */
}

static int cu_raw_info(void *ctx, size_t *free_bytes, size_t *total_bytes) {
  (void)ctx;
  if (cudaMemGetInfo(free_bytes, total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return 0;
}

/* The one cache of the process, made on first use (after the plugin's
   init has set ember_cuda_api) and never destroyed, so nothing runs at
   process exit against a CUDA runtime already torn down.  NULL only when
   the host had no memory for it. */
static ember_devcache *cu_cache(void) {
  static ember_devcache *c = [] {
    ember_devcache_raw raw;
    std::memset(&raw, 0, sizeof raw);
    raw.malloc = cu_raw_malloc;
    raw.free = cu_raw_free;
    raw.mem_info = cu_raw_info;
    raw.set_error = ember_cuda_api->set_error;
    raw.name = "cuda";
    return ember_devcache_new(&raw);
  }();
  return c;
}

/* }====================================================================== */

/* {======================================================================
** The backend's allocator and counts
** ======================================================================= */

void *ember_cuda_alloc(size_t nbytes) {
  ember_devcache *c = cu_cache();
  if (!c) {
    cu_error("cuda: out of host memory in the device allocator");
    return NULL;
  }
  return ember_devcache_alloc(c, nbytes);
}

/* Memory the backend keeps for itself (cuBLAS's workspace): from the
   cache, but not counted as tensors' memory_allocated.  It stays on its
   device, so once there is any, ember_cuda_select_device refuses another
   device (ember_cuda_memory_segments). */
void *ember_cuda_alloc_workspace(size_t nbytes) {
  ember_devcache *c = cu_cache();
  if (!c) {
    cu_error("cuda: out of host memory in the device allocator");
    return NULL;
  }
  return ember_devcache_alloc_internal(c, nbytes);
}

void ember_cuda_free(void *ptr) {
  ember_devcache *c = cu_cache();
  if (c) ember_devcache_free(c, ptr);
}

static ember_devcache_counts cu_counts(void) {
  ember_devcache_counts k;
  std::memset(&k, 0, sizeof k);
  ember_devcache *c = cu_cache();
  if (c) ember_devcache_stats(c, &k);
  return k;
}

size_t ember_cuda_memory_allocated(void) { return cu_counts().allocated_bytes; }
size_t ember_cuda_memory_reserved(void) {
  ember_devcache_counts k = cu_counts();
  return k.allocated_bytes + k.cached_bytes;
}
void ember_cuda_memory_stats(ember_device_stats *out) {
  ember_devcache_counts k = cu_counts();
  out->allocations = k.allocations;
  out->releases = k.releases;
  out->allocated_bytes = k.allocated_bytes;
  out->cached_bytes = k.cached_bytes;
}
size_t ember_cuda_memory_segments(void) { return cu_counts().segments; }
void ember_cuda_empty_cache(void) {
  ember_devcache *c = cu_cache();
  if (c) ember_devcache_empty(c);
}

/* }====================================================================== */
