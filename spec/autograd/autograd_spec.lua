-- Autograd's rules: leaves, accumulation, grad mode, retain_graph, errors.
local ember = require "ember"
local G = require "helpers.gradcheck"

local function close(a, b, tol)
  return (a - b):abs():max():item() <= (tol or 1e-6)
end

describe("autograd", function()
  it("the example of DESIGN.md: (w * w):sum():backward() gives 2w", function()
    local w = ember.randn(3, 3, {requires_grad = true})
    ;(w * w):sum():backward()
    assert.is_true(close(w.grad, w:detach() * 2))
  end)

  it("gradcheck itself detects a wrong gradient", function()
    -- x * detach(x) has derivative 2x; autograd sees only x
    local ok = G.gradcheck(function(x) return x * x:detach() end, {G.leaf{3}})
    assert.is_false(ok)
  end)

  it("requires_grad on creation, requires_grad_, and the fields", function()
    local a = ember.zeros(2, {requires_grad = true})
    local b = ember.tensor({1, 2}, {requires_grad = true})
    local c = ember.ones(2):requires_grad_()
    for _, t in ipairs{a, b, c} do
      assert.is_true(t.requires_grad)
      assert.is_true(t.is_leaf)
      assert.is_nil(t.grad_fn)
      assert.is_nil(t.grad)
    end
    local d = a + b
    assert.is_true(d.requires_grad)
    assert.is_false(d.is_leaf)
    assert.are.equal("AddBackward", d.grad_fn)
    c.requires_grad = false
    assert.is_false(c.requires_grad)
    assert.is_false((ember.ones(2) * 2).requires_grad)
  end)

  it("bad arguments are clear errors", function()
    local t = ember.ones(2, {requires_grad = true})
    assert.has_error(function() (t * 2):backward(ember.ones(2), 5) end)
    assert.has_error(function() ember.ones(2, {requires_grad = "yes"}) end)
    assert.has_error(function() t.requires_grad = 1 end, "requires_grad: expected a boolean, got number")
    assert.has_error(function() t:backward("x") end)
    assert.has_error(function() ember.set_grad_enabled(nil) end)
  end)

  it("only floating-point tensors can require grad", function()
    assert.has_error(function() ember.ones(2, {dtype = "int64", requires_grad = true}) end)
    assert.has_error(function() ember.arange(3):requires_grad_() end)
  end)

  it("accumulates into .grad until it is cleared", function()
    local x = ember.tensor({1, 2, 3}, {requires_grad = true})
    ;(x * 2):sum():backward()
    ;(x * 3):sum():backward()
    assert.are.same({5, 5, 5}, x.grad:totable())
    x.grad = nil
    assert.is_nil(x.grad)
    ;(x * x):sum():backward()
    assert.are.same({2, 4, 6}, x.grad:totable())
  end)

  it("a tensor used twice gets the sum of both paths", function()
    local x = ember.tensor({1, 2}, {requires_grad = true})
    local y = x * x + x:exp() * x
    y:sum():backward()
    local e = ember.tensor({1, 2}):exp()
    assert.is_true(close(x.grad, ember.tensor({2, 4}) + e + e * ember.tensor({1, 2}), 1e-5))
  end)

  it("grad can be assigned, checked against shape and dtype", function()
    local x = ember.zeros(3, {requires_grad = true})
    x.grad = ember.ones(3)
    assert.are.same({1, 1, 1}, x.grad:totable())
    assert.has_error(function() x.grad = ember.ones(4) end)
    assert.has_error(function() x.grad = ember.ones(3, {dtype = "float64"}) end)
    assert.has_error(function() x.grad = 3 end)
    assert.are.same({1, 1, 1}, x.grad:totable())
  end)

  it("backward of a non-scalar needs its gradient", function()
    local x = ember.tensor({1, 2, 3}, {requires_grad = true})
    local y = x * 2
    assert.has_error(function() y:backward() end,
      "backward: grad can be implicitly created only for a tensor of one element (this one has shape [3]); pass the gradient: t:backward(grad)")
    y:backward(ember.tensor({1, 0, 2}))
    assert.are.same({2, 0, 4}, x.grad:totable())
    assert.has_error(function() (x * 2):backward(ember.ones(2)) end)
  end)

  it("backward on a tensor that does not require grad is an error", function()
    assert.has_error(function() ember.ones(2):sum():backward() end,
      "backward: the tensor does not require grad and has no grad_fn (did you set requires_grad on its inputs, or run it under no_grad?)")
  end)

  it("the graph is freed after backward unless retain_graph", function()
    local x = ember.tensor({1, 2}, {requires_grad = true})
    local y = (x * x):sum()
    y:backward({retain_graph = true})
    y:backward()
    assert.are.same({4, 8}, x.grad:totable())
    assert.has_error(function() y:backward() end)
    local ok, err = pcall(function() y:backward() end)
    assert.is_false(ok)
    assert.truthy(err:find("second time", 1, true))
  end)

  it("a failed backward changes no .grad", function()
    local x = ember.tensor({1, 2}, {requires_grad = true})
    local y = x:exp()
    local z = (y * x):sum()
    y:mul_(2)   -- y was saved by MulBackward and ExpBackward
    local ok, err = pcall(function() z:backward() end)
    assert.is_false(ok)
    assert.truthy(err:find("modified by an in-place operation", 1, true))
    assert.is_nil(x.grad)
  end)

  it("in-place ops on a leaf that requires grad are refused", function()
    local w = ember.ones(2, {requires_grad = true})
    assert.has_error(function() w:add_(1) end)
    assert.has_error(function() w:fill_(0) end)
    assert.has_error(function() w[1] = 3 end)
    assert.are.same({1, 1}, w:detach():totable())
    ember.no_grad(function() w:add_(1) end)
    assert.are.same({2, 2}, w:detach():totable())
  end)

  it("in-place ops on views of tensors that require grad are refused", function()
    local w = ember.ones(2, 2, {requires_grad = true})
    local v = (w * 1)[1]
    assert.has_error(function() v:mul_(2) end)
    local buf = ember.zeros(2, 2)
    assert.has_error(function() buf[1] = w[1] end)
  end)

  it("no_grad and enable_grad", function()
    local x = ember.ones(2, {requires_grad = true})
    local y, n = ember.no_grad(function(a) return a * 2, 42 end, x)
    assert.is_false(y.requires_grad)
    assert.are.equal(42, n)
    assert.is_true(ember.is_grad_enabled())
    ember.no_grad(function()
      assert.is_false(ember.is_grad_enabled())
      local z = ember.enable_grad(function() return x * 2 end)
      assert.is_true(z.requires_grad)
    end)
    -- an error inside restores the mode
    assert.has_error(function() ember.no_grad(function() error("boom") end) end)
    assert.is_true(ember.is_grad_enabled())
    ember.set_grad_enabled(false)
    assert.is_false((x * 2).requires_grad)
    ember.set_grad_enabled(true)
    assert.has_error(function() ember.no_grad(42) end, "no_grad: expected a function, got number")
  end)

  it("detach and detach_", function()
    local x = ember.ones(2, {requires_grad = true})
    local y = x * 3
    local d = y:detach()
    assert.is_false(d.requires_grad)
    assert.are.same({3, 3}, d:totable())
    y:detach_()
    assert.is_false(y.requires_grad)
    assert.is_true(y.is_leaf)
    assert.is_nil(y.grad_fn)
    assert.are.same({3, 3}, y:totable())
  end)

  it("detach_ works in place: every reference sees it, a leaf keeps its grad", function()
    local x = ember.ones(2, {requires_grad = true})
    local y = x * 3
    y:retain_grad()
    local same = y
    assert.is_true(rawequal(y:detach_(), y), "returns the tensor")
    assert.is_false(same.requires_grad)
    ;(x * 2):sum():backward()
    assert.is_nil(y.grad)                          -- not retained any more
    assert.are.same({2, 2}, x.grad:totable())
    x:detach_()                                    -- a leaf: requires_grad off
    assert.is_false(x.requires_grad)
    assert.are.same({2, 2}, x.grad:totable())      -- its .grad stays
    assert.is_false(ember.ones(2):detach_().requires_grad)  -- no history: nothing to do
  end)

  it("detach_ of a view of a tensor that requires grad is refused, unchanged", function()
    local x = ember.ones(2, 3, {requires_grad = true})
    local v = (x * 2):narrow(2, 1, 2)
    local ok, err = pcall(v.detach_, v)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("detach_: can't detach a view in place", 1, true), err)
    assert.is_true(v.requires_grad)
    assert.are.equal("NarrowBackward", v.grad_fn)
    v:sum():backward()                             -- its history still works
    assert.are.same({{2, 2, 0}, {2, 2, 0}}, x.grad:totable())
    assert.is_false(v:detach().requires_grad)      -- the out-of-place form
  end)

  it("retain_grad keeps a non-leaf's gradient", function()
    local x = ember.tensor({1, 2}, {requires_grad = true})
    local h = x * 2
    h:retain_grad()
    ;(h * h):sum():backward()
    assert.are.same({4, 8}, h.grad:totable())
    assert.are.same({8, 16}, x.grad:totable())
  end)

  it("branches that carry no gradient still let the rest run", function()
    local x = ember.tensor({1, -2, 3}, {requires_grad = true})
    local _, idx = x:max(1)
    local y = x:index_select(1, idx) + x:sum()
    y:sum():backward()
    assert.are.same({1, 1, 2}, x.grad:totable())
  end)

  it("long chains are freed without deep recursion", function()
    local x = ember.ones(1, {requires_grad = true})
    local y = x
    for _ = 1, 100000 do y = y + 1 end
    y:sum():backward()
    assert.are.same({1}, x.grad:totable())
    y = nil
    collectgarbage()
  end)

  it("memory of a training loop stays flat across steps", function()
    local w = ember.randn(256, 256, {requires_grad = true})
    local x = ember.randn(64, 256)
    local function step()
      local loss = (x:matmul(w):tanh() ^ 2):mean()
      loss:backward()
      ember.no_grad(function() w:sub_(w.grad * 0.01) end)
      w.grad = nil
    end
    for _ = 1, 20 do step() end
    collectgarbage(); collectgarbage()
    local base = ember.memory_allocated()
    for _ = 1, 200 do step() end
    collectgarbage(); collectgarbage()
    local after = ember.memory_allocated()
    assert.is_true(after <= base * 1.05, ("grew from %d to %d bytes"):format(base, after))
  end)

  it("memory of an nn training loop (conv, batch norm, Adam) stays flat", function()
    local nn, optim = ember.nn, ember.optim
    ember.manual_seed(5)
    local net = nn.Sequential{
      nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, 10),
    }
    local opt = optim.Adam(net:parameters(), {lr = 1e-3})
    local x, y = ember.randn(16, 1, 8, 8), ember.randint(1, 10, {16})
    local function step()
      opt:zero_grad()
      nn.functional.cross_entropy(net(x), y):backward()
      opt:step()
    end
    for _ = 1, 5 do step() end
    collectgarbage(); collectgarbage()
    local base = ember.memory_allocated()
    for _ = 1, 100 do step() end
    collectgarbage(); collectgarbage()
    local after = ember.memory_allocated()
    assert.is_true(after <= base * 1.05, ("grew from %d to %d bytes"):format(base, after))
  end)
end)

describe("post-backward hooks", function()
  it("run after every backward, through a saved ember.backward too", function()
    local bw, method = ember.backward, ember.Tensor.backward  -- saved first
    local calls, seen = 0, nil
    local w = ember.ones(2, {requires_grad = true})
    local h = ember.register_post_backward_hook(function()
      calls = calls + 1
      seen = w.grad and w.grad:totable()                     -- already accumulated
    end)
    assert.are.equal("PostBackwardHook", (tostring(h):match("^%a+")))
    bw((w * w):sum())
    assert.are.equal(1, calls)
    assert.are.same({2, 2}, seen)
    method((w * 3):sum())
    ;(w * 1):sum():backward()
    assert.are.equal(3, calls)
    assert.is_true(h:remove())
    assert.is_false(h:remove(), "a second remove does nothing")
    bw((w * w):sum())
    assert.are.equal(3, calls)
  end)

  it("run in the order registered; one may remove another", function()
    local order = {}
    local h2
    local h1 = ember.register_post_backward_hook(function()
      order[#order + 1] = 1
      h2:remove()                                  -- h2 does not run this time
    end)
    h2 = ember.register_post_backward_hook(function() order[#order + 1] = 2 end)
    local h3 = ember.register_post_backward_hook(function() order[#order + 1] = 3 end)
    ember.ones(1, {requires_grad = true}):sum():backward()
    h1:remove(); h3:remove()
    assert.are.same({1, 3}, order)
  end)

  it("a failing hook fails backward with its message; the gradients stay", function()
    local w = ember.ones(2, {requires_grad = true})
    local h = ember.register_post_backward_hook(function() error("hook says no") end)
    local ok, err = pcall(function() (w * 2):sum():backward() end)
    h:remove()
    assert.is_false(ok)
    assert.truthy(tostring(err):find("hook says no", 1, true), err)
    assert.are.same({2, 2}, w.grad:totable())
    ;(w * 2):sum():backward()                       -- removed: no error
    assert.are.same({4, 4}, w.grad:totable())
  end)

  it("a backward inside a hook runs no hooks", function()
    local calls = 0
    local x = ember.ones(1, {requires_grad = true})
    local h = ember.register_post_backward_hook(function()
      calls = calls + 1
      (x * 5):sum():backward()
    end)
    x:sum():backward()
    h:remove()
    assert.are.equal(1, calls)
    assert.are.same({6}, x.grad:totable())
  end)

  it("need a function: a clear error, nothing registered", function()
    local before = 0
    local h = ember.register_post_backward_hook(function() before = before + 1 end)
    for _, bad in ipairs({42, "f", {}, nil}) do
      local ok, err = pcall(ember.register_post_backward_hook, bad)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("register_post_backward_hook", 1, true), err)
      assert.truthy(tostring(err):find("function expected", 1, true), err)
    end
    ember.ones(1, {requires_grad = true}):sum():backward()
    h:remove()
    assert.are.equal(1, before)
    assert.has_error(function() h.remove(42) end)
  end)

  it("DistributedDataParallel in a world of one leaves backward as it is", function()
    local bw = ember.backward
    local net = ember.nn.Linear(2, 1, {bias = false})
    local model = ember.nn.DistributedDataParallel(net)
    assert.is_true(rawequal(bw, ember.backward))
    bw(model(ember.ones(1, 2)):sum())
    assert.are.same({{1, 1}}, net.weight.grad:totable())
  end)
end)
