--- bench/matmul.lua -- Ember's float32 matmul, the same sizes and timing
-- method as its peer bench/matmul_c.c (OpenBLAS called directly from C).
--
-- For each n in the arguments (default 256 512 1024 2048): a, b = ember.randn(n, n); time a:matmul(b)
-- with bench/timing.lua's method; 2 n^3 flops a call.
-- Each call allocates its result, as a user's a:matmul(b) does; the peer
-- writes into one buffer, so the allocation is part of what is measured.
-- Output: a comment line "# threads <n>", then one line per size:
-- "<n> <GFLOP/s>".
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/matmul.lua"):gsub("[^/]*$", "") .. "timing.lua")

io.write(string.format("# threads %d\n", ember.get_num_threads()))
local sizes = {...}
if #sizes == 0 then sizes = {256, 512, 1024, 2048} end
ember.manual_seed(42)
for _, s in ipairs(sizes) do
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 then error("matmul.lua: bad size '" .. tostring(s) .. "'", 0) end
  local a, b = ember.randn(n, n), ember.randn(n, n)
  local t = timing.per_call(function(reps)
    for _ = 1, reps do a:matmul(b) end
  end, 1)
  io.write(string.format("%d %.1f\n", n, 2 * n ^ 3 / t * 1e-9))
  io.stdout:flush()
end
