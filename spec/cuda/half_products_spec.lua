-- CPU/GPU parity of the bfloat16/float16 products (GPU only; on the
-- stand-in plugin without a GPU): matmul (cuBLAS GemmEx, float32 sums),
-- ember._matmul_f32's float32 result, linear, conv2d, attention, and the
-- gradients of matmul.  Both sides sum in float32 in their own order and
-- round once, so an element may differ by one unit in the last place of
-- the 16-bit type plus the float32 sums' own difference (K 2^-24 sum |ab|,
-- bounded with |a|, |b| < 5).  Without a CUDA device this file is one
-- pending test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local MANT = {bfloat16 = 7, float16 = 10, float32 = 23}

local function near(what, dev, cpu, K)
  assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  assert.are.equal(cpu.dtype, dev.dtype, what .. ": dtype")
  local a = cpu:to("float64"):reshape(-1):totable()
  local b = dev:cpu():to("float64"):reshape(-1):totable()
  for i = 1, #a do
    local m = math.abs(a[i])
    local u = m > 0 and 2.0 ^ (math.floor(math.log(m, 2)) - MANT[cpu.dtype]) or 0
    local tol = u + 25 * K * K * 2.0 ^ -24
    assert.is_true(math.abs(a[i] - b[i]) <= tol,
      ("%s: element %d: %.9g on the CPU, %.9g on the device"):format(what, i, a[i], b[i]))
  end
end

local function input(shape, dtype)
  return ember.randn(shape):clamp(-4.9, 4.9):to(dtype)
end

describe("bfloat16/float16 products on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(7) end)

  for _, dt in ipairs({"bfloat16", "float16"}) do
    it(dt .. " matmul: odd sizes, transposed, batched, empty, and backward", function()
      for _, s in ipairs({{1, 1, 1}, {17, 33, 19}, {3, 1000, 2}, {64, 64, 64}, {5, 0, 3}, {0, 4, 2}}) do
        local a, b = input({s[1], s[2]}, dt), input({s[2], s[3]}, dt)
        near(("%dx%dx%d"):format(s[1], s[2], s[3]), a:cuda():matmul(b:cuda()), a:matmul(b), s[2])
        local at, bt = input({s[2], s[1]}, dt):t(), input({s[3], s[2]}, dt):t()
        near("transposed", at:cuda():matmul(bt:cuda()), at:matmul(bt), s[2])
      end
      local a, b = input({3, 5, 7}, dt), input({3, 7, 4}, dt)
      near("batched", a:cuda():matmul(b:cuda()), a:matmul(b), 7)
      local g = input({3, 5, 4}, dt)
      local function grads(dev)
        local x = (dev and a:cuda() or a:clone()):requires_grad_()
        local w = (dev and b:cuda() or b:clone()):requires_grad_()
        x:matmul(w):backward(dev and g:cuda() or g)
        return x.grad, w.grad
      end
      local ca, cb = grads(false)
      local da, db = grads(true)
      near("grad a", da, ca, 4)
      near("grad b", db, cb, 5)
    end)

    it(dt .. " matmul with a float32 result (ember._matmul_f32)", function()
      local a, b = input({9, 70}, dt), input({70, 11}, dt)
      local y = ember._matmul_f32(a:cuda(), b:cuda())
      assert.are.equal("float32", y.dtype)
      near("f32", y, ember._matmul_f32(a, b), 70)
    end)

    it(dt .. " linear, conv2d and attention", function()
      local F = ember.nn.functional
      local x, w = input({2, 3, 9}, dt), input({5, 9}, dt)
      near("linear", F.linear(x:cuda(), w:cuda()), F.linear(x, w), 9)
      local xi, wc = input({2, 3, 7, 6}, dt), input({4, 3, 3, 2}, dt)
      near("conv2d", F.conv2d(xi:cuda(), wc:cuda(), nil, {padding = 1}),
           F.conv2d(xi, wc, nil, {padding = 1}), 18)
      local q, k, v = input({2, 5, 8}, dt), input({2, 6, 8}, dt), input({2, 6, 4}, dt)
      near("attention", F.scaled_dot_product_attention(q:cuda(), k:cuda(), v:cuda()),
           F.scaled_dot_product_attention(q, k, v), 8)
    end)
  end
end)
