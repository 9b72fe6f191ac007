-- faults.lua MODE [DIR]: a job where something goes wrong on one rank,
-- for spec/dist/dist_spec.lua.  Every mode must end the whole job with
-- the error, never leave a rank waiting.
--   raise     rank 2 raises while rank 1 waits in an all_reduce
--   fit       rank 2's loss function raises in the middle of fit
--   nan       rank 2's loss is NaN at one batch: fit stops on every rank
--   sizes     the ranks hold different numbers of samples: the same error on each
--   checkpoint  fit with ModelCheckpoint and CSVLogger: files from rank 1 only (DIR)
local ember = require "ember"
local nn = ember.nn
local dist = ember.distributed
local mode, dir = arg[1], arg[2]
local rank = dist.init()

local function model()
  ember.manual_seed(3)
  local m = nn.Sequential{nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)}
  return m
end
ember.manual_seed(5)
local x, y = ember.randn(64, 4), ember.randint(1, 2, {64})

if mode == "raise" then
  if rank == 2 then error("boom on rank 2") end
  dist.all_reduce(ember.ones(3))
  print("rank 1 passed the all_reduce: it should not have")
elseif mode == "fit" then
  local m = model()
  local calls = 0
  m:compile{optimizer = "sgd", distributed = true, loss = function(out, target)
    calls = calls + 1
    if rank == 2 and calls == 3 then error("loss failed on rank 2, batch 3") end
    return nn.functional.cross_entropy(out, target)
  end}
  m:fit(x, y, {epochs = 2, batch_size = 4, verbose = 0})
  print("fit returned on rank " .. rank .. ": it should not have")
elseif mode == "nan" then
  local m = model()
  local calls = 0
  m:compile{optimizer = "sgd", distributed = true, loss = function(out, target)
    calls = calls + 1
    local l = nn.functional.cross_entropy(out, target)
    if rank == 2 and calls == 5 then l = l * (0 / 0) end
    return l
  end}
  local h = m:fit(x, y, {epochs = 3, batch_size = 4, verbose = 0})
  print(("rank %d stopped: %s at epoch %d batch %d"):format(rank, h.stopped.reason,
        h.stopped.epoch, h.stopped.batch))
elseif mode == "checkpoint" then
  local m = model()
  m:compile{optimizer = "adam", loss = "sparse_categorical_crossentropy", metrics = {"accuracy"},
            distributed = true}
  local cb = ember.callbacks
  local h = m:fit(x, y, {epochs = 4, batch_size = 8, validation_split = 0.25, verbose = 1,
    callbacks = {cb.ModelCheckpoint(dir .. "/ckpt-" .. rank .. "-{epoch}.safetensors"),
                 cb.CSVLogger(dir .. "/log-" .. rank .. ".csv"),
                 cb.EarlyStopping{monitor = "val_loss", patience = 0, min_delta = 10}}})
  io.stderr:write(("rank %d history: epochs %d loss %.6f accuracy %.6f val_loss %.6f val_accuracy %.6f\n")
    :format(rank, #h.epoch, h.loss[#h.epoch], h.accuracy[#h.epoch], h.val_loss[#h.epoch],
            h.val_accuracy[#h.epoch]))
  local l, a = m:evaluate(x, y, {batch_size = 5})
  io.stderr:write(("rank %d evaluate: %.6f %.6f\n"):format(rank, l, a))
elseif mode == "sizes" then
  -- rank 2 has one sample more: an error on both ranks, not a hang
  local m = model()
  m:compile{optimizer = "sgd", loss = "sparse_categorical_crossentropy", distributed = true}
  local n = rank == 1 and 64 or 63
  for _, shuffle in ipairs{false, true} do
    local ok, err = pcall(m.fit, m, x:narrow(1, 1, n), y:narrow(1, 1, n),
                          {epochs = 1, batch_size = 8, verbose = 0, shuffle = shuffle})
    print(("rank %d shuffle %s: %s"):format(rank, tostring(shuffle), tostring(err)))
  end
  local ok, err = pcall(m.evaluate, m, x:narrow(1, 1, n), y:narrow(1, 1, n))
  print(("rank %d evaluate: %s"):format(rank, tostring(err)))
else
  error("faults: unknown mode " .. tostring(mode))
end
