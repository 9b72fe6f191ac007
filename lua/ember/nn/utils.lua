--- ember.nn.utils: gradient clipping; parameter groups for weight decay;
-- state dict names between PyTorch and Ember.
local ember = require "ember"
local common = require "ember.nn.common"
local check = require "ember.check"

local utils = {}

--- The tensors of params: a list of tensors, or one tensor.
local function param_list(fname, params)
  if ember.is_tensor(params) then return {params} end
  if type(params) ~= "table" then
    error(("%s: expected a tensor or a list of tensors, got %s"):format(fname, type(params)), 3)
  end
  for i, p in ipairs(params) do
    if not ember.is_tensor(p) then
      error(("%s: parameter %d is a %s, expected a tensor"):format(fname, i, type(p)), 3)
    end
  end
  return params
end

--- Scale the gradients of params in place so that their joint norm is at
-- most max_norm; returns the total norm (a 0-d tensor) before clipping.
-- norm_type is a number >= 1 or math.huge (the max norm).  As PyTorch:
-- clip_coef = max_norm / (total + 1e-6), clamped to 1, a 0-d tensor on the
-- grads' device multiplied into each grad, so nothing waits for a GPU.
function utils.clip_grad_norm_(params, max_norm, norm_type)
  params = param_list("clip_grad_norm_", params)
  common.check_number("clip_grad_norm_", max_norm, "max_norm", 0, nil, 2)
  norm_type = norm_type or 2
  common.check_number("clip_grad_norm_", norm_type, "norm_type", 1, nil, 2)
  local grads = {}
  for _, p in ipairs(params) do
    if p.grad ~= nil then grads[#grads + 1] = p.grad end
  end
  if #grads == 0 then return ember.zeros({}) end
  return common.no_grad(function()
    local total
    if norm_type == math.huge then
      local ms = {}
      for i, g in ipairs(grads) do ms[i] = g:abs():max():to("float64"):view(1) end
      total = ember.cat(ms):max()
    else
      local s = {}
      for i, g in ipairs(grads) do s[i] = (g:abs():to("float64") ^ norm_type):sum():view(1) end
      total = ember.cat(s):sum() ^ (1 / norm_type)
    end
    -- the coefficient stays a tensor on the grads' device: reading the
    -- norm here would make every step wait for the GPU
    local coef = (max_norm / (total + 1e-6)):clamp(nil, 1)
    for _, g in ipairs(grads) do g:mul_(coef:to(g.dtype)) end
    return total:to(grads[1].dtype)
  end)
end

--- Clamp every gradient of params to [-clip_value, clip_value] in place.
function utils.clip_grad_value_(params, clip_value)
  params = param_list("clip_grad_value_", params)
  common.check_number("clip_grad_value_", clip_value, "clip_value", 0, nil, 2)
  common.no_grad(function()
    for _, p in ipairs(params) do
      if p.grad ~= nil then p.grad:clamp_(-clip_value, clip_value) end
    end
  end)
end

-- {======================================================================
-- Parameter groups for weight decay
-- =======================================================================

--- weight_decay_groups(model_or_params, weight_decay) -> groups for an
-- optimizer: {{params = decayed, weight_decay = weight_decay},
-- {params = the rest, weight_decay = 0}}.  nanoGPT's rule, spelled here
-- once: tensors of two or more dimensions (the weights of matmuls and
-- embeddings, convolution kernels) decay; biases, norm weights and every
-- other 1-D (or 0-D) tensor do not.  A module gives its parameters that
-- require a gradient; an empty group is left out (optimizers refuse one),
-- so there may be one group only.  Also returns the two lists (decayed,
-- not decayed), for counting.
function utils.weight_decay_groups(params, weight_decay)
  local fname = "weight_decay_groups"
  if type(params) == "table" and type(params.parameters) == "function" and
     not ember.is_tensor(params) then
    local list = {}
    for _, p in ipairs(params:parameters()) do
      if p.requires_grad then list[#list + 1] = p end
    end
    params = list
  else
    params = param_list(fname, params)
  end
  common.check_number(fname, weight_decay, "weight_decay", 0, nil, 2)
  local decay, no_decay = {}, {}
  for _, p in ipairs(params) do
    local list = p:dim() >= 2 and decay or no_decay
    list[#list + 1] = p
  end
  local groups = {}
  if #decay > 0 then groups[#groups + 1] = {params = decay, weight_decay = weight_decay} end
  if #no_decay > 0 then groups[#groups + 1] = {params = no_decay, weight_decay = 0} end
  if #groups == 0 then error(fname .. ": no parameters", 2) end
  return groups, decay, no_decay
end

-- }======================================================================

-- {======================================================================
-- State dict names between PyTorch and Ember
-- =======================================================================

--- A copy of sd (the same tensors) with every index in its names moved by
-- delta: a name component that is a plain decimal number ("0", "12"; not
-- "01", which is a name) is a Sequential / ModuleList position, 0-based
-- in PyTorch and 1-based in Ember.  Only such components change, so the
-- renaming is one-to-one and a round trip gives the names back.
local function shift_indices(fname, sd, delta)
  if type(sd) ~= "table" or ember.is_tensor(sd) then
    error(("%s: expected a table of tensors, got %s"):format(fname, check.type_name(sd)), 3)
  end
  local out = {}
  for k, v in pairs(sd) do
    if type(k) ~= "string" then
      error(("%s: keys must be strings, got %s (%s)"):format(fname, type(k), tostring(k)), 3)
    end
    local parts = {}
    for part in (k .. "."):gmatch("([^.]*)%.") do
      if part:match("^0$") or part:match("^[1-9]%d*$") then
        local i = math.tointeger(tonumber(part)) + delta
        if i < 0 then
          error(("%s: '%s' has index %s, and Ember's indices start at 1"):format(fname, k, part), 3)
        end
        part = tostring(i)
      end
      parts[#parts + 1] = part
    end
    out[table.concat(parts, ".")] = v
  end
  return out
end

--- PyTorch's state dict names in Ember's: Sequential / ModuleList
-- positions one higher ("0.weight" -> "1.weight", "layers.3.fc.weight" ->
-- "layers.4.fc.weight").  Returns a new table holding the same tensors.
function utils.from_pytorch(sd)
  return shift_indices("from_pytorch", sd, 1)
end

--- Ember's state dict names in PyTorch's: positions one lower, the
-- inverse of from_pytorch (an index 0 cannot be shifted and is an error).
function utils.to_pytorch(sd)
  return shift_indices("to_pytorch", sd, -1)
end

-- }======================================================================

return utils
