/*
** runtime.cu -- what every CUDA kernel file shares besides memory: the
** device flag that reports data errors, the cuBLAS handle and the TF32
** switch; and the device functions of the plugin (device count, copies
** to the host (blocking) and from it (through pinned staging), synchronize).
*/
#include <string.h>

#include <mutex>

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
   mode on it), kept until the process exits. */
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

/* Uploads through pinned staging.
   Why: a cudaMemcpy from pageable host memory first waits for everything
   queued on the stream (the driver stages through its own pinned buffer),
   so each batch a training loop sends to the device would drain the queue
   -- a hidden synchronisation per step.  cudaMemcpyAsync from page-locked
   memory does not wait: the copy joins the queue behind the kernels.  So
   an upload is copied (by the CPU) into one of a small ring of pinned
   buffers and queued from there; each buffer has an event recorded after
   its copy, and the next use of the buffer waits on that event first (the
   device may still be reading it).  A large upload goes in chunks, round
   the ring, the CPU filling one buffer while the device drains another.
   When ember_cuda_from_host returns, src has been read in full (into the
   staging buffers), so the caller may reuse it at once; the device copy
   completes in stream order, before any later kernel reads dst.
   One mutex makes it thread-safe (the ring is the process's; an upload
   holds it from its first chunk to its last, so chunks stay in order).
   Pinned memory is allocated portable (any device may use it); events
   belong to a device, so a change of the process's device
   (ember.cuda.set_device) drains the ring and makes them anew.  Where
   pinned memory cannot be had, the upload falls back to cudaMemcpy. */
#define CU_STAGE_BUFS 4
#define CU_STAGE_BYTES ((size_t)4 << 20)   /* 4 MiB each */

struct cu_stage_buf {
  void *host;             /* CU_STAGE_BYTES of pinned memory, or NULL */
  cudaEvent_t done;       /* recorded after the copy out of it */
  int pending;            /* done was recorded and not yet waited for */
};

static std::mutex cu_stage_lock;
static cu_stage_buf cu_stage[CU_STAGE_BUFS];
static int cu_stage_next;          /* the buffer the next chunk uses */
static int cu_stage_device = -1;   /* the device the events belong to */
static int cu_stage_broken;        /* pinned memory was refused: fall back */

/* Wait for every buffer's copy and drop the events (the lock held). */
static int cu_stage_drain(void) {
  int rc = 0;
  for (int i = 0; i < CU_STAGE_BUFS; i++) {
    cu_stage_buf *b = &cu_stage[i];
    if (b->pending) {
      cudaError_t e = cudaEventSynchronize(b->done);
      b->pending = 0;
      if (e != cudaSuccess && rc == 0)
        rc = cu_error("cuda: %s (waiting for a staged upload)", cudaGetErrorString(e));
    }
    if (b->done) {
      cudaEventDestroy(b->done);
      b->done = NULL;
    }
  }
  return rc;
}

/* Buffer i ready for a new chunk: allocated, its event made on the
   current device, and its last copy finished (the lock held).  Returns 1
   when pinned memory is unavailable (the caller falls back), -1 after
   cu_error. */
static int cu_stage_take(int i) {
  cu_stage_buf *b = &cu_stage[i];
  if (!b->host) {
    cudaError_t e = cudaHostAlloc(&b->host, CU_STAGE_BYTES, cudaHostAllocPortable);
    if (e != cudaSuccess) {
      cudaGetLastError();
      b->host = NULL;
      cu_stage_broken = 1;
      return 1;
    }
  }
  if (!b->done) {
    CU_CHECK(cudaEventCreateWithFlags(&b->done, cudaEventDisableTiming));
    b->pending = 0;
  }
  if (b->pending) {
    b->pending = 0;
    cudaError_t e = cudaEventSynchronize(b->done);
    if (e != cudaSuccess)
      return cu_error("cuda: %s (waiting for a staged upload)", cudaGetErrorString(e));
  }
  return 0;
}

int ember_cuda_from_host(void *dst, const void *src, size_t n) {
  if (n == 0) return 0;
  std::lock_guard<std::mutex> hold(cu_stage_lock);
  int dev = ember_cuda_device();
  if (dev != cu_stage_device) {
    if (cu_stage_drain() < 0) return -1;
    cu_stage_device = dev;
  }
  for (size_t off = 0; off < n; ) {
    size_t len = n - off < CU_STAGE_BYTES ? n - off : CU_STAGE_BYTES;
    int i = cu_stage_next;
    int rc = cu_stage_broken ? 1 : cu_stage_take(i);
    if (rc < 0) return -1;
    if (rc > 0) {     /* no pinned memory: the blocking copy of the rest */
      CU_CHECK(cudaMemcpy((char *)dst + off, (const char *)src + off, n - off,
                          cudaMemcpyHostToDevice));
      return 0;
    }
    cu_stage_buf *b = &cu_stage[i];
    memcpy(b->host, (const char *)src + off, len);
    CU_CHECK(cudaMemcpyAsync((char *)dst + off, b->host, len, cudaMemcpyHostToDevice, 0));
    CU_CHECK(cudaEventRecord(b->done, 0));
    b->pending = 1;
    cu_stage_next = (i + 1) % CU_STAGE_BUFS;
    off += len;
  }
  return 0;
}

int ember_cuda_synchronize(void) {
  CU_CHECK(cudaDeviceSynchronize());
  return 0;
}

/* }====================================================================== */
