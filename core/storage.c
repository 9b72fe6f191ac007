/*
** storage.c -- reference-counted blocks of memory, and tensor lifetimes.
**
** A storage is either owned (64-byte aligned data allocated with its header
** on the CPU, by the device's backend elsewhere), foreign (wrapped by ember_from_blob: Ember calls the
** host's release callback and never frees the memory itself), or mapped
** (a range of a file mapped by core/mapping.c: "Mapped storage" below).
**
** A small CPU tensor made fresh (ember_empty_on) comes in one block with
** its storage and data, recycled through a per-thread free list: a tiny op
** such as `a + b` on 4 elements then costs no malloc at all (see "Fused
** blocks" below).
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"

/* ember_storage.inline_data: where the data lives. */
enum {
  STORAGE_SEPARATE = 0,  /* a block of its own (a device's, or the host's) */
  STORAGE_INLINE = 1,    /* after this header, in one block */
  STORAGE_FUSED = 2      /* after this header, which follows its first
                            tensor's header, in one block (fused_new) */
};

/*
** Bytes of owned storage allocated so far, and alive now: process-wide
** totals over every thread, kept without a locked instruction per tensor
** (a tiny op makes three changes; bench/NOTES.md).  A thread sums its own changes in
** `pending` and adds them to the shared atomics when they pass COUNT_BATCH
** bytes either way, and when it exits.  A reader adds its own thread's
** pending changes, so the totals are exact as far as the calling thread
** goes (a single-threaded host sees every byte) and lag at most
** COUNT_BATCH behind for each other thread.
*/
#define COUNT_BATCH ((int64_t)1 << 20)
static _Atomic uint64_t bytes_allocated;
static _Atomic int64_t bytes_live;
static _Thread_local struct { uint64_t alloc; int64_t live; } pending;
static _Thread_local int thread_cache_armed;

static void count_flush(void) {
  atomic_fetch_add_explicit(&bytes_allocated, pending.alloc, memory_order_relaxed);
  atomic_fetch_add_explicit(&bytes_live, pending.live, memory_order_relaxed);
  pending.alloc = 0;
  pending.live = 0;
}

/* The sums are flushed when their thread exits by the same destructor
   that empties its free lists, armed the first time the thread frees a
   tensor header (header_free) -- which any thread that runs ops does at
   once -- so counting itself checks nothing.  (A thread that never
   frees a tensor leaves its last sums, under COUNT_BATCH, uncounted.) */
/* The peak of the live bytes (ember_peak_bytes_live), as this thread sees
   them.  Two plain loads an allocation; the locked exchange only when
   the peak grows, which a training loop does in its first steps. */
static _Atomic int64_t bytes_peak;

static void note_peak(void) {
  int64_t now = atomic_load_explicit(&bytes_live, memory_order_relaxed) + pending.live;
  int64_t p = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
  while (now > p &&
         !atomic_compare_exchange_weak_explicit(&bytes_peak, &p, now,
                                                memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

static void count_alloc(size_t n) {
  pending.alloc += n;
  pending.live += (int64_t)n;
  if (pending.alloc >= (uint64_t)COUNT_BATCH) count_flush();
  note_peak();
}

static void count_free(size_t n) {
  pending.live -= (int64_t)n;
  if (pending.live <= -COUNT_BATCH) count_flush();
}

uint64_t ember_bytes_allocated(void) {
  return atomic_load_explicit(&bytes_allocated, memory_order_relaxed) + pending.alloc;
}
size_t ember_bytes_live(void) {
  int64_t n = atomic_load_explicit(&bytes_live, memory_order_relaxed) + pending.live;
  return n > 0 ? (size_t)n : 0;   /* another thread's frees may be ahead */
}

size_t ember_peak_bytes_live(void) {
  int64_t n = atomic_load_explicit(&bytes_peak, memory_order_relaxed);
  return n > 0 ? (size_t)n : 0;
}

void ember_reset_peak_bytes(void) {
  int64_t n = atomic_load_explicit(&bytes_live, memory_order_relaxed) + pending.live;
  atomic_store_explicit(&bytes_peak, n > 0 ? n : 0, memory_order_relaxed);
}

static const ember_backend_i *backend_for(ember_device dev) {
  return ember_device_backend(dev);
}

const ember_backend_i *ember_backend_of(const ember_tensor *t) {
  return backend_for(t->storage->device);
}

/*
** CPU storage comes in one block with its header: [header | pad | data],
** the data 64-byte aligned.  One malloc per tensor instead of two matters
** for small tensors, where allocation is most of an op's cost.  Other
** devices allocate the data through their backend.
*/
#define HEADER_SPACE ((sizeof(ember_storage) + EMBER_ALIGN - 1) / EMBER_ALIGN * EMBER_ALIGN)

/*
** Big CPU blocks (BIG_MIN bytes and up) are kept for reuse when freed, up
** to BIG_KEEP bytes in all.  A training step allocates the same sizes
** every step, and a block that glibc hands back to the kernel (mmap'd,
** or trimmed off the heap's top) costs a page fault per 4 KiB when it is
** allocated again: the kernel zeroes every page.  A request takes a kept
** block of its size class (sizes rounded up to an eighth of their power
** of two), the most recently kept first; the oldest go when the total
** passes BIG_KEEP or the list is full.  One spin lock: big blocks come a
** few dozen a step.  Under AddressSanitizer nothing is kept, so that it
** sees every use after free.
*/
#define BIG_MIN ((size_t)64 << 10)
#if defined(__SANITIZE_ADDRESS__)
#define BIG_KEEP ((size_t)0)
#else
#define BIG_KEEP ((size_t)32 << 20)
#endif
#define BIG_SLOTS 64

static struct {
  atomic_flag lock;
  int n;
  size_t total;
  void *blk[BIG_SLOTS];
  size_t size[BIG_SLOTS];                  /* oldest first */
} big = {ATOMIC_FLAG_INIT, 0, 0, {0}, {0}};

static size_t big_class(size_t bytes) {
  size_t p = (size_t)1 << (63 - __builtin_clzll((unsigned long long)bytes));
  size_t step = p >= 8 ? p / 8 : 1;
  return (bytes + step - 1) / step * step;
}

static void big_lock(void) {
  while (atomic_flag_test_and_set_explicit(&big.lock, memory_order_acquire)) {
  }
}
static void big_unlock(void) {
  atomic_flag_clear_explicit(&big.lock, memory_order_release);
}

/* A block of size class cls: a kept one, else a new one (NULL: none). */
static void *big_get(size_t cls) {
  big_lock();
  for (int k = big.n - 1; k >= 0; k--)
    if (big.size[k] == cls) {
      void *b = big.blk[k];
      memmove(big.blk + k, big.blk + k + 1, (size_t)(big.n - k - 1) * sizeof *big.blk);
      memmove(big.size + k, big.size + k + 1, (size_t)(big.n - k - 1) * sizeof *big.size);
      big.n--;
      big.total -= cls;
      big_unlock();
      return b;
    }
  big_unlock();
  return malloc(cls);
}

static void big_put(void *b, size_t cls) {
  if (cls > BIG_KEEP) {
    free(b);
    return;
  }
  void *drop[BIG_SLOTS + 1];
  int nd = 0;
  big_lock();
  big.blk[big.n] = b;                      /* room: n < BIG_SLOTS here */
  big.size[big.n++] = cls;
  big.total += cls;
  int k = 0;
  while (big.total > BIG_KEEP || big.n - k >= BIG_SLOTS) {
    big.total -= big.size[k];
    drop[nd++] = big.blk[k++];
  }
  if (k > 0) {
    memmove(big.blk, big.blk + k, (size_t)(big.n - k) * sizeof *big.blk);
    memmove(big.size, big.size + k, (size_t)(big.n - k) * sizeof *big.size);
    big.n -= k;
  }
  big_unlock();
  for (int i = 0; i < nd; i++) free(drop[i]);     /* outside the lock */
}

ember_storage *ember_storage_new(ember_device dev, size_t nbytes) {
  const ember_backend_i *be = backend_for(dev);
  if (!be) {   /* a C host reaches this directly (ember_zeros_on, ...) */
    const char *why = dev == EMBER_CUDA ? ember_cuda_unavailable_reason() : NULL;
    if (why) ember_set_error("cuda: CUDA is not available (%s)", why);
    else ember_set_error("device '%s' is not available", ember_device_name(dev));
    return NULL;
  }
  ember_storage *s;
  if (dev == EMBER_CPU) {
    /* one block: malloc aligns to 16; the extra EMBER_ALIGN absorbs the
       shift that aligns the data.  (Not aligned_alloc: glibc's memalign
       splits its blocks so that a freed one cannot serve the next request
       of the same size, and a loop of 1 MiB tensors grows without bound.) */
    if (nbytes > SIZE_MAX - HEADER_SPACE - EMBER_ALIGN) {
      ember_set_error("out of memory allocating %zu bytes", nbytes);
      return NULL;
    }
    size_t whole = HEADER_SPACE + EMBER_ALIGN + nbytes;
    s = whole >= BIG_MIN ? big_get(big_class(whole)) : malloc(whole);
    if (!s) {
      ember_set_error("out of memory allocating %zu bytes", nbytes);
      return NULL;
    }
    uintptr_t d = ((uintptr_t)s + sizeof *s + EMBER_ALIGN - 1) & ~(uintptr_t)(EMBER_ALIGN - 1);
    s->data = (void *)d;
    s->inline_data = STORAGE_INLINE;
  } else {
    s = malloc(sizeof *s);
    if (!s) { ember_set_error("out of memory"); return NULL; }
    /* never a zero-sized block: empty tensors still get a valid pointer */
    s->data = be->alloc(nbytes ? nbytes : 1);
    if (!s->data) {     /* the plugin said why: out of memory, and how much
                           is held, or a device error in its own words */
      free(s);
      return NULL;
    }
    s->inline_data = STORAGE_SEPARATE;
  }
  s->nbytes = nbytes;
  s->refcount = 1;
  s->device = dev;
  s->release = NULL;
  s->release_ctx = NULL;
  s->version = 0;
  count_alloc(nbytes);
  return s;
}

/* The release of host memory wrapped without a callback: nothing to do. */
static void keep_host_memory(void *data, void *ctx) { (void)data; (void)ctx; }

static void fused_free(ember_storage *s);

void ember_storage_release(ember_storage *s) {
  if (!s || --s->refcount > 0) return;
  if (s->inline_data == STORAGE_FUSED) {   /* its host header died first */
    fused_free(s);
    return;
  }
  if (s->release) {
    s->release(s->data, s->release_ctx);
  } else {
    if (s->inline_data == STORAGE_SEPARATE) backend_for(s->device)->free(s->data);
    count_free(s->nbytes);
  }
  if (s->inline_data == STORAGE_INLINE &&
      HEADER_SPACE + EMBER_ALIGN + s->nbytes >= BIG_MIN) {
    big_put(s, big_class(HEADER_SPACE + EMBER_ALIGN + s->nbytes));
    return;
  }
  free(s);
}

/*
** Tensor headers are recycled through a small per-thread free list: a
** tiny op creates and drops one per call, and malloc/free of the header was
** a measurable part of its cost.
*/
#if defined(__SANITIZE_ADDRESS__)
#define HEADER_CACHE 0    /* let AddressSanitizer see every use after free */
#define FUSED_CACHE 0
#else
#define HEADER_CACHE 64
/* Lua's collector finalizes the garbage of a whole cycle together: ~10,000
   tiny tensors for a heap of 500 KiB.  Blocks that do not fit the list go
   back to malloc, which is slow on such bursts (its own cache holds 7). */
#define FUSED_CACHE 8192   /* blocks: at most 3.4 MiB a thread */
#endif
static _Thread_local ember_tensor *header_cache[HEADER_CACHE + 1];
static _Thread_local int header_cached;

static ember_tensor *header_alloc(void) {
  return header_cached > 0 ? header_cache[--header_cached] : malloc(sizeof(ember_tensor));
}

static void header_free(ember_tensor *t) {
  if (!thread_cache_armed) ember_thread_cache_arm();   /* lists and counts */
  if (header_cached < HEADER_CACHE) {
    header_cache[header_cached++] = t;
  } else {
    free(t);
  }
}

/* {======================================================================
** Fused blocks: [ember_tensor | ember_storage | pad | data] in one
** allocation, for CPU tensors of at most FUSED_DATA bytes.
**
** The tensor made with the block (its host) and its storage share the
** memory but not their lifetimes: views made later hold the storage after
** the host header is gone.  The host holds a reference to the storage, so
** the storage's count reaches 0 last, and that frees the block: in
** ember_tensor_release when the host was the only user, in
** ember_storage_release when a view outlived it.  The storage is marked
** STORAGE_FUSED and sits FUSED_STORAGE_AT bytes into the block, which is
** how a header knows it is the host.
** ======================================================================= */

#define FUSED_DATA 128   /* bytes: up to 32 float32 elements */
#define FUSED_STORAGE_AT \
  ((sizeof(ember_tensor) + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *))
/* the EMBER_ALIGN extra absorbs the shift that aligns the data */
#define FUSED_BYTES (FUSED_STORAGE_AT + sizeof(ember_storage) + EMBER_ALIGN + FUSED_DATA)

/* The free list runs through the blocks themselves. */
typedef struct fused_free_block { struct fused_free_block *next; } fused_free_block;
static _Thread_local fused_free_block *fused_list;
static _Thread_local int fused_cached;

/* A fresh contiguous CPU tensor of nbytes <= FUSED_DATA; NULL on failure. */
static ember_tensor *fused_new(ember_dtype dt, int ndim, const int64_t *shape,
                               size_t nbytes) {
  char *block;
  if (fused_list) {
    block = (char *)fused_list;
    fused_list = fused_list->next;
    fused_cached--;
  } else if (!(block = malloc(FUSED_BYTES))) {
    ember_set_error("out of memory allocating %zu bytes", nbytes);
    return NULL;
  }
  ember_tensor *t = (ember_tensor *)block;
  ember_storage *s = (ember_storage *)(block + FUSED_STORAGE_AT);
  uintptr_t d = ((uintptr_t)(s + 1) + EMBER_ALIGN - 1) & ~(uintptr_t)(EMBER_ALIGN - 1);
  s->data = (void *)d;
  s->nbytes = nbytes;
  s->refcount = 1;             /* the host's reference */
  s->device = EMBER_CPU;
  s->release = NULL;
  s->release_ctx = NULL;
  s->inline_data = STORAGE_FUSED;
  s->version = 0;
  count_alloc(nbytes);
  t->storage = s;
  t->offset = 0;
  t->ndim = ndim;
  t->dtype = dt;
  t->refcount = 1;
  t->grad_info = NULL;
  int64_t st = 1;               /* contiguous strides, as ember_contiguous_strides */
  for (int i = ndim - 1; i >= 0; i--) {
    t->shape[i] = shape[i];
    t->strides[i] = st;
    st *= shape[i] > 0 ? shape[i] : 1;
  }
  return t;
}

/* The storage of a fused block is dead, and so is its host: recycle. */
static void fused_free(ember_storage *s) {
  count_free(s->nbytes);
  fused_free_block *block = (fused_free_block *)((char *)s - FUSED_STORAGE_AT);
  if (fused_cached < FUSED_CACHE) {
    if (!thread_cache_armed) ember_thread_cache_arm();
    block->next = fused_list;
    fused_list = block;
    fused_cached++;
  } else {
    free(block);
  }
}

/* }====================================================================== */

/*
** The free lists are per thread, and a thread that ends must not take its
** blocks with it (a host may run Lua on a pool of short-lived threads): the
** first time a thread keeps a block, a pthread key's destructor is set to
** empty its lists, autograd.c's included, when it exits.  (The main thread's
** go with the process.)
*/
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;
static int cache_key_ok;

static void thread_caches_drop(void *unused) {
  (void)unused;
  thread_cache_armed = 0;       /* a later free in this exit re-arms */
  while (header_cached > 0) free(header_cache[--header_cached]);
  while (fused_list) {
    fused_free_block *b = fused_list;
    fused_list = b->next;
    free(b);
  }
  fused_cached = 0;
  ember_ag_cache_drop();
  count_flush();
}

static void cache_key_make(void) {
  cache_key_ok = pthread_key_create(&cache_key, thread_caches_drop) == 0;
}

void ember_thread_cache_arm(void) {
  thread_cache_armed = 1;
  pthread_once(&cache_key_once, cache_key_make);
  /* any non-NULL value: the destructor runs only for those */
  if (cache_key_ok) pthread_setspecific(cache_key, &thread_cache_armed);
}

void ember_tensor_retain(ember_tensor *t) { t->refcount++; }

void ember_tensor_release(ember_tensor *t) {
  if (!t || --t->refcount > 0) return;
  if (t->grad_info) {
    ember_ag_meta_free(t->grad_info);
    t->grad_info = NULL;
  }
  ember_storage *s = t->storage;
  if (s->inline_data == STORAGE_FUSED && (char *)s - FUSED_STORAGE_AT == (char *)t) {
    /* the host of a fused block: the block goes with the last reference */
    if (--s->refcount == 0) fused_free(s);
    return;
  }
  ember_storage_release(s);
  header_free(t);
}

void ember_contiguous_strides(int ndim, const int64_t *shape,
                              int64_t *strides) {
  int64_t st = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = st;
    st *= shape[i] > 0 ? shape[i] : 1;
  }
}

ember_tensor *ember_tensor_make(ember_storage *s, ember_dtype dt, int ndim,
                                const int64_t *shape, const int64_t *strides,
                                int64_t offset) {
  ember_tensor *t = header_alloc();
  if (!t) { ember_set_error("out of memory"); return NULL; }
  t->storage = s;
  s->refcount++;
  t->offset = offset;
  t->ndim = ndim;
  t->dtype = dt;
  t->refcount = 1;
  t->grad_info = NULL;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->strides[i] = strides[i];
  }
  return t;
}

ember_tensor *ember_tensor_alias(const ember_tensor *t, int ndim,
                                 const int64_t *shape, const int64_t *strides,
                                 int64_t offset) {
  return ember_tensor_make(t->storage, t->dtype, ndim, shape, strides, offset);
}

int ember_check_shape(const char *fn, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > EMBER_MAX_DIMS)
    return ember_set_error("%s: at most %d dimensions are supported, got %d",
                           fn, EMBER_MAX_DIMS, ndim);
  /* The product of the sizes, a zero counted as one: the strides are
  ** products of trailing sizes, so they must fit even when a zero-size
  ** dimension makes the element count 0 ([0, 2^62, 2^62]). */
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return ember_set_error("%s: size of dimension %d must be >= 0, got %lld",
                             fn, i + 1, (long long)shape[i]);
    /* (below 2^29 both, the product fits: skip the division) */
    if (shape[i] > 1 && (n | shape[i]) >= ((int64_t)1 << 29) &&
        n > INT64_MAX / 16 / shape[i])
      return ember_set_error("%s: shape is too large (element count "
                             "overflows)", fn);
    if (shape[i] > 1) n *= shape[i];
  }
  return 0;
}

ember_tensor *ember_empty_on(ember_device dev, int ndim, const int64_t *shape,
                             ember_dtype dt) {
  if ((unsigned)dt >= EMBER_NDTYPES) {
    ember_set_error("empty: bad dtype");
    return NULL;
  }
  if (ember_check_shape("empty", ndim, shape) < 0) return NULL;
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  size_t es = ember_dtype_size(dt);
  /* (the division only where it can matter: it costs a tiny op dearly) */
  if ((uint64_t)n >= ((uint64_t)1 << 40) &&
      (uint64_t)n > (uint64_t)(SIZE_MAX / 2) / es) {
    ember_set_error("empty: %lld elements do not fit in memory", (long long)n);
    return NULL;
  }
  if (dev == EMBER_CPU && (size_t)n * es <= FUSED_DATA)
    return fused_new(dt, ndim, shape, (size_t)n * es);
  int64_t strides[EMBER_MAX_DIMS];
  ember_contiguous_strides(ndim, shape, strides);
  ember_storage *s = ember_storage_new(dev, (size_t)n * es);
  if (!s) return NULL;
  ember_tensor *t = ember_tensor_make(s, dt, ndim, shape, strides, 0);
  ember_storage_release(s);   /* the tensor holds the only reference */
  return t;
}

ember_tensor *ember_empty(int ndim, const int64_t *shape, ember_dtype dt) {
  return ember_empty_on(EMBER_CPU, ndim, shape, dt);
}

ember_tensor *ember_from_blob(void *data, ember_dtype dt, int ndim,
                              const int64_t *shape, const int64_t *strides,
                              ember_release_fn release, void *ctx) {
  if (!data) { ember_set_error("from_blob: data is NULL"); return NULL; }
  if ((unsigned)dt >= EMBER_NDTYPES) {
    ember_set_error("from_blob: bad dtype");
    return NULL;
  }
  if (ember_check_shape("from_blob", ndim, shape) < 0) return NULL;
  int64_t st[EMBER_MAX_DIMS];
  if (strides) memcpy(st, strides, (size_t)ndim * sizeof *st);
  else ember_contiguous_strides(ndim, shape, st);
  for (int i = 0; i < ndim; i++)
    if (st[i] < 0) {
      ember_set_error("from_blob: negative strides are not supported");
      return NULL;
    }
  /* the extent of the block the view spans, for the storage's nbytes */
  int64_t last = 0;
  int empty = 0;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 0) empty = 1;
    else last += (shape[i] - 1) * st[i];
  }
  ember_storage *s = malloc(sizeof *s);
  if (!s) { ember_set_error("out of memory"); return NULL; }
  s->data = data;
  s->nbytes = empty ? 0 : (size_t)(last + 1) * ember_dtype_size(dt);
  s->refcount = 1;
  s->device = EMBER_CPU;
  /* never NULL for host memory: NULL means "Ember owns and frees it" */
  s->release = release ? release : keep_host_memory;
  s->release_ctx = ctx;
  s->inline_data = STORAGE_SEPARATE;
  s->version = 0;
  ember_tensor *t = ember_tensor_make(s, dt, ndim, shape, st, 0);
  if (!t) { free(s); return NULL; }
  s->refcount--;
  return t;
}

int64_t ember_numel(const ember_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

int ember_is_contiguous(const ember_tensor *t) {
  int64_t st = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 1) continue;
    if (t->shape[i] == 0) return 1;
    if (t->strides[i] != st) return 0;
    st *= t->shape[i];
  }
  return 1;
}

void *ember_data(const ember_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)ember_dtype_size(t->dtype);
}

const char *ember_shape_str(char *buf, size_t n, int ndim,
                            const int64_t *shape) {
  size_t k = 0;
  k += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld",
                          (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

int ember_wrap_dim(const char *fn, int dim, int ndim) {
  int n = ndim > 0 ? ndim : 1;
  if (dim < -n || dim >= n)
    return ember_set_error("%s: dimension %d out of range for a %d-d tensor "
                           "(expected 1..%d)", fn, dim >= 0 ? dim + 1 : dim,
                           ndim, n);
  return dim < 0 ? dim + n : dim;
}

/* {======================================================================
** Mapped storage: a tensor's data in a file mapped by core/mapping.c
** (ember.load{mmap = true}).
**
** Each tensor gets a storage of its own over its range of the mapping,
** made by ember_from_blob as for a host's memory, whose release drops one
** reference to the mapping: the file is unmapped when the last storage on
** it dies, whatever order the tensors go in.  Ember owns none of these
** bytes, so ember_bytes_live does not count them (the pages belong to the
** page cache until a write copies one).  A storage is recognised as mapped
** by its release function.
** ======================================================================= */

static void mapped_release(void *data, void *ctx) {
  (void)data;
  ember_mapping_release(ctx);
}

ember_tensor *ember_tensor_mapped(ember_mapping *m, size_t offset,
                                  ember_dtype dt, int ndim,
                                  const int64_t *shape) {
  ember_tensor *t = ember_from_blob((char *)ember_mapping_data(m) + offset, dt,
                                    ndim, shape, NULL, mapped_release, m);
  if (t) ember_mapping_retain(m);   /* the storage's reference */
  return t;
}

int ember_tensor_is_mapped(const ember_tensor *t) {
  return t && t->storage->release == mapped_release;
}

int ember_check_mapped(const ember_tensor *t) {
  /* one load in the common case: no fault has ever happened */
  if (ember_mapping_faults() == 0 || !ember_tensor_is_mapped(t)) return 0;
  const ember_mapping *m = t->storage->release_ctx;
  if (!ember_mapping_lost(m)) return 0;
  return ember_set_error("the file under this mapped tensor shrank or "
                         "changed size ('%s', loaded with mmap): its data "
                         "is lost; load the file again",
                         ember_mapping_path(m));
}

/* }====================================================================== */
