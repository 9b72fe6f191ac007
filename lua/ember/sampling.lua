--- ember.sampling: Bernoulli draws, composed of a uniform draw and a
-- comparison, so they run on every device those run on and take the
-- {generator = g} option as every random function does.  A draw uses one
-- uniform per element of the result: the generator's counter moves by its
-- numel, and the 0/1 values are those of `u < p` for u = rand_like.
-- ember.multinomial, ember.Generator and the option itself are in the
-- bindings (bindings/lua_data.c).
local ember = require "ember"
local check = require "ember.check"

local T = ember.Tensor

local KNOWN = {generator = true}

local function check_tensor(name, t, what)
  if not ember.is_tensor(t) then
    error(("%s: expected a tensor as %s, got %s"):format(name, what, check.type_name(t)), 3)
  end
end

--- p must hold probabilities: every element in [0, 1] (NaN is not).
local function check_probs(name, p)
  if type(p) == "number" then
    if not (p >= 0 and p <= 1) then
      error(("%s: expects p to be in [0, 1], but got p=%s"):format(name, tostring(p)), 3)
    end
    return
  end
  check_tensor(name, p, "p")
  if not p.dtype:match("^float") and not p.dtype:match("^bfloat") then
    error(("%s: expected a float tensor of probabilities, got %s"):format(name, p.dtype), 3)
  end
  if p:numel() > 0 and not p:ge(0):logical_and(p:le(1)):all():item() then
    error(("%s: expects all elements of p to be in [0, 1] (a NaN is not)"):format(name), 3)
  end
end

--- ember.bernoulli(p [, {generator = g}]) -> 0/1 of p's dtype, shape and
-- device: 1 with probability p[i].
function ember.bernoulli(p, opts)
  check_tensor("bernoulli", p, "argument 1")
  opts = check.options("bernoulli", opts, KNOWN)
  check_probs("bernoulli", p)
  local u = ember.rand_like(p, {generator = opts.generator})
  return u:lt(p):to(p.dtype)
end
T.bernoulli = ember.bernoulli

--- t:bernoulli_([p = 0.5] [, {generator = g}]) -> t, each element set to 1
-- with probability p (a number, or a tensor broadcast to t's shape), else
-- 0.  Everything is checked before t is written.
function ember.bernoulli_(t, p, opts)
  check_tensor("bernoulli_", t, "argument 1")
  if type(p) == "table" and not ember.is_tensor(p) and opts == nil then p, opts = nil, p end
  if p == nil then p = 0.5 end
  opts = check.options("bernoulli_", opts, KNOWN)
  check_probs("bernoulli_", p)
  if ember.is_tensor(p) then           -- before the draw: a failed call moves no counter
    local ps, ts = p:shape(), t:shape()
    local fits = #ps <= #ts
    for i = 1, #ps do
      local pd, td = ps[#ps - i + 1], ts[#ts - i + 1]
      fits = fits and (pd == 1 or pd == td)
    end
    if not fits then
      error(("bernoulli_: p of shape {%s} does not broadcast to the tensor's shape {%s}")
        :format(table.concat(ps, ", "), table.concat(ts, ", ")), 2)
    end
  end
  local ft = (t.dtype:match("^float") or t.dtype:match("^bfloat")) and t.dtype or "float64"
  local u = ember.rand_like(t, {dtype = ft, generator = opts.generator})
  local mask = u:lt(p)
  return t:copy_(mask)
end
T.bernoulli_ = ember.bernoulli_

return true
