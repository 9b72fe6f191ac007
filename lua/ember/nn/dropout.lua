--- Dropout: identity in eval mode; in training zeroes each element with
-- probability p (ember's generator) and scales the others by 1/(1-p).
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"

local Dropout = Module:extend("Dropout")

--- nn.Dropout([p] [, {generator = g}]) or nn.Dropout{p = p, generator = g}
function Dropout:init(p, opts)
  if common.is_options(p) and opts == nil then p, opts = nil, p end
  opts = common.options("Dropout", opts, {p = true, generator = true}, 3)
  if p == nil then p = opts.p end
  self.p = p == nil and 0.5 or common.check_number("Dropout", p, "p", 0, 1, 3)
  self.generator = opts.generator
end

function Dropout:forward(x)
  return F.dropout(x, self.p, self.training, {generator = self.generator})
end

function Dropout:extra_repr() return ("p=%g"):format(self.p) end

return {Dropout = Dropout}
