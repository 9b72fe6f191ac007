-- A small network against PyTorch: outputs, loss, every gradient, the
-- BatchNorm statistics, and three steps of each optimizer
-- (values from spec/reference/make_net_reference.py).
local ember = require "ember"
local nn, optim = ember.nn, ember.optim
local ref = require "reference.net_values"

local function tensor(r)
  return ember.tensor(r.values):view(r.shape)
end

-- |a - b| <= 1e-5 * max(1, |b|) elementwise, with the worst offender named
local function assert_close(got, r, what, tol)
  tol = tol or 1e-5
  assert.are.same(r.shape, got:shape(), what .. ": shape")
  local g = got:contiguous():view(-1):totable()
  for i, v in ipairs(r.values) do
    local err = math.abs(g[i] - v)
    if err > tol * math.max(1, math.abs(v)) then
      error(("%s: element %d is %.9g, PyTorch %.9g"):format(what, i, g[i], v), 2)
    end
  end
end

local function make_net()
  local net = nn.Sequential{
    nn.Conv2d(1, 3, 3, {padding = 1, bias = false}), nn.BatchNorm2d(3), nn.ReLU(),
    nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.0),
    nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 4),
  }
  ember.no_grad(function()
    for i, p in ipairs(net:parameters()) do p:copy_(tensor(ref.params[i])) end
  end)
  return net
end

local x = tensor(ref.x)
local y = ember.tensor(ref.y, {dtype = "int64"})

describe("a small network against PyTorch", function()
  it("forward, loss, gradients and BatchNorm statistics", function()
    local net = make_net()
    net:train()
    local logits = net(x)
    assert_close(logits, ref.logits, "logits")
    local loss = nn.functional.cross_entropy(logits, y)
    assert.is_true(math.abs(loss:item() - ref.loss) <= 1e-5 * math.abs(ref.loss))
    loss:backward()
    for i, p in ipairs(net:parameters()) do
      assert_close(p.grad, ref.grads[i], "grad of parameter " .. i)
    end
    assert_close(net[2].running_mean, ref.running_mean, "running_mean")
    assert_close(net[2].running_var, ref.running_var, "running_var")
    net:eval()
    assert_close(ember.no_grad(function() return net(x) end), ref.eval_logits, "eval logits")
  end)

  local optimizers = {
    sgd = function(ps) return optim.SGD(ps, {lr = 0.1}) end,
    sgd_momentum = function(ps)
      return optim.SGD(ps, {lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 1e-3})
    end,
    adam = function(ps) return optim.Adam(ps, {lr = 0.01}) end,
    adamw = function(ps) return optim.AdamW(ps, {lr = 0.01, weight_decay = 0.1}) end,
    rmsprop = function(ps) return optim.RMSprop(ps, {lr = 0.01, momentum = 0.5}) end,
    adagrad = function(ps) return optim.Adagrad(ps, {lr = 0.1}) end,
  }
  for _, name in ipairs{"sgd", "sgd_momentum", "adam", "adamw", "rmsprop", "adagrad"} do
    it("three steps of " .. name, function()
      local net = make_net()
      net:train()
      local opt = optimizers[name](net:parameters())
      for _ = 1, 3 do
        opt:zero_grad()
        nn.functional.cross_entropy(net(x), y):backward()
        opt:step()
      end
      for i, p in ipairs(net:parameters()) do
        assert_close(p:detach(), ref.steps[name][i], name .. ": parameter " .. i)
      end
    end)
  end
end)
