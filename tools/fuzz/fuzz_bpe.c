/*
** fuzz_bpe.c -- libFuzzer harness for the BPE tokenizer's loader
** (ember_bpe_load: vocab.json and merges.txt) and its encoder.
**
** An input is split at its first byte 0xFF: the part before is vocab.json,
** the part after merges.txt (no 0xFF: all vocab, empty merges), each
** written to an in-memory file (memfd_create) read through /proc/self/fd.
** A load that fails must leave a message; one that succeeds encodes the
** input itself (any bytes) and decodes the ids, which must give the input
** back (byte-level BPE loses nothing).  Built and run by `make fuzz-files`.
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

static int fds[2] = {-1, -1};
static char paths[2][64];

static void open_files(void) {
  for (int i = 0; i < 2; i++) {
    fds[i] = memfd_create(i ? "merges.txt" : "vocab.json", 0);
    if (fds[i] < 0) { perror("fuzz_bpe: memfd_create"); abort(); }
    snprintf(paths[i], sizeof paths[i], "/proc/self/fd/%d", fds[i]);
  }
}

static void put(int fd, const uint8_t *p, size_t n) {
  if (ftruncate(fd, 0) < 0) { perror("fuzz_bpe: ftruncate"); abort(); }
  for (size_t done = 0; done < n;) {
    ssize_t k = pwrite(fd, p + done, n - done, (off_t)done);
    if (k <= 0) { perror("fuzz_bpe: pwrite"); abort(); }
    done += (size_t)k;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (fds[0] < 0) open_files();
  const uint8_t *cut = memchr(data, 0xFF, size);
  size_t nv = cut ? (size_t)(cut - data) : size;
  put(fds[0], data, nv);
  put(fds[1], cut ? cut + 1 : data, cut ? size - nv - 1 : 0);
  ember_bpe *b = ember_bpe_load(paths[0], paths[1]);
  if (!b) {
    const char *msg = ember_last_error();
    if (!msg || !*msg) abort();
    return 0;
  }
  int64_t *ids;
  int64_t n = ember_bpe_encode(b, (const char *)data, size, 1, &ids);
  if (n < 0) abort();
  size_t len;
  char *back = ember_bpe_decode(b, ids, n, &len);
  /* <|endoftext|> comes back as its text, so the round trip is exact */
  if (!back || len != size || memcmp(back, data, size) != 0) abort();
  free(back);
  free(ids);
  ember_bpe_free(b);
  return 0;
}
