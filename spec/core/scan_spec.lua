-- cumsum, cumprod, cummax, logcumsumexp (core/ops/scan.c): forward values,
-- indices and gradients against PyTorch (spec/reference/scan_values.lua,
-- written by spec/reference/make_scan_reference.py): every dtype, the
-- dtype option, 0-d, empty and non-contiguous inputs, zeros in cumprod,
-- ties and NaN in cummax, infinities in logcumsumexp; then the errors.
-- Integer results and cummax are exact; float results within a few ulps
-- (PyTorch and Ember both accumulate floats in double on the CPU).
local ember = require "ember"

local cases = dofile("spec/reference/scan_values.lua")

local function build(c, data, dtype, shape)
  local t = ember.tensor(data, {dtype = dtype or c.dtype}):view(shape or c.shape)
  if c.transpose then t = t:transpose(-1, -2) end
  return t
end

local function close(what, got, shape, dtype, expected)
  assert.are.same(shape, got:shape(), what .. ": shape")
  assert.are.equal(dtype, got.dtype, what .. ": dtype")
  local vals = got:reshape(-1):totable()
  assert.are.equal(#expected, #vals, what .. ": count")
  local tol = dtype == "float32" and 2e-6 or 1e-12
  for i, e in ipairs(expected) do
    local v = vals[i]
    if dtype ~= "float32" and dtype ~= "float64" then
      assert.are.equal(e, v, ("%s: element %d"):format(what, i))
    elseif e ~= e then
      assert.is_true(v ~= v, ("%s: element %d is %s, expected NaN"):format(what, i, tostring(v)))
    elseif e == math.huge or e == -math.huge then
      assert.are.equal(e, v, ("%s: element %d"):format(what, i))
    else
      assert.is_true(math.abs(v - e) <= tol * math.max(1, math.abs(e)),
        ("%s: element %d is %.17g, expected %.17g"):format(what, i, v, e))
    end
  end
end

local function name(c)
  return ("%s dim=%d %s [%s]%s%s"):format(c.op, c.dim, c.dtype, table.concat(c.shape, ","),
    c.transpose and " transposed" or "", c.opt and (" dtype=" .. c.opt) or "")
end

local function call(f, x, c)
  if c.op == "cummax" then return f(x, c.dim) end
  if c.opt then return f(x, c.dim, {dtype = c.opt}) end
  return f(x, c.dim)
end

describe("scans against PyTorch", function()
  for _, c in ipairs(cases) do
    it(name(c), function()
      local x = build(c, c.data)
      if c.transpose then assert.is_false(x:is_contiguous()) end
      local y, i = call(ember[c.op], x, c)
      close("function", y, c.out_shape, c.out_dtype, c.out)
      local ym, im = call(x[c.op], x, c)
      close("method", ym, c.out_shape, c.out_dtype, c.out)
      if c.idx then
        close("indices", i, c.out_shape, "int64", c.idx)
        close("method indices", im, c.out_shape, "int64", c.idx)
      end
      if c.grad then
        local xg = build(c, c.data):detach():requires_grad_()
        local w = ember.tensor(c.w, {dtype = c.out_dtype}):view(c.out_shape)
        local yg = call(ember[c.op], xg, c)
        ;(yg * w):sum():backward()
        close("grad", xg.grad, c.out_shape, c.dtype, c.grad)
      end
    end)
  end
end)

describe("scans", function()
  it("name their backward nodes", function()
    local x = ember.tensor({1, 2, 3}, {dtype = "float64"}):requires_grad_()
    assert.are.equal("CumsumBackward", x:cumsum(1).grad_fn)
    assert.are.equal("CumprodBackward", x:cumprod(1).grad_fn)
    assert.are.equal("CummaxBackward", (x:cummax(1)).grad_fn)
    assert.are.equal("LogcumsumexpBackward", x:logcumsumexp(1).grad_fn)
  end)

  it("are O(n): a long row scans at once", function()
    local n = 200000
    local y = ember.ones({n}, {dtype = "int64"}):cumsum(1)
    assert.are.equal(n, y[n])
    local v, i = ember.arange(n):cummax(1)
    assert.are.equal(n, i[n])
  end)

  -- With fewer units of work than threads, core/cpu/scan.c cuts a long
  -- line into chunks (reduce, then scan): integers, maxima and indices
  -- must be the one-thread results exactly, float sums within double's
  -- rounding before the result is rounded (scaled by the running sum of
  -- |x|), products and logcumsumexp within a few ulps of the result.
  it("long lines cut among threads give the one-thread results", function()
    local saved = ember.get_num_threads()
    local cases = {{{100003}, 1}, {{70001, 3}, 1}, {{2, 50000}, 2}}
    ember.manual_seed(5)
    for _, op in ipairs({"cumsum", "cumprod", "cummax", "logcumsumexp"}) do
      local dtypes = op == "logcumsumexp" and {"float32", "float64"}
                     or {"float32", "float64", "int32", "int64", "uint8"}
      for _, dtype in ipairs(dtypes) do
        local float = dtype:sub(1, 5) == "float"
        for _, c in ipairs(cases) do
          local shape, dim = c[1], c[2]
          local x = (ember.randn(shape, {dtype = "float64"}) * 3)
          if op == "cumprod" and float then x = ember.rand(shape, {dtype = "float64"}) * 0.2 + 0.9 end
          if op == "cummax" then
            x = x:round()                                    -- ties
            if float then x = x:masked_fill(ember.rand(shape):lt(0.001), 0 / 0) end
          end
          x = dtype == "uint8" and x:abs():to(dtype) or x:to(dtype)
          local what = ("%s(%s [%s], %d)"):format(op, dtype, table.concat(shape, ","), dim)
          ember.set_num_threads(1)
          local y1, i1 = x[op](x, dim)
          ember.set_num_threads(6)
          local y4, i4 = x[op](x, dim)
          ember.set_num_threads(saved)
          if i1 then assert.are.same(i1:reshape(-1):totable(), i4:reshape(-1):totable(), what) end
          local a, b = y1:reshape(-1):totable(), y4:reshape(-1):totable()
          local scale = op == "cumsum" and x:abs():double():cumsum(dim):reshape(-1):totable() or a
          local ulp = dtype == "float32" and 2e-7 or 1e-14
          for k = 1, #a do
            local ok = a[k] == b[k] or (a[k] ~= a[k] and b[k] ~= b[k]) or
                       (float and op ~= "cummax" and math.abs(a[k] - b[k]) <= 4 * ulp * (math.abs(scale[k]) + 1))
            if not ok then
              error(("%s: element %d: %.17g vs %.17g"):format(what, k, a[k], b[k]))
            end
          end
        end
      end
    end
    -- the reverse scan of cumsum's backward, on a long line
    local x = ember.randn({100003}, {dtype = "float64"}):requires_grad_()
    local w = ember.randn({100003}, {dtype = "float64"})
    local g = {}
    for _, t in ipairs({1, 6}) do
      ember.set_num_threads(t)
      x.grad = nil
      ;(x:cumsum(1) * w):sum():backward()
      g[t] = x.grad:totable()
    end
    ember.set_num_threads(saved)
    local scale = w:abs():flip(1):cumsum(1):flip(1):totable()
    for k = 1, #g[1] do
      assert.is_true(math.abs(g[1][k] - g[6][k]) <= 4e-14 * (scale[k] + 1), "grad " .. k)
    end
  end)

  it("integers wrap as PyTorch's int64 does", function()
    local big = ember.tensor({math.maxinteger, 1}, {dtype = "int64"})
    assert.are.equal(math.mininteger, big:cumsum(1)[2])
  end)

  it("accumulate bool and integers in int64, keep floats", function()
    for _, dt in ipairs{"bool", "uint8", "int32", "int64"} do
      assert.are.equal("int64", ember.ones({3}, {dtype = dt}):cumsum(1).dtype)
      assert.are.equal("int64", ember.ones({3}, {dtype = dt}):cumprod(1).dtype)
      assert.are.equal(dt, (ember.ones({3}, {dtype = dt}):cummax(1)).dtype)
    end
    assert.are.equal("float32", ember.ones({3}):cumsum(1).dtype)
  end)

  describe("errors", function()
    local x = ember.ones({2, 3})
    it("a dim out of range names the function", function()
      for _, op in ipairs{"cumsum", "cumprod", "cummax", "logcumsumexp"} do
        assert.has_error(function() x[op](x, 3) end,
          op .. ": dimension 3 out of range for a 2-d tensor (expected 1..2)")
        assert.has_error(function() x[op](x, -3) end,
          op .. ": dimension -3 out of range for a 2-d tensor (expected 1..2)")
      end
    end)
    it("the dim is required", function()
      assert.has_error(function() x:cumsum() end)
      assert.has_error(function() ember.cummax(x) end)
    end)
    it("logcumsumexp takes floats only", function()
      assert.has_error(function() ember.ones({3}, {dtype = "int64"}):logcumsumexp(1) end,
        "logcumsumexp: expected a float tensor, got int64")
    end)
    it("no accumulation in bool; an unknown dtype; options must be a table", function()
      assert.has_error(function() x:cumsum(1, {dtype = "bool"}) end,
        "cumsum: cannot accumulate in dtype bool")
      assert.has_error(function() x:cumprod(1, {dtype = "quarter"}) end)
      assert.has_error(function() x:cumsum(1, "float64") end)
    end)
  end)
end)
