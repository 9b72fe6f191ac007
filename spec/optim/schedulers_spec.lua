-- The schedulers people use for transformers (LinearLR, OneCycleLR,
-- SequentialLR, CosineAnnealingWarmRestarts) and the warm-up-then-cosine
-- recipes, against PyTorch.
--
-- Reference values: spec/reference/schedulers_values.lua, written by
-- spec/reference/make_schedulers_reference.py (needs PyTorch; this spec
-- never does).  Both sides compute in doubles:
-- |a - b| <= 1e-12 * max(|b|, 0.01) for every lr and momentum.
local ember = require "ember"
local optim = ember.optim

local R = dofile("spec/reference/schedulers_values.lua")

--- The case's optimizer: group k (of n) at lr 0.1 * k, SGD with momentum
-- 0.9 or Adam.
local function make_opt(kind, n)
  local groups = {}
  for k = 1, n do
    groups[k] = {params = {ember.zeros(1, {dtype = "float64", requires_grad = true})}, lr = 0.1 * k}
  end
  if kind == "adam" then return optim.Adam(groups, {lr = 0.1}) end
  return optim.SGD(groups, {lr = 0.1, momentum = 0.9})
end

local function close(a, b) return math.abs(a - b) <= 1e-12 * math.max(math.abs(b), 0.01) end

local function momenta(opt)
  local out = {}
  for i, g in ipairs(opt.param_groups) do out[i] = g.betas and g.betas[1] or g.momentum end
  return out
end

describe("transformer schedulers match torch.optim.lr_scheduler", function()
  for _, case in ipairs(R.cases) do
    it(case.name, function()
      local opt = make_opt(case.optimizer, case.groups)
      local sched = case.make(opt, optim)
      local function check(k)
        local got, moms = sched:get_last_lr(), momenta(opt)
        for gi, want in ipairs(case.lrs[k]) do
          local what = ("%s: lr of group %d after %d steps"):format(case.name, gi, k - 1)
          assert(close(got[gi], want), ("%s is %.17g, PyTorch gives %.17g"):format(what, got[gi], want))
          assert.are.equal(got[gi], opt.param_groups[gi].lr, what)
          if case.momentum then
            local m = case.momentum[k][gi]
            assert(close(moms[gi], m), ("%s: momentum of group %d after %d steps is %.17g, PyTorch gives %.17g")
                   :format(case.name, gi, k - 1, moms[gi], m))
          end
        end
      end
      check(1)
      for k = 1, #case.lrs - 1 do
        if case.epochs then sched:step(case.epochs[k]) else sched:step() end
        check(k + 1)
      end
    end)
  end

  it("are also optim.lr_scheduler.X", function()
    for _, name in ipairs{"LinearLR", "OneCycleLR", "SequentialLR", "CosineAnnealingWarmRestarts"} do
      assert.is_not_nil(optim[name], name)
      assert.are.equal(optim.lr_scheduler[name], optim[name])
    end
  end)
end)

describe("state dicts", function()
  -- continuing a scheduler after a load equals never stopping
  local makers = {
    LinearLR = function(o) return optim.LinearLR(o, 0.2, 1, 6) end,
    OneCycleLR = function(o) return optim.OneCycleLR(o, 1, {total_steps = 20, three_phase = true}) end,
    CosineAnnealingWarmRestarts = function(o) return optim.CosineAnnealingWarmRestarts(o, 3, 2) end,
    SequentialLR = function(o)
      return optim.SequentialLR(o, {optim.LinearLR(o, 0.1, 1, 4), optim.CosineAnnealingLR(o, 10)}, {4})
    end,
  }
  for name, make in pairs(makers) do
    it(name, function()
      local a_opt = make_opt("sgd", 1)
      local a = make(a_opt)
      for _ = 1, 12 do a:step() end
      local b_opt = make_opt("sgd", 1)
      local b = make(b_opt)
      for _ = 1, 5 do b:step() end
      local sd = b:state_dict()
      local osd = b_opt:state_dict()
      assert.is_nil(sd.optimizer)
      local c_opt = make_opt("sgd", 1)
      local c = make(c_opt)
      c_opt:load_state_dict(osd)
      c:load_state_dict(sd)
      for _ = 1, 7 do c:step() end
      assert.are.same(a:get_last_lr(), c:get_last_lr())
      assert.are.same(a_opt.param_groups[1].momentum, c_opt.param_groups[1].momentum)
    end)
  end
end)

describe("errors", function()
  local function p() return ember.zeros(1, {requires_grad = true}) end
  local cases = {
    {function() optim.LinearLR(optim.SGD({p()}, {lr = 1}), 0) end,
     "LinearLR: start_factor must be a number in (0, 1], got 0"},
    {function() optim.LinearLR(optim.SGD({p()}, {lr = 1}), 0.5, 1.5) end,
     "LinearLR: end_factor must be a number in [0, 1], got 1.5"},
    {function() optim.LinearLR(optim.SGD({p()}, {lr = 1}), {total_iter = 3}) end,
     "LinearLR: unknown option 'total_iter'; did you mean 'total_iters'?"},
    {function() optim.LinearLR(optim.SGD({p()}, {lr = 1}), 0.5, {start_factor = 0.2}) end,
     "LinearLR: start_factor given twice"},
    {function() optim.LinearLR(optim.SGD({p()}, {lr = 1}), 0.5, 1, 4, 5) end,
     "LinearLR: expected at most 3 optional arguments (start_factor, end_factor, total_iters), got 4"},
    {function() optim.CosineAnnealingWarmRestarts(optim.SGD({p()}, {lr = 1}), 0) end,
     "CosineAnnealingWarmRestarts: T_0 must be an integer >= 1, got 0"},
    {function() optim.CosineAnnealingWarmRestarts(optim.SGD({p()}, {lr = 1}), 2, 1.5) end,
     "CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got 1.5"},
    {function() optim.CosineAnnealingWarmRestarts(optim.SGD({p()}, {lr = 1}), 2):step(-1) end,
     "CosineAnnealingWarmRestarts:step: epoch must be a number >= 0, got -1"},
    {function() optim.OneCycleLR(optim.SGD({p()}, {lr = 1}), 1) end,
     "OneCycleLR: give total_steps, or epochs and steps_per_epoch"},
    {function() optim.OneCycleLR(optim.SGD({p()}, {lr = 1}), 1, {total_steps = 5, anneal_strategy = "exp"}) end,
     "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got exp"},
    {function() optim.OneCycleLR(optim.SGD({p()}, {lr = 1}), 1, {total_steps = 5, pct_start = 2}) end,
     "OneCycleLR: pct_start must be a number in [0, 1], got 2"},
    {function() optim.OneCycleLR(optim.SGD({p()}, {lr = 1}), {1, 2}, {total_steps = 5}) end,
     "OneCycleLR: expected 1 values of max_lr (one per group), got 2"},
    {function() optim.OneCycleLR(optim.Adagrad({p()}), 1, {total_steps = 5}) end,
     "OneCycleLR: cycle_momentum needs an optimizer with momentum or betas (SGD, Adam, AdamW, RMSprop); pass cycle_momentum = false"},
    {function()
       local s = optim.OneCycleLR(optim.SGD({p()}, {lr = 1}), 1, {total_steps = 2})
       for _ = 1, 3 do s:step() end
     end, "OneCycleLR: stepped 4 times, more than total_steps (2)"},
    {function() local o = optim.SGD({p()}, {lr = 1}); optim.SequentialLR(o, {}, {}) end,
     "SequentialLR: schedulers must be a non-empty list of schedulers, got table"},
    {function()
       local o = optim.SGD({p()}, {lr = 1})
       optim.SequentialLR(o, {optim.LinearLR(o), optim.StepLR(o, 2)}, {})
     end, "SequentialLR: expected 1 milestones (one fewer than the schedulers), got 0"},
    {function()
       local o, o2 = optim.SGD({p()}, {lr = 1}), optim.SGD({p()}, {lr = 1})
       optim.SequentialLR(o, {optim.LinearLR(o), optim.StepLR(o2, 2)}, {3})
     end, "SequentialLR: schedulers[2] belongs to another optimizer"},
    {function()
       local o = optim.SGD({p()}, {lr = 1})
       optim.SequentialLR(o, {optim.LinearLR(o), optim.ReduceLROnPlateau(o)}, {3})
     end, "SequentialLR: schedulers[2] is a ReduceLROnPlateau, which steps on a metric"},
    {function()
       local o = optim.SGD({p()}, {lr = 1})
       optim.SequentialLR(o, {optim.LinearLR(o), optim.StepLR(o, 2), optim.StepLR(o, 3)}, {5, 2})
     end, "SequentialLR: milestones must not decrease, got 2 after 5"},
  }
  for i, c in ipairs(cases) do
    it(("%d: %s"):format(i, c[2]), function() assert.has_error(c[1], c[2]) end)
  end

  it("a rejected OneCycleLR leaves the optimizer's groups alone", function()
    local o = optim.SGD({p()}, {lr = 1, momentum = 0.5})
    assert.has_error(function() optim.OneCycleLR(o, 1, {total_steps = 5, base_momentum = -1}) end)
    assert.is_nil(o.param_groups[1].initial_lr)
    assert.are.equal(0.5, o.param_groups[1].momentum)
    assert.are.equal(1, o.param_groups[1].lr)
  end)
end)
