-- fashion_mnist_ddp.lua: the seed CNN of fashion_mnist_cnn.lua trained by
-- several processes at once (data parallel), in the PyTorch style.
--   mpirun -np 2 ./ember examples/fashion_mnist_ddp.lua            (5 epochs, all images)
--   mpirun -np 2 ./ember examples/fashion_mnist_ddp.lua --limit 6000 --epochs 2
--   ./ember examples/fashion_mnist_ddp.lua                         (a world of one)
-- (As root, mpirun needs --allow-run-as-root; on one machine with more
-- processes than cores, --oversubscribe.)  Each rank trains on its own
-- shard of every epoch with batches of 32, so two ranks take batches of
-- 64 together; the gradients are averaged over the ranks after each
-- backward, so every rank keeps the same weights.  Rank 1 prints and
-- saves.  The Keras style does the same with
-- model:compile{..., distributed = true} and model:fit (docs/distributed.md).
local ember = require "ember"
local nn, optim, data = ember.nn, ember.optim, ember.data
local dist = ember.distributed

local here = arg and arg[0] and arg[0]:match("^(.*)/[^/]*$") or "examples"
-- --limit N --epochs N (a quick run: fewer images, fewer epochs)
local opt = dofile(here .. "/lib/options.lua")("fashion_mnist_ddp.lua", arg,
  {["--limit"] = {"integer"}, ["--epochs"] = {"integer", 5}})
local limit, epochs = opt["--limit"], opt["--epochs"]

local rank, world = dist.init()
local function say(...) if rank == 1 then print(...) end end
say(("%d rank(s), %d thread(s) each, %s"):format(world, ember.get_num_threads(),
    dist.backend()))

ember.manual_seed(42)
local train, test = data.fashion_mnist{limit = limit}

local net = nn.Sequential{
  nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(64, 64, 3), nn.ReLU(),
  nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
}
local model = nn.DistributedDataParallel(net)   -- every rank now has rank 1's weights
local optimizer = optim.Adam(model:parameters(), {lr = 1e-3})
local criterion = nn.CrossEntropyLoss()
local loader = data.loader(train.x, train.y, {batch_size = 32, shuffle = true, shard = true})
-- evaluate splits the test set over the ranks and adds up what they find
net:compile{optimizer = optimizer, loss = criterion, metrics = {"accuracy"}}

local start = ember.clock()
for epoch = 1, epochs do
  model:train()
  local sum, seen = 0, 0
  for xb, yb in loader do
    optimizer:zero_grad()
    local loss = criterion(model(xb), yb)
    loss:backward()                 -- returns with the gradients averaged over the ranks
    optimizer:step()
    sum, seen = sum + loss:item() * xb:size(1), seen + xb:size(1)
  end
  local total = dist.all_reduce(ember.tensor({sum, seen}, {dtype = "float64"}))
  local _, acc = net:evaluate(test.x, test.y, {distributed = true})
  say(("epoch %d/%d: loss %.4f, test accuracy %.4f (%d batches of %d per rank)")
      :format(epoch, epochs, total[1] / total[2], acc, #loader, loader.batch_size))
end
local seconds = (ember.clock() - start) / epochs
local _, acc = net:evaluate(test.x, test.y, {distributed = true})
say(("%.1f s per epoch; test accuracy: %.4f"):format(seconds, acc))

-- one rank writes the checkpoint (atomically); the others wait for it.
-- The file's name: rank 1's choice, sent to all as a number.
local id = ember.tensor({rank == 1 and math.random(1, 1 << 40) or 0}, {dtype = "int64"})
local path = ("%s/fashion_mnist_ddp.%d.safetensors"):format(os.getenv("TMPDIR") or "/tmp",
                                                           dist.broadcast(id, 1)[1])
if rank == 1 then net:save(path) end
dist.barrier()
local reloaded = nn.load(path)
local first = test.x:narrow(1, 1, 64)
local same = reloaded:predict(first):argmax(2):eq(net:predict(first):argmax(2)):sum():item() == 64
say(("reloaded on every rank: %s"):format(same and "the same predictions" or "DIFFERENT"))
dist.barrier()
if rank == 1 then os.remove(path) end
