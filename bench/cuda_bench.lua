--- bench/cuda_bench.lua -- Ember on the GPU: one training epoch of the
-- Fashion-MNIST CNN of DESIGN.md (Adam, lr 1e-3) at batch sizes 32 and 256,
-- and float32 matmul GFLOP/s for square sizes.  Peers: bench/cuda_torch.py
-- (the same in PyTorch) and bench/cublas_gemm (cuBLAS sgemm called
-- directly); bench/run_gpu.sh runs all three and prints the table.
--
--   ./ember bench/cuda_bench.lua [--random | --data DIR] [--limit N]
--        [--batch-sizes 32,256] [--sizes 1024,2048,4096,8192] [--runs 5]
--        [--device cuda|cpu]
--
-- Data: the four IDX files in DIR (default $EMBER_FASHION_MNIST, else
-- Debian's /usr/share/datasets/fashion-mnist); if they are missing, or with
-- --random, uniform random images and labels of the same shape (60000
-- images).  The first output line says which.  The whole training set is
-- put on the device once; each epoch draws a permutation (on the device)
-- and each step gathers its batch there with index_select, as the PyTorch
-- peer does.
--
-- The epoch: a hand-written loop (zero_grad, forward, cross-entropy,
-- backward, step), with no host round trip inside; ember.cuda.synchronize()
-- before each clock reading.  Before it, a warm-up slice of 20 steps (cuBLAS
-- handles, the caching allocator's blocks).  One timed epoch per batch
-- size; then model:fit's epoch (with its per-batch loss and accuracy) for
-- context.
--
-- Matmul: a:matmul(b) on [n,n] float32 (TF32 off), each call allocating its
-- result as a user's call does; 2 n^3 flops a call; the median of --runs
-- timed runs of k calls each (k so that a run takes >= 0.2 s).
--
-- --device cpu and small --limit/--sizes make a quick check of the script
-- itself on a machine without a GPU.
--
-- Output, one figure a line (bench/run_gpu.sh parses it):
--   # data fashion-mnist DIR | # data random (why)
--   # device cuda | # device cpu
--   epoch_bs<B> <seconds> <images/s>
--   fit_bs<B> <seconds> <images/s>
--   matmul_<n> <GFLOP/s>
local ember = require "ember"
local nn, optim, data = ember.nn, ember.optim, ember.data
local F = nn.functional

-- {======================================================================
-- Options
-- =======================================================================

local function fail(msg)
  io.stderr:write("cuda_bench.lua: ", msg, "\n")
  os.exit(2)
end

local function int_list(s, what)
  local out = {}
  for part in tostring(s):gmatch("[^,]+") do
    local n = math.tointeger(tonumber(part))
    if not n or n < 1 then fail(("bad %s '%s'"):format(what, s)) end
    out[#out + 1] = n
  end
  return out
end

local opt = {
  random = false, data = os.getenv("EMBER_FASHION_MNIST"), limit = nil,
  batch_sizes = {32, 256}, sizes = {1024, 2048, 4096, 8192}, runs = 5,
  device = "cuda",
}
do
  local args, i = {...}, 1
  while i <= #args do
    local a, v = args[i], args[i + 1]
    if a == "--random" then opt.random = true; i = i + 1
    elseif a == "--data" and v then opt.data = v; i = i + 2
    elseif a == "--limit" and v then opt.limit = int_list(v, "limit")[1]; i = i + 2
    elseif a == "--batch-sizes" and v then opt.batch_sizes = int_list(v, "batch sizes"); i = i + 2
    elseif a == "--sizes" and v then opt.sizes = int_list(v, "sizes"); i = i + 2
    elseif a == "--runs" and v then opt.runs = int_list(v, "runs")[1]; i = i + 2
    elseif a == "--device" and (v == "cuda" or v == "cpu") then opt.device = v; i = i + 2
    else fail("unknown or incomplete argument '" .. tostring(a) .. "' (see the header of the file)")
    end
  end
end

local DEV = opt.device
if DEV == "cuda" and not ember.cuda.is_available() then
  fail("no CUDA device: " .. tostring(ember.cuda.unavailable_reason()))
end
ember.cuda.set_allow_tf32(false)

--- Wait for the device, then read the clock.
local function now()
  if DEV == "cuda" then ember.cuda.synchronize() end
  return ember.clock()
end

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

-- }======================================================================

-- {======================================================================
-- Training epochs
-- =======================================================================

local N = 60000
local x, y
do
  local dir = opt.data and opt.data ~= "" and opt.data or "/usr/share/datasets/fashion-mnist"
  local why = "--random"
  if not opt.random then
    local ok, train = pcall(data.fashion_mnist, dir, {limit = opt.limit})
    if ok then
      x, y = train.x, train.y
      io.write(("# data fashion-mnist %s (%d images)\n"):format(dir, x:size(1)))
    else
      why = tostring(train):gsub("\n", " ")
    end
  end
  if not x then
    local n = opt.limit and math.min(opt.limit, N) or N
    ember.manual_seed(0)
    x = ember.rand(n, 1, 28, 28, {device = DEV})
    y = ember.randint(1, 10, {n}, {device = DEV})
    io.write(("# data random (%s) (%d images)\n"):format(why, n))
  end
end
io.write(("# device %s\n"):format(DEV))
io.stdout:flush()
x, y = x:to(DEV), y:to(DEV)
local n = x:size(1)

local function cnn()
  return nn.Sequential{
    nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3), nn.ReLU(),
    nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
  }
end

--- `steps` steps (all of an epoch when nil) of model/adam over a fresh
-- permutation, batch bs; returns the seconds they took.
local function train_steps(model, adam, bs, steps)
  local perm = ember.randperm(n):to(DEV)
  local total = (n + bs - 1) // bs
  steps = steps and math.min(steps, total) or total
  local t0 = now()
  local s0 = DEV == "cuda" and ember.cuda.stats()
  for b = 1, steps do
    local start = (b - 1) * bs + 1
    local idx = perm:narrow(1, start, math.min(bs, n - start + 1))
    local xb, yb = x:index_select(1, idx), y:index_select(1, idx)
    adam:zero_grad()
    local loss = F.cross_entropy(model(xb), yb)
    loss:backward()
    adam:step()
  end
  -- the waits and device mallocs of the steps themselves (the stand-in
  -- and the GPU must agree: none), before now()'s own synchronize
  local s1 = DEV == "cuda" and ember.cuda.stats()
  local secs = now() - t0
  return secs, s1 and (s1.syncs - s0.syncs) / steps, s1 and s1.allocations - s0.allocations
end

for _, bs in ipairs(opt.batch_sizes) do
  ember.manual_seed(42)
  local model = cnn():to(DEV)
  local adam = optim.Adam(model:parameters(), {lr = 1e-3})
  train_steps(model, adam, bs, 20)                 -- the warm-up slice
  local secs, syncs, mallocs = train_steps(model, adam, bs)
  io.write(("epoch_bs%d %.3f %.0f\n"):format(bs, secs, n / secs))
  if syncs then io.write(("syncs_bs%d %.3f %d\n"):format(bs, syncs, mallocs)) end
  io.stdout:flush()

  -- model:fit's epoch, for context: the same steps plus the per-batch
  -- loss and accuracy that its progress reporting reads back
  model:compile{optimizer = optim.Adam{lr = 1e-3}, loss = nn.CrossEntropyLoss(),
                metrics = {"accuracy"}}
  local t0 = now()
  model:fit(x, y, {epochs = 1, batch_size = bs, verbose = 0})
  secs = now() - t0
  io.write(("fit_bs%d %.3f %.0f\n"):format(bs, secs, n / secs))
  io.stdout:flush()
  model, adam = nil, nil
  collectgarbage()
end

-- }======================================================================

-- {======================================================================
-- Matmul
-- =======================================================================

x, y = nil, nil
collectgarbage()
if DEV == "cuda" then ember.cuda.empty_cache() end
ember.manual_seed(42)
for _, s in ipairs(opt.sizes) do
  local a, b = ember.randn(s, s, {device = DEV}), ember.randn(s, s, {device = DEV})
  local c
  -- warm-up, and an estimate of one call's time
  local t0 = now()
  for _ = 1, 2 do c = a:matmul(b) end
  local one = math.max((now() - t0) / 2, 1e-6)
  local k = math.max(1, math.ceil(0.2 / one))
  local rates = {}
  for r = 1, opt.runs do
    t0 = now()
    for _ = 1, k do c = a:matmul(b) end
    rates[r] = 2 * s ^ 3 * k / (now() - t0) * 1e-9
  end
  assert(c:size(1) == s)
  io.write(("matmul_%d %.1f\n"):format(s, median(rates)))
  io.stdout:flush()
  a, b, c = nil, nil, nil
  collectgarbage()
end

-- }======================================================================
