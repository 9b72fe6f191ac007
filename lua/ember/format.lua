--- ember.format: tensors printed as PyTorch prints them, with a footer
-- naming the dtype and size (as Torch7 did):
--
--     tensor([[1., 2.],
--             [3., 4.]])
--     [float32, size 2x2]
-- (with ", requires_grad" or ", grad_fn=MulBackward" when autograd
-- tracks the tensor)
--
-- Big tensors show their first and last `edgeitems` along each dimension
-- with "..." between, once they hold more than `threshold` elements.
local check = require "ember.check"
local C = require "ember.core"

local M = {}

local opts = {threshold = 1000, edgeitems = 3, precision = 4, linewidth = 80}

--- Change how tensors print: any of threshold, edgeitems, precision,
-- linewidth (as torch.set_printoptions).
function M.set_printoptions(o)
  if type(o) ~= "table" then
    error("set_printoptions: expected a table of options, got " .. type(o), 2)
  end
  check.options("set_printoptions", o, opts)
  for k, v in pairs(o) do          -- all checked first: a failed call changes nothing
    local ok = (math.type(v) == "integer" and v >= 0) or (k == "threshold" and v == math.huge)
    if not ok then
      error("set_printoptions: " .. k .. " must be a non-negative integer", 2)
    end
  end
  for k, v in pairs(o) do opts[k] = v end
end

-- The positions shown along a dim of size n: all, or the edges.
local function shown(n, summarize)
  local idx = {}
  if summarize and n > 2 * opts.edgeitems then
    for i = 1, opts.edgeitems do idx[#idx + 1] = i end
    idx[#idx + 1] = false                       -- the "..." marker
    for i = n - opts.edgeitems + 1, n do idx[#idx + 1] = i end
  else
    for i = 1, n do idx[#idx + 1] = i end
  end
  return idx
end

-- t's row for position i of a dim whose full size is n: t is the tensor
-- itself (its size n), or its edges only (see edges below).
local function row(t, i, n)
  local m = t:size(1)
  if m == n or i <= opts.edgeitems then return t[i] end
  return t[i - (n - m)]
end

-- Collect the displayed values (numbers or booleans) of t, whose full
-- shape is shape[depth..].
local function collect(t, summarize, out, shape, depth)
  if t:dim() == 0 then out[#out + 1] = t:item(); return out end
  local n = shape[depth]
  if t:dim() == 1 then
    for _, i in ipairs(shown(n, summarize)) do
      if i then out[#out + 1] = row(t, i, n) end
    end
    return out
  end
  for _, i in ipairs(shown(n, summarize)) do
    if i then collect(row(t, i, n), summarize, out, shape, depth + 1) end
  end
  return out
end

-- What of t is shown, in one copy to the host when t is on a device (one
-- wait for the device instead of one per element): all of it, or, when
-- summarized, only the first and last edgeitems along each long dim.
local function on_host(t, summarize)
  if t.device == "cpu" then return t end
  if summarize then
    local e = opts.edgeitems
    for d = 1, t:dim() do
      local n = t:size(d)
      if n > 2 * e then
        t = C.cat({t:narrow(d, 1, e), t:narrow(d, n - e + 1, e)}, d)
      end
    end
  end
  return t:cpu()
end

local FLOAT = {float32 = true, float64 = true, bfloat16 = true, float16 = true}

-- A formatter for the values: fixed, scientific, or integral floats.
local function formatter(values, dtype)
  if dtype == "bool" then return function(v) return tostring(v) end end
  if not FLOAT[dtype] then
    return function(v) return string.format("%d", v) end
  end
  local integral, maxa, mina = true, 0, math.huge
  for _, v in ipairs(values) do
    if v == v and v ~= math.huge and v ~= -math.huge then
      if v ~= math.floor(v) then integral = false end
      local a = math.abs(v)
      if a > maxa then maxa = a end
      if a ~= 0 and a < mina then mina = a end
    end
  end
  local sci = maxa > 1e8 or (mina ~= math.huge and (mina < 1e-4 or maxa / mina > 1000))
  local p = opts.precision
  local function special(v)
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
  end
  if integral and maxa <= 1e8 then
    return function(v) return special(v) or string.format("%.0f.", v) end
  elseif sci then
    return function(v) return special(v) or string.format("%." .. p .. "e", v) end
  end
  return function(v) return special(v) or string.format("%." .. p .. "f", v) end
end

local function render(t, fmt, width, indent, summarize, shape, depth)
  local nd = t:dim()
  if nd == 0 then return fmt(t:item()) end
  if nd == 1 then
    local items = {}
    local n = shape[depth]
    for _, i in ipairs(shown(n, summarize)) do
      local s = i and fmt(row(t, i, n)) or "..."
      items[#items + 1] = string.rep(" ", width - #s) .. s
    end
    -- wrap long rows at linewidth
    local per = math.max(1, (opts.linewidth - indent) // (width + 2))
    local lines = {}
    for k = 1, #items, per do
      lines[#lines + 1] = table.concat(items, ", ", k, math.min(k + per - 1, #items))
    end
    return "[" .. table.concat(lines, ",\n" .. string.rep(" ", indent + 1)) .. "]"
  end
  local rows = {}
  local n = shape[depth]
  for _, i in ipairs(shown(n, summarize)) do
    rows[#rows + 1] = i and render(row(t, i, n), fmt, width, indent + 1, summarize, shape,
                                   depth + 1) or "..."
  end
  local sep = "," .. string.rep("\n", nd - 1) .. string.rep(" ", indent + 1)
  return "[" .. table.concat(rows, sep) .. "]"
end

--- tostring(t): the body as PyTorch prints it and a footer line.
function M.tostring(t)
  -- autograd state in the footer, as PyTorch shows grad_fn=<...>
  local grad = t.grad_fn and (", grad_fn=" .. t.grad_fn)
               or (t.requires_grad and ", requires_grad" or "")
  t = t:detach()   -- reading elements records nothing
  local shape = t:shape()
  local summarize = t:numel() > opts.threshold
  local dev = t.device == "cpu" and "" or (", " .. t.device)
  t = on_host(t, summarize)
  local values = collect(t, summarize, {}, shape, 1)
  local fmt = formatter(values, t.dtype)
  local width = 0
  for _, v in ipairs(values) do width = math.max(width, #fmt(v)) end
  local body
  if t:numel() == 0 then body = "[]"
  else body = render(t, fmt, width, #"tensor(", summarize, shape, 1) end
  local size = #shape == 0 and "scalar" or ("size " .. table.concat(shape, "x"))
  return ("tensor(%s)\n[%s%s, %s%s]"):format(body, t.dtype, dev, size, grad)
end

return M
