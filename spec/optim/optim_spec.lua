-- ember.optim: optimizers and lr schedulers against PyTorch, state dicts,
-- parameter groups, the fused C steps and every error.
--
-- Reference values: spec/reference/optim_values.lua, written by
-- spec/reference/make_optim_reference.py (needs PyTorch; this spec never
-- does):
--
--     /usr/bin/python3 spec/reference/make_optim_reference.py
--
-- Tolerances, per element, with b the reference (PyTorch in float64) and a
-- Ember's value after each of the 5 steps:
--   float32: |a - b| <= 1e-5 * max(1, |b|)
--   float64: |a - b| <= 1e-10 * max(1, |b|)
--   scheduler lrs (double arithmetic in both): |a - b| <= 1e-12 * |b|
--
-- Gradients reach the optimizers through p.grad, set directly here.
local ember = require "ember"
local optim = ember.optim

local R = dofile("spec/reference/optim_values.lua")
local TOL = {float32 = 1e-5, float64 = 1e-10}

-- {======================================================================
-- Helpers
-- =======================================================================

local function set_grad(p, g) p.grad = g end

local function param(data, shape, dtype)
  return ember.tensor(data, {dtype = dtype}):view(shape):requires_grad_(true)
end

local function flat(t) return t:reshape(-1):totable() end

local function assert_close(got, want, tol, what)
  assert.are.equal(#want, #got, what .. ": length")
  for i = 1, #want do
    local a, b = got[i], want[i]
    if not (math.abs(a - b) <= tol * math.max(1, math.abs(b))) then
      error(("%s: element %d is %.17g, PyTorch gives %.17g (tolerance %g)")
            :format(what, i, a, b, tol), 2)
    end
  end
end

--- The reference's parameters in dtype (P[1] [2,3], P[2] [4]).
local function ref_params(dtype)
  local ps = {}
  for i, p in ipairs(R.params) do ps[i] = param(p.data, p.shape, dtype) end
  return ps
end

--- Feed reference step s's gradients to the parameters in `used`.
local function feed(ps, used, s, dtype)
  for _, i in ipairs(used) do
    set_grad(ps[i], ember.tensor(R.grads[s][i], {dtype = dtype}):view(R.params[i].shape))
  end
end

--- An optimizer for a reference case, and the parameter positions it uses.
local function make(case, ps)
  if not case.groups then return optim[case.optimizer]({ps[1]}, case.options), {1} end
  local groups, used = {}, {}
  for gi, g in ipairs(case.groups) do
    local t = {params = {}}
    for k, v in pairs(g) do if k ~= "params" then t[k] = v end end
    for _, i in ipairs(g.params) do
      t.params[#t.params + 1] = ps[i]
      used[#used + 1] = i
    end
    groups[gi] = t
  end
  return optim[case.optimizer](groups, case.options), used
end

-- }======================================================================

describe("ember.optim", function()

  -- {====================================================================
  -- Against PyTorch
  -- =====================================================================

  describe("matches torch.optim", function()
    for _, case in ipairs(R.optimizers) do
      for _, dtype in ipairs{"float32", "float64"} do
        it(("%s (%s)"):format(case.name, dtype), function()
          local ps = ref_params(dtype)
          local opt, used = make(case, ps)
          for s = 1, R.steps do
            feed(ps, used, s, dtype)
            opt:step()
            for _, i in ipairs(used) do
              assert_close(flat(ps[i]), case.expected[s][i], TOL[dtype],
                           ("%s step %d parameter %d"):format(case.name, s, i))
            end
          end
        end)
      end
    end
  end)

  describe("schedulers match torch.optim.lr_scheduler", function()
    for _, case in ipairs(R.schedulers) do
      it(case.name, function()
        local groups = {}
        for k = 1, case.groups do
          groups[k] = {params = {param({0}, {1}, "float32")}, lr = 0.1 * k}
        end
        local opt = optim.SGD(groups, {lr = 0.1})
        local sched = optim.lr_scheduler[case.scheduler](opt, case.args())
        local function check(k)
          local got = sched:get_last_lr()
          for gi, want in ipairs(case.lrs[k]) do
            local what = ("%s: lr of group %d after %d steps"):format(case.name, gi, k - 1)
            assert(math.abs(got[gi] - want) <= 1e-12 * math.abs(want),
                   ("%s is %.17g, PyTorch gives %.17g"):format(what, got[gi], want))
            assert.are.equal(got[gi], opt.param_groups[gi].lr, what)
          end
        end
        check(1)
        for k = 1, #case.lrs - 1 do
          if case.metrics then sched:step(case.metrics[k]) else sched:step() end
          check(k + 1)
        end
      end)
    end

    it("are also optim.StepLR and so on", function()
      for _, name in ipairs{"StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
                            "ReduceLROnPlateau", "LambdaLR"} do
        assert.are.equal(optim.lr_scheduler[name], optim[name])
      end
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- State dicts
  -- =====================================================================

  describe("state_dict", function()
    local cases = {
      {"SGD", {lr = 0.1, momentum = 0.9, nesterov = true}},
      {"Adam", {lr = 0.05, amsgrad = true}},
      {"AdamW", {lr = 0.05}},
      {"RMSprop", {lr = 0.01, centered = true, momentum = 0.5}},
      {"Adagrad", {lr = 0.1, lr_decay = 0.1, initial_accumulator_value = 0.2}},
    }
    for _, c in ipairs(cases) do
      it(c[1] .. ": continuing after load_state_dict equals not stopping", function()
        local groups = function(ps) return {{params = {ps[1]}}, {params = {ps[2]}, lr = 0.02}} end
        local a = ref_params("float64")
        local oa = optim[c[1]](groups(a), c[2])
        for s = 1, R.steps do feed(a, {1, 2}, s, "float64"); oa:step() end

        local b = ref_params("float64")
        local ob = optim[c[1]](groups(b), c[2])
        for s = 1, 2 do feed(b, {1, 2}, s, "float64"); ob:step() end
        local sd = ob:state_dict()
        -- a fresh optimizer over fresh tensors holding b's values
        local c2 = {param(flat(b[1]), {2, 3}, "float64"), param(flat(b[2]), {4}, "float64")}
        local oc = optim[c[1]](groups(c2), c[2])
        oc:load_state_dict(sd)
        ob:step()  -- b moves on (no new grads: unchanged); c must not share its state
        for s = 3, R.steps do feed(c2, {1, 2}, s, "float64"); oc:step() end
        for i = 1, 2 do assert.are.same(flat(a[i]), flat(c2[i])) end
      end)
    end

    it("has PyTorch's layout, positions counted from 1", function()
      local ps = ref_params("float32")
      local opt = optim.Adam({{params = {ps[1]}}, {params = {ps[2]}, lr = 0.1}}, {lr = 0.01})
      feed(ps, {2}, 1, "float32")
      opt:step()
      local sd = opt:state_dict()
      assert.are.same({1}, sd.param_groups[1].params)
      assert.are.same({2}, sd.param_groups[2].params)
      assert.are.equal(0.01, sd.param_groups[1].lr)
      assert.are.equal(0.1, sd.param_groups[2].lr)
      assert.are.same({0.9, 0.999}, sd.param_groups[2].betas)
      assert.is_nil(sd.state[1])  -- no grad yet: no state
      assert.are.equal(1, sd.state[2].step)
      assert.is_true(ember.is_tensor(sd.state[2].exp_avg))
      assert.are.same({4}, sd.state[2].exp_avg_sq:shape())
    end)

    it("load_state_dict replaces group options and converts state dtypes", function()
      local ps = ref_params("float64")
      local opt = optim.SGD({ps[1]}, {lr = 0.1, momentum = 0.9})
      feed(ps, {1}, 1, "float64")
      opt:step()
      local sd = opt:state_dict()
      sd.param_groups[1].lr = 0.5
      local q = param(flat(ps[1]), {2, 3}, "float32")
      local o2 = optim.SGD({q}, {lr = 0.1, momentum = 0.9})
      o2:load_state_dict(sd)
      assert.are.equal(0.5, o2.param_groups[1].lr)
      assert.are.equal("float32", o2:state_dict().state[1].momentum_buffer.dtype)
    end)

    it("load_state_dict checks groups, parameters and shapes", function()
      local ps = ref_params("float32")
      local opt = optim.Adam({ps[1]})
      feed(ps, {1}, 1, "float32")
      opt:step()
      local sd = opt:state_dict()
      local two = optim.Adam({{params = {ps[1]}}, {params = {ps[2]}}})
      assert.has_error(function() two:load_state_dict(sd) end,
        "Adam:load_state_dict: the state dict has 1 parameter groups but the optimizer has 2")
      local other = optim.Adam({ps[1], ps[2]})
      assert.has_error(function() other:load_state_dict(sd) end,
        "Adam:load_state_dict: group 1 of the state dict does not have the group's 2 parameters")
      local wrong = optim.Adam({ps[2]})
      assert.has_error(function() wrong:load_state_dict(sd) end,
        "Adam:load_state_dict: state 'exp_avg' of parameter 1 has shape [2,3] but the parameter has [4]")
      assert.has_error(function() wrong:load_state_dict(42) end,
        "Adam:load_state_dict: expected a table with state and param_groups fields")
      sd.param_groups[1].lr = -1
      assert.has_error(function() optim.Adam({ps[1]}):load_state_dict(sd) end,
        "Adam:load_state_dict: lr must be >= 0, got -1")
    end)

    it("of a scheduler: continuing after a load equals not stopping", function()
      local function sched()
        local opt = optim.SGD({param({0}, {1}, "float64")}, {lr = 1})
        return optim.CosineAnnealingLR(opt, 6, 0.1), opt
      end
      local a = sched()
      for _ = 1, 9 do a:step() end
      local b = sched()
      for _ = 1, 4 do b:step() end
      local sd = b:state_dict()
      assert.is_nil(sd.optimizer)
      local c, oc = sched()
      c:load_state_dict(sd)
      oc.param_groups[1].lr = b.optimizer.param_groups[1].lr
      for _ = 1, 5 do c:step() end
      assert.are.same(a:get_last_lr(), c:get_last_lr())
      local p = optim.ReduceLROnPlateau(optim.SGD({param({0}, {1}, "float64")}, {lr = 1}))
      p:step(1)
      local q = optim.ReduceLROnPlateau(optim.SGD({param({0}, {1}, "float64")}, {lr = 1}))
      q:load_state_dict(p:state_dict())
      assert.are.equal(1, q.best)
      assert.are.equal(1, q.last_epoch)
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Behaviour
  -- =====================================================================

  describe("optimizers", function()
    it("skip parameters without a gradient", function()
      local ps = ref_params("float32")
      local before = flat(ps[2])
      local opt = optim.Adam({ps[1], ps[2]}, {lr = 0.1})
      feed(ps, {1}, 1, "float32")
      opt:step()
      assert.are.same(before, flat(ps[2]))
      assert.is_nil(opt.state[ps[2]])
      assert.are.equal(1, opt.state[ps[1]].step)
    end)

    it("step(closure) runs the closure once and returns its result", function()
      local ps = ref_params("float32")
      local opt = optim.SGD({ps[1]}, {lr = 0.1})
      local calls = 0
      local loss = opt:step(function()
        calls = calls + 1
        feed(ps, {1}, 1, "float32")
        return 3.5
      end)
      assert.are.equal(1, calls)
      assert.are.equal(3.5, loss)
      assert.are_not.same(R.params[1].data, flat(ps[1]))
    end)

    it("read group.lr at every step (schedulers write it)", function()
      local ps = ref_params("float64")
      local opt = optim.SGD({ps[1]}, {lr = 0.1})
      opt.param_groups[1].lr = 0
      feed(ps, {1}, 1, "float64")
      opt:step()
      assert.are.same(R.params[1].data, flat(ps[1]))
      opt.param_groups[1].lr = 1
      opt:step()
      assert.are.equal(R.params[1].data[1] - R.grads[1][1][1], flat(ps[1])[1])
    end)

    it("are built Keras-style and bound later", function()
      local opt = optim.Adam{lr = 0.01, amsgrad = true}
      assert.are.equal(0, #opt.param_groups)
      assert.are.equal(0.01, opt.defaults.lr)
      assert.are.same({0.9, 0.999}, opt.defaults.betas)
      local ps = ref_params("float32")
      opt:set_params({ps[1]})
      assert.are.equal(1, #opt.param_groups)
      assert.is_true(opt.param_groups[1].amsgrad)
      opt:add_param_group({params = ps[2], lr = 0.5})
      assert.are.equal(0.5, opt.param_groups[2].lr)
      assert.are.equal(1e-8, opt.param_groups[2].eps)
      assert.has_error(function() opt:add_param_group({params = {ps[1]}}) end,
        "Adam: parameter 1 of group 3 appears more than once (a parameter may be in one group only, once)")
      opt:set_params({ps[2]})  -- replaces everything
      assert.are.equal(1, #opt.param_groups)
      assert.matches("^Adam%(lr=0.01, betas={0.9, 0.999}", tostring(opt))
    end)

    it("zero_grad sets grads to nil, or to zeros in place", function()
      local p = param({1, 2}, {2}, "float32")
      local opt = optim.SGD({p}, {lr = 0.1})
      p.grad = ember.ones(2)
      local g = p.grad
      opt:zero_grad(false)
      assert.are.same({0, 0}, g:totable())
      opt:zero_grad()
      assert.is_nil(p.grad)
    end)

    it("step works with grad mode on and does not record", function()
      local p = param({1, 2}, {2}, "float32")
      local opt = optim.SGD({p}, {lr = 0.5, momentum = 0.9})
      local loss = (p * p):sum()
      loss:backward()
      opt:step()
      assert.are.same({0, 0}, p:totable())
      assert.is_true(p.is_leaf)
      assert.is_nil(p.grad_fn)
    end)
  end)

  describe("fused steps (ember._*_step)", function()
    it("update strided parameters and stride-0 gradients", function()
      local base = ember.tensor({{1, 2, 3}, {4, 5, 6}}, {dtype = "float64"})
      local pt = base:t()                      -- [3,2], not contiguous
      local g = ember.tensor({0.5}, {dtype = "float64"}):expand(3, 2)
      local m, v = ember.zeros(3, 2, {dtype = "float64"}), ember.zeros(3, 2, {dtype = "float64"})
      ember._adam_step(pt, g, m, v, nil, 1, 0.1, 0.9, 0.999, 0, 0, false, false)
      -- first Adam step with eps 0: p -= lr * sign(g)
      assert_close(flat(base), {0.9, 1.9, 2.9, 3.9, 4.9, 5.9}, 1e-15, "strided")
      assert_close(flat(m), {0.05, 0.05, 0.05, 0.05, 0.05, 0.05}, 1e-15, "exp_avg")
    end)

    it("give the same result on one thread and on several", function()
      local n = 100003
      local function run(threads)
        ember.set_num_threads(threads)
        local p = ember.linspace(-1, 1, n)
        local g = ember.linspace(2, -3, n)
        local s = ember.zeros(n)
        local b = ember.zeros(n)
        local a = ember.zeros(n)
        ember._rmsprop_step(p, g, s, b, a, 0.01, 0.9, 1e-8, 0.1, 0.5, false)
        return p
      end
      local threads = ember.get_num_threads()
      local one, many = run(1), run(4)
      ember.set_num_threads(threads)
      assert.is_true(one:equal(many))
    end)

    it("check their tensors and leave them unchanged on error", function()
      local p = ember.tensor({1, 2, 3, 4})
      local g = ember.ones(4)
      local m, v = ember.zeros(4), ember.zeros(4)
      local function adam(...)
        local args = table.pack(...)
        return function() ember._adam_step(table.unpack(args, 1, args.n)) end
      end
      assert.has_error(adam(p, ember.ones(3), m, v, nil, 1, 0.1, 0.9, 0.999, 1e-8, 0, false, false),
        "adam_step: the gradient has shape [3] but the parameter has [4]")
      assert.has_error(adam(p, g:double(), m, v, nil, 1, 0.1, 0.9, 0.999, 1e-8, 0, false, false),
        "adam_step: the gradient has dtype float64 but the parameter has float32")
      assert.has_error(adam(p, g, m, ember.zeros(2, 2), nil, 1, 0.1, 0.9, 0.999, 1e-8, 0, false, false),
        "adam_step: exp_avg_sq has shape [2,2] but the parameter has [4]")
      assert.has_error(adam(p, g, m, v, nil, 0, 0.1, 0.9, 0.999, 1e-8, 0, false, false),
        "adam_step: step must be >= 1, got 0")
      assert.has_error(adam(p, g, m, v, nil, 1, 0.1, 1, 0.999, 1e-8, 0, true, false),
        "adamw_step: beta1 must be in [0, 1), got 1")
      assert.has_error(adam(p, g, p, v, nil, 1, 0.1, 0.9, 0.999, 1e-8, 0, false, false),
        "adam_step: exp_avg shares memory with the parameter")
      local strided = ember.zeros(2, 2):t():reshape(4)  -- contiguous copy: fine
      assert.is_true(strided:is_contiguous())
      assert.has_error(adam(p, g, m, ember.zeros(8):view(4, 2):select(2, 1), nil, 1, 0.1, 0.9,
                            0.999, 1e-8, 0, false, false),
        "adam_step: exp_avg_sq must be contiguous")
      assert.has_error(adam(ember.tensor({1, 2, 3, 4}, {dtype = "int64"}), g, m, v, nil, 1, 0.1,
                            0.9, 0.999, 1e-8, 0, false, false),
        "adam_step: the parameter has dtype int64; only float32 and float64 parameters can be optimized")
      assert.has_error(adam(ember.zeros(1):expand(4), g, m, v, nil, 1, 0.1, 0.9, 0.999, 1e-8, 0,
                            false, false),
        "adam_step: cannot write in place to an expanded parameter (several elements share memory)")
      assert.has_error(function()
        ember._sgd_step(p, g, nil, 0.1, 0.9, 0, 0, false, false, true)
      end, "sgd_step: the momentum buffer must not be NULL")
      assert.has_error(function()
        ember._sgd_step(p, g, nil, 0.1, 0, 0, 0, true, false, false)
      end, "sgd_step: nesterov momentum requires a momentum > 0 and zero dampening")
      assert.has_error(function()
        ember._rmsprop_step(p, g, v, nil, nil, -0.1, 0.99, 1e-8, 0, 0, false)
      end, "rmsprop_step: lr must be >= 0, got -0.1")
      assert.has_error(function()
        ember._adagrad_step(p, g, v, 1, 0.1, -1, 0, 1e-10, false)
      end, "adagrad_step: lr_decay must be >= 0, got -1")
      assert.are.same({1, 2, 3, 4}, p:totable())
      assert.are.same({0, 0, 0, 0}, m:totable())
      assert.are.same({0, 0, 0, 0}, v:totable())
    end)

    it("raise Lua argument errors for wrong Lua types", function()
      local p, g, b = ember.zeros(2), ember.ones(2), ember.zeros(2)
      assert.has_error(function() ember._sgd_step(p, g, b, "x", 0.9, 0, 0, false, false, true) end)
      assert.has_error(function() ember._sgd_step(p, 1, b, 0.1, 0.9, 0, 0, false, false, true) end)
      assert.has_error(function() ember._sgd_step(p, g, b, 0.1, 0.9, 0, 0, 1, false, true) end)
      assert.has_error(function() ember._adam_step(p, g, b, b, nil, 1.5, 0.1, 0.9, 0.9, 0, 0) end)
      assert.has_error(function() ember._adagrad_step(p, g) end)
      assert.are.same({0, 0}, p:totable())
    end)
  end)

  -- }====================================================================

  -- {====================================================================
  -- Errors in Lua
  -- =====================================================================

  describe("errors", function()
    local p = ember.zeros(2)
    local cases = {
      {function() optim.SGD({p}, {lr = -1}) end, "SGD: lr must be >= 0, got -1"},
      {function() optim.SGD({p}) end,
       "SGD: lr is required (in the options or in every parameter group)"},
      {function() optim.SGD({p}, {lr = 0.1, momentum = -0.5}) end,
       "SGD: momentum must be >= 0, got -0.5"},
      {function() optim.SGD({p}, {lr = 0.1, nesterov = true}) end,
       "SGD: nesterov momentum requires a momentum > 0 and zero dampening"},
      {function() optim.SGD({p}, {lr = 0.1, momentum = 0.9, dampening = 0.1, nesterov = true}) end,
       "SGD: nesterov momentum requires a momentum > 0 and zero dampening"},
      {function() optim.SGD({p}, {lr = 0.1, mometum = 0.9}) end, "SGD: unknown option 'mometum'; did you mean 'momentum'?"},
      {function() optim.SGD({p}, {lr = "fast"}) end, "SGD: lr must be a number, got string"},
      {function() optim.SGD({p}, {lr = 0.1, nesterov = 1}) end,
       "SGD: nesterov must be a boolean, got number"},
      {function() optim.Adam({p}, {betas = {0.9, 1}}) end, "Adam: betas[2] must be in [0, 1), got 1"},
      {function() optim.Adam({p}, {betas = {-0.1, 0.9}}) end, "Adam: betas[1] must be in [0, 1), got -0.1"},
      {function() optim.Adam({p}, {betas = 0.9}) end, "Adam: betas must be a table of two numbers, got 0.9"},
      {function() optim.AdamW({p}, {eps = -1}) end, "AdamW: eps must be >= 0, got -1"},
      {function() optim.AdamW({p}, {weight_decay = 0 / 0}) end,
       "AdamW: weight_decay must be >= 0, got " .. tostring(0 / 0)},
      {function() optim.RMSprop({p}, {alpha = -1}) end, "RMSprop: alpha must be >= 0, got -1"},
      {function() optim.RMSprop({p}, {momentum = -1}) end, "RMSprop: momentum must be >= 0, got -1"},
      {function() optim.Adagrad({p}, {lr_decay = -1}) end, "Adagrad: lr_decay must be >= 0, got -1"},
      {function() optim.Adagrad({p}, {initial_accumulator_value = -1}) end,
       "Adagrad: initial_accumulator_value must be >= 0, got -1"},
      {function() optim.Adam({}) end, "Adam: empty parameter list"},
      {function() optim.Adam({{params = {}}}) end, "Adam: empty parameter list"},
      {function() optim.Adam(p) end,
       "Adam: params must be a list of tensors or of parameter groups, got tensor"},
      {function() optim.Adam({p, 3}) end, "Adam: parameter 2 of group 1 is a number, not a tensor"},
      {function() optim.Adam({ember.zeros(2, {dtype = "int64"})}) end,
       "Adam: parameter 1 of group 1 has dtype int64; only floating tensors can be optimized"},
      {function() optim.Adam({{params = {p}}, {params = {ember.ones(1), p}}}) end,
       "Adam: parameter 2 of group 2 appears more than once (a parameter may be in one group only, once)"},
      {function() optim.Adam({{params = {p}}, {lr = 1}}) end,
       "Adam: parameter group 2 must be a table with a params field, got table"},
      {function() optim.Adam({params = {p}}) end,
       "Adam: pass parameter groups as a list: {{params = ...}, ...}"},
      {function() optim.Adam({{params = {p}, lr = -2}}) end, "Adam: lr must be >= 0, got -2"},
      {function() optim.Adam({p}, 0.1) end, "Adam: options must be a table, got number"},
      {function() optim.Adam({p}):add_param_group(5) end,
       "Adam: add_param_group expects a table {params = ...}, got number"},
      {function() optim.Adam({p}):step(5) end, "Adam:step: the closure must be a function, got number"},
      {function() optim.StepLR({}, 2) end, "StepLR: expected an optimizer, got table"},
      {function() optim.StepLR(optim.Adam({p}), 0) end, "StepLR: step_size must be an integer >= 1, got 0"},
      {function() optim.StepLR(optim.Adam({p}), 2, {gama = 0.5}) end, "StepLR: unknown option 'gama'; did you mean 'gamma'?"},
      {function() optim.StepLR(optim.Adam({p}), 2):step(3) end,
       "StepLR:step takes no argument (epoch arguments are deprecated in PyTorch)"},
      {function() optim.MultiStepLR(optim.Adam({p}), 5) end,
       "MultiStepLR: milestones must be a list of integers, got number"},
      {function() optim.MultiStepLR(optim.Adam({p}), {2, 2.5}) end,
       "MultiStepLR: milestones[2] must be an integer >= 0, got 2.5"},
      {function() optim.ExponentialLR(optim.Adam({p})) end, "ExponentialLR: gamma is required"},
      {function() optim.CosineAnnealingLR(optim.Adam({p}), 0) end,
       "CosineAnnealingLR: T_max must be an integer >= 1, got 0"},
      {function() optim.LambdaLR(optim.Adam({p}), {}) end,
       "LambdaLR: lr_lambda must be a function or a list of 1 functions (one per group), got table"},
      {function() optim.LambdaLR(optim.Adam({p}), function() return "x" end) end,
       "LambdaLR: lr_lambda returned string, not a number"},
      {function() optim.ReduceLROnPlateau(optim.Adam({p}), {mode = "up"}) end,
       "ReduceLROnPlateau: mode must be 'min' or 'max', got up"},
      {function() optim.ReduceLROnPlateau(optim.Adam({p}), {factor = 1}) end,
       "ReduceLROnPlateau: factor must be < 1, got 1"},
      {function() optim.ReduceLROnPlateau(optim.Adam({p}), {threshold_mode = "x"}) end,
       "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got x"},
      {function() optim.ReduceLROnPlateau(optim.Adam({p}), {min_lr = {1, 2}}) end,
       "ReduceLROnPlateau: expected 1 min_lr values (one per group), got 2"},
      {function() optim.ReduceLROnPlateau(optim.Adam({p}), {patience = -1}) end,
       "ReduceLROnPlateau: patience must be an integer >= 0, got -1"},
      {function() optim.ReduceLROnPlateau(optim.Adam({p}), {paitence = 1}) end,
       "ReduceLROnPlateau: unknown option 'paitence'; did you mean 'patience'?"},
      {function() optim.ReduceLROnPlateau(optim.Adam({p})):step() end,
       "ReduceLROnPlateau:step expects the metric (a number), got nil"},
    }
    for i, c in ipairs(cases) do
      it(("%d: %s"):format(i, c[2]), function()
        local ok, err = pcall(c[1])
        assert.is_false(ok)
        -- the message, positioned at the caller's line (this file)
        assert.are.equal(c[2], (tostring(err):gsub("^[^:]*optim_spec%.lua:%d+: ", "")))
        assert.matches("optim_spec%.lua:%d+: ", tostring(err))
      end)
    end
  end)

  -- }====================================================================
end)
