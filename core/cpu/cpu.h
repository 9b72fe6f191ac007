/*
** cpu.h -- internals of the CPU backend.
**
** Elementwise kernels walk their operands with `ember_cpu_iter`: the
** operands share a shape; the iterator merges dimensions that are laid out
** contiguously for every operand and drops size-1 dimensions, so a
** contiguous tensor is one long row whatever its shape.  A row function
** then runs the innermost loop, where the compiler can vectorise.
*/
#ifndef EMBER_CPU_H
#define EMBER_CPU_H

#include "../backend.h"
#include "../half.h"

#define EMBER_CPU_MAXOPS 4

typedef struct ember_cpu_iter {
  int nops;
  int ndim;                                 /* after merging; >= 1 */
  int64_t shape[EMBER_MAX_DIMS];
  int64_t strides[EMBER_CPU_MAXOPS][EMBER_MAX_DIMS]; /* in bytes */
  char *base[EMBER_CPU_MAXOPS];             /* first element of each */
} ember_cpu_iter;

/* Called for each row: p[k] is operand k's first element in the row,
   st[k] its stride in bytes, n the row's length. */
typedef void (*ember_cpu_row_fn)(char **p, const int64_t *st, int64_t n,
                                 void *ctx);

void ember_cpu_iter_init(ember_cpu_iter *it, int nops,
                         const ember_tensor *const *ops);
/* Run fn over every row, on several threads when the work is large. */
void ember_cpu_iter_run(const ember_cpu_iter *it, ember_cpu_row_fn fn,
                        void *ctx);
/* The same, for iterators whose every element stands for `work`
   elements of work (a reduction or softmax over rows of that length, run
   over the outer elements): the threading threshold counts total work, so
   4096 rows of 64 use the threads as one row of 262144 would. */
void ember_cpu_iter_run_work(const ember_cpu_iter *it, ember_cpu_row_fn fn,
                             void *ctx, int64_t work);

/*
** EMBER_SIMD: put on a hot loop's function to have it compiled once for
** x86-64-v4 (AVX-512), once for v3 (AVX2 + FMA) and once for the baseline,
** the best of which the loader picks for the CPU at hand (GCC/clang
** target_clones, x86-64 ELF).  The build's -std=c11 keeps a*b+c unfused
** (-ffp-contract=off), so every clone gives the same bits; a kernel that
** wants fused multiply-adds says so with fmaf(), which is exact everywhere
** (and slow only on the pre-2013 CPUs that run the baseline clone).  OpenMP outlines parallel regions into
** separate functions that are not cloned: put the attribute on a function
** that a parallel loop calls on a range, not on the function holding the
** pragma.
*/
#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__)) && !defined(EMBER_NO_SIMD_CLONES)
#define EMBER_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EMBER_SIMD
#endif

/* EMBER_ALWAYS_INLINE: a loop helper called with constant options, to be
   compiled into each caller (and each of its EMBER_SIMD clones) with those
   options folded in.  EMBER_NOINLINE: a cold path kept out of its hot
   caller (its stack frame, say). */
#if defined(__GNUC__) || defined(__clang__)
#define EMBER_ALWAYS_INLINE inline __attribute__((always_inline))
#define EMBER_NOINLINE __attribute__((noinline))
#else
#define EMBER_ALWAYS_INLINE inline
#define EMBER_NOINLINE
#endif

/* What the processor runs of Ember's own kernels (backend.c; asked once):
   EMBER_CPU_AVX512 (AVX-512 F and BW: every kernel written for
   AVX-512) and EMBER_CPU_AVX512_BF16 (VDPBF16PS), or'ed. */
enum { EMBER_CPU_AVX512 = 1, EMBER_CPU_AVX512_BF16 = 2 };
int ember_cpu_features(void);

/* Threads for Ember's own loops (threads.c). */
int ember_cpu_threads(void);
/* Below this many elements a loop runs on one thread. */
#define EMBER_CPU_PARALLEL_MIN 32768

/* float32 <-> bfloat16/float16, n contiguous elements (half.c); the
   half_ forms take the 16-bit type as dt */
void ember_cpu_bf16_from_f32(uint16_t *d, const float *s, int64_t n);
void ember_cpu_f32_from_bf16(float *d, const uint16_t *s, int64_t n);
void ember_cpu_f16_from_f32(uint16_t *d, const float *s, int64_t n);
void ember_cpu_f32_from_f16(float *d, const uint16_t *s, int64_t n);
void ember_cpu_half_to_f32(float *d, const void *s, int64_t n, ember_dtype dt);
void ember_cpu_half_from_f32(void *d, const float *s, int64_t n, ember_dtype dt);

/* The kernels of the table (backend.c), one file per concern. */
int ember_cpu_copy(ember_tensor *dst, const ember_tensor *src);
int ember_cpu_fill(ember_tensor *dst, double value, int64_t ivalue);
int ember_cpu_arange(ember_tensor *dst, double start, double step);
int ember_cpu_unary(ember_unary_op op, ember_tensor *dst,
                    const ember_tensor *src, double p0, double p1);
int ember_cpu_binary(ember_binary_op op, ember_tensor *dst,
                     const ember_tensor *a, const ember_tensor *b);
int ember_cpu_compare(ember_cmp_op op, ember_tensor *dst,
                      const ember_tensor *a, const ember_tensor *b);
int ember_cpu_where(ember_tensor *dst, const ember_tensor *cond,
                    const ember_tensor *a, const ember_tensor *b);
int ember_cpu_reduce(ember_reduce_op op, ember_tensor *dst,
                     const ember_tensor *src, int correction);
int ember_cpu_softmax(ember_tensor *dst, const ember_tensor *src, int log);
int ember_cpu_softmax_backward(ember_tensor *dx, const ember_tensor *g,
                               const ember_tensor *y, int log);
/* rnn.c */
int ember_cpu_lstm_cell(ember_tensor *hc, ember_tensor *act,
                        const ember_tensor *gates, const ember_tensor *c_prev);
int ember_cpu_lstm_cell_backward(ember_tensor *dgates, ember_tensor *dc_prev,
                                 const ember_tensor *dhc, const ember_tensor *act,
                                 const ember_tensor *c_prev, const ember_tensor *hc);
int ember_cpu_gru_cell(ember_tensor *hn, ember_tensor *act, const ember_tensor *gx,
                       const ember_tensor *gh, const ember_tensor *h);
int ember_cpu_gru_cell_backward(ember_tensor *dgx, ember_tensor *dgh, ember_tensor *dh,
                                const ember_tensor *g, const ember_tensor *act,
                                const ember_tensor *gh, const ember_tensor *h);

/* norm.c */
int ember_cpu_layer_norm(ember_tensor *y, ember_tensor *mean, ember_tensor *rstd,
                         const ember_tensor *x, const ember_tensor *w,
                         const ember_tensor *b, int64_t n, double eps, int rms);
int ember_cpu_layer_norm_backward(ember_tensor *dx, ember_tensor *dw,
                                  ember_tensor *db, const ember_tensor *g,
                                  const ember_tensor *x,
                                  const ember_tensor *mean,
                                  const ember_tensor *rstd,
                                  const ember_tensor *w, int64_t n, int rms);
/* loss.c */
int ember_cpu_cross_entropy(ember_tensor *loss, ember_tensor *wt,
                            ember_tensor *lse, const ember_tensor *x,
                            const ember_tensor *t, const ember_tensor *w,
                            int64_t ignore, double smoothing);
int ember_cpu_cross_entropy_backward(ember_tensor *dx, const ember_tensor *gs,
                                     const ember_tensor *x,
                                     const ember_tensor *lse,
                                     const ember_tensor *t,
                                     const ember_tensor *w, int64_t ignore,
                                     double smoothing);
int ember_cpu_sort(ember_tensor *values, ember_tensor *indices,
                   const ember_tensor *src, int dim, int64_t k,
                   int descending);
int ember_cpu_scan(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                   const ember_tensor *src, int dim, int reverse);
int ember_cpu_matmul(ember_tensor *dst, const ember_tensor *a,
                     const ember_tensor *b);
int ember_cpu_index_select(ember_tensor *dst, const ember_tensor *src, int dim,
                           const ember_tensor *index);
int ember_cpu_gather(ember_tensor *dst, const ember_tensor *src, int dim,
                     const ember_tensor *index);
int ember_cpu_unary_backward(ember_unary_op op, ember_tensor *dst,
                             const ember_tensor *g, const ember_tensor *s,
                             double p0, double p1);
int ember_cpu_index_add(ember_tensor *dst, int dim, const ember_tensor *index,
                        const ember_tensor *src);
int ember_cpu_index_copy(const char *fn, ember_tensor *dst, int dim, const ember_tensor *index,
                         const ember_tensor *src);
int ember_cpu_scatter_add(ember_tensor *dst, int dim,
                          const ember_tensor *index, const ember_tensor *src);
int ember_cpu_check_index(const ember_tensor *idx, int64_t lo, int64_t hi,
                          int has_skip, int64_t skip, const char *prefix,
                          const char *suffix);
int ember_cpu_scatter(ember_scatter_reduce op, ember_tensor *dst, int dim,
                      const ember_tensor *index, const ember_tensor *src);
int ember_cpu_nonzero(ember_tensor *dst, const ember_tensor *cs, int ndim,
                      const int64_t *shape);
int ember_cpu_random(int kind, ember_tensor *dst, uint64_t seed,
                     uint64_t counter, double a, double b);
/* sampling.c */
int ember_cpu_multinomial(ember_tensor *dst, const ember_tensor *probs,
                          int replacement, uint64_t seed, uint64_t counter);
/* optim.c: fused optimizer steps */
int ember_cpu_sgd_step(ember_tensor *p, const ember_tensor *g,
                       ember_tensor *buf, const ember_optim_hp *hp);
int ember_cpu_adam_step(ember_tensor *p, const ember_tensor *g,
                        ember_tensor *m, ember_tensor *v, ember_tensor *vmax,
                        const ember_optim_hp *hp);
int ember_cpu_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                           ember_tensor *sq, ember_tensor *buf,
                           ember_tensor *gavg, const ember_optim_hp *hp);
int ember_cpu_adagrad_step(ember_tensor *p, const ember_tensor *g,
                           ember_tensor *sum, const ember_optim_hp *hp);

/* matmul.c: C [M,N] (row-major, rows ldc apart) = op(A) op(B), plus C
   with accumulate; row-major A and B with leading dimensions as cblas's,
   ta/tb their transposes.  Ember's AVX-512 kernels where the shape suits
   them, else OpenBLAS.  threads: 0 inside a parallel region (one thread). */
void ember_cpu_sgemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
                     const float *A, int64_t lda, const float *B, int64_t ldb,
                     int accumulate, float *C, int64_t ldc, int threads);
/* gemm_half.c: the same product for bfloat16 or float16 A and B (dt):
   float32 accumulation into a float32 C, which the caller rounds (or
   keeps).  -1 with the error set when out of memory. */
int ember_cpu_gemm_half(ember_dtype dt, int ta, int tb, int64_t M, int64_t N,
                        int64_t K, const void *A, int64_t lda, const void *B,
                        int64_t ldb, int accumulate, float *C, int64_t ldc,
                        int threads);
/* attention.c: the fused attention slots */
int ember_cpu_attention(ember_tensor *o, ember_tensor *lse,
                        const ember_tensor *q, const ember_tensor *k,
                        const ember_tensor *v, const ember_tensor *mask,
                        const ember_attention_geom *g);
int ember_cpu_attention_backward(ember_tensor *gq, ember_tensor *gk,
                                 ember_tensor *gv, const ember_tensor *go,
                                 const ember_tensor *q, const ember_tensor *k,
                                 const ember_tensor *v, const ember_tensor *o,
                                 const ember_tensor *lse,
                                 const ember_tensor *mask,
                                 const ember_attention_geom *g);
/* conv_gemm.c (the entry points; conv.h: the two paths inside) */
int ember_cpu_conv2d(ember_tensor *y, const ember_tensor *x,
                     const ember_tensor *w, const ember_tensor *b,
                     const ember_conv2d_geom *g);
int ember_cpu_conv2d_backward(ember_tensor *gx, ember_tensor *gw,
                              ember_tensor *gb, const ember_tensor *gy,
                              const ember_tensor *mask, const ember_tensor *x,
                              const ember_tensor *w, const ember_conv2d_geom *g);
/* pool.c */
int ember_cpu_max_pool2d(ember_tensor *y, ember_tensor *idx,
                         const ember_tensor *x, const ember_pool2d_geom *g);
int ember_cpu_max_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                  const ember_tensor *idx,
                                  const ember_pool2d_geom *g);
int ember_cpu_avg_pool2d(ember_tensor *y, const ember_tensor *x,
                         const ember_pool2d_geom *g);
int ember_cpu_avg_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                  const ember_pool2d_geom *g);


/* half_adapt.c: the slots above for bfloat16 and float16 operands too
   (run in float32 on widened twins; the table points at these) */
int ember_cpu_h_unary(ember_unary_op op, ember_tensor *dst,
                      const ember_tensor *src, double p0, double p1);
int ember_cpu_h_binary(ember_binary_op op, ember_tensor *dst,
                       const ember_tensor *a, const ember_tensor *b);
int ember_cpu_h_compare(ember_cmp_op op, ember_tensor *dst,
                        const ember_tensor *a, const ember_tensor *b);
int ember_cpu_h_where(ember_tensor *dst, const ember_tensor *cond,
                      const ember_tensor *a, const ember_tensor *b);
int ember_cpu_h_reduce(ember_reduce_op op, ember_tensor *dst,
                       const ember_tensor *src, int correction);
int ember_cpu_h_softmax(ember_tensor *dst, const ember_tensor *src, int log);
int ember_cpu_h_softmax_backward(ember_tensor *dx, const ember_tensor *g,
                                 const ember_tensor *y, int log);
int ember_cpu_h_layer_norm(ember_tensor *y, ember_tensor *mean,
                           ember_tensor *rstd, const ember_tensor *x,
                           const ember_tensor *w, const ember_tensor *b,
                           int64_t n, double eps, int rms);
int ember_cpu_h_layer_norm_backward(ember_tensor *dx, ember_tensor *dw,
                                    ember_tensor *db, const ember_tensor *g,
                                    const ember_tensor *x,
                                    const ember_tensor *mean,
                                    const ember_tensor *rstd,
                                    const ember_tensor *w, int64_t n, int rms);
int ember_cpu_h_lstm_cell(ember_tensor *hc, ember_tensor *act,
                          const ember_tensor *gates, const ember_tensor *c_prev);
int ember_cpu_h_lstm_cell_backward(ember_tensor *dgates, ember_tensor *dc_prev,
                                   const ember_tensor *dhc, const ember_tensor *act,
                                   const ember_tensor *c_prev, const ember_tensor *hc);
int ember_cpu_h_gru_cell(ember_tensor *hn, ember_tensor *act, const ember_tensor *gx,
                         const ember_tensor *gh, const ember_tensor *h);
int ember_cpu_h_gru_cell_backward(ember_tensor *dgx, ember_tensor *dgh,
                                  ember_tensor *dh, const ember_tensor *g,
                                  const ember_tensor *act, const ember_tensor *gh,
                                  const ember_tensor *h);
int ember_cpu_h_cross_entropy(ember_tensor *loss, ember_tensor *wt,
                              ember_tensor *lse, const ember_tensor *x,
                              const ember_tensor *t, const ember_tensor *w,
                              int64_t ignore, double smoothing);
int ember_cpu_h_cross_entropy_backward(ember_tensor *dx, const ember_tensor *gs,
                                       const ember_tensor *x, const ember_tensor *lse,
                                       const ember_tensor *t, const ember_tensor *w,
                                       int64_t ignore, double smoothing);
int ember_cpu_h_random(int kind, ember_tensor *dst, uint64_t seed,
                       uint64_t counter, double a, double b);
int ember_cpu_h_multinomial(ember_tensor *dst, const ember_tensor *probs,
                            int replacement, uint64_t seed, uint64_t counter);
int ember_cpu_h_unary_backward(ember_unary_op op, ember_tensor *dst,
                               const ember_tensor *g, const ember_tensor *sv,
                               double p0, double p1);
int ember_cpu_h_index_add(ember_tensor *dst, int dim, const ember_tensor *index,
                          const ember_tensor *src);
int ember_cpu_h_scatter_add(ember_tensor *dst, int dim, const ember_tensor *index,
                            const ember_tensor *src);
int ember_cpu_h_scatter(ember_scatter_reduce op, ember_tensor *dst, int dim,
                        const ember_tensor *index, const ember_tensor *src);
int ember_cpu_h_sgd_step(ember_tensor *p, const ember_tensor *g,
                         ember_tensor *buf, const ember_optim_hp *hp);
int ember_cpu_h_adam_step(ember_tensor *p, const ember_tensor *g, ember_tensor *m,
                          ember_tensor *v, ember_tensor *vmax,
                          const ember_optim_hp *hp);
int ember_cpu_h_rmsprop_step(ember_tensor *p, const ember_tensor *g,
                             ember_tensor *sq, ember_tensor *buf,
                             ember_tensor *gavg, const ember_optim_hp *hp);
int ember_cpu_h_adagrad_step(ember_tensor *p, const ember_tensor *g,
                             ember_tensor *sum, const ember_optim_hp *hp);
int ember_cpu_h_max_pool2d(ember_tensor *y, ember_tensor *idx, const ember_tensor *x,
                           const ember_pool2d_geom *g);
int ember_cpu_h_max_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                    const ember_tensor *idx,
                                    const ember_pool2d_geom *g);
int ember_cpu_h_avg_pool2d(ember_tensor *y, const ember_tensor *x,
                           const ember_pool2d_geom *g);
int ember_cpu_h_avg_pool2d_backward(ember_tensor *gx, const ember_tensor *gy,
                                    const ember_pool2d_geom *g);
int ember_cpu_h_scan(ember_scan_op op, ember_tensor *dst, ember_tensor *idx,
                     const ember_tensor *src, int dim, int reverse);
int ember_cpu_h_sort(ember_tensor *values, ember_tensor *indices,
                     const ember_tensor *src, int dim, int64_t k, int descending);

#endif
