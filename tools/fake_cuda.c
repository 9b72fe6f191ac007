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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/device.h"

static const ember_core_api *api;
static ember_backend_i table;
static size_t live, reserved_peak;
static unsigned long long mallocs, frees;

static void *fake_alloc(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 64, n + 64) != 0) {
    api->set_error("fake cuda: out of memory allocating %zu bytes", n);
    return NULL;
  }
  *(size_t *)p = n;                 /* the size, in the first 64 bytes */
  mallocs++;
  live += n;
  if (live > reserved_peak) reserved_peak = live;
  return (char *)p + 64;
}

static void fake_free(void *p) {
  if (!p) return;
  char *base = (char *)p - 64;
  live -= *(size_t *)base;
  frees++;
  free(base);
}

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

#define DEFER(expr)                                                        \
  do {                                                                     \
    if ((expr) < 0) {                                                      \
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
static int f_binary(ember_binary_op op, ember_tensor *d, const ember_tensor *a,
                    const ember_tensor *b) {
  FORWARD(ember_cpu_backend.binary(op, d, a, b));
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
static int to_host(void *dst, const void *src, size_t n) {
  memcpy(dst, src, n);
  return report_sticky();
}
static int from_host(void *dst, const void *src, size_t n) { memcpy(dst, src, n); return 0; }
static int sync(void) { return report_sticky(); }
static void stats(ember_device_stats *out) {
  memset(out, 0, sizeof *out);
  out->allocations = mallocs;
  out->releases = frees;
  out->allocated_bytes = live;
  out->cached_bytes = reserved_peak - live;
}
static void empty_cache(void) { reserved_peak = live; }
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
  (void)why;
  (void)n;
  if (!a || a->abi != EMBER_PLUGIN_ABI) return NULL;
  api = a;
  table = ember_cpu_backend;
  table.name = "fake-cuda";
  table.alloc = fake_alloc;
  table.free = fake_free;
  table.index_select = f_index_select;
  table.gather = f_gather;
  table.index_add = f_index_add;
  table.scatter_add = f_scatter_add;
  table.binary = f_binary;
  table.max_pool2d_backward = f_max_pool2d_backward;
  table.check_index = f_check_index;
  return &plugin;
}
