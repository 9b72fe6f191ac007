/*
** scan.cu -- inclusive scans along a dimension (cumsum, cumprod, cummax,
** logcumsumexp), the `scan` slot (CUDA).
**
** The CUDA twin of core/cpu/scan.c.  src and dst are contiguous (the core
** makes them so), seen as [outer, n, inner] around the scanned dim: lines
** = outer * inner independent lines of n elements, inner apart.  Two
** paths, picked by shape (scan_use_tiles, scan_math.h):
**
**   - one thread per line (k_scan) where lines are many and strided
**     (inner > 1, >= SCAN_LINES_FEW lines) or short: the thread walks its
**     n elements in order; neighbouring threads read neighbouring
**     columns, so the loads coalesce;
**   - tiled (k_scan_tiles, k_scan_totals) where lines are few or
**     contiguous and long (a 10M-element cumsum, rows of 10,000):
**     reduce, then scan.  Pass 1 scans every tile of SCAN_TILE elements
**     of every line (a block each) and keeps only its total; pass 2 scans
**     each line's tile totals (a block per line, a tile of totals at a
**     time); pass 3 scans every tile again, starting from the totals of
**     the tiles before it, and writes.  A line of one tile runs pass 3
**     alone.  Within a block, each thread scans a run of SCAN_ITEMS
**     elements, warps scan the runs' totals with __shfl_up_sync, warp 0
**     scans the warps' totals.  Passes 1 and 3 read the input (twice, as
**     the reduce-then-scan does); tiles go through shared memory so the
**     loads and stores coalesce.
**
** Results are the CPU's rules: floats accumulate in double and round into
** dst, integers wrap in unsigned arithmetic, cummax keeps the latest
** position on ties and lets a NaN win, log_add_exp is PyTorch's.  The
** one-thread path folds in the CPU's order (the same bits); the tiled path
** folds segments in another order (scan_math.h says why the combine rule
** is associative): integers and maxima are the CPU's exactly, float sums,
** products and logcumsumexp agree within double's rounding before the
** result is rounded to the element type.
*/
#include <math.h>

#include "cuda_internal.h"
#include "scan_math.h"

/* {======================================================================
** One thread per line
** ======================================================================= */

template <class T, int OP>
static __global__ void k_scan(T *d, int64_t *ix, const T *s, int64_t lines,
                              int64_t n, int64_t inner, int reverse) {
  CU_FOR(line, lines) {
    int64_t o = line / inner, j = line - o * inner;
    int64_t base = o * n * inner + j;
    scan_item<T> acc;
    for (int64_t r = 0; r < n; r++) {
      int64_t k = scan_pos(r, n, reverse);
      int64_t e = base + k * inner;
      scan_item<T> x = {(typename scan_acc<T>::A)s[e], k};
      acc = r == 0 ? x : scan_combine<T, OP>(acc, x);
      d[e] = (T)acc.v;
      if (OP == EMBER_SCAN_MAX && ix) ix[e] = acc.p + 1;
    }
  }
}

/* }====================================================================== */

/* {======================================================================
** Tiled: a block per tile
** ======================================================================= */

#define SCAN_NWARPS (SCAN_THREADS / SCAN_WARP)

/* A block's scratch for block_scan: the warps' totals, the tile's. */
template <class T> struct scan_shared {
  scan_item<T> warp[SCAN_NWARPS];
  scan_item<T> total;
};

template <class T, int OP>
static __device__ scan_item<T> shfl_up(scan_item<T> x, int delta) {
  x.v = __shfl_up_sync(0xffffffffu, x.v, delta);
  if (OP == EMBER_SCAN_MAX) x.p = __shfl_up_sync(0xffffffffu, x.p, delta);
  return x;
}

/* Inclusive scan of a warp's values (lane 0 first), Hillis-Steele. */
template <class T, int OP, int WIDTH>
static __device__ scan_item<T> warp_scan(scan_item<T> v, int lane) {
  for (int delta = 1; delta < WIDTH; delta *= 2) {
    scan_item<T> o = shfl_up<T, OP>(v, delta);
    if (lane >= delta) v = scan_combine<T, OP>(o, v);
  }
  return v;
}

/*
** The inclusive scan of a block's tile in place: x is this thread's run
** (elements threadIdx.x * SCAN_ITEMS ...), the tile's first `valid`
** elements are real (valid >= 1), and when has_carry the whole tile comes
** after `carry` (the segments before it).  Returns the tile's total with
** the carry (the result at its last valid element), in every thread.
** Every thread of the block calls it; it leaves `sh` free for reuse.
*/
template <class T, int OP>
static __device__ scan_item<T> block_scan(scan_item<T> (&x)[SCAN_ITEMS],
                                          int valid, bool has_carry,
                                          scan_item<T> carry,
                                          scan_shared<T> &sh) {
  int tid = threadIdx.x, lane = tid % SCAN_WARP, warp = tid / SCAN_WARP;
  scan_run<T, OP, SCAN_ITEMS>(x);
  scan_item<T> incl = warp_scan<T, OP, SCAN_WARP>(x[SCAN_ITEMS - 1], lane);
  scan_item<T> excl = shfl_up<T, OP>(incl, 1);    /* the lanes before */
  if (lane == SCAN_WARP - 1) sh.warp[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    scan_item<T> w = sh.warp[lane < SCAN_NWARPS ? lane : SCAN_NWARPS - 1];
    w = warp_scan<T, OP, SCAN_NWARPS>(w, lane);
    if (lane < SCAN_NWARPS) sh.warp[lane] = w;
  }
  __syncthreads();
  /* this run's prefix: the carry, then the warps before, then the lanes */
  bool has = has_carry;
  scan_item<T> pre = carry;
  if (warp > 0) {
    pre = has ? scan_combine<T, OP>(pre, sh.warp[warp - 1]) : sh.warp[warp - 1];
    has = true;
  }
  if (lane > 0) {
    pre = has ? scan_combine<T, OP>(pre, excl) : excl;
    has = true;
  }
  if (has) scan_apply<T, OP, SCAN_ITEMS>(pre, x);
  int last = valid - 1;
  if (tid == last / SCAN_ITEMS)
    for (int i = 0; i < SCAN_ITEMS; i++)       /* no dynamic index: registers */
      if (i == last % SCAN_ITEMS) sh.total = x[i];
  __syncthreads();
  scan_item<T> total = sh.total;
  __syncthreads();
  return total;
}

/*
** Passes 1 (WRITE false: each tile's total into agg[line * tiles + t])
** and 3 (WRITE true: each tile scanned after agg[.. + t - 1], the
** inclusive total of the tiles before it, and written).  Grid-stride over
** (line, tile) pairs, a block each; every thread of a block takes the
** same pairs, so the barriers are uniform.
*/
template <class T, int OP, bool WRITE>
static __global__ void k_scan_tiles(T *d, int64_t *ix, const T *s,
                                    scan_item<T> *agg, int64_t lines,
                                    int64_t n, int64_t inner, int reverse) {
  typedef typename scan_acc<T>::A A;
  __shared__ T val[SCAN_TILE];
  __shared__ int64_t pos[OP == EMBER_SCAN_MAX && WRITE ? SCAN_TILE : 1];
  __shared__ scan_shared<T> sh;
  int64_t tiles = scan_tiles(n, SCAN_TILE);
  for (int64_t w = blockIdx.x; w < lines * tiles; w += gridDim.x) {
    int64_t line = w / tiles, t = w - line * tiles;
    int64_t o = line / inner, j = line - o * inner;
    int64_t base = o * n * inner + j, r0 = t * SCAN_TILE;
    int valid = (int)scan_tile_len(n, t, SCAN_TILE);
    for (int i = threadIdx.x; i < valid; i += SCAN_THREADS)
      val[i] = s[base + scan_pos(r0 + i, n, reverse) * inner];
    __syncthreads();
    scan_item<T> x[SCAN_ITEMS];
    for (int i = 0; i < SCAN_ITEMS; i++) {
      int e = threadIdx.x * SCAN_ITEMS + i;
      x[i].v = e < valid ? (A)val[e] : (A)0;
      x[i].p = scan_pos(r0 + e, n, reverse);
    }
    bool has_carry = WRITE && t > 0;
    scan_item<T> carry = has_carry ? agg[w - 1] : x[0];
    scan_item<T> total = block_scan<T, OP>(x, valid, has_carry, carry, sh);
    if (WRITE) {
      for (int i = 0; i < SCAN_ITEMS; i++) {  /* every read of val is done */
        int e = threadIdx.x * SCAN_ITEMS + i;
        if (e < valid) {
          val[e] = (T)x[i].v;
          if (OP == EMBER_SCAN_MAX) pos[e] = x[i].p;
        }
      }
      __syncthreads();
      for (int i = threadIdx.x; i < valid; i += SCAN_THREADS) {
        int64_t e = base + scan_pos(r0 + i, n, reverse) * inner;
        d[e] = val[i];
        if (OP == EMBER_SCAN_MAX && ix) ix[e] = pos[i] + 1;
      }
    } else if (threadIdx.x == 0) {
      agg[w] = total;
    }
    __syncthreads();                          /* val is refilled next */
  }
}

/* Pass 2: each line's tile totals agg[line * tiles ...] become their
   inclusive scan, SCAN_TILE totals at a time, a block per line. */
template <class T, int OP>
static __global__ void k_scan_totals(scan_item<T> *agg, int64_t lines,
                                     int64_t tiles) {
  __shared__ scan_shared<T> sh;
  for (int64_t line = blockIdx.x; line < lines; line += gridDim.x) {
    scan_item<T> *a = agg + line * tiles;
    scan_item<T> carry = a[0];
    for (int64_t c = 0; c * SCAN_TILE < tiles; c++) {
      scan_item<T> *ac = a + c * SCAN_TILE;
      int valid = (int)scan_tile_len(tiles, c, SCAN_TILE);
      scan_item<T> x[SCAN_ITEMS];
      for (int i = 0; i < SCAN_ITEMS; i++) {
        int e = threadIdx.x * SCAN_ITEMS + i;
        x[i] = ac[e < valid ? e : 0];
      }
      carry = block_scan<T, OP>(x, valid, c > 0, carry, sh);
      for (int i = 0; i < SCAN_ITEMS; i++) {
        int e = threadIdx.x * SCAN_ITEMS + i;
        if (e < valid) ac[e] = x[i];
      }
    }
  }
}

/* }====================================================================== */

/* {======================================================================
** Entry point
** ======================================================================= */

static unsigned scan_grid(int64_t blocks) {
  return (unsigned)(blocks < 65535 * 8 ? blocks : 65535 * 8);
}

template <class T, int OP>
static int scan_launch(T *d, int64_t *ix, const T *s, int64_t outer,
                       int64_t n, int64_t inner, int reverse) {
  int64_t lines = outer * inner;
  if (!scan_use_tiles(lines, n, inner)) {
    k_scan<T, OP><<<cu_blocks(lines), CU_THREADS>>>(d, ix, s, lines, n, inner,
                                                    reverse);
    CU_LAUNCH_CHECK("scan");
    return 0;
  }
  int64_t tiles = scan_tiles(n, SCAN_TILE);
  scan_item<T> *agg = NULL;
  if (tiles > 1) {
    agg = (scan_item<T> *)ember_cuda_alloc((size_t)(lines * tiles) *
                                           sizeof(scan_item<T>));
    if (!agg) return -1;
    k_scan_tiles<T, OP, false><<<scan_grid(lines * tiles), SCAN_THREADS>>>(
        d, ix, s, agg, lines, n, inner, reverse);
    k_scan_totals<T, OP><<<scan_grid(lines), SCAN_THREADS>>>(agg, lines, tiles);
  }
  k_scan_tiles<T, OP, true><<<scan_grid(lines * tiles), SCAN_THREADS>>>(
      d, ix, s, agg, lines, n, inner, reverse);
  cudaError_t e = cudaGetLastError();
  if (agg) ember_cuda_free(agg);     /* stream-ordered: reused after ours */
  if (e != cudaSuccess)
    return cu_error("cuda: scan: kernel launch failed: %s", cudaGetErrorString(e));
  CU_LAUNCH_CHECK("scan");
  return 0;
}

template <class T>
static int scan_typed(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                      const ember_tensor *src, int64_t outer, int64_t n,
                      int64_t inner, int reverse) {
  T *d = (T *)cu_data(dst);
  const T *s = (const T *)cu_data(src);
  int64_t *ix = idx ? (int64_t *)cu_data(idx) : NULL;
  switch (op) {
    case EMBER_SCAN_SUM:
      return scan_launch<T, EMBER_SCAN_SUM>(d, NULL, s, outer, n, inner, reverse);
    case EMBER_SCAN_PROD:
      return scan_launch<T, EMBER_SCAN_PROD>(d, NULL, s, outer, n, inner, reverse);
    case EMBER_SCAN_MAX:
      return scan_launch<T, EMBER_SCAN_MAX>(d, ix, s, outer, n, inner, reverse);
    default:
      return scan_launch<T, EMBER_SCAN_LOGSUMEXP>(d, NULL, s, outer, n, inner,
                                                  reverse);
  }
}

int ember_cuda_scan(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                    const ember_tensor *src, int dim, int reverse) {
  int64_t outer = 1, inner = 1, n = src->shape[dim];
  for (int i = 0; i < dim; i++) outer *= src->shape[i];
  for (int i = dim + 1; i < src->ndim; i++) inner *= src->shape[i];
  if (outer == 0 || inner == 0 || n == 0) return 0;
  if (op == EMBER_SCAN_LOGSUMEXP)
    return ember_cuda_dispatch_float(src->dtype, [&](auto ty) {
      return scan_typed<typename decltype(ty)::T>(op, dst, idx, src, outer, n,
                                                   inner, reverse);
    });
  return ember_cuda_dispatch(src->dtype, [&](auto ty) {
    return scan_typed<typename decltype(ty)::T>(op, dst, idx, src, outer, n,
                                                 inner, reverse);
  });
}

/* }====================================================================== */
