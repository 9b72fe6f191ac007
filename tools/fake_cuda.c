/*
** fake_cuda.c -- a stand-in CUDA plugin for machines without a GPU.
**
** It answers the plugin interface of core/device.h with the CPU kernels
** over host memory, so that every path of the core, the bindings and the
** Lua library that handles a "cuda" tensor (device checks, transfers,
** autograd across devices, Module:cuda, fit moving batches, the GPU specs
** themselves) runs here.  It proves the plumbing, not the CUDA kernels.
**
** Built for the specs only (make test: build/libember_fakecuda.so) and
** loaded with EMBER_CUDA_PLUGIN.  It carries its own copy of the core
** (linked -Bsymbolic), so errors its kernels raise are forwarded to the
** real core through api->set_error.
*/
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/device.h"
#include "../core/cuda/devcache.h"

static const ember_core_api *api;
static ember_backend_i table;

/* {======================================================================
** Memory: the CUDA plugin's caching allocator (core/cuda/devcache.c) over
** host memory, so the specs see real caching (segments, splits, merges,
** empty_cache, the out-of-memory release and retry), on a device of
** $EMBER_FAKE_CUDA_MEMORY bytes (unlimited when unset)
** ======================================================================= */

static ember_devcache *cache;
static size_t fake_limit, fake_used;   /* 0: unlimited; in segments */

/* Under AddressSanitizer, a block back in the cache is poisoned until it
   is handed out again, so a use of a freed "cuda" tensor's memory is still
   caught although the cache keeps that memory (a freed block is not
   given back to free()). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
static void raw_handed(void *ctx, void *p, size_t n, int live) {
  (void)ctx;
  if (live) ASAN_UNPOISON_MEMORY_REGION(p, n);
  else ASAN_POISON_MEMORY_REGION(p, n);
}
#define RAW_HANDED raw_handed
#else
#define RAW_HANDED NULL
#endif

/* A segment of host memory; "out of memory" past the simulated size.
   Runs under the cache's lock, as fake_used is read. */
#define FAKE_MAX ((size_t)1 << 40)   /* no device has a TiB; nor may ASan's malloc */

static int raw_malloc(void *ctx, void **p, size_t n) {
  (void)ctx;
  if (fake_limit && n > fake_limit - fake_used) return EMBER_DEVCACHE_OOM;
  if (n > FAKE_MAX) return EMBER_DEVCACHE_OOM;
  if (posix_memalign(p, 512, n) != 0) return EMBER_DEVCACHE_OOM;
  fake_used += n;
  return 0;
}

static void raw_free(void *ctx, void *p, size_t n) {
  (void)ctx;
#if defined(__SANITIZE_ADDRESS__)
  ASAN_UNPOISON_MEMORY_REGION(p, n);       /* parts were cached: poisoned */
#endif
  fake_used -= n;
  free(p);
}

static int raw_info(void *ctx, size_t *free_bytes, size_t *total_bytes) {
  (void)ctx;
  if (!fake_limit) return -1;
  *total_bytes = fake_limit;
  *free_bytes = fake_limit - fake_used;
  return 0;
}

/* The simulated device size from the environment: a byte count, or the
   plugin refuses to load, saying why. */
static int read_limit(char *why, size_t n) {
  const char *v = getenv("EMBER_FAKE_CUDA_MEMORY");
  if (!v || !*v) return 0;
  char *end = NULL;
  errno = 0;
  unsigned long long b = strtoull(v, &end, 10);
  if (errno || *end || *v == '-' || b == 0 || b > SIZE_MAX) {
    snprintf(why, n, "EMBER_FAKE_CUDA_MEMORY: expected a positive byte count, got '%s'", v);
    return -1;
  }
  fake_limit = (size_t)b;
  return 0;
}

static void *fake_alloc(size_t n) { return ember_devcache_alloc(cache, n); }
static void fake_free(void *p) { ember_devcache_free(cache, p); }

static void stats(ember_device_stats *out) {
  ember_devcache_counts k;
  ember_devcache_stats(cache, &k);
  memset(out, 0, sizeof *out);
  out->allocations = k.allocations;
  out->releases = k.releases;
  out->allocated_bytes = k.allocated_bytes;
  out->cached_bytes = k.cached_bytes;
}

static void empty_cache(void) { ember_devcache_empty(cache); }

/* }====================================================================== */

/* A kernel that may fail: its message crosses to the real core. */
#define FORWARD(expr)                                                      \
  do {                                                                     \
    int rc_ = (expr);                                                      \
    if (rc_ < 0) return api->set_error("%s", ember_last_error());          \
    return rc_;                                                            \
  } while (0)

/*
** Data errors are deferred as on a GPU (core/device.h): the index kernels
** run the CPU kernel, and a bad index (their only failure) becomes the
** sticky error -- the first one wins -- which the next to_host or
** synchronize reports and clears.  The call itself succeeds; what it wrote
** before it stopped is the "unspecified output" of a deferred error.
*/
static pthread_mutex_t sticky_mu = PTHREAD_MUTEX_INITIALIZER;
static char sticky[1024];
static int has_sticky;
static int sync_mode;      /* EMBER_CUDA_SYNC / CUDA_LAUNCH_BLOCKING: at once */

#define DEFER(expr)                                                        \
  do {                                                                     \
    if ((expr) < 0) {                                                      \
      if (sync_mode) return api->set_error("%s", ember_last_error());     \
      pthread_mutex_lock(&sticky_mu);                                      \
      if (!has_sticky) {                                                   \
        snprintf(sticky, sizeof sticky, "%s", ember_last_error());         \
        has_sticky = 1;                                                    \
      }                                                                    \
      pthread_mutex_unlock(&sticky_mu);                                    \
    }                                                                      \
    return 0;                                                              \
  } while (0)

/* After the (here empty) wait: the sticky error, cleared, or 0. */
static int report_sticky(void) {
  pthread_mutex_lock(&sticky_mu);
  int had = has_sticky;
  has_sticky = 0;
  if (had) api->set_error("%s", sticky);
  pthread_mutex_unlock(&sticky_mu);
  return had ? -1 : 0;
}

static int f_index_select(ember_tensor *d, const ember_tensor *s, int dim,
                          const ember_tensor *i) {
  DEFER(ember_cpu_backend.index_select(d, s, dim, i));
}
static int f_gather(ember_tensor *d, const ember_tensor *s, int dim,
                    const ember_tensor *i) {
  DEFER(ember_cpu_backend.gather(d, s, dim, i));
}
static int f_index_add(ember_tensor *d, int dim, const ember_tensor *i,
                       const ember_tensor *s) {
  DEFER(ember_cpu_backend.index_add(d, dim, i, s));
}
static int f_index_copy(const char *fn, ember_tensor *d, int dim,
                        const ember_tensor *i, const ember_tensor *s) {
  DEFER(ember_cpu_backend.index_copy(fn, d, dim, i, s));
}
static int f_scatter_add(ember_tensor *d, int dim, const ember_tensor *i,
                         const ember_tensor *s) {
  DEFER(ember_cpu_backend.scatter_add(d, dim, i, s));
}
static int f_max_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                 const ember_tensor *idx,
                                 const ember_pool2d_geom *g) {
  DEFER(ember_cpu_backend.max_pool2d_backward(gx, gy, idx, g));
}
static int f_check_index(const ember_tensor *idx, int64_t lo, int64_t hi,
                         int has_skip, int64_t skip, const char *prefix,
                         const char *suffix) {
  DEFER(ember_cpu_backend.check_index(idx, lo, hi, has_skip, skip, prefix,
                                      suffix));
}
static int f_scatter(ember_scatter_reduce op, ember_tensor *d, int dim,
                     const ember_tensor *i, const ember_tensor *s) {
  DEFER(ember_cpu_backend.scatter(op, d, dim, i, s));
}
/* bad weights are a data error, deferred like a bad index */
static int f_multinomial(ember_tensor *d, const ember_tensor *p, int repl,
                         uint64_t seed, uint64_t counter) {
  DEFER(ember_cpu_backend.multinomial(d, p, repl, seed, counter));
}
static int f_binary(ember_binary_op op, ember_tensor *d, const ember_tensor *a,
                    const ember_tensor *b) {
  FORWARD(ember_cpu_backend.binary(op, d, a, b));
}
/* the sort's only failure: no memory for its scratch */
static int f_sort(ember_tensor *v, ember_tensor *i, const ember_tensor *s,
                  int dim, int64_t k, int descending) {
  FORWARD(ember_cpu_backend.sort(v, i, s, dim, k, descending));
}

/* $EMBER_FAKE_CUDA_DEVICES devices (default 1), so that choosing one
   (cuda:1, set_device, the MPI local rank) can be tested. */
static int count(void) {
  const char *v = getenv("EMBER_FAKE_CUDA_DEVICES");
  int n = v ? atoi(v) : 1;
  return n > 0 ? n : 1;
}
static int device;
static int set_device(int n) { device = n; return 0; }
static int get_device(void) { return device; }
/* the deferred error first: a copy that fails writes nothing */
static int to_host(void *dst, const void *src, size_t n) {
  if (report_sticky() < 0) return -1;
  memcpy(dst, src, n);
  return 0;
}
static int from_host(void *dst, const void *src, size_t n) { memcpy(dst, src, n); return 0; }
static int sync(void) { return report_sticky(); }
static int tf32;
static void set_tf32(int on) { tf32 = on; }
static int get_tf32(void) { return tf32; }

static ember_device_plugin plugin = {
  .abi = EMBER_PLUGIN_ABI, .backend = &table, .device_count = count,
  .set_device = set_device, .get_device = get_device, .to_host = to_host,
  .from_host = from_host, .synchronize = sync, .stats = stats,
  .empty_cache = empty_cache, .set_allow_tf32 = set_tf32, .get_allow_tf32 = get_tf32,
};

const ember_device_plugin *ember_device_plugin_init(const ember_core_api *a,
                                                    char *why, size_t n);

__attribute__((visibility("default")))
const ember_device_plugin *ember_device_plugin_init(const ember_core_api *a,
                                                    char *why, size_t n) {
  if (!a || a->abi != EMBER_PLUGIN_ABI) return NULL;
  api = a;
  const char *v1 = getenv("EMBER_CUDA_SYNC"), *v2 = getenv("CUDA_LAUNCH_BLOCKING");
  sync_mode = (v1 && *v1 && strcmp(v1, "0") != 0) || (v2 && *v2 && strcmp(v2, "0") != 0);
  if (!cache) {
    if (read_limit(why, n) < 0) return NULL;
    ember_devcache_raw raw = {.malloc = raw_malloc, .free = raw_free, .mem_info = raw_info,
                              .set_error = a->set_error, .handed = RAW_HANDED, .name = "cuda"};
    cache = ember_devcache_new(&raw);
    if (!cache) {
      snprintf(why, n, "fake cuda: out of host memory");
      return NULL;
    }
  }
  table = ember_cpu_backend;
  table.name = "fake-cuda";
  table.alloc = fake_alloc;
  table.free = fake_free;
  table.index_select = f_index_select;
  table.gather = f_gather;
  table.index_add = f_index_add;
  table.index_copy = f_index_copy;
  table.scatter_add = f_scatter_add;
  table.binary = f_binary;
  table.multinomial = f_multinomial;
  table.sort = f_sort;
  table.max_pool2d_backward = f_max_pool2d_backward;
  table.check_index = f_check_index;
  table.scatter = f_scatter;
  return &plugin;
}
