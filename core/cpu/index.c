/*
** index.c -- gather, index_select and their adjoints (scatter_add,
** index_add), scatter with its reductions, nonzero's placing of
** coordinates, and index_copy, on the CPU.
**
** Index tensors hold 1-based positions (int64 or int32).  Every index is
** checked before anything is written, so a bad index leaves dst untouched
** and the call fails with the offending value.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

static inline int64_t index_at(const ember_tensor *idx, int64_t off) {
  const char *p = idx->storage->data;
  return idx->dtype == EMBER_INT32 ? ((const int32_t *)p)[off]
                                   : ((const int64_t *)p)[off];
}

/* A 1-d (or 0-d) index: its length and stride, every entry in 1..size. */
static int check_vector_index(const char *fn, const ember_tensor *index,
                              int dim, int64_t size, int64_t *n,
                              int64_t *istride) {
  *n = index->ndim ? index->shape[0] : 1;
  *istride = index->ndim ? index->strides[0] : 0;
  for (int64_t j = 0; j < *n; j++) {
    int64_t v = index_at(index, index->offset + j * *istride);
    if (v < 1 || v > size)
      return ember_set_error("%s: index %lld is out of range for dimension "
                             "%d of size %lld", fn, (long long)v, dim + 1,
                             (long long)size);
  }
  return 0;
}

/*
** index_select, index_add and index_copy walk the same pairs of slices:
** slice index[j] of the indexed operand (index_select's src, the others'
** dst) and slice j of the other.  The slices are views built on the stack
** (no allocation).  The pairs run on several threads when the work is
** large and no two of them write one slice: always for index_select (it
** writes slice j), for the others when the index holds no position twice;
** otherwise in order, so index_copy's last one wins (PyTorch leaves that
** unspecified) and index_add's sums are deterministic.
*/
enum walk_mode { WALK_SELECT, WALK_ADD, WALK_COPY };

/* Whether the n positions of index (checked to lie in 1..size) are all
   different; 0 also when the scratch cannot be had (the serial walk is
   always right). */
static int index_unique(const ember_tensor *index, int64_t n, int64_t istride,
                        int64_t size) {
  unsigned char *seen = calloc((size_t)size, 1);
  if (!seen) return 0;
  int unique = 1;
  for (int64_t j = 0; j < n && unique; j++) {
    int64_t v = index_at(index, index->offset + j * istride) - 1;
    unique = !seen[v];
    seen[v] = 1;
  }
  free(seen);
  return unique;
}

static void walk_pair(enum walk_mode mode, ember_tensor *dst,
                      const ember_tensor *src, int dim,
                      const ember_tensor *index, int64_t istride, int64_t j) {
  int into = mode != WALK_SELECT;
  int64_t v = index_at(index, index->offset + j * istride) - 1;
  ember_tensor s = *src, d = *dst;
  s.offset += (into ? j : v) * src->strides[dim];
  d.offset += (into ? v : j) * dst->strides[dim];
  s.shape[dim] = d.shape[dim] = 1;
  if (mode == WALK_ADD) ember_cpu_binary(EMBER_ADD, &d, &d, &s);
  else ember_cpu_copy(&d, &s);
}

static int walk_slices(const char *fn, enum walk_mode mode, ember_tensor *dst,
                       const ember_tensor *src, int dim,
                       const ember_tensor *index) {
  int into = mode != WALK_SELECT;           /* the index names dst's slices */
  const ember_tensor *along = into ? dst : src;
  int64_t n, istride;
  if (check_vector_index(fn, index, dim, along->shape[dim], &n, &istride) < 0)
    return -1;
  /* the elements moved: every slice pair holds numel(small side) / n */
  int64_t work = ember_numel(into ? src : dst);
  int nt = ember_cpu_threads();
  int par = nt > 1 && n > 1 && work >= EMBER_CPU_PARALLEL_MIN &&
            (!into || index_unique(index, n, istride, along->shape[dim]));
  #pragma omp parallel for schedule(static) num_threads(nt) if (par)
  for (int64_t j = 0; j < n; j++)
    walk_pair(mode, dst, src, dim, index, istride, j);
  return 0;
}

/*
** index_select of rows (dim 1 in Lua) of a contiguous tensor: one memcpy
** per row.  A shuffled batch's rows lie anywhere in the data set, so
** each copy waits on memory; prefetching rows a few ahead keeps several
** of those misses in flight (bench/NOTES.md has the figures).
*/
#define ROWS_AHEAD 4

/* Source row j of the selection. */
static const char *source_row(const char *s, size_t row,
                              const ember_tensor *index, int64_t istride,
                              int64_t j) {
  return s + (size_t)(index_at(index, index->offset + j * istride) - 1) * row;
}

static void prefetch_row(const char *p, size_t row) {
  for (size_t b = 0; b < row; b += 64) __builtin_prefetch(p + b);
}

static void select_rows(ember_tensor *dst, const ember_tensor *src,
                        const ember_tensor *index, int64_t n,
                        int64_t istride) {
  size_t row = (size_t)(ember_numel(src) / src->shape[0]) *
               ember_dtype_size(src->dtype);
  const char *s = ember_data(src);
  char *d = ember_data(dst);
  for (int64_t j = 1; j < ROWS_AHEAD && j < n; j++)
    prefetch_row(source_row(s, row, index, istride, j), row);
  for (int64_t j = 0; j < n; j++) {
    if (j + ROWS_AHEAD < n)
      prefetch_row(source_row(s, row, index, istride, j + ROWS_AHEAD), row);
    memcpy(d + (size_t)j * row, source_row(s, row, index, istride, j), row);
  }
}

int ember_cpu_index_select(ember_tensor *dst, const ember_tensor *src, int dim,
                           const ember_tensor *index) {
  if (dim == 0 && src->ndim > 0 && ember_is_contiguous(src) &&
      ember_is_contiguous(dst) && ember_numel(src) > 0) {
    int64_t n, istride;
    if (check_vector_index("index_select", index, 0, src->shape[0], &n,
                           &istride) < 0)
      return -1;
    select_rows(dst, src, index, n, istride);
    return 0;
  }
  return walk_slices("index_select", WALK_SELECT, dst, src, dim, index);
}

/* What walk_index does with each pair: gather's copy, or a scatter op. */
#define GATHER (-1)

/* d op= s for floats: AMAX/AMIN let a NaN win, whichever side holds it
   (s > NaN is false, so a NaN in d stays). */
static double reduce_float(int op, double d, double s) {
  switch (op) {
    case EMBER_SCATTER_SUM: return d + s;
    case EMBER_SCATTER_PROD: return d * s;
    case EMBER_SCATTER_AMAX: return isnan(s) || s > d ? s : d;
    default: return isnan(s) || s < d ? s : d;   /* AMIN */
  }
}

/* d op= s for integers read as int64: sums and products wrap (done
   unsigned, then truncated by the caller to the element's width, which
   is the same as wrapping there), max/min compare signed. */
static int64_t reduce_int(int op, int64_t d, int64_t s) {
  switch (op) {
    case EMBER_SCATTER_SUM: return (int64_t)((uint64_t)d + (uint64_t)s);
    case EMBER_SCATTER_PROD: return (int64_t)((uint64_t)d * (uint64_t)s);
    case EMBER_SCATTER_AMAX: return s > d ? s : d;
    default: return s < d ? s : d;               /* AMIN */
  }
}

/* one element: gather and ASSIGN copy, the reductions combine (bool and
   uint8 as bytes, scatter_add's old rule) */
static void move_one(int mode, ember_dtype dt, char *d, const char *s) {
  if (mode == GATHER || mode == EMBER_SCATTER_ASSIGN) {
    memcpy(d, s, ember_dtype_size(dt));
    return;
  }
  switch (dt) {
    case EMBER_FLOAT32:
      *(float *)d = (float)reduce_float(mode, *(float *)d, *(const float *)s);
      break;
    case EMBER_FLOAT64:
      *(double *)d = reduce_float(mode, *(double *)d, *(const double *)s);
      break;
    case EMBER_INT32:
      *(int32_t *)d = (int32_t)(uint32_t)reduce_int(mode, *(int32_t *)d,
                                                    *(const int32_t *)s);
      break;
    case EMBER_INT64:
      *(int64_t *)d = reduce_int(mode, *(int64_t *)d, *(const int64_t *)s);
      break;
    default:
      *(uint8_t *)d = (uint8_t)reduce_int(mode, *(uint8_t *)d, *(const uint8_t *)s);
      break;
  }
}

/*
** The odometer that gather and scatter_add share: for each element e of
** index, the operand indexed like index (gather's dst, scatter_add's src)
** meets the one indexed along dim by index[e] (gather's src, scatter_add's
** dst).  Two passes: every index is checked before anything is written.
** mode: GATHER, or the scatter op.
*/
static int walk_index(const char *fn, int mode, ember_tensor *dst,
                      const ember_tensor *src, int dim,
                      const ember_tensor *index) {
  int scatter = mode != GATHER;
  const ember_tensor *along = scatter ? dst : src;
  int nd = index->ndim;
  int64_t total = ember_numel(index);
  int64_t es = (int64_t)ember_dtype_size(dst->dtype);
  int64_t pos[EMBER_MAX_DIMS];
  for (int pass = 0; pass < 2; pass++) {
    memset(pos, 0, sizeof pos);
    for (int64_t e = 0; e < total; e++) {
      int64_t ioff = index->offset, soff = src->offset, doff = dst->offset;
      for (int d = 0; d < nd; d++) {
        ioff += pos[d] * index->strides[d];
        if (scatter || d != dim) soff += pos[d] * src->strides[d];
        if (!scatter || d != dim) doff += pos[d] * dst->strides[d];
      }
      int64_t v = index_at(index, ioff);
      if (pass == 0) {
        if (v < 1 || v > along->shape[dim])
          return ember_set_error("%s: index %lld is out of range for "
                                 "dimension %d of size %lld", fn, (long long)v,
                                 dim + 1, (long long)along->shape[dim]);
      } else {
        if (scatter) doff += (v - 1) * dst->strides[dim];
        else soff += (v - 1) * src->strides[dim];
        move_one(mode, dst->dtype, (char *)dst->storage->data + doff * es,
                 (const char *)src->storage->data + soff * es);
      }
      for (int d = nd - 1; d >= 0; d--) {
        if (++pos[d] < index->shape[d]) break;
        pos[d] = 0;
      }
    }
  }
  return 0;
}

int ember_cpu_gather(ember_tensor *dst, const ember_tensor *src, int dim,
                     const ember_tensor *index) {
  return walk_index("gather", GATHER, dst, src, dim, index);
}

int ember_cpu_scatter_add(ember_tensor *dst, int dim,
                          const ember_tensor *index, const ember_tensor *src) {
  return walk_index("scatter_add_", EMBER_SCATTER_SUM, dst, src, dim, index);
}

int ember_cpu_scatter(ember_scatter_reduce op, ember_tensor *dst, int dim,
                      const ember_tensor *index, const ember_tensor *src) {
  return walk_index("scatter", (int)op, dst, src, dim, index);
}

/*
** index_add_ of rows (dim 1 in Lua) of contiguous float tensors: an
** embedding's backward, the (B*T, E) gradient rows added into the
** (V, E) weight gradient, whose index repeats a small vocabulary many
** times, so walk_slices would run it serially, one binary op per row.
** Here it is one loop over the rows, split across threads by column
** ranges: every thread adds its columns of each row in index order, so
** no two threads write one element and each sum has the serial order
** (the same bits on any thread count).
*/
/* dst[c0:c1] += src[c0:c1], rows of two tensors taken not to overlap
   (an embedding's backward writes a fresh gradient; an index_add_ of a
   tensor into itself is unspecified, as in PyTorch), so that restrict
   lets the loop vectorise */
#define ADD_SPAN_TYPED(T, NAME)                                               \
  static void NAME(T *restrict d, const T *restrict s, int64_t c0,           \
                   int64_t c1) {                                              \
    _Pragma("omp simd")                                                       \
    for (int64_t c = c0; c < c1; c++) d[c] += s[c];                           \
  }
ADD_SPAN_TYPED(float, add_span_f32)
ADD_SPAN_TYPED(double, add_span_f64)

static void add_rows(ember_tensor *dst, const ember_tensor *src,
                     const ember_tensor *index, int64_t n, int64_t istride,
                     int64_t row) {
  int f32 = dst->dtype == EMBER_FLOAT32;
  size_t es = ember_dtype_size(dst->dtype);
  char *d = ember_data(dst);
  const char *s = ember_data(src);
  int nt = ember_cpu_threads();
  /* at least 16 columns (a cache line of float32) per part */
  int64_t parts = row / 16 < nt ? row / 16 : nt;
  if (parts < 1 || n * row < EMBER_CPU_PARALLEL_MIN) parts = 1;
  #pragma omp parallel for schedule(static) num_threads(nt) if (parts > 1)
  for (int64_t p = 0; p < parts; p++) {
    int64_t c0 = row * p / parts, c1 = row * (p + 1) / parts;
    for (int64_t j = 0; j < n; j++) {
      size_t at = (size_t)(index_at(index, index->offset + j * istride) - 1);
      void *dr = d + at * (size_t)row * es;
      const void *sr = s + (size_t)j * (size_t)row * es;
      if (f32) add_span_f32(dr, sr, c0, c1);
      else add_span_f64(dr, sr, c0, c1);
    }
  }
}

int ember_cpu_index_add(ember_tensor *dst, int dim, const ember_tensor *index,
                        const ember_tensor *src) {
  if (dim == 0 && dst->ndim > 0 && ember_numel(src) > 0 &&
      (dst->dtype == EMBER_FLOAT32 || dst->dtype == EMBER_FLOAT64) &&
      ember_is_contiguous(dst) && ember_is_contiguous(src)) {
    int64_t n, istride, row = ember_numel(src) / src->shape[0];
    if (check_vector_index("index_add_", index, 0, dst->shape[0], &n,
                           &istride) < 0)
      return -1;
    add_rows(dst, src, index, n, istride, row);
    return 0;
  }
  return walk_slices("index_add_", WALK_ADD, dst, src, dim, index);
}

int ember_cpu_index_copy(const char *fn, ember_tensor *dst, int dim,
                         const ember_tensor *index, const ember_tensor *src) {
  return walk_slices(fn, WALK_COPY, dst, src, dim, index);
}


/*
** check_index: the bounds check of an index tensor on its own, for the
** library's checks of class labels and embedding rows (ember_check_index),
** which once read the index's min and max back to the host.  The first
** bad element in row-major order is the one reported, as everywhere here.
*/
int ember_cpu_check_index(const ember_tensor *idx, int64_t lo, int64_t hi,
                          int has_skip, int64_t skip, const char *prefix,
                          const char *suffix) {
  int nd = idx->ndim;
  int64_t total = ember_numel(idx);
  int64_t pos[EMBER_MAX_DIMS];
  memset(pos, 0, sizeof pos);
  for (int64_t e = 0; e < total; e++) {
    int64_t off = idx->offset;
    for (int d = 0; d < nd; d++) off += pos[d] * idx->strides[d];
    int64_t v = index_at(idx, off);
    if ((v < lo || v > hi) && !(has_skip && v == skip))
      return ember_set_error("%s%lld%s", prefix, (long long)v, suffix);
    for (int d = nd - 1; d >= 0; d--) {
      if (++pos[d] < idx->shape[d]) break;
      pos[d] = 0;
    }
  }
  return 0;
}

/*
** nonzero: element i of the tensor read flat is nonzero where the running
** count cs steps up, and its coordinates go to row cs[i] (1-based) of dst,
** so the rows come in row-major order.  The coordinates of i are peeled
** off from the last dim.
*/
int ember_cpu_nonzero(ember_tensor *dst, const ember_tensor *cs, int ndim,
                      const int64_t *shape) {
  const int64_t *c = ember_data(cs);
  int64_t *out = ember_data(dst);
  int64_t total = ember_numel(cs), prev = 0;
  for (int64_t i = 0; i < total; prev = c[i], i++) {
    if (c[i] == prev) continue;
    int64_t *row = out + (c[i] - 1) * ndim, rest = i;
    for (int d = ndim - 1; d >= 0; d--) {
      row[d] = rest % shape[d] + 1;
      rest /= shape[d];
    }
  }
  return 0;
}
