--- ember.metrics: classification metrics as scikit-learn computes them
-- (precision, recall, F1, top-k accuracy, binary ROC AUC, the confusion
-- matrix), as functions of a whole set and as stateful metrics
-- (reset / update / result) that model:compile's metrics list takes, so
-- that fit and evaluate give the value of the whole epoch, never a mean
-- over batches.
--
-- Predictions are scores (N, C) (logits or probabilities: the argmax is
-- the predicted class), binary scores (N) or (N, 1) (the positive class
-- where the score is above `threshold`, default 0.5), or int64 class
-- indices (N).  Targets are class indices 1..C (int64), one-hot or
-- probability rows (N, C), or 0/1 for binary scores.  Inside, classes are
-- 1..C; binary scores make two classes, 1 (target 0) and 2 (target 1).
local ember = require "ember"
local check = require "ember.check"

-- errors point at the user's line, also from inside fit and evaluate
local fail = require("ember.blame").failer("ember/metrics", "ember/train/", "ember/init.lua")

local M = {}

local function kind(v) return ember.is_tensor(v) and "tensor" or type(v) end

local function shape_str(t) return "[" .. table.concat(t:shape(), ",") .. "]" end

--- Binary scores: one score per row.
local function is_binary_scores(p)
  return p.dtype ~= "int64" and (p:dim() == 1 or p:dim() == 2 and p:size(2) == 1)
end

--- (pred, target) -> two Lua lists of classes 1..C and C (at least the
-- largest class seen; num_classes when given).  Checks everything.
local function labels(name, pred, target, threshold, num_classes)
  if not ember.is_tensor(pred) then fail(name .. ": pred must be a tensor, got " .. kind(pred)) end
  if not ember.is_tensor(target) then
    fail(name .. ": target must be a tensor, got " .. kind(target))
  end
  if pred:dim() < 1 or pred:dim() > 2 then
    fail(("%s: pred must be (N), (N, 1) or (N, C), got shape %s"):format(name, shape_str(pred)))
  end
  local n = pred:size(1)
  local p, t, c
  if is_binary_scores(pred) then
    p = pred:reshape({n}):gt(threshold):long():add(1)
    c = 2
  elseif pred:dim() == 2 then
    c = pred:size(2)
    p = n > 0 and pred:argmax(2):reshape({n}) or ember.zeros({0}, {dtype = "int64"})
  elseif pred.dtype == "int64" then
    p = pred
  else
    fail(("%s: pred of shape %s must be int64 class indices or scores"):format(name, shape_str(pred)))
  end
  if target:dim() == 2 and target:size(2) > 1 and target.dtype ~= "int64" then
    target = target:size(1) > 0 and target:argmax(2) or ember.zeros({0}, {dtype = "int64"})
  end
  if target:numel() ~= n then
    fail(("%s: target has %d elements for %d predictions"):format(name, target:numel(), n))
  end
  t = target:reshape({n})
  if c == 2 and is_binary_scores(pred) then
    -- binary: targets 0/1 (any dtype) are classes 1/2
    t = t:double()
    local bad = t:ne(0):logical_and(t:ne(1))
    if bad:any():item() then fail(name .. ": binary targets must be 0 or 1") end
    t = t:long():add(1)
  else
    if t:is_floating_point() then
      if t:ne(t:floor()):any():item() then fail(name .. ": targets must be class indices 1..C") end
      t = t:long()
    end
  end
  local pl, tl = p:long():totable(), t:long():totable()
  local top = c or 0
  for i = 1, n do
    if tl[i] < 1 then fail(("%s: target %d is not a class (classes are 1..C)"):format(name, tl[i])) end
    if pl[i] < 1 then fail(("%s: prediction %d is not a class (classes are 1..C)"):format(name, pl[i])) end
    if tl[i] > top then top = tl[i] end
    if pl[i] > top then top = pl[i] end
  end
  if num_classes then
    if top > num_classes then
      fail(("%s: class %d is out of range for num_classes %d"):format(name, top, num_classes))
    end
    top = num_classes
  end
  return pl, tl, top
end

-- {======================================================================
-- Counts: a confusion matrix in a Lua table (rows the target, columns
-- the prediction, as scikit-learn), which the stateful metrics add to
-- =======================================================================

local Counts = {}
Counts.__index = Counts

local function new_counts() return setmetatable({c = 0, m = {}}, Counts) end

function Counts:add(pl, tl, c)
  if c > self.c then self.c = c end
  local m = self.m
  for i = 1, #pl do
    local row = m[tl[i]]
    if not row then row = {}; m[tl[i]] = row end
    row[pl[i]] = (row[pl[i]] or 0) + 1
  end
end

function Counts:get(t, p) local row = self.m[t]; return row and row[p] or 0 end

--- Per class: true positives, predicted, true (support).
function Counts:per_class()
  local tp, pred, true_ = {}, {}, {}
  for k = 1, self.c do tp[k], pred[k], true_[k] = self:get(k, k), 0, 0 end
  for t, row in pairs(self.m) do
    for p, v in pairs(row) do
      true_[t] = true_[t] + v
      pred[p] = pred[p] + v
    end
  end
  return tp, pred, true_
end

local function ratio(a, b) return b > 0 and a / b or 0 end   -- zero_division = 0

local function score(what, tp, pred, true_)
  if what == "precision" then return ratio(tp, pred) end
  if what == "recall" then return ratio(tp, true_) end
  return ratio(2 * tp, pred + true_)   -- F1 = 2 tp / (2 tp + fp + fn)
end

--- precision / recall / f1 of the counts, averaged as scikit-learn does
-- without `labels`: over the classes that occur in the targets or the
-- predictions.
local function averaged(name, what, counts, average, pos_label)
  local tp, pred, true_ = counts:per_class()
  if average == "binary" then
    if counts.c > 2 then
      fail(("%s: average 'binary' needs two classes, got %d (use average = \"macro\", " ..
            "\"micro\" or \"weighted\")"):format(name, counts.c))
    end
    local k = pos_label
    return score(what, tp[k] or 0, pred[k] or 0, true_[k] or 0)
  end
  local present, stp, spred, strue, sum, wsum = 0, 0, 0, 0, 0, 0
  for k = 1, counts.c do
    if pred[k] > 0 or true_[k] > 0 then
      present = present + 1
      stp, spred, strue = stp + tp[k], spred + pred[k], strue + true_[k]
      local s = score(what, tp[k], pred[k], true_[k])
      sum, wsum = sum + s, wsum + s * true_[k]
    end
  end
  if average == "micro" then return score(what, stp, spred, strue) end
  if average == "weighted" then return ratio(wsum, strue) end
  return ratio(sum, present)
end

-- }======================================================================

-- {======================================================================
-- Options, functions and stateful metrics
-- =======================================================================

local AVERAGES = {macro = true, micro = true, weighted = true, binary = true}

local function check_threshold(name, v)
  if type(v) ~= "number" then fail(name .. ": threshold must be a number, got " .. kind(v)) end
  return v
end

--- The options of precision / recall / f1, checked.
local function prf_options(name, opts, stateful)
  local o = check.options(name, opts, {average = true, threshold = true, pos_label = true,
                                       num_classes = true, name = stateful}, fail)
  local average = o.average == nil and "macro" or o.average
  if not AVERAGES[average] then
    fail(("%s: average must be \"macro\", \"micro\", \"weighted\" or \"binary\", got %s")
         :format(name, type(average) == "string" and "'" .. average .. "'" or kind(average)))
  end
  local pos = o.pos_label == nil and 2 or check.integer(name, "pos_label", o.pos_label, 1, fail)
  if pos > 2 then fail(("%s: pos_label must be 1 or 2, got %d"):format(name, pos)) end
  local nc = o.num_classes ~= nil and check.integer(name, "num_classes", o.num_classes, 1, fail) or nil
  return average, check_threshold(name, o.threshold == nil and 0.5 or o.threshold), pos, nc, o.name
end

--- A stateful metric's key in the logs: its name option, else `default`.
local function log_name(fname, name, default)
  if name == nil then return default end
  if type(name) ~= "string" or name == "" then
    fail(fname .. ": name must be a non-empty string, got " .. kind(name))
  end
  return name
end

--- A stateful metric: m:reset(), m:update(pred, target), m:result() ->
-- number; m.name is its key in the logs.  state(m) gives its totals as a
-- list of numbers that add up over processes, set_state loads them back.
local Metric = {}
Metric.__index = Metric
function Metric:__tostring() return "ember.metrics." .. self.kind .. "(" .. self.name .. ")" end

local function metric(kind, name, fields)
  -- kind: the function that made it; name: its key in the logs
  fields.kind, fields.name = kind, name
  local m = setmetatable(fields, Metric)
  m:reset()
  return m
end

--- True for a stateful metric (anything with reset, update and result).
function M.is_metric(v)
  return type(v) == "table" and type(v.reset) == "function" and type(v.update) == "function"
         and type(v.result) == "function"
end

-- The counts C x C, row-major (every process has the same C: the
-- model's output's).
local function confusion_state(self)
  local c, list = self.counts.c, {}
  for t = 1, c do for p = 1, c do list[#list + 1] = self.counts:get(t, p) end end
  return list
end

local function confusion_set_state(self, list)
  local counts, c = new_counts(), math.floor(math.sqrt(#list) + 0.5)
  counts.c = c
  for t = 1, c do
    counts.m[t] = {}
    for p = 1, c do counts.m[t][p] = list[(t - 1) * c + p] end
  end
  self.counts = counts
end

local function prf(what)
  return function(a, b, c)
    if ember.is_tensor(a) or b ~= nil then
      local name = what
      local average, threshold, pos, nc = prf_options(name, c)
      local pl, tl, k = labels(name, a, b, threshold, nc)
      local counts = new_counts()
      counts:add(pl, tl, k)
      return averaged(name, what, counts, average, pos)
    end
    -- ember.metrics.f1{average = "micro"}: a stateful metric for compile
    local average, threshold, pos, nc, name = prf_options(what, a, true)
    return metric(what, log_name(what, name, average == "macro" and what or what .. "_" .. average), {
      reset = function(self) self.counts = new_counts() end,
      update = function(self, pred, target)
        self.counts:add(labels(what, pred, target, self.threshold, nc))
      end,
      result = function(self) return averaged(what, what, self.counts, average, pos) end,
      state = confusion_state, set_state = confusion_set_state,
      threshold = threshold})
  end
end

--- ember.metrics.precision(pred, target [, {average = "macro", threshold = 0.5,
-- pos_label = 2, num_classes}]) -> number; precision{...} -> a stateful metric.
M.precision = prf("precision")
M.recall = prf("recall")
M.f1 = prf("f1")

--- Hits of top-k over (N, C) scores, as scikit-learn's
-- top_k_accuracy_score: of tied scores, the higher class ranks first (its
-- stable ascending sort, reversed).
local function top_k_hits(name, pred, target, k)
  if not ember.is_tensor(pred) or pred:dim() ~= 2 or pred.dtype == "int64" then
    fail(("%s: pred must be (N, C) scores, got %s"):format(name,
         ember.is_tensor(pred) and "shape " .. shape_str(pred) .. " " .. pred.dtype or kind(pred)))
  end
  local pl, tl, c = labels(name, pred, target, 0.5, pred:size(2))
  local n = #tl
  if n == 0 then return 0, 0 end
  local idx = ember.tensor(tl, {dtype = "int64"}):view(n, 1)
  local scores = pred:detach():double()
  local s = scores:gather(2, idx)                        -- the target's score
  local above = scores:gt(s):long():sum(2)
  local cols = ember.arange(1, c + 1, {dtype = "int64"}):view(1, c)
  local tied_after = scores:eq(s):logical_and(cols:gt(idx)):long():sum(2)
  local hits = (above + tied_after):lt(k):long():sum():item()
  return hits, n
end

local function check_k(name, k)
  return check.integer(name, "k", k == nil and 5 or k, 1, fail)
end

--- ember.metrics.top_k_accuracy(pred, target [, k = 5]) -> number: the
-- fraction of rows whose target is among the k highest scores;
-- top_k_accuracy{k = 5} -> a stateful metric.
function M.top_k_accuracy(a, b, c)
  local name = "top_k_accuracy"
  if ember.is_tensor(a) or b ~= nil then
    local k = check_k(name, c)
    local hits, n = top_k_hits(name, a, b, k)
    return ratio(hits, n)
  end
  local o = check.options(name, a, {k = true, name = true}, fail)
  local k = check_k(name, o.k)
  return metric(name, log_name(name, o.name, k == 5 and name or ("top_%d_accuracy"):format(k)), {
    reset = function(self) self.hits, self.n = 0, 0 end,
    update = function(self, pred, target)
      local h, n = top_k_hits(name, pred, target, k)
      self.hits, self.n = self.hits + h, self.n + n
    end,
    result = function(self) return ratio(self.hits, self.n) end,
    state = function(self) return {self.hits, self.n} end,
    set_state = function(self, list) self.hits, self.n = list[1], list[2] end})
end

--- Scores and 0/1 labels of a binary problem as Lua lists: scores (N) or
-- (N, 1) with 0/1 targets, or two columns (N, 2) with classes 1/2 (the
-- score is the second column less the first, which orders the rows as
-- the softmax's probability of class 2 does).
local function binary_scores(name, pred, target)
  if not ember.is_tensor(pred) or pred.dtype == "int64" or pred:dim() < 1 or pred:dim() > 2
     or pred:dim() == 2 and pred:size(2) > 2 then
    fail(("%s: pred must be binary scores (N), (N, 1) or (N, 2), got %s"):format(name,
         ember.is_tensor(pred) and "shape " .. shape_str(pred) .. " " .. pred.dtype or kind(pred)))
  end
  local _, tl = labels(name, pred, target, 0.5, 2)
  local n = #tl
  local p = pred:detach():double()
  if pred:dim() == 2 and pred:size(2) == 2 then p = p:select(2, 2) - p:select(2, 1) end
  local sl = n > 0 and p:reshape({n}):totable() or {}
  for i = 1, n do if sl[i] ~= sl[i] then fail(name .. ": a score is nan") end end
  return sl, tl
end

--- ROC AUC of scores and classes 1/2 (2 positive): the Mann-Whitney
-- statistic, a tie counting one half, which is the area under the ROC
-- curve with tied scores as one threshold (scikit-learn's curve).
local function roc_auc(scores, classes)
  local n = #scores
  local order = {}
  for i = 1, n do order[i] = i end
  table.sort(order, function(a, b) return scores[a] < scores[b] end)
  local pos, rank_sum, i = 0, 0, 1
  while i <= n do
    local j = i
    while j < n and scores[order[j + 1]] == scores[order[i]] do j = j + 1 end
    local rank = (i + j) / 2   -- the tied rows' mean rank
    for r = i, j do
      if classes[order[r]] == 2 then pos, rank_sum = pos + 1, rank_sum + rank end
    end
    i = j + 1
  end
  local neg = n - pos
  if pos == 0 or neg == 0 then return nil end
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
end

--- ember.metrics.auc(scores, target) -> number: binary ROC AUC;
-- auc{} -> a stateful metric (nan while the targets hold one class).
function M.auc(a, b, c)
  local name = "auc"
  if ember.is_tensor(a) or b ~= nil then
    check.options(name, c, {}, fail)
    local v = roc_auc(binary_scores(name, a, b))
    if not v then
      fail("auc: only one class present in the targets; ROC AUC is not defined then")
    end
    return v
  end
  local o = check.options(name, a, {name = true}, fail)
  return metric(name, log_name(name, o.name, name), {
    per_batch = false,   -- a sort of every score so far: computed at the end of an epoch
    reset = function(self) self.scores, self.classes = {}, {} end,
    update = function(self, pred, target)
      local s, t = binary_scores(name, pred, target)
      local k = #self.scores
      for i = 1, #s do self.scores[k + i], self.classes[k + i] = s[i], t[i] end
    end,
    result = function(self) return roc_auc(self.scores, self.classes) or 0 / 0 end,
    state = function() fail("auc: not available in distributed training yet") end})
end

--- ember.metrics.confusion_matrix(pred, target [, num_classes]) -> int64
-- (C, C) tensor: row i, column j counts the rows of target i predicted j.
function M.confusion_matrix(pred, target, num_classes)
  local name = "confusion_matrix"
  local nc = num_classes ~= nil and check.integer(name, "num_classes", num_classes, 1, fail) or nil
  local pl, tl, c = labels(name, pred, target, 0.5, nc)
  local counts = new_counts()
  counts:add(pl, tl, c)
  local rows = {}
  for t = 1, c do
    rows[t] = {}
    for p = 1, c do rows[t][p] = counts:get(t, p) end
  end
  if c == 0 then return ember.zeros({0, 0}, {dtype = "int64"}) end
  return ember.tensor(rows, {dtype = "int64"})
end

-- }======================================================================

ember.metrics = M
return true
