--- ember.warnings: one-time warnings about likely mistakes, printed to
-- stderr (never errors: the call goes on as asked).
--
-- The one warning so far: argmax, softmax or log_softmax over dim 1 of a
-- model's output, which is the batch, when the caller most likely meant
-- the classes.  A model's output is a tensor a Sequential, a module class
-- defined outside the library, or predict returned: they are marked in a
-- weak-keyed set (a marked tensor is forgotten with it), so marking costs
-- one table store per forward and tensors that are no model's output
-- never warn.
--
--   ember.warnings.enabled = false      -- silence them
--   ember.warnings.sink = function(msg) ... end   -- where they go
--
-- require "ember.warnings" gives the library's side (mark, warn, reset);
-- ember.warnings is the user's (enabled, sink).
local ember = require "ember"
local blame = require "ember.blame"

local W = {enabled = true}
local I = {}

--- Where warnings go: stderr by default.
function W.sink(msg)
  io.stderr:write(msg, "\n")
  io.stderr:flush()
end

local seen = {}

--- Send msg (its text: "ember: warning: " is put before it) to the sink
-- unless warnings are off or one of this kind was sent already.
function I.warn(kind, msg)
  if not W.enabled or seen[kind] then return end
  seen[kind] = true
  W.sink("ember: warning: " .. msg)
end

--- Forget which kinds were sent (for specs).
function I.reset() seen = {} end

-- {======================================================================
-- Model outputs
-- =======================================================================

local outputs = setmetatable({}, {__mode = "k"})

--- Mark the first of the values as a model's output when it is a tensor;
-- returns them all.
function I.mark(y, ...)
  if ember.is_tensor(y) then outputs[y] = true end
  return y, ...
end

local function shape_text(t)
  local s = {}
  for i = 1, t:dim() do s[i] = tostring(t:size(i)) end
  return "{" .. table.concat(s, ", ") .. "}"
end

-- The op is called from a function made for it by load, whose local
-- bears the op's name: a C function names itself in "bad argument" errors
-- by the caller's variable ("fn" otherwise), and places them at its Lua
-- caller, a line of this file (the chunk is named after it), which
-- blame.reraise then replaces with the user's line.  A pcall a call.
local CALLER = "local %s = ...\nreturn function(t, dim, ...) return %s(t, dim, ...) end"
local SOURCE = debug.getinfo(1, "S").source

local function reraised(ok, ...)
  if not ok then blame.reraise((...)) end
  return ...
end

--- Wrap the function and method fname so that reducing dim 1 of a
-- model's output warns once; the op itself runs unchanged, its errors
-- naming the op and the caller's line.
local function guard(fname)
  local function check(t, dim)
    local n = t:dim()
    if n >= 2 and (dim == 1 or dim == -n) then
      I.warn("batch_dim", ("%s(%d) reduces over the batch (dim 1) of a model's output of " ..
                            "shape %s; the classes are dim %s (%s(2) or %s(-1))")
                           :format(fname, dim, shape_text(t), n == 2 and "2" or "2 or the last",
                                   fname, fname))
    end
  end
  local function wrap(op)
    local call = assert(load(CALLER:format(fname, fname), SOURCE))(op)
    return function(t, dim, ...)
      if outputs[t] and math.type(dim) == "integer" then check(t, dim) end
      return reraised(pcall(call, t, dim, ...))
    end
  end
  ember[fname] = wrap(ember[fname])
  ember.Tensor[fname] = wrap(ember.Tensor[fname])
end

guard("argmax")
guard("softmax")
guard("log_softmax")

-- }======================================================================

ember.warnings = W
return I
