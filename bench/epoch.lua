--- bench/epoch.lua -- seconds per training epoch of the Fashion-MNIST CNN
-- of DESIGN.md or the 784-128-64-10 ReLU MLP, and the process's peak
-- resident memory.  Peer: bench/epoch_torch.py (the same in PyTorch).
--
--   ./ember bench/epoch.lua cnn|mlp BATCH THREADS [WARMUP [STEPS [CHUNKS]]]
--
-- The work, the same on both sides:
--   - data: the first 54,000 images of Debian's Fashion-MNIST training
--     set (the 90% that fit keeps with validation_split = 0.1), read from
--     the gzipped IDX files and kept as stored, uint8 [54000,1,28,28]
--     (42 MiB; torchvision's datasets keep their images so too), and int64
--     labels; each batch is converted to float32 in [0,1] as it is drawn;
--     nothing else is loaded (BENCH_DATA names another folder);
--   - model: default initialisation (PyTorch's defaults, which Ember's nn
--     uses), seed 0; Adam, lr 1e-3;
--   - loop: the PyTorch-style loop of DESIGN.md, data.loader with
--     shuffle = true (a new permutation each epoch; the last batch of an
--     epoch is partial), zero_grad, cross_entropy, backward, step.
-- Timing: WARMUP steps (default 200) untimed, then STEPS steps (default
-- 400; 0: one whole epoch) from the start of a fresh epoch, in CHUNKS
-- (default 8) consecutive slices, each timed on ember.clock().  The
-- figure is the median slice's images/s (the lower middle one), scaled to
-- 54,000 images: a neighbour that takes a core for a moment costs one
-- slice, not the figure.  The spread is that of the middle half of the
-- slices (third fastest / third slowest of 8), which says whether the
-- median can be trusted.  A slice of the epoch stands for the whole epoch because every
-- step costs the same (same shapes, eager kernels).
-- Threads: ember.set_num_threads(THREADS) (bench/run.sh also sets
-- EMBER_NUM_THREADS and OMP_NUM_THREADS to it).
-- Output: a comment line saying what was measured, the final loss as a
-- comment, then "epoch <s per 54,000 images>", "images_s <images/s>",
-- "spread <upper quartile slice / lower quartile>" and
-- "rss_mib <VmHWM, MiB>".
local ember = require "ember"
local nn, optim, data = ember.nn, ember.optim, ember.data

local DIR = os.getenv("BENCH_DATA") or "/usr/share/datasets/fashion-mnist/"
local NTRAIN = 54000

local function usage(msg)
  error("epoch.lua: " .. msg ..
        "; usage: epoch.lua cnn|mlp BATCH THREADS [WARMUP [STEPS [CHUNKS]]]", 0)
end

local function int_arg(i, name, min)
  local v = math.tointeger(tonumber(arg[i]))
  if not v or v < min then
    usage(("%s must be an integer >= %d, got '%s'"):format(name, min, tostring(arg[i])))
  end
  return v
end

local kind = arg[1]
if kind ~= "cnn" and kind ~= "mlp" then usage(("expected cnn or mlp, got '%s'"):format(tostring(kind))) end
local bs, threads = int_arg(2, "BATCH", 1), int_arg(3, "THREADS", 1)
local warmup = arg[4] and int_arg(4, "WARMUP", 0) or 200
local steps = arg[5] and int_arg(5, "STEPS", 0) or 400
local chunks = arg[6] and int_arg(6, "CHUNKS", 1) or 8
local per_epoch = (NTRAIN + bs - 1) // bs
if steps == 0 then steps = per_epoch end
if chunks > steps then chunks = steps end

ember.set_num_threads(threads)
ember.manual_seed(0)

-- the data: uint8 as stored (the kept part), batches converted as drawn
local images = data.read_idx(DIR .. "/train-images-idx3-ubyte.gz")
local labels = data.read_idx(DIR .. "/train-labels-idx1-ubyte.gz")
local x = images:narrow(1, 1, NTRAIN):unsqueeze(2)
local y = labels:narrow(1, 1, NTRAIN):long():add_(1)
images, labels = nil, nil
collectgarbage()

local model
if kind == "cnn" then
  model = nn.Sequential{
    nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3), nn.ReLU(),
    nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
  }
else
  model = nn.Sequential{
    nn.Flatten(), nn.Linear(784, 128), nn.ReLU(),
    nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10),
  }
end
local opt = optim.Adam(model:parameters(), {lr = 1e-3})
local loader = data.loader(x, y, {batch_size = bs, shuffle = true})

local loss
--- n training steps from `batches`, a new epoch's whenever one runs out
-- (fresh = true: start a new epoch first).  Returns the images seen.
local batches
local function train(n, fresh)
  if fresh or not batches then batches = loader:iter() end
  local seen = 0
  for _ = 1, n do
    local xb, yb = batches()
    if not xb then
      batches = loader:iter()
      xb, yb = batches()
    end
    xb = xb:float():div_(255)
    opt:zero_grad()
    loss = nn.functional.cross_entropy(model(xb), yb)
    loss:backward()
    opt:step()
    seen = seen + xb:size(1)
  end
  return seen
end

train(warmup, true)
local rates, clock = {}, ember.clock
local timed_images, done = 0, 0
for c = 1, chunks do
  local n = steps * c // chunks - done          -- the slices differ by one step at most
  local t0 = clock()
  local seen = train(n, c == 1)
  rates[c] = seen / (clock() - t0)
  timed_images, done = timed_images + seen, done + n
end
local final = loss:item()
if final ~= final or final == math.huge then error("epoch.lua: the loss diverged: " .. final, 0) end

table.sort(rates)
local rate = rates[(#rates + 1) // 2]
local q = #rates // 4                         -- the slices left out at each end

local rss
local f = io.open("/proc/self/status")
if f then
  for line in f:lines() do
    local kb = line:match("^VmHWM:%s*(%d+)%s*kB")
    if kb then rss = tonumber(kb) / 1024 end
  end
  f:close()
end

io.write(("# ember %s batch %d threads %d: warm-up %d steps, timed %d steps (%d images) "
          .. "in %d slices, median slice scaled to %d images\n")
         :format(kind, bs, ember.get_num_threads(), warmup, steps, timed_images, chunks, NTRAIN))
io.write(("# loss %.4f\n"):format(final))
io.write(("epoch %.3f\nimages_s %.1f\nspread %.3f\n"):format(NTRAIN / rate, rate,
         rates[#rates - q] / rates[1 + q]))
if rss then io.write(("rss_mib %.1f\n"):format(rss)) end
