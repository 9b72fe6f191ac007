--- bench/dist_epoch.lua -- data-parallel training throughput of the
-- Fashion-MNIST CNN of DESIGN.md (issue 8), in images/s over all ranks.
-- Peer: bench/dist_torch.py cnn (PyTorch's DDP over gloo).
--
--   mpirun -np W ./ember bench/dist_epoch.lua [BATCH [WARMUP [STEPS [CHUNKS]]]]
--
-- The work, the same on every rank and in the peer:
--   - data: the 60,000 training images of data.fashion_mnist() (float32
--     [60000,1,28,28] in [0,1], from Debian's files), every rank holding
--     all of them; data.loader{batch_size = BATCH (default 32) per rank,
--     shuffle = true, shard = true}: each epoch, rank 1's permutation split
--     into W shards (ember.distributed.shard, DistributedSampler's rule);
--   - model: the network of DESIGN.md and examples/fashion_mnist_cnn.lua,
--     default initialisation, seed 0, in nn.DistributedDataParallel
--     (rank 1's weights broadcast at the start; the gradients averaged
--     over the ranks after each backward, in one 25 MiB bucket); Adam, lr
--     1e-3;
--   - loop: zero_grad, cross_entropy, backward (which averages), step.
-- One thread per rank: ember.set_num_threads(1) (bench/run.sh also sets
-- EMBER_NUM_THREADS and OMP_NUM_THREADS to 1).
--
-- Timing: WARMUP steps untimed (default 50), then STEPS steps (default
-- 300) in CHUNKS consecutive slices (default 4), each between two
-- barriers and timed on rank 1's ember.clock().  A slice's rate is the
-- images all ranks trained on (W times this rank's: the shards are equal
-- by construction) over its time; the figure is the median slice's rate
-- (the lower middle one, as bench/epoch.lua takes it), and the spread is
-- that of the slices (fastest / slowest).  Each rank also times, on its own
-- clock, the calls DDP's backward makes to ember.distributed.
-- average_gradients (the all-reduce of the gradients, and any wait for a
-- slower rank); sync_ms is that time per timed step, averaged over the
-- ranks, and step_ms the time of a step at the median rate.
-- Output (rank 1): comment lines, then "images_s", "spread", "step_ms",
-- "sync_ms".
local ember = require "ember"
local nn, optim, data, dist = ember.nn, ember.optim, ember.data, ember.distributed

local function usage(msg)
  error("dist_epoch.lua: " .. msg ..
        "; usage: dist_epoch.lua [BATCH [WARMUP [STEPS [CHUNKS]]]]", 0)
end

local function int_arg(i, name, min, dflt)
  if arg[i] == nil then return dflt end
  local v = math.tointeger(tonumber(arg[i]))
  if not v or v < min then
    usage(("%s must be an integer >= %d, got '%s'"):format(name, min, tostring(arg[i])))
  end
  return v
end
local bs = int_arg(1, "BATCH", 1, 32)
local warmup = int_arg(2, "WARMUP", 0, 50)
local steps = int_arg(3, "STEPS", 1, 300)
local chunks = math.min(int_arg(4, "CHUNKS", 1, 4), steps)

dist.init()
local world, rank = dist.world_size(), dist.rank()
ember.set_num_threads(1)
ember.manual_seed(0)

local train = data.fashion_mnist()
local net = nn.Sequential{
  nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(64, 64, 3), nn.ReLU(),
  nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
}
local model = nn.DistributedDataParallel(net)
local opt = optim.Adam(model:parameters(), {lr = 1e-3})
local loader = data.loader(train.x, train.y, {batch_size = bs, shuffle = true, shard = true})
local cross_entropy = nn.functional.cross_entropy

-- the time DDP spends averaging: it calls dist.average_gradients through
-- the module table, so a wrapper here sees every call
local clock = ember.clock
local sync_s = 0
local average = dist.average_gradients
dist.average_gradients = function(...)
  local t0 = clock()
  average(...)
  sync_s = sync_s + clock() - t0
end

local loss, batches
--- n training steps, a new epoch's batches whenever one runs out.
-- Returns the images this rank saw.
local function train_steps(n)
  local seen = 0
  for _ = 1, n do
    local xb, yb = nil, nil
    if batches then xb, yb = batches() end
    if not xb then
      batches = loader:iter()
      xb, yb = batches()
    end
    opt:zero_grad()
    loss = cross_entropy(model(xb), yb)
    loss:backward()
    opt:step()
    seen = seen + xb:size(1)
  end
  return seen
end

train_steps(warmup)
sync_s = 0
local rates, done = {}, 0
for c = 1, chunks do
  local n = steps * c // chunks - done          -- the slices differ by one step at most
  dist.barrier()
  local t0 = clock()
  local seen = train_steps(n)
  dist.barrier()
  rates[c] = seen * world / (clock() - t0)
  done = done + n
end
local final = loss:item()
if final ~= final or final == math.huge then
  error("dist_epoch.lua: the loss diverged: " .. final, 0)
end
local sync = dist.all_reduce(ember.tensor({sync_s}, {dtype = "float64"}), "mean"):item()

table.sort(rates)
local rate = rates[(#rates + 1) // 2]
if rank == 1 then
  local backend, version = dist.backend()
  io.write(("# ember %s, backend %s %s\n"):format(ember._VERSION or "?", backend, version or ""))
  io.write(("# ember cnn ddp ranks %d, batch %d per rank, threads %d: warm-up %d steps, "
            .. "timed %d steps in %d slices between barriers, median slice\n")
           :format(world, bs, ember.get_num_threads(), warmup, steps, chunks))
  io.write(("# loss %.4f\n"):format(final))
  io.write(("images_s %.1f\nspread %.3f\nstep_ms %.3f\nsync_ms %.4f\n")
           :format(rate, rates[#rates] / rates[1], bs * world / rate * 1e3, sync / steps * 1e3))
end
