-- CPU/CUDA parity for issue 17's binary math group: remainder, fmod,
-- atan2, hypot.
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

describe("remainder, fmod, atan2, hypot on cuda", function()
  if not cuda_helper.available() then return end
  local A = {{-7.0, -3.5, 3.0, 7.5}, {-0.5, 5.0, 2.25, -1.0}}
  local B = {2.0, -2.0, -2.5, 0.75}
  for _, name in ipairs({"remainder", "fmod", "atan2", "hypot"}) do
    for _, dt in ipairs({"float32", "float64"}) do
      it(name .. " in " .. dt .. " matches the CPU, broadcast and strided", function()
        local a = ember.tensor(A, {dtype = dt})
        local b = ember.tensor(B, {dtype = dt})
        local ga, gb = a:cuda(), b:cuda()
        local c, g = ember[name](a, b):totable(), ember[name](ga, gb):cpu():totable()
        for i = 1, 2 do
          for j = 1, 4 do
            assert.is_true(math.abs(c[i][j] - g[i][j]) <= 1e-6 * math.max(1, math.abs(c[i][j])))
          end
        end
        local bt = ember.tensor({{1.5, -2.0}, {0.5, 3.0}}, {dtype = dt})
        local ct = ember[name](bt:t(), a:narrow(2, 1, 2)):totable()
        local gt = ember[name](bt:cuda():t(), ga:narrow(2, 1, 2)):cpu():totable()
        for i = 1, 2 do
          for j = 1, 2 do
            assert.is_true(math.abs(ct[i][j] - gt[i][j]) <= 1e-6 * math.max(1, math.abs(ct[i][j])))
          end
        end
      end)
    end
    it(name .. " gradients match the CPU", function()
      local a = ember.tensor(A, {dtype = "float64", requires_grad = true})
      local b = ember.tensor(B, {dtype = "float64", requires_grad = true})
      local ga = a:detach():cuda():requires_grad_()
      local gb = b:detach():cuda():requires_grad_()
      ember[name](a, b):sum():backward()
      ember[name](ga, gb):sum():backward()
      local x, y = a.grad:totable(), ga.grad:cpu():totable()
      for i = 1, 2 do
        for j = 1, 4 do assert.is_true(math.abs(x[i][j] - y[i][j]) < 1e-12) end
      end
      local u, v = b.grad:totable(), gb.grad:cpu():totable()
      for j = 1, 4 do assert.is_true(math.abs(u[j] - v[j]) < 1e-12) end
    end)
  end
  it("the in-place forms match the CPU", function()
    for _, name in ipairs({"remainder_", "fmod_", "atan2_", "hypot_"}) do
      local c = ember.tensor(A)
      local g = c:cuda()
      local b = ember.tensor(B)
      c[name](c, b)
      g[name](g, b:cuda())
      local x, y = c:totable(), g:cpu():totable()
      for i = 1, 2 do
        for j = 1, 4 do assert.is_true(math.abs(x[i][j] - y[i][j]) <= 1e-6 * math.max(1, math.abs(x[i][j]))) end
      end
    end
  end)
  it("integer remainder and fmod match the CPU exactly; 0 divisors are errors", function()
    for _, dt in ipairs({"int32", "int64", "uint8"}) do
      local a = ember.tensor({{7, 8, 9}, {100, 0, 13}}, {dtype = dt})
      local b = ember.tensor({3, 5, 2}, {dtype = dt})
      if dt ~= "uint8" then a = a - 50 end
      for _, name in ipairs({"remainder", "fmod"}) do
        assert.are.same(ember[name](a, b):totable(), ember[name](a:cuda(), b:cuda()):cpu():totable())
      end
      assert.has_error(function() a:cuda():remainder(0) end, "remainder: integer division by zero")
      assert.has_error(function()
        a:cuda():fmod(ember.tensor({1, 0, 1}, {dtype = dt}):cuda())
      end, "fmod: integer division by zero")
    end
    local m = ember.tensor({math.mininteger, -7}, {dtype = "int64"}):cuda()
    assert.are.same({0, 0}, m:remainder(-1):cpu():totable())
  end)
end)
