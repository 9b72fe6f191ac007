-- The fused layer_norm and rms_norm (core/ops/norm.c) and cross entropy
-- (core/ops/loss.c, through nn.functional.cross_entropy): forward values
-- and the gradients of x, weight and bias against PyTorch
-- (spec/reference/norm_values.lua, written by
-- spec/reference/make_norm_reference.py): both float dtypes, several
-- trailing dims, no affine, non-contiguous and empty inputs, a long row,
-- class weights, ignore_index, label smoothing, ties and large logits;
-- then float64 finite-difference checks and the errors.
local ember = require "ember"
local F = require("ember.nn").functional
local gradcheck = require("spec.helpers.gradcheck").gradcheck

local ref = dofile("spec/reference/norm_values.lua")

local function close(what, got, expected, dtype)
  local vals = got:contiguous():view(-1):totable()
  assert.are.equal(#expected, #vals, what .. ": count")
  local tol = dtype == "float32" and 1e-5 or 1e-10
  for i, e in ipairs(expected) do
    local v = vals[i]
    assert.is_true(math.abs(v - e) <= tol * math.max(1, math.abs(e)),
      ("%s: element %d is %.17g, expected %.17g"):format(what, i, v, e))
  end
end

local function T(data, dtype, shape)
  return ember.tensor(data, {dtype = dtype}):view(shape)
end

local function trailing(shape, k)
  local s = {}
  for i = #shape - k + 1, #shape do s[#s + 1] = shape[i] end
  return s
end

describe("layer_norm and rms_norm against PyTorch", function()
  for _, c in ipairs(ref.norm) do
    local name = ("%s %s [%s] k=%d%s%s%s"):format(c.op, c.dtype, table.concat(c.shape, ","),
      c.k, c.w and "" or " no weight", c.transpose and " transposed" or "",
      c.eps and (" eps=" .. c.eps) or "")
    it(name, function()
      local x = T(c.x, c.dtype, c.shape)
      if c.transpose then x = x:transpose(-1, -2) end
      x.requires_grad = true
      local ns = trailing(x:shape(), c.k)
      local w = c.w and T(c.w, c.dtype, ns) or nil
      local b = c.b and T(c.b, c.dtype, ns) or nil
      if w then w.requires_grad = true end
      if b then b.requires_grad = true end
      local y
      if c.op == "layer_norm" then
        y = ember.layer_norm(x, c.k, w, b, c.eps)
        close("F.layer_norm", F.layer_norm(x:detach(), ns, w and w:detach(), b and b:detach(),
                                           c.eps), c.out, c.dtype)
      else
        y = ember.rms_norm(x, c.k, w, c.eps)
      end
      assert.are.same(x:shape(), y:shape())
      close("out", y, c.out, c.dtype)
      ;(y * T(c.gw, c.dtype, x:shape())):sum():backward()
      close("grad x", x.grad, c.gx, c.dtype)
      if w then close("grad weight", w.grad, c.gwt, c.dtype) end
      if b then close("grad bias", b.grad, c.gb, c.dtype) end
    end)
  end

  it("computes only the gradients asked for, and the same as all three", function()
    local x = ember.randn(5, 7, {dtype = "float64"})
    local w, b = ember.randn(7, {dtype = "float64"}), ember.randn(7, {dtype = "float64"})
    w.requires_grad = true
    ember.layer_norm(x, 1, w, b):sum():backward()
    assert.is_nil(b.grad)
    local w2 = w:detach():clone()
    local x2, b2 = x:clone(), b:clone()
    w2.requires_grad, x2.requires_grad, b2.requires_grad = true, true, true
    ember.layer_norm(x2, 1, w2, b2):sum():backward()
    assert.is_true(ember.equal(w.grad, w2.grad))
  end)

  it("is deterministic over threads' partial sums", function()
    local x = ember.randn(700, 64)
    local w = ember.ones(64)
    w.requires_grad = true
    local grads = {}
    for i = 1, 2 do
      w.grad = nil
      ember.layer_norm(x, 1, w):pow(2):sum():backward()
      grads[i] = w.grad:clone()
    end
    assert.is_true(ember.equal(grads[1], grads[2]))
  end)

  it("passes float64 finite-difference checks", function()
    local x = ember.randn(3, 2, 4, {dtype = "float64"})
    local w = ember.randn(2, 4, {dtype = "float64"})
    local b = ember.randn(2, 4, {dtype = "float64"})
    x.requires_grad, w.requires_grad, b.requires_grad = true, true, true
    assert(gradcheck(function(a, ww, bb) return ember.layer_norm(a, 2, ww, bb) end, {x, w, b}))
    assert(gradcheck(function(a, ww) return ember.rms_norm(a, 2, ww, 1e-6) end, {x, w}))
    assert(gradcheck(function(a) return ember.layer_norm(a:transpose(1, 3), 1) end, {x}))
  end)

  it("names the function in its errors", function()
    local x = ember.zeros(2, 3)
    assert.has_error(function() ember.layer_norm(x, 3) end,
      "layer_norm: normalized_ndim must be in 1..2 (the input's dims), got 3")
    assert.has_error(function() ember.rms_norm(x, 0) end,
      "rms_norm: normalized_ndim must be in 1..2 (the input's dims), got 0")
    assert.has_error(function() ember.layer_norm(x, 1, ember.ones(4)) end,
      "layer_norm: weight must have shape [3], got [4]")
    assert.has_error(function() ember.layer_norm(x, 1, nil, ember.ones(2, 3)) end,
      "layer_norm: bias must have shape [3], got [2,3]")
    assert.has_error(function() ember.layer_norm(x, 1, ember.ones(3, {dtype = "float64"})) end,
      "layer_norm: weight has dtype float64 but the input float32")
    assert.has_error(function() ember.rms_norm(ember.zeros(2, 3, {dtype = "int64"}), 1) end,
      "rms_norm: expected a floating input, got int64")
    assert.has_error(function() ember.layer_norm(x, 1, nil, nil, -1) end,
      "layer_norm: eps must be >= 0, got -1")
    assert.has_error(function() ember.layer_norm(x, 1.5) end,
      "layer_norm: n (the number of normalised dims) must be an integer")
  end)
end)

describe("fused cross entropy against PyTorch", function()
  for _, c in ipairs(ref.ce) do
    local name = ("%s [%d,%d] %s%s%s%s"):format(c.dtype, c.n, c.c, c.reduction,
      c.weight and " weight" or "", c.ignore ~= -100 and " ignore" or "",
      c.smoothing > 0 and (" smoothing=" .. c.smoothing) or "")
    it(name, function()
      local x = T(c.x, c.dtype, {c.n, c.c})
      x.requires_grad = true
      local t = ember.tensor(c.target, {dtype = "int64"})
      local opts = {reduction = c.reduction, ignore_index = c.ignore,
                    label_smoothing = c.smoothing,
                    weight = c.weight and ember.tensor(c.weight, {dtype = c.dtype})}
      local loss = F.cross_entropy(x, t, opts)
      assert.are.same(c.out_shape, loss:shape())
      close("loss", loss, c.out, c.dtype)
      ;(loss * T(c.g, c.dtype, c.out_shape)):sum():backward()
      close("grad", x.grad, c.gx, c.dtype)
      local again = F.cross_entropy(x:detach(), t:int(), opts)   -- int32 targets
      close("int32 target", again, c.out, c.dtype)
    end)
  end

  it("passes float64 finite-difference checks", function()
    local x = ember.randn(4, 6, {dtype = "float64"})
    x.requires_grad = true
    local t = ember.tensor({2, 6, -100, 1}, {dtype = "int64"})
    local w = ember.rand(6, {dtype = "float64"}) + 0.5
    assert(gradcheck(function(a)
      return F.cross_entropy(a, t, {weight = w, label_smoothing = 0.2})
    end, {x}))
    assert(gradcheck(function(a)
      return F.cross_entropy(a:t(), t, {reduction = "none"})
    end, {ember.randn(6, 4, {dtype = "float64", requires_grad = true})}))
  end)

  it("handles infinite and NaN logits as log_softmax + nll does", function()
    local x = ember.tensor({{0, -math.huge, -math.huge}, {1, 0 / 0, 2}, {-200, 0, 100}})
    x.requires_grad = true
    local l = F.cross_entropy(x, ember.tensor({1, 3, 3}, {dtype = "int64"}), {reduction = "none"})
    local v = l:totable()
    assert.are.equal(0, v[1])
    assert.is_true(v[2] ~= v[2])
    assert.are.equal(0, v[3])
    l[{{1}}]:sum():backward()
    assert.are.same({0, 0, 0}, x.grad[1]:totable())
  end)

  it("checks its target in the core too", function()
    assert.has_error(function()
      ember._cross_entropy_rows(ember.zeros(2, 3), ember.tensor({1, 4}, {dtype = "int64"}),
                                nil, -100, 0)
    end, "cross_entropy: target 4 is out of range for 3 classes (expected 1..3 or ignore_index -100)")
    assert.has_error(function()
      ember._cross_entropy_rows(ember.zeros(2, 3), ember.tensor({1, 2}, {dtype = "int64"}),
                                nil, -100, 1.5)
    end, "cross_entropy: label_smoothing must be in [0, 1], got 1.5")
  end)
end)
