/*
** conv.h -- what the two CPU convolution paths share (internal to
** core/cpu/).
**
** conv_gemm.c holds the entry points of the backend table (ember_cpu_conv2d
** and ember_cpu_conv2d_backward), the general im2col + GEMM path and the
** scratch block; conv_direct.c the direct path of a first layer, which the
** entry points take when ember_cpu_conv_direct_ok says it fits.
*/
#ifndef EMBER_CPU_CONV_H
#define EMBER_CPU_CONV_H

#include "cpu.h"

/* The direct path's bound on K = C*KH*KW (a 3x3 kernel over 3 channels
   is 27). */
#define EMBER_CONV_DIRECT_MAX_K 32

/* Scratch memory: one block kept between calls (conv_gemm.c), so a
   training step does not map, fault in and unmap megabytes of fresh memory
   for every convolution. */
typedef struct {
  char *base;
  int is_kept;
} ember_cpu_block;

/* n bytes (64-byte aligned) into b->base; NULL when out of memory. */
void *ember_cpu_block_get(ember_cpu_block *b, size_t n);
void ember_cpu_block_put(ember_cpu_block *b);

/* Bytes rounded up to whole cache lines, to carve one block in parts. */
static inline size_t ember_cpu_lines(size_t n) { return (n + 63) / 64 * 64; }

/* conv_direct.c: float32, one group, stride 1, no dilation and K small. */
int ember_cpu_conv_direct_ok(const ember_conv2d_geom *g, ember_dtype dt);
int ember_cpu_conv_direct_forward(ember_tensor *y, const ember_tensor *x,
                                  const ember_tensor *w, const ember_tensor *b,
                                  const ember_conv2d_geom *g);
/* gw and/or gb (either may be NULL); x must hold only finite values when
   gw is asked for (see conv_direct.c). */
int ember_cpu_conv_direct_backward(ember_tensor *gw, ember_tensor *gb,
                                   const ember_tensor *gy,
                                   const ember_tensor *mask,
                                   const ember_tensor *x,
                                   const ember_conv2d_geom *g);
/* Whether every element of a float32 tensor is finite. */
int ember_cpu_all_finite(const ember_tensor *x);

#endif
