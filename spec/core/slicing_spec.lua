-- Slicing (t[{...}] and t[{...}] = v, bindings/lua_tensor.c over
-- core/ops/slicing.c) and index_copy_/index_fill_ (core/ops/index.c):
-- forward values and gradients against PyTorch
-- (spec/reference/slicing_values.lua, written by
-- spec/reference/make_slicing_reference.py) for every dtype, non-contiguous
-- inputs and empty ranges; then views against copies, writes through
-- autograd, float64 finite-difference checks and the errors.
local ember = require "ember"
local G = require "helpers.gradcheck"

local cases = dofile("spec/reference/slicing_values.lua")

local function long(t) return ember.tensor(t, {dtype = "int64"}) end

local function build(c, data, shape, dtype)
  local sh = {}
  for i, v in ipairs(shape) do sh[i] = v end
  if c.transpose then sh[#sh], sh[#sh - 1] = sh[#sh - 1], sh[#sh] end
  local t = ember.tensor(data, {dtype = dtype or c.dtype}):view(sh)
  if c.transpose then t = t:transpose(-1, -2) end
  return t
end

-- the spec's key form ({"range", a, b, step}, ...) as a Lua key
local function key_of(key)
  local k = {}
  for i, e in ipairs(key) do
    if e[1] == "all" then k[i] = {}
    elseif e[1] == "range" then k[i] = {e[2], e[3], e[4]}
    elseif e[1] == "at" then k[i] = e[2]
    else k[i] = long(e[2]) end
  end
  return k
end

local function close(what, got, dtype, expected)
  assert.are.equal(dtype, got.dtype, what .. ": dtype")
  local vals = got:reshape(-1):totable()
  assert.are.equal(#expected, #vals, what .. ": count")
  local tol = dtype == "float32" and 1e-6 or 1e-12
  for i, e in ipairs(expected) do
    if dtype ~= "float32" and dtype ~= "float64" then
      assert.are.equal(e, vals[i], ("%s: element %d"):format(what, i))
    else
      assert.is_true(math.abs(vals[i] - e) <= tol * math.max(1, math.abs(e)),
        ("%s: element %d is %.17g, expected %.17g"):format(what, i, vals[i], e))
    end
  end
end

-- sum(out * w) with w built as the reference script builds it (phase 1.5)
local function weight(shape, dtype)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local w = {}
  for i = 0, n - 1 do w[i + 1] = math.sin(i * 0.37 + 1.5) * 3 end
  return ember.tensor(w, {dtype = dtype}):view(shape)
end

describe("slicing against PyTorch", function()
  for i, c in ipairs(cases) do
    local name = ("%d: %s %s %s"):format(i, c.op, c.dtype, c.transpose and "(non-contiguous)" or "")
    it(name, function()
      local grad = c.dtype == "float64"
      local x = build(c, c.x, c.shape)
      if grad then x = x:clone():requires_grad_() end
      local base = grad and x * 1 or x:clone()
      local out, src, v
      if c.op == "index_copy" then
        src = ember.tensor(c.src, {dtype = c.dtype}):view(c.src_shape)
        if grad then src:requires_grad_() end
        out = base:index_copy(c.dim, long(c.index), src)
        -- the in-place form and ember.* agree
        local again = ember.index_copy_(base:detach():clone(), c.dim, long(c.index), src:detach())
        close(name .. " in place", again, c.dtype, c.out)
      elseif c.op == "index_fill" then
        if grad then
          v = ember.tensor(c.value, {dtype = "float64", requires_grad = true})
          out = base:index_fill(c.dim, long(c.index), v)
        else
          out = base:index_fill(c.dim, long(c.index), c.value)
        end
        local again = base:detach():clone():index_fill_(c.dim, long(c.index), c.value)
        close(name .. " in place", again, c.dtype, c.out)
      elseif c.op == "read" then
        out = x[key_of(c.key)]
        assert.are.same(c.out_shape, out:shape())
      else
        if c.src then
          src = ember.tensor(c.src, {dtype = c.dtype}):view(c.src_shape)
          if grad then src:requires_grad_() end
          base[key_of(c.key)] = src
        else
          base[key_of(c.key)] = c.value
        end
        out = base
      end
      close(name, out, c.dtype, c.out)
      if grad then
        (out * weight(out:shape(), c.dtype)):sum():backward()
        close(name .. " grad x", x.grad, c.dtype, c.grad_x)
        if c.grad_src then
          close(name .. " grad src", (src or v).grad, c.dtype, c.grad_src)
        end
      end
    end)
  end
end)

describe("slicing reads", function()
  local t = ember.arange(1, 13):view(3, 4)

  it("ranges, steps and integers are views sharing storage", function()
    for _, key in ipairs({{{}, {2, 3}}, {{1, -2}}, {{}, {1, 4, 2}}, {2}, {-1, {2}}, {}}) do
      local x = ember.zeros(3, 4)
      local v = x[key]
      v:fill_(5)
      assert.are.equal(5 * v:numel(), x:sum():item())
    end
  end)

  it("an index tensor gives a copy", function()
    local x = ember.zeros(3, 4)
    local v = x[long({3, 1})]
    v:fill_(5)
    assert.are.equal(0, x:sum():item())
    assert.are.same({2, 4}, v:shape())
  end)

  it("negative bounds, single-element ranges keep the dim, integers drop it", function()
    assert.are.same({{9, 10, 11, 12}}, t[{{-1}}]:totable())
    assert.are.same({4, 8}, t[{{1, -2}, -1}]:totable())
    assert.are.same(7, t[{2, 3}]:item())
    assert.are.same({}, t[{2, 3}]:shape())
    assert.are.same({0, 4}, t[{{3, 2}}]:shape())      -- an empty range
  end)

  it("missing trailing dims are whole, steps past the end stop", function()
    assert.are.same({{1, 4}, {5, 8}, {9, 12}}, t[{{}, {1, 4, 3}}]:totable())
    assert.are.same({{1, 2, 3, 4}, {9, 10, 11, 12}}, t[{{1, 3, 2}}]:totable())
  end)

  it("a 1-d index tensor alone indexes dim 1", function()
    assert.are.same({{9, 10, 11, 12}, {9, 10, 11, 12}}, t[long({3, 3})]:totable())
  end)

  it("empty tensors and empty index tensors", function()
    local e = ember.zeros(0, 3)
    assert.are.same({0, 2}, e[{{}, {2, 3}}]:shape())
    assert.are.same({0, 4}, t[long({})]:shape())
  end)

  it("the integer key keeps its old behaviour", function()
    assert.are.same({5, 6, 7, 8}, t[2]:totable())
    assert.are.equal(3, ember.tensor({1, 2, 3})[-1])
  end)

  it("gradients flow through every form (float64 finite differences)", function()
    local x = ember.randn(3, 5, {dtype = "float64"}):requires_grad_()
    for _, key in ipairs({{{}, {2, 5, 2}}, {{-2, -1}, 3}, {long({3, 1, 3})}, {{1, 2}, long({5, 1})}}) do
      assert(G.gradcheck(function(a) return a[key] end, {x}))
    end
  end)
end)

describe("slicing writes", function()
  it("numbers fill, tensors copy with broadcasting", function()
    local x = ember.zeros(3, 4)
    x[{{}, {1, 2}}] = 1
    x[{{2, 3}}] = ember.tensor({1, 2, 3, 4})
    x[{{}, {1, 4, 3}}] = ember.tensor({{7}, {8}, {9}})
    assert.are.same({{7, 1, 0, 7}, {8, 2, 3, 8}, {9, 2, 3, 9}}, x:totable())
  end)

  it("index tensors write through index_fill_ and index_copy_", function()
    local x = ember.zeros(3, 4)
    x[{{}, long({4, 1})}] = 2
    x[long({2})] = ember.tensor({1, 2, 3, 4})
    assert.are.same({{2, 0, 0, 2}, {1, 2, 3, 4}, {2, 0, 0, 2}}, x:totable())
  end)

  it("integers go exactly into int64 tensors, booleans into bool", function()
    local x = ember.zeros(2, {dtype = "int64"})
    x[{{1}}] = 9007199254740993
    assert.are.equal(9007199254740993, x[1])
    local b = ember.zeros(3, {dtype = "bool"})
    b[{{2, 3}}] = true
    assert.are.same({false, true, true}, b:totable())
  end)

  it("non-contiguous targets and sources, and a source overlapping the target", function()
    local x = ember.arange(1, 13):view(3, 4):t()      -- 4x3, not contiguous
    x[{{}, 2}] = ember.tensor({0, 0, 0, 0})
    assert.are.same({{1, 2, 3, 4}, {0, 0, 0, 0}, {9, 10, 11, 12}}, x:t():totable())
    local y = ember.arange(1, 6)
    y[{{2, 5}}] = y[{{1, 4}}]
    assert.are.same({1, 1, 2, 3, 4}, y:totable())
  end)

  it("a failed write changes nothing", function()
    local x = ember.arange(1, 7):view(2, 3)
    local before = x:totable()
    assert.has_error(function() x[{{}, {1, 2}}] = ember.ones(3) end)
    assert.has_error(function() x[{{}, long({1, 4})}] = 0 end)
    assert.has_error(function() x[{{}, long({1, 4})}] = ember.zeros(2, 2, {dtype = "int64"}) end)
    assert.has_error(function() x[{{1, 2}, {1, 9}}] = 0 end)
    assert.are.same(before, x:totable())
  end)

  it("autograd through writes into a non-leaf, and a leaf refuses", function()
    local a = ember.randn(3, 4, {dtype = "float64"}):requires_grad_()
    local w = ember.randn(2, {dtype = "float64"}):requires_grad_()
    assert(G.gradcheck(function(p, q)
      local b = p * 1
      b[{{2, 3}, 1}] = q * 3
      b[{{}, long({4})}] = 0
      return b
    end, {a, w}))
    assert.has_error(function() a[{{1}}] = 0 end,
      "index: a leaf tensor that requires grad is being used in an in-place operation (wrap it in ember.no_grad)")
    ember.no_grad(function() a[{{1}}] = 0 end)
    assert.are.equal(0, a[1]:abs():sum():item())
  end)

  it("a value that requires grad written into a plain tensor", function()
    local w = ember.ones(2, {requires_grad = true})
    local x = ember.zeros(3)
    x[{{1, 2}}] = w * 2
    x:sum():backward()
    assert.are.same({2, 2}, w.grad:totable())
  end)
end)

describe("index_copy_ and index_fill_", function()
  it("duplicate indices: the last slice wins on the CPU", function()
    local x = ember.zeros(3):index_copy_(1, long({2, 2}), ember.tensor({5, 6}))
    assert.are.same({0, 6, 0}, x:totable())
  end)

  it("0-d tensor values, their gradient is the sum over the filled slices", function()
    local v = ember.tensor(2, {requires_grad = true})
    local y = ember.ones(2, 3):index_fill(2, long({1, 3}), v)
    assert.are.same({{2, 1, 2}, {2, 1, 2}}, y:totable())
    y:sum():backward()
    assert.are.equal(4, v.grad:item())
  end)

  it("float64 finite differences", function()
    local x = ember.randn(4, 3, {dtype = "float64"}):requires_grad_()
    local s = ember.randn(4, 2, {dtype = "float64"}):requires_grad_()
    local v = ember.tensor(0.5, {dtype = "float64", requires_grad = true})
    assert(G.gradcheck(function(a, b) return a:index_copy(2, long({3, 1}), b) end, {x, s}))
    assert(G.gradcheck(function(a, b) return a:index_fill(1, long({4, 2}), b) end, {x, v}))
  end)

  it("errors name the function and change nothing", function()
    local x = ember.zeros(2, 3)
    local cases = {
      {function() x:index_copy_(1, long({3}), ember.ones(1, 3)) end,
       "index_copy_: index 3 is out of range for dimension 1 of size 2"},
      {function() x:index_copy_(1, long({1}), ember.ones(2, 3)) end,
       "index_copy_: source of shape [2,3] does not match the tensor's shape [2,3] with 1 indices in dimension 1"},
      {function() x:index_copy_(1, long({1}), ember.ones(1, 3, {dtype = "float64"})) end,
       "index_copy_: source dtype float64 differs from the tensor's float32"},
      {function() x:index_copy_(1, ember.tensor({1}), ember.ones(1, 3)) end,
       "index_copy_: expected an int64 or int32 index tensor, got float32"},
      {function() x:index_fill_(3, long({1}), 1) end, "index_fill_"},
      {function() x:index_fill_(1, long({1}), ember.ones(2)) end,
       "index_fill_: the value must be a number or a 0-d tensor, got a 1-d tensor"},
      {function() ember.zeros(3):expand(2, 3):index_fill_(1, long({1}), 1) end,
       "index_fill_: cannot write in place to an expanded tensor; clone it first"},
      {function() x:index_copy(2, long({0}), ember.ones(2, 1)) end,
       "index_copy: index 0 is out of range for dimension 2 of size 3"},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(c[2], 1, true), tostring(err))
    end
    assert.are.equal(0, x:abs():sum():item())
  end)
end)

describe("slicing errors", function()
  local t = ember.zeros(3, 4)
  local cases = {
    {{{1, 5}}, "index: index 5 is out of range for dimension 1 of size 3"},
    {{{}, {-5, 2}}, "index: index -5 is out of range for dimension 2 of size 4"},
    {{4}, "index: index 4 is out of range for dimension 1 of size 3"},
    {{{}, 0}, "index: index 0 is out of range for dimension 2 of size 4"},
    {{{1, 2, 0}}, "index: entry 1: step must be positive, got 0"},
    {{{1, 2, -1}}, "index: entry 1: step must be positive, got -1"},
    {{{3, 1}}, "index: entry 1: range {3, 1} ends before it starts in dimension 1 of size 3"},
    {{1, 2, 3}, "index: too many indices (3) for a 2-d tensor"},
    {{{1, 2, 3, 4}}, "index: entry 1 has 4 numbers; expected {}, {i}, {first, last} or {first, last, step}"},
    {{"a"}, "index: entry 1 must be an integer, a table or an int64 index tensor, got string"},
    {{1.5}, "index: entry 1 must be an integer, got 1.5"},
    {{{1.5, 2}}, "index: entry 1: range bounds and steps must be integers, got number"},
    {{ember.tensor({1})}, "index: entry 1 is a float32 tensor; index tensors must be int64"},
    {{long({{1}})}, "index: entry 1: an index tensor must be 1-d, got 2-d"},
    {{long({1}), long({1})}, "index: only one index tensor per key is supported"},
    {{long({4})}, "index_select: index 4 is out of range for dimension 1 of size 3"},
  }
  for _, c in ipairs(cases) do
    it(c[2], function()
      local ok, err = pcall(function() return t[c[1]] end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(c[2], 1, true), tostring(err))
      ok, err = pcall(function() t[c[1]] = 1 end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(c[2], 1, true) or tostring(err):find("index_fill_", 1, true),
        tostring(err))
      assert.are.equal(0, t:abs():sum():item())
    end)
  end

  it("an integer apart from an index tensor is refused (PyTorch reorders)", function()
    local x = ember.zeros(2, 3, 4)
    assert.has_error(function() return x[{1, {}, long({1})}] end,
      "index: an index tensor with integer entries apart from it (t[{1, {}, idx}]) is not supported (PyTorch moves the dim to the front then); index in two steps")
  end)

  it("a bad value type", function()
    assert.has_error(function() t[{{1}}] = "x" end)
    assert.has_error(function() t[{{}, {1, 2}}] = ember.ones(3) end,
      "index: value of shape [3] does not broadcast to the indexed shape [3,2]")
  end)
end)
