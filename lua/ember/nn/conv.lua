--- Conv2d: 2-d convolution over [N,C,H,W] inputs.
local ember = require "ember"
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"
local reset_fan_in = require("ember.nn.linear").reset_fan_in

local Conv2d = Module:extend("Conv2d")

local OPTS = {stride = true, padding = true, dilation = true, groups = true, bias = true,
              dtype = true}
local POSITIONAL = {"stride", "padding", "dilation", "groups", "bias"}

--- Conv2d(in, out, kernel [, stride [, padding [, dilation [, groups [, bias]]]]] [, opts]):
-- the options come positionally (as PyTorch's Conv2d(1, 32, 3, 1, 1)) or
-- in a trailing table.  weight [out, in/groups, kh, kw] and bias [out] are
-- initialised as Linear's, with fan_in = in/groups * kh * kw.
function Conv2d:init(in_channels, out_channels, kernel_size, ...)
  local n, o = select("#", ...), {}
  local last = n > 0 and select(n, ...) or nil
  if common.is_options(last) then
    o = common.options("Conv2d", last, OPTS, 3)
    n = n - 1
  end
  for i = 1, n do
    local v = select(i, ...)
    if v ~= nil then
      if not POSITIONAL[i] then error("Conv2d: too many arguments", 3) end
      o[POSITIONAL[i]] = v
    end
  end
  self.in_channels = common.check_int("Conv2d", in_channels, "in_channels", 1, 3)
  self.out_channels = common.check_int("Conv2d", out_channels, "out_channels", 1, 3)
  self.kernel_size = common.pair("Conv2d", kernel_size, "kernel_size", 1, 3)
  self.stride = common.pair("Conv2d", o.stride or 1, "stride", 1, 3)
  if type(o.padding) == "string" then   -- "same" or "valid", as PyTorch
    if o.padding ~= "same" and o.padding ~= "valid" then
      error(("Conv2d: padding must be an integer, a pair, 'same' or 'valid', got '%s'")
            :format(o.padding), 3)
    end
    self.padding = o.padding
  else
    self.padding = common.pair("Conv2d", o.padding or 0, "padding", 0, 3)
  end
  self.dilation = common.pair("Conv2d", o.dilation or 1, "dilation", 1, 3)
  if self.padding == "same" and (self.stride[1] ~= 1 or self.stride[2] ~= 1) then
    error("Conv2d: padding='same' is not supported for strided convolutions", 3)
  end
  self.groups = common.check_int("Conv2d", o.groups or 1, "groups", 1, 3)
  if self.in_channels % self.groups ~= 0 or self.out_channels % self.groups ~= 0 then
    error(("Conv2d: in_channels (%d) and out_channels (%d) must be divisible by groups (%d)")
          :format(self.in_channels, self.out_channels, self.groups), 3)
  end
  local dt = {dtype = o.dtype or "float32"}
  self:register_parameter("weight", ember.empty(self.out_channels, self.in_channels // self.groups,
                                                self.kernel_size[1], self.kernel_size[2], dt))
  if common.opt(o, "bias", true) then
    self:register_parameter("bias", ember.empty(self.out_channels, dt))
  end
  self:reset_parameters()
end

Conv2d.reset_parameters = reset_fan_in

function Conv2d:forward(x)
  common.check_input("Conv2d", x, self.weight.dtype, "the input", 2)
  return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
end

--- relu(self:forward(x)), fused (Sequential calls it for a Conv2d
-- followed by a ReLU).  When the fused op fails, the unfused forward runs
-- to fail in its turn: the message then names conv2d, which the user
-- wrote, not the internal conv2d_relu (a pcall per conv layer, small
-- beside the convolution).
function Conv2d:_forward_relu(x)
  common.check_input("Conv2d", x, self.weight.dtype, "the input", 2)
  local ok, y = pcall(F._conv2d_relu, x, self.weight, self.bias, self.stride, self.padding,
                      self.dilation, self.groups)
  if ok then return y end
  self:forward(x)
  error(y, 0)
end

local function tuple(p) return ("(%d, %d)"):format(p[1], p[2]) end

function Conv2d:extra_repr()
  local s = ("%d, %d, kernel_size=%s, stride=%s"):format(self.in_channels, self.out_channels,
            tuple(self.kernel_size), tuple(self.stride))
  if type(self.padding) == "string" then
    s = s .. ", padding=" .. self.padding
  elseif self.padding[1] ~= 0 or self.padding[2] ~= 0 then
    s = s .. ", padding=" .. tuple(self.padding)
  end
  if self.dilation[1] ~= 1 or self.dilation[2] ~= 1 then
    s = s .. ", dilation=" .. tuple(self.dilation)
  end
  if self.groups ~= 1 then s = s .. ", groups=" .. self.groups end
  if self.bias == nil then s = s .. ", bias=false" end
  return s
end

return {Conv2d = Conv2d}
