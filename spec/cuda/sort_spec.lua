-- CPU/GPU parity of sort, argsort, topk, kthvalue, median and unique (GPU
-- only; on the stand-in plugin without a GPU).  Both kernels order by the
-- same keys (core/sort_keys.h) and are stable, so values and indices must
-- equal the CPU's exactly, ties and NaN included; gradients too (they are
-- scatters of g).  Without a CUDA device this file is one pending test
-- that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local function same(what, dev, cpu)
  assert.are.equal("cuda", dev.device:sub(1, 4), what .. ": device")
  assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  assert.are.equal(cpu.dtype, dev.dtype, what .. ": dtype")
  local a, b = cpu:reshape(-1):totable(), dev:cpu():reshape(-1):totable()
  for i = 1, #a do
    if a[i] ~= a[i] then
      assert.is_true(b[i] ~= b[i], ("%s: element %d: NaN vs %s"):format(what, i, tostring(b[i])))
    else
      assert.are.equal(a[i], b[i], ("%s: element %d"):format(what, i))
    end
  end
end

local function input(shape, dtype)
  local x = (ember.randn(shape, {dtype = "float64"}) * 3):round()
  if dtype == "bool" then return x:gt(0) end
  if dtype == "uint8" then return x:abs():to(dtype) end
  if dtype == "float32" or dtype == "float64" then
    x = ember.randn(shape, {dtype = dtype})
    if x:numel() > 3 then x:view(-1)[3] = 0 / 0 end
    return x
  end
  return x:to(dtype)
end

describe("sorting on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(5) end)

  local SHAPES = {{7}, {5, 7}, {2, 3, 4}, {3, 300, 2}, {2, 5000}, {0, 4}, {3, 0}, {1, 1}, {}}
  for _, dtype in ipairs{"float32", "float64", "int32", "int64", "uint8", "bool"} do
    for _, shape in ipairs(SHAPES) do
      local label = ("%s [%s]"):format(dtype, table.concat(shape, ","))
      it("sort, argsort and unique " .. label, function()
        local x = input(shape, dtype)
        local g = x:cuda()
        for _, d in ipairs(#shape > 0 and {1, -1} or {1}) do
          for _, desc in ipairs{false, true} do
            local v, i = x:sort(d, {descending = desc})
            local gv, gi = g:sort(d, {descending = desc})
            same("values", gv, v)
            same("indices", gi, i)
            same("argsort", g:argsort(d, {descending = desc}), i)
          end
        end
        local u, inv, cnt = x:unique({return_inverse = true, return_counts = true})
        local gu, ginv, gcnt = g:unique({return_inverse = true, return_counts = true})
        same("unique", gu, u)
        same("inverse", ginv, inv)
        same("counts", gcnt, cnt)
      end)
      if dtype ~= "bool" then
        it("topk, kthvalue, median " .. label, function()
          local x = input(shape, dtype)
          local g = x:cuda()
          local d = #shape > 0 and -1 or 1
          local n = #shape > 0 and shape[#shape] or 1
          for _, k in ipairs{0, math.min(1, n), math.min(3, n), n} do
            for _, largest in ipairs{true, false} do
              local v, i = x:topk(k, d, {largest = largest})
              local gv, gi = g:topk(k, d, {largest = largest})
              same("topk values", gv, v)
              same("topk indices", gi, i)
            end
          end
          if n > 0 then
            local v, i = x:kthvalue(n, d, {keepdim = true})
            local gv, gi = g:kthvalue(n, d, {keepdim = true})
            same("kthvalue values", gv, v)
            same("kthvalue indices", gi, i)
            v, i = x:median(d)
            gv, gi = g:median(d)
            same("median values", gv, v)
            same("median indices", gi, i)
          end
          if x:numel() > 0 then same("median", g:median(), x:median()) end
        end)
      end
    end
  end

  it("gradients flow back through the indices as on the CPU", function()
    local x = ember.randn(4, 6, {dtype = "float64", requires_grad = true})
    local g = x:detach():cuda():requires_grad_()
    local w = ember.randn(4, 2, {dtype = "float64"})
    ;((x:topk(2, 2)) * w):sum():backward()
    ;((g:topk(2, 2)) * w:cuda()):sum():backward()
    same("topk grad", g.grad, x.grad)
    x.grad, g.grad = nil, nil
    x:median():backward()
    g:median():backward()
    same("median grad", g.grad, x.grad)
  end)
end)
