/*
** fake_cuda_uaf.c -- reads a "cuda" tensor's memory after the tensor is
** released, on the stand-in plugin: under AddressSanitizer the read must
** be reported, although the caching allocator keeps the block (it poisons
** what it caches; spec/bindings/fake_cuda_memory_spec.lua).
*/
#include <stdio.h>

#include "ember.h"

int main(void) {
  int64_t shape[1] = {16};
  ember_tensor *t = ember_zeros_on(EMBER_CUDA, 1, shape, EMBER_FLOAT32);
  if (!t) {
    fprintf(stderr, "fake_cuda_uaf: %s\n", ember_last_error());
    return 2;
  }
  volatile float *p = (float *)t->storage->data;
  ember_tensor_release(t);
  printf("fake_cuda_uaf: read %f after release\n", p[3]);   /* must not get here */
  return 0;
}
