--- bench/scan_bench.lua -- cumulative ops on long lines: cumsum of 1M and
-- 10M float32 elements (1-d), of [1000, 10000] float32 along dim 2 (rows of
-- 10,000) and along dim 1 (10,000 columns of 1,000), cumprod and cummax of
-- 10M float32, cumsum of 10M float64.  Inputs uniform in [0.5, 1.5], for
-- cumprod in [1 - 1e-3, 1 + 1e-3] (a product of 10M stays a normal float,
-- no denormal arithmetic); each call allocates its result, as a user's does.
-- Its peer is bench/scan_torch.py (the same in PyTorch).
--
--   ./ember bench/scan_bench.lua [cpu|cuda]
--
-- Timed with bench/timing.lua's method (median batch); on cuda each batch
-- ends with ember.cuda.synchronize().  Threads: EMBER_NUM_THREADS.
-- Output: "# device D threads N", then one "<case> <ms per call>" a line.
local ember = require "ember"
local timing = dofile((arg and arg[0] or "bench/scan_bench.lua"):gsub("[^/]*$", "") .. "timing.lua")

local dev = arg and arg[1] or "cpu"
local sync = dev == "cuda" and ember.cuda.synchronize or function() end

local function input(shape, dtype)
  return (ember.rand(shape, {dtype = dtype}) + 0.5):to(dev)
end

local x1m, x10m = input({1000000}), input({10000000})
local m = input({1000, 10000})
local d10m = input({10000000}, "float64")
local p10m = (ember.rand(10000000) * 2e-3 + (1 - 1e-3)):to(dev)

local CASES = {
  {"cumsum_1M", function() return x1m:cumsum(1) end},
  {"cumsum_10M", function() return x10m:cumsum(1) end},
  {"cumsum_1000x10000_dim2", function() return m:cumsum(2) end},
  {"cumsum_1000x10000_dim1", function() return m:cumsum(1) end},
  {"cumprod_10M", function() return p10m:cumprod(1) end},
  {"cummax_10M", function() return x10m:cummax(1) end},
  {"cumsum_f64_10M", function() return d10m:cumsum(1) end},
}

io.write(("# device %s threads %d\n"):format(dev, ember.get_num_threads()))
timing.run_cases(CASES, nil, sync)
