/*
** sampling.cu -- the multinomial kernel (CUDA), the twin of
** core/cpu/sampling.c (whose header states the algorithm): the same part
** totals and running sums in double, the same searches, the same Philox
** counters, function for function, so the same generator state draws the
** same indices on both devices, bit for bit.  The sums and products are
** written with round-to-nearest intrinsics so that nvcc cannot contract
** them into FMAs the CPU does not use.
**
**   k_sums       one thread per (row, chunk): the chunk's part totals,
**                and how many weights are bad (< 0, inf, NaN) or positive;
**   k_rows       one thread per row: the chunk sums, the row's checks
**                (deferred: PyTorch's messages with the row, as the CPU);
**   k_draw       with replacement, one thread per sample;
**   k_draw_without  without, one thread per row, draws in sequence.
*/
#include <float.h>
#include <math.h>

#include "../philox.h"
#include "cuda_internal.h"

#define CHUNK EMBER_MULTINOMIAL_CHUNK
#define PARTS 4
#define PART (CHUNK / PARTS)

template <class T>
struct mn_row {
  const T *w;
  int64_t k, nc;
  const uint64_t *removed;     /* NULL with replacement */
  double *pt, *cp;
};

template <class T>
__device__ static inline double weight(const mn_row<T> &r, int64_t i) {
  if (r.removed && (r.removed[i >> 6] >> (i & 63) & 1)) return 0;
  return (double)r.w[i];
}

__device__ static void part_checks(const double t[PARTS], const double m[PARTS],
                                   int64_t *bad) {
  for (int p = 0; p < PARTS; p++)
    *bad += !(m[p] >= 0) | !(t[p] <= DBL_MAX);
}

/* The CPU's part_sums: the typed four-chain loop for a full chunk of an
   untouched row, else weight by weight. */
template <class T>
__device__ static void part_sums(const mn_row<T> &r, int64_t c,
                                 double t[PARTS], int64_t *bad, int64_t *pos) {
  int64_t base = c * CHUNK;
  if (!r.removed && base + CHUNK <= r.k) {
    const T *w = r.w + base;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, m0 = 0, m1 = 0, m2 = 0, m3 = 0;
    int64_t q = 0;
    for (int i = 0; i < PART; i++) {
      double v0 = w[i], v1 = w[PART + i], v2 = w[2 * PART + i], v3 = w[3 * PART + i];
      m0 = v0 < m0 ? v0 : m0;
      m1 = v1 < m1 ? v1 : m1;
      m2 = v2 < m2 ? v2 : m2;
      m3 = v3 < m3 ? v3 : m3;
      q += (v0 > 0) + (v1 > 0) + (v2 > 0) + (v3 > 0);
      s0 = __dadd_rn(s0, v0);
      s1 = __dadd_rn(s1, v1);
      s2 = __dadd_rn(s2, v2);
      s3 = __dadd_rn(s3, v3);
    }
    const double m[PARTS] = {m0, m1, m2, m3};
    t[0] = s0;
    t[1] = s1;
    t[2] = s2;
    t[3] = s3;
    part_checks(t, m, bad);
    *pos += q;
    return;
  }
  for (int p = 0; p < PARTS; p++) t[p] = 0;
  for (int i = 0; i < PART; i++)
    for (int p = 0; p < PARTS; p++) {
      int64_t at = base + p * PART + i;
      double v = at < r.k ? weight(r, at) : 0;
      *bad += !(v >= 0) | (v == HUGE_VAL);
      *pos += v > 0;
      t[p] = __dadd_rn(t[p], v);
    }
}

template <class T>
__device__ static void chunk_prefix(const mn_row<T> &r, int64_t c0) {
  for (int64_t c = c0; c < r.nc; c++) {
    double s = 0;
    for (int p = 0; p < PARTS; p++) s = __dadd_rn(s, r.pt[c * PARTS + p]);
    r.cp[c + 1] = __dadd_rn(r.cp[c], s);
  }
}

template <class T>
__device__ static int64_t search(const mn_row<T> &r, double u) {
  double target = __dmul_rn(u, r.cp[r.nc]);
  int64_t lo = 0, hi = r.nc;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r.cp[mid + 1] > target) hi = mid; else lo = mid + 1;
  }
  int64_t c = lo;
  if (c == r.nc)
    for (c = r.nc - 1; c > 0 && !(r.cp[c + 1] > r.cp[c]); c--) {}
  const double *t = r.pt + c * PARTS;
  double left = __dsub_rn(target, r.cp[c]), s = 0, before = 0;
  int part = -1, lastp = 0;
  double lastbefore = 0;
  for (int p = 0; p < PARTS && part < 0; p++) {
    double next = __dadd_rn(s, t[p]);
    if (next > left) { part = p; before = s; }
    else if (next > s) { lastp = p; lastbefore = s; }
    s = next;
  }
  if (part < 0) { part = lastp; before = lastbefore; }
  left = __dsub_rn(left, before);
  s = 0;
  int64_t first = c * CHUNK + part * PART, last = first;
  int64_t end = first + PART < r.k ? first + PART : r.k;
  for (int64_t i = first; i < end; i++) {
    double next = __dadd_rn(s, weight(r, i));
    if (next > left) return i;
    if (next > s) last = i;
    s = next;
  }
  return last;
}

__device__ static inline double u01_at(uint64_t seed, uint64_t counter) {
  uint32_t w[4];
  ember_philox(seed, counter, w);
  return __dmul_rn((double)(((uint64_t)w[0] << 32 | w[1]) >> 11), 0x1.0p-53);
}

template <class T>
__device__ static inline mn_row<T> row_of(const T *p, int64_t r, int64_t k,
                                          int64_t nc, double *pt, double *cp) {
  mn_row<T> row = {p + r * k, k, nc, NULL, pt + r * nc * PARTS,
                   cp + r * (nc + 1)};
  return row;
}

template <class T>
__global__ void k_sums(const T *p, int64_t rows, int64_t k, int64_t nc,
                       double *pt, double *cp, int64_t *bad, int64_t *pos,
                       ember_cuda_defer dbad) {
  CU_FOR(cell, rows * nc) {
    int64_t r = cell / nc, b = 0, q = 0;
    mn_row<T> row = row_of(p, r, k, nc, pt, cp);
    part_sums(row, cell % nc, pt + cell * PARTS, &b, &q);
    bad[cell] = b;
    pos[cell] = q;
    if (b) cu_defer_fail(dbad, r);
  }
}

/* per row: the chunk sums and the checks; ok[r] says whether to draw, and
   rowid[r] = r + 1 is the value the deferred messages show */
template <class T>
__global__ void k_rows(const T *p, int64_t rows, int64_t k, int64_t nc,
                       int64_t n, int replacement, double *pt, double *cp,
                       const int64_t *bad, const int64_t *pos, int *ok,
                       int64_t *rowid, ember_cuda_defer dzero,
                       ember_cuda_defer dfew) {
  CU_FOR(r, rows) {
    rowid[r] = r + 1;
    int64_t b = 0, q = 0;
    for (int64_t c = 0; c < nc; c++) {
      b += bad[r * nc + c];
      q += pos[r * nc + c];
    }
    mn_row<T> row = row_of(p, r, k, nc, pt, cp);
    row.cp[0] = 0;
    chunk_prefix(row, 0);
    int good = b == 0;
    if (good && !(row.cp[nc] > 0)) {
      cu_defer_fail(dzero, r);
      good = 0;
    }
    if (good && !replacement && q < n) {
      cu_defer_fail(dfew, r);
      good = 0;
    }
    ok[r] = good;
  }
}

template <class T>
__global__ void k_draw(int64_t *out, const T *p, int64_t rows, int64_t n,
                       int64_t k, int64_t nc, double *pt, double *cp,
                       const int *ok, uint64_t seed, uint64_t counter) {
  CU_FOR(e, rows * n) {
    int64_t r = e / n;
    if (!ok[r]) continue;
    mn_row<T> row = row_of(p, r, k, nc, pt, cp);
    out[e] = search(row, u01_at(seed, counter + (uint64_t)e)) + 1;
  }
}

template <class T>
__global__ void k_draw_without(int64_t *out, const T *p, uint64_t *removed,
                               int64_t rows, int64_t n, int64_t k, int64_t nc,
                               double *pt, double *cp, const int *ok,
                               uint64_t seed, uint64_t counter) {
  int64_t words = (k + 63) / 64;
  CU_FOR(r, rows) {
    if (!ok[r]) continue;
    mn_row<T> row = row_of(p, r, k, nc, pt, cp);
    uint64_t *rm = removed + r * words;
    for (int64_t i = 0; i < words; i++) rm[i] = 0;
    row.removed = rm;
    uint64_t base = counter + (uint64_t)(r * n);
    for (int64_t j = 0; j < n; j++) {
      int64_t i = search(row, u01_at(seed, base + (uint64_t)j));
      out[r * n + j] = i + 1;
      rm[i >> 6] |= (uint64_t)1 << (i & 63);
      int64_t c = i / CHUNK, b = 0, q = 0;
      part_sums(row, c, row.pt + c * PARTS, &b, &q);
      chunk_prefix(row, c);
    }
  }
}

/* The temporaries of one call, from the caching allocator; freed in
   stream order once the kernels are queued. */
struct mn_temps {
  double *pt, *cp;
  uint64_t *removed;
  int64_t *bad, *pos, *rowid;
  int *ok;
};

static void temps_free(mn_temps *t) {
  void *all[] = {t->pt, t->cp, t->removed, t->bad, t->pos, t->rowid, t->ok};
  for (void *p : all)
    if (p) ember_cuda_free(p);
}

int ember_cuda_multinomial(ember_tensor *dst, const ember_tensor *probs,
                           int replacement, uint64_t seed, uint64_t counter) {
  int64_t rows = probs->shape[0], k = probs->shape[1], n = dst->shape[1];
  int64_t nc = (k + CHUNK - 1) / CHUNK;
  mn_temps t = {};
  t.pt = (double *)ember_cuda_alloc((size_t)(rows * nc * PARTS) * sizeof(double));
  t.cp = (double *)ember_cuda_alloc((size_t)(rows * (nc + 1)) * sizeof(double));
  t.bad = (int64_t *)ember_cuda_alloc((size_t)(rows * nc) * sizeof(int64_t));
  t.pos = (int64_t *)ember_cuda_alloc((size_t)(rows * nc) * sizeof(int64_t));
  t.rowid = (int64_t *)ember_cuda_alloc((size_t)rows * sizeof(int64_t));
  t.ok = (int *)ember_cuda_alloc((size_t)rows * sizeof(int));
  if (!replacement)
    t.removed = (uint64_t *)ember_cuda_alloc((size_t)(rows * ((k + 63) / 64)) *
                                             sizeof(uint64_t));
  if (!t.pt || !t.cp || !t.bad || !t.pos || !t.rowid || !t.ok ||
      (!replacement && !t.removed)) {
    temps_free(&t);
    return -1;
  }
  /* three deferred checks, begun in the CPU's order so the first wins */
  ember_cuda_defer dbad, dzero, dfew;
  if (ember_cuda_defer_begin(EMBER_MULTINOMIAL_BAD, ")", &dbad) < 0 ||
      ember_cuda_defer_begin(EMBER_MULTINOMIAL_ZERO, ")", &dzero) < 0 ||
      ember_cuda_defer_begin(EMBER_MULTINOMIAL_FEW, ")", &dfew) < 0) {
    temps_free(&t);
    return -1;
  }
  int64_t *out = (int64_t *)cu_data(dst);
  int rc = ember_cuda_dispatch_float(probs->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    const T *p = (const T *)cu_data(probs);
    k_sums<T><<<cu_blocks(rows * nc), CU_THREADS>>>(p, rows, k, nc, t.pt,
                                                    t.cp, t.bad, t.pos, dbad);
    CU_LAUNCH_CHECK("multinomial");
    k_rows<T><<<cu_blocks(rows), CU_THREADS>>>(p, rows, k, nc, n, replacement,
                                               t.pt, t.cp, t.bad, t.pos, t.ok,
                                               t.rowid, dzero, dfew);
    CU_LAUNCH_CHECK("multinomial");
    if (replacement)
      k_draw<T><<<cu_blocks(rows * n), CU_THREADS>>>(
          out, p, rows, n, k, nc, t.pt, t.cp, t.ok, seed, counter);
    else
      k_draw_without<T><<<cu_blocks(rows), CU_THREADS>>>(
          out, p, t.removed, rows, n, k, nc, t.pt, t.cp, t.ok, seed, counter);
    CU_LAUNCH_CHECK("multinomial");
    return 0;
  });
  cu_layout il;
  il.ndim = 1;
  il.shape[0] = rows;
  il.strides[0] = 1;
  if (rc == 0)
    rc = ember_cuda_defer_end(&dbad, t.rowid, EMBER_INT64, il) < 0 ||
         ember_cuda_defer_end(&dzero, t.rowid, EMBER_INT64, il) < 0 ||
         ember_cuda_defer_end(&dfew, t.rowid, EMBER_INT64, il) < 0 ? -1 : 0;
  temps_free(&t);
  return rc;
}
