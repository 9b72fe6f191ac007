-- Norms and linear algebra (lua/ember/linalg.lua and the core's diagonal
-- view): norm, cdist, nn.functional.normalize, mm, bmm, outer, baddbmm,
-- diagonal, diag, trace, einsum, against PyTorch's values.
--
-- The reference cases live in spec/reference/linalg_values.lua, written by
-- spec/reference/make_linalg_reference.py (needs PyTorch to regenerate,
-- never to run this spec).  Each case runs in float64 and float32, on
-- contiguous inputs and on non-contiguous ones holding the same values;
-- forward values and the gradients of sum(out * w) are compared.
local ember = require "ember"
local gradcheck = require("helpers.gradcheck").gradcheck
local CASES = dofile("spec/reference/linalg_values.lua")

--- Input k of a case: ((7 j + 3 k) mod 11 - 5) / 4, j = 0 .. numel - 1.
local function input(shape, k, dtype)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local v = {}
  for j = 0, n - 1 do v[j + 1] = ((7 * j + 3 * k) % 11 - 5) / 4 end
  local t = n > 0 and ember.tensor(v, {dtype = "float64"}) or ember.zeros(0, {dtype = "float64"})
  return t:view(shape):to(dtype)
end

--- The same values in a non-contiguous tensor.
local function strided(x)
  if x:dim() >= 2 then return x:transpose(1, 2):contiguous():transpose(1, 2) end
  local n = x:numel()
  local y = ember.zeros(2 * n, {dtype = x.dtype}):view(n, 2):select(2, 1)
  y:copy_(x)
  return y
end

local function eval(expr, xs)
  local env = {ember = ember, math = math, x1 = xs[1], x2 = xs[2], x3 = xs[3]}
  return assert(load("return " .. expr, expr, "t", env))()
end

local function close(got, want, tol, what)
  assert.are.same(#want, got:numel(), what .. ": numel")
  local flat = got:to("float64"):reshape(-1):totable()
  for i, w in ipairs(want) do
    local g = flat[i]
    if math.abs(g - w) > tol * (1 + math.abs(w)) then
      error(("%s: element %d is %.17g, PyTorch gives %.17g"):format(what, i, g, w), 2)
    end
  end
end

describe("linalg against PyTorch", function()
  for _, case in ipairs(CASES) do
    for _, dtype in ipairs({"float64", "float32"}) do
      for _, layout in ipairs({"contiguous", "strided"}) do
        it(("%s (%s, %s)"):format(case.lua, dtype, layout), function()
          local tol = dtype == "float64" and 1e-12 or 2e-5
          local xs = {}
          for k, s in ipairs(case.shapes) do
            local x = input(s, k, dtype)
            if layout == "strided" then x = strided(x) end
            xs[k] = x:detach():requires_grad_(true)
          end
          if layout == "strided" and xs[1]:dim() >= 2 then
            assert.is_false(xs[1]:is_contiguous() and xs[1]:size(1) > 1 and xs[1]:size(2) > 1)
          end
          local y = eval(case.lua, xs)
          assert.are.same(case.shape, y:shape())
          assert.are.equal(dtype, y.dtype)
          close(y, case.data, tol, "forward")
          local zero = true      -- norm(0): PyTorch's gradient is 0, Ember's none
          for _, g in ipairs(case.grads or {}) do
            for _, v in ipairs(g) do zero = zero and v == 0 end
          end
          if case.grads and not (zero and not y.requires_grad) then
            local n = y:numel()
            local w = (ember.arange(1, n + 1, {dtype = dtype}) / 8):view(y:shape())
            if n > 0 then (y * w):sum():backward() end
            for k, g in ipairs(case.grads) do
              local got = xs[k].grad or ember.zeros(xs[k]:shape(), {dtype = dtype})
              close(got, g, dtype == "float64" and 1e-10 or 1e-4, "gradient of x" .. k)
            end
          else
            assert.is_false(y.requires_grad)
          end
        end)
      end
    end
  end
end)

describe("diagonal", function()
  it("is a view: writes go through, and a transposed input works", function()
    local a = ember.zeros(3, 4)
    a:diagonal(1):fill_(7)
    assert.are.same({{0, 7, 0, 0}, {0, 0, 7, 0}, {0, 0, 0, 7}}, a:totable())
    local b = ember.arange(1, 13):view(3, 4):t()         -- 4 x 3, strided
    assert.are.same({1, 6, 11}, b:diagonal():totable())
    assert.are.same({5, 10}, b:diagonal(1):totable())
  end)
  it("passes gradcheck, with offsets and dims", function()
    local x = ember.randn(2, 3, 4, {dtype = "float64", requires_grad = true})
    assert(gradcheck(function(t) return t:diagonal(-1, 3, 2) end, {x}))
    assert(gradcheck(function(t) return t:diagonal(2, -1, 1) end, {x}))
  end)
  it("gives an empty diagonal past the edge, and of an empty tensor", function()
    assert.are.same({0}, ember.ones(3, 4):diagonal(4):shape())
    assert.are.same({0}, ember.ones(3, 4):diagonal(-3):shape())
    assert.are.same({2, 0}, ember.ones(2, 0, 5):diagonal(0, 2, 3):shape())
  end)
  it("accepts every dtype", function()
    for _, dt in ipairs({"int32", "int64", "uint8", "bool"}) do
      local d = ember.eye(3, {dtype = dt}):diagonal()
      assert.are.equal(dt, d.dtype)
      assert.are.equal(3, d:numel())
    end
  end)
  it("rejects bad arguments, naming itself", function()
    assert.has_error(function() ember.ones(3):diagonal() end,
      "diagonal: expected a tensor with at least 2 dimensions, got a 1-d tensor")
    assert.has_error(function() ember.ones(3, 3):diagonal(0, 1, 1) end,
      "diagonal: dimensions d1 and d2 must differ, both are 1")
    assert.has_error(function() ember.ones(3, 3):diagonal(0, 1, 3) end)
  end)
end)

describe("exact values and dtypes", function()
  it("mm, bmm, outer, diag, trace and einsum accept integer dtypes", function()
    for _, dt in ipairs({"int32", "int64", "uint8"}) do
      local a = ember.tensor({{1, 2}, {3, 4}}, {dtype = dt})
      assert.are.same({{7, 10}, {15, 22}}, ember.mm(a, a):totable())
      assert.are.same({{{7, 10}, {15, 22}}}, ember.bmm(a:view(1, 2, 2), a:view(1, 2, 2)):totable())
      assert.are.same({{1, 2}, {2, 4}}, ember.outer(a[1], a[1]):totable())
      assert.are.same({{1, 0}, {0, 4}}, ember.diag(ember.diag(a)):totable())
      assert.are.equal(5, a:trace():item())
      assert.are.same({{7, 10}, {15, 22}}, ember.einsum("ij,jk->ik", a, a):totable())
    end
  end)
  it("norm: exact values, and a zero gradient at zero", function()
    local x = ember.tensor({{3, 4}, {0, 0}}, {dtype = "float64", requires_grad = true})
    assert.are.same({5, 0}, x:norm(2, 2):totable())
    assert.are.same({7, 0}, x:norm(1, 2):totable())
    assert.are.same({4, 0}, x:norm(math.huge, 2):totable())
    assert.are.equal(5, x:norm():item())
    x:norm(2, 2):sum():backward()
    close(x.grad, {0.6, 0.8, 0, 0}, 1e-12, "gradient")
  end)
  it("norm, cdist, normalize pass gradcheck", function()
    local a = ember.randn(3, 4, {dtype = "float64", requires_grad = true})
    local b = ember.randn(5, 4, {dtype = "float64", requires_grad = true})
    assert(gradcheck(function(t) return t:norm(3, 1) end, {a}))
    assert(gradcheck(function(t) return t:norm(1.5) end, {a}))
    assert(gradcheck(function(s, t) return ember.cdist(s, t) end, {a, b}))
    assert(gradcheck(function(s, t) return ember.cdist(s, t, 1) end, {a, b}))
    assert(gradcheck(function(t) return ember.nn.functional.normalize(t, {dim = 1}) end, {a}))
    local w = ember.randn(2, 4, 5, {dtype = "float64", requires_grad = true})
    assert(gradcheck(function(s, v, t) return ember.einsum("bi,oij,bj->bo", s, v, t) end,
                     {a, w, b:narrow(1, 1, 3):narrow(2, 1, 4):clone():requires_grad_(true)
                        :view(3, 4):mm(ember.randn(4, 5, {dtype = "float64"})):detach()
                        :requires_grad_(true)}))
  end)
  it("normalize keeps a zero row zero (eps)", function()
    local y = ember.nn.functional.normalize(ember.tensor({{3, 4}, {0, 0}}))
    assert.are.same({0, 0}, y[2]:totable())
    assert.is_true(math.abs(y[1][1] - 0.6) < 1e-6)
  end)
  it("baddbmm with beta = 0 ignores NaN in input", function()
    local y = ember.baddbmm(ember.full({1, 2, 2}, 0 / 0), ember.ones(1, 2, 3), ember.ones(1, 3, 2),
                            {beta = 0})
    assert.are.same({{{3, 3}, {3, 3}}}, y:totable())
  end)
end)

describe("empty tensors", function()
  it("give PyTorch's shapes and zeros", function()
    assert.are.same({{0, 0, 0}, {0, 0, 0}}, ember.mm(ember.zeros(2, 0), ember.zeros(0, 3)):totable())
    assert.are.same({0, 2, 1}, ember.bmm(ember.zeros(0, 2, 3), ember.zeros(0, 3, 1)):shape())
    assert.are.same({0, 0, 0}, ember.zeros(0, 3):norm(2, 1):totable())
    assert.are.equal(0, ember.zeros(0, 3):norm():item())
    assert.are.equal(0, ember.zeros(0, 0):trace():item())
    assert.are.same({0, 0}, ember.diag(ember.zeros(0)):shape())
    assert.are.same({{0, 0, 0}, {0, 0, 0}}, ember.cdist(ember.zeros(2, 0), ember.zeros(3, 0)):totable())
    assert.are.same({0, 3}, ember.cdist(ember.zeros(0, 2), ember.zeros(3, 2)):shape())
    assert.are.same({{0, 0, 0}, {0, 0, 0}},
      ember.einsum("ij,jk->ik", ember.zeros(2, 0), ember.zeros(0, 3)):totable())
    assert.are.same({0, 4}, ember.outer(ember.zeros(0), ember.zeros(4)):shape())
  end)
end)

describe("errors name the function", function()
  local function fails(pat, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find(pat, 1, true), tostring(err))
  end
  it("mm, bmm, outer, baddbmm check shapes", function()
    fails("mm: expected a to be 2-d, got a 3-d tensor", ember.mm, ember.ones(1, 2, 3), ember.ones(3, 2))
    fails("mm: a and b cannot be multiplied ([2, 3] and [2, 3])", ember.mm, ember.ones(2, 3), ember.ones(2, 3))
    fails("mm: expected a tensor as argument 2", ember.mm, ember.ones(2, 3), 3)
    fails("bmm: expected b to be 3-d, got a 2-d tensor", ember.bmm, ember.ones(1, 2, 3), ember.ones(3, 2))
    fails("bmm: batch sizes differ ([2, 2, 3] and [3, 3, 2])", ember.bmm, ember.ones(2, 2, 3), ember.ones(3, 3, 2))
    fails("bmm: a and b cannot be multiplied", ember.bmm, ember.ones(2, 2, 3), ember.ones(2, 2, 2))
    fails("outer: expected v to be 1-d", ember.outer, ember.ones(2), ember.ones(2, 2))
    fails("baddbmm: input of shape [3, 3] does not broadcast", ember.baddbmm, ember.ones(3, 3),
          ember.ones(1, 2, 3), ember.ones(1, 3, 2))
    fails("bmm: matmul: not supported for bool", ember.bmm, ember.ones(1, 2, 2, {dtype = "bool"}),
          ember.ones(1, 2, 2, {dtype = "bool"}))
  end)
  it("norm, cdist, normalize check dtypes, p and dims", function()
    fails("norm: expected a floating tensor, got int64", ember.norm, ember.ones(2, {dtype = "int64"}))
    fails("norm: p must be a number >= 0", ember.norm, ember.ones(2), -1)
    fails("norm: dimension 3 out of range for a 2-d tensor", ember.norm, ember.ones(2, 2), 2, 3)
    fails("norm: dimension 0 is invalid", ember.norm, ember.ones(2, 2), 2, 0)
    fails("norm: dimension 1 appears twice", ember.norm, ember.ones(2, 2), 2, {1, -2})
    fails("norm: the inf norm of an empty dimension (1) is undefined", ember.norm, ember.ones(0, 2), math.huge, 1)
    fails("cdist: a and b must have the same number of columns", ember.cdist, ember.ones(2, 3), ember.ones(2, 4))
    fails("cdist: batch sizes differ", ember.cdist, ember.ones(2, 2, 3), ember.ones(3, 2, 3))
    fails("cdist: expected a and b both 2-d", ember.cdist, ember.ones(3), ember.ones(3))
    fails("cdist: expected a floating tensor", ember.cdist, ember.ones(2, 2, {dtype = "int32"}), ember.ones(2, 2))
    fails("normalize: dimension 3 out of range", ember.nn.functional.normalize, ember.ones(2, 2), {dim = 3})
  end)
  it("diag, trace, einsum check their arguments", function()
    fails("diag: expected a 1-d or 2-d tensor, got a 3-d tensor", ember.diag, ember.ones(2, 2, 2))
    fails("diag: the diagonal offset must be an integer", ember.diag, ember.ones(2), 0.5)
    fails("trace: expected the input to be 2-d, got a 1-d tensor", ember.trace, ember.ones(2))
    fails("einsum: ellipsis ('...') is not supported", ember.einsum, "...ij->...ji", ember.ones(2, 2))
    fails("einsum: the equation names 2 operand(s), 1 given", ember.einsum, "ij,jk->ik", ember.ones(2, 2))
    fails("einsum: operand 1 has 2 dimension(s), its subscripts 'ijk' name 3", ember.einsum, "ijk->i", ember.ones(2, 2))
    fails("einsum: letter 'j' has size 3 and 4", ember.einsum, "ij,jk->ik", ember.ones(2, 3), ember.ones(4, 2))
    fails("einsum: output letter 'z' is not in any operand", ember.einsum, "ij->z", ember.ones(2, 2))
    fails("einsum: output letter 'i' appears twice", ember.einsum, "ij->ii", ember.ones(2, 2))
    fails("einsum: invalid character '1'", ember.einsum, "i1->i", ember.ones(2, 2))
    fails("einsum: letter 'i' has size 2 and 3", ember.einsum, "ii->i", ember.ones(2, 3))
    fails("einsum: expected the equation as a string", ember.einsum, 3, ember.ones(2))
  end)
end)

-- Found by the fuzzer: an offset of math.mininteger was negated (undefined
-- behaviour in C); any offset past either edge gives an empty diagonal.
describe("diagonal at the extreme offsets", function()
  it("is empty for math.mininteger and math.maxinteger", function()
    local t = ember.randn(2, 3, 4)
    for _, k in ipairs{math.mininteger, math.maxinteger, -4, 3} do
      local d = t:diagonal(k, -1, 2)
      assert.are.same({2, 0}, d:shape(), tostring(k))
    end
  end)
end)
