-- The tiled CUDA scan (core/cuda/scan.cu: tiles, the three passes, the
-- runs, warps and carries of a block; the combine rule of core/cuda/
-- scan_math.h) emulated on the host by tools/cuda_scan_test.cu against the
-- CPU kernel's sequential rule, for every op and element type.  Needs nvcc
-- to build, no GPU to run; pending, with the reason, where nvcc is missing.
local run = require "helpers.run"

describe("the CUDA tiled scan, emulated on the host", function()
  if not run.nvcc() then
    pending("nvcc not found: the CUDA scan test cannot be built here")
    return
  end

  local test
  setup(function() test = run.host_tool("cuda-scan-test") end)

  for _, seed in ipairs({"1", "0x5eed"}) do
    it("matches the sequential scan (seed " .. seed .. ")", function()
      local out, rc = run.sh(test .. " " .. seed)
      assert.are.equal(0, rc, out)
      local nc, ne = out:match("cuda%-scan%-test: ok %((%d+) checks over (%d+) elements%)")
      assert.truthy(nc, out)
      assert.is_true(tonumber(ne) > 10000000, out)   -- every case ran
    end)
  end
end)
