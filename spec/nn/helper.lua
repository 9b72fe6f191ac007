-- spec/nn/helper.lua: loading PyTorch reference values into Ember tensors
-- and comparing results with them (shared by spec/nn/*_spec.lua).
--
-- Tolerance: |got - want| <= tol * max(1, |want|), tol = 1e-5 for float32
-- (the references are the float64 results on float32-rounded inputs, so
-- this is float32 agreement with the true value) and 1e-10 for float64.
local ember = require "ember"

local H = {}

H.ref = require "reference.nn_layers_values"
H.DTYPES = {"float32", "float64"}
H.TOL = {float32 = 1e-5, float64 = 1e-10}

--- A reference tensor {shape, data [, int]} as an Ember tensor.
function H.T(r, dtype)
  assert(type(r) == "table" and r.data, "not a reference tensor")
  local t = ember.tensor(r.data, {dtype = r.int and "int64" or (dtype or "float32")})
  return t:reshape(r.shape)
end

--- A leaf that requires grad.
function H.leaf(r, dtype)
  return H.T(r, dtype):requires_grad_(true)
end

local function shape_str(s) return "[" .. table.concat(s, ",") .. "]" end

--- Assert that tensor got matches reference r (shape and values).
function H.close(got, r, what, tol)
  assert(ember.is_tensor(got), (what or "value") .. ": expected a tensor, got " .. type(got))
  tol = tol or H.TOL[got.dtype] or 1e-5
  local gs = got:shape()
  assert(shape_str(gs) == shape_str(r.shape), ("%s: shape %s, expected %s")
         :format(what or "value", shape_str(gs), shape_str(r.shape)))
  local flat = got:reshape(-1):double():totable()
  for i, want in ipairs(r.data) do
    local a = flat[i]
    if not (math.abs(a - want) <= tol * math.max(1, math.abs(want))) then
      error(("%s: element %d is %.10g, expected %.10g (tolerance %g, %s)")
            :format(what or "value", i, a, want, tol, got.dtype), 2)
    end
  end
end

--- Backpropagate (out * R):sum() (or out itself when 0-d).
function H.backward(out, r)
  if out:dim() == 0 then out:backward() else (out * H.T(r, out.dtype)):sum():backward() end
end

--- The error message of fn(...), which must fail; checks it contains `text`.
function H.fails(text, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error containing: " .. text)
  err = tostring(err)
  assert(err:find(text, 1, true), ("error\n  %s\ndoes not contain\n  %s"):format(err, text))
  return err
end

return H
