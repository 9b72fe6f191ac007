--- ember.encoding: issue 17's "encoding" group: nn.functional.one_hot,
-- bincount, histc, bucketize, searchsorted.  Each is composed from the
-- core's comparisons, reductions and index_add_, so it runs on every device
-- those run on.  None is differentiable (integer results or counts).  Labels
-- and indices are 1-based as everywhere in Ember: label c lights column c,
-- value v counts in bin v, and bucketize/searchsorted return PyTorch's
-- 0-based insertion point + 1.
local ember = require "ember"

local C = ember
local M = {}

-- {======================================================================
-- Argument checks
-- =======================================================================

--- Raise a formatted message at the user's call: the first frame outside
-- this file and ember.check (the checks run a varying number of calls deep).
local raise = require("ember.blame").failer("ember/encoding.lua")
local function fail(fmt, ...) raise(fmt:format(...)) end

local function check_tensor(name, v, pos)
  if not C.is_tensor(v) then
    fail("%s: expected a tensor as argument %d, got %s", name, pos, type(v))
  end
end

--- f(...) with an error from the core (an allocation too large, say)
-- raised again at the user's call, naming the function.
local function named(name, f, ...)
  local r = table.pack(pcall(f, ...))
  if not r[1] then
    fail("%s: %s", name, tostring(r[2]):gsub("^[^:]*:%d+: ", ""))
  end
  return table.unpack(r, 2, r.n)
end

local INTS = {int64 = true, int32 = true, uint8 = true}
local FLOATS = {float32 = true, float64 = true}

local function check_opts(name, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    fail("%s: expected an options table, got %s", name, type(opts))
  end
  for k in pairs(opts) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      fail("%s: unknown option '%s' (expected %s)", name, tostring(k),
           table.concat(names, ", "))
    end
  end
  return opts
end

local function check_int(name, what, v, lo)
  if math.type(v) ~= "integer" then
    if type(v) == "number" and v == math.floor(v) and math.abs(v) < 2^53 then
      v = math.tointeger(v)
    else
      fail("%s: %s must be an integer, got %s", name, what,
           type(v) == "number" and tostring(v) or type(v))
    end
  end
  if v < lo then fail("%s: %s must be >= %d, got %d", name, what, lo, v) end
  return v
end

-- }======================================================================

-- {======================================================================
-- one_hot, bincount
-- =======================================================================

--- nn.functional.one_hot(labels [, num_classes]): labels' shape with one
-- more dim of num_classes; label c lights column c (int64, as PyTorch).
function M.one_hot(labels, num_classes)
  local name = "one_hot"
  check_tensor(name, labels, 1)
  if labels.dtype ~= "int64" then
    fail("%s: labels must be int64, got %s", name, labels.dtype)
  end
  local n = labels:numel()
  local lo, hi
  if n > 0 then lo, hi = labels:min():item(), labels:max():item() end
  if num_classes == nil or num_classes == -1 then
    if n == 0 then
      fail("%s: cannot infer num_classes from an empty tensor", name)
    end
    num_classes = math.max(hi, 1)
  else
    num_classes = check_int(name, "num_classes", num_classes, 1)
  end
  if n > 0 then
    if lo < 1 then
      fail("%s: label %d out of range (labels count from 1)", name, lo)
    end
    if hi > num_classes then
      fail("%s: label %d out of range for %d classes", name, hi, num_classes)
    end
  end
  return named(name, function()
    local cols = C.arange(num_classes, {dtype = "int64", device = labels.device}) + 1
    return labels:unsqueeze(-1):eq(cols):long()
  end)
end

--- t:bincount({minlength = 0, weights = w}): bin v counts the values v
-- (values start at 1).
function M.bincount(t, opts)
  local name = "bincount"
  check_tensor(name, t, 1)
  opts = check_opts(name, opts, {minlength = true, weights = true})
  if not INTS[t.dtype] then
    fail("%s: expected an integer tensor, got %s", name, t.dtype)
  end
  if t:dim() ~= 1 then
    fail("%s: expected a 1-d tensor, got %d-d", name, t:dim())
  end
  local minlength = check_int(name, "minlength", opts.minlength or 0, 0)
  local w = opts.weights
  if w ~= nil then
    if not C.is_tensor(w) then
      fail("%s: weights must be a tensor, got %s", name, type(w))
    end
    if w:dim() ~= 1 or w:numel() ~= t:numel() then
      fail("%s: weights must be a 1-d tensor of %d elements, as the input", name, t:numel())
    end
    if w.dtype == "bool" then
      fail("%s: weights must be a number tensor, got bool", name)
    end
    if w.device ~= t.device then
      fail("%s: weights on %s, input on %s", name, w.device, t.device)
    end
  end
  local len = minlength
  if t:numel() > 0 then
    local lo, hi = t:min():item(), t:max():item()
    if lo < 1 then
      fail("%s: value %d is not a bin (values count from 1)", name, lo)
    end
    len = math.max(len, hi)
  end
  local dtype = w and w.dtype or "int64"
  return named(name, function()
    local out = C.zeros({len}, {dtype = dtype, device = t.device})
    if t:numel() == 0 then return out end
    local src = w and w:detach() or C.ones({t:numel()}, {dtype = "int64", device = t.device})
    out:index_add_(1, t:long(), src)
    return out
  end)
end

-- }======================================================================

-- {======================================================================
-- histc
-- =======================================================================

--- t:histc([bins = 100 [, min = 0 [, max = 0]]]): bins equal-width bins over
-- [min, max] (the data's range when min = max = 0), the max edge in the
-- last bin, values outside ignored; t's float dtype.
function M.histc(t, bins, lo, hi)
  local name = "histc"
  check_tensor(name, t, 1)
  if not FLOATS[t.dtype] then
    fail("%s: expected a float32 or float64 tensor, got %s", name, t.dtype)
  end
  bins = check_int(name, "bins", bins or 100, 1)
  lo, hi = lo or 0, hi or 0
  if type(lo) ~= "number" or type(hi) ~= "number" then
    fail("%s: min and max must be numbers", name)
  end
  if lo > hi then fail("%s: max (%s) must be >= min (%s)", name, hi, lo) end
  local x = t:detach():reshape(-1)
  if lo == hi and x:numel() > 0 then
    lo, hi = x:min():item(), x:max():item()
  end
  if lo == hi then lo, hi = lo - 1, hi + 1 end
  if lo ~= lo or hi ~= hi or lo == -math.huge or hi == math.huge then
    fail("%s: range [%s, %s] is not finite", name, lo, hi)
  end
  local out = named(name, C.zeros, {bins}, {dtype = t.dtype, device = t.device})
  if x:numel() == 0 then return out end
  local inside = x:ge(lo):logical_and(x:le(hi))   -- false for NaN
  -- bin of each in-range value; out-of-range ones are clamped and weigh 0
  local idx = ((x:clamp(lo, hi) - lo) * (bins / (hi - lo))):floor():long():clamp(0, bins - 1) + 1
  out:index_add_(1, idx, inside:to(t.dtype))
  return out
end

-- }======================================================================

-- {======================================================================
-- bucketize, searchsorted
-- =======================================================================

--- The count, along the last dim of seq, of elements below each value
-- (or at most each value when right), plus 1.
local function insertion(seq, v, right)
  local c = right and v:ge(seq) or v:gt(seq)
  return c:sum(-1) + 1
end

--- ember.bucketize(t, boundaries, {right = false}): for each element of t,
-- PyTorch's bucket index + 1 (1-based); int64, t's shape.
function M.bucketize(t, boundaries, opts)
  local name = "bucketize"
  check_tensor(name, t, 1)
  check_tensor(name, boundaries, 2)
  opts = check_opts(name, opts, {right = true})
  if boundaries:dim() ~= 1 then
    fail("%s: boundaries must be a 1-d tensor, got %d-d", name, boundaries:dim())
  end
  if t.device ~= boundaries.device then
    fail("%s: tensors on different devices (%s and %s)", name, t.device, boundaries.device)
  end
  if t.dtype == "bool" or boundaries.dtype == "bool" then
    fail("%s: bool tensors are not supported", name)
  end
  if boundaries:numel() == 0 then
    return C.ones(t:shape(), {dtype = "int64", device = t.device})
  end
  return insertion(boundaries:detach(), t:detach():unsqueeze(-1), opts.right)
end

--- ember.searchsorted(sorted, values, {right = false}): the 1-based index at
-- which each value would be inserted in sorted's last dim to keep it sorted
-- (PyTorch's 0-based insertion point + 1); int64, values' shape.  A 1-d
-- sorted serves every value; otherwise sorted and values agree on every dim
-- but the last.
function M.searchsorted(sorted, values, opts)
  local name = "searchsorted"
  check_tensor(name, sorted, 1)
  if type(values) == "number" then
    values = C.tensor(values, {dtype = sorted.dtype, device = sorted.device})
  end
  check_tensor(name, values, 2)
  opts = check_opts(name, opts, {right = true})
  if sorted.device ~= values.device then
    fail("%s: tensors on different devices (%s and %s)", name, sorted.device, values.device)
  end
  if sorted.dtype == "bool" or values.dtype == "bool" then
    fail("%s: bool tensors are not supported", name)
  end
  if sorted:dim() == 0 then
    fail("%s: sorted must have at least 1 dimension", name)
  end
  local s, v = sorted:detach(), values:detach()
  if sorted:dim() == 1 then
    if s:numel() == 0 then
      return C.ones(v:shape(), {dtype = "int64", device = v.device})
    end
    return insertion(s, v:unsqueeze(-1), opts.right)
  end
  local ss, vs = s:shape(), v:shape()
  local ok = #ss == #vs
  for i = 1, #ss - 1 do ok = ok and ss[i] == vs[i] end
  if not ok then
    fail("%s: sorted [%s] and values [%s] must agree on every dim but the last",
         name, table.concat(ss, ","), table.concat(vs, ","))
  end
  if ss[#ss] == 0 then
    return C.ones(vs, {dtype = "int64", device = v.device})
  end
  return insertion(s:unsqueeze(-2), v:unsqueeze(-1), opts.right)
end

-- }======================================================================

ember.nn.functional.one_hot = M.one_hot
ember.Tensor.bincount = M.bincount
ember.Tensor.histc = M.histc
ember.bincount = M.bincount
ember.histc = M.histc
ember.bucketize = M.bucketize
ember.searchsorted = M.searchsorted

return M
