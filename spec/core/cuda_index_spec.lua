-- The CUDA kernels' index arithmetic (core/cuda/index_math.h: the fast
-- divider, the offset calculator, im2col's and col2im's index maps),
-- checked on the host by tools/cuda_index_test.cu against the naive / and
-- % over thousands of random layouts.  Needs nvcc to build, no GPU to run;
-- pending, with the reason, where nvcc is missing.
local run = require "helpers.run"

describe("the CUDA kernels' index arithmetic, on the host", function()
  if not run.nvcc() then
    pending("nvcc not found: the CUDA index test cannot be built here")
    return
  end

  local test
  setup(function() test = run.host_tool("cuda-index-test") end)

  for _, seed in ipairs({"1", "0x5eed"}) do
    it("matches the naive offsets and divisions (seed " .. seed .. ")", function()
      local out, rc = run.sh(test .. " " .. seed)
      assert.are.equal(0, rc, out)
      local nd, nl, ne, nc = out:match(
        "cuda%-index%-test: ok %((%d+) division checks, (%d+) layout checks over " ..
        "(%d+) elements, (%d+) conv index checks%)")
      assert.truthy(nd, out)
      -- every part ran, at scale
      assert.is_true(tonumber(nd) > 1000000, out)
      assert.is_true(tonumber(nl) > 1000000, out)
      assert.is_true(tonumber(ne) > 100000, out)
      assert.is_true(tonumber(nc) > 1000000, out)
    end)
  end
end)
