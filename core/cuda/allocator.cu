/*
** allocator.cu -- the CUDA backend's caching allocator: device memory in
** size classes, kept for reuse (ember_cuda_alloc / ember_cuda_free, also
** the table's alloc/free slots), and the counts behind
** ember.cuda.memory_allocated / memory_reserved / empty_cache.
**
** Everything runs on the default stream, so freeing a block back to the
** cache and handing it to the next op is ordered after every kernel that
** used it: no synchronisation is needed on the per-op path.
*/
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "cuda_internal.h"

/* {======================================================================
** The caching allocator
** ======================================================================= */

/*
** Device memory comes in size classes, so that a freed block serves the
** next request of any size in its class:
**   - up to 1 MiB: multiples of 512 bytes;
**   - above: multiples of 1/8 of the largest power of two not above the
**     request (at most 12.5% slack, and few classes per octave).
** Freed blocks wait in a free list per class; cudaMalloc runs only when
** the class's list is empty, cudaFree only in empty_cache (or to make room
** when cudaMalloc fails).  The maps are made once and never destroyed, so
** nothing runs at process exit against a CUDA runtime already torn down.
*/
#define CU_SMALL_LIMIT ((size_t)1 << 20)
#define CU_SMALL_STEP ((size_t)512)

/* One lock over the cache, its maps and counters: host threads with a
   lua_State each may allocate at once (docs/c-api.md, "Thread safety").
   Reuse stays safe across threads: all work runs on the legacy default
   stream, which serialises every thread's kernels. */
static std::mutex cu_mem_lock;
static std::unordered_map<size_t, std::vector<void *>> *cu_cache;  /* class -> free blocks */
static std::unordered_map<void *, size_t> *cu_live;                 /* block -> class */
static size_t cu_bytes_allocated;   /* in live blocks */
static size_t cu_bytes_cached;      /* in free blocks of the cache */
static unsigned long long cu_mallocs, cu_frees;   /* cudaMalloc / cudaFree made */

/* The size class of a request of n bytes (n >= 1); 0 on overflow. */
static size_t cu_size_class(size_t n) {
  size_t step = CU_SMALL_STEP;
  if (n > CU_SMALL_LIMIT) {
    size_t p = CU_SMALL_LIMIT;
    while (p <= n / 2) p *= 2;          /* largest power of two <= n */
    step = p / 8;
  }
  if (n > SIZE_MAX - (step - 1)) return 0;
  return (n + step - 1) / step * step;
}

/* Give every cached block back to the driver. */
static void cu_release_cached(void) {
  if (!cu_cache) return;
  for (auto &kv : *cu_cache)
    for (void *p : kv.second) {
      cudaFree(p);
      cu_frees++;
    }
  cu_cache->clear();
  cu_bytes_cached = 0;
  cudaGetLastError();    /* a failed cudaFree must not blame a later launch */
}

void *ember_cuda_alloc(size_t nbytes) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  size_t cls = cu_size_class(nbytes ? nbytes : 1);
  if (cls == 0) {
    cu_error("cuda: out of memory allocating %zu bytes (%zu allocated, %zu "
             "reserved)", nbytes, cu_bytes_allocated,
             cu_bytes_allocated + cu_bytes_cached);
    return NULL;
  }
  try {
    if (!cu_cache) {
      cu_cache = new std::unordered_map<size_t, std::vector<void *>>();
      cu_live = new std::unordered_map<void *, size_t>();
    }
    void *p = NULL;
    auto it = cu_cache->find(cls);
    if (it != cu_cache->end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cu_bytes_cached -= cls;
    } else {
      cu_mallocs++;
      if (cudaMalloc(&p, cls) != cudaSuccess) {
        /* out of memory: hand the cache back and try once more */
        cudaGetLastError();
        cu_release_cached();
        p = NULL;
        cu_mallocs++;
        if (cudaMalloc(&p, cls) != cudaSuccess) {
          cudaGetLastError();
          cu_error("cuda: out of memory allocating %zu bytes (%zu allocated, "
                   "%zu reserved)", nbytes, cu_bytes_allocated,
                   cu_bytes_allocated + cu_bytes_cached);
          return NULL;
        }
      }
    }
    try {
      (*cu_live)[p] = cls;
    } catch (...) {
      /* cannot track it: put it back where it came from */
      cudaFree(p);
      cudaGetLastError();
      throw;
    }
    cu_bytes_allocated += cls;
    return p;
  } catch (...) {
    cu_error("cuda: out of host memory in the device allocator");
    return NULL;
  }
}

void ember_cuda_free(void *ptr) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  if (!ptr || !cu_live) return;
  auto it = cu_live->find(ptr);
  if (it == cu_live->end()) return;        /* not ours: leave it alone */
  size_t cls = it->second;
  cu_live->erase(it);
  cu_bytes_allocated -= cls;
  try {
    (*cu_cache)[cls].push_back(ptr);
    cu_bytes_cached += cls;
  } catch (...) {
    cudaFree(ptr);                         /* no room to remember it */
    cudaGetLastError();
  }
}

size_t ember_cuda_memory_allocated(void) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  return cu_bytes_allocated;
}
size_t ember_cuda_memory_reserved(void) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  return cu_bytes_allocated + cu_bytes_cached;
}
void ember_cuda_memory_stats(ember_device_stats *out) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  out->allocations = cu_mallocs;
  out->releases = cu_frees;
  out->allocated_bytes = cu_bytes_allocated;
  out->cached_bytes = cu_bytes_cached;
}
void ember_cuda_empty_cache(void) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  cu_release_cached();
}

/* }====================================================================== */
