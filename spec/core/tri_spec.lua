-- tril and triu (core/ops/tri.c): forward values and gradients against
-- PyTorch (spec/reference/tri_values.lua, written by
-- spec/reference/make_tri_reference.py), every dtype, batched, empty and
-- non-contiguous inputs, huge offsets; the in-place forms; autograd
-- (finite differences too); the errors.  Every expectation is exact: the
-- ops only copy or zero elements.
local ember = require "ember"
local gradcheck = require("helpers.gradcheck").gradcheck

local cases = dofile("spec/reference/tri_values.lua")

local function build(c, data)
  local t = ember.tensor(data, {dtype = c.dtype}):view(c.shape)
  if c.transpose then t = t:transpose(-1, -2) end
  return t
end

local function same(what, got, shape, dtype, expected)
  assert.are.same(shape, got:shape(), what .. ": shape")
  assert.are.equal(dtype, got.dtype, what .. ": dtype")
  assert.are.same(expected, got:reshape(-1):totable(), what .. ": values")
end

local function name(c)
  return ("%s k=%s %s [%s]%s"):format(c.op, tostring(c.k), c.dtype,
    table.concat(c.shape, ","), c.transpose and " transposed" or "")
end

describe("tril/triu against PyTorch", function()
  for _, c in ipairs(cases) do
    it(name(c), function()
      local x = build(c, c.data)
      if c.transpose and c.shape[#c.shape] > 1 and c.shape[#c.shape - 1] > 1 then
        assert.is_false(x:is_contiguous())
      end
      -- the function, the method, and k left out when it is the default
      local f = ember[c.op](x, c.k)
      same("function", f, c.out_shape, c.dtype, c.out)
      same("method", x[c.op](x, c.k), c.out_shape, c.dtype, c.out)
      -- the input is unchanged and the result is not a view of it
      assert.are.same(c.data, (c.transpose and x:transpose(-1, -2) or x):reshape(-1):totable())
      -- in place: on the (possibly non-contiguous) view itself, which
      -- returns it and writes through to its base
      local base = ember.tensor(c.data, {dtype = c.dtype}):view(c.shape)
      local v = c.transpose and base:transpose(-1, -2) or base
      local r = v[c.op .. "_"](v, c.k)
      assert.are.equal(v, r)
      same("in place", v, c.out_shape, c.dtype, c.out)
      if c.grad then
        local xg = build(c, c.data):detach():requires_grad_()
        local w = build({dtype = c.dtype, shape = c.out_shape}, c.w)
        local y = ember[c.op](xg, c.k)
        assert.are.equal(c.op == "tril" and "TrilBackward" or "TriuBackward", y.grad_fn)
        ;(y * w):sum():backward()
        same("grad", xg.grad, c.out_shape, c.dtype, c.grad)
      end
    end)
  end
end)

describe("tril/triu", function()
  it("gives the causal mask of a transformer: ones(T, T, bool):tril()", function()
    local m = ember.ones(3, 3, {dtype = "bool"}):tril()
    assert.are.equal("bool", m.dtype)
    assert.are.same({{true, false, false}, {true, true, false}, {true, true, true}},
                    m:totable())
    -- its complement, as a bool triu above the diagonal, masks attention
    local future = ember.ones(3, 3, {dtype = "bool"}):triu(1)
    assert.are.same({{false, true, true}, {false, false, true}, {false, false, false}},
                    future:totable())
    local att = ember.zeros(2, 3, 3):masked_fill(future, -math.huge)
    assert.are.same({0, 0, -math.huge}, att[2][2]:totable())
  end)

  it("defaults k to 0 and accepts negative and huge offsets", function()
    local x = ember.arange(1, 10):view(3, 3)
    assert.are.same(ember.tril(x, 0):totable(), ember.tril(x):totable())
    assert.are.same(ember.triu(x, 0):totable(), x:triu():totable())
    assert.are.same({{0, 0, 0}, {4, 0, 0}, {7, 8, 0}}, x:tril(-1):totable())
    assert.are.same(x:totable(), x:tril(math.maxinteger):totable())
    assert.are.same(x:totable(), x:triu(math.mininteger):totable())
    assert.are.same(ember.zeros_like(x):totable(), x:tril(math.mininteger):totable())
    assert.are.same(ember.zeros_like(x):totable(), x:triu(math.maxinteger):totable())
  end)

  it("keeps NaN and infinities where it keeps, and writes 0 over them where it drops", function()
    local x = ember.tensor({{0 / 0, math.huge}, {-math.huge, 0 / 0}})
    local l = x:tril():totable()
    assert.is_true(l[1][1] ~= l[1][1])
    assert.are.equal(0, l[1][2])
    assert.are.equal(-math.huge, l[2][1])
  end)

  it("records no node for integer and bool inputs, and none under no_grad", function()
    assert.is_nil(ember.ones(2, 2, {dtype = "int64"}):tril().grad_fn)
    local x = ember.randn(3, 3, {requires_grad = true})
    ember.no_grad(function()
      local y = x:triu()
      assert.is_nil(y.grad_fn)
      assert.is_false(y.requires_grad)
    end)
  end)

  it("has the gradients finite differences give (float64, batched, transposed)", function()
    for _, op in ipairs({"tril", "triu"}) do
      for _, k in ipairs({-1, 0, 2}) do
        local x = ember.randn(2, 3, 4, {dtype = "float64", requires_grad = true})
        local ok, msg = gradcheck(function(a) return ember[op](a, k) end, {x})
        assert.is_true(ok, msg)
        local xt = ember.randn(4, 3, {dtype = "float64", requires_grad = true})
        ok, msg = gradcheck(function(a) return a:t()[op](a:t(), k) * 2 end, {xt})
        assert.is_true(ok, msg)
      end
    end
  end)

  it("in place on a non-leaf records the same gradient", function()
    for _, op in ipairs({"tril", "triu"}) do
      local x = ember.randn(3, 4, {dtype = "float64", requires_grad = true})
      local h = x * 3
      local r = h[op .. "_"](h, 1)
      assert.are.equal(h, r)
      assert.are.equal(op == "tril" and "TrilBackward" or "TriuBackward", h.grad_fn)
      h:sum():backward()
      assert.are.same((ember.ones(3, 4, {dtype = "float64"}) * 3)[op](
        ember.ones(3, 4, {dtype = "float64"}) * 3, 1):totable(), x.grad:totable())
      local ok, msg = gradcheck(function(a)
        local y = a * 1
        return y[op .. "_"](y, -1)
      end, {ember.randn(2, 3, 3, {dtype = "float64", requires_grad = true})})
      assert.is_true(ok, msg)
    end
  end)

  it("in place on a view writes through to its base", function()
    local base = ember.arange(1, 17):view(4, 4)
    base:narrow(1, 2, 2):narrow(2, 2, 2):triu_()
    assert.are.same({{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 0, 11, 12}, {13, 14, 15, 16}},
                    base:totable())
  end)

  it("in place bumps the version, so a tensor saved for backward is caught", function()
    local x = ember.randn(3, 3, {requires_grad = true})
    local h = x * 1
    local y = h:exp()            -- saves its output
    local ok = pcall(function() y:tril_() ; y:sum():backward() end)
    assert.is_false(ok)
  end)

  describe("errors", function()
    it("names the function when a tensor has fewer than 2 dims", function()
      for _, op in ipairs({"tril", "triu", "tril_", "triu_"}) do
        for _, t in ipairs({ember.ones(3), ember.tensor(1.5)}) do
          local ok, err = pcall(ember[op], t)
          assert.is_false(ok)
          assert.matches(op .. ": expected a tensor with at least 2 dims, got "
                         .. t:dim(), err, 1, true)
        end
      end
    end)

    it("wants an integer k", function()
      local x = ember.ones(2, 2)
      for _, bad in ipairs({1.5, "a", {}, true}) do
        local ok, err = pcall(ember.tril, x, bad)
        assert.is_false(ok)
        assert.matches("bad argument #2 to 'ember.tril'", err, 1, true)
        ok, err = pcall(x.triu_, x, bad)
        assert.is_false(ok)
        assert.matches("triu_", err, 1, true)
      end
      local ok, err = pcall(ember.tril, "x")
      assert.is_false(ok)
      assert.matches("tril", err, 1, true)
    end)

    it("refuses in place on a leaf that requires grad, and on an expanded tensor", function()
      local x = ember.randn(2, 2, {requires_grad = true})
      local ok, err = pcall(x.tril_, x)
      assert.is_false(ok)
      assert.matches("tril_", err, 1, true)
      local e = ember.ones(1, 3):expand(3, 3)
      ok, err = pcall(e.triu_, e)
      assert.is_false(ok)
      assert.matches("triu_: cannot write in place to an expanded tensor", err, 1, true)
      assert.are.same({1, 1, 1}, e[1]:totable())
      -- out of place is fine on an expanded tensor
      assert.are.same({{1, 1, 1}, {0, 1, 1}, {0, 0, 1}}, e:triu():totable())
    end)
  end)
end)
