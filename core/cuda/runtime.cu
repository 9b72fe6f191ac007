/*
** runtime.cu -- what every CUDA kernel file shares besides memory: the
** device flag that reports data errors, the cuBLAS handle and the TF32
** switch; and the device functions of the plugin (device count, blocking
** copies to and from the host, synchronize).
*/
#include "cuda_internal.h"

/* {======================================================================
** The data-error flag, cuBLAS, TF32
** ======================================================================= */

/* Two int64 on the device (code, detail), allocated once per host thread
   (a reset, the kernels and the read are one op's sequence, which another
   thread's op must not interleave), outside the cache's accounting, and
   kept until the process exits. */
static thread_local int64_t *cu_flag;

int64_t *ember_cuda_flag_reset(void) {
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
int ember_cuda_flag_read(int64_t out[2]) {
  out[0] = out[1] = 0;
  if (!cu_flag) return cu_error("cuda: the error flag was read before a reset");
  CU_CHECK(cudaMemcpy(out, cu_flag, 2 * sizeof(int64_t), cudaMemcpyDeviceToHost));
  return 0;
}

/* A handle per host thread, as cuBLAS advises (each op sets its math
   mode on it), kept until the process exits.

   Its workspace comes from the caching allocator (32 MiB, what PyTorch
   gives cuBLAS on Hopper): left to itself, cuBLAS would cudaMalloc its
   own outside the cache, where empty_cache and the out-of-memory retry
   cannot see it.  It is kept with the handle, so never freed; it counts
   as the backend's own memory, not as tensors' (memory_allocated). */
#define CU_CUBLAS_WORKSPACE ((size_t)32 << 20)

static thread_local cublasHandle_t cu_handle;
std::atomic<int> ember_cuda_allow_tf32{0};   /* process-wide, as the CPU side's */

cublasHandle_t ember_cuda_cublas(void) {
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
    void *ws = ember_cuda_alloc_workspace(CU_CUBLAS_WORKSPACE);
    if (!ws) {                   /* the allocator's message stands */
      cublasDestroy(h);
      return NULL;
    }
    st = cublasSetWorkspace(h, ws, CU_CUBLAS_WORKSPACE);
    if (st != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(h);
      ember_cuda_free(ws);
      cu_error("cublas: %s (cublasSetWorkspace)", cublasGetStatusString(st));
      return NULL;
    }
    cu_handle = h;
  }
  return cu_handle;
}

void ember_cuda_set_allow_tf32(int on) { ember_cuda_allow_tf32 = on != 0; }
int ember_cuda_get_allow_tf32(void) { return ember_cuda_allow_tf32; }

/* }====================================================================== */

/* {======================================================================
** The plugin's device functions
** ======================================================================= */

/* An empty kernel: whether the device can run this build's code. */
static __global__ void k_probe(void) {}

static std::atomic<int> cu_device{-1};   /* the process's device */

/* Make n the process's device; a build whose kernels it cannot run (no
   code for its architecture) is reported now, rather than on every
   launch. */
int ember_cuda_select_device(int n) {
  CU_CHECK(cudaSetDevice(n));
  cudaFuncAttributes attr;
  cudaError_t e = cudaFuncGetAttributes(&attr, k_probe);
  if (e != cudaSuccess) {
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, n);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, n);
    cudaGetLastError();
    return cu_error("the CUDA plugin cannot run on device %d (compute capability "
                    "%d.%d: %s); rebuild it with CUDA_ARCH set for this GPU", n,
                    major, minor, cudaGetErrorString(e));
  }
  cu_device = n;
  return 0;
}

int ember_cuda_device(void) { return cu_device; }

int ember_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

/* Blocking copies; an error left by an earlier asynchronous kernel
   surfaces here too, with its own message. */
int ember_cuda_to_host(void *dst, const void *src, size_t n) {
  if (n == 0) return 0;
  CU_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost));
  return 0;
}

int ember_cuda_from_host(void *dst, const void *src, size_t n) {
  if (n == 0) return 0;
  CU_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
  return 0;
}

int ember_cuda_synchronize(void) {
  CU_CHECK(cudaDeviceSynchronize());
  return 0;
}

/* }====================================================================== */
