--- MaxPool2d and AvgPool2d.
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"

local M = {}

--- Read kernel, stride (default: the kernel), padding and a trailing
-- options table, positionally or by name.
local function read_args(self, fname, known, kernel_size, stride, padding, opts)
  if common.is_options(stride) then stride, padding, opts = nil, nil, stride
  elseif common.is_options(padding) then padding, opts = nil, padding end
  opts = common.options(fname, opts, known, 4)
  stride = stride or opts.stride
  padding = padding or opts.padding
  self.kernel_size = common.pair(fname, kernel_size, "kernel_size", 1, 4)
  self.stride = stride and common.pair(fname, stride, "stride", 1, 4) or self.kernel_size
  self.padding = common.pair(fname, padding or 0, "padding", 0, 4)
  for i = 1, 2 do
    if self.padding[i] * 2 > self.kernel_size[i] then
      error(("%s: padding should be at most half of the kernel size, got padding %d for " ..
             "kernel %d"):format(fname, self.padding[i], self.kernel_size[i]), 4)
    end
  end
  self.ceil_mode = opts.ceil_mode == true
  return opts
end

local function num(p) return p[1] == p[2] and tostring(p[1]) or ("(%d, %d)"):format(p[1], p[2]) end

--- MaxPool2d(kernel [, stride [, padding]] [, {dilation, ceil_mode}]).
local MaxPool2d = Module:extend("MaxPool2d")
M.MaxPool2d = MaxPool2d

function MaxPool2d:init(kernel_size, stride, padding, opts)
  local o = read_args(self, "MaxPool2d", {stride = true, padding = true, dilation = true,
                      ceil_mode = true}, kernel_size, stride, padding, opts)
  self.dilation = common.pair("MaxPool2d", o.dilation or 1, "dilation", 1, 3)
end

function MaxPool2d:forward(x)
  return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                      self.ceil_mode, false)
end

function MaxPool2d:extra_repr()
  return ("kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s"):format(
    num(self.kernel_size), num(self.stride), num(self.padding), num(self.dilation),
    tostring(self.ceil_mode))
end

--- AvgPool2d(kernel [, stride [, padding]] [, {ceil_mode, count_include_pad}]).
local AvgPool2d = Module:extend("AvgPool2d")
M.AvgPool2d = AvgPool2d

function AvgPool2d:init(kernel_size, stride, padding, opts)
  local o = read_args(self, "AvgPool2d", {stride = true, padding = true, ceil_mode = true,
                      count_include_pad = true}, kernel_size, stride, padding, opts)
  self.count_include_pad = o.count_include_pad ~= false
end

function AvgPool2d:forward(x)
  return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                      self.count_include_pad)
end

function AvgPool2d:extra_repr()
  return ("kernel_size=%s, stride=%s, padding=%s"):format(num(self.kernel_size),
         num(self.stride), num(self.padding))
end

return M
