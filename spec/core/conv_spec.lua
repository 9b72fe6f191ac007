-- Convolution and pooling: conv2d, max_pool2d, avg_pool2d and their
-- backward kernels, against PyTorch; plus strided inputs, batching and
-- the errors.
--
-- The reference values live in spec/reference/nn_values.lua, written by
-- spec/reference/make_nn_reference.py.  To regenerate them (needs PyTorch,
-- never needed to run this spec):
--
--     /usr/bin/python3 spec/reference/make_nn_reference.py
--
-- Every case runs in float32 and in float64.  The inputs are float32-exact
-- and the references are float64 results, so the float64 run checks the
-- arithmetic almost exactly and the float32 run bounds float32 rounding.
-- Tolerances, per element, with b the reference and a Ember's value:
--   float64: |a - b| <= 1e-12 * max(1, |b|)
--   float32: |a - b| <= 1e-5 * max(1, |b|)  (relative above 1, absolute
--            below; the sums here have at most a few hundred terms of
--            size ~1, so float32 accumulation stays well inside it)
-- Indices (1-based) must be equal; NaN must give NaN.
local ember = require "ember"

local R = dofile("spec/reference/nn_values.lua")

local TOL = {float32 = 1e-5, float64 = 1e-12}
local DTYPES = {"float32", "float64"}

local function build(ref, dtype)
  return ember.tensor(ref.data, {dtype = dtype}):view(ref.shape)
end

local function fmt_shape(s)
  return "[" .. table.concat(s, ",") .. "]"
end

local function fail(msg)
  assert.is_true(false, msg)
end

-- got against a reference tensor {shape, data}; tol nil: exact.
local function check(what, got, ref, tol)
  if not ember.is_tensor(got) then
    fail(what .. ": expected a tensor, got " .. type(got))
  end
  if fmt_shape(got:shape()) ~= fmt_shape(ref.shape) then
    fail(string.format("%s: shape %s, expected %s", what,
                       fmt_shape(got:shape()), fmt_shape(ref.shape)))
  end
  local data = got:reshape(-1):totable()
  local bad, first, worst = 0, nil, 0
  for i, b in ipairs(ref.data) do
    local a, ok = data[i], nil
    if b ~= b then ok = a ~= a
    elseif not tol or b == math.huge or b == -math.huge then ok = a == b
    else
      local err, lim = math.abs(a - b), tol * math.max(1, math.abs(b))
      ok = err <= lim
      if err == err and err / lim > worst then worst = err / lim end
    end
    if not ok then
      bad = bad + 1
      first = first or i
    end
  end
  if bad > 0 then
    fail(string.format("%s: %d of %d elements differ; first at flat index "
                       .. "%d: got %s, expected %s (worst %.3g x tolerance)",
                       what, bad, #data, first, tostring(data[first]),
                       tostring(ref.data[first]), worst))
  end
end

-- max |a - b| <= tol * max(1, max |b|), with tensor ops: for results too
-- big to compare element by element in Lua.
local function close(what, a, b, tol)
  assert.same(b:shape(), a:shape(), what .. ": shapes differ")
  local err = (a - b):abs():max():item()
  local lim = tol * math.max(1, b:abs():max():item())
  assert.is_true(err <= lim, string.format("%s: max error %.3g, tolerance %.3g",
                                           what, err, lim))
end

-- Every element equal (NaN equals NaN): for results that must not depend
-- on the memory layout of the inputs.
local function same(what, a, b)
  check(what, a, {shape = b:shape(), data = b:reshape(-1):totable()})
end

local function case_name(kind, i, c, dtype)
  local parts = {kind, "#" .. i, dtype, "x" .. fmt_shape(c.x.shape)}
  if c.w then parts[#parts + 1] = "w" .. fmt_shape(c.w.shape) end
  if c.kernel then parts[#parts + 1] = "k" .. fmt_shape(c.kernel) end
  local pad = type(c.padding) == "string" and c.padding or fmt_shape(c.padding)
  parts[#parts + 1] = "s" .. fmt_shape(c.stride) .. " p" .. pad
  if c.dilation then parts[#parts + 1] = "d" .. fmt_shape(c.dilation) end
  if c.groups then parts[#parts + 1] = "g" .. c.groups end
  if c.b then parts[#parts + 1] = "bias" end
  if c.ceil_mode then parts[#parts + 1] = "ceil" end
  if c.count_include_pad == false then parts[#parts + 1] = "exclude_pad" end
  return table.concat(parts, " ")
end

-- {======================================================================
-- Against PyTorch
-- =======================================================================

describe("conv2d against PyTorch", function()
  it("has its reference values", function()
    assert.is_true(#R.conv2d >= 40)
  end)
  for i, c in ipairs(R.conv2d) do
    for _, dt in ipairs(DTYPES) do
      it(case_name("conv2d", i, c, dt), function()
        local x, w = build(c.x, dt), build(c.w, dt)
        local b = c.b and build(c.b, dt)
        local y = ember.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)
        check("y", y, c.y, TOL[dt])
        if c.gy then
          local gx, gw, gb = ember.conv2d_backward(build(c.gy, dt), x, w,
            c.stride, c.padding, c.dilation, c.groups)
          check("gx", gx, c.gx, TOL[dt])
          check("gw", gw, c.gw, TOL[dt])
          if c.gb then check("gb", gb, c.gb, TOL[dt]) end
        end
      end)
    end
  end
end)

describe("max_pool2d against PyTorch", function()
  for i, c in ipairs(R.max_pool2d) do
    for _, dt in ipairs(DTYPES) do
      it(case_name("max_pool2d", i, c, dt), function()
        local x = build(c.x, dt)
        local y, idx = ember.max_pool2d(x, c.kernel, c.stride, c.padding,
                                        c.dilation, c.ceil_mode, true)
        check("y", y, c.y, TOL[dt])
        assert.equal("int64", idx.dtype)
        check("indices", idx, c.indices)
        check("gx", ember.max_pool2d_backward(build(c.gy, dt), x, idx),
              c.gx, TOL[dt])
        -- without indices: the same values, one result
        local y2, none = x:max_pool2d(c.kernel, c.stride, c.padding,
                                      c.dilation, c.ceil_mode)
        same("y without indices", y2, y)
        assert.is_nil(none)
      end)
    end
  end
end)

describe("avg_pool2d against PyTorch", function()
  for i, c in ipairs(R.avg_pool2d) do
    for _, dt in ipairs(DTYPES) do
      it(case_name("avg_pool2d", i, c, dt), function()
        local x = build(c.x, dt)
        local y = ember.avg_pool2d(x, c.kernel, c.stride, c.padding,
                                   c.ceil_mode, c.count_include_pad)
        check("y", y, c.y, TOL[dt])
        local gx = ember.avg_pool2d_backward(build(c.gy, dt), x, c.kernel,
          c.stride, c.padding, c.ceil_mode, c.count_include_pad)
        check("gx", gx, c.gx, TOL[dt])
      end)
    end
  end
end)

-- }======================================================================

-- {======================================================================
-- Layouts, batching, defaults
-- =======================================================================

describe("conv2d and pooling on any layout", function()
  before_each(function() ember.manual_seed(7) end)

  it("gives the same results for strided inputs", function()
    -- x and gy built transposed (H and W swapped back by a view), w a
    -- narrowed slice of a bigger tensor: none of them contiguous
    local x = ember.randn(2, 4, 9, 7, {dtype = "float64"}):transpose(3, 4)
    local w = ember.randn(6, 2, 3, 5, {dtype = "float64"}):narrow(4, 2, 3)
    local b = ember.randn(12, {dtype = "float64"}):narrow(1, 4, 6)
    assert.is_false(x:is_contiguous())
    assert.is_false(w:is_contiguous())
    local args = {{2, 1}, {1, 2}, {1, 2}, 2}
    local y = ember.conv2d(x, w, b, table.unpack(args))
    same("conv2d", y, ember.conv2d(x:contiguous(), w:contiguous(),
                                   b:contiguous(), table.unpack(args)))
    local gy = ember.randn(2, 6, y:size(4), y:size(3),
                           {dtype = "float64"}):transpose(3, 4)
    local gx, gw, gb = ember.conv2d_backward(gy, x, w, table.unpack(args))
    local cx, cw, cb = ember.conv2d_backward(gy:contiguous(), x:contiguous(),
                                             w:contiguous(), table.unpack(args))
    same("gx", gx, cx)
    same("gw", gw, cw)
    same("gb", gb, cb)
    local m, i = x:max_pool2d(3, 2, 1, 1, true, true)
    local cm, ci = x:contiguous():max_pool2d(3, 2, 1, 1, true, true)
    same("max_pool2d", m, cm)
    same("indices", i, ci)
    same("avg_pool2d", x:avg_pool2d(3, 2, 1), x:contiguous():avg_pool2d(3, 2, 1))
  end)

  it("treats a 3-D input as one unbatched image", function()
    local x = ember.randn(3, 6, 5)
    local w, b = ember.randn(4, 3, 3, 2), ember.randn(4)
    local y = ember.conv2d(x, w, b, 1, 1)
    assert.same({4, 6, 6}, y:shape())
    same("conv2d", y, ember.conv2d(x:unsqueeze(1), w, b, 1, 1)[1])
    local gy = ember.randn(4, 6, 6)
    local gx, gw, gb = ember.conv2d_backward(gy, x, w, 1, 1, 1, 1)
    local bx, bw, bb = ember.conv2d_backward(gy:unsqueeze(1), x:unsqueeze(1),
                                             w, 1, 1, 1, 1)
    assert.same({3, 6, 5}, gx:shape())
    same("gx", gx, bx[1])
    same("gw", gw, bw)
    same("gb", gb, bb)
    assert.same({3, 3, 2}, x:max_pool2d(2):shape())
    assert.same({3, 2, 1}, x:avg_pool2d(3):shape())
  end)

  it("splits a big batch into chunks without changing the result", function()
    -- 32 channels, 3x3, 48x48: the im2col chunk holds 6 images, so 8
    -- images take two chunks; each image alone takes the one-image path
    local x = ember.randn(8, 32, 48, 48)
    local w, b = ember.randn(5, 32, 3, 3), ember.randn(5)
    local y = ember.conv2d(x, w, b, 1, 1)
    local gy = ember.randn(8, 5, 48, 48)
    local gx, gw, gb = ember.conv2d_backward(gy, x, w, 1, 1, 1, 1)
    local sw, sb = ember.zeros(5, 32, 3, 3), ember.zeros(5)
    for n = 1, 8 do
      local xn = x:narrow(1, n, 1)
      close("y image " .. n, y:narrow(1, n, 1), ember.conv2d(xn, w, b, 1, 1), 1e-5)
      local gxn, gwn, gbn = ember.conv2d_backward(gy:narrow(1, n, 1), xn, w,
                                                  1, 1, 1, 1)
      close("gx image " .. n, gx:narrow(1, n, 1), gxn, 1e-5)
      sw, sb = sw + gwn, sb + gbn
    end
    close("gw", gw, sw, 1e-5)
    close("gb", gb, sb, 1e-5)
  end)

  it("cuts one big image into bands of rows without changing the result", function()
    -- 16 channels, 3x3, 200x200: one image's im2col would exceed the
    -- chunk, so it runs in bands.  Half the channels fit whole, and a
    -- convolution is the sum of the convolutions of its channel halves.
    local x = ember.randn(1, 16, 200, 200, {dtype = "float64"})
    local w = ember.randn(4, 16, 3, 3, {dtype = "float64"})
    local y = ember.conv2d(x, w, nil, 1, 1)
    local x1, x2 = x:narrow(2, 1, 8), x:narrow(2, 9, 8)
    local w1, w2 = w:narrow(2, 1, 8), w:narrow(2, 9, 8)
    close("y", y, ember.conv2d(x1, w1, nil, 1, 1) + ember.conv2d(x2, w2, nil, 1, 1),
          1e-12)
    local gy = ember.randn(1, 4, 200, 200, {dtype = "float64"})
    local gx, gw = ember.conv2d_backward(gy, x, w, 1, 1, 1, 1)
    local gx1, gw1 = ember.conv2d_backward(gy, x1, w1, 1, 1, 1, 1)
    local gx2, gw2 = ember.conv2d_backward(gy, x2, w2, 1, 1, 1, 1)
    close("gx", gx, ember.cat({gx1, gx2}, 2), 1e-12)
    close("gw", gw, ember.cat({gw1, gw2}, 2), 1e-12)
  end)

  it("computes a big 1x1 convolution as a matrix product", function()
    -- [8,8] weights over 700x800 pixels: bands of the pointwise path,
    -- where x itself is the im2col matrix
    local x = ember.randn(1, 8, 700, 800, {dtype = "float64"})
    local w = ember.randn(8, 8, 1, 1, {dtype = "float64"})
    local wm, xm = w:view(8, 8), x:view(8, -1)
    close("y", ember.conv2d(x, w), wm:matmul(xm):view(1, 8, 700, 800), 1e-12)
    local gy = ember.randn(1, 8, 700, 800, {dtype = "float64"})
    local gx, gw = ember.conv2d_backward(gy, x, w, 1, 0, 1, 1)
    local gym = gy:view(8, -1)
    close("gx", gx, wm:t():matmul(gym):view(1, 8, 700, 800), 1e-12)
    close("gw", gw, gym:matmul(xm:t()):view(8, 8, 1, 1), 1e-12)
  end)

  it("accepts an empty batch", function()
    local x, w = ember.zeros(0, 2, 5, 5), ember.ones(3, 2, 3, 3)
    assert.same({0, 3, 3, 3}, ember.conv2d(x, w):shape())
    local gx, gw, gb = ember.conv2d_backward(ember.zeros(0, 3, 3, 3), x, w,
                                             1, 0, 1, 1)
    assert.same({0, 2, 5, 5}, gx:shape())
    assert.equal(0, gw:abs():sum():item())
    assert.equal(0, gb:abs():sum():item())
    assert.same({0, 2, 2, 2}, x:max_pool2d(2):shape())
    assert.same({0, 2, 2, 2}, x:avg_pool2d(2):shape())
  end)

  it("has PyTorch's defaults", function()
    local x = ember.randn(1, 2, 6, 6)
    local w = ember.randn(2, 2, 3, 3)
    same("conv2d defaults", x:conv2d(w), ember.conv2d(x, w, nil, 1, 0, 1, 1))
    same("valid", x:conv2d(w, nil, 1, "valid"), x:conv2d(w))
    assert.same({1, 2, 6, 6}, x:conv2d(w, nil, 1, "same"):shape())
    same("max stride = kernel", x:max_pool2d(2), x:max_pool2d(2, 2, 0, 1, false))
    same("avg stride = kernel", x:avg_pool2d(3), x:avg_pool2d({3, 3}, {3, 3}, 0,
                                                              false, true))
  end)

  it("uses -inf for max pooling padding and zero for average padding", function()
    local x = ember.full({1, 1, 2, 2}, -5)
    local m = x:max_pool2d(2, 1, 1)
    assert.same({{{{-5, -5, -5}, {-5, -5, -5}, {-5, -5, -5}}}}, m:totable())
    local a = x:avg_pool2d(2, 1, 1)
    assert.same({{{{-1.25, -2.5, -1.25}, {-2.5, -5, -2.5}, {-1.25, -2.5, -1.25}}}},
                a:totable())
    local e = x:avg_pool2d(2, 1, 1, false, false)
    assert.same({{{{-5, -5, -5}, {-5, -5, -5}, {-5, -5, -5}}}}, e:totable())
  end)
end)

-- }======================================================================

-- {======================================================================
-- Errors
-- =======================================================================

describe("conv2d and pooling errors", function()
  local x = ember.randn(2, 4, 6, 6)
  local w = ember.randn(3, 4, 3, 3)

  local function err(pattern, fn, ...)
    local ok, msg = pcall(fn, ...)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.is_truthy(tostring(msg):find(pattern, 1, true),
                     "expected '" .. pattern .. "' in: " .. tostring(msg))
  end

  it("reports bad conv2d inputs", function()
    err("conv2d: expected a 3-D or 4-D input, got 2-D", ember.conv2d,
        ember.randn(6, 6), w)
    err("conv2d: expected a 4-D weight", ember.conv2d, x, ember.randn(3, 4, 3))
    err("conv2d: weight [3,2,3,3] with groups=1 expects 2 input channels, "
        .. "but input [2,4,6,6] has 4", ember.conv2d, x, ember.randn(3, 2, 3, 3))
    err("conv2d: input channels (4) are not divisible by groups (3)",
        ember.conv2d, x, ember.randn(3, 1, 3, 3), nil, 1, 0, 1, 3)
    err("conv2d: output channels (3) are not divisible by groups (2)",
        ember.conv2d, x, ember.randn(3, 2, 3, 3), nil, 1, 0, 1, 2)
    err("conv2d: groups must be positive, got 0", ember.conv2d, x, w, nil, 1,
        0, 1, 0)
    err("conv2d: kernel 7x7 (7x7 with dilation) is larger than the padded "
        .. "input 6x6", ember.conv2d, x, ember.randn(3, 4, 7, 7))
    err("conv2d: kernel 3x3 (5x5 with dilation) is larger than the padded "
        .. "input 4x4", ember.conv2d, ember.randn(1, 4, 4, 4), w, nil, 1, 0, 2)
    err("conv2d: stride must be positive, got {0, 1}", ember.conv2d, x, w,
        nil, {0, 1})
    err("conv2d: dilation must be positive, got {-1, -1}", ember.conv2d, x, w,
        nil, 1, 0, -1)
    err("conv2d: padding must be non-negative, got {1, -1}", ember.conv2d, x,
        w, nil, 1, {1, -1})
    err("conv2d: expected a bias of shape [3], got [4]", ember.conv2d, x, w,
        ember.randn(4))
    err("conv2d: expected a float32 or float64 input, got int64", ember.conv2d,
        ember.ones(1, 4, 6, 6, {dtype = "int64"}), w)
    err("conv2d: weight is float64 but input is float32", ember.conv2d, x,
        w:double())
    err("conv2d: bias is float64 but input is float32", ember.conv2d, x, w,
        ember.randn(3, {dtype = "float64"}))
    err("conv2d: input [2,0,6,6] has an empty channel or spatial dimension",
        ember.conv2d, ember.randn(2, 0, 6, 6), ember.randn(3, 0, 3, 3))
    err("conv2d: weight [0,4,3,3] has an empty dimension", ember.conv2d, x,
        ember.randn(0, 4, 3, 3))
    err("conv2d: padding='same' is not supported for strided convolutions",
        ember.conv2d, x, w, nil, 2, "same")
    err("conv2d: padding must be an integer, {h, w}, 'valid' or 'same', "
        .. "got 'full'", ember.conv2d, x, w, nil, 1, "full")
    err("conv2d: stride must be an integer or a pair {h, w} of integers",
        ember.conv2d, x, w, nil, {1, 2, 3})
    err("conv2d: stride must be an integer or a pair {h, w} of integers",
        ember.conv2d, x, w, nil, 1.5)
    err("conv2d: groups must be an integer", ember.conv2d, x, w, nil, 1, 0, 1,
        "two")
    err("bad argument #2", ember.conv2d, x, "w")
    err("bad argument #3", ember.conv2d, x, w, 3)
  end)

  it("reports bad conv2d_backward inputs", function()
    err("conv2d_backward: expected grad_output of shape [2,3,4,4], got "
        .. "[2,3,5,5]", ember.conv2d_backward, ember.randn(2, 3, 5, 5), x, w,
        1, 0, 1, 1)
    err("conv2d_backward: grad_output is float64 but input is float32",
        ember.conv2d_backward, ember.randn(2, 3, 4, 4, {dtype = "float64"}),
        x, w, 1, 0, 1, 1)
    err("conv2d_backward: expected a 3-D or 4-D input, got 5-D",
        ember.conv2d_backward, ember.randn(2, 3, 4, 4), x:unsqueeze(1), w,
        1, 0, 1, 1)
  end)

  it("reports bad pooling inputs", function()
    err("max_pool2d: expected a 3-D or 4-D input, got 2-D", ember.max_pool2d,
        ember.randn(6, 6), 2)
    err("avg_pool2d: expected a 3-D or 4-D input, got 5-D", ember.avg_pool2d,
        x:unsqueeze(1), 2)
    err("max_pool2d: padding {2, 2} must be at most half the kernel size "
        .. "{3, 3}", ember.max_pool2d, x, 3, 1, 2)
    err("avg_pool2d: padding {0, 2} must be at most half the kernel size "
        .. "{2, 2}", ember.avg_pool2d, x, 2, 1, {0, 2})
    err("max_pool2d: kernel_size must be positive, got {0, 2}",
        ember.max_pool2d, x, {0, 2})
    err("max_pool2d: stride must be positive, got {-1, -1}", ember.max_pool2d,
        x, 2, -1)
    err("max_pool2d: dilation must be positive, got {0, 0}", ember.max_pool2d,
        x, 2, 2, 0, 0)
    err("avg_pool2d: padding must be non-negative, got {-1, -1}",
        ember.avg_pool2d, x, 2, 2, -1)
    err("max_pool2d: input [2,4,6,6] is too small for the window: the output "
        .. "would be 0x0", ember.max_pool2d, x, 7)
    err("avg_pool2d: expected a float32 or float64 input, got uint8",
        ember.avg_pool2d, ember.ones(1, 2, 4, 4, {dtype = "uint8"}), 2)
    err("max_pool2d: kernel_size is required", ember.max_pool2d, x)
    err("max_pool2d: ceil_mode must be a boolean, got number",
        ember.max_pool2d, x, 2, 2, 0, 1, 1)
    err("avg_pool2d: count_include_pad must be a boolean, got string",
        ember.avg_pool2d, x, 2, 2, 0, false, "yes")
  end)

  it("reports bad pooling backward inputs", function()
    local y, idx = x:max_pool2d(2, 2, 0, 1, false, true)
    err("max_pool2d_backward: expected int64 indices on cpu, got float32 on "
        .. "cpu", ember.max_pool2d_backward, y, x, idx:float())
    err("max_pool2d_backward: expected indices of shape [2,4,3,3], got "
        .. "[2,4,3,2]", ember.max_pool2d_backward, y, x, idx:narrow(4, 1, 2))
    err("max_pool2d_backward: grad_output [2,3,3,3] does not match input "
        .. "[2,4,6,6]", ember.max_pool2d_backward, y:narrow(2, 1, 3), x,
        idx:narrow(2, 1, 3))
    local bad = idx:clone()
    bad[1][1][1][1] = 37
    err("max_pool2d_backward: index 37 is out of range for an input plane "
        .. "of 36 elements (6x6)", ember.max_pool2d_backward, y, x, bad)
    bad[1][1][1][1] = 0
    err("max_pool2d_backward: index 0 is out of range",
        ember.max_pool2d_backward, y, x, bad)
    err("avg_pool2d_backward: expected grad_output of shape [2,4,3,3], got "
        .. "[2,4,2,2]", ember.avg_pool2d_backward, ember.randn(2, 4, 2, 2), x, 2)
  end)

  it("leaves the inputs untouched on error", function()
    local before = x:clone()
    pcall(ember.conv2d, x, ember.randn(3, 4, 9, 9))
    pcall(ember.max_pool2d, x, 3, 1, 2)
    assert.is_true(x:equal(before))
  end)
end)

-- }======================================================================
