--- ember.optim: optimizers and learning-rate schedulers.
--
-- Each optimizer has torch.optim's options, defaults and update rule.  The
-- update of a parameter is one fused C kernel (ember._sgd_step,
-- _adam_step, _rmsprop_step, _adagrad_step: bindings/lua_optim.c), so a
-- step costs one pass over each parameter's memory and no temporaries.
-- This file holds what differs between optimizers: options, their checks
-- and which state tensors each keeps.  The machinery is in optimizer.lua,
-- the schedulers in lr_scheduler.lua.
local ember = require "ember"
local Optimizer = require "ember.optim.optimizer"
local lr_scheduler = require "ember.optim.lr_scheduler"

local check_min, check_bool = Optimizer.check_min, Optimizer.check_bool
local fail = Optimizer.fail

local optim = {}

-- {======================================================================
-- SGD
-- =======================================================================

optim.SGD = Optimizer.class("SGD", {
  options = {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"},
  -- lr has no default (required, as in PyTorch)
  defaults = {momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
              maximize = false},
  check = function(name, g)
    check_min(name, g, "lr", 0)
    check_min(name, g, "momentum", 0)
    check_min(name, g, "dampening", -math.huge)
    check_min(name, g, "weight_decay", 0)
    check_bool(name, g, "nesterov")
    check_bool(name, g, "maximize")
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      fail(name .. ": nesterov momentum requires a momentum > 0 and zero dampening")
    end
  end,
  -- state: momentum_buffer (when momentum ~= 0), made from the first
  -- update as in PyTorch (first_step copies it instead of decaying)
  _update = function(_, p, g, st, group)
    local buf, first = nil, false
    if group.momentum ~= 0 then
      buf = st.momentum_buffer
      if buf == nil then buf, first = ember.zeros_like(p), true end
    end
    ember._sgd_step(p, g, buf, group.lr, group.momentum, group.dampening,
                    group.weight_decay, group.nesterov, group.maximize, first)
    st.momentum_buffer = buf
  end,
})

-- }======================================================================

-- {======================================================================
-- Adam and AdamW
-- =======================================================================

local function check_adam(name, g)
  check_min(name, g, "lr", 0)
  if type(g.betas) ~= "table" or #g.betas ~= 2 then
    fail(("%s: betas must be a table of two numbers, got %s"):format(name, tostring(g.betas)))
  end
  Optimizer.check_unit(name, "betas[1]", g.betas[1])
  Optimizer.check_unit(name, "betas[2]", g.betas[2])
  check_min(name, g, "eps", 0)
  check_min(name, g, "weight_decay", 0)
  check_bool(name, g, "amsgrad")
  check_bool(name, g, "maximize")
end

--- state: step, exp_avg, exp_avg_sq, and max_exp_avg_sq with amsgrad.
-- The step count is stored only once the C step has succeeded.
local function adam_update(decoupled)
  return function(_, p, g, st, group)
    if st.step == nil then
      st.step, st.exp_avg, st.exp_avg_sq = 0, ember.zeros_like(p), ember.zeros_like(p)
    end
    if group.amsgrad and st.max_exp_avg_sq == nil then
      st.max_exp_avg_sq = ember.zeros_like(p)
    end
    local step = st.step + 1
    ember._adam_step(p, g, st.exp_avg, st.exp_avg_sq,
                     group.amsgrad and st.max_exp_avg_sq or nil, step, group.lr,
                     group.betas[1], group.betas[2], group.eps, group.weight_decay,
                     decoupled, group.maximize)
    st.step = step
  end
end

local ADAM_OPTIONS = {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"}

optim.Adam = Optimizer.class("Adam", {
  options = ADAM_OPTIONS,
  defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0,
              amsgrad = false, maximize = false},
  check = check_adam,
  _update = adam_update(false),
})

--- Adam with decoupled weight decay: p is scaled by 1 - lr * weight_decay
-- before the Adam update instead of adding weight_decay * p to the grad.
optim.AdamW = Optimizer.class("AdamW", {
  options = ADAM_OPTIONS,
  defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 1e-2,
              amsgrad = false, maximize = false},
  check = check_adam,
  _update = adam_update(true),
})

-- }======================================================================

-- {======================================================================
-- RMSprop and Adagrad
-- =======================================================================

optim.RMSprop = Optimizer.class("RMSprop", {
  options = {"lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"},
  defaults = {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
              centered = false, maximize = false},
  check = function(name, g)
    check_min(name, g, "lr", 0)
    check_min(name, g, "alpha", 0)
    check_min(name, g, "eps", 0)
    check_min(name, g, "weight_decay", 0)
    check_min(name, g, "momentum", 0)
    check_bool(name, g, "centered")
    check_bool(name, g, "maximize")
  end,
  -- state: step, square_avg, momentum_buffer (momentum > 0), grad_avg
  -- (centered)
  _update = function(_, p, g, st, group)
    if st.step == nil then st.step, st.square_avg = 0, ember.zeros_like(p) end
    if group.momentum > 0 and st.momentum_buffer == nil then
      st.momentum_buffer = ember.zeros_like(p)
    end
    if group.centered and st.grad_avg == nil then st.grad_avg = ember.zeros_like(p) end
    ember._rmsprop_step(p, g, st.square_avg,
                        group.momentum > 0 and st.momentum_buffer or nil,
                        group.centered and st.grad_avg or nil, group.lr, group.alpha,
                        group.eps, group.weight_decay, group.momentum, group.maximize)
    st.step = st.step + 1
  end,
})

optim.Adagrad = Optimizer.class("Adagrad", {
  options = {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps",
             "maximize"},
  defaults = {lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0,
              eps = 1e-10, maximize = false},
  check = function(name, g)
    check_min(name, g, "lr", 0)
    check_min(name, g, "lr_decay", 0)
    check_min(name, g, "weight_decay", 0)
    check_min(name, g, "initial_accumulator_value", 0)
    check_min(name, g, "eps", 0)
    check_bool(name, g, "maximize")
  end,
  -- state: step and sum (starting at initial_accumulator_value)
  _update = function(_, p, g, st, group)
    if st.step == nil then
      st.step, st.sum = 0, ember.full_like(p, group.initial_accumulator_value)
    end
    local step = st.step + 1
    ember._adagrad_step(p, g, st.sum, step, group.lr, group.lr_decay,
                        group.weight_decay, group.eps, group.maximize)
    st.step = step
  end,
})

-- }======================================================================

-- Schedulers: optim.lr_scheduler.StepLR, also optim.StepLR.
optim.lr_scheduler = lr_scheduler
for _, name in ipairs(lr_scheduler.names) do optim[name] = lr_scheduler[name] end

return optim
