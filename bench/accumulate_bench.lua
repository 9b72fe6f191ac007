--- bench/accumulate_bench.lua -- gradient accumulation against one big
-- batch (issue 19's target: "accumulate = 4 at batch 8 against batch 32
-- (SGD, no dropout): same weights within 1e-6").
--
--   ./ember bench/accumulate_bench.lua [EPOCHS [ROWS]]
--
-- The same MLP (64-256-256-10, ReLU, no dropout, seed 0) is fitted twice
-- with fit{} and SGD (lr 0.05, momentum 0.9) on the same random data
-- (ROWS rows, default 4096; the shuffles drawn from the same seed):
-- once at batch 32, once at batch 8 with accumulate = 4.  Prints the
-- largest absolute difference between the two models' weights (the
-- target: at most 1e-6), and each run's seconds per epoch (the
-- accumulated run makes four times the forwards and backwards, each a
-- quarter the size: its cost is the smaller batches', not the step's).
local ember = require "ember"
local nn, optim = ember.nn, ember.optim

local epochs, rows = tonumber(arg[1]) or 3, tonumber(arg[2]) or 4096
ember.manual_seed(1)
local x = ember.randn(rows, 64)
local y = ember.randint(1, 10, {rows})

local function run(bs, accumulate)
  ember.manual_seed(0)
  local m = nn.Sequential{nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10)}
  m:compile{optimizer = optim.SGD(m:parameters(), {lr = 0.05, momentum = 0.9}),
            loss = nn.CrossEntropyLoss()}
  ember.manual_seed(5)
  local t0 = ember.clock()
  local h = m:fit(x, y, {batch_size = bs, accumulate = accumulate, epochs = epochs, verbose = 0})
  return m, (ember.clock() - t0) / epochs, h.loss[epochs]
end

local a, ta, la = run(32, 1)
local b, tb, lb = run(8, 4)
local worst, sb = 0, b:state_dict()
for k, t in pairs(a:state_dict()) do worst = math.max(worst, (t - sb[k]):abs():max():item()) end
print(("# %d rows, %d epochs, SGD momentum 0.9, %d threads"):format(rows, epochs,
      ember.get_num_threads()))
print(("batch 32:                  %.4f s/epoch, last loss %.6f"):format(ta, la))
print(("batch 8, accumulate = 4:   %.4f s/epoch, last loss %.6f"):format(tb, lb))
print(("max |weight difference|:   %.3g (target <= 1e-6: %s)"):format(worst,
      worst <= 1e-6 and "met" or "NOT met"))
