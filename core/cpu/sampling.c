/*
** sampling.c -- the CPU's multinomial kernel, the `multinomial` slot.
**
** The contract (core/backend.h, EMBER_MULTINOMIAL_CHUNK): a row's weights
** w[0..K) are cut into chunks of C = EMBER_MULTINOMIAL_CHUNK; local[i] is
** the running sum of w inside i's chunk, cp[c] the running sum of the
** chunk totals before chunk c (cp[0] = 0, cp[nc] the row's total), all in
** double, added left to right.  A draw takes u in [0, 1) from 53 bits of
** Philox (counter + r*n + j, as the random kernels), target = u * total,
** the first chunk c with cp[c+1] > target and in it the first i with
** local[i] > target - cp[c].  Such an i has w[i] > 0 (local[i] >
** local[i-1]), so a zero weight is never drawn; rounding may leave no such
** chunk or i, and then the last one with a positive weight is taken.
** Without replacement the drawn weight is set to 0 and only its chunk's
** sums and the chunk sums after it are recomputed: O(K + n * (C + K / C))
** per row, exact, and the same sequence of operations on both devices
** (core/cuda/sampling.cu mirrors every function here).
*/
#include <math.h>
#include <stdlib.h>

#include "../philox.h"
#include "cpu.h"

#define CHUNK EMBER_MULTINOMIAL_CHUNK

/* One row's sums: local[K] and cp[nc + 1]. */
typedef struct {
  int64_t k, nc;
  double *local, *cp;
} mn_row;

/* Chunk c's running sums from w (float32 or float64); returns its total
   and counts the weights that are negative, inf or NaN (*bad) and
   positive (*pos). */
static double chunk_sums(const mn_row *r, const void *w, int f32, int64_t c,
                         int64_t *bad, int64_t *pos) {
  int64_t lo = c * CHUNK, hi = lo + CHUNK < r->k ? lo + CHUNK : r->k;
  double s = 0;
  for (int64_t i = lo; i < hi; i++) {
    double v = f32 ? (double)((const float *)w)[i] : ((const double *)w)[i];
    if (!(v >= 0) || isinf(v)) (*bad)++;          /* NaN fails v >= 0 */
    else if (v > 0) (*pos)++;
    s += v;
    r->local[i] = s;
  }
  return s;
}

/* cp[c0 + 1 ..] from the chunk totals (the last local sum of each). */
static void chunk_prefix(const mn_row *r, int64_t c0) {
  for (int64_t c = c0; c < r->nc; c++) {
    int64_t last = (c + 1) * CHUNK < r->k ? (c + 1) * CHUNK - 1 : r->k - 1;
    r->cp[c + 1] = r->cp[c] + r->local[last];
  }
}

/* The category (0-based) that u in [0, 1) picks. */
static int64_t search(const mn_row *r, double u) {
  double target = u * r->cp[r->nc];
  /* first c with cp[c+1] > target */
  int64_t lo = 0, hi = r->nc;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r->cp[mid + 1] > target) hi = mid; else lo = mid + 1;
  }
  int64_t c = lo;
  if (c == r->nc)                /* rounding: the last chunk with weight */
    for (c = r->nc - 1; c > 0 && !(r->cp[c + 1] > r->cp[c]); c--) {}
  int64_t first = c * CHUNK;
  int64_t end = first + CHUNK < r->k ? first + CHUNK : r->k;
  double t2 = target - r->cp[c];
  lo = first;
  hi = end;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r->local[mid] > t2) hi = mid; else lo = mid + 1;
  }
  if (lo < end) return lo;
  /* rounding: the last i of the chunk whose weight shows in the sums */
  for (lo = end - 1; lo > first && !(r->local[lo] > r->local[lo - 1]); lo--) {}
  return lo;
}

/* uniform in [0, 1) with 53 random bits of (seed, counter) */
static inline double u01_at(uint64_t seed, uint64_t counter) {
  uint32_t w[4];
  ember_philox(seed, counter, w);
  return (double)(((uint64_t)w[0] << 32 | w[1]) >> 11) * 0x1.0p-53;
}

/* Draw n categories without replacement: w (a copy of the row, in
   double) loses each drawn weight, and the sums it fed are recomputed. */
static void draw_without(mn_row *r, double *w, int64_t *out, int64_t n,
                         uint64_t seed, uint64_t counter) {
  for (int64_t j = 0; j < n; j++) {
    int64_t i = search(r, u01_at(seed, counter + (uint64_t)j));
    out[j] = i + 1;
    w[i] = 0;
    int64_t c = i / CHUNK, bad = 0, pos = 0;
    chunk_sums(r, w, 0, c, &bad, &pos);
    chunk_prefix(r, c);
  }
}

int ember_cpu_multinomial(ember_tensor *dst, const ember_tensor *probs,
                          int replacement, uint64_t seed, uint64_t counter) {
  int64_t rows = probs->shape[0], k = probs->shape[1], n = dst->shape[1];
  int64_t nc = (k + CHUNK - 1) / CHUNK;
  int f32 = probs->dtype == EMBER_FLOAT32;
  size_t elt = f32 ? sizeof(float) : sizeof(double);
  const char *p = ember_data(probs);
  int64_t *out = ember_data(dst);
  double *local = malloc((size_t)(rows * k) * sizeof(double));
  double *cp = malloc((size_t)(rows * (nc + 1)) * sizeof(double));
  int64_t *bad = calloc((size_t)rows, sizeof(int64_t));
  int64_t *pos = calloc((size_t)rows, sizeof(int64_t));
  double *work = replacement ? NULL
                             : malloc((size_t)(rows * k) * sizeof(double));
  int rc = -1;
  if (!local || !cp || !bad || !pos || (!replacement && !work)) {
    ember_set_error("multinomial: out of memory");
    goto done;
  }
  /* the sums, every (row, chunk) apart: parallel over both */
  int nt = ember_cpu_threads();
  int64_t cells = rows * nc;
  #pragma omp parallel for num_threads(nt) if (rows * k >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t rc_ = 0; rc_ < cells; rc_++) {
    int64_t r = rc_ / nc, c = rc_ % nc, b = 0, q = 0;
    mn_row row = {k, nc, local + r * k, cp + r * (nc + 1)};
    chunk_sums(&row, p + (size_t)(r * k) * elt, f32, c, &b, &q);
    if (b || q) {
      #pragma omp atomic
      bad[r] += b;
      #pragma omp atomic
      pos[r] += q;
    }
  }
  for (int64_t r = 0; r < rows; r++) {
    mn_row row = {k, nc, local + r * k, cp + r * (nc + 1)};
    row.cp[0] = 0;
    chunk_prefix(&row, 0);
  }
  /* the data errors, in PyTorch's order (any bad weight, then the sums),
     each over every row before the next (the CUDA kernel's order too) */
  for (int64_t r = 0; r < rows; r++)
    if (bad[r]) {
      ember_set_error(EMBER_MULTINOMIAL_BAD "%lld)", (long long)r + 1);
      goto done;
    }
  for (int64_t r = 0; r < rows; r++)
    if (!(cp[r * (nc + 1) + nc] > 0)) {
      ember_set_error(EMBER_MULTINOMIAL_ZERO "%lld)", (long long)r + 1);
      goto done;
    }
  for (int64_t r = 0; r < rows && !replacement; r++)
    if (pos[r] < n) {
      ember_set_error(EMBER_MULTINOMIAL_FEW "%lld)", (long long)r + 1);
      goto done;
    }
  if (replacement) {
    /* every sample apart */
    #pragma omp parallel for num_threads(nt) if (rows * n >= 256)
    for (int64_t e = 0; e < rows * n; e++) {
      int64_t r = e / n;
      mn_row row = {k, nc, local + r * k, cp + r * (nc + 1)};
      out[e] = search(&row, u01_at(seed, counter + (uint64_t)e)) + 1;
    }
  } else {
    #pragma omp parallel for num_threads(nt) if (rows > 1)
    for (int64_t r = 0; r < rows; r++) {
      mn_row row = {k, nc, local + r * k, cp + r * (nc + 1)};
      double *w = work + r * k;
      for (int64_t i = 0; i < k; i++)
        w[i] = f32 ? (double)((const float *)p)[r * k + i]
                   : ((const double *)p)[r * k + i];
      draw_without(&row, w, out + r * n, n, seed,
                   counter + (uint64_t)(r * n));
    }
  }
  rc = 0;
done:
  free(local);
  free(cp);
  free(bad);
  free(pos);
  free(work);
  return rc;
}
