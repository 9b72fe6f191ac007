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
** deterministic two-pass reduction in double over chunks spread across
** the chip (the CPU: a sequential sum in double).  im2col, col2im and the
** bias gradient index with 32-bit fast division when the sizes allow
** (index_math.h).
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
** col [C*KH*KW, cols], one thread per entry: row (c*KH + i)*KW + j,
** column b*L + (oh-oh0)*OW + ow holds x[n0+b, c, oh*sh - ph + i*dh, ow*sw - pw +
** j*dw], 0 in the padding.  Consecutive threads write consecutive columns.
** The entry's coordinates come from ix (index_math.h: IDX = uint32_t, fast
** division, when the entries' count fits); the rest is in int64.
*/
template <typename T, typename IDX>
static __global__ void im2col_kernel(T *col, const T *x, ember_conv2d_geom g,
                                     cu_im2col_ix<IDX> ix, int64_t n0,
                                     int64_t oh0, IDX total) {
  CU_FOR_T(IDX, e, total) {
    IDX c, i, j, b, ohr, ow;
    ix.at(e, &c, &i, &j, &b, &ohr, &ow);
    int64_t h = (oh0 + (int64_t)ohr) * g.sh - g.ph + (int64_t)i * g.dh;
    int64_t w = (int64_t)ow * g.sw - g.pw + (int64_t)j * g.dw;
    T v = 0;
    if (h >= 0 && h < g.H && w >= 0 && w < g.W)
      v = x[(((n0 + (int64_t)b) * g.C + (int64_t)c) * g.H + h) * g.W + w];
    col[e] = v;
  }
}

/*
** The adjoint of im2col as a gather: one thread per input element of the
** chunk's images adds every col entry read from it.  Tap (i, j) of output
** (oh, ow) reads row oh*sh - ph + i*dh, so input row h is read by tap i of
** oh = (h + ph - i*dh) / sh when that divides evenly and oh falls in the
** chunk's band (columns alike).  The sum starts from gx's value and runs
** over (i, j) in increasing order: the CPU's sequence of additions.  The
** element's coordinates and the divisions by the strides come from ix
** (index_math.h, 32-bit fast division when it fits).
*/
template <typename T, typename IDX>
static __global__ void col2im_kernel(T *gx, const T *col, ember_conv2d_geom g,
                                     cu_col2im_ix<IDX> ix, int64_t n0,
                                     int64_t oh0, int64_t oh1, int64_t L,
                                     int64_t cols, IDX total) {
  CU_FOR_T(IDX, e, total) {
    IDX bi, ci, hi, wi;
    ix.at(e, &bi, &ci, &hi, &wi);
    int64_t b = bi, c = ci, h = hi, w = wi;
    int64_t at = n0 * g.C * g.H * g.W + (int64_t)e;  /* gx[n0+b, c, h, w] */
    T acc = gx[at];
    for (int64_t i = 0; i < g.KH; i++) {
      int64_t th = h + g.ph - i * g.dh;          /* = oh * sh */
      if (th < 0) break;                         /* falls as i grows */
      cu_qr<IDX> qh = ix.sh.divmod((IDX)th);
      if (qh.r != 0) continue;
      int64_t oh = qh.q;
      if (oh < oh0 || oh >= oh1) continue;
      for (int64_t j = 0; j < g.KW; j++) {
        int64_t tw = w + g.pw - j * g.dw;        /* = ow * sw */
        if (tw < 0) break;
        cu_qr<IDX> qw = ix.sw.divmod((IDX)tw);
        if (qw.r != 0) continue;
        int64_t ow = qw.q;
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
** gb[o] = sum over n and p of gy[n, o, p], in two deterministic passes
** (no atomics: the same sums in the same order on every run).  Channel o's
** N*P terms (k = n*P + p) are cut into `chunks` chunks of clen so that
** about BIAS_BLOCKS blocks work, however few channels there are; block
** o*chunks + c sums chunk c of channel o (each thread a strided partial
** sum in double, then a tree in shared memory) into part[o*chunks + c];
** then one thread per channel adds its chunks' sums in order.  k's (n, p)
** come from a fast divider by P (32-bit when N*P fits).  blockDim.x must
** be CU_THREADS, a power of 2.
*/
#define BIAS_BLOCKS 1024        /* ~8 blocks of 256 per SM of a 132-SM H100 */
#define BIAS_MIN_CHUNK 2048     /* terms per block at least */

template <typename T, typename IDX>
static __global__ void bias_part_kernel(double *part, const T *gy,
                                        const T *mask, int64_t O,
                                        cu_divider<IDX> P, IDX NP,
                                        int64_t chunks, IDX clen) {
  __shared__ double red[CU_THREADS];
  for (int64_t blk = blockIdx.x; blk < O * chunks; blk += gridDim.x) {
    int64_t o = blk / chunks, c = blk % chunks;          /* block-uniform */
    IDX lo = (IDX)c * clen, hi = NP - lo < clen ? NP : lo + clen;
    double acc = 0;
    for (IDX k = lo + threadIdx.x; k < hi; k += blockDim.x) {
      cu_qr<IDX> np = P.divmod(k);                       /* (n, p) */
      int64_t at = ((int64_t)np.q * O + o) * (int64_t)P.d + (int64_t)np.r;
      if (!mask || mask[at] > 0) acc += gy[at];
    }
    red[threadIdx.x] = acc;
    __syncthreads();
    for (int s = CU_THREADS / 2; s > 0; s >>= 1) {
      if ((int)threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) part[blk] = red[0];
    __syncthreads();                    /* red is reused for the next blk */
  }
}

template <typename T>
static __global__ void bias_final_kernel(T *gb, const double *part, int64_t O,
                                         int64_t chunks) {
  CU_FOR(o, O) {
    double acc = 0;
    for (int64_t c = 0; c < chunks; c++) acc += part[o * chunks + c];
    gb[o] = (T)acc;
  }
}

static_assert((CU_THREADS & (CU_THREADS - 1)) == 0,
              "bias_part_kernel's tree needs a power-of-2 block");

/* }====================================================================== */

/* {======================================================================
** Launchers (float or double by dt; p's are element pointers)
** ======================================================================= */

template <typename T, typename IDX>
static void im2col_run(T *col, const T *x, const ember_conv2d_geom *g,
                       const chunk *ch, int64_t L, int64_t total) {
  im2col_kernel<T, IDX><<<cu_blocks(total), CU_THREADS>>>(
      col, x, *g, cu_im2col_ix_of<IDX>(g->KH, g->KW, ch->cols, L, g->OW),
      ch->n0, ch->oh0, (IDX)total);
}

static int launch_im2col(ember_dtype dt, void *col, const void *x,
                         const ember_conv2d_geom *g, const chunk *ch) {
  int64_t L = (ch->oh1 - ch->oh0) * g->OW;
  int64_t total = g->C * g->KH * g->KW * ch->cols;
  if (total == 0) return 0;
  ember_cuda_dispatch_float(dt, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    if (cu_im2col_fits32(total))
      im2col_run<T, uint32_t>((T *)col, (const T *)x, g, ch, L, total);
    else
      im2col_run<T, uint64_t>((T *)col, (const T *)x, g, ch, L, total);
    return 0;
  });
  CU_LAUNCH_CHECK("conv2d: im2col");
  return 0;
}

template <typename T, typename IDX>
static void col2im_run(T *gx, const T *col, const ember_conv2d_geom *g,
                       const chunk *ch, int64_t L, int64_t total) {
  col2im_kernel<T, IDX><<<cu_blocks(total), CU_THREADS>>>(
      gx, col, *g, cu_col2im_ix_of<IDX>(g->C, g->H, g->W, g->sh, g->sw),
      ch->n0, ch->oh0, ch->oh1, L, ch->cols, (IDX)total);
}

static int launch_col2im(ember_dtype dt, void *gx, const void *col,
                         const ember_conv2d_geom *g, const chunk *ch) {
  int64_t L = (ch->oh1 - ch->oh0) * g->OW;
  int64_t total = ch->nb * g->C * g->H * g->W;
  if (total == 0) return 0;
  bool fits = cu_col2im_fits32(total, g->H, g->W, g->ph, g->pw, g->sh, g->sw);
  ember_cuda_dispatch_float(dt, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    if (fits)
      col2im_run<T, uint32_t>((T *)gx, (const T *)col, g, ch, L, total);
    else
      col2im_run<T, uint64_t>((T *)gx, (const T *)col, g, ch, L, total);
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

/* The chunking of bias_part_kernel for N*P terms per channel: chunks
   so that O * chunks reaches BIAS_BLOCKS, each at least BIAS_MIN_CHUNK
   terms long (and no empty chunk). */
static void bias_chunks(int64_t O, int64_t NP, int64_t *chunks,
                        int64_t *clen) {
  int64_t c = (BIAS_BLOCKS + O - 1) / O, most = NP / BIAS_MIN_CHUNK;
  if (c > most) c = most;
  if (c < 1) c = 1;
  *clen = (NP + c - 1) / c;
  *chunks = *clen ? (NP + *clen - 1) / *clen : 1;
}

template <typename T, typename IDX>
static void bias_part_run(double *part, const T *gy, const T *mask,
                          int64_t O, int64_t P, int64_t NP, int64_t chunks,
                          int64_t clen) {
  int64_t blocks = O * chunks;
  unsigned nb = (unsigned)(blocks < 65535 * 8 ? blocks : 65535 * 8);
  bias_part_kernel<T, IDX><<<nb, CU_THREADS>>>(
      part, gy, mask, O, cu_divider<IDX>((IDX)P), (IDX)NP, chunks,
      (IDX)clen);
}

static int bias_grad(ember_tensor *gb, const ember_tensor *gy,
                     const ember_tensor *mask, const ember_conv2d_geom *g) {
  int64_t P = g->OH * g->OW, O = g->O, NP = g->N * P, chunks, clen;
  if (O == 0) return 0;
  bias_chunks(O, NP, &chunks, &clen);
  double *part = (double *)ember_cuda_alloc((size_t)(O * chunks) *
                                            sizeof(double));
  if (!part) return -1;
  ember_cuda_dispatch_float(gb->dtype, [&](auto ty) {
    typedef typename decltype(ty)::T T;
    const T *pgy = (const T *)cu_data(gy);
    const T *pm = mask ? (const T *)cu_data(mask) : NULL;
    if (NP <= INT32_MAX && P <= INT32_MAX)
      bias_part_run<T, uint32_t>(part, pgy, pm, O, P, NP, chunks, clen);
    else
      bias_part_run<T, uint64_t>(part, pgy, pm, O, P, NP, chunks, clen);
    return 0;
  });
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) {
    ember_cuda_dispatch_float(gb->dtype, [&](auto ty) {
      typedef typename decltype(ty)::T T;
      bias_final_kernel<T><<<cu_blocks(O), CU_THREADS>>>(
          (T *)cu_data(gb), part, O, chunks);
      return 0;
    });
    e = cudaGetLastError();
  }
  ember_cuda_free(part);    /* stream-ordered: later work reuses it after ours */
  if (e != cudaSuccess)
    return cu_error("cuda: conv2d_backward: bias grad: kernel launch "
                    "failed: %s", cudaGetErrorString(e));
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
