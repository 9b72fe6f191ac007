-- CPU/GPU parity of cumsum, cumprod, cummax and logcumsumexp (GPU only; on
-- the stand-in plugin without a GPU).  Short lines: both kernels
-- accumulate floats in double in the same order, so sums, products, maxima
-- and indices must equal the CPU's exactly; logcumsumexp and gradients
-- (device libm) within a few ulps.  Long lines (the tiled kernel): see
-- their case below.  Without a CUDA device this file is one pending test that
-- says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local compare = cuda_helper.compare

-- |cpu - dev| within 4 ulp * (|scale| + 1), elementwise: the error bound
-- of a fold in another order (ulp: the unit of the dtype's rounding, or
-- of the accumulation's over the line for float64).
local function compare_scaled(what, dev, cpu, scale, ulp)
  assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  local a, b = cpu:reshape(-1):totable(), dev:cpu():reshape(-1):totable()
  local sc = scale:reshape(-1):totable()
  for i = 1, #a do
    assert.is_true(math.abs(a[i] - b[i]) <= 4 * ulp * (math.abs(sc[i]) + 1),
      ("%s: element %d: %.17g vs %.17g"):format(what, i, a[i], b[i]))
  end
end

local function input(shape, dtype)
  local x = ember.randn(shape, {dtype = "float64"}) * 3
  if dtype == "bool" then return x:gt(0) end
  if dtype == "uint8" then return x:abs():to(dtype) end
  return x:to(dtype)
end

describe("scans on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(3) end)

  local SHAPES = {{7}, {5, 7}, {2, 3, 4}, {3, 300, 2}, {0, 4}, {3, 0}, {1, 1}, {}}
  for _, op in ipairs({"cumsum", "cumprod", "cummax", "logcumsumexp"}) do
    local dtypes = op == "logcumsumexp" and {"float32", "float64"}
                   or {"float32", "float64", "int32", "int64", "uint8", "bool"}
    for _, dtype in ipairs(dtypes) do
      it(("%s %s matches the CPU (every dim, transposed views)"):format(op, dtype), function()
        local tol = op == "logcumsumexp" and (dtype == "float32" and 1e-6 or 1e-13) or nil
        for _, shape in ipairs(SHAPES) do
          for dim = 1, math.max(#shape, 1) do
            local x = input(shape, dtype)
            if op == "cumprod" and dtype:sub(1, 5) == "float" then x = x / 3 end
            local d = x:to("cuda")
            local what = ("%s(%s [%s], %d)"):format(op, dtype, table.concat(shape, ","), dim)
            local yc, ic = x[op](x, dim)
            local yd, id = d[op](d, dim)
            compare(what, yd, yc, tol)
            if ic then compare(what .. " indices", id, ic) end
            if #shape >= 2 then
              local xt, dt = x:transpose(1, 2), d:transpose(1, 2)
              compare(what .. " transposed", (dt[op](dt, dim)), (xt[op](xt, dim)), tol)
            end
          end
        end
      end)
    end

    it(op .. " gradients on the device equal the CPU's", function()
      for _, dtype in ipairs({"float32", "float64"}) do
        local x = input({4, 6}, dtype)
        if op == "cumprod" then x = x / 3; x[2][3] = 0 end
        local w = input({4, 6}, dtype)
        local grads = {}
        for _, dev in ipairs({"cpu", "cuda"}) do
          local xg = x:to(dev):detach():requires_grad_()
          local y = xg[op](xg, 2)
          ;(y * w:to(dev)):sum():backward()
          grads[dev] = xg.grad
        end
        compare(op .. " grad " .. dtype, grads.cuda, grads.cpu, dtype == "float32" and 1e-5 or 1e-12)
      end
    end)
  end

  -- Long lines take the tiled kernel (core/cuda/scan.cu), which folds
  -- tiles of 2048 in another order than the CPU: integers and maxima are
  -- still exact; float sums are held to double's rounding before the
  -- result is rounded, scaled by the running sum of |x| (the error bound
  -- of any order), products and logcumsumexp to a few ulps of the result.
  it("long lines (the tiled kernel) match the CPU", function()
    local cases = {{{10000}, 1}, {{3, 4100}, 2}, {{4099, 2}, 1}, {{2, 2048}, 2}, {{2, 2049}, 2}}
    for _, op in ipairs({"cumsum", "cumprod", "cummax", "logcumsumexp"}) do
      local dtypes = op == "logcumsumexp" and {"float32", "float64"}
                     or {"float32", "float64", "int32", "int64", "uint8"}
      for _, dtype in ipairs(dtypes) do
        local float = dtype:sub(1, 5) == "float"
        for _, c in ipairs(cases) do
          local shape, dim = c[1], c[2]
          local x = input(shape, dtype)
          if op == "cumprod" and float then x = ember.rand(shape, {dtype = dtype}) * 0.2 + 0.9 end
          if op == "cummax" and float then x = x:round() end              -- ties
          local what = ("%s(%s [%s], %d)"):format(op, dtype, table.concat(shape, ","), dim)
          local d = x:to("cuda")
          local yc, ic = x[op](x, dim)
          local yd, id = d[op](d, dim)
          if not float or op == "cummax" then
            compare(what, yd, yc)
            if ic then compare(what .. " indices", id, ic) end
          else
            compare_scaled(what, yd, yc, op == "cumsum" and x:abs():cumsum(dim) or yc,
                           dtype == "float32" and 2e-7 or (op == "cumsum" and 1e-14 or 5e-13))
          end
        end
      end
    end
    -- the reverse scan of cumsum's backward, on a long line
    local x = input({3, 5000}, "float64")
    local w = input({3, 5000}, "float64")
    local grads = {}
    for _, dev in ipairs({"cpu", "cuda"}) do
      local xg = x:to(dev):detach():requires_grad_()
      ;(xg:cumsum(2) * w:to(dev)):sum():backward()
      grads[dev] = xg.grad
    end
    compare_scaled("cumsum grad, long rows", grads.cuda, grads.cpu,
                   w:abs():flip(2):cumsum(2):flip(2), 1e-14)
  end)

  it("cumsum's dtype option on the device", function()
    local x = input({3, 5}, "int32")
    compare("cumsum int32 -> float64", x:to("cuda"):cumsum(2, {dtype = "float64"}),
            x:cumsum(2, {dtype = "float64"}))
    compare("cumprod int32 -> int64", x:to("cuda"):cumprod(1), x:cumprod(1))
  end)
end)
