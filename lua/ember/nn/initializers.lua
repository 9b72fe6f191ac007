--- ember.nn.init: parameter initialisers, as torch.nn.init.
-- Each changes its tensor in place under no_grad (so it works on
-- parameters that require grad) and returns it.  Random ones draw from
-- ember's generator (ember.rand_like / randn_like), so ember.manual_seed
-- makes a model's initial weights reproducible.
local ember = require "ember"
local common = require "ember.nn.common"

local init = {}

local function check(fname, t)
  return common.check_float("init." .. fname, t, "the tensor", 3)
end

--- Fill t (in place, no_grad) with the tensor src (same shape).
local function set(t, src)
  common.no_grad(function() t:copy_(src) end)
  return t
end

--- fan_in and fan_out as PyTorch's _calculate_fan_in_and_fan_out: dim 2
-- is the inputs, dim 1 the outputs, the rest the receptive field.
function init._calculate_fan_in_and_fan_out(t, fname)
  if t:dim() < 2 then
    error(("init.%s: fan in and fan out can not be computed for a tensor with fewer " ..
           "than 2 dimensions (shape %s)"):format(fname or "fan", common.shape_str(t)), 3)
  end
  local receptive = 1
  for d = 3, t:dim() do receptive = receptive * t:size(d) end
  return t:size(2) * receptive, t:size(1) * receptive
end

local GAINS = {linear = 1, conv1d = 1, conv2d = 1, conv3d = 1, conv_transpose1d = 1,
               conv_transpose2d = 1, conv_transpose3d = 1, sigmoid = 1,
               tanh = 5 / 3, relu = math.sqrt(2), selu = 3 / 4}

--- The recommended gain for a nonlinearity (PyTorch's table); param is
-- leaky_relu's negative slope (default 0.01).
function init.calculate_gain(nonlinearity, param)
  if GAINS[nonlinearity] then return GAINS[nonlinearity] end
  if nonlinearity == "leaky_relu" then
    local slope = param == nil and 0.01 or param
    if type(slope) ~= "number" then
      error("init.calculate_gain: negative_slope must be a number, got " .. type(slope), 2)
    end
    return math.sqrt(2 / (1 + slope * slope))
  end
  error(("init.calculate_gain: unsupported nonlinearity '%s'"):format(tostring(nonlinearity)), 2)
end

function init.uniform_(t, a, b)
  check("uniform_", t)
  a, b = a or 0, b or 1
  common.check_number("init.uniform_", a, "a", nil, nil, 2)
  common.check_number("init.uniform_", b, "b", a, nil, 2)
  return set(t, ember.rand_like(t) * (b - a) + a)
end

function init.normal_(t, mean, std)
  check("normal_", t)
  mean, std = mean or 0, std or 1
  common.check_number("init.normal_", mean, "mean", nil, nil, 2)
  common.check_number("init.normal_", std, "std", 0, nil, 2)
  return set(t, ember.randn_like(t) * std + mean)
end

function init.constant_(t, value)
  check("constant_", t)
  common.check_number("init.constant_", value, "value", nil, nil, 2)
  common.no_grad(function() t:fill_(value) end)
  return t
end
function init.zeros_(t) check("zeros_", t); return init.constant_(t, 0) end
function init.ones_(t) check("ones_", t); return init.constant_(t, 1) end

local KAIMING = {a = true, mode = true, nonlinearity = true}

--- The std of kaiming_*: gain / sqrt(fan) for the chosen mode.
local function kaiming_std(fname, t, opts)
  opts = common.options("init." .. fname, opts, KAIMING, 3)
  local mode = opts.mode or "fan_in"
  if mode ~= "fan_in" and mode ~= "fan_out" then
    error(("init.%s: mode must be 'fan_in' or 'fan_out', got '%s'"):format(fname, tostring(mode)), 3)
  end
  local fan_in, fan_out = init._calculate_fan_in_and_fan_out(t, fname)
  local fan = mode == "fan_in" and fan_in or fan_out
  local gain = init.calculate_gain(opts.nonlinearity or "leaky_relu", opts.a or 0)
  if fan == 0 then return 0 end
  return gain / math.sqrt(fan)
end

--- U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al., 2015).
function init.kaiming_uniform_(t, opts)
  check("kaiming_uniform_", t)
  local bound = math.sqrt(3) * kaiming_std("kaiming_uniform_", t, opts)
  return set(t, ember.rand_like(t) * (2 * bound) - bound)
end

--- N(0, std^2) with std = gain / sqrt(fan).
function init.kaiming_normal_(t, opts)
  check("kaiming_normal_", t)
  return set(t, ember.randn_like(t) * kaiming_std("kaiming_normal_", t, opts))
end

local function xavier_std(fname, t, opts)
  opts = common.options("init." .. fname, opts, {gain = true}, 3)
  local gain = opts.gain or 1
  common.check_number("init." .. fname, gain, "gain", nil, nil, 3)
  local fan_in, fan_out = init._calculate_fan_in_and_fan_out(t, fname)
  return gain * math.sqrt(2 / (fan_in + fan_out))
end

--- U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot, 2010).
function init.xavier_uniform_(t, opts)
  check("xavier_uniform_", t)
  local a = math.sqrt(3) * xavier_std("xavier_uniform_", t, opts)
  return set(t, ember.rand_like(t) * (2 * a) - a)
end

function init.xavier_normal_(t, opts)
  check("xavier_normal_", t)
  return set(t, ember.randn_like(t) * xavier_std("xavier_normal_", t, opts))
end

return init
