--- bench/norm_bench.lua -- the fused layer_norm and cross entropy (issue
-- 18) against the compositions they replaced, forward + backward:
-- LayerNorm (weight and bias) of [64*256, 128] and [4096, 768] float32;
-- cross_entropy ("mean", class indices) of logits [768, 65] and
-- [8192, 50257] float32.  "fused" is today's F.layer_norm /
-- F.cross_entropy; "composed" re-creates the Lua-level compositions they
-- replaced (mean/var/sub/div/mul/add; log_softmax + gather + mask + sum).
-- Inputs randn, targets random classes; each call allocates its results
-- and runs backward to the leaves, as a training step does.
-- Its peer is bench/norm_torch.py (the same in PyTorch).
--
--   ./ember bench/norm_bench.lua [cpu|cuda]
--
-- Timed with bench/timing.lua's method (median batch); on cuda each batch
-- ends with ember.cuda.synchronize().  Threads: EMBER_NUM_THREADS.
-- Output: "# device D threads N", then one "<case> <ms per call>" a line.
local ember = require "ember"
local F = require("ember.nn").functional
local timing = dofile((arg and arg[0] or "bench/norm_bench.lua"):gsub("[^/]*$", "") .. "timing.lua")

local dev = arg and arg[1] or "cpu"
local sync = dev == "cuda" and ember.cuda.synchronize or function() end
local only = arg and arg[2]   -- a case name prefix, to run a few

local function leaf(t)
  t = t:to(dev)
  t.requires_grad = true
  return t
end

-- the F.layer_norm body before issue 18 (one normalised dim)
local function layer_norm_composed(x, w, b)
  local mean = x:mean(-1, true)
  local var = x:var(-1, true, false)
  return ((x - mean) / (var + 1e-5):sqrt()) * w + b
end

-- the class-index path of F.cross_entropy before issue 18 ("mean", no
-- weight, no smoothing)
local function cross_entropy_composed(x, t)
  local logp = x:log_softmax(2)
  local ignore = t:eq(-100)
  local safe = t:masked_fill(ignore, 1):long()
  local keep = t:ne(-100):to(logp.dtype)
  local picked = logp:gather(2, safe:view(-1, 1)):view(-1)
  return (-(picked * keep)):sum() / keep:sum()
end

local CASES = {}
for _, s in ipairs({{64 * 256, 128}, {4096, 768}}) do
  local x, w, b = leaf(ember.randn(s)), leaf(ember.randn(s[2])), leaf(ember.randn(s[2]))
  local g = ember.randn(s):to(dev)
  local tag = ("layer_norm_%dx%d"):format(s[1], s[2])
  CASES[#CASES + 1] = {tag .. "_fused", function()
    F.layer_norm(x, {s[2]}, w, b):backward(g) end}
  CASES[#CASES + 1] = {tag .. "_composed", function()
    layer_norm_composed(x, w, b):backward(g) end}
end
for _, s in ipairs({{768, 65}, {8192, 50257}}) do
  local x = leaf(ember.randn(s))
  local t = ember.randint(1, s[2], {s[1]}):to(dev)
  local tag = ("cross_entropy_%dx%d"):format(s[1], s[2])
  CASES[#CASES + 1] = {tag .. "_fused", function() F.cross_entropy(x, t):backward() end}
  CASES[#CASES + 1] = {tag .. "_composed", function()
    cross_entropy_composed(x, t):backward() end}
end

io.write(("# device %s threads %d\n"):format(dev, ember.get_num_threads()))
timing.run_cases(CASES, only, sync)
