-- Errors from a model's layers, fit, evaluate, predict and the losses name
-- the user's line (here: this file's line of the call) and, inside a
-- Sequential, the failing layer as the user wrote it; and the one-time
-- warning for argmax/softmax over the batch of a model's output.
local ember = require "ember"
local nn = ember.nn
local run = require "helpers.run"
local warnings = require "ember.warnings"

local SRC = debug.getinfo(1, "S").short_src

--- The message f fails with.
local function err(f)
  local ok, e = pcall(f)
  assert.is_false(ok, "expected an error")
  return e
end

--- The position prefix of this file's line `line`.
local function at(line) return ("%s:%d: "):format(SRC, line) end

--- This file's current line.
local function line() return debug.getinfo(2, "l").currentline end

local LIN5 = "Linear(in_features=100, out_features=10, bias=true)"
local SHAPE5 = "linear: input shape [4,200] does not match weight shape [10,100] " ..
               "(expected 100 input features)"

--- Conv2d, ReLU, MaxPool2d, Flatten, Linear whose input size is wrong
-- (8 * 5 * 5 = 200 features, the Linear takes 100).
local function cnn()
  return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                       nn.Linear(100, 10))
end

describe("errors in a model", function()
  local x = ember.randn({4, 1, 12, 12})
  local y = ember.tensor({1, 2, 3, 4}):long()

  it("name the layer of a Sequential and the user's line of the call", function()
    local model = cnn()
    local l = line()
    local e = err(function() local out = model(x) return out end)
    assert.are.equal(at(l + 1) .. "Sequential layer 5 (" .. LIN5 .. "): " .. SHAPE5, e)
  end)

  it("name a fused Conv2d + ReLU as the Conv2d the user wrote, not conv2d_relu", function()
    local model = cnn()
    local l = line()
    local e = err(function() local out = model(ember.randn({4, 3, 12, 12})) return out end)
    assert.are.equal(at(l + 1) .. "Sequential layer 1 (Conv2d(1, 8, kernel_size=(3, 3), " ..
                     "stride=(1, 1))): conv2d: weight [8,1,3,3] with groups=1 expects 1 " ..
                     "input channels, but input [4,3,12,12] has 3", e)
    assert.is_nil(e:find("conv2d_relu", 1, true))
  end)

  it("give the path through nested Sequentials", function()
    local model = nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), nn.Linear(5, 2)))
    local l = line()
    local e = err(function() local out = model(ember.randn({2, 3})) return out end)
    assert.are.equal(at(l + 1) .. "Sequential layer 2 (Sequential) > layer 2 (Linear(" ..
                     "in_features=5, out_features=2, bias=true)): linear: input shape [2,4] " ..
                     "does not match weight shape [2,5] (expected 5 input features)", e)
  end)

  it("keep the position of an error raised in the user's own layer", function()
    local Boom = nn.Module:extend("Boom")
    local l = line()
    function Boom:forward() error("boom") end
    local model = nn.Sequential(nn.Identity(), Boom())
    local e = err(function() local out = model(x) return out end)
    assert.are.equal(at(l + 1) .. "Sequential layer 2 (Boom()): boom", e)
  end)

  it("name the calling line for an error(msg, 2) in a user's forward, or a layer it tail-calls", function()
    local Strict = nn.Module:extend("Strict")
    function Strict:forward(t)
      if t:dim() ~= 2 then error("Strict: expected a 2-d input", 2) end
      return t
    end
    local l = line()
    local e = err(function() local out = Strict()(ember.randn({3})) return out end)
    assert.are.equal(at(l + 1) .. "Strict: expected a 2-d input", e)
    local Net = nn.Module:extend("TailNet")
    function Net:init() self.fc = nn.Linear(3, 2) end
    function Net:forward(t) return self.fc(t) end
    l = line()
    e = err(function() local out = Net()(ember.randn({2, 5})) return out end)
    assert.are.equal(at(l + 1) .. "linear: input shape [2,5] does not match weight shape [2,3] " ..
                     "(expected 3 input features)", e)
    assert.is_nil(e:find("module.lua", 1, true))
    -- a user's model inside another: the line in the outer forward
    local Outer = nn.Module:extend("Outer")
    function Outer:init() self.inner = Strict() end
    l = line()
    function Outer:forward(t) local y = self.inner(t) return y end
    e = err(function() local out = Outer()(ember.randn({3})) return out end)
    assert.are.equal(at(l + 1) .. "Strict: expected a 2-d input", e)
  end)

  it("keep a user's forward's results, all of them, and error objects", function()
    local Two = nn.Module:extend("Two")
    function Two:forward(t) return t, t:sum(), "third" end
    local t = ember.ones({2})
    local a, b, c = Two()(t)
    assert.are.equal(t, a)
    assert.are.equal(2, b:item())
    assert.are.equal("third", c)
    local obj = {code = 9}
    local Thrower = nn.Module:extend("ObjThrower")
    function Thrower:forward() error(obj) end
    assert.are.equal(obj, err(function() local out = Thrower()(t) return out end))
  end)

  it("pass error objects that are not strings through untouched", function()
    local obj = {code = 7}
    local Thrower = nn.Module:extend("Thrower")
    function Thrower:forward() error(obj) end
    local model = nn.Sequential(Thrower())
    assert.are.equal(obj, err(function() local out = model(x) return out end))
  end)

  it("in fit, evaluate and predict name the layer and the line of the call", function()
    local model = cnn()
    model:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy"}
    local msg = "Sequential layer 5 (" .. LIN5 .. "): " .. SHAPE5
    local l = line()
    local e = err(function() local h = model:fit(x, y, {epochs = 1, verbose = 0}) return h end)
    assert.are.equal(at(l + 1) .. msg, e)
    l = line()
    e = err(function() local v = model:evaluate(x, y) return v end)
    assert.are.equal(at(l + 1) .. msg, e)
    l = line()
    e = err(function() local p = model:predict(x) return p end)
    assert.are.equal(at(l + 1) .. msg, e)
  end)

  it("in a loss module carry the user's line (the core's checks give none)", function()
    local l = line()
    local e = err(function()
      local v = nn.CrossEntropyLoss()(ember.randn({4, 10}), ember.tensor({1, 2, 3}):long())
      return v
    end)
    assert.are.equal(at(l + 2) .. "cross_entropy: expected a target of shape [4] for input " ..
                     "shape [4,10], got [3]", e)
    l = line()
    e = err(function() local v = nn.MSELoss()(ember.randn({4, 10}), ember.randn({4, 3})) return v end)
    assert.are.equal(at(l + 1) .. "mse_loss: input shape [4,10] and target shape [4,3] differ", e)
  end)

  it("in a functional loss called directly carry the user's line", function()
    local F = nn.functional
    local l = line()
    local e = err(function()
      local v = F.cross_entropy(ember.randn({4, 10}), ember.tensor({1, 2, 3}):long())
      return v
    end)
    assert.are.equal(at(l + 2) .. "cross_entropy: expected a target of shape [4] for input " ..
                     "shape [4,10], got [3]", e)
    l = line()
    e = err(function() local v = F.l1_loss(ember.randn({4}), ember.randn({4}), {reductio = "sum"}) return v end)
    assert.are.equal(at(l + 1) .. "l1_loss: unknown option 'reductio'; did you mean 'reduction'?", e)
    -- a tail call leaves no frame of the user's function: the line is the
    -- first user's line left on the stack (err's pcall here), never the
    -- library's
    e = err(function() return F.mse_loss(ember.randn({4, 10}), ember.randn({4, 3})) end)
    assert.are.equal(SRC .. ":", e:sub(1, #SRC + 1), e)
    assert.truthy(e:find(": mse_loss: input shape [4,10] and target shape [4,3] differ", 1, true), e)
  end)

  it("in a functional loss, the core's errors (no position, or the library's) carry the user's line", function()
    -- tensors on two devices: the core's own check, reached inside the
    -- loss; run on the stand-in GPU in a child process
    local plugin = run.build .. "/libember_fakecuda.so"
    local f = io.open(plugin)
    if not f then
      pending("no " .. plugin .. " (make " .. plugin .. "): no stand-in GPU to put a tensor on")
      return
    end
    f:close()
    local out, rc = run.sh("OMP_WAIT_POLICY=passive EMBER_CUDA_PLUGIN=" .. run.q(plugin) .. " " ..
                           run.lua_cmd() .. " -e " .. run.q([[
      local ember = require "ember"
      local F = ember.nn.functional
      local x, t = ember.randn({4, 10}):cuda(), ember.tensor({1, 2, 3, 4}):long()
      local function try(f) local ok, e = pcall(f) print(ok, e) end
      try(function() local v = F.cross_entropy(x, t) return v end)
      try(function() local v = F.mse_loss(x, ember.randn({4, 10})) return v end)
      try(function() local v = F.nll_loss(x, t) return v end)
      try(function() local v = ember.nn.MSELoss()(x, ember.randn({4, 10})) return v end)]]))
    assert.are.equal(0, rc, out)
    assert.are.equal(table.concat({
      "false	(command line):5: cross_entropy: expected the logits, target and weight on one device",
      "false	(command line):6: sub: expected tensors on the same device, got cuda and cpu",
      "false	(command line):7: gather: index is on cpu, tensor on cuda",
      "false	(command line):8: sub: expected tensors on the same device, got cuda and cpu", ""},
      "\n"), out)
  end)

  it("in fit's loss carry the line of fit", function()
    local model = nn.Sequential(nn.Linear(3, 2))
    model:compile{optimizer = "sgd", loss = "mse"}
    local l = line()
    local e = err(function()
      local h = model:fit(ember.randn({4, 3}), ember.randn({4, 5}), {epochs = 1, verbose = 0})
      return h
    end)
    assert.are.equal(at(l + 2) .. "mse_loss: input shape [4,2] and target shape [4,5] differ", e)
  end)

  it("keep the position of an error in a user's file whose long name Lua cuts", function()
    -- Lua prints "..." and the last 56 characters of a long file name;
    -- here they start with "/", which once counted as the library's tail
    local name = "/home/someone/" .. ("d"):rep(40) .. "/" .. ("e"):rep(47) .. "/net.lua"
    local src = "local nn = ...\nlocal Boom = nn.Module:extend('LongBoom')\n" ..
                "function Boom:forward() error('boom') end\nreturn Boom"
    local Boom = assert(load(src, "@" .. name))(nn)
    local short = load("return debug.getinfo(1, 'S').short_src", "@" .. name)()
    local e = err(function() local out = Boom()(x) return out end)
    assert.are.equal("...", short:sub(1, 3))
    assert.are.equal(short:sub(4, 4), "/")
    assert.are.equal(short .. ":3: boom", e)
    -- a cut name of a library file still is the library's
    local blame = require "ember.blame"
    local root = debug.getinfo(blame.where, "S").short_src:match("^(.*)blame%.lua$")
    assert.is_true(blame.library_file("..." .. root:sub(-2) .. "nn/module.lua"))
    assert.is_false(blame.library_file("..." .. root:sub(-1) .. "home/me/train.lua"))
  end)

  it("from argmax, softmax and log_softmax name the op and the user's line", function()
    local t = ember.randn({2, 3})
    local l = line()
    local e = err(function() local r = t:softmax(7) return r end)
    assert.are.equal(at(l + 1) .. "softmax: dimension 7 out of range for a 2-d tensor " ..
                     "(expected 1..2)", e)
    e = err(function() local r = ember.argmax(t, {}) return r end)
    assert.are.equal(at(l + 4) .. "bad argument #2 to 'argmax' (integer expected, got table)", e)
    e = err(function() local r = t:log_softmax("a") return r end)
    assert.are.equal(at(l + 6) .. "bad argument #2 to 'log_softmax' (integer expected, got string)", e)
  end)

  it("leave a working Sequential's result as it was", function()
    local model = cnn()
    model[5] = nn.Linear(200, 10)
    local a = model(x)
    local b = ember.no_grad(function()
      local h = x
      for i = 1, #model do h = model[i](h) end
      return h
    end)
    assert.are.same({4, 10}, a:shape())
    assert.is_true((a - b):abs():max():item() < 1e-5)
  end)
end)

describe("argmax/softmax over the batch of a model's output", function()
  local got
  local sink, enabled
  before_each(function()
    got = {}
    sink, enabled = ember.warnings.sink, ember.warnings.enabled
    ember.warnings.sink = function(msg) got[#got + 1] = msg end
    warnings.reset()
  end)
  after_each(function()
    ember.warnings.sink, ember.warnings.enabled = sink, enabled
    warnings.reset()
  end)

  it("warns once, naming the call and the shape", function()
    local model = nn.Sequential(nn.Linear(3, 10))
    local out = model(ember.randn({64, 3}))
    local a = out:argmax(1)
    assert.are.same({10}, a:shape())            -- the op runs as asked
    out:softmax(1)
    ember.log_softmax(out, -2)
    assert.are.same({"ember: warning: argmax(1) reduces over the batch (dim 1) of a model's " ..
                     "output of shape {64, 10}; the classes are dim 2 (argmax(2) or argmax(-1))"},
                    got)
  end)

  it("warns for softmax, log_softmax (functional too) and negative dims", function()
    local out = nn.Sequential(nn.Linear(3, 10))(ember.randn({4, 3}))
    nn.functional.log_softmax(out, -2)
    assert.are.equal(1, #got)
    assert.truthy(got[1]:find("log_softmax(-2) reduces over the batch", 1, true))
    warnings.reset()
    ember.softmax(out, 1)
    assert.truthy(got[2]:find("softmax(1) reduces", 1, true))
  end)

  it("marks the outputs of a user's model class and of predict", function()
    local Net = nn.Module:extend("WarnNet")
    function Net:init() self.fc = nn.Linear(3, 10) end
    function Net:forward(x) return self.fc(x) end
    local net = Net()
    net(ember.randn({4, 3})):argmax(1)
    assert.are.equal(1, #got)
    warnings.reset()
    net:compile{optimizer = "sgd", loss = "mse"}
    net:predict(ember.randn({5, 3})):argmax(1)
    assert.are.equal(2, #got)
    assert.truthy(got[2]:find("shape {5, 10}", 1, true))
  end)

  it("stays quiet for the classes' dim, other tensors, 1-D outputs and when off", function()
    local model = nn.Sequential(nn.Linear(3, 10))
    local out = model(ember.randn({4, 3}))
    out:argmax(2)
    out:argmax(-1)
    out:argmax()
    out:softmax(2)
    ember.randn({4, 10}):argmax(1)
    ember.randn({4, 10}):softmax(1)
    nn.Sequential(nn.Linear(3, 10))(ember.randn({3})):argmax(1)
    assert.are.same({}, got)
    ember.warnings.enabled = false
    out:argmax(1)
    assert.are.same({}, got)
  end)

  it("goes to stderr by default", function()
    -- stdout goes away: only what the process wrote to stderr comes back
    local out, rc = run.sh("(" .. run.lua_cmd() .. " -e " .. run.q([[
      local ember = require "ember"
      local y = ember.nn.Sequential(ember.nn.Linear(3, 10))(ember.randn({8, 3}))
      y:argmax(1); y:argmax(1)
      io.stdout:write("done\n")]]) .. " 2>&1 >/dev/null)")
    assert.are.equal(0, rc, out)
    local _, n = out:gsub("ember: warning: argmax%(1%) reduces over the batch", "")
    assert.are.equal(1, n, out)
    assert.is_nil(out:find("done", 1, true))
  end)
end)
