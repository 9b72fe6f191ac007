--- bench/checkpoint_bench.lua -- activation checkpointing (issue 19): an
-- 8-block GPT (examples/char_gpt/model.lua: 8 layers, 4 heads, 256 wide,
-- block 128, batch 16, dropout 0.1, float32) trained a step with and
-- without checkpointing every block (model.checkpoint_blocks).
-- Target: peak memory at least 40% lower, the same gradients within 1e-6,
-- a step at most 1.4x.
--
--   ./ember bench/checkpoint_bench.lua [DROPOUT]   (threads: EMBER_NUM_THREADS;
--                                          dropout 0.1 unless given: 0 is
--                                          nanoGPT's pretraining default)
--
-- Peak memory: ember.max_memory_allocated() over one forward + backward
-- (reset_peak_memory_stats() before it), minus the bytes alive before the
-- forward (parameters, their gradients from the previous step, the batch):
-- what the step adds, activations first.  Also the whole peak.  Step time:
-- forward, loss, backward (no optimizer: the same for both), the median
-- of bench/timing.lua's batches.  Gradients: the largest difference over
-- every parameter between the two runs of one batch from one seed (the
-- dropout masks are redrawn alike: checkpoint restores the generator).
-- Output: "# ..." lines, then "name value" lines, then "target ..." lines
-- saying met or missed (exit status 1 when one is missed).
local ember = require "ember"
local here = (arg and arg[0] or "bench/checkpoint_bench.lua"):gsub("[^/]*$", "")
local timing = dofile(here .. "timing.lua")
local char_gpt = dofile(here .. "../examples/char_gpt/model.lua")

local B, T, V = 16, 128, 96
ember.manual_seed(1337)
local model = char_gpt.GPT(char_gpt.GPTConfig{block_size = T, vocab_size = V, n_layer = 8,
  n_head = 4, n_embd = 256, dropout = tonumber(arg and arg[1]) or 0.1, bias = false})
local x = ember.randint(1, V, {B, T}, {dtype = "int64"})
local y = ember.randint(1, V, {B, T}, {dtype = "int64"})

local function step(ck)
  model.checkpoint_blocks = ck
  model:zero_grad()
  local _, loss = model(x, y)
  loss:backward()
end

--- bytes the step adds at its peak, and the whole peak
local function peak(ck)
  step(ck)   -- gradients exist, as in a training loop
  collectgarbage(); collectgarbage()
  local base = ember.memory_allocated()
  ember.reset_peak_memory_stats()
  model.checkpoint_blocks = ck
  local _, loss = model(x, y)
  loss:backward()
  local top = ember.max_memory_allocated()
  loss = nil
  collectgarbage(); collectgarbage()
  return top - base, top
end

local function grads(ck)
  ember.manual_seed(7)
  step(ck)
  local g = {}
  for _, p in ipairs(model:parameters()) do g[#g + 1] = p.grad:clone() end
  return g
end

print(("# 8-block GPT, %d parameters, batch %d x %d, %d threads"):format(
  model:get_num_params(), B, T, ember.get_num_threads()))
local g_plain, g_ck = grads(false), grads(true)
local diff = 0
for i = 1, #g_plain do diff = math.max(diff, (g_plain[i] - g_ck[i]):abs():max():item()) end

local add_plain, top_plain = peak(false)
local add_ck, top_ck = peak(true)
local ms_plain = timing.per_call(function(r) for _ = 1, r do step(false) end end, 1) * 1e3
local ms_ck = timing.per_call(function(r) for _ = 1, r do step(true) end end, 1) * 1e3

print(("step_peak_mib_plain %.1f"):format(add_plain / 2^20))
print(("step_peak_mib_checkpoint %.1f"):format(add_ck / 2^20))
print(("total_peak_mib_plain %.1f"):format(top_plain / 2^20))
print(("total_peak_mib_checkpoint %.1f"):format(top_ck / 2^20))
print(("step_ms_plain %.1f"):format(ms_plain))
print(("step_ms_checkpoint %.1f"):format(ms_ck))
print(("grad_max_diff %.3g"):format(diff))
local saved = 1 - top_ck / top_plain
local ok = true
local function target(name, met, text)
  ok = ok and met
  print(("target %s %s (%s)"):format(name, met and "met" or "MISSED", text))
end
target("memory", saved >= 0.40, ("peak %.0f%% lower, want >= 40%%"):format(saved * 100))
target("gradients", diff <= 1e-6, ("max difference %.3g, want <= 1e-6"):format(diff))
target("time", ms_ck <= 1.4 * ms_plain, ("step %.2fx, want <= 1.4x"):format(ms_ck / ms_plain))
os.exit(ok and 0 or 1)
