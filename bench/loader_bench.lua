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
-- instead of batch + step.  Then the same for an image folder (the
-- section below; bench/loader_torch.py is its PyTorch peer).  Run it with
-- OMP_WAIT_POLICY=passive, as bench/run.sh does (bench/NOTES.md).
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

-- {======================================================================
-- An image folder (data.image_folder): NIMG 64x64 PNGs that the bench
-- writes to a temporary folder (ember._png_encode; no JPEG encoder here),
-- resized to 32x32 while decoding, batch 64, the transforms above, and a
-- step that computes: a small CNN's forward and backward on the caller's
-- thread.  With prefetch the worker decodes with a team of one thread
-- (ImageFolder._worker_threads = 1, the default) or the default OpenMP
-- team (0); ember's thread count stays 1 so the step keeps one core.
-- EMBER_BENCH_IMAGES sets NIMG (default 2000).
-- =======================================================================

local NIMG = tonumber(os.getenv("EMBER_BENCH_IMAGES")) or 2000
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "/c0' '" .. dir .. "/c1'"))
local chars = {}
for v = 0, 255 do chars[v] = string.char(v) end
local t_write = ember.clock()
for k = 1, NIMG do
  -- a smooth pattern that differs per image, with some noise (PNG
  -- compresses it like a photo-sized file rather than a flat one)
  local px = {}
  for y = 0, 63 do
    for x = 0, 63 do
      local r = (x * 4 + k) % 256
      local g = (y * 4 + 3 * k) % 256
      local b = ((x + y) * 2 + math.random(0, 31)) % 256
      px[#px + 1] = chars[r] .. chars[g] .. chars[b]
    end
  end
  local f = assert(io.open(("%s/c%d/%05d.png"):format(dir, k % 2, k), "wb"))
  f:write(ember._png_encode(64, 64, table.concat(px)))
  f:close()
end
t_write = ember.clock() - t_write

local nn = ember.nn
local ds = data.image_folder(dir, {size = {32, 32}})
local itf = data.transforms{data.RandomCrop(32, {padding = 4}), data.RandomHorizontalFlip(),
                            data.Normalize({0.5, 0.5, 0.5}, {0.25, 0.25, 0.25})}
local model = nn.Sequential{nn.Conv2d(3, 16, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 32, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(32 * 8 * 8, 2)}
local IB = 64

local function step(xb, yb)
  local loss = nn.functional.cross_entropy(model(xb), yb)
  loss:backward()
  model:zero_grad()
end

local function image_epoch(prefetch, compute)
  local loader = data.loader(ds, {batch_size = IB, shuffle = true, seed = 5,
                                  transform = itf, prefetch = prefetch})
  local sum, t0 = 0, ember.clock()
  for xb, yb in loader do
    sum = sum + xb:sum():item()
    if compute then step(xb, yb) end
  end
  return ember.clock() - t0, sum
end

local saved_threads = ember.get_num_threads()
ember.set_num_threads(1)
local ImageFolder = getmetatable(ds)
local inb = (NIMG + IB - 1) // IB
image_epoch(0, true)   -- warm-up (and the files into the page cache)
local decode = image_epoch(0, false)
local steps_t = ember.clock()
do
  local xb, yb = data.loader(ds, {batch_size = IB, transform = itf}):iter()()
  for _ = 1, inb do step(xb, yb) end
end
steps_t = ember.clock() - steps_t
local i0, u0 = image_epoch(0, true)
ImageFolder._worker_threads = 1
local i1, u1 = image_epoch(2, true)
ImageFolder._worker_threads = 0
local iT, uT = image_epoch(2, true)
ImageFolder._worker_threads = 1
ember.set_num_threads(saved_threads)
print(("# image folder: %d PNGs 64x64 -> 32x32 (written in %.1f s), %d batches of %d, "
       .. "CNN step on 1 thread"):format(NIMG, t_write, inb, IB))
print(("decode+transform alone         %7.1f ms per batch"):format(decode * 1000 / inb))
print(("CNN steps alone                %7.1f ms per batch"):format(steps_t * 1000 / inb))
print(("epoch, prefetch 0              %7.1f ms per batch"):format(i0 * 1000 / inb))
print(("epoch, prefetch 2, worker 1 thread  %7.1f ms per batch  (%.2fx)"):format(
  i1 * 1000 / inb, i0 / i1))
print(("epoch, prefetch 2, worker's team    %7.1f ms per batch  (%.2fx)"):format(
  iT * 1000 / inb, i0 / iT))
print(("same batches                   %s"):format((u0 == u1 and u0 == uT) and "yes" or "NO"))
os.execute("rm -r '" .. dir .. "'")
