--- Linear, Flatten and Identity.
local ember = require "ember"
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"
local init = require "ember.nn.initializers"

local M = {}

--- y = x W^T + b.  weight [out, in] ~ kaiming_uniform_(a = sqrt(5)), that
-- is U(-1/sqrt(in), 1/sqrt(in)); bias [out] ~ the same bound, as PyTorch.
local Linear = Module:extend("Linear")
M.Linear = Linear

function Linear:init(in_features, out_features, opts)
  in_features = common.check_int("Linear", in_features, "in_features", 0, 3)
  out_features = common.check_int("Linear", out_features, "out_features", 0, 3)
  opts = common.options("Linear", opts, {bias = true, dtype = true}, 3)
  self.in_features, self.out_features = in_features, out_features
  local dt = {dtype = opts.dtype or "float32"}
  self:register_parameter("weight", ember.empty(out_features, in_features, dt))
  if common.opt(opts, "bias", true) then
    self:register_parameter("bias", ember.empty(out_features, dt))
  end
  self:reset_parameters()
end

--- PyTorch's default initialisation; also used by Conv2d.
function M.reset_fan_in(self)
  init.kaiming_uniform_(self.weight, {a = math.sqrt(5)})
  if self.bias ~= nil then
    local fan_in = init._calculate_fan_in_and_fan_out(self.weight)
    local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
    init.uniform_(self.bias, -bound, bound)
  end
end
Linear.reset_parameters = M.reset_fan_in

function Linear:forward(x)
  common.check_input("Linear", x, self.weight.dtype, "the input", 2)
  return F.linear(x, self.weight, self.bias)
end

function Linear:extra_repr()
  return ("in_features=%d, out_features=%d, bias=%s"):format(self.in_features,
         self.out_features, tostring(self.bias ~= nil))
end

--- Flatten dims start_dim..end_dim (defaults 2 and -1: keeps the batch dim).
local Flatten = Module:extend("Flatten")
M.Flatten = Flatten

function Flatten:init(start_dim, end_dim)
  self.start_dim = start_dim == nil and 2 or common.check_int("Flatten", start_dim, "start_dim",
                                                              math.mininteger, 3)
  self.end_dim = end_dim == nil and -1 or common.check_int("Flatten", end_dim, "end_dim",
                                                           math.mininteger, 3)
end

function Flatten:forward(x) return F.flatten(x, self.start_dim, self.end_dim) end

function Flatten:extra_repr()
  return ("start_dim=%d, end_dim=%d"):format(self.start_dim, self.end_dim)
end

--- Returns its input.
local Identity = Module:extend("Identity")
M.Identity = Identity
function Identity:init() end
function Identity:forward(x) return x end

return M
