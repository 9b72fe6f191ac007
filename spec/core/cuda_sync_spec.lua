-- The CUDA plugin waits for the device only where it must.  The stand-in
-- plugin proves that the core and the library ask for no sync in a
-- training step (spec/cuda/stats_spec.lua), but it cannot see a wait the
-- real plugin makes on its own, inside an op (the per-op flag read this
-- issue removed was one).  So every call in core/cuda that waits for the
-- device, or may (a pageable cudaMemcpy, cudaFree), is listed here with
-- the reason it may wait; a new one fails this spec until it is justified
-- and added.  Runs everywhere: it reads the sources.
local WAITS = {"cudaMemcpy%(", "cudaDeviceSynchronize", "cudaStreamSynchronize",
               "cudaEventSynchronize", "cudaFree%(", "cudaMemcpy2D%(", "cudaMemset%("}

-- file -> pattern -> how many calls, and why each may wait
local ALLOWED = {
  ["core/cuda/runtime.cu"] = {
    ["cudaMemcpy%("] = 2,              -- to_host (the copy the user asked for); from_host's
                                       -- fallback when no pinned memory can be had
    ["cudaDeviceSynchronize"] = 1,     -- ember_cuda_synchronize
    ["cudaStreamSynchronize"] = 2,     -- to_host's wait (before its copy, so a deferred error
                                       -- writes nothing); the deferred-error sequence wrap,
                                       -- once per 2^28 checks
    ["cudaEventSynchronize"] = 2,      -- a staging buffer reused while its upload runs
  },
  ["core/cuda/allocator.cu"] = {["cudaFree%("] = 1},     -- releasing cached segments only
  ["core/cuda/backend.cu"] = {["cudaDeviceSynchronize"] = 1},       -- EMBER_CUDA_SYNC=1
  ["core/cuda/cuda_internal.h"] = {["cudaDeviceSynchronize"] = 1},  -- EMBER_CUDA_SYNC=1
}

-- Not counted above (it is no call in core/cuda): nonzero (core/ops/mask.c,
-- and masked_select, masked_scatter built on it) reads its count back with
-- ember_get_int, through to_host's listed copy: its result's size depends on
-- the data, so it must wait once, as PyTorch's does.

local function code_of(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  -- comments out: /* ... */ and // ...
  s = s:gsub("/%*.-%*/", function(c) return (c:gsub("[^\n]", "")) end)
  s = s:gsub("//[^\n]*", "")
  return s
end

describe("the CUDA plugin's waits for the device", function()
  it("are only the listed ones", function()
    local p = assert(io.popen("ls core/cuda/*.cu core/cuda/*.h"))
    local files = {}
    for l in p:lines() do files[#files + 1] = l end
    p:close()
    assert.is_true(#files > 5, "no CUDA sources found")
    for _, path in ipairs(files) do
      local code = code_of(path)
      for _, pat in ipairs(WAITS) do
        local n = select(2, code:gsub(pat, ""))
        local allowed = (ALLOWED[path] or {})[pat] or 0
        assert.are.equal(allowed, n, ("%s: %d call(s) of %s, %d allowed: a new wait for the " ..
          "device must be justified in spec/core/cuda_sync_spec.lua"):format(path, n,
          pat:gsub("%%", ""), allowed))
      end
    end
  end)
end)
