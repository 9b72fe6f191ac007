-- The gradients of part views (select, narrow, slicing, diagonal) that the
-- engine adds in place into their input's gradient so far (ember_add_part_fn
-- in core/autograd.h): the sums must equal those of full-size zero tensors,
-- and no tensor the user holds may change.
local ember = require "ember"

local function same(a, b, what)
  assert.are.same(a:shape(), b:shape(), what)
  assert.is_true((a - b):abs():max():item() <= 1e-12, what)
end

describe("gradients of part views", function()
  it("sum the steps of a sequence cut by select", function()
    local x = ember.randn(3, 6, 4, {dtype = "float64"}):requires_grad_(true)
    local w = ember.randn(3, 6, 4, {dtype = "float64"})
    local y = x * 2
    local loss = 0
    for t = 1, 6 do loss = loss + (y:select(2, t) * w:select(2, t)):sum() end
    loss:backward()
    same(x.grad, w * 2, "grad")
  end)

  it("mix select, narrow, slicing and diagonal on one input", function()
    local x = ember.randn(4, 4, {dtype = "float64"}):requires_grad_(true)
    local y = x + 0
    local loss = y:select(1, 2):sum() * 3 + y:narrow(2, 2, 2):sum() + y:diagonal():sum() * 5
                 + y[{{1, 4, 2}}]:sum() * 7
    loss:backward()
    local want = ember.zeros(4, 4, {dtype = "float64"})
    want[2] = 3
    want:narrow(2, 2, 2):add_(1)
    for i = 1, 4 do want[i][i] = want[i][i] + 5 end
    want[1]:add_(7); want[3]:add_(7)
    same(x.grad, want, "grad")
  end)

  it("give retained gradients and leaves' sums as without them", function()
    local x = ember.randn(2, 3, {dtype = "float64"}):requires_grad_(true)
    x:select(1, 1):sum():backward()
    local snapshot = x.grad:clone()
    local y = x * 1
    y:retain_grad()
    ;(y:select(1, 1):sum() + y:select(1, 2):sum() * 2 + y:select(2, 3):sum()):backward()
    local want_y = ember.tensor({{1, 1, 2}, {2, 2, 3}}, {dtype = "float64"})
    same(y.grad, want_y, "retained grad")
    same(x.grad, want_y + snapshot, "accumulated leaf grad")
  end)

  it("add into a leaf's pending sum", function()
    local x = ember.randn(5, 2, {dtype = "float64"}):requires_grad_(true)
    local loss = 0
    for i = 1, 5 do loss = loss + x:select(1, i):sum() * i end
    loss:backward()
    same(x.grad, ember.arange(1, 6, {dtype = "float64"}):view(5, 1):expand(5, 2), "grad")
  end)
end)
