-- bfloat16 and float16 products (matmul, linear, conv2d, attention):
-- forward and gradients against PyTorch (spec/reference/half_products_
-- values.lua, written by spec/reference/make_half_products_reference.py),
-- odd sizes, transposed views, batches, empty tensors; the float32 result of
-- a half product before rounding; then errors.  The reference is PyTorch's
-- bfloat16 kernel for conv2d, and PyTorch's float32 op on the widened
-- inputs rounded once elsewhere (the generator's header says why: 1.13's
-- own bfloat16 matmul rounds inside its sums for small shapes).
--
-- Tolerance.  Ember and PyTorch both sum the exact products in float32 and
-- round once to the 16-bit type, but in different orders, so their float32
-- sums differ by up to about K * 2^-24 * sum |a b| (|a|, |b| <= 3 here, so
-- sum |a b| <= 9 K), and rounding may then land one unit in the last place
-- (ulp) of the 16-bit type apart.  So an element e may be off by one ulp of
-- e, plus 9 K^2 2^-24 for a long cancelling sum.  Attention (softmax
-- between two products, and PyTorch's math against Ember's tiles): one ulp
-- plus 1e-5.
local ember = require "ember"

local cases = dofile("spec/reference/half_products_values.lua")

local MANT = {bfloat16 = 7, float16 = 10}

local function ulp(dtype, x)
  x = math.abs(x)
  if x == 0 then return 0 end
  local e = math.floor(math.log(x, 2))
  if dtype == "float16" and e < -14 then e = -14 end   -- subnormals
  return 2.0 ^ (e - MANT[dtype])
end

-- does this build's elementwise arithmetic handle the half types yet?
-- (another part of issue 19; the cases that need it wait for it)
local function half_arith()
  local ok, r = pcall(function()
    return (ember.tensor({1, 2}):to("bfloat16") + ember.tensor({3, 4}):to("bfloat16"))
      :sum():to("float32"):item()
  end)
  return ok and r == 10
end

local function build(c, i)
  local shape = c.shapes[i]
  local t = ember.tensor(c.inputs[i], {dtype = "float32"}):view(shape):to(c.dtype)
  if (i == 1 and c.ta) or (i == 2 and c.tb) then t = t:transpose(-1, -2) end
  return t
end

local function inner_size(c)
  if c.kind == "matmul" or c.kind == "linear" then
    local sa = c.shapes[1]
    return c.ta and sa[#sa - 1] or sa[#sa]
  elseif c.kind == "conv2d" then
    local w = c.shapes[2]
    return w[2] * w[3] * w[4]
  end
  return 0
end

-- terms: how many partial results, each rounded to the half type, are
-- summed into one element (a broadcast batch's gradient: one per batch
-- entry, as PyTorch's sum_to_size does it); each may be off by half an ulp
-- of the largest element
local function close(c, what, got, shape, expected, terms)
  assert.are.same(shape, got:shape(), what .. ": shape")
  assert.are.equal(c.dtype, got.dtype, what .. ": dtype")
  local vals = got:to("float64"):reshape(-1):totable()
  assert.are.equal(#expected, #vals, what .. ": count")
  local K = inner_size(c)
  local slack = c.kind == "attention" and 1e-5 or 9 * K * K * 2.0 ^ -24
  if terms and terms > 1 then
    local big = 0
    for _, e in ipairs(expected) do big = math.max(big, math.abs(e)) end
    slack = slack + terms * ulp(c.dtype, big)
  end
  for i, e in ipairs(expected) do
    local tol = ulp(c.dtype, e) + slack
    assert.is_true(math.abs(vals[i] - e) <= tol,
      ("%s: element %d is %.9g, expected %.9g (tolerance %.3g)"):format(what, i, vals[i], e, tol))
  end
end

local F = ember.nn.functional

local function call(c, xs)
  if c.kind == "matmul" then return xs[1]:matmul(xs[2])
  elseif c.kind == "linear" then return F.linear(xs[1], xs[2], xs[3])
  elseif c.kind == "conv2d" then
    return F.conv2d(xs[1], xs[2], nil, {stride = c.stride, padding = c.padding, groups = c.groups})
  end
  return F.scaled_dot_product_attention(xs[1], xs[2], xs[3], {is_causal = c.causal})
end

local function name(c)
  local s = {}
  for _, sh in ipairs(c.shapes) do s[#s + 1] = "[" .. table.concat(sh, ",") .. "]" end
  return ("%s %s %s%s%s%s"):format(c.kind, c.dtype, table.concat(s, " x "),
    c.ta and " a transposed" or "", c.tb and " b transposed" or "",
    c.causal and " causal" or "")
end

-- these sum in the half dtype: a bias added, a broadcast batch's gradient
local function needs_arith(c)
  if c.bias then return true end
  return c.kind == "matmul" and #c.shapes[1] ~= #c.shapes[2] and #c.shapes[1] > 2
         and #c.shapes[2] > 2
end

describe("bfloat16/float16 products against PyTorch", function()
  local arith = half_arith()
  for _, c in ipairs(cases) do
    local run = (arith or not needs_arith(c)) and it or pending
    run(name(c), function()
      local xs = {}
      for i = 1, #c.shapes do xs[i] = build(c, i):requires_grad_() end
      local y = call(c, xs)
      close(c, "forward", y, c.out_shape, c.out)
      if y:numel() > 0 then
        y:backward(ember.tensor(c.w, {dtype = "float32"}):view(c.out_shape):to(c.dtype))
        for i = 1, #xs do
          local g = xs[i].grad
          assert.is_not_nil(g, "gradient " .. i)
          local sh = c.shapes[i]
          if (i == 1 and c.ta) or (i == 2 and c.tb) then
            g = g:transpose(-1, -2)       -- as the stored layout
          end
          -- a broadcast batch: the gradient sums one rounded product per
          -- entry of the output's batch
          local terms = 1
          if c.kind == "matmul" and #sh > 2 then terms = y:numel() // g:numel() end
          close(c, "gradient " .. i, g:contiguous(), sh, c.grads[i], terms)
        end
      end
    end)
  end
end)

describe("bfloat16 matmul", function()
  it("rounds the float32 sum once", function()
    -- 1 + 2^-8 + 2^-8: float32 holds 1 + 2^-7 exactly, which bfloat16 can
    -- store; rounding after each addition would give 1 (ties to even twice)
    local a = ember.tensor({{1, 1, 1}}):to("bf16")
    local b = ember.tensor({{1}, {2 ^ -8}, {2 ^ -8}}):to("bf16")
    assert.are.equal(1 + 2 ^ -7, a:matmul(b):to("float64"):item())
  end)

  it("agrees with float32 products of the widened inputs at larger sizes", function()
    ember.manual_seed(3)
    -- sizes past the kernels' blocks: K over 256 (two K blocks), N over
    -- 1024 (two column blocks), M over 4096 (two row super-blocks)
    for _, s in ipairs({{1, 1, 1}, {64, 64, 64}, {100, 257, 129}, {300, 33, 1000},
                        {5, 40, 1100}, {4100, 3, 5}}) do
      local a = ember.randn(s[1], s[2]):to("bf16")
      local b = ember.randn(s[2], s[3]):to("bf16")
      local want = a:to("float64"):matmul(b:to("float64"))
      local got = a:matmul(b):to("float64")
      local err = (got - want):abs():max():item()
      local scale = want:abs():max():item()
      assert.is_true(err <= 2 ^ -8 * scale + 1e-6 * s[2],
        ("%dx%dx%d: error %g at scale %g"):format(s[1], s[2], s[3], err, scale))
    end
  end)

  it("agrees in every operand layout, on the small and the packed path", function()
    ember.manual_seed(4)
    -- core/cpu/gemm_half.c: small shapes (a dimension up to 384) widen to
    -- float32 and run the float32 kernels, a transposed B transposed in
    -- 16 x 16 tiles (ragged edges here); 520 x 300 x 1100 takes the
    -- packed panels (two K blocks, two column blocks)
    for _, s in ipairs({{17, 33, 5}, {31, 47, 129}, {40, 1100, 20}, {520, 300, 1100}}) do
      local M, K, N = s[1], s[2], s[3]
      for _, dt in ipairs({"bf16", "half"}) do
        for ta = 0, 1 do
          for tb = 0, 1 do
            local a = ta == 1 and ember.randn(K, M):to(dt):t() or ember.randn(M, K):to(dt)
            local b = tb == 1 and ember.randn(N, K):to(dt):t() or ember.randn(K, N):to(dt)
            local want = a:to("float64"):matmul(b:to("float64"))
            local got = ember._matmul_f32(a, b):to("float64")
            local err = (got - want):abs():max():item()
            assert.is_true(err <= 1e-6 * want:abs():max():item(),
              ("%s %dx%dx%d ta %d tb %d: error %g"):format(dt, M, K, N, ta, tb, err))
          end
        end
      end
    end
  end)

  it("keeps float32 sums with ember._matmul_f32 (bf16 in, float32 out)", function()
    local a = ember.tensor({{1, 1, 1}}):to("bf16")
    local b = ember.tensor({{1}, {2 ^ -9}, {2 ^ -9}}):to("bf16")
    local y = ember._matmul_f32(a, b)
    assert.are.equal("float32", y.dtype)
    assert.are.equal(1 + 2 ^ -8, y:to("float64"):item())   -- bf16 would round to 1
    local x = ember.randn(5, 4):to("bf16"):requires_grad_()
    local w = ember.randn(4, 3):to("bf16"):requires_grad_()
    ember._matmul_f32(x, w):backward(ember.ones(5, 3))
    assert.are.equal("bfloat16", x.grad.dtype)
    assert.are.equal("bfloat16", w.grad.dtype)
    local want = ember.ones(5, 3, {dtype = "float64"}):matmul(w:to("float64"):t())
    local err = (x.grad:to("float64") - want):abs():max():item()
    assert.is_true(err <= 2 ^ -8 * want:abs():max():item())
  end)

  it("mixes float16 and bfloat16 in float32, and refuses bool", function()
    local a = ember.ones(2, 3):to("half")
    local b = ember.ones(3, 2):to("bf16")
    assert.are.equal("float32", a:matmul(b).dtype)
    assert.are.equal("bfloat16", ember.ones(2, 3, {dtype = "int64"}):matmul(b).dtype)
    assert.has_error(function() a:matmul(ember.ones(2, 2):to("half")) end)
  end)

  it("goes through mm, bmm, outer and einsum in its dtype", function()
    local a = ember.randn(2, 3, 4):to("bf16")
    local b = ember.randn(2, 4, 5):to("bf16")
    local want = ember.matmul(a, b)
    assert.are.equal(0, (ember.bmm(a, b):to("float32") - want:to("float32")):abs():max():item())
    assert.are.equal("bfloat16", ember.mm(a[1], b[1]).dtype)
    assert.are.equal("bfloat16", ember.outer(a[1][1], b[1][1]).dtype)
    assert.are.equal("bfloat16", ember.einsum("bij,bjk->bik", a, b).dtype)
  end)

  it("does not depend on the thread count", function()
    ember.manual_seed(5)
    local a = ember.randn(200, 300):to("bf16")
    local b = ember.randn(300, 170):to("bf16")
    local n = ember.get_num_threads()
    ember.set_num_threads(1)
    local one = a:matmul(b):to("float32")
    ember.set_num_threads(n)
    local many = a:matmul(b):to("float32")
    assert.are.equal(0, (one - many):abs():max():item())
  end)
end)

describe("bfloat16/float16 recurrent cells", function()
  -- the cells compute in float32 and round once: exactly the float32 cell
  -- of the widened inputs, rounded
  for _, dt in ipairs({"bfloat16", "float16"}) do
    it(dt .. " lstm_cell and gru_cell, forward and gradients", function()
      ember.manual_seed(11)
      local g = ember.randn(3, 8):to(dt)
      local c = ember.randn(3, 2):to(dt)
      local gx, gh, h = ember.randn(3, 6):to(dt), ember.randn(3, 6):to(dt), ember.randn(3, 2):to(dt)
      local function check(got, want)
        assert.are.equal(dt, got.dtype)
        assert.are.equal(0, (got:to("float64") - want:to(dt):to("float64")):abs():max():item())
      end
      local h1, c1 = ember.lstm_cell(g, c)
      local h2, c2 = ember.lstm_cell(g:to("float32"), c:to("float32"))
      check(h1, h2)
      if c1 then check(c1, c2) end
      check(ember.gru_cell(gx, gh, h),
            ember.gru_cell(gx:to("float32"), gh:to("float32"), h:to("float32")))
      local gl = g:clone():requires_grad_()
      local g32 = g:to("float32"):requires_grad_()
      local w = ember.randn(3, 2)
      ember.lstm_cell(gl, c):backward(w:to(dt))
      ember.lstm_cell(g32, c:to("float32")):backward(w:to(dt):to("float32"))
      check(gl.grad, g32.grad)
    end)
  end
end)
