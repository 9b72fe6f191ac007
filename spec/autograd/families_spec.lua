-- The op families of core/ops/ record each op once, after computing it
-- (issue 15): the node a result carries is the op's own, never one of
-- the steps the op takes inside (a clone in reshape, the unsqueezes of
-- stack, the contiguous copies of conv2d), and the gradients through the
-- typed saved state (permutation, narrow range, conv parameters) are
-- right.
local ember = require "ember"
local G = require "helpers.gradcheck"
local leaf, check = G.leaf, G.check

describe("op families: one node per op", function()
  before_each(function() ember.manual_seed(15) end)

  it("reshape of a non-contiguous tensor records ReshapeBackward, not its clone", function()
    local x = ember.randn(3, 4, {requires_grad = true})
    local y = x:t():reshape(12)
    assert.are.equal("ReshapeBackward", y.grad_fn)
    assert.are.equal("FlattenBackward", x:t():flatten().grad_fn)
    ;(y * ember.arange(1, 13)):sum():backward()
    -- y[k] = x:t() flattened, so x[i][j] gets weight (j-1)*3 + i
    assert.are.equal(1, x.grad[1][1])
    assert.are.equal(4, x.grad[1][2])
    assert.are.equal(12, x.grad[3][4])
  end)

  it("stack, matmul and conv2d carry their own node", function()
    local a, b = ember.randn(2, 3, {requires_grad = true}), ember.randn(2, 3, {requires_grad = true})
    local s = ember.stack({a, b}, 2)
    assert.are.equal("StackBackward", s.grad_fn)
    assert.are.same({2, 2, 3}, s:shape())
    assert.are.equal("MmBackward", ember.matmul(a:t(), b).grad_fn)
    local x = ember.randn(1, 1, 5, 5, {requires_grad = true}):transpose(3, 4)
    local w = ember.randn(2, 1, 3, 3, {requires_grad = true})
    assert.are.equal("ConvolutionBackward", ember.conv2d(x, w).grad_fn)
    assert.are.equal("ConvolutionReluBackward", ember._conv2d_relu(x, w, nil, 1, 1, 1, 1).grad_fn)
    -- "same" with an even kernel: the core narrows the larger output
    local y = ember.conv2d(x, ember.randn(2, 1, 2, 3, {requires_grad = true}), nil, 1, "same")
    assert.are.same({1, 2, 5, 5}, y:shape())
    assert.are.equal("NarrowBackward", y.grad_fn)
  end)

  it("gradients through the typed saved state", function()
    check(function(x) return x:permute(3, 1, 2):narrow(3, 2, 2):select(1, 2) end, {leaf{2, 3, 4}})
    check(function(x) return x:transpose(-1, 1):reshape(-1) end, {leaf{2, 3, 4}})
    check(function(a, b) return ember.stack({a:t(), b:t()}, 1) end, {leaf{2, 3}, leaf{2, 3}})
    check(function(x, w, b) return ember._conv2d_relu(x:transpose(3, 4), w, b, 1, "same", 2, 1) end,
          {leaf{1, 2, 6, 5}, leaf{3, 2, 2, 3}, leaf{3}})
    check(function(x) return ember.max_pool2d(x:transpose(3, 4), 2, 1) end,
          {(ember.arange(30, {dtype = "float64"}):view(1, 1, 5, 6) * 0.1):requires_grad_()})
    check(function(x) return ember.avg_pool2d(x, {2, 3}, 1, {1, 1}, true, false) end, {leaf{1, 2, 4, 5}})
  end)
end)
