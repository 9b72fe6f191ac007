/*
** backend.c -- the CPU backend's table.
*/
#include <stdatomic.h>

#include "cpu.h"

int ember_cpu_features(void) {
  static _Atomic int known = -1;   /* every thread stores the same */
  int k = atomic_load_explicit(&known, memory_order_relaxed);
  if (k < 0) {
    k = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
      k |= EMBER_CPU_AVX512;
    if (__builtin_cpu_supports("avx512bf16")) k |= EMBER_CPU_AVX512_BF16;
#endif
    atomic_store_explicit(&known, k, memory_order_relaxed);
  }
  return k;
}

const ember_backend_i ember_cpu_backend = {
  .name = "cpu",
  /* no alloc/free: the core allocates CPU storage together with its
     header in one malloc (storage.c) */
  .copy = ember_cpu_copy,
  .fill = ember_cpu_fill,
  .arange = ember_cpu_arange,
  .unary = ember_cpu_h_unary,
  .binary = ember_cpu_h_binary,
  .compare = ember_cpu_h_compare,
  .where = ember_cpu_h_where,
  .reduce = ember_cpu_h_reduce,
  .softmax = ember_cpu_h_softmax,
  .softmax_backward = ember_cpu_h_softmax_backward,
  .layer_norm = ember_cpu_h_layer_norm,
  .layer_norm_backward = ember_cpu_h_layer_norm_backward,
  .lstm_cell = ember_cpu_h_lstm_cell,
  .lstm_cell_backward = ember_cpu_h_lstm_cell_backward,
  .gru_cell = ember_cpu_h_gru_cell,
  .gru_cell_backward = ember_cpu_h_gru_cell_backward,
  .cross_entropy = ember_cpu_h_cross_entropy,
  .cross_entropy_backward = ember_cpu_h_cross_entropy_backward,
  .scan = ember_cpu_h_scan,
  .attention = ember_cpu_attention,
  .attention_backward = ember_cpu_attention_backward,
  .sort = ember_cpu_h_sort,
  .matmul = ember_cpu_matmul,
  .index_select = ember_cpu_index_select,
  .gather = ember_cpu_gather,
  .random = ember_cpu_h_random,
  .multinomial = ember_cpu_h_multinomial,
  .sgd_step = ember_cpu_h_sgd_step,
  .adam_step = ember_cpu_h_adam_step,
  .rmsprop_step = ember_cpu_h_rmsprop_step,
  .adagrad_step = ember_cpu_h_adagrad_step,
  .unary_backward = ember_cpu_h_unary_backward,
  .index_add = ember_cpu_h_index_add,
  .index_copy = ember_cpu_index_copy,
  .scatter_add = ember_cpu_h_scatter_add,
  .conv2d = ember_cpu_conv2d,
  .conv2d_backward = ember_cpu_conv2d_backward,
  .max_pool2d = ember_cpu_h_max_pool2d,
  .max_pool2d_backward = ember_cpu_h_max_pool2d_backward,
  .avg_pool2d = ember_cpu_h_avg_pool2d,
  .avg_pool2d_backward = ember_cpu_h_avg_pool2d_backward,
  .check_index = ember_cpu_check_index,
  .scatter = ember_cpu_h_scatter,
  .nonzero = ember_cpu_nonzero,
};
