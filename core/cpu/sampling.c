/*
** sampling.c -- the CPU's multinomial kernel, the `multinomial` slot.
**
** The contract (core/backend.h, EMBER_MULTINOMIAL_CHUNK): a row's weights
** w[0..K) are cut into chunks of C = EMBER_MULTINOMIAL_CHUNK, each chunk
** into PARTS parts of C / PARTS (weights past K count as 0).  A part's
** total is its weights added left to right in double (the PARTS parts of a
** chunk are added side by side: independent chains, four times the speed
** of one), a chunk's total the running sum of its part totals, and cp[c]
** the running sum of the chunk totals before chunk c (cp[0] = 0, cp[nc]
** the row's total).  A draw takes u in [0, 1) from 53 bits of Philox
** (counter + r*n + j, as the random kernels), target = u * total, and
** descends: the first chunk whose running sum exceeds the target, then in
** it the first part whose running sum exceeds what is left (target minus
** the sums before), then the first weight likewise.  What is picked at
** each level made its running sum grow, so a zero weight is never drawn;
** rounding may leave nothing that exceeds, and then the last one that made
** its sum grow is taken.  Nothing of size K is stored: the part totals
** (K / 256 of them) and the chunk sums are all a draw needs besides the
** weights, and a draw reads one part of the weights.
**
** Without replacement a drawn category is marked in a bitmap and counts as
** 0 from then on (adding 0 leaves a sum as it is); only its chunk's part
** totals and the running sums after it are recomputed: O(K + n * (C + K / C)) per
** row, exact.  core/cuda/sampling.cu mirrors every function here, so both
** devices make the same additions in the same order.
*/
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "../philox.h"
#include "cpu.h"

#define CHUNK EMBER_MULTINOMIAL_CHUNK

/* One row: its weights, the removed bitmap (NULL with replacement), the
   part totals pt[nc * PARTS] and the running chunk sums cp[nc + 1]. */
typedef struct {
  const void *w;
  int f32;
  int64_t k, nc;
  const uint64_t *removed;
  double *pt, *cp;
} mn_row;

static inline double weight(const mn_row *r, int64_t i) {
  if (r->removed && (r->removed[i >> 6] >> (i & 63) & 1)) return 0;
  return r->f32 ? (double)((const float *)r->w)[i] : ((const double *)r->w)[i];
}

#define PARTS 4
#define PART (CHUNK / PARTS)
_Static_assert(PARTS == 4, "part_sums_f32/_f64 keep four named chains");

/* The part totals t[PARTS] of chunk c; counts the weights that are
   negative, inf or NaN (*bad) and positive (*pos).  A full chunk of an
   untouched row takes the typed loops (the hot path of a draw with
   replacement), which find a bad weight from the parts' smallest weight
   and total (a NaN or +inf makes the total NaN or inf) rather than per
   weight: they count 1 bad weight for a bad part; others read through
   weight(). */
static void part_checks(const double t[PARTS], const double m[PARTS],
                        int64_t *bad) {
  for (int p = 0; p < PARTS; p++)
    *bad += !(m[p] >= 0) | !(t[p] <= DBL_MAX);
}

/* The four-chain loop of a full chunk, once per element type T (the
   chains are named variables: an array would live in memory). */
#define PART_SUMS_TYPED(NAME, T)                                               \
  static void NAME(const T *w, double t[PARTS], int64_t *bad, int64_t *pos) {  \
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, m0 = 0, m1 = 0, m2 = 0, m3 = 0;     \
    int64_t q = 0;                                                             \
    for (int i = 0; i < PART; i++) {                                           \
      double v0 = w[i], v1 = w[PART + i], v2 = w[2 * PART + i],                \
             v3 = w[3 * PART + i];                                             \
      m0 = v0 < m0 ? v0 : m0;                                                  \
      m1 = v1 < m1 ? v1 : m1;                                                  \
      m2 = v2 < m2 ? v2 : m2;                                                  \
      m3 = v3 < m3 ? v3 : m3;                                                  \
      q += (v0 > 0) + (v1 > 0) + (v2 > 0) + (v3 > 0);                         \
      s0 += v0;                                                                \
      s1 += v1;                                                                \
      s2 += v2;                                                                \
      s3 += v3;                                                                \
    }                                                                          \
    const double m[PARTS] = {m0, m1, m2, m3};                                  \
    t[0] = s0;                                                                 \
    t[1] = s1;                                                                 \
    t[2] = s2;                                                                 \
    t[3] = s3;                                                                 \
    part_checks(t, m, bad);                                                    \
    *pos += q;                                                                 \
  }
PART_SUMS_TYPED(part_sums_f32, float)
PART_SUMS_TYPED(part_sums_f64, double)

static void part_sums(const mn_row *r, int64_t c, double t[PARTS],
                      int64_t *bad, int64_t *pos) {
  int64_t base = c * CHUNK;
  if (!r->removed && base + CHUNK <= r->k) {
    if (r->f32) part_sums_f32((const float *)r->w + base, t, bad, pos);
    else part_sums_f64((const double *)r->w + base, t, bad, pos);
    return;
  }
  for (int p = 0; p < PARTS; p++) t[p] = 0;
  for (int i = 0; i < PART; i++)
    for (int p = 0; p < PARTS; p++) {
      int64_t at = base + p * PART + i;
      double v = at < r->k ? weight(r, at) : 0;
      *bad += !(v >= 0) | (v == HUGE_VAL);   /* NaN fails v >= 0 */
      *pos += v > 0;
      t[p] += v;
    }
}

/* cp[c0 + 1 ..] from cp[c0] and the part totals: a chunk's total is the
   running sum of its parts'. */
static void chunk_prefix(const mn_row *r, int64_t c0) {
  for (int64_t c = c0; c < r->nc; c++) {
    double s = 0;
    for (int p = 0; p < PARTS; p++) s += r->pt[c * PARTS + p];
    r->cp[c + 1] = r->cp[c] + s;
  }
}

/* In w[0..n), the first i whose running sum exceeds left, or (rounding)
   the last one that made the sum grow: search's last step, typed. */
static int64_t scan_f32(const float *w, int64_t n, double left) {
  double s = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < n; i++) {
    double next = s + (double)w[i];
    if (next > left) return i;
    if (next > s) last = i;
    s = next;
  }
  return last;
}

static int64_t scan_f64(const double *w, int64_t n, double left) {
  double s = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < n; i++) {
    double next = s + w[i];
    if (next > left) return i;
    if (next > s) last = i;
    s = next;
  }
  return last;
}

/* The category (0-based) that u in [0, 1) picks. */
static int64_t search(const mn_row *r, double u) {
  double target = u * r->cp[r->nc];
  int64_t lo = 0, hi = r->nc;              /* first c with cp[c+1] > target */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r->cp[mid + 1] > target) hi = mid; else lo = mid + 1;
  }
  int64_t c = lo;
  if (c == r->nc)                 /* rounding: the last chunk with weight */
    for (c = r->nc - 1; c > 0 && !(r->cp[c + 1] > r->cp[c]); c--) {}
  /* the part, then the weight, by running sums, as the chunk */
  const double *t = r->pt + c * PARTS;
  double left = target - r->cp[c], s = 0, before = 0;
  int part = -1, lastp = 0;
  double lastbefore = 0;
  for (int p = 0; p < PARTS && part < 0; p++) {
    double next = s + t[p];
    if (next > left) { part = p; before = s; }
    else if (next > s) { lastp = p; lastbefore = s; }
    s = next;
  }
  if (part < 0) { part = lastp; before = lastbefore; }
  left = left - before;
  int64_t first = c * CHUNK + part * PART;
  int64_t end = first + PART < r->k ? first + PART : r->k;
  if (!r->removed && r->f32)             /* the typed loops of a plain row */
    return first + scan_f32((const float *)r->w + first, end - first, left);
  if (!r->removed)
    return first + scan_f64((const double *)r->w + first, end - first, left);
  s = 0;
  int64_t last = first;
  for (int64_t i = first; i < end; i++) {
    double next = s + weight(r, i);
    if (next > left) return i;
    if (next > s) last = i;
    s = next;
  }
  return last;          /* rounding: the last weight that showed in the sum */
}

/* uniform in [0, 1) with 53 random bits of (seed, counter) */
static inline double u01_at(uint64_t seed, uint64_t counter) {
  uint32_t w[4];
  ember_philox(seed, counter, w);
  return (double)(((uint64_t)w[0] << 32 | w[1]) >> 11) * 0x1.0p-53;
}

/* n draws without replacement from row r. */
static void draw_without(mn_row *r, uint64_t *removed, int64_t *out,
                         int64_t n, uint64_t seed, uint64_t counter) {
  r->removed = removed;
  for (int64_t j = 0; j < n; j++) {
    int64_t i = search(r, u01_at(seed, counter + (uint64_t)j));
    out[j] = i + 1;
    removed[i >> 6] |= (uint64_t)1 << (i & 63);
    int64_t c = i / CHUNK, bad = 0, pos = 0;
    part_sums(r, c, r->pt + c * PARTS, &bad, &pos);
    chunk_prefix(r, c);
  }
}

int ember_cpu_multinomial(ember_tensor *dst, const ember_tensor *probs,
                          int replacement, uint64_t seed, uint64_t counter) {
  int64_t rows = probs->shape[0], k = probs->shape[1], n = dst->shape[1];
  int64_t nc = (k + CHUNK - 1) / CHUNK, words = (k + 63) / 64;
  int f32 = probs->dtype == EMBER_FLOAT32;
  size_t elt = f32 ? sizeof(float) : sizeof(double);
  const char *p = ember_data(probs);
  int64_t *out = ember_data(dst);
  double *pt = malloc((size_t)(rows * nc * PARTS) * sizeof(double));
  double *cp = malloc((size_t)(rows * (nc + 1)) * sizeof(double));
  int64_t *bad = calloc((size_t)(rows * nc), sizeof(int64_t));
  int64_t *pos = calloc((size_t)(rows * nc), sizeof(int64_t));
  uint64_t *removed = replacement ? NULL
                    : calloc((size_t)(rows * words), sizeof(uint64_t));
  int rc = -1;
  if (!pt || !cp || !bad || !pos || (!replacement && !removed)) {
    ember_set_error("multinomial: out of memory");
    goto done;
  }
  int nt = ember_cpu_threads();
  /* the part totals, every (row, chunk) apart, then the chunk sums */
  #pragma omp parallel for num_threads(nt) if (rows * k >= EMBER_CPU_PARALLEL_MIN)
  for (int64_t cell = 0; cell < rows * nc; cell++) {
    int64_t r = cell / nc;
    mn_row row = {p + (size_t)(r * k) * elt, f32, k, nc, NULL,
                  pt + r * nc * PARTS, NULL};
    part_sums(&row, cell % nc, pt + cell * PARTS, &bad[cell], &pos[cell]);
  }
  for (int64_t r = 0; r < rows; r++) {
    mn_row row = {NULL, f32, k, nc, NULL, pt + r * nc * PARTS, cp + r * (nc + 1)};
    row.cp[0] = 0;
    chunk_prefix(&row, 0);
  }
  /* the data errors, in PyTorch's order (any bad weight, then the sums),
     each over every row before the next (the CUDA kernel's order too) */
  int64_t first[3] = {-1, -1, -1};
  for (int64_t r = rows - 1; r >= 0; r--) {
    int64_t b = 0, q = 0;
    for (int64_t c = 0; c < nc; c++) {
      b += bad[r * nc + c];
      q += pos[r * nc + c];
    }
    if (b) first[0] = r;
    else if (!(cp[r * (nc + 1) + nc] > 0)) first[1] = r;
    else if (!replacement && q < n) first[2] = r;
  }
  static const char *const msgs[3] = {EMBER_MULTINOMIAL_BAD,
                                      EMBER_MULTINOMIAL_ZERO,
                                      EMBER_MULTINOMIAL_FEW};
  for (int e = 0; e < 3; e++)
    if (first[e] >= 0) {
      ember_set_error("%s%lld)", msgs[e], (long long)first[e] + 1);
      goto done;
    }
  if (replacement) {
    /* a draw costs about a microsecond: threads pay from thousands on */
    #pragma omp parallel for num_threads(nt) if (rows * n >= 4096)
    for (int64_t e = 0; e < rows * n; e++) {
      int64_t r = e / n;
      mn_row row = {p + (size_t)(r * k) * elt, f32, k, nc, NULL,
                    pt + r * nc * PARTS, cp + r * (nc + 1)};
      out[e] = search(&row, u01_at(seed, counter + (uint64_t)e)) + 1;
    }
  } else {
    #pragma omp parallel for num_threads(nt) if (rows > 1)
    for (int64_t r = 0; r < rows; r++) {
      mn_row row = {p + (size_t)(r * k) * elt, f32, k, nc, NULL,
                    pt + r * nc * PARTS, cp + r * (nc + 1)};
      draw_without(&row, removed + r * words, out + r * n, n, seed,
                   counter + (uint64_t)(r * n));
    }
  }
  rc = 0;
done:
  free(pt);
  free(cp);
  free(bad);
  free(pos);
  free(removed);
  return rc;
}
