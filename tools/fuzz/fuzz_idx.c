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
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_consume(ember_read_idx(fuzz_file("fuzz_idx", data, size)));
  return 0;
}
