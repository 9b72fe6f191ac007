--- ember.train.common: what the parts of ember.train share (internal):
-- the error helpers, the option checks, and the samples a call is given
-- (checked, remembered for summary, cut into batches for evaluate and
-- predict).
local ember = require "ember"
local check = require "ember.check"

local T = {}

--- Raise msg at the first caller outside ember/train/ (and ember/check).
local fail = require("ember.blame").failer("ember/train")
T.fail = fail

local function kind(v) return ember.is_tensor(v) and "tensor" or type(v) end
T.kind = kind
function T.class_of(m) return getmetatable(m).__name end

--- Check an options table against defaults; returns a filled copy.  A
-- default of false marks an option without a default (nil in the copy).
function T.options(name, opts, defaults)
  local o = check.defaults(name, opts, defaults, fail)
  for k, v in pairs(defaults) do
    if v == false and o[k] == false then o[k] = nil end
  end
  return o
end

--- An integer option >= lo (a float with an integral value counts).
function T.check_int(name, key, v, lo)
  local i = check.integer(name, key, v, lo, fail)
  return i
end

--- Raise unless model:compile ran.
function T.compiled(self, fname)
  if not self.optimizer or not self.loss_fn then
    fail(("%s: the model is not compiled (call model:compile{optimizer = ..., loss = ...} first)")
         :format(fname))
  end
end

-- {======================================================================
-- Samples
-- =======================================================================

-- The sample shape (without the batch) and dtype each model was last fed
-- by fit, evaluate or predict: summary() dry-runs on it.
local seen_input = setmetatable({}, {__mode = "k"})
T.seen_input = seen_input

function T.remember_input(self, x)
  local shape = x:shape()
  table.remove(shape, 1)
  seen_input[self] = {shape = shape, dtype = x.dtype}
end

function T.check_xy(fname, x, y, need_y)
  if not ember.is_tensor(x) then fail(("%s: x must be a tensor, got %s"):format(fname, kind(x))) end
  if x:dim() == 0 then fail(("%s: x must have a batch dimension, got a scalar"):format(fname)) end
  if need_y or y ~= nil then
    if not ember.is_tensor(y) then fail(("%s: y must be a tensor, got %s"):format(fname, kind(y))) end
    if y:dim() == 0 or y:size(1) ~= x:size(1) then
      fail(("%s: x and y must have the same number of samples, got %d and %s")
           :format(fname, x:size(1), y:dim() == 0 and "a scalar" or tostring(y:size(1))))
    end
  end
end

--- Rows [start, start + len) of t on device dev (the data may stay on
-- the CPU while the model is on the GPU: each batch is moved as it is
-- used).  evaluate and predict take their batches so, in order; fit
-- draws its own from ember.data.loader.
function T.rows(t, start, len, dev)
  local r = t:narrow(1, start, len)
  if dev and r.device ~= dev then r = r:to(dev) end
  return r
end

--- The device of a model: that of its first parameter or buffer.
function T.device_of(model)
  local p = model:parameters()[1] or model:buffers()[1]
  return p and p.device or "cpu"
end

-- }======================================================================

return T
