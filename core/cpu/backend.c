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
  .layer_norm = ember_cpu_layer_norm,
  .layer_norm_backward = ember_cpu_layer_norm_backward,
  .cross_entropy = ember_cpu_cross_entropy,
  .cross_entropy_backward = ember_cpu_cross_entropy_backward,
  .scan = ember_cpu_scan,
  .attention = ember_cpu_attention,
  .attention_backward = ember_cpu_attention_backward,
  .sort = ember_cpu_sort,
  .matmul = ember_cpu_matmul,
  .index_select = ember_cpu_index_select,
  .gather = ember_cpu_gather,
  .random = ember_cpu_random,
  .multinomial = ember_cpu_multinomial,
  .sgd_step = ember_cpu_sgd_step,
  .adam_step = ember_cpu_adam_step,
  .rmsprop_step = ember_cpu_rmsprop_step,
  .adagrad_step = ember_cpu_adagrad_step,
  .unary_backward = ember_cpu_unary_backward,
  .index_add = ember_cpu_index_add,
  .index_copy = ember_cpu_index_copy,
  .scatter_add = ember_cpu_scatter_add,
  .conv2d = ember_cpu_conv2d,
  .conv2d_backward = ember_cpu_conv2d_backward,
  .max_pool2d = ember_cpu_max_pool2d,
  .max_pool2d_backward = ember_cpu_max_pool2d_backward,
  .avg_pool2d = ember_cpu_avg_pool2d,
  .avg_pool2d_backward = ember_cpu_avg_pool2d_backward,
  .check_index = ember_cpu_check_index,
  .scatter = ember_cpu_scatter,
  .nonzero = ember_cpu_nonzero,
};
