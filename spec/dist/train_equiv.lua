-- train_equiv.lua MODE OUT: train a small CNN on fixed random data and
-- save its weights to OUT (rank 1 only), for spec/dist/ddp_spec.lua.
--   single  one process, batches of 64 (the reference)
--   ddp     nn.DistributedDataParallel, a sharded loader, batches of 32 per rank
--   fit     model:fit{distributed = true}, batches of 32 per rank
--   ddp_accum  DDP with batches of 16 per rank, two per step (no_sync)
--   fit_accum  fit{distributed = true, accumulate = 2}, batches of 16 per rank
-- Under `mpirun -np 2`, ddp and fit take the same global batches as single.
local ember = require "ember"
local nn, optim, data = ember.nn, ember.optim, ember.data
local dist = ember.distributed

local mode, out, opt_name = arg[1], arg[2], arg[3] or "adam"
dist.init()
local world = dist.world_size()

-- the data: the same on every rank (drawn before any seeding of the model)
ember.manual_seed(7)
local n = 64 * 5
local x = ember.randn(n, 1, 8, 8)
local y = ember.randint(1, 4, {n})

ember.manual_seed(42)
local net = nn.Sequential{
  nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(), nn.Linear(4 * 4 * 4, 16), nn.Tanh(), nn.Linear(16, 4),
}
if dist.rank() ~= 1 then
  -- other ranks start from other weights: DDP and fit must broadcast rank 1's
  for _, p in ipairs(net:parameters()) do ember.no_grad(function() p:copy_(ember.rand(p:shape())) end) end
end
local function make_opt(params)
  if opt_name == "sgd" then return optim.SGD(params, {lr = 0.05, momentum = 0.9}) end
  return optim.Adam(params, {lr = 1e-2})
end
local epochs = 2
ember.manual_seed(1234)   -- the shuffles

if mode == "single" or mode == "ddp" then
  local model = mode == "ddp" and nn.DistributedDataParallel(net) or net
  local opt = make_opt(model:parameters())
  local crit = nn.CrossEntropyLoss()
  local bs = mode == "ddp" and 64 // world or 64
  local loader = data.loader(x, y, {batch_size = bs, shuffle = true, shard = mode == "ddp"})
  for _ = 1, epochs do
    for xb, yb in loader do
      opt:zero_grad()
      local loss = crit(model(xb), yb)
      loss:backward()
      opt:step()
    end
  end
elseif mode == "ddp_accum" then
  -- the documented pattern: the first micro-batch's backward under
  -- no_sync adds locally, the second's averages the sum, then one step
  local model = nn.DistributedDataParallel(net)
  local opt = make_opt(model:parameters())
  local crit = nn.CrossEntropyLoss()
  local loader = data.loader(x, y, {batch_size = 32 // world, shuffle = true, shard = true})
  for _ = 1, epochs do
    local i = 0
    for xb, yb in loader do
      i = i + 1
      if i % 2 == 1 then
        opt:zero_grad()
        model:no_sync(function() (crit(model(xb), yb) / 2):backward() end)
      else
        (crit(model(xb), yb) / 2):backward()
        opt:step()
      end
    end
  end
elseif mode == "fit" or mode == "fit_accum" then
  net:compile{optimizer = make_opt(net:parameters()), loss = nn.CrossEntropyLoss(),
              metrics = {"accuracy"}, distributed = true}
  local accumulate = mode == "fit_accum" and 2 or 1
  local h = net:fit(x, y, {epochs = epochs, batch_size = 64 // world // accumulate, verbose = 0,
                           validation_split = 0, accumulate = accumulate})
  io.write(("rank %d loss %.6f accuracy %.6f\n"):format(dist.rank(), h.loss[epochs],
           h.accuracy[epochs]))
else
  error("train_equiv: unknown mode " .. tostring(mode))
end
if dist.rank() == 1 then ember.save(out, net:state_dict()) end
