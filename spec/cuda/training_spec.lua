-- Training on the GPU (GPU only): the Fashion-MNIST CNN of DESIGN.md
-- trained on the GPU and on the CPU from the same initial weights (built
-- on the CPU, its state copied into a second model that :cuda() moves)
-- over the same batches (no shuffling) must follow the same loss curve
-- (relative difference < 1e-3 per step over the first 10 steps; the mean
-- of the last quarter within 5%; why, in "follows the CPU's loss curve")
-- and reach the same accuracy on 2000 test images (within 2.5%).  Then
-- Keras-style: model:fit on a CUDA model with CPU
-- tensors, with device memory flat across epochs; and a model saved from
-- the GPU reloads on the CPU with equal weights and optimizer state.
--
-- Data: Fashion-MNIST from $EMBER_FASHION_MNIST (a folder with the four
-- IDX files) or Debian's /usr/share/datasets/fashion-mnist; without them,
-- synthetic images of the same shape (noisy class templates), and the
-- test names say so.  EMBER_TRAIN_STEPS (default 200) shortens the run.
--
-- Without a CUDA device the whole file is one pending test that says why
-- (a failing one with EMBER_REQUIRE_CUDA=1: spec/helpers/cuda.lua).
-- EMBER_PARITY_DEVICE=cpu runs it CPU against CPU (a check of the spec
-- itself on a machine without a GPU; see spec/cuda/ops_spec.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local nn, optim, data = ember.nn, ember.optim, ember.data
local F = nn.functional

local DEV = os.getenv("EMBER_PARITY_DEVICE") or "cuda"
local ON = DEV ~= "cuda" or ember.cuda.is_available()
local STEPS = math.tointeger(tonumber(os.getenv("EMBER_TRAIN_STEPS") or "")) or 200
local BATCH = 32
local MiB = 1024 * 1024

-- {======================================================================
-- Helpers
-- =======================================================================

local function to_dev(t) return DEV == "cpu" and t:clone() or t:to(DEV) end

--- Bytes of device memory in live tensors (the CPU's count in CPU mode).
local function allocated()
  if DEV == "cpu" then return ember.memory_allocated() end
  ember.cuda.synchronize()
  return ember.cuda.memory_allocated()
end

--- The network of DESIGN.md.
local function cnn()
  return nn.Sequential{
    nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3), nn.ReLU(),
    nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
  }
end

--- A copy of model m (same weights) on the device under test.
local function copy_to_dev(m)
  local g = cnn()
  g:load_state_dict(m:state_dict())
  if DEV ~= "cpu" then g:cuda() end
  return g
end

--- Fashion-MNIST's first n_train training and n_test test images, or
-- synthetic ones; returns train, test, and a description of the source.
local function dataset(n_train, n_test)
  local dir = os.getenv("EMBER_FASHION_MNIST")
  local limit = math.max(n_train, n_test)
  local ok, train, test
  if dir and dir ~= "" then
    ok, train, test = pcall(data.fashion_mnist, dir, {limit = limit})
  else
    ok, train, test = pcall(data.fashion_mnist, {limit = limit})
    dir = "/usr/share/datasets/fashion-mnist"
  end
  if ok then
    local function first(split, n) return {x = split.x:narrow(1, 1, n), y = split.y:narrow(1, 1, n)} end
    return first(train, n_train), first(test, n_test), "Fashion-MNIST from " .. dir
  end
  -- ten random templates; each image is its class's template plus noise
  ember.manual_seed(123)
  local templates = ember.rand(10, 1, 28, 28)
  local function make(n)
    local y = ember.randint(1, 10, {n})
    return {x = templates:index_select(1, y) * 0.5 + ember.rand(n, 1, 28, 28) * 0.5, y = y}
  end
  return make(n_train), make(n_test), "synthetic data: no Fashion-MNIST files"
end

--- Accuracy of model m on (x, y), in batches of 500, in eval mode.
local function accuracy(m, x, y, on_dev)
  m:eval()
  local hits = 0
  ember.no_grad(function()
    for i = 1, x:size(1), 500 do
      local n = math.min(500, x:size(1) - i + 1)
      local xb = x:narrow(1, i, n)
      if on_dev then xb = to_dev(xb) end
      local pred = m(xb):argmax(2):cpu()
      hits = hits + pred:eq(y:narrow(1, i, n)):sum():item()
    end
  end)
  m:train()
  return hits / x:size(1)
end

local function rel(a, b) return math.abs(a - b) / math.max(math.abs(b), 1e-12) end

-- }======================================================================

describe("training on the GPU", function()
  if not cuda_helper.available(ON) then return end
  ember.cuda.set_allow_tf32(false)

  local train, test, source = dataset(STEPS * BATCH, 2000)

  describe(("the DESIGN.md CNN, %d steps of Adam on both devices (%s)"):format(STEPS, source), function()
    local mc, mg, lc, lg

    setup(function()
      ember.manual_seed(42)
      mc = cnn()
      mg = copy_to_dev(mc)
      local oc = optim.Adam(mc:parameters(), {lr = 1e-3})
      local og = optim.Adam(mg:parameters(), {lr = 1e-3})
      lc, lg = {}, {}
      local step = 0
      for xb, yb in data.loader(train.x, train.y, {batch_size = BATCH, shuffle = false}) do
        step = step + 1
        oc:zero_grad()
        local l = F.cross_entropy(mc(xb), yb)
        l:backward()
        oc:step()
        lc[step] = l:item()
        og:zero_grad()
        l = F.cross_entropy(mg(to_dev(xb)), to_dev(yb))
        l:backward()
        og:step()
        lg[step] = l:item()
      end
    end)

    it("keeps the parameters, their grads and Adam's state on the device", function()
      for name, p in mg:named_parameters() do
        assert.are.equal(DEV, p.device, name)
        assert.are.equal(DEV, p.grad.device, name .. ".grad")
      end
    end)

    -- Why these tolerances.  The device sums in another order than the
    -- CPU, so every op's float32 result differs in the last bits (relative
    -- 1e-7..1e-6), and training compounds such differences: a run is a
    -- chaotic map, nearby weights drift apart, and after some tens of steps
    -- the two runs are different (equally good) models whose losses on the
    -- same batch differ by several percent.  Measured on the CPU (this
    -- model, Fashion-MNIST, 200 steps; the second run's initial weights
    -- perturbed by a relative 1e-7, 1e-6 or 1e-5): steps 1-10 differ by at
    -- most 1e-7, 1e-7 and 7e-4; single steps after 50 by up to 8%, 8% and
    -- 20% (the old check, < 1e-2 per step over the last 10, sits well
    -- inside that spread); the mean loss of the last 50 steps by 0.9%, 1.0% and 0.02%.  So: the
    -- first 10 steps tightly (1e-3: before the drift, where a wrong kernel
    -- shows at once: step 1 runs the same weights, step 2 one Adam step
    -- on), and the late curve smoothed, as the mean of the last quarter of
    -- the steps, within 5% (five times the drift seen; a bug that changes
    -- where training goes misses it).
    it("follows the CPU's loss curve", function()
      assert.are.equal(STEPS, #lc)
      assert.are.equal(STEPS, #lg)
      local first = math.min(10, STEPS)
      for s = 1, first do
        assert(rel(lg[s], lc[s]) < 1e-3, ("step %d: loss %.7f on %s, %.7f on the CPU " ..
               "(relative difference %.2g, expected < 1e-3)"):format(s, lg[s], DEV, lc[s],
               rel(lg[s], lc[s])))
      end
      local function mean(l, from, to)
        local m = 0
        for s = from, to do m = m + l[s] end
        return m / (to - from + 1)
      end
      local last = STEPS - math.max(1, STEPS // 4) + 1
      local late_g, late_c = mean(lg, last, STEPS), mean(lc, last, STEPS)
      assert(rel(late_g, late_c) < 0.05, ("steps %d-%d: mean loss %.5f on %s, %.5f on the " ..
             "CPU (relative difference %.2g, expected < 0.05)"):format(last, STEPS, late_g, DEV,
             late_c, rel(late_g, late_c)))
      -- and it learned: the last quarter's mean loss is below the first 10 steps'
      local early = mean(lg, 1, first)
      assert(late_g < early, ("the loss did not fall: %.4f over the first steps, %.4f over " ..
             "the last"):format(early, late_g))
    end)

    -- The two runs end as different models (see above); on the CPU, with
    -- the perturbed starts, 0.744 against 0.742 each time.  Two such models
    -- disagree on some 5-10% of the images, so their accuracies on 2000
    -- differ by about sqrt(150)/2000 = 0.6% (one standard deviation): the
    -- old 1% was under two; 2.5% is four.
    it("reaches the CPU's accuracy on 2000 test images (within 2.5%)", function()
      local ac = accuracy(mc, test.x, test.y, false)
      local ag = accuracy(mg, test.x, test.y, true)
      assert(math.abs(ag - ac) <= 0.025, ("accuracy %.4f on %s, %.4f on the CPU"):format(ag, DEV, ac))
      assert(ag > 0.5, ("accuracy %.4f after %d steps: it did not learn"):format(ag, STEPS))
    end)

    it("saves from the GPU a model that reloads on the CPU with equal weights", function()
      local path = os.tmpname()
      mg:save(path)
      local m2 = nn.load(path)
      os.remove(path)
      local want = {}
      for name, p in mg:named_parameters() do want[name] = p:detach():cpu() end
      local n = 0
      for name, p in m2:named_parameters() do
        n = n + 1
        assert.are.equal("cpu", p.device, name)
        assert(p:detach():equal(want[name]), name .. " differs after save and load")
      end
      assert.are.equal(10, n)
      -- and it predicts what the GPU model predicts
      local x = test.x:narrow(1, 1, 64)
      m2:eval(); mg:eval()
      local pc = ember.no_grad(function() return m2(x) end)
      local pg = ember.no_grad(function() return mg(to_dev(x)) end):cpu()
      mg:train()
      assert((pc - pg):abs():max():item() <= 1e-4 * math.max(1, pc:abs():max():item()))
    end)
  end)

  describe(("model:fit on a CUDA model with CPU tensors (%s)"):format(source), function()
    local n, epochs = math.min(2048, train.x:size(1)), 4
    local x, y = train.x:narrow(1, 1, n), train.y:narrow(1, 1, n)
    local m, h, mems, raw, hc

    setup(function()
      ember.manual_seed(7)
      local c = cnn()
      m = copy_to_dev(c)
      local function compile(model)
        model:compile{optimizer = optim.Adam{lr = 1e-3}, loss = nn.CrossEntropyLoss(),
                      metrics = {"accuracy"}}
      end
      compile(m)
      compile(c)
      -- at each epoch's end: the bytes as the collector left them, then
      -- those of the tensors still referenced
      mems, raw = {}, {}
      local function measure(e)
        raw[e] = allocated()
        collectgarbage(); collectgarbage()
        mems[e] = allocated()
      end
      h = m:fit(x, y, {epochs = epochs, batch_size = 64, shuffle = false, verbose = 0,
                       callbacks = {{on_epoch_end = measure}}})
      hc = c:fit(x, y, {epochs = epochs, batch_size = 64, shuffle = false, verbose = 0})
    end)

    it("trains, leaving the data on the CPU and the model on the device", function()
      assert.are.equal("cpu", x.device)
      assert.are.equal(epochs, #h.loss)
      assert(h.loss[epochs] < h.loss[1], ("the loss went from %.4f to %.4f"):format(h.loss[1], h.loss[epochs]))
      for name, p in m:named_parameters() do assert.are.equal(DEV, p.device, name) end
      for _, st in pairs(m.optimizer.state) do
        for k, v in pairs(st) do
          if ember.is_tensor(v) then assert.are.equal(DEV, v.device, "optimizer state " .. k) end
        end
      end
    end)

    -- The same drift as in the loss curve above: epoch 1 (steps 1-32, the
    -- mean of mostly pre-drift steps) tightly, the later epochs (steps up
    -- to 128, where single steps differ by several percent) as means within
    -- 5% and accuracies on the 2048 training images within 3%.
    it("gives the history a CPU fit gives", function()
      for e = 1, epochs do
        local ltol, atol = e == 1 and 1e-2 or 0.05, e == 1 and 0.01 or 0.03
        assert(rel(h.loss[e], hc.loss[e]) < ltol, ("epoch %d: loss %.6f on %s, %.6f on the CPU " ..
               "(expected within %g)"):format(e, h.loss[e], DEV, hc.loss[e], ltol))
        assert(math.abs(h.accuracy[e] - hc.accuracy[e]) <= atol,
               ("epoch %d: accuracy %.4f on %s, %.4f on the CPU (expected within %g)")
               :format(e, h.accuracy[e], DEV, hc.accuracy[e], atol))
      end
    end)

    it("evaluates and predicts CPU tensors", function()
      local xt, yt = test.x:narrow(1, 1, 500), test.y:narrow(1, 1, 500)
      local loss, acc = m:evaluate(xt, yt)
      assert.are.equal("number", type(loss))
      assert(acc >= 0 and acc <= 1)
      local p = m:predict(xt)
      assert.are.same({500, 10}, p:shape())
      local want = accuracy(m, xt, yt, true)
      assert(math.abs(acc - want) <= 0.01, ("evaluate says %.4f, the predictions %.4f"):format(acc, want))
    end)

    it("keeps device memory flat across epochs", function()
      assert.are.equal(epochs, #mems)
      for e = 2, epochs do
        -- nothing kept alive from one epoch to the next (graphs, batches)
        assert(math.abs(mems[e] - mems[1]) <= 4 * MiB,
               ("memory_allocated of live tensors after epoch %d: %.1f MiB, after epoch 1: %.1f MiB")
               :format(e, mems[e] / MiB, mems[1] / MiB))
      end
      for e = 1, epochs do
        -- and the collector, paced by tensor bytes, keeps the garbage bounded
        -- without being asked (a batch's tensors are a few MiB)
        assert(raw[e] - mems[1] <= 256 * MiB,
               ("memory_allocated after epoch %d before collecting: %.1f MiB, %.1f MiB live")
               :format(e, raw[e] / MiB, mems[1] / MiB))
      end
    end)

    it("saves the compiled model with its optimizer state; the CPU reloads both", function()
      local path = os.tmpname()
      m:save(path)
      local m2 = nn.load(path)
      os.remove(path)
      local want = {}
      for name, p in m:named_parameters() do want[name] = p:detach():cpu() end
      for name, p in m2:named_parameters() do
        assert.are.equal("cpu", p.device, name)
        assert(p:detach():equal(want[name]), name .. " differs after save and load")
      end
      local sg, sc = m.optimizer:state_dict().state, m2.optimizer:state_dict().state
      for i, st in pairs(sg) do
        for k, v in pairs(st) do
          if ember.is_tensor(v) then
            assert.are.equal("cpu", sc[i][k].device)
            assert(sc[i][k]:equal(v:cpu()), ("optimizer state %d.%s differs"):format(i, k))
          else
            assert.are.equal(v, sc[i][k])
          end
        end
      end
    end)
  end)
end)
