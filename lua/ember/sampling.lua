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

-- {======================================================================
-- Drawing tokens from logits
-- =======================================================================
-- A language model's next token: logits scaled by a temperature, all but
-- the most likely cut away (top-k, top-p), one multinomial draw.  Both
-- filters keep every token tied with the last one kept, so their result
-- does not depend on how a sort orders equal values.

local function check_logits(name, logits)
  check_tensor(name, logits, "logits")
  if not logits:is_floating_point() then
    error(("%s: expected float logits, got %s"):format(name, logits.dtype), 3)
  end
  if logits:dim() == 0 or logits:size(-1) == 0 then
    error(("%s: expected logits with at least one element in the last dim"):format(name), 3)
  end
end

--- ember.filter_top_k(logits, k) -> a copy of logits with every value
-- below the k-th largest of its row (the last dim) set to -inf; k larger
-- than the row keeps it whole.
function ember.filter_top_k(logits, k)
  check_logits("filter_top_k", logits)
  k = check.integer("filter_top_k", "k", k, 1, 2)
  k = math.min(k, logits:size(-1))
  local kth = ember.topk(logits, k, -1):narrow(-1, k, 1)
  return logits:masked_fill(logits:lt(kth), -math.huge)
end

--- ember.filter_top_p(logits, p) -> a copy of logits keeping, in each row,
-- the most likely tokens whose probabilities reach p together (nucleus
-- sampling): a token stays when the tokens more likely than it hold less
-- than p of the mass; the rest become -inf.  p in (0, 1]; 1 keeps all.
function ember.filter_top_p(logits, p)
  check_logits("filter_top_p", logits)
  if type(p) ~= "number" or not (p > 0 and p <= 1) then
    error(("filter_top_p: p must be a number in (0, 1], got %s"):format(tostring(p)), 2)
  end
  if p == 1 then return logits:clone() end
  local probs = ember.softmax(logits, -1)
  local sorted = ember.sort(probs, -1, {descending = true})
  -- the mass before each sorted token; the first always stays (0 < p)
  local before = sorted:cumsum(-1) - sorted
  local kept = before:lt(p):sum(-1, true)
  local last = sorted:gather(-1, kept)      -- the smallest probability kept
  return logits:masked_fill(probs:lt(last), -math.huge)
end

local SAMPLE = {temperature = true, top_k = true, top_p = true, generator = true}

--- ember.sample_logits(logits [, {temperature = 1, top_k, top_p,
-- generator}]) -> the next token of each row of logits ((V) gives (1),
-- (B, V) gives (B, 1)), int64, 1-based: logits / temperature, then
-- filter_top_k, then filter_top_p, then one multinomial draw from their
-- softmax.  temperature 0 is greedy: the first largest logit, no draw.
function ember.sample_logits(logits, opts)
  check_logits("sample_logits", logits)
  if logits:dim() > 2 then
    error(("sample_logits: expected logits (V) or (B, V), got %d dims"):format(logits:dim()), 2)
  end
  opts = check.options("sample_logits", opts, SAMPLE, 2)
  local temperature = opts.temperature or 1
  if type(temperature) ~= "number" or not (temperature >= 0 and temperature < math.huge) then
    error(("sample_logits: temperature must be a finite number >= 0, got %s")
          :format(tostring(temperature)), 2)
  end
  if opts.top_k ~= nil then check.integer("sample_logits", "top_k", opts.top_k, 1, 2) end
  if opts.top_p ~= nil and (type(opts.top_p) ~= "number" or not (opts.top_p > 0 and opts.top_p <= 1)) then
    error(("sample_logits: top_p must be a number in (0, 1], got %s"):format(tostring(opts.top_p)), 2)
  end
  if temperature == 0 then return logits:argmax(-1, true) end
  logits = logits / temperature
  if opts.top_k then logits = ember.filter_top_k(logits, opts.top_k) end
  if opts.top_p then logits = ember.filter_top_p(logits, opts.top_p) end
  return ember.multinomial(ember.softmax(logits, -1), 1, {generator = opts.generator})
end

-- }======================================================================

return true
