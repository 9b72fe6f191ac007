-- Every layer and loss of ember.nn, and the convolution and pooling ops,
-- against finite differences (float64): gradients of the input and of every
-- parameter.
local ember = require "ember"
local nn = ember.nn
local G = require "helpers.gradcheck"
local leaf = G.leaf

local check = G.check

--- Check module m (converted to float64) at input x: x and every parameter.
local function check_module(m, x, extra)
  m:double()
  local inputs = {x}
  for _, p in ipairs(m:parameters()) do inputs[#inputs + 1] = p end
  check(function(input) return m(input, extra) end, inputs)
end

describe("gradcheck of convolution and pooling ops", function()
  before_each(function() ember.manual_seed(11) end)

  it("conv2d over strides, paddings, dilations and groups", function()
    local cases = {
      {1, 0, 1, 1}, {2, 1, 1, 1}, {1, 2, 2, 1}, {{2, 1}, {1, 0}, {1, 2}, 1}, {1, 1, 1, 2},
    }
    for _, c in ipairs(cases) do
      local groups = c[4]
      check(function(x, w, b) return ember.conv2d(x, w, b, c[1], c[2], c[3], groups) end,
            {leaf{2, 2, 5, 6}, leaf{4, 2 // groups, 3, 2}, leaf{4}})
    end
  end)

  it("conv2d without bias, unbatched", function()
    check(function(x, w) return ember.conv2d(x, w) end, {leaf{1, 4, 4}, leaf{2, 1, 2, 2}})
  end)

  it("max_pool2d and avg_pool2d", function()
    -- values 0.1 apart plus a small jitter: every window has one maximum,
    -- and the finite differences never swap it
    local function distinct(shape)
      local n = 1
      for _, s in ipairs(shape) do n = n * s end
      local v = ember.arange(n, {dtype = "float64"}):view(shape) * 0.1
      return (v + ember.rand(shape, {dtype = "float64"}) * 0.01):requires_grad_()
    end
    check(function(x) return ember.max_pool2d(x, 2) end, {distinct{2, 2, 4, 4}})
    check(function(x) return ember.max_pool2d(x, 3, 2, 1) end, {distinct{1, 2, 5, 5}})
    check(function(x) return ember.max_pool2d(x, 2, 1, 0, 2) end, {distinct{1, 1, 5, 5}})
    check(function(x) return ember.avg_pool2d(x, 2) end, {leaf{2, 2, 4, 4}})
    check(function(x) return ember.avg_pool2d(x, 3, 2, 1, true, false) end, {leaf{1, 2, 6, 5}})
  end)
end)

describe("gradcheck of every layer", function()
  before_each(function() ember.manual_seed(12) end)

  it("Linear, with and without bias", function()
    check_module(nn.Linear(3, 4), leaf{2, 3})
    check_module(nn.Linear(3, 2, {bias = false}), leaf{5, 3})
  end)

  it("Conv2d", function()
    check_module(nn.Conv2d(2, 3, 3, {stride = 2, padding = 1}), leaf{2, 2, 5, 5})
    check_module(nn.Conv2d(2, 4, {2, 3}, {dilation = 2, groups = 2, bias = false}), leaf{1, 2, 6, 7})
    -- "same" with an even kernel pads one side more
    local same = nn.Conv2d(1, 2, 4, {padding = "same"})
    assert.are.equal("Conv2d(1, 2, kernel_size=(4, 4), stride=(1, 1), padding=same)", tostring(same))
    check_module(same, leaf{1, 1, 5, 6})
    assert.has_error(function() nn.Conv2d(1, 2, 3, {padding = "same", stride = 2}) end,
                     "Conv2d: padding='same' is not supported for strided convolutions")
  end)

  it("MaxPool2d, AvgPool2d, Flatten", function()
    check_module(nn.Sequential{nn.AvgPool2d(2), nn.Flatten()}, leaf{2, 1, 4, 4})
    local x = (ember.arange(32, {dtype = "float64"}):view(2, 1, 4, 4) * 0.1):requires_grad_()
    check_module(nn.MaxPool2d(2), x)
  end)

  it("BatchNorm1d and BatchNorm2d, train and eval", function()
    for _, train in ipairs{true, false} do
      local b1, b2 = nn.BatchNorm1d(3), nn.BatchNorm2d(2)
      if not train then b1:eval(); b2:eval() end
      check_module(b1, leaf{4, 3})
      check_module(nn.BatchNorm1d(3), leaf{4, 3, 2})
      check_module(b2, leaf{3, 2, 2, 2})
    end
  end)

  it("LayerNorm", function()
    check_module(nn.LayerNorm(4), leaf{3, 4})
    check_module(nn.LayerNorm({2, 3}), leaf{2, 2, 3})
  end)

  it("Embedding (the weight)", function()
    local m = nn.Embedding(5, 3):double()
    local idx = ember.tensor({{1, 5}, {2, 1}}, {dtype = "int64"})
    check(function(w) return m(idx) end, {m.weight})
  end)

  it("Dropout in eval mode and with p = 0", function()
    local d = nn.Dropout(0.5)
    d:eval()
    check_module(d, leaf{3, 3})
    check_module(nn.Dropout(0), leaf{3, 3})
  end)

  it("Dropout in train mode: the kept elements pass g / (1 - p)", function()
    ember.manual_seed(3)
    local x = ember.ones(1000, {requires_grad = true})
    local y = nn.Dropout(0.25)(x)
    y:sum():backward()
    local kept = y:detach():ne(0)
    -- the gradient is 1 / (1 - p) where the output was kept, 0 elsewhere
    local expect = kept:double() / 0.75
    assert.is_true((x.grad:double() - expect):abs():max():item() < 1e-6)
    local frac = kept:sum():item() / 1000
    assert.is_true(frac > 0.7 and frac < 0.8, "kept " .. frac)
  end)

  it("activations", function()
    local away = function(shape)
      local t = ember.randn(shape, {dtype = "float64"})
      return (t + t:gt(0):double() * 0.2 - t:le(0):double() * 0.2):requires_grad_()
    end
    for _, m in ipairs{nn.ReLU(), nn.LeakyReLU(0.1), nn.GELU(), nn.GELU({approximate = "tanh"}),
                       nn.Sigmoid(), nn.Tanh(), nn.Softmax(2), nn.LogSoftmax(1), nn.Identity()} do
      check_module(m, away{3, 4})
    end
  end)

  it("a Sequential CNN end to end", function()
    local net = nn.Sequential{
      nn.Conv2d(1, 2, 3, {padding = 1}), nn.ReLU(), nn.AvgPool2d(2),
      nn.Flatten(), nn.Linear(8, 3), nn.Tanh(), nn.Linear(3, 2),
    }
    check_module(net, leaf{2, 1, 4, 4})
  end)
end)

describe("gradcheck of every loss", function()
  before_each(function() ember.manual_seed(13) end)
  local target = ember.tensor({2, 1, 3, 3}, {dtype = "int64"})

  it("CrossEntropyLoss with its options", function()
    local w = ember.tensor({0.2, 1.0, 2.5}, {dtype = "float64"})
    for _, opts in ipairs{{}, {reduction = "sum"}, {reduction = "none"}, {weight = w},
                          {label_smoothing = 0.1}, {ignore_index = 3},
                          {weight = w, label_smoothing = 0.2, reduction = "mean"}} do
      local loss = nn.CrossEntropyLoss(opts):double()
      check(function(x) return loss(x, target) end, {leaf{4, 3}})
    end
    local probs = ember.rand(4, 3, {dtype = "float64"}):softmax(2)
    check(function(x) return nn.CrossEntropyLoss()(x, probs) end, {leaf{4, 3}})
  end)

  it("NLLLoss", function()
    check(function(x) return nn.NLLLoss()(x:log_softmax(2), target) end, {leaf{4, 3}})
  end)

  it("MSELoss, L1Loss, SmoothL1Loss", function()
    local y = ember.randn(3, 4, {dtype = "float64"})
    check(function(x) return nn.MSELoss()(x, y) end, {leaf{3, 4}})
    check(function(x) return nn.L1Loss({reduction = "sum"})(x, y) end, {leaf{3, 4}})
    check(function(x) return nn.SmoothL1Loss({beta = 0.5})(x, y) end, {leaf{3, 4}})
  end)

  it("BCELoss and BCEWithLogitsLoss", function()
    local y = ember.rand(3, 4, {dtype = "float64"})
    check(function(x) return nn.BCELoss()(x:sigmoid(), y) end, {leaf{3, 4}})
    local pw = ember.tensor({1, 2, 0.5, 3}, {dtype = "float64"})
    check(function(x) return nn.BCEWithLogitsLoss({pos_weight = pw})(x, y) end, {leaf{3, 4}})
  end)
end)
