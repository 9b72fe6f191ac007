/*
** allreduce_c.c -- the peer of bench/allreduce.lua: MPI_Allreduce called
** directly from C, in place, on a float32 buffer, summed.
**
**   mpirun -np W bench/allreduce_c [FLOATS [WARM [NBATCH [REPS]]]]
**
** FLOATS: the buffer's length in floats (default 25,000,000: 100 MB);
** WARM: untimed calls first (default 3); NBATCH: timed batches (default
** 9); REPS: calls per batch (default 1).  The buffer is zeros, so the sums
** stay zero (the cost of a float add does not depend on its operands,
** short of subnormals, which zeros never become).
**
** Method, the same in bench/allreduce.lua and bench/dist_torch.py: every
** batch starts after a barrier and is timed on each rank's monotonic
** clock; a batch's time is the slowest rank's (one MPI_Allreduce of the
** times with MPI_MAX at the end); the figure is the median batch (the
** lower middle one, as bench/timing.lua takes it) divided by REPS.  The
** counts are fixed, not chosen from a warm-up as bench/timing.lua does,
** because every rank must make the same number of calls.
**
** Bandwidth, in the convention of NCCL's tests (nccl-tests, PERFORMANCE.md):
**   algorithm bandwidth  algbw = S / t, S the buffer's bytes;
**   bus bandwidth        busbw = algbw * 2 (W-1) / W,
** the rate at which each rank's link carries data in a ring all-reduce
** (each rank sends and receives 2 (W-1)/W S bytes), comparable across
** world sizes.  GB = 10^9 bytes.  With W = 1 there is nothing to move and
** busbw is 0.
**
** Output (rank 0): comment lines (the MPI library, what was timed), then
** "allreduce_ms <ms per call>", "algbw_gbs <GB/s>", "busbw_gbs <GB/s>".
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mpi.h>

#define MAX_FLOATS (1L << 30)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* Argument i as an integer in [min, max], else `dflt` when absent; -1 on
   a bad value (after a message). */
static long int_arg(int argc, char **argv, int i, const char *name, long min, long max,
                    long dflt) {
  if (argc <= i) return dflt;
  char *e;
  long v = strtol(argv[i], &e, 10);
  if (*argv[i] == '\0' || *e != '\0' || v < min || v > max) {
    fprintf(stderr, "allreduce_c: %s must be an integer in %ld..%ld, got '%s'; usage: "
            "allreduce_c [FLOATS [WARM [NBATCH [REPS]]]]\n", name, min, max, argv[i]);
    return -1;
  }
  return v;
}

static int run(int argc, char **argv, int rank, int world) {
  long n = int_arg(argc, argv, 1, "FLOATS", 1, MAX_FLOATS, 25000000);
  long warm = int_arg(argc, argv, 2, "WARM", 0, 1000000, 3);
  long nbatch = int_arg(argc, argv, 3, "NBATCH", 1, 10000, 9);
  long reps = int_arg(argc, argv, 4, "REPS", 1, 1000000, 1);
  if (n < 0 || warm < 0 || nbatch < 0 || reps < 0) return 1;

  float *buf = calloc((size_t)n, sizeof *buf);
  double *secs = malloc((size_t)nbatch * sizeof *secs);
  if (!buf || !secs) {
    fprintf(stderr, "allreduce_c: out of memory for %ld floats\n", n);
    return 1;
  }
  for (long i = 0; i < warm; i++)
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  for (long k = 0; k < nbatch; k++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    for (long r = 0; r < reps; r++)
      MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    secs[k] = now() - t0;
  }
  /* each batch: the slowest rank's time */
  MPI_Allreduce(MPI_IN_PLACE, secs, (int)nbatch, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);

  if (rank == 0) {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = '\0';
    qsort(secs, (size_t)nbatch, sizeof secs[0], cmp_double);
    double t = secs[(nbatch - 1) / 2] / (double)reps;
    double bytes = (double)n * sizeof(float);
    double algbw = bytes / t * 1e-9;
    printf("# mpi %s\n", lib);
    printf("# mpi ranks %d: MPI_Allreduce(MPI_IN_PLACE, float, MPI_SUM) of %ld floats "
           "(%.1f MB), warm-up %ld calls, %ld batches of %ld call(s) each after a barrier, "
           "median batch (slowest rank) per call\n",
           world, n, bytes * 1e-6, warm, nbatch, reps);
    printf("allreduce_ms %.4g\nalgbw_gbs %.3f\nbusbw_gbs %.3f\n", t * 1e3, algbw,
           algbw * 2.0 * (world - 1) / world);
    fflush(stdout);
  }
  free(buf);
  free(secs);
  return 0;
}

int main(int argc, char **argv) {
  int rank, world;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  int rc = run(argc, argv, rank, world);
  /* every rank checks the same arguments: a bad one fails them all */
  if (rc != 0) MPI_Abort(MPI_COMM_WORLD, rc);
  MPI_Finalize();
  return rc;
}
