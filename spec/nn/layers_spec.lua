-- Every layer's forward (and, with autograd, its gradients) against
-- PyTorch reference values (spec/reference/make_nn_layers_reference.py).
local ember = require "ember"
local nn = ember.nn
local H = require "nn.helper"
local ref, T, close = H.ref, H.T, H.close

--- Load a case's weight/bias into layer m (converted to dtype).
local function load(m, c, dtype)
  m:to(dtype)
  local sd = {}
  for _, name in ipairs{"weight", "bias"} do
    if c[name] then sd[name] = T(c[name], dtype) end
  end
  m:load_state_dict(sd, false)
  return m
end

--- Check forward and gradients of m on the case's input x.
local function check_layer(m, c, dtype, name)
  load(m, c, dtype)
  local x = H.leaf(c.x, dtype)
  local out = m(x)
  close(out, c.out, name .. " out")
  assert.is_true(out.requires_grad, name .. ": the output does not record gradients")
  H.backward(out, c.R)
  close(x.grad, c.gx, name .. " grad input")
  if c.gweight then close(m.weight.grad, c.gweight, name .. " grad weight") end
  if c.gbias then close(m.bias.grad, c.gbias, name .. " grad bias") end
end

local function for_dtypes(name, fn)
  for _, dt in ipairs(H.DTYPES) do
    it(name .. " (" .. dt .. ")", function() fn(dt) end)
  end
end

describe("nn.Linear", function()
  for _, name in ipairs{"linear", "linear_3d_nobias"} do
    local c = ref[name]
    for_dtypes(name, function(dt)
      local m = nn.Linear(c.weight.shape[2], c.weight.shape[1], {bias = c.bias ~= nil})
      check_layer(m, c, dt, name)
    end)
  end
  it("rejects inputs of the wrong width", function()
    H.fails("linear: input shape [2,3] does not match weight shape [5,4]",
            nn.Linear(4, 5), ember.zeros(2, 3))
  end)
end)

describe("nn.Conv2d", function()
  for _, name in ipairs{"conv_basic", "conv_stride_pad", "conv_rect_dilation", "conv_groups"} do
    local c = ref[name]
    for_dtypes(name, function(dt)
      local m = nn.Conv2d(c.in_channels, c.out_channels, c.kernel, {stride = c.stride,
                          padding = c.padding, dilation = c.dilation, groups = c.groups,
                          bias = c.bias ~= nil})
      check_layer(m, c, dt, name)
    end)
  end
  it("accepts positional stride and padding", function()
    local m = nn.Conv2d(1, 32, 3, 1, 1)
    assert.are.same({1, 1}, m.stride)
    assert.are.same({1, 1}, m.padding)
    assert.are.same({32, 1, 3, 3}, m.weight:shape())
    assert.are.equal("Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
                     tostring(m))
  end)
  it("checks its arguments", function()
    H.fails("Conv2d: in_channels (3) and out_channels (4) must be divisible by groups (2)",
            nn.Conv2d, 3, 4, 3, {groups = 2})
    H.fails("Conv2d: kernel_size must be >= 1, got 0", nn.Conv2d, 1, 1, 0)
    H.fails("Conv2d: unknown option 'strides'", nn.Conv2d, 1, 1, 3, {strides = 2})
    H.fails("Conv2d: stride must be an integer or a pair {h, w}", nn.Conv2d, 1, 1, 3,
            {stride = {1, 2, 3}})
  end)
end)

describe("nn.MaxPool2d and nn.AvgPool2d", function()
  for _, name in ipairs{"maxpool_k2", "maxpool_k3s2p1", "maxpool_ceil", "maxpool_dilation",
                        "avgpool_k2", "avgpool_k3s2p1", "avgpool_nopad_count", "avgpool_ceil"} do
    local c = ref[name]
    for_dtypes(name, function(dt)
      local m
      if c.kind == "max" then
        m = nn.MaxPool2d(c.kernel, c.stride, c.padding, {dilation = c.dilation,
                         ceil_mode = c.ceil_mode})
      else
        m = nn.AvgPool2d(c.kernel, c.stride, c.padding, {ceil_mode = c.ceil_mode,
                         count_include_pad = c.count_include_pad})
      end
      check_layer(m, c, dt, name)
    end)
  end
  it("default the stride to the kernel and print as PyTorch", function()
    assert.are.equal("MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=false)",
                     tostring(nn.MaxPool2d(2)))
    assert.are.equal("AvgPool2d(kernel_size=3, stride=2, padding=1)",
                     tostring(nn.AvgPool2d(3, {stride = 2, padding = 1})))
  end)
  it("reject a padding over half the kernel", function()
    H.fails("MaxPool2d: padding should be at most half of the kernel size", nn.MaxPool2d, 2, 2, 2)
  end)
end)

describe("activations", function()
  local layers = {
    relu = function() return nn.ReLU() end,
    leaky_relu = function() return nn.LeakyReLU() end,
    leaky_relu_02 = function() return nn.LeakyReLU(0.2) end,
    gelu = function() return nn.GELU() end,
    gelu_tanh = function() return nn.GELU({approximate = "tanh"}) end,
    sigmoid = function() return nn.Sigmoid() end,
    tanh = function() return nn.Tanh() end,
    softmax = function() return nn.Softmax(2) end,
    log_softmax = function() return nn.LogSoftmax(1) end,
  }
  for _, name in ipairs{"relu", "leaky_relu", "leaky_relu_02", "gelu", "gelu_tanh", "sigmoid",
                        "tanh", "softmax", "log_softmax"} do
    local c = ref["act_" .. name]
    for_dtypes(name, function(dt)
      check_layer(layers[name](), c, dt, name)
    end)
  end
  it("Identity returns its input", function()
    local x = ember.ones(2)
    assert.is_true(rawequal(nn.Identity()(x), x))
  end)
  it("check their arguments", function()
    H.fails("Softmax: dim must be a nonzero integer", nn.Softmax)
    H.fails("GELU: approximate must be 'none' or 'tanh', got 'fast'", nn.GELU, "fast")
    H.fails("relu: expected a tensor for the input, got number", nn.F.relu, 1)
    H.fails("softmax: dim must be an integer, got nil", nn.F.softmax, ember.zeros(2))
  end)
end)

describe("nn.Flatten", function()
  it("keeps the batch dimension", function()
    local c = ref.flatten
    close(nn.Flatten()(T(c.x)), c.out, "flatten")
    assert.are.same({2, 3, 4}, nn.Flatten(3)(ember.zeros(2, 3, 2, 2)):shape())
    assert.are.same({6, 4}, nn.Flatten(1, 2)(ember.zeros(2, 3, 4)):shape())
  end)
end)

describe("nn.Embedding", function()
  for _, name in ipairs{"embedding", "embedding_pad"} do
    local c = ref[name]
    for_dtypes(name, function(dt)
      local m = load(nn.Embedding(6, 3, {padding_idx = c.padding_idx}), c, dt)
      local out = m(T(c.idx))
      close(out, c.out, name .. " out")
      H.backward(out, c.R)
      close(m.weight.grad, c.gweight, name .. " grad weight")
    end)
  end
  it("zeroes the padding row at initialisation", function()
    local m = nn.Embedding(5, 4, {padding_idx = -1})
    assert.are.equal(5, m.padding_idx)
    assert.are.equal(0.0, m.weight[5]:abs():sum():item())
    assert.is_true(m.weight[1]:abs():sum():item() > 0)
  end)
  it("checks its indices", function()
    local m = nn.Embedding(4, 2)
    H.fails("embedding: index 5 is out of range for 4 embeddings (indices count from 1)",
            m, ember.tensor({1, 5}, {dtype = "int64"}))
    H.fails("embedding: index 0 is out of range", m, ember.tensor({0}, {dtype = "int64"}))
    H.fails("embedding: expected int64 or int32 indices, got float32", m, ember.tensor({1}))
    H.fails("Embedding: padding_idx must be within 1..4", nn.Embedding, 4, 2, {padding_idx = 5})
  end)
end)

describe("nn.LayerNorm", function()
  for _, name in ipairs{"ln_last", "ln_two", "ln_noaffine"} do
    local c = ref[name]
    for_dtypes(name, function(dt)
      check_layer(nn.LayerNorm(c.normalized_shape, {elementwise_affine = c.weight ~= nil}),
                  c, dt, name)
    end)
  end
  it("checks the input's trailing shape", function()
    H.fails("layer_norm: input shape [2,3] does not end with normalized_shape [4]",
            nn.LayerNorm(4), ember.zeros(2, 3))
    assert.are.equal("LayerNorm((4,), eps=1e-05, elementwise_affine=true)",
                     tostring(nn.LayerNorm(4)))
  end)
end)

describe("nn.BatchNorm", function()
  local classes = {bn1d_2d = nn.BatchNorm1d, bn1d_3d = nn.BatchNorm1d, bn2d = nn.BatchNorm2d,
                   bn2d_cma = nn.BatchNorm2d, bn2d_mom = nn.BatchNorm2d,
                   bn2d_noaffine = nn.BatchNorm2d, bn1d_notrack = nn.BatchNorm1d}
  for _, name in ipairs{"bn1d_2d", "bn1d_3d", "bn2d", "bn2d_cma", "bn2d_mom", "bn2d_noaffine",
                        "bn1d_notrack"} do
    local c = ref[name]
    local function make(dt)
      local m = classes[name](c.x1.shape[2], {momentum = c.momentum, eps = c.eps,
                              affine = c.affine, track_running_stats = c.track_running_stats})
      return load(m, c, dt)
    end
    for_dtypes(name .. ": two training steps, then eval", function(dt)
      local m = make(dt)
      close(m(T(c.x1, dt)), c.y1, name .. " y1")
      close(m(T(c.x2, dt)), c.y2, name .. " y2")
      if c.running_mean then
        close(m.running_mean, c.running_mean, name .. " running_mean")
        close(m.running_var, c.running_var, name .. " running_var")
        assert.are.equal(c.num_batches_tracked, m.num_batches_tracked:item())
      else
        assert.is_nil(m.running_mean)
      end
      m:eval()
      close(m(T(c.x3, dt)), c.y3, name .. " y3 (eval)")
    end)
    for_dtypes(name .. ": gradients", function(dt)
      local m = make(dt)
      local x = H.leaf(c.x1, dt)
      H.backward(m(x), c.R)
      close(x.grad, c.gx, name .. " grad input")
      if c.gweight then
        close(m.weight.grad, c.gweight, name .. " grad weight")
        close(m.bias.grad, c.gbias, name .. " grad bias")
      end
    end)
  end
  it("keeps running stats as buffers, not parameters", function()
    local m = nn.BatchNorm2d(3)
    assert.are.equal(2, #m:parameters())
    local names = {}
    for n in m:named_buffers() do names[#names + 1] = n end
    assert.are.same({"running_mean", "running_var", "num_batches_tracked"}, names)
    local sd = m:state_dict()
    assert.is_truthy(sd.running_mean and sd.num_batches_tracked and sd.weight)
    assert.are.equal("BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=true, " ..
                     "track_running_stats=true)", tostring(m))
  end)
  it("checks its input", function()
    H.fails("BatchNorm2d: expected a 4-d input [N,C,H,W], got shape [2,3]",
            nn.BatchNorm2d(3), ember.zeros(2, 3))
    H.fails("BatchNorm1d: expected 3 channels in dimension 2, got input shape [2,4]",
            nn.BatchNorm1d(3), ember.zeros(2, 4))
    H.fails("batch_norm: expected more than 1 value per channel when training",
            nn.BatchNorm1d(3), ember.zeros(1, 3))
    H.fails("BatchNorm1d: num_features must be >= 1, got 0", nn.BatchNorm1d, 0)
  end)
end)

describe("nn.Dropout", function()
  it("is the identity in eval mode", function()
    local m = nn.Dropout(0.3):eval()
    local x = ember.randn(4, 5)
    assert.is_true(m(x):equal(x))
  end)
  it("zeroes about p of the elements and scales the rest by 1/(1-p)", function()
    ember.manual_seed(7)
    local y = nn.Dropout(0.25)(ember.ones(20000))
    local zeros = y:eq(0):sum():item()
    assert.is_true(math.abs(zeros / 20000 - 0.25) < 0.02, "fraction " .. zeros / 20000)
    local kept = y:sum():item() / (20000 - zeros)
    assert.is_true(math.abs(kept - 1 / 0.75) < 1e-5)
  end)
  it("is reproducible under manual_seed, and p = 0 or 1 are exact", function()
    ember.manual_seed(3)
    local a = nn.F.dropout(ember.ones(50), 0.5)
    ember.manual_seed(3)
    assert.is_true(nn.F.dropout(ember.ones(50), 0.5):equal(a))
    assert.are.equal(0.0, nn.Dropout(1)(ember.ones(5)):sum():item())
    assert.are.equal(5.0, nn.Dropout(0)(ember.ones(5)):sum():item())
  end)
  it("checks p", function()
    H.fails("Dropout: p must be in [0, 1], got 1.5", nn.Dropout, 1.5)
    H.fails("dropout: p must be in [0, 1], got -0.1", nn.F.dropout, ember.ones(2), -0.1)
  end)
end)
