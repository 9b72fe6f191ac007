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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ember.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The file the inputs go to, made once: its fd and a path to it. */
static int file_fd = -1;
static char file_path[64];

static void open_file(void) {
  file_fd = memfd_create("fuzz_safetensors", 0);
  if (file_fd < 0) {
    char tmpl[] = "/tmp/fuzz_safetensors.XXXXXX";
    file_fd = mkstemp(tmpl);
    if (file_fd < 0) { perror("fuzz_safetensors: mkstemp"); abort(); }
    unlink(tmpl);   /* still reachable through /proc/self/fd */
  }
  snprintf(file_path, sizeof file_path, "/proc/self/fd/%d", file_fd);
}

/* Replace the file's contents with the input. */
static void write_input(const uint8_t *data, size_t size) {
  if (ftruncate(file_fd, 0) < 0) { perror("fuzz_safetensors: ftruncate"); abort(); }
  size_t done = 0;
  while (done < size) {
    ssize_t k = pwrite(file_fd, data + done, size - done, (off_t)done);
    if (k <= 0) { perror("fuzz_safetensors: pwrite"); abort(); }
    done += (size_t)k;
  }
}

/* Read every byte of s (so ASan sees an over-read) into a checksum. */
static unsigned touch_string(const char *s) {
  unsigned h = 0;
  if (!s) abort();   /* the API promised a string here */
  for (; *s; s++) h = h * 31 + (unsigned char)*s;
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (file_fd < 0) open_file();
  write_input(data, size);
  ember_safetensors *st =
      ember_load_safetensors_ex(file_path, size % 2 ? EMBER_LOAD_MMAP : 0);
  if (!st) {
    /* a failure must say why */
    const char *msg = ember_last_error();
    if (!msg || !*msg) abort();
    return 0;
  }
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
