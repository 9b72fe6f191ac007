-- float32 exp, log, tanh, sigmoid and erf on the CPU (core/cpu/vmath.h,
-- Ember's own vectorised kernels) against the float64 ones (the C
-- library), over a sweep of floats that covers every binade: each result
-- within a few ulp of the exact value, and special values (NaN, +-inf,
-- +-0, subnormals, overflow and underflow) as C99 gives them.  Also the
-- ops built on them (gelu, silu, softmax) and the strided path, which must
-- give the same bits as the contiguous one.
local ember = require "ember"

-- Every STEP-th bit pattern from 0 to 2^32 - 1, as floats (both signs,
-- subnormals, infinities and NaNs included), plus the edge values.
local STEP = 40009
local function sweep()
  local xs = {}
  for b = 0, 0xffffffff, STEP do
    xs[#xs + 1] = string.unpack("<f", string.pack("<I4", b))
  end
  for _, v in ipairs{0.0, -0.0, math.huge, -math.huge, 0 / 0, 1.4e-45, -1.4e-45,
                     1.17549435e-38, 88.72, 88.73, -87.33, -103.9, -104.1,
                     0.625, -0.625, 0.921875, 3.95, 9.1, 1e-30, -1e-30} do
    xs[#xs + 1] = v
  end
  return xs
end

-- |got - want| in units in the last place of want rounded to float32
-- (2^-149 for subnormals); 0 when both are the same NaN, infinity or zero
-- (signs compared).
local function ulps(got, want)
  if want ~= want then return got ~= got and 0 or math.huge end
  local w = string.unpack("<f", string.pack("<f", want))
  if w == 0 or w == math.huge or w == -math.huge then
    if got == w and (1 / got > 0) == (1 / w > 0) then return 0 end
    if w == 0 and got ~= got then return math.huge end
    if w == 0 and math.abs(want) < 2 ^ -149 then   -- underflow: one step
      return math.abs(got) <= 2 ^ -149 and 0 or math.huge
    end
    if w ~= 0 then return math.huge end
  end
  local a = math.abs(w)
  local e = math.floor(math.log(a, 2))
  if 2 ^ e > a then e = e - 1 elseif 2 ^ (e + 1) <= a then e = e + 1 end
  local ulp = 2 ^ math.max(e - 23, -149)
  return math.abs(got - want) / ulp
end

local OPS = {
  -- name, the float32 and float64 forms, the largest error allowed (ulp)
  {"exp", function(t) return t:exp() end, 1.5},
  {"log", function(t) return t:log() end, 1.5},
  {"tanh", function(t) return t:tanh() end, 1.5},
  {"sigmoid", function(t) return t:sigmoid() end, 3},
  {"erf", function(t) return t:erf() end, 1.5},
}

describe("float32 transcendentals (vmath)", function()
  local xs = sweep()
  local x = ember.tensor(xs)
  local x64 = x:double()

  for _, op in ipairs(OPS) do
    local name, f, limit = op[1], op[2], op[3]
    it(name .. " within " .. limit .. " ulp of float64, special values exact", function()
      local got, want = f(x):totable(), f(x64):totable()
      local worst, at = 0, nil
      for i = 1, #xs do
        local e = ulps(got[i], want[i])
        if e > worst then worst, at = e, i end
      end
      assert.is_true(worst <= limit, ("%s: %.3f ulp at x = %.9g (got %.9g, want %.17g)")
        :format(name, worst, at and xs[at] or 0, at and got[at] or 0, at and want[at] or 0))
    end)

    it(name .. " gives the same bits on a strided view", function()
      local m = ember.tensor({table.unpack(xs, 1, 6000)}):view(100, 60)
      local a = f(m:t():contiguous()):totable()
      local b = f(m:t()):contiguous():totable()
      for i = 1, #a do
        for j = 1, #a[i] do
          local u, v = a[i][j], b[i][j]
          assert.is_true(u == v or (u ~= u and v ~= v), name .. " differs at " .. i .. "," .. j)
        end
      end
    end)
  end

  it("keeps the special values C99 gives", function()
    local inf, nan = math.huge, 0 / 0
    local t = ember.tensor({nan, inf, -inf, 0.0, -0.0})
    local function same(got, want)
      for i = 1, #want do
        local g, w = got[i], want[i]
        assert.is_true((g ~= g and w ~= w) or (g == w and (w ~= 0 or 1 / g == 1 / w)),
                       ("element %d: got %s, want %s"):format(i, g, w))
      end
    end
    same(t:exp():totable(), {nan, inf, 0, 1, 1})
    same(t:log():totable(), {nan, inf, nan, -inf, -inf})
    same(t:tanh():totable(), {nan, 1, -1, 0.0, -0.0})
    same(t:sigmoid():totable(), {nan, 1, 0, 0.5, 0.5})
    same(t:erf():totable(), {nan, 1, -1, 0.0, -0.0})
    same(ember.tensor({-1}):log():totable(), {nan})
    same(ember.tensor({89, -104}):exp():totable(), {inf, 0})
  end)

  it("gelu, silu and softmax agree with their float64 forms", function()
    local v = ember.linspace(-12, 12, 4801):float()
    -- relative to |want| + 1: GELU's 1 + erf(x / sqrt 2) cancels for x
    -- far below 0, in float32 as in PyTorch
    local function close(a, b, tol)
      local err = ((a:double() - b):abs() - (b:abs() + 1) * tol):max():item()
      assert.is_true(err <= 0, "error beyond " .. tol)
    end
    close(v:gelu(), v:double():gelu(), 2e-6)
    close(v:gelu("tanh"), v:double():gelu("tanh"), 2e-6)
    close(v:silu(), v:double():silu(), 2e-6)
    local s = v:narrow(1, 1, 4800):view(48, 100)
    close(s:softmax(2), s:double():softmax(2), 2e-6)
    local ls, ls64 = s:log_softmax(2), s:double():log_softmax(2)
    assert.is_true(((ls:double() - ls64):abs()):max():item() <= 1e-5)
  end)

  -- the fused backward (softmax_backward slot) against its formula
  -- written with tensor ops: any dim, a strided or expanded gradient,
  -- float32 and float64
  it("softmax and log_softmax backward match y (g - sum g y), g - exp(y) sum g", function()
    ember.manual_seed(3)
    for _, dt in ipairs{"float32", "float64"} do
      for _, dim in ipairs{1, 2, 3} do
        for _, log in ipairs{false, true} do
          local x = ember.randn(4, 5, 70, {dtype = dt}):requires_grad_()
          local gs = {ember.randn(4, 5, 70, {dtype = dt}),
                      ember.randn(70, 5, 4, {dtype = dt}):permute(3, 2, 1),
                      ember.randn(1, 5, 1, {dtype = dt}):expand(4, 5, 70)}
          for _, g in ipairs(gs) do
            x.grad = nil
            local y = log and x:log_softmax(dim) or x:softmax(dim)
            y:backward(g)
            local yd = y:detach()
            local want = log and g - yd:exp() * g:sum(dim, true)
                         or yd * (g - (g * yd):sum(dim, true))
            local err = (x.grad - want):abs():max():item()
            assert.is_true(err <= (dt == "float32" and 2e-6 or 1e-13),
                           ("%s dim %d log %s: %g"):format(dt, dim, tostring(log), err))
          end
        end
      end
    end
  end)
end)
