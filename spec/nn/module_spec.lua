-- The nn.Module API: registration order and names, state_dict round trip,
-- load_state_dict errors, train/eval, apply, printing, user classes,
-- Sequential, dtype conversion.
local ember = require "ember"
local nn = ember.nn
local H = require "nn.helper"

local function names(iter)
  local out = {}
  for n in iter do out[#out + 1] = n end
  return out
end

local Net = nn.Module:extend("Net")
function Net:init(hidden)
  self.fc1 = nn.Linear(4, hidden)
  self.act = nn.ReLU()
  self.scale = ember.ones(1, {requires_grad = true})   -- a parameter by assignment
  self.fc2 = nn.Linear(hidden, 2)
  self.note = "plain field"
  self.steps = ember.zeros(1)                          -- a plain tensor: not registered
end
function Net:forward(x) return self.fc2(self.act(self.fc1(x))) * self.scale end

describe("nn.Module", function()
  it("registers fields in assignment order and names them with dots", function()
    local m = Net(3)
    assert.are.same({"scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"},
                    names(m:named_parameters()))
    assert.are.equal(5, #m:parameters())
    assert.are.same({"fc1", "act", "fc2"}, names(m:named_children()))
    assert.are.equal(4, #m:modules())
    assert.are.equal("plain field", m.note)
    assert.are.same({2, 2}, m(ember.randn(2, 4)):shape())
    assert.is_true(m.fc1.weight.requires_grad)
  end)

  it("replaces and removes entries by assignment", function()
    local m = Net(3)
    m.fc1 = nn.Linear(4, 3, {bias = false})
    assert.are.same({"scale", "fc1.weight", "fc2.weight", "fc2.bias"},
                    names(m:named_parameters()))
    m.scale = nil
    assert.are.same({"fc1.weight", "fc2.weight", "fc2.bias"}, names(m:named_parameters()))
    H.fails("cannot assign a number as child module 'fc2' of Net", function() m.fc2 = 1 end)
  end)

  it("has register_parameter, register_buffer and add_module", function()
    local m = nn.Module()
    m:register_parameter("w", ember.zeros(2))
    m:register_buffer("count", ember.zeros({}, {dtype = "int64"}))
    m:add_module("inner", nn.Linear(1, 1))
    assert.is_true(m.w.requires_grad)
    assert.are.same({"w", "inner.weight", "inner.bias"}, names(m:named_parameters()))
    assert.are.same({"count"}, names(m:named_buffers()))
    assert.are.equal(1, #m:buffers())
    local sd = m:state_dict()
    assert.is_truthy(sd.w and sd.count and sd["inner.weight"])
    H.fails("register_buffer: 'w' is already a parameter", m.register_buffer, m, "w",
            ember.zeros(1))
    H.fails("register_parameter: name must be a non-empty string without '.', got 'a.b'",
            m.register_parameter, m, "a.b", ember.zeros(1))
    H.fails("add_module: expected a module, got number", m.add_module, m, "x", 1)
    H.fails("forward: Module does not define forward", m, ember.zeros(1))
  end)

  it("round-trips state_dict and copies in place", function()
    local a, b = Net(3), Net(3)
    local w = b.fc1.weight
    b:load_state_dict(a:state_dict())
    assert.is_true(rawequal(w, b.fc1.weight))
    for n, p in a:named_parameters() do
      assert.is_true(p:equal(b:state_dict()[n]), n)
    end
    local x = ember.randn(5, 4)
    assert.is_true(a(x):equal(b(x)))
  end)

  it("load_state_dict reports missing, unexpected and mismatched keys and changes nothing", function()
    local m = Net(3)
    local before = m.fc1.weight:clone()
    local sd = Net(3):state_dict()
    sd["fc2.bias"] = nil
    sd.extra = ember.zeros(1)
    H.fails("load_state_dict: error loading into Net: missing keys: fc2.bias; unexpected " ..
            "keys: extra", m.load_state_dict, m, sd)
    assert.is_true(m.fc1.weight:equal(before))
    local sd2 = Net(3):state_dict()
    sd2["fc2.weight"] = ember.zeros(2, 4)
    H.fails("load_state_dict: size mismatch for fc2.weight: copying a tensor of shape [2,4], " ..
            "the model has [2,3]", m.load_state_dict, m, sd2)
    assert.is_true(m.fc1.weight:equal(before))
    H.fails("load_state_dict: 'scale' is a number, expected a tensor", m.load_state_dict, m,
            {scale = 1}, false)
    -- non-strict: loads what is there, returns the lists
    local missing, unexpected = m:load_state_dict(sd, false)
    assert.are.same({"fc2.bias"}, missing)
    assert.are.same({"extra"}, unexpected)
    assert.is_false(m.fc1.weight:equal(before))
  end)

  it("train and eval set .training on the whole tree", function()
    local m = nn.Sequential{nn.Linear(2, 2), nn.Dropout()}
    assert.is_true(m.training and m[2].training)
    assert.is_true(rawequal(m:eval(), m))
    assert.is_false(m.training or m[2].training)
    m:train()
    assert.is_true(m[2].training)
    H.fails("train: expected a boolean, got string", m.train, m, "yes")
  end)

  it("apply visits children first, then the module", function()
    local seen = {}
    local m = nn.Sequential{nn.Linear(2, 2), nn.Sequential{nn.ReLU()}}
    m:apply(function(mod) seen[#seen + 1] = getmetatable(mod).__name end)
    assert.are.same({"Linear", "ReLU", "Sequential", "Sequential"}, seen)
    m:apply(function(mod)
      if getmetatable(mod).__name == "Linear" then nn.init.zeros_(mod.weight) end
    end)
    assert.are.equal(0.0, m[1].weight:abs():sum():item())
  end)

  it("zero_grad drops the gradients", function()
    local m = nn.Linear(3, 1)
    m(ember.ones(2, 3)):sum():backward()
    assert.is_truthy(m.weight.grad)
    m:zero_grad()
    assert.is_nil(m.weight.grad)
    assert.is_nil(m.bias.grad)
  end)

  it("prints as PyTorch", function()
    local m = nn.Sequential{nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.2))}
    assert.are.equal([[
Sequential(
  (1): Linear(in_features=4, out_features=3, bias=true)
  (2): ReLU()
  (3): Sequential(
    (1): Dropout(p=0.2)
  )
)]], tostring(m))
    assert.are.equal("class Linear", tostring(nn.Linear))
  end)

  it("converts dtypes, keeping requires_grad and buffers' integer dtypes", function()
    local m = nn.Sequential{nn.Linear(2, 2), nn.BatchNorm1d(2)}
    assert.is_true(rawequal(m:double(), m))
    for n, p in m:named_parameters() do
      assert.are.equal("float64", p.dtype, n)
      assert.is_true(p.requires_grad, n)
    end
    assert.are.equal("float64", m[2].running_mean.dtype)
    assert.are.equal("int64", m[2].num_batches_tracked.dtype)
    assert.are.equal("float64", m(ember.randn(3, 2, {dtype = "float64"})).dtype)
    m:to("float32")
    assert.are.equal("float32", m:parameters()[1].dtype)
    H.fails("to: expected a floating dtype (float32, float64, bfloat16, float16) or a device (cpu or cuda), got 'int64'", m.to, m, "int64")
  end)
end)

describe("user-defined classes", function()
  it("derive from derived classes and call the parent's init", function()
    local Wide = Net:extend("Wide")
    function Wide:init() Net.init(self, 8); self.extra = nn.Linear(2, 2) end
    local m = Wide()
    assert.are.equal(8, m.fc1.out_features)
    assert.are.same({"fc1", "act", "fc2", "extra"}, names(m:named_children()))
    assert.is_true(nn.Module.is_module(m))
    assert.is_false(nn.Module.is_module({}))
    H.fails("extend: expected a class name", nn.Module.extend, nn.Module)
  end)
end)

describe("nn.Sequential", function()
  it("is built from a list or from arguments, indexed from 1", function()
    local a, b = nn.Linear(2, 3), nn.ReLU()
    local s1, s2 = nn.Sequential{a, b}, nn.Sequential(a, b)
    assert.are.equal(2, #s1)
    assert.is_true(rawequal(s1[1], a) and rawequal(s2[2], b) and rawequal(s1[-1], b))
    assert.is_nil(s1[3])
    assert.are.same({"1.weight", "1.bias"}, names(s1:named_parameters()))
    local n = 0
    for i, layer in ipairs(s1) do n = n + 1; assert.is_true(rawequal(layer, s1[i])) end
    assert.are.equal(2, n)
  end)
  it("adds layers and runs them in order", function()
    local s = nn.Sequential():add(nn.Linear(2, 3)):add(nn.ReLU())
    assert.are.equal(2, #s)
    local y = s(ember.randn(4, 2))
    assert.are.same({4, 3}, y:shape())
    assert.is_true(y:min():item() >= 0)
    assert.are.equal(0, #nn.Sequential{}:parameters())
  end)
  it("rejects what is not a module", function()
    H.fails("Sequential: layer 2 is a number, expected a module", nn.Sequential, nn.ReLU(), 5)
    H.fails("add: expected a module, got table", nn.Sequential().add, nn.Sequential(), {})
    H.fails("Sequential: expected a list of modules", nn.Sequential, {a = nn.ReLU()})
  end)
end)

describe("Module fields and autograd", function()
  it("a leaf that requires grad becomes a parameter, a computed tensor does not", function()
    local M = nn.Module:extend("Cache")
    function M:init() self.w = ember.ones(2, {requires_grad = true}) end
    function M:forward(x)
      self.last = x * self.w   -- a non-leaf kept for later: a plain field
      return self.last
    end
    local m = M()
    m(ember.ones(2))
    assert.are.equal(1, #m:parameters())
    assert.is_false(m.last.is_leaf)
  end)
end)
