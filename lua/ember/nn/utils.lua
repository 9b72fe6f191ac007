--- ember.nn.utils: gradient clipping.
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

return utils
