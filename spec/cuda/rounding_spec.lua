-- CPU/CUDA parity for issue 17's rounding and math group.
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

describe("rounding and math on cuda", function()
  if not cuda_helper.available() then return end
  local X = {{-2.5, -1.5, 0.5, 1.7}, {2.5, -0.7, 0.0, 3.2}}
  for _, name in ipairs({"floor", "ceil", "round", "trunc", "sign", "frac"}) do
    it(name .. " equals the CPU exactly, strided too", function()
      local c = ember.tensor(X)
      local g = c:cuda()
      assert.are.same(c[name](c):totable(), g[name](g):cpu():totable())
      assert.are.same(c:t()[name](c:t()):totable(), g:t()[name](g:t()):cpu():totable())
    end)
  end
  it("erfinv and its gradient within 1e-6", function()
    local c = ember.tensor({-0.9, -0.2, 0.4, 0.8}, {requires_grad = true})
    local g = c:detach():cuda()
    g.requires_grad = true
    c:erfinv():sum():backward()
    g:erfinv():sum():backward()
    local a, b = c:erfinv():totable(), g:erfinv():cpu():totable()
    for i = 1, 4 do assert.is_true(math.abs(a[i] - b[i]) < 1e-6) end
    local ga, gb = c.grad:totable(), g.grad:cpu():totable()
    for i = 1, 4 do assert.is_true(math.abs(ga[i] - gb[i]) < 1e-5 * math.abs(ga[i])) end
  end)
  it("clamp with tensor bounds, lerp, logsumexp match the CPU", function()
    local c = ember.tensor(X)
    local lo, hi = ember.tensor({0, -1, 0, 0}), ember.tensor({{1}, {2}})
    assert.are.same(c:clamp(lo, hi):totable(), c:cuda():clamp(lo:cuda(), hi:cuda()):cpu():totable())
    local e = ember.ones(2, 4)
    assert.are.same(c:lerp(e, 0.25):totable(), c:cuda():lerp(e:cuda(), 0.25):cpu():totable())
    local a, b = c:logsumexp(2):totable(), c:cuda():logsumexp(2):cpu():totable()
    for i = 1, 2 do assert.is_true(math.abs(a[i] - b[i]) < 1e-6) end
  end)
end)
