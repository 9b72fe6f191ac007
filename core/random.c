/*
** random.c -- the generator's state and the random creation functions.
**
** State: a 64-bit seed (Philox's key) and a 64-bit counter.  A draw of n
** elements uses counters [counter, counter + n) and then advances the
** counter by n, so every draw is reproducible from manual_seed alone and
** independent of the thread count.  The default seed is fixed, as in
** PyTorch, so runs are reproducible even without manual_seed.
*/
#include "backend.h"

#define DEFAULT_SEED 67280421310721ULL

static uint64_t seed = DEFAULT_SEED;
static uint64_t counter = 0;

void ember_manual_seed(uint64_t s) {
  seed = s;
  counter = 0;
}

uint64_t ember_initial_seed(void) { return seed; }

static ember_tensor *draw(const char *fn, int kind, int ndim,
                          const int64_t *shape, ember_dtype dt, double a,
                          double b) {
  if (kind < 2 && !ember_dtype_is_float(dt)) {
    ember_set_error("%s: expected a floating dtype, got %s", fn,
                    ember_dtype_name(dt));
    return NULL;
  }
  if (ember_check_shape(fn, ndim, shape) < 0) return NULL;
  ember_tensor *t = ember_empty(ndim, shape, dt);
  if (!t) return NULL;
  uint64_t n = (uint64_t)ember_numel(t);
  ember_backend_of(t)->random(kind, t, seed, counter, a, b);
  counter += n;
  return t;
}

ember_tensor *ember_rand(int ndim, const int64_t *shape, ember_dtype dt) {
  return draw("rand", 0, ndim, shape, dt, 0.0, 1.0);
}

ember_tensor *ember_randn(int ndim, const int64_t *shape, ember_dtype dt) {
  return draw("randn", 1, ndim, shape, dt, 0.0, 1.0);
}

ember_tensor *ember_randint(int64_t low, int64_t high, int ndim,
                            const int64_t *shape, ember_dtype dt) {
  if (low > high) {
    ember_set_error("randint: empty range [%lld, %lld]", (long long)low,
                    (long long)high);
    return NULL;
  }
  if (dt == EMBER_BOOL) {
    ember_set_error("randint: bool is not an integer dtype");
    return NULL;
  }
  if ((dt == EMBER_INT32 && (low < INT32_MIN || high > INT32_MAX)) ||
      (dt == EMBER_UINT8 && (low < 0 || high > 255))) {
    ember_set_error("randint: range [%lld, %lld] does not fit in %s",
                    (long long)low, (long long)high, ember_dtype_name(dt));
    return NULL;
  }
  return draw("randint", 2, ndim, shape, dt, (double)low, (double)high);
}
