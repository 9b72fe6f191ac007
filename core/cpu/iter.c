/*
** iter.c -- walking several same-shaped strided tensors row by row.
**
** Most operands are contiguous, and then the iteration space is a single
** row whatever the shape: that case is found first and built directly, and
** a row too short for threads is run by a plain call, so a tiny op spends
** a few nanoseconds here rather than a hundred.
*/
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu.h"

/* ember_is_contiguous, inlined: it runs for every operand of every op. */
static inline int contiguous(const ember_tensor *t) {
  int64_t st = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    int64_t n = t->shape[i];
    if (n == 1) continue;
    if (n == 0) return 1;
    if (t->strides[i] != st) return 0;
    st *= n;
  }
  return 1;
}

/*
** Build the iteration space: drop size-1 dims, then merge dim i into dim
** i+1 whenever, for every operand, stepping once in dim i is the same as
** stepping through all of dim i+1 (stride[i] == shape[i+1] * stride[i+1]).
*/
void ember_cpu_iter_init(ember_cpu_iter *it, int nops,
                         const ember_tensor *const *ops) {
  const ember_tensor *t0 = ops[0];
  it->nops = nops;
  int flat = 1;
  for (int k = 0; k < nops && flat; k++) flat = contiguous(ops[k]);
  if (flat) {                      /* one row of numel elements */
    it->ndim = 1;
    it->shape[0] = ember_numel(t0);
    int64_t es = 0;
    for (int k = 0; k < nops; k++) {
      if (k == 0 || ops[k]->dtype != ops[k - 1]->dtype)
        es = (int64_t)ember_dtype_size(ops[k]->dtype);
      it->strides[k][0] = es;
      it->base[k] = (char *)ops[k]->storage->data + ops[k]->offset * es;
    }
    return;
  }
  int n = 0;
  for (int d = 0; d < t0->ndim; d++) {
    if (t0->shape[d] == 1) continue;
    it->shape[n] = t0->shape[d];
    for (int k = 0; k < nops; k++)
      it->strides[k][n] = ops[k]->strides[d] * (int64_t)ember_dtype_size(ops[k]->dtype);
    n++;
  }
  for (int k = 0; k < nops; k++) it->base[k] = ember_data(ops[k]);
  if (n == 0) {                    /* a scalar: one row of one element */
    it->ndim = 1;
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->strides[k][0] = 0;
    return;
  }
  /* merge from the innermost dim outwards */
  int m = n - 1;                   /* index of the current merged dim */
  int64_t shape[EMBER_MAX_DIMS];
  int64_t strides[EMBER_CPU_MAXOPS][EMBER_MAX_DIMS];
  int out = EMBER_MAX_DIMS - 1;
  shape[out] = it->shape[m];
  for (int k = 0; k < nops; k++) strides[k][out] = it->strides[k][m];
  for (int d = m - 1; d >= 0; d--) {
    int mergeable = 1;
    for (int k = 0; k < nops; k++)
      if (it->strides[k][d] != shape[out] * strides[k][out]) { mergeable = 0; break; }
    if (mergeable) {
      shape[out] *= it->shape[d];
    } else {
      out--;
      shape[out] = it->shape[d];
      for (int k = 0; k < nops; k++) strides[k][out] = it->strides[k][d];
    }
  }
  it->ndim = EMBER_MAX_DIMS - out;
  memcpy(it->shape, shape + out, (size_t)it->ndim * sizeof(int64_t));
  for (int k = 0; k < nops; k++)
    memcpy(it->strides[k], strides[k] + out, (size_t)it->ndim * sizeof(int64_t));
}

/* Pointers to the start of row `r` (rows are the outer dims, row-major). */
static void row_start(const ember_cpu_iter *it, int64_t r, char **p) {
  for (int k = 0; k < it->nops; k++) p[k] = it->base[k];
  for (int d = it->ndim - 2; d >= 0 && r > 0; d--) {
    int64_t i = r % it->shape[d];
    r /= it->shape[d];
    for (int k = 0; k < it->nops; k++) p[k] += i * it->strides[k][d];
  }
}

/* Rows [r0, r1) on this thread, advancing like an odometer. */
static void run_rows(const ember_cpu_iter *it, int64_t r0, int64_t r1,
                     ember_cpu_row_fn fn, void *ctx) {
  int last = it->ndim - 1;
  int64_t st[EMBER_CPU_MAXOPS];
  char *p[EMBER_CPU_MAXOPS];
  int64_t idx[EMBER_MAX_DIMS] = {0};
  for (int k = 0; k < it->nops; k++) st[k] = it->strides[k][last];
  row_start(it, r0, p);
  int64_t r = r0;
  for (int d = last - 1; d >= 0; d--) {   /* the odometer's starting digits */
    idx[d] = r % it->shape[d];
    r /= it->shape[d];
  }
  for (int64_t row = r0; row < r1; row++) {
    char *q[EMBER_CPU_MAXOPS];
    memcpy(q, p, sizeof q);
    fn(q, st, it->shape[last], ctx);
    for (int d = last - 1; d >= 0; d--) {
      for (int k = 0; k < it->nops; k++) p[k] += it->strides[k][d];
      if (++idx[d] < it->shape[d]) break;
      for (int k = 0; k < it->nops; k++) p[k] -= it->shape[d] * it->strides[k][d];
      idx[d] = 0;
    }
  }
}

void ember_cpu_iter_run(const ember_cpu_iter *it, ember_cpu_row_fn fn,
                        void *ctx) {
  ember_cpu_iter_run_work(it, fn, ctx, 1);
}

void ember_cpu_iter_run_work(const ember_cpu_iter *it, ember_cpu_row_fn fn,
                             void *ctx, int64_t work) {
  int last = it->ndim - 1;
  int64_t inner = it->shape[last];
  if (work < 1) work = 1;
  if (last == 0 && inner * work < EMBER_CPU_PARALLEL_MIN) {   /* one short row */
    if (inner == 0) return;
    /* every slot, not nops of them: GCC turns a copy of nops pointers into
       a call to memcpy, which cost a tiny op more than this loop */
    char *p[EMBER_CPU_MAXOPS];
    int64_t st[EMBER_CPU_MAXOPS];
    for (int k = 0; k < EMBER_CPU_MAXOPS; k++) {
      p[k] = k < it->nops ? it->base[k] : NULL;
      st[k] = k < it->nops ? it->strides[k][0] : 0;
    }
    fn(p, st, inner, ctx);
    return;
  }
  int64_t rows = 1;
  for (int d = 0; d < last; d++) rows *= it->shape[d];
  if (rows == 0 || inner == 0) return;
  int nt = ember_cpu_threads();
  if (nt <= 1 || rows * inner * work < EMBER_CPU_PARALLEL_MIN) {
    run_rows(it, 0, rows, fn, ctx);
    return;
  }
#ifdef _OPENMP
  if (rows >= nt) {
    #pragma omp parallel num_threads(nt)
    {
      int id = omp_get_thread_num(), n = omp_get_num_threads();
      int64_t r0 = rows * id / n, r1 = rows * (id + 1) / n;
      if (r0 < r1) run_rows(it, r0, r1, fn, ctx);
    }
  } else {
    /* few long rows: split each row into per-thread chunks */
    for (int64_t r = 0; r < rows; r++) {
      char *p0[EMBER_CPU_MAXOPS];
      row_start(it, r, p0);
      #pragma omp parallel num_threads(nt)
      {
        int id = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t i0 = inner * id / n, i1 = inner * (id + 1) / n;
        char *q[EMBER_CPU_MAXOPS];
        int64_t st[EMBER_CPU_MAXOPS];
        for (int k = 0; k < it->nops; k++) {
          st[k] = it->strides[k][last];
          q[k] = p0[k] + i0 * st[k];
        }
        if (i0 < i1) fn(q, st, i1 - i0, ctx);
      }
    }
  }
#else
  run_rows(it, 0, rows, fn, ctx);
#endif
}
