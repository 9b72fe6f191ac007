-- RMSNorm, SiLU and Mish (modules and functional forms) against PyTorch
-- (spec/reference/make_nn_small_reference.py: torch 1.13's silu and mish,
-- and PyTorch 2.4's RMSNorm formula), forward and gradients, plus
-- finite-difference checks in float64.
local ember = require "ember"
local nn = ember.nn
local F = nn.functional
local H = require "nn.helper"
local G = require "helpers.gradcheck"
local REF = require "reference.nn_small_values"
local T, close = H.T, H.close

describe("nn.SiLU, nn.Mish, F.silu, F.mish", function()
  for _, name in ipairs{"silu", "mish"} do
    local c = REF["act_" .. name]
    for _, dt in ipairs(H.DTYPES) do
      it(name .. " matches PyTorch (" .. dt .. ")", function()
        local Class = name == "silu" and nn.SiLU or nn.Mish
        for _, fn in ipairs{F[name], Class()} do
          local x = H.leaf(c.x, dt)
          local out = fn(x)
          close(out, c.out, name .. " out")
          H.backward(out, c.R)
          close(x.grad, c.gx, name .. " grad")
        end
      end)
    end
    it(name .. " agrees with finite differences", function()
      ember.manual_seed(3)
      G.check(F[name], {G.leaf({3, 4}, 3)})
    end)
    it(name .. " keeps the shape of empty and non-contiguous inputs", function()
      assert.are.same({0, 3}, F[name](ember.zeros(0, 3)):shape())
      local x = ember.randn(4, 3)
      close(F[name](x:t()), {shape = {3, 4}, data = F[name](x):t():contiguous():reshape(-1)
                                                        :double():totable()}, "transposed")
    end)
    it(name .. " rejects integer input", function()
      H.fails(name .. ": expected a floating tensor for the input, got int64", F[name],
              ember.ones(2, {dtype = "int64"}))
    end)
  end
  it("prints as PyTorch", function()
    assert.are.equal("SiLU()", tostring(nn.SiLU()))
    assert.are.equal("Mish()", tostring(nn.Mish()))
  end)
end)

describe("nn.RMSNorm and F.rms_norm", function()
  for _, name in ipairs{"rms_last", "rms_two", "rms_noaffine", "rms_small"} do
    local c = REF[name]
    for _, dt in ipairs(H.DTYPES) do
      it(name .. " matches PyTorch 2.4's formula (" .. dt .. ")", function()
        local want = c[dt]
        local m = nn.RMSNorm(c.normalized_shape, {eps = c.eps, elementwise_affine = c.weight ~= nil})
        m:to(dt)
        if c.weight then m:load_state_dict({weight = T(c.weight, dt)}) end
        local x = H.leaf(c.x, dt)
        local out = m(x)
        close(out, want.out, name .. " out")
        H.backward(out, want.R)
        close(x.grad, want.gx, name .. " grad input")
        if c.weight then close(m.weight.grad, want.gweight, name .. " grad weight") end
        -- the functional form gives the same
        local w = c.weight and T(c.weight, dt)
        close(F.rms_norm(T(c.x, dt), c.normalized_shape, w, c.eps), want.out, name .. " F")
      end)
    end
  end

  it("agrees with finite differences (input and weight)", function()
    ember.manual_seed(5)
    local x, w = G.leaf({2, 3, 4}), G.leaf({3, 4})
    G.check(function(a, b) return F.rms_norm(a, {3, 4}, b) end, {x, w})
    G.check(function(a) return F.rms_norm(a, 4, nil, 1e-3) end, {x})
  end)

  it("has PyTorch's parameters, defaults and printing", function()
    local m = nn.RMSNorm(4)
    assert.are.same({4}, m.weight:shape())
    assert.is_true(m.weight.requires_grad)
    assert.is_nil(m.bias)
    assert.is_nil(m.eps)
    assert.are.equal("RMSNorm((4,), eps=nil, elementwise_affine=true)", tostring(m))
    assert.are.equal("RMSNorm((3, 4), eps=1e-06, elementwise_affine=false)",
                     tostring(nn.RMSNorm({3, 4}, {eps = 1e-6, elementwise_affine = false})))
    assert.are.same({}, nn.RMSNorm(3, {elementwise_affine = false}):parameters())
    assert.are.equal("float64", nn.RMSNorm(3, {dtype = "float64"}).weight.dtype)
  end)

  it("handles empty and non-contiguous inputs", function()
    assert.are.same({0, 4}, nn.RMSNorm(4)(ember.zeros(0, 4)):shape())
    local x = ember.randn(4, 3)
    local a, b = F.rms_norm(x:t(), 4), F.rms_norm(x:t():contiguous(), 4)
    assert.is_true(a:sub(b):abs():max():item() < 1e-6)
  end)

  it("checks its arguments", function()
    H.fails("RMSNorm: unknown option 'bias'", nn.RMSNorm, 4, {bias = false})
    H.fails("RMSNorm: normalized_shape must be an integer or a non-empty table", nn.RMSNorm, {})
    H.fails("RMSNorm: eps must be in [0, inf], got -1", nn.RMSNorm, 4, {eps = -1})
    H.fails("rms_norm: input shape [2,3] does not end with normalized_shape [4]",
            nn.RMSNorm(4), ember.zeros(2, 3))
    H.fails("rms_norm: weight must have shape [3], got [4]", F.rms_norm, ember.zeros(2, 3), 3,
            ember.ones(4))
    H.fails("rms_norm: expected a floating tensor for the input, got int64", F.rms_norm,
            ember.ones(2, 3, {dtype = "int64"}), 3)
  end)
end)
