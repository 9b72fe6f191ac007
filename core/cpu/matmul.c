/*
** matmul.c -- batched matrix products: OpenBLAS for float32/float64, a
** plain loop for the integer types.
**
** a is [B,M,K], b is [B,K,N], dst is [B,M,N] and contiguous.  The core
** guarantees that each matrix operand has unit stride in one of its two
** matrix dims, so it is either row-major (no transpose) or column-major
** (transposed) for BLAS, with the other stride as its leading dimension.
*/
#include <cblas.h>

#include "cpu.h"

/* Transpose flag and leading dimension of a [R,C] matrix with strides
   (sr, sc); BLAS wants the leading dimension >= max(1, columns). */
static void blas_layout(int64_t R, int64_t C, int64_t sr, int64_t sc,
                        enum CBLAS_TRANSPOSE *tr, int64_t *ld) {
  if (sc == 1 && sr >= (C > 1 ? C : 1)) { *tr = CblasNoTrans; *ld = sr; }
  else if (sr == 1 && sc >= (R > 1 ? R : 1)) { *tr = CblasTrans; *ld = sc; }
  else { *tr = CblasNoTrans; *ld = C > 1 ? C : 1; }  /* contiguous (R or C is 1) */
}

#define INT_MATMUL(T)                                                        \
  for (int64_t i = 0; i < M; i++)                                            \
    for (int64_t j = 0; j < N; j++) {                                        \
      uint64_t acc = 0;                                                      \
      for (int64_t k = 0; k < K; k++)                                        \
        acc += (uint64_t)((const T *)A)[i * a->strides[1] + k * a->strides[2]] * \
               (uint64_t)((const T *)Bm)[k * b->strides[1] + j * b->strides[2]]; \
      ((T *)Cm)[i * N + j] = (T)acc;                                         \
    }

int ember_cpu_matmul(ember_tensor *dst, const ember_tensor *a,
                     const ember_tensor *b) {
  int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
  size_t es = ember_dtype_size(a->dtype);
  enum CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb;
  blas_layout(M, K, a->strides[1], a->strides[2], &ta, &lda);
  blas_layout(K, N, b->strides[1], b->strides[2], &tb, &ldb);
  for (int64_t bi = 0; bi < B; bi++) {
    const char *A = (const char *)ember_data(a) + bi * a->strides[0] * (int64_t)es;
    const char *Bm = (const char *)ember_data(b) + bi * b->strides[0] * (int64_t)es;
    char *Cm = (char *)ember_data(dst) + bi * M * N * (int64_t)es;
    if (M == 0 || N == 0) continue;
    switch (a->dtype) {
      case EMBER_FLOAT32:
        if (K == 0) { for (int64_t i = 0; i < M * N; i++) ((float *)Cm)[i] = 0; break; }
        cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0f,
                    (const float *)A, (int)lda, (const float *)Bm, (int)ldb,
                    0.0f, (float *)Cm, (int)N);
        break;
      case EMBER_FLOAT64:
        if (K == 0) { for (int64_t i = 0; i < M * N; i++) ((double *)Cm)[i] = 0; break; }
        cblas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0,
                    (const double *)A, (int)lda, (const double *)Bm, (int)ldb,
                    0.0, (double *)Cm, (int)N);
        break;
      case EMBER_INT32: INT_MATMUL(int32_t) break;
      case EMBER_INT64: INT_MATMUL(int64_t) break;
      default: INT_MATMUL(uint8_t) break;
    }
  }
  return 0;
}
