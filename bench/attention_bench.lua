--- bench/attention_bench.lua -- causal scaled dot-product attention,
-- forward + backward, float32: B 8, 8 heads, head size 64, L 256 and 1024
-- (q, k, v (8, 8, L, 64), the loss the sum of the output times a fixed
-- random tensor).  Its peer is bench/attention_torch.py: torch 1.13 has no
-- scaled_dot_product_attention, so the peer runs the explicit formula of
-- nanoGPT's manual path (q k^T * scale, masked_fill of the upper triangle,
-- softmax, times v).
--
--   ./ember bench/attention_bench.lua [cpu|cuda]
--
-- Timed with bench/timing.lua's method (median batch); on cuda each batch
-- ends with ember.cuda.synchronize().  Threads: EMBER_NUM_THREADS.
-- Output: "# device D threads N", then one "<case> <ms per call>" a line.
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/attention_bench.lua"):gsub("[^/]*$", "") .. "timing.lua")
local F = ember.nn.functional

local dev = arg and arg[1] or "cpu"
local sync = dev == "cuda" and ember.cuda.synchronize or function() end

io.write(("# device %s threads %d\n"):format(dev, ember.get_num_threads()))
for _, L in ipairs{256, 1024} do
  ember.manual_seed(1)
  local function leaf() return ember.randn(8, 8, L, 64):to(dev):requires_grad_() end
  local q, k, v = leaf(), leaf(), leaf()
  local w = ember.randn(8, 8, L, 64):to(dev)
  local t = timing.per_call(function(reps)
    for _ = 1, reps do
      q.grad, k.grad, v.grad = nil, nil, nil
      local out = F.scaled_dot_product_attention(q, k, v, {is_causal = true})
      out:backward(w)
    end
    sync()
  end, 1)
  io.write(("sdpa_causal_fwd_bwd_L%d %.4f\n"):format(L, t * 1e3))
end
