-- Splitting and joining (lua/ember/joining.lua): split, chunk, unbind, flip,
-- roll, tile, repeat_interleave, against PyTorch's values.
--
-- The reference cases live in spec/reference/joining_values.lua, written by
-- spec/reference/make_joining_reference.py (needs PyTorch to regenerate,
-- never to run this spec).  Each case is run for every dtype, on a
-- contiguous input and on a non-contiguous one holding the same values;
-- every value (forward and float64 gradient) is an exact integer, so the
-- comparisons are exact.
local ember = require "ember"
local gradcheck = require("helpers.gradcheck").gradcheck
local CASES = dofile("spec/reference/joining_values.lua")

local DTYPES = {"float32", "float64", "int32", "int64", "uint8", "bool"}

--- The case's input: 1..numel in float64, shaped.
local function input(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return ember.arange(1, n + 1, {dtype = "float64"}):view(shape)
end

--- The same values in a non-contiguous tensor (a transposed copy,
-- transposed back; 1-d: every other element of a longer tensor).
local function strided(x)
  if x:dim() >= 2 then
    local y = x:transpose(1, 2):contiguous():transpose(1, 2)
    assert(not y:is_contiguous() or x:numel() <= 1 or x:size(1) == 1 or x:size(2) == 1)
    return y
  end
  local n = x:numel()
  local big = ember.zeros(2 * n, {dtype = x.dtype})
  local y = big:view(n, 2):select(2, 1)
  y:copy_(x)
  return y
end

local function call(case, x)
  local args = {}
  for i, a in ipairs(case.args) do
    if type(a) == "table" and a.counts then
      args[i] = ember.tensor(a.counts, {dtype = "int64"})
    else
      args[i] = a
    end
  end
  local r = x[case.op](x, table.unpack(args, 1, #case.args))
  if ember.is_tensor(r) then return {r} end
  return r
end

local function expected(o, dtype)
  local t = ember.tensor(o.data, {dtype = "float64"})
  if #o.data == 0 then t = ember.zeros(0, {dtype = "float64"}) end
  return t:view(o.shape):to(dtype)
end

local function desc(case)
  local parts = {}
  for _, a in ipairs(case.args) do
    if type(a) == "table" and a.counts then
      parts[#parts + 1] = "counts{" .. table.concat(a.counts, ",") .. "}"
    elseif type(a) == "table" then
      parts[#parts + 1] = "{" .. table.concat(a, ",") .. "}"
    else
      parts[#parts + 1] = tostring(a)
    end
  end
  return ("%s [%s] (%s)"):format(case.op, table.concat(case.shape, ","), table.concat(parts, ", "))
end

describe("joining: PyTorch's values", function()
  for _, case in ipairs(CASES) do
    it(desc(case) .. ", every dtype, contiguous and not", function()
      for _, dtype in ipairs(DTYPES) do
        local base = input(case.shape):to(dtype)
        for _, x in ipairs({base, strided(base)}) do
          local outs = call(case, x)
          assert.are.equal(#case.outs, #outs)
          for i, o in ipairs(case.outs) do
            assert.are.same(o.shape, outs[i]:shape())
            assert.are.equal(dtype, outs[i].dtype)
            assert.is_true(outs[i]:equal(expected(o, dtype)), desc(case) .. " " .. dtype)
          end
        end
      end
    end)
    it(desc(case) .. ", gradient", function()
      local x = input(case.shape)
      x.requires_grad = true
      local outs = call(case, x)
      local loss = (x * 0):sum()
      for i, y in ipairs(outs) do
        local w = ember.arange(1, y:numel() + 1, {dtype = "float64"}):view(y:shape()) * i
        loss = loss + (y * w):sum()
      end
      loss:backward()
      local g = ember.zeros(0, {dtype = "float64"})
      if #case.grad > 0 then g = ember.tensor(case.grad, {dtype = "float64"}) end
      assert.is_true(x.grad:equal(g:view(case.shape)))
    end)
  end
end)

describe("joining: views and copies", function()
  it("split, chunk and unbind return views that share storage", function()
    local t = ember.zeros(4, 3)
    t:split(2)[2]:fill_(1)
    t:chunk(3, 2)[3]:fill_(2)
    t:unbind(1)[1]:fill_(3)
    assert.are.same({{3, 3, 3}, {0, 0, 2}, {1, 1, 2}, {1, 1, 2}}, t:totable())
  end)
  it("flip, roll, tile and repeat_interleave return copies, even when nothing moves", function()
    local t = ember.ones(1, 3)
    for _, r in ipairs({t:flip(1), t:roll(0), t:roll(3, 2), t:tile(1, 1), t:tile({}),
                        t:repeat_interleave(1, 2), t:repeat_interleave(1)}) do
      r:fill_(5)
    end
    assert.is_true(t:equal(ember.ones(1, 3)))
  end)
  it("the module forms are the methods", function()
    local t = ember.arange(6):view(2, 3)
    for _, name in ipairs({"split", "chunk", "unbind", "flip", "roll", "tile", "repeat_interleave"}) do
      assert.are.equal(ember[name], ember.Tensor[name])
    end
    assert.is_true(ember.flip(t, {1, 2}):equal(t:flip({1, 2})))
    assert.is_function(ember.stack)
    assert.is_true(ember.stack(t:unbind(2), 2):equal(t))
    assert.is_true(ember.cat(t:split(1, 2), 2):equal(t))
  end)
  it("0-d tensors: flip and roll copy, tile and repeat_interleave add dims", function()
    local s = ember.tensor(7)
    assert.is_true(s:flip(1):equal(s))
    assert.is_true(s:roll(3):equal(s))
    assert.are.same({2, 3}, s:tile(2, 3):shape())
    assert.are.same({7, 7}, s:repeat_interleave(2):totable())
  end)
  it("tile and repeat_interleave of an 8-d tensor (no room to unsqueeze)", function()
    local t = ember.arange(1, 3):view(1, 1, 1, 1, 1, 1, 1, 2)
    local r = t:tile(1, 1, 1, 1, 1, 1, 2, 2)
    assert.are.same({1, 1, 1, 1, 1, 1, 2, 4}, r:shape())
    assert.are.same({1, 2, 1, 2, 1, 2, 1, 2}, r:reshape(-1):totable())
    local q = t:repeat_interleave(2, 8)
    assert.are.same({1, 1, 2, 2}, q:reshape(-1):totable())
  end)
  it("ember.repeat_interleave(counts) repeats 1..#counts", function()
    local r = ember.repeat_interleave(ember.tensor({2, 0, 1}, {dtype = "int64"}))
    assert.are.same({1, 1, 3}, r:totable())
    assert.are.equal("int64", r.dtype)
  end)
end)

describe("joining: gradcheck", function()
  local function x(...) local t = ember.randn(...):double(); t.requires_grad = true; return t end
  local cases = {
    split = function(t) local p = t:split({1, 2}, 2); return ember.cat({p[2], p[1]}, 2) * t end,
    chunk = function(t) return ember.stack(t:chunk(3, 1), 1):sum(1) end,
    unbind = function(t) local u = t:unbind(2); return u[1] * u[3] end,
    flip = function(t) return t:flip({1, 2}) * t end,
    roll = function(t) return t:roll({1, -1}, {1, 2}) * t end,
    roll_flat = function(t) return t:roll(5) * t end,
    tile = function(t) return t:tile(2, 1, 3) end,
    repeat_interleave = function(t) return t:repeat_interleave(2, 2) end,
    repeat_counts = function(t)
      return t:repeat_interleave(ember.tensor({2, 0, 3}, {dtype = "int64"}), 2)
    end,
  }
  for name, fn in pairs(cases) do
    it(name, function()
      ember.manual_seed(1)
      local ok, msg = gradcheck(fn, {x(3, 3)})
      assert(ok, msg)
    end)
  end
end)

describe("joining: errors name the function", function()
  local t = ember.zeros(2, 3)
  local function err(pat, f, ...)
    local ok, e = pcall(f, ...)
    assert.is_false(ok)
    assert.is_truthy(tostring(e):find(pat, 1, true), tostring(e))
  end
  it("split", function()
    err("split: split size must be >= 1, got 0", t.split, t, 0)
    err("split: sizes must sum to the size of dimension 2 (3), got 2", t.split, t, {1, 1}, 2)
    err("split: size 2 must be >= 0, got -1", t.split, t, {4, -1}, 2)
    err("split: dimension 3 out of range for a 2-d tensor (expected 1..2)", t.split, t, 1, 3)
    err("split: dimension 0 is invalid", t.split, t, 1, 0)
    err("split: expected a tensor with at least 1 dimension", t.split, ember.tensor(1), 1)
    err("split: expected a size or a table of sizes, got string", t.split, t, "a")
    err("split: split size must be an integer, got 1.5", t.split, t, 1.5)
    err("split: expected a tensor as argument 1, got number", ember.split, 3, 1)
  end)
  it("chunk and unbind", function()
    err("chunk: the number of chunks must be >= 1, got 0", t.chunk, t, 0)
    err("chunk: dimension -3 out of range", t.chunk, t, 2, -3)
    err("chunk: at most 1048576 chunks of an empty dimension, got 1048577",
        t.chunk, ember.zeros(0), (1 << 20) + 1)
    err("unbind: dimension 3 out of range", t.unbind, t, 3)
    err("unbind: expected a tensor with at least 1 dimension", t.unbind, ember.tensor(1))
  end)
  it("flip and roll", function()
    err("flip: dimension 1 appears more than once", t.flip, t, {1, -2})
    err("flip: expected a dimension or a table of dimensions", t.flip, t)
    err("flip: dimension 3 out of range", t.flip, t, 3)
    err("roll: expected as many shifts as dims, got 2 and 1", t.roll, t, {1, 2}, 1)
    err("roll: without dims, expected one shift, got 2", t.roll, t, {1, 2})
    err("roll: shift 1 must be an integer, got 0.5", t.roll, t, 0.5, 1)
    err("roll: dimension 3 out of range", t.roll, t, 1, 3)
  end)
  it("tile and repeat_interleave", function()
    err("tile: size 1 must be >= 0, got -1", t.tile, t, -1, 2)
    err("tile: at most 8 sizes, got 9", t.tile, t, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    err("repeat_interleave: repeats must be >= 0, got -1", t.repeat_interleave, t, -1)
    err("repeat_interleave: repeats must be an int64 or int32 tensor, got float32",
        t.repeat_interleave, t, ember.ones(3), 2)
    err("repeat_interleave: repeats must have one count per element of dimension 2 (3), got 2",
        t.repeat_interleave, t, ember.tensor({1, 2}, {dtype = "int64"}), 2)
    err("repeat_interleave: repeats must be >= 0, got -1 at position 2",
        t.repeat_interleave, t, ember.tensor({1, -1, 2}, {dtype = "int64"}), 2)
    err("repeat_interleave: dimension 3 out of range", t.repeat_interleave, t, 2, 3)
    err("repeat_interleave: expected the repeat count", t.repeat_interleave, t)
  end)
end)

describe("joining: long results", function()
  it("repeat_interleave with counts summing past 2^20 fills runs in the core", function()
    local r = ember.tensor({1, 2}):repeat_interleave(ember.tensor({3, (1 << 20) + 5}, {dtype = "int64"}))
    assert.are.equal((1 << 20) + 8, r:numel())
    assert.are.equal(3.0, r:narrow(1, 1, 3):sum():item())
    assert.are.equal(2.0 * ((1 << 20) + 5), r:narrow(1, 4, (1 << 20) + 5):sum():item())
  end)
  it("repeat_interleave with a huge count is a clear error, not a hang", function()
    local ok, e = pcall(ember.repeat_interleave, ember.ones(2),
                        ember.tensor({1, 1 << 60}, {dtype = "int64"}))
    assert.is_false(ok)
    assert.is_truthy(e:find("^repeat_interleave: "), e)
  end)
end)

describe("joining: a failing core op is reported by the function", function()
  it("tile past memory", function()
    local ok, e = pcall(ember.tile, ember.ones(2), 1 << 40)
    assert.is_false(ok)
    assert.is_truthy(e:find("^tile: out of memory"), e)
  end)
end)
