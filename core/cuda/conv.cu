/*
** conv.cu -- 2-D convolution on the GPU: im2col + cuBLAS GEMM (the twin of
** core/cpu/conv_gemm.c).
**
** Layouts (contiguous; the core sees to it), Cg = C/groups, Og = O/groups,
** K = Cg*KH*KW, P = OH*OW:
**   x [N,C,H,W]   w [O,Cg,KH,KW]   y [N,O,OH,OW]
** The work is cut into chunks as on the CPU: several whole images, or, for
** one image too big alone, a band of its output rows [oh0, oh1), so that
** the scratch stays under CHUNK_ELEMS elements whatever the batch.  A chunk
** has cols = nb * L columns, L = (oh1-oh0)*OW per image (image b's at b*L).
**
** Forward, per chunk:
**   col [C*KH*KW, cols]   im2col of every channel (group g's K rows start
**                         at row g*K)
**   y_b,g [Og, L] = W_g [Og, K] x col_b,g [K, L]
** one strided batched GEMM over images (or groups), written straight into
** y (rows P apart), then y += b.  A 1x1 kernel with stride 1 and no padding
** needs no col: x's block is the col (lda = H*W).
**
** Backward, per chunk (gx and gw zeroed first, gb a reduction over gy):
**   gY [O, cols]          gy's rows of the chunk gathered
**   gW_g += gY_g x col_g^T           (strided batched over groups, beta 1)
**   gcol_g = W_g^T x gY_g            (into col, once gW has used it)
**   gx += col2im(gcol)               (one thread per input element)
**
** Row-major to column-major: cuBLAS reads a row-major [R,C] matrix with
** leading dimension ld as the column-major [C,R] matrix, its transpose.  So
** each row-major product X = A B is called as X^T = B^T A^T; each call
** below spells out its operands.
**
** Precision: float32 GEMMs use TF32 only when ember_cuda_allow_tf32 is set (see
** matmul.cu); the GEMMs' summation order is cuBLAS's, so results agree
** with the CPU's to rounding.  im2col, col2im, the row gathers and the
** bias add are exact copies / the CPU's sums in the CPU's order; gb is a
** tree reduction in double (the CPU: a sequential sum in double).
*/
#include <limits.h>

#include "cuda_internal.h"

/* Scratch per chunk, in elements (128 MiB in float32). */
#define CHUNK_ELEMS ((int64_t)1 << 25)

/* Batches per strided batched call (see matmul.cu). */
#define MAX_BATCH 65535

/* {======================================================================
** Kernels
** ======================================================================= */

/* A chunk: images [n0, n0+nb), output rows [oh0, oh1) of each (backend.h,
   shared with the CPU's conv_gemm.c). */
typedef ember_conv_chunk chunk;

/*
** col [C*KH*KW, cols], one thread per entry: row (c*KH + i)*KW + j, column
** b*L + (oh-oh0)*OW + ow holds x[n0+b, c, oh*sh - ph + i*dh, ow*sw - pw +
** j*dw], 0 in the padding.  Consecutive threads write consecutive columns.
*/
template <typename T>
static __global__ void im2col_kernel(T *col, const T *x, ember_conv2d_geom g,
                                     int64_t n0, int64_t oh0, int64_t L,
                                     int64_t cols, int64_t total) {
  CU_FOR(e, total) {
    int64_t r = e / cols, q = e % cols;
    int64_t j = r % g.KW, i = r / g.KW % g.KH, c = r / (g.KW * g.KH);
    int64_t b = q / L, rem = q % L;
    int64_t oh = oh0 + rem / g.OW, ow = rem % g.OW;
    int64_t h = oh * g.sh - g.ph + i * g.dh, w = ow * g.sw - g.pw + j * g.dw;
    T v = 0;
    if (h >= 0 && h < g.H && w >= 0 && w < g.W)
      v = x[(((n0 + b) * g.C + c) * g.H + h) * g.W + w];
    col[e] = v;
  }
}

/*
** The adjoint of im2col as a gather: one thread per input element of the
** chunk's images adds every col entry read from it.  Tap (i, j) of output
** (oh, ow) reads row oh*sh - ph + i*dh, so input row h is read by tap i of
** oh = (h + ph - i*dh) / sh when that divides evenly and oh falls in the
** chunk's band (columns alike).  The sum starts from gx's value and runs
** over (i, j) in increasing order: the CPU's sequence of additions.
*/
template <typename T>
static __global__ void col2im_kernel(T *gx, const T *col, ember_conv2d_geom g,
                                     int64_t n0, int64_t oh0, int64_t oh1,
                                     int64_t L, int64_t cols, int64_t total) {
  CU_FOR(e, total) {
    int64_t w = e % g.W, h = e / g.W % g.H, c = e / (g.W * g.H) % g.C;
    int64_t b = e / (g.W * g.H * g.C);
    int64_t at = n0 * g.C * g.H * g.W + e;      /* gx[n0+b, c, h, w] */
    T acc = gx[at];
    for (int64_t i = 0; i < g.KH; i++) {
      int64_t th = h + g.ph - i * g.dh;          /* = oh * sh */
      if (th < 0) break;                         /* falls as i grows */
      if (th % g.sh != 0) continue;
      int64_t oh = th / g.sh;
      if (oh < oh0 || oh >= oh1) continue;
      for (int64_t j = 0; j < g.KW; j++) {
        int64_t tw = w + g.pw - j * g.dw;        /* = ow * sw */
        if (tw < 0) break;
        if (tw % g.sw != 0) continue;
        int64_t ow = tw / g.sw;
        if (ow >= g.OW) continue;
        acc += col[((c * g.KH + i) * g.KW + j) * cols + b * L +
                   (oh - oh0) * g.OW + ow];
      }
    }
    gx[at] = acc;
  }
}

/* mat [O, cols]: row o, column b*L + q is gy[n0+b, o, oh0*OW + q], or 0
   where the mask (a ReLU-fused forward's output; NULL: none) is not > 0. */
template <typename T>
static __global__ void gather_rows_kernel(T *mat, const T *gy, const T *mask,
                                          ember_conv2d_geom g, int64_t n0,
                                          int64_t oh0, int64_t L,
                                          int64_t cols, int64_t total) {
  CU_FOR(e, total) {
    int64_t o = e / cols, q = e % cols, b = q / L, rem = q % L;
    int64_t at = ((n0 + b) * g.O + o) * (g.OH * g.OW) + oh0 * g.OW + rem;
    mat[e] = !mask || mask[at] > 0 ? gy[at] : (T)0;
  }
}

/* y[n, o, :] = y + b[o] (b may be NULL), then ReLU with relu (a NaN stays
   NaN, as ember_relu), over y's total elements (P per row). */
template <typename T>
static __global__ void finish_kernel(T *y, const T *b, int64_t O, int64_t P,
                                     int relu, int64_t total) {
  CU_FOR(e, total) {
    T v = y[e];
    if (b) v += b[e / P % O];
    if (relu) v = v > 0 ? v : (v != v ? v : (T)0);
    y[e] = v;
  }
}

/*
** gb[o] = sum over n and p of gy[n, o, p]: one block per channel (grid-
** stride over channels), each thread a strided partial sum in double, then
** a tree in shared memory.  blockDim.x must be CU_THREADS, a power of 2.
*/
template <typename T>
static __global__ void bias_grad_kernel(T *gb, const T *gy, const T *mask,
                                        int64_t N, int64_t O, int64_t P) {
  __shared__ double part[CU_THREADS];
  for (int64_t o = blockIdx.x; o < O; o += gridDim.x) {   /* block-uniform */
    double acc = 0;
    for (int64_t k = threadIdx.x; k < N * P; k += blockDim.x) {
      int64_t at = (k / P * O + o) * P + k % P;
      if (!mask || mask[at] > 0) acc += gy[at];
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = CU_THREADS / 2; s > 0; s >>= 1) {
      if ((int)threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) gb[o] = (T)part[0];
    __syncthreads();                    /* part is reused for the next o */
  }
}

static_assert((CU_THREADS & (CU_THREADS - 1)) == 0,
              "bias_grad_kernel's tree needs a power-of-2 block");

/* }====================================================================== */

/* {======================================================================
** Launchers (float or double by dt; p's are element pointers)
** ======================================================================= */

static int launch_im2col(ember_dtype dt, void *col, const void *x,
                         const ember_conv2d_geom *g, const chunk *ch) {
  int64_t L = (ch->oh1 - ch->oh0) * g->OW;
  int64_t total = g->C * g->KH * g->KW * ch->cols;
  ember_cuda_dispatch_float(dt, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    im2col_kernel<T><<<cu_blocks(total), CU_THREADS>>>(
        (T *)col, (const T *)x, *g, ch->n0, ch->oh0, L, ch->cols,
        total);
    return 0;
  });
  CU_LAUNCH_CHECK("conv2d: im2col");
  return 0;
}

static int launch_col2im(ember_dtype dt, void *gx, const void *col,
                         const ember_conv2d_geom *g, const chunk *ch) {
  int64_t L = (ch->oh1 - ch->oh0) * g->OW;
  int64_t total = ch->nb * g->C * g->H * g->W;
  ember_cuda_dispatch_float(dt, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    col2im_kernel<T><<<cu_blocks(total), CU_THREADS>>>(
        (T *)gx, (const T *)col, *g, ch->n0, ch->oh0, ch->oh1, L,
        ch->cols, total);
    return 0;
  });
  CU_LAUNCH_CHECK("conv2d_backward: col2im");
  return 0;
}

static int launch_gather_rows(ember_dtype dt, void *mat, const void *gy,
                              const void *mask, const ember_conv2d_geom *g,
                              const chunk *ch) {
  int64_t L = (ch->oh1 - ch->oh0) * g->OW, total = g->O * ch->cols;
  ember_cuda_dispatch_float(dt, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    gather_rows_kernel<T><<<cu_blocks(total), CU_THREADS>>>(
        (T *)mat, (const T *)gy, (const T *)mask, *g, ch->n0,
        ch->oh0, L, ch->cols, total);
    return 0;
  });
  CU_LAUNCH_CHECK("conv2d_backward: gather");
  return 0;
}

/* y = relu?(y + b): one pass for the bias and the fused activation */
static int finish(ember_tensor *y, const ember_tensor *b,
                  const ember_conv2d_geom *g) {
  int64_t P = g->OH * g->OW, total = g->N * g->O * P;
  ember_cuda_dispatch_float(y->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    finish_kernel<T><<<cu_blocks(total), CU_THREADS>>>(
        (T *)cu_data(y), b ? (const T *)cu_data(b) : NULL, g->O, P,
        g->relu, total);
    return 0;
  });
  CU_LAUNCH_CHECK("conv2d: bias");
  return 0;
}

static int bias_grad(ember_tensor *gb, const ember_tensor *gy,
                     const ember_tensor *mask, const ember_conv2d_geom *g) {
  int64_t P = g->OH * g->OW;
  unsigned blocks = (unsigned)(g->O < 65535 ? g->O : 65535);
  ember_cuda_dispatch_float(gb->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    bias_grad_kernel<T><<<blocks, CU_THREADS>>>(
        (T *)cu_data(gb), (const T *)cu_data(gy),
        mask ? (const T *)cu_data(mask) : NULL, g->N, g->O, P);
    return 0;
  });
  CU_LAUNCH_CHECK("conv2d_backward: bias grad");
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** GEMM
** ======================================================================= */

/* One column-major product C = op(A) op(B) + beta C (alpha 1), as cuBLAS
   takes it; pointers to the first element, sizes in elements.  The core
   has checked that every size and leading dimension fits an int. */
namespace {
struct gemm_op {
  cublasOperation_t ta, tb;
  int64_t m, n, k;
  const char *A;
  int64_t lda;
  const char *B;
  int64_t ldb;
  double beta;
  char *C;
  int64_t ldc;
};
}  /* namespace */

/* `batch` products, operand X of product t at X + t * sX (elements), in
   strided batched calls of at most MAX_BATCH. */
static int gemm_batched(cublasHandle_t h, ember_dtype dt, const gemm_op *op,
                        int64_t sA, int64_t sB, int64_t sC, int64_t batch) {
  int64_t es = (int64_t)cu_elsize(dt);
  for (int64_t t0 = 0; t0 < batch; t0 += MAX_BATCH) {
    int nb = (int)(batch - t0 < MAX_BATCH ? batch - t0 : MAX_BATCH);
    const char *A = op->A + t0 * sA * es, *B = op->B + t0 * sB * es;
    char *C = op->C + t0 * sC * es;
    if (dt == EMBER_FLOAT32) {
      const float one = 1.0f, beta = (float)op->beta;
      CUBLAS_CHECK(cublasSgemmStridedBatched(
          h, op->ta, op->tb, (int)op->m, (int)op->n, (int)op->k, &one,
          (const float *)A, (int)op->lda, sA, (const float *)B, (int)op->ldb,
          sB, &beta, (float *)C, (int)op->ldc, sC, nb));
    } else {
      const double one = 1.0, beta = op->beta;
      CUBLAS_CHECK(cublasDgemmStridedBatched(
          h, op->ta, op->tb, (int)op->m, (int)op->n, (int)op->k, &one,
          (const double *)A, (int)op->lda, sA, (const double *)B,
          (int)op->ldb, sB, &beta, (double *)C, (int)op->ldc, sC, nb));
    }
  }
  return 0;
}

/*
** n1 x n2 products laid out at fixed strides along two axes (images and
** groups): s1 = {sA, sB, sC} steps along the first, s2 along the second.
** One batched call per step of the shorter axis, batched over the longer.
*/
static int gemm_grid(cublasHandle_t h, ember_dtype dt, const gemm_op *op,
                     int64_t n1, const int64_t s1[3], int64_t n2,
                     const int64_t s2[3]) {
  if (n1 < n2) {                             /* batch over the longer */
    int64_t tn = n1; n1 = n2; n2 = tn;
    const int64_t *ts = s1; s1 = s2; s2 = ts;
  }
  int64_t es = (int64_t)cu_elsize(dt);
  for (int64_t t = 0; t < n2; t++) {
    gemm_op o = *op;
    o.A += t * s2[0] * es;
    o.B += t * s2[1] * es;
    o.C += t * s2[2] * es;
    if (gemm_batched(h, dt, &o, s1[0], s1[1], s1[2], n1) < 0) return -1;
  }
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Chunks
** ======================================================================= */

/* Device scratch of rows * cols elements, or NULL after cu_error. */
static void *scratch(int64_t rows, int64_t cols, size_t es, const char *fn) {
  if (rows > INT64_MAX / (int64_t)es / cols) {
    cu_error("%s: out of memory for the im2col buffer", fn);
    return NULL;
  }
  return ember_cuda_alloc((size_t)(rows * cols) * es);
}

/* }====================================================================== */

/* {======================================================================
** The kernels of the table
** ======================================================================= */

/* y's GEMMs, chunk by chunk; col is NULL for a pointwise conv. */
static int conv_forward(ember_tensor *y, const ember_tensor *x,
                        const ember_tensor *w, const ember_conv2d_geom *g,
                        char *col, int64_t B, int64_t band) {
  ember_dtype dt = x->dtype;
  int64_t es = (int64_t)cu_elsize(dt);
  int64_t Cg = g->C / g->groups, Og = g->O / g->groups;
  int64_t K = Cg * g->KH * g->KW, P = g->OH * g->OW, HW = g->H * g->W;
  cublasHandle_t h = ember_cuda_cublas();
  if (!h || cu_cublas_mode(h, dt) < 0) return -1;
  chunk ch = {0, 0, 0, 0, 0};
  while (ember_conv_next_chunk(&ch, B, band, g)) {
    int64_t L = (ch.oh1 - ch.oh0) * g->OW;
    /*
    ** y_b,g^T [L, Og] = col_b,g^T [L, K] x W_g^T [K, Og], column-major:
    **   A = col_b,g^T: col is row-major [C*KH*KW, cols], i.e. column-major
    **       [cols, C*KH*KW] with ld cols; group g's rows start at g*K,
    **       image b's columns at b*L: OP_N, m = L, k = K, lda = cols >= L.
    **       Pointwise: x[n0+b, g*Cg + c, oh0*OW + q] at q + c*HW, lda = HW.
    **   B = W_g^T: w_g row-major [Og, K] is column-major [K, Og] with
    **       ld K: OP_N, n = Og, ldb = K.
    **   C = y_b,g^T: y[n0+b, g*Og + o, oh0*OW + q] at q + o*P, ldc = P >= L.
    */
    gemm_op op;
    op.ta = CUBLAS_OP_N;
    op.tb = CUBLAS_OP_N;
    op.m = L;
    op.n = Og;
    op.k = K;
    op.B = (const char *)cu_data(w);
    op.ldb = K;
    op.beta = 0;
    op.C = (char *)cu_data(y) + (ch.n0 * g->O * P + ch.oh0 * g->OW) * es;
    op.ldc = P;
    int64_t s_img[3], s_grp[3];
    if (col) {
      if (launch_im2col(dt, col, cu_data(x), g, &ch) < 0) return -1;
      op.A = col;
      op.lda = ch.cols;
      s_img[0] = L;
      s_grp[0] = K * ch.cols;
    } else {
      op.A = (const char *)cu_data(x) +
             (ch.n0 * g->C * HW + ch.oh0 * g->OW) * es;
      op.lda = HW;
      s_img[0] = g->C * HW;
      s_grp[0] = Cg * HW;
    }
    s_img[1] = 0;                  /* every image: the same weights */
    s_grp[1] = Og * K;
    s_img[2] = g->O * P;
    s_grp[2] = Og * P;
    if (gemm_grid(h, dt, &op, ch.nb, s_img, g->groups, s_grp) < 0) return -1;
  }
  return 0;
}

int ember_cuda_conv2d(ember_tensor *y, const ember_tensor *x,
                      const ember_tensor *w, const ember_tensor *b,
                      const ember_conv2d_geom *g) {
  size_t es = cu_elsize(x->dtype);
  int64_t rows = g->C * g->KH * g->KW, B, band;
  if (g->N == 0) return 0;                   /* y is empty */
  int64_t most = ember_conv_plan(g, rows, CHUNK_ELEMS, &B, &band);
  char *col = NULL;
  if (!ember_conv_pointwise(g) && !(col = (char *)scratch(rows, most, es, "conv2d")))
    return -1;
  int rc = conv_forward(y, x, w, g, col, B, band);
  if (col) ember_cuda_free(col);
  if (rc == 0 && (b || g->relu)) rc = finish(y, b, g);
  return rc;
}

/* gw's and gx's GEMMs and col2im, chunk by chunk, with col [C*KH*KW,
   most] and mat [O, most] scratch. */
static int conv_backward(ember_tensor *gx, ember_tensor *gw,
                         const ember_tensor *gy, const ember_tensor *mask,
                         const ember_tensor *x,
                         const ember_tensor *w, const ember_conv2d_geom *g,
                         char *col, char *mat, int64_t B, int64_t band) {
  ember_dtype dt = x->dtype;
  int64_t Og = g->O / g->groups, K = g->C / g->groups * g->KH * g->KW;
  cublasHandle_t h = ember_cuda_cublas();
  if (!h || cu_cublas_mode(h, dt) < 0) return -1;
  chunk ch = {0, 0, 0, 0, 0};
  const int64_t none[3] = {0, 0, 0};
  while (ember_conv_next_chunk(&ch, B, band, g)) {
    if (launch_gather_rows(dt, mat, cu_data(gy), mask ? cu_data(mask) : NULL,
                           g, &ch) < 0)
      return -1;
    if (gw) {
      /*
      ** gW_g^T [K, Og] += col_g [K, cols] x gY_g^T [cols, Og]:
      **   A = col_g: row-major [K, cols] is column-major [cols, K] (ld
      **       cols), so OP_T; m = K, k = cols, lda = cols >= k.
      **   B = gY_g^T: mat's rows g*Og.. are row-major [Og, cols], i.e.
      **       column-major [cols, Og] with ld cols: OP_N, n = Og.
      **   C = gW_g^T: gw_g row-major [Og, K] is column-major [K, Og], ld K.
      ** Batched over groups; beta 1 accumulates over chunks (gw zeroed).
      */
      if (launch_im2col(dt, col, cu_data(x), g, &ch) < 0) return -1;
      gemm_op op = {CUBLAS_OP_T, CUBLAS_OP_N, K, Og, ch.cols,
                    col, ch.cols, mat, ch.cols,
                    1.0, (char *)cu_data(gw), K};
      const int64_t s_grp[3] = {K * ch.cols, Og * ch.cols, Og * K};
      if (gemm_grid(h, dt, &op, g->groups, s_grp, 1, none) < 0) return -1;
    }
    if (gx) {
      /*
      ** gcol_g^T [cols, K] = gY_g^T [cols, Og] x W_g [Og, K]:
      **   A = gY_g^T: column-major [cols, Og] with ld cols (as above):
      **       OP_N, m = cols, k = Og.
      **   B = W_g: w_g row-major [Og, K] is column-major [K, Og] = W_g^T
      **       with ld K, so OP_T; n = K, ldb = K >= n.
      **   C = gcol_g^T: col's rows g*K.. row-major [K, cols], i.e.
      **       column-major [cols, K] with ldc = cols.
      ** Batched over groups, then col2im adds gcol into gx.
      */
      gemm_op op = {CUBLAS_OP_N, CUBLAS_OP_T, ch.cols, K, Og,
                    mat, ch.cols, (const char *)cu_data(w), K,
                    0.0, col, ch.cols};
      const int64_t s_grp[3] = {Og * ch.cols, Og * K, K * ch.cols};
      if (gemm_grid(h, dt, &op, g->groups, s_grp, 1, none) < 0) return -1;
      if (launch_col2im(dt, cu_data(gx), col, g, &ch) < 0) return -1;
    }
  }
  return 0;
}

int ember_cuda_conv2d_backward(ember_tensor *gx, ember_tensor *gw,
                               ember_tensor *gb, const ember_tensor *gy,
                               const ember_tensor *mask, const ember_tensor *x,
                               const ember_tensor *w, const ember_conv2d_geom *g) {
  size_t es = cu_elsize(x->dtype);
  int64_t ckk = g->C * g->KH * g->KW, B, band;
  /* gw accumulates over the chunks and col2im adds into gx: start at 0 */
  if (gx && g->N > 0)
    CU_CHECK(cudaMemsetAsync(cu_data(gx), 0,
                             (size_t)(g->N * g->C * g->H * g->W) * es));
  if (gw)
    CU_CHECK(cudaMemsetAsync(cu_data(gw), 0,
                             (size_t)(g->O * (ckk / g->groups)) * es));
  if (gb && bias_grad(gb, gy, mask, g) < 0) return -1;
  if ((!gx && !gw) || g->N == 0) return 0;
  int64_t most = ember_conv_plan(g, ckk + g->O, CHUNK_ELEMS, &B, &band);
  char *col = (char *)scratch(ckk, most, es, "conv2d_backward");
  if (!col) return -1;
  char *mat = (char *)scratch(g->O, most, es, "conv2d_backward");
  if (!mat) {
    ember_cuda_free(col);
    return -1;
  }
  int rc = conv_backward(gx, gw, gy, mask, x, w, g, col, mat, B, band);
  ember_cuda_free(mat);
  ember_cuda_free(col);
  return rc;
}

/* }====================================================================== */
