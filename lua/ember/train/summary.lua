--- ember.train.summary: model:summary, Keras's table of layers, output
-- shapes and parameter counts (internal; ember.train loads it).
local ember = require "ember"
local Module = require "ember.nn.module"
local common = require "ember.train.common"

local fail, kind, class_of, options = common.fail, common.kind, common.class_of, common.options
local check_int, device_of = common.check_int, common.device_of
local seen_input = common.seen_input

-- {======================================================================
-- summary
-- =======================================================================

local function count(t) return t:numel() end

local function group3(n)
  local s = tostring(n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function shape_str(t)
  if not ember.is_tensor(t) then return "?" end
  local dims = t:shape()
  dims[1] = "None"
  return "(" .. table.concat(dims, ", ") .. ")"
end

--- The input shape (without the batch dimension) a dry run can use:
-- given, remembered from fit/predict, or read off a first Linear/Embedding.
local function infer_input(self)
  local seen = seen_input[self]
  if seen then return seen.shape, seen.dtype end
  local first = self
  while class_of(first) == "Sequential" and #first > 0 do first = first[1] end
  if class_of(first) == "Linear" then return {first.in_features}, "float32" end
  if class_of(first) == "Embedding" then return {1}, "int64" end
  return nil
end

--- model:summary([input_shape] [, {print_fn = print}]): print (and
-- return) a Keras-style table of the top-level layers, their output
-- shapes and parameter counts.  Output shapes come from a dry run on one
-- zero sample of input_shape (without the batch dimension, e.g. {1, 28,
-- 28}); without it, the shape of the samples last given to fit, evaluate
-- or predict, or else the one the first layer tells (Linear, Embedding).
function Module:summary(input_shape, opts)
  if opts == nil and type(input_shape) == "table" and input_shape[1] == nil and next(input_shape) then
    input_shape, opts = nil, input_shape
  end
  local o = options("summary", opts, {print_fn = print, dtype = false})
  if type(o.print_fn) ~= "function" then
    fail("summary: print_fn must be a function, got " .. kind(o.print_fn))
  end
  local dtype = o.dtype or "float32"
  if input_shape ~= nil then
    if type(input_shape) ~= "table" then
      fail("summary: input_shape must be a list of sizes (without the batch), got " .. kind(input_shape))
    end
    for i, d in ipairs(input_shape) do check_int("summary", "input_shape[" .. i .. "]", d, 0) end
  else
    input_shape, dtype = infer_input(self)
    dtype = o.dtype or dtype
  end
  -- rows: the children (or the model itself when it has none)
  local rows_ = {}
  for name, child in self:named_children() do rows_[#rows_ + 1] = {name = name, m = child} end
  if #rows_ == 0 then rows_[1] = {name = "", m = self} end
  local dry_error
  if input_shape then
    for _, r in ipairs(rows_) do
      local m = r.m
      m.forward = function(mod, ...)
        local out = getmetatable(mod).__class.forward(mod, ...)
        r.out = out
        return out
      end
    end
    local was_training = self.training
    self:eval()
    local ok, err = pcall(ember.no_grad, function()
      local shape = {1, table.unpack(input_shape)}
      self(ember.zeros(shape, {dtype = dtype, device = device_of(self)}))
    end)
    self:train(was_training)
    for _, r in ipairs(rows_) do r.m.forward = nil end
    if not ok then dry_error = tostring(err) end
  end
  local total, trainable = 0, 0
  local lines = {}
  local W1, W2, W3 = 29, 26, 12
  local rule = ("_"):rep(W1 + W2 + W3 + 3)
  lines[#lines + 1] = ("Model: %s"):format(class_of(self))
  lines[#lines + 1] = rule
  lines[#lines + 1] = (" %-" .. W1 .. "s%-" .. W2 .. "s%s"):format("Layer (type)", "Output Shape", "Param #")
  lines[#lines + 1] = ("="):rep(#rule)
  for i, r in ipairs(rows_) do
    local n = 0
    for _, p in ipairs(r.m:parameters()) do n = n + count(p) end
    local label = r.name ~= "" and ("%s (%s)"):format(r.name, class_of(r.m)) or class_of(r.m)
    lines[#lines + 1] = (" %-" .. W1 .. "s%-" .. W2 .. "s%s"):format(label,
                         input_shape and shape_str(r.out) or "?", group3(n))
    if i < #rows_ then lines[#lines + 1] = "" end
  end
  for _, p in ipairs(self:parameters()) do
    total = total + count(p)
    if p.requires_grad then trainable = trainable + count(p) end
  end
  lines[#lines + 1] = ("="):rep(#rule)
  lines[#lines + 1] = "Total params: " .. group3(total)
  lines[#lines + 1] = "Trainable params: " .. group3(trainable)
  lines[#lines + 1] = "Non-trainable params: " .. group3(total - trainable)
  lines[#lines + 1] = rule
  if not input_shape then
    lines[#lines + 1] = "(output shapes need an input shape: model:summary{1, 28, 28})"
  elseif dry_error then
    lines[#lines + 1] = "(dry run failed: " .. dry_error .. ")"
  end
  local text = table.concat(lines, "\n")
  o.print_fn(text)
  return text
end

-- }======================================================================

return Module.summary
