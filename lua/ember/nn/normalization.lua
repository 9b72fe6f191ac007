--- BatchNorm1d, BatchNorm2d, LayerNorm and RMSNorm.
local ember = require "ember"
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"
local init = require "ember.nn.initializers"

local M = {}

local BN_OPTS = {eps = true, momentum = true, affine = true, track_running_stats = true,
                 dtype = true}

--- The shared base of BatchNorm1d/2d.  Running statistics are buffers
-- (saved in state_dict, not trained); num_batches_tracked counts the
-- training batches, and gives the averaging factor when momentum is false
-- (a cumulative average, PyTorch's momentum=None).
local BatchNorm = Module:extend("_BatchNorm")
M._BatchNorm = BatchNorm

function BatchNorm:init(num_features, opts)
  local name = self.__name
  self.num_features = common.check_int(name, num_features, "num_features", 1, 3)
  opts = common.options(name, opts, BN_OPTS, 3)
  self.eps = common.check_number(name, common.opt(opts, "eps", 1e-5), "eps", 0, nil, 3)
  local mom = common.opt(opts, "momentum", 0.1)
  self.momentum = mom and common.check_number(name, mom, "momentum", 0, 1, 3)
  self.affine = common.opt(opts, "affine", true)
  self.track_running_stats = common.opt(opts, "track_running_stats", true)
  local dt = {dtype = opts.dtype or "float32"}
  if self.affine then
    self:register_parameter("weight", init.ones_(ember.empty(num_features, dt)))
    self:register_parameter("bias", init.zeros_(ember.empty(num_features, dt)))
  end
  if self.track_running_stats then
    self:register_buffer("running_mean", ember.zeros(num_features, dt))
    self:register_buffer("running_var", ember.ones(num_features, dt))
    self:register_buffer("num_batches_tracked", ember.zeros({}, {dtype = "int64"}))
  end
end

function BatchNorm:forward(x)
  common.check_float(self.__name, x, "the input", 2)
  self:_check_input_dim(x)
  if x:size(2) ~= self.num_features then
    error(("%s: expected %d channels in dimension 2, got input shape %s")
          :format(self.__name, self.num_features, common.shape_str(x)), 2)
  end
  local factor = self.momentum or 0
  if self.training and self.track_running_stats then
    common.no_grad(function() self.num_batches_tracked:add_(1) end)
    if not self.momentum then factor = 1 / self.num_batches_tracked:item() end
  end
  local use_batch = self.training or not self.track_running_stats
  return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                      use_batch, factor, self.eps)
end

function BatchNorm:extra_repr()
  return ("%d, eps=%g, momentum=%s, affine=%s, track_running_stats=%s"):format(
    self.num_features, self.eps, self.momentum and ("%g"):format(self.momentum) or "nil",
    tostring(self.affine), tostring(self.track_running_stats))
end

--- Over [N,C] or [N,C,L].
local BatchNorm1d = BatchNorm:extend("BatchNorm1d")
M.BatchNorm1d = BatchNorm1d
function BatchNorm1d:_check_input_dim(x)
  if x:dim() ~= 2 and x:dim() ~= 3 then
    error(("BatchNorm1d: expected a 2-d or 3-d input [N,C] or [N,C,L], got shape %s")
          :format(common.shape_str(x)), 3)
  end
end

--- Over [N,C,H,W].
local BatchNorm2d = BatchNorm:extend("BatchNorm2d")
M.BatchNorm2d = BatchNorm2d
function BatchNorm2d:_check_input_dim(x)
  if x:dim() ~= 4 then
    error(("BatchNorm2d: expected a 4-d input [N,C,H,W], got shape %s")
          :format(common.shape_str(x)), 3)
  end
end

--- LayerNorm(normalized_shape, {eps = 1e-5, elementwise_affine = true}):
-- normalises over the last dims (an integer or a table of sizes).
local LayerNorm = Module:extend("LayerNorm")
M.LayerNorm = LayerNorm

--- normalized_shape (an integer or a non-empty list of sizes) as a list.
local function shape_arg(name, normalized_shape)
  if math.type(normalized_shape) == "integer" then normalized_shape = {normalized_shape} end
  if type(normalized_shape) ~= "table" or #normalized_shape == 0 then
    error(name .. ": normalized_shape must be an integer or a non-empty table of integers", 4)
  end
  local shape = {}
  for i, s in ipairs(normalized_shape) do
    shape[i] = common.check_int(name, s, "normalized_shape", 1, 4)
  end
  return shape
end

--- "(4,)" or "(3, 4)", as PyTorch prints a shape tuple.
local function shape_repr(s)
  return #s == 1 and ("(%d,)"):format(s[1]) or "(" .. table.concat(s, ", ") .. ")"
end

function LayerNorm:init(normalized_shape, opts)
  local shape = shape_arg("LayerNorm", normalized_shape)
  opts = common.options("LayerNorm", opts, {eps = true, elementwise_affine = true, bias = true,
                        dtype = true}, 3)
  self.normalized_shape = shape
  self.eps = common.check_number("LayerNorm", common.opt(opts, "eps", 1e-5), "eps", 0, nil, 3)
  self.elementwise_affine = common.opt(opts, "elementwise_affine", true)
  local dt = {dtype = opts.dtype or "float32"}
  if self.elementwise_affine then
    self:register_parameter("weight", ember.ones(shape, dt))
    if common.opt(opts, "bias", true) then
      self:register_parameter("bias", ember.zeros(shape, dt))
    end
  end
end

function LayerNorm:forward(x)
  return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
end

function LayerNorm:extra_repr()
  return ("%s, eps=%g, elementwise_affine=%s"):format(shape_repr(self.normalized_shape),
         self.eps, tostring(self.elementwise_affine))
end

--- RMSNorm(normalized_shape, {eps = nil, elementwise_affine = true}):
-- PyTorch 2.4's RMSNorm.  eps nil means the machine epsilon of the
-- input's dtype (torch.finfo(x.dtype).eps); a weight of ones, no bias.
local RMSNorm = Module:extend("RMSNorm")
M.RMSNorm = RMSNorm

function RMSNorm:init(normalized_shape, opts)
  local shape = shape_arg("RMSNorm", normalized_shape)
  opts = common.options("RMSNorm", opts, {eps = true, elementwise_affine = true, dtype = true}, 3)
  self.normalized_shape = shape
  self.eps = opts.eps and common.check_number("RMSNorm", opts.eps, "eps", 0, nil, 3)
  self.elementwise_affine = common.opt(opts, "elementwise_affine", true)
  if self.elementwise_affine then
    self:register_parameter("weight", ember.ones(shape, {dtype = opts.dtype or "float32"}))
  end
end

function RMSNorm:forward(x)
  return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)
end

function RMSNorm:extra_repr()
  return ("%s, eps=%s, elementwise_affine=%s"):format(shape_repr(self.normalized_shape),
         self.eps and ("%g"):format(self.eps) or "nil", tostring(self.elementwise_affine))
end

return M
