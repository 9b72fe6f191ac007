/*
** threads.c -- one thread count for OpenBLAS and Ember's own loops.
**
** OpenBLAS runs only inside GEMM calls and Ember's OpenMP loops only
** outside them, so giving both the same count never oversubscribes cores.
** The default is EMBER_NUM_THREADS, else the number of online cores; in
** a job of several processes (core/dist.c), this process's share of them.
*/
#define _GNU_SOURCE 1
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "cpu/cpu.h"
#include "dist.h"

/* Process-wide, as OpenBLAS's count is: every thread's kernels use it.
   Read on every op (an atomic load is a plain one here); set under
   `lock`, since OpenBLAS's setter is not made to be called from two
   threads at once. */
static _Atomic int nthreads = 0;   /* 0: not decided yet */
static _Atomic int chosen;         /* set by the user (ember_set_num_threads) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int default_threads(void) {
  const char *env = getenv("EMBER_NUM_THREADS");
  if (env && *env) {
    int n = atoi(env);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static void set_threads(int n) {
  if (n < 1) n = 1;
  pthread_mutex_lock(&lock);
  atomic_store_explicit(&nthreads, n, memory_order_relaxed);
  openblas_set_num_threads(n);
  pthread_mutex_unlock(&lock);
}

void ember_set_num_threads(int n) {
  atomic_store_explicit(&chosen, 1, memory_order_relaxed);
  set_threads(n);
}

static void set_default(void) {
  if (atomic_load_explicit(&nthreads, memory_order_relaxed) == 0)
    set_threads(default_threads());
}

int ember_get_num_threads(void) {
  int n = atomic_load_explicit(&nthreads, memory_order_relaxed);
  if (n > 0) return n;
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, set_default);
  return atomic_load_explicit(&nthreads, memory_order_relaxed);
}

/* The cores this process may run on, shared among the job's processes on
   this machine (mpirun binds each to its own core or socket, or none). */
void ember_threads_share(int local_size) {
  const char *env = getenv("EMBER_NUM_THREADS");
  if (atomic_load_explicit(&chosen, memory_order_relaxed) || (env && *env) ||
      local_size < 1)
    return;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  int n = online > 0 ? (int)(online / local_size) : 1;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < n)
    n = CPU_COUNT(&set);
  set_threads(n);
}

int ember_cpu_threads(void) { return ember_get_num_threads(); }

/*
** OpenBLAS's kernels for this processor.  Debian's OpenBLAS (0.3.21,
** DYNAMIC_ARCH) picks its kernels from the CPU model, and a model newer
** than it knows (Emerald Rapids, family 6 model 207, say) falls back to
** "Prescott": SSE3 kernels at a quarter of what the AVX-512 ones do
** (bench/NOTES.md).  Only OPENBLAS_CORETYPE, read when the library loads,
** changes the choice, so the `ember` executable asks this first and
** starts itself again with it set.  Never when the user set it.
*/
const char *ember_blas_better_coretype(void) {
  const char *set = getenv("OPENBLAS_CORETYPE");
  if (set && *set) return NULL;
  const char *name = openblas_get_corename();
  if (!name || strcmp(name, "Prescott") != 0) return NULL;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return "Haswell";
#endif
  return NULL;
}
