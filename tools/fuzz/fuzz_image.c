/*
** fuzz_image.c -- libFuzzer harness for the PNG and JPEG decoders
** (core/io_image.c).
**
** Each input is decoded from memory (ember_decode_image) as RGB and as
** grey, and read from a file (an in-memory file through /proc/self/fd, as
** fuzz_idx.c does) resized to 5x3 floats (ember_read_image_chw), so the
** file reading, the channel conversions and the resize are reached too.
** A decode that succeeds has every byte of its tensor read back (an
** over-read shows in ASan); one that fails must leave a message.  Seeds:
** spec/fixtures/hostile/seeds/img_valid.{png,jpg} and the hostile images.
** Built and run by `make fuzz-files` (-fsanitize=fuzzer,address,undefined,
** a 64 MB malloc limit: the decoders' size checks must keep a small file
** from allocating big images).
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

static int file_fd = -1;
static char file_path[64];

static void open_file(void) {
  file_fd = memfd_create("fuzz_image", 0);
  if (file_fd < 0) {
    char tmpl[] = "/tmp/fuzz_image.XXXXXX";
    file_fd = mkstemp(tmpl);
    if (file_fd < 0) { perror("fuzz_image: mkstemp"); abort(); }
    unlink(tmpl);
  }
  snprintf(file_path, sizeof file_path, "/proc/self/fd/%d", file_fd);
}

static void write_input(const uint8_t *data, size_t size) {
  if (ftruncate(file_fd, 0) < 0) { perror("fuzz_image: ftruncate"); abort(); }
  size_t done = 0;
  while (done < size) {
    ssize_t k = pwrite(file_fd, data + done, size - done, (off_t)done);
    if (k <= 0) { perror("fuzz_image: pwrite"); abort(); }
    done += (size_t)k;
  }
}

/* Read every byte of t (or check that a failure left a message). */
static void consume(ember_tensor *t) {
  if (!t) {
    const char *msg = ember_last_error();
    if (!msg || !*msg) abort();
    return;
  }
  volatile unsigned sink = 0;
  const unsigned char *p = ember_data(t);
  size_t nbytes = (size_t)ember_numel(t) * ember_dtype_size(t->dtype);
  for (size_t k = 0; k < nbytes; k++) sink += p[k];
  (void)sink;
  ember_tensor_release(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (file_fd < 0) open_file();
  consume(ember_decode_image(data, size, 3, "fuzz"));
  consume(ember_decode_image(data, size, 1, "fuzz"));
  write_input(data, size);
  consume(ember_read_image_chw(file_path, 3, 5, 3));
  return 0;
}
