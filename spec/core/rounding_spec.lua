-- Issue 17's rounding and math group: floor, ceil, round (half to even),
-- trunc, sign, erfinv (core unary ops), frac, clamp with tensor bounds,
-- lerp, logsumexp (lua/ember/mathops.lua).  Expected values were made with
-- PyTorch 2 (torch.floor, ... on the same float64 inputs), copied here.
local ember = require "ember"
local gc = require "helpers.gradcheck"

local function close(t, want, tol)
  local got = t:double():totable()
  assert.are.equal(#want, #got)
  for i = 1, #want do
    if tol then
      assert.is_true(math.abs(got[i] - want[i]) <= tol * math.max(1, math.abs(want[i])),
        ("element %d: %s vs %s"):format(i, got[i], want[i]))
    else
      assert.are.equal(want[i], got[i])
    end
  end
end

local X = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 1.7, -1.7, 0.0, 1e30}
local WANT = {
  floor = {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 1.0, -2.0, 0.0, 1e+30},
  ceil = {-2.0, -1.0, -0.0, 1.0, 2.0, 3.0, 2.0, -1.0, 0.0, 1e+30},
  round = {-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 2.0, -2.0, 0.0, 1e+30},
  trunc = {-2.0, -1.0, -0.0, 0.0, 1.0, 2.0, 1.0, -1.0, 0.0, 1e+30},
  sign = {-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 0.0, 1.0},
}

describe("floor, ceil, round, trunc, sign", function()
  for name, want in pairs(WANT) do
    it(name .. " matches PyTorch in float64 and float32, method and ember.*", function()
      close(ember.tensor(X, {dtype = "float64"})[name](ember.tensor(X, {dtype = "float64"})), want)
      close(ember[name](ember.tensor(X)), ember.tensor(want):double():totable())
      local t = ember.tensor(X, {dtype = "float64"})
      t[name .. "_"](t)
      close(t, want)
    end)
    it(name .. " keeps integer tensors (as PyTorch)", function()
      local i = ember.tensor({3, -2, 0}, {dtype = "int64"})
      local r = i[name](i)
      assert.are.equal("int64", r.dtype)
      assert.are.same(name == "sign" and {1, -1, 0} or {3, -2, 0}, r:totable())
      assert.are.equal("int32", ember.tensor({1}, {dtype = "int32"})[name](ember.tensor({1}, {dtype = "int32"})).dtype)
    end)
    it(name .. " has a zero gradient, on empty and strided inputs too", function()
      local x = ember.tensor({{0.3, 1.7}, {-2.2, 4.0}}, {requires_grad = true})
      x:t()[name](x:t()):sum():backward()
      assert.are.same({{0, 0}, {0, 0}}, x.grad:totable())
      local e = ember.empty(0, 3)
      assert.are.same({0, 3}, e[name](e):shape())
    end)
  end
  it("sign of NaN is 0 and NaN passes floor, as PyTorch", function()
    local n = ember.tensor({0 / 0})
    assert.are.equal(0, n:sign():item())
    assert.is_true(n:floor():item() ~= n:floor():item())
  end)
  it("bool tensors are an error naming the function", function()
    assert.has_error(function() ember.ones(2, {dtype = "bool"}):floor() end,
      "floor: not supported for bool tensors")
  end)
end)

describe("erfinv", function()
  local Y = {-0.99, -0.5, 0.0, 0.3, 0.9, 0.999999}
  local W = {-1.8213863677184483, -0.4769362762044699, 0.0, 0.2724627147267544,
             1.1630871536766743, 3.4589107372754988}
  -- the last: mpmath's erfinv(0.999999) to 30 digits; PyTorch's float64
  -- gives 3.458910737283175 there (its Newton step loses digits near 1)
  local G = {24.450876473746312, 1.1125848189719496, 0.8862269254527579,
             0.9545203588405493, 3.4280428114518418, 139146.3103340976}
  it("matches PyTorch (float64 to 1e-14, float32 to 1e-6)", function()
    close(ember.tensor(Y, {dtype = "float64"}):erfinv(), W, 1e-14)
    -- float32: 0.999999 is not representable; the first five only
    close(ember.erfinv(ember.tensor({table.unpack(Y, 1, 5)})), {table.unpack(W, 1, 5)}, 2e-6)
  end)
  it("gives +-inf at +-1, NaN outside, float32 for integers", function()
    assert.are.same({math.huge, -math.huge}, ember.tensor({1, -1}):erfinv():totable())
    assert.is_true(ember.tensor({1.5}):erfinv():item() ~= ember.tensor({1.5}):erfinv():item())
    assert.are.equal("float32", ember.tensor({0}, {dtype = "int64"}):erfinv().dtype)
  end)
  it("gradient sqrt(pi)/2 exp(erfinv(x)^2), as PyTorch, and gradcheck", function()
    local x = ember.tensor(Y, {dtype = "float64", requires_grad = true})
    x:erfinv():sum():backward()
    close(x.grad, G, 1e-9)
    local z = ember.tensor({-0.7, 0.1, 0.6}, {dtype = "float64", requires_grad = true})
    assert.is_true(gc.gradcheck(function(a) return a:erfinv() end, {z}))
  end)
end)

describe("frac", function()
  it("is x - trunc(x), the sign of x (PyTorch's values)", function()
    close(ember.tensor(X, {dtype = "float64"}):frac(),
      {-0.5, -0.5, -0.5, 0.5, 0.5, 0.5, 0.7, -0.7, 0.0, 0.0}, 1e-15)
    local t = ember.tensor({2.25, -1.75})
    t:frac_()
    assert.are.same({0.25, -0.75}, t:totable())
  end)
  it("gradient 1 and an error for integers", function()
    local x = ember.tensor({1.5, -2.25}, {requires_grad = true})
    ember.frac(x):sum():backward()
    assert.are.same({1, 1}, x.grad:totable())
    assert.has_error(function() ember.tensor({1}, {dtype = "int64"}):frac() end,
      "frac: expected a float tensor, got int64")
  end)
end)

describe("clamp with tensor bounds", function()
  it("broadcasts the bounds, numbers still work", function()
    local x = ember.tensor({{-2, 0.5, 3}, {1, 2, -1}})
    local lo = ember.tensor({0, 0, 0})
    local hi = ember.tensor({{1}, {1.5}})
    assert.are.same({{0, 0.5, 1}, {1, 1.5, 0}}, x:clamp(lo, hi):totable())
    assert.are.same({{0, 0.5, 3}, {1, 2, 0}}, ember.clamp(x, lo):totable())
    assert.are.same({{-2, 0.5, 1}, {1, 1.5, -1}}, x:clamp(nil, hi):totable())
    assert.are.same({{0, 0.5, 1}, {1, 1, 0}}, x:clamp(lo, 1):totable())
  end)
  it("min > max gives max, as PyTorch", function()
    assert.are.same({1}, ember.tensor({5}):clamp(ember.tensor({2}), ember.tensor({1})):totable())
  end)
  it("gradients go to x inside and to the bound taken outside; gradcheck", function()
    local x = ember.tensor({-2, 0.5, 3}, {dtype = "float64", requires_grad = true})
    local lo = ember.tensor({0, 0, 0}, {dtype = "float64", requires_grad = true})
    local hi = ember.tensor({1, 1, 1}, {dtype = "float64", requires_grad = true})
    x:clamp(lo, hi):sum():backward()
    assert.are.same({0, 1, 0}, x.grad:totable())
    assert.are.same({1, 0, 0}, lo.grad:totable())
    assert.are.same({0, 0, 1}, hi.grad:totable())
    assert.is_true(gc.gradcheck(function(a, b) return a:clamp(b, nil) end,
      {ember.tensor({-2, 0.5, 3}, {dtype = "float64", requires_grad = true}),
       ember.tensor({0.1, 0.2, 0.3}, {dtype = "float64", requires_grad = true})}))
  end)
  it("in place, and errors name clamp", function()
    local x = ember.tensor({-1, 5})
    x:clamp_(ember.tensor({0, 0}), ember.tensor({2, 2}))
    assert.are.same({0, 2}, x:totable())
    assert.has_error(function() ember.ones(3):clamp(ember.ones(2)) end)
    assert.has_error(function() ember.ones(3):clamp(ember.ones(3), "x") end,
      "clamp: max must be a number or a tensor, got string")
  end)
end)

describe("lerp", function()
  local s = {1, 2, -3}
  local e = {4, -1, 5}
  it("matches PyTorch with a tensor weight and a number weight", function()
    local S, E = ember.tensor(s, {dtype = "float64"}), ember.tensor(e, {dtype = "float64"})
    close(S:lerp(E, ember.tensor({0.25, 0.75, 1.0}, {dtype = "float64"})), {1.75, -0.25, 5.0})
    close(ember.lerp(S, E, 1), e)
    close(ember.lerp(S, E, 0), s)
  end)
  it("gradients (1-w, w, end-start) by gradcheck", function()
    local function f64(v) return ember.tensor(v, {dtype = "float64", requires_grad = true}) end
    assert.is_true(gc.gradcheck(function(a, b, w) return a:lerp(b, w) end,
      {f64(s), f64(e), f64({0.25, 0.75, 0.5})}))
    assert.is_true(gc.gradcheck(function(a, b) return a:lerp(b, 0.3) end, {f64(s), f64(e)}))
  end)
  it("errors name lerp", function()
    assert.has_error(function() ember.lerp(ember.ones(2), ember.ones(2), "a") end,
      "lerp: weight must be a number or a tensor, got string")
  end)
end)

describe("logsumexp", function()
  local A = {{1, 2, 3}, {-4, 0.5, 2}}
  it("matches PyTorch over either dim, keepdim, negative dim", function()
    local a = ember.tensor(A, {dtype = "float64"})
    close(a:logsumexp(2), {3.4076059644443806, 2.203437791783475}, 1e-15)
    close(ember.logsumexp(a, 1), {1.006715348489118, 2.2014132779827524, 3.313261687518223}, 1e-15)
    assert.are.same({2, 1}, a:logsumexp(-1, {keepdim = true}):shape())
    close(a:t():logsumexp(1), {3.4076059644443806, 2.203437791783475}, 1e-15)
  end)
  it("is stable: large values, -inf rows, empty dims", function()
    local big = ember.tensor({1000, 1000}):logsumexp(1):item()
    assert.is_true(math.abs(big - (1000 + math.log(2))) < 1e-4)
    assert.are.equal(-math.huge, ember.tensor({-math.huge, -math.huge}):logsumexp(1):item())
    assert.are.same({-math.huge, -math.huge}, ember.empty(0, 2):logsumexp(1):totable())
  end)
  it("gradient softmax, by gradcheck", function()
    assert.is_true(gc.gradcheck(function(a) return a:logsumexp(2) end,
      {ember.tensor(A, {dtype = "float64", requires_grad = true})}))
  end)
  it("errors name logsumexp", function()
    assert.has_error(function() ember.ones(2, 2):logsumexp(3) end,
      "logsumexp: dimension 3 out of range for a 2-d tensor (expected 1..2)")
    assert.has_error(function() ember.ones(2):logsumexp(1.5) end,
      "logsumexp: dimension must be an integer, got 1.5")
  end)
end)
