-- callbacks.TensorBoard (lua/ember/callbacks.lua, lua/ember/tfevents.lua).
-- The files are read back by a reader written here from the format's
-- definition (TFRecord framing, protocol buffer wire format), not by the
-- writer's own code; spec/reference/check_tensorboard.py checks a file
-- with TensorBoard's reader.
local ember = require "ember"
local nn, optim, callbacks = ember.nn, ember.optim, ember.callbacks
local run = require "helpers.run"

-- {======================================================================
-- A reader
-- =======================================================================

-- CRC-32C bit by bit (no table), so it is not the writer's code.
local function crc32c(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = c ~ s:byte(i)
    for _ = 1, 8 do c = (c >> 1) ~ (0x82F63B78 & -(c & 1)) end
  end
  return c ~ 0xFFFFFFFF
end
local function masked(s)
  local c = crc32c(s)
  return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF
end

--- Every record's data, both CRCs checked.
local function records(path)
  local f = assert(io.open(path, "rb"))
  local bytes = f:read("a")
  f:close()
  local out, pos = {}, 1
  while pos <= #bytes do
    local len, lcrc = string.unpack("<I8I4", bytes, pos)
    assert.are.equal(masked(bytes:sub(pos, pos + 7)), lcrc)
    local data = bytes:sub(pos + 12, pos + 11 + len)
    assert.are.equal(len, #data)
    assert.are.equal(masked(data), (string.unpack("<I4", bytes, pos + 12 + len)))
    out[#out + 1] = data
    pos = pos + 16 + len
  end
  assert.are.equal(#bytes + 1, pos)
  return out
end

--- A protocol buffer message as {[field] = {values...}}: varints as
-- integers, fixed64 and fixed32 as their 8 or 4 bytes, length-delimited as
-- strings.
local function fields(s)
  local out, pos = {}, 1
  local function varint()
    local n, shift = 0, 0
    repeat
      local b = s:byte(pos)
      pos = pos + 1
      n = n | ((b & 0x7F) << shift)
      shift = shift + 7
    until b < 0x80
    return n
  end
  while pos <= #s do
    local k = varint()
    local field, wire, v = k >> 3, k & 7, nil
    if wire == 0 then v = varint()
    elseif wire == 1 then v = s:sub(pos, pos + 7) pos = pos + 8
    elseif wire == 5 then v = s:sub(pos, pos + 3) pos = pos + 4
    elseif wire == 2 then
      local n = varint()
      v = s:sub(pos, pos + n - 1)
      pos = pos + n
    else error("wire type " .. wire) end
    out[field] = out[field] or {}
    table.insert(out[field], v)
  end
  assert(pos == #s + 1, "message overruns")
  return out
end
local function double(b) return (string.unpack("<d", b)) end
local function float(b) return (string.unpack("<f", b)) end

--- The events of a file: {wall_time, step, file_version, values = {tag =
-- {simple = x | histo = {...} | plugin = name, content = bytes}}}.
local function events(path)
  local out = {}
  for i, data in ipairs(records(path)) do
    local e = fields(data)
    local ev = {wall_time = double(e[1][1]), step = e[2] and e[2][1] or 0,
                file_version = e[3] and e[3][1], values = {}}
    if e[5] then
      for _, vb in ipairs(fields(e[5][1])[1] or {}) do
        local v = fields(vb)
        local tag, val = v[1][1], {}
        if v[2] then val.simple = float(v[2][1]) end
        if v[5] then
          local h = fields(v[5][1])
          val.histo = {min = double(h[1][1]), max = double(h[2][1]), num = double(h[3][1]),
                       sum = double(h[4][1]), sum_squares = double(h[5][1]),
                       bucket_limit = {}, bucket = {}}
          for j = 1, #h[6][1], 8 do table.insert(val.histo.bucket_limit, double(h[6][1]:sub(j, j + 7))) end
          for j = 1, #h[7][1], 8 do table.insert(val.histo.bucket, double(h[7][1]:sub(j, j + 7))) end
        end
        if v[9] then
          local pd = fields(fields(v[9][1])[1][1])
          val.plugin, val.content = pd[1][1], pd[2][1]
        end
        ev.values[tag] = val
      end
    end
    out[i] = ev
  end
  return out
end

local function ls(dir)
  local out = {}
  local p = io.popen("ls -A " .. run.q(dir) .. " 2>/dev/null")
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

--- The one event file of logdir/run, decoded.
local function run_events(logdir, name)
  local names = ls(logdir .. "/" .. name)
  assert.are.equal(1, #names)
  assert.truthy(names[1]:match("^events%.out%.tfevents%.%d+%.[%w%.%-_]+$"), names[1])
  return events(logdir .. "/" .. name .. "/" .. names[1])
end

-- }======================================================================

local blobs = require "helpers.blobs"

local function model()
  ember.manual_seed(1)
  local m = nn.Sequential{nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)}
  m:compile{optimizer = optim.SGD{lr = 0.05}, loss = "sparse_categorical_crossentropy",
            metrics = {"accuracy"}}
  return m
end

local function close(a, b) return math.abs(a - b) <= 1e-6 * math.max(1, math.abs(b)) end

describe("callbacks.TensorBoard", function()
  local dir
  before_each(function() dir = run.tmpdir() end)
  after_each(function() run.rmdir(dir) end)

  it("writes per-epoch scalars for train and validation, version first", function()
    local x, y = blobs(80)
    local logdir = dir .. "/logs/run1"   -- folders made as needed
    local h = model():fit(x, y, {epochs = 3, batch_size = 20, verbose = 0, validation_split = 0.25,
                                 callbacks = {callbacks.TensorBoard(logdir)}})
    local train = run_events(logdir, "train")
    assert.are.equal("brain.Event:2", train[1].file_version)
    assert.is_nil(train[2].file_version)
    for _, e in ipairs(train) do assert.truthy(math.abs(e.wall_time - os.time()) < 600) end
    -- hparams start, 3 epochs, hparams end
    assert.are.equal(6, #train)
    local start = train[2].values["_hparams_/session_start_info"]
    assert.are.equal("hparams", start.plugin)
    for e = 1, 3 do
      local ev = train[e + 2]
      assert.are.equal(e, ev.step)
      assert.truthy(close(ev.values.epoch_loss.simple, h.history.loss[e]))
      assert.truthy(close(ev.values.epoch_accuracy.simple, h.history.accuracy[e]))
      assert.truthy(close(ev.values.epoch_learning_rate.simple, 0.05))
      assert.is_nil(ev.values.epoch_val_loss)
    end
    assert.are.equal("hparams", train[6].values["_hparams_/session_end_info"].plugin)
    local val = run_events(logdir, "validation")
    assert.are.equal("brain.Event:2", val[1].file_version)
    assert.are.equal(4, #val)
    for e = 1, 3 do
      assert.are.equal(e, val[e + 1].step)
      assert.truthy(close(val[e + 1].values.epoch_loss.simple, h.history.val_loss[e]))
      assert.truthy(close(val[e + 1].values.epoch_accuracy.simple, h.history.val_accuracy[e]))
    end
  end)

  it("writes batch scalars every update_freq batches, counted across epochs", function()
    local x, y = blobs(60)
    local seen = {}
    model():fit(x, y, {epochs = 2, batch_size = 20, verbose = 0, callbacks = {
      {on_train_batch_end = function(_, logs) seen[#seen + 1] = logs.loss end},
      callbacks.TensorBoard(dir, {update_freq = 2})}})
    local steps = {}
    for _, e in ipairs(run_events(dir, "train")) do
      if e.values.batch_loss then
        steps[#steps + 1] = e.step
        assert.truthy(close(e.values.batch_loss.simple, seen[e.step]))
        assert.truthy(e.values.batch_accuracy)
        assert.is_nil(e.values.batch_batch)
        assert.is_nil(e.values.batch_size)
      end
    end
    assert.are.same({2, 4, 6}, steps)
    assert.are.same({}, ls(dir .. "/validation"))
    local every = ember.callbacks.TensorBoard(dir .. "/b", {update_freq = "batch"})
    model():fit(x, y, {epochs = 1, batch_size = 20, verbose = 0, callbacks = {every}})
    local n = 0
    for _, e in ipairs(run_events(dir .. "/b", "train")) do
      if e.values.batch_loss then n = n + 1 end
    end
    assert.are.equal(3, n)
  end)

  it("writes weight and gradient histograms every histogram_freq epochs", function()
    local x, y = blobs(40)
    local m = model()
    m:fit(x, y, {epochs = 4, batch_size = 20, verbose = 0,
                 callbacks = {callbacks.TensorBoard(dir, {histogram_freq = 2, histogram_bins = 5})}})
    local with = {}
    for _, e in ipairs(run_events(dir, "train")) do
      if e.values["weights/1.weight"] then
        with[#with + 1] = e.step
        for name, p in m:named_parameters() do
          local hw = e.values["weights/" .. name].histo
          assert.truthy(e.values["gradients/" .. name].histo)
          assert.are.equal(p:numel(), hw.num)
          assert.are.equal(5, #hw.bucket_limit)
          local total = 0
          for _, c in ipairs(hw.bucket) do total = total + c end
          assert.are.equal(hw.num, total)
          assert.truthy(hw.min <= hw.max)
          assert.are.equal(hw.max, hw.bucket_limit[5])
          if e.step == 4 then   -- the weights at the end
            local d = p:detach():double()
            assert.truthy(close(hw.min, d:min():item()))
            assert.truthy(close(hw.sum, d:sum():item()))
            assert.truthy(close(hw.sum_squares, (d * d):sum():item()))
          end
        end
      end
    end
    assert.are.same({2, 4}, with)
  end)

  it("records the hyperparameters", function()
    local x, y = blobs(20)
    model():fit(x, y, {epochs = 1, verbose = 0,
      callbacks = {callbacks.TensorBoard(dir, {hparams = {units = 8, act = "relu", bn = false}})}})
    local start = run_events(dir, "train")[2].values["_hparams_/session_start_info"]
    -- HParamsPluginData.session_start_info (3).hparams (1): map entries
    local info = fields(fields(start.content)[3][1])
    local hp = {}
    for _, entry in ipairs(info[1]) do
      local kv = fields(entry)
      local v = fields(kv[2][1])
      hp[kv[1][1]] = v[2] and double(v[2][1]) or v[3] and v[3][1] or v[4][1] == 1
    end
    assert.are.same({units = 8, act = "relu", bn = false, lr = 0.05, epochs = 1, optimizer = "SGD"}, hp)
  end)

  it("keeps every record written when training dies", function()
    local x, y = blobs(40)
    local ok = pcall(function()
      model():fit(x, y, {epochs = 3, batch_size = 20, verbose = 0, callbacks = {
        callbacks.TensorBoard(dir, {update_freq = 1}),
        {on_epoch_end = function(e) if e == 2 then error("boom") end end}}})
    end)
    assert.is_false(ok)
    local steps = {}
    for _, e in ipairs(run_events(dir, "train")) do
      if e.values.epoch_loss then steps[#steps + 1] = e.step end
    end
    assert.are.same({1, 2}, steps)
  end)

  it("refuses bad arguments naming itself", function()
    local TB = callbacks.TensorBoard
    assert.has_error(function() TB() end,
      "TensorBoard: expected a log folder (a non-empty string), got nil")
    assert.has_error(function() TB(dir, {update_freq = 0}) end,
      "TensorBoard: update_freq must be 'epoch', 'batch' or an integer >= 1, got 0")
    assert.has_error(function() TB(dir, {update_freq = "step"}) end,
      "TensorBoard: update_freq must be 'epoch', 'batch' or an integer >= 1, got step")
    assert.has_error(function() TB(dir, {histogram_freq = -1}) end,
      "TensorBoard: histogram_freq must be an integer >= 0, got -1")
    assert.has_error(function() TB(dir, {hparams = {lr = {}}}) end,
      "TensorBoard: hparams must map names to numbers, strings or booleans, got lr = table")
    assert.error_matches(function() TB(dir, {write_graph = true}) end, "TensorBoard: unknown option")
    -- a folder that cannot be made: an error when training starts
    local f = io.open(dir .. "/file", "w") f:close()
    local x, y = blobs(20)
    assert.error_matches(function()
      model():fit(x, y, {epochs = 1, verbose = 0, callbacks = {TB(dir .. "/file/logs")}})
    end, "TensorBoard: cannot make the folder")
  end)
end)
