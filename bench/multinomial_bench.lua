--- bench/multinomial_bench.lua -- ember.multinomial against
-- torch.multinomial (bench/multinomial_torch.py, run from here so both
-- sides run in the same run, on the same machine, with the same thread
-- count: EMBER_NUM_THREADS, default ember.get_num_threads()).
--
-- Cases: 1-D rows of 1M and 10M categories drawing 1 and 1000 samples with
-- replacement; 64 x 50257 drawing 1 (sampling a batch of GPT tokens); 1M
-- categories drawing 100 without replacement.  Timed with
-- bench/timing.lua's method (the median of 5 batches of >= 0.2 s).
-- Output: one line per case, "<case> <ember ms> <torch ms> <ratio>" (the
-- ratio ember / torch; "-" for torch when it cannot be run).
--   lua5.4 bench/multinomial_bench.lua     (from the repository root,
--   with LUA_PATH/LUA_CPATH set as bench/run.sh sets them, or ./ember)
local ember = require "ember"
local dir = (arg and arg[0] or "bench/multinomial_bench.lua"):gsub("[^/]*$", "")
local timing = dofile(dir .. "timing.lua")

local CASES = {   -- the peer's CASES, in its order
  {"1M_n1_repl", 0, 1000000, 1, true},
  {"1M_n1000_repl", 0, 1000000, 1000, true},
  {"10M_n1_repl", 0, 10000000, 1, true},
  {"10M_n1000_repl", 0, 10000000, 1000, true},
  {"64x50257_n1_repl", 64, 50257, 1, true},
  {"1M_n100_norepl", 0, 1000000, 100, false},
}

local threads = ember.get_num_threads()
local peer = timing.peer(dir, "multinomial_torch.py", threads)

ember.manual_seed(1)
io.write(("# multinomial, %d thread(s): case, ember ms, torch ms, ratio\n"):format(threads))
for _, c in ipairs(CASES) do
  local name, rows, k, n, repl = table.unpack(c)
  local p = rows > 0 and ember.rand(rows, k) or ember.rand(k)
  local opts = {replacement = repl}
  local r
  local s = timing.per_call(function(reps)
    for _ = 1, reps do r = ember.multinomial(p, n, opts) end
  end, 1)
  assert(r:numel() == math.max(rows, 1) * n)
  local t = peer[name]
  io.write(("%-18s %9.3f %9s %6s\n"):format(name, s * 1e3, t and ("%.3f"):format(t) or "-",
    t and ("%.2f"):format(s * 1e3 / t) or "-"))
end
