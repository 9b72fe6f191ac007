/*
** threads.c -- one thread count for OpenBLAS and Ember's own loops.
**
** OpenBLAS runs only inside GEMM calls and Ember's OpenMP loops only
** outside them, so giving both the same count never oversubscribes cores.
** The default is EMBER_NUM_THREADS, else the number of online cores; in
** a job of several processes (core/dist.c), this process's share of them.
*/
#define _GNU_SOURCE 1
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <cblas.h>

#include "cpu/cpu.h"
#include "dist.h"

static int nthreads = 0;   /* 0: not decided yet */
static int chosen;         /* set by the user (ember_set_num_threads) */

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
  nthreads = n;
  openblas_set_num_threads(n);
}

void ember_set_num_threads(int n) {
  chosen = 1;
  set_threads(n);
}

int ember_get_num_threads(void) {
  if (nthreads == 0) set_threads(default_threads());
  return nthreads;
}

/* The cores this process may run on, shared among the job's processes on
   this machine (mpirun binds each to its own core or socket, or none). */
void ember_threads_share(int local_size) {
  const char *env = getenv("EMBER_NUM_THREADS");
  if (chosen || (env && *env) || local_size < 1) return;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  int n = online > 0 ? (int)(online / local_size) : 1;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < n)
    n = CPU_COUNT(&set);
  set_threads(n);
}

int ember_cpu_threads(void) { return ember_get_num_threads(); }
