--- bench/sort_bench.lua -- sorting and selection (issue: sort/topk), the
-- Ember side; its peer is bench/sort_torch.py (the same cases in PyTorch),
-- bench/sort.sh runs both and prints the table with ratios.
--
-- Cases (float32 randn inputs, made once, outside the timing):
--   sort_1M, sort_10M      sort of a 1-D tensor of 1e6 / 1e7 elements
--   sort_1000x1000         sort of [1000,1000] along dim 2
--   argsort_1M             argsort of 1e6 elements
--   topk10_10M, topk1000_10M   topk k=10 / 1000 of 1e7 elements
--   topk10_vocab, topk1000_vocab  topk along dim 2 of [64,50257] logits
-- Timed with bench/timing.lua's method (median of batches), threads as
-- EMBER_NUM_THREADS says.  Output: one line per case, "name ms".
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/sort_bench.lua"):gsub("[^/]*$", "") .. "timing.lua")
timing.NBATCH, timing.BATCH_S = 5, 0.3

ember.manual_seed(1)
local x1m, x10m = ember.randn(1000000), ember.randn(10000000)
local sq, vocab = ember.randn(1000, 1000), ember.randn(64, 50257)

local cases = {
  {"sort_1M", function() return x1m:sort() end},
  {"sort_10M", function() return x10m:sort() end},
  {"sort_1000x1000", function() return sq:sort(2) end},
  {"argsort_1M", function() return x1m:argsort() end},
  {"topk10_10M", function() return x10m:topk(10) end},
  {"topk1000_10M", function() return x10m:topk(1000) end},
  {"topk10_vocab", function() return vocab:topk(10, 2) end},
  {"topk1000_vocab", function() return vocab:topk(1000, 2) end},
}
local want = arg and arg[1]
for _, c in ipairs(cases) do
  if not want or want == c[1] then
    local s = timing.per_call(function(reps)
      for _ = 1, reps do c[2]() end
    end, 1)
    io.write(("%s %.3f\n"):format(c[1], s * 1e3))
    io.flush()
  end
end
