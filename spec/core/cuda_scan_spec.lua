-- The tiled CUDA scan (core/cuda/scan.cu: tiles, the three passes, the
-- runs, warps and carries of a block; the combine rule of core/cuda/
-- scan_math.h) emulated on the host by tools/cuda_scan_test.cu against the
-- CPU kernel's sequential rule, for every op and element type.  Needs nvcc
-- to build, no GPU to run; pending, with the reason, where nvcc is missing.
local run = require "helpers.run"

local function nvcc()
  local out, rc = run.sh("make --no-print-directory -s print-nvcc")
  if rc ~= 0 then return nil end
  out = out:gsub("%s+$", "")
  return out ~= "" and out or nil
end

describe("the CUDA tiled scan, emulated on the host", function()
  if not nvcc() then
    pending("nvcc not found: the CUDA scan test cannot be built here")
    return
  end

  local test
  setup(function()
    -- without the sanitizer runtime `make asan` preloads: nvcc crashes under it
    local out, rc = run.sh("env -u LD_PRELOAD make --no-print-directory BUILD=" .. run.build ..
                           " " .. run.build .. "/cuda-scan-test")
    assert.are.equal(0, rc, out)
    test = run.build .. "/cuda-scan-test"
  end)

  for _, seed in ipairs({"1", "0x5eed"}) do
    it("matches the sequential scan (seed " .. seed .. ")", function()
      local out, rc = run.sh("env -u LD_PRELOAD " .. test .. " " .. seed)
      assert.are.equal(0, rc, out)
      local nc, ne = out:match("cuda%-scan%-test: ok %((%d+) checks over (%d+) elements%)")
      assert.truthy(nc, out)
      assert.is_true(tonumber(ne) > 10000000, out)   -- every case ran
    end)
  end
end)
