/*
** data_transforms.c -- per-image data augmentation on a float32 N x C x H x W
** batch (data.transforms), and the batch queue behind the loader's
** prefetch: one worker thread that cuts batches while a step runs.
**
** Randomness.  Step s of a pipeline of n steps, on image i of a batch,
** draws from Philox at (seed, offset + i * n + s): one call gives four
** words, enough for any step (a crop's two offsets, a flip's coin, an
** angle).  The caller reserves the counters on its own thread (the Lua
** loader does at the start of an epoch), so an image's result depends only
** on (seed, counter): not on threads, not on prefetching.
**
** The transforms follow torchvision: RandomCrop(size, padding) pads (with
** a constant or by reflection) and takes a window at a uniform offset;
** RandomHorizontalFlip(p); Normalize(mean, std) per channel;
** RandomRotation(degrees) about the centre, counter-clockwise for positive
** angles, bilinear, with torchvision's fill rule: it samples a channel of
** ones alongside (m, the weight that fell inside the image) and returns
** sample * m + (1 - m) * fill, so the border fades towards the fill even
** for fill 0.
*/
#define _GNU_SOURCE 1
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"
#include "philox.h"
#include "cpu/cpu.h"

#define PI 3.14159265358979323846
#define EMBER_TF_MAX_SIDE (1 << 20)

/* Two uniforms in [0, 1) with 53 bits each from one Philox call. */
static void draw2(uint64_t seed, uint64_t counter, double u[2]) {
  uint32_t w[4];
  ember_philox(seed, counter, w);
  u[0] = (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) * 0x1p-53;
  u[1] = (double)((((uint64_t)w[2] << 32) | w[3]) >> 11) * 0x1p-53;
}

/* An integer uniform in [0, n) from u in [0, 1). */
static int64_t pick(double u, int64_t n) {
  int64_t k = (int64_t)(u * (double)n);
  return k >= n ? n - 1 : k;
}

/* The image size after each step; checks the steps against the input. */
static int check_steps(const ember_transform *tf, int n, int64_t C, int64_t *H,
                       int64_t *W, int64_t *most) {
  *most = C * *H * *W;
  for (int s = 0; s < n; s++) {
    const ember_transform *t = &tf[s];
    switch (t->kind) {
    case EMBER_TF_CROP: {
      /* the bounds keep every size product far from overflow: checked
         before the padded size is computed */
      if (t->h < 1 || t->w < 1 || t->padding < 0 || t->padding > EMBER_TF_MAX_SIDE)
        return ember_set_error("RandomCrop: size must be positive and padding in "
                               "0..%d", EMBER_TF_MAX_SIDE);
      int64_t ph = *H + 2 * t->padding, pw = *W + 2 * t->padding;
      if (t->reflect && (t->padding >= *H || t->padding >= *W))
        return ember_set_error("RandomCrop: reflect padding %lld needs an image larger "
                               "than it, got %lldx%lld", (long long)t->padding,
                               (long long)*H, (long long)*W);
      if (t->h > ph || t->w > pw)
        return ember_set_error("RandomCrop: crop %lldx%lld is larger than the padded "
                               "image %lldx%lld", (long long)t->h, (long long)t->w,
                               (long long)ph, (long long)pw);
      *H = t->h;
      *W = t->w;
      break;
    }
    case EMBER_TF_HFLIP:
      if (!(t->p >= 0 && t->p <= 1))
        return ember_set_error("RandomHorizontalFlip: p must be in [0, 1], got %g", t->p);
      break;
    case EMBER_TF_NORMALIZE:
      if (t->channels != 1 && t->channels != C)
        return ember_set_error("Normalize: %d means and stds for an image of %lld "
                               "channels", t->channels, (long long)C);
      for (int c = 0; c < t->channels; c++)
        if (t->std[c] == 0 || isnan(t->std[c]))
          return ember_set_error("Normalize: std[%d] is %g", c + 1, t->std[c]);
      break;
    case EMBER_TF_ROTATE:
      if (!(t->lo <= t->hi) || !isfinite(t->lo) || !isfinite(t->hi))
        return ember_set_error("RandomRotation: degrees must be a finite range "
                               "lo <= hi, got [%g, %g]", t->lo, t->hi);
      break;
    default:
      return ember_set_error("transforms: unknown transform kind %d", (int)t->kind);
    }
    if (C * *H * *W > *most) *most = C * *H * *W;
  }
  return 0;
}

/* Row y of channel plane `src` (h x w) at column x after padding p:
   the fill value, or the reflected pixel (torch's "reflect": no edge
   repeat). */
static float padded(const float *src, int64_t h, int64_t w, int64_t y,
                    int64_t x, const ember_transform *t) {
  if (y < 0 || y >= h || x < 0 || x >= w) {
    if (!t->reflect) return (float)t->fill;
    if (y < 0) y = -y;
    if (y >= h) y = 2 * (h - 1) - y;
    if (x < 0) x = -x;
    if (x >= w) x = 2 * (w - 1) - x;
  }
  return src[y * w + x];
}

/* One step on one image: src (C x H x W) into dst, *H and *W updated. */
static void apply_step(const ember_transform *t, const float *src, float *dst,
                       int64_t C, int64_t *H, int64_t *W, const double u[2]) {
  int64_t h = *H, w = *W;
  switch (t->kind) {
  case EMBER_TF_CROP: {
    int64_t top = pick(u[0], h + 2 * t->padding - t->h + 1) - t->padding;
    int64_t left = pick(u[1], w + 2 * t->padding - t->w + 1) - t->padding;
    for (int64_t c = 0; c < C; c++)
      for (int64_t y = 0; y < t->h; y++)
        for (int64_t x = 0; x < t->w; x++)
          dst[(c * t->h + y) * t->w + x] = padded(src + c * h * w, h, w, top + y, left + x, t);
    *H = t->h;
    *W = t->w;
    break;
  }
  case EMBER_TF_HFLIP:
    if (u[0] < t->p) {
      for (int64_t r = 0; r < C * h; r++)
        for (int64_t x = 0; x < w; x++) dst[r * w + x] = src[r * w + (w - 1 - x)];
    } else {
      memcpy(dst, src, (size_t)(C * h * w) * sizeof *dst);
    }
    break;
  case EMBER_TF_NORMALIZE:
    for (int64_t c = 0; c < C; c++) {
      int k = t->channels == 1 ? 0 : (int)c;
      float m = (float)t->mean[k], sd = (float)t->std[k];
      for (int64_t i = 0; i < h * w; i++) dst[c * h * w + i] = (src[c * h * w + i] - m) / sd;
    }
    break;
  case EMBER_TF_ROTATE: {
    /* torchvision: output pixel (x, y), centred, samples the input at
       (cos a x - sin a y, sin a x + cos a y) + centre, y pointing down */
    double a = (t->lo + u[0] * (t->hi - t->lo)) * PI / 180.0;
    double ca = cos(a), sa = sin(a), cx = (double)(w - 1) / 2, cy = (double)(h - 1) / 2;
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++) {
        double xs = ca * ((double)x - cx) - sa * ((double)y - cy) + cx;
        double ys = sa * ((double)x - cx) + ca * ((double)y - cy) + cy;
        double x0 = floor(xs), y0 = floor(ys), fx = xs - x0, fy = ys - y0;
        int64_t ix = (int64_t)x0, iy = (int64_t)y0;
        double wt[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
        int64_t px[4] = {ix, ix + 1, ix, ix + 1}, py[4] = {iy, iy, iy + 1, iy + 1};
        double inside = 0;
        for (int k = 0; k < 4; k++)
          if (px[k] >= 0 && px[k] < w && py[k] >= 0 && py[k] < h) inside += wt[k];
        for (int64_t c = 0; c < C; c++) {
          const float *p = src + c * h * w;
          double v = 0;
          for (int k = 0; k < 4; k++)
            if (px[k] >= 0 && px[k] < w && py[k] >= 0 && py[k] < h)
              v += wt[k] * p[py[k] * w + px[k]];
          /* torchvision samples a channel of ones alongside and blends:
             out = sample * inside + (1 - inside) * fill */
          dst[(c * h + y) * w + x] = (float)(v * inside + (1 - inside) * t->fill);
        }
      }
    break;
  }
  }
}

/* The pipeline on x (float32, 4-d, CPU) into a new tensor. */
ember_tensor *ember_transforms_apply(const ember_transform *tf, int n,
                                     const ember_tensor *x, uint64_t seed,
                                     uint64_t offset) {
  if (x->ndim != 4 || x->dtype != EMBER_FLOAT32 || x->storage->device != EMBER_CPU) {
    ember_set_error("transforms: expected a float32 N x C x H x W CPU tensor, got "
                    "a %d-dim %s tensor on %s", x->ndim, ember_dtype_name(x->dtype),
                    ember_device_name(x->storage->device));
    return NULL;
  }
  if (n < 0) {
    ember_set_error("transforms: n must be >= 0");
    return NULL;
  }
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], most;
  if (check_steps(tf, n, C, &H, &W, &most) < 0) return NULL;
  ember_tensor *src = ember_contiguous((ember_tensor *)x);
  if (!src) return NULL;
  int64_t shape[4] = {N, C, H, W};
  ember_tensor *out = ember_empty(4, shape, EMBER_FLOAT32);
  if (!out) {
    ember_tensor_release(src);
    return NULL;
  }
  const float *in = ember_data(src);
  float *res = ember_data(out);
  int64_t isize = C * x->shape[2] * x->shape[3], osize = C * H * W;
  int failed = 0;
  #pragma omp parallel num_threads(ember_cpu_threads()) if (N > 1 && N * most >= EMBER_CPU_PARALLEL_MIN)
  {
    /* two scratch images per thread: each step reads one, writes the other */
    float *buf[2] = {malloc((size_t)(most > 0 ? most : 1) * sizeof(float)),
                     malloc((size_t)(most > 0 ? most : 1) * sizeof(float))};
    int ok = buf[0] && buf[1];
    if (!ok) {
      #pragma omp atomic write
      failed = 1;
    }
    /* every thread of the team must meet the worksharing loop (a thread
       skipping it is undefined behaviour); one without buffers skips its
       images, and failed reports them */
    #pragma omp for
    for (int64_t i = 0; i < N; i++) {
      if (ok) {
        int64_t h = x->shape[2], w = x->shape[3];
        const float *cur = in + i * isize;
        for (int s = 0; s < n; s++) {
          double u[2];
          draw2(seed, offset + (uint64_t)i * (uint64_t)n + (uint64_t)s, u);
          float *next = s == n - 1 ? res + i * osize : buf[s & 1];
          apply_step(&tf[s], cur, next, C, &h, &w, u);
          cur = next;
        }
        if (n == 0) memcpy(res + i * osize, cur, (size_t)osize * sizeof(float));
      }
    }
    free(buf[0]);
    free(buf[1]);
  }
  ember_tensor_release(src);
  if (failed) {
    ember_tensor_release(out);
    ember_set_error("transforms: out of memory");
    return NULL;
  }
  return out;
}

/* The same, reserving N * n counters of g (NULL: the thread's default). */
ember_tensor *ember_transforms_apply_gen(ember_generator *g, const ember_transform *tf,
                                         int n, const ember_tensor *x) {
  if (!g) g = ember_default_generator();
  uint64_t offset = g->offset;
  ember_tensor *out = ember_transforms_apply(tf, n, x, g->seed, offset);
  if (out && x->ndim > 0) g->offset += (uint64_t)x->shape[0] * (uint64_t)n;
  return out;
}
