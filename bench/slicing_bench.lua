--- bench/slicing_bench.lua -- slicing assignment on 1M and 10M element
-- float32 tensors (1000 x 1000, 1000 x 10000) and the per-call cost of a
-- slicing read on a small tensor.  Its peer is bench/slicing_torch.py (the
-- same cases in PyTorch); bench/slicing.sh runs both with one thread count
-- and prints the ratios.
--
-- Cases, n the number of columns:
--   fill_half   t[{ {}, {1, n/2} }] = 0
--   row_half    t[{ {}, {1, n/2} }] = u      (u: one row of n/2, broadcast)
--   step2       t[{ {}, {1, n, 2} }] = 0     (every other column)
--   index_rows  t[{ idx }] = 0                (idx: every other row, int64)
--   read_small  t[{ {}, {2, 3} }] on a 4x4 tensor (per call), and
--   narrow_small t:narrow(2, 2, 2) for scale.
-- Usage: ember bench/slicing_bench.lua [threads]; prints "case size ms"
-- (microseconds for the small reads).
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/slicing_bench.lua"):gsub("[^/]*$", "") .. "timing.lua")
local per_call = timing.per_call

local threads = tonumber(arg and arg[1]) or ember.get_num_threads()
ember.set_num_threads(threads)

for _, n in ipairs({1000, 10000}) do
  local size = n == 1000 and "1M" or "10M"
  local t = ember.zeros(1000, n)
  local u = ember.ones(n // 2)
  local idx = ember.arange(1, 1001, 2, {dtype = "int64"})
  local half, all = {{}, {1, n // 2}}, {{}, {1, n, 2}}
  local cases = {
    {"fill_half", function(reps) for _ = 1, reps do t[half] = 0 end end},
    {"row_half", function(reps) for _ = 1, reps do t[half] = u end end},
    {"step2", function(reps) for _ = 1, reps do t[all] = 0 end end},
    {"index_rows", function(reps) for _ = 1, reps do t[{idx}] = 0 end end},
  }
  for _, c in ipairs(cases) do
    io.write(string.format("%s %s %.4f\n", c[1], size, per_call(c[2], 1) * 1e3))
  end
end

local s = ember.zeros(4, 4)
local r
local key = {{}, {2, 3}}
io.write(string.format("read_small 16 %.4f\n", per_call(function(reps)
  for _ = 1, reps do r = s[key] end
end) * 1e6))
io.write(string.format("read_small_literal 16 %.4f\n", per_call(function(reps)
  for _ = 1, reps do r = s[{{}, {2, 3}}] end
end) * 1e6))
io.write(string.format("narrow_small 16 %.4f\n", per_call(function(reps)
  for _ = 1, reps do r = s:narrow(2, 2, 2) end
end) * 1e6))
assert(r)
