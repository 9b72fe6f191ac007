-- float32 tanh on the CPU (vm_tanhf in core/cpu/vmath.h: an odd
-- polynomial near 0, 1 - 2 / (e^2|x| + 1) above): special values, and
-- agreement with the float64 tanh rounded to float32, contiguous and
-- strided.
local ember = require "ember"

describe("float32 tanh", function()
  it("keeps NaN, signed zeros, infinities and tiny values", function()
    local x = ember.tensor({0 / 0, -0.0, 0.0, math.huge, -math.huge, 1e-30, -1e-4, 9.5, 20, -20})
    local y = x:tanh():totable()
    assert.is_true(y[1] ~= y[1])
    assert.are.equal(-math.huge, 1 / y[2])
    assert.are.equal(math.huge, 1 / y[3])
    assert.are.same({1, -1}, {y[4], y[5]})
    assert.are.equal(x[6], y[6])
    assert.are.same({1, 1, -1}, {y[8] == 1 and 1 or y[8], y[9], y[10]})
  end)

  it("agrees with float64 tanh rounded to float32", function()
    local x = ember.linspace(-12, 12, 20001, {dtype = "float64"}):float()
    local want = x:double():tanh():float()
    local strided = x:view(3, 6667):t()                  -- not contiguous
    assert.is_false(strided:is_contiguous())
    for _, g in ipairs{x:tanh(), strided:tanh():t():reshape(-1)} do
      -- at most one float32 ulp (2^-23 relative) from the rounded value
      local err = ((g:double() - want:double()):abs() / want:double():abs():clamp(1e-30, math.huge))
                  :max():item()
      assert.is_true(err <= 2 ^ -23, "max relative error " .. err)
    end
  end)
end)
