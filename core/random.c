/*
** random.c -- generators and the random creation functions.
**
** A generator (ember_generator, ember.h) is a 64-bit seed (Philox's key)
** and a 64-bit counter.  A draw of n elements uses counters [counter,
** counter + n) and then advances the counter by n, so every draw is
** reproducible from the seed alone and independent of the thread count.
** The default seed is fixed, as in PyTorch, so runs are reproducible even
** without manual_seed.
**
** Every function draws from a generator its caller names (the _gen
** variants); the plain names use the calling thread's default generator.
** The Lua bindings keep one generator per lua_State (bindings/lua_tensor.c,
** the state's context), so two states on two threads never share a
** counter; a C host may do the same with its own ember_generator.
*/
#include "autograd.h"

static _Thread_local ember_generator default_gen = EMBER_GENERATOR_INIT;

ember_generator *ember_default_generator(void) { return &default_gen; }

void ember_generator_seed(ember_generator *g, uint64_t s) {
  g->seed = s;
  g->offset = 0;
}

void ember_manual_seed(uint64_t s) { ember_generator_seed(&default_gen, s); }

uint64_t ember_initial_seed(void) { return default_gen.seed; }

/* The whole state, so that a caller can draw and then rewind (a data
   loader with its own seed, a test replaying a draw). */
void ember_get_rng_state(uint64_t *s, uint64_t *offset) {
  if (s) *s = default_gen.seed;
  if (offset) *offset = default_gen.offset;
}

void ember_set_rng_state(uint64_t s, uint64_t offset) {
  default_gen.seed = s;
  default_gen.offset = offset;
}

/* A new tensor on dev drawn from g (NULL: the default generator): kind 0
   uniform in [a, b), 1 normal(a, b), 2 integers in [a, b]. */
static ember_tensor *draw(const char *fn, ember_generator *g, int kind,
                          ember_device dev, int ndim, const int64_t *shape,
                          ember_dtype dt, double a, double b) {
  if (!g) g = &default_gen;
  if (kind < 2 && !ember_dtype_is_float(dt)) {
    ember_set_error("%s: expected a floating dtype, got %s", fn,
                    ember_dtype_name(dt));
    return NULL;
  }
  if (ember_check_shape(fn, ndim, shape) < 0) return NULL;
  ember_tensor *t = ember_empty_on(dev, ndim, shape, dt);
  if (!t) return NULL;
  uint64_t n = (uint64_t)ember_numel(t);
  if (ember_backend_of(t)->random(kind, t, g->seed, g->offset, a, b) < 0) {
    ember_tensor_release(t);
    return NULL;
  }
  g->offset += n;
  return t;
}
/* Fill t from the generator in place: kind 0 uniform, 1 normal. */
static int fill_random(const char *fn, ember_generator *g, int kind,
                       ember_tensor *t, double a, double b) {
  if (!g) g = &default_gen;
  if (!ember_dtype_is_float(t->dtype))
    return ember_set_error("%s: expected a floating tensor, got %s", fn,
                           ember_dtype_name(t->dtype));
  /* a strided target is drawn whole into a contiguous one first, so the
     numbers are those of the same draw into a fresh tensor */
  ember_tensor *c = ember_is_contiguous(t)
      ? t : ember_empty_on(t->storage->device, t->ndim, t->shape, t->dtype);
  if (!c) return -1;
  uint64_t n = (uint64_t)ember_numel(t);
  int rc = ember_backend_of(c)->random(kind, c, g->seed, g->offset, a, b);
  if (rc == 0) g->offset += n;
  if (rc == 0 && c != t) {
    int prev = ember_ag_pause();
    rc = ember_copy_(t, c);
    ember_ag_resume(prev);
  }
  if (c != t) ember_tensor_release(c);
  if (rc == 0) ember_bump_version(t);
  return rc;
}

int ember_uniform_gen_(ember_generator *g, ember_tensor *t, double a,
                       double b) {
  return fill_random("uniform_", g, 0, t, a, b);
}

int ember_normal_gen_(ember_generator *g, ember_tensor *t, double mean,
                      double std) {
  return fill_random("normal_", g, 1, t, mean, std);
}

int ember_uniform_(ember_tensor *t, double a, double b) {
  return fill_random("uniform_", NULL, 0, t, a, b);
}

int ember_normal_(ember_tensor *t, double mean, double std) {
  return fill_random("normal_", NULL, 1, t, mean, std);
}

/* On a device, the numbers are those the CPU draws from the same state:
   the kernel of every backend computes element i from (seed, offset + i). */
ember_tensor *ember_rand_gen(ember_generator *g, ember_device dev, int ndim,
                             const int64_t *shape, ember_dtype dt) {
  return draw("rand", g, 0, dev, ndim, shape, dt, 0.0, 1.0);
}

ember_tensor *ember_randn_gen(ember_generator *g, ember_device dev, int ndim,
                              const int64_t *shape, ember_dtype dt) {
  return draw("randn", g, 1, dev, ndim, shape, dt, 0.0, 1.0);
}

ember_tensor *ember_rand_on(ember_device dev, int ndim, const int64_t *shape,
                            ember_dtype dt) {
  return draw("rand", NULL, 0, dev, ndim, shape, dt, 0.0, 1.0);
}

ember_tensor *ember_randn_on(ember_device dev, int ndim, const int64_t *shape,
                             ember_dtype dt) {
  return draw("randn", NULL, 1, dev, ndim, shape, dt, 0.0, 1.0);
}

ember_tensor *ember_rand(int ndim, const int64_t *shape, ember_dtype dt) {
  return draw("rand", NULL, 0, EMBER_CPU, ndim, shape, dt, 0.0, 1.0);
}

ember_tensor *ember_randn(int ndim, const int64_t *shape, ember_dtype dt) {
  return draw("randn", NULL, 1, EMBER_CPU, ndim, shape, dt, 0.0, 1.0);
}

ember_tensor *ember_randint(int64_t low, int64_t high, int ndim,
                            const int64_t *shape, ember_dtype dt) {
  return ember_randint_gen(NULL, low, high, ndim, shape, dt);
}

ember_tensor *ember_randint_gen(ember_generator *g, int64_t low, int64_t high,
                                int ndim, const int64_t *shape,
                                ember_dtype dt) {
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
  return draw("randint", g, 2, EMBER_CPU, ndim, shape, dt, (double)low,
              (double)high);
}

/*
** randperm: n uniforms from the generator (one draw, so the counter moves
** by n exactly as ember_rand(n) would), then Fisher-Yates from the top: the
** element at i swaps with one at floor(u_i * (i + 1)).  The values are
** 1..n, as every index value stored in a tensor is (see ember.h), so the
** result feeds ember_index_select directly.
*/
ember_tensor *ember_randperm(int64_t n, ember_dtype dt) {
  return ember_randperm_gen(NULL, n, dt);
}

ember_tensor *ember_randperm_gen(ember_generator *g, int64_t n,
                                 ember_dtype dt) {
  if (n < 0) {
    ember_set_error("randperm: n must be >= 0, got %lld", (long long)n);
    return NULL;
  }
  /* the largest n whose values 1..n the dtype holds exactly */
  int64_t max = dt == EMBER_UINT8 ? 255 : dt == EMBER_INT32 ? INT32_MAX
              : dt == EMBER_FLOAT32 ? (int64_t)1 << 24
              : dt == EMBER_FLOAT64 ? (int64_t)1 << 53 : INT64_MAX;
  if (dt == EMBER_BOOL || n > max) {
    ember_set_error("randperm: %lld values do not fit in %s", (long long)n,
                    ember_dtype_name(dt));
    return NULL;
  }
  ember_tensor *u = draw("randperm", g, 0, EMBER_CPU, 1, &n, EMBER_FLOAT64,
                         0.0, 1.0);
  if (!u) return NULL;
  ember_tensor *perm = ember_empty(1, &n, EMBER_INT64);
  if (!perm) {
    ember_tensor_release(u);
    return NULL;
  }
  const double *r = ember_data(u);
  int64_t *p = ember_data(perm);
  for (int64_t i = 0; i < n; i++) p[i] = i + 1;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(r[i] * (double)(i + 1));
    if (j > i) j = i;   /* r < 1, but r * (i + 1) can round up to i + 1 */
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  ember_tensor_release(u);
  if (dt == EMBER_INT64) return perm;
  ember_tensor *out = ember_to_dtype(perm, dt);
  ember_tensor_release(perm);
  return out;
}
