--- nn.Checkpoint(module): module's forward through ember.checkpoint, so
-- that its activations are recomputed in backward instead of kept.
--
-- The wrapper shares the wrapped module's four stores (parameters,
-- buffers, children, fields) instead of holding it as a child: parameters(),
-- state_dict() keys, train()/eval() and field reads are exactly the wrapped
-- module's, so a model checkpoints a block without renaming its weights
-- (nanoGPT's "transformer.h.1.attn.c_attn.weight" stays that).  The
-- wrapped module itself is ckpt:wrapped().
local ember = require "ember"
local Module = require "ember.nn.module"

local Checkpoint = Module:extend("Checkpoint")

-- wrapper -> wrapped module (weak: it goes with the wrapper)
local wrapped_of = setmetatable({}, {__mode = "k"})

--- nn.Checkpoint(module [, {preserve_rng_state = true}])
function Checkpoint:init(m, opts)
  if getmetatable(m) == nil or not getmetatable(m).__ember_module then
    error(("Checkpoint: expected a module, got %s"):format(type(m)), 3)
  end
  opts = require("ember.check").options("Checkpoint", opts, {preserve_rng_state = true}, 4)
  local preserve = opts.preserve_rng_state
  if preserve ~= nil and type(preserve) ~= "boolean" then
    error(("Checkpoint: preserve_rng_state must be a boolean, got %s"):format(type(preserve)), 3)
  end
  for _, store in ipairs{"_parameters", "_buffers", "_modules", "_fields"} do
    rawset(self, store, rawget(m, store))
  end
  wrapped_of[self] = {module = m, call = {function(...) return m:forward(...) end,
                                          preserve_rng_state = preserve}}
end

--- The wrapped module.
function Checkpoint:wrapped() return wrapped_of[self].module end

function Checkpoint:forward(...)
  return ember.checkpoint(wrapped_of[self].call, ...)
end

function Checkpoint:_repr()
  return "Checkpoint(" .. tostring(wrapped_of[self].module) .. ")"
end

return {Checkpoint = Checkpoint}
