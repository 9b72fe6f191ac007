/*
** backend.c -- the CPU backend's table and its allocator.
*/
#include <stdlib.h>

#include "cpu.h"

/* 64-byte aligned blocks: a cache line, and enough for AVX-512 loads. */
void *ember_cpu_alloc(size_t nbytes) {
  size_t rounded = (nbytes + EMBER_ALIGN - 1) / EMBER_ALIGN * EMBER_ALIGN;
  return aligned_alloc(EMBER_ALIGN, rounded);
}

void ember_cpu_free(void *ptr) { free(ptr); }

const ember_backend_i ember_cpu_backend = {
  .name = "cpu",
  .alloc = ember_cpu_alloc,
  .free = ember_cpu_free,
  .copy = ember_cpu_copy,
  .fill = ember_cpu_fill,
  .arange = ember_cpu_arange,
  .unary = ember_cpu_unary,
  .binary = ember_cpu_binary,
  .compare = ember_cpu_compare,
  .where = ember_cpu_where,
  .reduce = ember_cpu_reduce,
  .softmax = ember_cpu_softmax,
  .matmul = ember_cpu_matmul,
  .index_select = ember_cpu_index_select,
  .gather = ember_cpu_gather,
  .random = ember_cpu_random,
};
