/*
** elementwise.c -- CPU kernels that map elements to elements: copy with
** conversion, fill, arange, unary and binary math, comparisons, where.
**
** One row function per (kernel, dtype); the op is a `switch` outside the
** loop so each loop body is a single expression the compiler vectorises.
** ROW2/ROW3 expand to the loop over one row: a unit-stride version and a
** general strided one (the iterator hands us the strides in bytes).
** Integer arithmetic goes through unsigned types so overflow wraps instead
** of being undefined.
*/
#include <math.h>
#include <string.h>

#include "cpu.h"

/* dst = EXPR(x) over one row; x is the source element of type TS */
#define ROW2(TD, TS, EXPR)                                                   \
  do {                                                                       \
    if (st[0] == (int64_t)sizeof(TD) && st[1] == (int64_t)sizeof(TS)) {    \
      TD *d_ = (TD *)p[0];                                                   \
      const TS *s_ = (const TS *)p[1];                                       \
      _Pragma("omp simd")                                                    \
      for (int64_t i = 0; i < n; i++) { TS x = s_[i]; d_[i] = (TD)(EXPR); }  \
    } else {                                                                 \
      for (int64_t i = 0; i < n; i++) {                                      \
        TS x = *(const TS *)(p[1] + i * st[1]);                              \
        *(TD *)(p[0] + i * st[0]) = (TD)(EXPR);                              \
      }                                                                      \
    }                                                                        \
  } while (0)

/* dst = EXPR(a, b) over one row; b may be a broadcast scalar (stride 0).
   The contiguous loops are `omp simd`: GCC's -O2 cost model leaves a
   select like ReLU's NaN-keeping one scalar otherwise (17% of a CNN step). */
#define ROW3(TD, T, EXPR)                                                    \
  do {                                                                       \
    if (st[0] == (int64_t)sizeof(TD) && st[1] == (int64_t)sizeof(T) &&       \
        st[2] == (int64_t)sizeof(T)) {                                       \
      TD *d_ = (TD *)p[0];                                                   \
      const T *a_ = (const T *)p[1], *b_ = (const T *)p[2];                  \
      _Pragma("omp simd")                                                    \
      for (int64_t i = 0; i < n; i++) { T a = a_[i], b = b_[i]; d_[i] = (TD)(EXPR); } \
    } else if (st[0] == (int64_t)sizeof(TD) && st[1] == (int64_t)sizeof(T) && \
               st[2] == 0) {                                                 \
      TD *d_ = (TD *)p[0];                                                   \
      const T *a_ = (const T *)p[1];                                         \
      const T b = *(const T *)p[2];                                          \
      _Pragma("omp simd")                                                    \
      for (int64_t i = 0; i < n; i++) { T a = a_[i]; d_[i] = (TD)(EXPR); }   \
    } else {                                                                 \
      for (int64_t i = 0; i < n; i++) {                                      \
        T a = *(const T *)(p[1] + i * st[1]);                                \
        T b = *(const T *)(p[2] + i * st[2]);                                \
        *(TD *)(p[0] + i * st[0]) = (TD)(EXPR);                              \
      }                                                                      \
    }                                                                        \
  } while (0)

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
static inline int64_t wrap_i64(int64_t x) { return x; }
static inline int32_t wrap_i32(int64_t x) { return (int32_t)(uint32_t)(uint64_t)x; }
static inline uint8_t wrap_u8(int64_t x) { return (uint8_t)(uint64_t)x; }

#define CONV_I64(x) _Generic((x), float: sat_i64, double: sat_i64, default: wrap_i64)(x)
#define CONV_I32(x) _Generic((x), float: sat_i32, double: sat_i32, default: wrap_i32)(x)
#define CONV_U8(x) _Generic((x), float: sat_u8, double: sat_u8, default: wrap_u8)(x)

/* one row function per destination dtype, switching on the source dtype */
#define DEFINE_COPY_ROW(NAME, TD, CONV)                                      \
  static void NAME(char **p, const int64_t *st, int64_t n, void *ctx) {      \
    switch (*(ember_dtype *)ctx) {                                           \
      case EMBER_FLOAT32: ROW2(TD, float, CONV(x)); break;                   \
      case EMBER_FLOAT64: ROW2(TD, double, CONV(x)); break;                  \
      case EMBER_INT32: ROW2(TD, int32_t, CONV(x)); break;                   \
      case EMBER_INT64: ROW2(TD, int64_t, CONV(x)); break;                   \
      default: ROW2(TD, uint8_t, CONV(x)); break;                            \
    }                                                                        \
  }

#define CONV_F(x) (x)
#define CONV_BOOL(x) ((x) != 0)
DEFINE_COPY_ROW(copy_to_f32, float, CONV_F)
DEFINE_COPY_ROW(copy_to_f64, double, CONV_F)
DEFINE_COPY_ROW(copy_to_i32, int32_t, CONV_I32)
DEFINE_COPY_ROW(copy_to_i64, int64_t, CONV_I64)
DEFINE_COPY_ROW(copy_to_u8, uint8_t, CONV_U8)
DEFINE_COPY_ROW(copy_to_bool, uint8_t, CONV_BOOL)

/* same dtype: a plain byte copy per element size */
static void copy_same(char **p, const int64_t *st, int64_t n, void *ctx) {
  size_t es = *(size_t *)ctx;
  if (st[0] == (int64_t)es && st[1] == (int64_t)es) {
    memmove(p[0], p[1], (size_t)n * es);
    return;
  }
  switch (es) {
    case 1: ROW2(uint8_t, uint8_t, x); break;
    case 4: ROW2(uint32_t, uint32_t, x); break;
    default: ROW2(uint64_t, uint64_t, x); break;
  }
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
  static const ember_cpu_row_fn fns[EMBER_NDTYPES] = {
    copy_to_f32, copy_to_f64, copy_to_i32, copy_to_i64, copy_to_u8, copy_to_bool,
  };
  ember_dtype sdt = src->dtype;
  ember_cpu_iter_run(&it, fns[dst->dtype], &sdt);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** fill and arange
** ======================================================================= */

typedef struct { double v; int64_t iv; ember_dtype dt; } fill_ctx;

static void fill_row(char **p, const int64_t *st, int64_t n, void *ctx) {
  const fill_ctx *c = ctx;
  int64_t s = st[0];
#define FILL(T, V) do { T v_ = (T)(V); \
    if (s == (int64_t)sizeof(T)) { T *d_ = (T *)p[0]; for (int64_t i = 0; i < n; i++) d_[i] = v_; } \
    else for (int64_t i = 0; i < n; i++) *(T *)(p[0] + i * s) = v_; } while (0)
  switch (c->dt) {
    case EMBER_FLOAT32: FILL(float, c->v); break;
    case EMBER_FLOAT64: FILL(double, c->v); break;
    case EMBER_INT32: FILL(int32_t, (int32_t)c->iv); break;
    case EMBER_INT64: FILL(int64_t, c->iv); break;
    case EMBER_UINT8: FILL(uint8_t, (uint8_t)c->iv); break;
    default: FILL(uint8_t, c->v != 0); break;
  }
#undef FILL
}

int ember_cpu_fill(ember_tensor *dst, double value, int64_t ivalue) {
  fill_ctx c = {value, ivalue, dst->dtype};
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

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
static inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

#define SQRT1_2 0.70710678118654752440

/* GELU's tanh approximation, as PyTorch writes it */
#define GELU_BETA 0.7978845608028654   /* sqrt(2 / pi) */
#define GELU_KAPPA 0.044715
static inline float gelu_tanhf(float x) {
  return 0.5f * x * (1.0f + tanhf((float)GELU_BETA * (x + (float)GELU_KAPPA * x * x * x)));
}
static inline double gelu_tanh(double x) {
  return 0.5 * x * (1.0 + tanh(GELU_BETA * (x + GELU_KAPPA * x * x * x)));
}

/* clamp that lets NaN through, as PyTorch does */
#define CLAMP(x, lo, hi) ((x) != (x) ? (x) : (x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

static void unary_f32(char **p, const int64_t *st, int64_t n, void *ctx) {
  const unary_ctx *c = ctx;
  const float lo = (float)c->p0, hi = (float)c->p1;
  switch (c->op) {
    case EMBER_NEG: ROW2(float, float, -x); break;
    case EMBER_ABS: ROW2(float, float, fabsf(x)); break;
    case EMBER_EXP: ROW2(float, float, expf(x)); break;
    case EMBER_LOG: ROW2(float, float, logf(x)); break;
    case EMBER_SQRT: ROW2(float, float, sqrtf(x)); break;
    case EMBER_SIN: ROW2(float, float, sinf(x)); break;
    case EMBER_COS: ROW2(float, float, cosf(x)); break;
    case EMBER_TANH: ROW2(float, float, tanhf(x)); break;
    case EMBER_SIGMOID: ROW2(float, float, sigmoidf(x)); break;
    case EMBER_RELU: ROW2(float, float, x > 0 ? x : (x != x ? x : 0.0f)); break;
    case EMBER_CLAMP: ROW2(float, float, CLAMP(x, lo, hi)); break;
    case EMBER_ERF: ROW2(float, float, erff(x)); break;
    case EMBER_LOG1P: ROW2(float, float, log1pf(x)); break;
    case EMBER_EXPM1: ROW2(float, float, expm1f(x)); break;
    case EMBER_GELU:
      if (c->p0 != 0) ROW2(float, float, gelu_tanhf(x));
      else ROW2(float, float, 0.5f * x * (1.0f + erff(x * (float)SQRT1_2)));
      break;
    case EMBER_LEAKY_RELU: ROW2(float, float, x > 0 ? x : x * lo); break;
    default: break;
  }
}

static void unary_f64(char **p, const int64_t *st, int64_t n, void *ctx) {
  const unary_ctx *c = ctx;
  const double lo = c->p0, hi = c->p1;
  switch (c->op) {
    case EMBER_NEG: ROW2(double, double, -x); break;
    case EMBER_ABS: ROW2(double, double, fabs(x)); break;
    case EMBER_EXP: ROW2(double, double, exp(x)); break;
    case EMBER_LOG: ROW2(double, double, log(x)); break;
    case EMBER_SQRT: ROW2(double, double, sqrt(x)); break;
    case EMBER_SIN: ROW2(double, double, sin(x)); break;
    case EMBER_COS: ROW2(double, double, cos(x)); break;
    case EMBER_TANH: ROW2(double, double, tanh(x)); break;
    case EMBER_SIGMOID: ROW2(double, double, sigmoid(x)); break;
    case EMBER_RELU: ROW2(double, double, x > 0 ? x : (x != x ? x : 0.0)); break;
    case EMBER_CLAMP: ROW2(double, double, CLAMP(x, lo, hi)); break;
    case EMBER_ERF: ROW2(double, double, erf(x)); break;
    case EMBER_LOG1P: ROW2(double, double, log1p(x)); break;
    case EMBER_EXPM1: ROW2(double, double, expm1(x)); break;
    case EMBER_GELU:
      if (c->p0 != 0) ROW2(double, double, gelu_tanh(x));
      else ROW2(double, double, 0.5 * x * (1.0 + erf(x * SQRT1_2)));
      break;
    case EMBER_LEAKY_RELU: ROW2(double, double, x > 0 ? x : x * lo); break;
    default: break;
  }
}

static inline int is_neg(int64_t x) { return x < 0; }

/* Integer unary ops: neg, abs, relu, clamp (the core sends the rest as
   floats).  Bounds arrive as doubles; compare in double, keep integers. */
#define DEFINE_UNARY_INT(NAME, T, U)                                         \
  static void NAME(char **p, const int64_t *st, int64_t n, void *ctx) {      \
    const unary_ctx *c = ctx;                                                \
    const double lo = c->p0, hi = c->p1;                                     \
    switch (c->op) {                                                         \
      case EMBER_NEG: ROW2(T, T, (T)(0u - (U)x)); break;                     \
      case EMBER_ABS: ROW2(T, T, is_neg(x) ? (T)(0u - (U)x) : x); break;     \
      case EMBER_RELU: ROW2(T, T, x > 0 ? x : 0); break;                     \
      case EMBER_CLAMP:                                                      \
        ROW2(T, T, (double)x < lo ? (T)lo : (double)x > hi ? (T)hi : x); break; \
      default: break;                                                        \
    }                                                                        \
  }
DEFINE_UNARY_INT(unary_i32, int32_t, uint32_t)
DEFINE_UNARY_INT(unary_i64, int64_t, uint64_t)
DEFINE_UNARY_INT(unary_u8, uint8_t, uint8_t)

int ember_cpu_unary(ember_unary_op op, ember_tensor *dst,
                     const ember_tensor *src, double p0, double p1) {
  static const ember_cpu_row_fn fns[EMBER_NDTYPES] = {
    unary_f32, unary_f64, unary_i32, unary_i64, unary_u8, unary_u8,
  };
  unary_ctx c = {op, p0, p1};
  const ember_tensor *ops[2] = {dst, src};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 2, ops);
  ember_cpu_iter_run(&it, fns[src->dtype], &c);
  return 0;
}

/*
** Derivatives: a is the incoming gradient, b the saved tensor (see the
** backend slot).  Formulas follow PyTorch's derivatives.yaml, in the
** tensor's own precision.
*/
#define UNARY_BACKWARD(NAME, T, EXP, ERF, TANH, SIN, COS)                    \
  static void NAME(char **p, const int64_t *st, int64_t n, void *ctx) {      \
    const unary_ctx *c = ctx;                                                \
    const T lo = (T)c->p0, hi = (T)c->p1;                                    \
    const T k_erf = (T)1.1283791670955126;   /* 2 / sqrt(pi) */              \
    const T k_pdf = (T)0.3989422804014327;   /* 1 / sqrt(2 pi) */            \
    const T beta = (T)GELU_BETA, kappa = (T)GELU_KAPPA;                      \
    switch (c->op) {                                                         \
      case EMBER_ABS: ROW3(T, T, b > 0 ? a : b < 0 ? -a : (T)0); break;      \
      case EMBER_EXP: ROW3(T, T, a * b); break;                              \
      case EMBER_LOG: ROW3(T, T, a / b); break;                              \
      case EMBER_SQRT: ROW3(T, T, a / (2 * b)); break;                       \
      case EMBER_SIN: ROW3(T, T, a * COS(b)); break;                         \
      case EMBER_COS: ROW3(T, T, -a * SIN(b)); break;                        \
      case EMBER_TANH: ROW3(T, T, a * (1 - b * b)); break;                   \
      case EMBER_SIGMOID: ROW3(T, T, a * (1 - b) * b); break;                \
      case EMBER_RELU: ROW3(T, T, b > 0 ? a : (T)0); break;                  \
      case EMBER_CLAMP: ROW3(T, T, b >= lo && b <= hi ? a : (T)0); break;    \
      case EMBER_ERF: ROW3(T, T, a * k_erf * EXP(-b * b)); break;            \
      case EMBER_LOG1P: ROW3(T, T, a / (b + 1)); break;                      \
      case EMBER_EXPM1: ROW3(T, T, a * (b + 1)); break;                      \
      case EMBER_GELU:                                                       \
        if (c->p0 != 0) {                                                    \
          ROW3(T, T, a * (((T)0.5 * (1 + TANH(beta * (b + kappa * b * b * b)))) + \
               (T)0.5 * b * (1 - TANH(beta * (b + kappa * b * b * b)) *      \
                                 TANH(beta * (b + kappa * b * b * b))) *     \
               beta * (1 + 3 * kappa * b * b)));                             \
        } else {                                                             \
          ROW3(T, T, a * ((T)0.5 * (1 + ERF(b * (T)SQRT1_2)) +             \
                          b * k_pdf * EXP((T)-0.5 * b * b)));                \
        }                                                                    \
        break;                                                               \
      case EMBER_LEAKY_RELU: ROW3(T, T, b > 0 ? a : a * lo); break;          \
      default: break;                                                        \
    }                                                                        \
  }
UNARY_BACKWARD(unary_backward_f32, float, expf, erff, tanhf, sinf, cosf)
UNARY_BACKWARD(unary_backward_f64, double, exp, erf, tanh, sin, cos)

int ember_cpu_unary_backward(ember_unary_op op, ember_tensor *dst,
                             const ember_tensor *g, const ember_tensor *s,
                             double p0, double p1) {
  unary_ctx c = {op, p0, p1};
  const ember_tensor *ops[3] = {dst, g, s};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 3, ops);
  ember_cpu_iter_run(&it, dst->dtype == EMBER_FLOAT64 ? unary_backward_f64
                                                      : unary_backward_f32, &c);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Binary math and comparisons
** ======================================================================= */

/* NaN-propagating maximum and minimum, as torch.maximum */
#define MAXIMUM(a, b) ((a) != (a) || (a) > (b) ? (a) : (b))
#define MINIMUM(a, b) ((a) != (a) || (a) < (b) ? (a) : (b))

static void binary_f32(char **p, const int64_t *st, int64_t n, void *ctx) {
  switch (*(ember_binary_op *)ctx) {
    case EMBER_ADD: ROW3(float, float, a + b); break;
    case EMBER_SUB: ROW3(float, float, a - b); break;
    case EMBER_MUL: ROW3(float, float, a * b); break;
    case EMBER_DIV: ROW3(float, float, a / b); break;
    case EMBER_POW: ROW3(float, float, b == 2.0f ? a * a : powf(a, b)); break;
    case EMBER_MAXIMUM: ROW3(float, float, MAXIMUM(a, b)); break;
    case EMBER_MINIMUM: ROW3(float, float, MINIMUM(a, b)); break;
    default: break;
  }
}

static void binary_f64(char **p, const int64_t *st, int64_t n, void *ctx) {
  switch (*(ember_binary_op *)ctx) {
    case EMBER_ADD: ROW3(double, double, a + b); break;
    case EMBER_SUB: ROW3(double, double, a - b); break;
    case EMBER_MUL: ROW3(double, double, a * b); break;
    case EMBER_DIV: ROW3(double, double, a / b); break;
    case EMBER_POW: ROW3(double, double, b == 2.0 ? a * a : pow(a, b)); break;
    case EMBER_MAXIMUM: ROW3(double, double, MAXIMUM(a, b)); break;
    case EMBER_MINIMUM: ROW3(double, double, MINIMUM(a, b)); break;
    default: break;
  }
}

/* integer power by squaring; the core has checked that b >= 0 */
#define DEFINE_IPOW(NAME, T, U)                                              \
  static inline T NAME(T a, T b) {                                           \
    U r = 1, x = (U)a;                                                       \
    for (uint64_t e = (uint64_t)b; e; e >>= 1) {                             \
      if (e & 1) r = (U)(r * x);                                             \
      x = (U)(x * x);                                                        \
    }                                                                        \
    return (T)r;                                                             \
  }
DEFINE_IPOW(ipow_i32, int32_t, uint32_t)
DEFINE_IPOW(ipow_i64, int64_t, uint64_t)
DEFINE_IPOW(ipow_u8, uint8_t, uint32_t)

#define DEFINE_BINARY_INT(NAME, T, U, IPOW)                                  \
  static void NAME(char **p, const int64_t *st, int64_t n, void *ctx) {      \
    switch (*(ember_binary_op *)ctx) {                                       \
      case EMBER_ADD: ROW3(T, T, (T)((U)a + (U)b)); break;                   \
      case EMBER_SUB: ROW3(T, T, (T)((U)a - (U)b)); break;                   \
      case EMBER_MUL: ROW3(T, T, (T)((U)a * (U)b)); break;                   \
      case EMBER_POW: ROW3(T, T, IPOW(a, b)); break;                         \
      case EMBER_MAXIMUM: ROW3(T, T, a > b ? a : b); break;                  \
      case EMBER_MINIMUM: ROW3(T, T, a < b ? a : b); break;                  \
      default: break;                                                        \
    }                                                                        \
  }
DEFINE_BINARY_INT(binary_i32, int32_t, uint32_t, ipow_i32)
DEFINE_BINARY_INT(binary_i64, int64_t, uint64_t, ipow_i64)
DEFINE_BINARY_INT(binary_u8, uint8_t, uint32_t, ipow_u8)

/* bool: add is logical or, mul logical and (as PyTorch) */
static void binary_bool(char **p, const int64_t *st, int64_t n, void *ctx) {
  switch (*(ember_binary_op *)ctx) {
    case EMBER_ADD: case EMBER_MAXIMUM: ROW3(uint8_t, uint8_t, a | b); break;
    case EMBER_MUL: case EMBER_MINIMUM: ROW3(uint8_t, uint8_t, a & b); break;
    default: break;
  }
}

int ember_cpu_binary(ember_binary_op op, ember_tensor *dst,
                      const ember_tensor *a, const ember_tensor *b) {
  static const ember_cpu_row_fn fns[EMBER_NDTYPES] = {
    binary_f32, binary_f64, binary_i32, binary_i64, binary_u8, binary_bool,
  };
  const ember_tensor *ops[3] = {dst, a, b};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 3, ops);
  ember_cpu_iter_run(&it, fns[a->dtype], &op);
  return 0;
}

#define DEFINE_COMPARE(NAME, T)                                              \
  static void NAME(char **p, const int64_t *st, int64_t n, void *ctx) {      \
    switch (*(ember_cmp_op *)ctx) {                                          \
      case EMBER_EQ: ROW3(uint8_t, T, a == b); break;                        \
      case EMBER_NE: ROW3(uint8_t, T, a != b); break;                        \
      case EMBER_LT: ROW3(uint8_t, T, a < b); break;                         \
      case EMBER_LE: ROW3(uint8_t, T, a <= b); break;                        \
      case EMBER_GT: ROW3(uint8_t, T, a > b); break;                         \
      case EMBER_GE: ROW3(uint8_t, T, a >= b); break;                        \
      default: break;                                                        \
    }                                                                        \
  }
DEFINE_COMPARE(compare_f32, float)
DEFINE_COMPARE(compare_f64, double)
DEFINE_COMPARE(compare_i32, int32_t)
DEFINE_COMPARE(compare_i64, int64_t)
DEFINE_COMPARE(compare_u8, uint8_t)

int ember_cpu_compare(ember_cmp_op op, ember_tensor *dst,
                       const ember_tensor *a, const ember_tensor *b) {
  static const ember_cpu_row_fn fns[EMBER_NDTYPES] = {
    compare_f32, compare_f64, compare_i32, compare_i64, compare_u8, compare_u8,
  };
  const ember_tensor *ops[3] = {dst, a, b};
  ember_cpu_iter it;
  ember_cpu_iter_init(&it, 3, ops);
  ember_cpu_iter_run(&it, fns[a->dtype], &op);
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

