--- ember.nn.common: small helpers shared by the nn files (internal).
local ember = require "ember"
local check = require "ember.check"

local M = {}

--- Run fn(...) with gradient recording off.
M.no_grad = ember.no_grad

--- Mark t as a parameter (a leaf that requires grad); returns t.
function M.param(t) return t:requires_grad_(true) end

--- Is t a parameter candidate: a leaf that requires grad?
function M.requires_grad(t) return t.requires_grad and t.is_leaf end

--- t detached from the graph.
function M.detach(t) return t:detach() end

--- "[2,3]" for error messages.
function M.shape_str(t)
  return "[" .. table.concat(t:shape(), ",") .. "]"
end

--- Check that v is a tensor; `what` names the argument in the message.
function M.check_tensor(fname, v, what, level)
  if not ember.is_tensor(v) then
    error(("%s: expected a tensor for %s, got %s"):format(fname, what, type(v)),
          (level or 2) + 1)
  end
  return v
end

--- Check that v is a tensor of a float dtype.
function M.check_float(fname, v, what, level)
  M.check_tensor(fname, v, what, (level or 2) + 1)
  if not v:is_floating_point() then
    error(("%s: expected a floating tensor for %s, got %s"):format(fname, what, v.dtype),
          (level or 2) + 1)
  end
  return v
end

-- The method that converts to a float dtype (tensors and modules alike).
local TO_DTYPE = {float32 = ":float()", float64 = ":double()", float16 = ":half()"}
local function to_method(dt) return TO_DTYPE[dt] or (':to("%s")'):format(dt) end

--- Check a layer's input x ("the input", "the query", ...) against its
-- weights' dtype.  Integer inputs and a float64 input to a float32 model
-- are the common mistakes (image bytes, numbers read as doubles), so the
-- message says how to convert: PyTorch also refuses a dtype mismatch, and
-- promoting silently would run the whole model in the wrong precision.
--   "Linear: got uint8 input; convert with :float() / 255 (for 0..255 image bytes) or :float()"
--   "Linear: expected float32 input like the weight, got float64; convert it with
--    :float() or the model with :double()"
function M.check_input(fname, x, dtype, what, level)
  level = (level or 2) + 1
  M.check_tensor(fname, x, what, level)
  what = what:gsub("^the ", "")
  if not x:is_floating_point() then
    local conv = to_method(dtype)
    local hint = x.dtype == "uint8"
                 and ("convert with %s / 255 (for 0..255 image bytes) or %s"):format(conv, conv)
                 or "convert with " .. conv
    error(("%s: got %s %s but the weights are %s; %s"):format(fname, x.dtype, what, dtype, hint),
          level)
  end
  -- under autocast a layer takes the half-precision output of the one before
  if x.dtype ~= dtype and not ember.is_autocast_enabled() then
    error(("%s: expected %s %s like the weights, got %s; convert it with %s or the model with %s")
          :format(fname, dtype, what, x.dtype, to_method(dtype), to_method(x.dtype)), level)
  end
  return x
end

--- Check an integer argument >= min (min defaults to 1).
function M.check_int(fname, v, what, min, level)
  min = min or 1
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)
                                       and v > -2^53 and v < 2^53) then
    error(("%s: %s must be an integer, got %s"):format(fname, what,
          type(v) == "number" and tostring(v) or type(v)), (level or 2) + 1)
  end
  v = math.tointeger(v)
  if v < min then
    error(("%s: %s must be >= %d, got %d"):format(fname, what, min, v), (level or 2) + 1)
  end
  return v
end

--- Check a number argument in [lo, hi].
function M.check_number(fname, v, what, lo, hi, level)
  if type(v) ~= "number" then
    error(("%s: %s must be a number, got %s"):format(fname, what, type(v)), (level or 2) + 1)
  end
  if (lo and v < lo) or (hi and v > hi) or v ~= v then
    error(("%s: %s must be in [%s, %s], got %s"):format(fname, what, tostring(lo or "-inf"),
          tostring(hi or "inf"), tostring(v)), (level or 2) + 1)
  end
  return v
end

--- An int or a pair {h, w} of ints (each >= min) as a pair table.
function M.pair(fname, v, what, min, level)
  level = (level or 2) + 1
  if type(v) == "table" then
    if #v ~= 2 then
      error(("%s: %s must be an integer or a pair {h, w}, got a table of %d"):format(
            fname, what, #v), level)
    end
    return {M.check_int(fname, v[1], what, min, level), M.check_int(fname, v[2], what, min, level)}
  end
  local n = M.check_int(fname, v, what, min, level)
  return {n, n}
end

--- True when v is an options table (named fields, no array part).
function M.is_options(v)
  return type(v) == "table" and not ember.is_tensor(v) and #v == 0
     and getmetatable(v) == nil
end

--- Check that an options table has only known fields; returns it ({} for nil).
function M.options(fname, opts, known, level)
  opts = check.options(fname, opts, known, (level or 2) + 1)
  return opts   -- (not a tail call: the level counts this frame)
end

--- Check that every element of the int64/int32 index t is in lo..hi (or
-- equals skip, when given); else raise prefix .. value .. suffix for the
-- first bad value, blaming the caller at `level`.  Runs where t lives
-- (t:_check_index, ember_check_index): on a GPU nothing waits, and a bad
-- value is reported by the next sync (loss:item(), a copy to the host).
function M.check_index(t, lo, hi, skip, prefix, suffix, level)
  local ok, err = pcall(t._check_index, t, lo, hi, skip, prefix, suffix)
  if not ok then error(err, (level or 2) + 1) end
end

--- Pick an option's value with a default (false counts as a value).
function M.opt(opts, key, default)
  local v = opts[key]
  if v == nil then return default end
  return v
end

--- A reduction name: "mean", "sum" or "none".
function M.reduction(fname, r, level)
  r = r or "mean"
  if r ~= "mean" and r ~= "sum" and r ~= "none" then
    error(("%s: reduction must be 'none', 'mean' or 'sum', got '%s'"):format(fname, tostring(r)),
          (level or 2) + 1)
  end
  return r
end

--- Apply a reduction to an elementwise loss tensor.
function M.reduce(loss, reduction)
  if reduction == "mean" then return loss:mean() end
  if reduction == "sum" then return loss:sum() end
  return loss
end

return M
