-- The fused optimizer kernels (core/cpu/optim.c) bit for bit.
--
-- The kernels update every element in double and round once to the
-- parameter's dtype; they are vectorised, with a separate loop for each
-- combination of state tensors and a branch-free one for the common
-- options.  Here each configuration of each optimizer is run through
-- ember._*_step and compared, element by element and bit for bit, with the
-- same arithmetic done in Lua (whose numbers are doubles and whose
-- operations are never fused), rounded to float32 by Ember's cast.
-- The sizes cover a vector tail (37 elements, three steps) and the
-- threaded path (33,000 >= EMBER_CPU_PARALLEL_MIN elements on 2 threads,
-- two steps).
--
-- Adam's step counts are 1, 3 and 4 (never 2): Lua computes x^2 as x*x,
-- the C code as pow(x, 2), which need not be the same bits.
local ember = require "ember"

local pack = string.pack

local function same_bits(a, b) return pack("<d", a) == pack("<d", b) end

--- A list of doubles rounded to float32 (the C cast, through Ember).
local function f32_list(list)
  return ember.tensor(list, {dtype = "float64"}):float():totable()
end

--- Random values: normal, with exact zeros and negative zeros mixed in.
local function values(n, seed, positive)
  ember.manual_seed(seed)
  local t = ember.randn(n, {dtype = "float64"}):totable()
  for i = 1, n, 7 do t[i] = 0.0 end
  for i = 4, n, 11 do t[i] = -0.0 end
  if positive then
    for i = 1, n do t[i] = math.abs(t[i]) end
  end
  return t
end

--- A tensor of dtype from a Lua list, and the list as stored.
local function tensor(list, dtype)
  local t = ember.tensor(list, {dtype = "float64"}):to(dtype)
  return t, t:totable()
end

--- t holds exactly the values of `want` (already rounded as stored): equal,
-- and zeros of the same sign.
local function check(what, t, want)
  local got = t:totable()
  assert.are.equal(#want, #got, what .. ": length")
  for i = 1, #want do
    local a, w = got[i], want[i]
    if a ~= w or (a == 0 and not same_bits(a, w)) then
      error(("%s: element %d is %.17g, the double arithmetic gives %.17g")
            :format(what, i, a, w), 2)
    end
  end
end

--- The gradient as the update sees it (grad_of in core/cpu/optim.c).
local function grad_of(g, p, o)
  local d = o.maximize and -g or g
  local wd = o.wd or 0
  if wd ~= 0 then d = d + wd * p end
  return d
end

--- Round the lists to dtype, as the kernel stores them.
local function store(dtype, lists)
  if dtype ~= "float32" then return end
  for k, l in pairs(lists) do lists[k] = f32_list(l) end
end

-- {======================================================================
-- The optimizers: state tensors, one step in C, one step in Lua
-- =======================================================================

local optimizers = {}

optimizers.sgd = {
  configs = {
    {},                                              -- no momentum: plain loop
    {wd = 0.1, maximize = true},
    {momentum = 0.9},                                -- plain loop with a buffer
    {momentum = 0.9, nesterov = true},
    {momentum = 0.8, dampening = 0.25, wd = 0.05, maximize = true},
  },
  state = function(o) return o.momentum and {"buf"} or {} end,
  c_step = function(p, g, s, o, t)
    ember._sgd_step(p, g, s.buf, 0.1, o.momentum or 0, o.dampening or 0, o.wd or 0,
                    o.nesterov or false, o.maximize or false, t == 1)
  end,
  lua_step = function(P, G, S, o, t)
    local lr, mom, damp = 0.1, o.momentum or 0, o.dampening or 0
    for i = 1, #P do
      local d = grad_of(G[i], P[i], o)
      if o.momentum then
        local b = t == 1 and d or mom * S.buf[i] + (1 - damp) * d
        S.buf[i] = b
        d = o.nesterov and d + mom * b or b
      end
      P[i] = P[i] - lr * d
    end
  end,
}

--- Adam and AdamW (decoupled) in the C code's order.
local function adam_lua(P, G, S, o, t)
  local lr, b1, b2, eps = o.lr or 1e-3, 0.9, 0.999, 1e-8
  local step_size = lr / (1 - b1 ^ t)
  local bc2 = math.sqrt(1 - b2 ^ t)
  local decay = o.decoupled and 1 - lr * o.wd or 1
  local og = {wd = o.decoupled and 0 or o.wd, maximize = o.maximize}
  for i = 1, #P do
    local d = grad_of(G[i], P[i], og)
    local p = P[i] * decay
    local m = b1 * S.m[i] + (1 - b1) * d
    local v = b2 * S.v[i] + (1 - b2) * d * d
    S.m[i], S.v[i] = m, v
    if o.amsgrad then
      if v > S.vmax[i] then S.vmax[i] = v end
      v = S.vmax[i]
    end
    P[i] = p - step_size * (m / (math.sqrt(v) / bc2 + eps))
  end
end

optimizers.adam = {
  configs = {
    {wd = 0},                                        -- the branch-free loop
    {wd = 0, lr = 0.01},
    {wd = 0.1},
    {wd = 0, maximize = true},
    {wd = 0.05, amsgrad = true, maximize = true},
    {wd = 0, amsgrad = true},
    {wd = 0.01, decoupled = true},                   -- AdamW: plain loop, decay
    {wd = 0.3, decoupled = true, amsgrad = true},
  },
  state = function(o) return o.amsgrad and {"m", "v", "vmax"} or {"m", "v"} end,
  positive = {v = true, vmax = true},
  steps = {1, 3, 4},
  c_step = function(p, g, s, o, t)
    ember._adam_step(p, g, s.m, s.v, s.vmax, t, o.lr or 1e-3, 0.9, 0.999, 1e-8, o.wd,
                     o.decoupled or false, o.maximize or false)
  end,
  lua_step = adam_lua,
}

optimizers.rmsprop = {
  configs = {
    {wd = 0},                                        -- the plain loop
    {wd = 0.1, maximize = true},
    {wd = 0, centered = true},
    {wd = 0, momentum = 0.9},
    {wd = 0.01, momentum = 0.5, centered = true, maximize = true},
  },
  state = function(o)
    local s = {"sq"}
    if o.momentum then s[#s + 1] = "buf" end
    if o.centered then s[#s + 1] = "ga" end
    return s
  end,
  positive = {sq = true},
  c_step = function(p, g, s, o)
    ember._rmsprop_step(p, g, s.sq, s.buf, s.ga, 0.01, 0.99, 1e-8, o.wd, o.momentum or 0,
                        o.maximize or false)
  end,
  lua_step = function(P, G, S, o)
    local lr, alpha, eps, mom = 0.01, 0.99, 1e-8, o.momentum or 0
    for i = 1, #P do
      local d = grad_of(G[i], P[i], o)
      local sq = alpha * S.sq[i] + (1 - alpha) * d * d
      S.sq[i] = sq
      local avg
      if o.centered then
        local ga = alpha * S.ga[i] + (1 - alpha) * d
        S.ga[i] = ga
        avg = math.sqrt(sq - ga * ga)
      else
        avg = math.sqrt(sq)
      end
      avg = avg + eps
      if o.momentum then
        local b = mom * S.buf[i] + d / avg
        S.buf[i] = b
        P[i] = P[i] - lr * b
      else
        P[i] = P[i] - lr * (d / avg)
      end
    end
  end,
}

optimizers.adagrad = {
  configs = {
    {wd = 0},                                        -- the plain loop
    {wd = 0.1, lr_decay = 0.01, maximize = true},
  },
  state = function() return {"sum"} end,
  positive = {sum = true},
  c_step = function(p, g, s, o, t)
    ember._adagrad_step(p, g, s.sum, t, 0.01, o.lr_decay or 0, o.wd, 1e-10,
                        o.maximize or false)
  end,
  lua_step = function(P, G, S, o, t)
    local clr = 0.01 / (1 + (t - 1) * (o.lr_decay or 0))
    for i = 1, #P do
      local d = grad_of(G[i], P[i], o)
      local s = S.sum[i] + d * d
      S.sum[i] = s
      P[i] = P[i] - clr * (d / (math.sqrt(s) + 1e-10))
    end
  end,
}

-- }======================================================================

local function describe_config(o)
  local keys = {}
  for k in pairs(o) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(o[k]) end
  return #parts > 0 and table.concat(parts, " ") or "defaults"
end

--- Run the steps (three, or `nsteps`) of one configuration in C and in
-- Lua.
local function run_case(opt, o, dtype, n, seed, nsteps)
  local P, S, ST = nil, {}, {}
  local p
  p, P = tensor(values(n, seed), dtype)
  for k, name in ipairs(opt.state(o)) do
    local list = values(n, seed + k, opt.positive and opt.positive[name])
    if name == "vmax" then
      -- below v for some elements, above for others
      for i = 1, n do list[i] = list[i] * 0.5 end
    elseif name == "ga" then
      -- |ga| < sqrt(sq), so that sq - ga^2 stays positive step after step
      for i = 1, n do list[i] = (list[i] < 0 and -0.5 or 0.5) * math.sqrt(ST.sq[i]) end
    end
    S[name], ST[name] = tensor(list, dtype)
  end
  for si, t in ipairs(opt.steps or {1, 2, 3}) do
    if nsteps and si > nsteps then break end
    local g, G = tensor(values(n, seed + 10 * si + 5), dtype)
    opt.c_step(p, g, S, o, t)
    opt.lua_step(P, G, ST, o, t)
    local rounded = {P = P}
    store(dtype, rounded)
    P = rounded.P
    store(dtype, ST)
    local what = ("step %d"):format(t)
    check(what .. ": the parameter", p, P)
    for name, s in pairs(S) do check(what .. ": " .. name, s, ST[name]) end
  end
end

describe("fused optimizer kernels", function()
  local threads
  setup(function() threads = ember.get_num_threads() end)
  teardown(function() ember.set_num_threads(threads) end)

  for _, name in ipairs{"sgd", "adam", "rmsprop", "adagrad"} do
    local opt = optimizers[name]
    describe(name, function()
      for ci, o in ipairs(opt.configs) do
        for _, dtype in ipairs{"float32", "float64"} do
          it(("gives the bits of the double arithmetic: %s, %s"):format(describe_config(o), dtype), function()
            ember.set_num_threads(1)
            run_case(opt, o, dtype, 37, 100 * ci)
            ember.set_num_threads(2)          -- two slices of 16,500
            run_case(opt, o, dtype, 33000, 100 * ci + 50, 2)
          end)
        end
      end
    end)
  end

  it("copies a gradient that shares memory with the parameter", function()
    local p = ember.tensor({1, -2, 3, 0.5}, {dtype = "float64"})
    ember._sgd_step(p, p, nil, 0.25, 0, 0, 0, false, false, false)
    assert.are.same({0.75, -1.5, 2.25, 0.375}, p:totable())
    -- a view of the same storage, shifted: each element sees its old value
    local base = ember.tensor({1, 2, 3, 4, 5}, {dtype = "float64"})
    local q, gq = base:narrow(1, 1, 4), base:narrow(1, 2, 4)
    ember._sgd_step(q, gq, nil, 1, 0, 0, 0, false, false, false)
    assert.are.same({-1, -1, -1, -1, 5}, base:totable())
  end)

  it("copies a gradient that shares memory with a state tensor", function()
    local p = ember.tensor({1, 2}, {dtype = "float64"})
    local buf = ember.tensor({1, 1}, {dtype = "float64"})
    ember._sgd_step(p, buf, buf, 0.5, 0.5, 0, 0, false, false, false)
    -- buf = 0.5 * 1 + 1 * 1 = 1.5 from the old gradient 1; p -= 0.5 * 1.5
    assert.are.same({0.25, 1.25}, p:totable())
    assert.are.same({1.5, 1.5}, buf:totable())
  end)

  it("refuses state tensors that share memory, changing nothing", function()
    local p, g = ember.tensor({1, 2}), ember.ones(2)
    local m = ember.zeros(2)
    assert.has_error(function()
      ember._adam_step(p, g, m, m, nil, 1, 0.1, 0.9, 0.999, 1e-8, 0, false, false)
    end, "adam_step: exp_avg and exp_avg_sq share memory")
    local v, big = ember.zeros(2), ember.zeros(4)
    assert.has_error(function()
      ember._adam_step(p, g, big:narrow(1, 1, 2), v, big:narrow(1, 3, 2), 1, 0.1, 0.9,
                       0.999, 1e-8, 0, true, false)
    end, "adamw_step: exp_avg and max_exp_avg_sq share memory")
    local sq = ember.zeros(2)
    assert.has_error(function()
      ember._rmsprop_step(p, g, sq, sq, nil, 0.01, 0.99, 1e-8, 0, 0.9, false)
    end, "rmsprop_step: square_avg and the momentum buffer share memory")
    assert.are.same({1, 2}, p:totable())
    assert.are.same({0, 0}, m:totable())
    assert.are.same({0, 0}, sq:totable())
  end)
end)
