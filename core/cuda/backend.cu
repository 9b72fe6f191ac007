/*
** backend.cu -- the CUDA plugin: its entry point, its kernel table, and the
** services every kernel file shares (the caching allocator, the data-error
** flag, the cuBLAS handle, Philox), plus the copy/fill/arange kernels.
**
** Contract (core/device.h): the core dlopens libember_cuda.so and calls
** ember_device_plugin_init with an ember_core_api; we answer with our
** ember_device_plugin (device functions and the kernel table of
** core/backend.h), or NULL and the reason when there is no usable device.
** Everything runs on the default stream, so freeing a block back to the
** cache and handing it to the next op is ordered after every kernel that
** used it: no synchronisation is needed on the per-op path.
*/
#include <stdio.h>
#include <string.h>

#include <mutex>
#include <new>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "cuda_internal.h"

const ember_core_api *ember_cu_api;

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
    for (void *p : kv.second) cudaFree(p);
  cu_cache->clear();
  cu_bytes_cached = 0;
  cudaGetLastError();    /* a failed cudaFree must not blame a later launch */
}

void *cu_alloc(size_t nbytes) {
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
      if (cudaMalloc(&p, cls) != cudaSuccess) {
        /* out of memory: hand the cache back and try once more */
        cudaGetLastError();
        cu_release_cached();
        p = NULL;
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

void cu_free(void *ptr) {
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

static size_t cu_memory_allocated(void) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  return cu_bytes_allocated;
}
static size_t cu_memory_reserved(void) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  return cu_bytes_allocated + cu_bytes_cached;
}
static void cu_empty_cache(void) {
  std::lock_guard<std::mutex> hold(cu_mem_lock);
  cu_release_cached();
}

/* The table's alloc/free slots. */
static void *cu_table_alloc(size_t nbytes) { return cu_alloc(nbytes); }
static void cu_table_free(void *ptr) { cu_free(ptr); }

/* }====================================================================== */

/* {======================================================================
** The data-error flag, cuBLAS, TF32, Philox
** ======================================================================= */

/* Two int64 on the device (code, detail), allocated once per host thread
   (a reset, the kernels and the read are one op's sequence, which another
   thread's op must not interleave), outside the cache's accounting, and
   kept until the process exits. */
static thread_local int64_t *cu_flag;

int64_t *cu_flag_reset(void) {
  if (!cu_flag) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, 2 * sizeof(int64_t));
    if (e != cudaSuccess) {
      cudaGetLastError();
      cu_error("cuda: %s (cudaMalloc of the error flag)", cudaGetErrorString(e));
      return NULL;
    }
    cu_flag = (int64_t *)p;
  }
  cudaError_t e = cudaMemsetAsync(cu_flag, 0, 2 * sizeof(int64_t), 0);
  if (e != cudaSuccess) {
    cu_error("cuda: %s (cudaMemsetAsync of the error flag)",
             cudaGetErrorString(e));
    return NULL;
  }
  return cu_flag;
}

/* Synchronises (cudaMemcpy waits for the kernels before it). */
int cu_flag_read(int64_t out[2]) {
  out[0] = out[1] = 0;
  if (!cu_flag) return cu_error("cuda: the error flag was read before a reset");
  CU_CHECK(cudaMemcpy(out, cu_flag, 2 * sizeof(int64_t), cudaMemcpyDeviceToHost));
  return 0;
}

/* A handle per host thread, as cuBLAS advises (each op sets its math
   mode on it), kept until the process exits. */
static thread_local cublasHandle_t cu_handle;
std::atomic<int> cu_allow_tf32{0};   /* process-wide, as the CPU side's */

cublasHandle_t cu_cublas(void) {
  if (!cu_handle) {
    cublasHandle_t h = NULL;
    cublasStatus_t st = cublasCreate(&h);
    if (st != CUBLAS_STATUS_SUCCESS) {
      cu_error("cublas: %s (cublasCreate)", cublasGetStatusString(st));
      return NULL;
    }
    st = cublasSetStream(h, 0);
    if (st != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(h);
      cu_error("cublas: %s (cublasSetStream)", cublasGetStatusString(st));
      return NULL;
    }
    cu_handle = h;
  }
  return cu_handle;
}

static void cu_set_allow_tf32(int on) { cu_allow_tf32 = on != 0; }
static int cu_get_allow_tf32(void) { return cu_allow_tf32; }

/* Philox-4x32-10: the very arithmetic of ember_philox (core/cpu/random.c),
   64-bit products on host and device alike. */

/* }====================================================================== */

/* {======================================================================
** Conversions, as the CPU's copy (core/cpu/elementwise.c) does them
** ======================================================================= */

/* Float to integer saturates, NaN -> 0 (the CPU's sat_*). */
__device__ static inline int64_t cu_sat_i64(double x) {
  if (x != x) return 0;
  if (x >= 9223372036854775807.0) return INT64_MAX;
  if (x <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)x;
}
__device__ static inline int32_t cu_sat_i32(double x) {
  if (x != x) return 0;
  if (x >= 2147483647.0) return INT32_MAX;
  if (x <= -2147483648.0) return INT32_MIN;
  return (int32_t)x;
}
__device__ static inline uint8_t cu_sat_u8(double x) {
  if (x != x || x <= 0) return 0;
  if (x >= 255.0) return 255;
  return (uint8_t)x;
}

/* The C type of a dtype (bool is a byte holding 0 or 1). */
template <int DT> struct cu_ctype { typedef uint8_t T; };
template <> struct cu_ctype<EMBER_FLOAT32> { typedef float T; };
template <> struct cu_ctype<EMBER_FLOAT64> { typedef double T; };
template <> struct cu_ctype<EMBER_INT32> { typedef int32_t T; };
template <> struct cu_ctype<EMBER_INT64> { typedef int64_t T; };

/* x (of C type TS) converted to dtype DT: floats by C's conversion;
   integers from floats saturating, from integers keeping the low bits;
   bool as x != 0 (NaN is true). */
template <int DT, typename TS>
__device__ static inline typename cu_ctype<DT>::T cu_convert(TS x) {
  constexpr bool from_float = std::is_floating_point<TS>::value;
  if constexpr (DT == EMBER_FLOAT32) {
    return (float)x;
  } else if constexpr (DT == EMBER_FLOAT64) {
    return (double)x;
  } else if constexpr (DT == EMBER_BOOL) {
    return (uint8_t)(x != 0);
  } else if constexpr (from_float) {
    if constexpr (DT == EMBER_INT32) return cu_sat_i32((double)x);
    else if constexpr (DT == EMBER_INT64) return cu_sat_i64((double)x);
    else return cu_sat_u8((double)x);
  } else {
    uint64_t bits = (uint64_t)(int64_t)x;
    if constexpr (DT == EMBER_INT32) return (int32_t)(uint32_t)bits;
    else if constexpr (DT == EMBER_INT64) return (int64_t)bits;
    else return (uint8_t)bits;
  }
}

/* }====================================================================== */

/* {======================================================================
** copy, fill, arange
** ======================================================================= */

/*
** One thread per element (grid-stride).  A contiguous operand's element i
** is at p[i]; any other is found with cu_offset over its layout (broadcast
** dims have stride 0).  dst and src have the same shape.
*/
template <int DDT, typename TS>
__global__ void k_copy(typename cu_ctype<DDT>::T *d, cu_layout dl, bool dc,
                       const TS *s, cu_layout sl, bool sc, int64_t n) {
  CU_FOR(i, n) {
    TS x = s[sc ? i : cu_offset(sl, i)];
    d[dc ? i : cu_offset(dl, i)] = cu_convert<DDT, TS>(x);
  }
}

/* Same dtype: move the bits (an unsigned type of the element's size, so
   NaN payloads survive). */
template <typename T>
__global__ void k_copy_bits(T *d, cu_layout dl, bool dc, const T *s,
                            cu_layout sl, bool sc, int64_t n) {
  CU_FOR(i, n) d[dc ? i : cu_offset(dl, i)] = s[sc ? i : cu_offset(sl, i)];
}

template <int DDT>
static int copy_to(ember_tensor *dst, const ember_tensor *src, int64_t n) {
  typedef typename cu_ctype<DDT>::T TD;
  TD *d = (TD *)cu_data(dst);
  cu_layout dl = cu_layout_of(dst), sl = cu_layout_of(src);
  bool dc = cu_is_contiguous(dst), sc = cu_is_contiguous(src);
  CU_DISPATCH(src->dtype, TS,
              (k_copy<DDT, TS><<<cu_blocks(n), CU_THREADS>>>(
                  d, dl, dc, (const TS *)cu_data(src), sl, sc, n)));
  CU_LAUNCH_CHECK("copy");
  return 0;
}

int ember_cu_copy(ember_tensor *dst, const ember_tensor *src) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  bool dc = cu_is_contiguous(dst), sc = cu_is_contiguous(src);
  if (dst->dtype == src->dtype) {
    size_t es = cu_elsize(dst->dtype);
    void *d = cu_data(dst);
    const void *s = cu_data(src);
    if (dc && sc) {
      if (d != s)
        CU_CHECK(cudaMemcpyAsync(d, s, (size_t)n * es,
                                 cudaMemcpyDeviceToDevice, 0));
      return 0;
    }
    cu_layout dl = cu_layout_of(dst), sl = cu_layout_of(src);
    switch (es) {
      case 1:
        k_copy_bits<uint8_t><<<cu_blocks(n), CU_THREADS>>>(
            (uint8_t *)d, dl, dc, (const uint8_t *)s, sl, sc, n);
        break;
      case 4:
        k_copy_bits<uint32_t><<<cu_blocks(n), CU_THREADS>>>(
            (uint32_t *)d, dl, dc, (const uint32_t *)s, sl, sc, n);
        break;
      default:
        k_copy_bits<uint64_t><<<cu_blocks(n), CU_THREADS>>>(
            (uint64_t *)d, dl, dc, (const uint64_t *)s, sl, sc, n);
        break;
    }
    CU_LAUNCH_CHECK("copy");
    return 0;
  }
  switch (dst->dtype) {
    case EMBER_FLOAT32: return copy_to<EMBER_FLOAT32>(dst, src, n);
    case EMBER_FLOAT64: return copy_to<EMBER_FLOAT64>(dst, src, n);
    case EMBER_INT32: return copy_to<EMBER_INT32>(dst, src, n);
    case EMBER_INT64: return copy_to<EMBER_INT64>(dst, src, n);
    case EMBER_UINT8: return copy_to<EMBER_UINT8>(dst, src, n);
    default: return copy_to<EMBER_BOOL>(dst, src, n);
  }
}

template <typename T>
__global__ void k_fill(T *d, cu_layout dl, bool dc, T v, int64_t n) {
  CU_FOR(i, n) d[dc ? i : cu_offset(dl, i)] = v;
}

/* The value as the CPU's fill_row takes it: floats from `value`, integers
   from `ivalue` (keeping the low bits), bool from `value != 0`. */
int ember_cu_fill(ember_tensor *dst, double value, int64_t ivalue) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  cu_layout dl = cu_layout_of(dst);
  bool dc = cu_is_contiguous(dst);
  unsigned nb = cu_blocks(n);
  switch (dst->dtype) {
    case EMBER_FLOAT32:
      k_fill<float><<<nb, CU_THREADS>>>((float *)cu_data(dst), dl, dc,
                                        (float)value, n);
      break;
    case EMBER_FLOAT64:
      k_fill<double><<<nb, CU_THREADS>>>((double *)cu_data(dst), dl, dc,
                                         value, n);
      break;
    case EMBER_INT32:
      k_fill<int32_t><<<nb, CU_THREADS>>>((int32_t *)cu_data(dst), dl, dc,
                                          (int32_t)(uint32_t)(uint64_t)ivalue, n);
      break;
    case EMBER_INT64:
      k_fill<int64_t><<<nb, CU_THREADS>>>((int64_t *)cu_data(dst), dl, dc,
                                          ivalue, n);
      break;
    case EMBER_UINT8:
      k_fill<uint8_t><<<nb, CU_THREADS>>>((uint8_t *)cu_data(dst), dl, dc,
                                          (uint8_t)(uint64_t)ivalue, n);
      break;
    default:
      k_fill<uint8_t><<<nb, CU_THREADS>>>((uint8_t *)cu_data(dst), dl, dc,
                                          (uint8_t)(value != 0), n);
      break;
  }
  CU_LAUNCH_CHECK("fill");
  return 0;
}

/* dst[i] = start + i * step in double, then converted as the CPU's arange
   does.  __dmul_rn/__dadd_rn keep the multiply and the add apart (no fused
   multiply-add), so the doubles are the CPU's to the bit. */
template <int DT>
__global__ void k_arange(typename cu_ctype<DT>::T *d, double start,
                         double step, int64_t n) {
  CU_FOR(i, n) {
    double v = __dadd_rn(start, __dmul_rn((double)i, step));
    if constexpr (DT == EMBER_FLOAT32) d[i] = (float)v;
    else if constexpr (DT == EMBER_FLOAT64) d[i] = v;
    else if constexpr (DT == EMBER_INT32) d[i] = cu_sat_i32(v);
    else if constexpr (DT == EMBER_INT64) d[i] = cu_sat_i64(v);
    else if constexpr (DT == EMBER_UINT8) d[i] = cu_sat_u8(v);
    else d[i] = (uint8_t)(v != 0);
  }
}

/* dst is contiguous (the core creates it). */
int ember_cu_arange(ember_tensor *dst, double start, double step) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  unsigned nb = cu_blocks(n);
  switch (dst->dtype) {
    case EMBER_FLOAT32:
      k_arange<EMBER_FLOAT32><<<nb, CU_THREADS>>>((float *)cu_data(dst), start, step, n);
      break;
    case EMBER_FLOAT64:
      k_arange<EMBER_FLOAT64><<<nb, CU_THREADS>>>((double *)cu_data(dst), start, step, n);
      break;
    case EMBER_INT32:
      k_arange<EMBER_INT32><<<nb, CU_THREADS>>>((int32_t *)cu_data(dst), start, step, n);
      break;
    case EMBER_INT64:
      k_arange<EMBER_INT64><<<nb, CU_THREADS>>>((int64_t *)cu_data(dst), start, step, n);
      break;
    case EMBER_UINT8:
      k_arange<EMBER_UINT8><<<nb, CU_THREADS>>>((uint8_t *)cu_data(dst), start, step, n);
      break;
    default:
      k_arange<EMBER_BOOL><<<nb, CU_THREADS>>>((uint8_t *)cu_data(dst), start, step, n);
      break;
  }
  CU_LAUNCH_CHECK("arange");
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** The plugin
** ======================================================================= */

static int cu_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

/* Blocking copies; an error left by an earlier asynchronous kernel
   surfaces here too, with its own message. */
static int cu_to_host(void *dst, const void *src, size_t n) {
  if (n == 0) return 0;
  CU_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost));
  return 0;
}

static int cu_from_host(void *dst, const void *src, size_t n) {
  if (n == 0) return 0;
  CU_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
  return 0;
}

static int cu_synchronize(void) {
  CU_CHECK(cudaDeviceSynchronize());
  return 0;
}

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
  t->alloc = cu_table_alloc;
  t->free = cu_table_free;
  t->copy = ember_cu_copy;
  t->fill = ember_cu_fill;
  t->arange = ember_cu_arange;
  t->unary = ember_cu_unary;
  t->binary = ember_cu_binary;
  t->compare = ember_cu_compare;
  t->where = ember_cu_where;
  t->reduce = ember_cu_reduce;
  t->softmax = ember_cu_softmax;
  t->matmul = ember_cu_matmul;
  t->index_select = ember_cu_index_select;
  t->gather = ember_cu_gather;
  t->random = ember_cu_random;
  t->unary_backward = ember_cu_unary_backward;
  t->index_add = ember_cu_index_add;
  t->scatter_add = ember_cu_scatter_add;
  t->sgd_step = ember_cu_sgd_step;
  t->adam_step = ember_cu_adam_step;
  t->rmsprop_step = ember_cu_rmsprop_step;
  t->adagrad_step = ember_cu_adagrad_step;
  t->conv2d = ember_cu_conv2d;
  t->conv2d_backward = ember_cu_conv2d_backward;
  t->max_pool2d = ember_cu_max_pool2d;
  t->max_pool2d_backward = ember_cu_max_pool2d_backward;
  t->avg_pool2d = ember_cu_avg_pool2d;
  t->avg_pool2d_backward = ember_cu_avg_pool2d_backward;

  ember_device_plugin *p = &cu_plugin;
  memset(p, 0, sizeof *p);
  p->abi = EMBER_PLUGIN_ABI;
  p->backend = &cu_table;
  p->device_count = cu_device_count;
  p->to_host = cu_to_host;
  p->from_host = cu_from_host;
  p->synchronize = cu_synchronize;
  p->memory_allocated = cu_memory_allocated;
  p->memory_reserved = cu_memory_reserved;
  p->empty_cache = cu_empty_cache;
  p->set_allow_tf32 = cu_set_allow_tf32;
  p->get_allow_tf32 = cu_get_allow_tf32;
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
  e = cudaSetDevice(0);
  if (e != cudaSuccess) {
    if (why && why_len)
      snprintf(why, why_len, "cannot use CUDA device 0 (cudaSetDevice: %s)",
               cudaGetErrorString(e));
    cudaGetLastError();
    return NULL;
  }
  /* A build whose kernels the device cannot run (no code for its
     architecture) is reported now, rather than on every launch. */
  cudaFuncAttributes attr;
  e = cudaFuncGetAttributes(&attr, k_fill<float>);
  if (e != cudaSuccess) {
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
    if (why && why_len)
      snprintf(why, why_len, "the CUDA plugin cannot run on device 0 "
               "(compute capability %d.%d: %s); rebuild it with CUDA_ARCH set "
               "for this GPU", major, minor, cudaGetErrorString(e));
    cudaGetLastError();
    return NULL;
  }
  ember_cu_api = api;
  cu_fill_tables();
  return &cu_plugin;
}

/* }====================================================================== */
