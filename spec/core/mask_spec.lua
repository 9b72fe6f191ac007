-- nonzero, masked_select, masked_scatter(_), take, scatter(_) with and
-- without reduce (core/ops/mask.c, core/ops/index.c): forward values and
-- gradients against PyTorch (spec/reference/mask_values.lua, written by
-- spec/reference/make_mask_reference.py): every dtype accepted, empty,
-- 0-d and non-contiguous inputs, broadcast masks, ties for amax/amin and
-- zeros for prod; float64 finite-difference checks; then the errors, and
-- that a failed in-place call changes nothing.
local ember = require "ember"
local gradcheck = require("helpers.gradcheck").gradcheck

local cases = dofile("spec/reference/mask_values.lua")

local function build(f, dtype, transpose)
  local t = ember.tensor(f.data, {dtype = dtype})
  if #f.data == 0 or #f.shape ~= 1 then t = t:reshape(f.shape) end
  if transpose then t = t:transpose(-1, -2) end
  return t
end

local function close(what, got, f, dtype)
  assert.are.same(f.shape, got:shape(), what .. ": shape")
  local vals = got:reshape(-1):totable()
  assert.are.equal(#f.data, #vals, what .. ": count")
  local tol = dtype == "float32" and 2e-6 or 1e-12
  for i, e in ipairs(f.data) do
    local v = vals[i]
    if dtype ~= "float32" and dtype ~= "float64" then
      assert.are.equal(e, v, ("%s: element %d"):format(what, i))
    elseif e ~= e then
      assert.is_true(v ~= v, ("%s: element %d is %s, expected NaN"):format(what, i, tostring(v)))
    else
      assert.is_true(math.abs(v - e) <= tol * math.max(1, math.abs(e)),
        ("%s: element %d is %.17g, expected %.17g"):format(what, i, v, e))
    end
  end
end

-- the op of a case on (x, src), as a function and as a method
local function run(c, x, src, method)
  local f = method and x[c.op] or ember[c.op]
  if c.op == "nonzero" then return f(x) end
  local mask = c.mask and build(c.mask, "bool")
  if c.op == "masked_select" then return f(x, mask) end
  if c.op == "masked_scatter" then return f(x, mask, src) end
  if c.op == "take" then
    return f(x, build(c.index, "int64"):reshape(c.index_shape))
  end
  local idx = build(c.index, "int64"):reshape(c.index.shape)
  return f(x, c.dim, idx, src or c.value, c.reduce and {reduce = c.reduce} or nil)
end

local function name(c)
  return ("%s %s [%s]%s%s%s"):format(c.op, c.dtype, table.concat(c.x.shape, ","),
    c.reduce and (" reduce=" .. c.reduce) or "", c.dim and (" dim=" .. c.dim) or "",
    c.transpose and " transposed" or "")
end

describe("selection by mask and index writes against PyTorch", function()
  for k, c in ipairs(cases) do
    it(("%d: %s"):format(k, name(c)), function()
      local x = build(c.x, c.dtype, c.transpose)
      local src = c.src and build(c.src, c.dtype)
      local odt = c.op == "nonzero" and "int64" or c.dtype
      local y = run(c, x, src)
      close("function", y, c.out, odt)
      assert.are.equal(odt, y.dtype)
      close("method", run(c, x, src, true), c.out, odt)
      if c.gx then
        local xg = x:clone():requires_grad_()
        local sg = src and src:clone():requires_grad_()
        local out = run(c, xg, sg)
        ;(out * build(c.w, c.dtype)):sum():backward()
        close("grad x", xg.grad, c.gx, c.dtype)
        if c.gsrc then close("grad src", sg.grad, c.gsrc, c.dtype) end
      end
      -- the in-place forms write t itself, with the same result
      if (c.op == "scatter" or c.op == "masked_scatter") and
         (c.op ~= "masked_scatter" or #c.mask.shape == #c.x.shape) then
        local t = x:clone()
        local r = t[c.op .. "_"](t, table.unpack(c.op == "scatter"
          and {c.dim, build(c.index, "int64"):reshape(c.index.shape), src or c.value,
               c.reduce and {reduce = c.reduce} or nil}
          or {build(c.mask, "bool"), src}))
        assert.are.equal(t, r)
        close("in place", t, c.out, c.dtype)
      end
    end)
  end
end)

describe("gradients against finite differences (float64)", function()
  before_each(function() ember.manual_seed(11) end)
  local function x64(shape) return ember.randn(shape, {dtype = "float64"}):requires_grad_() end
  local idx = ember.tensor({{1, 3, 1, 2}, {2, 2, 3, 1}}, {dtype = "int64"})

  it("masked_select with a broadcast mask", function()
    local m = ember.tensor({true, false, true, true})
    assert(gradcheck(function(x) return x:masked_select(m) end, {x64({3, 4})}))
  end)

  it("masked_scatter, t and src", function()
    local m = ember.randn({3, 4}):gt(0)
    assert(gradcheck(function(x, s) return x:masked_scatter(m, s) end,
                     {x64({3, 4}), x64({4, 4})}))
  end)

  it("take", function()
    local i = ember.tensor({{1, 12}, {5, 5}}, {dtype = "int64"})
    assert(gradcheck(function(x) return x:take(i) end, {x64({3, 4})}))
  end)

  for _, r in ipairs({"none", "sum", "mean", "prod", "amax", "amin"}) do
    it("scatter reduce=" .. r .. ", t and a src larger than the index", function()
      local opts = r ~= "none" and {reduce = r} or nil
      local i = r == "none" and ember.tensor({{3, 1, 2, 3}, {1, 3, 1, 1}}, {dtype = "int64"}) or idx
      assert(gradcheck(function(x, s) return x:scatter(1, i, s, opts) end,
                       {x64({3, 4}), x64({3, 5})}))
    end)
  end

  it("scatter_ in place on a non-leaf", function()
    assert(gradcheck(function(x, s)
      local y = x * 1
      y:scatter_(1, idx, s, {reduce = "amax"})
      return y
    end, {x64({3, 4}), x64({2, 4})}))
  end)

  it("masked_scatter_ in place on a non-leaf", function()
    local m = ember.randn({3, 4}):gt(0)
    assert(gradcheck(function(x, s)
      local y = x * 1
      y:masked_scatter_(m, s)
      return y
    end, {x64({3, 4}), x64({12})}))
  end)
end)

describe("nonzero and where(cond)", function()
  it("as_tuple gives one index tensor per dim; where(cond) is the same", function()
    local t = ember.tensor({{0, 1, 2}, {3, 0, 5}})
    local r = t:nonzero({as_tuple = true})
    assert.are.equal(2, #r)
    assert.are.same({1, 1, 2, 2}, r[1]:totable())
    assert.are.same({2, 3, 1, 3}, r[2]:totable())
    local w = ember.where(t:ne(0))
    assert.are.same(r[2]:totable(), w[2]:totable())
    assert.are.same({{1, 2}, {1, 3}, {2, 1}, {2, 3}}, ember.nonzero(t):totable())
    -- a 0-d tensor counts as 1-d in the tuple form
    assert.are.same({1}, ember.tensor(3):nonzero({as_tuple = true})[1]:totable())
    assert.are.equal(0, #ember.where(ember.tensor(0))[1]:totable())
  end)

  it("counts NaN as nonzero", function()
    assert.are.same({{2}}, ember.tensor({0, 0 / 0}):nonzero():totable())
  end)

  it("keeps the three-argument where", function()
    local c = ember.tensor({true, false})
    assert.are.same({1, 9}, ember.where(c, 1, 9):totable())
  end)

  it("rejects unknown options", function()
    assert.has_error(function() ember.tensor({1}):nonzero({astuple = true}) end,
                     "nonzero: unknown option 'astuple'; did you mean 'as_tuple'?")
  end)
end)

describe("errors", function()
  local function err(f, msg)
    local ok, e = pcall(f)
    assert.is_false(ok)
    assert.is_truthy(tostring(e):find(msg, 1, true), tostring(e))
  end
  local t = ember.tensor({{1, 2, 3}, {4, 5, 6}})

  it("mask of a wrong dtype or shape", function()
    err(function() t:masked_select(t:gt(2):int()) end, "masked_select: expected a bool mask, got int32")
    err(function() t:masked_select(ember.ones({4}):bool()) end, "masked_select")
    err(function() t:masked_scatter_(ember.ones({3, 2, 3}):bool(), t) end,
        "masked_scatter_: mask of shape [3,2,3] does not broadcast to the tensor's shape [2,3]")
    err(function() t:masked_scatter_(t:gt(0):int(), t) end, "masked_scatter_: expected a bool mask")
  end)

  it("src too small or of another dtype", function()
    err(function() t:masked_scatter_(t:gt(1), ember.tensor({1, 2})) end,
        "masked_scatter_: source has 2 elements, the mask selects 5")
    err(function() t:masked_scatter(t:gt(1), ember.tensor({1, 2}, {dtype = "float64"})) end,
        "masked_scatter: source dtype float64 differs from the tensor's float32")
  end)

  it("indices out of range", function()
    err(function() t:take(ember.tensor({0}, {dtype = "int64"})) end,
        "take: index 0 is out of range for a tensor of 6 elements")
    err(function() t:take(t) end, "take: expected an int64 or int32 index tensor, got float32")
    err(function() t:scatter(1, ember.tensor({{3}}, {dtype = "int64"}), 1) end,
        "scatter: index 3 is out of range for dimension 1 of size 2")
    err(function() t:scatter(2, ember.tensor({{1, 2}}, {dtype = "int32"}), t:double()) end,
        "scatter: source dtype float64 differs from the tensor's float32")
  end)

  it("wrong dims, shapes, reduce and options", function()
    local i = ember.tensor({1, 2}, {dtype = "int64"})
    err(function() t:scatter(1, i, ember.ones({2})) end,
        "scatter: index of shape [2] does not fit the source [2] and the tensor [2,3]")
    err(function() t:scatter(3, i:view(1, 2), 0) end, "scatter: dimension 3 out of range")
    err(function() t:scatter(1, i:view(1, 2), 0, {reduce = "max"}) end,
        "scatter: reduce must be one of")
    err(function() t:scatter_(1, i:view(1, 2), 0, {reduction = "sum"}) end,
        "scatter_: unknown option 'reduction'")
    err(function() t:bool():scatter(1, i:view(1, 2), true, {reduce = "sum"}) end,
        "scatter: reduce \"sum\" does not support bool tensors")
    err(function() t:expand(2, 2, 3):scatter_(1, ember.ones({1, 1, 1}, {dtype = "int64"}), 0) end,
        "scatter_: cannot write in place to an expanded tensor")
  end)

  it("a failed in-place call changes nothing", function()
    local x = ember.tensor({{1, 2, 3}, {4, 5, 6}})
    local before = x:totable()
    pcall(x.scatter_, x, 1, ember.tensor({{1, 9}}, {dtype = "int64"}), 7)
    pcall(x.scatter_, x, 1, ember.tensor({{1, 9}}, {dtype = "int64"}), 7, {reduce = "mean"})
    pcall(x.masked_scatter_, x, x:gt(0), ember.tensor({1}))
    assert.are.same(before, x:totable())
  end)

  it("in place on a leaf that requires grad", function()
    local x = ember.ones({2}):requires_grad_()
    err(function() x:scatter_(1, ember.tensor({1}, {dtype = "int64"}), 0) end, "scatter_")
    err(function() x:masked_scatter_(ember.tensor({true, false}), ember.ones({2})) end,
        "masked_scatter_")
  end)
end)
