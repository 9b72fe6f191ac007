-- fit, evaluate and predict on ember.data loaders and datasets;
-- class_weight and sample_weight (Keras: the mean over the batch of the
-- weighted per-sample losses); steps_per_epoch.
local ember = require "ember"
local nn, data, F = ember.nn, ember.data, ember.nn.functional

local function model()
  ember.manual_seed(3)
  local m = nn.Sequential{nn.Linear(3, 3)}
  m:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy"}
  return m
end

ember.manual_seed(11)
local x, y = ember.randn(20, 3), ember.randint(1, 3, {20})

describe("fit on a loader", function()
  it("equals fit on the same tensors in the same order", function()
    local a, b = model(), model()
    local ha = a:fit(x, y, {epochs = 3, batch_size = 4, shuffle = false, verbose = 0})
    local hb = b:fit(data.loader(x, y, {batch_size = 4}), {epochs = 3, verbose = 0})
    local hc = model():fit(data.TensorDataset(x, y), {epochs = 3, batch_size = 4, shuffle = false, verbose = 0})
    assert.are.same(ha.loss, hb.loss)
    assert.are.same(ha.loss, hc.loss)
    assert.is_true(a[1].weight:equal(b[1].weight))
  end)
  it("evaluate and predict take a loader or a dataset", function()
    local m = model()
    assert.is_near(m:evaluate(x, y), m:evaluate(data.loader(x, y, {batch_size = 6})), 1e-6)
    assert.is_true(m:predict(x):equal(m:predict(data.TensorDataset(x), {batch_size = 7})))
    local h = m:fit(x, y, {epochs = 1, verbose = 0, validation_data = data.TensorDataset(x, y)})
    assert.is_near(m:evaluate(x, y), h.val_loss[1], 1e-6)
  end)
  it("gives clear errors", function()
    local m, l = model(), data.loader(x, y, {batch_size = 4})
    assert.has_error(function() m:fit(l, {batch_size = 4, verbose = 0}) end,
      "fit: batch_size cannot be given with a loader (the loader has its own batch_size)")
    assert.has_error(function() m:fit(l, {sample_weight = ember.ones(20), verbose = 0}) end)
    assert.has_error(function() m:fit(l, {validation_split = 0.2, verbose = 0}) end,
      "fit: validation_split needs tensors x, y; give a loader or a dataset validation_data")
    assert.has_error(function() m:fit(l, y) end)
    assert.has_error(function() m:fit(x, y, {steps_per_epoch = 6, batch_size = 4, verbose = 0}) end,
      "fit: steps_per_epoch (6) is more than the 5 batches of an epoch of x")
    assert.has_error(function() m:fit(x, y, {class_weight = {[1.5] = 2}, verbose = 0}) end)
    assert.has_error(function() m:fit(x, y, {sample_weight = ember.ones(19), verbose = 0}) end)
  end)
end)

describe("fit's weights", function()
  --- One full-batch step's loss as fit reports it, and the hand-computed
  -- Keras value: sum(w_i * l_i) / N.
  local function check(opts, w)
    local m = model()
    local lin = m[1]
    local out = lin:forward(x)
    local l = F.cross_entropy(out, y, {reduction = "none"})
    local want = (l * w):sum():item() / 20
    opts.epochs, opts.batch_size, opts.verbose, opts.shuffle = 1, 20, 0, false
    local h = m:fit(x, y, opts)
    assert.is_near(want, h.loss[1], 1e-5 * math.abs(want))
  end
  it("class_weight", function()
    local w = {}
    local cw = {[1] = 2, [2] = 0.5}
    for i, c in ipairs(y:totable()) do w[i] = cw[c] or 1 end
    check({class_weight = cw}, ember.tensor(w))
  end)
  it("sample_weight, and both", function()
    local sw = ember.rand(20)
    check({sample_weight = sw}, sw)
    local w, swl = {}, sw:totable()
    for i, c in ipairs(y:totable()) do w[i] = (c == 3 and 4 or 1) * swl[i] end
    check({sample_weight = sw, class_weight = {[3] = 4}}, ember.tensor(w))
  end)
end)

describe("steps_per_epoch", function()
  it("counts batches; a loader restarts when exhausted", function()
    local n = 0
    local cb = {on_train_batch_end = function() n = n + 1 end}
    local h = model():fit(data.loader(x, y, {batch_size = 4}),
                          {epochs = 3, steps_per_epoch = 7, verbose = 0, callbacks = {cb}})
    assert.are.equal(21, n)
    assert.are.equal(7, h.params.steps)
    n = 0
    model():fit(x, y, {epochs = 2, batch_size = 4, steps_per_epoch = 2, verbose = 0, callbacks = {cb}})
    assert.are.equal(4, n)
  end)
end)
