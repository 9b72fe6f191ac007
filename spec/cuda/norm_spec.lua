-- CPU/GPU parity of the fused layer_norm, rms_norm and cross entropy
-- (GPU only; on the stand-in plugin without a GPU): forward, and the
-- gradients of x, weight and bias, for rows shorter and longer than a
-- warp's share (the warp and the block kernels), both dtypes, empty inputs.
-- Both devices accumulate in double; the order of the additions differs,
-- so values agree within a few float32 ulps (1e-12 for float64).  Without
-- a CUDA device this file is one pending test that says why
-- (spec/helpers/cuda.lua).
local ember = require "ember"
local F = require("ember.nn").functional
local cuda_helper = require "helpers.cuda"

local function compare(what, dev, cpu)
  cuda_helper.compare(what, dev, cpu, cpu.dtype == "float32" and 2e-5 or 1e-12)
end

-- leaves on both devices with the same values
local function pair(shape, dtype, scale)
  local c = (ember.randn(shape, {dtype = "float64"}) * (scale or 1)):to(dtype)
  local d = c:to("cuda")
  c.requires_grad, d.requires_grad = true, true
  return c, d
end

describe("fused norms and cross entropy on cuda", function()
  if not cuda_helper.available() then return end
  before_each(function() ember.manual_seed(5) end)

  for _, dt in ipairs({"float32", "float64"}) do
    for _, shape in ipairs({{6, 40}, {3, 1500}, {2, 3, 8}, {0, 16}}) do
      for _, op in ipairs({"layer_norm", "rms_norm"}) do
        it(("%s %s [%s]"):format(op, dt, table.concat(shape, ",")), function()
          local n = shape[#shape]
          local xc, xd = pair(shape, dt, 2)
          local wc, wd = pair({n}, dt)
          local bc, bd = pair({n}, dt)
          local gy = ember.randn(shape, {dtype = dt})
          local yc = op == "layer_norm" and ember.layer_norm(xc, 1, wc, bc)
                     or ember.rms_norm(xc, 1, wc)
          local yd = op == "layer_norm" and ember.layer_norm(xd, 1, wd, bd)
                     or ember.rms_norm(xd, 1, wd)
          compare("out", yd, yc)
          ;(yc * gy):sum():backward()
          ;(yd * gy:to("cuda")):sum():backward()
          compare("grad x", xd.grad, xc.grad)
          compare("grad weight", wd.grad, wc.grad)
          if op == "layer_norm" then compare("grad bias", bd.grad, bc.grad) end
        end)
      end
    end
    for _, c in ipairs({{8, 65}, {4, 2000}}) do
      it(("cross_entropy %s [%d,%d]"):format(dt, c[1], c[2]), function()
        local xc, xd = pair(c, dt, 4)
        local t = ember.randint(1, c[2], {c[1]})
        t[2] = -100
        local w = ember.rand(c[2], {dtype = dt}) + 0.5
        for _, red in ipairs({"mean", "sum", "none"}) do
          xc.grad, xd.grad = nil, nil
          local opts = {weight = w, label_smoothing = 0.1, reduction = red}
          local lc = F.cross_entropy(xc, t, opts)
          local ld = F.cross_entropy(xd, t:to("cuda"), {weight = w:to("cuda"),
                                     label_smoothing = 0.1, reduction = red})
          compare("loss " .. red, ld, lc)
          lc:sum():backward()
          ld:sum():backward()
          compare("grad " .. red, xd.grad, xc.grad)
        end
      end)
    end
  end
end)
