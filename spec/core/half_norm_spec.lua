-- layer_norm and rms_norm on bfloat16/float16 keep their saved statistics
-- (mean, rstd) in float32, as PyTorch keeps them in the accumulation type:
-- a half input's gradients are then exactly the float32 op's on the same
-- values, rounded once.  (Statistics rounded to the half type would move
-- every gradient of a row whose mean is large against its spread.)
local ember = require "ember"
local F = ember.nn.functional

-- forward and gradients of f on half inputs and on their float32 values
local function both(dt, f, ...)
  local half, wide = {}, {}
  for i, t in ipairs{...} do
    half[i] = t:to(dt):requires_grad_()
    wide[i] = half[i]:detach():to("float32"):requires_grad_()
  end
  local yh, yw = f(table.unpack(half)), f(table.unpack(wide))
  local g = ember.randn(yh:shape()):to(dt)
  ;(yh * g):sum():backward()
  ;(yw * g:to("float32")):sum():backward()
  return yh, yw, half, wide
end

describe("layer_norm and rms_norm on half inputs", function()
  before_each(function() ember.manual_seed(3) end)
  for _, dt in ipairs{"bfloat16", "float16"} do
    it(dt .. ": layer_norm's gradients are float32's rounded once", function()
      local x = ember.randn({6, 40}) * 0.5 + 60     -- large mean, small spread
      local w, b = ember.randn({40}), ember.randn({40})
      local yh, yw, h, wd = both(dt, function(x_, w_, b_)
        return F.layer_norm(x_, {40}, w_, b_)
      end, x, w, b)
      assert.are.equal(dt, yh.dtype)
      assert.is_true(ember.equal(yh, yw:to(dt)))
      for i, name in ipairs{"x", "weight", "bias"} do
        assert.are.equal(dt, h[i].grad.dtype, name)
        assert.is_true(ember.equal(h[i].grad, wd[i].grad:to(dt)), name .. " grad")
      end
    end)

    it(dt .. ": rms_norm's gradients are float32's rounded once", function()
      local x = ember.randn({6, 40}) * 0.5 + 60
      local w = ember.randn({40})
      local yh, yw, h, wd = both(dt, function(x_, w_)
        return ember.rms_norm(x_, 1, w_)
      end, x, w)
      assert.is_true(ember.equal(yh, yw:to(dt)))
      for i, name in ipairs{"x", "weight"} do
        assert.is_true(ember.equal(h[i].grad, wd[i].grad:to(dt)), name .. " grad")
      end
    end)
  end
end)
