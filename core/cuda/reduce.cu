/*
** reduce.cu -- reductions over the last dimension, and softmax (CUDA).
**
** The CUDA twin of core/cpu/reduce.c.  The core hands us src as
** [outer..., n] (the reduced dim last, any strides) and dst as [outer...];
** "row" r is the r-th outer element in row-major order.  The results are
** the CPU's:
**   - float sum/mean/prod/var/std accumulate in double (as the CPU does),
**     so they differ from the CPU only by the order of the additions;
**   - integer sum/prod wrap in 64-bit unsigned arithmetic: bit-exact;
**   - max/min/argmax/argmin: the first extreme wins, a NaN is an extreme
**     that nothing replaces (so the first NaN wins); arg* are 1-based int64;
**   - var/std are two-pass (mean, then the squared deviations), as the CPU.
**
** Every reduction is written once, as an "op": identity, element (what one
** source element contributes), combine (associative and commutative,
** arg* compare the positions they carry) and store (the result of a row).
** The same op then runs under one of several work splits, chosen from the
** shape (plan_for): one thread, one warp or one block per row, or rows cut
** into chunks whose partial results a second kernel combines.
*/
#include <math.h>
#include <string.h>
#include <type_traits>

#include "cuda_internal.h"

/* the CPU's NAN (a float quiet NaN) widened to double */
#define R_NAN __longlong_as_double(0x7ff8000000000000LL)

/* {======================================================================
** Groups of threads that reduce one row together
** ======================================================================= */

/* Moving any trivially copyable state between lanes, 32 bits at a time. */
template <class S>
__device__ static inline S shfl_down_any(S v, int delta) {
  static_assert(sizeof(S) % 4 == 0, "state must be whole 32-bit words");
  unsigned w[sizeof(S) / 4];
  memcpy(w, &v, sizeof(S));
  for (unsigned k = 0; k < sizeof(S) / 4; k++)
    w[k] = __shfl_down_sync(0xffffffffu, w[k], delta);
  memcpy(&v, w, sizeof(S));
  return v;
}

template <class S>
__device__ static inline S shfl_idx_any(S v, int lane) {
  unsigned w[sizeof(S) / 4];
  memcpy(w, &v, sizeof(S));
  for (unsigned k = 0; k < sizeof(S) / 4; k++)
    w[k] = __shfl_sync(0xffffffffu, w[k], lane);
  memcpy(&v, w, sizeof(S));
  return v;
}

/* The whole warp's states combined; lane 0 holds the result. */
template <class Op>
__device__ static inline typename Op::S warp_combine(typename Op::S v,
                                                     const Op &op) {
  for (int d = 16; d > 0; d >>= 1) v = op.combine(v, shfl_down_any(v, d));
  return v;
}

/*
** A group is who reduces one row: G_THREAD (one thread, sequentially, in
** the CPU's order), G_WARP (32 lanes) or G_BLOCK (the whole block).  Rows
** are dealt to groups in a grid-stride loop.  all() combines the states of
** the group's members and hands the result to every member; every member
** of a group calls it (rows are uniform within a group).
*/
enum { G_THREAD, G_WARP, G_BLOCK };

template <int G> struct grp;

template <> struct grp<G_THREAD> {
  __device__ static int64_t first() {
    return (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  }
  __device__ static int64_t step() { return (int64_t)gridDim.x * blockDim.x; }
  __device__ static int rank() { return 0; }
  __device__ static int size() { return 1; }
  template <class Op>
  __device__ static typename Op::S all(typename Op::S v, const Op &) {
    return v;
  }
};

template <> struct grp<G_WARP> {
  __device__ static int64_t first() {
    return ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  }
  __device__ static int64_t step() {
    return (int64_t)gridDim.x * blockDim.x / 32;
  }
  __device__ static int rank() { return threadIdx.x & 31; }
  __device__ static int size() { return 32; }
  template <class Op>
  __device__ static typename Op::S all(typename Op::S v, const Op &op) {
    return shfl_idx_any(warp_combine(v, op), 0);
  }
};

template <> struct grp<G_BLOCK> {
  __device__ static int64_t first() { return blockIdx.x; }
  __device__ static int64_t step() { return gridDim.x; }
  __device__ static int rank() { return threadIdx.x; }
  __device__ static int size() { return blockDim.x; }
  /* warps combine by shuffles, warp 0 combines the warps' results */
  template <class Op>
  __device__ static typename Op::S all(typename Op::S v, const Op &op) {
    typedef typename Op::S S;
    __shared__ S part[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    int nw = (blockDim.x + 31) >> 5;
    v = warp_combine(v, op);
    __syncthreads();                 /* the last call's readers are done */
    if (lane == 0) part[w] = v;
    __syncthreads();
    if (w == 0) {
      v = lane < nw ? part[lane] : op.identity();
      v = warp_combine(v, op);
      if (lane == 0) part[0] = v;
    }
    __syncthreads();
    return part[0];
  }
};

/* }====================================================================== */

/* {======================================================================
** The reductions, as ops
** ======================================================================= */

/* Where row r's result goes, converted to dst's dtype as the CPU's
   store_f / store_i do. */
struct rdst {
  void *p;
  cu_offsets_any<1> l;      /* row -> offset in dst */
  ember_dtype dt;
  __device__ void put_f(int64_t row, double v) const {
    int64_t off = l.get(row)[0];
    switch (dt) {
      case EMBER_FLOAT32: ((float *)p)[off] = (float)v; break;
      case EMBER_FLOAT64: ((double *)p)[off] = v; break;
      /* through float32, as the CPU's float32 kernel and its rounding */
      case EMBER_BFLOAT16: ((__nv_bfloat16 *)p)[off] = cu_store<__nv_bfloat16>((float)v); break;
      case EMBER_FLOAT16: ((__half *)p)[off] = cu_store<__half>((float)v); break;
      default: break;      /* the core sends float results to float dsts */
    }
  }
  __device__ void put_i(int64_t row, int64_t v) const {
    int64_t off = l.get(row)[0];
    switch (dt) {
      case EMBER_INT32: ((int32_t *)p)[off] = (int32_t)v; break;
      case EMBER_INT64: ((int64_t *)p)[off] = v; break;
      default: ((uint8_t *)p)[off] = (uint8_t)v; break;
    }
  }
};

/* Every op: identity(), row_ctx(row) (a per-row value element() gets;
   only var uses it, for the row's mean), element(x, i, ctx),
   combine(a, b), store(row, acc).  An op's T is the compute type: the
   kernels load a half element as float (cu_load) before element() sees
   it, so the halves reduce as float32 does, in double where float32
   does. */

/* float sum (also of integers converted, as the CPU's sum_f), mean, and
   the mean into a scratch array for var/std's first pass */
enum { FS_SUM, FS_MEAN, FS_MEAN_TO };

template <class T> struct op_fsum {
  typedef double S;
  rdst out;
  int mode;
  int64_t n;
  double *mean;                     /* FS_MEAN_TO: one double per row */
  __device__ S identity() const { return 0.0; }
  __device__ double row_ctx(int64_t) const { return 0.0; }
  __device__ S element(T x, int64_t, double) const { return (double)x; }
  __device__ S combine(S a, S b) const { return a + b; }
  __device__ void store(int64_t row, S acc) const {
    if (mode == FS_SUM) { out.put_f(row, acc); return; }
    double m = n ? acc / (double)n : R_NAN;
    if (mode == FS_MEAN) out.put_f(row, m);
    else mean[row] = m;
  }
};

/* integer sum: wraps in uint64 (int32 and uint8 sign/zero-extended first,
   as the CPU's load_i) */
template <class T> struct op_isum {
  typedef uint64_t S;
  rdst out;
  __device__ S identity() const { return 0; }
  __device__ double row_ctx(int64_t) const { return 0.0; }
  __device__ S element(T x, int64_t, double) const {
    return (uint64_t)(int64_t)x;
  }
  __device__ S combine(S a, S b) const { return a + b; }
  __device__ void store(int64_t row, S acc) const {
    out.put_i(row, (int64_t)acc);
  }
};

template <class T> struct op_fprod {
  typedef double S;
  rdst out;
  __device__ S identity() const { return 1.0; }
  __device__ double row_ctx(int64_t) const { return 0.0; }
  __device__ S element(T x, int64_t, double) const { return (double)x; }
  __device__ S combine(S a, S b) const { return a * b; }
  __device__ void store(int64_t row, S acc) const { out.put_f(row, acc); }
};

template <class T> struct op_iprod {
  typedef uint64_t S;
  rdst out;
  __device__ S identity() const { return 1; }
  __device__ double row_ctx(int64_t) const { return 0.0; }
  __device__ S element(T x, int64_t, double) const {
    return (uint64_t)(int64_t)x;
  }
  __device__ S combine(S a, S b) const { return a * b; }
  __device__ void store(int64_t row, S acc) const {
    out.put_i(row, (int64_t)acc);
  }
};

/* var/std's second pass: squared deviations from the row's mean, then the
   CPU's divisor rule (n - correction, NaN when not positive) */
template <class T> struct op_sqdev {
  typedef double S;
  rdst out;
  const double *mean;
  int64_t n;
  int correction, is_std;
  __device__ S identity() const { return 0.0; }
  __device__ double row_ctx(int64_t row) const { return mean[row]; }
  __device__ S element(T x, int64_t, double m) const {
    double d = (double)x - m;
    return d * d;
  }
  __device__ S combine(S a, S b) const { return a + b; }
  __device__ void store(int64_t row, S acc) const {
    double dof = (double)n - correction;
    double v = dof > 0 ? acc / dof : R_NAN;
    out.put_f(row, is_std ? sqrt(v) : v);
  }
};

template <class T> __device__ static inline bool r_isnan(T) { return false; }
__device__ static inline bool r_isnan(float x) { return x != x; }
__device__ static inline bool r_isnan(double x) { return x != x; }

/* A candidate extreme: its value and 0-based position (-1: none yet). */
template <class T> struct ext {
  T v;
  int64_t i;
};

/*
** max/min/argmax/argmin.  The CPU scans left to right, replacing the best
** only by a strictly better value, and stops at the first NaN.  So the
** answer is the first NaN if there is one, else the first position of the
** extreme value; combine() picks exactly that from any two candidates,
** in any order, by comparing their positions on ties.
*/
template <class T> struct op_ext {
  typedef ext<T> S;
  rdst out;
  int want_max, want_arg;
  __device__ S identity() const {
    S s;
    s.v = T(0);
    s.i = -1;
    return s;
  }
  __device__ double row_ctx(int64_t) const { return 0.0; }
  __device__ S element(T x, int64_t i, double) const {
    S s;
    s.v = x;
    s.i = i;
    return s;
  }
  __device__ S combine(S a, S b) const {
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    bool an = r_isnan(a.v), bn = r_isnan(b.v);
    if (an || bn) {
      if (an && bn) return a.i < b.i ? a : b;
      return an ? a : b;
    }
    if (want_max ? b.v > a.v : b.v < a.v) return b;
    if (want_max ? a.v > b.v : a.v < b.v) return a;
    return a.i < b.i ? a : b;        /* equal values: the first one */
  }
  __device__ void store(int64_t row, S acc) const {
    if (want_arg) out.put_i(row, acc.i + 1);   /* 1-based, as every index */
    else if (std::is_floating_point<T>::value) out.put_f(row, (double)acc.v);
    else out.put_i(row, (int64_t)acc.v);
  }
};

/* }====================================================================== */

/* {======================================================================
** Kernels: one op under each work split
** ======================================================================= */

/* Each group reduces whole rows. */
template <int G, class T, class Op>
__global__ void k_reduce_rows(Op op, const T *src, cu_offsets_any<1> outer,
                              int64_t rows, int64_t n, int64_t ss) {
  typedef grp<G> g;
  for (int64_t row = g::first(); row < rows; row += g::step()) {
    const T *s = src + outer.get(row)[0];
    double ctx = op.row_ctx(row);
    typename Op::S acc = op.identity();
    for (int64_t i = g::rank(); i < n; i += g::size())
      acc = op.combine(acc, op.element(cu_load(s[i * ss]), i, ctx));
    acc = g::all(acc, op);
    if (g::rank() == 0) op.store(row, acc);
  }
}

/* Long rows, few of them: block b reduces chunk b % chunks of row
   b / chunks into part[b]. */
template <class T, class Op>
__global__ void k_reduce_part_block(Op op, const T *src, cu_offsets_any<1> outer,
                                    int64_t rows, int64_t n, int64_t ss,
                                    int64_t chunks, int64_t clen,
                                    typename Op::S *part) {
  for (int64_t b = blockIdx.x; b < rows * chunks; b += gridDim.x) {
    int64_t row = b / chunks, c = b % chunks;
    const T *s = src + outer.get(row)[0];
    double ctx = op.row_ctx(row);
    int64_t lo = c * clen, hi = lo + clen < n ? lo + clen : n;
    typename Op::S acc = op.identity();
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x)
      acc = op.combine(acc, op.element(cu_load(s[i * ss]), i, ctx));
    acc = grp<G_BLOCK>::all(acc, op);
    if (threadIdx.x == 0) part[b] = acc;
  }
}

/* Strided rows (the reduced dim is not the fastest one): thread t reduces
   chunk t / rows of row t % rows sequentially into part[t], so that
   neighbouring threads read neighbouring rows. */
template <class T, class Op>
__global__ void k_reduce_part_thread(Op op, const T *src, cu_offsets_any<1> outer,
                                     int64_t rows, int64_t n, int64_t ss,
                                     int64_t chunks, int64_t clen,
                                     typename Op::S *part) {
  CU_FOR(t, rows * chunks) {
    int64_t row = t % rows, c = t / rows;
    const T *s = src + outer.get(row)[0];
    double ctx = op.row_ctx(row);
    int64_t lo = c * clen, hi = lo + clen < n ? lo + clen : n;
    typename Op::S acc = op.identity();
    for (int64_t i = lo; i < hi; i++)
      acc = op.combine(acc, op.element(cu_load(s[i * ss]), i, ctx));
    part[t] = acc;
  }
}

/* The partial results of row r, part[r * prs + c * pcs] for c < chunks,
   combined and stored. */
template <int G, class Op>
__global__ void k_reduce_final(Op op, const typename Op::S *part,
                               int64_t rows, int64_t chunks, int64_t prs,
                               int64_t pcs) {
  typedef grp<G> g;
  for (int64_t row = g::first(); row < rows; row += g::step()) {
    typename Op::S acc = op.identity();
    for (int64_t c = g::rank(); c < chunks; c += g::size())
      acc = op.combine(acc, part[row * prs + c * pcs]);
    acc = g::all(acc, op);
    if (g::rank() == 0) op.store(row, acc);
  }
}

/* }====================================================================== */

/* {======================================================================
** Choosing the split, and running an op under it
** ======================================================================= */

enum { M_THREAD, M_WARP, M_BLOCK, M_BSPLIT, M_TSPLIT };

typedef struct rplan {
  int mode;
  int64_t chunks, clen;
} rplan;

/* A grid for `groups` groups of `per` threads each (grid-stride beyond). */
static unsigned grid_for(int64_t groups, int per) {
  return cu_blocks(groups * per);
}

static unsigned grid_blocks(int64_t blocks) {
  if (blocks < 1) blocks = 1;
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  return (unsigned)blocks;
}

/*
** Contiguous rows (unit stride along the reduced dim): short rows go to a
** thread or a warp each, longer ones to a block; a few very long rows are
** cut into chunks so that the whole GPU works on them.  Strided rows (e.g.
** a reduction over dim 1 of a row-major matrix, where neighbouring rows
** are neighbours in memory) go to one thread each, reading coalesced,
** with the rows cut into chunks while there are too few threads.
*/
static rplan plan_for(int64_t rows, int64_t n, int64_t ss) {
  rplan p = {M_BLOCK, 1, n};
  int strided = !(ss == 1 || ss == 0 || ss == -1) && rows >= 32;
  if (strided) {
    int64_t chunks = 1;
    while (rows * chunks < 65536 && n / (chunks * 2) >= 256) chunks *= 2;
    p.mode = chunks > 1 ? M_TSPLIT : M_THREAD;
    p.chunks = chunks;
  } else if (n <= 32) {
    p.mode = M_THREAD;
  } else if (n <= 1024) {
    p.mode = M_WARP;
  } else if (rows >= 1024 || n < 32768) {
    p.mode = M_BLOCK;
  } else {
    int64_t chunks = (n + 8191) / 8192, most = 2048 / rows;
    if (most < 2) most = 2;
    p.mode = M_BSPLIT;
    p.chunks = chunks < most ? chunks : most;
  }
  if (p.chunks > 1) {
    p.clen = (n + p.chunks - 1) / p.chunks;
    p.chunks = (n + p.clen - 1) / p.clen;    /* no empty chunk */
  }
  return p;
}

static int launch_status(const char *what) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    return cu_error("cuda: %s: kernel launch failed: %s", what,
                    cudaGetErrorString(e));
  return 0;
}

/* Run op over every row of src under plan p. */
template <class T, class Op>
static int run_op(const Op &op, const rplan &p, const T *src,
                  const cu_offsets_any<1> &outer, int64_t rows, int64_t n,
                  int64_t ss) {
  typedef typename Op::S S;
  switch (p.mode) {
    case M_THREAD:
      k_reduce_rows<G_THREAD, T, Op><<<grid_for(rows, 1), CU_THREADS>>>(
          op, src, outer, rows, n, ss);
      return launch_status("reduce");
    case M_WARP:
      k_reduce_rows<G_WARP, T, Op><<<grid_for(rows, 32), CU_THREADS>>>(
          op, src, outer, rows, n, ss);
      return launch_status("reduce");
    case M_BLOCK:
      k_reduce_rows<G_BLOCK, T, Op><<<grid_blocks(rows), CU_THREADS>>>(
          op, src, outer, rows, n, ss);
      return launch_status("reduce");
    default: break;
  }
  /* split: partial results in scratch memory, then a combining pass */
  int64_t np = rows * p.chunks;
  S *part = (S *)ember_cuda_alloc((size_t)np * sizeof(S));
  if (!part) return -1;
  int rc;
  if (p.mode == M_BSPLIT) {
    k_reduce_part_block<T, Op><<<grid_blocks(np), CU_THREADS>>>(
        op, src, outer, rows, n, ss, p.chunks, p.clen, part);
    rc = launch_status("reduce");
    if (rc == 0) {
      k_reduce_final<G_WARP, Op><<<grid_for(rows, 32), CU_THREADS>>>(
          op, part, rows, p.chunks, p.chunks, 1);
      rc = launch_status("reduce");
    }
  } else {
    k_reduce_part_thread<T, Op><<<cu_blocks(np), CU_THREADS>>>(
        op, src, outer, rows, n, ss, p.chunks, p.clen, part);
    rc = launch_status("reduce");
    if (rc == 0) {
      k_reduce_final<G_THREAD, Op><<<grid_for(rows, 1), CU_THREADS>>>(
          op, part, rows, p.chunks, 1, rows);
      rc = launch_status("reduce");
    }
  }
  ember_cuda_free(part);      /* stream-ordered: later work reuses it after ours */
  return rc;
}

/* var/std: the means into scratch memory, then the squared deviations */
template <class T>
static int run_var(ember_reduce_op op, const rdst &out, const rplan &p,
                   const T *src, const cu_offsets_any<1> &outer, int64_t rows,
                   int64_t n, int64_t ss, int correction) {
  double *mean = (double *)ember_cuda_alloc((size_t)rows * sizeof(double));
  if (!mean) return -1;
  typedef typename cu_elem<T>::C C;
  op_fsum<C> m;
  m.out = out;
  m.mode = FS_MEAN_TO;
  m.n = n;
  m.mean = mean;
  int rc = run_op(m, p, src, outer, rows, n, ss);
  if (rc == 0) {
    op_sqdev<C> v;
    v.out = out;
    v.mean = mean;
    v.n = n;
    v.correction = correction;
    v.is_std = op == EMBER_STD;
    rc = run_op(v, p, src, outer, rows, n, ss);
  }
  ember_cuda_free(mean);
  return rc;
}

template <class T>
static int reduce_typed(ember_reduce_op op, const rdst &out, const T *src,
                        const cu_offsets_any<1> &outer, int64_t rows, int64_t n,
                        int64_t ss, int correction) {
  typedef typename cu_elem<T>::C C;     /* the ops compute in it */
  const bool isf = std::is_floating_point<C>::value;
  rplan p = plan_for(rows, n, ss);
  switch (op) {
    case EMBER_SUM:
      if (isf) {
        op_fsum<C> o;
        o.out = out;
        o.mode = FS_SUM;
        o.n = n;
        o.mean = NULL;
        return run_op(o, p, src, outer, rows, n, ss);
      } else {
        op_isum<C> o;
        o.out = out;
        return run_op(o, p, src, outer, rows, n, ss);
      }
    case EMBER_MEAN: {
      op_fsum<C> o;
      o.out = out;
      o.mode = FS_MEAN;
      o.n = n;
      o.mean = NULL;
      return run_op(o, p, src, outer, rows, n, ss);
    }
    case EMBER_PROD:
      if (isf) {
        op_fprod<C> o;
        o.out = out;
        return run_op(o, p, src, outer, rows, n, ss);
      } else {
        op_iprod<C> o;
        o.out = out;
        return run_op(o, p, src, outer, rows, n, ss);
      }
    case EMBER_VAR: case EMBER_STD:
      return run_var(op, out, p, src, outer, rows, n, ss, correction);
    case EMBER_MAX: case EMBER_MIN: case EMBER_ARGMAX: case EMBER_ARGMIN: {
      op_ext<C> o;
      o.out = out;
      o.want_max = op == EMBER_MAX || op == EMBER_ARGMAX;
      o.want_arg = op == EMBER_ARGMAX || op == EMBER_ARGMIN;
      return run_op(o, p, src, outer, rows, n, ss);
    }
    default:
      return cu_error("reduce: bad op");
  }
}

int ember_cuda_reduce(ember_reduce_op op, ember_tensor *dst,
                      const ember_tensor *src, int correction) {
  static const char *const names[EMBER_NREDUCE] = {
    "sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std",
  };
  if ((unsigned)op >= EMBER_NREDUCE) return cu_error("reduce: bad op");
  int nd = src->ndim;
  int64_t n = nd ? src->shape[nd - 1] : 1;
  int64_t ss = nd ? src->strides[nd - 1] : 0;
  int64_t rows = cu_numel(dst);
  if (rows == 0) return 0;
  /* row r's first element: r over src's outer dims */
  const int64_t *sst = src->strides;
  cu_offsets_any<1> outer =
      cu_offsets_any_of<1>(cu_geom_make(nd ? nd - 1 : 0, src->shape, 1, &sst));
  /* the front door refuses these; the CPU would read past the row */
  if (n == 0 && (op == EMBER_MAX || op == EMBER_MIN || op == EMBER_ARGMAX ||
                 op == EMBER_ARGMIN))
    return cu_error("%s: cannot reduce an empty tensor (it has no elements)",
                    names[op]);
  rdst out;
  out.p = cu_data(dst);
  cu_geom dg;
  if (cu_geom_of(&dg, names[op], {dst}) < 0) return -1;
  out.l = cu_offsets_any_of<1>(dg);
  out.dt = dst->dtype;
  return ember_cuda_dispatch_half(src->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    return reduce_typed<T>(op, out, (const T *)cu_data(src), outer, rows, n,
                           ss, correction);
  });
}

/* }====================================================================== */

/* {======================================================================
** softmax and log_softmax over the last dim (float32/float64, and the
** halves computed in float)
** ======================================================================= */

/* the CPU's running max: a NaN, once met, stays (T a compute type) */
template <class T> struct op_smax {
  typedef T S;
  __device__ S identity() const { return (T)-INFINITY; }
  __device__ S combine(S a, S b) const { return (b > a || b != b) ? b : a; }
};

struct op_dsum {
  typedef double S;
  __device__ S identity() const { return 0.0; }
  __device__ S combine(S a, S b) const { return a + b; }
};

__device__ static inline float sm_exp(float x) { return expf(x); }
__device__ static inline double sm_exp(double x) { return exp(x); }

/* One row per group, three passes as the CPU's SOFTMAX_ROW: the max, the
   sum of exp(x - max) in double, then the outputs in C (T's compute
   type: a half row is computed in float, each output rounded once). */
template <int G, class T>
__global__ void k_softmax(T *dst, int64_t ds, const T *src, int64_t ss,
                          cu_offsets_any<2> rl, int64_t rows, int64_t n,
                          int log_) {
  typedef grp<G> g;
  typedef typename cu_elem<T>::C C;
  op_smax<C> mop;
  op_dsum sop;
  for (int64_t row = g::first(); row < rows; row += g::step()) {
    cu_offs<2, int64_t> ro = rl.get(row);     /* (dst, src) */
    const T *s = src + ro[1];
    T *d = dst + ro[0];
    C mx = mop.identity();
    for (int64_t i = g::rank(); i < n; i += g::size())
      mx = mop.combine(mx, cu_load(s[i * ss]));
    mx = g::all(mx, mop);
    double sum = 0;
    for (int64_t i = g::rank(); i < n; i += g::size())
      sum += (double)sm_exp(cu_load(s[i * ss]) - mx);
    sum = g::all(sum, sop);
    if (log_) {
      C lse = (C)log(sum);
      for (int64_t i = g::rank(); i < n; i += g::size())
        d[i * ds] = cu_store<T>(cu_load(s[i * ss]) - mx - lse);
    } else {
      C inv = (C)(1.0 / sum);
      for (int64_t i = g::rank(); i < n; i += g::size())
        d[i * ds] = cu_store<T>(sm_exp(cu_load(s[i * ss]) - mx) * inv);
    }
  }
}

template <class T>
static int softmax_typed(ember_tensor *dst, const ember_tensor *src, int log_) {
  int nd = src->ndim;
  int64_t n = src->shape[nd - 1];
  int64_t ss = src->strides[nd - 1], ds = dst->strides[nd - 1];
  int64_t rows = 1;
  for (int i = 0; i < nd - 1; i++) rows *= src->shape[i];
  if (rows == 0 || n == 0) return 0;
  /* row r's first elements in dst and src: r over the outer dims */
  const int64_t *st[2] = {dst->strides, src->strides};
  cu_offsets_any<2> rl = cu_offsets_any_of<2>(cu_geom_make(nd - 1, src->shape, 2, st));
  T *d = (T *)cu_data(dst);
  const T *s = (const T *)cu_data(src);
  int strided = !(ss == 1 || ss == 0 || ss == -1) && rows >= 32;
  if (strided || n <= 32)
    k_softmax<G_THREAD, T><<<grid_for(rows, 1), CU_THREADS>>>(
        d, ds, s, ss, rl, rows, n, log_);
  else if (n <= 1024)
    k_softmax<G_WARP, T><<<grid_for(rows, 32), CU_THREADS>>>(
        d, ds, s, ss, rl, rows, n, log_);
  else
    k_softmax<G_BLOCK, T><<<grid_blocks(rows), CU_THREADS>>>(
        d, ds, s, ss, rl, rows, n, log_);
  CU_LAUNCH_CHECK(log_ ? "log_softmax" : "softmax");
  return 0;
}

int ember_cuda_softmax(ember_tensor *dst, const ember_tensor *src, int log) {
  if (src->ndim == 0) return 0;   /* the front door fills 0-d results */
  return ember_cuda_dispatch_float_half(src->dtype, [&](auto ty) {
    return softmax_typed<typename decltype(ty)::T>(dst, src, log);
  });
}

/* The backward, one row per group as k_softmax: s = sum g y (softmax) or
   sum g (log_softmax) in double, then dx = y (g - s) or g - exp(y) s. */
template <int G, class T>
__global__ void k_softmax_backward(T *dx, int64_t ds, const T *g, int64_t gs,
                                   const T *y, int64_t ys,
                                   cu_offsets_any<3> rl, int64_t rows,
                                   int64_t n, int log_) {
  typedef grp<G> grp_t;
  typedef typename cu_elem<T>::C C;
  op_dsum sop;
  for (int64_t row = grp_t::first(); row < rows; row += grp_t::step()) {
    cu_offs<3, int64_t> ro = rl.get(row);     /* (dx, g, y) */
    const T *gr = g + ro[1], *yr = y + ro[2];
    T *d = dx + ro[0];
    double s = 0;
    for (int64_t i = grp_t::rank(); i < n; i += grp_t::size())
      s += log_ ? (double)cu_load(gr[i * gs])
                : (double)cu_load(gr[i * gs]) * (double)cu_load(yr[i * ys]);
    C st = (C)grp_t::all(s, sop);
    for (int64_t i = grp_t::rank(); i < n; i += grp_t::size()) {
      C gv = cu_load(gr[i * gs]), yv = cu_load(yr[i * ys]);
      d[i * ds] = cu_store<T>(log_ ? gv - sm_exp(yv) * st : yv * (gv - st));
    }
  }
}

template <class T>
static int softmax_backward_typed(ember_tensor *dx, const ember_tensor *g,
                                  const ember_tensor *y, int log_) {
  int nd = y->ndim;
  int64_t n = y->shape[nd - 1];
  int64_t ds = dx->strides[nd - 1], gs = g->strides[nd - 1], ys = y->strides[nd - 1];
  int64_t rows = 1;
  for (int i = 0; i < nd - 1; i++) rows *= y->shape[i];
  if (rows == 0 || n == 0) return 0;
  const int64_t *st[3] = {dx->strides, g->strides, y->strides};
  cu_offsets_any<3> rl = cu_offsets_any_of<3>(cu_geom_make(nd - 1, y->shape, 3, st));
  T *d = (T *)cu_data(dx);
  const T *gp = (const T *)cu_data(g), *yp = (const T *)cu_data(y);
  int strided = !(ys == 1 || ys == 0 || ys == -1) && rows >= 32;
  if (strided || n <= 32)
    k_softmax_backward<G_THREAD, T><<<grid_for(rows, 1), CU_THREADS>>>(
        d, ds, gp, gs, yp, ys, rl, rows, n, log_);
  else if (n <= 1024)
    k_softmax_backward<G_WARP, T><<<grid_for(rows, 32), CU_THREADS>>>(
        d, ds, gp, gs, yp, ys, rl, rows, n, log_);
  else
    k_softmax_backward<G_BLOCK, T><<<grid_blocks(rows), CU_THREADS>>>(
        d, ds, gp, gs, yp, ys, rl, rows, n, log_);
  CU_LAUNCH_CHECK(log_ ? "log_softmax backward" : "softmax backward");
  return 0;
}

int ember_cuda_softmax_backward(ember_tensor *dx, const ember_tensor *g,
                                const ember_tensor *y, int log) {
  if (y->ndim == 0) return 0;
  return ember_cuda_dispatch_float_half(y->dtype, [&](auto ty) {
    return softmax_backward_typed<typename decltype(ty)::T>(dx, g, y, log);
  });
}

/* }====================================================================== */
