--- bench/timing.lua -- the timing method every Lua benchmark shares, the
-- same as its peers' (bench/matmul_c.c, bench/timing.py for the Python ones):
--   - warm-up for >= WARM_S seconds (at least `unit` calls twice), which
--     also estimates the cost of one call;
--   - R calls per batch, R chosen so a batch lasts >= BATCH_S seconds;
--   - NBATCH batches; the median batch gives the figure.
-- Clock: ember.clock(), CLOCK_MONOTONIC wall time from the bindings.  Not
-- os.clock(), which is CPU time summed over all threads (it would count a
-- 2-thread GEMM twice), and not os.time(), which ticks in whole seconds.
local ember = require "ember"

local M = {NBATCH = 5, BATCH_S = 0.2, WARM_S = 0.1}
local clock = ember.clock

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

--- Median seconds per call of batch(reps), which makes `reps` calls.
-- `unit` is how many calls one warm-up step makes (1 for slow calls).
function M.per_call(batch, unit)
  unit = unit or 1000
  local t0, calls, spent = clock(), 0, 0
  repeat
    batch(unit); calls = calls + unit; spent = clock() - t0
  until calls >= 2 * unit and spent >= M.WARM_S
  local reps = math.floor(M.BATCH_S / (spent / calls)) + 1
  local secs = {}
  for k = 1, M.NBATCH do
    t0 = clock()
    batch(reps)
    secs[k] = clock() - t0
  end
  return median(secs) / reps
end

--- Time each case {name, fn} of `cases` (fn makes one call) and write
-- "<name> <ms per call>" a line; `only`, if given, keeps the names that
-- start with it; `sync`, if given, ends every batch (a device's queue).
function M.run_cases(cases, only, sync)
  for _, c in ipairs(cases) do
    if not only or c[1]:sub(1, #only) == only then
      local f = c[2]
      local t = M.per_call(function(reps)
        for _ = 1, reps do f() end
        if sync then sync() end
      end, 1)
      io.write(("%s %.4f\n"):format(c[1], t * 1e3))
      io.flush()
    end
  end
end

--- The peer's figures: run the Python script `script` in folder `dir`
-- (BENCH_PYTHON, default /usr/bin/python3, the Debian python3-torch) with
-- the thread count as its argument, and read its "<name> <ms>" lines into
-- {name = ms}; an empty table when the peer cannot run.
function M.peer(dir, script, threads)
  local py = os.getenv("BENCH_PYTHON") or "/usr/bin/python3"
  local peer = {}
  local f = io.popen(("cd %s && %s %s %d 2>/dev/null"):format(
    dir ~= "" and dir or ".", py, script, threads))
  for line in f:lines() do
    local name, ms = line:match("^(%S+) ([%d.]+)$")
    if name then peer[name] = tonumber(ms) end
  end
  f:close()
  return peer
end

return M
