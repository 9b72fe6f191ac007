--- ember.train: Keras-style training for every nn.Module -- compile, fit,
-- evaluate, predict and summary, installed as Module methods.
--
--   model:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy",
--                 metrics = {"accuracy"}}
--   local history = model:fit(x, y, {epochs = 5, validation_split = 0.1})
--   local loss, acc = model:evaluate(x_test, y_test)
--
-- The loop is the one a PyTorch user writes (zero_grad, forward, loss,
-- backward, step); this file adds batching, shuffling, validation,
-- metrics averaged over the epoch, callbacks and the progress display.
local ember = require "ember"
local Module = require "ember.nn.module"
local F = require "ember.nn.functional"
local optim = require "ember.optim"
local callbacks = require "ember.callbacks"

local M = {}

--- Raise msg at the first caller outside this file.
local fail = require("ember.blame").failer("ember/train")

local function kind(v) return ember.is_tensor(v) and "tensor" or type(v) end
local function class_of(m) return getmetatable(m).__name end

--- Check an options table against defaults; returns a filled copy.
local function options(name, opts, defaults)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" or ember.is_tensor(opts) then
    fail(("%s: options must be a table, got %s"):format(name, kind(opts)))
  end
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts) do
    if defaults[k] == nil then fail(("%s: unknown option '%s'"):format(name, tostring(k))) end
    o[k] = v
  end
  for k, v in pairs(defaults) do
    if v == false and o[k] == false then o[k] = nil end  -- false marks "no default"
  end
  return o
end

local function check_int(name, key, v, lo)
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    fail(("%s: %s must be an integer, got %s"):format(name, key, tostring(v)))
  end
  v = math.tointeger(v)
  if v < lo then fail(("%s: %s must be >= %d, got %d"):format(name, key, lo, v)) end
  return v
end

-- {======================================================================
-- Losses and metrics by name
-- =======================================================================

--- The module that produces the model's output: the last layer of
-- (nested) Sequentials, else the model itself.
local function last_layer(model)
  while class_of(model) == "Sequential" and #model > 0 do model = model[#model] end
  return model
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
    return fn, name == "sparse_categorical_crossentropy" and "sparse" or "categorical"
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
  fail(("compile: unknown metric '%s' (known: accuracy, sparse_categorical_accuracy, " ..
        "categorical_accuracy, binary_accuracy, mse, mae, or a function)"):format(name))
end

--- A metric function's value as a number (a one-element tensor is fine).
local function metric_value(name, v)
  if ember.is_tensor(v) then v = v:item() end
  if type(v) ~= "number" then
    fail(("metric '%s' must return a number, got %s"):format(name, kind(v)))
  end
  return v
end

-- }======================================================================

-- {======================================================================
-- compile
-- =======================================================================

-- Keras's default learning rates for optimizers given by name.
local OPTIMIZERS = {adam = {"Adam", 1e-3}, adamw = {"AdamW", 1e-3}, sgd = {"SGD", 1e-2},
                    rmsprop = {"RMSprop", 1e-3}, adagrad = {"Adagrad", 1e-3}}

--- model:compile{optimizer = "rmsprop", loss = ..., metrics = {...}}:
-- optimizer is a name (Keras's default learning rate) or an
-- ember.optim optimizer, bound here to the model's parameters when it was
-- made without any; loss a name, a loss module or a function(output,
-- target); metrics a list of names or functions(output, target) ->
-- number (named entries, metrics = {top = fn}, name them).
function Module:compile(spec)
  local o = options("compile", spec, {optimizer = "rmsprop", loss = false, metrics = false,
                                      distributed = false})
  if o.distributed ~= nil and type(o.distributed) ~= "boolean" then
    fail("compile: distributed must be a boolean, got " .. kind(o.distributed))
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
  local function add(name, fn)
    if seen[name] then fail(("compile: metric '%s' given twice"):format(name)) end
    seen[name] = true
    metrics[#metrics + 1] = {name = name, fn = fn}
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
    else
      fail(("compile: metric %d must be a name or a function, got %s"):format(i, kind(m)))
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
  return self
end

local function compiled(self, fname)
  if not self.optimizer or not self.loss_fn then
    fail(("%s: the model is not compiled (call model:compile{optimizer = ..., loss = ...} first)")
         :format(fname))
  end
end

-- }======================================================================

-- {======================================================================
-- Batches
-- =======================================================================

-- The sample shape (without the batch) and dtype each model was last fed
-- by fit, evaluate or predict: summary() dry-runs on it.
local seen_input = setmetatable({}, {__mode = "k"})

local function remember_input(self, x)
  local shape = x:shape()
  table.remove(shape, 1)
  seen_input[self] = {shape = shape, dtype = x.dtype}
end

local function check_xy(fname, x, y, need_y)
  if not ember.is_tensor(x) then fail(("%s: x must be a tensor, got %s"):format(fname, kind(x))) end
  if x:dim() == 0 then fail(("%s: x must have a batch dimension, got a scalar"):format(fname)) end
  if need_y or y ~= nil then
    if not ember.is_tensor(y) then fail(("%s: y must be a tensor, got %s"):format(fname, kind(y))) end
    if y:dim() == 0 or y:size(1) ~= x:size(1) then
      fail(("%s: x and y must have the same number of samples, got %d and %s")
           :format(fname, x:size(1), y:dim() == 0 and "a scalar" or tostring(y:size(1))))
    end
  end
end

--- Rows [start, start + len) of t, or the rows perm[start..] names, on
-- device dev (the data may stay on the CPU while the model is on the GPU:
-- each batch is moved as it is used).
local function rows(t, start, len, perm, dev)
  local r
  if perm then
    local idx = perm:narrow(1, start, len)
    if idx.device ~= t.device then idx = idx:to(t.device) end
    r = t:index_select(1, idx)
  else
    r = t:narrow(1, start, len)
  end
  if dev and r.device ~= dev then r = r:to(dev) end
  return r
end

--- The device of a model: that of its first parameter or buffer.
local function device_of(model)
  local p = model:parameters()[1] or model:buffers()[1]
  return p and p.device or "cpu"
end

-- }======================================================================

-- {======================================================================
-- Progress display
-- =======================================================================

--- Seconds as Keras shows them: 7s, 1:05, 1:02:03.
local function fmt_time(s)
  s = math.floor(s + 0.5)
  if s >= 3600 then
    return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60)
  elseif s >= 60 then
    return ("%d:%02d"):format(s // 60, s % 60)
  end
  return ("%ds"):format(s)
end

local function fmt_step(s)
  if s >= 1 then return ("%.0fs/step"):format(s) end
  if s >= 1e-3 then return ("%.0fms/step"):format(s * 1e3) end
  return ("%.0fus/step"):format(s * 1e6)
end

local function fmt_logs(keys, logs)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = logs[k]
    if v ~= v then
      parts[#parts + 1] = k .. ": nan"   -- not C's "-nan"
    elseif v ~= nil then
      parts[#parts + 1] = (math.abs(v) >= 1e-3 or v == 0) and ("%s: %.4f"):format(k, v)
                          or ("%s: %.4e"):format(k, v)
    end
  end
  return #parts > 0 and " - " .. table.concat(parts, " - ") or ""
end

--- Keras's progress bar: redrawn in place on a terminal, one line per
-- epoch otherwise.
local Progress = {}
Progress.__index = Progress

function Progress.new(verbose, epochs)
  return setmetatable({verbose = verbose, epochs = epochs,
                       tty = verbose == 1 and ember._stdout_isatty(), width = 0}, Progress)
end

function Progress:epoch_begin(epoch, steps)
  self.epoch, self.steps, self.t0, self.last = epoch, steps, ember.clock(), -math.huge
  if self.verbose == 0 then return end
  if self.tty then io.stdout:write(("Epoch %d/%d\n"):format(epoch, self.epochs)) end
end

--- Keras's bar: "[=====>....]", 30 wide, all "=" when the epoch is done.
local function bar(done, steps)
  local width = 30
  local filled = math.floor(width * done / steps)
  local s = ""
  if filled > 0 then s = ("="):rep(filled - 1) .. (done < steps and ">" or "=") end
  return "[" .. s .. ("."):rep(width - filled) .. "]"
end

local function digits(n) return #tostring(n) end

function Progress:batch_end(done, keys, logs)
  if not self.tty then return end
  local now = ember.clock()
  if done < self.steps and now - self.last < 0.1 then return end
  self.last = now
  local elapsed = now - self.t0
  local eta = elapsed / done * (self.steps - done)
  local line = ("%" .. digits(self.steps) .. "d/%d %s - ETA: %s%s")
               :format(done, self.steps, bar(done, self.steps), fmt_time(eta), fmt_logs(keys, logs))
  self:draw(line)
end

function Progress:draw(line)
  local pad = math.max(0, self.width - #line)
  io.stdout:write("\r", line, (" "):rep(pad))
  io.stdout:flush()
  self.width = #line
end

function Progress:epoch_end(done, keys, logs)
  if self.verbose == 0 then return end
  local elapsed = ember.clock() - self.t0
  local timing = (" - %s %s"):format(fmt_time(elapsed), fmt_step(elapsed / math.max(done, 1)))
  if self.tty then
    self:draw(("%d/%d %s%s%s"):format(done, self.steps, bar(done, self.steps), timing,
                                      fmt_logs(keys, logs)))
    io.stdout:write("\n")
    self.width = 0
  else
    io.stdout:write(("Epoch %d/%d - %d/%d%s%s\n"):format(self.epoch, self.epochs, done,
                    self.steps, timing, fmt_logs(keys, logs)))
  end
  io.stdout:flush()
end

-- }======================================================================

-- {======================================================================
-- Callbacks
-- =======================================================================

--- Call hook on every callback (objects get self; plain tables don't).
local function notify(list, hook, ...)
  for _, cb in ipairs(list) do
    if callbacks.is_callback(cb) then
      cb[hook](cb, ...)
    else
      local fn = cb[hook]
      if fn then fn(...) end
    end
    if hook == "on_train_batch_begin" or hook == "on_train_batch_end" then
      local alias = hook == "on_train_batch_begin" and "on_batch_begin" or "on_batch_end"
      if callbacks.is_callback(cb) then cb[alias](cb, ...)
      elseif cb[alias] then cb[alias](...) end
    end
  end
end

local function check_callbacks(list)
  if list == nil then return {} end
  if type(list) ~= "table" or callbacks.is_callback(list) then
    fail("fit: callbacks must be a list of callbacks, got " .. kind(list))
  end
  for i, cb in ipairs(list) do
    if type(cb) ~= "table" then
      fail(("fit: callback %d must be a callback or a table of hook functions, got %s")
           :format(i, kind(cb)))
    end
    if not callbacks.is_callback(cb) then
      for k, v in pairs(cb) do
        if not callbacks._HOOKS[k] then
          fail(("fit: callback %d has an unknown hook '%s'"):format(i, tostring(k)))
        end
        if type(v) ~= "function" then
          fail(("fit: hook '%s' of callback %d must be a function, got %s"):format(k, i, kind(v)))
        end
      end
    end
  end
  return list
end

-- }======================================================================

-- {======================================================================
-- Distributed (ember.distributed): fit, evaluate with distributed = true
-- =======================================================================

local dist = ember.distributed

--- Whether a call runs distributed: its own `distributed` option, else
-- compile's, else whether the model is a DistributedDataParallel; joins
-- the job (a world of one without a launcher) when so.  True only in a
-- job of several processes.
local function distributed(self, fname, opts)
  local v
  if type(opts) == "table" and opts.distributed ~= nil then v = opts.distributed
  else
    v = rawget(self, "_fields").distributed
    if v == nil then v = class_of(self) == "DistributedDataParallel" end
  end
  if type(v) ~= "boolean" then
    fail(("%s: distributed must be a boolean, got %s"):format(fname, kind(v)))
  end
  if not v then return false end
  dist.init()
  return dist.world_size() > 1
end

--- The module a distributed fit calls: a DistributedDataParallel's own
-- module, since fit averages the gradients itself.  (Not distributed, fit
-- calls the wrapper, which then averages them.)
local function forward_module(self, ddp)
  if ddp and class_of(self) == "DistributedDataParallel" then return self.module end
  return self
end

--- Sums (a list of numbers) added up over the ranks, in float64.
local function sum_over_ranks(list)
  local t = ember.tensor(list, {dtype = "float64"})
  dist.all_reduce(t, "sum")
  return t:totable()
end

--- Whether any rank's model says stop_training.
local function any_rank_stops(self)
  local t = ember.tensor({self.stop_training and 1 or 0}, {dtype = "int32"})
  dist.all_reduce(t, "max")
  return t:totable()[1] > 0
end

-- }======================================================================

-- {======================================================================
-- evaluate, predict
-- =======================================================================

--- Loss and metrics over (x, y) in batches, in eval mode without
-- recording; returns a logs table (with `prefix` on each key).
--
-- Distributed (ddp): each rank takes its own contiguous part of the rows,
-- and the sums are added up over the ranks, so the logs are those of the
-- whole set on every rank.
local function run_eval(self, x, y, batch_size, prefix, ddp)
  local was_training = self.training
  self:eval()
  local n = x:size(1)
  local dev = device_of(self)
  local model = forward_module(self, ddp)
  local first, last = 1, n
  if ddp then
    dist.check_same(prefix == "val_" and "fit (validation)" or "evaluate", n, "numbers of samples")
    local part = (n + dist.world_size() - 1) // dist.world_size()
    first = (dist.rank() - 1) * part + 1
    last = math.min(n, first + part - 1)
  end
  local ok, logs = pcall(ember.no_grad, function()
    local sums = {loss = 0}
    for _, m in ipairs(self._metrics) do sums[m.name] = 0 end
    for start = first, last, batch_size do
      local len = math.min(batch_size, last - start + 1)
      local xb, yb = rows(x, start, len, nil, dev), rows(y, start, len, nil, dev)
      local out = model(xb)
      sums.loss = sums.loss + self.loss_fn(out, yb):item() * len
      for _, m in ipairs(self._metrics) do
        sums[m.name] = sums[m.name] + metric_value(m.name, m.fn(out, yb)) * len
      end
    end
    if ddp then
      local list = {sums.loss}
      for i, m in ipairs(self._metrics) do list[i + 1] = sums[m.name] end
      list = sum_over_ranks(list)
      sums.loss = list[1]
      for i, m in ipairs(self._metrics) do sums[m.name] = list[i + 1] end
    end
    local out = {}
    for k, v in pairs(sums) do out[prefix .. k] = v / n end
    return out
  end)
  self:train(was_training)
  if not ok then error(logs, 0) end
  return logs
end

local function metric_keys(self, prefix)
  local keys = {prefix .. "loss"}
  for _, m in ipairs(self._metrics) do keys[#keys + 1] = prefix .. m.name end
  return keys
end

--- model:evaluate(x, y [, {batch_size = 32, return_dict = false}]) ->
-- loss, metric1, ... (or one table of them with return_dict).
function Module:evaluate(x, y, opts)
  compiled(self, "evaluate")
  local o = options("evaluate", opts, {batch_size = 32, return_dict = false, verbose = 0,
                                       distributed = false})
  check_xy("evaluate", x, y, true)
  local bs = check_int("evaluate", "batch_size", o.batch_size, 1)
  if x:size(1) == 0 then fail("evaluate: no samples") end
  local ddp = distributed(self, "evaluate", opts)
  remember_input(self, x)
  local logs = run_eval(self, x, y, bs, "", ddp)
  if o.return_dict then return logs end
  local out = {}
  for i, k in ipairs(metric_keys(self, "")) do out[i] = logs[k] end
  return table.unpack(out)
end

--- model:predict(x [, {batch_size = 32}]): the outputs for every row of x,
-- computed in batches in eval mode without recording gradients.
function Module:predict(x, opts)
  local o = options("predict", opts, {batch_size = 32, verbose = 0})
  check_xy("predict", x)
  local bs = check_int("predict", "batch_size", o.batch_size, 1)
  local n = x:size(1)
  if n == 0 then fail("predict: no samples") end
  remember_input(self, x)
  local was_training = self.training
  local dev = device_of(self)
  self:eval()
  local ok, out = pcall(ember.no_grad, function()
    local parts = {}
    for start = 1, n, bs do
      local p = self(rows(x, start, math.min(bs, n - start + 1), nil, dev))
      if not ember.is_tensor(p) then
        fail("predict: the model's forward must return a tensor, got " .. kind(p))
      end
      parts[#parts + 1] = p
    end
    return #parts == 1 and parts[1] or ember.cat(parts, 1)
  end)
  self:train(was_training)
  if not ok then error(out, 0) end
  return out
end

-- }======================================================================

-- {======================================================================
-- fit
-- =======================================================================

local History = {}
History.__index = function(h, k) return rawget(h, "history")[k] or History[k] end

--- model:fit(x, y, {epochs = 1, batch_size = 32, validation_split = 0,
-- validation_data = {xv, yv}, shuffle = true, callbacks = {}, verbose = 1,
-- initial_epoch = 0, terminate_on_nan = true}) -> history, as Keras:
-- history.loss[e], history.accuracy[e], history.val_loss[e], ... (also
-- under history.history), history.epoch lists the epochs run.
--
-- terminate_on_nan (keras.callbacks.TerminateOnNaN, on by default): a
-- batch whose loss is NaN or +-Inf ends training before its optimizer
-- step, so the weights stay those of the last finite batch.  fit then
-- returns normally with history.stopped = {reason = "nan" or "inf",
-- epoch, batch, message} and prints the message (unless verbose = 0).  It
-- reads the value the loss display reads anyway: no extra sync on the GPU.
-- A callback that sets model.stop_training leaves history.stopped =
-- {reason = "callback", epoch, batch, message}.
--
-- validation_split takes the last fraction of x and y, before shuffling;
-- initial_epoch is the number of epochs already done (training runs
-- epochs initial_epoch + 1 .. epochs).  Each epoch visits the training
-- rows in a fresh order drawn from ember's generator (ember.randperm), so
-- a run is reproducible under ember.manual_seed.
function Module:fit(x, y, opts)
  compiled(self, "fit")
  local o = options("fit", opts, {epochs = 1, batch_size = 32, validation_split = 0,
    validation_data = false, shuffle = true, callbacks = false, verbose = 1, initial_epoch = 0,
    terminate_on_nan = true, distributed = false})
  check_xy("fit", x, y, true)
  local epochs = check_int("fit", "epochs", o.epochs, 0)
  local bs = check_int("fit", "batch_size", o.batch_size, 1)
  local initial = check_int("fit", "initial_epoch", o.initial_epoch, 0)
  local verbose = o.verbose
  if verbose ~= 0 and verbose ~= 1 and verbose ~= 2 then
    fail("fit: verbose must be 0, 1 or 2, got " .. tostring(verbose))
  end
  if type(o.shuffle) ~= "boolean" then fail("fit: shuffle must be a boolean, got " .. kind(o.shuffle)) end
  -- options() turns a false into nil ("no default" marker): nil here is false
  local terminate_on_nan = o.terminate_on_nan
  if terminate_on_nan == nil then terminate_on_nan = false end
  if type(terminate_on_nan) ~= "boolean" then
    fail("fit: terminate_on_nan must be a boolean, got " .. kind(terminate_on_nan))
  end
  local split = o.validation_split
  if type(split) ~= "number" or not (split >= 0 and split < 1) then
    fail("fit: validation_split must be a number in [0, 1), got " .. tostring(split))
  end
  local cbs = check_callbacks(o.callbacks)
  local xv, yv
  if o.validation_data then
    local vd = o.validation_data
    if type(vd) ~= "table" or ember.is_tensor(vd) then
      fail("fit: validation_data must be a table {x_val, y_val}, got " .. kind(vd))
    end
    xv, yv = vd[1], vd[2]
    check_xy("fit (validation_data)", xv, yv, true)
  elseif split > 0 then
    local n = x:size(1)
    local at = math.floor(n * (1 - split))
    if at < 1 or at >= n then
      fail(("fit: validation_split %g of %d samples leaves %s"):format(split, n,
           at < 1 and "no training samples" or "no validation samples"))
    end
    xv, yv = x:narrow(1, at + 1, n - at), y:narrow(1, at + 1, n - at)
    x, y = x:narrow(1, 1, at), y:narrow(1, 1, at)
  end
  local n = x:size(1)
  if n == 0 then fail("fit: no training samples") end
  local ddp = distributed(self, "fit", opts)
  if ddp then dist.check_same("fit", n, "numbers of samples") end   -- before anything changes
  remember_input(self, x)
  -- distributed: each rank runs its shard of every epoch (dist.shard)
  local nloc = ddp and (n + dist.world_size() - 1) // dist.world_size() or n
  local steps = (nloc + bs - 1) // bs
  if ddp and dist.rank() ~= 1 then verbose = 0 end
  local keys = metric_keys(self, "")
  local all_keys = {table.unpack(keys)}
  if xv then for _, k in ipairs(metric_keys(self, "val_")) do all_keys[#all_keys + 1] = k end end

  local history = setmetatable({history = {}, epoch = {},
                                params = {epochs = epochs, steps = steps, verbose = verbose}}, History)
  for _, cb in ipairs(cbs) do
    if callbacks.is_callback(cb) then
      cb:set_model(self)
      cb:set_params({epochs = epochs, steps = steps, verbose = verbose, metrics = all_keys})
    end
  end
  local progress = Progress.new(verbose, epochs)
  local was_training = self.training
  local opt, loss_fn, metrics = self.optimizer, self.loss_fn, self._metrics
  local dev = device_of(self)
  local model = forward_module(self, ddp)
  local params = self:parameters()
  self.stop_training = false
  if ddp then dist.broadcast_module(self, 1) end

  local function run()
    notify(cbs, "on_train_begin", {})
    for epoch = initial + 1, epochs do
      self:train()
      notify(cbs, "on_epoch_begin", epoch, {})
      progress:epoch_begin(epoch, steps)
      local perm = o.shuffle and ember.randperm(n) or nil
      if ddp then perm = dist.shard(perm, n, "fit") end
      local sums, seen, logs, done = {loss = 0}, 0, {}, 0
      for _, m in ipairs(metrics) do sums[m.name] = 0 end
      for b = 1, steps do
        local start = (b - 1) * bs + 1
        local len = math.min(bs, nloc - start + 1)
        local xb, yb = rows(x, start, len, perm, dev), rows(y, start, len, perm, dev)
        notify(cbs, "on_train_batch_begin", b, {batch = b, size = len})
        opt:zero_grad()
        local out = model(xb)
        local loss = loss_fn(out, yb)
        if not ember.is_tensor(loss) or loss:numel() ~= 1 then
          fail("fit: the loss must be a one-element tensor, got " ..
               (ember.is_tensor(loss) and "shape [" .. table.concat(loss:shape(), ",") .. "]" or kind(loss)))
        end
        loss:backward()
        -- the one read of the loss per batch (the display needs it); taken
        -- before the step, so a non-finite loss leaves the weights alone.
        -- Distributed: the gradients and the loss averaged over the ranks
        -- in one call, so every rank sees the same loss and stops together.
        local lv
        if ddp then
          local lt = loss:detach():clone()
          dist.average_gradients(params, 0, {lt})
          lv = lt:item()
        else
          lv = loss:item()
        end
        local bad = terminate_on_nan and (lv ~= lv or lv == math.huge or lv == -math.huge)
        if bad then
          local what = lv ~= lv and "nan" or lv > 0 and "inf" or "-inf"
          history.stopped = {reason = lv ~= lv and "nan" or "inf", epoch = epoch, batch = b,
            message = ("fit: loss is %s at epoch %d, batch %d; training stopped")
                      :format(what, epoch, b)}
          self.stop_training = true
        else
          opt:step()
        end
        sums.loss = sums.loss + lv * len
        if #metrics > 0 then
          ember.no_grad(function()
            local od = out:detach()
            for _, m in ipairs(metrics) do
              sums[m.name] = sums[m.name] + metric_value(m.name, m.fn(od, yb)) * len
            end
          end)
        end
        seen, done = seen + len, b
        logs = {}
        for k, v in pairs(sums) do logs[k] = v / seen end
        progress:batch_end(b, keys, logs)
        logs.batch, logs.size = b, len
        notify(cbs, "on_train_batch_end", b, logs)
        logs.batch, logs.size = nil, nil
        if ddp and #cbs > 0 then self.stop_training = any_rank_stops(self) end
        if self.stop_training then
          history.stopped = history.stopped or {reason = "callback", epoch = epoch, batch = b,
            message = ("fit: a callback stopped training at epoch %d, batch %d"):format(epoch, b)}
          break
        end
      end
      if ddp then
        -- the epoch's logs over all ranks; rank 1's buffers (BatchNorm's
        -- running statistics) for every rank, as DDP's broadcast_buffers
        local list = {seen, sums.loss}
        for i, m in ipairs(metrics) do list[i + 2] = sums[m.name] end
        list = sum_over_ranks(list)
        logs = {loss = list[2] / list[1]}
        for i, m in ipairs(metrics) do logs[m.name] = list[i + 2] / list[1] end
        local buffers = self:buffers()
        if #buffers > 0 then dist.broadcast_coalesced(buffers, 1) end
      end
      if xv then
        for k, v in pairs(run_eval(self, xv, yv, bs, "val_", ddp)) do logs[k] = v end
      end
      progress:epoch_end(done, all_keys, logs)
      notify(cbs, "on_epoch_end", epoch, logs)
      local h = history.history
      for k, v in pairs(logs) do
        h[k] = h[k] or {}
        h[k][#history.epoch + 1] = v
      end
      history.epoch[#history.epoch + 1] = epoch
      if ddp then self.stop_training = any_rank_stops(self) end
      if self.stop_training then
        history.stopped = history.stopped or {reason = "callback", epoch = epoch,
          message = ("fit: a callback stopped training at the end of epoch %d"):format(epoch)}
        break
      end
    end
    notify(cbs, "on_train_end", {})
  end
  local ok, err = pcall(run)
  self:train(was_training)
  if not ok then error(err, 0) end
  local stopped = history.stopped
  if stopped and stopped.reason ~= "callback" and verbose ~= 0 then
    io.stdout:write(stopped.message, "\n")
    io.stdout:flush()
  end
  return history
end

-- }======================================================================

-- {======================================================================
-- summary
-- =======================================================================

local function count(t) return t:numel() end

local function group3(n)
  local s = tostring(n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function shape_str(t)
  if not ember.is_tensor(t) then return "?" end
  local dims = t:shape()
  dims[1] = "None"
  return "(" .. table.concat(dims, ", ") .. ")"
end

--- The input shape (without the batch dimension) a dry run can use:
-- given, remembered from fit/predict, or read off a first Linear/Embedding.
local function infer_input(self)
  local seen = seen_input[self]
  if seen then return seen.shape, seen.dtype end
  local first = self
  while class_of(first) == "Sequential" and #first > 0 do first = first[1] end
  if class_of(first) == "Linear" then return {first.in_features}, "float32" end
  if class_of(first) == "Embedding" then return {1}, "int64" end
  return nil
end

--- model:summary([input_shape] [, {print_fn = print}]): print (and
-- return) a Keras-style table of the top-level layers, their output
-- shapes and parameter counts.  Output shapes come from a dry run on one
-- zero sample of input_shape (without the batch dimension, e.g. {1, 28,
-- 28}); without it, the shape of the samples last given to fit, evaluate
-- or predict, or else the one the first layer tells (Linear, Embedding).
function Module:summary(input_shape, opts)
  if opts == nil and type(input_shape) == "table" and input_shape[1] == nil and next(input_shape) then
    input_shape, opts = nil, input_shape
  end
  local o = options("summary", opts, {print_fn = print, dtype = false})
  if type(o.print_fn) ~= "function" then
    fail("summary: print_fn must be a function, got " .. kind(o.print_fn))
  end
  local dtype = o.dtype or "float32"
  if input_shape ~= nil then
    if type(input_shape) ~= "table" then
      fail("summary: input_shape must be a list of sizes (without the batch), got " .. kind(input_shape))
    end
    for i, d in ipairs(input_shape) do check_int("summary", "input_shape[" .. i .. "]", d, 0) end
  else
    input_shape, dtype = infer_input(self)
    dtype = o.dtype or dtype
  end
  -- rows: the children (or the model itself when it has none)
  local rows_ = {}
  for name, child in self:named_children() do rows_[#rows_ + 1] = {name = name, m = child} end
  if #rows_ == 0 then rows_[1] = {name = "", m = self} end
  local dry_error
  if input_shape then
    for _, r in ipairs(rows_) do
      local m = r.m
      m.forward = function(mod, ...)
        local out = getmetatable(mod).__class.forward(mod, ...)
        r.out = out
        return out
      end
    end
    local was_training = self.training
    self:eval()
    local ok, err = pcall(ember.no_grad, function()
      local shape = {1, table.unpack(input_shape)}
      self(ember.zeros(shape, {dtype = dtype, device = device_of(self)}))
    end)
    self:train(was_training)
    for _, r in ipairs(rows_) do r.m.forward = nil end
    if not ok then dry_error = tostring(err) end
  end
  local total, trainable = 0, 0
  local lines = {}
  local W1, W2, W3 = 29, 26, 12
  local rule = ("_"):rep(W1 + W2 + W3 + 3)
  lines[#lines + 1] = ("Model: %s"):format(class_of(self))
  lines[#lines + 1] = rule
  lines[#lines + 1] = (" %-" .. W1 .. "s%-" .. W2 .. "s%s"):format("Layer (type)", "Output Shape", "Param #")
  lines[#lines + 1] = ("="):rep(#rule)
  for i, r in ipairs(rows_) do
    local n = 0
    for _, p in ipairs(r.m:parameters()) do n = n + count(p) end
    local label = r.name ~= "" and ("%s (%s)"):format(r.name, class_of(r.m)) or class_of(r.m)
    lines[#lines + 1] = (" %-" .. W1 .. "s%-" .. W2 .. "s%s"):format(label,
                         input_shape and shape_str(r.out) or "?", group3(n))
    if i < #rows_ then lines[#lines + 1] = "" end
  end
  for _, p in ipairs(self:parameters()) do
    total = total + count(p)
    if p.requires_grad then trainable = trainable + count(p) end
  end
  lines[#lines + 1] = ("="):rep(#rule)
  lines[#lines + 1] = "Total params: " .. group3(total)
  lines[#lines + 1] = "Trainable params: " .. group3(trainable)
  lines[#lines + 1] = "Non-trainable params: " .. group3(total - trainable)
  lines[#lines + 1] = rule
  if not input_shape then
    lines[#lines + 1] = "(output shapes need an input shape: model:summary{1, 28, 28})"
  elseif dry_error then
    lines[#lines + 1] = "(dry run failed: " .. dry_error .. ")"
  end
  local text = table.concat(lines, "\n")
  o.print_fn(text)
  return text
end

-- }======================================================================

M.History = History
M._format_time, M._format_step = fmt_time, fmt_step   -- for the specs
return M
