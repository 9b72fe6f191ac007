--- bench/loader_bench.lua -- the loader's prefetch (issue 20): an epoch
-- of CIFAR-sized batches (5000 x 3 x 32 x 32 float32, batch 128, shuffled)
-- through data.transforms{RandomCrop(32, padding 4), RandomHorizontalFlip,
-- Normalize, RandomRotation(10)}, while each step "runs" for STEP_MS
-- milliseconds (a wait on ember.clock, as a step on a GPU leaves the CPU
-- waiting), with prefetch 0 and 2.
--
--   ./ember bench/loader_bench.lua [STEP_MS]   (default 20; threads:
--                                             EMBER_NUM_THREADS)
--
-- Output: per epoch, the time to make the batches alone (no step), and
-- the epoch with steps for each prefetch; whether the batches were
-- bit-identical.  The ideal with prefetch is max(batch, step) per batch
-- instead of batch + step.
local ember = require "ember"
local data = ember.data

local step_ms = tonumber(arg and arg[1]) or 20
local N, B = 5000, 128
ember.manual_seed(1)
local X = ember.rand(N, 3, 32, 32)
local Y = ember.randint(1, 10, {N})
local tf = data.transforms{data.RandomCrop(32, {padding = 4}), data.RandomHorizontalFlip(),
                           data.Normalize({0.49, 0.48, 0.45}, {0.25, 0.24, 0.26}),
                           data.RandomRotation(10)}

local function wait(ms)
  local t = ember.clock() + ms / 1000
  while ember.clock() < t do end
end

local function epoch(prefetch, ms)
  local loader = data.loader(X, Y, {batch_size = B, shuffle = true, seed = 5,
                                    transform = tf, prefetch = prefetch})
  local sum, t0 = 0, ember.clock()
  for xb in loader do
    sum = sum + xb:sum():item()
    if ms > 0 then wait(ms) end
  end
  return ember.clock() - t0, sum
end

epoch(0, 0)   -- warm-up
local nb = (N + B - 1) // B
local alone = epoch(0, 0)
print(("# %d batches of %d, step %d ms, %d threads"):format(nb, B, step_ms, ember.get_num_threads()))
print(("batches alone       %7.1f ms per batch"):format(alone * 1000 / nb))
local t0, s0 = epoch(0, step_ms)
local t2, s2 = epoch(2, step_ms)
print(("epoch, prefetch 0   %7.1f ms per batch"):format(t0 * 1000 / nb))
print(("epoch, prefetch 2   %7.1f ms per batch  (%.2fx)"):format(t2 * 1000 / nb, t0 / t2))
print(("same batches        %s"):format(s0 == s2 and "yes" or "NO"))
