--- ember.callbacks: hooks into Module:fit, as keras.callbacks.
--
-- A callback is an object with any of the methods
--   on_train_begin(logs)            on_train_end(logs)
--   on_epoch_begin(epoch, logs)     on_epoch_end(epoch, logs)
--   on_train_batch_begin(batch, logs)  on_train_batch_end(batch, logs)
-- (on_batch_begin / on_batch_end are the same as the train_batch ones).
-- fit gives each callback `cb.model` and `cb.params` ({epochs, steps,
-- verbose, metrics}: metrics lists the keys epoch logs will hold) before
-- on_train_begin.  Epochs and batches are numbered from 1.
--
-- A plain table of functions is a callback too (keras.callbacks.
-- LambdaCallback): its functions are called without self, e.g.
--   {on_epoch_end = function(epoch, logs) print(epoch, logs.loss) end}
local ember = require "ember"
local check = require "ember.check"

local callbacks = {}

local HOOKS = {on_train_begin = true, on_train_end = true, on_epoch_begin = true,
               on_epoch_end = true, on_train_batch_begin = true,
               on_train_batch_end = true, on_batch_begin = true, on_batch_end = true}
callbacks._HOOKS = HOOKS

--- Raise msg at the first caller outside this file and lua/ember/train/.
local fail = require("ember.blame").failer("ember/callbacks", "ember/train")
local files = require "ember.files"

-- {======================================================================
-- The base class
-- =======================================================================

local Callback = {__name = "Callback"}
Callback.__index = Callback
callbacks.Callback = Callback

--- Callback:extend(name): a new callback class; calling it makes an
-- instance and runs init(self, ...).
function Callback.extend(Parent, name)
  local C = setmetatable({__name = name, __ember_callback = true}, {
    __index = Parent,
    __call = function(cls, ...)
      local self = setmetatable({}, cls)
      self:init(...)
      return self
    end,
  })
  C.__index = C
  C.__tostring = function() return "ember.callbacks." .. name end
  return C
end

function Callback:init() end
function Callback:set_model(model) self.model = model end
function Callback:set_params(params) self.params = params end
for k in pairs(HOOKS) do Callback[k] = function() end end

--- Is cb an instance of a Callback class?
function callbacks.is_callback(cb)
  local mt = type(cb) == "table" and getmetatable(cb)
  return mt and rawget(mt, "__ember_callback") == true or false
end

--- LambdaCallback{on_epoch_end = fn, ...}: the functions, without self.
callbacks.LambdaCallback = Callback:extend("LambdaCallback")
function callbacks.LambdaCallback:init(hooks)
  if type(hooks) ~= "table" then
    fail("LambdaCallback: expected a table of hook functions, got " .. type(hooks))
  end
  for k, fn in pairs(hooks) do
    if not HOOKS[k] then
      fail(("LambdaCallback: unknown hook '%s' (known: on_train_begin, on_train_end, " ..
            "on_epoch_begin, on_epoch_end, on_train_batch_begin, on_train_batch_end, " ..
            "on_batch_begin, on_batch_end)"):format(tostring(k)))
    end
    if type(fn) ~= "function" then
      fail(("LambdaCallback: hook '%s' must be a function, got %s"):format(k, type(fn)))
    end
    self[k] = function(_, ...) return fn(...) end
  end
end

-- }======================================================================

-- {======================================================================
-- Shared helpers
-- =======================================================================

--- The options over their defaults; `optional` lists the options that
-- have none (EarlyStopping's baseline).
local function check_opts(name, opts, defaults, optional)
  local known = {}
  for k in pairs(defaults) do known[k] = true end
  for _, k in ipairs(optional or {}) do known[k] = true end
  check.options(name, opts, known, fail)
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

local function check_number(name, key, v, lo)
  if type(v) ~= "number" or v ~= v or v < lo then
    fail(("%s: %s must be a number >= %s, got %s"):format(name, key, lo, tostring(v)))
  end
  return v
end

--- Is `monitor` improved by going down ("min") or up ("max")?  Keras's
-- "auto": up for accuracies, down for everything else.
local function monitor_mode(name, mode, monitor)
  if type(monitor) ~= "string" then
    fail(("%s: monitor must be a string, got %s"):format(name, type(monitor)))
  end
  if mode == "auto" then
    local base = monitor:gsub("^val_", "")
    return (base:find("acc", 1, true) or base == "auc") and "max" or "min"
  end
  if mode ~= "min" and mode ~= "max" then
    fail(("%s: mode must be 'auto', 'min' or 'max', got %s"):format(name, tostring(mode)))
  end
  return mode
end

--- The monitored value of an epoch's logs; an unknown name is an error
-- listing what there is.
local function monitored(name, monitor, logs)
  local v = logs[monitor]
  if v == nil then
    local keys = {}
    for k in pairs(logs) do keys[#keys + 1] = k end
    table.sort(keys)
    fail(("%s: monitored metric '%s' is not in the logs (available: %s)%s")
         :format(name, monitor, table.concat(keys, ", "),
                 monitor:find("^val_") and "; pass validation_data or validation_split to fit" or ""))
  end
  return v
end

--- Check at train begin that fit will log `monitor`.
local function check_monitor(self)
  local known = self.params and self.params.metrics
  if not known then return end
  for _, k in ipairs(known) do if k == self.monitor then return end end
  fail(("%s: monitored metric '%s' will not be in the logs (fit logs: %s)%s")
       :format(self.__name, self.monitor, table.concat(known, ", "),
               self.monitor:find("^val_") and "; pass validation_data or validation_split to fit" or ""))
end

local function improved(mode, current, best, delta)
  if mode == "min" then return current < best - delta end
  return current > best + delta
end

local function snapshot(model)
  local copy = {}
  for k, t in pairs(model:state_dict()) do copy[k] = t:clone() end
  return copy
end

local function lrs(model)
  local opt = model.optimizer
  if not opt then fail("callbacks: the model has no optimizer (call model:compile first)") end
  return opt.param_groups
end

-- }======================================================================

-- {======================================================================
-- TerminateOnNaN
-- =======================================================================

--- TerminateOnNaN([{verbose = 1}]): as keras.callbacks.TerminateOnNaN,
-- stop fit at the end of the first batch whose loss is NaN or +-Inf,
-- printing "Batch 17: Invalid loss, terminating training" (not with
-- verbose = 0).  fit already does this by default (its terminate_on_nan
-- option, which also skips that batch's step); this class is for lists
-- built by hand and for fit(..., {terminate_on_nan = false}).  After a
-- stop, cb.stopped = {epoch = e, batch = b, loss = v}.
callbacks.TerminateOnNaN = Callback:extend("TerminateOnNaN")
function callbacks.TerminateOnNaN:init(opts)
  local o = check_opts("TerminateOnNaN", opts, {verbose = 1})
  if o.verbose ~= 0 and o.verbose ~= 1 then
    fail("TerminateOnNaN: verbose must be 0 or 1, got " .. tostring(o.verbose))
  end
  self.verbose, self.epoch, self.stopped = o.verbose, 0, nil
end
function callbacks.TerminateOnNaN:on_epoch_begin(epoch) self.epoch = epoch end
function callbacks.TerminateOnNaN:on_train_batch_end(batch, logs)
  local loss = logs and logs.loss
  if type(loss) == "number" and (loss ~= loss or loss == math.huge or loss == -math.huge) then
    if self.verbose > 0 then print(("Batch %d: Invalid loss, terminating training"):format(batch)) end
    self.stopped = {epoch = self.epoch, batch = batch, loss = loss}
    self.model.stop_training = true
  end
end

-- }======================================================================

-- {======================================================================
-- EarlyStopping
-- =======================================================================

local EarlyStopping = Callback:extend("EarlyStopping")
callbacks.EarlyStopping = EarlyStopping

--- EarlyStopping{monitor = "val_loss", min_delta = 0, patience = 0,
-- mode = "auto", baseline = nil, restore_best_weights = false,
-- start_from_epoch = 0, verbose = 0}: stop fit when `monitor` has not
-- improved by more than min_delta for `patience` epochs.  With
-- restore_best_weights, the weights of the best epoch are put back when
-- it stops.
function EarlyStopping:init(opts)
  local o = check_opts("EarlyStopping", opts, {monitor = "val_loss", min_delta = 0,
    patience = 0, mode = "auto", restore_best_weights = false, start_from_epoch = 0,
    verbose = 0}, {"baseline"})
  self.monitor = o.monitor
  self.mode = monitor_mode("EarlyStopping", o.mode, o.monitor)
  self.min_delta = math.abs(check_number("EarlyStopping", "min_delta", o.min_delta, -math.huge))
  self.patience = check_number("EarlyStopping", "patience", o.patience, 0)
  self.start_from_epoch = check_number("EarlyStopping", "start_from_epoch", o.start_from_epoch, 0)
  if o.baseline ~= nil then check_number("EarlyStopping", "baseline", o.baseline, -math.huge) end
  self.baseline = o.baseline
  if type(o.restore_best_weights) ~= "boolean" then
    fail("EarlyStopping: restore_best_weights must be a boolean, got " .. type(o.restore_best_weights))
  end
  self.restore_best_weights, self.verbose = o.restore_best_weights, o.verbose
end

function EarlyStopping:on_train_begin()
  check_monitor(self)
  self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, 0, 0, nil
  self.best = self.mode == "min" and math.huge or -math.huge
end

function EarlyStopping:on_epoch_end(epoch, logs)
  local current = monitored("EarlyStopping", self.monitor, logs)
  if epoch <= self.start_from_epoch then return end
  self.wait = self.wait + 1
  if improved(self.mode, current, self.best, self.min_delta) then
    self.best, self.best_epoch = current, epoch
    if self.restore_best_weights then self.best_weights = snapshot(self.model) end
    if self.baseline == nil or improved(self.mode, current, self.baseline, self.min_delta) then
      self.wait = 0
      return
    end
  end
  if self.wait >= self.patience and epoch > 1 then
    self.stopped_epoch = epoch
    self.model.stop_training = true
    if self.restore_best_weights and self.best_weights then
      if self.verbose > 0 then
        print(("Restoring model weights from the end of the best epoch: %d."):format(self.best_epoch))
      end
      self.model:load_state_dict(self.best_weights)
    end
  end
end

function EarlyStopping:on_train_end()
  if self.stopped_epoch > 0 and self.verbose > 0 then
    print(("Epoch %d: early stopping"):format(self.stopped_epoch))
  end
end

-- }======================================================================

-- {======================================================================
-- ModelCheckpoint
-- =======================================================================

--- Whether this process writes files: in a job of several processes
-- (ember.distributed) only rank 1 does, so one file is written once.
local function writer()
  local d = ember.distributed
  return not d.is_initialized() or d.rank() == 1
end

--- Refuse anything but a non-empty string where the callback wants a
-- path ("a file path", "a log folder").
local function check_path(fname, v, what)
  if type(v) ~= "string" or v == "" then
    fail(("%s: expected %s (a non-empty string), got %s"):format(fname, what, type(v)))
  end
end

local ModelCheckpoint = Callback:extend("ModelCheckpoint")
callbacks.ModelCheckpoint = ModelCheckpoint

--- ModelCheckpoint(filepath, {monitor = "val_loss", save_best_only = false,
-- save_weights_only = false, mode = "auto", verbose = 0}): save the model
-- at the end of each epoch (or only when `monitor` improves).  filepath
-- may hold {epoch}, {epoch:02d}, {val_loss:.4f}, ... filled from the
-- epoch's logs.  A full save (model:save) holds the architecture, the
-- optimizer state, the epoch and the random generator's state, so that
-- callbacks.load_checkpoint(path) resumes training exactly.
function ModelCheckpoint:init(filepath, opts)
  check_path("ModelCheckpoint", filepath, "a file path")
  local o = check_opts("ModelCheckpoint", opts, {monitor = "val_loss", save_best_only = false,
    save_weights_only = false, mode = "auto", verbose = 0})
  for _, k in ipairs{"save_best_only", "save_weights_only"} do
    if type(o[k]) ~= "boolean" then
      fail(("ModelCheckpoint: %s must be a boolean, got %s"):format(k, type(o[k])))
    end
  end
  self.filepath, self.monitor = filepath, o.monitor
  self.mode = monitor_mode("ModelCheckpoint", o.mode, o.monitor)
  self.save_best_only, self.save_weights_only = o.save_best_only, o.save_weights_only
  self.verbose = o.verbose
  self.best = self.mode == "min" and math.huge or -math.huge
end

--- filepath with {name} and {name:fmt} replaced from epoch and logs.
local function fill_path(template, epoch, logs)
  return (template:gsub("{([%w_]+):?([^}]*)}", function(key, fmt)
    local v = key == "epoch" and epoch or logs[key]
    if v == nil then fail(("ModelCheckpoint: '{%s}' in the file path is not in the logs"):format(key)) end
    if fmt ~= "" then return ("%" .. fmt):format(v) end
    return tostring(v)
  end))
end

function ModelCheckpoint:on_train_begin()
  if self.save_best_only then check_monitor(self) end
end

function ModelCheckpoint:on_epoch_end(epoch, logs)
  local path = fill_path(self.filepath, epoch, logs)
  local verbose = writer() and self.verbose or 0
  if self.save_best_only then
    local current = monitored("ModelCheckpoint", self.monitor, logs)
    if not improved(self.mode, current, self.best, 0) then
      if verbose > 0 then
        print(("Epoch %d: %s did not improve from %.5f"):format(epoch, self.monitor, self.best))
      end
      return
    end
    if verbose > 0 then
      print(("Epoch %d: %s improved from %.5f to %.5f, saving model to %s")
            :format(epoch, self.monitor, self.best, current, path))
    end
    self.best = current
  elseif verbose > 0 then
    print(("Epoch %d: saving model to %s"):format(epoch, path))
  end
  if not writer() then return end
  local rng = ember.get_rng_state()
  local meta = {["fit.epoch"] = tostring(epoch),
                ["fit.rng_state"] = ("%d %d"):format(rng.seed, rng.offset)}
  if self.save_weights_only then
    ember.save(path, self.model:state_dict(), meta)
  else
    self.model:save(path, {metadata = meta})
  end
end

--- callbacks.load_checkpoint(path) -> model, epoch: rebuild a model saved
-- by ModelCheckpoint (weights, architecture, compiled optimizer), restore
-- the random generator to its state at that epoch's end, and return the
-- epoch, to pass as fit's initial_epoch: training then continues exactly
-- as if it had never stopped.
function callbacks.load_checkpoint(path)
  local model, meta = ember.nn.load(path)
  local epoch = tonumber(meta["fit.epoch"])
  local seed, offset = (meta["fit.rng_state"] or ""):match("^(%-?%d+) (%-?%d+)$")
  if not epoch or not seed then
    fail(("load_checkpoint: '%s' was not written by ModelCheckpoint (no epoch or generator state)")
         :format(path))
  end
  ember.set_rng_state{seed = math.tointeger(tonumber(seed)), offset = math.tointeger(tonumber(offset))}
  return model, math.tointeger(epoch)
end

-- }======================================================================

-- {======================================================================
-- Learning rates
-- =======================================================================

local LearningRateScheduler = Callback:extend("LearningRateScheduler")
callbacks.LearningRateScheduler = LearningRateScheduler

--- LearningRateScheduler(schedule [, {verbose = 0}]): at each epoch's start,
-- lr = schedule(epoch, lr) (epoch from 1) for every parameter group.
function LearningRateScheduler:init(schedule, opts)
  if type(schedule) ~= "function" then
    fail("LearningRateScheduler: expected a function schedule(epoch, lr), got " .. type(schedule))
  end
  local o = check_opts("LearningRateScheduler", opts, {verbose = 0})
  self.schedule, self.verbose = schedule, o.verbose
end

function LearningRateScheduler:on_epoch_begin(epoch)
  local groups = lrs(self.model)
  local lr = self.schedule(epoch, groups[1].lr)
  if type(lr) ~= "number" or lr ~= lr or lr < 0 then
    fail(("LearningRateScheduler: the schedule must return a number >= 0, got %s at epoch %d")
         :format(tostring(lr), epoch))
  end
  for _, g in ipairs(groups) do g.lr = lr end
  if self.verbose > 0 then
    print(("Epoch %d: LearningRateScheduler setting learning rate to %g."):format(epoch, lr))
  end
end

function LearningRateScheduler:on_epoch_end(_, logs)
  logs.lr = lrs(self.model)[1].lr
end

local ReduceLROnPlateau = Callback:extend("ReduceLROnPlateau")
callbacks.ReduceLROnPlateau = ReduceLROnPlateau

--- ReduceLROnPlateau{monitor = "val_loss", factor = 0.1, patience = 10,
-- mode = "auto", min_delta = 1e-4, cooldown = 0, min_lr = 0, verbose = 0}:
-- multiply the learning rate by factor when `monitor` has stopped
-- improving for `patience` epochs (Keras's rule).
function ReduceLROnPlateau:init(opts)
  local name = "ReduceLROnPlateau"
  local o = check_opts(name, opts, {monitor = "val_loss", factor = 0.1, patience = 10,
    mode = "auto", min_delta = 1e-4, cooldown = 0, min_lr = 0, verbose = 0})
  self.monitor = o.monitor
  self.mode = monitor_mode(name, o.mode, o.monitor)
  self.factor = check_number(name, "factor", o.factor, 0)
  if self.factor >= 1 then fail(("%s: factor must be < 1, got %s"):format(name, self.factor)) end
  self.patience = check_number(name, "patience", o.patience, 0)
  self.min_delta = check_number(name, "min_delta", o.min_delta, 0)
  self.cooldown = check_number(name, "cooldown", o.cooldown, 0)
  self.min_lr = check_number(name, "min_lr", o.min_lr, 0)
  self.verbose = o.verbose
end

function ReduceLROnPlateau:on_train_begin()
  check_monitor(self)
  self.wait, self.cooldown_counter = 0, 0
  self.best = self.mode == "min" and math.huge or -math.huge
end

function ReduceLROnPlateau:on_epoch_end(epoch, logs)
  local groups = lrs(self.model)
  logs.lr = groups[1].lr
  local current = monitored("ReduceLROnPlateau", self.monitor, logs)
  if self.cooldown_counter > 0 then
    self.cooldown_counter = self.cooldown_counter - 1
    self.wait = 0
  end
  if improved(self.mode, current, self.best, self.min_delta) then
    self.best, self.wait = current, 0
  elseif self.cooldown_counter <= 0 then
    self.wait = self.wait + 1
    if self.wait >= self.patience then
      for _, g in ipairs(groups) do
        if g.lr > self.min_lr then
          g.lr = math.max(g.lr * self.factor, self.min_lr)
          if self.verbose > 0 then
            print(("Epoch %d: ReduceLROnPlateau reducing learning rate to %g."):format(epoch, g.lr))
          end
        end
      end
      self.cooldown_counter, self.wait = self.cooldown, 0
    end
  end
end

-- }======================================================================

-- {======================================================================
-- CSVLogger
-- =======================================================================

local CSVLogger = Callback:extend("CSVLogger")
callbacks.CSVLogger = CSVLogger

--- CSVLogger(filename, {separator = ",", append = false}): one row per
-- epoch (epoch, then the logs' keys in sorted order), numbers with 6
-- significant digits (%.6g, as Keras's logs read; 17 digits of noise helped
-- nobody).  The file is rewritten atomically after each epoch, so it is
-- never half written.
function CSVLogger:init(filename, opts)
  check_path("CSVLogger", filename, "a file name")
  local o = check_opts("CSVLogger", opts, {separator = ",", append = false})
  if type(o.separator) ~= "string" then
    fail("CSVLogger: separator must be a string, got " .. type(o.separator))
  end
  self.filename, self.separator, self.append = filename, o.separator, o.append
end

function CSVLogger:on_train_begin()
  self.lines, self.keys = {}, nil
  if self.append then
    local f = io.open(self.filename, "r")
    if f then
      for line in f:lines() do self.lines[#self.lines + 1] = line end
      f:close()
      if self.lines[1] then
        self.keys = {}
        for k in (self.lines[1] .. self.separator):gmatch("(.-)" .. self.separator:gsub("%p", "%%%0")) do
          if k ~= "epoch" then self.keys[#self.keys + 1] = k end
        end
      end
    end
  end
end

function CSVLogger:on_epoch_end(epoch, logs)
  local sep = self.separator
  if not self.keys then
    self.keys = {}
    for k in pairs(logs) do self.keys[#self.keys + 1] = k end
    table.sort(self.keys)
    self.lines[#self.lines + 1] = "epoch" .. sep .. table.concat(self.keys, sep)
  end
  local row = {tostring(epoch)}
  for _, k in ipairs(self.keys) do
    local v = logs[k]
    if v ~= v then
      row[#row + 1] = "nan"   -- not C's "-nan", which readers do not parse
    else
      row[#row + 1] = type(v) == "number" and ("%.6g"):format(v) or (v ~= nil and tostring(v) or "")
    end
  end
  self.lines[#self.lines + 1] = table.concat(row, sep)
  if writer() then files.write_atomic("CSVLogger", self.filename, table.concat(self.lines, "\n") .. "\n", fail) end
end

-- }======================================================================


-- {======================================================================
-- TensorBoard
-- =======================================================================

local tfevents = require "ember.tfevents"

local TensorBoard = Callback:extend("TensorBoard")
callbacks.TensorBoard = TensorBoard

--- TensorBoard(logdir, {update_freq = "epoch", histogram_freq = 0,
-- hparams = {}, histogram_bins = 30}): event files TensorBoard reads, as
-- keras.callbacks.TensorBoard: logdir/train holds epoch_<key> scalars
-- (loss, metrics, learning_rate) per epoch and, with update_freq = n (or
-- "batch", n = 1), batch_<key> every n batches at the count of batches
-- since training began; logdir/validation holds the val_ keys as
-- epoch_<key>.  Every histogram_freq epochs (0: never), histograms of each
-- parameter ("weights/<name>") and its gradient ("gradients/<name>", the
-- epoch's last batch).  The hyperparameters (hparams, with epochs, lr and
-- optimizer) go to the hparams dashboard.
function TensorBoard:init(logdir, opts)
  check_path("TensorBoard", logdir, "a log folder")
  local o = check_opts("TensorBoard", opts, {update_freq = "epoch", histogram_freq = 0,
                                             hparams = {}, histogram_bins = 30})
  local uf = o.update_freq
  if uf == "batch" then uf = 1 end
  if uf ~= "epoch" and math.type(uf) ~= "integer" or uf ~= "epoch" and uf < 1 then
    fail("TensorBoard: update_freq must be 'epoch', 'batch' or an integer >= 1, got " .. tostring(o.update_freq))
  end
  for _, k in ipairs{"histogram_freq", "histogram_bins"} do
    local v = o[k]
    if math.type(v) ~= "integer" or v < (k == "histogram_bins" and 1 or 0) then
      fail(("TensorBoard: %s must be an integer >= %d, got %s")
           :format(k, k == "histogram_bins" and 1 or 0, tostring(v)))
    end
  end
  if type(o.hparams) ~= "table" then
    fail("TensorBoard: hparams must be a table, got " .. type(o.hparams))
  end
  for k, v in pairs(o.hparams) do
    local t = type(v)
    if type(k) ~= "string" or t ~= "number" and t ~= "string" and t ~= "boolean" then
      fail(("TensorBoard: hparams must map names to numbers, strings or booleans, got %s = %s")
           :format(tostring(k), t))
    end
  end
  self.logdir, self.update_freq, self.histogram_freq = logdir, uf, o.histogram_freq
  self.hparams, self.bins = o.hparams, o.histogram_bins
end

--- The writer of a run ("train" or "validation"), opened on first use.
function TensorBoard:_writer(run)
  local w = self.writers[run]
  if not w then
    local err
    w, err = tfevents.open(self.logdir .. "/" .. run, os.time())
    if not w then fail("TensorBoard: " .. err) end
    self.writers[run] = w
  end
  return w
end

--- The scalars of logs whose keys pass keep, tagged prefix .. key.
local function scalar_values(logs, prefix, keep)
  local keys = {}
  for k, v in pairs(logs) do
    if type(v) == "number" and keep(k) then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local values = {}
  for i, k in ipairs(keys) do values[i] = tfevents.scalar_value(prefix .. k:gsub("^val_", ""), logs[k]) end
  return values
end

--- A HistogramProto's fields for tensor t: `bins` equal-width buckets over
-- [min, max] (histc's), each bucket's right edge as its limit.
local function histogram(t, bins)
  local x = t:detach():double()
  local lo, hi = x:min():item(), x:max():item()
  local h = {min = lo, max = hi, num = x:numel(), sum = x:sum():item(),
             sum_squares = (x * x):sum():item(), bucket_limit = {}, bucket = {}}
  if lo == hi or lo ~= lo or hi ~= hi then
    h.bucket_limit[1], h.bucket[1] = hi, h.num
    return h
  end
  local counts = x:histc(bins, lo, hi):totable()
  for i = 1, bins do
    h.bucket_limit[i] = lo + (hi - lo) * i / bins
    h.bucket[i] = counts[i]
  end
  h.bucket_limit[bins] = hi
  return h
end

function TensorBoard:on_train_begin()
  self.writers, self.seen = {}, 0
  if not writer() then return end
  local hp = {}
  for k, v in pairs(self.hparams) do hp[k] = v end
  local opt = self.model.optimizer
  if opt then
    hp.lr = hp.lr or opt.param_groups[1].lr
    hp.optimizer = hp.optimizer or opt.__name
  end
  hp.epochs = hp.epochs or (self.params and self.params.epochs)
  self.start = os.time()
  self:_writer("train"):summary(self.start, 0,
    {tfevents.hparams_start(hp, "", self.start)})
end

function TensorBoard:on_train_batch_end(_, logs)
  self.seen = self.seen + 1
  if self.update_freq == "epoch" or self.seen % self.update_freq ~= 0 or not writer() then return end
  local skip = {batch = true, size = true, stepped = true, optimizer_steps = true}
  self:_writer("train"):summary(os.time(), self.seen,
    scalar_values(logs, "batch_", function(k) return not skip[k] end))
end

function TensorBoard:on_epoch_end(epoch, logs)
  if not writer() then return end
  local now = os.time()
  local train = scalar_values(logs, "epoch_", function(k) return not k:find("^val_") and k ~= "lr" end)
  local opt = self.model.optimizer
  if opt then train[#train + 1] = tfevents.scalar_value("epoch_learning_rate", opt.param_groups[1].lr) end
  if self.histogram_freq > 0 and epoch % self.histogram_freq == 0 then
    for name, p in self.model:named_parameters() do
      if p:numel() > 0 then
        train[#train + 1] = tfevents.histogram_value("weights/" .. name, histogram(p, self.bins))
        if p.grad ~= nil then
          train[#train + 1] = tfevents.histogram_value("gradients/" .. name, histogram(p.grad, self.bins))
        end
      end
    end
  end
  self:_writer("train"):summary(now, epoch, train)
  local val = scalar_values(logs, "epoch_", function(k) return k:find("^val_") ~= nil end)
  if #val > 0 then self:_writer("validation"):summary(now, epoch, val) end
end

function TensorBoard:on_train_end()
  local w = self.writers and self.writers.train
  if w then w:summary(os.time(), 0, {tfevents.hparams_end(true, os.time())}) end
  for _, wr in pairs(self.writers or {}) do wr:close() end
  self.writers = {}
end

-- }======================================================================

return callbacks
