-- The C API without Lua: the creation functions on a device
-- (ember_zeros_on, ember_ones_on, ember_full_on), ember_fill_int_,
-- ember_detach_ and the post-backward hooks, each with its bad input (a
-- clear message, nothing changed).  One C program, linked with
-- libember.a, prints "ok <name>" or "FAIL <name>: <why>" per check; it
-- runs on the CPU, then with the stand-in CUDA plugin for the device
-- variants.
local run = require "helpers.run"

local SRC = [[
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ember.h"

static int failed;

#define CHECK(name, cond) \
  do { if (cond) printf("ok %s\n", name); \
       else { printf("FAIL %s: line %d (last error: %s)\n", name, __LINE__, ember_last_error()); failed = 1; } \
  } while (0)

/* every element of t (any device) equal to v, read as int64 */
static int all_int(const ember_tensor *t, int64_t v) {
  ember_tensor *c = ember_to_device(t, EMBER_CPU);
  if (!c) return 0;
  ember_tensor *flat = ember_reshape(c, 1, (int64_t[]){-1});
  int ok = flat != NULL;
  for (int64_t i = 0; ok && i < ember_numel(flat); i++) {
    int64_t x;
    ok = ember_get_int(flat, &i, &x) == 0 && x == v;
  }
  ember_tensor_release(flat);
  ember_tensor_release(c);
  return ok;
}

static int all_double(const ember_tensor *t, double v) {
  ember_tensor *c = ember_to_device(t, EMBER_CPU);
  if (!c) return 0;
  ember_tensor *flat = ember_reshape(c, 1, (int64_t[]){-1});
  int ok = flat != NULL;
  for (int64_t i = 0; ok && i < ember_numel(flat); i++) {
    double x;
    ok = ember_get(flat, &i, &x) == 0 && x == v;
  }
  ember_tensor_release(flat);
  ember_tensor_release(c);
  return ok;
}

static void creation(ember_device dev) {
  int64_t shape[2] = {2, 3};
  char name[96];
  const ember_dtype dts[] = {EMBER_FLOAT32, EMBER_FLOAT64, EMBER_INT32,
                             EMBER_INT64, EMBER_UINT8, EMBER_BOOL};
  for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
    ember_tensor *z = ember_zeros_on(dev, 2, shape, dts[k]);
    ember_tensor *o = ember_ones_on(dev, 2, shape, dts[k]);
    ember_tensor *f = ember_full_on(dev, 2, shape, 7, dts[k]);
    snprintf(name, sizeof name, "%s zeros/ones/full_on %s", ember_device_name(dev),
             ember_dtype_name(dts[k]));
    CHECK(name, z && o && f && z->storage->device == dev && f->dtype == dts[k] &&
                all_int(z, 0) && all_int(o, 1) &&
                all_int(f, dts[k] == EMBER_BOOL ? 1 : 7));
    ember_tensor_release(z);
    ember_tensor_release(o);
    ember_tensor_release(f);
  }
  ember_tensor *h = ember_full_on(dev, 1, shape, 0.25, EMBER_FLOAT64);
  snprintf(name, sizeof name, "%s full_on keeps a fraction", ember_device_name(dev));
  CHECK(name, h && all_double(h, 0.25));
  ember_tensor_release(h);
  int64_t bad[1] = {-1};
  ember_tensor *b = ember_zeros_on(dev, 1, bad, EMBER_FLOAT32);
  snprintf(name, sizeof name, "%s zeros_on refuses a negative size", ember_device_name(dev));
  CHECK(name, !b && strstr(ember_last_error(), "must be >= 0"));
  b = ember_ones_on(dev, 1, shape, (ember_dtype)99);
  snprintf(name, sizeof name, "%s ones_on refuses a bad dtype", ember_device_name(dev));
  CHECK(name, !b && strstr(ember_last_error(), "bad dtype"));
}

static void fill_int(ember_device dev) {
  int64_t n = 3;
  char name[96];
  const int64_t big = ((int64_t)1 << 53) + 1;
  ember_tensor *t = ember_zeros_on(dev, 1, &n, EMBER_INT64);
  snprintf(name, sizeof name, "%s fill_int_ int64 beyond 2^53", ember_device_name(dev));
  CHECK(name, t && ember_fill_int_(t, big) == 0 && all_int(t, big));
  snprintf(name, sizeof name, "%s fill_int_ int64 limits", ember_device_name(dev));
  CHECK(name, ember_fill_int_(t, INT64_MIN) == 0 && all_int(t, INT64_MIN) &&
              ember_fill_int_(t, INT64_MAX) == 0 && all_int(t, INT64_MAX));
  uint64_t v0 = t->storage->version;
  ember_fill_int_(t, 1);
  snprintf(name, sizeof name, "%s fill_int_ bumps the version", ember_device_name(dev));
  CHECK(name, t->storage->version > v0);
  ember_tensor_release(t);

  ember_tensor *i = ember_full_on(dev, 1, &n, 5, EMBER_INT32);
  snprintf(name, sizeof name, "%s fill_int_ int32 overflow: error, unchanged", ember_device_name(dev));
  CHECK(name, i && ember_fill_int_(i, (int64_t)1 << 31) < 0 &&
              strstr(ember_last_error(), "fill_: value 2147483648 cannot be converted to int32") &&
              all_int(i, 5) && ember_fill_int_(i, INT32_MIN) == 0 && all_int(i, INT32_MIN));
  ember_tensor_release(i);

  ember_tensor *u = ember_zeros_on(dev, 1, &n, EMBER_UINT8);
  snprintf(name, sizeof name, "%s fill_int_ uint8: -1 wraps, 256 is an error", ember_device_name(dev));
  CHECK(name, u && ember_fill_int_(u, -1) == 0 && all_int(u, 255) &&
              ember_fill_int_(u, 256) < 0 && ember_fill_int_(u, -256) < 0 && all_int(u, 255));
  ember_tensor_release(u);

  ember_tensor *f = ember_zeros_on(dev, 1, &n, EMBER_FLOAT64);
  ember_tensor *b = ember_zeros_on(dev, 1, &n, EMBER_BOOL);
  snprintf(name, sizeof name, "%s fill_int_ float and bool", ember_device_name(dev));
  CHECK(name, f && b && ember_fill_int_(f, -3) == 0 && all_double(f, -3) &&
              ember_fill_int_(b, 42) == 0 && all_int(b, 1));
  ember_tensor_release(f);
  ember_tensor_release(b);
}

static void detach(void) {
  int64_t n = 2;
  ember_tensor *x = ember_ones(1, &n, EMBER_FLOAT32);
  ember_set_requires_grad(x, 1);
  ember_tensor *two = ember_scalar(2, EMBER_FLOAT32);
  ember_tensor *y = ember_binary(EMBER_MUL, x, two);
  ember_retain_grad(y);
  CHECK("detach_ a result", y && ember_detach_(y) == 0 && !ember_requires_grad(y) &&
                           ember_is_leaf(y) && !ember_grad_fn_name(y) && all_double(y, 2));
  ember_tensor *p = ember_binary(EMBER_MUL, x, two);
  ember_tensor *s = ember_reduce(EMBER_SUM, p, 0);
  CHECK("detach_ leaves other results' backward working",
        s && ember_backward(s, NULL, 0) == 0 && all_double(ember_grad(x), 2) && !ember_grad(y));
  ember_tensor *v = ember_narrow(p, 0, 0, 1);
  CHECK("detach_ of a recorded view: error, unchanged",
        v && ember_detach_(v) < 0 && strstr(ember_last_error(), "detach_: can't detach a view") &&
        ember_requires_grad(v) && ember_grad_fn_name(v));
  CHECK("detach_ of a leaf keeps its grad",
        ember_detach_(x) == 0 && !ember_requires_grad(x) && all_double(ember_grad(x), 2));
  ember_tensor *plain = ember_ones(1, &n, EMBER_FLOAT32);
  CHECK("detach_ of a tensor without history", ember_detach_(plain) == 0);
  ember_tensor_release(plain);
  ember_tensor_release(v);
  ember_tensor_release(s);
  ember_tensor_release(p);
  ember_tensor_release(y);
  ember_tensor_release(two);
  ember_tensor_release(x);
}

typedef struct { int calls; int fail; ember_tensor *w; double seen; } counter;

static int count_hook(void *ctx) {
  counter *c = ctx;
  c->calls++;
  if (c->w && ember_grad(c->w)) {
    int64_t i = 0;
    ember_get(ember_grad(c->w), &i, &c->seen);
  }
  if (c->fail) return ember_set_error("hook %d says no", c->fail);
  return 0;
}

static int nested_hook(void *ctx) {      /* a backward inside a hook */
  counter *c = ctx;
  c->calls++;
  ember_tensor *s = ember_reduce(EMBER_SUM, c->w, 0);
  int rc = ember_backward(s, NULL, 0);
  ember_tensor_release(s);
  return rc;
}

static int backward_of_sum(ember_tensor *w) {
  ember_tensor *s = ember_reduce(EMBER_SUM, w, 0);
  int rc = s ? ember_backward(s, NULL, 0) : -1;
  ember_tensor_release(s);
  return rc;
}

static void hooks(void) {
  int64_t n = 2;
  ember_tensor *w = ember_ones(1, &n, EMBER_FLOAT32);
  ember_set_requires_grad(w, 1);
  counter a = {0, 0, w, 0}, b = {0, 0, NULL, 0};
  CHECK("add a hook", ember_add_post_backward_hook(count_hook, &a) == 0);
  CHECK("run after the gradients are accumulated",
        backward_of_sum(w) == 0 && a.calls == 1 && a.seen == 1);
  CHECK("the same hook twice is refused",
        ember_add_post_backward_hook(count_hook, &a) < 0 &&
        strstr(ember_last_error(), "already added"));
  CHECK("a NULL hook is refused", ember_add_post_backward_hook(NULL, &a) < 0);
  CHECK("another ctx is another hook", ember_add_post_backward_hook(count_hook, &b) == 0 &&
        backward_of_sum(w) == 0 && a.calls == 2 && b.calls == 1 && a.seen == 2);
  b.fail = 7;
  CHECK("a failing hook fails backward with its message, grads kept",
        backward_of_sum(w) < 0 && strstr(ember_last_error(), "hook 7 says no") &&
        a.calls == 3 && b.calls == 2 && a.seen == 3);
  a.fail = 1;
  CHECK("the first failure stops the others",
        backward_of_sum(w) < 0 && a.calls == 4 && b.calls == 2);
  a.fail = b.fail = 0;
  CHECK("remove", ember_remove_post_backward_hook(count_hook, &b) == 0 &&
        backward_of_sum(w) == 0 && a.calls == 5 && b.calls == 2);
  CHECK("removing one not added is an error",
        ember_remove_post_backward_hook(count_hook, &b) < 0 &&
        strstr(ember_last_error(), "no such hook"));
  counter c = {0, 0, w, 0};
  CHECK("a backward inside a hook runs no hooks",
        ember_add_post_backward_hook(nested_hook, &c) == 0 && backward_of_sum(w) == 0 &&
        c.calls == 1 && a.calls == 6 && ember_remove_post_backward_hook(nested_hook, &c) == 0);
  ember_tensor *bad = ember_ones(1, &n, EMBER_FLOAT32);
  CHECK("no hook after a failed backward",
        ember_backward(bad, NULL, 0) < 0 && a.calls == 6);
  ember_tensor_release(bad);
  ember_remove_post_backward_hook(count_hook, &a);
  int added = 0;
  counter many[EMBER_MAX_POST_BACKWARD_HOOKS + 1];
  while (added <= EMBER_MAX_POST_BACKWARD_HOOKS &&
         ember_add_post_backward_hook(count_hook, &many[added]) == 0) added++;
  CHECK("at most EMBER_MAX_POST_BACKWARD_HOOKS",
        added == EMBER_MAX_POST_BACKWARD_HOOKS && strstr(ember_last_error(), "at most"));
  for (int k = 0; k < added; k++) ember_remove_post_backward_hook(count_hook, &many[k]);
  ember_tensor_release(w);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "cuda") == 0) {
    if (!ember_cuda_is_available()) {
      printf("FAIL cuda: %s\n", ember_cuda_unavailable_reason());
      return 1;
    }
    creation(EMBER_CUDA);
    fill_int(EMBER_CUDA);
    return failed;
  }
  creation(EMBER_CPU);
  fill_int(EMBER_CPU);
  if (!ember_cuda_is_available()) {
    ember_tensor *t = ember_zeros_on(EMBER_CUDA, 1, (int64_t[]){2}, EMBER_FLOAT32);
    CHECK("zeros_on cuda without CUDA says so", !t && strstr(ember_last_error(), "CUDA is not available"));
  }
  detach();
  hooks();
  return failed;
}
]]

describe("the C API", function()
  local dir, exe

  setup(function()
    dir = run.tmpdir()
    local f = assert(io.open(dir .. "/c_api.c", "w"))
    f:write(SRC)
    f:close()
    exe = dir .. "/c_api"
    local san = os.getenv("EMBER_SAN") or ""
    local out, rc = run.sh(("cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE %s -Icore/include -o %s %s " ..
                            "%s/libember.a -llua5.4 -lopenblas -lpng -ljpeg -lz -lm -fopenmp")
                           :format(san, run.q(exe), run.q(dir .. "/c_api.c"), run.build))
    assert.are.equal(0, rc, out)
  end)

  teardown(function() run.rmdir(dir) end)

  local function expect_ok(out, rc, min)
    local fails = {}
    for line in out:gmatch("FAIL [^\n]+") do fails[#fails + 1] = line end
    assert.are.same({}, fails, out)
    local n = select(2, out:gsub("\nok ", "")) + (out:find("^ok ") and 1 or 0)
    assert.is_true(n >= min, ("%d checks ran, expected %d\n%s"):format(n, min, out))
    assert.are.equal(0, rc, out)
  end

  it("creation on a device, fill_int_, detach_ and post-backward hooks on the CPU", function()
    local out, rc = run.sh("EMBER_CUDA_PLUGIN=/nonexistent/libember_cuda.so " .. run.q(exe))
    expect_ok(out, rc, 30)
  end)

  it("creation and fill_int_ on \"cuda\" (the stand-in plugin)", function()
    local fake = (os.getenv("PWD") or ".") .. "/" .. run.build .. "/libember_fakecuda.so"
    local f = io.open(fake, "rb")
    assert.is_not_nil(f, fake .. " is missing: make test builds it")
    f:close()
    local out, rc = run.sh("EMBER_CUDA_PLUGIN=" .. run.q(fake) .. " " .. run.q(exe) .. " cuda")
    expect_ok(out, rc, 14)
  end)
end)
