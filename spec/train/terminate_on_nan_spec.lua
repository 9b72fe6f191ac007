-- fit stops on a NaN or Inf loss (Keras's TerminateOnNaN), on by default:
-- lua/ember/train/'s terminate_on_nan option and callbacks.TerminateOnNaN.
local ember = require "ember"
local nn, callbacks = ember.nn, ember.callbacks

local function model()
  ember.manual_seed(3)
  local m = nn.Sequential{nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)}
  m:compile{optimizer = "sgd", loss = "mse"}
  return m
end

-- 64 samples in batches of 8, not shuffled: sample 20 is in batch 3
local function data()
  ember.manual_seed(5)
  return ember.randn(64, 2), ember.randn(64, 1)
end

-- Run fn with io.stdout and print captured; returns what they wrote.
local function capture(fn)
  local out, real_stdout, real_print = {}, io.stdout, _G.print
  io.stdout = {write = function(self, ...)
                 for _, s in ipairs{...} do out[#out + 1] = tostring(s) end
                 return self
               end,
               flush = function() end}
  _G.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring(select(i, ...)) end
    out[#out + 1] = table.concat(parts, "\t") .. "\n"
  end
  local ok, err = pcall(fn)
  io.stdout, _G.print = real_stdout, real_print
  if not ok then error(err, 0) end
  return table.concat(out)
end

local function params_of(m)
  local out = {}
  for i, p in ipairs(m:parameters()) do out[i] = p:detach():clone() end
  return out
end

describe("fit with a non-finite loss", function()
  it("stops at the first NaN batch, returns the history and prints why", function()
    local x, y = data()
    y[20][1] = 0 / 0
    local m = model()
    local h
    local out = capture(function()
      h = m:fit(x, y, {epochs = 3, batch_size = 8, shuffle = false, verbose = 2})
    end)
    assert.are.same({1}, h.epoch)
    assert.are.equal("nan", h.stopped.reason)
    assert.are.equal(1, h.stopped.epoch)
    assert.are.equal(3, h.stopped.batch)
    assert.are.equal("fit: loss is nan at epoch 1, batch 3; training stopped", h.stopped.message)
    assert.truthy(out:find("fit: loss is nan at epoch 1, batch 3; training stopped\n", 1, true), out)
    -- the progress line shows nan, not C's "-nan"
    assert.truthy(out:find("loss: nan", 1, true), out)
    assert.is_true(h.loss[1] ~= h.loss[1])
  end)

  it("skips the bad batch's step: the weights are those after the last finite batch", function()
    local x, y = data()
    y[20][1] = 0 / 0
    local m = model()
    m:fit(x, y, {epochs = 1, batch_size = 8, shuffle = false, verbose = 0})
    local ref = model()   -- same initial weights, only the two good batches
    ref:fit(x:narrow(1, 1, 16), y:narrow(1, 1, 16), {batch_size = 8, shuffle = false, verbose = 0})
    local got, want = params_of(m), params_of(ref)
    for i = 1, #want do
      assert.is_true(ember.equal(got[i], want[i]), "parameter " .. i)
      assert.are.equal(0, got[i]:ne(got[i]):sum():item())   -- no NaN in the weights
    end
  end)

  it("names the epoch and batch where it happens, and stops on Inf too", function()
    local x, y = data()
    local m = model()
    local h = m:fit(x, y, {epochs = 3, batch_size = 8, shuffle = false, verbose = 0,
      callbacks = {{on_epoch_begin = function(e) if e == 2 then y[35][1] = math.huge end end}}})
    assert.are.same({1, 2}, h.epoch)
    assert.are.equal("inf", h.stopped.reason)
    assert.are.equal("fit: loss is inf at epoch 2, batch 5; training stopped", h.stopped.message)
    assert.is_true(h.loss[1] == h.loss[1] and h.loss[1] < math.huge)
  end)

  it("prints nothing with verbose = 0 but still records why", function()
    local x, y = data()
    y[1][1] = 0 / 0
    local h
    local out = capture(function()
      h = model():fit(x, y, {epochs = 2, batch_size = 8, shuffle = false, verbose = 0})
    end)
    assert.are.equal("", out)
    assert.are.equal("fit: loss is nan at epoch 1, batch 1; training stopped", h.stopped.message)
  end)

  it("terminate_on_nan = false trains through (as Keras without the callback)", function()
    local x, y = data()
    y[20][1] = 0 / 0
    local h = model():fit(x, y, {epochs = 2, batch_size = 8, shuffle = false, verbose = 0,
                                 terminate_on_nan = false})
    assert.are.same({1, 2}, h.epoch)
    assert.is_nil(h.stopped)
    assert.is_true(h.loss[2] ~= h.loss[2])
  end)

  it("a finite run has no stopped field", function()
    local x, y = data()
    local h = model():fit(x, y, {epochs = 2, batch_size = 16, verbose = 0})
    assert.are.same({1, 2}, h.epoch)
    assert.is_nil(h.stopped)
  end)

  it("rejects a terminate_on_nan that is not a boolean, changing nothing", function()
    local x, y = data()
    local m = model()
    local before = params_of(m)
    local ok, err = pcall(m.fit, m, x, y, {terminate_on_nan = "yes", verbose = 0})
    assert.is_false(ok)
    assert.truthy(err:find("fit: terminate_on_nan must be a boolean, got string", 1, true), err)
    for i, p in ipairs(params_of(m)) do assert.is_true(ember.equal(p, before[i])) end
  end)
end)

describe("callbacks.TerminateOnNaN", function()
  it("stops fit with Keras's message when fit's own check is off", function()
    local x, y = data()
    y[20][1] = 0 / 0
    local cb = callbacks.TerminateOnNaN()
    local h
    local out = capture(function()
      h = model():fit(x, y, {epochs = 3, batch_size = 8, shuffle = false, verbose = 0,
                             terminate_on_nan = false, callbacks = {cb}})
    end)
    assert.truthy(out:find("Batch 3: Invalid loss, terminating training\n", 1, true), out)
    assert.are.same({1}, h.epoch)
    assert.are.equal("callback", h.stopped.reason)
    assert.are.equal(3, h.stopped.batch)
    assert.are.equal(1, cb.stopped.epoch)
    assert.are.equal(3, cb.stopped.batch)
    assert.is_true(cb.stopped.loss ~= cb.stopped.loss)
  end)

  it("does nothing while the loss is finite", function()
    local x, y = data()
    local cb = callbacks.TerminateOnNaN()
    local h = model():fit(x, y, {epochs = 2, batch_size = 16, verbose = 0, callbacks = {cb}})
    assert.are.same({1, 2}, h.epoch)
    assert.is_nil(cb.stopped)
  end)

  it("is silent with verbose = 0 and checks its options", function()
    local x, y = data()
    y[20][1] = 0 / 0
    local cb = callbacks.TerminateOnNaN{verbose = 0}
    local out = capture(function()
      model():fit(x, y, {batch_size = 8, shuffle = false, verbose = 0,
                         terminate_on_nan = false, callbacks = {cb}})
    end)
    assert.are.equal("", out)
    assert.are.equal(3, cb.stopped.batch)
    local ok, err = pcall(callbacks.TerminateOnNaN, {patience = 1})
    assert.is_false(ok)
    assert.truthy(err:find("TerminateOnNaN: unknown option 'patience'", 1, true), err)
    ok, err = pcall(callbacks.TerminateOnNaN, {verbose = 2})
    assert.is_false(ok)
    assert.truthy(err:find("TerminateOnNaN: verbose must be 0 or 1, got 2", 1, true), err)
  end)
end)
