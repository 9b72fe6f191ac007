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
  local model = forward_fn(self, forward_module(self, ddp))
  local first, last = 1, n
  if ddp then
    dist.check_same(prefix == "val_" and "fit (validation)" or "evaluate", n, "numbers of samples")
    local part = (n + dist.world_size() - 1) // dist.world_size()
    first = (dist.rank() - 1) * part + 1
    last = math.min(n, first + part - 1)
  end
  local ok, logs = pcall(ember.no_grad, function()
    local sums = {loss = 0}
    metrics_begin(self._metrics, sums)
    for start = first, last, batch_size do
      local len = math.min(batch_size, last - start + 1)
      local xb, yb = rows(x, start, len, dev), rows(y, start, len, dev)
      local out = model(xb)
      sums.loss = sums.loss + self.loss_fn(out, yb):item() * len
      metrics_update(self._metrics, sums, out, yb, len)
    end
    if ddp then
      sums.loss = metrics_over_ranks(self._metrics, {sums.loss}, sums, sum_over_ranks)[1]
    end
    local out = {}
    for k, v in pairs(sums) do out[prefix .. k] = v / n end
    metrics_results(self._metrics, out, prefix, true)
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
  local forward = forward_fn(self, self)
  local ok, out = pcall(ember.no_grad, function()
    local parts = {}
    for start = 1, n, bs do
      local p = forward(rows(x, start, math.min(bs, n - start + 1), dev))
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
  local o = options("fit", opts, {epochs = 1, batch_size = 32, validation_split = 0,
    validation_data = false, shuffle = true, callbacks = false, verbose = 1, initial_epoch = 0,
    terminate_on_nan = true, distributed = false, accumulate = 1, clip_grad_norm = false})
  check_xy("fit", x, y, true)
  local epochs = check_int("fit", "epochs", o.epochs, 0)
  local bs = check_int("fit", "batch_size", o.batch_size, 1)
  local initial = check_int("fit", "initial_epoch", o.initial_epoch, 0)
  local accumulate = check_int("fit", "accumulate", o.accumulate, 1)
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
  -- The batches come from ember.data.loader: a shuffled epoch draws
  -- ember.randperm(n) when it starts (so a run is reproducible under
  -- ember.manual_seed); distributed, each rank takes its shard of rank 1's
  -- order (dist.shard).  Its messages name fit.
  local batches = data.loader(x, y, {batch_size = bs, shuffle = o.shuffle, shard = ddp})
  batches._fname = "fit"
  local steps = #batches
  -- the rows of this rank's epoch, for the batch sizes of a group
  local rows_here = ddp and (n + dist.world_size() - 1) // dist.world_size() or n
  local function batch_len(b) return math.min(bs, rows_here - (b - 1) * bs) end
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
  self.stop_training = false
  if ddp then dist.broadcast_module(self, 1) end

  local function run()
    notify(cbs, "on_train_begin", {})
    for epoch = initial + 1, epochs do
      self:train()
      notify(cbs, "on_epoch_begin", epoch, {})
      progress:epoch_begin(epoch, steps)
      local next_batch = batches:iter()   -- draws this epoch's order
      local sums, seen, logs, done = {loss = 0}, 0, {}, 0
      local group_rows = 0   -- the samples of the current accumulation group
      metrics_begin(metrics, sums)
      for b = 1, steps do
        local xb, yb = next_batch()
        local len = xb:size(1)
        if xb.device ~= dev then xb = xb:to(dev) end
        if yb.device ~= dev then yb = yb:to(dev) end
        notify(cbs, "on_train_batch_begin", b, {batch = b, size = len})
        -- accumulation: batches first..last make one group (one step)
        local first = b - (b - 1) % accumulate
        local last = math.min(first + accumulate - 1, steps)
        if b == first then
          opt:zero_grad()
          group_rows = 0
          for k = first, last do group_rows = group_rows + batch_len(k) end
        end
        local stepping = b == last
        local out, loss
        local function forward_backward()
          out = forward(xb)
          loss = loss_fn(out, yb)
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
  if not ok then error(err, 0) end
  local stopped = history.stopped
  if stopped and stopped.reason ~= "callback" and verbose ~= 0 then
    io.stdout:write(stopped.message, "\n")
    io.stdout:flush()
  end
  return history
end

-- }======================================================================

return {History = History}
