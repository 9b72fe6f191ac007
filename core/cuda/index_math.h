/*
** index_math.h -- the index arithmetic of the CUDA kernels: fast division
** by a fixed divisor, and the offset calculator that maps an element's
** row-major position to the memory offsets of a kernel's operands.
**
** Pure __host__ __device__ code, free of the CUDA runtime, so that
** tools/cuda_index_test.cu checks it on a machine without a GPU (included
** by cuda_internal.h for the kernels).
**
** Why: a strided or broadcast operand's offset used to cost a 64-bit % and
** / per dimension per element (a 64-bit division is a ~70-instruction
** software routine on the GPU).  Here, on the host, once per launch:
**   - the dimensions are simplified jointly for all the operands of a
**     kernel: size-1 dims dropped, and adjacent dims merged wherever every
**     operand is contiguous across them (a contiguous tensor becomes one
**     dim; a transposed matrix stays two);
**   - when the element count and every operand's offsets fit 32 bits (the
**     common case) the arithmetic is 32-bit and each division is a
**     multiply-high and a shift by magic numbers computed here
**     (Granlund & Montgomery, as PyTorch's IntDivider); otherwise the
**     64-bit path divides as before.  Kernels are templated on the index
**     type (uint32_t or uint64_t), chosen at launch (cu_with_offsets);
**   - the outermost merged dim needs no division at all, and a launch
**     whose operands are all contiguous skips the calculation (contig).
*/
#ifndef EMBER_CUDA_INDEX_MATH_H
#define EMBER_CUDA_INDEX_MATH_H

#include <stdint.h>
#include <type_traits>

#include "../include/ember.h"      /* EMBER_MAX_DIMS */

#ifndef __CUDACC__
#error "index_math.h is CUDA C++: compile it with nvcc"
#endif

/* #pragma unroll for the device pass only (the host compiler warns) */
#ifdef __CUDA_ARCH__
#define CU_UNROLL _Pragma("unroll")
#else
#define CU_UNROLL
#endif

/* {======================================================================
** Fast division by a fixed divisor
** ======================================================================= */

__host__ __device__ static inline uint32_t cu_umulhi(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
  return __umulhi(a, b);
#else
  return (uint32_t)(((uint64_t)a * b) >> 32);
#endif
}

/* q and r of one division */
template <typename IDX> struct cu_qr {
  IDX q, r;
};

/*
** Division by d, 1 <= d <= 2^31, of dividends n < 2^31 (n + t below then
** stays under 2^32): with s = ceil(log2 d) and m = floor(2^32 (2^s - d) /
** d) + 1, n / d = (umulhi(n, m) + n) >> s.  m fits 32 bits because
** 2^s - d < d.  Exact for every such n and d (tools/cuda_index_test.cu
** checks it).
*/
template <typename IDX> struct cu_divider;

template <> struct cu_divider<uint32_t> {
  uint32_t d, m, s;
  __host__ __device__ cu_divider() : d(1), m(1), s(0) {}
  __host__ explicit cu_divider(uint32_t div) : d(div ? div : 1) {
    div = d;                    /* 0 only for an empty dim: never divided */
    s = 0;
    while (s < 32 && ((uint64_t)1 << s) < div) s++;
    m = (uint32_t)((((uint64_t)1 << 32) * (((uint64_t)1 << s) - div)) / div +
                   1);
  }
  __host__ __device__ uint32_t div(uint32_t n) const {
    return (cu_umulhi(n, m) + n) >> s;
  }
  __host__ __device__ cu_qr<uint32_t> divmod(uint32_t n) const {
    cu_qr<uint32_t> x;
    x.q = div(n);
    x.r = n - x.q * d;
    return x;
  }
};

/* The 64-bit path: plain division (rare: past 2^31 elements or offsets). */
template <> struct cu_divider<uint64_t> {
  uint64_t d;
  __host__ __device__ cu_divider() : d(1) {}
  __host__ explicit cu_divider(uint64_t div) : d(div ? div : 1) {}
  __host__ __device__ uint64_t div(uint64_t n) const { return n / d; }
  __host__ __device__ cu_qr<uint64_t> divmod(uint64_t n) const {
    cu_qr<uint64_t> x;
    x.q = n / d;
    x.r = n - x.q * d;
    return x;
  }
};

/* }====================================================================== */

/* {======================================================================
** A kernel's iteration space, simplified (host)
** ======================================================================= */

#define CU_MAX_ARGS 4   /* operands one calculator serves */

/*
** n = prod(shape) elements in row-major order over `shape`; operand k's
** element at coordinates c lives at sum_d c[d] * strides[d][k].  After
** cu_geom_make, dims are stored innermost first, none of size 1, and no two
** adjacent ones could be merged for every operand at once.
*/
struct cu_geom {
  int ndim, nargs;
  int64_t shape[EMBER_MAX_DIMS];
  int64_t strides[EMBER_MAX_DIMS][CU_MAX_ARGS];
};

/* The geometry of `ndim` dims of `shape` (outermost first, as tensors
   store them) for nargs operands, strides[k] operand k's strides. */
static inline cu_geom cu_geom_make(int ndim, const int64_t *shape, int nargs,
                                   const int64_t *const *strides) {
  cu_geom g;
  g.ndim = 0;
  g.nargs = nargs;
  for (int d = ndim - 1; d >= 0; d--) {
    if (shape[d] == 1) continue;
    if (g.ndim > 0 && shape[d] != 0) {
      int m = g.ndim - 1, k = 0;
      /* dim d is the outer part of dim m for every operand: one dim */
      while (k < nargs && strides[k][d] == g.shape[m] * g.strides[m][k]) k++;
      if (k == nargs) {
        g.shape[m] *= shape[d];
        continue;
      }
    }
    g.shape[g.ndim] = shape[d];
    for (int k = 0; k < nargs; k++) g.strides[g.ndim][k] = strides[k][d];
    g.ndim++;
  }
  return g;
}

static inline int64_t cu_geom_numel(const cu_geom &g) {
  int64_t n = 1;
  for (int d = 0; d < g.ndim; d++) n *= g.shape[d];
  return n;
}

/* Whether n elements, and every offset of every operand, fit the 32-bit
   path: n, and both the sum of the positive and of the negative extents
   (shape - 1) * stride of each operand, within int32. */
static inline bool cu_geom_fits32(const cu_geom &g) {
  if (cu_geom_numel(g) > INT32_MAX) return false;
  for (int k = 0; k < g.nargs; k++) {
    int64_t pos = 0, neg = 0;
    for (int d = 0; d < g.ndim; d++) {
      int64_t s = g.strides[d][k], e = g.shape[d] - 1;
      if (s > INT32_MAX || s < -(int64_t)INT32_MAX) return false;
      if (s > 0) pos += e * s;
      else neg += e * s;
      if (pos > INT32_MAX || neg < INT32_MIN) return false;
    }
  }
  return true;
}

/* Every operand contiguous: element i at offset i for all of them. */
static inline bool cu_geom_contig(const cu_geom &g) {
  if (g.ndim == 0) return true;
  if (g.ndim > 1) return false;
  for (int k = 0; k < g.nargs; k++)
    if (g.strides[0][k] != 1) return false;
  return true;
}

/* }====================================================================== */

/* {======================================================================
** The offset calculator (kernels)
** ======================================================================= */

/* N offsets of one element, signed (an operand may have negative strides
   from its first element). */
template <int N, typename OFF> struct cu_offs {
  OFF o[N];
  __host__ __device__ OFF operator[](int k) const { return o[k]; }
};

/*
** By value in the kernel's parameters: element i's N operand offsets, in
** IDX arithmetic (uint32_t: fast division, int32 offsets; uint64_t: plain
** division, int64 offsets).  i < the geometry's element count.
*/
template <int N, typename IDX>
struct cu_offsets {
  typedef IDX index_type;
  typedef typename std::conditional<sizeof(IDX) == 4, int32_t, int64_t>::type
      OFF;
  int ndim;
  bool contig;
  cu_divider<IDX> div[EMBER_MAX_DIMS];   /* the inner ndim - 1 dims' sizes */
  OFF strides[EMBER_MAX_DIMS][N];

  __host__ __device__ cu_offs<N, OFF> get(IDX i) const {
    cu_offs<N, OFF> r;
    if (contig) {
CU_UNROLL
      for (int k = 0; k < N; k++) r.o[k] = (OFF)i;
      return r;
    }
CU_UNROLL
    for (int k = 0; k < N; k++) r.o[k] = 0;
    if (ndim == 0) return r;
CU_UNROLL
    for (int d = 0; d < EMBER_MAX_DIMS - 1; d++) {
      if (d == ndim - 1) break;
      cu_qr<IDX> x = div[d].divmod(i);
CU_UNROLL
      for (int k = 0; k < N; k++) r.o[k] += (OFF)x.r * strides[d][k];
      i = x.q;
    }
    /* the outermost dim: what is left of i is its coordinate */
CU_UNROLL
    for (int k = 0; k < N; k++) r.o[k] += (OFF)i * strides[ndim - 1][k];
    return r;
  }
};

/* The calculator of g for N == g.nargs operands (the caller has checked
   cu_geom_fits32 before asking for uint32_t). */
template <int N, typename IDX>
static inline cu_offsets<N, IDX> cu_offsets_of(const cu_geom &g) {
  cu_offsets<N, IDX> c;
  c.ndim = g.ndim;
  c.contig = cu_geom_contig(g);
  for (int d = 0; d < EMBER_MAX_DIMS; d++) {
    c.div[d] = d < g.ndim ? cu_divider<IDX>((IDX)g.shape[d]) : cu_divider<IDX>();
    for (int k = 0; k < N; k++)
      c.strides[d][k] = d < g.ndim && k < g.nargs
                            ? (typename cu_offsets<N, IDX>::OFF)g.strides[d][k]
                            : 0;
  }
  return c;
}

/*
** For kernels that want an offset per row rather than per element (a
** reduction's rows, softmax's): both calculators, picked by a flag, so the
** kernel is not instantiated twice.
*/
template <int N>
struct cu_offsets_any {
  bool wide;
  cu_offsets<N, uint32_t> n32;
  cu_offsets<N, uint64_t> n64;
  __host__ __device__ cu_offs<N, int64_t> get(int64_t i) const {
    cu_offs<N, int64_t> r;
    if (wide) {
      cu_offs<N, int64_t> w = n64.get((uint64_t)i);
      r = w;
    } else {
      cu_offs<N, int32_t> s = n32.get((uint32_t)i);
CU_UNROLL
      for (int k = 0; k < N; k++) r.o[k] = s.o[k];
    }
    return r;
  }
};

template <int N>
static inline cu_offsets_any<N> cu_offsets_any_of(const cu_geom &g) {
  cu_offsets_any<N> c;
  c.wide = !cu_geom_fits32(g);
  if (c.wide) {
    c.n64 = cu_offsets_of<N, uint64_t>(g);
    c.n32 = cu_offsets<N, uint32_t>();
    c.n32.ndim = 0;
    c.n32.contig = true;
  } else {
    c.n32 = cu_offsets_of<N, uint32_t>(g);
    c.n64 = cu_offsets<N, uint64_t>();
    c.n64.ndim = 0;
    c.n64.contig = true;
  }
  return c;
}

/*
** Call f with the calculator of g for N operands, 32-bit when it fits,
** else 64-bit, and return what f returns: f is a generic lambda that
** launches a kernel templated on the calculator's type.
*/
template <int N, class F>
static inline int cu_with_offsets(const cu_geom &g, F &&f) {
  if (cu_geom_fits32(g)) return f(cu_offsets_of<N, uint32_t>(g));
  return f(cu_offsets_of<N, uint64_t>(g));
}

/* }====================================================================== */

/* {======================================================================
** Convolution's index maps (conv.cu)
** ======================================================================= */

/*
** im2col's entry e of col [C*KH*KW, cols]: row r = (c*KH + i)*KW + j,
** column q = b*L + ohr*OW + ow (ohr the output row within the band).
** Five divisions, by the chunk's fixed sizes.
*/
template <typename IDX>
struct cu_im2col_ix {
  cu_divider<IDX> cols, kw, kh, l, ow;
  __host__ __device__ void at(IDX e, IDX *c, IDX *i, IDX *j, IDX *b,
                              IDX *ohr, IDX *owc) const {
    cu_qr<IDX> rq = cols.divmod(e);           /* (r, q) */
    cu_qr<IDX> x = kw.divmod(rq.q);            /* (r / KW, j) */
    cu_qr<IDX> y = kh.divmod(x.q);             /* (c, i) */
    cu_qr<IDX> z = l.divmod(rq.r);             /* (b, rem) */
    cu_qr<IDX> w = ow.divmod(z.r);             /* (ohr, ow) */
    *c = y.q;
    *i = y.r;
    *j = x.r;
    *b = z.q;
    *ohr = w.q;
    *owc = w.r;
  }
};

template <typename IDX>
static inline cu_im2col_ix<IDX> cu_im2col_ix_of(int64_t KH, int64_t KW,
                                                int64_t cols, int64_t L,
                                                int64_t OW) {
  cu_im2col_ix<IDX> m;
  m.cols = cu_divider<IDX>((IDX)cols);
  m.kw = cu_divider<IDX>((IDX)KW);
  m.kh = cu_divider<IDX>((IDX)KH);
  m.l = cu_divider<IDX>((IDX)L);
  m.ow = cu_divider<IDX>((IDX)OW);
  return m;
}

/* 32 bits do for im2col when its entries' count does (every dividend is
   at most e). */
static inline bool cu_im2col_fits32(int64_t total) {
  return total <= INT32_MAX;
}

/*
** col2im's input element e of the chunk's images [nb, C, H, W]: (b, c, h,
** w); and the taps' divisions by the strides: tap i of input row h is
** output row oh = th / sh when th = h + ph - i*dh >= 0 divides evenly.
*/
template <typename IDX>
struct cu_col2im_ix {
  cu_divider<IDX> w, h, c, sh, sw;
  __host__ __device__ void at(IDX e, IDX *b, IDX *ch, IDX *hh,
                              IDX *ww) const {
    cu_qr<IDX> x = w.divmod(e);                /* (e / W, w) */
    cu_qr<IDX> y = h.divmod(x.q);              /* (e / (W H), h) */
    cu_qr<IDX> z = c.divmod(y.q);              /* (b, c) */
    *b = z.q;
    *ch = z.r;
    *hh = y.r;
    *ww = x.r;
  }
};

template <typename IDX>
static inline cu_col2im_ix<IDX> cu_col2im_ix_of(int64_t C, int64_t H,
                                                int64_t W, int64_t sh,
                                                int64_t sw) {
  cu_col2im_ix<IDX> m;
  m.w = cu_divider<IDX>((IDX)W);
  m.h = cu_divider<IDX>((IDX)H);
  m.c = cu_divider<IDX>((IDX)C);
  m.sh = cu_divider<IDX>((IDX)sh);
  m.sw = cu_divider<IDX>((IDX)sw);
  return m;
}

/* 32 bits do for col2im when the elements' count and the taps' dividends
   (th < H + ph, tw < W + pw) do, and the strides are divisors. */
static inline bool cu_col2im_fits32(int64_t total, int64_t H, int64_t W,
                                    int64_t ph, int64_t pw, int64_t sh,
                                    int64_t sw) {
  return total <= INT32_MAX && H + ph <= INT32_MAX && W + pw <= INT32_MAX &&
         sh <= INT32_MAX && sw <= INT32_MAX;
}

/* }====================================================================== */

#endif
