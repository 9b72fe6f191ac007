/*
** elementwise.c -- CPU kernels that map elements to elements: copy with
** conversion, fill, arange, unary and binary math, comparisons, where.
**
** Each (kernel, dtype) pair is a plain function over contiguous arrays,
** `d[i] = f(x[i])` or `d[i] = f(a[i], b[i])`, with the op chosen by a
** `switch` outside the loops, so each loop body is one expression the
** compiler vectorises.  The float32 kernels are the fast ones; float64
** runs the same formulas and is the reference they are checked against.
** A row the iterator hands us with other strides (a transposed view, a
** broadcast operand of stride 0) goes through the same kernel a block at
** a time: its operands are gathered into small buffers and the result
** scattered back (map1_row, map2_row).  bfloat16 and float16 unary,
** binary and derivative maps run the float32 kernels a block at a time
** on widened copies of the block, rounding each result once
** (half_map1_row, half_map2_row).  float32 binary ops and
** comparisons keep a kernel of their own for a broadcast scalar b, as in
** `x * 2` or `x:gt(0)`.
**
** The float32 kernels carry EMBER_SIMD (cpu.h: compiled for AVX-512,
** AVX2 and the baseline, the best picked at load time; the same bits from
** each) and their loops `omp simd`: GCC's -O2 cost model otherwise leaves
** a select like ReLU's NaN-keeping one scalar.  The kernels take no
** `restrict`: an op may run in place (d == x).  Integer arithmetic goes
** through unsigned types so overflow wraps instead of being undefined.
*/
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "vmath.h"

/* {======================================================================
** Rows: contiguous, or a block at a time through buffers
** ======================================================================= */

/* Elements per block of a strided row: 2 KiB of float64 per operand. */
#define BLOCK 256

/* d[0..n) = f(x[0..n)), contiguous; ctx is the kernel's parameters. */
typedef void (*map1_fn)(void *d, const void *x, int64_t n, const void *ctx);
/* d[0..n) = f(a[0..n), b[0..n)), contiguous. */
typedef void (*map2_fn)(void *d, const void *a, const void *b, int64_t n,
                        const void *ctx);

/* n elements of es bytes (1, 2, 4 or 8) from src, ss bytes apart, to dst, ds
   bytes apart; a stride of 0 repeats one element. */
static void move_elems(char *dst, int64_t ds, const char *src, int64_t ss,
                       int64_t n, size_t es) {
  if (ss == 0 && ds == (int64_t)es) {        /* a broadcast value: a fill */
    switch (es) {
      case 1: memset(dst, *(const uint8_t *)src, (size_t)n); return;
      case 2: {
        uint16_t v = *(const uint16_t *)src, *d = (uint16_t *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        return;
      }
      case 4: {
        uint32_t v = *(const uint32_t *)src, *d = (uint32_t *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        return;
      }
      default: {
        uint64_t v = *(const uint64_t *)src, *d = (uint64_t *)dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        return;
      }
    }
  }
  switch (es) {
    case 1:
      for (int64_t i = 0; i < n; i++)
        *(uint8_t *)(dst + i * ds) = *(const uint8_t *)(src + i * ss);
      break;
    case 2:
      for (int64_t i = 0; i < n; i++)
        *(uint16_t *)(dst + i * ds) = *(const uint16_t *)(src + i * ss);
      break;
    case 4:
      for (int64_t i = 0; i < n; i++)
        *(uint32_t *)(dst + i * ds) = *(const uint32_t *)(src + i * ss);
      break;
    default:
      for (int64_t i = 0; i < n; i++)
        *(uint64_t *)(dst + i * ds) = *(const uint64_t *)(src + i * ss);
      break;
  }
}

/* Operand block: the row's own elements when they are contiguous, else a
   copy in buf. */
static const void *in_block(char *buf, const char *p, int64_t st, int64_t n,
                            size_t es) {
  if (st == (int64_t)es) return p;
  move_elems(buf, (int64_t)es, p, st, n, es);
  return buf;
}

/* map1_row's strided case, a block at a time.  A function of its own
   (never inlined), so that the contiguous case, which every small op
   takes, does not set up these buffers' stack frame. */
static EMBER_NOINLINE void map1_blocks(char **p, const int64_t *st, int64_t n,
                                       size_t esd, size_t esx, map1_fn f,
                                       const void *ctx) {
  _Alignas(64) char bd[BLOCK * 8], bx[BLOCK * 8];
  for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
    int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
    char *d = p[0] + i0 * st[0];
    const void *x = in_block(bx, p[1] + i0 * st[1], st[1], m, esx);
    int dc = st[0] == (int64_t)esd;
    f(dc ? d : bd, x, m, ctx);
    if (!dc) move_elems(d, st[0], bd, (int64_t)esd, m, esd);
  }
}

/* One row of a unary map: p[0] the destination (elements esd bytes), p[1]
   the source (esx bytes), st their strides in bytes. */
static EMBER_ALWAYS_INLINE void map1_row(char **p, const int64_t *st,
                                         int64_t n, size_t esd, size_t esx,
                                         map1_fn f, const void *ctx) {
  if (st[0] == (int64_t)esd && st[1] == (int64_t)esx) f(p[0], p[1], n, ctx);
  else map1_blocks(p, st, n, esd, esx, f, ctx);
}

/* map2_row's strided case, a block at a time (as map1_blocks). */
static EMBER_NOINLINE void map2_blocks(char **p, const int64_t *st, int64_t n,
                                       size_t esd, size_t esx, map2_fn f,
                                       const void *ctx) {
  _Alignas(64) char bd[BLOCK * 8], ba[BLOCK * 8], bb[BLOCK * 8];
  for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
    int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
    char *d = p[0] + i0 * st[0];
    const void *a = in_block(ba, p[1] + i0 * st[1], st[1], m, esx);
    const void *b = in_block(bb, p[2] + i0 * st[2], st[2], m, esx);
    int dc = st[0] == (int64_t)esd;
    f(dc ? d : bd, a, b, m, ctx);
    if (!dc) move_elems(d, st[0], bd, (int64_t)esd, m, esd);
  }
}

/* One row of a binary map: p[0] the destination, p[1] and p[2] the
   operands (both esx bytes).  fb, when not NULL, is f for a b that is
   one value for the whole row (a broadcast scalar, stride 0), as in
   `x * 2`: it reads b[0] once. */
static EMBER_ALWAYS_INLINE void map2_row(char **p, const int64_t *st,
                                         int64_t n, size_t esd, size_t esx,
                                         map2_fn f, map2_fn fb,
                                         const void *ctx) {
  if (st[0] == (int64_t)esd && st[1] == (int64_t)esx) {
    if (st[2] == (int64_t)esx) {
      f(p[0], p[1], p[2], n, ctx);
      return;
    }
    if (st[2] == 0 && fb) {
      fb(p[0], p[1], p[2], n, ctx);
      return;
    }
  }
  map2_blocks(p, st, n, esd, esx, f, ctx);
}

/*
** bfloat16 and float16 rows, for the maps whose float32 kernel is exact
** to reuse: each block of BLOCK elements is widened into a float32
** buffer (ember_cpu_half_to_f32, exact), the float32 kernel runs on the
** buffers, and its results are rounded once into the destination
** (ember_cpu_half_from_f32).  So a half op gives the float32 op's values
** rounded -- PyTorch's rule, and what half_adapt.c's full-size twins
** gave -- without a float32 copy of each operand: the buffers stay in L1.
** A destination may be a source (in place): each block is read whole
** before it is written.  All operands and dst are of dtype dt.
*/

/* Widen m half elements at p (stride st bytes) into buf. */
static void half_block_in(float *buf, const char *p, int64_t st, int64_t m,
                          ember_dtype dt) {
  _Alignas(64) uint16_t h[BLOCK];
  ember_cpu_half_to_f32(buf, in_block((char *)h, p, st, m, 2), m, dt);
}

/* Narrow m floats into the half elements at p (stride st bytes). */
static void half_block_out(char *p, int64_t st, const float *buf, int64_t m,
                           ember_dtype dt) {
  _Alignas(64) uint16_t h[BLOCK];
  if (st == 2) {
    ember_cpu_half_from_f32(p, buf, m, dt);
    return;
  }
  ember_cpu_half_from_f32(h, buf, m, dt);
  move_elems(p, st, (const char *)h, 2, m, 2);
}

static EMBER_NOINLINE void half_map1_row(char **p, const int64_t *st,
                                         int64_t n, ember_dtype dt,
                                         map1_fn f, const void *ctx) {
  _Alignas(64) float bd[BLOCK], bx[BLOCK];
  for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
    int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
    half_block_in(bx, p[1] + i0 * st[1], st[1], m, dt);
    f(bd, bx, m, ctx);
    half_block_out(p[0] + i0 * st[0], st[0], bd, m, dt);
  }
}

/* fb, when not NULL, takes a b that is one value for the whole row
   (stride 0), widened once. */
static EMBER_NOINLINE void half_map2_row(char **p, const int64_t *st,
                                         int64_t n, ember_dtype dt,
                                         map2_fn f, map2_fn fb,
                                         const void *ctx) {
  _Alignas(64) float bd[BLOCK], ba[BLOCK], bb[BLOCK];
  int scalar = st[2] == 0 && fb;
  if (scalar) ember_cpu_half_to_f32(bb, p[2], 1, dt);
  for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
    int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
    half_block_in(ba, p[1] + i0 * st[1], st[1], m, dt);
    if (scalar) {
      fb(bd, ba, bb, m, ctx);
    } else {
      half_block_in(bb, p[2] + i0 * st[2], st[2], m, dt);
      f(bd, ba, bb, m, ctx);
    }
    half_block_out(p[0] + i0 * st[0], st[0], bd, m, dt);
  }
}

/* }====================================================================== */

/* {======================================================================
** Conversions (copy)
** ======================================================================= */

/* Float to integer casts are undefined out of range: saturate, NaN -> 0. */
static inline int64_t sat_i64(double x) {
  if (x != x) return 0;
  if (x >= 9223372036854775807.0) return INT64_MAX;
  if (x <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)x;
}
static inline int32_t sat_i32(double x) {
  if (x != x) return 0;
  if (x >= 2147483647.0) return INT32_MAX;
  if (x <= -2147483648.0) return INT32_MIN;
  return (int32_t)x;
}
static inline uint8_t sat_u8(double x) {
  if (x != x || x <= 0) return 0;
  if (x >= 255.0) return 255;
  return (uint8_t)x;
}

/* integer to integer: keep the low bits, as C's unsigned conversions do */
static inline int32_t wrap_i32(int64_t x) { return (int32_t)(uint32_t)(uint64_t)x; }
static inline uint8_t wrap_u8(int64_t x) { return (uint8_t)(uint64_t)x; }

/*
** A conversion passes through one of two exact intermediates: a float
** source is read as double (float32 widens exactly), an integer source
** as int64.  The destination then converts once from the intermediate:
** floats saturate into integers, integers wrap, and an int64 is rounded
** to float32 directly (through double it would be rounded twice).
*/
static int is_float(ember_dtype dt) {
  return ember_dtype_is_float(dt);
}

/* n source elements of dtype dt into the intermediate buf */
static void to_wide(void *buf, const void *src, int64_t n, ember_dtype dt) {
  double *f = buf;
  int64_t *k = buf;
  switch (dt) {
    case EMBER_FLOAT32:
      for (int64_t i = 0; i < n; i++) f[i] = ((const float *)src)[i];
      break;
    case EMBER_FLOAT64:
      memcpy(f, src, (size_t)n * sizeof(double));
      break;
    case EMBER_BFLOAT16:
      for (int64_t i = 0; i < n; i++) f[i] = ember_bf16_to_f32(((const uint16_t *)src)[i]);
      break;
    case EMBER_FLOAT16:
      for (int64_t i = 0; i < n; i++) f[i] = ember_f16_to_f32(((const uint16_t *)src)[i]);
      break;
    case EMBER_INT32:
      for (int64_t i = 0; i < n; i++) k[i] = ((const int32_t *)src)[i];
      break;
    case EMBER_INT64:
      memcpy(k, src, (size_t)n * sizeof(int64_t));
      break;
    default:                                   /* uint8 and bool */
      for (int64_t i = 0; i < n; i++) k[i] = ((const uint8_t *)src)[i];
      break;
  }
}

/* n doubles into dst of dtype dt */
static void from_double(void *dst, const double *f, int64_t n, ember_dtype dt) {
  switch (dt) {
    case EMBER_FLOAT32:
      for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = (float)f[i];
      break;
    case EMBER_FLOAT64:
      memcpy(dst, f, (size_t)n * sizeof(double));
      break;
    case EMBER_BFLOAT16:
      for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = ember_f32_to_bf16((float)f[i]);
      break;
    case EMBER_FLOAT16:
      for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = ember_f32_to_f16((float)f[i]);
      break;
    case EMBER_INT32:
      for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = sat_i32(f[i]);
      break;
    case EMBER_INT64:
      for (int64_t i = 0; i < n; i++) ((int64_t *)dst)[i] = sat_i64(f[i]);
      break;
    case EMBER_UINT8:
      for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = sat_u8(f[i]);
      break;
    default:
      for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = f[i] != 0;
      break;
  }
}

/* n int64s into dst of dtype dt */
static void from_int64(void *dst, const int64_t *k, int64_t n, ember_dtype dt) {
  switch (dt) {
    case EMBER_FLOAT32:
      for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = (float)k[i];
      break;
    case EMBER_FLOAT64:
      for (int64_t i = 0; i < n; i++) ((double *)dst)[i] = (double)k[i];
      break;
    case EMBER_BFLOAT16:
      for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = ember_f32_to_bf16((float)k[i]);
      break;
    case EMBER_FLOAT16:
      for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = ember_f32_to_f16((float)k[i]);
      break;
    case EMBER_INT32:
      for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = wrap_i32(k[i]);
      break;
    case EMBER_INT64:
      memcpy(dst, k, (size_t)n * sizeof(int64_t));
      break;
    case EMBER_UINT8:
      for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = wrap_u8(k[i]);
      break;
    default:
      for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = k[i] != 0;
      break;
  }
}

/* The two float conversions people make in bulk, a loop each. */
static void f32_from_f64(float *d, const double *s, int64_t n) {
  #pragma omp simd
  for (int64_t i = 0; i < n; i++) d[i] = (float)s[i];
}
static void f64_from_f32(double *d, const float *s, int64_t n) {
  #pragma omp simd
  for (int64_t i = 0; i < n; i++) d[i] = s[i];
}

/* float32 <-> the half types, the conversions of mixed precision */
static int half_convert(void *d, const void *s, int64_t n, ember_dtype dst,
                        ember_dtype src) {
  if (src == EMBER_FLOAT32 && dst == EMBER_BFLOAT16)
    ember_cpu_bf16_from_f32(d, s, n);
  else if (src == EMBER_FLOAT32 && dst == EMBER_FLOAT16)
    ember_cpu_f16_from_f32(d, s, n);
  else if (src == EMBER_BFLOAT16 && dst == EMBER_FLOAT32)
    ember_cpu_f32_from_bf16(d, s, n);
  else if (src == EMBER_FLOAT16 && dst == EMBER_FLOAT32)
    ember_cpu_f32_from_f16(d, s, n);
  else
    return 0;
  return 1;
}

typedef struct { ember_dtype dst, src; } convert_ctx;

/* d (dtype c->dst) = s (dtype c->src), contiguous, a block at a time */
static void convert(void *d, const void *s, int64_t n, const void *ctx) {
  const convert_ctx *c = ctx;
  if (c->dst == EMBER_FLOAT32 && c->src == EMBER_FLOAT64) {
    f32_from_f64(d, s, n);
    return;
  }
  if (c->dst == EMBER_FLOAT64 && c->src == EMBER_FLOAT32) {
    f64_from_f32(d, s, n);
    return;
  }
  if (half_convert(d, s, n, c->dst, c->src)) return;
  size_t esd = ember_dtype_size(c->dst), ess = ember_dtype_size(c->src);
  _Alignas(64) char wide[BLOCK * 8];
  for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {
    int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
    char *dp = (char *)d + i0 * (int64_t)esd;
    to_wide(wide, (const char *)s + i0 * (int64_t)ess, m, c->src);
    if (is_float(c->src)) from_double(dp, (const double *)wide, m, c->dst);
    else from_int64(dp, (const int64_t *)wide, m, c->dst);
  }
}

static void convert_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  const convert_ctx *c = ctx;
  map1_row(p, st, n, ember_dtype_size(c->dst), ember_dtype_size(c->src),
           convert, ctx);
}

/* same dtype: a plain byte copy per element size */
static void copy_same(char **p, const int64_t *st, int64_t n, void *ctx) {
  size_t es = *(size_t *)ctx;
  if (st[0] == (int64_t)es && st[1] == (int64_t)es) {
    memmove(p[0], p[1], (size_t)n * es);
    return;
  }
  move_elems(p[0], st[0], p[1], st[1], n, es);
}

int ember_cpu_copy(ember_tensor *dst, const ember_tensor *src) {
  const ember_tensor *ops[2] = {dst, src};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 2, ops);
  if (dst->dtype == src->dtype) {
    size_t es = ember_dtype_size(dst->dtype);
    ember_cpu_iter_run(&it, copy_same, &es);
    return 0;
  }
  convert_ctx c = {dst->dtype, src->dtype};
  ember_cpu_iter_run(&it, convert_row, &c);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** fill and arange
** ======================================================================= */

/* The fill value as the destination's bytes (es of them); same: whether
   those bytes are all one byte (0.0, 0, -1, every uint8/bool value), so a
   contiguous row is one memset. */
typedef struct { _Alignas(8) unsigned char bytes[8]; size_t es; int same; } fill_ctx;

/* A contiguous row is filled by doubling: the first element written, then
   the filled prefix copied onto what follows (memcpy runs at memory speed
   for any element size; the element loops it replaces were not
   vectorised at -O2 and ran at half of PyTorch's fill). */
static void fill_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  const fill_ctx *c = ctx;
  if (n <= 0) return;
  if (st[0] != (int64_t)c->es) {
    move_elems(p[0], st[0], (const char *)c->bytes, 0, n, c->es);
    return;
  }
  if (c->same) {
    memset(p[0], c->bytes[0], (size_t)n * c->es);
    return;
  }
  size_t total = (size_t)n * c->es, done = c->es;
  memcpy(p[0], c->bytes, c->es);
  while (done < total) {
    size_t k = done < total - done ? done : total - done;
    memcpy(p[0] + done, p[0], k);
    done += k;
  }
}

int ember_cpu_fill(ember_tensor *dst, double value, int64_t ivalue) {
  fill_ctx c = {{0}, ember_dtype_size(dst->dtype), 1};
  float f = (float)value;
  int32_t i32 = (int32_t)ivalue;
  uint8_t u8 = (uint8_t)ivalue, b = value != 0;
  uint16_t h = dst->dtype == EMBER_BFLOAT16 ? ember_f32_to_bf16(f) : ember_f32_to_f16(f);
  switch (dst->dtype) {
    case EMBER_FLOAT32: memcpy(c.bytes, &f, sizeof f); break;
    case EMBER_FLOAT64: memcpy(c.bytes, &value, sizeof value); break;
    case EMBER_BFLOAT16: case EMBER_FLOAT16: memcpy(c.bytes, &h, sizeof h); break;
    case EMBER_INT32: memcpy(c.bytes, &i32, sizeof i32); break;
    case EMBER_INT64: memcpy(c.bytes, &ivalue, sizeof ivalue); break;
    case EMBER_UINT8: memcpy(c.bytes, &u8, sizeof u8); break;
    default: memcpy(c.bytes, &b, sizeof b); break;
  }
  for (size_t k = 1; k < c.es; k++) c.same &= c.bytes[k] == c.bytes[0];
  const ember_tensor *ops[1] = {dst};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 1, ops);
  ember_cpu_iter_run(&it, fill_row, &c);
  return 0;
}

int ember_cpu_arange(ember_tensor *dst, double start, double step) {
  int64_t n = ember_numel(dst);
  void *d = ember_data(dst);
  for (int64_t i = 0; i < n; i++) {
    double v = start + (double)i * step;
    switch (dst->dtype) {
      case EMBER_FLOAT32: ((float *)d)[i] = (float)v; break;
      case EMBER_FLOAT64: ((double *)d)[i] = v; break;
      case EMBER_BFLOAT16: ((uint16_t *)d)[i] = ember_f32_to_bf16((float)v); break;
      case EMBER_FLOAT16: ((uint16_t *)d)[i] = ember_f32_to_f16((float)v); break;
      case EMBER_INT32: ((int32_t *)d)[i] = sat_i32(v); break;
      case EMBER_INT64: ((int64_t *)d)[i] = sat_i64(v); break;
      case EMBER_UINT8: ((uint8_t *)d)[i] = sat_u8(v); break;
      default: ((uint8_t *)d)[i] = v != 0; break;
    }
  }
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Unary math
** ======================================================================= */

typedef struct { ember_unary_op op; double p0, p1; } unary_ctx;

static inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

#define SQRT1_2 0.70710678118654752440
#define SQRT_PI_2 0.88622692545275801365   /* sqrt(pi) / 2: erfinv' = it * exp(y^2) */

/*
** The inverse of erf, in double (float32 rounds the result): Giles'
** approximation ("Approximating the erfinv function", 2010) as a start,
** then Newton steps on erf(x) = y.  Near +-1 the residual is taken as
** (1 - y) - erfc(x) (or erfc(-x) - (1 + y)): 1 -+ y is exact there, and
** erf(x) - y would lose every digit.  Outside [-1, 1]: NaN, as PyTorch.
*/
static double erfinv_d(double y) {
  if (!(y >= -1 && y <= 1)) return NAN;
  if (y == 1) return INFINITY;
  if (y == -1) return -INFINITY;
  if (y == 0) return y;                     /* keeps the sign of -0 */
  double w = -log((1.0 - y) * (1.0 + y)), p;
  if (w < 5) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;  p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w; p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;  p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;     p = 1.50140941 + p * w;
  } else {
    w = sqrt(w) - 3;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;  p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;  p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;   p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;      p = 2.83297682 + p * w;
  }
  double x = p * y;
  for (int k = 0; k < 3; k++) {
    double r = y > 0.5 ? (1.0 - y) - erfc(x)
             : y < -0.5 ? erfc(-x) - (1.0 + y) : erf(x) - y;
    x -= r / (1.1283791670955126 * exp(-x * x));
  }
  return x;
}

/* GELU's tanh approximation, as PyTorch writes it */
#define GELU_BETA 0.7978845608028654   /* sqrt(2 / pi) */
#define GELU_KAPPA 0.044715
static EMBER_ALWAYS_INLINE float gelu_tanhf(float x) {
  return 0.5f * x * (1.0f + vm_tanhf((float)GELU_BETA * (x + (float)GELU_KAPPA * x * x * x)));
}
static inline double gelu_tanh(double x) {
  return 0.5 * x * (1.0 + tanh(GELU_BETA * (x + GELU_KAPPA * x * x * x)));
}

/* clamp and ReLU let NaN through, as PyTorch's do */
static inline float clampf(float x, float lo, float hi) {
  return x != x ? x : x < lo ? lo : x > hi ? hi : x;
}
static inline double clamp(double x, double lo, double hi) {
  return x != x ? x : x < lo ? lo : x > hi ? hi : x;
}
static inline float reluf(float x) { return x > 0 ? x : (x != x ? x : 0.0f); }
static inline double relu(double x) { return x > 0 ? x : (x != x ? x : 0.0); }

/* Element i of a float32 row whose elements are s bytes apart. */
static inline float f32_at(const char *q, int64_t i, int64_t s) {
  return *(const float *)(q + i * s);
}

/* c->p0, c->p1: clamp's bounds, leaky ReLU's slope (p0), GELU's
   approximation (p0 != 0: tanh) */
static EMBER_SIMD void unary_f32(void *dv, const void *xv, int64_t n, const void *ctx) {
  const unary_ctx *c = ctx;
  float *d = dv;
  const float *x = xv;
  const float lo = (float)c->p0, hi = (float)c->p1;
  switch (c->op) {
    case EMBER_NEG:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = -x[i];
      break;
    case EMBER_ABS:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = fabsf(x[i]);
      break;
    case EMBER_EXP:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = vm_expf(x[i]);
      break;
    case EMBER_LOG:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = vm_logf(x[i]);
      break;
    case EMBER_SQRT:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = sqrtf(x[i]);
      break;
    case EMBER_SIN:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = sinf(x[i]);
      break;
    case EMBER_COS:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = cosf(x[i]);
      break;
    case EMBER_TANH:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = vm_tanhf(x[i]);
      break;
    case EMBER_SIGMOID:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = vm_sigmoidf(x[i]);
      break;
    case EMBER_RELU:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = reluf(x[i]);
      break;
    case EMBER_CLAMP:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = clampf(x[i], lo, hi);
      break;
    case EMBER_ERF:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = vm_erff(x[i]);
      break;
    case EMBER_LOG1P:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = log1pf(x[i]);
      break;
    case EMBER_EXPM1:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = expm1f(x[i]);
      break;
    case EMBER_GELU:
      if (c->p0 != 0) {
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = gelu_tanhf(x[i]);
      } else {
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++)
          d[i] = 0.5f * x[i] * (1.0f + vm_erff(x[i] * (float)SQRT1_2));
      }
      break;
    case EMBER_LEAKY_RELU:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = x[i] > 0 ? x[i] : x[i] * lo;
      break;
    case EMBER_FLOOR:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = floorf(x[i]);
      break;
    case EMBER_CEIL:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = ceilf(x[i]);
      break;
    case EMBER_ROUND:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = nearbyintf(x[i]);
      break;
    case EMBER_TRUNC:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = truncf(x[i]);
      break;
    case EMBER_SIGN:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++)
        d[i] = (float)((x[i] > 0) - (x[i] < 0));
      break;
    case EMBER_ERFINV:
      for (int64_t i = 0; i < n; i++) d[i] = (float)erfinv_d(x[i]);
      break;
    case EMBER_SILU:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = x[i] * vm_sigmoidf(x[i]);
      break;
    default: break;
  }
}

static void unary_f64(void *dv, const void *xv, int64_t n, const void *ctx) {
  const unary_ctx *c = ctx;
  double *d = dv;
  const double *x = xv;
  const double lo = c->p0, hi = c->p1;
  for (int64_t i = 0; i < n; i++) {
    double v = x[i];
    switch (c->op) {
      case EMBER_NEG: d[i] = -v; break;
      case EMBER_ABS: d[i] = fabs(v); break;
      case EMBER_EXP: d[i] = exp(v); break;
      case EMBER_LOG: d[i] = log(v); break;
      case EMBER_SQRT: d[i] = sqrt(v); break;
      case EMBER_SIN: d[i] = sin(v); break;
      case EMBER_COS: d[i] = cos(v); break;
      case EMBER_TANH: d[i] = tanh(v); break;
      case EMBER_SIGMOID: d[i] = sigmoid(v); break;
      case EMBER_RELU: d[i] = relu(v); break;
      case EMBER_CLAMP: d[i] = clamp(v, lo, hi); break;
      case EMBER_ERF: d[i] = erf(v); break;
      case EMBER_LOG1P: d[i] = log1p(v); break;
      case EMBER_EXPM1: d[i] = expm1(v); break;
      case EMBER_GELU:
        d[i] = c->p0 != 0 ? gelu_tanh(v) : 0.5 * v * (1.0 + erf(v * SQRT1_2));
        break;
      case EMBER_LEAKY_RELU: d[i] = v > 0 ? v : v * lo; break;
      case EMBER_FLOOR: d[i] = floor(v); break;
      case EMBER_CEIL: d[i] = ceil(v); break;
      case EMBER_ROUND: d[i] = nearbyint(v); break;
      case EMBER_TRUNC: d[i] = trunc(v); break;
      case EMBER_SIGN: d[i] = (double)((v > 0) - (v < 0)); break;
      case EMBER_ERFINV: d[i] = erfinv_d(v); break;
      case EMBER_SILU: d[i] = v * sigmoid(v); break;
      default: break;
    }
  }
}

/*
** Integer unary ops: neg, abs, relu, clamp (the core sends the rest as
** floats).  Bounds arrive as doubles; compare in double, keep integers.
** Negation goes through the unsigned type: INT_MIN stays INT_MIN.
*/
static void unary_i32(void *dv, const void *xv, int64_t n, const void *ctx) {
  const unary_ctx *c = ctx;
  int32_t *d = dv;
  const int32_t *x = xv;
  for (int64_t i = 0; i < n; i++) {
    int32_t v = x[i], neg = (int32_t)(0u - (uint32_t)v);
    switch (c->op) {
      case EMBER_NEG: d[i] = neg; break;
      case EMBER_ABS: d[i] = v < 0 ? neg : v; break;
      case EMBER_RELU: d[i] = v > 0 ? v : 0; break;
      case EMBER_CLAMP:
        d[i] = (double)v < c->p0 ? (int32_t)c->p0 : (double)v > c->p1 ? (int32_t)c->p1 : v;
        break;
      case EMBER_FLOOR: case EMBER_CEIL: case EMBER_ROUND: case EMBER_TRUNC:
        d[i] = v;
        break;
      case EMBER_SIGN: d[i] = (int32_t)((v > 0) - (v < 0)); break;
      default: break;
    }
  }
}

static void unary_i64(void *dv, const void *xv, int64_t n, const void *ctx) {
  const unary_ctx *c = ctx;
  int64_t *d = dv;
  const int64_t *x = xv;
  for (int64_t i = 0; i < n; i++) {
    int64_t v = x[i], neg = (int64_t)(0u - (uint64_t)v);
    switch (c->op) {
      case EMBER_NEG: d[i] = neg; break;
      case EMBER_ABS: d[i] = v < 0 ? neg : v; break;
      case EMBER_RELU: d[i] = v > 0 ? v : 0; break;
      case EMBER_CLAMP:
        d[i] = (double)v < c->p0 ? (int64_t)c->p0 : (double)v > c->p1 ? (int64_t)c->p1 : v;
        break;
      case EMBER_FLOOR: case EMBER_CEIL: case EMBER_ROUND: case EMBER_TRUNC:
        d[i] = v;
        break;
      case EMBER_SIGN: d[i] = (int64_t)((v > 0) - (v < 0)); break;
      default: break;
    }
  }
}

/* uint8 and bool: never negative, so abs and relu are copies */
static void unary_u8(void *dv, const void *xv, int64_t n, const void *ctx) {
  const unary_ctx *c = ctx;
  uint8_t *d = dv;
  const uint8_t *x = xv;
  for (int64_t i = 0; i < n; i++) {
    uint8_t v = x[i];
    switch (c->op) {
      case EMBER_NEG: d[i] = (uint8_t)(0u - (uint8_t)v); break;
      case EMBER_ABS: d[i] = v; break;
      case EMBER_RELU: d[i] = v > 0 ? v : 0; break;
      case EMBER_CLAMP:
        d[i] = (double)v < c->p0 ? (uint8_t)c->p0 : (double)v > c->p1 ? (uint8_t)c->p1 : v;
        break;
      case EMBER_FLOOR: case EMBER_CEIL: case EMBER_ROUND: case EMBER_TRUNC:
        d[i] = v;
        break;
      case EMBER_SIGN: d[i] = v > 0; break;
      default: break;
    }
  }
}

/* unary_f32 of one element: the same formulas, for strided rows */
static inline float unary_one_f32(const unary_ctx *c, float x, float lo,
                                  float hi) {
  switch (c->op) {
    case EMBER_NEG: return -x;
    case EMBER_ABS: return fabsf(x);
    case EMBER_EXP: return vm_expf(x);
    case EMBER_LOG: return vm_logf(x);
    case EMBER_SQRT: return sqrtf(x);
    case EMBER_SIN: return sinf(x);
    case EMBER_COS: return cosf(x);
    case EMBER_TANH: return vm_tanhf(x);
    case EMBER_SIGMOID: return vm_sigmoidf(x);
    case EMBER_RELU: return reluf(x);
    case EMBER_CLAMP: return clampf(x, lo, hi);
    case EMBER_ERF: return vm_erff(x);
    case EMBER_LOG1P: return log1pf(x);
    case EMBER_EXPM1: return expm1f(x);
    case EMBER_GELU:
      return c->p0 != 0 ? gelu_tanhf(x) : 0.5f * x * (1.0f + vm_erff(x * (float)SQRT1_2));
    case EMBER_FLOOR: return floorf(x);
    case EMBER_CEIL: return ceilf(x);
    case EMBER_ROUND: return nearbyintf(x);
    case EMBER_TRUNC: return truncf(x);
    case EMBER_SIGN: return (float)((x > 0) - (x < 0));
    case EMBER_ERFINV: return (float)erfinv_d(x);
    case EMBER_SILU: return x * vm_sigmoidf(x);
    default: return x > 0 ? x : x * lo;           /* EMBER_LEAKY_RELU */
  }
}

/* unary_f32 over a row with other strides (a transposed view), in one
   pass: gathering it into blocks first would read each strided element
   into a buffer and then again. */
static void unary_strided_f32(char **p, const int64_t *st, int64_t n,
                              const unary_ctx *c) {
  const float lo = (float)c->p0, hi = (float)c->p1;
  if ((unsigned)c->op >= EMBER_NUNARY) return;    /* as unary_f32: nothing */
  for (int64_t i = 0; i < n; i++)
    *(float *)(p[0] + i * st[0]) = unary_one_f32(c, f32_at(p[1], i, st[1]), lo, hi);
}

typedef struct { unary_ctx c; ember_dtype dt; map1_fn f; size_t es; } unary_row_ctx;

static void unary_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  const unary_row_ctx *u = ctx;
  if (ember_dtype_is_half(u->dt))
    half_map1_row(p, st, n, u->dt, u->f, &u->c);
  else if (u->dt == EMBER_FLOAT32 && (st[0] != 4 || st[1] != 4))
    unary_strided_f32(p, st, n, &u->c);
  else
    map1_row(p, st, n, u->es, u->es, u->f, &u->c);
}

int ember_cpu_unary(ember_unary_op op, ember_tensor *dst,
                    const ember_tensor *src, double p0, double p1) {
  unary_row_ctx u = {{op, p0, p1}, src->dtype, NULL, 0};
  switch (src->dtype) {
    case EMBER_FLOAT32: case EMBER_BFLOAT16: case EMBER_FLOAT16:
      u.f = unary_f32; u.es = sizeof(float);   /* halves: by blocks */
      break;
    case EMBER_FLOAT64: u.f = unary_f64; u.es = sizeof(double); break;
    case EMBER_INT32: u.f = unary_i32; u.es = sizeof(int32_t); break;
    case EMBER_INT64: u.f = unary_i64; u.es = sizeof(int64_t); break;
    default: u.f = unary_u8; u.es = 1; break;
  }
  const ember_tensor *ops[2] = {dst, src};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 2, ops);
  ember_cpu_iter_run(&it, unary_row, &u);
  return 0;
}

/*
** Derivatives: g is the incoming gradient, s the saved tensor (see the
** backend slot: the input, or the output for exp, sqrt, tanh, sigmoid).
** Formulas follow PyTorch's derivatives.yaml, in the tensor's own
** precision.
*/
static EMBER_SIMD void unary_backward_f32(void *dv, const void *gv, const void *sv,
                               int64_t n, const void *ctx) {
  const unary_ctx *c = ctx;
  float *d = dv;
  const float *g = gv, *s = sv;
  const float lo = (float)c->p0, hi = (float)c->p1;
  const float k_erf = (float)1.1283791670955126;   /* 2 / sqrt(pi) */
  const float k_pdf = (float)0.3989422804014327;   /* 1 / sqrt(2 pi) */
  const float beta = (float)GELU_BETA, kappa = (float)GELU_KAPPA;
  switch (c->op) {
    case EMBER_ABS:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++)
        d[i] = s[i] > 0 ? g[i] : s[i] < 0 ? -g[i] : 0.0f;
      break;
    case EMBER_EXP:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] * s[i];
      break;
    case EMBER_LOG:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] / s[i];
      break;
    case EMBER_SQRT:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] / (2 * s[i]);
      break;
    case EMBER_SIN:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] * cosf(s[i]);
      break;
    case EMBER_COS:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = -g[i] * sinf(s[i]);
      break;
    case EMBER_TANH:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] * (1 - s[i] * s[i]);
      break;
    case EMBER_SIGMOID:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] * (1 - s[i]) * s[i];
      break;
    case EMBER_RELU:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = s[i] > 0 ? g[i] : 0.0f;
      break;
    case EMBER_CLAMP:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++)
        d[i] = s[i] >= lo && s[i] <= hi ? g[i] : 0.0f;
      break;
    case EMBER_ERF:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++)
        d[i] = g[i] * k_erf * vm_expf(-s[i] * s[i]);
      break;
    case EMBER_LOG1P:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] / (s[i] + 1);
      break;
    case EMBER_EXPM1:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = g[i] * (s[i] + 1);
      break;
    case EMBER_GELU:
      if (c->p0 != 0) {
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {
          float b = s[i], t = vm_tanhf(beta * (b + kappa * b * b * b));
          d[i] = g[i] * ((0.5f * (1 + t)) + 0.5f * b * (1 - t * t) * beta * (1 + 3 * kappa * b * b));
        }
      } else {
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {
          float b = s[i];
          d[i] = g[i] * (0.5f * (1 + vm_erff(b * (float)SQRT1_2)) + b * k_pdf * vm_expf(-0.5f * b * b));
        }
      }
      break;
    case EMBER_LEAKY_RELU:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = s[i] > 0 ? g[i] : g[i] * lo;
      break;
    case EMBER_ERFINV:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++)
        d[i] = g[i] * (float)SQRT_PI_2 * vm_expf(s[i] * s[i]);
      break;
    case EMBER_SILU:   /* s (1 + x (1 - s)), s = sigmoid(x), as PyTorch */
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {
        float sg = vm_sigmoidf(s[i]);
        d[i] = g[i] * sg * (1 + s[i] * (1 - sg));
      }
      break;
    default: break;
  }
}

static void unary_backward_f64(void *dv, const void *gv, const void *sv,
                               int64_t n, const void *ctx) {
  const unary_ctx *c = ctx;
  double *d = dv;
  const double *gp = gv, *sp = sv;
  const double lo = c->p0, hi = c->p1;
  const double k_erf = 1.1283791670955126;   /* 2 / sqrt(pi) */
  const double k_pdf = 0.3989422804014327;   /* 1 / sqrt(2 pi) */
  const double beta = GELU_BETA, kappa = GELU_KAPPA;
  for (int64_t i = 0; i < n; i++) {
    double a = gp[i], b = sp[i], t;
    switch (c->op) {
      case EMBER_ABS: d[i] = b > 0 ? a : b < 0 ? -a : 0.0; break;
      case EMBER_EXP: d[i] = a * b; break;
      case EMBER_LOG: d[i] = a / b; break;
      case EMBER_SQRT: d[i] = a / (2 * b); break;
      case EMBER_SIN: d[i] = a * cos(b); break;
      case EMBER_COS: d[i] = -a * sin(b); break;
      case EMBER_TANH: d[i] = a * (1 - b * b); break;
      case EMBER_SIGMOID: d[i] = a * (1 - b) * b; break;
      case EMBER_RELU: d[i] = b > 0 ? a : 0.0; break;
      case EMBER_CLAMP: d[i] = b >= lo && b <= hi ? a : 0.0; break;
      case EMBER_ERF: d[i] = a * k_erf * exp(-b * b); break;
      case EMBER_LOG1P: d[i] = a / (b + 1); break;
      case EMBER_EXPM1: d[i] = a * (b + 1); break;
      case EMBER_GELU:
        if (c->p0 != 0) {
          t = tanh(beta * (b + kappa * b * b * b));
          d[i] = a * ((0.5 * (1 + t)) + 0.5 * b * (1 - t * t) * beta * (1 + 3 * kappa * b * b));
        } else {
          d[i] = a * (0.5 * (1 + erf(b * SQRT1_2)) + b * k_pdf * exp(-0.5 * b * b));
        }
        break;
      case EMBER_LEAKY_RELU: d[i] = b > 0 ? a : a * lo; break;
      case EMBER_ERFINV: d[i] = a * SQRT_PI_2 * exp(b * b); break;
      case EMBER_SILU: {
        double sg = sigmoid(b);
        d[i] = a * sg * (1 + b * (1 - sg));
        break;
      }
      default: break;
    }
  }
}

typedef struct { unary_ctx c; map2_fn f; size_t es; ember_dtype dt; } map2_ctx;

static void unary_backward_row(char **p, const int64_t *st, int64_t n,
                               void *ctx) {
  const map2_ctx *u = ctx;
  if (ember_dtype_is_half(u->dt))
    half_map2_row(p, st, n, u->dt, u->f, NULL, &u->c);
  else
    map2_row(p, st, n, u->es, u->es, u->f, NULL, &u->c);
}

int ember_cpu_unary_backward(ember_unary_op op, ember_tensor *dst,
                             const ember_tensor *g, const ember_tensor *s,
                             double p0, double p1) {
  int f64 = dst->dtype == EMBER_FLOAT64;
  /* float32's kernel serves the halves, by blocks */
  map2_ctx u = {{op, p0, p1}, f64 ? unary_backward_f64 : unary_backward_f32,
                f64 ? sizeof(double) : sizeof(float), dst->dtype};
  const ember_tensor *ops[3] = {dst, g, s};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 3, ops);
  ember_cpu_iter_run(&it, unary_backward_row, &u);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Binary math and comparisons
** ======================================================================= */

/* NaN-propagating maximum and minimum, as torch.maximum */
static inline float maximumf(float a, float b) { return a != a || a > b ? a : b; }
static inline float minimumf(float a, float b) { return a != a || a < b ? a : b; }
static inline double maximum(double a, double b) { return a != a || a > b ? a : b; }
static inline double minimum(double a, double b) { return a != a || a < b ? a : b; }

/* remainder: the sign of the divisor, as torch.remainder */
static inline float remainderf_(float a, float b) {
  float m = fmodf(a, b);
  return m != 0 && (b < 0) != (m < 0) ? m + b : m;
}
static inline double remainder_(double a, double b) {
  double m = fmod(a, b);
  return m != 0 && (b < 0) != (m < 0) ? m + b : m;
}

/* remainder, fmod, atan2, hypot in float32 */
static inline float binary_more_f32(ember_binary_op op, float a, float b) {
  switch (op) {
    case EMBER_REMAINDER: return remainderf_(a, b);
    case EMBER_FMOD: return fmodf(a, b);
    case EMBER_ATAN2: return atan2f(a, b);
    default: return hypotf(a, b);
  }
}

static EMBER_SIMD void binary_f32(void *dv, const void *av, const void *bv, int64_t n,
                       const void *ctx) {
  float *d = dv;
  const float *a = av, *b = bv;
  switch (*(const ember_binary_op *)ctx) {
    case EMBER_ADD:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] + b[i];
      break;
    case EMBER_SUB:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] - b[i];
      break;
    case EMBER_MUL:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] * b[i];
      break;
    case EMBER_DIV:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] / b[i];
      break;
    case EMBER_POW:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++)
        d[i] = b[i] == 2.0f ? a[i] * a[i] : powf(a[i], b[i]);
      break;
    case EMBER_MAXIMUM:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = maximumf(a[i], b[i]);
      break;
    case EMBER_MINIMUM:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = minimumf(a[i], b[i]);
      break;
    default: {
      ember_binary_op op = *(const ember_binary_op *)ctx;
      for (int64_t i = 0; i < n; i++) d[i] = binary_more_f32(op, a[i], b[i]);
      break;
    }
  }
}

/* binary_f32 with b one value for the whole row (a broadcast scalar) */
static EMBER_SIMD void binary_scalar_f32(void *dv, const void *av, const void *bv,
                              int64_t n, const void *ctx) {
  float *d = dv;
  const float *a = av, b = *(const float *)bv;
  switch (*(const ember_binary_op *)ctx) {
    case EMBER_ADD:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] + b;
      break;
    case EMBER_SUB:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] - b;
      break;
    case EMBER_MUL:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] * b;
      break;
    case EMBER_DIV:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] / b;
      break;
    case EMBER_POW:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++)
        d[i] = b == 2.0f ? a[i] * a[i] : powf(a[i], b);
      break;
    case EMBER_MAXIMUM:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = maximumf(a[i], b);
      break;
    case EMBER_MINIMUM:
      _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = minimumf(a[i], b);
      break;
    default: {
      ember_binary_op op = *(const ember_binary_op *)ctx;
      for (int64_t i = 0; i < n; i++) d[i] = binary_more_f32(op, a[i], b);
      break;
    }
  }
}

/* binary_f32 over operands with any strides (in bytes): a transposed
   view, say.  One pass, as gathering them into blocks first would read
   each strided element into a buffer and then again. */
static EMBER_NOINLINE void binary_strided_f32(char **p, const int64_t *st, int64_t n,
                               ember_binary_op op) {
  char *d = p[0];
  const char *a = p[1], *b = p[2];
  const int64_t sd = st[0], sa = st[1], sb = st[2];
  switch (op) {
    case EMBER_ADD:
      for (int64_t i = 0; i < n; i++) *(float *)(d + i * sd) =
            f32_at(a, i, sa) + f32_at(b, i, sb);
      break;
    case EMBER_SUB:
      for (int64_t i = 0; i < n; i++) *(float *)(d + i * sd) =
            f32_at(a, i, sa) - f32_at(b, i, sb);
      break;
    case EMBER_MUL:
      for (int64_t i = 0; i < n; i++) *(float *)(d + i * sd) =
            f32_at(a, i, sa) * f32_at(b, i, sb);
      break;
    case EMBER_DIV:
      for (int64_t i = 0; i < n; i++) *(float *)(d + i * sd) =
            f32_at(a, i, sa) / f32_at(b, i, sb);
      break;
    case EMBER_POW:
      for (int64_t i = 0; i < n; i++) {
        float x = f32_at(a, i, sa), y = f32_at(b, i, sb);
        *(float *)(d + i * sd) =
            y == 2.0f ? x * x : powf(x, y);
      }
      break;
    case EMBER_MAXIMUM:
      for (int64_t i = 0; i < n; i++) *(float *)(d + i * sd) =
            maximumf(f32_at(a, i, sa), f32_at(b, i, sb));
      break;
    case EMBER_MINIMUM:
      for (int64_t i = 0; i < n; i++) *(float *)(d + i * sd) =
            minimumf(f32_at(a, i, sa), f32_at(b, i, sb));
      break;
    default:
      for (int64_t i = 0; i < n; i++) *(float *)(d + i * sd) =
            binary_more_f32(op, f32_at(a, i, sa), f32_at(b, i, sb));
      break;
  }
}

static void binary_f64(void *dv, const void *av, const void *bv, int64_t n,
                       const void *ctx) {
  ember_binary_op op = *(const ember_binary_op *)ctx;
  double *d = dv;
  const double *ap = av, *bp = bv;
  for (int64_t i = 0; i < n; i++) {
    double a = ap[i], b = bp[i];
    switch (op) {
      case EMBER_ADD: d[i] = a + b; break;
      case EMBER_SUB: d[i] = a - b; break;
      case EMBER_MUL: d[i] = a * b; break;
      case EMBER_DIV: d[i] = a / b; break;
      case EMBER_POW: d[i] = b == 2.0 ? a * a : pow(a, b); break;
      case EMBER_MAXIMUM: d[i] = maximum(a, b); break;
      case EMBER_MINIMUM: d[i] = minimum(a, b); break;
      case EMBER_REMAINDER: d[i] = remainder_(a, b); break;
      case EMBER_FMOD: d[i] = fmod(a, b); break;
      case EMBER_ATAN2: d[i] = atan2(a, b); break;
      case EMBER_HYPOT: d[i] = hypot(a, b); break;
      default: break;
    }
  }
}

/* Integer power by squaring, wrapping; the core has checked that b >= 0. */
static inline uint64_t ipow_u64(uint64_t x, uint64_t e) {
  uint64_t r = 1;
  for (; e; e >>= 1) {
    if (e & 1) r *= x;
    x *= x;
  }
  return r;
}

/* Integer remainder (the sign of b) and fmod (the sign of a); the core has
   checked that b != 0.  b == -1 gives 0 (INT_MIN % -1 overflows in C). */
#define INT_MOD(a, b) ((b) == -1 ? 0 : (a) % (b))
#define INT_REM(a, b) (INT_MOD(a, b) != 0 && ((b) < 0) != (INT_MOD(a, b) < 0) \
                       ? INT_MOD(a, b) + (b) : INT_MOD(a, b))

/*
** Integers: +, -, * and power wrap (computed in the unsigned type, whose
** low bits are the same whatever the width they are computed in; division
** comes as floats from the core).
*/
static void binary_i32(void *dv, const void *av, const void *bv, int64_t n,
                       const void *ctx) {
  ember_binary_op op = *(const ember_binary_op *)ctx;
  int32_t *d = dv;
  const int32_t *ap = av, *bp = bv;
  for (int64_t i = 0; i < n; i++) {
    int32_t a = ap[i], b = bp[i];
    switch (op) {
      case EMBER_ADD: d[i] = (int32_t)((uint32_t)a + (uint32_t)b); break;
      case EMBER_SUB: d[i] = (int32_t)((uint32_t)a - (uint32_t)b); break;
      case EMBER_MUL: d[i] = (int32_t)((uint32_t)a * (uint32_t)b); break;
      case EMBER_POW: d[i] = (int32_t)(uint32_t)ipow_u64((uint64_t)(uint32_t)a, (uint64_t)b); break;
      case EMBER_MAXIMUM: d[i] = a > b ? a : b; break;
      case EMBER_MINIMUM: d[i] = a < b ? a : b; break;
      case EMBER_REMAINDER: d[i] = INT_REM(a, b); break;
      case EMBER_FMOD: d[i] = INT_MOD(a, b); break;
      default: break;
    }
  }
}

static void binary_i64(void *dv, const void *av, const void *bv, int64_t n,
                       const void *ctx) {
  ember_binary_op op = *(const ember_binary_op *)ctx;
  int64_t *d = dv;
  const int64_t *ap = av, *bp = bv;
  for (int64_t i = 0; i < n; i++) {
    int64_t a = ap[i], b = bp[i];
    switch (op) {
      case EMBER_ADD: d[i] = (int64_t)((uint64_t)a + (uint64_t)b); break;
      case EMBER_SUB: d[i] = (int64_t)((uint64_t)a - (uint64_t)b); break;
      case EMBER_MUL: d[i] = (int64_t)((uint64_t)a * (uint64_t)b); break;
      case EMBER_POW: d[i] = (int64_t)ipow_u64((uint64_t)a, (uint64_t)b); break;
      case EMBER_MAXIMUM: d[i] = a > b ? a : b; break;
      case EMBER_MINIMUM: d[i] = a < b ? a : b; break;
      case EMBER_REMAINDER: d[i] = INT_REM(a, b); break;
      case EMBER_FMOD: d[i] = INT_MOD(a, b); break;
      default: break;
    }
  }
}

static void binary_u8(void *dv, const void *av, const void *bv, int64_t n,
                      const void *ctx) {
  ember_binary_op op = *(const ember_binary_op *)ctx;
  uint8_t *d = dv;
  const uint8_t *ap = av, *bp = bv;
  for (int64_t i = 0; i < n; i++) {
    uint8_t a = ap[i], b = bp[i];
    switch (op) {
      case EMBER_ADD: d[i] = (uint8_t)(a + b); break;
      case EMBER_SUB: d[i] = (uint8_t)((uint32_t)a - (uint32_t)b); break;
      case EMBER_MUL: d[i] = (uint8_t)((uint32_t)a * (uint32_t)b); break;
      case EMBER_POW: d[i] = (uint8_t)ipow_u64(a, b); break;
      case EMBER_MAXIMUM: d[i] = a > b ? a : b; break;
      case EMBER_MINIMUM: d[i] = a < b ? a : b; break;
      case EMBER_REMAINDER: d[i] = (uint8_t)(a % b); break;
      case EMBER_FMOD: d[i] = (uint8_t)(a % b); break;
      default: break;
    }
  }
}

/* bool: add is logical or, mul logical and (as PyTorch) */
static void binary_bool(void *dv, const void *av, const void *bv, int64_t n,
                        const void *ctx) {
  ember_binary_op op = *(const ember_binary_op *)ctx;
  uint8_t *d = dv;
  const uint8_t *a = av, *b = bv;
  if (op == EMBER_ADD || op == EMBER_MAXIMUM)
    for (int64_t i = 0; i < n; i++) d[i] = a[i] | b[i];
  else if (op == EMBER_MUL || op == EMBER_MINIMUM)
    for (int64_t i = 0; i < n; i++) d[i] = a[i] & b[i];
}

typedef struct {
  ember_binary_op op;
  ember_dtype dt;
  map2_fn f, fb;
  size_t es;
} binary_ctx;

static void binary_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  const binary_ctx *c = ctx;
  if (ember_dtype_is_half(c->dt))
    half_map2_row(p, st, n, c->dt, c->f, c->fb, &c->op);
  else if (c->dt != EMBER_FLOAT32)
    map2_row(p, st, n, c->es, c->es, c->f, c->fb, &c->op);
  else if (st[0] != 4 || st[1] != 4 || (st[2] != 4 && st[2] != 0))
    binary_strided_f32(p, st, n, c->op);
  else if (st[2])           /* float32 rows called directly: the common case */
    binary_f32(p[0], p[1], p[2], n, &c->op);
  else
    binary_scalar_f32(p[0], p[1], p[2], n, &c->op);
}

int ember_cpu_binary(ember_binary_op op, ember_tensor *dst,
                     const ember_tensor *a, const ember_tensor *b) {
  binary_ctx c = {op, a->dtype, NULL, NULL, 0};
  switch (a->dtype) {
    case EMBER_FLOAT32: case EMBER_BFLOAT16: case EMBER_FLOAT16:
      /* the halves: float32's kernels, by blocks */
      c.f = binary_f32; c.fb = binary_scalar_f32; c.es = sizeof(float);
      break;
    case EMBER_FLOAT64: c.f = binary_f64; c.es = sizeof(double); break;
    case EMBER_INT32: c.f = binary_i32; c.es = sizeof(int32_t); break;
    case EMBER_INT64: c.f = binary_i64; c.es = sizeof(int64_t); break;
    case EMBER_UINT8: c.f = binary_u8; c.es = 1; break;
    default: c.f = binary_bool; c.es = 1; break;
  }
  const ember_tensor *ops[3] = {dst, a, b};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 3, ops);
  ember_cpu_iter_run(&it, binary_row, &c);
  return 0;
}

/*
** Comparisons: dst is bool (uint8); the operands are compared in their own
** dtype.  The float32 one is written for speed (masks are taken of big
** activations); the others compare through the widest type that holds
** them exactly: double for float64, int64 for every integer.
*/
static EMBER_SIMD void compare_f32(void *dv, const void *av, const void *bv, int64_t n,
                        const void *ctx) {
  uint8_t *d = dv;
  const float *a = av, *b = bv;
  switch (*(const ember_cmp_op *)ctx) {
    case EMBER_EQ: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] == b[i]; break;
    case EMBER_NE: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] != b[i]; break;
    case EMBER_LT: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] < b[i]; break;
    case EMBER_LE: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] <= b[i]; break;
    case EMBER_GT: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] > b[i]; break;
    case EMBER_GE: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] >= b[i]; break;
    default: break;
  }
}

/* compare_f32 with b one value for the whole row */
static EMBER_SIMD void compare_scalar_f32(void *dv, const void *av, const void *bv,
                               int64_t n, const void *ctx) {
  uint8_t *d = dv;
  const float *a = av, b = *(const float *)bv;
  switch (*(const ember_cmp_op *)ctx) {
    case EMBER_EQ: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] == b; break;
    case EMBER_NE: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] != b; break;
    case EMBER_LT: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] < b; break;
    case EMBER_LE: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] <= b; break;
    case EMBER_GT: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] > b; break;
    case EMBER_GE: _Pragma("omp simd") for (int64_t i = 0; i < n; i++) d[i] = a[i] >= b; break;
    default: break;
  }
}

static uint8_t compare_f64_one(ember_cmp_op op, double a, double b) {
  switch (op) {
    case EMBER_EQ: return a == b;
    case EMBER_NE: return a != b;
    case EMBER_LT: return a < b;
    case EMBER_LE: return a <= b;
    case EMBER_GT: return a > b;
    case EMBER_GE: return a >= b;
    default: return 0;
  }
}

static uint8_t compare_int_one(ember_cmp_op op, int64_t a, int64_t b) {
  switch (op) {
    case EMBER_EQ: return a == b;
    case EMBER_NE: return a != b;
    case EMBER_LT: return a < b;
    case EMBER_LE: return a <= b;
    case EMBER_GT: return a > b;
    case EMBER_GE: return a >= b;
    default: return 0;
  }
}

static void compare_f64(void *dv, const void *av, const void *bv, int64_t n,
                        const void *ctx) {
  ember_cmp_op op = *(const ember_cmp_op *)ctx;
  uint8_t *d = dv;
  const double *a = av, *b = bv;
  for (int64_t i = 0; i < n; i++) d[i] = compare_f64_one(op, a[i], b[i]);
}

static void compare_i32(void *dv, const void *av, const void *bv, int64_t n,
                        const void *ctx) {
  ember_cmp_op op = *(const ember_cmp_op *)ctx;
  uint8_t *d = dv;
  const int32_t *a = av, *b = bv;
  for (int64_t i = 0; i < n; i++) d[i] = compare_int_one(op, a[i], b[i]);
}

static void compare_i64(void *dv, const void *av, const void *bv, int64_t n,
                        const void *ctx) {
  ember_cmp_op op = *(const ember_cmp_op *)ctx;
  uint8_t *d = dv;
  const int64_t *a = av, *b = bv;
  for (int64_t i = 0; i < n; i++) d[i] = compare_int_one(op, a[i], b[i]);
}

static void compare_u8(void *dv, const void *av, const void *bv, int64_t n,
                       const void *ctx) {
  ember_cmp_op op = *(const ember_cmp_op *)ctx;
  uint8_t *d = dv;
  const uint8_t *a = av, *b = bv;
  for (int64_t i = 0; i < n; i++) d[i] = compare_int_one(op, a[i], b[i]);
}

typedef struct { ember_cmp_op op; map2_fn f, fb; size_t es; } compare_ctx;

static void compare_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  const compare_ctx *c = ctx;
  map2_row(p, st, n, 1, c->es, c->f, c->fb, &c->op);
}

int ember_cpu_compare(ember_cmp_op op, ember_tensor *dst,
                      const ember_tensor *a, const ember_tensor *b) {
  compare_ctx c = {op, NULL, NULL, 0};
  switch (a->dtype) {
    case EMBER_FLOAT32:
      c.f = compare_f32; c.fb = compare_scalar_f32; c.es = sizeof(float);
      break;
    case EMBER_FLOAT64: c.f = compare_f64; c.es = sizeof(double); break;
    case EMBER_INT32: c.f = compare_i32; c.es = sizeof(int32_t); break;
    case EMBER_INT64: c.f = compare_i64; c.es = sizeof(int64_t); break;
    default: c.f = compare_u8; c.es = 1; break;
  }
  const ember_tensor *ops[3] = {dst, a, b};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 3, ops);
  ember_cpu_iter_run(&it, compare_row, &c);
  return 0;
}

/* where: element size is all that matters */
static void where_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  size_t es = *(size_t *)ctx;
  for (int64_t i = 0; i < n; i++) {
    const char *src = *(const uint8_t *)(p[1] + i * st[1]) ? p[2] + i * st[2]
                                                           : p[3] + i * st[3];
    memcpy(p[0] + i * st[0], src, es);
  }
}

int ember_cpu_where(ember_tensor *dst, const ember_tensor *cond,
                    const ember_tensor *a, const ember_tensor *b) {
  size_t es = ember_dtype_size(dst->dtype);
  const ember_tensor *ops[4] = {dst, cond, a, b};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 4, ops);
  ember_cpu_iter_run(&it, where_row, &es);
  return 0;
}

/* }====================================================================== */
