/*
** philox.h -- Philox-4x32-10, the counter-based generator behind every
** random draw, on the CPU (core/cpu/random.c) and on CUDA
** (core/cuda/random.cu) alike.
**
** Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
** SC'11) maps (key, counter) to four 32-bit words.  Element i of a draw
** uses counter + i, so a draw is the same on any number of threads, any
** platform and either device.  Plain C, so that both compilers read the
** one definition: the rounds are 32x32->64-bit products, the same on host
** and device.
*/
#ifndef EMBER_PHILOX_H
#define EMBER_PHILOX_H

#include <stdint.h>

#ifdef __CUDACC__
#define EMBER_PHILOX_FN __host__ __device__ static inline
#else
#define EMBER_PHILOX_FN static inline
#endif

/* The four words of (key, counter): ten rounds with the Philox-4x32
   multipliers and Weyl key steps. */
EMBER_PHILOX_FN void ember_philox(uint64_t key, uint64_t counter,
                                  uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1; c3 = (uint32_t)p0;
    c0 = n0; c2 = n2;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

#endif
