--- ember.logic: truth tests and logical operators (issue 17's "logic" group).
-- any, all, isnan, isinf, isfinite, logical_and/or/xor/not, as functions of
-- `ember` and as tensor methods, with PyTorch's semantics: any dtype is
-- accepted, a nonzero element (NaN included) is true, and every result is
-- a bool tensor.  Each is composed from the core's comparisons and
-- reductions (ne, eq, gt, lt, sum, minimum, maximum), so it runs on every
-- device those run on; the results are bool, so nothing is recorded for
-- autograd.  The checks are made here, before any core op runs, so an error
-- names the function the user called, not the op it is made of.
local ember = require "ember"
local check = require "ember.check"

local C = ember          -- the core's functions, already copied into ember
local M = {}

-- {======================================================================
-- Argument checks
-- =======================================================================

--- Raise a formatted message at the user's call: the first frame outside
-- this file and ember.check (the checks run a varying number of calls deep).
local raise = require("ember.blame").failer("ember/logic.lua")
local function fail(fmt, ...) raise(fmt:format(...)) end

local function check_tensor(name, v, pos)
  if not C.is_tensor(v) then
    fail("%s: expected a tensor as argument %d, got %s", name, pos, type(v))
  end
end

local function shape_str(s) return "[" .. table.concat(s, ",") .. "]" end

--- Two operands of a binary logical op: both tensors on one device, with
-- shapes that broadcast (the message has the core's form).
local function check_pair(name, a, b)
  check_tensor(name, a, 1)
  check_tensor(name, b, 2)
  if a.device ~= b.device then
    fail("%s: tensors on different devices (%s and %s)", name, a.device, b.device)
  end
  local sa, sb = a:shape(), b:shape()
  local na, nb = #sa, #sb
  for i = 0, math.min(na, nb) - 1 do
    local x, y = sa[na - i], sb[nb - i]
    if x ~= y and x ~= 1 and y ~= 1 then
      fail("%s: shapes %s and %s cannot be broadcast (dimension %d: %d vs %d)",
           name, shape_str(sa), shape_str(sb), math.max(na, nb) - i, x, y)
    end
  end
end

local FLOATS = {float32 = true, float64 = true}

-- }======================================================================

-- {======================================================================
-- Reductions: any, all
-- =======================================================================

--- t:any([dim] [, keepdim] [, opts]) and t:all(...): the count of true (or
-- false) elements compared with 0, so an empty reduction gives false for
-- any and true for all, as in PyTorch.  opts = {keepdim = bool}.
local function reduce(name, t, dim, keep, opts)
  check_tensor(name, t, 1)
  if type(dim) == "table" then dim, keep, opts = nil, nil, dim
  elseif type(keep) == "table" then keep, opts = nil, keep end
  if opts ~= nil then
    if type(opts) ~= "table" then
      fail("%s: expected an options table, got %s", name, type(opts))
    end
    for k in pairs(opts) do
      if k ~= "keepdim" then
        fail("%s: unknown option '%s' (expected keepdim)", name, tostring(k))
      end
    end
    if opts.keepdim ~= nil then keep = opts.keepdim end
  end
  if keep ~= nil and type(keep) ~= "boolean" then
    fail("%s: keepdim must be a boolean, got %s", name, type(keep))
  end
  -- the counted elements: nonzero ones for any, zero ones for all
  local hits = name == "any" and t:ne(0) or t:eq(0)
  local count
  if dim == nil then
    if keep then
      fail("%s: keepdim needs a dimension", name)
    end
    count = hits:sum()
  else
    count = hits:sum(check.dim(name, dim, t:dim(), raise), keep or false)
  end
  if name == "any" then return count:gt(0) end
  return count:eq(0)
end

function M.any(t, dim, keepdim, opts) return reduce("any", t, dim, keepdim, opts) end
function M.all(t, dim, keepdim, opts) return reduce("all", t, dim, keepdim, opts) end

-- }======================================================================

-- {======================================================================
-- Floating-point classes: isnan, isinf, isfinite
-- =======================================================================

--- NaN is the one value not equal to itself; an integer or bool tensor
-- holds no NaN and no infinity, so its answer is a constant.
function M.isnan(t)
  check_tensor("isnan", t, 1)
  if not FLOATS[t.dtype] then return C.zeros_like(t, {dtype = "bool"}) end
  return t:ne(t)
end

function M.isinf(t)
  check_tensor("isinf", t, 1)
  if not FLOATS[t.dtype] then return C.zeros_like(t, {dtype = "bool"}) end
  return t:eq(math.huge):maximum(t:eq(-math.huge))
end

--- -inf < x < inf: false for both infinities and for NaN (every comparison
-- with NaN is false).
function M.isfinite(t)
  check_tensor("isfinite", t, 1)
  if not FLOATS[t.dtype] then return C.ones_like(t, {dtype = "bool"}) end
  return t:gt(-math.huge):minimum(t:lt(math.huge))
end

-- }======================================================================

-- {======================================================================
-- Logical operators
-- =======================================================================

--- Each operand becomes bool (nonzero is true, NaN too), then: and is the
-- minimum of two bools, or the maximum, xor inequality; all broadcast.
function M.logical_and(a, b)
  check_pair("logical_and", a, b)
  return a:ne(0):minimum(b:ne(0))
end

function M.logical_or(a, b)
  check_pair("logical_or", a, b)
  return a:ne(0):maximum(b:ne(0))
end

function M.logical_xor(a, b)
  check_pair("logical_xor", a, b)
  return a:ne(0):ne(b:ne(0))
end

function M.logical_not(t)
  check_tensor("logical_not", t, 1)
  return t:eq(0)
end

-- }======================================================================

-- Each is both ember.name(t, ...) and the method t:name(...).
for k, f in pairs(M) do
  ember[k] = f
  ember.Tensor[k] = f
end

return M
