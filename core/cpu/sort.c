/*
** sort.c -- CPU sort and selection along a dimension, the `sort` slot
** (sort, argsort, topk, kthvalue, median in core/ops/sort.c).
**
** src is contiguous, seen as [outer, n, inner] around the sorted dim; each
** of the outer * inner lines (n elements at stride inner) is handled by
** one thread (OpenMP over lines).  For a line:
**
**   1. every element becomes an unsigned key whose integer order is the
**      wanted order (core/sort_keys.h, shared with CUDA: NaN after +inf,
**      -0.0 tied with 0.0; descending: the complement), held in 64 bits
**      whatever the dtype.  Its position rides along.
**   2. the (key, position) pairs are sorted by an LSD radix sort, 8 bits
**      a pass, skipping the passes whose byte is the same for every key
**      (so a float32 or int32 key costs at most 4 passes, uint8 one);
**      LSD radix sort is stable, so ties keep their original order, as
**      torch.sort(stable=True).  Short lines take an insertion sort.
**   3. when only the first k of a long line are wanted (topk with a small
**      k), a radix *selection* comes first: one pass over the line keeps
**      the keys in the top-byte buckets that a sample (every 8th element)
**      says hold the k smallest; then byte by byte from the top, the keys
**      whose byte is below the k-th key's are kept for sure, the ones
**      equal to it stay candidates, the rest are dropped; only what is
**      left (about k elements) is sorted.  Candidates stay in their
**      original order, so among ties the lowest positions are chosen.
**
** Values are read back from src at the sorted positions (not rebuilt from
** keys: a NaN keeps its payload, -0.0 its sign).  Indices are 1-based.
*/
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "cpu.h"
#include "../sort_keys.h"

/* A line this short is insertion sorted: cheaper than radix's histograms. */
#define SORT_SMALL 48
/* Selection stops narrowing when this few candidates (or 2k) are left. */
#define SELECT_MIN 1024

/* {======================================================================
** Keys
** ======================================================================= */

/* The keys of a line (n elements at stride `stride`), xor flip, one
   loop per dtype so that the contiguous case vectorises. */
#define KEYS_TYPED(NAME, T, KEY)                                               \
  static void NAME(uint64_t *k, const void *src, int64_t stride, int64_t n,   \
                   uint64_t flip) {                                           \
    const T *s = src;                                                          \
    if (stride == 1)                                                           \
      for (int64_t i = 0; i < n; i++) k[i] = (uint64_t)KEY(s[i]) ^ flip;       \
    else                                                                       \
      for (int64_t i = 0; i < n; i++)                                          \
        k[i] = (uint64_t)KEY(s[i * stride]) ^ flip;                            \
  }

KEYS_TYPED(keys_f32, float, ember_key_f32)
KEYS_TYPED(keys_f64, double, ember_key_f64)
KEYS_TYPED(keys_i32, int32_t, ember_key_i32)
KEYS_TYPED(keys_i64, int64_t, ember_key_i64)
KEYS_TYPED(keys_u8, uint8_t, ember_key_u8)

typedef void (*keys_fn)(uint64_t *, const void *, int64_t, int64_t, uint64_t);

static keys_fn keys_of(ember_dtype dt) {
  switch (dt) {
    case EMBER_FLOAT32: return keys_f32;
    case EMBER_FLOAT64: return keys_f64;
    case EMBER_INT32: return keys_i32;
    case EMBER_INT64: return keys_i64;
    default: return keys_u8;                     /* uint8 and bool */
  }
}

/* The bytes a key of dt has (the rest are zero): radix passes to look at. */
static int key_bytes(ember_dtype dt) {
  switch (dt) {
    case EMBER_FLOAT64: case EMBER_INT64: return 8;
    case EMBER_FLOAT32: case EMBER_INT32: return 4;
    default: return 1;
  }
}

/* }====================================================================== */

/* {======================================================================
** Sorting (key, position) pairs
** ======================================================================= */

/* The scratch of one thread: keys and positions, twice (radix ping-pong). */
typedef struct sort_buf {
  uint64_t *k[2];
  int64_t *p[2];
} sort_buf;

static void insertion_sort(uint64_t *k, int64_t *p, int64_t m) {
  for (int64_t i = 1; i < m; i++) {
    uint64_t kk = k[i];
    int64_t pp = p[i], j = i;
    for (; j > 0 && k[j - 1] > kk; j--) {     /* strict: stable */
      k[j] = k[j - 1];
      p[j] = p[j - 1];
    }
    k[j] = kk;
    p[j] = pp;
  }
}

/* Sort the m pairs in b->k[0], b->p[0] (stable, ascending keys of
   `bytes` bytes); returns which of the two buffers holds the result. */
static int radix_sort(sort_buf *b, int64_t m, int bytes) {
  if (m <= SORT_SMALL) {
    insertion_sort(b->k[0], b->p[0], m);
    return 0;
  }
  /* every byte's histogram in one read */
  static _Thread_local int64_t hist[8][256];
  memset(hist, 0, sizeof hist[0] * (size_t)bytes);
  const uint64_t *k0 = b->k[0];
  for (int64_t i = 0; i < m; i++) {
    uint64_t key = k0[i];
    for (int d = 0; d < bytes; d++) hist[d][(key >> (8 * d)) & 255]++;
  }
  int cur = 0;
  for (int d = 0; d < bytes; d++) {
    int64_t *h = hist[d];
    uint64_t first = (k0[0] >> (8 * d)) & 255;
    if (h[first] == m) continue;              /* one bucket: nothing moves */
    int64_t sum = 0;
    for (int c = 0; c < 256; c++) {           /* counts -> start offsets */
      int64_t t = h[c];
      h[c] = sum;
      sum += t;
    }
    const uint64_t *ks = b->k[cur];
    const int64_t *ps = b->p[cur];
    uint64_t *kd = b->k[!cur];
    int64_t *pd = b->p[!cur];
    for (int64_t i = 0; i < m; i++) {
      int64_t o = h[(ks[i] >> (8 * d)) & 255]++;
      kd[o] = ks[i];
      pd[o] = ps[i];
    }
    cur = !cur;
  }
  return cur;
}

/* The bucket of the k-th smallest among counts h: *below gets how many
   lie in the buckets before it. */
static int kth_bucket(const int64_t *h, int64_t k, int64_t *below) {
  int c = 0;
  *below = 0;
  while (*below + h[c] < k) *below += h[c++];
  return c;
}

/*
** The first round of the selection, straight from the line, usually in
** one pass: a histogram of the keys' top byte (at SHIFT) over every 8th
** element guesses the buckets that hold the k smallest with room to
** spare, and one pass keeps every key in them as a candidate (buffer 0,
** original order); *top gets 0: the candidates still differ in the top
** byte.  When the guess falls short (fewer than k kept: skewed data), the
** exact way: the full histogram, then the keys below the k-th key's
** bucket, sure to be chosen, into buffer 1 (*nsure of them) and the ones
** in it into buffer 0; *top gets 1.  Returns the candidates' count.  Keys
** are computed again rather than stored: only the kept ones are written.
*/
#define FIRST_ROUND_TYPED(NAME, T, KEY, SHIFT)                                 \
  static int64_t NAME(sort_buf *b, const void *src, int64_t stride,            \
                      int64_t n, int64_t k, uint64_t flip, int64_t *nsure,     \
                      int *top) {                                              \
    const T *s = src;                                                          \
    const int shift = SHIFT;                                                   \
    int64_t h[256] = {0}, below, nc = 0, ns = 0, i;                            \
    for (i = 0; i < n; i += 8)                                                 \
      h[(((uint64_t)KEY(s[i * stride]) ^ flip) >> shift) & 255]++;             \
    uint64_t c = (uint64_t)kth_bucket(h, k / 8 + 8 < (n + 7) / 8 ? k / 8 + 8   \
                                                  : (n + 7) / 8, &below);      \
    for (i = 0; i < n; i++) {                                                  \
      uint64_t key = (uint64_t)KEY(s[i * stride]) ^ flip;                      \
      if (((key >> shift) & 255) <= c) {                                       \
        b->k[0][nc] = key;                                                     \
        b->p[0][nc++] = i;                                                     \
      }                                                                        \
    }                                                                          \
    *nsure = 0;                                                                \
    *top = 0;                                                                  \
    if (nc >= k) return nc;                                                    \
    /* four histograms: neighbours in one bucket (the top bytes of real   */  \
    /* data are few) would otherwise wait on each other's increments      */  \
    int64_t h4[4][256] = {{0}};                                                \
    for (i = 0; i + 4 <= n; i += 4)                                            \
      for (int u = 0; u < 4; u++)                                              \
        h4[u][(((uint64_t)KEY(s[(i + u) * stride]) ^ flip) >> shift) & 255]++; \
    for (; i < n; i++)                                                         \
      h4[0][(((uint64_t)KEY(s[i * stride]) ^ flip) >> shift) & 255]++;         \
    for (int d = 0; d < 256; d++)                                              \
      h[d] = h4[0][d] + h4[1][d] + h4[2][d] + h4[3][d];                        \
    c = (uint64_t)kth_bucket(h, k, &below);                                    \
    nc = 0;                                                                    \
    for (i = 0; i < n; i++) {                                                  \
      uint64_t key = (uint64_t)KEY(s[i * stride]) ^ flip;                      \
      uint64_t dig = (key >> shift) & 255;                                     \
      if (dig < c) {                                                           \
        b->k[1][ns] = key;                                                     \
        b->p[1][ns++] = i;                                                     \
      } else if (dig == c) {                                                   \
        b->k[0][nc] = key;                                                     \
        b->p[0][nc++] = i;                                                     \
      }                                                                        \
    }                                                                          \
    *nsure = ns;                                                               \
    *top = 1;                                                                  \
    return nc;                                                                 \
  }

/* the top byte of a 4-, 8- and 1-byte key */
FIRST_ROUND_TYPED(first_f32, float, ember_key_f32, 24)
FIRST_ROUND_TYPED(first_f64, double, ember_key_f64, 56)
FIRST_ROUND_TYPED(first_i32, int32_t, ember_key_i32, 24)
FIRST_ROUND_TYPED(first_i64, int64_t, ember_key_i64, 56)
FIRST_ROUND_TYPED(first_u8, uint8_t, ember_key_u8, 0)

typedef int64_t (*first_fn)(sort_buf *, const void *, int64_t, int64_t,
                            int64_t, uint64_t, int64_t *, int *);

static first_fn first_round_of(ember_dtype dt) {
  switch (dt) {
    case EMBER_FLOAT32: return first_f32;
    case EMBER_FLOAT64: return first_f64;
    case EMBER_INT32: return first_i32;
    case EMBER_INT64: return first_i64;
    default: return first_u8;
  }
}

/*
** Narrow a line of n elements to its k smallest keys, as described at the
** top: the first round from the line itself, then byte by byte down on
** the candidates (from the top byte again if the first round guessed).  Returns how many pairs remain at the front of buffer 0
** (the sure ones first, then the candidates, each in original order), at
** least k and about max(2k, SELECT_MIN).
*/
static int64_t radix_select(sort_buf *b, ember_dtype dt, const void *src,
                            int64_t stride, int64_t n, int64_t k,
                            uint64_t flip, int bytes) {
  uint64_t *K = b->k[0], *SK = b->k[1];       /* sure ones go to buffer 1 */
  int64_t *P = b->p[0], *SP = b->p[1];
  int64_t nsure, below;
  int top;
  int64_t m = first_round_of(dt)(b, src, stride, n, k, flip, &nsure, &top);
  int64_t want = k - nsure;                   /* still to choose */
  for (int d = bytes - 1 - top; d >= 0 && m > want && m > SELECT_MIN && m > 2 * want; d--) {
    int64_t h[256] = {0};
    for (int64_t i = 0; i < m; i++) h[(K[i] >> (8 * d)) & 255]++;
    int c = kth_bucket(h, want, &below);
    if (h[c] == m) continue;                  /* the byte tells none apart */
    int64_t nc = 0;
    for (int64_t i = 0; i < m; i++) {         /* in place: nc <= i */
      int dig = (int)((K[i] >> (8 * d)) & 255);
      if (dig < c) {
        SK[nsure] = K[i];
        SP[nsure++] = P[i];
      } else if (dig == c) {
        K[nc] = K[i];
        P[nc++] = P[i];
      }
    }
    m = nc;
    want -= below;
  }
  /* sure ones first, then the candidates: the final sort puts them right */
  memmove(K + nsure, K, (size_t)m * sizeof *K);
  memmove(P + nsure, P, (size_t)m * sizeof *P);
  memcpy(K, SK, (size_t)nsure * sizeof *K);
  memcpy(P, SP, (size_t)nsure * sizeof *P);
  return nsure + m;
}

/* }====================================================================== */

/* {======================================================================
** The slot
** ======================================================================= */

/* Write the first k sorted pairs of a line: values from the line itself. */
static void write_line(ember_dtype dt, const char *src, int64_t sstride,
                       char *vals, int64_t *idx, int64_t ostride,
                       const int64_t *p, int64_t k) {
  size_t es = ember_dtype_size(dt);
  for (int64_t j = 0; j < k; j++) {
    memcpy(vals + (size_t)(j * ostride) * es,
           src + (size_t)(p[j] * sstride) * es, es);
    idx[j * ostride] = p[j] + 1;
  }
}

/* Sort one line (n elements of src at stride `inner`), first k out. */
static void sort_line(sort_buf *b, ember_dtype dt, const char *src,
                      int64_t inner, int64_t n, int64_t k, int descending,
                      char *vals, int64_t *idx) {
  int bytes = key_bytes(dt);
  uint64_t flip = descending ? (bytes == 8 ? UINT64_MAX
                                           : (UINT64_C(1) << (8 * bytes)) - 1)
                             : 0;
  int64_t m = n;
  if (k < n && n > SELECT_MIN) {
    m = radix_select(b, dt, src, inner, n, k, flip, bytes);
  } else {
    keys_of(dt)(b->k[0], src, inner, n, flip);
    for (int64_t i = 0; i < n; i++) b->p[0][i] = i;
  }
  int r = radix_sort(b, m, bytes);
  write_line(dt, src, inner, vals, idx, inner, b->p[r], k);
}

int ember_cpu_sort(ember_tensor *values, ember_tensor *indices,
                   const ember_tensor *src, int dim, int64_t k,
                   int descending) {
  int64_t outer = 1, inner = 1, n = src->shape[dim];
  for (int i = 0; i < dim; i++) outer *= src->shape[i];
  for (int i = dim + 1; i < src->ndim; i++) inner *= src->shape[i];
  int64_t lines = outer * inner;
  if (lines == 0 || n == 0 || k == 0) return 0;
  ember_dtype dt = src->dtype;
  size_t es = ember_dtype_size(dt);
  const char *s = ember_data(src);
  char *v = ember_data(values);
  int64_t *ix = ember_data(indices);
  int failed = 0;
  #pragma omp parallel num_threads(ember_cpu_threads()) if (lines > 1 && lines * n >= EMBER_CPU_PARALLEL_MIN)
  {
    sort_buf b;
    b.k[0] = malloc((size_t)n * sizeof(uint64_t));
    b.k[1] = malloc((size_t)n * sizeof(uint64_t));
    b.p[0] = malloc((size_t)n * sizeof(int64_t));
    b.p[1] = malloc((size_t)n * sizeof(int64_t));
    int ok = b.k[0] && b.k[1] && b.p[0] && b.p[1];
    if (!ok) {
      #pragma omp atomic write
      failed = 1;
    }
    #pragma omp for schedule(dynamic, 1)
    for (int64_t l = 0; l < lines; l++) {
      if (!ok) continue;
      int64_t o = l / inner, j = l - o * inner;
      sort_line(&b, dt, s + (size_t)(o * n * inner + j) * es, inner, n, k,
                descending, v + (size_t)(o * k * inner + j) * es,
                ix + o * k * inner + j);
    }
    for (int i = 0; i < 2; i++) {
      free(b.k[i]);
      free(b.p[i]);
    }
  }
  if (failed)
    return ember_set_error("sort: out of memory for a line of %lld elements",
                           (long long)n);
  return 0;
}

/* }====================================================================== */
