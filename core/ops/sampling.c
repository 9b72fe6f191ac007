/*
** sampling.c -- ember_multinomial: categories drawn from rows of weights,
** over the `multinomial` kernel slot (core/cpu/sampling.c,
** core/cuda/sampling.cu; the algorithm and its cross-device guarantee are
** described in core/backend.h beside EMBER_MULTINOMIAL_CHUNK).
**
** Not differentiable (integer results), so nothing is recorded.  The
** front door checks everything about the shape here; the kernel checks the
** weights themselves (on CUDA that check is deferred like a bad index).
*/
#include "ops.h"

ember_tensor *ember_multinomial(const ember_tensor *probs, int64_t n,
                                int replacement) {
  return ember_multinomial_gen(NULL, probs, n, replacement);
}

ember_tensor *ember_multinomial_gen(ember_generator *g, const ember_tensor *probs,
                                    int64_t n, int replacement) {
  if (!g) g = ember_default_generator();
  if (probs->ndim < 1 || probs->ndim > 2) {
    ember_set_error("multinomial: prob_dist must be 1 or 2 dim, got %d dims",
                    probs->ndim);
    return NULL;
  }
  if (!ember_dtype_is_float(probs->dtype)) {
    ember_set_error("multinomial: only supports floating-point dtypes for "
                    "input, got %s", ember_dtype_name(probs->dtype));
    return NULL;
  }
  int64_t rows = probs->ndim == 2 ? probs->shape[0] : 1;
  int64_t k = probs->shape[probs->ndim - 1];
  if (n <= 0) {
    ember_set_error("multinomial: cannot sample n_sample <= 0 samples "
                    "(got %lld)", (long long)n);
    return NULL;
  }
  if (k == 0) {
    ember_set_error("multinomial: there are no categories to sample from "
                    "(prob_dist.size(-1) is 0)");
    return NULL;
  }
  if (!replacement && n > k) {
    ember_set_error("multinomial: cannot sample n_sample > prob_dist.size(-1) "
                    "samples without replacement (%lld > %lld)", (long long)n,
                    (long long)k);
    return NULL;
  }
  if (rows > INT64_MAX / n) {
    ember_set_error("multinomial: %lld x %lld samples are too many",
                    (long long)rows, (long long)n);
    return NULL;
  }
  const ember_backend_i *be = ember_backend_of(probs);
  if (!be) return NULL;
  if (!be->multinomial) {
    ember_set_error("multinomial: not supported on %s", be->name);
    return NULL;
  }
  ember_temps T;
  ember_temps_init(&T);
  int prev = ember_ag_pause();
  /* the kernel reads float32 or float64 [rows, k], contiguous; half
     types are widened (exactly) to float32 */
  int64_t shape2[2] = {rows, k}, oshape[2] = {rows, n};
  const ember_tensor *p = probs;
  if (p->dtype != EMBER_FLOAT32 && p->dtype != EMBER_FLOAT64)
    p = ember_temp(&T, ember_to_dtype(p, EMBER_FLOAT32));
  p = p ? ember_temp(&T, ember_reshape(p, 2, shape2)) : NULL;
  p = p ? ember_temp(&T, ember_contiguous(p)) : NULL;
  ember_tensor *out = p ? ember_temp(&T, ember_empty_on(probs->storage->device,
                                                        2, oshape, EMBER_INT64))
                        : NULL;
  ember_tensor *r = NULL;
  if (out && rows > 0 &&
      be->multinomial(out, p, replacement, g->seed, g->offset) < 0)
    out = NULL;
  if (out) {
    g->offset += (uint64_t)(rows * n);
    r = ember_reshape(out, probs->ndim, probs->ndim == 2 ? oshape : &n);
  }
  ember_ag_resume(prev);
  ember_temps_release(&T);
  return r;
}
