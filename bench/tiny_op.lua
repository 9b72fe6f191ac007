--- bench/tiny_op.lua -- per-call time of a tiny op, `a + b` on two
-- 4-element float32 tensors, and of an empty loop for scale.
-- Its peer is bench/tiny_op_torch.py (the same for PyTorch).
--
--   - R iterations per batch, R chosen (by a warm-up of >= WARM_S seconds)
--     so a batch lasts >= BATCH_S seconds (about 1e6 calls for `a + b`);
--   - NBATCH batches; the median batch over R gives the per-call time.
-- Nothing is subtracted: the loop's own cost is inside the op figure and
-- is reported on its own line so the reader can judge.
-- Clock: ember.clock() (monotonic wall time); see bench/matmul.lua.
-- Output:  "add <microseconds>"  and  "loop <microseconds>".
local ember = require "ember"

local NBATCH, BATCH_S, WARM_S = 5, 0.2, 0.1
local clock = ember.clock

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

-- Median seconds per iteration of batch(reps).
local function per_call(batch)
  local t0, calls, spent = clock(), 0, 0
  repeat                                               -- warm-up
    batch(1000); calls = calls + 1000; spent = clock() - t0
  until spent >= WARM_S
  local reps = math.floor(BATCH_S / (spent / calls)) + 1
  local secs = {}
  for k = 1, NBATCH do
    t0 = clock()
    batch(reps)
    secs[k] = clock() - t0
  end
  return median(secs) / reps
end

local a, b = ember.ones(4), ember.ones(4)
local c
local add = per_call(function(reps)
  for _ = 1, reps do c = a + b end
end)
local loop = per_call(function(reps)
  for _ = 1, reps do c = a end
end)
assert(c == a)
io.write(string.format("add %.4f\nloop %.4f\n", add * 1e6, loop * 1e6))
