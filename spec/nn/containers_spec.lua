-- nn.ModuleList and nn.ModuleDict (and what they share with Sequential):
-- construction, PyTorch's list and dict methods, names in state_dict,
-- saving and loading, moving.
local ember = require "ember"
local nn = ember.nn
local H = require "nn.helper"

--- Assert that got is the list of exactly these module objects.
local function same_modules(want, got)
  assert.are.equal(#want, #got, "number of modules")
  for i = 1, #want do assert.is_true(rawequal(want[i], got[i]), "module " .. i) end
end

local function names(m)
  local out = {}
  for n in m:named_parameters() do out[#out + 1] = n end
  return out
end

describe("nn.ModuleList", function()
  it("numbers its modules from 1, as Sequential does", function()
    local a, b = nn.Linear(2, 3), nn.Linear(3, 4)
    local l = nn.ModuleList{a, b}
    assert.are.equal(2, #l)
    assert.are.equal(a, l[1])
    assert.are.equal(b, l[-1])
    assert.is_nil(l[3])
    assert.is_nil(l[-3])
    assert.are.same({"1.weight", "1.bias", "2.weight", "2.bias"}, names(l))
    local seen = {}
    for i, m in ipairs(l) do seen[i] = m end
    same_modules({a, b}, seen)
    same_modules({a, b}, l:children())
    assert.are.equal(0, #nn.ModuleList())
    assert.are.equal(0, #nn.ModuleList{})
  end)

  it("appends, extends, inserts and replaces", function()
    local a, b, c, d, e = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity(), nn.GELU()
    local l = nn.ModuleList():append(a):extend{b, c}
    same_modules({a, b, c}, l:children())
    l:insert(1, d)                    -- before the first
    same_modules({d, a, b, c}, l:children())
    l:insert(-1, e)                   -- before the last, as Python's insert(-1, m)
    same_modules({d, a, b, e, c}, l:children())
    l:insert(6, a)                    -- at the end
    assert.are.equal(a, l[6])
    l[2] = c
    assert.are.equal(c, l[2])
    l[-1] = b
    assert.are.equal(b, l[6])
    l[7] = d                          -- one past the end appends
    assert.are.equal(7, #l)
    local names_in_order = {}
    for n in l:named_children() do names_in_order[#names_in_order + 1] = n end
    assert.are.same({"1", "2", "3", "4", "5", "6", "7"}, names_in_order)
    l:extend(nn.ModuleList{nn.ReLU()})
    assert.are.equal(8, #l)
  end)

  it("rejects what is not a module, and changes nothing then", function()
    local l = nn.ModuleList{nn.ReLU()}
    H.fails("ModuleList: entry 2 is a number, expected a module", nn.ModuleList, {nn.ReLU(), 3})
    H.fails("ModuleList: expected a list of modules (named entries", nn.ModuleList, {a = nn.ReLU()})
    H.fails("ModuleList: expected a list of modules, got a module", nn.ModuleList, nn.ReLU())
    H.fails("append: expected a module, got number", l.append, l, 1)
    H.fails("extend: entry 2 is a string", l.extend, l, {nn.ReLU(), "x"})
    H.fails("insert: index 4 is out of range for 1 modules", l.insert, l, 4, nn.ReLU())
    H.fails("ModuleList: index 3 is out of range for 1 modules", function() l[3] = nn.ReLU() end)
    H.fails("ModuleList: can only assign a module to [1], got number", function() l[1] = 5 end)
    assert.are.equal(1, #l)
    H.fails("forward: ModuleList does not define forward", function() l(ember.zeros(1)) end)
  end)

  it("saves, loads and rebuilds with the modules it has now", function()
    local l = nn.ModuleList{nn.Linear(2, 2)}
    l:append(nn.LayerNorm(2))
    local path = os.tmpname()
    l:save(path)
    local again = nn.load(path)
    os.remove(path)
    assert.are.equal("ModuleList", again.__name)
    assert.are.equal(2, #again)
    for k, v in pairs(l:state_dict()) do assert.is_true(v:equal(again:state_dict()[k])) end
    assert.are.equal(0, #nn.from_config(nn.ModuleList():get_config()))
  end)

  it("converts and moves every module", function()
    local l = nn.ModuleList{nn.Linear(2, 2), nn.RMSNorm(2)}:to("float64")
    assert.are.equal("float64", l[1].weight.dtype)
    assert.are.equal("float64", l[2].weight.dtype)
  end)
end)

describe("nn.Sequential's numbered children", function()
  it("replaces and appends with seq[i] = m, and keeps the order", function()
    local a, b, c = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)
    local seq = nn.Sequential{a, b}
    seq[2] = nn.Tanh()
    seq[3] = c
    assert.are.equal("Tanh", seq[2].__name)
    assert.are.equal(c, seq[-1])
    assert.are.same({"1.weight", "1.bias", "3.weight", "3.bias"}, names(seq))
    assert.are.same({4, 1}, seq(ember.randn(4, 2)):shape())
    H.fails("Sequential: index 5 is out of range for 3 modules", function() seq[5] = nn.ReLU() end)
  end)
end)

describe("nn.ModuleDict", function()
  it("keeps the order of a list of pairs, and sorts a plain table", function()
    local a, b, c = nn.Linear(1, 1), nn.Linear(1, 2), nn.ReLU()
    local d = nn.ModuleDict{{"wte", a}, {"h", b}, {"act", c}}
    assert.are.same({"wte", "h", "act"}, d:keys())
    same_modules({a, b, c}, d:values())
    assert.are.equal(a, d.wte)
    assert.are.equal(b, d["h"])
    assert.are.equal(3, #d)
    assert.are.same({"wte.weight", "wte.bias", "h.weight", "h.bias"}, names(d))
    local s = nn.ModuleDict{z = a, b = b, m = c}
    assert.are.same({"b", "m", "z"}, s:keys())
    local keys, mods = {}, {}
    for k, m in s:items() do keys[#keys + 1], mods[#mods + 1] = k, m end
    assert.are.same({"b", "m", "z"}, keys)
    same_modules({b, c, a}, mods)
    assert.are.equal(0, #nn.ModuleDict())
  end)

  it("updates, adds, pops and tells what it holds", function()
    local d = nn.ModuleDict{{"a", nn.ReLU()}, {"b", nn.Tanh()}}
    local g = nn.GELU()
    d:update{{"a", g}, {"c", nn.Sigmoid()}}   -- a replaced in place, c appended
    assert.are.same({"a", "b", "c"}, d:keys())
    assert.are.equal(g, d.a)
    d.e = nn.Identity()
    assert.are.same({"a", "b", "c", "e"}, d:keys())
    assert.is_true(d:contains("e"))
    local b = d.b
    assert.are.equal(b, d:pop("b"))
    assert.is_false(d:contains("b"))
    assert.are.same({"a", "c", "e"}, d:keys())
    d:update(nn.ModuleDict{x = nn.ReLU()})
    assert.are.same({"a", "c", "e", "x"}, d:keys())
  end)

  it("rejects bad entries before changing anything", function()
    local d = nn.ModuleDict{{"a", nn.ReLU()}}
    H.fails("ModuleDict: entry 'b' is a number, expected a module", nn.ModuleDict, {b = 1})
    H.fails("ModuleDict: entry 2 must be a pair {name, module}", nn.ModuleDict,
            {{"a", nn.ReLU()}, nn.ReLU()})
    H.fails("ModuleDict: key 'train' is the name of a ModuleDict method", nn.ModuleDict,
            {train = nn.ReLU()})
    H.fails("ModuleDict: key 'training' is the name", nn.ModuleDict, {training = nn.ReLU()})
    H.fails("ModuleDict: keys must be non-empty strings without '.', got 'a.b'", nn.ModuleDict,
            {{"a.b", nn.ReLU()}})
    H.fails("ModuleDict: keys must be strings, got number", nn.ModuleDict, {[2] = nn.ReLU()})
    H.fails("update: entry 'z' is a string", d.update, d, {y = nn.ReLU(), z = "no"})
    H.fails("pop: no module named 'q'", d.pop, d, "q")
    assert.are.same({"a"}, d:keys())
  end)

  it("saves and loads in its order", function()
    local d = nn.ModuleDict{{"z", nn.Linear(2, 3)}, {"a", nn.ModuleList{nn.Linear(3, 1)}}}
    local path = os.tmpname()
    d:save(path)
    local again = nn.load(path)
    os.remove(path)
    assert.are.same({"z", "a"}, again:keys())
    assert.are.same(names(d), names(again))
    for k, v in pairs(d:state_dict()) do assert.is_true(v:equal(again:state_dict()[k])) end
    again:load_state_dict(d:state_dict())
  end)
end)
