--- ember.optim.lr_scheduler: learning-rate schedulers, as
-- torch.optim.lr_scheduler.
--
-- A scheduler writes `group.lr` of its optimizer's parameter groups.
-- Construction records each group's `initial_lr` (kept if already there,
-- as PyTorch's setdefault) and takes the first step (last_epoch 0).  The
-- schedules use PyTorch's recursive forms (each lr from the previous one),
-- so their values match PyTorch's to rounding, including when something
-- else also changes the lr.
local Optimizer = require "ember.optim.optimizer"
local check = require "ember.check"

local fail = Optimizer.fail

local M = {names = {"StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                    "ReduceLROnPlateau", "LambdaLR"}}

-- {======================================================================
-- The base class
-- =======================================================================

local Scheduler = {}
Scheduler.__index = Scheduler

--- A class: init(self, ...) reads the arguments after the optimizer;
-- get_lr(self) gives the new lr of each group (after last_epoch moved).
local function class(name, init, get_lr)
  local C = {__name = name, _init = init, get_lr = get_lr}
  C.__index = C
  return setmetatable(C, {
    __index = Scheduler,
    __call = function(cls, ...) return cls:_new(...) end,
    __tostring = function() return "ember.optim.lr_scheduler." .. name end,
  })
end

local function check_optimizer(name, opt)
  if type(opt) ~= "table" or type(opt.param_groups) ~= "table" then
    fail(("%s: expected an optimizer, got %s"):format(name, type(opt)))
  end
end

function Scheduler._new(C, opt, ...)
  check_optimizer(C.__name, opt)
  local self = setmetatable({optimizer = opt, base_lrs = {}, last_epoch = -1,
                             _step_count = 0}, C)
  C._init(self, ...)
  for i, g in ipairs(opt.param_groups) do
    if g.initial_lr == nil then g.initial_lr = g.lr end
    self.base_lrs[i] = g.initial_lr
  end
  self:_advance()
  return self
end

function Scheduler:_advance()
  self._step_count = self._step_count + 1
  self.last_epoch = self.last_epoch + 1
  local lrs = self:get_lr()
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = lrs[i] end
  self._last_lr = lrs
end

--- Move to the next epoch and set each group's lr.
function Scheduler:step(...)
  if select("#", ...) > 0 then
    fail(("%s:step takes no argument (epoch arguments are deprecated in PyTorch)")
         :format(self.__name))
  end
  self:_advance()
end

--- The lr of each group after the last step (a new list).
function Scheduler:get_last_lr()
  local out = {}
  for i, v in ipairs(self._last_lr) do out[i] = v end
  return out
end

--- Every field but the optimizer and functions (LambdaLR's lambdas, as
-- PyTorch leaves them out); tables are copied.
function Scheduler:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if k ~= "optimizer" and type(v) ~= "function" and k ~= "lr_lambdas" then
      if type(v) == "table" then
        local c = {}
        for i, x in pairs(v) do c[i] = x end
        v = c
      end
      sd[k] = v
    end
  end
  return sd
end

function Scheduler:load_state_dict(sd)
  if type(sd) ~= "table" then
    fail(("%s:load_state_dict: expected a table, got %s"):format(self.__name, type(sd)))
  end
  for k, v in pairs(sd) do
    if k ~= "optimizer" and k ~= "lr_lambdas" then
      if type(v) == "table" then
        local c = {}
        for i, x in pairs(v) do c[i] = x end
        v = c
      end
      self[k] = v
    end
  end
end

-- }======================================================================

-- {======================================================================
-- Argument checks
-- =======================================================================

local function check_number(name, what, v, lo)
  if type(v) ~= "number" or not (v >= lo) then
    fail(("%s: %s must be a number >= %s, got %s"):format(name, what, lo, tostring(v)))
  end
  return v
end

local function check_int(name, what, v, lo)
  if type(v) ~= "number" or math.tointeger(v) == nil or v < lo then
    fail(("%s: %s must be an integer >= %d, got %s"):format(name, what, lo, tostring(v)))
  end
  return math.tointeger(v)
end

--- A trailing argument given as a number or as {key = number}.
local function opt_number(name, key, v, default)
  if type(v) == "table" then
    check.options(name, v, {[key] = true}, fail)
    v = v[key]
  end
  if v == nil then return default end
  return check_number(name, key, v, -math.huge)
end

-- }======================================================================

-- {======================================================================
-- Schedules
-- =======================================================================

local function group_lrs(self)
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr end
  return out
end

--- StepLR(opt, step_size [, gamma = 0.1]): lr *= gamma every step_size
-- epochs.
M.StepLR = class("StepLR", function(self, step_size, gamma)
  self.step_size = check_int("StepLR", "step_size", step_size, 1)
  self.gamma = opt_number("StepLR", "gamma", gamma, 0.1)
end, function(self)
  local lrs = group_lrs(self)
  if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return lrs end
  for i, v in ipairs(lrs) do lrs[i] = v * self.gamma end
  return lrs
end)

--- MultiStepLR(opt, milestones [, gamma = 0.1]): lr *= gamma at each
-- milestone epoch (a milestone listed twice multiplies twice).
M.MultiStepLR = class("MultiStepLR", function(self, milestones, gamma)
  if type(milestones) ~= "table" then
    fail(("MultiStepLR: milestones must be a list of integers, got %s"):format(type(milestones)))
  end
  local counts = {}
  for i, m in ipairs(milestones) do
    m = check_int("MultiStepLR", ("milestones[%d]"):format(i), m, 0)
    counts[m] = (counts[m] or 0) + 1
  end
  self.milestones = counts
  self.gamma = opt_number("MultiStepLR", "gamma", gamma, 0.1)
end, function(self)
  local lrs, n = group_lrs(self), self.milestones[self.last_epoch]
  if n == nil then return lrs end
  for i, v in ipairs(lrs) do lrs[i] = v * self.gamma ^ n end
  return lrs
end)

--- ExponentialLR(opt, gamma): lr *= gamma every epoch.
M.ExponentialLR = class("ExponentialLR", function(self, gamma)
  self.gamma = opt_number("ExponentialLR", "gamma", gamma, nil)
  if self.gamma == nil then fail("ExponentialLR: gamma is required") end
end, function(self)
  local lrs = group_lrs(self)
  if self.last_epoch == 0 then return lrs end
  for i, v in ipairs(lrs) do lrs[i] = v * self.gamma end
  return lrs
end)

--- CosineAnnealingLR(opt, T_max [, eta_min = 0]): half a cosine from the
-- initial lr down to eta_min over T_max epochs, then back up (SGDR
-- without restarts), in PyTorch's recursive form.
M.CosineAnnealingLR = class("CosineAnnealingLR", function(self, T_max, eta_min)
  self.T_max = check_int("CosineAnnealingLR", "T_max", T_max, 1)
  self.eta_min = opt_number("CosineAnnealingLR", "eta_min", eta_min, 0)
end, function(self)
  local lrs, e, T, lo = group_lrs(self), self.last_epoch, self.T_max, self.eta_min
  if e == 0 then return lrs end
  if (e - 1 - T) % (2 * T) == 0 then
    for i, v in ipairs(lrs) do
      lrs[i] = v + (self.base_lrs[i] - lo) * (1 - math.cos(math.pi / T)) / 2
    end
    return lrs
  end
  for i, v in ipairs(lrs) do
    lrs[i] = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) *
             (v - lo) + lo
  end
  return lrs
end)

--- LambdaLR(opt, lr_lambda): lr = initial lr * lr_lambda(epoch); one
-- function, or a list with one per group.
M.LambdaLR = class("LambdaLR", function(self, lr_lambda)
  local n = #self.optimizer.param_groups
  local fns = {}
  if type(lr_lambda) == "function" then
    for i = 1, n do fns[i] = lr_lambda end
  elseif type(lr_lambda) == "table" and #lr_lambda == n then
    for i, f in ipairs(lr_lambda) do
      if type(f) ~= "function" then
        fail(("LambdaLR: lr_lambda[%d] must be a function, got %s"):format(i, type(f)))
      end
      fns[i] = f
    end
  else
    fail(("LambdaLR: lr_lambda must be a function or a list of %d functions (one per group), got %s")
         :format(n, type(lr_lambda)))
  end
  self.lr_lambdas = fns
end, function(self)
  local lrs = {}
  for i, base in ipairs(self.base_lrs) do
    local f = self.lr_lambdas[i](self.last_epoch)
    if type(f) ~= "number" then
      fail(("LambdaLR: lr_lambda returned %s, not a number"):format(type(f)))
    end
    lrs[i] = base * f
  end
  return lrs
end)

-- }======================================================================

-- {======================================================================
-- ReduceLROnPlateau
-- =======================================================================

--- ReduceLROnPlateau(opt [, opts]): lr *= factor once the metric passed to
-- step(metric) has not improved for `patience` epochs.  Options and
-- defaults as PyTorch: mode 'min', factor 0.1, patience 10, threshold
-- 1e-4, threshold_mode 'rel', cooldown 0, min_lr 0 (or one per group),
-- eps 1e-8.
local Plateau = {__name = "ReduceLROnPlateau"}
Plateau.__index = Plateau
M.ReduceLROnPlateau = setmetatable(Plateau, {
  __index = Scheduler,
  __call = function(cls, ...) return cls:_new(...) end,
  __tostring = function() return "ember.optim.lr_scheduler.ReduceLROnPlateau" end,
})

local PLATEAU_DEFAULTS = {mode = "min", factor = 0.1, patience = 10, threshold = 1e-4,
                          threshold_mode = "rel", cooldown = 0, min_lr = 0, eps = 1e-8}

local function plateau_min_lrs(name, v, n)
  local out = {}
  if type(v) == "table" then
    if #v ~= n then fail(("%s: expected %d min_lr values (one per group), got %d"):format(name, n, #v)) end
    for i = 1, n do out[i] = check_number(name, "min_lr", v[i], 0) end
  else
    check_number(name, "min_lr", v, 0)
    for i = 1, n do out[i] = v end
  end
  return out
end

function Plateau._new(C, opt, opts)
  local name = C.__name
  check_optimizer(name, opt)
  local o = check.defaults(name, opts, PLATEAU_DEFAULTS, fail)
  if o.mode ~= "min" and o.mode ~= "max" then
    fail(("%s: mode must be 'min' or 'max', got %s"):format(name, tostring(o.mode)))
  end
  if o.threshold_mode ~= "rel" and o.threshold_mode ~= "abs" then
    fail(("%s: threshold_mode must be 'rel' or 'abs', got %s"):format(name, tostring(o.threshold_mode)))
  end
  check_number(name, "factor", o.factor, 0)
  if o.factor >= 1 then fail(("%s: factor must be < 1, got %s"):format(name, o.factor)) end
  local self = setmetatable({
    optimizer = opt, mode = o.mode, factor = o.factor,
    patience = check_int(name, "patience", o.patience, 0),
    threshold = check_number(name, "threshold", o.threshold, 0),
    threshold_mode = o.threshold_mode,
    cooldown = check_int(name, "cooldown", o.cooldown, 0),
    min_lrs = plateau_min_lrs(name, o.min_lr, #opt.param_groups),
    eps = check_number(name, "eps", o.eps, 0),
    best = o.mode == "min" and math.huge or -math.huge,
    num_bad_epochs = 0, cooldown_counter = 0, last_epoch = 0,
  }, C)
  self._last_lr = group_lrs(self)
  return self
end

function Plateau:_is_better(a)
  local best, t = self.best, self.threshold
  if self.mode == "min" then
    if self.threshold_mode == "rel" then return a < best * (1 - t) end
    return a < best - t
  end
  if self.threshold_mode == "rel" then return a > best * (t + 1) end
  return a > best + t
end

--- Record this epoch's metric (a number or a one-element tensor) and
-- reduce the lr when it has stopped improving.
function Plateau:step(metric)
  local current = metric
  if type(metric) == "userdata" and metric.item then current = metric:item() end
  if type(current) ~= "number" then
    fail(("%s:step expects the metric (a number), got %s"):format(self.__name, type(metric)))
  end
  self.last_epoch = self.last_epoch + 1
  if self:_is_better(current) then
    self.best, self.num_bad_epochs = current, 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0  -- bad epochs in cooldown do not count
  end
  if self.num_bad_epochs > self.patience then
    for i, g in ipairs(self.optimizer.param_groups) do
      local new = math.max(g.lr * self.factor, self.min_lrs[i])
      if g.lr - new > self.eps then g.lr = new end
    end
    self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
  end
  self._last_lr = group_lrs(self)
end

-- }======================================================================

return M
