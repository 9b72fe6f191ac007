/*
** dist.h -- the interface between the core and a communication plugin.
**
** Collectives across processes live in their own shared object (the MPI
** one: libember_mpi.so, built from core/mpi/ by mpicc), loaded by
** core/dist.c when a launcher (mpirun) started this process.  Like a
** device plugin it links none of the core's symbols: it gets the core's
** error function in an ember_core_api and answers with an
** ember_comm_plugin, whose functions move raw host buffers only.  Tensors,
** dtype checks, staging and buckets are the core's (core/dist.c).
*/
#ifndef EMBER_DIST_H
#define EMBER_DIST_H

#include <stddef.h>

#include "device.h"
#include "ember.h"

#define EMBER_COMM_ABI 1

/* The reductions a plugin does; the core's mean is a sum then a scale. */
enum { EMBER_COMM_SUM, EMBER_COMM_MAX, EMBER_COMM_MIN };

/* Functions returning int return 0, or -1 after api->set_error (with
   the function's name in front: "all_reduce: MPI: ..."). */
typedef struct ember_comm_plugin {
  int abi;                                      /* EMBER_COMM_ABI */
  const char *name;                             /* "mpi" */
  /* Join the job: this process's rank (0-based), the job's size, and how
     many of its processes share this machine. */
  int (*init)(int *rank, int *size, int *local_size);
  /* In place over n elements of dtype dt (any of Ember's six; bool only
     with MAX and MIN). */
  int (*all_reduce)(const char *fn, void *buf, size_t n, ember_dtype dt, int op);
  int (*broadcast)(const char *fn, void *buf, size_t bytes, int root);
  /* recv holds size * bytes: rank r's send at r * bytes. */
  int (*all_gather)(const char *fn, const void *send, void *recv, size_t bytes);
  int (*barrier)(const char *fn);
  /* Stop every process of the job now, with this exit status. */
  void (*abort)(int code);
  int (*finalize)(void);
  const char *(*version)(void);                 /* the library's own words */
} ember_comm_plugin;

typedef const ember_comm_plugin *(*ember_comm_init_fn)(const ember_core_api *api,
                                                       char *why, size_t why_len);
#define EMBER_COMM_INIT "ember_comm_plugin_init"

/* Under a job of several processes, `local_size` of them on this machine:
   the thread count becomes this process's share of the cores, unless the
   user chose one (EMBER_NUM_THREADS, ember_set_num_threads). */
void ember_threads_share(int local_size);

#endif
