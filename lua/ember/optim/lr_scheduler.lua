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
                    "ReduceLROnPlateau", "LambdaLR", "LinearLR", "OneCycleLR", "SequentialLR",
                    "CosineAnnealingWarmRestarts"}}

-- {======================================================================
-- The base class
-- =======================================================================

local Scheduler = {}
Scheduler.__index = Scheduler

--- A class: init(self, ...) reads the arguments after the optimizer;
-- get_lr(self) gives the new lr of each group (after last_epoch moved);
-- closed_form(self), where PyTorch has one, the lr of each group at
-- last_epoch from base_lrs alone (SequentialLR starts a schedule with it).
local function class(name, init, get_lr, closed_form)
  local C = {__name = name, _init = init, get_lr = get_lr, closed_form = closed_form}
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

--- Jump to `epoch` and set each group's lr: PyTorch's deprecated
-- step(epoch), which SequentialLR still uses (step(0)) to start each
-- schedule after the first; the closed form where there is one.
function Scheduler:_step_to(epoch)
  self._step_count = self._step_count + 1
  self.last_epoch = epoch
  local lrs = self.closed_form and self:closed_form() or self:get_lr()
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

--- f(base_lr) for each group: a closed form.
local function from_base(self, f)
  local out = {}
  for i, base in ipairs(self.base_lrs) do out[i] = f(base) end
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
end, function(self)
  return from_base(self, function(base) return base * self.gamma ^ (self.last_epoch // self.step_size) end)
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
end, function(self)
  local passed = 0   -- milestones at or before last_epoch, with repeats
  for m, count in pairs(self.milestones) do
    if m <= self.last_epoch then passed = passed + count end
  end
  return from_base(self, function(base) return base * self.gamma ^ passed end)
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
end, function(self)
  return from_base(self, function(base) return base * self.gamma ^ self.last_epoch end)
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
end, function(self)
  local lo = self.eta_min
  return from_base(self, function(base)
    return lo + (base - lo) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
  end)
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
-- Schedules for transformers: LinearLR, CosineAnnealingWarmRestarts,
-- OneCycleLR (SequentialLR, which chains them, is at the end)
-- =======================================================================

--- Optional arguments given positionally, in a trailing table, or both
-- (keys names them in order); returns a table with the defaults filled.
local function named_args(name, keys, defaults, ...)
  local n, args = select("#", ...), table.pack(...)
  local o, known = {}, {}
  for _, k in ipairs(keys) do known[k] = true end
  if type(args[n]) == "table" then
    check.options(name, args[n], known, fail)
    for k, v in pairs(args[n]) do o[k] = v end
    n = n - 1
  end
  if n > #keys then
    fail(("%s: expected at most %d optional arguments (%s), got %d")
         :format(name, #keys, table.concat(keys, ", "), n))
  end
  for i = 1, n do
    if args[i] ~= nil then
      if o[keys[i]] ~= nil then fail(("%s: %s given twice"):format(name, keys[i])) end
      o[keys[i]] = args[i]
    end
  end
  for k, v in pairs(defaults) do
    if o[k] == nil then o[k] = v end
  end
  return o
end

local function check_factor(name, what, v, lo_open)
  if type(v) ~= "number" or not (v <= 1 and (v > 0 or not lo_open and v == 0)) then
    fail(("%s: %s must be a number in %s, 1], got %s")
         :format(name, what, lo_open and "(0" or "[0", tostring(v)))
  end
  return v
end

--- LinearLR(opt [, start_factor = 1/3 [, end_factor = 1 [, total_iters =
-- 5]]]): the lr goes linearly from start_factor to end_factor times the
-- initial lr over total_iters epochs, then stays (a warm-up when
-- start_factor is small).  PyTorch's recursive form.
M.LinearLR = class("LinearLR", function(self, ...)
  local o = named_args("LinearLR", {"start_factor", "end_factor", "total_iters"},
                       {start_factor = 1 / 3, end_factor = 1, total_iters = 5}, ...)
  -- start_factor 0 would divide by zero in the recursion (PyTorch 2 forbids it too)
  self.start_factor = check_factor("LinearLR", "start_factor", o.start_factor, true)
  self.end_factor = check_factor("LinearLR", "end_factor", o.end_factor, false)
  self.total_iters = check_int("LinearLR", "total_iters", o.total_iters, 1)
end, function(self)
  local lrs, e, a, b, T = group_lrs(self), self.last_epoch, self.start_factor, self.end_factor,
                          self.total_iters
  if e == 0 then
    for i, v in ipairs(lrs) do lrs[i] = v * a end
    return lrs
  end
  if e > T then return lrs end
  for i, v in ipairs(lrs) do lrs[i] = v * (1 + (b - a) / (T * a + (e - 1) * (b - a))) end
  return lrs
end, function(self)
  local a, b, T = self.start_factor, self.end_factor, self.total_iters
  return from_base(self, function(base)
    return base * (a + (b - a) * math.min(T, self.last_epoch) / T)
  end)
end)

--- CosineAnnealingWarmRestarts(opt, T_0 [, T_mult = 1 [, eta_min = 0]]):
-- SGDR.  The lr follows half a cosine from the initial lr down to eta_min
-- over T_i epochs, then restarts; T_i starts at T_0 and is multiplied by
-- T_mult at each restart.  step(epoch) also takes the epoch (fractional:
-- step(e + b / batches) after each batch), as PyTorch.
M.CosineAnnealingWarmRestarts = class("CosineAnnealingWarmRestarts", function(self, T_0, ...)
  local name = "CosineAnnealingWarmRestarts"
  local o = named_args(name, {"T_mult", "eta_min"}, {T_mult = 1, eta_min = 0}, ...)
  self.T_0 = check_int(name, "T_0", T_0, 1)
  self.T_i = self.T_0
  self.T_mult = check_int(name, "T_mult", o.T_mult, 1)
  self.eta_min = check_number(name, "eta_min", o.eta_min, -math.huge)
  self.T_cur = -1
end, function(self)
  local lo = self.eta_min
  return from_base(self, function(base)
    return lo + (base - lo) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
  end)
end)

local WarmRestarts = M.CosineAnnealingWarmRestarts

--- step([epoch]): the next epoch, or `epoch` (a number >= 0).
function WarmRestarts:step(epoch)
  if epoch == nil and self.last_epoch < 0 then epoch = 0 end
  if epoch == nil then
    epoch = self.last_epoch + 1
    self.T_cur = self.T_cur + 1
    if self.T_cur >= self.T_i then
      self.T_cur, self.T_i = self.T_cur - self.T_i, self.T_i * self.T_mult
    end
  else
    check_number(self.__name .. ":step", "epoch", epoch, 0)
    local T0, m = self.T_0, self.T_mult
    if epoch >= T0 then
      if m == 1 then
        self.T_cur = epoch % T0
      else
        -- the restart epoch falls in: log base m, as Python's math.log(x, m)
        local n = math.floor(math.log(epoch / T0 * (m - 1) + 1) / math.log(m))
        self.T_cur = epoch - T0 * (m ^ n - 1) / (m - 1)
        self.T_i = T0 * m ^ n
      end
    else
      self.T_i, self.T_cur = T0, epoch
    end
  end
  self.last_epoch = math.floor(epoch)
  self._step_count = self._step_count + 1
  local lrs = self:get_lr()
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = lrs[i] end
  self._last_lr = lrs
end

-- construction's first step, and SequentialLR's start (step(0)), go
-- through step's own bookkeeping of T_cur and T_i
function WarmRestarts:_advance() self:step() end
WarmRestarts._step_to = WarmRestarts.step

--- A number, or a list with one number per group.
local function per_group(name, what, v, n)
  local out = {}
  if type(v) == "table" then
    if #v ~= n then
      fail(("%s: expected %d values of %s (one per group), got %d"):format(name, n, what, #v))
    end
    for i = 1, n do out[i] = check_number(name, what, v[i], 0) end
  else
    check_number(name, what, v, 0)
    for i = 1, n do out[i] = v end
  end
  return out
end

local ONE_CYCLE = {total_steps = false, epochs = false, steps_per_epoch = false, pct_start = 0.3,
                   anneal_strategy = "cos", cycle_momentum = true, base_momentum = 0.85,
                   max_momentum = 0.95, div_factor = 25, final_div_factor = 1e4,
                   three_phase = false}

--- OneCycleLR(opt, max_lr, {total_steps = n} or {epochs = e,
-- steps_per_epoch = s} [, pct_start = 0.3, anneal_strategy = "cos" or
-- "linear", cycle_momentum = true, base_momentum = 0.85, max_momentum =
-- 0.95, div_factor = 25, final_div_factor = 1e4, three_phase = false]):
-- the 1cycle policy, stepped after every batch.  The lr rises from
-- max_lr / div_factor to max_lr over pct_start of the steps, then falls to
-- max_lr / div_factor / final_div_factor (three_phase: back to the start
-- over as many steps, then down to the minimum).  cycle_momentum moves SGD's
-- momentum (or Adam's beta1) the opposite way, between base_momentum and
-- max_momentum.  max_lr and the momenta may be lists, one per group.  As
-- PyTorch, the groups' initial_lr, max_lr, min_lr (and max_momentum,
-- base_momentum) are set on construction.
M.OneCycleLR = class("OneCycleLR", function(self, max_lr, opts)
  local name = "OneCycleLR"
  local opt = self.optimizer
  local o = check.defaults(name, opts, ONE_CYCLE, fail)
  if o.total_steps then
    self.total_steps = check_int(name, "total_steps", o.total_steps, 1)
  elseif o.epochs and o.steps_per_epoch then
    self.total_steps = check_int(name, "epochs", o.epochs, 1) *
                       check_int(name, "steps_per_epoch", o.steps_per_epoch, 1)
  else
    fail(name .. ": give total_steps, or epochs and steps_per_epoch")
  end
  local pct = o.pct_start
  if type(pct) ~= "number" or not (pct >= 0 and pct <= 1) then
    fail(("%s: pct_start must be a number in [0, 1], got %s"):format(name, tostring(pct)))
  end
  if o.anneal_strategy ~= "cos" and o.anneal_strategy ~= "linear" then
    fail(("%s: anneal_strategy must be 'cos' or 'linear', got %s")
         :format(name, tostring(o.anneal_strategy)))
  end
  if type(o.three_phase) ~= "boolean" then
    fail(("%s: three_phase must be a boolean, got %s"):format(name, type(o.three_phase)))
  end
  if type(o.cycle_momentum) ~= "boolean" then
    fail(("%s: cycle_momentum must be a boolean, got %s"):format(name, type(o.cycle_momentum)))
  end
  self.anneal_strategy = o.anneal_strategy
  local N = self.total_steps
  if o.three_phase then
    self._schedule_phases = {
      {end_step = pct * N - 1, start_lr = "initial_lr", end_lr = "max_lr",
       start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = 2 * pct * N - 2, start_lr = "max_lr", end_lr = "initial_lr",
       start_momentum = "base_momentum", end_momentum = "max_momentum"},
      {end_step = N - 1, start_lr = "initial_lr", end_lr = "min_lr",
       start_momentum = "max_momentum", end_momentum = "max_momentum"},
    }
  else
    self._schedule_phases = {
      {end_step = pct * N - 1, start_lr = "initial_lr", end_lr = "max_lr",
       start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = N - 1, start_lr = "max_lr", end_lr = "min_lr",
       start_momentum = "base_momentum", end_momentum = "max_momentum"},
    }
  end
  local groups = opt.param_groups
  local div = check_number(name, "div_factor", o.div_factor, 0)
  local final_div = check_number(name, "final_div_factor", o.final_div_factor, 0)
  local max_lrs = per_group(name, "max_lr", max_lr, #groups)
  self.cycle_momentum = o.cycle_momentum
  local max_m, base_m
  if o.cycle_momentum then
    local d = opt.defaults or {}
    if d.momentum == nil and d.betas == nil then
      fail(name .. ": cycle_momentum needs an optimizer with momentum or betas " ..
           "(SGD, Adam, AdamW, RMSprop); pass cycle_momentum = false")
    end
    self.use_beta1 = d.betas ~= nil
    max_m = per_group(name, "max_momentum", o.max_momentum, #groups)
    base_m = per_group(name, "base_momentum", o.base_momentum, #groups)
  end
  -- everything is checked: now write the groups
  for i, g in ipairs(groups) do
    g.initial_lr = max_lrs[i] / div
    g.max_lr = max_lrs[i]
    g.min_lr = g.initial_lr / final_div
    if o.cycle_momentum then
      if self.use_beta1 then g.betas = {max_m[i], g.betas[2]} else g.momentum = max_m[i] end
      g.max_momentum, g.base_momentum = max_m[i], base_m[i]
    end
  end
end, function(self)
  local step = self.last_epoch
  if step > self.total_steps then
    fail(("OneCycleLR: stepped %d times, more than total_steps (%d)")
         :format(step + 1, self.total_steps))
  end
  local linear = self.anneal_strategy == "linear"
  local function anneal(a, b, pct)
    if linear then return (b - a) * pct + a end
    return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
  end
  local lrs, phases = {}, self._schedule_phases
  for gi, g in ipairs(self.optimizer.param_groups) do
    local start, lr, mom = 0, nil, nil
    for i, ph in ipairs(phases) do
      if step <= ph.end_step or i == #phases then
        local pct = (step - start) / (ph.end_step - start)
        lr = anneal(g[ph.start_lr], g[ph.end_lr], pct)
        if self.cycle_momentum then mom = anneal(g[ph.start_momentum], g[ph.end_momentum], pct) end
        break
      end
      start = ph.end_step
    end
    lrs[gi] = lr
    if self.cycle_momentum then
      if self.use_beta1 then g.betas = {mom, g.betas[2]} else g.momentum = mom end
    end
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

-- {======================================================================
-- SequentialLR
-- =======================================================================

--- SequentialLR(opt, schedulers, milestones): schedulers[1] until epoch
-- milestones[1], then schedulers[2] (started at its epoch 0) until
-- milestones[2], and so on; as PyTorch.  The schedulers must be made on
-- opt first; SequentialLR resets the lr to the initial lr and redoes
-- only the first one's first step.  The warm-up-then-cosine recipe:
--   SequentialLR(opt, {LinearLR(opt, 0.01, 1, w), CosineAnnealingLR(opt, T - w)}, {w})
local Sequential = {__name = "SequentialLR"}
Sequential.__index = Sequential
M.SequentialLR = setmetatable(Sequential, {
  __index = Scheduler,
  __call = function(cls, ...) return cls:_new(...) end,
  __tostring = function() return "ember.optim.lr_scheduler.SequentialLR" end,
})

function Sequential._new(C, opt, schedulers, milestones)
  local name = C.__name
  check_optimizer(name, opt)
  if type(schedulers) ~= "table" or schedulers[1] == nil then
    fail(("%s: schedulers must be a non-empty list of schedulers, got %s")
         :format(name, type(schedulers)))
  end
  for i, s in ipairs(schedulers) do
    local mt = type(s) == "table" and getmetatable(s)
    if not mt or mt.get_last_lr == nil then
      fail(("%s: schedulers[%d] is not a scheduler"):format(name, i))
    end
    if mt == Plateau then
      fail(("%s: schedulers[%d] is a ReduceLROnPlateau, which steps on a metric"):format(name, i))
    end
    if not rawequal(s.optimizer, opt) then
      fail(("%s: schedulers[%d] belongs to another optimizer"):format(name, i))
    end
  end
  if type(milestones) ~= "table" or #milestones ~= #schedulers - 1 then
    fail(("%s: expected %d milestones (one fewer than the schedulers), got %s")
         :format(name, #schedulers - 1, type(milestones) == "table" and #milestones or type(milestones)))
  end
  local ms = {}
  for i, m in ipairs(milestones) do
    ms[i] = check_int(name, ("milestones[%d]"):format(i), m, 0)
    if i > 1 and ms[i] < ms[i - 1] then
      fail(("%s: milestones must not decrease, got %d after %d"):format(name, ms[i], ms[i - 1]))
    end
  end
  local list = {}
  for i, s in ipairs(schedulers) do list[i] = s end
  local self = setmetatable({optimizer = opt, _schedulers = list, _milestones = ms,
                             last_epoch = 0}, C)
  for _, g in ipairs(opt.param_groups) do g.lr = g.initial_lr end
  -- undo the step each made on construction; redo the first one's only
  for _, s in ipairs(list) do s.last_epoch = s.last_epoch - 1 end
  list[1]._step_count = 0
  list[1]:step()
  self._last_lr = list[1]:get_last_lr()
  return self
end

--- The next epoch: the scheduler whose span it is steps (the first epoch
-- of a span starts that scheduler at its epoch 0).
function Sequential:step(...)
  if select("#", ...) > 0 then fail("SequentialLR:step takes no argument") end
  self.last_epoch = self.last_epoch + 1
  local idx = 0   -- milestones at or before this epoch (bisect_right)
  for i, m in ipairs(self._milestones) do
    if m <= self.last_epoch then idx = i end
  end
  local s = self._schedulers[idx + 1]
  if idx > 0 and self._milestones[idx] == self.last_epoch then s:_step_to(0) else s:step() end
  self._last_lr = s:get_last_lr()
end

--- Its own fields and each scheduler's state dict (in _schedulers).
function Sequential:state_dict()
  local sd = {last_epoch = self.last_epoch, _last_lr = {table.unpack(self._last_lr)},
              _milestones = {table.unpack(self._milestones)}, _schedulers = {}}
  for i, s in ipairs(self._schedulers) do sd._schedulers[i] = s:state_dict() end
  return sd
end

function Sequential:load_state_dict(sd)
  local fn = "SequentialLR:load_state_dict"
  if type(sd) ~= "table" or type(sd._schedulers) ~= "table" then
    fail(fn .. ": expected a table from SequentialLR:state_dict()")
  end
  if #sd._schedulers ~= #self._schedulers then
    fail(("%s: the state dict has %d schedulers but this SequentialLR has %d")
         :format(fn, #sd._schedulers, #self._schedulers))
  end
  for i, s in ipairs(self._schedulers) do s:load_state_dict(sd._schedulers[i]) end
  self.last_epoch = sd.last_epoch
  self._last_lr = {table.unpack(sd._last_lr)}
  self._milestones = {table.unpack(sd._milestones)}
end

-- }======================================================================

return M
