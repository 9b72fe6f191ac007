--- bench/gpt_bench.lua -- Ember's side of the char GPT rows of
-- bench/transformer.sh: the model and data of examples/char_gpt.lua (the
-- nanoGPT port with fused attention and a key/value cache,
-- examples/char_gpt/model.lua; the fortunes corpus), float32.
--
--   ./ember bench/gpt_bench.lua step       ms per training step (a batch
--                                          of 12 x 64, forward, loss,
--                                          backward, clipping, AdamW)
--   ./ember bench/gpt_bench.lua step_bf16  the same step with the forward
--                                          under ember.autocast("bf16")
--   ./ember bench/gpt_bench.lua sample     ms to sample 500 tokens with
--                                          the cache (median of 3 after a
--                                          warm-up), temperature 0.8, top-k 10
--   ./ember bench/gpt_bench.lua attn_mem   the growth of the peak RSS over
--                                          a causal attention forward +
--                                          backward at L 4096, one head of
--                                          64 (q, k, v made before)
-- The validation loss and the peak RSS of a training run come from
-- examples/char_gpt.lua itself (bench/transformer.sh runs it).  Peer:
-- bench/gpt_torch.py, the same modes.  Threads: EMBER_NUM_THREADS.
-- Output: "# ..." lines, then "name value" lines ending with
-- "rss_kib <VmHWM of the process>".
local ember = require "ember"
local here = (arg and arg[0] or "bench/gpt_bench.lua"):gsub("[^/]*$", "")
local timing = dofile(here .. "timing.lua")
local fortunes = dofile(here .. "../examples/char_gpt/fortunes.lua")
local char_gpt = dofile(here .. "../examples/char_gpt/model.lua")
local F = ember.nn.functional

local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local kib = tonumber(f:read("a"):match("VmHWM:%s*(%d+)%s*kB"))
  f:close()
  return kib
end

local mode = arg and arg[1] or "step"
io.write(("# ember threads %d\n"):format(ember.get_num_threads()))
ember.manual_seed(1337)
if mode == "attn_mem" then
  local L = 4096
  local function leaf() return ember.randn(1, 1, L, 64):requires_grad_() end
  local q, k, v = leaf(), leaf(), leaf()
  local w = ember.randn(1, 1, L, 64)
  local base = rss_kib()
  F.scaled_dot_product_attention(q, k, v, {is_causal = true}):backward(w)
  io.write(("attn_peak_bytes %d\n"):format((rss_kib() - base) * 1024))
else
  local tok, train_data = fortunes.load()
  local model = char_gpt.GPT(char_gpt.GPTConfig{block_size = 64, vocab_size = tok.vocab_size,
    n_layer = 4, n_head = 4, n_embd = 128, dropout = 0.0, bias = false})
  if mode == "step" or mode == "step_bf16" then
    local optimizer = model:configure_optimizers(0.1, 1e-3, {0.9, 0.99})
    local params = model:parameters()
    local t = timing.per_call(function(reps)
      for _ = 1, reps do
        local x, y = ember.data.windows(train_data, 64, 12)
        local _, loss
        if mode == "step_bf16" then _, loss = ember.autocast("bf16", model, x, y)
        else _, loss = model(x, y) end
        optimizer:zero_grad()
        loss:backward()
        ember.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer:step()
      end
    end, 1)
    io.write(("gpt_%s %.4f\n"):format(mode, t * 1e3))
  elseif mode == "sample" then
    model:eval()
    local start, secs = ember.ones(1, 1, {dtype = "int64"}), {}
    for i = 1, 4 do   -- the first is a warm-up
      local t0 = ember.clock()
      model:generate(start, 500, 0.8, 10)
      secs[i] = ember.clock() - t0
    end
    table.remove(secs, 1)
    table.sort(secs)
    io.write(("sample_500 %.4f\n"):format(secs[2] * 1e3))
  else
    error("gpt_bench.lua: unknown mode " .. tostring(mode), 0)
  end
end
io.write(("rss_kib %d\n"):format(rss_kib()))
