-- Device out-of-memory, end to end, on the stand-in plugin
-- (tools/fake_cuda.c) given a simulated device size
-- (EMBER_FAKE_CUDA_MEMORY): each case runs in a child lua5.4, so that
-- nothing else holds device memory and the figures are exact.
--   * an allocation that fits only once the cache is given back succeeds
--     (the allocator releases its free segments and retries);
--   * one that never fits raises "cuda: out of memory allocating ..."
--     naming the bytes requested, allocated and cached and the device's
--     size, and leaves memory_allocated as it was;
--   * a bad EMBER_FAKE_CUDA_MEMORY makes CUDA unavailable, saying why.
local run = require "helpers.run"

local PLUGIN = run.build .. "/libember_fakecuda.so"
local MiB = 1 << 20

--- Run Lua source in a child on the stand-in with a device of `bytes`.
local function on_device(bytes, src)
  local plugin = PLUGIN:sub(1, 1) == "/" and PLUGIN or (os.getenv("PWD") or ".") .. "/" .. PLUGIN
  return run.sh(("OMP_WAIT_POLICY=passive EMBER_CUDA_PLUGIN=%s EMBER_FAKE_CUDA_MEMORY=%s %s -e %s")
                :format(run.q(plugin), run.q(bytes), run.lua_cmd(), run.q(src)))
end

describe("device memory on a stand-in of a given size", function()
  setup(function()
    local f = io.open(PLUGIN, "rb")
    assert.is_not_nil(f, PLUGIN .. " is missing: make test builds it")
    f:close()
  end)

  it("releases the cache and retries when an allocation does not fit", function()
    local out, rc = on_device(64 * MiB, [[
      local ember = require "ember"
      local cuda = ember.cuda
      local MiB = 1 << 20
      local a = ember.empty(40 * MiB // 4, {device = "cuda"})
      a = nil
      collectgarbage(); collectgarbage()
      local s0 = cuda.stats()
      assert(s0.cached_bytes == 40 * MiB, "cached " .. s0.cached_bytes)
      local b = ember.ones(48 * MiB // 4, {device = "cuda"})   -- fits only without the 40
      local s1 = cuda.stats()
      print(("ok allocations=%d releases=%d allocated=%d cached=%d max=%s"):format(
        s1.allocations, s1.releases, s1.allocated_bytes, s1.cached_bytes, b:max():item()))
    ]])
    assert.are.equal(0, rc, out)
    assert.is_truthy(out:find(("ok allocations=2 releases=1 allocated=%d cached=0 max=1.0")
                              :format(48 * MiB), 1, true), out)
  end)

  it("raises a clear error for one that never fits, leaving memory_allocated as it was", function()
    local out, rc = on_device(64 * MiB, [[
      local ember = require "ember"
      local cuda = ember.cuda
      local MiB = 1 << 20
      local keep = ember.ones(48 * MiB // 4, {device = "cuda"})
      local small = ember.ones(1000, {device = "cuda"})
      local before = cuda.memory_allocated()
      local ok, err = pcall(ember.zeros, 80 * MiB // 4, {device = "cuda"})
      assert(not ok, "80 MiB on a 64 MiB device succeeded")
      print("error: " .. tostring(err))
      print(("allocated before=%d after=%d"):format(before, cuda.memory_allocated()))
      print("still works: " .. keep:max():item() + small:sum():item())
    ]])
    assert.are.equal(0, rc, out)
    -- the 48 MiB tensor and a 4000-byte one (a 4096-byte block of a 2 MiB
    -- segment, whose rest stays cached: the segment is partly in use)
    local want = "cuda: out of memory allocating 80.00 MiB (48.00 MiB allocated to tensors, " ..
                 "2.00 MiB cached after releasing the cache; the device has 64.00 MiB, " ..
                 "14.00 MiB free)"
    assert.is_truthy(out:find("error: " .. want, 1, true), "want: " .. want .. "\ngot: " .. out)
    assert.are.equal(nil, out:find("out of memory allocating %d+ bytes"), out)
    local b, a = out:match("allocated before=(%d+) after=(%d+)")
    assert.are.equal(b, a, out)
    assert.are.equal(tostring(48 * MiB + 4096), b, out)
    assert.is_truthy(out:find("still works: 1001.0", 1, true), out)
  end)

  it("refuses a device size that is not a byte count, saying why", function()
    for _, bad in ipairs({"64M", "-1", "0", "lots"}) do
      local out, rc = on_device(bad, [[
        local ember = require "ember"
        print(ember.cuda.is_available(), ember.cuda.unavailable_reason())
        local ok, err = pcall(ember.zeros, 4, {device = "cuda"})
        print(ok, err)
      ]])
      assert.are.equal(0, rc, out)
      assert.is_truthy(out:find("^false\tEMBER_FAKE_CUDA_MEMORY: expected a positive byte count, got '" ..
                                bad:gsub("%p", "%%%0") .. "'"), out)
      assert.is_truthy(out:find("CUDA is not available", 1, true), out)
    end
  end)
end)

-- The cache keeps freed device memory, so on the stand-in (host memory) a
-- use after free of a "cuda" tensor would no longer reach freed heap; the
-- stand-in poisons what it caches, and AddressSanitizer still reports it.
describe("the stand-in's cache under AddressSanitizer", function()
  local san = os.getenv("EMBER_SAN") or ""
  if not san:find("address", 1, true) then
    pending("runs under make asan (EMBER_SAN with -fsanitize=address)")
    return
  end
  it("reports a read of a released CUDA tensor's memory", function()
    local exe = run.build .. "/fake-cuda-uaf"
    local out, rc = run.sh(("cc %s -Icore/include -o %s tools/fake_cuda_uaf.c %s/libember.a " ..
                            "-llua5.4 -lopenblas -lpng -ljpeg -lz -lm -fopenmp"):format(san, exe, run.build))
    assert.are.equal(0, rc, out)
    out, rc = run.sh(("EMBER_CUDA_PLUGIN=%s/%s/libember_fakecuda.so %s")
                     :format(os.getenv("PWD") or ".", run.build, exe))
    assert.are_not.equal(0, rc, out)
    assert.is_truthy(out:find("AddressSanitizer: use-after-poison", 1, true), out)
    assert.is_nil(out:find("after release", 1, true), out)
  end)
end)
