/*
** io_idx.c -- reading IDX files (the format of MNIST and Fashion-MNIST).
**
** An IDX file is a 4-byte magic (two zero bytes, a type byte, a rank byte),
** one big-endian uint32 per dimension, then the elements, big-endian, in
** row-major order.  Files are read through zlib's gz* functions, which read
** a gzip file and a plain one alike, so `x-idx3-ubyte` and
** `x-idx3-ubyte.gz` take the same path.
**
** Nothing in the file is trusted: the magic, the type and the rank are
** checked, the dims' product is overflow-checked and bounded before any
** allocation (by the file's size: a plain file must hold it, a gzip file
** must be large enough to expand to it), the data must be exactly as long
** as the dims say (no fewer and no more bytes), and a damaged gzip stream
** reports zlib's message.
**
** Types: 0x08 uint8, 0x0C int32, 0x0D float32 and 0x0E float64 keep their
** type; 0x09 int8 and 0x0B int16 have no Ember dtype and are widened to
** int32 (exactly).
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "include/ember.h"

/* The most data bytes (as stored in the file) a file may declare.  Larger
   claims are refused before anything is allocated. */
#define IDX_MAX_BYTES EMBER_IDX_MAX_BYTES

/* Bytes per gzread call when staging widened types (and the most any
   single gzread is asked for: it takes an unsigned and returns an int). */
#define STAGE_BYTES (256u << 10)
#define MAX_READ (1u << 30)

/* The most bytes deflate can expand one compressed byte to: a match of 258
   bytes costs at least 2 bits, so no gzip stream (nor a run of them) holds
   more than 1032 times its own size. */
#define GZ_MAX_RATIO 1032u

/* An IDX type byte: its element size in the file and the dtype it reads
   as; 0 for an unknown type. */
static size_t idx_type(int code, ember_dtype *dt) {
  switch (code) {
    case 0x08: *dt = EMBER_UINT8; return 1;
    case 0x09: *dt = EMBER_INT32; return 1;   /* int8, widened */
    case 0x0B: *dt = EMBER_INT32; return 2;   /* int16, widened */
    case 0x0C: *dt = EMBER_INT32; return 4;
    case 0x0D: *dt = EMBER_FLOAT32; return 4;
    case 0x0E: *dt = EMBER_FLOAT64; return 8;
    default: return 0;
  }
}

/* An open file: zlib's handle and what messages need. */
typedef struct {
  gzFile gz;
  const char *path;
} idx_file;

/* Set the message for a failed gzread: a damaged gzip stream names zlib's
   reason (without the "<fd:N>: " zlib puts in front of it: the stream was
   opened with gzdopen), an I/O error the system's. */
static void read_error(const idx_file *f) {
  int errnum;
  const char *msg = gzerror(f->gz, &errnum);
  if (errnum == Z_ERRNO) {
    ember_set_error("read_idx: cannot read '%s': %s", f->path, strerror(errno));
    return;
  }
  const char *sep = strstr(msg, ": ");
  if (strncmp(msg, "<fd:", 4) == 0 && sep) msg = sep + 2;
  ember_set_error("read_idx: '%s' is corrupt (gzip): %s", f->path, msg);
}

/* Read up to n bytes into buf.  Returns the count read (short only at the
   end of the data), or -1 after setting the message.  A gzip stream cut
   short is the end of the data, not an error: the caller reports the
   truncation with the counts. */
static int64_t read_bytes(const idx_file *f, void *buf, uint64_t n) {
  uint64_t got = 0;
  while (got < n) {
    uint64_t want = n - got < MAX_READ ? n - got : MAX_READ;
    int r = gzread(f->gz, (char *)buf + got, (unsigned)want);
    if (r < 0) {
      int errnum;
      gzerror(f->gz, &errnum);
      if (errnum == Z_BUF_ERROR) break;   /* "unexpected end of file" */
      read_error(f);
      return -1;
    }
    if (r == 0) {
      int errnum;
      gzerror(f->gz, &errnum);
      if (errnum != Z_OK && errnum != Z_BUF_ERROR) { read_error(f); return -1; }
      break;
    }
    got += (uint64_t)r;
  }
  return (int64_t)got;
}

/* Decode n big-endian elements of `size` bytes from src into dst, of dtype
   dt.  Byte by byte with shifts, so it is right on any host. */
static void decode(void *dst, const unsigned char *src, int64_t n,
                   size_t size, ember_dtype dt) {
  switch (size) {
    case 1:
      if (dt == EMBER_UINT8) memcpy(dst, src, (size_t)n);
      else
        for (int64_t i = 0; i < n; i++)
          ((int32_t *)dst)[i] = (int8_t)src[i];
      break;
    case 2:
      for (int64_t i = 0; i < n; i++)
        ((int32_t *)dst)[i] = (int16_t)(uint16_t)(src[2 * i] << 8 | src[2 * i + 1]);
      break;
    case 4:
      for (int64_t i = 0; i < n; i++) {
        const unsigned char *b = src + 4 * i;
        uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                     (uint32_t)b[2] << 8 | b[3];
        memcpy((char *)dst + 4 * i, &v, 4);
      }
      break;
    default:
      for (int64_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++) v = v << 8 | src[8 * i + k];
        memcpy((char *)dst + 8 * i, &v, 8);
      }
      break;
  }
}

/*
** Read the data into t.  Types that keep their size are read straight into
** the tensor and decoded in place (decode reads each element before it
** writes it); widened ones go through a staging buffer.  Returns the bytes
** read (short if the file is), or -1.
*/
static int64_t read_data(const idx_file *f, ember_tensor *t, size_t size,
                         uint64_t nbytes) {
  unsigned char *dst = ember_data(t);
  size_t out_size = ember_dtype_size(t->dtype);
  if (out_size == size) {
    int64_t got = read_bytes(f, dst, nbytes);
    if (got > 0) decode(dst, dst, got / (int64_t)size, size, t->dtype);
    return got;
  }
  unsigned char *stage = malloc(STAGE_BYTES);
  if (!stage) {
    ember_set_error("read_idx: out of memory");
    return -1;
  }
  uint64_t done = 0;
  while (done < nbytes) {
    uint64_t want = nbytes - done < STAGE_BYTES ? nbytes - done : STAGE_BYTES;
    int64_t got = read_bytes(f, stage, want);
    if (got < 0) { free(stage); return -1; }
    decode(dst + done / size * out_size, stage, got / (int64_t)size, size,
           t->dtype);
    done += (uint64_t)got;
    if ((uint64_t)got < want) break;
  }
  free(stage);
  return (int64_t)done;
}

/* Count the bytes left after the data (the file should have none).  Also
   runs zlib to the end of the stream, where it checks the CRC.  Returns
   the count or -1. */
static int64_t count_rest(const idx_file *f) {
  char buf[4096];
  int64_t extra = 0;
  for (;;) {
    int64_t got = read_bytes(f, buf, sizeof buf);
    if (got < 0) return -1;
    extra += got;
    if (got < (int64_t)sizeof buf) return extra;
  }
}

/* Check the header (already read) and work out the shape, dtype and data
   size.  Returns 0 or -1. */
static int parse_header(const idx_file *f, const unsigned char *magic,
                        const unsigned char *dimbytes, int64_t *shape,
                        ember_dtype *dt, size_t *size, uint64_t *nbytes) {
  int ndim = magic[3];
  uint64_t numel = 1;
  int overflow = 0;
  int empty = 0;
  for (int i = 0; i < ndim; i++) {
    const unsigned char *b = dimbytes + 4 * i;
    uint32_t d = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                 (uint32_t)b[2] << 8 | b[3];
    shape[i] = d;
    if (d == 0) empty = 1;
    /* numel <= 2^32 before and d < 2^32, so the product cannot wrap */
    if (!overflow) {
      numel *= d;
      if (numel > IDX_MAX_BYTES) overflow = 1;
    }
  }
  if (empty) { numel = 0; overflow = 0; }   /* a size-0 dim: no data */
  *size = idx_type(magic[2], dt);
  if (overflow || numel * *size > IDX_MAX_BYTES) {
    char buf[256];
    ember_set_error("read_idx: '%s' declares a shape %s of more than %llu "
                    "bytes of data, which is over the limit",
                    f->path, ember_shape_str(buf, sizeof buf, ndim, shape),
                    (unsigned long long)IDX_MAX_BYTES);
    return -1;
  }
  *nbytes = numel * *size;
  return 0;
}

/* Open path as a gz stream; *file_size gets the size of a regular file
   (-1 for anything else).  Returns 0 or -1. */
static int open_file(idx_file *f, const char *path, int64_t *file_size) {
  f->path = path;
  f->gz = NULL;
  *file_size = -1;
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    ember_set_error("read_idx: cannot open '%s': %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      close(fd);
      ember_set_error("read_idx: cannot read '%s': it is a directory", path);
      return -1;
    }
    if (S_ISREG(st.st_mode)) *file_size = (int64_t)st.st_size;
  }
  f->gz = gzdopen(fd, "rb");
  if (!f->gz) {
    close(fd);
    ember_set_error("read_idx: cannot open '%s': out of memory", path);
    return -1;
  }
  gzbuffer(f->gz, 128u << 10);
  return 0;
}

ember_tensor *ember_read_idx(const char *path) {
  if (!path || !*path) {
    ember_set_error("read_idx: expected a file name, got an empty string");
    return NULL;
  }
  idx_file f;
  int64_t file_size;
  if (open_file(&f, path, &file_size) < 0) return NULL;

  ember_tensor *t = NULL;
  unsigned char magic[4], dimbytes[4 * EMBER_MAX_DIMS];
  int64_t got = read_bytes(&f, magic, 4);
  if (got < 0) goto fail;
  if (got < 4) {
    ember_set_error("read_idx: '%s' is truncated: expected a 4-byte header, "
                    "got %lld bytes", path, (long long)got);
    goto fail;
  }
  if (magic[0] != 0 || magic[1] != 0) {
    ember_set_error("read_idx: '%s' is not an IDX file: expected it to start "
                    "with the bytes 00 00, got %02X %02X", path, magic[0],
                    magic[1]);
    goto fail;
  }
  ember_dtype dt;
  if (!idx_type(magic[2], &dt)) {
    ember_set_error("read_idx: '%s' has an unknown data type 0x%02X (expected "
                    "0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)", path, magic[2]);
    goto fail;
  }
  int ndim = magic[3];
  if (ndim < 1 || ndim > EMBER_MAX_DIMS) {
    ember_set_error("read_idx: '%s' has %d dimensions, expected 1 to %d",
                    path, ndim, EMBER_MAX_DIMS);
    goto fail;
  }
  got = read_bytes(&f, dimbytes, 4 * (uint64_t)ndim);
  if (got < 0) goto fail;
  if (got < 4 * ndim) {
    ember_set_error("read_idx: '%s' is truncated: expected a %d-byte header, "
                    "got %lld bytes", path, 4 + 4 * ndim, (long long)(4 + got));
    goto fail;
  }
  int64_t shape[EMBER_MAX_DIMS];
  size_t size;
  uint64_t nbytes;
  if (parse_header(&f, magic, dimbytes, shape, &dt, &size, &nbytes) < 0)
    goto fail;

  /* A plain file's length is known now: check it before allocating.  A
     gzip file's is not, but deflate cannot do better than GZ_MAX_RATIO, so
     a claim past that many times the file's size is refused here too,
     and a 100-byte file never makes us allocate gigabytes.  (A stream that
     is not a regular file is bounded by IDX_MAX_BYTES only.) */
  int64_t header = 4 + 4 * (int64_t)ndim;
  if (file_size >= 0 && !gzdirect(f.gz) &&
      nbytes + (uint64_t)header > (uint64_t)file_size * GZ_MAX_RATIO) {
    ember_set_error("read_idx: '%s' is truncated or corrupt: it declares "
                    "%llu bytes of data, more than its %lld bytes of gzip "
                    "could hold (at most %llu)", path,
                    (unsigned long long)nbytes, (long long)file_size,
                    (unsigned long long)file_size * GZ_MAX_RATIO);
    goto fail;
  }
  if (file_size >= 0 && gzdirect(f.gz)) {
    int64_t have = file_size - header;
    if (have < (int64_t)nbytes) {
      ember_set_error("read_idx: '%s' is truncated: expected %llu bytes of "
                      "data, got %lld", path, (unsigned long long)nbytes,
                      (long long)have);
      goto fail;
    }
    if (have > (int64_t)nbytes) {
      ember_set_error("read_idx: '%s' has %lld extra bytes after the "
                      "expected %llu bytes of data", path,
                      (long long)(have - (int64_t)nbytes),
                      (unsigned long long)nbytes);
      goto fail;
    }
  }

  t = ember_empty(ndim, shape, dt);
  if (!t) goto fail;
  got = read_data(&f, t, size, nbytes);
  if (got < 0) goto fail;
  if ((uint64_t)got < nbytes) {
    ember_set_error("read_idx: '%s' is truncated: expected %llu bytes of "
                    "data, got %lld", path, (unsigned long long)nbytes,
                    (long long)got);
    goto fail;
  }
  int64_t extra = count_rest(&f);
  if (extra < 0) goto fail;
  if (extra > 0) {
    ember_set_error("read_idx: '%s' has %lld extra bytes after the expected "
                    "%llu bytes of data", path, (long long)extra,
                    (unsigned long long)nbytes);
    goto fail;
  }
  if (gzclose(f.gz) != Z_OK) {
    f.gz = NULL;
    ember_set_error("read_idx: cannot read '%s': error closing the file", path);
    goto fail;
  }
  return t;

fail:
  if (f.gz) gzclose(f.gz);
  ember_tensor_release(t);
  return NULL;
}
