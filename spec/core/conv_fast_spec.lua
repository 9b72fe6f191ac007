-- The CPU's fast convolution and pooling paths (issue 6), each against a
-- path that is already checked against PyTorch (spec/core/conv_spec.lua):
--   * conv2d_relu (what Sequential runs for Conv2d + ReLU) against
--     relu(conv2d): the same values, the same gradients;
--   * the direct path of first layers (float32, C*KH*KW <= 32, stride 1)
--     against float64, which always takes im2col + GEMM;
--   * the threads splitting the batch against one thread;
--   * inputs with Inf or NaN, which the direct weight gradient hands to
--     im2col;
--   * the vectorised 2x2 max pooling (float32) against the general path
--     (float64), NaN and ties included;
--   * Sequential's fusion: which layer pairs fuse, and that the result
--     is the plain one.
local ember = require "ember"
local nn = ember.nn
local F = nn.functional

-- max over elements of |a - b| / max(1, |b|), NaN-aware: a NaN where b has
-- none (or the reverse) is an infinite error
local function err(a, b)
  local x, y = a:double():reshape(-1), b:double():reshape(-1)
  assert.are.same(a:size(), b:size())
  local worst = 0
  for i = 1, x:size(1) do
    local u, v = x[i], y[i]
    if (u ~= u) ~= (v ~= v) then return math.huge end
    if u == u and u ~= v then
      if math.abs(v) == math.huge or math.abs(u) == math.huge then return math.huge end
      worst = math.max(worst, math.abs(u - v) / math.max(1, math.abs(v)))
    end
  end
  return worst
end

-- the geometries: direct-path ones first (float32, stride 1, K <= 32)
local CASES = {
  {name = "1->5 3x3, 9x11 (direct; 5 outputs: a block of 4 and one)",
   N = 3, C = 1, H = 9, W = 11, O = 5, k = 3},
  {name = "3->8 3x3 padding 1 (direct, K = 27)", N = 2, C = 3, H = 8, W = 8, O = 8, k = 3, pad = 1},
  {name = "2->4 2x5 padding {1,2} (direct, K = 20)",
   N = 2, C = 2, H = 7, W = 6, O = 4, k = {2, 5}, pad = {1, 2}},
  {name = "1->6 3x3, outputs 3 wide (direct, rows under 8)", N = 4, C = 1, H = 5, W = 5, O = 6, k = 3},
  {name = "4->6 3x3 padding 1 (im2col, K = 36)", N = 5, C = 4, H = 6, W = 6, O = 6, k = 3, pad = 1},
  {name = "1->4 3x3 stride 2 (im2col)", N = 3, C = 1, H = 9, W = 9, O = 4, k = 3, stride = 2},
  {name = "4->6 groups 2 (im2col)", N = 2, C = 4, H = 6, W = 7, O = 6, k = 3, groups = 2},
  {name = "1->3 1x1 (direct, K = 1)", N = 2, C = 1, H = 4, W = 9, O = 3, k = 1},
}

local function pair(v, d)
  if v == nil then return {d, d} end
  if type(v) == "number" then return {v, v} end
  return v
end

local function inputs(c, dtype)
  local k = pair(c.k)
  local x = ember.randn(c.N, c.C, c.H, c.W, {dtype = dtype})
  local w = ember.randn(c.O, c.C // (c.groups or 1), k[1], k[2], {dtype = dtype}):mul_(0.5)
  local b = ember.randn(c.O, {dtype = dtype}):mul_(0.5)
  return x, w, b
end

local function args(c)
  return c.stride or 1, c.pad or 0, 1, c.groups or 1
end

-- forward and the three gradients of f(x, w, b) with a fixed random gy
local function run(f, x, w, b, gy)
  local xl = x:clone():requires_grad_()
  local wl = w:clone():requires_grad_()
  local bl = b:clone():requires_grad_()
  local y = f(xl, wl, bl)
  y:backward(gy or ember.ones_like(y))
  return y, xl.grad, wl.grad, bl.grad
end

describe("conv2d_relu", function()
  for _, c in ipairs(CASES) do
    for _, dtype in ipairs{"float32", "float64"} do
      it(("is relu(conv2d), values and gradients: %s, %s"):format(c.name, dtype), function()
        ember.manual_seed(7)
        local x, w, b = inputs(c, dtype)
        local s, p, d, g = args(c)
        local plain = function(xx, ww, bb) return F.relu(F.conv2d(xx, ww, bb, s, p, d, g)) end
        local fused = function(xx, ww, bb) return F._conv2d_relu(xx, ww, bb, s, p, d, g) end
        local y0 = plain(x, w, b)
        local gy = ember.randn_like(y0)
        local a = {run(plain, x, w, b, gy)}
        local f = {run(fused, x, w, b, gy)}
        assert.are.equal(0, err(f[1], a[1]))          -- the same kernel: exact
        local zeros = ember.eq(a[1], 0):sum():item()
        assert.is_true(zeros > 0 and zeros < a[1]:numel(), "the case exercises ReLU's mask")
        for i, what in ipairs{"x", "w", "b"} do
          local e = err(f[i + 1], a[i + 1])
          assert.is_true(e <= 1e-6, ("grad %s differs by %g"):format(what, e))
        end
      end)
    end
  end

  it("takes the float32 direct path to float64's values and gradients", function()
    for _, c in ipairs(CASES) do
      ember.manual_seed(11)
      local x, w, b = inputs(c, "float64")
      local s, p, d, g = args(c)
      local fused = function(xx, ww, bb) return F._conv2d_relu(xx, ww, bb, s, p, d, g) end
      local gy = ember.randn_like(F.conv2d(x, w, b, s, p, d, g))
      local r64 = {run(fused, x, w, b, gy)}
      local r32 = {run(fused, x:float(), w:float(), b:float(), gy:float())}
      for i, what in ipairs{"y", "gx", "gw", "gb"} do
        local e = err(r32[i], r64[i])
        assert.is_true(e <= 1e-5, ("%s: %s differs from float64 by %g"):format(c.name, what, e))
      end
    end
  end)

  it("gives one thread's results when the threads split the batch", function()
    local prev = ember.get_num_threads()
    local ok, msg = pcall(function()
      for _, c in ipairs{
        {N = 16, C = 1, H = 28, W = 28, O = 32, k = 3},           -- direct
        {N = 16, C = 32, H = 13, W = 13, O = 64, k = 3},          -- im2col, units of images
        {N = 3, C = 8, H = 90, W = 90, O = 16, k = 3, pad = 1},   -- im2col, bands
      } do
        ember.manual_seed(3)
        local x, w, b = inputs(c, "float32")
        local s, p, d, g = args(c)
        local fused = function(xx, ww, bb) return F._conv2d_relu(xx, ww, bb, s, p, d, g) end
        local gy = ember.randn_like(F.conv2d(x, w, b, s, p, d, g))
        ember.set_num_threads(1)
        local one = {run(fused, x, w, b, gy)}
        ember.set_num_threads(2)
        local two = {run(fused, x, w, b, gy)}
        -- the same sums in another order: float32 rounding, relative to
        -- the largest value (sums of thousands of terms near 0 lose
        -- their relative precision)
        for i, what in ipairs{"y", "gx", "gw", "gb"} do
          local scale = math.max(1, one[i]:abs():max():item())
          local e = (two[i] - one[i]):abs():max():item() / scale
          assert.is_true(e <= 1e-5, ("%dx%d: %s differs by %g"):format(c.C, c.H, what, e))
        end
      end
    end)
    ember.set_num_threads(prev)
    assert(ok, msg)
  end)

  it("computes the weight gradient of an input holding Inf and NaN as im2col does", function()
    ember.manual_seed(5)
    local x = ember.randn(2, 1, 6, 7)
    x[1][1][3][7] = math.huge        -- the last column: junk columns of the direct path read it
    x[2][1][2][1] = 0 / 0
    local w = ember.randn(3, 1, 3, 3)
    local b = ember.randn(3)
    local gy = ember.randn(2, 3, 4, 5)
    local r32 = {run(F.conv2d, x, w, b, gy)}
    local r64 = {run(F.conv2d, x:double(), w:double(), b:double(), gy:double())}
    assert.is_true(r32[3]:ne(r32[3]):sum():item() > 0, "the gradient shows the NaN")
    for i, what in ipairs{"y", "gx", "gw", "gb"} do
      assert.is_true(err(r32[i], r64[i]) <= 1e-5, what .. " differs from float64")
    end
  end)

  it("handles an empty batch", function()
    local x = ember.zeros(0, 1, 5, 5, {requires_grad = true})
    local w = ember.randn(2, 1, 3, 3, {requires_grad = true})
    local b = ember.randn(2, {requires_grad = true})
    local y = F._conv2d_relu(x, w, b)
    assert.are.same({0, 2, 3, 3}, y:size())
    y:sum():backward()
    assert.are.equal(0, w.grad:abs():sum():item())
    assert.are.equal(0, b.grad:abs():sum():item())
  end)

  it("names itself in its errors and changes nothing", function()
    local x, w = ember.randn(1, 2, 5, 5), ember.randn(3, 1, 3, 3)
    assert.has_error(function() F._conv2d_relu(x, w, nil, 1, 0, 1, 1) end,
                     "conv2d_relu: weight [3,1,3,3] with groups=1 expects 1 input channels, but input [1,2,5,5] has 2")
  end)
end)

describe("max_pool2d 2x2 (vectorised float32 path)", function()
  for _, hw in ipairs{{26, 26}, {27, 17}, {11, 11}, {10, 6}, {4, 5}, {4, 40}} do
    it(("agrees with the general path, NaN and ties included: %dx%d"):format(hw[1], hw[2]), function()
      ember.manual_seed(9)
      local x = ember.randn(3, 2, hw[1], hw[2]):mul_(2):long():float()   -- many ties
      x[1][1][1][2] = 0 / 0
      x[2][2][hw[1] // 2 * 2][1] = 0 / 0    -- the last row a window covers
      x[3][1][1][1] = 0 / 0
      x[3][1][1][2] = 0 / 0                        -- two NaNs: the last wins
      local y32, i32 = F.max_pool2d(x, 2, {return_indices = true})
      local y64, i64 = F.max_pool2d(x:double(), 2, {return_indices = true})
      assert.are.equal(0, err(y32, y64))
      assert.is_true(ember.equal(i32, i64), "indices differ")
      assert.is_true(y32:ne(y32):sum():item() >= 3)
    end)
  end
end)

describe("Sequential's Conv2d + ReLU fusion", function()
  local function net()
    ember.manual_seed(1)
    return nn.Sequential{nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, {padding = 1}), nn.ReLU(), nn.Flatten()}
  end

  local function by_layers(m, x)
    for i = 1, #m do x = m[i](x) end
    return x
  end

  it("gives the layer-by-layer values and gradients", function()
    local m = net()
    local x = ember.randn(5, 1, 12, 12)
    local y = m(x)
    y:sum():backward()
    local g1 = m[1].weight.grad:clone()
    local g4 = m[4].bias.grad:clone()
    m:zero_grad()
    local y2 = by_layers(m, x)
    y2:sum():backward()
    assert.are.equal(0, err(y, y2))
    assert.is_true(err(m[1].weight.grad, g1) <= 1e-6)
    assert.is_true(err(m[4].bias.grad, g4) <= 1e-6)
  end)

  it("records one fused node for the pair", function()
    local m = nn.Sequential{nn.Conv2d(1, 2, 3), nn.ReLU()}
    local y = m(ember.randn(1, 1, 5, 5))
    assert.are.equal("ConvolutionReluBackward", y.grad_fn)
  end)

  it("leaves subclasses and instances with a forward of their own alone", function()
    local Twice = nn.ReLU:extend("TwiceReLUForFusionSpec")
    function Twice:forward(x) return F.relu(x) * 2 end
    local m = nn.Sequential{nn.Conv2d(1, 2, 3), Twice()}
    local x = ember.randn(1, 1, 5, 5)
    assert.are.equal(0, err(m(x), F.relu(m[1](x)) * 2))
    local m2 = nn.Sequential{nn.Conv2d(1, 2, 3), nn.ReLU()}
    m2[2].forward = function(_, t) return t * 3 end
    assert.are.equal(0, err(m2(x), m2[1](x) * 3))
  end)
end)
