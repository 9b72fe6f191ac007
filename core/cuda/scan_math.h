/*
** scan_math.h -- the arithmetic of the CUDA scans (core/cuda/scan.cu)
** that runs the same on the host: the accumulator of each dtype, the
** combine rule of each scan op, the tiling of a long line, and the
** per-thread steps of a tile's scan.  tools/cuda_scan_test.cu runs these
** on the host against the CPU kernel's sequential rule.
**
** The combine rule.  A scan over a line folds (value, position) items
** left to right; the blocked scan folds segments in another order, so
** each op's step must be associative.  combine(a, b) with a the earlier
** segment's summary and b the later one's:
**   sum, prod      a + b, a * b in the accumulator (double for floats,
**                  the unsigned type of the width for integers: wraps);
**   logsumexp      PyTorch's log_add_exp in double;
**   max            b if b is NaN, or if a is not NaN and b >= a: a NaN
**                  wins and the later of equal values wins (the CPU's
**                  step, core/cpu/scan.c), so a segment's summary is its
**                  last NaN, else its maximum at its latest position.
** Compares are in the element type T (as the CPU's), values stay in A.
*/
#ifndef EMBER_CUDA_SCAN_MATH_H
#define EMBER_CUDA_SCAN_MATH_H

#include <math.h>
#include <stdint.h>

extern "C" {
#include "../backend.h"
}

/* The accumulator of each element type: double for floats, the unsigned
   type for integers (wrapping as the CPU does). */
template <class T> struct scan_acc { typedef double A; };
template <> struct scan_acc<int32_t> { typedef uint32_t A; };
template <> struct scan_acc<int64_t> { typedef uint64_t A; };
template <> struct scan_acc<uint8_t> { typedef uint32_t A; };

/* One item of a scan: a value in the accumulator and, for max, the
   0-based position (along the dim) of the value it holds. */
template <class T> struct scan_item {
  typename scan_acc<T>::A v;
  int64_t p;
};

/* log(exp(a) + exp(b)) as PyTorch's log_add_exp: two infinities of one
   sign give that infinity (not NaN from inf - inf). */
__host__ __device__ static inline double scan_log_add_exp(double a, double b) {
  double mn = a < b ? a : b, mx = a < b ? b : a;
  if (isnan(a) || isnan(b)) return a + b;              /* NaN */
  if (mn != mx || isfinite(mn)) return mx + log1p(exp(mn - mx));
  return a;
}

template <class T, int OP>
__host__ __device__ static inline scan_item<T> scan_combine(scan_item<T> a,
                                                            scan_item<T> b) {
  typedef typename scan_acc<T>::A A;
  if (OP == EMBER_SCAN_SUM) {
    a.v = a.v + b.v;
  } else if (OP == EMBER_SCAN_PROD) {
    a.v = a.v * b.v;
  } else if (OP == EMBER_SCAN_MAX) {
    T av = (T)a.v, bv = (T)b.v;
    if (bv != bv || (av == av && bv >= av)) return b;
  } else {
    a.v = (A)scan_log_add_exp((double)a.v, (double)b.v);
  }
  return a;
}

/* {======================================================================
** Tiling
** ======================================================================= */

/*
** A long line is cut into tiles of SCAN_TILE consecutive elements in scan
** order (r = 0 first; r is the position k for a forward scan, n - 1 - k
** for a reverse one).  A block scans one tile: thread t holds elements
** t*ITEMS .. t*ITEMS + ITEMS - 1 of it (a blocked arrangement, so each
** thread scans a run serially, then the threads' totals are scanned
** across warps).  The last tile of a line may be short; the items past
** its end are never written and never reach a valid element's result
** (they come after it), and the tile's total is read at its last valid
** element, not at the end of the block.
*/
#define SCAN_WARP 32
#define SCAN_THREADS 256
#define SCAN_ITEMS 8
#define SCAN_TILE (SCAN_THREADS * SCAN_ITEMS)
/* the tiled path runs where lines are few (fewer threads than fill a GPU)
   or contiguous, and at least this long (a tile an eighth full) */
#define SCAN_LINES_FEW 4096
#define SCAN_MIN_TILED (SCAN_TILE / 8)

__host__ __device__ static inline int64_t scan_tiles(int64_t n, int64_t tile) {
  return (n + tile - 1) / tile;
}

/* Valid elements of tile t of a line of n. */
__host__ __device__ static inline int64_t scan_tile_len(int64_t n, int64_t t,
                                                        int64_t tile) {
  int64_t rest = n - t * tile;
  return rest < tile ? rest : tile;
}

/* The position along the dim of the r-th element in scan order. */
__host__ __device__ static inline int64_t scan_pos(int64_t r, int64_t n,
                                                   int reverse) {
  return reverse ? n - 1 - r : r;
}

/* Whether a scan of `lines` lines of n elements, `inner` apart, takes
   the tiled path rather than one thread per line. */
static inline int scan_use_tiles(int64_t lines, int64_t n, int64_t inner) {
  return n >= SCAN_MIN_TILED && (inner == 1 || lines < SCAN_LINES_FEW);
}

/* A thread's run of ITEMS items: its inclusive scan, in place, serially. */
template <class T, int OP, int ITEMS>
__host__ __device__ static inline void scan_run(scan_item<T> (&x)[ITEMS]) {
  for (int i = 1; i < ITEMS; i++) x[i] = scan_combine<T, OP>(x[i - 1], x[i]);
}

/* Fold a prefix (the segments before the run) into every item of a run. */
template <class T, int OP, int ITEMS>
__host__ __device__ static inline void scan_apply(scan_item<T> pre,
                                                  scan_item<T> (&x)[ITEMS]) {
  for (int i = 0; i < ITEMS; i++) x[i] = scan_combine<T, OP>(pre, x[i]);
}

/* }====================================================================== */

#endif
