--- bench/gpt_gemms.lua -- the products of one char GPT training step
-- (bench/gpt_bench.lua's model: 12 x 64 tokens, n_embd 128) one by one,
-- float32 against ember.autocast("bf16") (operands rounded to bfloat16,
-- float32 sums), so that the bf16 step's overhead can be found per shape.
--
--   ./ember bench/gpt_gemms.lua [filter]
--
-- Each case is a Linear's forward x w^T, its input gradient g w, or its
-- weight gradient g^T x (the layouts matmul's backward hands the kernel),
-- timed as `us` below says.  Output a line each: name, us
-- per call in float32, under autocast (the casts included), on operands
-- already bfloat16 (the product alone, its result rounded to bfloat16),
-- and autocast / float32.  Threads: EMBER_NUM_THREADS.
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/gpt_gemms.lua"):gsub("[^/]*$", "") .. "timing.lua")

local only = arg and arg[1]
local R = 768                       -- rows: 12 x 64 tokens
local linears = {{"attn", 128, 384}, {"proj", 128, 128}, {"fc", 128, 512},
                 {"mlp_proj", 512, 128}}
io.write(("# threads %d\n"):format(ember.get_num_threads()))
ember.manual_seed(1)
-- the best of 15 batches of 10 calls, after bench/timing.lua's warm-up:
-- on a shared machine the minimum is the figure least moved by the load
local function us(fn)
  timing.per_call(function(reps) for _ = 1, reps do fn() end end, 10)
  local best = math.huge
  for _ = 1, 15 do
    local t0 = ember.clock()
    for _ = 1, 10 do fn() end
    best = math.min(best, (ember.clock() - t0) / 10)
  end
  return best * 1e6
end
for _, l in ipairs(linears) do
  local name, K, N = l[1], l[2], l[3]
  local x, w, g = ember.randn(R, K), ember.randn(N, K), ember.randn(R, N)
  local xh, wh, gh = x:to("bf16"), w:to("bf16"), g:to("bf16")
  local cases = {
    {name .. "_fwd", function(a, b) return a:matmul(b:t()) end, x, w, xh, wh},
    {name .. "_dx", function(a, b) return a:matmul(b) end, g, w, gh, wh},
    {name .. "_dw", function(a, b) return a:t():matmul(b) end, g, x, gh, xh},
  }
  for _, c in ipairs(cases) do
    if not only or c[1]:find(only, 1, true) then
      local f, a, b = c[2], c[3], c[4]
      local f32 = us(function() return f(a, b) end)
      local auto = us(function() return ember.autocast("bf16", f, a, b) end)
      local half = us(function() return f(c[5], c[6]) end)
      io.write(("%-14s %8.1f %8.1f %8.1f %6.2f\n"):format(c[1], f32, auto, half, auto / f32))
      io.stdout:flush()
    end
  end
end
