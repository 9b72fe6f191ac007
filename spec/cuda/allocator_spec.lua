-- The CUDA caching allocator seen through ember.cuda.stats(): on a GPU
-- (cudaMalloc under it) and on the stand-in plugin (the same allocator,
-- core/cuda/devcache.c, over host memory; spec/bindings/fake_cuda_spec.lua
-- runs this file there).  Other specs of the process may hold tensors and
-- cached blocks, so each check measures its own differences.
--   * the same size again makes no new device allocation;
--   * a large cached block serves a smaller request, split;
--   * freed neighbours merge, so their combined size comes from the cache;
--   * empty_cache gives wholly free segments back;
--   * a request no device holds fails with a clear message and changes
--     nothing.
-- The exact rounding, the best fit, out-of-memory release and retry on a
-- device of a given size, and threads are tools/devcache_test.c's
-- (spec/bindings/devcache_spec.lua) and spec/bindings/fake_cuda_memory_spec.lua's.
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local cuda = ember.cuda
local MiB = 1 << 20

describe("the CUDA caching allocator", function()
  if not cuda_helper.available() then return end

  --- Free what is garbage and wait for the device, so that the counts
  -- are settled.
  local function settle()
    collectgarbage(); collectgarbage()
    cuda.synchronize()
  end

  --- A float32 tensor of `mib` MiB on the device (uninitialised).
  local function block(mib)
    return ember.empty(math.floor(mib * MiB) // 4, {device = "cuda"})
  end

  it("serves the same size again from the cache: no new device allocation", function()
    settle()
    local t = block(1)              -- warm: the first may need a segment
    t = nil                         -- luacheck: ignore
    settle()
    local before = cuda.stats()
    for _ = 1, 20 do
      t = block(1)
      assert.are.equal(before.allocated_bytes + MiB, cuda.stats().allocated_bytes)
      t = nil                       -- luacheck: ignore
      collectgarbage()
    end
    settle()
    local after = cuda.stats()
    assert.are.equal(before.allocations, after.allocations,
                     "20 tensors of 1 MiB, one at a time, made new device allocations")
    assert.are.equal(before.allocated_bytes, after.allocated_bytes)
  end)

  it("splits a larger cached block for a smaller request", function()
    settle()
    cuda.empty_cache()
    local t = block(24)
    t = nil                         -- luacheck: ignore
    settle()
    local before = cuda.stats()
    assert.is_true(before.cached_bytes >= 24 * MiB, "the 24 MiB block was not cached")
    local small = block(3)
    local after = cuda.stats()
    assert.are.equal(before.allocations, after.allocations,
                     "3 MiB with 24 MiB cached made a device allocation")
    local grew = after.allocated_bytes - before.allocated_bytes
    assert.is_true(grew >= 3 * MiB and grew < 24 * MiB,
                   ("3 MiB took a block of %d bytes: not split"):format(grew))
    assert.are.equal(before.cached_bytes - grew, after.cached_bytes)
    assert.is_truthy(small)
  end)

  it("merges freed neighbours, so their combined size comes from the cache", function()
    settle()
    cuda.empty_cache()
    local t = block(24)
    t = nil                         -- luacheck: ignore
    settle()
    local before = cuda.stats()
    local a, b = block(12), block(12)        -- the two halves of the 24 MiB
    assert.are.equal(before.allocations, cuda.stats().allocations)
    a, b = nil, nil                          -- luacheck: ignore
    settle()
    local freed = cuda.stats()
    assert.are.equal(before.cached_bytes, freed.cached_bytes)
    local whole = block(24)
    local after = cuda.stats()
    assert.are.equal(before.allocations, after.allocations,
                     "24 MiB after freeing two neighbouring 12 MiB blocks made a device allocation")
    assert.are.equal(before.allocated_bytes + 24 * MiB, after.allocated_bytes)
    assert.is_truthy(whole)
  end)

  it("gives wholly free segments back on empty_cache", function()
    settle()
    local t = block(24)
    t = nil                         -- luacheck: ignore
    settle()
    local before = cuda.stats()
    assert.is_true(before.cached_bytes >= 24 * MiB)
    cuda.empty_cache()
    local after = cuda.stats()
    assert.is_true(after.releases > before.releases, "no segment was given back")
    assert.is_true(after.cached_bytes <= before.cached_bytes - 24 * MiB,
                   ("cached %d bytes before empty_cache, %d after"):format(
                     before.cached_bytes, after.cached_bytes))
    assert.are.equal(before.allocated_bytes, after.allocated_bytes)
    assert.are.equal(after.allocated_bytes + after.cached_bytes, cuda.memory_reserved())
    assert.are.equal(after.allocated_bytes, cuda.memory_allocated())
  end)

  it("fails a request no device holds with a clear message, changing nothing", function()
    settle()
    local before = cuda.stats()
    local ok, err = pcall(ember.empty, 1 << 48, {device = "cuda"})    -- 1 PiB
    assert.is_false(ok)
    err = tostring(err)
    assert.is_truthy(err:find("cuda: out of memory allocating 1.00 PiB (", 1, true), err)
    assert.is_truthy(err:find("allocated to tensors, [%d.]+ [KMGT]?i?B cached after releasing the cache"), err)
    local after = cuda.stats()
    assert.are.equal(before.allocated_bytes, after.allocated_bytes)
    assert.are.equal(before.allocated_bytes, cuda.memory_allocated())
    -- the device still works
    assert.are.equal(6.0, ember.ones(3, {device = "cuda"}):mul(2):sum():item())
  end)
end)
