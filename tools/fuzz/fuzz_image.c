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
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_consume(ember_decode_image(data, size, 3, "fuzz"));
  fuzz_consume(ember_decode_image(data, size, 1, "fuzz"));
  fuzz_consume(ember_read_image_chw(fuzz_file("fuzz_image", data, size), 3, 5, 3));
  return 0;
}
