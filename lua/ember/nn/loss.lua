--- Loss modules: each keeps its options and calls its functional form.
-- Class weights and pos_weight are buffers (in state_dict), as in PyTorch.
local common = require "ember.nn.common"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"

local M = {}

--- Define a loss class: `fn` is the functional form, `known` the options
-- it takes besides reduction, `tensors` those held as buffers.
local function loss_class(name, fn, known, tensors)
  local C = Module:extend(name)
  local all = {reduction = true}
  for k in pairs(known) do all[k] = true end
  function C:init(opts)
    opts = common.options(name, opts, all, 3)
    self.reduction = common.reduction(name, opts.reduction, 3)
    self._opts = {}
    for k in pairs(known) do
      local v = opts[k]
      if tensors[k] and v ~= nil then
        common.check_tensor(name, v, k, 3)
        self:register_buffer(k, v)
      elseif v ~= nil then
        self._opts[k] = v
      end
    end
  end
  function C:forward(input, target)
    local o = {reduction = self.reduction}
    for k, v in pairs(self._opts) do o[k] = v end
    for k in pairs(tensors) do o[k] = self[k] end
    -- the functional form raises its errors at the user's line
    return fn(input, target, o)
  end
  function C:extra_repr()
    return self.reduction ~= "mean" and ("reduction='%s'"):format(self.reduction) or ""
  end
  M[name] = C
end

loss_class("CrossEntropyLoss", F.cross_entropy,
           {weight = true, ignore_index = true, label_smoothing = true}, {weight = true})
loss_class("NLLLoss", F.nll_loss, {weight = true, ignore_index = true}, {weight = true})
loss_class("MSELoss", F.mse_loss, {}, {})
loss_class("L1Loss", F.l1_loss, {}, {})
loss_class("SmoothL1Loss", F.smooth_l1_loss, {beta = true}, {})
loss_class("BCELoss", F.binary_cross_entropy, {weight = true}, {weight = true})
loss_class("BCEWithLogitsLoss", F.binary_cross_entropy_with_logits,
           {weight = true, pos_weight = true}, {weight = true, pos_weight = true})

return M
