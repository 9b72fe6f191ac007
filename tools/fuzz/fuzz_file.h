/*
** fuzz_file.h -- what the file-reader harnesses share (fuzz_idx.c,
** fuzz_image.c, fuzz_safetensors.c): the file each input is written to,
** since the readers take paths, and the check of a reader's result.
** Included once per harness (one translation unit each).
*/
#ifndef EMBER_FUZZ_FILE_H
#define EMBER_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ember.h"

/* The file the inputs go to, made once: its fd and a path to it. */
static int fuzz_fd = -1;
static char fuzz_path[64];

/* The path of a file holding exactly data[0..size): a memfd named 'name'
   (else an unlinked temporary, still reachable through /proc/self/fd),
   made on the first call and rewritten on each. */
static const char *fuzz_file(const char *name, const uint8_t *data, size_t size) {
  if (fuzz_fd < 0) {
    fuzz_fd = memfd_create(name, 0);
    if (fuzz_fd < 0) {
      char tmpl[] = "/tmp/fuzz_file.XXXXXX";
      fuzz_fd = mkstemp(tmpl);
      if (fuzz_fd < 0) { perror("fuzz: mkstemp"); abort(); }
      unlink(tmpl);
    }
    snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
  }
  if (ftruncate(fuzz_fd, 0) < 0) { perror("fuzz: ftruncate"); abort(); }
  size_t done = 0;
  while (done < size) {
    ssize_t k = pwrite(fuzz_fd, data + done, size - done, (off_t)done);
    if (k <= 0) { perror("fuzz: pwrite"); abort(); }
    done += (size_t)k;
  }
  return fuzz_path;
}

/* A reader that failed must say why (abort otherwise, which libFuzzer
   reports); returns 1 when it failed. */
static int fuzz_failed(const void *result) {
  if (result) return 0;
  const char *msg = ember_last_error();
  if (!msg || !*msg) abort();
  return 1;
}

/* Read every byte of t (so ASan sees an over-read) and release it, or
   check that its failure left a message. */
static void fuzz_consume(ember_tensor *t) {
  if (fuzz_failed(t)) return;
  volatile unsigned sink = 0;
  const unsigned char *p = ember_data(t);
  size_t nbytes = (size_t)ember_numel(t) * ember_dtype_size(t->dtype);
  for (size_t k = 0; k < nbytes; k++) sink += p[k];
  (void)sink;
  ember_tensor_release(t);
}

#endif
