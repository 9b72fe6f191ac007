/*
** matmul.cu -- batched matrix products on the GPU: cuBLAS for float32 and
** float64, a tiled kernel for the integer types (the twin of
** core/cpu/matmul.c).
**
** bfloat16 and float16 go to cublasGemmStridedBatchedEx (tensor cores,
** CUBLAS_COMPUTE_32F), writing dst in its dtype: the 16-bit type, or float32
** for ember_matmul_f32 (core/backend.h, the matmul slot).
**
** a is [B,M,K], b is [B,K,N], dst is [B,M,N] and contiguous.  The core
** guarantees that each matrix operand has unit stride in one of its two
** matrix dims (row- or column-major), with any batch stride (0 for a
** broadcast batch).
**
** Precision: float32 products use TF32 tensor cores only when
** ember_cuda_allow_tf32 is set (CUBLAS_TF32_TENSOR_OP_MATH).  Otherwise the
** handle is put in CUBLAS_DEFAULT_MATH, which since CUDA 11 computes SGEMM in
** true FP32: TF32 (and the BF16x9 / fixed-point emulations of CUDA 13) are
** opt-in math modes that we never set.  The environment variable
** NVIDIA_TF32_OVERRIDE=0 forbids TF32 in NVIDIA's libraries whatever the
** program asks for, so with it set, ember_cuda_allow_tf32 = 1 still computes in
** FP32.  The handle is shared, so every call sets the mode it needs.
*/
#include <limits.h>

#include "cuda_internal.h"

/* cuBLAS's strided batched calls take batches in an int; we also stay
   under the 65535 of a grid's y and z dims, which some cuBLAS kernels
   map batches onto. */
#define MAX_BATCH 65535

/* {======================================================================
** Integer matmul: a shared-memory tiled kernel
** ======================================================================= */

#define TILE 16

/*
** C[bz] = A[bz] x B[bz] with the CPU's arithmetic: every product and sum in
** uint64 (wrapping, so the order of the sums does not matter and the
** result is bit-exact), cast back to T at the end.  One thread per output
** element, 16x16 tiles of A and B staged in shared memory (entries past
** the edges read as 0, which adds nothing).  The loops over tiles and
** batches are grid-stride and block-uniform, so __syncthreads is safe.
*/
template <typename T>
static __global__ void int_matmul_kernel(T *C, const T *A, const T *Bm,
                                         int64_t B, int64_t M, int64_t N,
                                         int64_t K, int64_t sa0, int64_t sa1,
                                         int64_t sa2, int64_t sb0,
                                         int64_t sb1, int64_t sb2) {
  __shared__ uint64_t As[TILE][TILE], Bs[TILE][TILE];
  int tx = threadIdx.x, ty = threadIdx.y;
  int64_t tilesM = (M + TILE - 1) / TILE, tilesN = (N + TILE - 1) / TILE;
  for (int64_t bz = blockIdx.z; bz < B; bz += gridDim.z)
    for (int64_t tm = blockIdx.y; tm < tilesM; tm += gridDim.y)
      for (int64_t tn = blockIdx.x; tn < tilesN; tn += gridDim.x) {
        int64_t i = tm * TILE + ty, j = tn * TILE + tx;   /* C[i, j] */
        uint64_t acc = 0;
        for (int64_t k0 = 0; k0 < K; k0 += TILE) {
          int64_t ka = k0 + tx, kb = k0 + ty;
          As[ty][tx] = i < M && ka < K
                           ? (uint64_t)A[bz * sa0 + i * sa1 + ka * sa2] : 0;
          Bs[ty][tx] = kb < K && j < N
                           ? (uint64_t)Bm[bz * sb0 + kb * sb1 + j * sb2] : 0;
          __syncthreads();
          for (int kk = 0; kk < TILE; kk++) acc += As[ty][kk] * Bs[kk][tx];
          __syncthreads();
        }
        if (i < M && j < N) C[(bz * M + i) * N + j] = (T)acc;
      }
}

static unsigned grid_dim(int64_t n) {
  return (unsigned)(n < 1 ? 1 : n > 65535 ? 65535 : n);
}

static int int_matmul(ember_tensor *dst, const ember_tensor *a,
                      const ember_tensor *b) {
  int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
  dim3 block(TILE, TILE);
  dim3 grid(grid_dim((N + TILE - 1) / TILE), grid_dim((M + TILE - 1) / TILE),
            grid_dim(B));
  ember_cuda_dispatch(a->dtype, [&](auto ty) {   /* the core refuses bool */
    typedef typename decltype(ty)::T T;
    if constexpr (!std::is_floating_point<T>::value)
      int_matmul_kernel<T><<<grid, block>>>(
          (T *)cu_data(dst), (const T *)cu_data(a), (const T *)cu_data(b), B,
          M, N, K, a->strides[0], a->strides[1], a->strides[2], b->strides[0],
          b->strides[1], b->strides[2]);
    return 0;
  });
  CU_LAUNCH_CHECK("matmul");
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Float matmul: cuBLAS
** ======================================================================= */

/*
** The operand layout, exactly as the CPU's blas_layout: a [R,C] matrix
** with strides (sr, sc) is row-major (trans 0, ld = sr) or column-major
** (trans 1, ld = sc).  The core never hands over anything else (it copies
** such an operand first); we refuse it rather than guess.
*/
static int layout_of(int64_t R, int64_t C, int64_t sr, int64_t sc,
                     int *trans, int64_t *ld) {
  if (sc == 1 && sr >= (C > 1 ? C : 1)) { *trans = 0; *ld = sr; }
  else if (sr == 1 && sc >= (R > 1 ? R : 1)) { *trans = 1; *ld = sc; }
  else
    return cu_error("matmul: operand [%lld,%lld] with strides (%lld,%lld) "
                    "is neither row- nor column-major", (long long)R,
                    (long long)C, (long long)sr, (long long)sc);
  return 0;
}

/*
** cuBLAS is column-major; our matrices are row-major.  A row-major [R,C]
** matrix with leading dimension ld, read column-major with the same ld, is
** its transpose [C,R].  So the row-major product
**     C[M,N] = A[M,K] B[K,N]
** is the column-major product
**     C^T[N,M] = B^T[N,K] A^T[K,M]
** and we call gemm with m = N, n = M, k = K, cuBLAS's "A" = our b, its
** "B" = our a, and C = dst with ldc = N (dst is contiguous):
**   - b row-major (tb = 0, ld sr): read column-major it already is B^T
**     [N,K], so OP_N; cuBLAS needs its lda (b's ld) >= max(1, m = N):
**     sr >= max(C = N, 1) holds by layout_of.
**   - b column-major (tb = 1, ld sc): read column-major it is B [K,N], so
**     OP_T; cuBLAS needs its lda >= max(1, k = K): sc >= max(R = K, 1).
**   - a row-major (ta = 0, ld sr): column-major it is A^T [K,M], OP_N;
**     cuBLAS's ldb (a's ld) >= max(1, k = K): sr >= max(C = K, 1) holds.
**   - a column-major (ta = 1, ld sc): column-major it is A [M,K], OP_T;
**     cuBLAS's ldb >= max(1, n = M): sc >= max(R = M, 1) holds.
** That is: transa = tb, transb = ta, the classic swap.  The batch strides
** are the operands' strides[0] (0 for a broadcast batch is fine for a
** strided batched call) and M*N for dst.
*/
static int float_matmul(ember_tensor *dst, const ember_tensor *a,
                        const ember_tensor *b) {
  int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
  int64_t es = (int64_t)cu_elsize(a->dtype);
  int ta, tb;
  int64_t lda, ldb;
  if (layout_of(M, K, a->strides[1], a->strides[2], &ta, &lda) < 0 ||
      layout_of(K, N, b->strides[1], b->strides[2], &tb, &ldb) < 0)
    return -1;
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX ||
      ldb > INT_MAX)
    return cu_error("matmul: sizes too large for cuBLAS ([%lld,%lld] x "
                    "[%lld,%lld])", (long long)M, (long long)K, (long long)K,
                    (long long)N);
  cublasHandle_t h = ember_cuda_cublas();
  if (!h || cu_cublas_mode(h, a->dtype) < 0) return -1;
  cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N;   /* for b */
  cublasOperation_t opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;   /* for a */
  long long sA = b->strides[0], sB = a->strides[0], sC = M * N;
  for (int64_t b0 = 0; b0 < B; b0 += MAX_BATCH) {
    int nb = (int)(B - b0 < MAX_BATCH ? B - b0 : MAX_BATCH);
    const char *Ap = (const char *)cu_data(b) + b0 * sA * es;
    const char *Bp = (const char *)cu_data(a) + b0 * sB * es;
    char *Cp = (char *)cu_data(dst) + b0 * sC * (int64_t)cu_elsize(dst->dtype);
    if (a->dtype == EMBER_BFLOAT16 || a->dtype == EMBER_FLOAT16) {
      /* 16-bit operands on the tensor cores with float32 sums; C in dst's
         dtype: the 16-bit type (rounded once) or float32 (the sums
         themselves, ember_matmul_f32) */
      cudaDataType_t in = a->dtype == EMBER_BFLOAT16 ? CUDA_R_16BF : CUDA_R_16F;
      cudaDataType_t out = dst->dtype == EMBER_FLOAT32 ? CUDA_R_32F : in;
      const float one = 1.0f, zero = 0.0f;
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          h, opa, opb, (int)N, (int)M, (int)K, &one, Ap, in, (int)ldb, sA, Bp,
          in, (int)lda, sB, &zero, Cp, out, (int)N, sC, nb,
          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else if (a->dtype == EMBER_FLOAT32) {
      const float one = 1.0f, zero = 0.0f;
      CUBLAS_CHECK(cublasSgemmStridedBatched(
          h, opa, opb, (int)N, (int)M, (int)K, &one, (const float *)Ap,
          (int)ldb, sA, (const float *)Bp, (int)lda, sB, &zero, (float *)Cp,
          (int)N, sC, nb));
    } else {
      const double one = 1.0, zero = 0.0;
      CUBLAS_CHECK(cublasDgemmStridedBatched(
          h, opa, opb, (int)N, (int)M, (int)K, &one, (const double *)Ap,
          (int)ldb, sA, (const double *)Bp, (int)lda, sB, &zero,
          (double *)Cp, (int)N, sC, nb));
    }
  }
  return 0;
}

/* }====================================================================== */

int ember_cuda_matmul(ember_tensor *dst, const ember_tensor *a,
                      const ember_tensor *b) {
  int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
  if (B == 0 || M == 0 || N == 0) return 0;          /* dst is empty */
  if (!cu_dtype_is_float(a->dtype))
    return int_matmul(dst, a, b);                    /* K = 0 gives 0 */
  if (K == 0) {                                      /* sum of nothing */
    CU_CHECK(cudaMemsetAsync(cu_data(dst), 0,
                             (size_t)(B * M * N) * cu_elsize(dst->dtype)));
    return 0;
  }
  return float_matmul(dst, a, b);
}
