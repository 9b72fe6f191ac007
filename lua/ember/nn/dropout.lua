--- Dropout: identity in eval mode; in training zeroes each element with
-- probability p (ember's generator) and scales the others by 1/(1-p).
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"

local Dropout = Module:extend("Dropout")

function Dropout:init(p)
  if common.is_options(p) then p = common.options("Dropout", p, {p = true}, 3).p end
  self.p = p == nil and 0.5 or common.check_number("Dropout", p, "p", 0, 1, 3)
end

function Dropout:forward(x) return F.dropout(x, self.p, self.training) end

function Dropout:extra_repr() return ("p=%g"):format(self.p) end

return {Dropout = Dropout}
