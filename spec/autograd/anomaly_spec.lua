-- ember.set_anomaly_detection (torch.autograd.set_detect_anomaly): backward
-- names the first node whose gradient holds a NaN, and where its forward
-- op was called (core/autograd.c, bindings/lua_autograd.c).
local ember = require "ember"

local function leaf(values)
  return ember.tensor(values, {requires_grad = true})
end

-- sqrt(x) * 0 at x = 0: SqrtBackward computes 0 / (2 * sqrt(0)) = NaN
local function sqrt_nan(x) return (x:sqrt() * 0):sum() end

describe("anomaly detection", function()
  after_each(function() ember.set_anomaly_detection(false) end)

  it("is off by default and switched by a boolean", function()
    assert.is_false(ember.is_anomaly_detection_enabled())
    ember.set_anomaly_detection(true)
    assert.is_true(ember.is_anomaly_detection_enabled())
    ember.set_anomaly_detection(false)
    assert.is_false(ember.is_anomaly_detection_enabled())
    local ok, err = pcall(ember.set_anomaly_detection, 1)
    assert.is_false(ok)
    assert.truthy(err:find("set_anomaly_detection' (boolean expected, got number)", 1, true), err)
    assert.is_false(ember.is_anomaly_detection_enabled())
  end)

  it("off: a NaN gradient passes silently, as in PyTorch", function()
    local x = leaf{0, 4}
    sqrt_nan(x):backward()
    local g = x.grad:totable()
    assert.is_true(g[1] ~= g[1])
    assert.are.equal(0, g[2])
  end)

  it("on: backward raises naming the node, the input and the forward call site", function()
    ember.set_anomaly_detection(true)
    local x = leaf{0, 4}
    local loss = sqrt_nan(x)               -- the sqrt is recorded on line 11
    local ok, err = pcall(loss.backward, loss)
    assert.is_false(ok)
    assert.truthy(err:find("backward: SqrtBackward produced NaN in its gradient for input 1 " ..
                           "(anomaly detection); its forward op was called at ", 1, true), err)
    assert.truthy(err:find("anomaly_spec.lua:11", 1, true), err)
    -- a failed backward changes nothing
    assert.is_nil(x.grad)
  end)

  it("names the first node that produced the NaN, not the ones it flows into", function()
    ember.set_anomaly_detection(true)
    local w = leaf{0, 1}
    local x = w * 1                        -- MulBackward would receive the NaN next
    local ok, err = pcall(function() sqrt_nan(x):backward() end)
    assert.is_false(ok)
    assert.truthy(err:find("SqrtBackward produced NaN", 1, true), err)
    assert.falsy(err:find("MulBackward", 1, true), err)
    assert.is_nil(w.grad)
  end)

  it("counts inputs from 1: a / b at 0 / 0 has a NaN gradient for b only", function()
    ember.set_anomaly_detection(true)
    local a, b = leaf{0}, leaf{0}
    local ok, err = pcall(function() (a / b):sum():backward() end)
    assert.is_false(ok)
    assert.truthy(err:find("backward: DivBackward produced NaN in its gradient for input 2 " ..
                           "(anomaly detection)", 1, true), err)
  end)

  it("an Inf gradient is not an anomaly (PyTorch checks NaN only)", function()
    ember.set_anomaly_detection(true)
    local x = leaf{0, 1}
    x:sqrt():sum():backward()              -- 1 / (2 * sqrt(0)) = Inf
    assert.are.equal(math.huge, x.grad:totable()[1])
  end)

  it("a graph recorded with the mode off is still checked, without a call site", function()
    local x = leaf{0}
    local loss = sqrt_nan(x)
    ember.set_anomaly_detection(true)
    local ok, err = pcall(loss.backward, loss)
    assert.is_false(ok)
    assert.truthy(err:find("SqrtBackward produced NaN in its gradient for input 1 (anomaly detection)",
                           1, true), err)
    assert.falsy(err:find("called at", 1, true), err)
  end)

  it("changes nothing on a finite graph: same gradients as with the mode off", function()
    ember.manual_seed(11)
    local net = ember.nn.Sequential{ember.nn.Linear(3, 4), ember.nn.Tanh(), ember.nn.Linear(4, 1)}
    local xb = ember.randn(5, 3)
    local function grads()
      net:zero_grad()
      net(xb):pow(2):mean():backward()
      local out = {}
      for i, p in ipairs(net:parameters()) do out[i] = p.grad:clone() end
      return out
    end
    local off = grads()
    ember.set_anomaly_detection(true)
    local on = grads()
    for i = 1, #off do assert.is_true(ember.equal(off[i], on[i]), "parameter " .. i) end
  end)

  it("the state stays usable after an anomaly: the next backward works", function()
    ember.set_anomaly_detection(true)
    local x = leaf{0}
    assert.is_false(pcall(function() sqrt_nan(x):backward() end))
    local y = leaf{3}
    ;(y * y):sum():backward()
    assert.are.equal(6, y.grad:item())
  end)
end)
