/*
** bench/cublas_gemm.cu -- the peer of bench/cuda_bench.lua's matmul rows:
** cublasSgemm called directly on square float32 matrices, no TF32
** (CUBLAS_DEFAULT_MATH), the same sizes and method as the Ember side.
**
**   nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 \
**        -o build/cublas_gemm bench/cublas_gemm.cu -lcublas
**   build/cublas_gemm [n ...]          (default 1024 2048 4096 8192)
**
** For each n: A, B, C [n,n] on the device, A and B filled with values in
** [-1, 1) by a hash of the index (no cuRAND needed); two warm-up calls
** estimate one call's time; then RUNS timed runs of k calls each (k so that
** a run lasts >= 0.2 s), timed with CUDA events; 2 n^3 flops a call; the
** median run gives the figure.  The matrices are row-major as Ember's:
** C = A B is computed as C^T = B^T A^T in cuBLAS's column-major terms.
** Unlike Ember's a:matmul(b), the output buffer is reused (no allocation),
** which the Ember side's caching allocator makes nearly free.
**
** Output: "# cublas <version> <device>", then one "matmul_<n> <GFLOP/s>"
** line per size.  Exit status 2 on any CUDA or cuBLAS error (no device).
*/
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define RUNS 5
#define MIN_RUN_S 0.2

#define CUDA_OK(call)                                                        \
  do {                                                                       \
    cudaError_t e_ = (call);                                                 \
    if (e_ != cudaSuccess) {                                                 \
      fprintf(stderr, "cublas_gemm: %s: %s (%s:%d)\n", #call,                \
              cudaGetErrorString(e_), __FILE__, __LINE__);                   \
      exit(2);                                                               \
    }                                                                        \
  } while (0)

#define CUBLAS_OK(call)                                                      \
  do {                                                                       \
    cublasStatus_t s_ = (call);                                              \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                       \
      fprintf(stderr, "cublas_gemm: %s: %s (%s:%d)\n", #call,                \
              cublasGetStatusString(s_), __FILE__, __LINE__);                \
      exit(2);                                                               \
    }                                                                        \
  } while (0)

/* x[i] = a value in [-1, 1) from a hash of (seed, i); grid-stride loop. */
__global__ static void fill_kernel(float *x, int64_t n, uint32_t seed) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ (uint32_t)(i >> 32) ^ seed;
    h ^= h >> 16; h *= 0x7feb352du;
    h ^= h >> 15; h *= 0x846ca68bu;
    h ^= h >> 16;
    x[i] = (float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
}

static void fill(float *x, int64_t n, uint32_t seed) {
  int64_t blocks = std::min<int64_t>((n + 255) / 256, 65535);
  fill_kernel<<<(unsigned)blocks, 256>>>(x, n, seed);
  CUDA_OK(cudaGetLastError());
}

/* C = A B for row-major n x n matrices (C^T = B^T A^T column-major). */
static void gemm(cublasHandle_t h, int n, const float *a, const float *b, float *c) {
  const float one = 1.0f, zero = 0.0f;
  CUBLAS_OK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, b, n, a, n,
                        &zero, c, n));
}

/* Seconds that k calls take, by CUDA events. */
static double time_calls(cublasHandle_t h, int n, const float *a, const float *b,
                         float *c, int k, cudaEvent_t start, cudaEvent_t stop) {
  CUDA_OK(cudaEventRecord(start));
  for (int i = 0; i < k; i++) gemm(h, n, a, b, c);
  CUDA_OK(cudaEventRecord(stop));
  CUDA_OK(cudaEventSynchronize(stop));
  float ms = 0;
  CUDA_OK(cudaEventElapsedTime(&ms, start, stop));
  return ms * 1e-3;
}

int main(int argc, char **argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; i++) {
    int n = atoi(argv[i]);
    if (n < 1) {
      fprintf(stderr, "cublas_gemm: bad size '%s'\n", argv[i]);
      return 2;
    }
    sizes.push_back(n);
  }
  if (sizes.empty()) sizes = {1024, 2048, 4096, 8192};

  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  cublasHandle_t h;
  CUBLAS_OK(cublasCreate(&h));
  CUBLAS_OK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));   /* no TF32 */
  int version = 0;
  CUBLAS_OK(cublasGetVersion(h, &version));
  printf("# cublas %d ", version);
  for (const char *p = prop.name; *p; p++) putchar(*p == ' ' ? '_' : *p);
  putchar('\n');
  fflush(stdout);

  cudaEvent_t start, stop;
  CUDA_OK(cudaEventCreate(&start));
  CUDA_OK(cudaEventCreate(&stop));
  for (int n : sizes) {
    int64_t count = (int64_t)n * n;
    float *a, *b, *c;
    CUDA_OK(cudaMalloc((void **)&a, (size_t)count * sizeof(float)));
    CUDA_OK(cudaMalloc((void **)&b, (size_t)count * sizeof(float)));
    CUDA_OK(cudaMalloc((void **)&c, (size_t)count * sizeof(float)));
    fill(a, count, 1u);
    fill(b, count, 2u);
    double one = time_calls(h, n, a, b, c, 2, start, stop) / 2;
    int k = (int)std::max(1.0, MIN_RUN_S / std::max(one, 1e-6) + 0.999);
    std::vector<double> rates;
    for (int r = 0; r < RUNS; r++) {
      double secs = time_calls(h, n, a, b, c, k, start, stop);
      rates.push_back(2.0 * n * (double)n * n * k / secs * 1e-9);
    }
    std::sort(rates.begin(), rates.end());
    printf("matmul_%d %.1f\n", n, rates[rates.size() / 2]);
    fflush(stdout);
    CUDA_OK(cudaFree(a));
    CUDA_OK(cudaFree(b));
    CUDA_OK(cudaFree(c));
  }
  CUDA_OK(cudaEventDestroy(start));
  CUDA_OK(cudaEventDestroy(stop));
  CUBLAS_OK(cublasDestroy(h));
  return 0;
}
