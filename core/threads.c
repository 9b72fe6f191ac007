/*
** threads.c -- one thread count for OpenBLAS and Ember's own loops.
**
** OpenBLAS runs only inside GEMM calls and Ember's OpenMP loops only
** outside them, so giving both the same count never oversubscribes cores.
** The default is EMBER_NUM_THREADS, else the number of online cores.
*/
#include <stdlib.h>
#include <unistd.h>

#include <cblas.h>

#include "cpu/cpu.h"

static int nthreads = 0;   /* 0: not decided yet */

static int default_threads(void) {
  const char *env = getenv("EMBER_NUM_THREADS");
  if (env && *env) {
    int n = atoi(env);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

void ember_set_num_threads(int n) {
  if (n < 1) n = 1;
  nthreads = n;
  openblas_set_num_threads(n);
}

int ember_get_num_threads(void) {
  if (nthreads == 0) ember_set_num_threads(default_threads());
  return nthreads;
}

int ember_cpu_threads(void) { return ember_get_num_threads(); }
