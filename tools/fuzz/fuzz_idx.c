/*
** fuzz_idx.c -- libFuzzer harness for the IDX reader (plain and gzip).
**
** Each input is a whole file, written to an in-memory file (memfd_create;
** a temporary file if that is missing) and read by path through
** /proc/self/fd, as ember_read_idx takes a path.  A read that succeeds has
** every byte of its tensor read back, so that an over-read shows in ASan;
** a read that fails must leave a message.  The seeds include gzip files,
** so the mutations reach zlib's paths too.  Built and run by `make
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
  file_fd = memfd_create("fuzz_idx", 0);
  if (file_fd < 0) {
    char tmpl[] = "/tmp/fuzz_idx.XXXXXX";
    file_fd = mkstemp(tmpl);
    if (file_fd < 0) { perror("fuzz_idx: mkstemp"); abort(); }
    unlink(tmpl);   /* still reachable through /proc/self/fd */
  }
  snprintf(file_path, sizeof file_path, "/proc/self/fd/%d", file_fd);
}

/* Replace the file's contents with the input. */
static void write_input(const uint8_t *data, size_t size) {
  if (ftruncate(file_fd, 0) < 0) { perror("fuzz_idx: ftruncate"); abort(); }
  size_t done = 0;
  while (done < size) {
    ssize_t k = pwrite(file_fd, data + done, size - done, (off_t)done);
    if (k <= 0) { perror("fuzz_idx: pwrite"); abort(); }
    done += (size_t)k;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (file_fd < 0) open_file();
  write_input(data, size);
  ember_tensor *t = ember_read_idx(file_path);
  if (!t) {
    /* a failure must say why */
    const char *msg = ember_last_error();
    if (!msg || !*msg) abort();
    return 0;
  }
  volatile unsigned sink = 0;
  const unsigned char *p = ember_data(t);
  size_t nbytes = (size_t)ember_numel(t) * ember_dtype_size(t->dtype);
  for (size_t k = 0; k < nbytes; k++) sink += p[k];
  (void)sink;
  ember_tensor_release(t);
  return 0;
}
