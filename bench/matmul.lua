--- bench/matmul.lua -- Ember's float32 matmul, the same sizes and timing
-- method as its peer bench/matmul_c.c (OpenBLAS called directly from C).
--
-- For each n in the arguments (default 256 512 1024 2048): a, b = ember.randn(n, n); time a:matmul(b).
--   - warm-up calls for >= WARM_S seconds (at least two), which also
--     estimate the cost of one call;
--   - R calls per batch, R chosen so a batch lasts >= BATCH_S seconds;
--   - NBATCH batches; the median batch gives the figure, 2 n^3 flops a call.
-- Each call allocates its result, as a user's a:matmul(b) does; the peer
-- writes into one buffer, so the allocation is part of what is measured.
--
-- Clock: ember.clock(), CLOCK_MONOTONIC wall time from the bindings.  Not
-- os.clock(), which is CPU time summed over all threads (it would count a
-- 2-thread GEMM twice), and not os.time(), which ticks in whole seconds.
-- Output: a comment line "# threads <n>", then one line per size:
-- "<n> <GFLOP/s>".
local ember = require "ember"

local NBATCH, BATCH_S, WARM_S = 5, 0.2, 0.1
local clock = ember.clock

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

io.write(string.format("# threads %d\n", ember.get_num_threads()))
local sizes = {...}
if #sizes == 0 then sizes = {256, 512, 1024, 2048} end
ember.manual_seed(42)
for _, s in ipairs(sizes) do
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then error("matmul.lua: bad size '" .. tostring(s) .. "'", 0) end
  local a, b = ember.randn(n, n), ember.randn(n, n)
  local t0, calls, spent = clock(), 0, 0
  repeat                                               -- warm-up
    a:matmul(b); calls = calls + 1; spent = clock() - t0
  until calls >= 2 and spent >= WARM_S
  local reps = math.floor(BATCH_S / (spent / calls)) + 1
  local secs = {}
  for k = 1, NBATCH do
    t0 = clock()
    for _ = 1, reps do a:matmul(b) end
    secs[k] = clock() - t0
  end
  io.write(string.format("%d %.1f\n", n, 2 * n ^ 3 * reps / median(secs) * 1e-9))
  io.stdout:flush()
end
