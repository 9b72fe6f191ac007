-- load_state_dict's options (strict, map) and nn.utils.from_pytorch /
-- to_pytorch: PyTorch's 0-based Sequential / ModuleList names to Ember's
-- 1-based ones and back.
local ember = require "ember"
local H = require "spec.nn.helper"
local nn = ember.nn

local function keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local function mlp()
  return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
end

describe("nn.utils.from_pytorch / to_pytorch", function()
  it("shift every plain number in a name, and only those", function()
    local t = ember.zeros(1)
    local sd = nn.utils.from_pytorch{["0.weight"] = t, ["layers.3.fc.weight"] = t,
      ["h.10.attn.c_attn.bias"] = t, ["wte.weight"] = t, ["x01.w"] = t, ["b.01.w"] = t,
      ["a.1e3.w"] = t}
    assert.are.same({"1.weight", "a.1e3.w", "b.01.w", "h.11.attn.c_attn.bias",
                     "layers.4.fc.weight", "wte.weight", "x01.w"}, keys(sd))
    assert.are.equal(t, sd["1.weight"])          -- the same tensors, not copies
    assert.are.same({"0.weight", "a.1e3.w", "b.01.w", "h.10.attn.c_attn.bias",
                     "layers.3.fc.weight", "wte.weight", "x01.w"}, keys(nn.utils.to_pytorch(sd)))
  end)

  it("round-trip a Sequential's state dict through PyTorch's names", function()
    local m, copy = mlp(), mlp()
    local pt = nn.utils.to_pytorch(m:state_dict())
    assert.are.same({"0.bias", "0.weight", "2.bias", "2.weight"}, keys(pt))
    copy:load_state_dict(nn.utils.from_pytorch(pt))
    local x = ember.randn(5, 3)
    assert.is_true(copy(x):equal(m(x)))
  end)

  it("refuse what they cannot rename", function()
    H.fails("to_pytorch: '0.weight' has index 0, and Ember's indices start at 1",
            nn.utils.to_pytorch, {["0.weight"] = ember.zeros(1)})
    H.fails("from_pytorch: expected a table of tensors, got number", nn.utils.from_pytorch, 3)
    H.fails("from_pytorch: keys must be strings, got number (1)", nn.utils.from_pytorch,
            {ember.zeros(1)})
  end)
end)

describe("load_state_dict options", function()
  local pt
  before_each(function() pt = nn.utils.to_pytorch(mlp():state_dict()) end)

  it("map as a table renames listed keys, keeps others, false drops", function()
    local m = mlp()
    local map = {["0.weight"] = "1.weight", ["0.bias"] = "1.bias", ["2.weight"] = "3.weight",
                 ["2.bias"] = "3.bias", extra = false}
    pt.extra = ember.zeros(1)
    local missing, unexpected = m:load_state_dict(pt, {map = map})
    assert.are.same({}, missing)
    assert.are.same({}, unexpected)
    assert.is_true(m[1].weight:equal(pt["0.weight"]))
  end)

  it("map as a function renames, nil drops; strict checks the new names", function()
    local m = mlp()
    local function map(k)
      if k:match("^2%.") then return nil end
      return (k:gsub("^0", "1"))
    end
    H.fails("load_state_dict: error loading into Sequential: missing keys: 3.weight, 3.bias",
            m.load_state_dict, m, pt, {map = map})
    local missing, unexpected = m:load_state_dict(pt, {map = map, strict = false})
    assert.are.same({"3.weight", "3.bias"}, missing)
    assert.are.same({}, unexpected)
    assert.is_true(m[1].bias:equal(pt["0.bias"]))
  end)

  it("errors name the key before and after renaming, and change nothing", function()
    local m = mlp()
    local before = m[1].weight:clone()
    H.fails("unexpected keys: x0.bias (was '0.bias'), x0.weight (was '0.weight')",
            m.load_state_dict, m, pt, {map = function(k) return "x" .. k end})
    local swap = {["0.weight"] = "3.weight", ["2.weight"] = "1.weight", ["0.bias"] = "1.bias",
                  ["2.bias"] = "3.bias"}
    H.fails("load_state_dict: size mismatch for 1.weight (was '2.weight'): copying a tensor of " ..
            "shape [2,4], the model has [4,3]", m.load_state_dict, m, pt, {map = swap})
    H.fails("load_state_dict: map renames both '0.bias' and '0.weight' to 'w'",
            m.load_state_dict, m, pt, {map = function() return "w" end})
    H.fails("load_state_dict: map renames '0.bias' to a number, expected a string",
            m.load_state_dict, m, pt, {map = function() return 1 end})
    H.fails("load_state_dict: '1.weight' (was 'v') is a number, expected a tensor",
            m.load_state_dict, m, {v = 1}, {map = {v = "1.weight"}, strict = false})
    assert.is_true(m[1].weight:equal(before))
  end)

  it("check the options; a boolean is strict", function()
    local m = mlp()
    H.fails("load_state_dict: unknown option 'strct'", m.load_state_dict, m, pt, {strct = false})
    H.fails("load_state_dict: map must be a table or a function, got string",
            m.load_state_dict, m, pt, {map = "x"})
    H.fails("load_state_dict: strict must be a boolean, got 1", m.load_state_dict, m, pt,
            {strict = 1})
    local missing = m:load_state_dict(pt, false)
    assert.are.equal(4, #missing)
  end)
end)
