-- Callbacks of Module:fit (lua/ember/callbacks.lua).
local ember = require "ember"
local nn, optim, callbacks = ember.nn, ember.optim, ember.callbacks

local blobs = require "helpers.blobs"

local function model(opt)
  ember.manual_seed(1)
  local m = nn.Sequential{nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)}
  m:compile{optimizer = opt or optim.SGD{lr = 0.05}, loss = "sparse_categorical_crossentropy",
            metrics = {"accuracy"}}
  return m
end

local run = require "helpers.run"
local tmpdir = run.tmpdir

local function files(dir)
  local out = {}
  local p = io.popen("ls -A " .. dir)
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

describe("hooks", function()
  it("are called in Keras's order with 1-based epochs and batches", function()
    local x, y = blobs(50)
    local calls = {}
    local function rec(name) return function(...) calls[#calls + 1] = {name, ...} end end
    model():fit(x, y, {epochs = 2, batch_size = 25, verbose = 0, callbacks = {{
      on_train_begin = rec("train_begin"), on_train_end = rec("train_end"),
      on_epoch_begin = rec("epoch_begin"), on_epoch_end = rec("epoch_end"),
      on_train_batch_begin = rec("batch_begin"), on_batch_end = rec("batch_end"),
    }}})
    local names = {}
    for i, c in ipairs(calls) do names[i] = c[1] .. (type(c[2]) == "number" and c[2] or "") end
    assert.are.same({"train_begin", "epoch_begin1", "batch_begin1", "batch_end1", "batch_begin2",
                     "batch_end2", "epoch_end1", "epoch_begin2", "batch_begin1", "batch_end1",
                     "batch_begin2", "batch_end2", "epoch_end2", "train_end"}, names)
    assert.is_number(calls[7][3].loss)
    assert.is_number(calls[7][3].accuracy)
  end)

  it("a Callback class gets the model and params, and can stop training", function()
    local x, y = blobs(40)
    local Stop = callbacks.Callback:extend("Stop")
    function Stop:on_epoch_end(epoch)
      self.seen = self.params
      if epoch == 2 then self.model.stop_training = true end
    end
    local cb = Stop()
    local m = model()
    local h = m:fit(x, y, {epochs = 10, validation_split = 0.25, verbose = 0, callbacks = {cb}})
    assert.are.same({1, 2}, h.epoch)
    assert.are.equal(10, cb.seen.epochs)
    assert.are.same({"loss", "accuracy", "val_loss", "val_accuracy"}, cb.seen.metrics)
  end)
end)

describe("EarlyStopping", function()
  it("stops when the monitored value stops improving and restores the best weights", function()
    local x, y = blobs(60)
    local m = model(optim.SGD{lr = 0.5})
    local snapshots = {}
    local es = callbacks.EarlyStopping{monitor = "loss", min_delta = 100, patience = 1,
                                       restore_best_weights = true}
    local h = m:fit(x, y, {epochs = 10, verbose = 0, callbacks = {es, {on_epoch_end = function(e)
      local s = {}
      for k, t in pairs(m:state_dict()) do s[k] = t:clone() end
      snapshots[e] = s
    end}}})
    -- epoch 1 sets the best; no later epoch improves by 100: stop at epoch 2
    assert.are.same({1, 2}, h.epoch)
    assert.are.equal(2, es.stopped_epoch)
    assert.are.equal(1, es.best_epoch)
    for k, t in pairs(m:state_dict()) do assert.is_true(t:equal(snapshots[1][k]), k) end
  end)

  it("waits `patience` epochs and monitors accuracies upwards", function()
    local x, y = blobs(60)
    local es = callbacks.EarlyStopping{monitor = "accuracy", min_delta = 2, patience = 3}
    assert.are.equal("max", es.mode)
    local h = model():fit(x, y, {epochs = 10, verbose = 0, callbacks = {es}})
    assert.are.equal(4, #h.epoch)
  end)

  it("names what fit will not log", function()
    local x, y = blobs(20)
    assert.error_matches(function()
      model():fit(x, y, {verbose = 0, callbacks = {callbacks.EarlyStopping()}})
    end, "EarlyStopping: monitored metric 'val_loss' will not be in the logs %(fit logs: loss, accuracy%); " ..
         "pass validation_data or validation_split to fit")
    assert.error_matches(function() callbacks.EarlyStopping{patience = -1} end, "patience must be a number >= 0")
    assert.error_matches(function() callbacks.EarlyStopping{mode = "up"} end, "mode must be 'auto', 'min' or 'max'")
    assert.error_matches(function() callbacks.EarlyStopping{wait = 1} end, "unknown option 'wait'")
  end)
end)

describe("learning rates", function()
  it("LearningRateScheduler sets the lr of every group at each epoch's start", function()
    local x, y = blobs(20)
    local m = model(optim.SGD{lr = 1})
    local seen = {}
    local h = m:fit(x, y, {epochs = 3, verbose = 0, callbacks = {
      callbacks.LearningRateScheduler(function(epoch, lr) return lr / (epoch + 1) end),
      {on_epoch_begin = function() seen[#seen + 1] = m.optimizer.param_groups[1].lr end}}})
    assert.are.same({1 / 2, 1 / 6, 1 / 24}, seen)
    assert.are.same({1 / 2, 1 / 6, 1 / 24}, h.lr)
    assert.error_matches(function()
      m:fit(x, y, {verbose = 0, callbacks = {callbacks.LearningRateScheduler(function() return "x" end)}})
    end, "the schedule must return a number >= 0, got x at epoch 1")
  end)

  it("ReduceLROnPlateau multiplies the lr by factor after `patience` flat epochs", function()
    local x, y = blobs(20)
    local m = model(optim.SGD{lr = 1e-9})
    local r = callbacks.ReduceLROnPlateau{monitor = "loss", factor = 0.5, patience = 2, min_delta = 1}
    local h = m:fit(x, y, {epochs = 6, verbose = 0, callbacks = {r}})
    -- epoch 1 improves on +inf; epochs 2-3 are flat: reduce after 3, again after 5
    assert.are.same({1e-9, 1e-9, 1e-9, 5e-10, 5e-10, 2.5e-10}, h.lr)
    assert.are.equal(2.5e-10, m.optimizer.param_groups[1].lr)
  end)
end)

describe("CSVLogger", function()
  it("writes a header and a row per epoch, atomically", function()
    local dir = tmpdir()
    local path = dir .. "/log.csv"
    local x, y = blobs(40)
    local m = model()
    local h = m:fit(x, y, {epochs = 3, validation_split = 0.25, verbose = 0,
                           callbacks = {callbacks.CSVLogger(path)}})
    local lines = {}
    for l in io.lines(path) do lines[#lines + 1] = l end
    assert.are.equal(4, #lines)
    assert.are.equal("epoch,accuracy,loss,val_accuracy,val_loss", lines[1])
    local e, acc, loss = lines[3]:match("^(%d+),([^,]+),([^,]+),")
    assert.are.equal("2", e)
    -- 6 significant digits, as %.6g writes them
    assert.are.equal(("%.6g"):format(h.accuracy[2]), acc)
    assert.are.equal(("%.6g"):format(h.loss[2]), loss)
    -- append continues the file
    m:fit(x, y, {epochs = 1, validation_split = 0.25, verbose = 0,
                 callbacks = {callbacks.CSVLogger(path, {append = true})}})
    local n = 0
    for _ in io.lines(path) do n = n + 1 end
    assert.are.equal(5, n)
    assert.are.same({"log.csv"}, files(dir))   -- no temporary files left
    run.rmdir(dir)
  end)

  it("writes numbers with 6 significant digits", function()
    local dir = tmpdir()
    local path = dir .. "/digits.csv"
    local cb = callbacks.CSVLogger(path)
    cb:on_train_begin()
    cb:on_epoch_end(1, {a = 1 / 3, b = 2 / 3 * 1e-7, c = 123456789, d = 0.5, e = 0 / 0})
    local lines = {}
    for l in io.lines(path) do lines[#lines + 1] = l end
    assert.are.same({"epoch,a,b,c,d,e", "1,0.333333,6.66667e-08,1.23457e+08,0.5,nan"}, lines)
    run.rmdir(dir)
  end)
end)

describe("ModelCheckpoint", function()
  it("saves every epoch, or only the best, filling the file name from the logs", function()
    local dir = tmpdir()
    local x, y = blobs(40)
    local m = model()
    m:fit(x, y, {epochs = 3, validation_split = 0.25, verbose = 0, callbacks = {
      callbacks.ModelCheckpoint(dir .. "/all-{epoch:02d}.safetensors"),
      callbacks.ModelCheckpoint(dir .. "/best.safetensors", {save_best_only = true,
                                monitor = "val_accuracy"}),
      callbacks.ModelCheckpoint(dir .. "/w-{epoch}.safetensors", {save_weights_only = true}),
    }})
    assert.are.same({"all-01.safetensors", "all-02.safetensors", "all-03.safetensors",
                     "best.safetensors", "w-1.safetensors", "w-2.safetensors", "w-3.safetensors"},
                    files(dir))
    local reloaded = nn.load(dir .. "/all-03.safetensors")
    for k, t in pairs(m:state_dict()) do assert.is_true(t:equal(reloaded:state_dict()[k]), k) end
    local weights, meta = ember.load(dir .. "/w-3.safetensors")
    assert.are.equal("3", meta["fit.epoch"])
    assert.is_true(weights["3.bias"]:equal(m[3].bias:detach()))
    assert.error_matches(function()
      m:fit(x, y, {verbose = 0, callbacks = {callbacks.ModelCheckpoint(dir .. "/{nope}.st")}})
    end, "'{nope}' in the file path is not in the logs")
    run.rmdir(dir)
  end)

  it("a run resumed from a checkpoint ends with the weights of an uninterrupted run", function()
    local dir = tmpdir()
    local x, y = blobs(96)
    local function build()
      ember.manual_seed(4)
      local m = nn.Sequential{nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3)}
      m:compile{optimizer = optim.Adam{lr = 0.01}, loss = "sparse_categorical_crossentropy",
                metrics = {"accuracy"}}
      return m
    end
    local straight = build()
    straight:fit(x, y, {epochs = 4, batch_size = 16, validation_split = 0.25, verbose = 0,
                        callbacks = {callbacks.ModelCheckpoint(dir .. "/ck-{epoch}.safetensors")}})
    -- disturb the generator, as another process would start from elsewhere
    ember.manual_seed(999)
    ember.rand(17)
    local resumed, epoch = callbacks.load_checkpoint(dir .. "/ck-2.safetensors")
    assert.are.equal(2, epoch)
    assert.are.equal("Adam", getmetatable(resumed.optimizer).__name)
    local h = resumed:fit(x, y, {epochs = 4, initial_epoch = epoch, batch_size = 16,
                                 validation_split = 0.25, verbose = 0})
    assert.are.same({3, 4}, h.epoch)
    for k, t in pairs(straight:state_dict()) do
      assert.is_true(t:equal(resumed:state_dict()[k]), k)
    end
    assert.error_matches(function() callbacks.load_checkpoint(dir .. "/missing.safetensors") end,
                         "missing.safetensors")
    local plain = dir .. "/plain.safetensors"
    straight:save(plain)
    assert.error_matches(function() callbacks.load_checkpoint(plain) end,
                         "was not written by ModelCheckpoint")
    run.rmdir(dir)
  end)
end)
