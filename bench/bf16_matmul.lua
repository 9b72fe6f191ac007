--- bench/bf16_matmul.lua -- Ember's bfloat16 and float32 matmul, [n,n] x
-- [n,n], n = 1024, 2048, 4096 (or the arguments): bfloat16 sums in float32
-- (core/cpu/gemm_half.c), float32 is OpenBLAS's sgemm.  Timed with
-- bench/timing.lua's method, 2 n^3 flops a call, each call allocating its
-- result.  Output: "# threads <n>", then "<n> <bf16 GFLOP/s> <f32 GFLOP/s>"
-- a line.  Its peer is bench/bf16_matmul_torch.py; bench/bf16.sh runs both.
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/bf16_matmul.lua"):gsub("[^/]*$", "") .. "timing.lua")

io.write(string.format("# threads %d\n", ember.get_num_threads()))
local cases = {...}
if #cases == 0 then cases = {"1024", "2048", "4096"} end
ember.manual_seed(42)
for _, s in ipairs(cases) do
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 or n > 16384 then error("bf16_matmul.lua: bad size '" .. s .. "'", 0) end
  local a32, b32 = ember.randn(n, n), ember.randn(n, n)
  local a16, b16 = a32:to("bf16"), b32:to("bf16")
  local function gflops(a, b)
    local t = timing.per_call(function(reps)
      for _ = 1, reps do a:matmul(b) end
    end, 1)
    return 2 * n * n * n / t * 1e-9
  end
  io.write(string.format("%d %.1f %.1f\n", n, gflops(a16, b16), gflops(a32, b32)))
  io.stdout:flush()
end
