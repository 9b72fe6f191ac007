-- core/storage.c: tensor and storage lifetimes.  A small CPU tensor is made
-- in one block with its storage and data, and blocks are recycled: these
-- specs check that a block lives exactly as long as the last tensor using
-- it (the one it was made as, or a view that outlived it), that recycled
-- blocks come back clean, and that the byte counts stay true.
local ember = require "ember"
local run = require "helpers.run"

local function collect()
  collectgarbage()
  collectgarbage()
end

-- Many small tensors made and dropped: freed blocks get reused.
local function churn(n)
  local keep = {}
  for i = 1, n do keep[#keep + 1] = ember.full({4}, -i) end
  keep = nil
  collect()
  for i = 1, n do local _ = ember.full({4}, i) + ember.full({4}, i) end
end

describe("small tensors (one block with their storage)", function()
  it("keep their data while a view outlives the tensor they were made as", function()
    local v
    do
      local t = ember.tensor({1, 2, 3, 4})
      v = t:view(2, 2)
    end
    collect()
    churn(3000)
    assert.are.same({{1, 2}, {3, 4}}, v:totable())
    v[2][1] = 9
    assert.are.same({{1, 2}, {9, 4}}, v:totable())
  end)

  it("keep their data while views of views outlive it, in any order", function()
    local t = ember.arange(1, 9, {dtype = "float64"})     -- 8 doubles
    local a, b = t:narrow(1, 3, 4), t:view(2, 4):t()
    t = nil
    collect()
    churn(1000)
    local c = a:narrow(1, 2, 2)
    a = nil
    collect()
    churn(1000)
    assert.are.same({4, 5}, c:totable())
    assert.are.same({{1, 5}, {2, 6}, {3, 7}, {4, 8}}, b:totable())
    c:fill_(0)
    assert.are.same({{1, 0}, {2, 6}, {3, 7}, {0, 8}}, b:totable())
  end)

  it("count their bytes in memory_allocated until the last user is gone", function()
    collect()
    local before = ember.memory_allocated()
    local t = ember.ones(4)                        -- 16 bytes
    assert.are.equal(before + 16, ember.memory_allocated())
    local v = t:narrow(1, 2, 2)
    t = nil
    collect()
    assert.are.equal(before + 16, ember.memory_allocated())
    v = nil
    collect()
    assert.are.equal(before, ember.memory_allocated())
    local s = ember.tensor(2.5, {dtype = "float64"})  -- 0-d: 8 bytes
    assert.are.equal(before + 8, ember.memory_allocated())
    s = nil
    collect()
    assert.are.equal(before, ember.memory_allocated())
  end)

  it("compute right on both sides of the size limit, in every dtype", function()
    -- 32 float32 (128 bytes) is the largest fused size, 33 is not
    for _, dt in ipairs({"float32", "float64", "int32", "int64", "uint8"}) do
      for _, n in ipairs({1, 15, 16, 17, 31, 32, 33, 64, 129}) do
        local a = ember.arange(1, n + 1, {dtype = dt})
        local b = ember.ones(n, {dtype = dt})
        local c = a + b
        assert.are.equal(dt, c.dtype)
        assert.are.same({n}, c:shape())
        assert.are.equal(n + 1, c[n])
        assert.are.equal(2, c[1])
        assert.are.equal(n * (n + 3) / 2, (c:double():sum()):item())
      end
    end
    local e = ember.zeros(0) + ember.zeros(0)        -- empty: 0 bytes
    assert.are.same({0}, e:shape())
    local bools = ember.tensor({true, false}) + ember.tensor({false, false})
    assert.are.same({true, false}, bools:totable())
  end)

  it("come back clean when recycled: no grad, no history, fresh data", function()
    for _ = 1, 3 do
      local w = ember.ones(4, {requires_grad = true})
      local y = w * 3
      y:retain_grad()
      y:sum():backward()
    end
    collect()
    for i = 1, 2000 do
      local t = ember.full({4}, i)
      if i % 250 == 0 then
        assert.is_false(t.requires_grad)
        assert.is_true(t.is_leaf)
        assert.is_nil(t.grad)
        assert.is_nil(t.grad_fn)
        assert.are.same({i, i, i, i}, t:totable())
      end
    end
  end)

  it("stay right under churn: results checked while blocks are reused", function()
    local a, b = ember.tensor({1, 2, 3, 4}), ember.tensor({10, 20, 30, 40})
    local kept = {}
    for i = 1, 20000 do
      local c = a + b
      if i % 1000 == 0 then kept[#kept + 1] = c end
    end
    collect()
    churn(2000)
    for _, c in ipairs(kept) do assert.are.same({11, 22, 33, 44}, c:totable()) end
  end)

  it("outlive their tensor when autograd saved them for backward", function()
    local x = ember.tensor({1, 2, 3}, {requires_grad = true})
    local z = ember.tensor({4, 5, 6})
    local y = x * z                         -- saves z (an alias of its block)
    z = nil
    collect()
    churn(1000)
    y:sum():backward()
    assert.are.same({4, 5, 6}, x.grad:totable())
  end)

  it("are given back when a thread ends (the free lists are per thread)", function()
    -- a C program: 40 threads each free 3,000 small tensors and 3,000
    -- recorded ops into their lists and exit; malloc's count must not grow
    -- (it grows by ~115 MB when the lists die with their threads)
    local dir = run.tmpdir()
    local src = dir .. "/threads.c"
    local f = assert(io.open(src, "w"))
    f:write([[
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include "ember.h"

enum { N = 3000 };

static void *work(void *arg) {
  static _Thread_local ember_tensor *keep[N];
  int64_t n = 4;
  (void)arg;
  for (int i = 0; i < N; i++) keep[i] = ember_ones(1, &n, EMBER_FLOAT32);
  for (int i = 0; i < N; i++) ember_tensor_release(keep[i]);
  ember_tensor *a = ember_ones(1, &n, EMBER_FLOAT32);
  ember_set_requires_grad(a, 1);
  for (int i = 0; i < N; i++) keep[i] = ember_binary(EMBER_ADD, a, a);
  for (int i = 0; i < N; i++) ember_tensor_release(keep[i]);
  ember_tensor_release(a);
  return NULL;
}

static void one_thread(void) {
  pthread_t th;
  if (pthread_create(&th, NULL, work, NULL) == 0) pthread_join(th, NULL);
}

int main(void) {
  one_thread();                          /* one-time allocations first */
  size_t before = mallinfo2().uordblks;
  for (int k = 0; k < 40; k++) one_thread();
  size_t after = mallinfo2().uordblks;
  printf("grew %zu\n", after > before ? after - before : 0);
  return 0;
}
]])
    f:close()
    local san = os.getenv("EMBER_SAN") or ""
    local exe = dir .. "/threads"
    local out, rc = run.sh(("cc -std=c11 -D_GNU_SOURCE %s -Icore/include -o %s %s " ..
                            "%s/libember.a -llua5.4 -lopenblas -lpng -ljpeg -lz -lm -fopenmp")
                           :format(san, run.q(exe), run.q(src), run.build))
    assert.are.equal(0, rc, out)
    out, rc = run.sh("EMBER_NUM_THREADS=1 " .. run.q(exe))
    run.rmdir(dir)
    assert.are.equal(0, rc, out)
    local grew = tonumber(out:match("grew (%d+)"))
    assert.is_not_nil(grew, out)
    assert.is_true(grew < 1024 * 1024, out)
  end)
end)
