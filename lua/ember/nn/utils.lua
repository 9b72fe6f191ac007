--- ember.nn.utils: gradient clipping; parameter groups for weight decay.
local ember = require "ember"
local common = require "ember.nn.common"

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

return utils
