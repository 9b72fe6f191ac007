-- Numerics against PyTorch: matmul, reductions, softmax/log_softmax,
-- broadcasting, type promotion, comparisons and elementwise functions.
--
-- The reference values live in spec/reference/values.lua, written by
-- spec/reference/make_reference.py.  To regenerate them (needs PyTorch,
-- never needed to run this spec):
--
--     /usr/bin/python3 spec/reference/make_reference.py
--
-- Each case names an op, its inputs (shape, dtype, flat row-major data and
-- an optional transpose, applied after building, to test strided inputs),
-- its arguments (dims and returned indices 1-based, as in Ember) and the
-- expected result (shape, dtype, flat data); max/min over a dim also have
-- expected_indices.  One `it` per case.
--
-- Tolerances, per element, with b the reference value and a Ember's:
--   float32: |a - b| <= 1e-5 * max(1, |b|)   (relative for |b| >= 1,
--            absolute 1e-5 below; the reference is the float64 result
--            rounded to float32, so this bounds Ember's own error)
--   float64: |a - b| <= 1e-12 * max(1, |b|)
--   integers and bools: exactly equal.
-- NaN must give NaN and an infinity the same infinity.
local ember = require "ember"

local cases = dofile("spec/reference/values.lua")

local TOL = {float32 = 1e-5, float64 = 1e-12}

local function build(input)
  local t = ember.tensor(input.data, {dtype = input.dtype}):view(input.shape)
  if input.transpose then
    t = t:transpose(input.transpose[1], input.transpose[2])
  end
  return t
end

local function fmt_shape(s)
  return "[" .. table.concat(s, ",") .. "]"
end

-- A failed check is a busted failure (not an error) with this message.
local function fail(msg)
  assert.is_true(false, msg)
end

-- Compare one result tensor with its reference; fails with a message that
-- says what differs and where (flat 1-based index).
local function check(what, got, expected)
  if not ember.is_tensor(got) then
    fail(what .. ": expected a tensor, got " .. type(got))
  end
  local shape = got:shape()
  if fmt_shape(shape) ~= fmt_shape(expected.shape) then
    fail(string.format("%s: shape %s, expected %s", what, fmt_shape(shape),
                       fmt_shape(expected.shape)))
  end
  if got.dtype ~= expected.dtype then
    fail(string.format("%s: dtype %s, expected %s", what, got.dtype,
                       expected.dtype))
  end
  local data = got:reshape(-1):totable()
  if #data ~= #expected.data then
    fail(string.format("%s: %d elements, expected %d", what, #data,
                       #expected.data))
  end
  local tol = TOL[expected.dtype]
  local bad, worst, first = 0, 0, nil
  for i, b in ipairs(expected.data) do
    local a = data[i]
    local ok
    if tol then
      if b ~= b then ok = a ~= a
      elseif b == math.huge or b == -math.huge then ok = a == b
      else
        local err = math.abs(a - b)
        local lim = tol * math.max(1, math.abs(b))
        ok = err <= lim           -- false for a NaN
        if err == err and err / lim > worst then worst = err / lim end
      end
    else
      ok = a == b and math.type(a) == math.type(b)
    end
    if not ok then
      bad = bad + 1
      first = first or i
    end
  end
  if bad > 0 then
    fail(string.format("%s: %d of %d elements differ; first at flat index %d: "
                       .. "got %s, expected %s%s", what, bad, #data, first,
                       tostring(data[first]), tostring(expected.data[first]),
                       tol and string.format(" (worst error %.3g x tolerance)",
                                             worst) or ""))
  end
end

local REDUCE = {sum = true, mean = true, prod = true, var = true, std = true,
                argmax = true, argmin = true}
local BINARY = {add = true, sub = true, mul = true, div = true, pow = true,
                eq = true, ne = true, lt = true, le = true, gt = true, ge = true}
local UNARY = {exp = true, log = true, sqrt = true, tanh = true, sigmoid = true,
               relu = true, abs = true, neg = true}

-- Run a case's op the way a user would write it; returns one or two tensors.
local function run(c)
  local x = {}
  for i, input in ipairs(c.inputs) do x[i] = build(input) end
  local a, args = x[1], c.args or {}
  local op = c.op
  if op == "matmul" then
    return a:matmul(x[2])
  elseif BINARY[op] then
    local b = x[2]
    if b == nil then b = args.scalar end
    return a[op](a, b)
  elseif REDUCE[op] then
    if args.dim == nil then return a[op](a) end
    return a[op](a, args.dim, args.keepdim or false)
  elseif op == "max" or op == "min" then
    if args.dim == nil then return a[op](a) end
    return a[op](a, args.dim, args.keepdim or false)
  elseif op == "softmax" or op == "log_softmax" then
    return a[op](a, args.dim)
  elseif UNARY[op] then
    return a[op](a)
  elseif op == "clamp" then
    return a:clamp(args.min, args.max)
  end
  error("numerics_spec: unknown op " .. tostring(op))
end

describe("numerics against PyTorch", function()
  it("has its reference values", function()
    assert.is_true(#cases > 0)
  end)

  for _, c in ipairs(cases) do
    it(c.name, function()
      local got, indices = run(c)
      check("values", got, c.expected)
      if c.expected_indices then
        check("indices", indices, c.expected_indices)
      end
    end)
  end
end)
