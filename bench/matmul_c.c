/*
** matmul_c.c -- the peer of bench/matmul.lua: float32 GEMM through
** cblas_sgemm, called directly from C.
**
** Each argument is a case (default 256 512 1024 2048):
**   n             A and B square [n,n], no transposes;
**   MxNxK[:XY]    C [M,N] = op(A) op(B), op(A) [M,K], op(B) [K,N]; X and Y
**                 (N or T, default NN) say whether A and B are stored
**                 transposed, as the convolution's GEMMs have them
**                 (bench/run.sh lists those shapes and where they come
**                 from).  A stored transposed is [K,M] with lda = M, as a
**                 transposed view a:transpose(1,2) is on the Ember side.
** A and B are uniform in [-1,1); C is written in place (beta 0).  The
** timing method is the one bench/matmul.lua uses, so that the two columns
** of the table measure the same thing:
**   - warm-up calls for >= WARM_S seconds (at least two), which also
**     estimate the cost of one call;
**   - R calls per batch, R chosen so a batch lasts >= BATCH_S seconds
**     (so fewer repetitions for the large sizes);
**   - NBATCH batches timed on the monotonic wall clock; the median batch
**     gives the figure, 2 M N K flops per call.
** Output: a comment line "# openblas <config> threads <n>", then one line
** per case: "<the argument as given> <GFLOP/s>".
** Threads: OpenBLAS reads OPENBLAS_NUM_THREADS (bench/run.sh sets it).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#define NBATCH  5
#define BATCH_S 0.2
#define WARM_S  0.1
/* bounds on a case: each dimension, and each matrix's element count */
#define MAX_DIM   (1L << 20)
#define MAX_ELEMS (1L << 28)

typedef struct {
  long M, N, K;
  int ta, tb;   /* 1: stored transposed */
} gemm_case;

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

/* One dimension at *s, followed by `end` (a character, or '\0'). */
static int parse_dim(const char **s, char end, long *v) {
  char *e;
  if (**s < '0' || **s > '9') return -1;
  *v = strtol(*s, &e, 10);
  if (*e != end || *v < 1 || *v > MAX_DIM) return -1;
  *s = end ? e + 1 : e;
  return 0;
}

/* "n" or "MxNxK" with an optional ":XY" (X, Y in N/T); 0 or -1. */
static int parse_case(const char *arg, gemm_case *c) {
  const char *s = arg;
  memset(c, 0, sizeof *c);
  if (!strchr(arg, 'x')) {
    if (parse_dim(&s, '\0', &c->M) < 0) return -1;
    c->N = c->K = c->M;
    return 0;
  }
  const char *colon = strchr(arg, ':');
  if (parse_dim(&s, 'x', &c->M) < 0 || parse_dim(&s, 'x', &c->N) < 0 ||
      parse_dim(&s, colon ? ':' : '\0', &c->K) < 0)
    return -1;
  if (colon) {
    if (strlen(s) != 2 || !strchr("NT", s[0]) || !strchr("NT", s[1])) return -1;
    c->ta = s[0] == 'T';
    c->tb = s[1] == 'T';
  }
  if (c->M * c->K > MAX_ELEMS || c->K * c->N > MAX_ELEMS || c->M * c->N > MAX_ELEMS)
    return -1;
  return 0;
}

static void gemm(const gemm_case *c, const float *A, const float *B, float *C) {
  cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans,
              c->tb ? CblasTrans : CblasNoTrans, (int)c->M, (int)c->N,
              (int)c->K, 1.0f, A, (int)(c->ta ? c->M : c->K), B,
              (int)(c->tb ? c->K : c->N), 0.0f, C, (int)c->N);
}

int main(int argc, char **argv) {
  static const char *defaults[] = {"256", "512", "1024", "2048"};
  int ncases = argc > 1 ? argc - 1 : 4;
  const char **cases = argc > 1 ? (const char **)argv + 1 : defaults;
  unsigned seed = 42;
  printf("# openblas %s threads %d\n", openblas_get_config(),
         openblas_get_num_threads());
  for (int s = 0; s < ncases; s++) {
    gemm_case c;
    if (parse_case(cases[s], &c) < 0) {
      fprintf(stderr, "matmul_c: bad case '%s': expected n or MxNxK[:NN|NT|TN|TT], "
              "dimensions 1..%ld\n", cases[s], MAX_DIM);
      return 1;
    }
    size_t na = (size_t)(c.M * c.K), nb = (size_t)(c.K * c.N), nc = (size_t)(c.M * c.N);
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B),
          *C = malloc(nc * sizeof *C);
    if (!A || !B || !C) { fprintf(stderr, "matmul_c: out of memory\n"); return 1; }
    fill(A, na, &seed);
    fill(B, nb, &seed);

    double t0 = now(), spent;
    long calls = 0;
    do { gemm(&c, A, B, C); calls++; spent = now() - t0; }   /* warm-up */
    while (calls < 2 || spent < WARM_S);
    long reps = (long)(BATCH_S / (spent / (double)calls)) + 1;

    double secs[NBATCH];
    for (int k = 0; k < NBATCH; k++) {
      t0 = now();
      for (long r = 0; r < reps; r++) gemm(&c, A, B, C);
      secs[k] = now() - t0;
    }
    qsort(secs, NBATCH, sizeof secs[0], cmp_double);
    double flops = 2.0 * (double)c.M * (double)c.N * (double)c.K * (double)reps;
    printf("%s %.1f\n", cases[s], flops / secs[NBATCH / 2] * 1e-9);
    fflush(stdout);
    free(A); free(B); free(C);
  }
  return 0;
}
