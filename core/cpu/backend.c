/*
** backend.c -- the CPU backend's table and its allocator.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

/*
** 64-byte aligned blocks: a cache line, and enough for AVX-512 loads.
** Not aligned_alloc: glibc's memalign asks the heap for more than the block
** and splits it, so a freed block is too small to serve the next request of
** the same size and a loop that allocates and frees 1 MiB tensors grows the
** heap without bound.  Instead we over-allocate with malloc by 64 bytes and
** keep malloc's pointer just below the aligned one: equal requests then
** reuse equal chunks.
*/
void *ember_cpu_alloc(size_t nbytes) {
  if (nbytes > SIZE_MAX - EMBER_ALIGN) return NULL;
  char *raw = malloc(nbytes + EMBER_ALIGN);
  if (!raw) return NULL;
  /* malloc aligns to 16, so at least 16 bytes lie below `p` */
  char *p = (char *)(((uintptr_t)raw + EMBER_ALIGN) & ~(uintptr_t)(EMBER_ALIGN - 1));
  memcpy(p - sizeof raw, &raw, sizeof raw);
  return p;
}

void ember_cpu_free(void *ptr) {
  if (!ptr) return;
  char *raw;
  memcpy(&raw, (char *)ptr - sizeof raw, sizeof raw);
  free(raw);
}

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
