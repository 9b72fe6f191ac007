--- ember.mathops: issue 17's "rounding and math" functions that are exact
-- compositions of the core's ops, so they run on every device those run
-- on and autograd comes from them: frac, clamp with tensor bounds, lerp,
-- logsumexp.  floor, ceil, round, trunc, sign and erfinv are core unary
-- ops (bindings/lua_ops.c).  Semantics follow PyTorch, dims are 1-based.
local ember = require "ember"
local check = require "ember.check"

local T = ember.Tensor

local function check_tensor(name, t, i)
  if not ember.is_tensor(t) then
    error(("%s: expected a tensor as argument %d, got %s"):format(name, i or 1, type(t)), 3)
  end
end

local function check_float(name, t)
  if not t.dtype:match("^float") then
    error(("%s: expected a float tensor, got %s"):format(name, t.dtype), 3)
  end
end

-- {====== frac ======

--- t - trunc(t): exact in floating point; the sign of t, as PyTorch.
function ember.frac(t)
  check_tensor("frac", t)
  check_float("frac", t)
  return t - t:trunc()
end
function ember.frac_(t)
  check_tensor("frac_", t)
  check_float("frac_", t)
  return t:sub_(t:trunc())
end
T.frac, T.frac_ = ember.frac, ember.frac_

-- }======

-- {====== clamp with tensor bounds ======

local clamp_num, clamp_num_ = ember.clamp, ember.clamp_

--- A bound as a tensor on t's device, or nil.
local function bound(t, b)
  if b == nil or ember.is_tensor(b) then return b end
  return ember.full_like(t, b)
end

--- clamp(t, min, max) where a bound is a tensor: min(max(t, lo), hi) as
-- PyTorch computes it (NaN in t stays; lo > hi gives hi), broadcast.
-- Written with where so the gradient goes to t where lo <= t <= hi and to
-- the bound that was taken elsewhere, as PyTorch's.
local function clamp_tensors(name, t, lo, hi)
  if lo ~= nil and not ember.is_tensor(lo) and type(lo) ~= "number" then
    error(("%s: min must be a number or a tensor, got %s"):format(name, type(lo)), 3)
  end
  if hi ~= nil and not ember.is_tensor(hi) and type(hi) ~= "number" then
    error(("%s: max must be a number or a tensor, got %s"):format(name, type(hi)), 3)
  end
  lo, hi = bound(t, lo), bound(t, hi)
  local r = t
  local ok, err = pcall(function()
    if lo then r = ember.where(r:lt(lo), lo, r) end
    if hi then r = ember.where(r:gt(hi), hi, r) end
  end)
  if not ok then error(("%s: %s"):format(name, tostring(err):gsub("^.-:%d+: ", "")), 3) end
  return r
end

function ember.clamp(t, lo, hi)
  if ember.is_tensor(lo) or ember.is_tensor(hi) then
    check_tensor("clamp", t)
    return clamp_tensors("clamp", t, lo, hi)
  end
  return clamp_num(t, lo, hi)
end
function ember.clamp_(t, lo, hi)
  if ember.is_tensor(lo) or ember.is_tensor(hi) then
    check_tensor("clamp_", t)
    local r = clamp_tensors("clamp_", t, lo, hi)
    if r ~= t and not ember.equal(ember.tensor(r:shape()), ember.tensor(t:shape())) then
      error("clamp_: the bounds broadcast to a shape other than the tensor's", 2)
    end
    return t:copy_(r)
  end
  return clamp_num_(t, lo, hi)
end
T.clamp, T.clamp_ = ember.clamp, ember.clamp_

-- }======

-- {====== lerp ======

--- start + weight * (end - start), computed as PyTorch does: from start
-- when |weight| < 0.5, else end - (end - start) * (1 - weight), so that
-- weight 1 gives end exactly.
function ember.lerp(s, e, w)
  check_tensor("lerp", s, 1)
  check_tensor("lerp", e, 2)
  if type(w) ~= "number" and not ember.is_tensor(w) then
    error(("lerp: weight must be a number or a tensor, got %s"):format(type(w)), 2)
  end
  check_float("lerp", s)
  local d = e - s
  if type(w) == "number" then
    if math.abs(w) < 0.5 then return s + d * w end
    return e - d * (1 - w)
  end
  return ember.where(w:abs():lt(0.5), s + d * w, e - d * (1 - w))
end
T.lerp = ember.lerp

-- }======

-- {====== finfo ======

-- torch.finfo's numbers: eps (1 - the next float above 1), max, min (=
-- -max), tiny (the smallest normal), resolution (10^-digits).
local FINFO = {
  float32 = {bits = 32, eps = 2.0 ^ -23, max = 3.4028234663852886e38, tiny = 2.0 ^ -126, resolution = 1e-6},
  float64 = {bits = 64, eps = 2.0 ^ -52, max = 1.7976931348623157e308, tiny = 2.0 ^ -1022, resolution = 1e-15},
  bfloat16 = {bits = 16, eps = 2.0 ^ -7, max = 3.3895313892515355e38, tiny = 2.0 ^ -126, resolution = 0.01},
  float16 = {bits = 16, eps = 2.0 ^ -10, max = 65504.0, tiny = 2.0 ^ -14, resolution = 0.001},
}
local FINFO_ALIAS = {float = "float32", double = "float64", bf16 = "bfloat16", half = "float16"}

--- ember.finfo([dtype = "float32"]): the limits of a floating dtype, as
-- torch.finfo: {bits, eps, max, min, tiny, resolution, dtype}.
function ember.finfo(dtype)
  local name = dtype == nil and "float32" or FINFO_ALIAS[dtype] or dtype
  local f = FINFO[name]
  if not f then
    error(("finfo: expected a floating dtype (float32, float64, bfloat16, float16), got %s")
          :format(type(dtype) == "string" and "'" .. dtype .. "'" or type(dtype)), 2)
  end
  return {bits = f.bits, eps = f.eps, max = f.max, min = -f.max, tiny = f.tiny,
          resolution = f.resolution, dtype = name}
end

-- }======

-- {====== logsumexp ======

--- log(sum(exp(t), dim)), stable: the maximum (detached; infinite ones
-- replaced by 0) is taken out before exp.  Integers compute in float32;
-- bfloat16 and float16 compute in float32 too, rounded once at the end
-- (as PyTorch accumulates them), not at each of the steps.
function ember.logsumexp(t, dim, opts)
  check_tensor("logsumexp", t)
  if opts ~= nil and type(opts) ~= "table" then
    error(("logsumexp: options must be a table, got %s"):format(type(opts)), 2)
  end
  local keep = opts and opts.keepdim or false
  local d = check.dim("logsumexp", dim, t:dim())
  if not t:is_floating_point() then t = t:float() end
  if t:dim() == 0 then return t:clone() end   -- one element: itself
  if t.dtype == "bfloat16" or t.dtype == "float16" then
    return ember.logsumexp(t:float(), dim, opts):to(t.dtype)
  end
  if t:size(d) == 0 then
    return (t:sum(d, keep) + -math.huge)
  end
  local m = t:detach():max(d, true)
  m = m:masked_fill(m:abs():eq(math.huge), 0)
  local r = (t - m):exp():sum(d, true):log() + m
  if not keep then r = r:squeeze(d) end
  return r
end
T.logsumexp = ember.logsumexp

-- }======

-- Not the ember table: package.loaded["ember.mathops"] holding it would
-- let Lua name a C function's bad argument "ember.mathops.zeros" (luaL's
-- error messages search package.loaded, in no fixed order).
return true
