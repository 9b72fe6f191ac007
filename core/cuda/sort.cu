/*
** sort.cu -- sort and selection along a dimension, the `sort` slot (CUDA).
**
** The CUDA twin of core/cpu/sort.c, with the same keys (core/sort_keys.h:
** NaN after +inf, -0.0 tied with 0.0, descending as the complement) and
** so the same order, ties included.  src is contiguous, seen as
** [outer, n, inner]; its lines are numbered l = o * inner + j.
**
**   1. k_sort_keys writes, line after line, each element's key and its
**      global position g = l * n + i;
**   2. cub::DeviceRadixSort::SortPairs sorts all (key, g) pairs at once:
**      an LSD radix sort, stable, so equal keys keep the order of g;
**   3. with several lines, a second stable SortPairs on the line number
**      g / n groups the pairs by line, each line still in key order (one
**      global sort of every line beats a block per line, the segmented
**      sort, when lines are long, and costs little when they are short);
**   4. k_sort_write takes the first k of each line: values read from src
**      at the positions, 1-based indices.
**
** topk sorts whole lines here (no selection first, unlike the CPU): the
** GPU sorts 10M keys in a few milliseconds.  CUB sorts with int item
** counts: a tensor of 2^31 elements or more is refused.  Temporaries come
** from ember_cuda_alloc, everything runs on the default stream, nothing
** waits (CUB's temp-size queries run on the host).
*/
#include <cub/cub.cuh>

#include "cuda_internal.h"

#include "../sort_keys.h"

/* The key of each element type: its unsigned type and ascending map. */
template <class T> struct sort_key;
template <> struct sort_key<float> {
  typedef uint32_t K;
  static __device__ K of(float x) { return ember_key_f32(x); }
};
template <> struct sort_key<double> {
  typedef uint64_t K;
  static __device__ K of(double x) { return ember_key_f64(x); }
};
template <> struct sort_key<int32_t> {
  typedef uint32_t K;
  static __device__ K of(int32_t x) { return ember_key_i32(x); }
};
template <> struct sort_key<int64_t> {
  typedef uint64_t K;
  static __device__ K of(int64_t x) { return ember_key_i64(x); }
};
template <> struct sort_key<uint8_t> {          /* uint8 and bool */
  typedef uint8_t K;
  static __device__ K of(uint8_t x) { return ember_key_u8(x); }
};

/* Where element i of line l lives in a [outer, len, inner] tensor. */
static __device__ int64_t sort_at(int64_t l, int64_t i, int64_t len,
                                  int64_t inner) {
  int64_t o = l / inner, j = l - o * inner;
  return (o * len + i) * inner + j;
}

template <class T>
static __global__ void k_sort_keys(typename sort_key<T>::K *keys, int *pos,
                                   const T *s, int total, int64_t n,
                                   int64_t inner, typename sort_key<T>::K flip) {
  CU_FOR(g, total) {
    int64_t l = g / n, i = g - l * n;
    keys[g] = sort_key<T>::of(s[sort_at(l, i, n, inner)]) ^ flip;
    pos[g] = (int)g;
  }
}

/* The line number of each sorted pair, the key of the grouping sort. */
static __global__ void k_sort_lines(unsigned *line, const int *pos, int total,
                                    int64_t n) {
  CU_FOR(g, total) line[g] = (unsigned)(pos[g] / n);
}

template <class T>
static __global__ void k_sort_write(T *vals, int64_t *idx, const T *s,
                                    const int *pos, int64_t lines, int64_t n,
                                    int64_t k, int64_t inner) {
  CU_FOR(e, lines * k) {
    int64_t l = e / k, r = e - l * k;
    int64_t i = pos[l * n + r] - l * n;         /* position in the line */
    int64_t d = sort_at(l, r, k, inner);
    vals[d] = s[sort_at(l, i, n, inner)];
    idx[d] = i + 1;
  }
}

/* The number of bits that hold 0..v. */
static int bits_for(int64_t v) {
  int b = 1;
  while (b < 63 && (v >> b) != 0) b++;
  return b;
}

template <class T>
static int sort_typed(ember_tensor *values, ember_tensor *indices,
                      const ember_tensor *src, int64_t lines, int64_t n,
                      int64_t inner, int64_t k, int descending) {
  typedef typename sort_key<T>::K K;
  int total = (int)(lines * n);
  K flip = descending ? (K)~(K)0 : (K)0;
  /* the key buffers hold the line numbers of step 3 too */
  size_t ksize = sizeof(K) > sizeof(unsigned) ? sizeof(K) : sizeof(unsigned);
  size_t kbytes = ksize * (size_t)total, pbytes = sizeof(int) * (size_t)total;
  size_t t1 = 0, t2 = 0;
  CU_CHECK(cub::DeviceRadixSort::SortPairs(NULL, t1, (K *)NULL, (K *)NULL,
                                           (int *)NULL, (int *)NULL, total));
  int lbits = bits_for(lines - 1);
  if (lines > 1)
    CU_CHECK(cub::DeviceRadixSort::SortPairs(NULL, t2, (unsigned *)NULL,
                                             (unsigned *)NULL, (int *)NULL,
                                             (int *)NULL, total, 0, lbits));
  size_t tbytes = t1 > t2 ? t1 : t2;
  /* one block: keys twice, positions twice, CUB's temp storage */
  size_t kb = (kbytes + 255) & ~(size_t)255, pb = (pbytes + 255) & ~(size_t)255;
  char *buf = (char *)ember_cuda_alloc(2 * kb + 2 * pb + tbytes + 1);
  if (!buf) return -1;
  K *k0 = (K *)buf, *k1 = (K *)(buf + kb);
  int *p0 = (int *)(buf + 2 * kb), *p1 = (int *)(buf + 2 * kb + pb);
  void *temp = buf + 2 * kb + 2 * pb;
  int rc = 0;
  const T *s = (const T *)cu_data(src);
  unsigned nb = cu_blocks(total);
  k_sort_keys<T><<<nb, CU_THREADS>>>(k0, p0, s, total, n, inner, flip);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess)
    e = cub::DeviceRadixSort::SortPairs(temp, t1, k0, k1, p0, p1, total);
  const int *sorted = p1;
  if (e == cudaSuccess && lines > 1) {
    /* group by line: the line numbers go where the keys were */
    unsigned *l0 = (unsigned *)k0, *l1 = (unsigned *)k1;
    k_sort_lines<<<nb, CU_THREADS>>>(l0, p1, total, n);
    e = cudaGetLastError();
    if (e == cudaSuccess)
      e = cub::DeviceRadixSort::SortPairs(temp, t2, l0, l1, p1, p0, total, 0,
                                          lbits);
    sorted = p0;
  }
  if (e == cudaSuccess) {
    k_sort_write<T><<<cu_blocks(lines * k), CU_THREADS>>>(
        (T *)cu_data(values), (int64_t *)cu_data(indices), s, sorted, lines,
        n, k, inner);
    e = cudaGetLastError();
  }
  ember_cuda_free(buf);          /* stream-ordered: reused after our work */
  if (e != cudaSuccess) rc = cu_error("cuda: sort: %s", cudaGetErrorString(e));
  if (rc == 0) CU_LAUNCH_CHECK("sort");
  return rc;
}

int ember_cuda_sort(ember_tensor *values, ember_tensor *indices,
                    const ember_tensor *src, int dim, int64_t k,
                    int descending) {
  int64_t outer = 1, inner = 1, n = src->shape[dim];
  for (int i = 0; i < dim; i++) outer *= src->shape[i];
  for (int i = dim + 1; i < src->ndim; i++) inner *= src->shape[i];
  int64_t lines = outer * inner;
  if (lines == 0 || n == 0 || k == 0) return 0;
  if (lines * n >= ((int64_t)1 << 31))
    return cu_error("sort: %lld elements are too many for the CUDA sort "
                    "(at most 2^31 - 1)", (long long)(lines * n));
  switch (src->dtype) {
    case EMBER_FLOAT32:
      return sort_typed<float>(values, indices, src, lines, n, inner, k, descending);
    case EMBER_FLOAT64:
      return sort_typed<double>(values, indices, src, lines, n, inner, k, descending);
    case EMBER_INT32:
      return sort_typed<int32_t>(values, indices, src, lines, n, inner, k, descending);
    case EMBER_INT64:
      return sort_typed<int64_t>(values, indices, src, lines, n, inner, k, descending);
    default:
      return sort_typed<uint8_t>(values, indices, src, lines, n, inner, k, descending);
  }
}
