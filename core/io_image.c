/*
** io_image.c -- decoding PNG and JPEG images (libpng, libjpeg-turbo).
**
** Why these two libraries and not stb_image: they are the maintained,
** security-patched decoders Debian ships and tracks, report errors through
** a handler we control (longjmp back here, never exit()), and take limits;
** a vendored stb_image has a history of hostile-input CVEs and nobody
** would patch our copy.
**
** The format is chosen by the magic bytes, never by the file name.  Every
** decode ends in 8-bit grey (1 channel) or RGB (3): palettes are expanded,
** 16-bit samples scaled to 8 bits with rounding (v * 255 / 65535), low-bit
** grey widened, alpha (RGBA, grey+alpha, a palette's tRNS) dropped as
** PIL's convert("RGB") drops it, interlaced PNGs de-interlaced.  A CMYK or
** YCCK JPEG is refused.  Then the requested channels: grey becomes RGB by
** copying, RGB becomes grey with PIL's "L" weights (ITU-R 601-2 luma in
** 16-bit fixed point, so the bytes equal PIL's).
**
** Nothing in a file is trusted.  Before anything the size of the image is
** allocated, its pixel count is checked against EMBER_IMAGE_MAX_PIXELS and
** against what the file's bytes could possibly encode (deflate expands a
** byte to at most 1032; a Huffman-coded JPEG spends at least one bit on
** each 8x8 block of its first component), so a 50-byte file claiming
** 16384x16384 is refused at once instead of allocating 800 MB.  A file cut
** short is an error (libjpeg's "premature end of data" warning included:
** it would otherwise pad the image with grey).
**
** No globals: each decode has its own libpng/libjpeg state and message
** buffer, so images decode on several threads at once (ember_read_images
** does, with OpenMP).
*/
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

#include "include/ember.h"

#define MSG_SIZE 400

/* deflate's best ratio (see io_idx.c), and the pixels one byte of a
   Huffman-coded JPEG can cover at best (64 pixels per bit). */
#define PNG_MAX_RATIO 1032u
#define JPEG_MAX_PIXELS_PER_BYTE 512u

/* A decoded image: h rows of w pixels of c (1 or 3) bytes each. */
typedef struct {
  unsigned char *px;
  int64_t h, w;
  int c;
} image;

/* Format a message into err (MSG_SIZE bytes), "'name': ..." */
static void say(char *err, const char *name, const char *fmt, ...) {
  int k = snprintf(err, MSG_SIZE, "'%s' ", name);
  if (k < 0 || k >= MSG_SIZE) return;   /* a name that long: the name is it */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + k, MSG_SIZE - (size_t)k, fmt, ap);
  va_end(ap);
}

/* Is w x h nonempty, within EMBER_IMAGE_MAX_PIXELS, and within
   pixels_cap (what the file's `size` bytes can encode)?  Else a message. */
static int check_dims(char *err, const char *name, const char *fmt_name,
                      uint64_t w, uint64_t h, uint64_t size, uint64_t pixels_cap) {
  if (w == 0 || h == 0) {
    say(err, name, "is a %s of size %llux%llu (empty)", fmt_name,
        (unsigned long long)w, (unsigned long long)h);
    return -1;
  }
  /* w, h < 2^32 each, so the product cannot wrap */
  if (w * h > (uint64_t)EMBER_IMAGE_MAX_PIXELS) {
    say(err, name, "is a %s of %llux%llu pixels, more than the limit of %llu "
        "pixels", fmt_name, (unsigned long long)w, (unsigned long long)h,
        (unsigned long long)EMBER_IMAGE_MAX_PIXELS);
    return -1;
  }
  if (w * h > pixels_cap) {
    say(err, name, "is truncated or corrupt: a %s of %llux%llu pixels cannot "
        "fit in %llu bytes", fmt_name, (unsigned long long)w,
        (unsigned long long)h, (unsigned long long)size);
    return -1;
  }
  return 0;
}

/* {====================================================================
** PNG
** ===================================================================== */

typedef struct {
  const unsigned char *buf;
  size_t size, pos;
  char *err;
  const char *name;
} png_src;

static void png_fail(png_structp png, png_const_charp msg) {
  png_src *s = png_get_error_ptr(png);
  say(s->err, s->name, "is not a valid PNG: %s", msg);
  png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg) {
  (void)png; (void)msg;   /* ancillary trouble: the image still decodes */
}

static void png_read(png_structp png, png_bytep out, png_size_t n) {
  png_src *s = png_get_io_ptr(png);
  if (s->size - s->pos < n) {
    say(s->err, s->name, "is truncated (PNG data ends after %zu bytes)", s->size);
    png_longjmp(png, 1);
  }
  memcpy(out, s->buf + s->pos, n);
  s->pos += n;
}

static int decode_png(const unsigned char *buf, size_t size, const char *name,
                      image *im, char *err) {
  png_src src = {buf, size, 0, err, name};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src,
                                           png_fail, png_warn);
  if (!png) { say(err, name, "cannot be decoded: out of memory"); return -1; }
  png_infop info = png_create_info_struct(png);
  /* im->px and the row pointers live in memory, not registers, so they
     survive the longjmp; volatile keeps the compiler honest about it. */
  png_bytep *volatile rows = NULL;
  im->px = NULL;
  if (!info || setjmp(png_jmpbuf(png))) {
    if (!info) say(err, name, "cannot be decoded: out of memory");
    png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    free(rows);
    free(im->px);
    im->px = NULL;
    return -1;
  }
  png_set_read_fn(png, &src, png_read);
  png_set_user_limits(png, 1u << 24, 1u << 24);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info);
  png_uint_32 h = png_get_image_height(png, info);
  int depth = png_get_bit_depth(png, info);
  int channels = png_get_channels(png, info);
  uint64_t raw = (uint64_t)h * (1 + ((uint64_t)w * channels * depth + 7) / 8);
  uint64_t cap = raw <= (uint64_t)size * PNG_MAX_RATIO ? UINT64_MAX : 0;
  if (check_dims(err, name, "PNG", w, h, size, cap) < 0) png_longjmp(png, 1);

  int type = png_get_color_type(png, info);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_scale_16(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  im->c = png_get_channels(png, info);
  im->w = w;
  im->h = h;
  if ((im->c != 1 && im->c != 3) || png_get_rowbytes(png, info) != (size_t)w * im->c) {
    say(err, name, "is a PNG of an unsupported kind (color type %d, %d bits)",
        type, depth);
    png_longjmp(png, 1);
  }
  im->px = malloc((size_t)w * h * im->c);
  rows = malloc(sizeof *rows * h);
  if (!im->px || !rows) {
    say(err, name, "cannot be decoded: out of memory");
    png_longjmp(png, 1);
  }
  for (png_uint_32 y = 0; y < h; y++) rows[y] = im->px + (size_t)y * w * im->c;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  return 0;
}

/* }==================================================================== */

/* {====================================================================
** JPEG
** ===================================================================== */

typedef struct {
  struct jpeg_error_mgr mgr;   /* first: libjpeg passes &mgr as cinfo->err */
  jmp_buf jump;
  char *err;
  const char *name;
} jpeg_err;

static void jpeg_fail(j_common_ptr cinfo) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  char msg[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, msg);
  say(e->err, e->name, "is not a valid JPEG: %s", msg);
  longjmp(e->jump, 1);
}

/* Warnings are ignored but one: data ending early, which libjpeg would
   paper over by padding the image with grey.  A file missing only its
   end-of-image marker ends early too (the decoder reads ahead), and is
   refused as PIL refuses it. */
static void jpeg_message(j_common_ptr cinfo, int level) {
  jpeg_err *e = (jpeg_err *)cinfo->err;
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    say(e->err, e->name, "is truncated (JPEG data ends early)");
    longjmp(e->jump, 1);
  }
}

static int decode_jpeg(const unsigned char *buf, size_t size, const char *name,
                       image *im, char *err) {
  struct jpeg_decompress_struct cinfo;
  jpeg_err e;
  cinfo.err = jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_fail;
  e.mgr.emit_message = jpeg_message;
  e.err = err;
  e.name = name;
  im->px = NULL;
  if (setjmp(e.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(im->px);
    im->px = NULL;
    return -1;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, buf, (unsigned long)size);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    say(err, name, "is a CMYK JPEG, which is not supported (convert it to RGB)");
    longjmp(e.jump, 1);
  }
  if (cinfo.num_components != 1 && cinfo.num_components != 3) {
    say(err, name, "is a JPEG with %d components, expected 1 (grey) or 3 (color)",
        cinfo.num_components);
    longjmp(e.jump, 1);
  }
  uint64_t w = cinfo.image_width, h = cinfo.image_height;
  if (check_dims(err, name, "JPEG", w, h, size,
                 (uint64_t)size * JPEG_MAX_PIXELS_PER_BYTE) < 0)
    longjmp(e.jump, 1);
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  im->c = cinfo.output_components;
  im->w = cinfo.output_width;
  im->h = cinfo.output_height;
  im->px = malloc((size_t)im->w * im->h * im->c);
  if (!im->px) {
    say(err, name, "cannot be decoded: out of memory");
    longjmp(e.jump, 1);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = im->px + (size_t)cinfo.output_scanline * im->w * im->c;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return 0;
}

/* }==================================================================== */

/* Make im have `channels` channels (1 or 3). */
static int convert(image *im, int channels, const char *name, char *err) {
  size_t n = (size_t)im->h * im->w;
  if (im->c == channels) return 0;
  if (channels == 1) {   /* RGB -> L, in place (PIL's weights and rounding) */
    for (size_t i = 0; i < n; i++) {
      const unsigned char *p = im->px + 3 * i;
      im->px[i] = (unsigned char)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u +
                                   0x8000u) >> 16);
    }
  } else {
    unsigned char *rgb = malloc(3 * n);
    if (!rgb) { say(err, name, "cannot be decoded: out of memory"); return -1; }
    for (size_t i = 0; i < n; i++)
      rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = im->px[i];
    free(im->px);
    im->px = rgb;
  }
  im->c = channels;
  return 0;
}

static int decode(const unsigned char *buf, size_t size, int channels,
                  const char *name, image *im, char *err) {
  static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  int r;
  if (size >= 8 && memcmp(buf, png_magic, 8) == 0)
    r = decode_png(buf, size, name, im, err);
  else if (size >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
    r = decode_jpeg(buf, size, name, im, err);
  else {
    say(err, name, "is not a PNG or JPEG file%s", size == 0 ? " (it is empty)" : "");
    return -1;
  }
  if (r == 0 && convert(im, channels, name, err) < 0) {
    free(im->px);
    return -1;
  }
  return r;
}

/* The whole file at path, in *buf (malloc'd). */
static int slurp(const char *path, unsigned char **buf, size_t *size, char *err) {
  *buf = NULL;
  /* O_NONBLOCK: opening a named pipe would otherwise wait for a writer
     before fstat could refuse it (no effect on reading a regular file) */
  int fd = open(path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) {
    say(err, path, "cannot be opened: %s", strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
    say(err, path, "is not a regular file");
    close(fd);
    return -1;
  }
  if ((uint64_t)st.st_size > EMBER_IMAGE_MAX_FILE_BYTES) {
    say(err, path, "is %lld bytes, more than the limit of %llu for an image",
        (long long)st.st_size, (unsigned long long)EMBER_IMAGE_MAX_FILE_BYTES);
    close(fd);
    return -1;
  }
  *size = (size_t)st.st_size;
  *buf = malloc(*size ? *size : 1);
  if (!*buf) {
    say(err, path, "cannot be read: out of memory");
    close(fd);
    return -1;
  }
  size_t got = 0;
  while (got < *size) {
    ssize_t k = read(fd, *buf + got, *size - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(fd);
  *size = got;   /* a file that shrank while read is simply shorter */
  return 0;
}

static int check_channels(int channels, const char *fn) {
  if (channels != 1 && channels != 3) {
    ember_set_error("%s: channels must be 1 (grey) or 3 (RGB), got %d", fn, channels);
    return -1;
  }
  return 0;
}

static int read_file(const char *path, int channels, image *im, char *err) {
  unsigned char *buf;
  size_t size;
  if (slurp(path, &buf, &size, err) < 0) return -1;
  int r = decode(buf, size, channels, path, im, err);
  free(buf);
  return r;
}

/* Bilinear resize of im (uint8 HWC) to float32 C x h x w in [0, 1] at
   dst, as torch.nn.functional.interpolate(mode = "bilinear",
   align_corners = False, antialias = False) computes it on the image as
   float / 255, in float: a source coordinate (i + 0.5) * in / out - 0.5,
   clamped to [0, in - 1] (past 2^23 pixels float rounding can carry the
   last one past the end).  The same size copies the pixels exactly (the
   formula would give them too, but for rounding past 2^23). */
static int to_chw(const image *im, int64_t h, int64_t w, float *dst,
                  const char *name, char *err) {
  const int c = im->c;
  const float k = 1.0f / 255.0f;
  if (h == im->h && w == im->w) {
    for (int ch = 0; ch < c; ch++)
      for (size_t i = 0; i < (size_t)h * (size_t)w; i++)
        dst[(size_t)ch * h * w + i] = im->px[i * c + ch] * k;
    return 0;
  }
  int64_t *x0 = malloc(sizeof *x0 * 2 * (size_t)w);
  float *lx = malloc(sizeof *lx * (size_t)w);
  if (!x0 || !lx) {
    free(x0); free(lx);
    say(err, name, "cannot be resized: out of memory");
    return -1;
  }
  int64_t *x1 = x0 + w;
  float sx = (float)im->w / (float)w, sy = (float)im->h / (float)h;
  for (int64_t x = 0; x < w; x++) {
    float src = sx * ((float)x + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    x0[x] = (int64_t)src < im->w - 1 ? (int64_t)src : im->w - 1;
    lx[x] = src - (float)x0[x];
    x1[x] = x0[x] < im->w - 1 ? x0[x] + 1 : x0[x];
  }
  for (int64_t y = 0; y < h; y++) {
    float src = sy * ((float)y + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    int64_t y0 = (int64_t)src < im->h - 1 ? (int64_t)src : im->h - 1;
    int64_t y1 = y0 < im->h - 1 ? y0 + 1 : y0;
    float ly = src - (float)y0;
    const unsigned char *r0 = im->px + (size_t)y0 * im->w * c;
    const unsigned char *r1 = im->px + (size_t)y1 * im->w * c;
    for (int ch = 0; ch < c; ch++) {
      float *out = dst + ((size_t)ch * h + y) * w;
      for (int64_t x = 0; x < w; x++) {
        float a = r0[x0[x] * c + ch] * k, b = r0[x1[x] * c + ch] * k;
        float d = r1[x0[x] * c + ch] * k, e = r1[x1[x] * c + ch] * k;
        out[x] = (1 - ly) * ((1 - lx[x]) * a + lx[x] * b) +
                 ly * ((1 - lx[x]) * d + lx[x] * e);
      }
    }
  }
  free(x0);
  free(lx);
  return 0;
}

/* A uint8 H x W x C tensor holding a copy of im's pixels; im->px is
   freed either way. */
static ember_tensor *hwc_tensor(image *im) {
  int64_t shape[3] = {im->h, im->w, im->c};
  ember_tensor *t = ember_empty(3, shape, EMBER_UINT8);
  if (t) memcpy(ember_data(t), im->px, (size_t)im->h * im->w * im->c);
  free(im->px);
  return t;
}

ember_tensor *ember_decode_image(const void *data, size_t size, int channels,
                                 const char *name) {
  if (check_channels(channels, "decode_image") < 0) return NULL;
  if (!data && size) {
    ember_set_error("decode_image: no data");
    return NULL;
  }
  char err[MSG_SIZE];
  image im;
  if (decode(data, size, channels, name ? name : "<memory>", &im, err) < 0) {
    ember_set_error("decode_image: %s", err);
    return NULL;
  }
  return hwc_tensor(&im);
}

ember_tensor *ember_read_image(const char *path, int channels) {
  if (check_channels(channels, "read_image") < 0) return NULL;
  char err[MSG_SIZE];
  image im;
  if (read_file(path, channels, &im, err) < 0) {
    ember_set_error("read_image: %s", err);
    return NULL;
  }
  return hwc_tensor(&im);
}

/* Decode path and write it, resized to h x w, as C x h x w floats: into
   dst, or (made not NULL) into a new tensor *made, where h = 0 keeps the
   image's size.  The message goes to err (not ember_set_error: a batch
   runs this on OpenMP threads, whose thread-local message the caller
   would never see). */
static int read_chw(const char *path, int channels, int64_t h, int64_t w,
                    float *dst, ember_tensor **made, char *err) {
  image im;
  if (read_file(path, channels, &im, err) < 0) return -1;
  if (made) {
    if (h == 0) h = im.h, w = im.w;
    int64_t shape[3] = {channels, h, w};
    *made = ember_empty(3, shape, EMBER_FLOAT32);
    if (!*made) {
      free(im.px);
      snprintf(err, MSG_SIZE, "%s", ember_last_error());
      return -1;
    }
    dst = ember_data(*made);
  }
  int r = to_chw(&im, h, w, dst, path, err);
  free(im.px);
  return r;
}

ember_tensor *ember_read_image_chw(const char *path, int channels, int64_t h,
                                   int64_t w) {
  if (check_channels(channels, "read_image") < 0) return NULL;
  if (h < 0 || w < 0 || (h == 0) != (w == 0) || h > EMBER_IMAGE_MAX_PIXELS ||
      w > EMBER_IMAGE_MAX_PIXELS || h * w > EMBER_IMAGE_MAX_PIXELS) {
    ember_set_error("read_image: the size %lldx%lld is not positive, or "
                    "over the limit", (long long)h, (long long)w);
    return NULL;
  }
  char err[MSG_SIZE];
  ember_tensor *t = NULL;
  if (read_chw(path, channels, h, w, NULL, &t, err) < 0) {
    ember_tensor_release(t);
    ember_set_error("read_image: %s", err);
    return NULL;
  }
  return t;
}

int ember_read_images(ember_tensor *dst, const char *const *paths, int64_t n) {
  if (!dst || dst->storage->device != EMBER_CPU || dst->dtype != EMBER_FLOAT32 ||
      dst->ndim != 4 || !ember_is_contiguous(dst) || dst->shape[0] != n) {
    ember_set_error("read_images: expected a contiguous float32 CPU tensor of "
                    "shape [%lld, C, H, W]", (long long)n);
    return -1;
  }
  if (dst->shape[1] != 1 && dst->shape[1] != 3) {
    ember_set_error("read_images: channels must be 1 (grey) or 3 (RGB), got %lld",
                    (long long)dst->shape[1]);
    return -1;
  }
  if (dst->shape[2] * dst->shape[3] > EMBER_IMAGE_MAX_PIXELS) {
    ember_set_error("read_images: the size %lldx%lld is over the limit of %lld "
                    "pixels", (long long)dst->shape[2], (long long)dst->shape[3],
                    (long long)EMBER_IMAGE_MAX_PIXELS);
    return -1;
  }
  int channels = (int)dst->shape[1];
  int64_t h = dst->shape[2], w = dst->shape[3];
  if (n == 0 || h == 0 || w == 0) return 0;
  float *base = ember_data(dst);
  size_t per = (size_t)channels * h * w;
  /* the first failing image (by index) gives the message, whichever
     thread saw it first */
  int64_t bad = n;
  char bad_err[MSG_SIZE] = "";
  #pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (int64_t i = 0; i < n; i++) {
    char err[MSG_SIZE];
    if (read_chw(paths[i], channels, h, w, base + (size_t)i * per, NULL, err) < 0) {
      #pragma omp critical(ember_read_images)
      if (i < bad) {
        bad = i;
        memcpy(bad_err, err, MSG_SIZE);
      }
    }
  }
  if (bad < n) {
    ember_set_error("read_image: %s", bad_err);
    return -1;
  }
  return 0;
}
