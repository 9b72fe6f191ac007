--- ember.train.compile: model:compile, and the Keras names it takes for
-- optimizers, losses and metrics (internal; ember.train loads it).
local ember = require "ember"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"
local optim = require "ember.optim"
local common = require "ember.train.common"
require "ember.metrics"

local fail, kind, class_of, options = common.fail, common.kind, common.class_of, common.options

-- {======================================================================
-- Losses and metrics by name
-- =======================================================================

--- The module that produces the model's output: the last layer of
-- (nested) Sequentials, else the model itself.
local function last_layer(model)
  while class_of(model) == "Sequential" and #model > 0 do model = model[#model] end
  return model
end

--- fn, refusing class indices: cross_entropy would take them as sparse
-- labels and the loss would silently be another than the one named.
local function one_hot_targets(fn)
  return function(p, y)
    if not y:is_floating_point() or y:dim() ~= p:dim() then
      fail(("categorical_crossentropy: expected one-hot (or probability) targets of the " ..
            "output's shape [%s], got %s targets of shape [%s]; for class indices use " ..
            "loss = 'sparse_categorical_crossentropy'"):format(table.concat(p:shape(), ","),
            y.dtype, table.concat(y:shape(), ",")))
    end
    return fn(p, y)
  end
end

--- Keras names for losses.  Keras's cross-entropies take probabilities;
-- Ember models usually end in logits.  So a named cross-entropy looks at
-- the last layer: after Softmax / Sigmoid it takes probabilities, after
-- LogSoftmax log-probabilities, otherwise logits (the numerically stable
-- form, as from_logits = true in Keras).
local function named_loss(model, name)
  local last = class_of(last_layer(model))
  local eps = 1e-7
  if name == "sparse_categorical_crossentropy" or name == "categorical_crossentropy" then
    local fn
    if last == "Softmax" then
      fn = function(p, y) return F.nll_loss(p:clamp(eps, 1):log(), y) end
      if name == "categorical_crossentropy" then
        fn = function(p, y) return -(y * p:clamp(eps, 1):log()):sum(2):mean() end
      end
    elseif last == "LogSoftmax" then
      fn = function(p, y) return F.nll_loss(p, y) end
      if name == "categorical_crossentropy" then
        fn = function(p, y) return -(y * p):sum(2):mean() end
      end
    else
      fn = F.cross_entropy
    end
    if name == "sparse_categorical_crossentropy" then return fn, "sparse" end
    return one_hot_targets(fn), "categorical"
  elseif name == "binary_crossentropy" then
    if last == "Sigmoid" then return F.binary_cross_entropy, "binary_probs" end
    return F.binary_cross_entropy_with_logits, "binary_logits"
  elseif name == "mse" or name == "mean_squared_error" then
    return F.mse_loss, "regression"
  elseif name == "mae" or name == "mean_absolute_error" then
    return F.l1_loss, "regression"
  elseif name == "huber" then
    return F.smooth_l1_loss, "regression"
  end
  fail(("compile: unknown loss '%s' (known: sparse_categorical_crossentropy, " ..
        "categorical_crossentropy, binary_crossentropy, mse, mae, huber, or a loss " ..
        "module or function)"):format(name))
end

--- What a loss module says about its targets, for "accuracy".
local LOSS_KINDS = {CrossEntropyLoss = "sparse", NLLLoss = "sparse", BCELoss = "binary_probs",
                    BCEWithLogitsLoss = "binary_logits", MSELoss = "regression",
                    L1Loss = "regression", SmoothL1Loss = "regression"}

local function resolve_loss(model, loss)
  if type(loss) == "string" then return named_loss(model, loss) end
  if Module.is_module(loss) then return loss, LOSS_KINDS[class_of(loss)] or "unknown" end
  if type(loss) == "function" then return loss, "unknown" end
  fail("compile: loss must be a name, a loss module or a function, got " .. kind(loss))
end

--- Fraction of rows whose argmax matches the target (class indices, or
-- one-hot / probability rows).
local function class_accuracy(p, y)
  local pred = p:argmax(p:dim())
  if y:dim() == p:dim() and y.dtype ~= "int64" then y = y:argmax(y:dim()) end
  return pred:eq(y:view(pred:shape())):float():mean():item()
end

local function binary_accuracy(threshold)
  return function(p, y)
    return p:gt(threshold):float():eq(y:float()):float():mean():item()
  end
end

--- The "accuracy" a loss kind implies (Keras picks it from the loss too).
local function accuracy_for(loss_kind)
  if loss_kind == "binary_probs" then return binary_accuracy(0.5) end
  if loss_kind == "binary_logits" then return binary_accuracy(0) end
  if loss_kind == "regression" then
    fail("compile: 'accuracy' needs a classification loss (use 'mae' or 'mse' as metrics of a regression)")
  end
  return function(p, y)
    -- unknown loss: class indices if the output has one score per class
    if loss_kind == "unknown" and (p:dim() < 2 or y:dim() == p:dim() and p:size(p:dim()) == 1) then
      return binary_accuracy(0.5)(p, y)
    end
    return class_accuracy(p, y)
  end
end

-- Metrics over the whole epoch or evaluation set: stateful (ember.metrics)
local WHOLE_SET = {precision = true, recall = true, f1 = true, top_k_accuracy = true, auc = true}

local function named_metric(name, loss_kind)
  if name == "accuracy" or name == "acc" then return "accuracy", accuracy_for(loss_kind) end
  if name == "sparse_categorical_accuracy" or name == "categorical_accuracy" then
    return name, class_accuracy
  end
  if name == "binary_accuracy" then
    return name, binary_accuracy(loss_kind == "binary_logits" and 0 or 0.5)
  end
  if name == "mse" or name == "mean_squared_error" then
    return "mse", function(p, y) return F.mse_loss(p, y):item() end
  end
  if name == "mae" or name == "mean_absolute_error" then
    return "mae", function(p, y) return F.l1_loss(p, y):item() end
  end
  -- over the whole epoch or evaluation set: stateful (ember.metrics)
  if WHOLE_SET[name] then
    if loss_kind == "regression" then
      fail(("compile: '%s' needs a classification loss"):format(name))
    end
    -- binary logits are positive above 0, probabilities above 0.5
    local o = {}
    if name ~= "top_k_accuracy" and name ~= "auc" then
      o.threshold = loss_kind == "binary_logits" and 0 or 0.5
    end
    return name, nil, ember.metrics[name](o)
  end
  fail(("compile: unknown metric '%s' (known: accuracy, sparse_categorical_accuracy, " ..
        "categorical_accuracy, binary_accuracy, mse, mae, precision, recall, f1, " ..
        "top_k_accuracy, auc, an ember.metrics metric or a function)"):format(name))
end

-- }======================================================================

-- {======================================================================
-- compile
-- =======================================================================

-- Keras's default learning rates for optimizers given by name.
local OPTIMIZERS = {adam = {"Adam", 1e-3}, adamw = {"AdamW", 1e-3}, sgd = {"SGD", 1e-2},
                    rmsprop = {"RMSprop", 1e-3}, adagrad = {"Adagrad", 1e-3}}

-- compile's mixed_precision names (ember.autocast's dtypes)
local MIXED = {bf16 = "bfloat16", bfloat16 = "bfloat16", half = "float16", float16 = "float16"}

--- model:compile{optimizer = "rmsprop", loss = ..., metrics = {...}}:
-- optimizer is a name (Keras's default learning rate) or an
-- ember.optim optimizer, bound here to the model's parameters when it was
-- made without any; loss a name, a loss module or a function(output,
-- target); metrics a list of names, functions(output, target) ->
-- number (named entries, metrics = {top = fn}, name them) or stateful
-- ember.metrics metrics (precision, recall, f1, top_k_accuracy, auc by
-- name), which fit and evaluate compute over the whole set;
-- mixed_precision "bf16" (or "half") runs fit's, evaluate's and predict's
-- forward under ember.autocast.
function Module:compile(spec)
  local o = options("compile", spec, {optimizer = "rmsprop", loss = false, metrics = false,
                                      distributed = false, mixed_precision = false})
  if o.distributed ~= nil and type(o.distributed) ~= "boolean" then
    fail("compile: distributed must be a boolean, got " .. kind(o.distributed))
  end
  local mp = o.mixed_precision
  if mp ~= nil and mp ~= false then
    mp = MIXED[mp]
    if not mp then
      fail(("compile: mixed_precision must be \"bf16\", \"bfloat16\", \"half\", \"float16\" " ..
            "or false, got %s"):format(type(o.mixed_precision) == "string" and
                                       "'" .. o.mixed_precision .. "'" or kind(o.mixed_precision)))
    end
  end
  if o.loss == nil then fail("compile: a loss is required (e.g. loss = \"mse\")") end
  local params = self:parameters()
  local opt = o.optimizer
  if type(opt) == "string" then
    local entry = OPTIMIZERS[opt:lower()]
    if not entry then
      fail(("compile: unknown optimizer '%s' (known: adam, adamw, sgd, rmsprop, adagrad, " ..
            "or an ember.optim optimizer)"):format(opt))
    end
    if #params == 0 then fail("compile: the model has no parameters to optimize") end
    opt = optim[entry[1]](params, {lr = entry[2]})
  elseif type(opt) == "table" and type(opt.step) == "function" and opt.param_groups then
    if #opt.param_groups == 0 then
      if #params == 0 then fail("compile: the model has no parameters to optimize") end
      opt:set_params(params)
    end
  else
    fail("compile: optimizer must be a name or an ember.optim optimizer, got " .. kind(opt))
  end
  local loss_fn, loss_kind = resolve_loss(self, o.loss)
  local metrics, names, seen = {}, {}, {}
  local list = o.metrics or {}
  if type(list) == "string" or type(list) == "function" then list = {list} end
  if type(list) ~= "table" then fail("compile: metrics must be a list, got " .. kind(list)) end
  -- fn(output, target) -> number, averaged over the samples; or state, a
  -- stateful metric (reset / update / result) over the whole set
  local function add(name, fn, state)
    if seen[name] then fail(("compile: metric '%s' given twice"):format(name)) end
    seen[name] = true
    metrics[#metrics + 1] = {name = name, fn = fn, state = state}
  end
  for k, m in pairs(list) do
    if math.type(k) ~= "integer" and type(k) ~= "string" then
      fail("compile: metrics keys must be list indices or names")
    end
  end
  for i, m in ipairs(list) do
    if type(m) == "string" then
      add(named_metric(m, loss_kind))
      names[#names + 1] = m
    elseif type(m) == "function" then
      add("metric_" .. i, m)
    elseif ember.metrics.is_metric(m) then
      if type(m.name) ~= "string" then fail(("compile: metric %d has no name"):format(i)) end
      add(m.name, nil, m)
      names[#names + 1] = m.name
    else
      fail(("compile: metric %d must be a name, an ember.metrics metric or a function, got %s")
           :format(i, kind(m)))
    end
  end
  local keyed = {}
  for k in pairs(list) do if type(k) == "string" then keyed[#keyed + 1] = k end end
  table.sort(keyed)
  for _, k in ipairs(keyed) do
    if type(list[k]) ~= "function" then
      fail(("compile: metric '%s' must be a function, got %s"):format(k, kind(list[k])))
    end
    add(k, list[k])
  end
  -- Plain fields, set past __newindex: a loss module assigned the usual way
  -- would become a child of the model (and its buffers part of the
  -- state_dict).  model:save stores them (see nn/serialize.lua).
  local fields = rawget(self, "_fields")
  fields.optimizer, fields.loss_fn, fields.compiled_metrics = opt, loss_fn, names
  fields.compiled_loss = type(o.loss) == "string" and o.loss or nil
  fields._metrics = metrics
  fields.distributed = o.distributed or nil
  fields.mixed_precision = mp or nil
  return self
end

-- }======================================================================

return Module.compile
