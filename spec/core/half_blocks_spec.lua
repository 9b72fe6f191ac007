-- The bfloat16/float16 unary, binary and derivative maps convert a block
-- at a time inside the elementwise kernels (core/cpu/elementwise.c): each
-- result must be the float32 op's on the widened values, rounded once,
-- bit for bit, whatever the operands' layout (contiguous, transposed,
-- broadcast, a scalar, in place) and length (not a multiple of the block).
local ember = require "ember"
local F = ember.nn.functional

-- bit-equal, NaN matching NaN
local function same(what, h, ref)
  assert.are.equal(ref.dtype, h.dtype, what)
  local a, b = h:to("float64"):reshape(-1):totable(), ref:to("float64"):reshape(-1):totable()
  assert.are.equal(#b, #a, what)
  for i = 1, #a do
    assert.is_true(a[i] == b[i] and (a[i] ~= 0 or 1 / a[i] == 1 / b[i]) or
                   a[i] ~= a[i] and b[i] ~= b[i],
      ("%s: element %d: %.9g vs %.9g"):format(what, i, a[i], b[i]))
  end
end

local UNARY = {
  neg = function(x) return -x end, exp = function(x) return x:exp() end,
  log = function(x) return x:abs():log() end, tanh = function(x) return x:tanh() end,
  sigmoid = function(x) return x:sigmoid() end, gelu = function(x) return F.gelu(x) end,
  gelu_tanh = function(x) return F.gelu(x, "tanh") end,
  silu = function(x) return F.silu(x) end, relu = function(x) return x:relu() end,
  clamp = function(x) return x:clamp(-0.5, 0.7) end, round = function(x) return x:round() end,
}
local BINARY = {
  add = function(a, b) return a + b end, sub = function(a, b) return a - b end,
  mul = function(a, b) return a * b end, div = function(a, b) return a / b end,
  pow = function(a, b) return a:abs():pow(b) end,
  maximum = function(a, b) return ember.maximum(a, b) end,
  atan2 = function(a, b) return ember.atan2(a, b) end,
}

describe("half elementwise maps by blocks", function()
  before_each(function() ember.manual_seed(11) end)
  for _, dt in ipairs{"bfloat16", "float16"} do
    local function wide(t) return t:to("float32") end
    it(dt .. ": unary ops, contiguous and transposed", function()
      local x = (ember.randn({37, 29}) * 3):to(dt)
      x[1][1] = 0 / 0
      for name, f in pairs(UNARY) do
        same(name, f(x), f(wide(x)):to(dt))
        same(name .. " (t)", f(x:t()), f(wide(x):t()):to(dt))
      end
    end)

    it(dt .. ": binary ops, every layout", function()
      local a = (ember.randn({37, 300}) * 3):to(dt)
      local b = (ember.randn({37, 300}) * 3):to(dt)
      local row = (ember.randn({300}) * 3):to(dt)
      local col = (ember.randn({37, 1}) * 3):to(dt)
      local bt = (ember.randn({300, 37}) * 3):to(dt)
      for name, f in pairs(BINARY) do
        same(name, f(a, b), f(wide(a), wide(b)):to(dt))
        same(name .. " (row)", f(a, row), f(wide(a), wide(row)):to(dt))
        same(name .. " (col)", f(a, col), f(wide(a), wide(col)):to(dt))
        same(name .. " (t)", f(a, bt:t()), f(wide(a), wide(bt):t()):to(dt))
        same(name .. " (scalar)", f(a, 1.5), f(wide(a), 1.5):to(dt))
      end
    end)

    it(dt .. ": in place", function()
      local a = (ember.randn({1000}) * 3):to(dt)
      local m = (wide(a) * 1.25):to(dt)
      local ref = (wide(m) + wide((wide(m) / 1.25):to(dt))):to(dt)
      local ref2 = wide(ref):exp():to(dt)
      a:mul_(1.25):add_(a / 1.25)
      same("mul_ add_", a, ref)
      a:exp_()
      same("exp_", a, ref2)
    end)

    -- ops whose backward saves their input: the half gradient is float32's
    -- on the same values, rounded once
    it(dt .. ": derivatives", function()
      for _, name in ipairs{"gelu", "gelu_tanh", "silu", "log"} do
        local x = (ember.randn({700}) * 2):to(dt)
        local g = ember.randn({700}):to(dt)
        local xh = x:clone():requires_grad_()
        local xw = wide(x):requires_grad_()
        UNARY[name](xh):backward(g)
        UNARY[name](xw):backward(wide(g))
        same(name .. " grad", xh.grad, xw.grad:to(dt))
      end
    end)
  end
end)
