/*
** elementwise.cu -- CUDA kernels that map elements to elements: unary and
** binary math, comparisons, where, and the derivatives of unary ops.
**
** The twin of core/cpu/elementwise.c: the same formulas in the same
** precision (float32 math in float, float64 in double), the same NaN rules,
** integer arithmetic through unsigned types so that overflow wraps.
** bfloat16 and float16 compute in float and round once when stored, as
** the CPU does (its half_adapt.c): the generic kernels load and store
** through cu_load/cu_store, the functors are instantiated on the compute
** type C (cuda_internal.h).
**
** Layers, per family: a functor holding the op (a template parameter, so
** each kernel body is one expression), one generic kernel per arity that
** walks the elements with a grid-stride loop, and the entry point the table
** calls, which picks the functor with a switch on dtype and op.
**
** Operands have dst's shape with any strides (broadcast dims have stride
** 0).  Their offsets come from one offset calculator per launch
** (index_math.h): dims merged jointly on the host, 32-bit fast-divide
** arithmetic when it fits (64-bit otherwise: each kernel is instantiated
** for both), and plain p[i] when every operand is contiguous.
**
** Fused multiply-add.  nvcc contracts `a * b + c` into one fma, which
** rounds once where the CPU (x86-64, no -mfma) rounds twice.  Where a
** product feeds a sum below, it goes through rn_mul (__fmul_rn/__dmul_rn,
** which are never contracted), so the arithmetic rounds as on the CPU; the
** transcendental functions (expf, erff, tanhf, ...) still differ from
** glibc's in the last bits.
*/
#include <limits>

#include "cuda_internal.h"

/* {======================================================================
** Math by overloading: the float function for float, the double one for
** double, as the CPU's f32/f64 row functions call them
** ======================================================================= */

#define CU_MATH1(NAME, F32, F64)                                             \
  __device__ static inline float NAME(float x) { return F32(x); }           \
  __device__ static inline double NAME(double x) { return F64(x); }

CU_MATH1(m_fabs, fabsf, fabs)
CU_MATH1(m_exp, expf, exp)
CU_MATH1(m_log, logf, log)
CU_MATH1(m_sqrt, sqrtf, sqrt)
CU_MATH1(m_sin, sinf, sin)
CU_MATH1(m_cos, cosf, cos)
CU_MATH1(m_tanh, tanhf, tanh)
CU_MATH1(m_erf, erff, erf)
CU_MATH1(m_erfinv, erfinvf, erfinv)
CU_MATH1(m_floor, floorf, floor)
CU_MATH1(m_ceil, ceilf, ceil)
CU_MATH1(m_rint, rintf, rint)
CU_MATH1(m_trunc, truncf, trunc)
CU_MATH1(m_log1p, log1pf, log1p)
CU_MATH1(m_expm1, expm1f, expm1)

__device__ static inline float m_pow(float a, float b) { return powf(a, b); }
__device__ static inline double m_pow(double a, double b) { return pow(a, b); }
__device__ static inline float m_fmod(float a, float b) { return fmodf(a, b); }
__device__ static inline double m_fmod(double a, double b) { return fmod(a, b); }
__device__ static inline float m_atan2(float a, float b) { return atan2f(a, b); }
__device__ static inline double m_atan2(double a, double b) { return atan2(a, b); }
__device__ static inline float m_hypot(float a, float b) { return hypotf(a, b); }
__device__ static inline double m_hypot(double a, double b) { return hypot(a, b); }

/* a * b rounded on its own, never fused with a following add */
__device__ static inline float rn_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ static inline double rn_mul(double a, double b) { return __dmul_rn(a, b); }

#define SQRT1_2 0.70710678118654752440
#define GELU_BETA 0.7978845608028654   /* sqrt(2 / pi) */
#define GELU_KAPPA 0.044715

/* }====================================================================== */

/* {======================================================================
** Generic kernels: one per arity
** ======================================================================= */

/* dst = f(a), f on the compute types; oc gives (dst, a) offsets */
template <typename TD, typename TA, typename F, class OC>
__global__ void k_map1(TD *d, const TA *a, OC oc,
                       typename OC::index_type n, F f) {
  CU_FOR_T(typename OC::index_type, i, n) {
    auto o = oc.get(i);
    d[o[0]] = cu_store<TD>(f(cu_load(a[o[1]])));
  }
}

/* dst = f(a, b), f on the compute types; oc gives (dst, a, b) offsets */
template <typename TD, typename TA, typename F, class OC>
__global__ void k_map2(TD *d, const TA *a, const TA *b, OC oc,
                       typename OC::index_type n, F f) {
  CU_FOR_T(typename OC::index_type, i, n) {
    auto o = oc.get(i);
    d[o[0]] = cu_store<TD>(f(cu_load(a[o[1]]), cu_load(b[o[2]])));
  }
}

/* Launchers: every operand has dst's shape; n = its numel > 0. */
template <typename TD, typename TA, typename F>
static int launch1(const char *what, ember_tensor *dst, const ember_tensor *a,
                   F f) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  cu_geom g;
  if (cu_geom_of(&g, what, {dst, a}) < 0) return -1;
  return cu_with_offsets<2>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_map1<TD, TA, F, OC><<<cu_blocks(n), CU_THREADS>>>(
        (TD *)cu_data(dst), (const TA *)cu_data(a), oc,
        (typename OC::index_type)n, f);
    CU_LAUNCH_CHECK(what);
    return 0;
  });
}

template <typename TD, typename TA, typename F>
static int launch2(const char *what, ember_tensor *dst, const ember_tensor *a,
                   const ember_tensor *b, F f) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  cu_geom g;
  if (cu_geom_of(&g, what, {dst, a, b}) < 0) return -1;
  return cu_with_offsets<3>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_map2<TD, TA, F, OC><<<cu_blocks(n), CU_THREADS>>>(
        (TD *)cu_data(dst), (const TA *)cu_data(a), (const TA *)cu_data(b),
        oc, (typename OC::index_type)n, f);
    CU_LAUNCH_CHECK(what);
    return 0;
  });
}

/* }====================================================================== */

/* {======================================================================
** Unary math
** ======================================================================= */

/* clamp that lets NaN through, as PyTorch does */
#define CU_CLAMP(x, lo, hi) \
  ((x) != (x) ? (x) : (x) < (lo) ? (lo) : (x) > (hi) ? (hi) : (x))

/* Float ops; lo, hi = (T)p0, (T)p1; gelu_tanh = p0 != 0 for GELU. */
template <int OP, typename T>
struct unary_float {
  T lo, hi;
  bool gelu_tanh;
  __device__ T operator()(T x) const {
    if constexpr (OP == EMBER_NEG) return -x;
    else if constexpr (OP == EMBER_ABS) return m_fabs(x);
    else if constexpr (OP == EMBER_EXP) return m_exp(x);
    else if constexpr (OP == EMBER_LOG) return m_log(x);
    else if constexpr (OP == EMBER_SQRT) return m_sqrt(x);
    else if constexpr (OP == EMBER_SIN) return m_sin(x);
    else if constexpr (OP == EMBER_COS) return m_cos(x);
    else if constexpr (OP == EMBER_TANH) return m_tanh(x);
    else if constexpr (OP == EMBER_SIGMOID) return (T)1 / ((T)1 + m_exp(-x));
    else if constexpr (OP == EMBER_RELU) return x > 0 ? x : (x != x ? x : (T)0);
    else if constexpr (OP == EMBER_CLAMP) return CU_CLAMP(x, lo, hi);
    else if constexpr (OP == EMBER_ERF) return m_erf(x);
    else if constexpr (OP == EMBER_LOG1P) return m_log1p(x);
    else if constexpr (OP == EMBER_EXPM1) return m_expm1(x);
    else if constexpr (OP == EMBER_GELU) {
      if (gelu_tanh) {
        /* 0.5 x (1 + tanh(beta (x + kappa x^3))), as PyTorch writes it */
        T inner = (T)GELU_BETA * (x + rn_mul((T)GELU_KAPPA * x * x, x));
        return (T)0.5 * x * ((T)1 + m_tanh(inner));
      }
      return (T)0.5 * x * ((T)1 + m_erf(x * (T)SQRT1_2));
    } else if constexpr (OP == EMBER_FLOOR) return m_floor(x);
    else if constexpr (OP == EMBER_CEIL) return m_ceil(x);
    else if constexpr (OP == EMBER_ROUND) return m_rint(x);   /* half to even */
    else if constexpr (OP == EMBER_TRUNC) return m_trunc(x);
    else if constexpr (OP == EMBER_SIGN) return (T)((x > 0) - (x < 0));
    else if constexpr (OP == EMBER_ERFINV) return m_erfinv(x);
    else if constexpr (OP == EMBER_SILU) return x / ((T)1 + m_exp(-x));
    else /* EMBER_LEAKY_RELU */ return x > 0 ? x : x * lo;
  }
};

/* A clamp bound as an integer of type T: converted once on the host,
   saturating (as the CPU's copy converts), used only when selected. */
template <typename T>
static T int_bound(double v) {
  if (v != v) return 0;
  if (v <= (double)std::numeric_limits<T>::min()) return std::numeric_limits<T>::min();
  if (v >= (double)std::numeric_limits<T>::max()) return std::numeric_limits<T>::max();
  return (T)v;
}

__device__ static inline bool is_neg(int64_t x) { return x < 0; }

/* Integer ops (neg, abs, relu, clamp; the core sends the rest as floats).
   Bounds stay doubles and are compared in double, as on the CPU. */
template <int OP, typename T, typename U>
struct unary_int {
  double lo, hi;   /* compared in double */
  T lo_t, hi_t;    /* and stored as T */
  __device__ T operator()(T x) const {
    if constexpr (OP == EMBER_NEG) return (T)(0u - (U)x);
    else if constexpr (OP == EMBER_ABS) return is_neg(x) ? (T)(0u - (U)x) : x;
    else if constexpr (OP == EMBER_RELU) return x > 0 ? x : (T)0;
    else if constexpr (OP == EMBER_SIGN) return (T)((x > 0) - is_neg(x));
    else if constexpr (OP == EMBER_FLOOR || OP == EMBER_CEIL ||
                       OP == EMBER_ROUND || OP == EMBER_TRUNC) return x;
    else /* EMBER_CLAMP */
      return (double)x < lo ? lo_t : (double)x > hi ? hi_t : x;
  }
};

/* T the storage type, the functor on its compute type */
template <int OP, typename T>
static int unary_f(ember_tensor *dst, const ember_tensor *src, double p0,
                   double p1) {
  typedef typename cu_elem<T>::C C;
  unary_float<OP, C> f;
  f.lo = (C)p0;
  f.hi = (C)p1;
  f.gelu_tanh = p0 != 0;
  return launch1<T, T>("unary", dst, src, f);
}

template <typename T>
static int unary_float_dispatch(ember_unary_op op, ember_tensor *dst,
                                const ember_tensor *src, double p0, double p1) {
  switch (op) {
    case EMBER_NEG: return unary_f<EMBER_NEG, T>(dst, src, p0, p1);
    case EMBER_ABS: return unary_f<EMBER_ABS, T>(dst, src, p0, p1);
    case EMBER_EXP: return unary_f<EMBER_EXP, T>(dst, src, p0, p1);
    case EMBER_LOG: return unary_f<EMBER_LOG, T>(dst, src, p0, p1);
    case EMBER_SQRT: return unary_f<EMBER_SQRT, T>(dst, src, p0, p1);
    case EMBER_SIN: return unary_f<EMBER_SIN, T>(dst, src, p0, p1);
    case EMBER_COS: return unary_f<EMBER_COS, T>(dst, src, p0, p1);
    case EMBER_TANH: return unary_f<EMBER_TANH, T>(dst, src, p0, p1);
    case EMBER_SIGMOID: return unary_f<EMBER_SIGMOID, T>(dst, src, p0, p1);
    case EMBER_RELU: return unary_f<EMBER_RELU, T>(dst, src, p0, p1);
    case EMBER_CLAMP: return unary_f<EMBER_CLAMP, T>(dst, src, p0, p1);
    case EMBER_ERF: return unary_f<EMBER_ERF, T>(dst, src, p0, p1);
    case EMBER_LOG1P: return unary_f<EMBER_LOG1P, T>(dst, src, p0, p1);
    case EMBER_EXPM1: return unary_f<EMBER_EXPM1, T>(dst, src, p0, p1);
    case EMBER_GELU: return unary_f<EMBER_GELU, T>(dst, src, p0, p1);
    case EMBER_LEAKY_RELU: return unary_f<EMBER_LEAKY_RELU, T>(dst, src, p0, p1);
    case EMBER_FLOOR: return unary_f<EMBER_FLOOR, T>(dst, src, p0, p1);
    case EMBER_CEIL: return unary_f<EMBER_CEIL, T>(dst, src, p0, p1);
    case EMBER_ROUND: return unary_f<EMBER_ROUND, T>(dst, src, p0, p1);
    case EMBER_TRUNC: return unary_f<EMBER_TRUNC, T>(dst, src, p0, p1);
    case EMBER_SIGN: return unary_f<EMBER_SIGN, T>(dst, src, p0, p1);
    case EMBER_ERFINV: return unary_f<EMBER_ERFINV, T>(dst, src, p0, p1);
    case EMBER_SILU: return unary_f<EMBER_SILU, T>(dst, src, p0, p1);
    default: return 0;    /* as the CPU: nothing written */
  }
}

template <int OP, typename T, typename U>
static int unary_i(ember_tensor *dst, const ember_tensor *src, double p0,
                   double p1) {
  unary_int<OP, T, U> f;
  f.lo = p0;
  f.hi = p1;
  f.lo_t = int_bound<T>(p0);
  f.hi_t = int_bound<T>(p1);
  return launch1<T, T>("unary", dst, src, f);
}

template <typename T, typename U>
static int unary_int_dispatch(ember_unary_op op, ember_tensor *dst,
                              const ember_tensor *src, double p0, double p1) {
  switch (op) {
    case EMBER_NEG: return unary_i<EMBER_NEG, T, U>(dst, src, p0, p1);
    case EMBER_ABS: return unary_i<EMBER_ABS, T, U>(dst, src, p0, p1);
    case EMBER_RELU: return unary_i<EMBER_RELU, T, U>(dst, src, p0, p1);
    case EMBER_CLAMP: return unary_i<EMBER_CLAMP, T, U>(dst, src, p0, p1);
    case EMBER_FLOOR: return unary_i<EMBER_FLOOR, T, U>(dst, src, p0, p1);
    case EMBER_CEIL: return unary_i<EMBER_CEIL, T, U>(dst, src, p0, p1);
    case EMBER_ROUND: return unary_i<EMBER_ROUND, T, U>(dst, src, p0, p1);
    case EMBER_TRUNC: return unary_i<EMBER_TRUNC, T, U>(dst, src, p0, p1);
    case EMBER_SIGN: return unary_i<EMBER_SIGN, T, U>(dst, src, p0, p1);
    default: return 0;    /* as the CPU: nothing written */
  }
}

int ember_cuda_unary(ember_unary_op op, ember_tensor *dst,
                     const ember_tensor *src, double p0, double p1) {
  return ember_cuda_dispatch_half(src->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    if constexpr (cu_is_float<T>::value)
      return unary_float_dispatch<T>(op, dst, src, p0, p1);
    else if constexpr (std::is_same<T, uint8_t>::value)
      /* uint8 and bool, as the CPU's unary_u8 */
      return unary_int_dispatch<uint8_t, uint8_t>(op, dst, src, p0, p1);
    else
      return unary_int_dispatch<T, typename decltype(ty)::U>(op, dst, src, p0, p1);
  });
}

/* }====================================================================== */

/* {======================================================================
** Derivatives of unary ops: dst = g * op'(s)
** ======================================================================= */

/*
** a is the incoming gradient, b the saved tensor (the op's input, or its
** output for exp, expm1, sqrt, tanh, sigmoid and relu).  The formulas and
** their order of evaluation are the CPU's (PyTorch's derivatives.yaml), in
** the tensor's own precision.
*/
template <int OP, typename T>
struct unary_grad {
  T lo, hi;
  bool gelu_tanh;
  __device__ T operator()(T a, T b) const {
    const T k_erf = (T)1.1283791670955126;   /* 2 / sqrt(pi) */
    const T k_pdf = (T)0.3989422804014327;   /* 1 / sqrt(2 pi) */
    const T beta = (T)GELU_BETA, kappa = (T)GELU_KAPPA;
    if constexpr (OP == EMBER_ABS) return b > 0 ? a : b < 0 ? -a : (T)0;
    else if constexpr (OP == EMBER_EXP) return a * b;
    else if constexpr (OP == EMBER_LOG) return a / b;
    else if constexpr (OP == EMBER_SQRT) return a / (2 * b);
    else if constexpr (OP == EMBER_SIN) return a * m_cos(b);
    else if constexpr (OP == EMBER_COS) return -a * m_sin(b);
    else if constexpr (OP == EMBER_TANH) return a * (1 - rn_mul(b, b));
    else if constexpr (OP == EMBER_SIGMOID) return a * (1 - b) * b;
    else if constexpr (OP == EMBER_RELU) return b > 0 ? a : (T)0;
    else if constexpr (OP == EMBER_CLAMP) return b >= lo && b <= hi ? a : (T)0;
    else if constexpr (OP == EMBER_ERF) return a * k_erf * m_exp(-b * b);
    else if constexpr (OP == EMBER_LOG1P) return a / (b + 1);
    else if constexpr (OP == EMBER_EXPM1) return a * (b + 1);
    else if constexpr (OP == EMBER_GELU) {
      if (gelu_tanh) {
        /* 0.5 (1 + t) + 0.5 b (1 - t^2) beta (1 + 3 kappa b^2),
           t = tanh(beta (b + kappa b^3)) */
        T t = m_tanh(beta * (b + rn_mul(kappa * b * b, b)));
        T left = rn_mul((T)0.5, 1 + t);
        T right = rn_mul((T)0.5 * b * (1 - rn_mul(t, t)) * beta,
                         1 + rn_mul(3 * kappa * b, b));
        return a * (left + right);
      }
      /* Phi(b) + b phi(b) */
      T left = rn_mul((T)0.5, 1 + m_erf(b * (T)SQRT1_2));
      T right = rn_mul(b * k_pdf, m_exp((T)-0.5 * b * b));
      return a * (left + right);
    } else if constexpr (OP == EMBER_ERFINV)
      /* sqrt(pi) / 2 * exp(y^2), y the saved output */
      return a * (T)0.88622692545275801365 * m_exp(rn_mul(b, b));
    else if constexpr (OP == EMBER_SILU) {
      /* s (1 + b (1 - s)), s = sigmoid(b), as PyTorch's silu_backward */
      T s = (T)1 / ((T)1 + m_exp(-b));
      return a * s * (1 + b * (1 - s));
    }
    else /* EMBER_LEAKY_RELU */ return b > 0 ? a : a * lo;
  }
};

template <int OP, typename T>
static int grad_f(ember_tensor *dst, const ember_tensor *g,
                  const ember_tensor *s, double p0, double p1) {
  typedef typename cu_elem<T>::C C;
  unary_grad<OP, C> f;
  f.lo = (C)p0;
  f.hi = (C)p1;
  f.gelu_tanh = p0 != 0;
  return launch2<T, T>("unary_backward", dst, g, s, f);
}

template <typename T>
static int grad_dispatch(ember_unary_op op, ember_tensor *dst,
                         const ember_tensor *g, const ember_tensor *s,
                         double p0, double p1) {
  switch (op) {
    case EMBER_ABS: return grad_f<EMBER_ABS, T>(dst, g, s, p0, p1);
    case EMBER_EXP: return grad_f<EMBER_EXP, T>(dst, g, s, p0, p1);
    case EMBER_LOG: return grad_f<EMBER_LOG, T>(dst, g, s, p0, p1);
    case EMBER_SQRT: return grad_f<EMBER_SQRT, T>(dst, g, s, p0, p1);
    case EMBER_SIN: return grad_f<EMBER_SIN, T>(dst, g, s, p0, p1);
    case EMBER_COS: return grad_f<EMBER_COS, T>(dst, g, s, p0, p1);
    case EMBER_TANH: return grad_f<EMBER_TANH, T>(dst, g, s, p0, p1);
    case EMBER_SIGMOID: return grad_f<EMBER_SIGMOID, T>(dst, g, s, p0, p1);
    case EMBER_RELU: return grad_f<EMBER_RELU, T>(dst, g, s, p0, p1);
    case EMBER_CLAMP: return grad_f<EMBER_CLAMP, T>(dst, g, s, p0, p1);
    case EMBER_ERF: return grad_f<EMBER_ERF, T>(dst, g, s, p0, p1);
    case EMBER_LOG1P: return grad_f<EMBER_LOG1P, T>(dst, g, s, p0, p1);
    case EMBER_EXPM1: return grad_f<EMBER_EXPM1, T>(dst, g, s, p0, p1);
    case EMBER_GELU: return grad_f<EMBER_GELU, T>(dst, g, s, p0, p1);
    case EMBER_LEAKY_RELU: return grad_f<EMBER_LEAKY_RELU, T>(dst, g, s, p0, p1);
    case EMBER_ERFINV: return grad_f<EMBER_ERFINV, T>(dst, g, s, p0, p1);
    case EMBER_SILU: return grad_f<EMBER_SILU, T>(dst, g, s, p0, p1);
    default: return 0;    /* NEG is done by the core; as the CPU: nothing */
  }
}

/* Float dtypes only, the halves included (dst's decides, as on the CPU). */
int ember_cuda_unary_backward(ember_unary_op op, ember_tensor *dst,
                              const ember_tensor *g, const ember_tensor *s,
                              double p0, double p1) {
  return ember_cuda_dispatch_float_half(dst->dtype, [&](auto ty) {
    return grad_dispatch<typename decltype(ty)::T>(op, dst, g, s, p0, p1);
  });
}

/* }====================================================================== */

/* {======================================================================
** Binary math
** ======================================================================= */

template <int OP, typename T>
struct binary_float {
  __device__ T operator()(T a, T b) const {
    if constexpr (OP == EMBER_ADD) return a + b;
    else if constexpr (OP == EMBER_SUB) return a - b;
    else if constexpr (OP == EMBER_MUL) return a * b;
    else if constexpr (OP == EMBER_DIV) return a / b;
    else if constexpr (OP == EMBER_POW) return b == (T)2 ? a * a : m_pow(a, b);
    /* NaN-propagating, as torch.maximum / torch.minimum */
    else if constexpr (OP == EMBER_MAXIMUM) return a != a || a > b ? a : b;
    else if constexpr (OP == EMBER_MINIMUM) return a != a || a < b ? a : b;
    else if constexpr (OP == EMBER_REMAINDER) {   /* the sign of b */
      T m = m_fmod(a, b);
      return m != (T)0 && (b < (T)0) != (m < (T)0) ? m + b : m;
    }
    else if constexpr (OP == EMBER_FMOD) return m_fmod(a, b);
    else if constexpr (OP == EMBER_ATAN2) return m_atan2(a, b);
    else /* EMBER_HYPOT */ return m_hypot(a, b);
  }
};

/* Integer power by squaring, in U (wrapping); the core has checked that
   b >= 0. */
template <typename T, typename U>
__device__ static inline T cu_ipow(T a, T b) {
  U r = 1, x = (U)a;
  for (uint64_t e = (uint64_t)b; e; e >>= 1) {
    if (e & 1) r = (U)(r * x);
    x = (U)(x * x);
  }
  return (T)r;
}

/* Integers (no DIV: the core promotes true division to float). */
template <int OP, typename T, typename U>
struct binary_int {
  __device__ T operator()(T a, T b) const {
    if constexpr (OP == EMBER_ADD) return (T)((U)a + (U)b);
    else if constexpr (OP == EMBER_SUB) return (T)((U)a - (U)b);
    else if constexpr (OP == EMBER_MUL) return (T)((U)a * (U)b);
    else if constexpr (OP == EMBER_POW) return cu_ipow<T, U>(a, b);
    else if constexpr (OP == EMBER_MAXIMUM) return a > b ? a : b;
    else if constexpr (OP == EMBER_MINIMUM) return a < b ? a : b;
    else {   /* remainder, fmod: the core has checked that b != 0; b == -1
                gives 0 (the smallest integer % -1 overflows) */
      T m = std::is_signed<T>::value && b == (T)-1 ? (T)0 : (T)(a % b);
      if constexpr (OP == EMBER_REMAINDER && std::is_signed<T>::value)
        if (m != 0 && (b < 0) != (m < 0)) m = (T)(m + b);
      return m;
    }
  }
};

/* bool: add and maximum are logical or, mul and minimum logical and */
template <int OP>
struct binary_bool {
  __device__ uint8_t operator()(uint8_t a, uint8_t b) const {
    if constexpr (OP == EMBER_ADD) return (uint8_t)(a | b);
    else return (uint8_t)(a & b);
  }
};

/* T the storage type, the functors on its compute type */
template <typename T>
static int binary_float_dispatch(ember_binary_op op, ember_tensor *dst,
                                 const ember_tensor *a, const ember_tensor *b) {
  typedef typename cu_elem<T>::C C;
  switch (op) {
    case EMBER_ADD: return launch2<T, T>("add", dst, a, b, binary_float<EMBER_ADD, C>());
    case EMBER_SUB: return launch2<T, T>("sub", dst, a, b, binary_float<EMBER_SUB, C>());
    case EMBER_MUL: return launch2<T, T>("mul", dst, a, b, binary_float<EMBER_MUL, C>());
    case EMBER_DIV: return launch2<T, T>("div", dst, a, b, binary_float<EMBER_DIV, C>());
    case EMBER_POW: return launch2<T, T>("pow", dst, a, b, binary_float<EMBER_POW, C>());
    case EMBER_MAXIMUM:
      return launch2<T, T>("maximum", dst, a, b, binary_float<EMBER_MAXIMUM, C>());
    case EMBER_MINIMUM:
      return launch2<T, T>("minimum", dst, a, b, binary_float<EMBER_MINIMUM, C>());
    case EMBER_REMAINDER:
      return launch2<T, T>("remainder", dst, a, b, binary_float<EMBER_REMAINDER, C>());
    case EMBER_FMOD:
      return launch2<T, T>("fmod", dst, a, b, binary_float<EMBER_FMOD, C>());
    case EMBER_ATAN2:
      return launch2<T, T>("atan2", dst, a, b, binary_float<EMBER_ATAN2, C>());
    case EMBER_HYPOT:
      return launch2<T, T>("hypot", dst, a, b, binary_float<EMBER_HYPOT, C>());
    default: return 0;
  }
}

template <typename T, typename U>
static int binary_int_dispatch(ember_binary_op op, ember_tensor *dst,
                               const ember_tensor *a, const ember_tensor *b) {
  switch (op) {
    case EMBER_ADD: return launch2<T, T>("add", dst, a, b, binary_int<EMBER_ADD, T, U>());
    case EMBER_SUB: return launch2<T, T>("sub", dst, a, b, binary_int<EMBER_SUB, T, U>());
    case EMBER_MUL: return launch2<T, T>("mul", dst, a, b, binary_int<EMBER_MUL, T, U>());
    case EMBER_POW: return launch2<T, T>("pow", dst, a, b, binary_int<EMBER_POW, T, U>());
    case EMBER_MAXIMUM:
      return launch2<T, T>("maximum", dst, a, b, binary_int<EMBER_MAXIMUM, T, U>());
    case EMBER_MINIMUM:
      return launch2<T, T>("minimum", dst, a, b, binary_int<EMBER_MINIMUM, T, U>());
    case EMBER_REMAINDER:
      return launch2<T, T>("remainder", dst, a, b, binary_int<EMBER_REMAINDER, T, U>());
    case EMBER_FMOD:
      return launch2<T, T>("fmod", dst, a, b, binary_int<EMBER_FMOD, T, U>());
    default: return 0;    /* DIV never arrives here; as the CPU: nothing */
  }
}

int ember_cuda_binary(ember_binary_op op, ember_tensor *dst,
                      const ember_tensor *a, const ember_tensor *b) {
  return ember_cuda_dispatch_half(a->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    if constexpr (cu_is_float<T>::value)
      return binary_float_dispatch<T>(op, dst, a, b);
    else if constexpr (decltype(ty)::dt != EMBER_BOOL)
      return binary_int_dispatch<T, typename decltype(ty)::U>(op, dst, a, b);
    else if (op == EMBER_ADD || op == EMBER_MAXIMUM)   /* bool: or, and */
      return launch2<uint8_t, uint8_t>("add", dst, a, b, binary_bool<EMBER_ADD>());
    else if (op == EMBER_MUL || op == EMBER_MINIMUM)
      return launch2<uint8_t, uint8_t>("mul", dst, a, b, binary_bool<EMBER_MUL>());
    else
      return 0;    /* the core refuses the rest for bool */
  });
}

/* }====================================================================== */

/* {======================================================================
** Comparisons and where
** ======================================================================= */

/* dst (bool) = a op b, compared in the operands' type */
template <int OP, typename T>
struct compare_op {
  __device__ uint8_t operator()(T a, T b) const {
    if constexpr (OP == EMBER_EQ) return a == b;
    else if constexpr (OP == EMBER_NE) return a != b;
    else if constexpr (OP == EMBER_LT) return a < b;
    else if constexpr (OP == EMBER_LE) return a <= b;
    else if constexpr (OP == EMBER_GT) return a > b;
    else /* EMBER_GE */ return a >= b;
  }
};

template <typename T>
static int compare_dispatch(ember_cmp_op op, ember_tensor *dst,
                            const ember_tensor *a, const ember_tensor *b) {
  typedef typename cu_elem<T>::C C;   /* halves compare as floats */
  switch (op) {
    case EMBER_EQ: return launch2<uint8_t, T>("eq", dst, a, b, compare_op<EMBER_EQ, C>());
    case EMBER_NE: return launch2<uint8_t, T>("ne", dst, a, b, compare_op<EMBER_NE, C>());
    case EMBER_LT: return launch2<uint8_t, T>("lt", dst, a, b, compare_op<EMBER_LT, C>());
    case EMBER_LE: return launch2<uint8_t, T>("le", dst, a, b, compare_op<EMBER_LE, C>());
    case EMBER_GT: return launch2<uint8_t, T>("gt", dst, a, b, compare_op<EMBER_GT, C>());
    case EMBER_GE: return launch2<uint8_t, T>("ge", dst, a, b, compare_op<EMBER_GE, C>());
    default: return 0;
  }
}

int ember_cuda_compare(ember_cmp_op op, ember_tensor *dst,
                       const ember_tensor *a, const ember_tensor *b) {
  return ember_cuda_dispatch_half(a->dtype, [&](auto ty) {
    return compare_dispatch<typename decltype(ty)::T>(op, dst, a, b);
  });
}

/* dst = cond ? a : b, moving elements as bits of their size; oc gives
   (dst, cond, a, b) offsets */
template <typename T, class OC>
__global__ void k_where(T *d, const uint8_t *c, const T *a, const T *b, OC oc,
                        typename OC::index_type n) {
  CU_FOR_T(typename OC::index_type, i, n) {
    auto o = oc.get(i);
    d[o[0]] = c[o[1]] ? a[o[2]] : b[o[3]];
  }
}

template <typename T>
static int where_launch(ember_tensor *dst, const ember_tensor *cond,
                        const ember_tensor *a, const ember_tensor *b,
                        int64_t n) {
  cu_geom g;
  if (cu_geom_of(&g, "where", {dst, cond, a, b}) < 0) return -1;
  return cu_with_offsets<4>(g, [&](auto oc) {
    typedef decltype(oc) OC;
    k_where<T, OC><<<cu_blocks(n), CU_THREADS>>>(
        (T *)cu_data(dst), (const uint8_t *)cu_data(cond),
        (const T *)cu_data(a), (const T *)cu_data(b), oc,
        (typename OC::index_type)n);
    CU_LAUNCH_CHECK("where");
    return 0;
  });
}

int ember_cuda_where(ember_tensor *dst, const ember_tensor *cond,
                     const ember_tensor *a, const ember_tensor *b) {
  int64_t n = cu_numel(dst);
  if (n == 0) return 0;
  return ember_cuda_dispatch_bits(dst->dtype, [&](auto ty) {
    return where_launch<typename decltype(ty)::T>(dst, cond, a, b, n);
  });
}

/* }====================================================================== */
