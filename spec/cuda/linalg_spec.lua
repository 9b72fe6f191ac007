-- CPU/GPU parity of norm, cdist, normalize, mm, bmm, outer, baddbmm,
-- diagonal, diag, trace and einsum (lua/ember/linalg.lua and the core's
-- diagonal view): every case of spec/reference/linalg_values.lua runs on the
-- CPU and on a copy of its inputs on the device (contiguous and a
-- non-contiguous view made there), in float64 and float32; results must be
-- on the device and agree with the CPU's, and so must the gradients of
-- sum(out * w).
-- Without a CUDA device the file is one pending test that says why.
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local CASES = dofile("spec/reference/linalg_values.lua")

local function input(shape, k, dtype)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local v = {}
  for j = 0, n - 1 do v[j + 1] = ((7 * j + 3 * k) % 11 - 5) / 4 end
  return ember.tensor(v, {dtype = "float64"}):view(shape):to(dtype)
end

local function eval(expr, xs)
  local env = {ember = ember, math = math, x1 = xs[1], x2 = xs[2], x3 = xs[3]}
  return assert(load("return " .. expr, expr, "t", env))()
end

--- y (and the inputs' gradients) for inputs on `device`.
local function run(case, dtype, device, strided)
  local xs = {}
  for k, s in ipairs(case.shapes) do
    local x = input(s, k, dtype):to(device)
    if strided and x:dim() >= 2 then x = x:transpose(1, 2):contiguous():transpose(1, 2) end
    xs[k] = x:detach():requires_grad_(true)
  end
  local y = eval(case.lua, xs)
  local grads = {}
  if y.requires_grad and y:numel() > 0 then
    local w = (ember.arange(1, y:numel() + 1, {dtype = dtype}) / 8):view(y:shape()):to(device)
    ;(y * w):sum():backward()
    for k, x in ipairs(xs) do grads[k] = x.grad end
  end
  return y, grads
end

local function agree(a, b, tol, what)
  assert.are.same(a:shape(), b:shape(), what)
  if a:numel() == 0 then return end
  local d = (a:to("float64") - b:cpu():to("float64")):abs():max():item()
  assert.is_true(d <= tol, ("%s: differs by %g"):format(what, d))
end

describe("linalg on the device", function()
  if not cuda_helper.available() then return end
  for _, case in ipairs(CASES) do
    it(case.lua .. " matches the CPU (float64, float32; contiguous, strided)", function()
      for _, dtype in ipairs({"float64", "float32"}) do
        local tol = dtype == "float64" and 1e-12 or 1e-5
        local y0, g0 = run(case, dtype, "cpu", false)
        for _, strided in ipairs({false, true}) do
          local y1, g1 = run(case, dtype, "cuda", strided)
          assert.are.equal("cuda", y1.device)
          assert.are.equal(dtype, y1.dtype)
          agree(y0, y1, tol, case.lua .. " forward " .. dtype)
          for k, g in pairs(g0) do
            assert.are.equal("cuda", g1[k].device)
            agree(g, g1[k], tol * 10, case.lua .. " gradient " .. k .. " " .. dtype)
          end
        end
      end
    end)
  end
  it("diagonal is a view on the device too", function()
    local a = ember.zeros(3, 3):to("cuda")
    a:diagonal():fill_(2)
    assert.are.equal(6, a:sum():item())
    assert.are.equal(6, a:trace():item())
  end)
end)
