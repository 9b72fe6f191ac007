-- Issue 17's binary math group: remainder (the sign of the divisor), fmod
-- (the sign of the dividend), atan2, hypot.  Expected values were made with
-- PyTorch 1.13 (torch.remainder, ... on the same float64 inputs), copied here.
local ember = require "ember"
local gc = require "helpers.gradcheck"

local function close(t, want, tol)
  local got = t:double():totable()
  assert.are.equal(#want, #got)
  for i = 1, #want do
    local w, g = want[i], got[i]
    if w ~= w then
      assert.is_true(g ~= g, ("element %d: %s vs nan"):format(i, g))
    elseif tol then
      assert.is_true(math.abs(g - w) <= tol * math.max(1, math.abs(w)),
        ("element %d: %s vs %s"):format(i, g, w))
    else
      assert.are.equal(w, g)
    end
  end
end

local NAN = 0 / 0
local A = {-7.0, -3.5, 3.0, 7.5, -0.0, 5.0}
local B = {2.0, -2.0, -2.5, 2.0, 3.0, 0.0}
local WANT = {
  remainder = {1.0, -1.5, -2.0, 1.5, -0.0, NAN},
  fmod = {-1.0, -1.5, 0.5, 1.5, -0.0, NAN},
  atan2 = {-1.2924966677897853, -2.0899424410414196, 2.2655346029916,
           1.3101939350475555, -0.0, 1.5707963267948966},
  hypot = {7.280109889280518, 4.031128874149275, 3.905124837953327,
           7.762087348130012, 3.0, 5.0},
}
local EXACT = {remainder = true, fmod = true}

-- Broadcast cases in every dtype, with gradients, from PyTorch: see
-- spec/reference/make_binop_reference.py.
local CASES = dofile("spec/reference/binop_values.lua")

local function close_list(got, want, tol, what)
  assert.are.equal(#want, #got)
  for i = 1, #want do
    local w, g = want[i], got[i]
    if w ~= w then
      assert.is_true(g ~= g, ("%s element %d: %s vs nan"):format(what, i, g))
    else
      assert.is_true(math.abs(g - w) <= tol * math.max(1, math.abs(w)),
        ("%s element %d: %s vs %s"):format(what, i, g, w))
    end
  end
end

describe("remainder, fmod, atan2, hypot against PyTorch", function()
  for k, c in ipairs(CASES) do
    it(("case %d: %s, %s"):format(k, c.op, c.dtype), function()
      local isf = c.dtype == "float32" or c.dtype == "float64"
      local a = ember.tensor(c.a, {dtype = c.dtype}):view(c.a_shape)
      local b = ember.tensor(c.b, {dtype = c.dtype}):view(c.b_shape)
      if isf then a:requires_grad_(); b:requires_grad_() end
      local r = ember[c.op](a, b)
      assert.are.equal(c.out_dtype, r.dtype)
      assert.are.same(c.out_shape, r:shape())
      local tol = c.out_dtype == "float64" and 1e-14 or 1e-6
      if c.out_dtype == "int32" or c.out_dtype == "int64" then
        assert.are.same(c.out, r:contiguous():view(-1):totable())
      else
        close_list(r:detach():double():contiguous():view(-1):totable(), c.out, tol, "out")
      end
      if isf then
        local w = ember.tensor(c.w, {dtype = c.dtype}):view(c.out_shape)
        r:mul(w):sum():backward()
        close_list(a.grad:double():contiguous():view(-1):totable(), c.grad_a, tol, "grad_a")
        -- b's gradient sums over the broadcast: a looser bound in float32
        close_list(b.grad:double():contiguous():view(-1):totable(), c.grad_b,
                   c.dtype == "float64" and 1e-13 or 1e-5, "grad_b")
      end
    end)
  end
end)

describe("remainder, fmod, atan2, hypot", function()
  for name, want in pairs(WANT) do
    it(name .. " matches PyTorch in float64 and float32, method and ember.*", function()
      local a = ember.tensor(A, {dtype = "float64"})
      local b = ember.tensor(B, {dtype = "float64"})
      close(a[name](a, b), want, not EXACT[name] and 1e-15 or nil)
      close(ember[name](a, b), want, not EXACT[name] and 1e-15 or nil)
      local r = ember[name](a:float(), b:float())
      assert.are.equal("float32", r.dtype)
      close(r, want, 1e-6)
    end)

    it(name .. " broadcasts, takes numbers, and reads strided operands", function()
      local a = ember.tensor({{-7, 3}, {5, -1}}, {dtype = "float64"})
      local b = ember.tensor({2.5, -3}, {dtype = "float64"})
      local r = ember[name](a, b)
      for i = 1, 2 do
        for j = 1, 2 do
          local x = ember[name](ember.tensor({a[i][j]}, {dtype = "float64"}),
                                ember.tensor({b[j]}, {dtype = "float64"}))
          assert.are.equal(x[1], r[i][j])
        end
      end
      local t = a:t()
      assert.is_false(t:is_contiguous())
      assert.are.same(ember[name](t:contiguous(), b):totable(), ember[name](t, b):totable())
      assert.are.same(ember[name](a, ember.tensor({2.5}, {dtype = "float64"})):totable(),
                      a[name](a, 2.5):totable())
      -- float32 fast paths: contiguous, scalar row, strided
      local f, fb = a:float(), b:float()
      assert.are.same(ember[name](f:t():contiguous(), fb):totable(), ember[name](f:t(), fb):totable())
      assert.are.same(ember[name](f, ember.tensor({2.5})):totable(),
                      ember[name](f, ember.tensor({2.5, 2.5})):totable())
    end)

    it(name .. " of empty tensors is empty", function()
      local r = ember[name](ember.zeros({0, 3}), ember.ones({3}))
      assert.are.same({0, 3}, r:shape())
    end)

    it(name .. " has the gradient of PyTorch (gradcheck)", function()
      local a = gc.leaf({3, 4}, 3)
      local b = gc.leaf({4}, 1, 0)
      -- keep the operands away from the kinks of remainder and fmod
      if EXACT[name] then
        b = (ember.tensor({1.7, -2.3, 0.9, -1.1}, {dtype = "float64"})):requires_grad_()
        a = (ember.tensor({{0.3, 2.9, -4.1, 5.3}, {-0.7, 3.2, 1.3, -2.4},
                           {7.3, -1.4, 2.2, 0.6}}, {dtype = "float64"})):requires_grad_()
      end
      gc.check(function(x, y) return ember[name](x, y) end, {a, b})
    end)
  end

  it("remainder and fmod gradients are g and -floor(a/b) g, -trunc(a/b) g", function()
    local a = ember.tensor({-7.0, 7.0}, {dtype = "float64", requires_grad = true})
    local b = ember.tensor({2.0, -2.0}, {dtype = "float64", requires_grad = true})
    a:remainder(b):sum():backward()
    assert.are.same({1, 1}, a.grad:totable())
    assert.are.same({4, 4}, b.grad:totable())
    a.grad, b.grad = nil, nil
    a:fmod(b):sum():backward()
    assert.are.same({1, 1}, a.grad:totable())
    assert.are.same({3, 3}, b.grad:totable())
  end)

  it("atan2 and hypot gradients at a point", function()
    local y = ember.tensor({3.0}, {dtype = "float64", requires_grad = true})
    local x = ember.tensor({4.0}, {dtype = "float64", requires_grad = true})
    ember.atan2(y, x):backward()
    assert.are.equal(4 / 25, y.grad[1])
    assert.are.equal(-3 / 25, x.grad[1])
    y.grad, x.grad = nil, nil
    ember.hypot(y, x):backward()
    assert.is_true(math.abs(y.grad[1] - 3 / 5) < 1e-15)
    assert.is_true(math.abs(x.grad[1] - 4 / 5) < 1e-15)
  end)

  it("integer remainder and fmod give integers, as PyTorch", function()
    for _, dt in ipairs({"int32", "int64"}) do
      local a = ember.tensor({-7, 7, -7, 7, 0, -1}, {dtype = dt})
      local b = ember.tensor({3, 3, -3, -3, 5, 4}, {dtype = dt})
      local r, f = a:remainder(b), a:fmod(b)
      assert.are.equal(dt, r.dtype)
      assert.are.equal(dt, f.dtype)
      assert.are.same({2, 1, -1, -2, 0, 3}, r:totable())
      assert.are.same({-1, 1, -1, 1, 0, -1}, f:totable())
      assert.are.same({2, 1, 2, 1, 0, 2}, a:remainder(3):totable())
    end
    local u = ember.tensor({7, 200}, {dtype = "uint8"})
    assert.are.same({1, 2}, u:remainder(3):totable())
    assert.are.same({1, 2}, u:fmod(3):totable())
    -- the smallest integer by -1 is 0, not an overflow
    local m = ember.tensor({math.mininteger, 5}, {dtype = "int64"})
    assert.are.same({0, 0}, m:remainder(-1):totable())
    assert.are.same({0, 0}, m:fmod(-1):totable())
    -- mixed int and float promote
    assert.are.equal("float32", ember.remainder(ember.tensor({5}, {dtype = "int64"}),
                                                ember.tensor({2.5})).dtype)
  end)

  it("atan2 and hypot of integers give float32", function()
    local a = ember.tensor({3, -1}, {dtype = "int64"})
    local b = ember.tensor({4, 0}, {dtype = "int32"})
    local h = ember.hypot(a, b)
    assert.are.equal("float32", h.dtype)
    assert.are.same({5, 1}, h:totable())
    local t = ember.atan2(a, b)
    assert.are.equal("float32", t.dtype)
    close(t, {math.atan(3, 4), -math.pi / 2}, 1e-6)
  end)

  it("an integer divisor of 0 is an error naming the function", function()
    local a = ember.tensor({1, 2}, {dtype = "int64"})
    assert.has_error(function() a:remainder(ember.tensor({1, 0}, {dtype = "int64"})) end,
      "remainder: integer division by zero")
    assert.has_error(function() ember.fmod(a, 0) end, "fmod: integer division by zero")
    assert.has_error(function() ember.tensor({1}, {dtype = "uint8"}):fmod(0) end,
      "fmod: integer division by zero")
    -- floats give nan, as PyTorch
    assert.is_true(ember.tensor({1.0}):remainder(0)[1] ~= ember.tensor({1.0}):remainder(0)[1])
  end)

  it("in place: remainder_, fmod_, atan2_, hypot_ match the plain forms", function()
    for _, name in ipairs({"remainder", "fmod", "atan2", "hypot"}) do
      local a = ember.tensor({{-7.0, 3.5}, {2.0, -1.25}})
      local b = ember.tensor({2.0, -1.5})
      local want = ember[name](a, b):totable()
      local t = a:clone()
      assert.are.equal(t, t[name .. "_"](t, b))
      assert.are.same(want, t:totable())
      local u = a:clone()
      ember[name .. "_"](u, b)
      assert.are.same(want, u:totable())
      -- autograd through the in-place form, on a non-leaf
      local x = a:double():requires_grad_()
      local y = x * 1
      y[name .. "_"](y, b:double())
      gc.check(function(p)
        local q = p * 1
        return q[name .. "_"](q, b:double())
      end, {ember.tensor({{-7.3, 3.6}, {2.2, -1.35}}, {dtype = "float64"}):requires_grad_()})
    end
    local i = ember.tensor({7, -7}, {dtype = "int64"})
    i:remainder_(3)
    assert.are.same({1, 2}, i:totable())
    assert.has_error(function() i:atan2_(1) end,
      "atan2_: result type float32 can't be cast to the destination dtype int64")
    assert.has_error(function() i:fmod_(0) end, "fmod: integer division by zero")
  end)

  it("bool operands and bad shapes are clear errors", function()
    local t = ember.tensor({true, false})
    assert.has_error(function() t:remainder(t) end,
      "remainder: not supported for bool tensors; use ints")
    assert.has_error(function() ember.fmod(t, t) end,
      "fmod: not supported for bool tensors; use ints")
    assert.has_error(function() ember.atan2(ember.ones({2}), ember.ones({3})) end)
    assert.has_error(function() ember.hypot(ember.ones({2}), ember.ones({3})) end)
  end)
end)
