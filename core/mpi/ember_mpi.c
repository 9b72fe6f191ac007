/*
** ember_mpi.c -- the MPI communication plugin (libember_mpi.so), built by
** mpicc when it is found and loaded by core/dist.c under a launcher.
**
** It works on its own duplicate of MPI_COMM_WORLD, with errors returned
** rather than fatal, so a host program that uses MPI itself is not
** disturbed; it initialises MPI (FUNNELED: only the thread that calls
** Ember calls MPI) unless the host did, and then finalizes only what it
** initialised.  Counts above INT_MAX go in pieces.
*/
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <mpi.h>

#include "../dist.h"

static const ember_core_api *api;
static MPI_Comm comm = MPI_COMM_NULL;
static int we_initialised;
static int world_rank, world_size;

/* The core's error, from an MPI error code. */
static int fail(const char *fn, const char *what, int code) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) len = 0;
  msg[len] = '\0';
  return api->set_error("%s: MPI: %s failed on rank %d (%s)", fn, what, world_rank + 1,
                        len ? msg : "unknown error");
}

static int m_init(int *rank, int *size, int *local_size) {
  int on = 0, done = 0, rc;
  MPI_Initialized(&on);
  MPI_Finalized(&done);
  if (done) return api->set_error("init: MPI was finalized already");
  if (!on) {
    int provided;
    rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return fail("init", "MPI_Init_thread", rc);
    we_initialised = 1;
  }
  if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &comm)) != MPI_SUCCESS)
    return fail("init", "MPI_Comm_dup", rc);
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm, &world_rank);
  MPI_Comm_size(comm, &world_size);
  MPI_Comm node;
  int nsize = 1;
  if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_size(node, &nsize);
    MPI_Comm_free(&node);
  }
  *rank = world_rank;
  *size = world_size;
  *local_size = nsize;
  return 0;
}

static MPI_Datatype mpi_type(ember_dtype dt) {
  switch (dt) {
  case EMBER_FLOAT32: return MPI_FLOAT;
  case EMBER_FLOAT64: return MPI_DOUBLE;
  case EMBER_INT32: return MPI_INT32_T;
  case EMBER_INT64: return MPI_INT64_T;
  case EMBER_UINT8: case EMBER_BOOL: return MPI_UINT8_T;
  default: return MPI_DATATYPE_NULL;
  }
}

#define PIECE ((size_t)1 << 30)   /* elements (or bytes) per call, < INT_MAX */

static int m_all_reduce(const char *fn, void *buf, size_t n, ember_dtype dt, int op) {
  MPI_Datatype t = mpi_type(dt);
  MPI_Op o = op == EMBER_COMM_MAX ? MPI_MAX : op == EMBER_COMM_MIN ? MPI_MIN : MPI_SUM;
  size_t es = dt == EMBER_FLOAT64 || dt == EMBER_INT64 ? 8
             : dt == EMBER_FLOAT32 || dt == EMBER_INT32 ? 4 : 1;
  for (size_t at = 0; at < n; at += PIECE) {
    int k = (int)(n - at < PIECE ? n - at : PIECE);
    int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * es, k, t, o, comm);
    if (rc != MPI_SUCCESS) return fail(fn, "MPI_Allreduce", rc);
  }
  return 0;
}

static int m_broadcast(const char *fn, void *buf, size_t bytes, int root) {
  for (size_t at = 0; at < bytes; at += PIECE) {
    int k = (int)(bytes - at < PIECE ? bytes - at : PIECE);
    int rc = MPI_Bcast((char *)buf + at, k, MPI_BYTE, root, comm);
    if (rc != MPI_SUCCESS) return fail(fn, "MPI_Bcast", rc);
  }
  return 0;
}

static int m_all_gather(const char *fn, const void *send, void *recv, size_t bytes) {
  if (bytes <= PIECE) {
    int rc = MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, comm);
    return rc == MPI_SUCCESS ? 0 : fail(fn, "MPI_Allgather", rc);
  }
  /* a piece at a time: rank r's piece lands at r * bytes + at, through a
     type of k bytes whose extent is a whole slot */
  for (size_t at = 0; at < bytes; at += PIECE) {
    int k = (int)(bytes - at < PIECE ? bytes - at : PIECE);
    MPI_Datatype run, slot;
    int rc = MPI_Type_contiguous(k, MPI_BYTE, &run);
    if (rc != MPI_SUCCESS) return fail(fn, "MPI_Type_contiguous", rc);
    rc = MPI_Type_create_resized(run, 0, (MPI_Aint)bytes, &slot);
    MPI_Type_free(&run);
    if (rc != MPI_SUCCESS) return fail(fn, "MPI_Type_create_resized", rc);
    MPI_Type_commit(&slot);
    rc = MPI_Allgather((const char *)send + at, k, MPI_BYTE, (char *)recv + at, 1, slot, comm);
    MPI_Type_free(&slot);
    if (rc != MPI_SUCCESS) return fail(fn, "MPI_Allgather", rc);
  }
  return 0;
}

static int m_barrier(const char *fn) {
  int rc = MPI_Barrier(comm);
  return rc == MPI_SUCCESS ? 0 : fail(fn, "MPI_Barrier", rc);
}

static void m_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

static int m_finalize(void) {
  if (comm != MPI_COMM_NULL) MPI_Comm_free(&comm);
  int done = 0;
  MPI_Finalized(&done);
  if (we_initialised && !done) {
    int rc = MPI_Finalize();
    if (rc != MPI_SUCCESS) return fail("finalize", "MPI_Finalize", rc);
  }
  return 0;
}

static const char *m_version(void) {
  static char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (!v[0] && MPI_Get_library_version(v, &len) == MPI_SUCCESS) {
    char *nl = strchr(v, '\n');   /* the first line: "Open MPI v4.1.4, ..." */
    if (nl) *nl = '\0';
    char *comma = strchr(v, ',');
    if (comma) *comma = '\0';
  }
  return v;
}

static const ember_comm_plugin table = {
  EMBER_COMM_ABI, "mpi", m_init, m_all_reduce, m_broadcast, m_all_gather, m_barrier,
  m_abort, m_finalize, m_version,
};

const ember_comm_plugin *ember_comm_plugin_init(const ember_core_api *a, char *why,
                                                size_t why_len);

const ember_comm_plugin *ember_comm_plugin_init(const ember_core_api *a, char *why,
                                                size_t why_len) {
  (void)why;
  (void)why_len;
  api = a;
  return &table;
}
