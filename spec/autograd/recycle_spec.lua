-- core/autograd.c recycles the nodes and the per-tensor autograd metadata
-- that every recorded op makes (per-thread free lists).  A recycled one must
-- carry nothing over from its last use: these specs make graphs that set
-- every flag they can, drop them, and check the graphs made next.
local ember = require "ember"

local function collect()
  collectgarbage()
  collectgarbage()
end

-- Graphs that leave flags behind: retained grads, saved tensors, views,
-- and an in-place op (rebase) on a non-leaf.
local function dirty_graphs(n)
  for i = 1, n do
    local w = ember.full({4}, i, {requires_grad = true})
    local y = w * w
    y:retain_grad()
    local v = y:view(2, 2)
    local z = (v + 1):exp_()
    z:sum():backward()
  end
  collect()
end

describe("recycled autograd nodes and metadata", function()
  it("start clean: no retained grad, the right grad_fn, fresh gradients", function()
    dirty_graphs(300)
    local a = ember.tensor({1, 2, 3, 4}, {requires_grad = true})
    local b = ember.tensor({10, 20, 30, 40}, {requires_grad = true})
    for i = 1, 300 do
      local z = a + b
      assert.are.equal("AddBackward", z.grad_fn)
      assert.is_false(z.is_leaf)
      z:sum():backward()
      assert.is_nil(z.grad)                 -- not retained, unlike dirty y
      if i % 100 == 0 then collect() end
    end
    assert.are.same({300, 300, 300, 300}, a.grad:totable())
    assert.are.same({300, 300, 300, 300}, b.grad:totable())
  end)

  it("backward twice through a recycled node is still refused", function()
    dirty_graphs(100)
    local x = ember.tensor({1, 2}, {requires_grad = true})
    local y = (x * x):sum()
    y:backward()
    assert.has_error(function() y:backward() end)
    assert.are.same({2, 4}, x.grad:totable())
  end)

  it("mix with nodes of more than two inputs and of none", function()
    local a = ember.tensor({1, 2}, {requires_grad = true})
    local b = ember.tensor({3, 4}, {requires_grad = true})
    local c = ember.tensor({5, 6}, {requires_grad = true})
    for round = 1, 50 do
      dirty_graphs(5)
      local cat = ember.cat({a * 2, b, c + a})     -- a node of 3 inputs
      local s = (cat * cat):sum()
      s:backward()
      assert.are.equal("CatBackward", cat.grad_fn)
      -- d/da = 2*(2a)*2 + 2*(c+a); d/db = 2b; d/dc = 2*(c+a), per round
      assert.are.same({(8 * 1 + 2 * 6) * round, (8 * 2 + 2 * 8) * round},
                      a.grad:totable())
      assert.are.same({6 * round, 8 * round}, b.grad:totable())
      assert.are.same({12 * round, 16 * round}, c.grad:totable())
      local f = ember.zeros(2)                     -- fill_/copy_ nodes
      ember.no_grad(function() f:fill_(1) end)
      f:copy_(a * 1)
      assert.are.equal("CopyBackward", f.grad_fn)
    end
  end)
end)
