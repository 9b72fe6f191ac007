/*
** fuzz_safetensors.c -- libFuzzer harness for the safetensors reader.
**
** Each input is a whole file: it is written to an in-memory file
** (memfd_create; a temporary file if that is missing) and opened by path
** through /proc/self/fd, as ember_load_safetensors takes a path.  A load
** that succeeds is walked through the whole handle API, and every byte of
** every tensor and string is read, so that an over-read shows in ASan.  A
** load that fails must leave a message.  Every other input (by the parity
** of its length) is loaded with EMBER_LOAD_MMAP, so the mapped path runs
** the same validation on the same inputs.  Built and run by `make
** fuzz-files` (with -fsanitize=fuzzer,address,undefined; leaks fail too).
*/
#define _GNU_SOURCE
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read every byte of s (so ASan sees an over-read) into a checksum. */
static unsigned touch_string(const char *s) {
  unsigned h = 0;
  if (!s) abort();   /* the API promised a string here */
  for (; *s; s++) h = h * 31 + (unsigned char)*s;
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ember_safetensors *st = ember_load_safetensors_ex(fuzz_file("fuzz_safetensors", data, size),
                                                   size % 2 ? EMBER_LOAD_MMAP : 0);
  if (fuzz_failed(st)) return 0;
  volatile unsigned sink = 0;
  int n = ember_safetensors_count(st);
  for (int i = 0; i < n; i++) {
    sink += touch_string(ember_safetensors_name(st, i));
    ember_tensor *t = ember_safetensors_tensor(st, i);
    if (!t) abort();
    const unsigned char *p = ember_data(t);
    size_t nbytes = (size_t)ember_numel(t) * ember_dtype_size(t->dtype);
    for (size_t k = 0; k < nbytes; k++) sink += p[k];
    ember_tensor_release(t);
  }
  /* out of range answers NULL, not a crash */
  if (ember_safetensors_name(st, n) || ember_safetensors_name(st, -1)) abort();
  int m = ember_safetensors_metadata_count(st);
  for (int i = 0; i < m; i++) {
    sink += touch_string(ember_safetensors_metadata_key(st, i));
    sink += touch_string(ember_safetensors_metadata_value(st, i));
  }
  ember_safetensors_free(st);
  (void)sink;
  return 0;
}
