-- bfloat16 and float16 (core/half.h, core/cpu/half.c, core/cpu/half_adapt.c)
-- against PyTorch (spec/reference/half_values.lua, written by
-- spec/reference/make_half_reference.py): conversions from float32 and
-- float64 bit for bit (ties to even, subnormals, overflow to inf, NaN,
-- -0), then every op family on half inputs: dtypes exactly, values within
-- one unit in the last place of the half type (both compute in float32 and
-- round once; a sum may add in another order), gradients within 4 units in
-- the last place of the gradient's largest element (close_grad says why).
local ember = require "ember"
local F = ember.nn.functional

local ref = dofile("spec/reference/half_values.lua")

local MANT = {bfloat16 = 7, float16 = 10}
local MIN_EXP = {bfloat16 = -126, float16 = -14}

-- One unit in the last place of v in dtype (subnormals: the smallest step).
local function ulp(v, dtype)
  local a = math.abs(v)
  local e = MIN_EXP[dtype]
  if a > 0 and a < math.huge then
    local m, ex = math.frexp(a)          -- a = m * 2^ex, 0.5 <= m < 1
    if ex - 1 > e then e = ex - 1 end
    if m ~= m then e = MIN_EXP[dtype] end
  end
  return 2.0 ^ (e - MANT[dtype])
end

local function same_value(a, b)
  if a ~= a then return b ~= b end
  if a == 0 and b == 0 then return 1 / a == 1 / b end   -- -0 is not 0
  return a == b
end

local function close_list(what, got, want, dtype, ulps)
  assert.are.equal(#want, #got, what .. ": element count")
  for i = 1, #want do
    local g, w = got[i], want[i]
    local ok
    if type(w) ~= "number" or math.type(w) == "integer" then ok = g == w
    elseif w ~= w then ok = g ~= g
    elseif w == math.huge or w == -math.huge then ok = g == w
    else ok = math.abs(g - w) <= ulps * ulp(w, dtype) end
    if not ok then
      error(("%s: element %d is %s, PyTorch %s (%s)"):format(what, i, tostring(g), tostring(w), dtype), 2)
    end
  end
end

-- A gradient is a chain of rounded steps in both (PyTorch's and Ember's
-- backward formulas round at other points, and a softmax's backward
-- cancels), so within 4 units in the last place of its largest element.
local function close_grad(what, got, want, dtype)
  local big = 0
  for _, w in ipairs(want) do big = math.max(big, math.abs(w)) end
  local tol = 4 * ulp(big, dtype)
  for i = 1, #want do
    if not (math.abs(got[i] - want[i]) <= tol) then
      error(("%s: element %d is %s, PyTorch %s (%s)"):format(what, i, tostring(got[i]), tostring(want[i]), dtype), 2)
    end
  end
end

local function flat(t)
  if t:is_floating_point() then t = t:to("float64") end
  return t:numel() == 0 and {} or t:reshape(-1):totable()
end

describe("half conversions", function()
  for _, c in ipairs(ref.conv) do
    for _, dt in ipairs{"bfloat16", "float16"} do
      it(c.src .. " -> " .. dt .. " rounds as PyTorch", function()
        local h = ember.tensor(c.data, {dtype = c.src}):to(dt)
        assert.are.equal(dt, h.dtype)
        local got = flat(h)
        for i, want in ipairs(c[dt].value) do
          if not same_value(got[i], want) then
            error(("element %d (%s): got %s, PyTorch %s (bits 0x%04x)")
                  :format(i, tostring(c.data[i]), tostring(got[i]), tostring(want), c[dt].bits[i]))
          end
        end
        -- and back: widening is exact, so to(src) gives the same values
        local back = flat(h:to(c.src))
        for i, want in ipairs(c[dt].value) do assert.is_true(same_value(back[i], want)) end
      end)
    end
  end

  it("aliases and the dtype names", function()
    assert.are.equal("bfloat16", ember.zeros(2, {dtype = "bf16"}).dtype)
    assert.are.equal("float16", ember.zeros(2, {dtype = "half"}).dtype)
  end)
end)

-- The ops of make_half_reference.py, by the same names.
local OPS = {
  exp = function(x) return x:exp() end, log = function(x) return x:log() end,
  sqrt = function(x) return x:sqrt() end, tanh = function(x) return x:tanh() end,
  sigmoid = function(x) return x:sigmoid() end, relu = function(x) return x:relu() end,
  gelu = function(x) return F.gelu(x) end,
  gelu_tanh = function(x) return F.gelu(x, "tanh") end,
  silu = function(x) return F.silu(x) end, sin = function(x) return x:sin() end,
  abs = function(x) return x:abs() end, neg = function(x) return -x end,
  reciprocal = function(x) return 1 / x end, square = function(x) return x * x end,
  pow_s = function(x) return x ^ 1.5 end, add_s = function(x) return x + 0.1 end,
  mul_s = function(x) return x * 3 end, rsub_s = function(x) return 1 - x end,
  clamp = function(x) return x:clamp(-1, 1) end,
  leaky_relu = function(x) return F.leaky_relu(x, 0.1) end,
  add = function(x, y) return x + y end, sub = function(x, y) return x - y end,
  mul = function(x, y) return x * y end, div = function(x, y) return x / y end,
  maximum = function(x, y) return ember.maximum(x, y) end,
  pow = function(x, y) return x ^ y end,
  where = function(x, y) return ember.where(x:gt(0), x, y) end,
  lt = function(x, y) return x:lt(y) end,
  sum = function(x) return x:sum() end, sum_d2 = function(x) return x:sum(2) end,
  mean_d2 = function(x) return x:mean(2) end, prod_d1 = function(x) return x:prod(1) end,
  max_d2 = function(x) return (x:max(2)) end, min_all = function(x) return x:min() end,
  argmax_d2 = function(x) return x:argmax(2) end,
  var_d2 = function(x) return x:var(2) end, std_d2 = function(x) return x:std(2) end,
  norm = function(x) return x:norm() end, logsumexp_d2 = function(x) return x:logsumexp(2) end,
  cumsum_d2 = function(x) return x:cumsum(2) end,
  softmax = function(x) return x:softmax(2) end, log_softmax = function(x) return x:log_softmax(2) end,
  layer_norm = function(x) return F.layer_norm(x, {9}) end,
  mse = function(x, y) return F.mse_loss(x, y) end,
  cross_entropy = function(x) return F.cross_entropy(x, ember.tensor({1, 9, 4, 4}, {dtype = "int64"})) end,
  sort = function(x) return (x:sort(2)) end, topk = function(x) return (x:topk(3, 2)) end,
  gather = function(x) return x:gather(2, ember.tensor({{1, 9}, {3, 3}, {2, 1}, {6, 7}}, {dtype = "int64"})) end,
  cat = function(x, y) return ember.cat({x, y}, 1) end,
}

local function input(c, data, shape)
  local t = ember.tensor(data, {dtype = "float64"}):to(c.dtype):view(shape)
  if c.t then t = t:transpose(1, 2) end
  return t
end

describe("half ops against PyTorch", function()
  for _, c in ipairs(ref.ops) do
    local name = ("%s %s%s"):format(c.dtype, c.op, c.t and " (transposed input)" or "")
    it(name, function()
      local f = assert(OPS[c.op], c.op)
      local x = input(c, c.x, c.xshape):requires_grad_()
      local y = c.y and input({dtype = c.dtype}, c.y, {4, 9}):requires_grad_()
      local out = f(x, y)
      assert.are.equal(c.out_dtype, out.dtype, name .. ": dtype")
      assert.are.same(c.out_shape, out:shape(), name .. ": shape")
      close_list(name, flat(out), c.out, c.dtype, 1)
      if c.gx then
        local wd = {}
        for i = 0, out:numel() - 1 do wd[i + 1] = math.sin(i * 0.37 + 2.3) * 3 end
        local w = ember.tensor(wd, {dtype = "float32"}):to(c.dtype):view(c.out_shape)
        ;(out * w):sum():backward()
        assert.are.equal(c.dtype, x.grad.dtype)
        close_grad(name .. " grad x", flat(x.grad), c.gx, c.dtype)
        if c.gy then close_grad(name .. " grad y", flat(y.grad), c.gy, c.dtype) end
      end
    end)
  end
end)

describe("half dtypes through the library", function()
  local nn = ember.nn
  local function bf(t) return ember.tensor(t, {dtype = "float64"}):to("bfloat16") end

  it("promotion: a Lua number keeps the half type, float32 wins, the two halves make float32", function()
    local x = bf({1, 2})
    assert.are.equal("bfloat16", (x * 2.5).dtype)
    assert.are.equal("bfloat16", (2.5 - x).dtype)
    assert.are.equal("float32", (x + ember.ones(2)).dtype)
    assert.are.equal("float64", (x + ember.ones(2, {dtype = "float64"})).dtype)
    assert.are.equal("float32", (x + ember.ones(2, {dtype = "float16"})).dtype)
    assert.are.equal("bfloat16", (ember.ones(2, {dtype = "int64"}) + x).dtype)
  end)

  it("in-place ops keep the tensor's half dtype and round once", function()
    local x = bf({1, 2, 3})
    x:add_(ember.tensor({0.001, 0.001, 0.001}))     -- below half an ulp: unchanged
    assert.are.same({1, 2, 3}, x:to("float64"):totable())
    x:mul_(3)
    assert.are.equal("bfloat16", x.dtype)
    assert.are.same({3, 6, 9}, x:to("float64"):totable())
  end)

  it("empty tensors", function()
    local e = ember.zeros(0, 3, {dtype = "float16"})
    assert.are.same({0, 3}, e:exp():shape())
    assert.are.equal(0, e:sum():item())
    assert.are.equal("float16", e:sum().dtype)
    assert.are.same({0}, e:softmax(2):sum(2):shape())
  end)

  it("broadcast and transposed operands", function()
    local x = bf({{1, 2, 3}, {4, 5, 6}})
    local r = x:t() + bf({10, 20})
    assert.are.same({{11, 24}, {12, 25}, {13, 26}}, r:to("float64"):totable())
    assert.are.same({{3, 3}, {3, 3}}, bf(3):expand(2, 2):contiguous():to("float64"):totable())
  end)

  it("random draws are the float32 draw rounded", function()
    for _, dt in ipairs{"bfloat16", "float16"} do
      ember.manual_seed(7)
      local a = ember.randn(100, {dtype = dt})
      ember.manual_seed(7)
      local b = ember.randn(100):to(dt)
      assert.is_true(ember.equal(a, b))
      ember.manual_seed(7)
      local u = ember.zeros(50, {dtype = dt}):uniform_(-1, 1)
      ember.manual_seed(7)
      assert.is_true(ember.equal(u, ember.zeros(50):uniform_(-1, 1):to(dt)))
    end
  end)

  it("the to cast's backward casts the gradient back, both ways", function()
    local p = ember.tensor({1, 2, 3}):requires_grad_()
    local h = p:to("bfloat16")
    ;(h * h):sum():backward()
    assert.are.equal("float32", p.grad.dtype)
    assert.are.same({2, 4, 6}, p.grad:totable())
    local q = bf({1, 2}):requires_grad_()
    ;(q:to("float32") * 3):sum():backward()
    assert.are.equal("bfloat16", q.grad.dtype)
    assert.are.same({3, 3}, q.grad:to("float64"):totable())
  end)

  it("Module:to, bfloat16() and half() convert floating parameters and buffers only", function()
    local m = nn.Sequential(nn.Embedding(5, 4), nn.LayerNorm(4), nn.BatchNorm1d(3))
    m:bfloat16()
    assert.are.equal("bfloat16", m[1].weight.dtype)
    assert.are.equal("bfloat16", m[2].weight.dtype)
    assert.are.equal("bfloat16", m[3].running_mean.dtype)
    assert.are.equal("int64", m[3].num_batches_tracked.dtype)
    assert.is_true(m[1].weight.requires_grad)
    m:half()
    assert.are.equal("float16", m[2].bias.dtype)
    m:to("bf16")
    assert.are.equal("bfloat16", m[2].bias.dtype)
    m:to("float32")
    assert.are.equal("float32", m[1].weight.dtype)
    local ok, err = pcall(function() m:to("bfloat17") end)
    assert.is_false(ok)
    assert.matches("to: expected a floating dtype", err)
  end)

  it("embedding, dropout, norms and losses keep bfloat16", function()
    local e = nn.Embedding(5, 4):bfloat16()
    local h = e(ember.tensor({{1, 2, 3}}, {dtype = "int64"}))
    assert.are.equal("bfloat16", h.dtype)
    assert.are.equal("bfloat16", nn.LayerNorm(4):bfloat16()(h).dtype)
    assert.are.equal("bfloat16", F.dropout(h, 0.5, true).dtype)
    local b = nn.BatchNorm1d(3):bfloat16()
    assert.are.equal("bfloat16", b(h).dtype)
    local loss = F.nll_loss(h[1]:log_softmax(2), ember.tensor({1, 2, 4}, {dtype = "int64"}))
    assert.are.equal("bfloat16", loss.dtype)
    loss:backward()
    assert.are.equal("bfloat16", e.weight.grad.dtype)
  end)

  it("optimizers step bfloat16 parameters in float32 and round once", function()
    for _, make in ipairs{
      function(ps) return ember.optim.SGD(ps, {lr = 0.1, momentum = 0.9}) end,
      function(ps) return ember.optim.AdamW(ps, {lr = 0.1}) end,
    } do
      local p = bf({1, -2, 0.5}):requires_grad_()
      local q = ember.tensor({1, -2, 0.5}):requires_grad_()
      local op, oq = make({p}), make({q})
      for _ = 1, 3 do
        op:zero_grad(); oq:zero_grad()
        ;(p * p):sum():backward(); (q * q):sum():backward()
        op:step(); oq:step()
      end
      assert.are.equal("bfloat16", p.dtype)
      -- the float32 run rounded, within the ulps three rounded steps drift
      close_grad("step", p:to("float64"):totable(), q:to("float64"):totable(), "bfloat16")
    end
    local p = bf({3, 4}):requires_grad_()
    ;(p * p):sum():backward()
    local n = nn.utils.clip_grad_norm_({p}, 1.0)
    assert.is_true(math.abs(n:item() - 10) < 0.1)
  end)
end)

describe("ember.finfo", function()
  it("matches torch.finfo", function()
    local b = ember.finfo("bfloat16")
    assert.are.same({16, 2 ^ -7, 3.3895313892515355e38, -3.3895313892515355e38, 2 ^ -126, "bfloat16"},
                    {b.bits, b.eps, b.max, b.min, b.tiny, b.dtype})
    local h = ember.finfo("half")
    assert.are.same({16, 2 ^ -10, 65504.0, 2 ^ -14, "float16"}, {h.bits, h.eps, h.max, h.tiny, h.dtype})
    assert.are.equal(2 ^ -23, ember.finfo().eps)
    assert.are.equal(2 ^ -52, ember.finfo("double").eps)
    -- the largest finite value of each half type converts to itself
    assert.are.equal(65504, ember.tensor({h.max}):to("half")[1])
    assert.are.equal(b.max, ember.tensor({b.max}):to("bf16")[1])
    assert.has_error(function() ember.finfo("int64") end,
      "finfo: expected a floating dtype (float32, float64, bfloat16, float16), got 'int64'")
  end)
end)
