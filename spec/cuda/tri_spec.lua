-- CPU/GPU parity of tril and triu (GPU only; on the stand-in plugin without
-- a GPU).  The ops only copy or zero elements, so the device's results,
-- gradients and in-place writes must equal the CPU's exactly, in every
-- dtype, batched, empty and non-contiguous (views made on the device).
-- Without a CUDA device this file is one pending test that says why
-- (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local function exact(what, dev, cpu)
  assert.are.equal("cuda", dev.device:sub(1, 4), what .. ": device")
  assert.are.same(cpu:shape(), dev:shape(), what .. ": shape")
  assert.are.equal(cpu.dtype, dev.dtype, what .. ": dtype")
  assert.are.same(cpu:reshape(-1):totable(), dev:cpu():reshape(-1):totable(),
                  what .. ": values")
end

local function input(shape, dtype)
  local x = ember.randn(shape, {dtype = "float64"}) * 3
  if dtype == "bool" then return x:gt(0) end
  if dtype == "uint8" then return x:abs():to(dtype) end
  return x:to(dtype)
end

describe("tril/triu on cuda", function()
  if not cuda_helper.available() then return end

  local SHAPES = {{5, 7}, {7, 5}, {2, 3, 4}, {2, 1, 33, 40}, {0, 4}, {3, 0}, {1, 1}}
  for _, op in ipairs({"tril", "triu"}) do
    for _, dtype in ipairs({"float32", "float64", "int32", "int64", "uint8", "bool"}) do
      it(("%s %s matches the CPU (values, transposed views, in place)"):format(op, dtype), function()
        for _, shape in ipairs(SHAPES) do
          for _, k in ipairs({-3, -1, 0, 1, 4, math.maxinteger, math.mininteger}) do
            local x = input(shape, dtype)
            local d = x:to("cuda")
            local what = ("%s(%s [%s], %d)"):format(op, dtype, table.concat(shape, ","), k)
            exact(what, ember[op](d, k), ember[op](x, k))
            exact(what .. " transposed", d:transpose(-1, -2)[op](d:transpose(-1, -2), k),
                  x:transpose(-1, -2)[op](x:transpose(-1, -2), k))
            local dv, xv = d:clone():transpose(-1, -2), x:clone():transpose(-1, -2)
            dv[op .. "_"](dv, k)
            xv[op .. "_"](xv, k)
            exact(what .. " in place", dv, xv)
          end
        end
      end)
    end

    it(op .. " gradients on the device equal the CPU's", function()
      for _, dtype in ipairs({"float32", "float64"}) do
        for _, k in ipairs({-1, 0, 2}) do
          local x = input({2, 5, 6}, dtype)
          local v = input({2, 5, 6}, dtype)
          local xc = x:clone():requires_grad_()
          local xd = x:to("cuda"):requires_grad_()
          ;(ember[op](xc, k) * v):sum():backward()
          ;(ember[op](xd, k) * v:to("cuda")):sum():backward()
          exact(op .. " grad", xd.grad, xc.grad)
          -- in place on a non-leaf
          local hc, hd = xc * 2, xd * 2
          hc[op .. "_"](hc, k)
          hd[op .. "_"](hd, k)
          xc.grad, xd.grad = nil, nil
          ;(hc * v):sum():backward()
          ;(hd * v:to("cuda")):sum():backward()
          exact(op .. "_ grad", xd.grad, xc.grad)
        end
      end
    end)
  end

  it("gives the causal mask on the device", function()
    local m = ember.ones(4, 4, {dtype = "bool", device = "cuda"}):tril()
    exact("mask", m, ember.ones(4, 4, {dtype = "bool"}):tril())
  end)

  it("names the function on the device too", function()
    local ok, err = pcall(ember.tril, ember.ones(3):to("cuda"))
    assert.is_false(ok)
    assert.matches("tril: expected a tensor with at least 2 dims, got 1", err, 1, true)
  end)
end)
