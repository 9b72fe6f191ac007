/*
** cuda_internal.h -- internals of the CUDA backend (the .cu files of
** core/cuda).
**
** The backend is the CUDA twin of core/cpu: the same kernel table
** (backend.h), the same semantics slot by slot (read the CPU kernel of a
** slot for its exact rules: 1-based indices, NaN handling, integer
** division, ...).  Tensors reach a kernel with device pointers in
** storage->data and the same shape/strides/offset conventions as on the
** CPU: strides and offsets in elements, any strides (broadcast operands
** have stride 0), dtypes float32/float64/bfloat16/float16/int32/int64/uint8/
** bool (the halves only where a kernel takes them: see the dispatch).
**
** Rules for every kernel file:
**   - Never call a core function (ember_set_error, ember_numel, ...): the
**     plugin links against none of the core's symbols.  Use the helpers
**     below (cu_error, cu_numel, cu_data, ...).
**   - Check every CUDA call (CU_CHECK) and every launch (CU_LAUNCH_CHECK);
**     return -1 after cu_error on failure, 0 on success.
**   - Everything runs on the default stream; no cudaDeviceSynchronize on
**     the per-op path (copies to the host synchronise by themselves).
**   - Temporary device memory comes from ember_cuda_alloc /
**     ember_cuda_free (the caching allocator), never cudaMalloc / cudaFree.
**   - Data errors the CPU kernel reports (an index out of range) are
**     detected on the device and deferred (ember_cuda_defer_*): the next
**     to_host or synchronize reports them with the CPU kernel's message.
**     A kernel never reads or writes out of bounds for bad data: it skips
**     the bad element.
**   - Names: ember_cuda_ for what the files share (declared here), cu_ for
**     the static inline helpers of this header, k_ for kernels.
*/
#ifndef EMBER_CUDA_INTERNAL_H
#define EMBER_CUDA_INTERNAL_H

#include <atomic>

#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cublas_v2.h>
#include <stdint.h>
#include <stddef.h>

#include <initializer_list>
#include <type_traits>

extern "C" {
#include "../device.h"
}

#include "index_math.h"

/* {======================================================================
** Errors
** ======================================================================= */

extern const ember_core_api *ember_cuda_api;   /* set by the plugin's init */

#define cu_error(...) (ember_cuda_api->set_error(__VA_ARGS__))

#define CU_CHECK(call)                                                       \
  do {                                                                       \
    cudaError_t cu_err_ = (call);                                            \
    if (cu_err_ != cudaSuccess)                                              \
      return cu_error("cuda: %s (%s)", cudaGetErrorString(cu_err_), #call);  \
  } while (0)

/* After a launch: the launch's own error (a bad configuration, no code for
   this GPU); and with EMBER_CUDA_SYNC=1 (or CUDA_LAUNCH_BLOCKING=1), read
   once at plugin init into ember_cuda_sync_launches, wait for the kernel,
   so a fault it makes (an illegal address) is reported by this op rather
   than by whichever later call first synchronises.  Slow: for finding a
   faulting kernel, not for training.  The plugin's table entries (cu_guard
   in backend.cu) synchronise after each op too, which covers cuBLAS. */
extern int ember_cuda_sync_launches;

#define CU_LAUNCH_CHECK(what)                                                \
  do {                                                                       \
    cudaError_t cu_err_ = cudaGetLastError();                                \
    if (cu_err_ != cudaSuccess)                                              \
      return cu_error("cuda: %s: kernel launch failed: %s", (what),          \
                      cudaGetErrorString(cu_err_));                          \
    if (ember_cuda_sync_launches &&                                          \
        (cu_err_ = cudaDeviceSynchronize()) != cudaSuccess)                  \
      return cu_error("cuda: %s: kernel failed: %s (EMBER_CUDA_SYNC=1)",     \
                      (what), cudaGetErrorString(cu_err_));                  \
  } while (0)

#define CUBLAS_CHECK(call)                                                   \
  do {                                                                       \
    cublasStatus_t cb_st_ = (call);                                          \
    if (cb_st_ != CUBLAS_STATUS_SUCCESS)                                     \
      return cu_error("cublas: %s (%s)", cublasGetStatusString(cb_st_),      \
                      #call);                                                \
  } while (0)

/* }====================================================================== */

/* {======================================================================
** Tensors
** ======================================================================= */

static inline int64_t cu_numel(const ember_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

static inline size_t cu_elsize(ember_dtype dt) {
  switch (dt) {
    case EMBER_FLOAT64: case EMBER_INT64: return 8;
    case EMBER_FLOAT32: case EMBER_INT32: return 4;
    case EMBER_BFLOAT16: case EMBER_FLOAT16: return 2;
    default: return 1;
  }
}

/* Device address of t's first element. */
/* ember_dtype_is_float, which the plugin may not call (core symbol) */
static inline int cu_dtype_is_float(ember_dtype dt) {
  return dt == EMBER_FLOAT32 || dt == EMBER_FLOAT64 || dt == EMBER_BFLOAT16 ||
         dt == EMBER_FLOAT16;
}

static inline void *cu_data(const ember_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)cu_elsize(t->dtype);
}

static inline int cu_is_contiguous(const ember_tensor *t) {
  int64_t expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != expect) return 0;
    expect *= t->shape[i];
  }
  return 1;
}

/* A tensor's geometry by value: element i (row-major over shape) lives at
   data[cu_offset(l, i)].  The naive way (a 64-bit % and / per dim): only
   for cold paths (one thread); kernels use the offset calculator below. */
struct cu_layout {
  int ndim;
  int64_t shape[EMBER_MAX_DIMS];
  int64_t strides[EMBER_MAX_DIMS];
};

static inline cu_layout cu_layout_of(const ember_tensor *t) {
  cu_layout l;
  l.ndim = t->ndim;
  for (int i = 0; i < t->ndim; i++) {
    l.shape[i] = t->shape[i];
    l.strides[i] = t->strides[i];
  }
  return l;
}

__host__ __device__ static inline int64_t cu_offset(const cu_layout &l,
                                                    int64_t i) {
  int64_t off = 0;
  for (int d = l.ndim - 1; d >= 0; d--) {
    int64_t s = l.shape[d];
    off += (i % s) * l.strides[d];
    i /= s;
  }
  return off;
}

/*
** The offset calculator (index_math.h): the operands of one kernel, all of
** ts[0]'s shape (backend.h: broadcast operands come as expanded views),
** as one simplified geometry.  Launch with cu_with_offsets, which picks
** the 32-bit or 64-bit calculator:
**
**   cu_geom g;
**   if (cu_geom_of(&g, "add", {dst, a, b}) < 0) return -1;
**   return cu_with_offsets<3>(g, [&](auto oc) {
**     typedef decltype(oc) OC;
**     k_add<T, OC><<<cu_blocks(n), CU_THREADS>>>(..., oc,
**                                  (typename OC::index_type)n);
**     ...
**   });
**
** and in the kernel, CU_FOR_T(typename OC::index_type, i, n) {
** auto o = oc.get(i); d[o[0]] = a[o[1]] + b[o[2]]; }.
*/
static inline int cu_geom_of(cu_geom *g, const char *what,
                             std::initializer_list<const ember_tensor *> ts) {
  const int64_t *strides[CU_MAX_ARGS];
  const ember_tensor *t0 = *ts.begin();
  int n = 0;
  if (ts.size() > CU_MAX_ARGS)
    return cu_error("%s: too many operands for one kernel", what);
  for (const ember_tensor *t : ts) {
    if (t->ndim != t0->ndim)
      return cu_error("%s: operands of different shapes", what);
    for (int d = 0; d < t->ndim; d++)
      if (t->shape[d] != t0->shape[d])
        return cu_error("%s: operands of different shapes", what);
    strides[n++] = t->strides;
  }
  *g = cu_geom_make(t0->ndim, t0->shape, n, strides);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Launching
** ======================================================================= */

#define CU_THREADS 256

/* Blocks for a grid-stride loop over n items. */
static inline unsigned cu_blocks(int64_t n) {
  int64_t b = (n + CU_THREADS - 1) / CU_THREADS;
  if (b < 1) b = 1;
  if (b > 65535 * 8) b = 65535 * 8;
  return (unsigned)b;
}

#define CU_FOR(i, n)                                                         \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);  \
       i += (int64_t)blockDim.x * gridDim.x)

/* The same in index type IDX (uint32_t or uint64_t).  32 bits are enough
   when n < 2^31: i stays under n + the grid's size < 2^32. */
#define CU_FOR_T(IDX, i, n)                                                  \
  for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < (IDX)(n);     \
       i += (IDX)blockDim.x * gridDim.x)

/* }====================================================================== */

/* {======================================================================
** Dispatch over dtypes
** ======================================================================= */

/*
** Storage and compute types.  An element of C type T is loaded into
** cu_elem<T>::C, computed on there, and stored back: the identity for
** every type but the half ones, whose elements (__nv_bfloat16, __half)
** compute in float and are rounded to nearest even once, when stored --
** the CPU's rule for them (core/cpu/half_adapt.c) and PyTorch's.  A
** kernel templated on the storage type reads cu_load(p[i]) and writes
** p[i] = cu_store<T>(v), and so serves the half types unchanged.
*/
template <typename T> struct cu_elem {
  typedef T C;
  __host__ __device__ static inline C load(T x) { return x; }
  __host__ __device__ static inline T store(C x) { return x; }
};
template <> struct cu_elem<__nv_bfloat16> {
  typedef float C;
  __host__ __device__ static inline float load(__nv_bfloat16 x) { return __bfloat162float(x); }
  __host__ __device__ static inline __nv_bfloat16 store(float x) { return __float2bfloat16_rn(x); }
};
template <> struct cu_elem<__half> {
  typedef float C;
  __host__ __device__ static inline float load(__half x) { return __half2float(x); }
  __host__ __device__ static inline __half store(float x) { return __float2half_rn(x); }
};

template <typename T>
__host__ __device__ static inline typename cu_elem<T>::C cu_load(T x) {
  return cu_elem<T>::load(x);
}
template <typename T>
__host__ __device__ static inline T cu_store(typename cu_elem<T>::C x) {
  return cu_elem<T>::store(x);
}

/* T is a half storage type */
template <typename T> struct cu_is_half : std::false_type {};
template <> struct cu_is_half<__nv_bfloat16> : std::true_type {};
template <> struct cu_is_half<__half> : std::true_type {};

/* T computes as a floating-point number (float, double and the halves) */
template <typename T>
struct cu_is_float : std::is_floating_point<typename cu_elem<T>::C> {};

/*
** A dtype as a compile-time value: ember_cuda_type<DT>::dt is the dtype,
** ::T its C type (bool is a byte holding 0 or 1), ::C the type it
** computes in (cu_elem<T>::C: T itself but for the halves, float),
** ::U the unsigned type integer arithmetic wraps in (the CPU's: uint32_t
** for int32 and uint8, uint64_t for int64; C for the floats).
*/
template <int DT> struct ember_cuda_type {        /* uint8 and bool */
  static constexpr int dt = DT;
  typedef uint8_t T;
  typedef uint8_t C;
  typedef uint32_t U;
};
template <> struct ember_cuda_type<EMBER_FLOAT32> {
  static constexpr int dt = EMBER_FLOAT32;
  typedef float T;
  typedef float C;
  typedef float U;
};
template <> struct ember_cuda_type<EMBER_FLOAT64> {
  static constexpr int dt = EMBER_FLOAT64;
  typedef double T;
  typedef double C;
  typedef double U;
};
template <> struct ember_cuda_type<EMBER_INT32> {
  static constexpr int dt = EMBER_INT32;
  typedef int32_t T;
  typedef int32_t C;
  typedef uint32_t U;
};
template <> struct ember_cuda_type<EMBER_INT64> {
  static constexpr int dt = EMBER_INT64;
  typedef int64_t T;
  typedef int64_t C;
  typedef uint64_t U;
};
template <> struct ember_cuda_type<EMBER_BFLOAT16> {
  static constexpr int dt = EMBER_BFLOAT16;
  typedef __nv_bfloat16 T;
  typedef float C;
  typedef float U;
};
template <> struct ember_cuda_type<EMBER_FLOAT16> {
  static constexpr int dt = EMBER_FLOAT16;
  typedef __half T;
  typedef float C;
  typedef float U;
};

/*
** The one dtype dispatch of the backend: calls f with an ember_cuda_type
** value for dt and returns what f returns (an int status).  f is a generic
** lambda that takes everything else by capture:
**
**   return ember_cuda_dispatch(dst->dtype, [&](auto ty) {
**     typedef typename decltype(ty)::T T;
**     k_fill<T><<<nb, CU_THREADS>>>((T *)cu_data(dst), ...);
**     CU_LAUNCH_CHECK("fill");
**     return 0;
**   });
**
** ember_cuda_dispatch and ember_cuda_dispatch_float refuse bfloat16 and
** float16 with a clear error (rather than run another type's kernel over
** their 2-byte elements): they serve the kernels that do their arithmetic
** in T.  A kernel that loads and stores through cu_load/cu_store (and
** computes in C) takes the _half variants, which add the two half types.
*/
#define CU_NO_HALF(dt)                                                     \
  if ((dt) == EMBER_BFLOAT16 || (dt) == EMBER_FLOAT16)                     \
  return cu_error("cuda: %s tensors are not supported by this CUDA kernel yet " \
                  "(move them to the CPU or convert them to float32)",     \
                  (dt) == EMBER_BFLOAT16 ? "bfloat16" : "float16")

/* HALF: whether f takes the half types (else they are refused, and f is
   never instantiated for them). */
template <bool HALF, class F>
static inline int cu_dispatch(ember_dtype dt, F &&f) {
  if constexpr (HALF) {
    if (dt == EMBER_BFLOAT16) return f(ember_cuda_type<EMBER_BFLOAT16>());
    if (dt == EMBER_FLOAT16) return f(ember_cuda_type<EMBER_FLOAT16>());
  } else {
    CU_NO_HALF(dt);
  }
  switch (dt) {
    case EMBER_FLOAT32: return f(ember_cuda_type<EMBER_FLOAT32>());
    case EMBER_FLOAT64: return f(ember_cuda_type<EMBER_FLOAT64>());
    case EMBER_INT32: return f(ember_cuda_type<EMBER_INT32>());
    case EMBER_INT64: return f(ember_cuda_type<EMBER_INT64>());
    case EMBER_UINT8: return f(ember_cuda_type<EMBER_UINT8>());
    default: return f(ember_cuda_type<EMBER_BOOL>());
  }
}

template <bool HALF, class F>
static inline int cu_dispatch_float(ember_dtype dt, F &&f) {
  if constexpr (HALF) {
    if (dt == EMBER_BFLOAT16) return f(ember_cuda_type<EMBER_BFLOAT16>());
    if (dt == EMBER_FLOAT16) return f(ember_cuda_type<EMBER_FLOAT16>());
  } else {
    CU_NO_HALF(dt);
  }
  if (dt == EMBER_FLOAT64) return f(ember_cuda_type<EMBER_FLOAT64>());
  return f(ember_cuda_type<EMBER_FLOAT32>());
}

template <class F>
static inline int ember_cuda_dispatch(ember_dtype dt, F &&f) {
  return cu_dispatch<false>(dt, f);
}
template <class F>
static inline int ember_cuda_dispatch_half(ember_dtype dt, F &&f) {
  return cu_dispatch<true>(dt, f);
}

/* The same for the float dtypes only (the core sends no other). */
template <class F>
static inline int ember_cuda_dispatch_float(ember_dtype dt, F &&f) {
  return cu_dispatch_float<false>(dt, f);
}
template <class F>
static inline int ember_cuda_dispatch_float_half(ember_dtype dt, F &&f) {
  return cu_dispatch_float<true>(dt, f);
}

/* The same by element size only, ::T an unsigned type of that size: for
   kernels that move bits (copies, selects, gathers). */
template <class B> struct ember_cuda_bits { typedef B T; };

template <class F>
static inline int ember_cuda_dispatch_bits(ember_dtype dt, F &&f) {
  switch (cu_elsize(dt)) {
    case 8: return f(ember_cuda_bits<uint64_t>());
    case 4: return f(ember_cuda_bits<uint32_t>());
    case 2: return f(ember_cuda_bits<uint16_t>());
    default: return f(ember_cuda_bits<uint8_t>());
  }
}

/* }====================================================================== */

/* {======================================================================
** Shared services (allocator.cu, runtime.cu)
** ======================================================================= */

/* The caching allocator (allocator.cu, over devcache.c): device memory
   split from cached segments, kept for reuse; a block the backend keeps
   for itself (not counted as tensors'); the bytes in live blocks, and in
   live and cached ones; hand the free segments back to the driver. */
void *ember_cuda_alloc(size_t nbytes);          /* NULL after cu_error */
void *ember_cuda_alloc_workspace(size_t nbytes);  /* NULL after cu_error */
void ember_cuda_free(void *ptr);
size_t ember_cuda_memory_allocated(void);
size_t ember_cuda_memory_reserved(void);
void ember_cuda_memory_stats(ember_device_stats *out);
size_t ember_cuda_memory_segments(void);        /* device memory held at all */
void ember_cuda_empty_cache(void);

/*
** Deferred data errors (runtime.cu).  An op whose kernel may find bad data
** (an index out of range) calls ember_cuda_defer_begin with the message
** it would give on the CPU, split around the bad value; its kernel skips
** each bad element and reports it with cu_defer_fail(d, position), where
** position is the element's place in the order the CPU checks (the first
** bad one wins); then ember_cuda_defer_end(d, index, ...) queues the
** one-thread kernel that stores the bad value.  No wait: to_host and
** synchronize report the error after theirs (ember_cuda_deferred_error),
** with the message prefix<value>suffix, and clear it.  The op's output is
** then unspecified.
*/
struct ember_cuda_record;                /* in host-mapped pinned memory */
#define CU_DEFER_POS_BITS 36             /* a key: sequence << 36 | position */
struct ember_cuda_defer {
  ember_cuda_record *rec;                /* its device address */
  unsigned long long tag;                /* the op's sequence << 36 */
};
int ember_cuda_defer_begin(const char *prefix, const char *suffix,
                           ember_cuda_defer *out);    /* -1 after cu_error */
/* idx: the index's device data (int32 or int64 by dt), il its geometry:
   element `position` lives at idx[cu_offset(il, position)]. */
int ember_cuda_defer_end(const ember_cuda_defer *d, const void *idx,
                         ember_dtype dt, const cu_layout &il);
/* After a wait for the queue: 0, or -1 after cu_error with the deferred
   error's message, which is then cleared. */
int ember_cuda_deferred_error(void);

__device__ static inline void cu_defer_fail(const ember_cuda_defer &d,
                                            int64_t position) {
  atomicMin((unsigned long long *)d.rec,
            d.tag | ((unsigned long long)position &
                     ((1ull << CU_DEFER_POS_BITS) - 1)));
}

/* The cuBLAS handle (created on first use) and the TF32 switch. */
cublasHandle_t ember_cuda_cublas(void);         /* NULL after cu_error */
extern std::atomic<int> ember_cuda_allow_tf32;
void ember_cuda_set_allow_tf32(int on);
int ember_cuda_get_allow_tf32(void);

/* The plugin's device functions (core/device.h). */
int ember_cuda_device_count(void);
int ember_cuda_select_device(int n);            /* the process's device */
int ember_cuda_device(void);
int ember_cuda_to_host(void *dst, const void *src, size_t n);
int ember_cuda_from_host(void *dst, const void *src, size_t n);
int ember_cuda_synchronize(void);

/* Set h up for a GEMM in dtype dt: TF32 tensor cores for float32 only when
   allowed, host scalars.  Every op sets the handle up anew (it is the
   thread's, and other ops of the thread set it otherwise). */
static inline int cu_cublas_mode(cublasHandle_t h, ember_dtype dt) {
  cublasMath_t mode = dt == EMBER_FLOAT32 && ember_cuda_allow_tf32
                          ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
  CUBLAS_CHECK(cublasSetMathMode(h, mode));
  CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** The kernels of the table, one file per concern
** ======================================================================= */

/* copy.cu */
int ember_cuda_copy(ember_tensor *dst, const ember_tensor *src);
int ember_cuda_fill(ember_tensor *dst, double value, int64_t ivalue);
int ember_cuda_arange(ember_tensor *dst, double start, double step);
/* elementwise.cu */
int ember_cuda_unary(ember_unary_op op, ember_tensor *dst,
                     const ember_tensor *src, double p0, double p1);
int ember_cuda_binary(ember_binary_op op, ember_tensor *dst,
                      const ember_tensor *a, const ember_tensor *b);
int ember_cuda_compare(ember_cmp_op op, ember_tensor *dst,
                       const ember_tensor *a, const ember_tensor *b);
int ember_cuda_where(ember_tensor *dst, const ember_tensor *cond,
                     const ember_tensor *a, const ember_tensor *b);
int ember_cuda_unary_backward(ember_unary_op op, ember_tensor *dst,
                              const ember_tensor *g, const ember_tensor *s,
                              double p0, double p1);
/* reduce.cu */
int ember_cuda_reduce(ember_reduce_op op, ember_tensor *dst,
                      const ember_tensor *src, int correction);
int ember_cuda_softmax(ember_tensor *dst, const ember_tensor *src, int log);
int ember_cuda_softmax_backward(ember_tensor *dx, const ember_tensor *g,
                                const ember_tensor *y, int log);
/* rnn.cu */
int ember_cuda_lstm_cell(ember_tensor *hc, ember_tensor *act,
                         const ember_tensor *gates, const ember_tensor *c_prev);
int ember_cuda_lstm_cell_backward(ember_tensor *dgates, ember_tensor *dc_prev,
                                  const ember_tensor *dhc, const ember_tensor *act,
                                  const ember_tensor *c_prev, const ember_tensor *hc);
int ember_cuda_gru_cell(ember_tensor *hn, ember_tensor *act, const ember_tensor *gx,
                        const ember_tensor *gh, const ember_tensor *h);
int ember_cuda_gru_cell_backward(ember_tensor *dgx, ember_tensor *dgh, ember_tensor *dh,
                                 const ember_tensor *g, const ember_tensor *act,
                                 const ember_tensor *gh, const ember_tensor *h);
/* norm.cu */
int ember_cuda_layer_norm(ember_tensor *y, ember_tensor *mean,
                          ember_tensor *rstd, const ember_tensor *x,
                          const ember_tensor *w, const ember_tensor *b,
                          int64_t n, double eps, int rms);
int ember_cuda_layer_norm_backward(ember_tensor *dx, ember_tensor *dw,
                                   ember_tensor *db, const ember_tensor *g,
                                   const ember_tensor *x,
                                   const ember_tensor *mean,
                                   const ember_tensor *rstd,
                                   const ember_tensor *w, int64_t n, int rms);
/* loss.cu */
int ember_cuda_cross_entropy(ember_tensor *loss, ember_tensor *wt,
                             ember_tensor *lse, const ember_tensor *x,
                             const ember_tensor *t, const ember_tensor *w,
                             int64_t ignore, double smoothing);
int ember_cuda_cross_entropy_backward(ember_tensor *dx, const ember_tensor *gs,
                                      const ember_tensor *x,
                                      const ember_tensor *lse,
                                      const ember_tensor *t,
                                      const ember_tensor *w, int64_t ignore,
                                      double smoothing);
int ember_cuda_scan(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                    const ember_tensor *src, int dim, int reverse);
/* attention.cu */
int ember_cuda_attention(ember_tensor *o, ember_tensor *lse,
                         const ember_tensor *q, const ember_tensor *k,
                         const ember_tensor *v, const ember_tensor *mask,
                         const ember_attention_geom *g);
int ember_cuda_attention_backward(ember_tensor *gq, ember_tensor *gk,
                                  ember_tensor *gv, const ember_tensor *go,
                                  const ember_tensor *q, const ember_tensor *k,
                                  const ember_tensor *v, const ember_tensor *o,
                                  const ember_tensor *lse,
                                  const ember_tensor *mask,
                                  const ember_attention_geom *g);
/* sort.cu */
int ember_cuda_sort(ember_tensor *values, ember_tensor *indices,
                    const ember_tensor *src, int dim, int64_t k,
                    int descending);
/* index.cu */
int ember_cuda_index_select(ember_tensor *dst, const ember_tensor *src, int dim,
                            const ember_tensor *index);
int ember_cuda_gather(ember_tensor *dst, const ember_tensor *src, int dim,
                      const ember_tensor *index);
int ember_cuda_index_add(ember_tensor *dst, int dim, const ember_tensor *index,
                         const ember_tensor *src);
int ember_cuda_index_copy(const char *fn, ember_tensor *dst, int dim, const ember_tensor *index,
                          const ember_tensor *src);
int ember_cuda_scatter_add(ember_tensor *dst, int dim,
                           const ember_tensor *index,
                           const ember_tensor *src);
int ember_cuda_check_index(const ember_tensor *idx, int64_t lo, int64_t hi,
                           int has_skip, int64_t skip, const char *prefix,
                           const char *suffix);
int ember_cuda_scatter(ember_scatter_reduce op, ember_tensor *dst, int dim,
                       const ember_tensor *index, const ember_tensor *src);
int ember_cuda_nonzero(ember_tensor *dst, const ember_tensor *cs, int ndim,
                       const int64_t *shape);
/* random.cu */
int ember_cuda_random(int kind, ember_tensor *dst, uint64_t seed,
                      uint64_t counter, double a, double b);
/* sampling.cu */
int ember_cuda_multinomial(ember_tensor *dst, const ember_tensor *probs,
                           int replacement, uint64_t seed, uint64_t counter);
/* matmul.cu */
int ember_cuda_matmul(ember_tensor *dst, const ember_tensor *a,
                      const ember_tensor *b);
/* conv.cu */
int ember_cuda_conv2d(ember_tensor *y, const ember_tensor *x,
                      const ember_tensor *w, const ember_tensor *b,
                      const ember_conv2d_geom *g);
int ember_cuda_conv2d_backward(ember_tensor *gx, ember_tensor *gw,
                               ember_tensor *gb, const ember_tensor *gy,
                               const ember_tensor *mask, const ember_tensor *x,
                               const ember_tensor *w, const ember_conv2d_geom *g);
/* pool.cu */
int ember_cuda_max_pool2d(ember_tensor *y, ember_tensor *idx,
                          const ember_tensor *x, const ember_pool2d_geom *g);
int ember_cuda_max_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                   const ember_tensor *idx,
                                   const ember_pool2d_geom *g);
int ember_cuda_avg_pool2d(ember_tensor *y, const ember_tensor *x,
                          const ember_pool2d_geom *g);
int ember_cuda_avg_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                   const ember_pool2d_geom *g);
/* optim.cu */
int ember_cuda_sgd_step(ember_tensor *p, const ember_tensor *g,
                        ember_tensor *buf, const ember_optim_hp *hp);
int ember_cuda_adam_step(ember_tensor *p, const ember_tensor *g,
                         ember_tensor *m, ember_tensor *v, ember_tensor *vmax,
                         const ember_optim_hp *hp);
int ember_cuda_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                            ember_tensor *sq, ember_tensor *buf,
                            ember_tensor *gavg, const ember_optim_hp *hp);
int ember_cuda_adagrad_step(ember_tensor *p, const ember_tensor *g,
                            ember_tensor *sum, const ember_optim_hp *hp);

/* }====================================================================== */

#endif
