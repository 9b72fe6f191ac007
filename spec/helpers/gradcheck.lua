-- gradcheck.lua: compare autograd's gradients with central finite
-- differences, in float64.
--
-- gradcheck(fn, inputs [, opts]) -> true, or false and a message.
--   fn(...) receives the inputs and returns a tensor (any shape).
--   inputs: float64 tensors; those with requires_grad are checked.
-- The check projects the output on a fixed random direction v and compares
-- d(sum(fn(x) * v))/dx from backward with (f(x + h e_i) - f(x - h e_i)) / 2h
-- for every element i of every checked input.
local ember = require "ember"

local M = {}

local function project(out, v)
  return (out * v):sum():item()
end

function M.gradcheck(fn, inputs, opts)
  opts = opts or {}
  local h, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-4
  local out = fn(table.unpack(inputs))
  local v = ember.randn(out:shape(), {dtype = out.dtype})
  for _, x in ipairs(inputs) do
    if ember.is_tensor(x) and x.requires_grad then x.grad = nil end
  end
  ;(out * v):sum():backward()
  for k, x in ipairs(inputs) do
    if ember.is_tensor(x) and x.requires_grad then
      local analytic = x.grad
      if analytic == nil then
        return false, ("input %d: no gradient reached it"):format(k)
      end
      analytic = analytic:contiguous():view(-1)
      local flat = x:detach():view(-1)
      for i = 1, flat:numel() do
        local x0 = flat[i]
        local fp, fm = ember.no_grad(function()
          flat[i] = x0 + h
          local a = project(fn(table.unpack(inputs)), v)
          flat[i] = x0 - h
          local b = project(fn(table.unpack(inputs)), v)
          flat[i] = x0
          return a, b
        end)
        local numeric = (fp - fm) / (2 * h)
        local got = analytic[i]
        if math.abs(got - numeric) > atol + rtol * math.abs(numeric) then
          return false, ("input %d, element %d: backward gives %.10g, finite "
                         .. "differences %.10g"):format(k, i, got, numeric)
        end
      end
    end
  end
  return true
end

--- gradcheck as an assertion: raises with the first mismatch.
function M.check(fn, inputs, opts)
  local ok, msg = M.gradcheck(fn, inputs, opts)
  if not ok then error(msg, 2) end
end

--- A float64 leaf that requires grad, from ember.randn (times scale, plus
-- shift), so that values avoid kinks when asked to.
function M.leaf(shape, scale, shift)
  local t = ember.randn(shape, {dtype = "float64"}) * (scale or 1) + (shift or 0)
  return t:requires_grad_()
end

return M
