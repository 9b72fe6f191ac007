-- Keras-style training: compile, fit, evaluate, predict (lua/ember/train/).
local ember = require "ember"
local nn, optim = ember.nn, ember.optim
local run = require "helpers.run"

local blobs = require "helpers.blobs"

local function mlp(seed)
  ember.manual_seed(seed or 1)
  return nn.Sequential{nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3)}
end

local function same_weights(a, b)
  local sa, sb = a:state_dict(), b:state_dict()
  for k, t in pairs(sa) do
    if not t:equal(sb[k]) then return false, k end
  end
  return true
end

describe("compile", function()
  it("accepts names and objects, and binds an optimizer made without parameters", function()
    local m = mlp()
    local opt = optim.SGD{lr = 0.1}
    m:compile{optimizer = opt, loss = nn.CrossEntropyLoss(), metrics = {"accuracy"}}
    assert.are.equal(opt, m.optimizer)
    assert.are.equal(3, #m)   -- the loss module is not a layer of the model
    assert.is_nil(m:state_dict()["4.weight"])
    assert.are.equal(#m:parameters(), #opt.param_groups[1].params)
    m:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy"}
    assert.are.equal("Adam", getmetatable(m.optimizer).__name)
    assert.are.equal(1e-3, m.optimizer.param_groups[1].lr)
    m:compile{optimizer = "sgd", loss = "mse"}
    assert.are.equal(0.01, m.optimizer.param_groups[1].lr)
  end)

  it("rejects what it does not know, naming it", function()
    local m = mlp()
    assert.has_error(function() m:compile{optimizer = "adamax", loss = "mse"} end,
      "compile: unknown optimizer 'adamax' (known: adam, adamw, sgd, rmsprop, adagrad, or an ember.optim optimizer)")
    assert.error_matches(function() m:compile{optimizer = "adam", loss = "hinge"} end,
                         "unknown loss 'hinge'")
    assert.error_matches(function() m:compile{optimizer = "adam", loss = "mse", metrics = {"f2"}} end,
                         "unknown metric 'f2'")
    assert.error_matches(function() m:compile{optimizer = "adam"} end, "a loss is required")
    assert.error_matches(function() m:compile{loss = "mse", lr = 1} end, "unknown option 'lr'")
    assert.error_matches(function() m:compile{optimizer = 3, loss = "mse"} end,
                         "optimizer must be a name or an ember.optim optimizer, got number")
    assert.error_matches(function() m:compile{optimizer = "adam", loss = "mse", metrics = {"accuracy"}} end,
                         "'accuracy' needs a classification loss")
    assert.error_matches(function() mlp():fit(ember.zeros(4, 2), ember.zeros(4)) end,
                         "fit: the model is not compiled")
  end)
end)

describe("fit", function()
  it("learns, and returns a Keras history", function()
    local x, y = blobs(600)
    local m = mlp()
    m:compile{optimizer = optim.Adam{lr = 0.02}, loss = "sparse_categorical_crossentropy",
              metrics = {"accuracy"}}
    local h = m:fit(x, y, {epochs = 4, batch_size = 32, validation_split = 0.2, verbose = 0})
    assert.are.same({1, 2, 3, 4}, h.epoch)
    for _, k in ipairs{"loss", "accuracy", "val_loss", "val_accuracy"} do
      assert.are.equal(4, #h[k], k)
      assert.are.equal(h[k], h.history[k])
    end
    assert.is_true(h.loss[4] < h.loss[1])
    assert.is_true(h.val_accuracy[4] > 0.9, tostring(h.val_accuracy[4]))
    assert.are.equal(4, h.params.epochs)
    assert.are.equal(15, h.params.steps)   -- 480 training rows / 32
  end)

  it("is the loop a PyTorch user writes (no shuffle: the same weights, exactly)", function()
    local x, y = blobs(100)
    local a, b = mlp(3), mlp(3)
    a:compile{optimizer = optim.SGD{lr = 0.1, momentum = 0.9}, loss = nn.CrossEntropyLoss()}
    a:fit(x, y, {epochs = 2, batch_size = 16, shuffle = false, verbose = 0})
    local opt = optim.SGD(b:parameters(), {lr = 0.1, momentum = 0.9})
    for _ = 1, 2 do
      for start = 1, 100, 16 do
        local len = math.min(16, 101 - start)
        opt:zero_grad()
        local loss = nn.functional.cross_entropy(b(x:narrow(1, start, len)), y:narrow(1, start, len))
        loss:backward()
        opt:step()
      end
    end
    assert.is_true(same_weights(a, b))
  end)

  it("takes validation_split from the end, before shuffling", function()
    local x, y = blobs(200)
    local m = mlp()
    m:compile{optimizer = optim.SGD{lr = 0.05}, loss = "sparse_categorical_crossentropy",
              metrics = {"accuracy"}}
    local h = m:fit(x, y, {epochs = 1, validation_split = 0.25, verbose = 0})
    local loss, acc = m:evaluate(x:narrow(1, 151, 50), y:narrow(1, 151, 50))
    assert.is_true(math.abs(loss - h.val_loss[1]) < 1e-6)
    assert.is_true(math.abs(acc - h.val_accuracy[1]) < 1e-9)
    -- validation_data gives the same
    local m2 = mlp()
    m2:compile{optimizer = optim.SGD{lr = 0.05}, loss = "sparse_categorical_crossentropy"}
    local h2 = m2:fit(x:narrow(1, 1, 150), y:narrow(1, 1, 150),
                      {validation_data = {x:narrow(1, 151, 50), y:narrow(1, 151, 50)}, verbose = 0})
    assert.is_true(math.abs(h2.val_loss[1] - m2:evaluate(x:narrow(1, 151, 50), y:narrow(1, 151, 50))) < 1e-6)
  end)

  it("shuffles reproducibly under manual_seed, and differently from no shuffle", function()
    local x, y = blobs(128)
    local function train(shuffle)
      local m = mlp(5)
      m:compile{optimizer = optim.SGD{lr = 0.1}, loss = "sparse_categorical_crossentropy"}
      ember.manual_seed(11)
      m:fit(x, y, {epochs = 2, batch_size = 8, shuffle = shuffle, verbose = 0})
      return m
    end
    assert.is_true(same_weights(train(true), train(true)))
    assert.is_false(same_weights(train(true), train(false)))
  end)

  it("averages the epoch's loss over its samples, batch by batch", function()
    local x, y = blobs(70)
    local m = mlp()
    m:compile{optimizer = optim.SGD{lr = 0.01}, loss = "sparse_categorical_crossentropy",
              metrics = {"accuracy"}}
    local seen, weighted, n = {}, 0, 0
    local h = m:fit(x, y, {epochs = 1, batch_size = 32, verbose = 0, callbacks = {{
      on_train_batch_end = function(b, logs)
        seen[#seen + 1] = {b, logs.size, logs.loss}
        local prev = n
        n = n + logs.size
        -- logs.loss is the running mean: recover this batch's loss from it
        weighted = logs.loss * n
        assert.is_true(prev < n)
      end}}})
    assert.are.same({1, 32}, {seen[1][1], seen[1][2]})
    assert.are.same({3, 6}, {seen[3][1], seen[3][2]})
    assert.are.equal(70, n)
    assert.is_true(math.abs(weighted / 70 - h.loss[1]) < 1e-9)
  end)

  it("runs epochs initial_epoch + 1 .. epochs", function()
    local x, y = blobs(64)
    local m = mlp()
    m:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy"}
    local epochs = {}
    local h = m:fit(x, y, {epochs = 4, initial_epoch = 2, verbose = 0,
                           callbacks = {{on_epoch_begin = function(e) epochs[#epochs + 1] = e end}}})
    assert.are.same({3, 4}, epochs)
    assert.are.same({3, 4}, h.epoch)
    assert.are.equal(2, #h.loss)
  end)

  it("rejects bad arguments with clear errors and leaves the weights alone", function()
    local x, y = blobs(40)
    local m = mlp()
    m:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy"}
    local before = {}
    for k, t in pairs(m:state_dict()) do before[k] = t:clone() end
    assert.error_matches(function() m:fit(x, y:narrow(1, 1, 39), {verbose = 0}) end,
                         "same number of samples, got 40 and 39")
    assert.error_matches(function() m:fit(x, y, {epoch = 2}) end, "unknown option 'epoch'")
    assert.error_matches(function() m:fit(x, y, {validation_split = 1}) end,
                         "validation_split must be a number in %[0, 1%)")
    assert.error_matches(function() m:fit(x, y, {batch_size = 0}) end, "batch_size must be >= 1")
    assert.error_matches(function() m:fit(x, y, {verbose = 3}) end, "verbose must be 0, 1 or 2")
    assert.error_matches(function() m:fit(x, y, {callbacks = {{on_epoch_ends = print}}}) end,
                         "unknown hook 'on_epoch_ends'")
    assert.error_matches(function() m:fit("x", y) end, "fit: x must be a tensor, an ember.data loader or a dataset, got string")
    assert.error_matches(function() m:fit(x, y, {validation_split = 1e-17}) end,
                         "leaves no validation samples")
    for k, t in pairs(m:state_dict()) do assert.is_true(t:equal(before[k]), k) end
    -- an error inside training restores the mode and propagates
    m:eval()
    assert.error_matches(function()
      m:fit(x, y, {verbose = 0, callbacks = {{on_train_batch_end = function() error("boom") end}}})
    end, "boom")
    assert.is_false(m.training)
  end)
end)

describe("evaluate and predict", function()
  local x, y = blobs(90)
  local m = nn.Sequential{nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)}
  m:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = {"accuracy"}}

  it("evaluate gives the loss and metrics over all samples, in eval mode", function()
    local loss, acc = m:evaluate(x, y, {batch_size = 32})
    m:eval()
    local out = m(x)
    m:train()
    local want = nn.functional.cross_entropy(out, y):item()
    assert.is_true(math.abs(loss - want) < 1e-5 * math.max(1, want), loss .. " vs " .. want)
    assert.are.equal(out:argmax(2):eq(y):sum():item() / 90, acc)
    assert.is_true(m.training)
    local d = m:evaluate(x, y, {return_dict = true})
    assert.is_true(math.abs(d.loss - loss) < 1e-6)
    assert.are.equal(acc, d.accuracy)
  end)

  it("predict returns every row's output, without recording, whatever the batch size", function()
    local p = m:predict(x, {batch_size = 7})
    assert.are.same({90, 3}, p:shape())
    assert.is_nil(p.grad_fn)
    assert.is_false(p.requires_grad)
    m:eval()
    local want = m(x)
    m:train()
    assert.is_true((p - want):abs():max():item() < 1e-6)
    assert.is_true(p:equal(m:predict(x)))   -- dropout is off: deterministic
    assert.error_matches(function() m:predict(x, {batchsize = 2}) end, "unknown option 'batchsize'")
  end)

  it("named losses and metrics follow the model's last layer", function()
    ember.manual_seed(2)
    local xb = ember.randn(64, 3)
    local yb = (xb:sum(2, true):gt(0)):float()
    local probs = nn.Sequential{nn.Linear(3, 1), nn.Sigmoid()}
    probs:compile{optimizer = optim.Adam{lr = 0.05}, loss = "binary_crossentropy",
                  metrics = {"accuracy", "mae"}}
    local h = probs:fit(xb, yb, {epochs = 30, batch_size = 16, verbose = 0})
    assert.is_true(h.accuracy[30] > 0.9, tostring(h.accuracy[30]))
    local logits = nn.Sequential{nn.Linear(3, 1)}
    logits:compile{optimizer = optim.Adam{lr = 0.05}, loss = "binary_crossentropy",
                   metrics = {"binary_accuracy"}}
    local h2 = logits:fit(xb, yb, {epochs = 30, batch_size = 16, verbose = 0})
    assert.is_true(h2.binary_accuracy[30] > 0.9, tostring(h2.binary_accuracy[30]))
    -- a function metric, named by its key
    local reg = nn.Sequential{nn.Linear(3, 1)}
    reg:compile{optimizer = "sgd", loss = "mse",
                metrics = {"mae", max_err = function(p, t) return (p - t):abs():max() end}}
    local h3 = reg:fit(xb, yb, {epochs = 1, verbose = 0})
    assert.is_number(h3.max_err[1])
    assert.is_number(h3.mae[1])
    local _, mae, max_err = reg:evaluate(xb, yb)
    assert.is_true(max_err >= mae)
  end)
end)

describe("the progress display", function()
  local script = [[
    local ember = require "ember"
    local nn = ember.nn
    ember.manual_seed(1)
    local x, y = ember.randn(100, 2), ember.randint(1, 2, {100})
    local m = nn.Sequential{nn.Linear(2, 2)}
    m:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy", metrics = {"accuracy"}}
    m:fit(x, y, {epochs = 2, batch_size = 10, validation_split = 0.2, verbose = VERBOSE})
  ]]
  local function run_with(verbose, tty, env)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write((script:gsub("VERBOSE", tostring(verbose))))
    f:close()
    local cmd = (env or "") .. run.ember .. " " .. path
    if tty then cmd = "script -qec " .. run.q(cmd) .. " /dev/null" end
    local out, rc = run.sh(cmd)
    os.remove(path)
    assert.are.equal(0, rc, out)
    return out
  end

  it("prints one line per epoch when output is not a terminal", function()
    local out = run_with(1)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(2, #lines, out)
    assert.truthy(lines[1]:match("^Epoch 1/2 %- 8/8 %- %d+s %d+[mu]?s/step %- loss: %d%.%d%d%d%d " ..
                                 "%- accuracy: %d%.%d%d%d%d %- val_loss: %d%.%d%d%d%d %- val_accuracy: %d%.%d%d%d%d$"),
                  lines[1])
    assert.truthy(lines[2]:match("^Epoch 2/2 "))
  end)

  it("is silent with verbose = 0", function()
    assert.are.equal("", run_with(0))
  end)

  it("draws a live bar on a terminal", function()
    local out = run_with(1, true)
    assert.truthy(out:find("Epoch 1/2\r?\n"), out)
    assert.truthy(out:find("8/8 [==============================] - ", 1, true), out)
    assert.truthy(out:find("\r", 1, true), out)
    assert.truthy(out:find("val_accuracy: ", 1, true), out)
  end)

  it("fits the terminal's width, never wrapping", function()
    for _, width in ipairs{40, 80, 200} do
      local out = run_with(1, true, "COLUMNS=" .. width .. " ")
      local n = 0
      for piece in out:gsub("\r\n", "\n"):gmatch("[^\r\n]+") do
        assert.is_true(#piece < width, ("width %d: %q"):format(width, piece))
        n = n + 1
      end
      assert.is_true(n >= 4, out)
      -- every value of the epoch is shown in the lines that stay (what
      -- follows a line's last \r)
      local stayed = {}
      for line in out:gsub("\r\n", "\n"):gmatch("[^\n]+") do stayed[#stayed + 1] = line:match("[^\r]*$") end
      stayed = table.concat(stayed, "\n")
      for _, k in ipairs{"loss", "accuracy", "val_loss", "val_accuracy"} do
        assert.truthy(stayed:find("%f[%w_]" .. k .. ": %d%.%d%d%d%d"), width .. " " .. k .. ": " .. stayed)
      end
      if width == 200 then   -- room for everything on one line, and Keras's 30-wide bar
        assert.truthy(out:find("\r8/8 %[" .. ("="):rep(30) .. "%] %- [^\n]*val_accuracy"), out)
      elseif width == 40 then   -- a shorter bar
        assert.truthy(out:find("\r8/8 %[=+%]"), out)
        assert.falsy(out:find(("="):rep(30), 1, true), out)
      end
    end
  end)
end)

describe("time formats", function()
  it("are Keras's", function()
    local train = require "ember.train"
    assert.are.equal("0s", train._format_time(0.2))
    assert.are.equal("42s", train._format_time(41.6))
    assert.are.equal("1:05", train._format_time(65.3))
    assert.are.equal("1:02:03", train._format_time(3723))
    assert.are.equal("24ms/step", train._format_step(0.0241))
    assert.are.equal("65us/step", train._format_step(6.5e-5))
    assert.are.equal("2s/step", train._format_step(2.2))
  end)
end)

describe("summary", function()
  it("lists layers, output shapes and parameter counts like Keras", function()
    local model = nn.Sequential{
      nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(64, 64, 3), nn.ReLU(),
      nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
    }
    local printed
    local text = model:summary({1, 28, 28}, {print_fn = function(s) printed = s end})
    assert.are.equal(text, printed)
    assert.truthy(text:find("1 (Conv2d)                   (None, 32, 26, 26)        320", 1, true), text)
    assert.truthy(text:find("(None, 64, 11, 11)", 1, true))
    assert.truthy(text:find("(None, 64, 5, 5)", 1, true))
    assert.truthy(text:find("9 (Flatten)                  (None, 576)               0", 1, true), text)
    assert.truthy(text:find("18,496", 1, true))
    assert.truthy(text:find("36,928", 1, true))
    assert.truthy(text:find("(None, 10)                650", 1, true), text)
    assert.truthy(text:find("Total params: 93,322", 1, true))
    assert.truthy(text:find("Trainable params: 93,322", 1, true))
    assert.truthy(text:find("Non-trainable params: 0", 1, true))
    assert.is_true(model.training)
  end)

  it("infers the input shape from a first Linear or from the last fit, and counts frozen parameters", function()
    local m = nn.Sequential{nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)}
    m[1].weight.requires_grad = false
    local text = m:summary{print_fn = function() end}
    assert.truthy(text:find("(None, 3)", 1, true), text)
    assert.truthy(text:find("Total params: 23", 1, true))
    assert.truthy(text:find("Trainable params: 11", 1, true))
    assert.truthy(text:find("Non-trainable params: 12", 1, true))
    local conv = nn.Sequential{nn.Conv2d(1, 2, 3), nn.Flatten()}
    local t0 = conv:summary{print_fn = function() end}
    assert.truthy(t0:find("output shapes need an input shape", 1, true))
    conv:predict(ember.zeros(2, 1, 5, 5))
    local t1 = conv:summary{print_fn = function() end}
    assert.truthy(t1:find("(None, 18)", 1, true), t1)
    assert.error_matches(function() conv:summary({1, -5, 5}) end, "must be >= 0")
  end)
end)
