--- The loss functions of ember.nn.functional (merged into it).
-- Class labels are 1-based int64 (or int32) indices; ignore_index defaults
-- to -100, which is never a valid 1-based class.  Every loss takes its
-- options in a trailing table: reduction ("mean", "sum" or "none"),
-- weight, and the loss's own fields.
local ember = require "ember"
local common = require "ember.nn.common"

local L = {}

local check_tensor, check_float = common.check_tensor, common.check_float
local shape_str = common.shape_str

-- {======================================================================
-- Classification: cross_entropy, nll_loss
-- =======================================================================

--- Rows view of a [C], [N,C] or [N,C,d1,...] tensor: [M,C], the class dim
-- moved last.
local function rows(x)
  if x:dim() == 1 then return x:view(1, -1) end
  if x:dim() == 2 then return x end
  local perm = {1}
  for d = 3, x:dim() do perm[#perm + 1] = d end
  perm[#perm + 1] = 2
  return x:permute(perm):reshape(-1, x:size(2))
end

--- The target shape that goes with an input: the input's without dim 2.
local function target_shape(x)
  if x:dim() == 1 then return {} end
  local s = {x:size(1)}
  for d = 3, x:dim() do s[#s + 1] = x:size(d) end
  return s
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local CLASS_OPTS = {weight = true, ignore_index = true, reduction = true, label_smoothing = true}
-- nll_loss takes no label_smoothing (as PyTorch's)
local NLL_OPTS = {weight = true, ignore_index = true, reduction = true}

--- Check input, target and options of a classification loss.  Returns
-- the options read and whether target holds probabilities.
local function check_class(fname, x, target, opts, allow_probs)
  check_float(fname, x, "the input", 3)
  check_tensor(fname, target, "the target", 3)
  opts = common.options(fname, opts, allow_probs and CLASS_OPTS or NLL_OPTS, 3)
  if x:dim() < 1 then
    error(("%s: expected an input of shape [C], [N,C] or [N,C,d1,...], got a 0-d tensor")
          :format(fname), 3)
  end
  local o = {reduction = common.reduction(fname, opts.reduction, 3),
             ignore_index = common.opt(opts, "ignore_index", -100),
             smoothing = common.opt(opts, "label_smoothing", 0), weight = opts.weight}
  common.check_number(fname, o.smoothing, "label_smoothing", 0, 1, 3)
  if math.type(o.ignore_index) ~= "integer" then
    error(("%s: ignore_index must be an integer, got %s"):format(fname, type(o.ignore_index)), 3)
  end
  local c = x:size(x:dim() == 1 and 1 or 2)
  if o.weight ~= nil then
    check_float(fname, o.weight, "the class weight", 3)
    if o.weight:dim() ~= 1 or o.weight:size(1) ~= c then
      error(("%s: weight must have shape [%d] (one per class), got %s")
            :format(fname, c, shape_str(o.weight)), 3)
    end
  end
  local is_int = target.dtype == "int64" or target.dtype == "int32"
  local probs = allow_probs and target:is_floating_point()
                and same_shape(target:shape(), x:shape())
  if not is_int and not probs then
    error(("%s: expected int64 class indices of shape [%s]%s, got a %s target of shape %s")
          :format(fname, table.concat(target_shape(x), ","),
                  allow_probs and (" or class probabilities of shape " .. shape_str(x)) or "",
                  target.dtype, shape_str(target)), 3)
  end
  if is_int and not same_shape(target:shape(), target_shape(x)) then
    error(("%s: expected a target of shape [%s] for input shape %s, got %s")
          :format(fname, table.concat(target_shape(x), ","), shape_str(x), shape_str(target)), 3)
  end
  if is_int then
    -- checked where the target lives: on a GPU, without a wait (a bad
    -- label is then reported by the next sync, e.g. loss:item())
    common.check_index(target, 0, c, o.ignore_index, fname .. ": target ",
                       (" is out of range for %d classes (expected 1..%d or ignore_index %d)")
                       :format(c, c, o.ignore_index), 3)
    -- what is left out of range is a 0: PyTorch-style 0-based labels, the
    -- common mistake, told apart for its own message
    common.check_index(target, 1, c, o.ignore_index,
                       ("%s: class labels are 1..%d in Ember (got "):format(fname, c),
                       "); add 1 to PyTorch-style (0-based) labels", 3)
  end
  return o, probs
end

--- Negative log likelihood of class indices on rows of log-probabilities
-- logp [M,C]; tgt [M].  Returns the per-row losses, the per-row weights
-- (0 where ignored) and the rows' keep mask as floats.
local function nll_rows(logp, tgt, o)
  local ignore = tgt:eq(o.ignore_index)
  local safe = tgt:masked_fill(ignore, 1):long()
  local keep = tgt:ne(o.ignore_index):to(logp.dtype)
  local w = keep
  if o.weight ~= nil then w = o.weight:to(logp.dtype):index_select(1, safe) * keep end
  local picked = logp:gather(2, safe:view(-1, 1)):view(-1)
  return -(picked * w), w, keep
end

--- Reduce per-row losses: "mean" divides by the total weight.
local function reduce_rows(loss, w, o, out_shape)
  if o.reduction == "sum" then return loss:sum() end
  if o.reduction == "mean" then return loss:sum() / w:sum() end
  return loss:view(out_shape)
end

local function class_index_loss(logp, target, o, c)
  local tgt = target:reshape(-1)
  local loss, w, keep = nll_rows(logp, tgt, o)
  local out = reduce_rows(loss, w, o, target:shape())
  if o.smoothing == 0 then return out end
  -- PyTorch: (1 - eps) * nll + eps / C * (-sum_c w_c logp_c), reduced
  -- with the same denominator as nll.
  local lw = o.weight ~= nil and logp * o.weight:to(logp.dtype) or logp
  local smooth = -lw:sum(2) * keep
  return out * (1 - o.smoothing) + reduce_rows(smooth, w, o, target:shape()) * (o.smoothing / c)
end

local function class_prob_loss(logp, target, o, c)
  local p = rows(target)
  if o.smoothing > 0 then p = p * (1 - o.smoothing) + o.smoothing / c end
  local l = logp * p
  if o.weight ~= nil then l = l * o.weight:to(logp.dtype) end
  local per = -l:sum(2)
  if o.reduction == "sum" then return per:sum() end
  if o.reduction == "mean" then return per:sum() / logp:size(1) end
  return per:view(target_shape(target))
end

--- Cross entropy of logits x ([C], [N,C] or [N,C,d1,...]) against class
-- indices (1..C) or class probabilities (x's shape).  Class indices take
-- the core's fused kernel (ember._cross_entropy_rows: log-softmax, the
-- pick and label smoothing in one pass per row, softmax minus the one-hot
-- in one backward pass), which returns per-row losses and weights that
-- reduce_rows reduces as nll_loss's; probabilities are log_softmax times
-- the target.
function L.cross_entropy(x, target, opts)
  local o, probs = check_class("cross_entropy", x, target, opts, true)
  local c = x:size(x:dim() == 1 and 1 or 2)
  if probs then return class_prob_loss(rows(x):log_softmax(2), target, o, c) end
  local loss, w = ember._cross_entropy_rows(rows(x), target:reshape(-1),
                                            o.weight and o.weight:to(x.dtype),
                                            o.ignore_index, o.smoothing)
  return reduce_rows(loss, w, o, target:shape())
end

--- Negative log likelihood of log-probabilities x against class indices.
function L.nll_loss(x, target, opts)
  local o = check_class("nll_loss", x, target, opts, false)
  return class_index_loss(rows(x), target, o, x:size(x:dim() == 1 and 1 or 2))
end

-- }======================================================================

-- {======================================================================
-- Regression and binary losses
-- =======================================================================

--- Check x and y (same shape, floats) and read the options.
local function check_pair(fname, x, y, opts, known)
  check_float(fname, x, "the input", 3)
  check_float(fname, y, "the target", 3)
  if not same_shape(x:shape(), y:shape()) then
    error(("%s: input shape %s and target shape %s differ"):format(fname, shape_str(x),
          shape_str(y)), 3)
  end
  known = known or {}
  known.reduction = true
  opts = common.options(fname, opts, known, 3)
  return opts, common.reduction(fname, opts.reduction, 3)
end

function L.mse_loss(x, y, opts)
  local _, r = check_pair("mse_loss", x, y, opts)
  return common.reduce((x - y) ^ 2, r)
end

function L.l1_loss(x, y, opts)
  local _, r = check_pair("l1_loss", x, y, opts)
  return common.reduce((x - y):abs(), r)
end

--- 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere.  Written
-- with m = min(|d|, beta) as 0.5 m^2 / beta + (|d| - m), which is the same
-- piecewise function without a branch (and no division when beta is 0).
function L.smooth_l1_loss(x, y, opts)
  local o, r = check_pair("smooth_l1_loss", x, y, opts, {beta = true})
  local beta = common.opt(o, "beta", 1)
  common.check_number("smooth_l1_loss", beta, "beta", 0, nil, 2)
  local d = (x - y):abs()
  if beta == 0 then return common.reduce(d, r) end
  local m = d:clamp(nil, beta)
  return common.reduce(m * m * (0.5 / beta) + (d - m), r)
end

local function check_weight(fname, w, x, what)
  if w == nil then return nil end
  check_float(fname, w, what, 3)
  -- w must broadcast to x without growing it
  local ok, sum = pcall(function() return w + ember.zeros_like(x) end)
  if not (ok and same_shape(sum:shape(), x:shape())) then
    error(("%s: %s shape %s does not broadcast to the input shape %s")
          :format(fname, what, shape_str(w), shape_str(x)), 3)
  end
  return w:to(x.dtype)
end

--- Binary cross entropy of probabilities x in [0, 1]; the logs are
-- clamped at -100, as PyTorch, so x = 0 or 1 gives a finite loss.
function L.binary_cross_entropy(x, y, opts)
  local o, r = check_pair("binary_cross_entropy", x, y, opts, {weight = true})
  if x:numel() > 0 and (x:min():item() < 0 or x:max():item() > 1) then
    error("binary_cross_entropy: all elements of the input should be between 0 and 1", 2)
  end
  local w = check_weight("binary_cross_entropy", o.weight, x, "weight")
  local loss = -(y * x:log():clamp(-100, nil) + (1 - y) * (1 - x):log():clamp(-100, nil))
  if w then loss = loss * w end
  return common.reduce(loss, r)
end

local function log1p(t)
  if ember.log1p then return ember.log1p(t) end
  return (t + 1):log()
end

--- Binary cross entropy of logits, in the stable form
-- max(x, 0) - x y + log1p(exp(-|x|)); with pos_weight (broadcast along
-- the last dim), (1 - y) x + (1 + (pw - 1) y) (log1p(exp(-|x|)) + max(-x, 0)).
function L.binary_cross_entropy_with_logits(x, y, opts)
  local o, r = check_pair("binary_cross_entropy_with_logits", x, y, opts,
                          {weight = true, pos_weight = true})
  local w = check_weight("binary_cross_entropy_with_logits", o.weight, x, "weight")
  local pw = check_weight("binary_cross_entropy_with_logits", o.pos_weight, x, "pos_weight")
  local sp = log1p((-x:abs()):exp())
  local loss
  if pw then
    loss = (1 - y) * x + ((pw - 1) * y + 1) * (sp + (-x):relu())
  else
    loss = x:relu() - x * y + sp
  end
  if w then loss = loss * w end
  return common.reduce(loss, r)
end

-- }======================================================================

-- Errors at the user's line.  The checks above raise at their caller, but
-- what the core raises on the way (tensors on two devices, say) names a
-- line of this file, or none.  Each loss runs under a pcall (one per call,
-- about 0.1 us against a loss's microseconds) and what fails is raised
-- again at the first line outside the library (blame.reraise); a message
-- that already names the user's line keeps it.
local blame = require "ember.blame"
for name, f in pairs(L) do
  L[name] = function(x, target, opts)
    local ok, loss = pcall(f, x, target, opts)
    if not ok then blame.reraise(loss) end
    return loss
  end
end

return L
