/*
** runtime.cu -- what every CUDA kernel file shares besides memory: the
** record of deferred data errors, the cuBLAS handle and the TF32 switch;
** and the device functions of the plugin (device count, copies to the
** host (blocking) and from it (through pinned staging), synchronize).
*/
#include <stdio.h>
#include <string.h>

#include <mutex>

#include "cuda_internal.h"

/* {======================================================================
** Deferred data errors
** ======================================================================= */

/*
** A kernel that finds bad data (an index out of range) must not make its
** op wait for the device to say so: the error is recorded on the device
** and reported by the next call that waits anyway (to_host, synchronize).
**
** The record is one ember_cuda_record in host-mapped pinned memory: the
** kernels write it through its device address, the host reads it after a
** wait without another copy.  `key` is (sequence << CU_POS_BITS | position)
** of the earliest failing op and its first bad element, kept by atomicMin
** whatever order the threads run in (CU_KEY_EMPTY when none); `value` is
** that element's value, written by the op's one-thread follow-up kernel
** (ember_cuda_defer_end) when the key's sequence is the op's own.
**
** The host keeps, per sequence number, the message to give: a ring of
** prefix/suffix pairs (the value goes between).  A slot is reused
** CU_RING checked ops later; by then its op has run (the launch queue
** holds about a thousand launches, and each checked op makes two), so if
** it failed the key says so, and its message is moved to `kept` first.
** Sequence numbers have CU_SEQ_BITS; before they wrap, the queue is waited
** for once and a pending error is formatted in full into `held`, so that
** the earliest error still wins.
**
** One record per process: every host thread queues on the one default
** stream, so a sync reports whichever op failed first, and a mutex guards
** the host side.
*/
#define CU_POS_BITS CU_DEFER_POS_BITS
#define CU_SEQ_BITS 28
#define CU_POS_MASK ((1ull << CU_POS_BITS) - 1)
#define CU_SEQ_LAST ((1ull << CU_SEQ_BITS) - 2)  /* all ones is the empty key */
#define CU_KEY_EMPTY (~0ull)
#define CU_RING 4096
#define CU_MSG 256

struct ember_cuda_record {
  unsigned long long key;
  long long value;
};

struct cu_message {
  unsigned long long seq;                  /* 0: unused */
  unsigned short split;                    /* the prefix is text[0..split) */
  char text[CU_MSG];
};

static std::mutex cu_rec_mu;
static volatile ember_cuda_record *cu_rec_host;   /* NULL until first use */
static ember_cuda_record *cu_rec_dev;
static unsigned long long cu_seq;                 /* the last one handed out */
static cu_message cu_ring[CU_RING];
static cu_message cu_kept;                        /* a failed op's, moved out */
static char cu_held[2 * CU_MSG];                  /* formatted before a wrap */
static int cu_has_held;

static void message_set(cu_message *m, unsigned long long seq,
                        const char *prefix, const char *suffix) {
  int n = snprintf(m->text, CU_MSG, "%s", prefix);
  if (n < 0) n = 0;
  if (n > CU_MSG - 1) n = CU_MSG - 1;
  m->split = (unsigned short)n;
  snprintf(m->text + n, (size_t)(CU_MSG - n), "%s", suffix);
  m->seq = seq;
}

/* The message of the error in the record into out; the caller holds the
   lock and has waited for the queue. */
static void message_format(char *out, size_t n, unsigned long long key,
                           long long value) {
  unsigned long long seq = key >> CU_POS_BITS;
  const cu_message *m = cu_ring[seq % CU_RING].seq == seq ? &cu_ring[seq % CU_RING]
                        : cu_kept.seq == seq ? &cu_kept : NULL;
  if (!m) {
    snprintf(out, n, "cuda: a kernel found bad data (value %lld) and its "
             "message was lost", value);
    return;
  }
  snprintf(out, n, "%.*s%lld%s", (int)m->split, m->text, value,
           m->text + m->split);
}

/* The record, allocated on first use and kept until the process exits. */
static int record_init(void) {
  if (cu_rec_host) return 0;
  void *h = NULL, *d = NULL;
  /* portable: mapped for every device, should the process's change */
  CU_CHECK(cudaHostAlloc(&h, sizeof(ember_cuda_record),
                         cudaHostAllocMapped | cudaHostAllocPortable));
  cudaError_t e = cudaHostGetDevicePointer(&d, h, 0);
  if (e != cudaSuccess) {
    cudaFreeHost(h);
    return cu_error("cuda: %s (cudaHostGetDevicePointer of the error record)",
                    cudaGetErrorString(e));
  }
  ember_cuda_record *r = (ember_cuda_record *)h;
  r->key = CU_KEY_EMPTY;
  r->value = 0;
  cu_rec_dev = (ember_cuda_record *)d;
  cu_rec_host = r;
  return 0;
}

int ember_cuda_defer_begin(const char *prefix, const char *suffix,
                           ember_cuda_defer *out) {
  std::lock_guard<std::mutex> lock(cu_rec_mu);
  if (record_init() < 0) return -1;
  if (cu_seq == CU_SEQ_LAST) {
    /* the wrap: once per 2^28 checked ops, wait, keep what failed */
    CU_CHECK(cudaStreamSynchronize(0));
    unsigned long long key = cu_rec_host->key;
    if (key != CU_KEY_EMPTY && !cu_has_held) {
      message_format(cu_held, sizeof cu_held, key, cu_rec_host->value);
      cu_has_held = 1;
    }
    cu_rec_host->key = CU_KEY_EMPTY;
    cu_seq = 0;
    memset(cu_ring, 0, sizeof cu_ring);
    cu_kept.seq = 0;
  }
  unsigned long long seq = ++cu_seq;
  cu_message *slot = &cu_ring[seq % CU_RING];
  if (slot->seq && cu_rec_host->key != CU_KEY_EMPTY &&
      cu_rec_host->key >> CU_POS_BITS == slot->seq)
    cu_kept = *slot;
  message_set(slot, seq, prefix, suffix);
  out->rec = cu_rec_dev;
  out->tag = seq << CU_POS_BITS;
  return 0;
}

/* The first bad element's value, for the op whose tag the key holds. */
template <class I>
__global__ void k_defer_detail(const I *idx, cu_layout il,
                               ember_cuda_defer d) {
  unsigned long long key = *(volatile unsigned long long *)&d.rec->key;
  if (key != CU_KEY_EMPTY && (key >> CU_POS_BITS) == (d.tag >> CU_POS_BITS)) {
    *(volatile long long *)&d.rec->value =
        (long long)idx[cu_offset(il, (int64_t)(key & CU_POS_MASK))];
    __threadfence_system();
  }
}

int ember_cuda_defer_end(const ember_cuda_defer *d, const void *idx,
                         ember_dtype dt, const cu_layout &il) {
  if (dt == EMBER_INT32)
    k_defer_detail<int32_t><<<1, 1>>>((const int32_t *)idx, il, *d);
  else
    k_defer_detail<int64_t><<<1, 1>>>((const int64_t *)idx, il, *d);
  CU_LAUNCH_CHECK("the follow-up of a checked op");
  return 0;
}

int ember_cuda_deferred_error(void) {
  std::lock_guard<std::mutex> lock(cu_rec_mu);
  if (!cu_rec_host) return 0;
  char msg[2 * CU_MSG];
  int failed = 0;
  if (cu_has_held) {
    snprintf(msg, sizeof msg, "%s", cu_held);
    failed = 1;
  } else if (cu_rec_host->key != CU_KEY_EMPTY) {
    message_format(msg, sizeof msg, cu_rec_host->key, cu_rec_host->value);
    failed = 1;
  }
  cu_has_held = 0;
  cu_rec_host->key = CU_KEY_EMPTY;
  cu_rec_host->value = 0;
  return failed ? cu_error("%s", msg) : 0;
}

/* }====================================================================== */

/* {======================================================================
** cuBLAS, TF32
** ======================================================================= */

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
  /* The core allows a change only while no tensor lives and has emptied
     the cache; what is left (cuBLAS's workspace, with the per-thread
     handles bound to the device) cannot move, so a process that has run
     a matmul keeps its device. */
  int cur = cu_device;
  if (cur >= 0 && n != cur && ember_cuda_memory_segments() > 0)
    return cu_error("cuda.set_device: cannot move to cuda:%d: this process has used "
                    "cuda:%d (cuBLAS's handles and workspace live there); choose the "
                    "device before the first op (ember.cuda.set_device, "
                    "EMBER_CUDA_DEVICE)", n, cur);
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

/* A blocking copy.  The wait comes first: an error left by an earlier
   asynchronous kernel surfaces there, with its own message, and then a
   data error a kernel deferred -- both before anything is written to dst,
   so a copy that fails changes nothing.  The copy itself then finds the
   queue empty. */
int ember_cuda_to_host(void *dst, const void *src, size_t n) {
  if (n == 0) return 0;
  CU_CHECK(cudaStreamSynchronize(0));
  if (ember_cuda_deferred_error() < 0) return -1;
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
  return ember_cuda_deferred_error();
}

/* }====================================================================== */
