-- CPU/GPU parity of nonzero, masked_select, masked_scatter(_), take and
-- scatter(_) with every reduce (GPU only; on the stand-in plugin without
-- a GPU), their gradients, and bad indices reported by the next sync
-- (the deferred-error mechanism).  Reductions over repeated indices run
-- atomically on a GPU, so float sums and products are compared within a
-- few ulps; everything else exactly.  Without a CUDA device this file is
-- one pending test that says why (spec/helpers/cuda.lua).
local ember = require "ember"
local cuda_helper = require "helpers.cuda"

local compare = cuda_helper.compare

local function input(shape, dtype)
  local x = ember.randn(shape, {dtype = "float64"}) * 3
  if dtype == "bool" then return x:gt(0) end
  if dtype == "uint8" then return x:abs():to(dtype) end
  if dtype:sub(1, 3) == "int" then return x:round():to(dtype) end
  return x:to(dtype)
end

describe("selection by mask and index writes on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(5) end)
  local DTYPES = {"float32", "float64", "int32", "int64", "uint8", "bool"}

  it("nonzero, masked_select, masked_scatter and take match the CPU", function()
    for _, dtype in ipairs(DTYPES) do
      for _, shape in ipairs({{7}, {5, 7}, {2, 3, 4}, {0, 4}, {300, 3}}) do
        local x = input(shape, dtype)
        local d = x:to("cuda")
        local what = ("%s [%s]"):format(dtype, table.concat(shape, ","))
        compare("nonzero " .. what, d:nonzero(), x:nonzero())
        local m = input(shape, "bool")
        compare("masked_select " .. what, d:masked_select(m:to("cuda")), x:masked_select(m))
        local src = input({x:numel() + 1}, dtype)
        compare("masked_scatter " .. what, d:masked_scatter(m:to("cuda"), src:to("cuda")),
                x:masked_scatter(m, src))
        if #shape >= 2 then
          local xt, dt = x:transpose(1, 2), d:transpose(1, 2)
          compare("nonzero transposed " .. what, dt:nonzero(), xt:nonzero())
        end
        local n = x:numel()
        if n > 0 then
          local idx = ember.randint(1, n, 4, 3, {dtype = "int64"})
          compare("take " .. what, d:take(idx:to("cuda")), x:take(idx))
        end
      end
    end
  end)

  for _, reduce in ipairs({"none", "sum", "prod", "amax", "amin", "mean"}) do
    it("scatter reduce=" .. reduce .. " matches the CPU", function()
      for _, dtype in ipairs(DTYPES) do
        if reduce == "none" or (dtype ~= "bool") then
          for dim = 1, 2 do
            local x = input({30, 40}, dtype)
            if reduce == "prod" and dtype:sub(1, 5) == "float" then x = x / 3 end
            local idx = reduce == "none"
              and (dim == 1 and ember.randperm(30):view(30, 1):expand(30, 40):contiguous()
                   or ember.randperm(40):view(1, 40):expand(30, 40):contiguous())
              or ember.randint(1, dim == 1 and 30 or 40, 30, 40, {dtype = "int64"})
            local src = input({30, 40}, dtype)
            if reduce == "prod" and dtype:sub(1, 5) == "float" then src = src / 3 end
            local opts = reduce ~= "none" and {reduce = reduce} or nil
            local tol = (dtype:sub(1, 5) == "float" and (reduce == "sum" or reduce == "prod"
                         or reduce == "mean")) and (dtype == "float32" and 1e-5 or 1e-12) or nil
            compare(("scatter %s %s dim %d"):format(reduce, dtype, dim),
                    x:to("cuda"):scatter(dim, idx:to("cuda"), src:to("cuda"), opts),
                    x:scatter(dim, idx, src, opts), tol)
          end
        end
      end
    end)
  end

  it("gradients on the device equal the CPU's", function()
    for _, reduce in ipairs({"none", "sum", "mean", "prod", "amax", "amin"}) do
      local x, s = input({4, 5}, "float64"), input({4, 5}, "float64")
      local idx = reduce == "none" and ember.tensor({{2, 1, 3, 4, 1}, {1, 2, 1, 3, 2}}, {dtype = "int64"})
                  or ember.randint(1, 4, 2, 5, {dtype = "int64"})
      local m = input({4, 5}, "bool")
      local grads = {}
      for _, dev in ipairs({"cpu", "cuda"}) do
        local xg = x:to(dev):detach():requires_grad_()
        local sg = s:to(dev):detach():requires_grad_()
        local opts = reduce ~= "none" and {reduce = reduce} or nil
        local y = xg:scatter(1, idx:to(dev), sg:narrow(1, 1, 2), opts)
        local z = y:masked_select(m:to(dev)):sum() + xg:take(idx:to(dev)):sum()
                  + xg:masked_scatter(m:to(dev), sg):sum()
        z:backward()
        grads[dev] = {xg.grad, sg.grad}
      end
      compare(reduce .. " grad t", grads.cuda[1], grads.cpu[1], 1e-12)
      compare(reduce .. " grad src", grads.cuda[2], grads.cpu[2], 1e-12)
    end
  end)

  it("reports a bad index at the next sync, with the CPU's message", function()
    local d = ember.zeros(2, 3):to("cuda")
    local bad = ember.tensor({{1, 7}}, {dtype = "int64"}):to("cuda")
    local ok, e = pcall(function() return d:take(bad):cpu() end)
    assert.is_false(ok)
    assert.is_truthy(tostring(e):find("take: index 7 is out of range for a tensor of 6 elements", 1, true))
    ok, e = pcall(function() return d:scatter(2, bad, 1):cpu() end)
    assert.is_false(ok)
    assert.is_truthy(tostring(e):find("scatter: index 7 is out of range for dimension 2 of size 3", 1, true))
  end)
end)
