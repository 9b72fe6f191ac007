/*
** dist.c -- collectives across the processes of a job (data-parallel
** training), over a communication plugin (libember_mpi.so, core/mpi/).
**
** A process started by a launcher (mpirun, srun: found by the variables
** they set) loads the plugin at ember_dist_init and joins the job; any
** other process is a world of one, without loading anything, where every
** collective is a no-op.  The plugin is looked for first at
** $EMBER_MPI_PLUGIN, then where core/plugin.c looks.
**
** The tensor functions check everything before any process moves a byte:
** their own arguments, then that every rank passed the same (one small
** all-reduce of a signature), so a mismatch is the same error on every
** rank rather than a hang.  Data moves through host memory: a contiguous
** CPU tensor in place, anything else (a view, a CUDA tensor) through a
** host copy written back with copy_.  Not recorded by autograd.
*/
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "dist.h"
#include "plugin.h"

#define PLUGIN_NAME "libember_mpi.so"

/* The job is the process's (an MPI process is one rank), whichever
   lua_State or thread joins it: init and finalize take `job_lock`, and the
   state is atomic so that any thread may ask.  The collectives themselves
   come from one thread at a time (the plugin asks MPI for
   MPI_THREAD_FUNNELED). */
enum { FRESH, LIVE, FINISHED };
static _Atomic int state = FRESH;
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static const ember_comm_plugin *comm;   /* NULL: a world of one */
static int my_rank, world = 1, local = 1;
static char reason[512];

/* {======================================================================
** Finding the plugin
** ======================================================================= */

static const ember_comm_plugin *loaded;
static pthread_once_t tried = PTHREAD_ONCE_INIT;

static int try_path(const char *path, void *ctx) {
  (void)ctx;
  /* RTLD_GLOBAL: Open MPI opens its own components with dlopen, and they
     look for libmpi's symbols in the global scope */
  ember_comm_init_fn init;
  *(void **)&init = ember_plugin_open(path, RTLD_NOW | RTLD_GLOBAL, EMBER_COMM_INIT, reason,
                                      sizeof reason);
  if (!init) return 0;
  char why[256] = "";
  const ember_comm_plugin *p = init(&ember_plugin_core_api, why, sizeof why);
  if (!p) {
    snprintf(reason, sizeof reason, "%s", why[0] ? why : "the MPI plugin did not start");
    return 1;
  }
  if (p->abi != EMBER_COMM_ABI) {
    snprintf(reason, sizeof reason, "%s speaks plugin ABI %d, this Ember %d", path, p->abi,
             EMBER_COMM_ABI);
    return 1;
  }
  loaded = p;
  reason[0] = '\0';
  return 1;
}

static void search(void) {
  ember_plugin_search(PLUGIN_NAME, "EMBER_MPI_PLUGIN", "mpicc", try_path, NULL, reason,
                      sizeof reason);
}

static const ember_comm_plugin *plugin(void) {
  pthread_once(&tried, search);
  return loaded;
}

/* The variable a launcher set for this process, or NULL: Open MPI's
   mpirun, MPICH's and Intel's hydra, PMIx launchers (srun, prun). */
static const char *launcher(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK",
                                     "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
    if (getenv(vars[i])) return vars[i];
  return NULL;
}

/* }====================================================================== */

/* {======================================================================
** The job
** ======================================================================= */

int ember_dist_is_available(void) { return plugin() != NULL; }

const char *ember_dist_unavailable_reason(void) { return plugin() ? NULL : reason; }

static int init_locked(void);

int ember_dist_init(void) {
  if (state == LIVE) return 0;
  pthread_mutex_lock(&job_lock);
  int rc = init_locked();
  pthread_mutex_unlock(&job_lock);
  return rc;
}

static int init_locked(void) {
  if (state == LIVE) return 0;
  if (state == FINISHED)
    return ember_set_error("init: the distributed job was finalized");
  const char *var = launcher();
  if (!var) {                  /* not started by a launcher: a world of one */
    state = LIVE;
    return 0;
  }
  if (!plugin())
    return ember_set_error("init: this process was started by a launcher (%s is set), "
                           "but MPI is unavailable: %s", var, reason);
  int r, s, l;
  if (loaded->init(&r, &s, &l) < 0) return -1;
  comm = loaded;
  my_rank = r;
  world = s;
  local = l;
  state = LIVE;
  if (world > 1) ember_threads_share(local);
  return 0;
}

int ember_dist_is_initialized(void) { return state == LIVE; }
int ember_dist_is_finalized(void) { return state == FINISHED; }
int ember_dist_rank(void) { return my_rank; }
int ember_dist_world_size(void) { return world; }
int ember_dist_local_size(void) { return local; }
const char *ember_dist_backend(void) { return comm ? comm->name : "none"; }
const char *ember_dist_version(void) { return comm ? comm->version() : NULL; }

int ember_dist_finalize(void) {
  if (state == FINISHED) return 0;
  pthread_mutex_lock(&job_lock);
  int rc = 0;
  if (state != FINISHED) {
    if (comm) rc = comm->finalize();
    comm = NULL;
    world = 1;
    my_rank = 0;
    state = FINISHED;
  }
  pthread_mutex_unlock(&job_lock);
  return rc;
}

void ember_dist_abort(int code) {
  if (comm && world > 1) {
    fflush(stdout);
    fflush(stderr);
    comm->abort(code);
  }
}

static int live(const char *fn) {
  if (state == FINISHED)
    return ember_set_error("%s: the distributed job was finalized", fn);
  if (state == FRESH && ember_dist_init() < 0) return -1;
  return 0;
}

int ember_dist_barrier(void) {
  if (live("barrier") < 0) return -1;
  return comm ? comm->barrier("barrier") : 0;
}

/* }====================================================================== */

/* {======================================================================
** Checks
** ======================================================================= */

static int check_tensor(const char *fn, const ember_tensor *t, int i) {
  if (!t) {
    if (i < 0) return ember_set_error("%s: expected a tensor", fn);
    return ember_set_error("%s: tensor %d is NULL", fn, i + 1);
  }
  return 0;
}

/* A list of n tensors (n may be 0). */
static int check_list(const char *fn, ember_tensor *const *ts, int n) {
  if (n < 0) return ember_set_error("%s: negative tensor count", fn);
  if (n > 0 && !ts) return ember_set_error("%s: no tensor list", fn);
  for (int i = 0; i < n; i++)
    if (check_tensor(fn, ts[i], n == 1 ? -1 : i) < 0) return -1;
  return 0;
}

static int check_op(const char *fn, const ember_tensor *t, ember_reduce_op op) {
  if (op != EMBER_SUM && op != EMBER_MEAN && op != EMBER_MAX && op != EMBER_MIN)
    return ember_set_error("%s: the reduction must be sum, mean, max or min", fn);
  if (op == EMBER_MEAN && !ember_dtype_is_float(t->dtype))
    return ember_set_error("%s: 'mean' needs a floating tensor, got %s (use 'sum')", fn,
                           ember_dtype_name(t->dtype));
  if (op == EMBER_SUM && t->dtype == EMBER_BOOL)
    return ember_set_error("%s: 'sum' of bool tensors: use 'max' (any) or 'min' (all)", fn);
  return 0;
}

/* Every rank passed the same: `n` values agree across ranks, found with
   one all-reduce of their maxima and negated minima.  On a mismatch every
   rank gets the same error, `what` naming value i ("#..." names a
   fingerprint, whose values mean nothing to a reader). */
#define SIG_MAX 6
static int agree(const char *fn, int n, const int64_t *v, const char *const *what) {
  if (!comm || world == 1) return 0;
  int64_t buf[2 * SIG_MAX];
  for (int i = 0; i < n; i++) {
    buf[i] = v[i];
    buf[n + i] = -v[i];
  }
  if (comm->all_reduce(fn, buf, (size_t)(2 * n), EMBER_INT64, EMBER_COMM_MAX) < 0) return -1;
  for (int i = 0; i < n; i++) {
    if (buf[i] == -buf[n + i]) continue;
    if (what[i][0] == '#')
      return ember_set_error("%s: the ranks passed different arguments: %s differ", fn,
                             what[i] + 1);
    return ember_set_error("%s: the ranks passed different arguments: %s is %lld on "
                           "rank %d, and ranges over %lld..%lld across ranks", fn, what[i],
                           (long long)v[i], my_rank + 1, (long long)-buf[n + i],
                           (long long)buf[i]);
  }
  return 0;
}

/* A fingerprint of a list's dtypes and sizes (FNV-1a), in [0, 2^62).  The
   device is not in it: one rank's tensors may be on a GPU and another's
   not, as data moves through host memory. */
static int64_t layout_hash(ember_tensor *const *ts, int n) {
  uint64_t h = 1469598103934665603u;
  for (int i = 0; i < n; i++) {
    h = (h ^ (uint64_t)ember_numel(ts[i])) * 1099511628211u;
    h = (h ^ (uint64_t)ts[i]->dtype) * 1099511628211u;
  }
  return (int64_t)(h >> 2);
}

/* }====================================================================== */

/* {======================================================================
** Host staging
** ======================================================================= */

static int is_host_flat(const ember_tensor *t) {
  return t->storage->device == EMBER_CPU && ember_is_contiguous(t);
}

static void *host_data(const ember_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)ember_dtype_size(t->dtype);
}

static size_t nbytes(const ember_tensor *t) {
  return (size_t)ember_numel(t) * ember_dtype_size(t->dtype);
}

/* t's elements, in order, copied into dst (host memory). */
static int pack(void *dst, const ember_tensor *t) {
  if (is_host_flat(t)) {
    memcpy(dst, host_data(t), nbytes(t));
    return 0;
  }
  int prev = ember_ag_pause();
  ember_tensor *h = t->storage->device == EMBER_CPU ? ember_contiguous(t)
                                                    : ember_to_device(t, EMBER_CPU);
  ember_ag_resume(prev);
  if (!h) return -1;
  memcpy(dst, host_data(h), nbytes(t));
  ember_tensor_release(h);
  return 0;
}

/* t's elements from src (host memory), as an in-place write. */
static int unpack(ember_tensor *t, void *src) {
  if (is_host_flat(t)) {
    if (src != host_data(t)) memcpy(host_data(t), src, nbytes(t));
    ember_bump_version(t);
    return 0;
  }
  ember_tensor *v = ember_from_blob(src, t->dtype, t->ndim, t->shape, NULL, NULL, NULL);
  if (!v) return -1;
  int prev = ember_ag_pause();
  int rc = ember_copy_(t, v);
  ember_ag_resume(prev);
  ember_tensor_release(v);
  return rc;
}

/* One host block kept between calls (buckets are the same every step). */
static void *stage;
static size_t stage_cap;

static void *staging(size_t n) {
  if (n == 0) n = 1;                 /* an empty bucket still gets a block */
  if (n <= stage_cap) return stage;
  void *p = NULL;
  if (posix_memalign(&p, 64, n) != 0) {
    ember_set_error("distributed: out of memory for a %zu-byte staging buffer", n);
    return NULL;
  }
  free(stage);
  stage = p;
  stage_cap = n;
  return p;
}

/* The sum divided by the world size (a division, not a product by 1/W:
   exact where PyTorch's average is).  omp simd: -O2 leaves the loop
   scalar, and it cost more than the all-reduce of a CNN's gradients. */
static void scale_mean(void *buf, size_t n, ember_dtype dt) {
  if (dt == EMBER_FLOAT32) {
    float *p = buf, w = (float)world;
#pragma omp simd
    for (size_t i = 0; i < n; i++) p[i] /= w;
  } else if (dt == EMBER_FLOAT64) {
    double *p = buf, w = (double)world;
#pragma omp simd
    for (size_t i = 0; i < n; i++) p[i] /= w;
  }
}

static int comm_op(ember_reduce_op op) {
  return op == EMBER_MAX ? EMBER_COMM_MAX : op == EMBER_MIN ? EMBER_COMM_MIN : EMBER_COMM_SUM;
}

/* }====================================================================== */

/* {======================================================================
** Collectives
** ======================================================================= */

#define DEFAULT_BUCKET ((size_t)25 << 20)   /* PyTorch DDP's bucket_cap_mb */

/* Walk ts in buckets: runs of tensors (of one dtype when one_dtype) up to
   cap bytes (0: DEFAULT_BUCKET), a larger tensor alone.  Where a bucket
   ends depends only on the dtypes and sizes every rank agreed on, so every
   rank makes the same calls.  For each, call(fn, data, bytes, dtype, ctx)
   on the bucket's bytes in host memory: in place when the bucket is one
   contiguous CPU tensor, else in the staging block, into which the
   tensors are packed first when pack_in, and from which they are written
   back after when unpack_out (then they were written: their versions
   move).  Whether a bucket goes in place or through the block is each
   rank's own affair. */
typedef int (*bucket_fn)(const char *fn, void *data, size_t bytes, ember_dtype dt, void *ctx);

static int each_bucket(const char *fn, ember_tensor *const *ts, int n, size_t cap,
                       int one_dtype, int pack_in, int unpack_out, bucket_fn call, void *ctx) {
  if (cap == 0) cap = DEFAULT_BUCKET;
  int i = 0;
  while (i < n) {
    ember_dtype dt = ts[i]->dtype;
    int j = i;
    size_t bytes = 0;
    while (j < n && (!one_dtype || ts[j]->dtype == dt) &&
           (j == i || bytes + nbytes(ts[j]) <= cap))
      bytes += nbytes(ts[j++]);
    if (j == i + 1 && is_host_flat(ts[i])) {
      if (call(fn, host_data(ts[i]), bytes, dt, ctx) < 0) return -1;
      if (unpack_out) ember_bump_version(ts[i]);
      i = j;
      continue;
    }
    char *buf = staging(bytes);
    if (!buf) return -1;
    size_t at = 0;
    for (int k = i; pack_in && k < j; at += nbytes(ts[k++]))
      if (pack(buf + at, ts[k]) < 0) return -1;
    if (call(fn, buf, bytes, dt, ctx) < 0) return -1;
    at = 0;
    for (int k = i; unpack_out && k < j; at += nbytes(ts[k++]))
      if (unpack(ts[k], buf + at) < 0) return -1;
    i = j;
  }
  return 0;
}

static int reduce_bucket(const char *fn, void *data, size_t bytes, ember_dtype dt, void *ctx) {
  ember_reduce_op op = *(const ember_reduce_op *)ctx;
  size_t k = bytes / ember_dtype_size(dt);
  if (comm->all_reduce(fn, data, k, dt, comm_op(op)) < 0) return -1;
  if (op == EMBER_MEAN) scale_mean(data, k, dt);
  return 0;
}

static int broadcast_bucket(const char *fn, void *data, size_t bytes, ember_dtype dt,
                            void *ctx) {
  (void)dt;
  return comm->broadcast(fn, data, bytes, *(int *)ctx);
}

int ember_dist_all_reduce_many(ember_tensor *const *ts, int n, ember_reduce_op op,
                               size_t bucket_bytes) {
  static const char fn[] = "all_reduce";
  if (check_list(fn, ts, n) < 0) return -1;
  for (int i = 0; i < n; i++)
    if (check_op(fn, ts[i], op) < 0) return -1;
  if (live(fn) < 0) return -1;
  if (!comm || world == 1) return 0;
  int64_t total = 0;
  for (int i = 0; i < n; i++) total += ember_numel(ts[i]);
  static const char *const what[] = {"the number of tensors", "the number of elements",
                                     "#the tensors' dtypes or sizes",
                                     "the reduction (1 sum, 2 mean, 4 max, 5 min)"};
  int64_t sig[4] = {n, total, layout_hash(ts, n), (int64_t)op + 1};
  if (agree(fn, 4, sig, what) < 0) return -1;
  return each_bucket(fn, ts, n, bucket_bytes, 1, 1, 1, reduce_bucket, &op);
}

int ember_dist_all_reduce(ember_tensor *t, ember_reduce_op op) {
  return ember_dist_all_reduce_many(&t, 1, op, 0);
}

int ember_dist_broadcast_many(ember_tensor *const *ts, int n, int root, size_t bucket_bytes) {
  static const char fn[] = "broadcast";
  if (check_list(fn, ts, n) < 0 || live(fn) < 0) return -1;
  if (root < 0 || root >= world)
    return ember_set_error("%s: root %d is out of range 1..%d", fn, root + 1, world);
  if (!comm || world == 1) return 0;
  int64_t total = 0;
  for (int i = 0; i < n; i++) total += (int64_t)nbytes(ts[i]);
  static const char *const what[] = {"the number of tensors", "the number of bytes",
                                     "#the tensors' dtypes or sizes", "root"};
  int64_t sig[4] = {n, total, layout_hash(ts, n), root + 1};
  if (agree(fn, 4, sig, what) < 0) return -1;
  int mine = my_rank == root;
  return each_bucket(fn, ts, n, bucket_bytes, 0, mine, !mine, broadcast_bucket, &root);
}

int ember_dist_broadcast(ember_tensor *t, int root) {
  return ember_dist_broadcast_many(&t, 1, root, 0);
}

ember_tensor *ember_dist_all_gather(const ember_tensor *t) {
  static const char fn[] = "all_gather";
  if (check_tensor(fn, t, -1) < 0 || live(fn) < 0) return NULL;
  if (t->ndim >= EMBER_MAX_DIMS) {
    ember_set_error("%s: a %d-dim tensor gathers to %d dims, more than %d", fn, t->ndim,
                    t->ndim + 1, EMBER_MAX_DIMS);
    return NULL;
  }
  int64_t shape[EMBER_MAX_DIMS];
  shape[0] = world;
  memcpy(shape + 1, t->shape, (size_t)t->ndim * sizeof *shape);
  static const char *const what[] = {"the number of dims", "the number of elements",
                                     "#the shapes", "#the dtypes"};
  uint64_t h = 1469598103934665603u;
  for (int d = 0; d < t->ndim; d++) h = (h ^ (uint64_t)t->shape[d]) * 1099511628211u;
  int64_t sig[4] = {t->ndim, ember_numel(t), (int64_t)(h >> 2), t->dtype};
  if (agree(fn, 4, sig, what) < 0) return NULL;
  ember_tensor *out = ember_empty(t->ndim + 1, shape, t->dtype);
  if (!out) return NULL;
  size_t b = nbytes(t);
  int rc;
  if (!comm || world == 1) {
    rc = pack(host_data(out), t);
  } else if (is_host_flat(t)) {
    rc = comm->all_gather(fn, host_data(t), host_data(out), b);
  } else {
    char *buf = malloc(b ? b : 1);   /* not the staging block: any size, kept by none */
    rc = buf ? pack(buf, t) : ember_set_error("%s: out of memory", fn);
    if (rc == 0) rc = comm->all_gather(fn, buf, host_data(out), b);
    free(buf);
  }
  if (rc == 0 && t->storage->device != EMBER_CPU) {
    int prev = ember_ag_pause();
    ember_tensor *d = ember_to_device(out, t->storage->device);
    ember_ag_resume(prev);
    ember_tensor_release(out);
    return d;
  }
  if (rc < 0) {
    ember_tensor_release(out);
    return NULL;
  }
  return out;
}

/* }====================================================================== */
