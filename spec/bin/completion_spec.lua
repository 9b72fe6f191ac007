-- TAB completion in the REPL follows objects: nn modules (their __dir and
-- __index function), tensors reached through them, and odd objects that
-- must never make a TAB raise, crash or hang.
local run = require "helpers.run"
local E = run.ember

--- Type 'keys' (TABs as "\t") into the REPL on a pseudo-terminal; returns
-- what the terminal showed from the banner on (before it, the terminal
-- echoes the keys as sent) and the exit code, or nil when there is no
-- 'script' to give the REPL a terminal.
local function type_keys(keys)
  local out, rc = run.pty(keys)
  if not out then return nil end
  return out:match("Copyright.*") or out, rc
end

describe("REPL completion", function()
  it("m.<TAB><TAB> lists a module's parameters, fields and methods", function()
    -- the listing, then "weight" typed after it makes the line m.weight
    local out, rc = type_keys("m = ember.nn.Linear(2, 3)\nm.\t\tweight\n")
    if not out then return end
    assert.are.equal(0, rc, out)
    for _, name in ipairs({"m.weight", "m.bias", "m.in_features", "m.training",
                           "m.forward", "m.parameters", "m.zero_grad"}) do
      assert.truthy(out:find(name .. "%s"), name .. " not listed:\n" .. out)
    end
    -- the stores and private helpers stay hidden without a "_" prefix
    assert.falsy(out:find("m._parameters", 1, true), out)
    assert.falsy(out:find("m._repr", 1, true), out)
    -- and the line ran: it printed the weight
    assert.truthy(out:find("size 3x2", 1, true), out)
  end)

  it("m:<TAB> offers methods only, up the class chain", function()
    -- compile is Module's (Linear derives it): the only method "comp"
    -- starts; "wei" names a parameter, no method, so it stays as typed
    local out, rc = type_keys("m = ember.nn.Linear(2, 3)\nf = m:comp\t\ng = m:wei\t\n" ..
                              "print(m:compile() == m)\n")
    if not out then return end
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("f = m:compile", 1, true), out)
    assert.falsy(out:find("m:weight", 1, true), out)
    -- m:<TAB><TAB> lists no parameters and no fields
    out, rc = type_keys("m = ember.nn.Linear(2, 3)\nm:\t\teval()\n")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("m:forward%s"), out)
    assert.truthy(out:find("m:named_parameters%s"), out)
    assert.falsy(out:find("m:bias", 1, true), out)
    assert.falsy(out:find("m:in_features", 1, true), out)
  end)

  it("completes a tensor reached through a module, and a named child", function()
    local out, rc = type_keys("m = ember.nn.Linear(2, 3)\nprint(m.weight:nume\t())\n" ..
                              "s = ember.nn.Sequential(m)\n" ..
                              "s:add_module('fc2', ember.nn.Linear(3, 1));\n" ..
                              "print(s.fc\t.weight:nume\t())\n" ..
                              "m.weight:su\t\t()\n")
    if not out then return end
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("print(m.weight:numel())", 1, true), out)
    assert.truthy(out:find("print(s.fc2.weight:numel())", 1, true), out)
    assert.truthy(out:find("\n6\r?\n"), out)
    assert.truthy(out:find("\n3\r?\n"), out)
    -- m.weight:su<TAB><TAB> lists the tensor's methods
    assert.truthy(out:find("m.weight:sum%s"), out)
    assert.truthy(out:find("m.weight:sub%s"), out)
  end)

  it("never raises, crashes or hangs on odd objects", function()
    local keys = table.concat({
      "bad = setmetatable({}, {__index = function() error('boom') end," ..
        " __dir = function() error('dir boom') end})",
      "odd = setmetatable({}, {__dir = function() return 42 end})",
      "mixed = setmetatable({}, {__dir = function() return {1, {}, 'no name', 'end'," ..
        " 'okname', okfield = 'x'} end, __index = function(_, k)" ..
        " if k == 'okname' then return print end end})",
      "loop = setmetatable({}, {__index = function() while true do end end," ..
        " __dir = function() while true do end end})",
      "cyc = {}; cyc.__index = cyc; setmetatable(cyc, cyc)",
      "u = io.tmpfile(); debug.setmetatable(u, nil)",
      "x = bad.a.b\t; x = bad.\t\t; x = bad:\t\t",
      "x = odd.\t\t; x = odd:\t\t",
      "x = mixed.ok\t; y = mixed:ok\t",
      "x = loop.a.b\t; x = loop.\t\t; x = loop:\t\t",
      "x = cyc.a\t; x = cyc.\t\t",
      "x = u.a.b\t; x = u:\t\t",
      "print('still ' .. 'here')",
      ""}, "\n")
    local out, rc = type_keys(keys)
    if not out then return end
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("x = mixed.okname; y = mixed:okname", 1, true), out)
    assert.falsy(out:find("mixed.okfield", 1, true), out)
    assert.falsy(out:find("mixed.no", 1, true), out)
    assert.truthy(out:find("\nstill here\r?\n"), out)
  end)
end)

describe("nn.Module's __dir", function()
  local ember = require "ember"
  local nn = ember.nn

  it("lists parameters, buffers, children, fields and inherited methods", function()
    local m = nn.Sequential(nn.Linear(2, 3))
    m:add_module("head", nn.Linear(3, 1))
    m:register_buffer("scale", ember.ones(1))
    m.note = "x"
    local names = {}
    for _, n in ipairs(getmetatable(m).__dir(m)) do
      assert.is_nil(names[n], "listed twice: " .. n)
      names[n] = true
    end
    for _, n in ipairs({"1", "head", "scale", "note", "training", "add", "forward",
                        "parameters", "zero_grad"}) do
      assert.is_true(names[n], n)
    end
    assert.is_nil(names.weight)  -- the children's parameters are theirs
  end)
end)
