/*
** backend.c -- the CPU backend's table.
*/
#include "cpu.h"

const ember_backend_i ember_cpu_backend = {
  .name = "cpu",
  /* no alloc/free: the core allocates CPU storage together with its
     header in one malloc (storage.c) */
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
