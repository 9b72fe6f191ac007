-- Gradient accumulation: fit{accumulate = n}, clip_grad_norm at the step,
-- and the manual-loop pattern docs/training.md shows.
local ember = require "ember"
local nn, optim = ember.nn, ember.optim

--- n rows of a regression/classification problem (float32 x, int64 y).
local function problem(n)
  ember.manual_seed(11)
  local x = ember.randn(n, 6)
  local y = ember.randint(1, 4, {n})
  return x, y
end

--- The same small MLP (no dropout) every call.
local function mlp()
  ember.manual_seed(3)
  return nn.Sequential{nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 4)}
end

--- The largest absolute difference between the weights of two models.
local function max_diff(a, b)
  local sb, worst = b:state_dict(), 0
  for k, t in pairs(a:state_dict()) do
    worst = math.max(worst, (t - sb[k]):abs():max():item())
  end
  return worst
end

--- fit `model` with SGD over (x, y), the shuffles drawn from seed 5.
local function fit(model, x, y, opts)
  model:compile{optimizer = optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9}),
                loss = nn.CrossEntropyLoss()}
  ember.manual_seed(5)
  local o = {epochs = 3, verbose = 0}
  for k, v in pairs(opts) do o[k] = v end
  return model:fit(x, y, o)
end

describe("fit{accumulate = n}", function()
  it("accumulate = 4 at batch 8 gives the weights of batch 32 (within 1e-6)", function()
    -- 96 rows: three groups of four full batches per epoch
    local x, y = problem(96)
    local a, b = mlp(), mlp()
    fit(a, x, y, {batch_size = 32})
    fit(b, x, y, {batch_size = 8, accumulate = 4})
    local d = max_diff(a, b)
    assert(d <= 1e-6, ("weights differ by %g"):format(d))
    assert(max_diff(a, mlp()) > 1e-2, "training changed nothing")
  end)

  it("an uneven epoch end steps with the last group's own mean", function()
    -- 100 rows at batch 8: 13 batches, groups 4+4+4+1, the last batch of 4
    -- rows; batch 32 gives 32+32+32+4: the same four steps
    local x, y = problem(100)
    local a, b = mlp(), mlp()
    fit(a, x, y, {batch_size = 32})
    fit(b, x, y, {batch_size = 8, accumulate = 4})
    local d = max_diff(a, b)
    assert(d <= 1e-6, ("weights differ by %g"):format(d))
    -- 10 batches with accumulate 3: groups 3+3+3+1 (the last batch full)
    local c, e = mlp(), mlp()
    fit(c, x, y, {batch_size = 30, shuffle = false})
    fit(e, x, y, {batch_size = 10, accumulate = 3, shuffle = false})
    d = max_diff(c, e)
    assert(d <= 1e-6, ("weights differ by %g"):format(d))
  end)

  it("counts batches as before; callbacks see the optimizer steps", function()
    local x, y = problem(100)
    local seen, begins = {}, 0
    local h = fit(mlp(), x, y, {batch_size = 8, accumulate = 4, epochs = 2, callbacks = {{
      on_train_batch_begin = function() begins = begins + 1 end,
      on_train_batch_end = function(b, logs)
        seen[#seen + 1] = {b, logs.stepped, logs.optimizer_steps, logs.size}
      end}}})
    assert.are.equal(26, begins)
    assert.are.equal(13, h.params.steps)
    assert.are.equal(4, h.params.accumulate)
    assert.are.equal(2, #h.loss)
    assert.are.same({4, true, 1, 8}, seen[4])
    assert.are.same({3, false, 0, 8}, seen[3])
    assert.are.same({13, true, 4, 4}, seen[13])   -- the short group at the epoch's end
    assert.are.same({14, false, 4, 8}, {seen[14][1] + 13, seen[14][2], seen[14][3], seen[14][4]})
    assert.are.same({13, true, 8, 4}, seen[26])
  end)

  it("the loss shown is the batches' loss, not the scaled one", function()
    local x, y = problem(64)
    local b = fit(mlp(), x, y, {batch_size = 8, epochs = 1, shuffle = false, accumulate = 8})
    -- one step at the end: all of b's batches see the initial weights, so
    -- the epoch's loss is the initial model's mean loss (not 1/8 of it)
    local want = nn.CrossEntropyLoss()(mlp()(x), y):item()
    assert.is_true(math.abs(b.loss[1] - want) < 1e-5)
  end)

  it("clip_grad_norm clips the accumulated gradient just before each step", function()
    local x, y = problem(32)
    local a = mlp()
    fit(a, x, y, {batch_size = 8, accumulate = 4, shuffle = false, epochs = 1,
                  clip_grad_norm = 0.05})
    -- by hand: the mean gradient over the 32 rows, clipped, one SGD step
    local b = mlp()
    local opt = optim.SGD(b:parameters(), {lr = 0.1, momentum = 0.9})
    nn.CrossEntropyLoss()(b(x), y):backward()
    local norm = nn.utils.clip_grad_norm_(b:parameters(), 0.05):item()
    assert.is_true(norm > 0.05)   -- the clip mattered
    opt:step()
    local d = max_diff(a, b)
    assert(d <= 1e-6, ("weights differ by %g"):format(d))
  end)

  it("a NaN loss inside a group stops before any step of that group", function()
    local x, y = problem(32)
    x[{{10, 10}}] = 0 / 0
    local m = mlp()
    local h = fit(m, x, y, {batch_size = 4, accumulate = 4, shuffle = false, epochs = 1})
    assert.are.equal("nan", h.stopped.reason)
    assert.are.equal(3, h.stopped.batch)
    assert.are.equal(0, max_diff(m, mlp()))
  end)

  it("works through a DistributedDataParallel wrapper (world of one)", function()
    local x, y = problem(96)
    local a, b = mlp(), nn.DistributedDataParallel(mlp())
    fit(a, x, y, {batch_size = 32})
    fit(b, x, y, {batch_size = 8, accumulate = 4})
    local d = max_diff(a, b.module)
    assert(d <= 1e-6, ("weights differ by %g"):format(d))
  end)

  it("rejects bad options and changes nothing", function()
    local x, y = problem(16)
    local m = mlp()
    m:compile{optimizer = optim.SGD(m:parameters(), {lr = 0.1}), loss = nn.CrossEntropyLoss()}
    assert.has_error(function() m:fit(x, y, {accumulate = 0, verbose = 0}) end,
      "fit: accumulate must be >= 1, got 0")
    assert.has_error(function() m:fit(x, y, {accumulate = 1.5, verbose = 0}) end)
    assert.has_error(function() m:fit(x, y, {clip_grad_norm = -1, verbose = 0}) end,
      "fit: clip_grad_norm must be a number > 0, got -1")
    assert.are.equal(0, max_diff(m, mlp()))
  end)
end)

describe("the manual accumulation loop (docs/training.md)", function()
  it("equals one batch of all the micro-batches' rows", function()
    local x, y = problem(32)
    local crit = nn.CrossEntropyLoss()
    local a = mlp()
    local oa = optim.SGD(a:parameters(), {lr = 0.1})
    local accumulate = 4
    oa:zero_grad()
    for i = 1, accumulate do
      local xb, yb = x:narrow(1, (i - 1) * 8 + 1, 8), y:narrow(1, (i - 1) * 8 + 1, 8)
      local loss = crit(a(xb), yb) / accumulate
      loss:backward()
    end
    oa:step()
    local b = mlp()
    local ob = optim.SGD(b:parameters(), {lr = 0.1})
    crit(b(x), y):backward()
    ob:step()
    local d = max_diff(a, b)
    assert(d <= 1e-6, ("weights differ by %g"):format(d))
  end)
end)
