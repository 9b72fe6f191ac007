/*
** ember.h -- the public C API of Ember's core (libember).
**
** Overview
** --------
** A tensor is a view (shape, strides, offset, dtype) over a reference-counted
** storage.  Views (`ember_view`, `ember_transpose`, `ember_narrow`, ...) share
** the storage of their base; ops allocate new storage.  Every op is defined
** once here (shape checks, dtype promotion, output allocation) and runs its
** kernels through the per-device backend table (core/backend.h), so a GPU
** backend adds kernels without touching the op definitions.
**
** The core knows nothing of Lua.  It reports errors by return value (NULL for
** functions returning a tensor, -1 for functions returning int) and keeps a
** message that `ember_last_error()` returns; it never exits or aborts on user
** input, and a failed op leaves its inputs unchanged.
**
** Index conventions.  The C API counts dimensions and positions from 0, as C
** does (`ember_select(t, 0, 2)` is the third row).  Index *values stored in
** tensors* are 1-based everywhere, because the same tensors flow to and from
** Lua without conversion: EMBER_ARGMAX/ARGMIN and `ember_max_dim` give
** 1-based positions,
** `ember_gather` and `ember_index_select` take 1-based index tensors, and
** `ember_randint` draws from an inclusive range like Lua's math.random.
**
** Ownership.  Every function returning `ember_tensor *` returns a new
** reference that the caller must drop with `ember_tensor_release`.  Tensor
** arguments are borrowed.
**
** Threads.  Several threads may call Ember at once, each on its own
** tensors (one lua_State per thread): reference counts are not atomic, so a
** tensor and its graph are used by one thread at a time.  The grad mode,
** anomaly detection, the default generator and the error message are per
** thread; the thread count, the byte counters and the plugins are the
** process's, made safe with atomics and locks.  docs/c-api.md, "Thread
** safety", has the whole contract.
**
** Worked example (a C host, no Lua):
**
**     float buf[6] = {1, 2, 3, 4, 5, 6};
**     int64_t shape[2] = {2, 3};
**     ember_tensor *a = ember_from_blob(buf, EMBER_FLOAT32, 2, shape, NULL,
**                                       NULL, NULL);        // no copy
**     ember_tensor *s = ember_sum_dim(a, 1, 0);             // [6, 15]
**     if (!s) fprintf(stderr, "%s\n", ember_last_error());
**     ember_tensor_release(s);
**     ember_tensor_release(a);                              // buf untouched
*/
#ifndef EMBER_H
#define EMBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_VERSION "0.1.0"
#define EMBER_MAX_DIMS 8   /* the most dimensions a tensor may have */
#define EMBER_ALIGN 64     /* alignment of CPU storage, in bytes */

/* {====================================================================
** Errors
** ===================================================================== */

/* The message of the last failed call on this thread ("" if none). */
const char *ember_last_error(void);
/* Set the message (printf-style); returns -1 so callers can `return`. */
int ember_set_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Format a shape as "[2,3]" into buf (returns buf). */
const char *ember_shape_str(char *buf, size_t n, int ndim,
                            const int64_t *shape);
/* A dim in [-ndim, ndim) as [0, ndim), or -1 with a message naming fn. */
int ember_wrap_dim(const char *fn, int dim, int ndim);

/* }==================================================================== */

/* {====================================================================
** Data types and devices
** ===================================================================== */

typedef enum ember_dtype {
  EMBER_FLOAT32 = 0, /* default */
  EMBER_FLOAT64,
  EMBER_INT32,
  EMBER_INT64,
  EMBER_UINT8,
  EMBER_BOOL,        /* stored as one byte, 0 or 1 */
  EMBER_BFLOAT16,    /* float32's upper 16 bits; arithmetic in float32 */
  EMBER_FLOAT16,     /* IEEE binary16; arithmetic in float32 */
  EMBER_NDTYPES
} ember_dtype;

typedef enum ember_device {
  EMBER_CPU = 0,
  EMBER_CUDA = 1,
  EMBER_NDEVICES
} ember_device;

size_t ember_dtype_size(ember_dtype dt);
const char *ember_dtype_name(ember_dtype dt);      /* "float32", ... */
/* Parse "float32"/"float"/"double"/"int64"/"long"/...; -1 if unknown. */
int ember_dtype_from_name(const char *name, ember_dtype *out);
int ember_dtype_is_float(ember_dtype dt);          /* the four float types */
int ember_dtype_is_half(ember_dtype dt);           /* bfloat16/float16 */
int ember_dtype_is_int(ember_dtype dt);            /* int32/int64/uint8 */
/* PyTorch's promotion of two tensor dtypes (bool < ints < floats). */
ember_dtype ember_promote(ember_dtype a, ember_dtype b);
const char *ember_device_name(ember_device dev);   /* "cpu", "cuda" */

/* }==================================================================== */

/* {====================================================================
** Storage and tensors
** ===================================================================== */

/* Called when a storage wrapping foreign memory dies.  */
typedef void (*ember_release_fn)(void *data, void *ctx);

typedef struct ember_storage {
  void *data;               /* first byte; 64-byte aligned when owned */
  size_t nbytes;            /* size of the block */
  int refcount;             /* tensors (views) sharing this storage */
  ember_device device;
  ember_release_fn release; /* NULL when Ember owns `data` */
  void *release_ctx;
  int inline_data;          /* data lives in the same block as this header */
  uint64_t version;         /* bumped by every in-place write (autograd
                               checks saved tensors against it) */
} ember_storage;

typedef struct ember_tensor {
  ember_storage *storage;
  int64_t offset;                   /* first element, in elements */
  int64_t shape[EMBER_MAX_DIMS];    /* size of each dimension */
  int64_t strides[EMBER_MAX_DIMS];  /* step of each dimension, in elements */
  int ndim;                         /* 0 for a scalar tensor */
  ember_dtype dtype;
  int refcount;
  struct ember_autograd_meta *grad_info; /* autograd state, NULL if none */
} ember_tensor;

void ember_tensor_retain(ember_tensor *t);
void ember_tensor_release(ember_tensor *t);        /* NULL is fine */

int64_t ember_numel(const ember_tensor *t);
int ember_is_contiguous(const ember_tensor *t);
/* Address of the first element (CPU tensors only). */
void *ember_data(const ember_tensor *t);
/* Total bytes of owned storage ever allocated in this process: bindings
   use the growth of this counter to pace the garbage collector. */
uint64_t ember_bytes_allocated(void);
size_t ember_bytes_live(void);

/* }==================================================================== */

/* {====================================================================
** Creation
** ===================================================================== */

ember_tensor *ember_empty(int ndim, const int64_t *shape, ember_dtype dt);
/* The same on a device (ember_empty is ember_empty_on(EMBER_CPU, ...)). */
ember_tensor *ember_empty_on(ember_device dev, int ndim, const int64_t *shape,
                             ember_dtype dt);
ember_tensor *ember_zeros(int ndim, const int64_t *shape, ember_dtype dt);
ember_tensor *ember_ones(int ndim, const int64_t *shape, ember_dtype dt);
ember_tensor *ember_full(int ndim, const int64_t *shape, double value,
                         ember_dtype dt);
/* The same on a device, made and filled there (ember_zeros is
   ember_zeros_on(EMBER_CPU, ...)); NULL with a message when the device is
   unavailable. */
ember_tensor *ember_zeros_on(ember_device dev, int ndim, const int64_t *shape,
                             ember_dtype dt);
ember_tensor *ember_ones_on(ember_device dev, int ndim, const int64_t *shape,
                            ember_dtype dt);
ember_tensor *ember_full_on(ember_device dev, int ndim, const int64_t *shape,
                            double value, ember_dtype dt);
/* A 0-dim tensor holding `value` (integer dtypes take `ivalue` exactly). */
ember_tensor *ember_scalar(double value, ember_dtype dt);
ember_tensor *ember_scalar_int(int64_t ivalue, ember_dtype dt);
/* A 0-dim operand for `t op value` with PyTorch's rule for Python numbers:
   the number keeps t's dtype unless it is of a higher category (a float
   with an integer tensor gives float32; an integer with bool gives int64). */
ember_tensor *ember_scalar_like(const ember_tensor *t, double value,
                                int64_t ivalue, int is_integer);
/* [start, end) by step, as torch.arange. */
ember_tensor *ember_arange(double start, double end, double step,
                           ember_dtype dt);
ember_tensor *ember_linspace(double start, double end, int64_t steps,
                             ember_dtype dt);
ember_tensor *ember_eye(int64_t n, int64_t m, ember_dtype dt);
/* Wrap host memory without copying.  `strides` may be NULL (contiguous).
   `release(data, ctx)` runs when the last view dies; Ember never frees
   `data` itself.  `release` may be NULL. */
ember_tensor *ember_from_blob(void *data, ember_dtype dt, int ndim,
                              const int64_t *shape, const int64_t *strides,
                              ember_release_fn release, void *ctx);

/* Random numbers: Philox-4x32-10, a counter-based generator.  A
   generator's state is a 64-bit key (the seed) and a 64-bit counter (the
   offset: elements drawn since it was seeded); element i of a draw uses
   offset + i, so results do not depend on threads, device or platform.
   The functions without a generator argument draw from the calling
   thread's default generator (ember_default_generator); the _gen variants
   draw from the one given (NULL: that default).  The Lua bindings keep one
   generator per lua_State, which ember.manual_seed seeds. */
typedef struct ember_generator {
  uint64_t seed;     /* Philox's key */
  uint64_t offset;   /* the counter: elements drawn since seeding */
} ember_generator;
#define EMBER_DEFAULT_SEED 67280421310721ULL
#define EMBER_GENERATOR_INIT {EMBER_DEFAULT_SEED, 0}
ember_generator *ember_default_generator(void);   /* this thread's */
void ember_generator_seed(ember_generator *g, uint64_t seed);  /* offset 0 */

void ember_manual_seed(uint64_t seed);
uint64_t ember_initial_seed(void);
ember_tensor *ember_rand(int ndim, const int64_t *shape, ember_dtype dt);
ember_tensor *ember_randn(int ndim, const int64_t *shape, ember_dtype dt);
/* The same made on a device (the same numbers as on the CPU). */
ember_tensor *ember_rand_on(ember_device dev, int ndim, const int64_t *shape,
                            ember_dtype dt);
ember_tensor *ember_randn_on(ember_device dev, int ndim, const int64_t *shape,
                             ember_dtype dt);
/* Fill a float tensor in place, on its own device, from the generator:
   uniform in [a, b), or normal(mean, std) (as torch's uniform_/normal_).
   The same seed and counter give the same numbers on every device.  Not
   recorded by autograd. */
int ember_uniform_(ember_tensor *t, double a, double b);
int ember_normal_(ember_tensor *t, double mean, double std);
/* Integers uniform in [low, high], both inclusive (as math.random). */
ember_tensor *ember_randint(int64_t low, int64_t high, int ndim,
                            const int64_t *shape, ember_dtype dt);
/* A random permutation of 1..n (1-based, like every index value), shape
   [n], n >= 0; any dtype but bool that holds n exactly.  It draws n
   uniforms (the counter moves by n), then shuffles (Fisher-Yates). */
ember_tensor *ember_randperm(int64_t n, ember_dtype dt);
/* The default generator's whole state: the seed and the counter.  Setting
   a saved state replays the draws made after it was read.  Either pointer
   may be NULL.  (For a generator of one's own, read its fields.) */
void ember_get_rng_state(uint64_t *seed, uint64_t *offset);
void ember_set_rng_state(uint64_t seed, uint64_t offset);

/* The same functions on a given generator (NULL: the default one). */
ember_tensor *ember_rand_gen(ember_generator *g, ember_device dev, int ndim,
                             const int64_t *shape, ember_dtype dt);
ember_tensor *ember_randn_gen(ember_generator *g, ember_device dev, int ndim,
                              const int64_t *shape, ember_dtype dt);
int ember_uniform_gen_(ember_generator *g, ember_tensor *t, double a, double b);
int ember_normal_gen_(ember_generator *g, ember_tensor *t, double mean,
                      double std);
ember_tensor *ember_randint_gen(ember_generator *g, int64_t low, int64_t high,
                                int ndim, const int64_t *shape, ember_dtype dt);
ember_tensor *ember_randperm_gen(ember_generator *g, int64_t n, ember_dtype dt);
/* n categories per row of probs (1-D [K] -> [n], 2-D [R,K] -> [R,n]),
   int64 and 1-based, drawn with probability proportional to the row's
   weights (float, >= 0, finite, not all zero; rows independent), with or
   without replacement, on probs' device.  The same generator state gives
   the same indices on the CPU and CUDA.  The counter moves by R * n. */
ember_tensor *ember_multinomial_gen(ember_generator *g, const ember_tensor *probs,
                                    int64_t n, int replacement);
ember_tensor *ember_multinomial(const ember_tensor *probs, int64_t n,
                                int replacement);

/* }==================================================================== */

/* {====================================================================
** Views (share storage) and copies.  Dimensions are 0-based.
** ===================================================================== */

/* `shape` may hold one -1, inferred.  view fails on incompatible strides;
   reshape copies only then. */
ember_tensor *ember_view(const ember_tensor *t, int ndim, const int64_t *shape);
ember_tensor *ember_reshape(const ember_tensor *t, int ndim,
                            const int64_t *shape);
ember_tensor *ember_transpose(const ember_tensor *t, int d0, int d1);
ember_tensor *ember_permute(const ember_tensor *t, int ndim, const int *perm);
ember_tensor *ember_narrow(const ember_tensor *t, int dim, int64_t start,
                           int64_t length);
ember_tensor *ember_select(const ember_tensor *t, int dim, int64_t index);
/* positions start, start + step, ... below stop of dim (0-based, stop
   exclusive, step > 0: PyTorch's t[start:stop:step]), a view */
ember_tensor *ember_slice(const ember_tensor *t, int dim, int64_t start,
                          int64_t stop, int64_t step);
/* the diagonal of dims d1, d2 (0-based) as the last dim, a view; offset > 0
   above the main diagonal, < 0 below (PyTorch's torch.diagonal) */
ember_tensor *ember_diagonal(const ember_tensor *t, int64_t offset, int d1,
                             int d2);
/* squeeze one size-1 dim, or all of them with EMBER_ALL_DIMS */
#define EMBER_ALL_DIMS (-100)
ember_tensor *ember_squeeze(const ember_tensor *t, int dim);
ember_tensor *ember_unsqueeze(const ember_tensor *t, int dim);
/* Size -1 keeps a dimension; new leading dims may be added. */
ember_tensor *ember_expand(const ember_tensor *t, int ndim,
                           const int64_t *shape);
ember_tensor *ember_flatten(const ember_tensor *t, int start, int end);
ember_tensor *ember_contiguous(const ember_tensor *t); /* t itself if so */
ember_tensor *ember_clone(const ember_tensor *t);
ember_tensor *ember_to_dtype(const ember_tensor *t, ember_dtype dt);
/* In place.  `src` broadcasts to `dst`; dtypes convert. */
int ember_copy_(ember_tensor *dst, const ember_tensor *src);
int ember_fill_(ember_tensor *dst, double value);
/* fill_ with an integer, exact for every int64 (a double is not beyond
   2^53).  A float tensor gets the nearest value; bool gets value != 0;
   int32 fails, unchanged, outside its range, and so does uint8 outside
   -255..255 (a negative value wraps, -1 is 255, as in PyTorch). */
int ember_fill_int_(ember_tensor *dst, int64_t value);
/* Read one element as double / int64 (CPU). `index` has t->ndim entries. */
int ember_get(const ember_tensor *t, const int64_t *index, double *out);
int ember_get_int(const ember_tensor *t, const int64_t *index, int64_t *out);
int ember_item(const ember_tensor *t, double *out);         /* numel 1 */
int ember_item_int(const ember_tensor *t, int64_t *out);

/* }==================================================================== */

/* {====================================================================
** Math.  Binary ops broadcast (NumPy rules) and promote (PyTorch rules).
** ===================================================================== */

typedef enum ember_unary_op {
  EMBER_NEG, EMBER_ABS, EMBER_EXP, EMBER_LOG, EMBER_SQRT, EMBER_SIN,
  EMBER_COS, EMBER_TANH, EMBER_SIGMOID, EMBER_RELU, EMBER_CLAMP,
  EMBER_ERF, EMBER_LOG1P, EMBER_EXPM1,
  EMBER_GELU,        /* parameter: 0 exact (erf), 1 tanh approximation */
  EMBER_LEAKY_RELU,  /* parameter: the negative slope (0.01 by default) */
  /* rounding (round: half to even) and sign keep integer dtypes as they
     are; their gradient is zero.  erfinv makes floats, as erf does. */
  EMBER_FLOOR, EMBER_CEIL, EMBER_ROUND, EMBER_TRUNC, EMBER_SIGN,
  EMBER_ERFINV,
  EMBER_SILU,        /* x sigmoid(x), its gradient in one pass */
  EMBER_NUNARY
} ember_unary_op;

typedef enum ember_binary_op {
  EMBER_ADD, EMBER_SUB, EMBER_MUL, EMBER_DIV, EMBER_POW,
  EMBER_MAXIMUM, EMBER_MINIMUM,
  /* remainder: the sign of the divisor (Python's %); fmod: the sign of the
     dividend (C's fmod).  Integers give integers; an integer divisor of 0
     is an error.  atan2(a, b) = atan2(y, x); hypot: sqrt(a^2 + b^2); both
     give floats (integers to float32). */
  EMBER_REMAINDER, EMBER_FMOD, EMBER_ATAN2, EMBER_HYPOT,
  EMBER_NBINARY
} ember_binary_op;

typedef enum ember_cmp_op {
  EMBER_EQ, EMBER_NE, EMBER_LT, EMBER_LE, EMBER_GT, EMBER_GE, EMBER_NCMP
} ember_cmp_op;

ember_tensor *ember_unary(ember_unary_op op, const ember_tensor *t);
int ember_unary_(ember_unary_op op, ember_tensor *t);
/* Ops with a parameter (EMBER_GELU, EMBER_LEAKY_RELU; others ignore it). */
ember_tensor *ember_unary_p(ember_unary_op op, const ember_tensor *t,
                            double param);
int ember_unary_p_(ember_unary_op op, ember_tensor *t, double param);
/* clamp to [lo, hi]; pass -INFINITY / INFINITY to leave a side open. */
ember_tensor *ember_clamp(const ember_tensor *t, double lo, double hi);
int ember_clamp_(ember_tensor *t, double lo, double hi);
ember_tensor *ember_binary(ember_binary_op op, const ember_tensor *a,
                           const ember_tensor *b);
/* In place: the result is written into `a`, whose shape and dtype stay. */
int ember_binary_(ember_binary_op op, ember_tensor *a, const ember_tensor *b);
ember_tensor *ember_compare(ember_cmp_op op, const ember_tensor *a,
                            const ember_tensor *b);
ember_tensor *ember_where(const ember_tensor *cond, const ember_tensor *a,
                          const ember_tensor *b);
ember_tensor *ember_masked_fill(const ember_tensor *t,
                                const ember_tensor *mask, double value);
int ember_masked_fill_(ember_tensor *t, const ember_tensor *mask,
                       double value);
/* The lower (tril) or upper (triu) triangle of the last two dims, batched
   over the leading ones; the rest becomes 0.  k is the diagonal offset as
   in torch.tril: element (i, j) is kept when j - i <= k (tril) or
   j - i >= k (triu).  Any dtype; at least 2 dims.  The gradient is the same
   triangle of the incoming gradient. */
ember_tensor *ember_tril(const ember_tensor *t, int64_t k);
ember_tensor *ember_triu(const ember_tensor *t, int64_t k);
int ember_tril_(ember_tensor *t, int64_t k);
int ember_triu_(ember_tensor *t, int64_t k);
/* 1 if same shape and equal elements (after promotion), else 0; -1 error. */
int ember_equal(const ember_tensor *a, const ember_tensor *b);

/* }==================================================================== */

/* {====================================================================
** Reductions.  `_dim` versions reduce one (0-based) dimension.
** ===================================================================== */

typedef enum ember_reduce_op {
  EMBER_SUM, EMBER_MEAN, EMBER_PROD, EMBER_MAX, EMBER_MIN,
  EMBER_ARGMAX, EMBER_ARGMIN, EMBER_VAR, EMBER_STD, EMBER_NREDUCE
} ember_reduce_op;

/* Over all elements: a 0-dim tensor.  `correction` is for var/std
   (1 = unbiased, the default in PyTorch). */
ember_tensor *ember_reduce(ember_reduce_op op, const ember_tensor *t,
                           int correction);
ember_tensor *ember_reduce_dim(ember_reduce_op op, const ember_tensor *t,
                               int dim, int keepdim, int correction);
/* max/min over a dim with their 1-based positions (int64). */
int ember_max_dim(const ember_tensor *t, int dim, int keepdim,
                  ember_tensor **values, ember_tensor **indices);
int ember_min_dim(const ember_tensor *t, int dim, int keepdim,
                  ember_tensor **values, ember_tensor **indices);
ember_tensor *ember_sum_dim(const ember_tensor *t, int dim, int keepdim);
/* Inclusive scans along a (0-based) dim, as torch.cumsum and friends.
   dtype: an ember_dtype the input is cast to first, or -1 for PyTorch's
   default (floats keep theirs; bool and integers accumulate in int64). */
ember_tensor *ember_cumsum(const ember_tensor *t, int dim, int dtype);
ember_tensor *ember_cumprod(const ember_tensor *t, int dim, int dtype);
/* The running max and its 1-based position (int64; the latest on ties,
   a NaN stays the max once met), any dtype. */
int ember_cummax(const ember_tensor *t, int dim, ember_tensor **values,
                 ember_tensor **indices);
/* log(cumsum(exp(t))) without overflow; float dtypes only. */
ember_tensor *ember_logcumsumexp(const ember_tensor *t, int dim);
/* Sorting and selection along a (0-based) dim (core/ops/sort.c), as
   PyTorch: values and 1-based int64 indices.  Ascending order puts NaN
   last, descending first; ties keep their original order (stable), so
   topk and kthvalue choose the lowest positions among ties.  sort takes
   any dtype; topk, kthvalue and median every dtype but bool. */
int ember_sort(const ember_tensor *t, int dim, int descending,
               ember_tensor **values, ember_tensor **indices);
/* The k largest (smallest unless largest), sorted; 0 <= k <= size. */
int ember_topk(const ember_tensor *t, int64_t k, int dim, int largest,
               ember_tensor **values, ember_tensor **indices);
/* The k-th smallest (k from 1), dim dropped unless keepdim. */
int ember_kthvalue(const ember_tensor *t, int64_t k, int dim, int keepdim,
                   ember_tensor **values, ember_tensor **indices);
/* The lower median over dim (NaN, at the first NaN, where there is one). */
int ember_median_dim(const ember_tensor *t, int dim, int keepdim,
                     ember_tensor **values, ember_tensor **indices);
/* The lower median of all elements: a 0-d tensor (NaN if empty). */
ember_tensor *ember_median(const ember_tensor *t);
ember_tensor *ember_softmax(const ember_tensor *t, int dim);
ember_tensor *ember_log_softmax(const ember_tensor *t, int dim);
/* Layer norm of x over its last normalized_ndim dims (n elements per
   row, mean and biased variance in double): (x - mean) / sqrt(var + eps)
   * weight + bias; weight and bias (x's trailing dims, dtype and device)
   may be NULL.  One fused kernel forward and one backward (dx, dweight,
   dbias); x float32 or float64.  ember_rms_norm: x / sqrt(mean(x^2) +
   eps) * weight, no mean and no bias (torch.rms_norm). */
ember_tensor *ember_layer_norm(const ember_tensor *x, int normalized_ndim,
                               const ember_tensor *weight,
                               const ember_tensor *bias, double eps);
ember_tensor *ember_rms_norm(const ember_tensor *x, int normalized_ndim,
                             const ember_tensor *weight, double eps);
/* One LSTM cell step, fused: gates (B, 4H) are the pre-activations in
   PyTorch's order i, f, g, o (x W_ih^T + b_ih + h W_hh^T + b_hh), c_prev
   (B, H); float32 or float64, one dtype and device.  Returns a (2, B, H)
   tensor holding h' = o tanh(c') at [0] and c' = f c_prev + i g at [1]
   (i, f, o sigmoids, g a tanh).  One kernel forward, one backward. */
ember_tensor *ember_lstm_cell(const ember_tensor *gates, const ember_tensor *c_prev);
/* One GRU cell step, fused: gx = x W_ih^T + b_ih and gh = h W_hh^T + b_hh
   (B, 3H) in PyTorch's order r, z, n, h (B, H).  Returns h' = (1 - z) n +
   z h with r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), n =
   tanh(gx_n + r gh_n).  One kernel forward, one backward. */
ember_tensor *ember_gru_cell(const ember_tensor *gx, const ember_tensor *gh,
                             const ember_tensor *h);
/* Cross entropy of the rows of logits x [N, C] against 1-based classes
   target [N] (int64/int32; 1..C or ignore_index, else an error naming the
   value), fused: the per-row loss [N], (1 - s) w[t] (lse - x[t]) + s / C
   sum_c w_c (lse - x_c) with s = label_smoothing, 0 on an ignored row.
   weight [C] or NULL (no gradient); *row_weight (if row_weight is not
   NULL) receives w[t] per row, 0 where ignored: the "mean" reduction's
   denominator. */
ember_tensor *ember_cross_entropy_rows(const ember_tensor *x,
                                       const ember_tensor *target,
                                       const ember_tensor *weight,
                                       int64_t ignore_index,
                                       double label_smoothing,
                                       ember_tensor **row_weight);
/* softmax(q k^T * scale + mask) v over the last two dims, fused (PyTorch's
   scaled_dot_product_attention without dropout): q (..., L, E),
   k (..., S, E), v (..., S, Ev) of one float dtype and the same batch
   dims; the result is (..., L, Ev).  mask: NULL, bool (true: may attend)
   or q's dtype (added), broadcastable to (..., L, S); no gradient flows
   to it.  is_causal: query i sees key j only when j <= i (top-left), and
   then mask must be NULL.  scale NAN means 1/sqrt(E).  A row that sees no
   key gives zeros.  Gradients flow to q, k and v. */
ember_tensor *ember_scaled_dot_product_attention(const ember_tensor *q,
                                                 const ember_tensor *k,
                                                 const ember_tensor *v,
                                                 const ember_tensor *mask,
                                                 int is_causal, double scale);
/* The same with dropout on the weights (probability p, from gen; NULL: this
   thread's default generator), as PyTorch's math path: not fused, it makes
   the (..., L, S) weights (autograd through the ops that compose it).
   p = 0 is ember_scaled_dot_product_attention itself. */
ember_tensor *ember_scaled_dot_product_attention_dropout(
    const ember_tensor *q, const ember_tensor *k, const ember_tensor *v,
    const ember_tensor *mask, int is_causal, double scale, double p,
    ember_generator *gen);

/* }==================================================================== */

/* {====================================================================
** Linear algebra, joining and indexing
** ===================================================================== */

/* torch.matmul semantics: 1-D, 2-D, and batched with broadcast batch dims. */
ember_tensor *ember_matmul(const ember_tensor *a, const ember_tensor *b);
/* As ember_matmul, but a bfloat16/float16 product comes back float32: the
   float32 sums unrounded (mixed precision's "bf16 in, float32 out"). */
ember_tensor *ember_matmul_f32(const ember_tensor *a, const ember_tensor *b);
ember_tensor *ember_cat(int n, ember_tensor *const *ts, int dim);
ember_tensor *ember_stack(int n, ember_tensor *const *ts, int dim);
/* `index` holds 1-based positions (int64 or int32). */
ember_tensor *ember_index_select(const ember_tensor *t, int dim,
                                 const ember_tensor *index);
ember_tensor *ember_gather(const ember_tensor *t, int dim,
                           const ember_tensor *index);
/* In place: t's slices at index[j] along dim += src's slice j. */
int ember_index_add_(ember_tensor *t, int dim, const ember_tensor *index,
                     const ember_tensor *src);
/* In place: t's slices at index[j] along dim = src's slice j (src: t's
   shape with dim's size index's length, t's dtype; a repeated index: the
   last slice on the CPU, one of them on CUDA).  Recorded by autograd. */
int ember_index_copy_(ember_tensor *t, int dim, const ember_tensor *index,
                      const ember_tensor *src);
/* In place: t's slices at index along dim = value, a 0-d tensor (cast to
   t's dtype).  Recorded by autograd (value's gradient: the slices' sum). */
int ember_index_fill_(ember_tensor *t, int dim, const ember_tensor *index,
                      const ember_tensor *value);
/* The same on a copy of t. */
ember_tensor *ember_index_copy(const ember_tensor *t, int dim,
                               const ember_tensor *index,
                               const ember_tensor *src);
ember_tensor *ember_index_fill(const ember_tensor *t, int dim,
                               const ember_tensor *index,
                               const ember_tensor *value);
/* In place: t[.., index[.., j, ..], ..] += src[.., j, ..] along dim (the
   adjoint of gather; index has src's shape). */
int ember_scatter_add_(ember_tensor *t, int dim, const ember_tensor *index,
                       const ember_tensor *src);
/* One entry of a slicing key (Lua's t[{ {1, -2}, {}, 3 }]); entry k is
   for dim k of t, dims past the key's n entries are taken whole.  RANGE:
   start, start + step, ... below stop (0-based, stop exclusive, step > 0),
   a view; AT: position start (0-based), the dim dropped, a view; INDEX:
   the 1-d int64/int32 `index` of 1-based positions (index_select: a copy;
   one INDEX entry per key at most); ALL: the whole dim. */
typedef enum {
  EMBER_KEY_ALL, EMBER_KEY_RANGE, EMBER_KEY_AT, EMBER_KEY_INDEX
} ember_key_kind;
typedef struct ember_key {
  ember_key_kind kind;
  int64_t start, stop, step;
  const ember_tensor *index;
} ember_key;
/* t[key]: a view, or a copy with an INDEX entry; recorded. */
ember_tensor *ember_slice_get(const ember_tensor *t, int n,
                              const ember_key *keys);
/* t[key] = src (broadcast to t[key]'s shape, cast to t's dtype) and
   t[key] = value, in place; every check before anything is written.
   Recorded as copy_ (autograd refuses a leaf that requires grad and a
   view of a recorded tensor). */
int ember_slice_set_(ember_tensor *t, int n, const ember_key *keys,
                     const ember_tensor *src);
int ember_slice_fill_(ember_tensor *t, int n, const ember_key *keys,
                      double value);
/* Check that every element of idx (int64 or int32) is in lo..hi, or equals
   skip when has_skip; else fail with prefix, the first bad value (row-major
   order) and suffix, e.g. "nll_loss: target " "7" " is out of range ...".
   On a device the check runs there and a bad value is reported by the next
   synchronising call (a copy to the host, ember_cuda_synchronize),
   not by this one. */
int ember_check_index(const ember_tensor *idx, int64_t lo, int64_t hi,
                      int has_skip, int64_t skip, const char *prefix,
                      const char *suffix);

/* How ember_scatter writes src into t: ASSIGN overwrites (torch.scatter),
   the others are torch.scatter_reduce's with include_self=True (t's own
   value takes part; MEAN counts it too, and floors for integers). */
typedef enum ember_scatter_reduce {
  EMBER_SCATTER_ASSIGN, EMBER_SCATTER_SUM, EMBER_SCATTER_PROD,
  EMBER_SCATTER_AMAX, EMBER_SCATTER_AMIN, EMBER_SCATTER_MEAN,
  EMBER_NSCATTER
} ember_scatter_reduce;

/* t[.., index[.., j, ..], ..] (op)= src[.., j, ..] along dim; index has
   t's number of dims and fits src (and t outside dim).  A 0-d src is a
   value written at every index.  src has t's dtype.  Differentiable for
   floats (t and src), every op.  The _ form writes t in place and leaves
   it unchanged on error. */
ember_tensor *ember_scatter(const ember_tensor *t, int dim,
                            const ember_tensor *index, const ember_tensor *src,
                            ember_scatter_reduce op);
int ember_scatter_(ember_tensor *t, int dim, const ember_tensor *index,
                   const ember_tensor *src, ember_scatter_reduce op);

/* Selection by mask (mask bool) and by flat position.  nonzero: the
   1-based coordinates of t's nonzero elements, [N, t's dims] int64,
   row-major (on a device it waits once, for N).  masked_select: t's
   elements where mask (broadcast with t) holds, 1-D.  masked_scatter:
   src's first elements, in order, written where mask holds (mask
   broadcasts to t in place; with t out of place); src has t's dtype and at
   least as many elements as the mask selects.  take: t read as 1-D at the
   1-based positions of index, shaped like index. */
ember_tensor *ember_nonzero(const ember_tensor *t);
ember_tensor *ember_masked_select(const ember_tensor *t,
                                  const ember_tensor *mask);
int ember_masked_scatter_(ember_tensor *t, const ember_tensor *mask,
                          const ember_tensor *src);
ember_tensor *ember_masked_scatter(const ember_tensor *t,
                                   const ember_tensor *mask,
                                   const ember_tensor *src);
ember_tensor *ember_take(const ember_tensor *t, const ember_tensor *index);

/* }==================================================================== */

/* {====================================================================
** Optimizer steps: one fused in-place update of a parameter `p` from its
** gradient `g`, with torch.optim's update rules.  p, g and the state
** tensors share shape, device and a float dtype; state tensors are
** contiguous, made by the caller (zeros, or Adagrad's initial value) and
** updated in place along with p.  Float32 data is computed in double.
** Not recorded by autograd.  -1 on error, with nothing written.
** ===================================================================== */

/* `momentum_buf` is NULL when momentum is 0; `first_step` (1 on the
   buffer's first use) copies the update into it, as PyTorch does. */
int ember_sgd_step(ember_tensor *p, const ember_tensor *g,
                   ember_tensor *momentum_buf, double lr, double momentum,
                   double dampening, double weight_decay, int nesterov,
                   int maximize, int first_step);
/* Adam, or AdamW when `decoupled`; `step` counts from 1 (bias
   corrections); `max_exp_avg_sq` is NULL unless amsgrad. */
int ember_adam_step(ember_tensor *p, const ember_tensor *g,
                    ember_tensor *exp_avg, ember_tensor *exp_avg_sq,
                    ember_tensor *max_exp_avg_sq, int64_t step, double lr,
                    double beta1, double beta2, double eps,
                    double weight_decay, int decoupled, int maximize);
/* `momentum_buf` is NULL when momentum is 0, `grad_avg` NULL unless
   centered. */
int ember_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                       ember_tensor *square_avg, ember_tensor *momentum_buf,
                       ember_tensor *grad_avg, double lr, double alpha,
                       double eps, double weight_decay, double momentum,
                       int maximize);
/* `step` counts from 1 (the lr decays as lr / (1 + (step-1) lr_decay)). */
int ember_adagrad_step(ember_tensor *p, const ember_tensor *g,
                       ember_tensor *state_sum, int64_t step, double lr,
                       double lr_decay, double weight_decay, double eps,
                       int maximize);

/* }==================================================================== */

/* {====================================================================
** Convolution and pooling.  PyTorch's semantics (torch.nn.functional):
** x is [N,C,H,W] or unbatched [C,H,W] (the result then has 3 dims too);
** every `int[2]` argument is {height, width}.  float32 and float64 only,
** all tensors of one dtype.  Output size per dim:
**   floor((H + 2*pad - dil*(k-1) - 1) / stride) + 1
** (pooling with ceil_mode rounds up, but the last window must start
** inside the input or its left padding).  stride/padding/dilation may be
** NULL for their defaults: 1, 0, 1 (pooling: stride = kernel).
** The forward ops record for autograd; the *_backward functions record
** nothing and compute the gradients from the output gradient `gy`.
** ===================================================================== */

/* w is [O, C/groups, KH, KW], b is [O] or NULL; result [N,O,OH,OW].
   groups must divide C and O. */
ember_tensor *ember_conv2d(const ember_tensor *x, const ember_tensor *w,
                           const ember_tensor *b, const int stride[2],
                           const int padding[2], const int dilation[2],
                           int groups);
/* Gradients of conv2d w.r.t. x, w and b.  Each out pointer may be NULL
   (that gradient is not computed); on success each non-NULL one receives
   a new tensor, on failure all are set to NULL. */
int ember_conv2d_backward(const ember_tensor *gy, const ember_tensor *x,
                          const ember_tensor *w, const int stride[2],
                          const int padding[2], const int dilation[2],
                          int groups, ember_tensor **gx, ember_tensor **gw,
                          ember_tensor **gb);
/* relu(conv2d(x, w, b, ...)) in one pass over the output (nn.Sequential
   runs a Conv2d followed by a ReLU this way); the same values as
   ember_relu of ember_conv2d's result, recorded for autograd as one op. */
ember_tensor *ember_conv2d_relu(const ember_tensor *x, const ember_tensor *w,
                                const ember_tensor *b, const int stride[2],
                                const int padding[2], const int dilation[2],
                                int groups);
/* Gradients of conv2d_relu, as ember_conv2d_backward's: y is the forward's
   output, and gy counts only where y > 0 (ReLU's backward). */
int ember_conv2d_relu_backward(const ember_tensor *gy, const ember_tensor *y,
                               const ember_tensor *x, const ember_tensor *w,
                               const int stride[2], const int padding[2],
                               const int dilation[2], int groups,
                               ember_tensor **gx, ember_tensor **gw,
                               ember_tensor **gb);
/* How conv2d pads, for ember_conv2d_ex: EXPLICIT takes the padding
   argument, VALID pads nothing, SAME keeps the input's size (PyTorch's
   padding="same": stride 1 only). */
typedef enum {
  EMBER_PAD_EXPLICIT, EMBER_PAD_VALID, EMBER_PAD_SAME
} ember_pad_mode;
/* The padding of padding = "same" for weight w (kernel [.., .., KH, KW]):
   per dim the total dilation*(k-1), split as PyTorch does, the extra
   element of an odd total on the right/bottom: before[i] = total/2,
   after[i] = total - before[i].  stride/dilation may be NULL (1); a
   stride other than 1 is an error (-1). */
int ember_conv2d_same_padding(const ember_tensor *w, const int stride[2],
                              const int dilation[2], int before[2],
                              int after[2]);
/* ember_conv2d (relu = 0) or ember_conv2d_relu (relu != 0) with a padding
   mode; `padding` is read only for EMBER_PAD_EXPLICIT.  With
   EMBER_PAD_SAME and an odd total padding the result is a view (a narrow)
   of a one-larger output, recorded for autograd as such. */
ember_tensor *ember_conv2d_ex(const ember_tensor *x, const ember_tensor *w,
                              const ember_tensor *b, const int stride[2],
                              const int padding[2], const int dilation[2],
                              int groups, ember_pad_mode mode, int relu);
/* Max over each window; padding (at most kernel/2) acts as -inf and a NaN
   in a window is its maximum.  `indices` may be NULL, else it receives an
   int64 tensor shaped like the result: the 1-based flat position h*W+w+1
   of each maximum within its input plane. */
ember_tensor *ember_max_pool2d(const ember_tensor *x, const int kernel[2],
                               const int stride[2], const int padding[2],
                               const int dilation[2], int ceil_mode,
                               ember_tensor **indices);
/* gx, shaped like x: each gy element added at its index. */
ember_tensor *ember_max_pool2d_backward(const ember_tensor *gy,
                                        const ember_tensor *x,
                                        const ember_tensor *indices);
/* Mean over each window.  The divisor counts the padding inside the
   window when count_include_pad is set (never the part of a ceil_mode
   window beyond the padding), else only the input elements. */
ember_tensor *ember_avg_pool2d(const ember_tensor *x, const int kernel[2],
                               const int stride[2], const int padding[2],
                               int ceil_mode, int count_include_pad);
ember_tensor *ember_avg_pool2d_backward(const ember_tensor *gy,
                                        const ember_tensor *x,
                                        const int kernel[2],
                                        const int stride[2],
                                        const int padding[2], int ceil_mode,
                                        int count_include_pad);

/* }==================================================================== */

/* {====================================================================
** Autograd.  Reverse mode, recorded as ops run: a result of a
** differentiable op with an input that requires grad gets a node holding
** its backward function and saved tensors.  Grads are float tensors.
** ===================================================================== */

struct ember_autograd_meta;

/* Grad mode (on by default): when off, nothing is recorded.  Per thread,
   as PyTorch's, and so are anomaly detection and its where hook below. */
void ember_set_grad_enabled(int on);
int ember_is_grad_enabled(void);
/* Autocast (mixed precision), per thread, off by default: with dt
   EMBER_BFLOAT16 or EMBER_FLOAT16, the products (matmul, linear, conv2d,
   scaled dot-product attention) round their float32 operands to dt,
   accumulate in float32 and return float32; other ops are unchanged.
   ember_set_autocast(-1) turns it off.  Returns 0, or -1 with an error
   for another dtype (nothing changes); ember_get_autocast() is the
   current setting, -1 for off. */
int ember_set_autocast(int dt);
int ember_get_autocast(void);
/* Anomaly detection (off by default): backward checks the gradients each
   node computes and fails on the first NaN, naming the node ("backward:
   LogBackward produced NaN in its gradient for input 1 (anomaly
   detection)").  Off, it costs nothing measurable; on, one read-back per
   gradient (a sync on the GPU). */
void ember_set_anomaly_detection(int on);
int ember_anomaly_detection_enabled(void);
/* Where each recorded op was called, for anomaly detection's message
   ("...; its forward op was called at model.lua:12").  The core knows no
   call stack; a caller that has one (the Lua bindings install one for
   Lua's) sets a hook that writes a short NUL-terminated description of the
   current call site into buf (size bytes).  While anomaly detection is
   on, it runs each time an op is recorded; it must not fail or unwind.
   fn = NULL removes it; ember_anomaly_where_ctx() is the ctx installed. */
typedef void (*ember_anomaly_where_fn)(char *buf, size_t size, void *ctx);
void ember_set_anomaly_where(ember_anomaly_where_fn fn, void *ctx);
void *ember_anomaly_where_ctx(void);
/* requires_grad of a leaf (a tensor no recorded op produced).  Only
   floating-point tensors can require grad.  -1 on error. */
int ember_set_requires_grad(ember_tensor *t, int on);
int ember_requires_grad(const ember_tensor *t);
int ember_is_leaf(const ember_tensor *t);
/* The accumulated gradient (borrowed; NULL if none) and its setter
   (retains g; NULL clears).  A new grad must match t's shape and dtype. */
ember_tensor *ember_grad(const ember_tensor *t);
int ember_set_grad(ember_tensor *t, ember_tensor *g);
/* Keep .grad for a non-leaf during backward, as Tensor.retain_grad. */
int ember_retain_grad(ember_tensor *t);
/* Name of the node that produced t ("MulBackward", ...), NULL for leaves. */
const char *ember_grad_fn_name(const ember_tensor *t);
/* A view of t's data outside the graph (requires_grad off). */
ember_tensor *ember_detach(const ember_tensor *t);
/* t itself leaves the graph, as Tensor.detach_: it becomes a leaf that
   does not require grad (its .grad stays).  A recorded view of a tensor
   that requires grad cannot (it shares its base's history): -1, unchanged;
   use ember_detach. */
int ember_detach_(ember_tensor *t);
/* Backpropagate from t.  `grad` may be NULL when t has one element (then
   1).  The graph's saved tensors are freed unless retain_graph.  Then the
   post-backward hooks run. */
int ember_backward(ember_tensor *t, const ember_tensor *grad,
                   int retain_graph);
/* Post-backward hooks: fn(ctx) runs at the end of every successful
   ember_backward of the thread that added it (hooks are per thread, as
   the grad mode), once every .grad has been accumulated, in the order
   added; a hook that fails (returns -1 after ember_set_error) stops the
   others and ember_backward returns -1 with its message, the gradients
   already accumulated.  A backward run by a hook runs none.  This is how
   a data-parallel wrapper averages gradients without replacing backward.
   At most EMBER_MAX_POST_BACKWARD_HOOKS; adding one twice (same fn and
   ctx) or removing one not added is an error. */
#define EMBER_MAX_POST_BACKWARD_HOOKS 16
typedef int (*ember_post_backward_fn)(void *ctx);
int ember_add_post_backward_hook(ember_post_backward_fn fn, void *ctx);
int ember_remove_post_backward_hook(ember_post_backward_fn fn, void *ctx);

/* Custom functions (torch.autograd.Function): the caller computes some
   outputs from some inputs itself (typically with grad mode off) and
   ember_function_apply attaches them to ONE node whose backward is the
   caller's callback, so that backward flows through them.  ember.checkpoint
   is built on it.
     inputs [nin]   the tensors whose gradients the callback computes (any
                    may be NULL; those that require grad get edges);
     saved [nsaved] tensors the callback needs, kept as detached aliases
                    with their version: an in-place write to one before
                    the backward makes it fail, as for the ops' saved
                    tensors; freed by a backward without retain_graph;
     outputs [nout] fresh results: each floating-point one becomes a
                    non-leaf that requires grad, output i of the node
                    (others are left as they are).  An output that
                    already requires grad, or one given twice, is an error.
   Returns 1 when recorded, 0 when not (grad mode is off or no input
   requires grad: the outputs are untouched), -1 on error (nothing
   changed).  In every case the node owns ctx from the call on:
   release(ctx) (if not NULL) runs once, when the node dies, or before
   returning 0 or -1.  `name` is copied ("CheckpointBackward").
   The backward runs on the thread that called ember_backward, with grad
   mode off; it may run a backward itself (nested: the inner one commits
   its own leaves' .grad when it ends, and runs no post-backward hooks).
   It fills grad_inputs[i] (a new reference, exactly input i's shape,
   float, on its device) for the inputs with needs[i], or leaves one NULL
   for a zero gradient; it returns -1 after ember_set_error to fail the
   backward (no .grad changed by the outer backward). */
typedef struct ember_function_grads {
  int nout;
  ember_tensor *const *grad_outputs; /* [nout]: zeros where no gradient
                                        reached an output; NULL for a
                                        non-float output */
  int nsaved;
  ember_tensor *const *saved;        /* [nsaved], as they were saved */
  int nin;
  const unsigned char *needs;        /* [nin]: input i needs a gradient */
  ember_tensor **grad_inputs;        /* [nin]: NULL on entry, to fill */
} ember_function_grads;
typedef int (*ember_function_backward_fn)(void *ctx,
                                          const ember_function_grads *g);
typedef void (*ember_function_release_fn)(void *ctx);
int ember_function_apply(const char *name, int nin,
                         const ember_tensor *const *inputs, int nsaved,
                         const ember_tensor *const *saved, int nout,
                         ember_tensor *const *outputs,
                         ember_function_backward_fn backward,
                         ember_function_release_fn release, void *ctx);
/* Peak of ember_bytes_live() (bytes of tensor storage alive, every
   device) since the start or the last ember_reset_peak_bytes(), which
   sets it to the bytes alive now.  Exact for the calling thread's
   allocations; another thread's are seen in batches of up to 1 MiB. */
size_t ember_peak_bytes_live(void);
void ember_reset_peak_bytes(void);

/* }==================================================================== */

/* {====================================================================
** CUDA (core/device.c).  The backend is a plugin, libember_cuda.so, loaded
** on first use (see docs/cuda.md for where it is looked for); without it,
** or without a driver or a device, CUDA is unavailable and every other
** function works as before.  Ops run on the device of their operands;
** mixing devices in one op is an error (a 0-d CPU tensor made from a Lua
** number follows the other operand).  Reading an element (ember_get,
** ember_item) of a CUDA tensor copies it to the host.
** ===================================================================== */

int ember_cuda_is_available(void);
/* Why CUDA is unavailable ("no CUDA device", "libember_cuda.so not
   found", ...), or NULL when it is available. */
const char *ember_cuda_unavailable_reason(void);
int ember_cuda_device_count(void);                 /* 0 without CUDA */
/* Wait for every queued kernel; -1 with the CUDA message if one failed, or
   with the message of a data error a kernel deferred (ember_check_index). */
int ember_cuda_synchronize(void);
size_t ember_cuda_memory_allocated(void);          /* bytes in tensors */
size_t ember_cuda_memory_reserved(void);           /* and in the cache */
void ember_cuda_empty_cache(void);                 /* free cached blocks */
/* What the device has done since the process started (all zero without
   CUDA).  syncs counts every wait for the device's queue the core asked
   for: copies to the host (ember_item, ember_get, ember_to_device to the
   CPU) and ember_cuda_synchronize.  A data error a kernel finds (an index
   out of range) is reported by the next of these, naming its op. */
typedef struct ember_cuda_counters {
  unsigned long long syncs;        /* waits: copies to the host, synchronize */
  unsigned long long uploads;      /* copies from the host */
  unsigned long long allocations;  /* device mallocs made by the cache */
  unsigned long long releases;     /* device frees made by the cache */
  size_t allocated_bytes;          /* in live tensors and workspaces */
  size_t cached_bytes;             /* kept free for reuse */
} ember_cuda_counters;
void ember_cuda_stats(ember_cuda_counters *out);
/* The process's device, 0-based as in "cuda:1": chosen on first use from
   $EMBER_CUDA_DEVICE, else the MPI local rank ($OMPI_COMM_WORLD_LOCAL_RANK)
   modulo the device count, else 0.  Setting it is an error (-1) when n is
   out of range, or when device memory is allocated on another device. */
int ember_cuda_set_device(int n);
int ember_cuda_current_device(void);               /* -1 without CUDA */
/* TF32 tensor cores for float32 matmul and convolution (off by default,
   as PyTorch's allow_tf32 flags). */
void ember_cuda_set_allow_tf32(int on);
int ember_cuda_get_allow_tf32(void);
/* t on `dev` (t itself, retained, when it is there already); recorded by
   autograd, so gradients flow back to t's device. */
ember_tensor *ember_to_device(const ember_tensor *t, ember_device dev);

/* }==================================================================== */

/* {====================================================================
** Distributed (core/dist.c): collectives across the processes of a job,
** for data-parallel training.  A process started by a launcher (mpirun,
** srun) joins the job at ember_dist_init through the MPI plugin,
** libember_mpi.so (built where mpicc is found; looked for as the CUDA
** plugin is, or at $EMBER_MPI_PLUGIN); any other process is a world of one
** where every collective returns at once.  Ranks are 0-based here (Lua's
** ember.distributed counts from 1).
**
** Every rank of the job must make the same calls in the same order with
** tensors of the same dtypes and sizes; that is checked (one small
** all-reduce per call), and a mismatch is the same error on every rank.
** The collectives work in place on CPU and CUDA tensors (CUDA ones and
** views through a host copy), are not recorded by autograd, and call
** ember_dist_init themselves when it was not called.  -1 on error.
** ===================================================================== */

/* Join the job (or make a world of one).  Idempotent.  Under a job of
   several processes the thread count becomes this process's share of the
   machine's cores unless it was set (ember_set_num_threads). */
int ember_dist_init(void);
int ember_dist_is_initialized(void);               /* and not finalized */
int ember_dist_is_finalized(void);
int ember_dist_rank(void);                         /* 0 before init */
int ember_dist_world_size(void);                   /* 1 before init */
int ember_dist_local_size(void);                   /* ranks on this machine */
const char *ember_dist_backend(void);              /* "mpi", or "none" */
const char *ember_dist_version(void);              /* "Open MPI v4.1.4", or NULL */
/* Whether the MPI plugin loads (it is needed only under a launcher). */
int ember_dist_is_available(void);
const char *ember_dist_unavailable_reason(void);   /* NULL when available */
int ember_dist_barrier(void);
/* t reduced over the ranks, in place.  op: EMBER_SUM, EMBER_MEAN
   (floating dtypes), EMBER_MAX or EMBER_MIN (bool: only these two). */
int ember_dist_all_reduce(ember_tensor *t, ember_reduce_op op);
/* n tensors reduced with one call per bucket: tensors of a dtype packed
   into host buckets of up to bucket_bytes (0: 25 MiB). */
int ember_dist_all_reduce_many(ember_tensor *const *ts, int n, ember_reduce_op op,
                               size_t bucket_bytes);
/* Rank root's t (0-based) copied into every rank's t. */
int ember_dist_broadcast(ember_tensor *t, int root);
int ember_dist_broadcast_many(ember_tensor *const *ts, int n, int root,
                              size_t bucket_bytes);
/* A new tensor of shape [world_size, t's shape]: row r is rank r's t. */
ember_tensor *ember_dist_all_gather(const ember_tensor *t);
/* Leave the job (MPI_Finalize: every rank must call it).  Later calls to
   the collectives fail; ember_dist_init cannot rejoin. */
int ember_dist_finalize(void);
/* In a job of several processes: stop all of them now with exit status
   `code` (MPI_Abort).  Otherwise returns and does nothing. */
void ember_dist_abort(int code);

/* }==================================================================== */

/* {====================================================================
** IDX files (core/io_idx.c), the format of MNIST and Fashion-MNIST:
** a magic of two zero bytes, a type byte and a rank byte, one big-endian
** uint32 per dim, then the big-endian data.  Gzipped and plain files read
** alike (zlib).  Types: 0x08 uint8 -> EMBER_UINT8, 0x0C int32 ->
** EMBER_INT32, 0x0D float32 -> EMBER_FLOAT32, 0x0E float64 ->
** EMBER_FLOAT64; 0x09 int8 and 0x0B int16 are widened to EMBER_INT32.
** ===================================================================== */

/* A new CPU tensor with the file's dims and data, values as stored.  NULL
   with a message naming the file when it cannot be opened or read, is not
   IDX, declares more than EMBER_IDX_MAX_BYTES of data, is truncated, has
   bytes after the data, or is a damaged gzip stream. */
#define EMBER_IDX_MAX_BYTES ((uint64_t)4 << 30)   /* 4 GiB, as stored */
ember_tensor *ember_read_idx(const char *path);

/* }==================================================================== */

/* {====================================================================
** CSV (core/io_csv.c): the numeric fast path of data.csv.
** ===================================================================== */

/* A column's role for ember_csv_scan, besides a feature's slot (>= 0). */
#define EMBER_CSV_SKIP   (-1)   /* not read */
#define EMBER_CSV_TARGET (-2)   /* not read; its span is handed back */

/* Parse consecutive plain records of text[0..len) from byte *pos (0-based):
   lines ending in \n, \r\n or the end of the text, fields split at every
   `sep`, none holding a double quote, exactly `ncol` fields, and the field
   of every column c with role[c] >= 0 a plain decimal number
   ([ws][+-]digits[.digits][(e|E)[+-]digits][ws] or .digits) stored as
   out[row * F + role[c]], F being the number of such columns (each slot
   0..F-1 given once), with the value Lua's tonumber gives.  Blank lines are skipped.  The field of
   the column whose role is EMBER_CSV_TARGET must not be empty; when
   target is not NULL, its start and length are stored in target[2 * row] and target[2 * row + 1].
   Stops before the first record it cannot take that way, or after
   max_rows records; returns the records parsed, moves *pos past them and
   adds the lines consumed (records and blank lines) to *lines.  Parses
   nothing when the C locale's decimal point is not '.'. */
int64_t ember_csv_scan(const char *text, size_t len, size_t *pos, int64_t *lines, char sep,
                       int64_t ncol, const int64_t *role, int64_t max_rows, double *out,
                       size_t *target);

/* The field s[0..n) as Lua's tonumber reads it when it is a plain decimal
   number (the form ember_csv_scan takes): stores the value in *out and
   returns 2 when Lua reads an integer (also stored in *ival when ival is
   not NULL), 1 for a float, 0 for anything else (empty, hex, nan/inf
   spellings, junk, very long tokens), which is left to Lua. */
int ember_csv_number(const char *s, size_t n, double *out, int64_t *ival);

/* }==================================================================== */

/* {====================================================================
** Images (core/io_image.c): PNG (libpng) and JPEG (libjpeg-turbo),
** told apart by their magic bytes, never by the name.  Every image is
** decoded to 8 bits and to `channels` channels: 1 (grey) or 3 (RGB).
** Palettes expand, 16-bit samples round to 8 bits, alpha is dropped, grey
** becomes RGB by copying and RGB becomes grey with PIL's "L" weights
** (0.299, 0.587, 0.114 in 16-bit fixed point); a CMYK JPEG is refused.
** Failures return NULL (or -1) with a message naming the file: not a PNG
** or JPEG file, truncated, corrupt, more than EMBER_IMAGE_MAX_PIXELS
** pixels, or more pixels than the file's bytes could encode (checked
** before the image is allocated).  No globals: safe on several threads.
** ===================================================================== */

#define EMBER_IMAGE_MAX_PIXELS ((int64_t)1 << 28)
#define EMBER_IMAGE_MAX_FILE_BYTES ((uint64_t)1 << 30)   /* 1 GiB */

/* The image in data[0..size) as a new uint8 tensor H x W x channels;
   name is what messages call it (NULL: "<memory>"). */
ember_tensor *ember_decode_image(const void *data, size_t size, int channels,
                                 const char *name);
/* The same for the file at path. */
ember_tensor *ember_read_image(const char *path, int channels);
/* The file at path as a new float32 tensor channels x h x w with values in
   [0, 1], resized bilinearly (align_corners = false, no antialiasing: as
   torch.nn.functional.interpolate(mode = "bilinear") without antialias);
   h = w = 0 keeps the image's size. */
ember_tensor *ember_read_image_chw(const char *path, int channels, int64_t h,
                                   int64_t w);
/* Decode paths[0..n) into dst, a contiguous float32 CPU tensor
   n x C x H x W (C = 1 or 3), each as ember_read_image_chw would, on
   several threads (OpenMP).  Returns 0, or -1 with the message of the
   first failing path (by index); dst's contents are then unspecified. */
int ember_read_images(ember_tensor *dst, const char *const *paths, int64_t n);

/* }==================================================================== */

/* {====================================================================
** Files: safetensors (core/io_safetensors.c), the format of Hugging Face's
** safetensors package: an 8-byte little-endian header length N, N bytes of
** JSON ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__":
** {string: string}}), then the raw little-endian data.  Ember's dtypes are
** written as F32, F64, BF16, F16, I32, I64, U8, BOOL.  Messages start with "save:" or
** "load:" and name the file (and the tensor, where one is at fault).
** ===================================================================== */

/* Write n named tensors (CPU, any strides: data goes in row-major order)
   and nmeta metadata strings to path, atomically: a temporary file in the
   same folder, fsync, rename.  Names must be non-empty, unique, valid
   UTF-8 and not "__metadata__"; metadata keys unique.  Everything is
   checked before a file is created; on failure the temporary file is
   removed and a file already at path is untouched.  0, or -1. */
int ember_save_safetensors(const char *path, int n, const char *const *names,
                           ember_tensor *const *tensors, int nmeta,
                           const char *const *meta_keys,
                           const char *const *meta_values);

/* A file read and validated whole; NULL with a message when it cannot be
   opened, is truncated or corrupt, or holds a dtype Ember cannot load.
   F16 and BF16 load as float16 and bfloat16; I16, I8 and U16 as int32,
   U32 as int64. */
typedef struct ember_safetensors ember_safetensors;
ember_safetensors *ember_load_safetensors(const char *path);
/* The same with flags: EMBER_LOAD_MMAP maps the file (MAP_PRIVATE) and
   makes each tensor a view of the mapping (copy-on-write, never written
   back) instead of reading it, after the same validation.  Tensors whose
   bytes cannot be used as they lie (widened dtypes, data not aligned to
   the element size) are copied; ember_tensor_is_mapped says which. */
#define EMBER_LOAD_MMAP 1
ember_safetensors *ember_load_safetensors_ex(const char *path, int flags);
/* Is t's storage a view of a mapped file? */
int ember_tensor_is_mapped(const ember_tensor *t);
/* 0, or -1 with a message when t is on a mapped file that shrank under
   the mapping (a SIGBUS replaced its pages with zeros: docs/internals.md,
   "Mapped files").  Bindings call it on every tensor argument. */
int ember_check_mapped(const ember_tensor *t);
/* How many such faults the process has taken (0: every check is free). */
uint64_t ember_mapping_faults(void);
/* Tensors in the order of their data in the file (begin offset). */
int ember_safetensors_count(const ember_safetensors *st);
/* Borrowed, valid until ember_safetensors_free; NULL if i is out of range. */
const char *ember_safetensors_name(const ember_safetensors *st, int i);
/* Tensor i: a new reference (release it), which outlives the handle. */
ember_tensor *ember_safetensors_tensor(const ember_safetensors *st, int i);
/* Metadata entries in header order; strings borrowed like names. */
int ember_safetensors_metadata_count(const ember_safetensors *st);
const char *ember_safetensors_metadata_key(const ember_safetensors *st, int i);
const char *ember_safetensors_metadata_value(const ember_safetensors *st,
                                             int i);
void ember_safetensors_free(ember_safetensors *st);   /* NULL is fine */

/* }==================================================================== */

/* {====================================================================
** Threads: one setting for OpenBLAS and Ember's own parallel loops.
** ===================================================================== */

void ember_set_num_threads(int n);
int ember_get_num_threads(void);
/* The OPENBLAS_CORETYPE that would give OpenBLAS the kernels this
   processor runs when OpenBLAS did not recognise it and fell back to its
   oldest ("Prescott"): "SkylakeX" (AVX-512) or "Haswell" (AVX2); NULL when
   OpenBLAS chose well, or OPENBLAS_CORETYPE is set.  The variable is read
   only when OpenBLAS loads: the `ember` executable sets it and starts
   itself again; a host sets it before it starts. */
const char *ember_blas_better_coretype(void);

/* }==================================================================== */

/* {====================================================================
** Data transforms and the batch queue (core/data_transforms.c,
** core/data_queue.c): per-image augmentation of a float32 N x C x H x W
** CPU batch, and a worker thread that builds batches ahead of a loop.
** ===================================================================== */

typedef enum {
  EMBER_TF_CROP,        /* torchvision RandomCrop(size {h, w}, padding) */
  EMBER_TF_HFLIP,       /* RandomHorizontalFlip(p) */
  EMBER_TF_NORMALIZE,   /* Normalize(mean, std), per channel */
  EMBER_TF_ROTATE       /* RandomRotation([lo, hi] degrees), bilinear */
} ember_transform_kind;
#define EMBER_TF_MAX_CHANNELS 64
typedef struct ember_transform {
  ember_transform_kind kind;
  int64_t h, w, padding;   /* crop: the window, the padding on each side */
  int reflect;             /* crop: pad by reflection, not with fill */
  double fill;             /* crop, rotate: the value outside the image */
  double p;                /* hflip: the probability of a flip */
  double lo, hi;           /* rotate: the angle's range, degrees */
  int channels;            /* normalize: 1 (all channels) or C */
  double mean[EMBER_TF_MAX_CHANNELS], std[EMBER_TF_MAX_CHANNELS];
} ember_transform;
/* The n steps on x, a new contiguous tensor.  Step s on image i draws
   from Philox at (seed, offset + i * n + s), so results do not depend on
   threads.  The _gen form uses g's state (NULL: the thread's default) and
   advances it by N * n. */
ember_tensor *ember_transforms_apply(const ember_transform *tf, int n,
                                     const ember_tensor *x, uint64_t seed,
                                     uint64_t offset);
ember_tensor *ember_transforms_apply_gen(ember_generator *g,
                                         const ember_transform *tf, int n,
                                         const ember_tensor *x);

/* Where a batch comes from: load fills out[0 .. nout) with the batch of
   the given rows (0-based here).  load runs on the queue's worker thread:
   it may only read data that the caller keeps alive and unchanged, and
   must not retain or release tensors it did not make.  release runs on
   the caller's thread when the job is collected or cancelled. */
typedef struct ember_batch_source {
  int (*load)(void *ctx, const int64_t *rows, int64_t n, ember_tensor **out);
  void (*release)(void *ctx);
  void *ctx;
  int nout;
} ember_batch_source;
/* The rows of n contiguous CPU tensors (retained until release). */
int ember_batch_rows_source(ember_tensor *const *t, int n,
                            ember_batch_source *src);

typedef struct ember_batch_queue ember_batch_queue;
ember_batch_queue *ember_batch_queue_new(void);
/* Queue a batch: src's load, then the transforms on its first tensor.
   The queue owns src from here on (also on failure). */
int ember_batch_queue_submit(ember_batch_queue *q, ember_batch_source src,
                             const int64_t *rows, int64_t n,
                             const ember_transform *tf, int ntf,
                             uint64_t seed, uint64_t offset);
/* Jobs queued and not yet collected. */
int ember_batch_queue_pending(ember_batch_queue *q);
/* Wait for the oldest job; its tensors into out (nout of them, returned),
   or -1 with the worker's error. */
int ember_batch_queue_next(ember_batch_queue *q, ember_tensor **out);
/* Drop every job: the running one is waited for, the others never run. */
void ember_batch_queue_clear(ember_batch_queue *q);
/* Clear, stop and join the worker, free (NULL is fine). */
void ember_batch_queue_free(ember_batch_queue *q);

/* }==================================================================== */

/* {====================================================================
** Byte-level BPE tokenizer (core/bpe.c): GPT-2's, as ember.data.BPE.
** Token ids are 1-based here too: GPT-2's id plus one.  Messages start
** with "BPE:", "BPE.train:", "encode:", "decode:" or "save:".
** ===================================================================== */

typedef struct ember_bpe ember_bpe;

/* A tokenizer from GPT-2's vocab.json ({"token": id}, ids 0..n-1) and
   merges.txt ("left right" per line by rank, an optional "#version" first
   line); NULL with a message naming the file and line on a bad file. */
ember_bpe *ember_bpe_load(const char *vocab_path, const char *merges_path);
/* Trained on text as Hugging Face's BpeTrainer: vocab_size tokens (256
   bytes and the merged ones), merging while the best pair occurs at least
   min_frequency times, then <|endoftext|> appended (GPT-2's layout). */
ember_bpe *ember_bpe_train(const char *text, size_t len, int64_t vocab_size,
                           int64_t min_frequency);
void ember_bpe_free(ember_bpe *bpe);                 /* NULL is fine */
int64_t ember_bpe_vocab_size(const ember_bpe *bpe);  /* with <|endoftext|> */
int64_t ember_bpe_merge_count(const ember_bpe *bpe);
/* The ids of len bytes of text (any bytes: invalid UTF-8 encodes byte by
   byte) into *ids (malloc'd, the caller frees); their count, -1 when out
   of memory.  special != 0 turns "<|endoftext|>" in the text into its
   token.  Not thread-safe on one tokenizer (a cache is updated). */
int64_t ember_bpe_encode(ember_bpe *bpe, const char *text, size_t len,
                         int special, int64_t **ids);
/* The bytes of n ids (malloc'd, NUL-terminated, *len without the NUL);
   NULL when an id is out of range. */
char *ember_bpe_decode(const ember_bpe *bpe, const int64_t *ids, int64_t n,
                       size_t *len);
/* dir/vocab.json and dir/merges.txt (the folder made if missing), each
   written to a temporary file renamed over the target. */
int ember_bpe_save(const ember_bpe *bpe, const char *dir);

/* }==================================================================== */

#ifdef __cplusplus
}
#endif

#endif
