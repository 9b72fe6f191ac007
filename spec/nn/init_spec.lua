-- nn.init, the default initialisation of the layers, nn.utils clipping.
local ember = require "ember"
local nn = ember.nn
local H = require "nn.helper"

local function minmax(t) return t:min():item(), t:max():item() end

describe("default initialisation", function()
  it("Linear: weight and bias within 1/sqrt(fan_in), filling the range", function()
    local m = nn.Linear(64, 200)
    local bound = 1 / math.sqrt(64)
    local lo, hi = minmax(m.weight)
    assert.is_true(lo >= -bound and hi <= bound)
    assert.is_true(lo < -0.9 * bound and hi > 0.9 * bound)
    lo, hi = minmax(m.bias)
    assert.is_true(lo >= -bound and hi <= bound)
    -- uniform: variance bound^2 / 3
    local var = m.weight:var():item()
    assert.is_true(math.abs(var / (bound * bound / 3) - 1) < 0.05, "var " .. var)
  end)
  it("Conv2d: fan_in is in_channels/groups * kh * kw", function()
    local m = nn.Conv2d(4, 16, 3, {groups = 2})
    local bound = 1 / math.sqrt(2 * 9)
    local lo, hi = minmax(m.weight)
    assert.is_true(lo >= -bound and hi <= bound and hi > 0.8 * bound)
  end)
  it("Embedding N(0, 1); norms weight 1 bias 0", function()
    local e = nn.Embedding(1000, 10)
    assert.is_true(math.abs(e.weight:mean():item()) < 0.05)
    assert.is_true(math.abs(e.weight:std():item() - 1) < 0.05)
    local bn, ln = nn.BatchNorm2d(3), nn.LayerNorm({2, 3})
    assert.is_true(bn.weight:equal(ember.ones(3)) and bn.bias:equal(ember.zeros(3)))
    assert.is_true(ln.weight:equal(ember.ones(2, 3)) and ln.bias:equal(ember.zeros(2, 3)))
  end)
  it("is reproducible under manual_seed", function()
    ember.manual_seed(123)
    local a = nn.Sequential{nn.Linear(3, 4), nn.Linear(4, 2)}
    ember.manual_seed(123)
    local b = nn.Sequential{nn.Linear(3, 4), nn.Linear(4, 2)}
    for n, p in a:named_parameters() do assert.is_true(p:equal(b:state_dict()[n]), n) end
  end)
end)

describe("nn.init", function()
  it("computes fans and gains as PyTorch", function()
    assert.are.same({12, 16}, {nn.init._calculate_fan_in_and_fan_out(ember.zeros(4, 3, 2, 2))})
    assert.are.equal(math.sqrt(2), nn.init.calculate_gain("relu"))
    assert.are.equal(5 / 3, nn.init.calculate_gain("tanh"))
    assert.are.equal(1, nn.init.calculate_gain("linear"))
    assert.is_true(math.abs(nn.init.calculate_gain("leaky_relu", math.sqrt(5)) -
                            math.sqrt(1 / 3)) < 1e-15)
    H.fails("init.calculate_gain: unsupported nonlinearity 'swish'", nn.init.calculate_gain,
            "swish")
  end)
  it("fills in place, returns the tensor, works on parameters", function()
    local w = ember.empty(100, 50, {requires_grad = true})
    assert.is_true(rawequal(nn.init.kaiming_uniform_(w), w))
    local bound = math.sqrt(6 / 50)            -- gain sqrt(2), a = 0
    local lo, hi = minmax(w)
    assert.is_true(lo >= -bound and hi <= bound and hi > 0.9 * bound)
    assert.is_true(w.requires_grad and w.is_leaf)
    nn.init.kaiming_normal_(w, {mode = "fan_out", nonlinearity = "relu"})
    assert.is_true(math.abs(w:std():item() / math.sqrt(2 / 100) - 1) < 0.05)
    nn.init.xavier_uniform_(w, {gain = 2})
    local a = 2 * math.sqrt(6 / 150)
    lo, hi = minmax(w)
    assert.is_true(lo >= -a and hi <= a and hi > 0.9 * a)
    nn.init.xavier_normal_(w)
    assert.is_true(math.abs(w:std():item() / math.sqrt(2 / 150) - 1) < 0.05)
    nn.init.normal_(w, 3, 0.5)
    assert.is_true(math.abs(w:mean():item() - 3) < 0.05)
    nn.init.uniform_(w, -2, -1)
    lo, hi = minmax(w)
    assert.is_true(lo >= -2 and hi <= -1)
    nn.init.constant_(w, 0.25)
    assert.are.equal(0.25, w:max():item())
    assert.are.equal(0.0, nn.init.zeros_(w):abs():max():item())
    assert.are.equal(1.0, nn.init.ones_(w):min():item())
  end)
  it("checks its arguments", function()
    H.fails("init.kaiming_uniform_: fan in and fan out can not be computed for a tensor with " ..
            "fewer than 2 dimensions (shape [3])", nn.init.kaiming_uniform_, ember.zeros(3))
    H.fails("init.kaiming_normal_: mode must be 'fan_in' or 'fan_out', got 'fan'",
            nn.init.kaiming_normal_, ember.zeros(2, 2), {mode = "fan"})
    H.fails("init.normal_: expected a floating tensor for the tensor, got int64", nn.init.normal_,
            ember.zeros(2, {dtype = "int64"}))
    H.fails("init.uniform_: b must be in [1, inf], got 0", nn.init.uniform_, ember.zeros(2), 1, 0)
    H.fails("init.xavier_uniform_: unknown option 'gian'", nn.init.xavier_uniform_,
            ember.zeros(2, 2), {gian = 1})
  end)
end)

describe("nn.utils", function()
  local function params()
    local a = ember.zeros(2, {requires_grad = true})
    local b = ember.zeros(2, {requires_grad = true})
    local loss = (a * ember.tensor({3, 4})):sum() + (b * ember.tensor({0, 12})):sum()
    loss:backward()
    return a, b
  end
  it("clip_grad_norm_ scales the gradients and returns the total norm", function()
    local a, b = params()
    local total = nn.utils.clip_grad_norm_({a, b}, 6.5)
    assert.are.equal(13.0, total:item())
    local coef = 6.5 / (13 + 1e-6)
    assert.is_true(math.abs(a.grad[2] - 4 * coef) < 1e-6)
    assert.is_true(math.abs(b.grad[2] - 12 * coef) < 1e-6)
    -- below the limit: unchanged
    a, b = params()
    nn.utils.clip_grad_norm_({a, b}, 100)
    assert.are.equal(12.0, b.grad[2])
    -- the max norm
    a, b = params()
    assert.are.equal(12.0, nn.utils.clip_grad_norm_({a, b}, 1, math.huge):item())
    assert.is_true(math.abs(b.grad[2] - 12 / (12 + 1e-6)) < 1e-6)
  end)
  it("clip_grad_value_ clamps each gradient", function()
    local a, b = params()
    nn.utils.clip_grad_value_({a, b}, 3.5)
    assert.are.same({3.0, 3.5}, a.grad:totable())
    assert.are.same({0.0, 3.5}, b.grad:totable())
  end)
  it("check their arguments", function()
    H.fails("clip_grad_norm_: expected a tensor or a list of tensors, got number",
            nn.utils.clip_grad_norm_, 1, 1)
    H.fails("clip_grad_value_: parameter 1 is a string, expected a tensor",
            nn.utils.clip_grad_value_, {"x"}, 1)
    H.fails("clip_grad_norm_: max_norm must be a number, got nil", nn.utils.clip_grad_norm_, {})
  end)
end)
