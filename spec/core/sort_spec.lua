-- sort, argsort, topk, kthvalue, median (core/ops/sort.c) and unique
-- (lua/ember/sorting.lua): values, indices and gradients against PyTorch
-- (spec/reference/sort_values.lua, written by
-- spec/reference/make_sort_reference.py): every dtype, 0-d, empty and
-- non-contiguous inputs, ties, NaN, long lines (radix sort, selection);
-- float64 gradient checks; then the errors.  Values are exact (sorting
-- moves them); sort's indices are exact (both stable); where PyTorch's
-- choice among ties is unspecified the spec checks that Ember's choice is
-- valid: x:gather(dim, indices) gives the values.
local ember = require "ember"
local gradcheck = require("helpers.gradcheck").gradcheck

local cases = dofile("spec/reference/sort_values.lua")

local function build(c)
  local t = ember.tensor(c.data, {dtype = c.dtype}):view(c.shape)
  if c.transpose then t = t:transpose(-1, -2) end
  return t
end

local function same(what, got, shape, dtype, expected)
  assert.are.same(shape, got:shape(), what .. ": shape")
  assert.are.equal(dtype, got.dtype, what .. ": dtype")
  local vals = got:reshape(-1):totable()
  assert.are.equal(#expected, #vals, what .. ": count")
  local float = dtype == "float32" or dtype == "float64"
  for i, e in ipairs(expected) do
    local v = vals[i]
    if e ~= e then
      assert.is_true(v ~= v, ("%s: element %d is %s, expected NaN"):format(what, i, tostring(v)))
    elseif float then
      assert.is_true(math.abs(v - e) <= 1e-12 * math.max(1, math.abs(e)),
        ("%s: element %d is %.17g, expected %.17g"):format(what, i, v, e))
    else
      assert.are.equal(e, v, ("%s: element %d"):format(what, i))
    end
  end
end

-- the call of case c on x (op as a function or a method)
local function call(f, x, c)
  local d = c.dim
  if c.op == "sort" then return f(x, d, {descending = c.opt.descending}) end
  if c.op == "topk" then return f(x, c.k, d, {largest = c.opt.largest}) end
  if c.op == "kthvalue" then return f(x, c.k, d, {keepdim = c.opt.keepdim}) end
  if d == 0 then return f(x) end
  return f(x, d, {keepdim = c.opt.keepdim})
end

local function name(c)
  local o = {}
  for k, v in pairs(c.opt) do o[#o + 1] = k .. "=" .. tostring(v) end
  table.sort(o)
  return ("%s dim=%d k=%d %s [%s] %s%s"):format(c.op, c.dim, c.k, c.dtype,
    table.concat(c.shape, ","), table.concat(o, " "), c.transpose and " transposed" or "")
end

describe("sorting against PyTorch", function()
  for _, c in ipairs(cases) do
    it(name(c), function()
      local x = build(c)
      if c.transpose then assert.is_false(x:is_contiguous()) end
      local v, i = call(ember[c.op], x, c)
      same("values", v, c.out_shape, c.dtype, c.out)
      local vm, im = call(x[c.op], x, c)
      same("method values", vm, c.out_shape, c.dtype, c.out)
      if c.idx then
        same("method indices", im, c.out_shape, "int64", i:reshape(-1):totable())
        if c.exact then
          same("indices", i, c.out_shape, "int64", c.idx)
        elseif x:dim() > 0 then
          -- a valid choice: the values sit at the indices
          local d = c.dim < 0 and x:dim() + 1 + c.dim or c.dim
          local ik = #c.out_shape < x:dim() and i:unsqueeze(d) or i
          same("gathered", x:gather(d, ik):reshape(-1), {#c.out}, c.dtype, c.out)
        end
      end
      if c.op == "sort" then
        same("argsort", x:argsort(c.dim, {descending = c.opt.descending}),
             c.out_shape, "int64", c.idx)
      end
      if c.grad then
        local xg = build(c):detach():requires_grad_()
        local w = ember.tensor(c.w, {dtype = c.dtype}):view(c.out_shape)
        local y = call(ember[c.op], xg, c)
        ;(y * w):sum():backward()
        same("grad", xg.grad, c.shape[1] and (c.transpose and xg:shape() or c.shape) or {},
             c.dtype, c.grad)
      end
    end)
  end
end)

describe("sorting", function()
  before_each(function() ember.manual_seed(11) end)

  it("defaults to the last dim and ascending order", function()
    local x = ember.tensor({{3, 1, 2}, {0, 5, 4}})
    local v, i = x:sort()
    assert.are.same({{1, 2, 3}, {0, 4, 5}}, v:totable())
    assert.are.same({{2, 3, 1}, {1, 3, 2}}, i:totable())
    local tv, ti = x:topk(1)
    assert.are.same({{3}, {5}}, tv:totable())
    assert.are.same({{1}, {2}}, ti:totable())
    assert.are.same({2, 4}, (x:kthvalue(2)):totable())
    assert.are.equal(2, x:median():item())
  end)

  it("sorts long lines of every dtype (radix passes) like a comparison sort", function()
    for _, dt in ipairs{"float32", "float64", "int32", "int64", "uint8"} do
      local x = (ember.randn(3, 5000, {dtype = "float64"}) * 100):to(dt)
      if dt == "uint8" then x = (ember.rand(3, 5000) * 255):to(dt) end
      local v, i = x:sort(2)
      local a, b = v:narrow(2, 1, 4999), v:narrow(2, 2, 4999)
      assert.is_true(a:le(b):all():item(), dt .. ": ascending")
      assert.is_true(x:gather(2, i):eq(v):all():item(), dt .. ": indices")
      -- stable: equal values keep increasing positions
      local eq = a:eq(b)
      local ia, ib = i:narrow(2, 1, 4999), i:narrow(2, 2, 4999)
      assert.is_true(ia:lt(ib):logical_or(eq:logical_not()):all():item(), dt .. ": stable")
    end
  end)

  it("topk selects like a full sort (long lines, many ties, both ends)", function()
    for _, data in ipairs{ember.randn(20000), ember.rand(20000), (ember.rand(20000) * 4):floor(),
                          ember.zeros(5000)} do
      for _, k in ipairs{1, 10, 1000} do
        for _, largest in ipairs{true, false} do
          local v, i = data:topk(k, 1, {largest = largest})
          local sv, si = data:sort(1, {descending = largest})
          assert.are.same(sv:narrow(1, 1, k):totable(), v:totable())
          assert.are.same(si:narrow(1, 1, k):totable(), i:totable())   -- lowest index among ties
        end
      end
    end
  end)

  it("topk is exact when the sampled guess of the selection falls short", function()
    -- every 8th element (the ones the first round samples) small and in
    -- buckets of its own, the rest large: the guess keeps too few
    local data = {}
    for i = 0, 1999 do
      data[i + 1] = i % 8 == 0 and 4.0 ^ ((i // 8) % 60 - 30) or 1e30 + i
    end
    for _, dt in ipairs{"float32", "float64"} do
      local x = ember.tensor(data, {dtype = dt})
      local v, i = x:topk(100, 1, {largest = false})
      local sv, si = x:sort()
      assert.are.same(sv:narrow(1, 1, 100):totable(), v:totable())
      assert.are.same(si:narrow(1, 1, 100):totable(), i:totable())
    end
  end)

  it("gradients match finite differences (float64)", function()
    local x = ember.randn(3, 6, {dtype = "float64", requires_grad = true})
    assert.is_true(gradcheck(function(t) return (t:sort(2, {descending = true})) end, {x}))
    assert.is_true(gradcheck(function(t) return (t:topk(2, 1)) end, {x}))
    assert.is_true(gradcheck(function(t) return (t:kthvalue(3, 2, {keepdim = true})) end, {x}))
    assert.is_true(gradcheck(function(t) return (t:median(1)) end, {x}))
    assert.is_true(gradcheck(function(t) return t:median() end, {x}))
    local s = ember.tensor(2.5, {dtype = "float64", requires_grad = true})
    assert.is_true(gradcheck(function(t) return (t:sort()) end, {s}))
  end)

  it("names its backward nodes and records only floats", function()
    local x = ember.randn(4, {requires_grad = true})
    assert.are.equal("SortBackward", (x:sort()).grad_fn)
    assert.are.equal("TopkBackward", (x:topk(2)).grad_fn)
    assert.are.equal("KthvalueBackward", (x:kthvalue(2)).grad_fn)
    assert.are.equal("MedianBackward", (x:median(1)).grad_fn)
    assert.are.equal("MedianBackward", x:median().grad_fn)
    assert.is_false(select(2, x:sort()).requires_grad)
  end)

  it("median over everything shares the gradient among ties, NaN too", function()
    local x = ember.tensor({1, 1, 2, 2}, {requires_grad = true})
    x:median():backward()
    assert.are.same({0.5, 0.5, 0, 0}, x.grad:totable())
    local y = ember.tensor({1, 0/0, 0/0, 2}, {requires_grad = true})
    y:median():backward()
    assert.are.same({0, 0.5, 0.5, 0}, y.grad:totable())
  end)

  it("median of an empty tensor is NaN; argsort returns indices only", function()
    local m = ember.zeros(0):median()
    assert.is_true(m:item() ~= m:item())
    assert.are.same({2, 1, 3}, ember.tensor({2, 3, 1}):argsort(1, {descending = true}):totable())
  end)

  describe("unique", function()
    it("sorted values, inverse and counts, as PyTorch", function()
      local x = ember.tensor({{3, 1, 2}, {1, 3, 3}}, {dtype = "int64"})
      local u, inv, cnt = x:unique({return_inverse = true, return_counts = true})
      assert.are.same({1, 2, 3}, u:totable())
      assert.are.same({{3, 1, 2}, {1, 3, 3}}, inv:totable())
      assert.are.same({2, 1, 3}, cnt:totable())
      local u2, c2 = ember.unique(x, {return_counts = true})
      assert.are.same({1, 2, 3}, u2:totable())
      assert.are.same({2, 1, 3}, c2:totable())
      assert.are.equal("int64", u.dtype)
    end)
    it("every dtype; -0.0 and 0.0 are one value; each NaN its own, last", function()
      for _, dt in ipairs{"float32", "float64", "int32", "uint8", "bool"} do
        local u = ember.tensor({1, 0, 1, 1}, {dtype = dt}):unique()
        assert.are.equal(dt, u.dtype)
        assert.are.equal(2, u:numel())
      end
      local u, inv = ember.tensor({0/0, 2, -0.0, 0, 0/0}):unique({return_inverse = true})
      local t = u:totable()
      assert.are.equal(4, #t)
      assert.are.same({0, 2}, {t[1], t[2]})
      assert.is_true(t[3] ~= t[3] and t[4] ~= t[4])
      assert.are.same({3, 2, 1, 1, 4}, inv:totable())
    end)
    it("empty and 0-d inputs", function()
      local u, inv, cnt = ember.zeros(0, 3):unique({return_inverse = true, return_counts = true})
      assert.are.same({0}, u:shape())
      assert.are.same({0, 3}, inv:shape())
      assert.are.same({0}, cnt:shape())
      local u1, i1 = ember.tensor(7):unique({return_inverse = true})
      assert.are.same({7}, u1:totable())
      assert.are.same({}, i1:shape())
    end)
    it("errors", function()
      assert.has_error(function() ember.tensor({1}):unique({dim = 1}) end,
        "unique: the dim option is not supported (unique over all elements only)")
      assert.has_error(function() ember.tensor({1}):unique({inverse = true}) end,
        "unique: unknown option 'inverse' (known: sorted, return_inverse, return_counts, dim)")
      assert.has_error(function() ember.unique(3) end,
        "unique: expected a tensor as argument 1, got number")
    end)
  end)

  describe("errors", function()
    local x = ember.ones({2, 3})
    it("k out of range names the function", function()
      assert.has_error(function() x:topk(5) end,
        "topk: k (5) is larger than the size of dim 2 (3)")
      assert.has_error(function() x:topk(-1) end, "topk: k (-1) must be >= 0")
      assert.has_error(function() x:kthvalue(4, 2) end,
        "kthvalue: k (4) is out of range for dim 2 of size 3 (expected 1..3)")
      assert.has_error(function() x:kthvalue(0, 1) end,
        "kthvalue: k (0) is out of range for dim 1 of size 2 (expected 1..2)")
    end)
    it("dims, options and dtypes", function()
      assert.has_error(function() x:sort(3) end,
        "sort: dimension 3 out of range for a 2-d tensor (expected 1..2)")
      assert.has_error(function() x:sort(1, {descend = true}) end, "sort: unknown option 'descend'; did you mean 'descending'?")
      assert.has_error(function() x:sort(1, {descending = 1}) end,
        "sort: descending must be a boolean, got number")
      assert.has_error(function() x:topk(1, 1, {keepdim = true}) end, "topk: unknown option 'keepdim'")
      assert.has_error(function() x:median(1, {largest = true}) end, "median: unknown option 'largest'")
      assert.has_error(function() ember.ones(2, 0):median(2) end, "median: dim 2 has size 0 (no median)")
      for _, op in ipairs{"topk", "kthvalue"} do
        assert.has_error(function() ember.ones(3, {dtype = "bool"})[op](ember.ones(3, {dtype = "bool"}), 1) end,
          op .. ": bool tensors are not supported (as in PyTorch); convert with :long() or :float()")
      end
      assert.has_error(function() ember.ones(3, {dtype = "bool"}):median() end,
        "median: bool tensors are not supported (as in PyTorch); convert with :long() or :float()")
      assert.has_error(function() ember.zeros(0, {dtype = "int64"}):median() end,
        "median: an empty int64 tensor has no median")
    end)
  end)
end)
