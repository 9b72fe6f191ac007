--- ember.train.fit: model:fit, evaluate and predict -- the training loop,
-- its callbacks and its distributed form (internal; ember.train
-- loads it).
local ember = require "ember"
local Module = require "ember.nn.module"
local callbacks = require "ember.callbacks"
local data = require "ember.data"
local common = require "ember.train.common"
local Progress = require("ember.train.progress").Progress
local nn_utils = require "ember.nn.utils"
local blame = require "ember.blame"
local warnings = require "ember.warnings"

local fail, kind, class_of, options = common.fail, common.kind, common.class_of, common.options
local check_int, compiled, check_xy = common.check_int, common.compiled, common.check_xy
local remember_input, rows, device_of = common.remember_input, common.rows, common.device_of

--- A metric function's value as a number (a one-element tensor is fine).
local function metric_value(name, v)
  if ember.is_tensor(v) then v = v:item() end
  if type(v) ~= "number" then
    fail(("metric '%s' must return a number, got %s"):format(name, kind(v)))
  end
  return v
end

-- Metrics are of two kinds (compile's list): a function averaged over the
-- samples (sums[name] holds its sum), or a stateful metric (m.state,
-- ember.metrics) that sees every batch and gives the whole set's value
-- (precision, recall, f1, AUC are not means over batches).

--- Start an epoch or an evaluation: zero sums, reset the stateful metrics.
local function metrics_begin(metrics, sums)
  for _, m in ipairs(metrics) do
    if m.state then m.state:reset() else sums[m.name] = 0 end
  end
end

--- One batch of `len` samples.
local function metrics_update(metrics, sums, out, y, len)
  for _, m in ipairs(metrics) do
    if m.state then m.state:update(out, y)
    else sums[m.name] = sums[m.name] + metric_value(m.name, m.fn(out, y)) * len end
  end
end

--- The stateful metrics' values into logs; during an epoch (at_end false)
-- only those cheap to compute after every batch (not AUC).
local function metrics_results(metrics, logs, prefix, at_end)
  for _, m in ipairs(metrics) do
    if m.state and (at_end or m.state.per_batch ~= false) then
      logs[prefix .. m.name] = m.state:result()
    end
  end
end

--- Distributed: the numbers in head (a list), the metric sums and the
-- stateful metrics' totals added up over the ranks in one call; the sums
-- and the states are replaced, the summed head returned.
local function metrics_over_ranks(metrics, head, sums, sum_over_ranks)
  local list, at = table.move(head, 1, #head, 1, {}), {}
  for _, m in ipairs(metrics) do
    local st = m.state and m.state:state() or {sums[m.name]}
    at[m] = {#list + 1, #st}
    table.move(st, 1, #st, #list + 1, list)
  end
  list = sum_over_ranks(list)
  for m, span in pairs(at) do
    if m.state then
      m.state:set_state(table.move(list, span[1], span[1] + span[2] - 1, 1, {}))
    else
      sums[m.name] = list[span[1]]
    end
  end
  return table.move(list, 1, #head, 1, {})
end

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

--- A function running model(x) as compile{mixed_precision = ...} asked:
-- under ember.autocast when it named a dtype, else plainly.  The loss and
-- the backward run outside autocast, as PyTorch recommends (the losses
-- are float32 under autocast anyway).
local function forward_fn(self, model)
  local mp = rawget(self, "_fields").mixed_precision
  if not mp then return model end
  return function(x) return ember.autocast(mp, model, x) end
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
-- Data: tensors, an ember.data loader or a dataset; weighted losses
-- =======================================================================

local function is_loader(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and mt.__name == "ember.data.DataLoader" or false
end

--- A dataset as ember.data.loader takes one: a table (not a tensor, not a
-- loader) with #ds.
local function is_dataset(v)
  if type(v) ~= "table" or ember.is_tensor(v) or is_loader(v) then return false end
  local ok, n = pcall(function() return #v end)
  return ok and math.type(n) == "integer"
end

--- The (x, y, opts) of fit and evaluate, which also take (loader [, opts])
-- or (dataset [, opts]): then the second argument is the options.  Returns
-- x, y, opts and whether x is a loader or a dataset.
local function data_args(fname, x, y, opts)
  if ember.is_tensor(x) then return x, y, opts, false end
  if not (is_loader(x) or is_dataset(x)) then
    fail(("%s: x must be a tensor, an ember.data loader or a dataset, got %s"):format(fname, kind(x)))
  end
  if y ~= nil and opts == nil and type(y) == "table" and not ember.is_tensor(y) then
    y, opts = nil, y
  end
  if y ~= nil then
    fail(("%s: y must not be given with a %s (its batches carry the targets), got %s")
         :format(fname, is_loader(x) and "loader" or "dataset", kind(y)))
  end
  return x, nil, opts, true
end

--- The loader a loader or dataset gives batches through: a loader as it
-- is (batch_size and shuffle are its own: giving them too is an error), a
-- dataset in one with the call's batch_size (and shuffle, for fit).
local function loader_of(fname, src, opts, bs, shuffle, ddp)
  if is_loader(src) then
    for _, k in ipairs{"batch_size", "shuffle"} do
      if type(opts) == "table" and opts[k] ~= nil then
        fail(("%s: %s cannot be given with a loader (the loader has its own %s)"):format(fname, k, k))
      end
    end
    if ddp and not src.shard then
      fail(("%s: a distributed run needs a loader made with shard = true"):format(fname))
    end
    return src
  end
  local l = data.loader(src, {batch_size = bs, shuffle = shuffle or false, shard = ddp or false})
  l._fname = fname
  return l
end

--- The class weight of each target in yb: the class of a sample is the
-- argmax of its row for (N, C) targets with C > 1 (one-hot), else the
-- target's value (a 1-based class index, or 0 / 1 for binary targets);
-- classes the table leaves out weigh 1.  Computed on yb's device, with
-- no read back to the host.
local function class_weights(cw, yb)
  local cls = yb
  if yb:dim() == 2 and yb:size(2) > 1 then cls = yb:argmax(2) end
  cls = cls:reshape(yb:size(1)):long()
  local top = 0
  for k in pairs(cw) do top = math.max(top, k) end
  -- lut[c + 1] is class c's weight, 0 <= c <= top; other classes map to
  -- the last entry, 1
  local lut = {}
  for c = 0, top + 1 do lut[c + 1] = cw[c] or 1 end
  local t = ember.tensor(lut, {dtype = "float32"})
  if t.device ~= yb.device then t = t:to(yb.device) end
  local idx = cls + 1
  idx = idx:masked_fill(idx:lt(1):logical_or(idx:gt(top + 1)), top + 2)
  return t:index_select(1, idx)
end

--- Check fit's class_weight: a table of integer class -> number >= 0.
local function check_class_weight(cw)
  if type(cw) ~= "table" or ember.is_tensor(cw) then
    fail("fit: class_weight must be a table of class -> weight, got " .. kind(cw))
  end
  for k, v in pairs(cw) do
    if math.type(k) ~= "integer" or k < 0 then
      fail(("fit: class_weight's keys must be classes (integers >= 0), got %s"):format(tostring(k)))
    end
    if type(v) ~= "number" or not (v >= 0) or v == math.huge then
      fail(("fit: class_weight[%d] must be a finite number >= 0, got %s"):format(k, tostring(v)))
    end
  end
  return cw
end

--- The loss of a batch weighted sample by sample, as Keras's
-- sum-over-batch-size reduction: the per-sample losses (the loss with
-- reduction "none", averaged over each sample's other elements) times
-- their weights (sw the sample weights, cw the class weights; either may
-- be nil), summed and divided by the batch's size -- the mean of the
-- weighted losses, not a weighted average.
local function weighted_loss(loss_fn, out, yb, sw, cw)
  local l
  if Module.is_module(loss_fn) and loss_fn.reduction then
    local r = loss_fn.reduction
    loss_fn.reduction = "none"
    local ok, v = pcall(loss_fn, out, yb)
    loss_fn.reduction = r
    if not ok then error(v, 0) end
    l = v
  else
    l = loss_fn(out, yb, {reduction = "none"})
  end
  local n = yb:size(1)
  if not ember.is_tensor(l) or l:dim() == 0 or l:size(1) ~= n then
    fail("fit: class_weight and sample_weight need a loss that gives one loss per sample " ..
         "with reduction = \"none\" (a loss module, or a function taking {reduction = \"none\"})")
  end
  if l:dim() > 1 then l = l:reshape(n, l:numel() // n):mean(2) end
  for _, w in ipairs{sw or false, cw or false} do
    if w then
      if w.dtype ~= l.dtype then w = w:to(l.dtype) end
      if w.device ~= l.device then w = w:to(l.device) end
      l = l * w
    end
  end
  return l:sum() / n
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
  local dev = device_of(self)
  local model = forward_fn(self, forward_module(self, ddp))
  local next_batch
  if is_loader(x) then
    -- a loader (evaluate's or validation_data's): one pass, in its order
    if ddp then
      fail((prefix == "val_" and "fit" or "evaluate") ..
           ": a distributed evaluation takes tensors, not a loader or a dataset")
    end
    next_batch = x:iter()
  else
    local n = x:size(1)
    local first, last = 1, n
    if ddp then
      dist.check_same(prefix == "val_" and "fit (validation)" or "evaluate", n, "numbers of samples")
      local part = (n + dist.world_size() - 1) // dist.world_size()
      first = (dist.rank() - 1) * part + 1
      last = math.min(n, first + part - 1)
    end
    local start = first
    next_batch = function()
      if start > last then return nil end
      local len = math.min(batch_size, last - start + 1)
      start = start + len
      return rows(x, start - len, len), rows(y, start - len, len)
    end
  end
  local ok, logs = pcall(ember.no_grad, function()
    local sums, n = {loss = 0}, 0
    metrics_begin(self._metrics, sums)
    for xb, yb in next_batch do
      if not ember.is_tensor(yb) then fail("evaluate: the loader's batches must be (x, y), got no y") end
      if xb.device ~= dev then xb = xb:to(dev) end
      if yb.device ~= dev then yb = yb:to(dev) end
      local len = xb:size(1)
      local out = model(xb)
      sums.loss = sums.loss + self.loss_fn(out, yb):item() * len
      metrics_update(self._metrics, sums, out, yb, len)
      n = n + len
    end
    if ddp then
      sums.loss = metrics_over_ranks(self._metrics, {sums.loss}, sums, sum_over_ranks)[1]
      n = x:size(1)
    end
    if n == 0 then fail((prefix == "val_" and "fit: the validation data" or "evaluate: the data") ..
                        " gives no samples") end
    local out = {}
    for k, v in pairs(sums) do out[prefix .. k] = v / n end
    metrics_results(self._metrics, out, prefix, true)
    return out
  end)
  self:train(was_training)
  if not ok then blame.reraise(logs) end
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
  local from_loader
  x, y, opts, from_loader = data_args("evaluate", x, y, opts)
  local o = options("evaluate", opts, {batch_size = 32, return_dict = false, verbose = 0,
                                       distributed = false})
  local bs = check_int("evaluate", "batch_size", o.batch_size, 1)
  local ddp = distributed(self, "evaluate", opts)
  if from_loader then
    x = loader_of("evaluate", x, opts, bs, false, false)
  else
    check_xy("evaluate", x, y, true)
    if x:size(1) == 0 then fail("evaluate: no samples") end
    remember_input(self, x)
  end
  local logs = run_eval(self, x, y, bs, "", ddp)
  if o.return_dict then return logs end
  local out = {}
  for i, k in ipairs(metric_keys(self, "")) do out[i] = logs[k] end
  return table.unpack(out)
end

--- model:predict(x [, {batch_size = 32}]): the outputs for every row of x,
-- computed in batches in eval mode without recording gradients.
function Module:predict(x, opts)
  local from_loader, _
  x, _, opts, from_loader = data_args("predict", x, nil, opts)
  local o = options("predict", opts, {batch_size = 32, verbose = 0})
  local bs = check_int("predict", "batch_size", o.batch_size, 1)
  local next_batch
  if from_loader then
    -- the batches' first part is x (a (x, y) loader's y is not used)
    next_batch = loader_of("predict", x, opts, bs, false, false):iter()
  else
    check_xy("predict", x)
    local n = x:size(1)
    if n == 0 then fail("predict: no samples") end
    remember_input(self, x)
    local start = 1
    next_batch = function()
      if start > n then return nil end
      local len = math.min(bs, n - start + 1)
      start = start + len
      return rows(x, start - len, len)
    end
  end
  local was_training = self.training
  local dev = device_of(self)
  self:eval()
  local forward = forward_fn(self, self)
  local ok, out = pcall(ember.no_grad, function()
    local parts = {}
    for xb in next_batch do
      if xb.device ~= dev then xb = xb:to(dev) end
      local p = forward(xb)
      if not ember.is_tensor(p) then
        fail("predict: the model's forward must return a tensor, got " .. kind(p))
      end
      parts[#parts + 1] = p
    end
    if #parts == 0 then fail("predict: no samples") end
    return #parts == 1 and parts[1] or ember.cat(parts, 1)
  end)
  self:train(was_training)
  if not ok then blame.reraise(out) end
  return warnings.mark(out)
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
--
-- accumulate = n (gradient accumulation): the optimizer steps once every
-- n batches (a group), after the gradients of the group's batches are
-- added up.  Each batch's loss is weighted by its share of the group's
-- samples (len / group's samples: 1/n when the batches are equal), so
-- with a mean-reducing loss the step's gradient is the mean over the
-- group's samples, as one batch of them would give.  The epoch's last
-- group may be short (fewer batches, or a short last batch): it still
-- steps at the epoch's end, with its own samples' mean, so no gradient
-- is carried over into the next epoch.  clip_grad_norm = c clips the
-- accumulated gradients (nn.utils.clip_grad_norm_) just before each step.
-- Batches, progress, metrics and callbacks count batches as without it;
-- on_train_batch_end's logs carry stepped (whether the optimizer stepped
-- after this batch) and optimizer_steps (steps so far in this fit).  A
-- callback that stops training in the middle of a group drops that
-- group's gradients without a step.
function Module:fit(x, y, opts)
  compiled(self, "fit")
  local from_loader
  x, y, opts, from_loader = data_args("fit", x, y, opts)
  local o = options("fit", opts, {epochs = 1, batch_size = 32, validation_split = 0,
    validation_data = false, shuffle = true, callbacks = false, verbose = 1, initial_epoch = 0,
    terminate_on_nan = true, distributed = false, accumulate = 1, clip_grad_norm = false,
    class_weight = false, sample_weight = false, steps_per_epoch = false})
  if not from_loader then check_xy("fit", x, y, true) end
  local epochs = check_int("fit", "epochs", o.epochs, 0)
  local bs = check_int("fit", "batch_size", o.batch_size, 1)
  local initial = check_int("fit", "initial_epoch", o.initial_epoch, 0)
  local accumulate = check_int("fit", "accumulate", o.accumulate, 1)
  local steps_per_epoch = o.steps_per_epoch and check_int("fit", "steps_per_epoch", o.steps_per_epoch, 1)
  local clip = o.clip_grad_norm
  if clip ~= nil and (type(clip) ~= "number" or not (clip > 0)) then
    fail("fit: clip_grad_norm must be a number > 0, got " .. tostring(clip))
  end
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
  local class_weight = o.class_weight and check_class_weight(o.class_weight)
  local sw = o.sample_weight
  if sw ~= nil then
    if from_loader then
      fail("fit: sample_weight is for tensors x, y; a loader or dataset gives its weights " ..
           "as a third part of its batches")
    end
    if not ember.is_tensor(sw) or sw:dim() ~= 1 or sw:size(1) ~= x:size(1) then
      fail(("fit: sample_weight must be a tensor (N) with N = %d, the samples of x, got %s")
           :format(x:size(1), ember.is_tensor(sw) and "shape [" .. table.concat(sw:shape(), ",") .. "]"
                   or kind(sw)))
    end
  end
  local cbs = check_callbacks(o.callbacks)
  local xv, yv
  if o.validation_data then
    local vd = o.validation_data
    if is_loader(vd) or (is_dataset(vd) and not ember.is_tensor(vd[1])) then
      -- a dataset is evaluated in order, with fit's batch_size
      xv = is_loader(vd) and vd or loader_of("fit", vd, nil, bs, false, false)
    else
      if type(vd) ~= "table" or ember.is_tensor(vd) then
        fail("fit: validation_data must be a table {x_val, y_val}, a loader or a dataset, got " .. kind(vd))
      end
      xv, yv = vd[1], vd[2]
      check_xy("fit (validation_data)", xv, yv, true)
    end
  elseif split > 0 then
    if from_loader then
      fail("fit: validation_split needs tensors x, y; give a loader or a dataset validation_data")
    end
    local n = x:size(1)
    local at = math.floor(n * (1 - split))
    if at < 1 or at >= n then
      fail(("fit: validation_split %g of %d samples leaves %s"):format(split, n,
           at < 1 and "no training samples" or "no validation samples"))
    end
    xv, yv = x:narrow(1, at + 1, n - at), y:narrow(1, at + 1, n - at)
    x, y = x:narrow(1, 1, at), y:narrow(1, 1, at)
    if sw then sw = sw:narrow(1, 1, at) end
  end
  local ddp = distributed(self, "fit", opts)
  local batches
  if from_loader then
    batches = loader_of("fit", x, opts, bs, o.shuffle, ddp)
    if #batches.dataset == 0 or #batches == 0 then fail("fit: the loader gives no batches") end
  else
    local n = x:size(1)
    if n == 0 then fail("fit: no training samples") end
    if ddp then dist.check_same("fit", n, "numbers of samples") end   -- before anything changes
    remember_input(self, x)
    -- The batches come from ember.data.loader: a shuffled epoch draws
    -- ember.randperm(n) when it starts (so a run is reproducible under
    -- ember.manual_seed); distributed, each rank takes its shard of rank 1's
    -- order (dist.shard).  Its messages name fit.  The sample weights
    -- travel as the batches' third part, as a loader's would.
    local src = sw and data.TensorDataset(x, y, sw) or data.TensorDataset(x, y)
    batches = data.loader(src, {batch_size = bs, shuffle = o.shuffle, shard = ddp})
    batches._fname = "fit"
    if steps_per_epoch and steps_per_epoch > #batches then
      fail(("fit: steps_per_epoch (%d) is more than the %d batches of an epoch of x")
           :format(steps_per_epoch, #batches))
    end
  end
  local steps = steps_per_epoch or #batches
  -- The batch source: tensors start a new pass (a new order) every epoch,
  -- cut after steps batches.  A loader or dataset with steps_per_epoch is
  -- one stream across epochs, as Keras reads a dataset: the loader starts
  -- a new pass (its own new epoch) whenever it runs out.
  local stream = from_loader and steps_per_epoch
  local it
  local function next_batch()
    local xb, yb, wb = it()
    if xb == nil and stream then
      it = batches:iter()
      xb, yb, wb = it()
    end
    if not ember.is_tensor(xb) or not ember.is_tensor(yb) then
      fail("fit: the loader's batches must be (x, y) or (x, y, sample_weight) tensors, got " ..
           (xb == nil and "none" or kind(xb) .. ", " .. kind(yb)))
    end
    if wb ~= nil and (not ember.is_tensor(wb) or wb:dim() ~= 1 or wb:size(1) ~= xb:size(1)) then
      fail("fit: a batch's sample weights must be a tensor (N) for its N samples")
    end
    return xb, yb, wb
  end
  if ddp and dist.rank() ~= 1 then verbose = 0 end
  local keys = metric_keys(self, "")
  local all_keys = {table.unpack(keys)}
  if xv then for _, k in ipairs(metric_keys(self, "val_")) do all_keys[#all_keys + 1] = k end end

  local history = setmetatable({history = {}, epoch = {},
                                params = {epochs = epochs, steps = steps, verbose = verbose,
                                          accumulate = accumulate}}, History)
  for _, cb in ipairs(cbs) do
    if callbacks.is_callback(cb) then
      cb:set_model(self)
      cb:set_params({epochs = epochs, steps = steps, verbose = verbose, metrics = all_keys,
                     accumulate = accumulate})
    end
  end
  local progress = Progress.new(verbose, epochs)
  local was_training = self.training
  local opt, loss_fn, metrics = self.optimizer, self.loss_fn, self._metrics
  local dev = device_of(self)
  local model = forward_module(self, ddp)
  local forward = forward_fn(self, model)
  local params = self:parameters()
  -- a DistributedDataParallel that fit does not average for (not
  -- distributed here) averages in its own backward: only the group's last
  local wrapper = not ddp and accumulate > 1 and class_of(model) == "DistributedDataParallel"
  local optimizer_steps = 0
  local seen_input = not from_loader   -- a loader's first batch tells summary the input
  self.stop_training = false
  if ddp then dist.broadcast_module(self, 1) end

  local function run()
    notify(cbs, "on_train_begin", {})
    for epoch = initial + 1, epochs do
      self:train()
      notify(cbs, "on_epoch_begin", epoch, {})
      progress:epoch_begin(epoch, steps)
      if not stream or not it then it = batches:iter() end   -- draws a new order
      local sums, seen, logs, done = {loss = 0}, 0, {}, 0
      local group_rows = 0   -- the samples of the current accumulation group
      local group = {}       -- its batches, drawn when it starts
      metrics_begin(metrics, sums)
      for b = 1, steps do
        -- accumulation: batches first..last make one group (one step)
        local first = b - (b - 1) % accumulate
        local last = math.min(first + accumulate - 1, steps)
        if b == first then
          group_rows = 0
          for k = first, last do
            group[k - first + 1] = table.pack(next_batch())
            group_rows = group_rows + group[k - first + 1][1]:size(1)
          end
        end
        local xb, yb, wb = table.unpack(group[b - first + 1], 1, 3)
        group[b - first + 1] = false
        local len = xb:size(1)
        if not seen_input then remember_input(self, xb); seen_input = true end
        if xb.device ~= dev then xb = xb:to(dev) end
        if yb.device ~= dev then yb = yb:to(dev) end
        notify(cbs, "on_train_batch_begin", b, {batch = b, size = len})
        if b == first then opt:zero_grad() end
        local stepping = b == last
        local out, loss
        local function forward_backward()
          out = forward(xb)
          if wb or class_weight then
            loss = weighted_loss(loss_fn, out, yb, wb, class_weight and class_weights(class_weight, yb))
          else
            loss = loss_fn(out, yb)
          end
          if not ember.is_tensor(loss) or loss:numel() ~= 1 then
            fail("fit: the loss must be a one-element tensor, got " ..
                 (ember.is_tensor(loss) and "shape [" .. table.concat(loss:shape(), ",") .. "]" or kind(loss)))
          end
          if group_rows == len then loss:backward() else (loss * (len / group_rows)):backward() end
        end
        if wrapper and not stepping then model:no_sync(forward_backward) else forward_backward() end
        -- the one read of the loss per batch (the display needs it); taken
        -- before the step, so a non-finite loss leaves the weights alone.
        -- Distributed: the gradients and the loss averaged over the ranks
        -- in one call, so every rank sees the same loss and stops together;
        -- inside a group only the loss is (the gradients add up locally).
        local lv
        if ddp then
          local lt = loss:detach():clone()
          if stepping then dist.average_gradients(params, 0, {lt})
          else dist.all_reduce(lt, "mean") end
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
        elseif stepping then
          if clip then nn_utils.clip_grad_norm_(params, clip) end
          opt:step()
          optimizer_steps = optimizer_steps + 1
        end
        sums.loss = sums.loss + lv * len
        if #metrics > 0 then
          ember.no_grad(function()
            metrics_update(metrics, sums, out:detach(), yb, len)
          end)
        end
        seen, done = seen + len, b
        logs = {}
        for k, v in pairs(sums) do logs[k] = v / seen end
        metrics_results(metrics, logs, "", false)
        progress:batch_end(b, keys, logs)
        logs.batch, logs.size = b, len
        logs.stepped, logs.optimizer_steps = stepping and not bad, optimizer_steps
        notify(cbs, "on_train_batch_end", b, logs)
        logs.batch, logs.size, logs.stepped, logs.optimizer_steps = nil, nil, nil, nil
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
        local list = metrics_over_ranks(metrics, {seen, sums.loss}, sums, sum_over_ranks)
        logs = {loss = list[2] / list[1]}
        for _, m in ipairs(metrics) do
          if not m.state then logs[m.name] = sums[m.name] / list[1] end
        end
        local buffers = self:buffers()
        if #buffers > 0 then dist.broadcast_coalesced(buffers, 1) end
      end
      -- before the validation, which resets the stateful metrics
      metrics_results(metrics, logs, "", true)
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
  if not ok then blame.reraise(err) end
  local stopped = history.stopped
  if stopped and stopped.reason ~= "callback" and verbose ~= 0 then
    io.stdout:write(stopped.message, "\n")
    io.stdout:flush()
  end
  return history
end

-- }======================================================================

return {History = History}
