/*
** sampling.cu -- the multinomial kernel (CUDA), the twin of
** core/cpu/sampling.c: the same chunked running sums in double, the same
** searches, the same Philox counters, function for function, so the same
** generator state draws the same indices on both devices, bit for bit.
** The sums and products are written with round-to-nearest intrinsics so
** that nvcc cannot contract them into FMAs the CPU does not use.
**
**   k_sums       one thread per (row, chunk): the chunk's running sums,
**                and how many weights are bad (< 0, inf, NaN) or positive;
**   k_rows       one thread per row: the chunk sums, the row's checks
**                (deferred: PyTorch's messages with the row, as the CPU);
**   k_draw       with replacement, one thread per sample;
**   k_draw_without  without, one thread per row, draws in sequence.
*/
#include <math.h>

#include "../philox.h"
#include "cuda_internal.h"

#define CHUNK EMBER_MULTINOMIAL_CHUNK

struct mn_row {
  int64_t k, nc;
  double *local, *cp;
};

__device__ static inline mn_row row_of(int64_t r, int64_t k, int64_t nc,
                                       double *local, double *cp) {
  mn_row row = {k, nc, local + r * k, cp + r * (nc + 1)};
  return row;
}

template <class T>
__device__ static double chunk_sums(const mn_row &r, const T *w, int64_t c,
                                    int64_t *bad, int64_t *pos) {
  int64_t lo = c * CHUNK, hi = lo + CHUNK < r.k ? lo + CHUNK : r.k;
  double s = 0;
  for (int64_t i = lo; i < hi; i++) {
    double v = (double)w[i];
    if (!(v >= 0) || isinf(v)) (*bad)++;          /* NaN fails v >= 0 */
    else if (v > 0) (*pos)++;
    s = __dadd_rn(s, v);
    r.local[i] = s;
  }
  return s;
}

__device__ static void chunk_prefix(const mn_row &r, int64_t c0) {
  for (int64_t c = c0; c < r.nc; c++) {
    int64_t last = (c + 1) * CHUNK < r.k ? (c + 1) * CHUNK - 1 : r.k - 1;
    r.cp[c + 1] = __dadd_rn(r.cp[c], r.local[last]);
  }
}

__device__ static int64_t search(const mn_row &r, double u) {
  double target = __dmul_rn(u, r.cp[r.nc]);
  int64_t lo = 0, hi = r.nc;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r.cp[mid + 1] > target) hi = mid; else lo = mid + 1;
  }
  int64_t c = lo;
  if (c == r.nc)
    for (c = r.nc - 1; c > 0 && !(r.cp[c + 1] > r.cp[c]); c--) {}
  int64_t first = c * CHUNK;
  int64_t end = first + CHUNK < r.k ? first + CHUNK : r.k;
  double t2 = __dsub_rn(target, r.cp[c]);
  lo = first;
  hi = end;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (r.local[mid] > t2) hi = mid; else lo = mid + 1;
  }
  if (lo < end) return lo;
  for (lo = end - 1; lo > first && !(r.local[lo] > r.local[lo - 1]); lo--) {}
  return lo;
}

__device__ static inline double u01_at(uint64_t seed, uint64_t counter) {
  uint32_t w[4];
  ember_philox(seed, counter, w);
  return __dmul_rn((double)(((uint64_t)w[0] << 32 | w[1]) >> 11), 0x1.0p-53);
}

template <class T>
__global__ void k_sums(const T *p, int64_t rows, int64_t k, int64_t nc,
                       double *local, double *cp, int64_t *bad,
                       int64_t *pos, ember_cuda_defer dbad) {
  CU_FOR(cell, rows * nc) {
    int64_t r = cell / nc, c = cell % nc, b = 0, q = 0;
    mn_row row = row_of(r, k, nc, local, cp);
    chunk_sums(row, p + r * k, c, &b, &q);
    bad[cell] = b;
    pos[cell] = q;
    if (b) cu_defer_fail(dbad, r);
  }
}

/* per row: the chunk sums and the checks; ok[r] says whether to draw, and
   rowid[r] = r + 1 is the value the deferred messages show */
__global__ void k_rows(int64_t rows, int64_t k, int64_t nc, int64_t n,
                       int replacement, double *local, double *cp,
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
    mn_row row = row_of(r, k, nc, local, cp);
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

__global__ void k_draw(int64_t *out, int64_t rows, int64_t n, int64_t k,
                       int64_t nc, double *local, double *cp, const int *ok,
                       uint64_t seed, uint64_t counter) {
  CU_FOR(e, rows * n) {
    int64_t r = e / n;
    if (!ok[r]) continue;
    mn_row row = row_of(r, k, nc, local, cp);
    out[e] = search(row, u01_at(seed, counter + (uint64_t)e)) + 1;
  }
}

template <class T>
__global__ void k_draw_without(int64_t *out, const T *p, double *work,
                               int64_t rows, int64_t n, int64_t k, int64_t nc,
                               double *local, double *cp, const int *ok,
                               uint64_t seed, uint64_t counter) {
  CU_FOR(r, rows) {
    if (!ok[r]) continue;
    mn_row row = row_of(r, k, nc, local, cp);
    double *w = work + r * k;
    for (int64_t i = 0; i < k; i++) w[i] = (double)p[r * k + i];
    uint64_t base = counter + (uint64_t)(r * n);
    for (int64_t j = 0; j < n; j++) {
      int64_t i = search(row, u01_at(seed, base + (uint64_t)j));
      out[r * n + j] = i + 1;
      w[i] = 0;
      int64_t c = i / CHUNK, b = 0, q = 0;
      chunk_sums(row, w, c, &b, &q);
      chunk_prefix(row, c);
    }
  }
}

/* The temporaries of one call, from the caching allocator; freed in
   stream order once the kernels are queued. */
struct mn_temps {
  double *local, *cp, *work;
  int64_t *bad, *pos, *rowid;
  int *ok;
};

static void temps_free(mn_temps *t) {
  void *all[] = {t->local, t->cp, t->work, t->bad, t->pos, t->rowid, t->ok};
  for (void *p : all)
    if (p) ember_cuda_free(p);
}

int ember_cuda_multinomial(ember_tensor *dst, const ember_tensor *probs,
                           int replacement, uint64_t seed, uint64_t counter) {
  int64_t rows = probs->shape[0], k = probs->shape[1], n = dst->shape[1];
  int64_t nc = (k + CHUNK - 1) / CHUNK;
  mn_temps t = {};
  t.local = (double *)ember_cuda_alloc((size_t)(rows * k) * sizeof(double));
  t.cp = (double *)ember_cuda_alloc((size_t)(rows * (nc + 1)) * sizeof(double));
  t.bad = (int64_t *)ember_cuda_alloc((size_t)(rows * nc) * sizeof(int64_t));
  t.pos = (int64_t *)ember_cuda_alloc((size_t)(rows * nc) * sizeof(int64_t));
  t.rowid = (int64_t *)ember_cuda_alloc((size_t)rows * sizeof(int64_t));
  t.ok = (int *)ember_cuda_alloc((size_t)rows * sizeof(int));
  if (!replacement)
    t.work = (double *)ember_cuda_alloc((size_t)(rows * k) * sizeof(double));
  if (!t.local || !t.cp || !t.bad || !t.pos || !t.rowid || !t.ok ||
      (!replacement && !t.work)) {
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
    k_sums<T><<<cu_blocks(rows * nc), CU_THREADS>>>(p, rows, k, nc, t.local,
                                                    t.cp, t.bad, t.pos, dbad);
    CU_LAUNCH_CHECK("multinomial");
    k_rows<<<cu_blocks(rows), CU_THREADS>>>(rows, k, nc, n, replacement,
                                            t.local, t.cp, t.bad, t.pos, t.ok,
                                            t.rowid, dzero, dfew);
    CU_LAUNCH_CHECK("multinomial");
    if (replacement)
      k_draw<<<cu_blocks(rows * n), CU_THREADS>>>(out, rows, n, k, nc, t.local,
                                                  t.cp, t.ok, seed, counter);
    else
      k_draw_without<T><<<cu_blocks(rows), CU_THREADS>>>(
          out, p, t.work, rows, n, k, nc, t.local, t.cp, t.ok, seed, counter);
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
