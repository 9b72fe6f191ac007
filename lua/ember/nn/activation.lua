--- Activation layers: each calls its functional form.
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"

local M = {}

local function simple(name, fn)
  local C = Module:extend(name)
  function C:init() end
  function C:forward(x) return fn(x) end
  M[name] = C
end
simple("ReLU", F.relu)
simple("Sigmoid", F.sigmoid)
simple("Tanh", F.tanh)
simple("SiLU", F.silu)
simple("Mish", F.mish)

local LeakyReLU = Module:extend("LeakyReLU")
M.LeakyReLU = LeakyReLU
function LeakyReLU:init(negative_slope)
  if common.is_options(negative_slope) then
    negative_slope = common.options("LeakyReLU", negative_slope, {negative_slope = true}, 3)
                           .negative_slope
  end
  self.negative_slope = negative_slope == nil and 0.01
    or common.check_number("LeakyReLU", negative_slope, "negative_slope", nil, nil, 3)
end
function LeakyReLU:forward(x) return F.leaky_relu(x, self.negative_slope) end
function LeakyReLU:extra_repr() return ("negative_slope=%g"):format(self.negative_slope) end

--- GELU({approximate = "none" | "tanh"}) (or GELU("tanh")).
local GELU = Module:extend("GELU")
M.GELU = GELU
function GELU:init(opts)
  local a = opts
  if type(opts) == "table" then a = common.options("GELU", opts, {approximate = true}, 3).approximate end
  a = a or "none"
  if a ~= "none" and a ~= "tanh" then
    error(("GELU: approximate must be 'none' or 'tanh', got '%s'"):format(tostring(a)), 3)
  end
  self.approximate = a
end
function GELU:forward(x) return F.gelu(x, self.approximate) end
function GELU:extra_repr() return ("approximate='%s'"):format(self.approximate) end

local function with_dim(name, fn)
  local C = Module:extend(name)
  function C:init(dim)
    if math.type(dim) ~= "integer" or dim == 0 then
      error(("%s: dim must be a nonzero integer (dimensions count from 1), got %s")
            :format(name, tostring(dim)), 3)
    end
    self.dim = dim
  end
  function C:forward(x) return fn(x, self.dim) end
  function C:extra_repr() return "dim=" .. self.dim end
  M[name] = C
end
with_dim("Softmax", F.softmax)
with_dim("LogSoftmax", F.log_softmax)

return M
