-- ember.checkpoint, nn.Checkpoint and ember.autograd.Function: one core
-- node whose backward calls back into Lua (core/autograd.c
-- ember_function_apply, bindings/lua_autograd.c, lua/ember/autograd.lua).
-- Gradients with checkpointing must equal those without (1e-6).
local ember = require "ember"
local nn = ember.nn
local gradcheck = require("spec.helpers.gradcheck").gradcheck

local function maxdiff(a, b) return (a - b):abs():max():item() end

-- the gradients of every parameter and of x after loss_fn(x):backward()
local function grads(params, x, loss_fn)
  for _, p in ipairs(params) do p.grad = nil end
  x.grad = nil
  loss_fn(x):backward()
  local g = {x.grad:clone()}
  for _, p in ipairs(params) do g[#g + 1] = p.grad:clone() end
  return g
end

local function assert_same(g1, g2, tol)
  assert.equal(#g1, #g2)
  for i = 1, #g1 do assert.is_true(maxdiff(g1[i], g2[i]) <= tol, "gradient " .. i) end
end

describe("ember.checkpoint", function()
  for _, dtype in ipairs{"float32", "float64"} do
    it("gives the gradients of the plain call (" .. dtype .. ")", function()
      ember.manual_seed(3)
      local m = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 6)):to(dtype)
      local x = ember.randn(4, 6, {dtype = dtype}):requires_grad_()
      local plain = grads(m:parameters(), x, function(x) return (m(x) * m(x)):sum() end)
      local ck = grads(m:parameters(), x, function(x)
        local y = ember.checkpoint(m, x)
        return (y * y):sum()
      end)
      assert_same(plain, ck, 1e-6)
    end)
  end

  it("passes float64 finite differences through the rerun", function()
    ember.manual_seed(4)
    local w = ember.randn(3, 3, {dtype = "float64"}):requires_grad_()
    local x = ember.randn(2, 3, {dtype = "float64"}):requires_grad_()
    local f = function(a, b) return (a:matmul(b)):tanh():matmul(b) end
    assert.is_true(gradcheck(function(a, b) return ember.checkpoint(f, a, b) end, {x, w}))
  end)

  it("restores the generator so that dropout draws the same masks", function()
    ember.manual_seed(5)
    local m = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 8))
    local x = ember.randn(16, 8):requires_grad_()
    ember.manual_seed(11)
    local plain = grads(m:parameters(), x, function(x) return m(x):pow(2):sum() end)
    local after_plain = ember.rand(3)
    ember.manual_seed(11)
    local ck = grads(m:parameters(), x, function(x) return ember.checkpoint(m, x):pow(2):sum() end)
    assert_same(plain, ck, 1e-6)
    -- and the rerun put the generator back: the stream goes on as without it
    assert.equal(0, maxdiff(after_plain, ember.rand(3)))
  end)

  it("with preserve_rng_state = false reruns with the generator as it is", function()
    ember.manual_seed(5)
    local x = ember.ones(200):requires_grad_()
    local y = ember.checkpoint({function(a) return nn.functional.dropout(a, 0.5, true) end,
                                preserve_rng_state = false}, x)
    local forward_mask = y:ne(0)
    y:sum():backward()
    -- another mask: the gradient is not the forward's (with 200 draws,
    -- equal masks would be a 2^-200 chance)
    assert.is_false(ember.equal(x.grad:ne(0), forward_mask))
  end)

  it("handles several results and a table of results", function()
    local w = ember.randn(4, 4, {dtype = "float64"}):requires_grad_()
    local x = ember.randn(3, 4, {dtype = "float64"}):requires_grad_()
    local function f(a) local h = a:matmul(w) return h:sin(), h:cos(), "tag" end
    local function loss(a, b) return (a * 2):sum() + (b * b):sum() end
    local plain = grads({w}, x, function(x) local a, b = f(x) return loss(a, b) end)
    local ck = grads({w}, x, function(x)
      local a, b, tag = ember.checkpoint(f, x)
      assert.equal("tag", tag)
      return loss(a, b)
    end)
    assert_same(plain, ck, 1e-12)
    local tck = grads({w}, x, function(x)
      local r = ember.checkpoint(function(a) local a1, b1 = f(a) return {s = a1, c = b1, n = 3} end, x)
      assert.equal(3, r.n)
      return loss(r.s, r.c)
    end)
    assert_same(plain, tck, 1e-12)
    -- only one result used: the other gets zeros
    local one = grads({w}, x, function(x) local a = f(x) return a:sum() end)
    local one_ck = grads({w}, x, function(x) local a = ember.checkpoint(f, x) return a:sum() end)
    assert_same(one, one_ck, 1e-12)
  end)

  it("nests: a checkpoint inside a checkpointed module", function()
    ember.manual_seed(6)
    local inner = nn.Sequential(nn.Linear(5, 5), nn.Tanh())
    local outer = nn.Sequential(nn.Linear(5, 5), nn.Checkpoint(inner), nn.Linear(5, 2)):to("float64")
    local x = ember.randn(3, 5, {dtype = "float64"}):requires_grad_()
    local ck = grads(outer:parameters(), x, function(x) return ember.checkpoint(outer, x):sum() end)
    local plain_m = nn.Sequential(outer[1], inner, outer[3])
    local plain = grads(plain_m:parameters(), x, function(x) return plain_m(x):sum() end)
    assert_same(plain, ck, 1e-12)
  end)

  it("reaches parameters when no argument requires grad", function()
    local lin = nn.Linear(3, 2)
    local x = ember.randn(4, 3)
    local y = ember.checkpoint(lin, x)
    assert.is_true(y.requires_grad)
    y:sum():backward()
    assert.equal(0, maxdiff(lin.weight.grad, x:sum(1):expand(2, 3)))
  end)

  it("under no_grad just runs fn", function()
    local lin = nn.Linear(3, 2)
    local y = ember.no_grad(ember.checkpoint, lin, ember.randn(1, 3))
    assert.is_false(y.requires_grad)
  end)

  it("returns an input given back as a new tensor", function()
    local x = ember.randn(3):requires_grad_()
    local y = ember.checkpoint(function(a) return a end, x)
    assert.is_false(rawequal(x, y))
    assert.is_true(x.is_leaf)
    y:sum():backward()
    assert.equal(0, maxdiff(x.grad, ember.ones(3)))
  end)

  it("keeps less memory alive than the plain forward", function()
    ember.manual_seed(7)
    local m = nn.Sequential(nn.Linear(64, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(),
                            nn.Linear(512, 64))
    local x = ember.randn(256, 64):requires_grad_()
    collectgarbage(); collectgarbage()
    local base = ember.memory_allocated()
    local y = m(x)
    collectgarbage(); collectgarbage()   -- only what the graph keeps
    local plain = ember.memory_allocated() - base
    y = nil
    collectgarbage(); collectgarbage()
    base = ember.memory_allocated()
    local yc = ember.checkpoint(m, x)
    collectgarbage(); collectgarbage()
    local ck = ember.memory_allocated() - base
    assert.is_true(ck * 4 < plain, ("checkpoint %d bytes, plain %d"):format(ck, plain))
    -- the peak counter sees the rerun's activations during backward
    ember.reset_peak_memory_stats()
    assert.is_true(ember.max_memory_allocated() >= ember.memory_allocated())
    yc:sum():backward()
    assert.is_true(ember.max_memory_allocated() - base >= plain / 2)
  end)

  describe("errors", function()
    it("checks its arguments", function()
      assert.has_error(function() ember.checkpoint(3) end,
        "checkpoint: expected a function (or a callable), got number")
      assert.has_error(function() ember.checkpoint({print, preserve = true}) end,
        "checkpoint: unknown option 'preserve'; did you mean 'preserve_rng_state'? " ..
        "(known: 1, preserve_rng_state)")
    end)

    it("an in-place change of an input before backward", function()
      local x = ember.randn(3):requires_grad_()
      local h = x * 2
      local y = ember.checkpoint(function(a) return a:exp() end, h)
      h:add_(1)
      assert.has_error(function() y:sum():backward() end)
      local ok, msg = pcall(function() y:sum():backward() end)
      assert.is_false(ok)
      assert.matches("modified by an in%-place operation", msg)
      assert.is_nil(x.grad)
    end)

    it("an error inside the rerun propagates, and nothing is accumulated", function()
      local w = ember.randn(3):requires_grad_()
      local fail = false
      local x = ember.randn(3):requires_grad_()
      local y = ember.checkpoint(function(a)
        if fail then error("rerun went wrong") end
        return a * w
      end, x)
      fail = true
      local ok, msg = pcall(function() y:sum():backward() end)
      assert.is_false(ok)
      assert.matches("rerun went wrong", msg)
      assert.is_nil(x.grad)
      -- the graph is sane: the node runs again once fn behaves
      fail = false
      y:sum():backward()
      assert.equal(0, maxdiff(x.grad, w:detach()))
    end)

    it("a rerun that returns other shapes", function()
      local n = 3
      local x = ember.randn(3):requires_grad_()
      local y = ember.checkpoint(function(a) return a:narrow(1, 1, n) end, x)
      n = 2
      local ok, msg = pcall(function() y:sum():backward() end)
      assert.is_false(ok)
      assert.matches("checkpoint: fn's result 1 has shape %[2%] when rerun in backward but %[3%]", msg)
    end)

    it("a second backward without retain_graph", function()
      local x = ember.randn(3):requires_grad_()
      local y = ember.checkpoint(function(a) return a:exp() end, x):sum()
      y:backward()
      local ok, msg = pcall(function() y:backward() end)
      assert.is_false(ok)
      assert.matches("a second time", msg)
    end)

    it("retain_grad on a result", function()
      local x = ember.randn(3):requires_grad_()
      local y = ember.checkpoint(function(a) return a:exp() end, x)
      assert.has_error(function() y:retain_grad() end)
    end)
  end)
end)

describe("nn.Checkpoint", function()
  it("keeps the wrapped module's parameters, state_dict keys and mode", function()
    local m = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 2))
    local c = nn.Checkpoint(m)
    assert.equal(m, c:wrapped())
    local k1, k2 = {}, {}
    for k in pairs(m:state_dict()) do k1[#k1 + 1] = k end
    for k in pairs(c:state_dict()) do k2[#k2 + 1] = k end
    table.sort(k1); table.sort(k2)
    assert.same(k1, k2)
    assert.equal(#m:parameters(), #c:parameters())
    for i, p in ipairs(m:parameters()) do assert.is_true(rawequal(p, c:parameters()[i])) end
    nn.Sequential(c):eval()
    assert.is_false(m.training)
  end)

  it("wraps a block of a model: same gradients", function()
    ember.manual_seed(8)
    local b1 = nn.TransformerEncoderLayer(16, 2, {dim_feedforward = 32, dropout = 0.1, batch_first = true})
    local x = ember.randn(2, 5, 16):requires_grad_()
    ember.manual_seed(9)
    local plain = grads(b1:parameters(), x, function(x) return b1(x):pow(2):sum() end)
    local c = nn.Checkpoint(b1)
    ember.manual_seed(9)
    local ck = grads(c:parameters(), x, function(x) return c(x):pow(2):sum() end)
    assert_same(plain, ck, 1e-6)
  end)

  it("checks its arguments", function()
    assert.has_error(function() nn.Checkpoint(3) end, "Checkpoint: expected a module, got number")
  end)
end)

describe("ember.autograd.Function", function()
  local Exp = ember.autograd.Function{
    name = "MyExp",
    forward = function(ctx, x, scale)
      local r = x:exp() * scale
      ctx:save_for_backward(r)
      return r
    end,
    backward = function(ctx, g)
      local r = ctx.saved_tensors[1]
      return g * r, nil
    end,
  }

  it("runs forward and its backward", function()
    local x = ember.randn(4, {dtype = "float64"}):requires_grad_()
    local y = Exp(x, 3)
    assert.equal("MyExp", y.grad_fn)
    assert.is_true(gradcheck(function(a) return Exp:apply(a, 3) end, {x}))
  end)

  it("records nothing without an input that requires grad", function()
    local y = Exp(ember.randn(3), 2)
    assert.is_false(y.requires_grad)
  end)

  it("reports a bad backward result as a Lua error", function()
    local Bad = ember.autograd.Function{
      forward = function(_, x) return x * 2 end,
      backward = function(_, g) return g:sum() end,
    }
    local x = ember.randn(3):requires_grad_()
    local ok, msg = pcall(function() Bad(x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("FunctionBackward's backward returned a gradient of shape %[%] for input 1, of shape %[3%]", msg)
    assert.is_nil(x.grad)
    local Raise = ember.autograd.Function{
      forward = function(_, x) return x * 2 end,
      backward = function() error("no backward here") end,
    }
    ok, msg = pcall(function() Raise(x):sum():backward() end)
    assert.is_false(ok)
    assert.matches("no backward here", msg)
  end)

  it("checks its definition", function()
    assert.has_error(function() ember.autograd.Function{forward = print} end,
      "Function: backward must be a function, got nil")
    assert.has_error(function() ember.autograd.Function{forward = print, backward = print, x = 1} end,
      "Function: unknown option 'x'")
  end)
end)
