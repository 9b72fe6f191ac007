/*
** matmul_c.c -- the peer of bench/matmul.lua: float32 GEMM through
** cblas_sgemm, called directly from C.
**
** For each n on the command line (default 256 512 1024 2048): A and B are [n,n] uniform in [-1,1), C is
** written in place.  The timing method is the one bench/matmul.lua uses,
** so that the two columns of the table measure the same thing:
**   - warm-up calls for >= WARM_S seconds (at least two), which also
**     estimate the cost of one call;
**   - R calls per batch, R chosen so a batch lasts >= BATCH_S seconds
**     (so fewer repetitions for the large sizes);
**   - NBATCH batches timed on the monotonic wall clock; the median batch
**     gives the figure, 2 n^3 flops per call.
** Output: a comment line "# openblas <config> threads <n>", then one line
** per size:  "<n> <GFLOP/s>".
** Threads: OpenBLAS reads OPENBLAS_NUM_THREADS (bench/run.sh sets it).
*/
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

#define NBATCH  5
#define BATCH_S 0.2
#define WARM_S  0.1

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

static void fill(float *p, size_t count, unsigned *state) {
  for (size_t i = 0; i < count; i++) {
    *state = *state * 1664525u + 1013904223u;          /* LCG, as in Numerical Recipes */
    p[i] = (float)((*state >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
  }
}

static void gemm(int n, const float *A, const float *B, float *C) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f,
              A, n, B, n, 0.0f, C, n);
}

int main(int argc, char **argv) {
  static const int defaults[] = {256, 512, 1024, 2048};
  int nsizes = argc > 1 ? argc - 1 : 4;
  unsigned seed = 42;
  printf("# openblas %s threads %d\n", openblas_get_config(),
         openblas_get_num_threads());
  for (int s = 0; s < nsizes; s++) {
    int n = argc > 1 ? atoi(argv[s + 1]) : defaults[s];
    if (n < 1 || n > 16384) { fprintf(stderr, "matmul_c: bad size '%s'\n", argv[s + 1]); return 1; }
    size_t count = (size_t)n * (size_t)n;
    float *A = malloc(count * sizeof *A), *B = malloc(count * sizeof *B),
          *C = malloc(count * sizeof *C);
    if (!A || !B || !C) { fprintf(stderr, "matmul_c: out of memory\n"); return 1; }
    fill(A, count, &seed);
    fill(B, count, &seed);

    double t0 = now(), spent;
    long calls = 0;
    do { gemm(n, A, B, C); calls++; spent = now() - t0; }   /* warm-up */
    while (calls < 2 || spent < WARM_S);
    long reps = (long)(BATCH_S / (spent / (double)calls)) + 1;

    double secs[NBATCH];
    for (int k = 0; k < NBATCH; k++) {
      t0 = now();
      for (long r = 0; r < reps; r++) gemm(n, A, B, C);
      secs[k] = now() - t0;
    }
    qsort(secs, NBATCH, sizeof secs[0], cmp_double);
    double flops = 2.0 * (double)n * (double)n * (double)n * (double)reps;
    printf("%d %.1f\n", n, flops / secs[NBATCH / 2] * 1e-9);
    fflush(stdout);
    free(A); free(B); free(C);
  }
  return 0;
}
