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
