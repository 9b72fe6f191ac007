/*
** device.c -- finding and loading the CUDA plugin, and moving tensors
** between devices.
**
** The plugin (libember_cuda.so) is looked for, on first use, where
** core/plugin.c says: $EMBER_CUDA_PLUGIN when it is set, else next to the
** binary that holds this code and a few places from there, then the
** dynamic loader's own search.  Failing all, CUDA is unavailable and ember_cuda_unavailable_reason() says
** why; nothing else changes.
*/
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "device.h"
#include "ops/ops.h"
#include "plugin.h"

#define PLUGIN_NAME "libember_cuda.so"

/* Looked for once per process (pthread_once: two threads may ask first at
   the same time); set before `once` returns, read-only after. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static const ember_device_plugin *plugin;
static char reason[512];

/* The process's device among count: $EMBER_CUDA_DEVICE when set (an
   index; taken modulo count), else the MPI local rank modulo count (one
   rank per device on a multi-GPU node), else 0. */
static int pick_device(int count) {
  const char *vars[] = {"EMBER_CUDA_DEVICE", "OMPI_COMM_WORLD_LOCAL_RANK",
                        "MPI_LOCALRANKID", "SLURM_LOCALID"};
  if (count <= 0) return 0;
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    char *end;
    if (!v || !*v) continue;
    long n = strtol(v, &end, 10);
    if (*end == '\0' && n >= 0) return (int)(n % count);
  }
  return 0;
}

/* Try one path; 1 when a plugin is loaded or a definite answer (no
   device) was given, 0 to keep looking. */
static int try_path(const char *path, void *ctx) {
  (void)ctx;
  ember_plugin_init_fn init;
  *(void **)&init = ember_plugin_open(path, RTLD_NOW | RTLD_LOCAL, EMBER_PLUGIN_INIT, reason,
                                      sizeof reason);
  if (!init) return 0;
  char why[256] = "";
  plugin = init(&ember_plugin_core_api, why, sizeof why);
  if (!plugin) {
    snprintf(reason, sizeof reason, "%s", why[0] ? why : "the CUDA plugin found no device");
    return 1;    /* keep the library loaded: the runtime may have threads */
  }
  if (plugin->abi != EMBER_PLUGIN_ABI) {
    snprintf(reason, sizeof reason, "%s speaks plugin ABI %d, this Ember %d",
             path, plugin->abi, EMBER_PLUGIN_ABI);
    plugin = NULL;
    return 1;
  }
  int count = plugin->device_count(), dev = pick_device(count);
  if (plugin->set_device(dev) < 0) {
    snprintf(reason, sizeof reason, "cannot use CUDA device %d: %s", dev, ember_last_error());
    plugin = NULL;
    return 1;
  }
  reason[0] = '\0';
  return 1;
}

static void load(void) {
  ember_plugin_search(PLUGIN_NAME, "EMBER_CUDA_PLUGIN", "nvcc", try_path, NULL, reason,
                      sizeof reason);
}

const ember_device_plugin *ember_cuda_plugin(void) {
  pthread_once(&once, load);
  return plugin;
}

/* {======================================================================
** Public functions
** ======================================================================= */

int ember_cuda_is_available(void) { return ember_cuda_plugin() != NULL; }

const char *ember_cuda_unavailable_reason(void) {
  return ember_cuda_plugin() ? NULL : reason;
}

int ember_cuda_device_count(void) {
  const ember_device_plugin *p = ember_cuda_plugin();
  return p ? p->device_count() : 0;
}

static const ember_device_plugin *need(const char *fn) {
  const ember_device_plugin *p = ember_cuda_plugin();
  if (!p) ember_set_error("%s: CUDA is not available (%s)", fn, reason);
  return p;
}

/* Waits the core asked the device for, and copies from the host
   (ember_cuda_stats). */
static _Atomic unsigned long long n_syncs, n_uploads;

int ember_cuda_synchronize(void) {
  const ember_device_plugin *p = ember_cuda_plugin();
  if (!p) return 0;
  atomic_fetch_add_explicit(&n_syncs, 1, memory_order_relaxed);
  return p->synchronize();
}

size_t ember_cuda_memory_allocated(void) {
  ember_cuda_counters c;
  ember_cuda_stats(&c);
  return c.allocated_bytes;
}

size_t ember_cuda_memory_reserved(void) {
  ember_cuda_counters c;
  ember_cuda_stats(&c);
  return c.allocated_bytes + c.cached_bytes;
}

void ember_cuda_stats(ember_cuda_counters *out) {
  memset(out, 0, sizeof *out);
  const ember_device_plugin *p = ember_cuda_plugin();
  if (!p) return;
  ember_device_stats d;
  memset(&d, 0, sizeof d);
  p->stats(&d);
  out->syncs = atomic_load_explicit(&n_syncs, memory_order_relaxed);
  out->uploads = atomic_load_explicit(&n_uploads, memory_order_relaxed);
  out->allocations = d.allocations;
  out->releases = d.releases;
  out->allocated_bytes = d.allocated_bytes;
  out->cached_bytes = d.cached_bytes;
}

int ember_cuda_set_device(int n) {
  const ember_device_plugin *p = need("cuda.set_device");
  if (!p) return -1;
  int count = p->device_count();
  if (n < 0 || n >= count)
    return ember_set_error("cuda.set_device: no device cuda:%d (%d device%s: cuda:0..cuda:%d)",
                           n, count, count == 1 ? "" : "s", count - 1);
  int cur = p->get_device();
  if (n == cur) return 0;
  ember_device_stats d;
  memset(&d, 0, sizeof d);
  p->stats(&d);
  if (d.allocated_bytes > 0)
    return ember_set_error("cuda.set_device: cannot move to cuda:%d while %zu bytes of "
                           "tensors live on cuda:%d (Ember uses one device per process: "
                           "set it before making CUDA tensors)", n, d.allocated_bytes, cur);
  p->empty_cache();          /* cached blocks belong to the old device */
  return p->set_device(n);
}

int ember_cuda_current_device(void) {
  const ember_device_plugin *p = ember_cuda_plugin();
  return p ? p->get_device() : -1;
}

void ember_cuda_empty_cache(void) {
  const ember_device_plugin *p = ember_cuda_plugin();
  if (p) p->empty_cache();
}

/* Process-wide, as torch.backends.cuda.matmul.allow_tf32 is. */
static _Atomic int allow_tf32;   /* remembered without a plugin too */

void ember_cuda_set_allow_tf32(int on) {
  atomic_store(&allow_tf32, on != 0);
  const ember_device_plugin *p = ember_cuda_plugin();
  if (p) p->set_allow_tf32(on != 0);
}

int ember_cuda_get_allow_tf32(void) { return atomic_load(&allow_tf32); }

const ember_backend_i *ember_device_backend(ember_device dev) {
  if (dev == EMBER_CPU) return &ember_cpu_backend;
  const ember_device_plugin *p = dev == EMBER_CUDA ? ember_cuda_plugin() : NULL;
  return p ? p->backend : NULL;
}

/* n bytes between devices; one side is the CPU. */
int ember_device_memcpy(ember_device dst_dev, void *dst, ember_device src_dev,
                        const void *src, size_t n) {
  if (n == 0) return 0;
  if (dst_dev == EMBER_CPU && src_dev == EMBER_CPU) {
    memcpy(dst, src, n);
    return 0;
  }
  const ember_device_plugin *p = need("to");
  if (!p) return -1;
  if (dst_dev == EMBER_CPU) {
    atomic_fetch_add_explicit(&n_syncs, 1, memory_order_relaxed);
    return p->to_host(dst, src, n);
  }
  if (src_dev == EMBER_CPU) {
    atomic_fetch_add_explicit(&n_uploads, 1, memory_order_relaxed);
    return p->from_host(dst, src, n);
  }
  return ember_set_error("to: copies between two GPU tensors go through copy_");
}

/* t on dev, without recording: a contiguous copy made on t's device first
   when needed, then one transfer. */
static ember_tensor *to_device_plain(const ember_tensor *t, ember_device dev) {
  if (dev != EMBER_CPU && !need(dev == EMBER_CUDA ? "cuda" : "to")) return NULL;
  ember_tensor *c = ember_contiguous(t);
  ember_tensor *out = c ? ember_empty_on(dev, t->ndim, t->shape, t->dtype) : NULL;
  if (out) {
    size_t nbytes = (size_t)ember_numel(t) * ember_dtype_size(t->dtype);
    if (ember_device_memcpy(dev, out->storage->data, c->storage->device,
                            (char *)c->storage->data +
                                c->offset * (int64_t)ember_dtype_size(c->dtype),
                            nbytes) < 0) {
      ember_tensor_release(out);
      out = NULL;
    }
  }
  ember_tensor_release(c);
  return out;
}

ember_tensor *ember_to_device(const ember_tensor *t, ember_device dev) {
  if ((unsigned)dev > EMBER_CUDA) {
    ember_set_error("to: bad device");
    return NULL;
  }
  if (t->storage->device == dev) {
    ember_tensor_retain((ember_tensor *)t);
    return (ember_tensor *)t;
  }
  ember_tensor *out = to_device_plain(t, dev);
  if (out && ember_ag_active1(t))
    return ember_ag_record_to_device(t, out);
  return out;
}

/* }====================================================================== */
