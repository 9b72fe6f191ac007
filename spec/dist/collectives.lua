-- collectives.lua: run under `mpirun -np 2` by spec/dist/dist_spec.lua.
-- Each rank runs every check and prints "ok <name>" or "FAIL <name>:
-- <why>"; the spec wants every check ok on both ranks.  With
-- EMBER_CUDA_PLUGIN set (the stand-in plugin) the checks also run on
-- "cuda" tensors, which go through host staging.
local ember = require "ember"
local nn = ember.nn
local dist = ember.distributed

local rank, world = dist.init()

-- Saved before any DistributedDataParallel exists: a wrapper made later
-- must still average through them (its averaging is a post-backward hook
-- of the engine, not a replacement of these functions).
local saved_backward, saved_method = ember.backward, ember.Tensor.backward

local function check(name, fn)
  local ok, err = pcall(fn)
  if ok then io.write(("ok %s\n"):format(name))
  else io.write(("FAIL %s: %s\n"):format(name, tostring(err):gsub("\n", " | "))) end
  io.flush()
end

local function same(a, b, what)
  local ta, tb = a, b
  if ember.is_tensor(a) then ta = a:cpu():double():totable() end
  if ember.is_tensor(b) then tb = b:cpu():double():totable() end
  local function walk(x, y, path)
    if type(x) == "table" then
      assert(type(y) == "table" and #x == #y, what .. ": shapes differ at " .. path)
      for i = 1, #x do walk(x[i], y[i], path .. "[" .. i .. "]") end
    else
      assert(math.abs(x - y) <= 1e-6 * math.max(1, math.abs(y)),
             ("%s: %s is %s, expected %s"):format(what, path, tostring(x), tostring(y)))
    end
  end
  walk(ta, tb, "")
end

local devices = {"cpu"}
if ember.cuda.is_available() then devices[2] = "cuda" end

check("world", function()
  assert(world == 2, "world " .. world)
  assert(rank == 1 or rank == 2, "rank " .. rank)
  assert(dist.rank() == rank and dist.world_size() == 2)
  assert(dist.backend() == "mpi", dist.backend())
  assert(dist.local_size() == 2)
  assert(dist.is_initialized())
  -- this process's share of the cores, unless chosen
  assert(ember.get_num_threads() >= 1)
end)

for _, dev in ipairs(devices) do
  local function T(v, dt) return ember.tensor(v, {dtype = dt or "float32"}):to(dev) end

  check(dev .. " all_reduce of every dtype and op", function()
    for _, dt in ipairs{"float32", "float64", "int32", "int64", "uint8"} do
      local t = T({rank, 10 * rank, 3}, dt)
      assert(dist.all_reduce(t) == t, "returns t")
      same(t, {3, 30, 6}, dt .. " sum")
      same(dist.all_reduce(T({rank, 5 - rank}, dt), "max"), {2, 4}, dt .. " max")
      same(dist.all_reduce(T({rank, 5 - rank}, dt), "min"), {1, 3}, dt .. " min")
    end
    same(dist.all_reduce(T({1, 2}, "float64"), "mean"), {1, 2}, "mean")
    same(dist.all_reduce(T({rank, 0}), "mean"), {1.5, 0}, "mean")
    local b = ember.tensor({rank == 1, false, true}, {dtype = "bool"}):to(dev)
    same(dist.all_reduce(b:clone(), "max"):long(), {1, 0, 1}, "bool any")
    same(dist.all_reduce(b:clone(), "min"):long(), {rank == 1 and 0 or 0, 0, 1}, "bool all")
  end)

  check(dev .. " all_reduce of a view writes through", function()
    local base = ember.arange(0, 12):float():to(dev):view(3, 4)
    local v = base:t()
    dist.all_reduce(v, "sum")
    same(base, ember.arange(0, 12):float():view(3, 4) * 2, "base")
    local col = base:select(2, 1)      -- a strided column
    dist.all_reduce(col, "max")
    same(col, {0, 8, 16}, "column")
  end)

  check(dev .. " broadcast and all_gather", function()
    local t = T({rank, rank})
    dist.broadcast(t, 2)
    same(t, {2, 2}, "from rank 2")
    local g = dist.all_gather(T({{rank, 10 * rank}}))
    same(g, {{{1, 10}}, {{2, 20}}}, "gathered")
    assert(g.device == dev, "gathered on " .. g.device)
    same(dist.all_gather(T(rank)), {1, 2}, "0-dim")
  end)

  check(dev .. " coalesced, several buckets and dtypes", function()
    local list = {T({rank, rank}), T({{rank}}, "float64"), T({rank, 2 * rank, 3}),
                  T({4 * rank}), ember.zeros(0):to(dev)}
    dist.all_reduce_coalesced(list, "mean", 8)   -- 8 bytes: a bucket per tensor or two
    same(list[1], {1.5, 1.5}, "1"); same(list[2], {{1.5}}, "2")
    same(list[3], {1.5, 3, 3}, "3"); same(list[4], {6}, "4")
    -- empty tensors alone: a bucket of 0 bytes (through the staging block on "cuda")
    same(dist.all_reduce(ember.zeros(0):to(dev)), {}, "empty")
    assert(table.concat(dist.all_gather(ember.zeros(0, 2):to(dev)):shape(), "x") == "2x0x2")
    local b = {T({rank}), T({rank, rank}, "int64"), T({{rank}}, "float64")}
    dist.broadcast_coalesced(b, 2, 4)
    same(b[1], {2}, "b1"); same(b[2], {2, 2}, "b2"); same(b[3], {{2}}, "b3")
  end)
end

check("ranks may hold their tensors differently (a view here, contiguous there)", function()
  local list = rank == 1 and {ember.ones(2, 3), ember.ones(4)} or {ember.ones(3, 2):t(), ember.ones(4)}
  dist.all_reduce_coalesced(list, "sum", 1000)
  same(list[1], {{2, 2, 2}, {2, 2, 2}}, "first")
  same(list[2], {2, 2, 2, 2}, "second")
  dist.all_reduce_coalesced(list, "sum", 4)
  same(list[2], {4, 4, 4, 4}, "small buckets")
end)

check("a large buffer in pieces of buckets", function()
  local t = ember.full({300000}, rank)
  dist.all_reduce_coalesced({t, ember.ones(5)}, "sum", 1024)
  assert(t:min():item() == 3 and t:max():item() == 3)
end)

check("mismatched arguments: the same error on every rank, then all goes on", function()
  local ok, err = pcall(dist.all_reduce, ember.ones(rank))
  assert(not ok and err:find("all_reduce: the ranks passed different arguments: the number " ..
         "of elements is " .. rank, 1, true), tostring(err))
  ok, err = pcall(dist.broadcast, ember.ones(2), rank)
  assert(not ok and err:find("root", 1, true), tostring(err))
  ok, err = pcall(dist.all_gather, ember.ones(rank, 2))
  assert(not ok and err:find("all_gather: the ranks passed different", 1, true), tostring(err))
  ok, err = pcall(dist.all_reduce_coalesced, rank == 1 and {ember.ones(2)} or {ember.ones(1), ember.ones(1)})
  assert(not ok and err:find("number of tensors", 1, true), tostring(err))
  same(dist.all_reduce(ember.ones(2)), {2, 2}, "after")
end)

check("bad arguments are local errors that change nothing", function()
  local t = ember.tensor{1, 2}
  local ok, err = pcall(dist.all_reduce, t, "prod")
  assert(not ok and err:find("invalid option 'prod'", 1, true), tostring(err))
  ok, err = pcall(dist.all_reduce, ember.tensor({1}, {dtype = "int32"}), "mean")
  assert(not ok and err:find("'mean' needs a floating tensor", 1, true), tostring(err))
  ok, err = pcall(dist.all_reduce, ember.tensor({true}, {dtype = "bool"}), "sum")
  assert(not ok and err:find("bool", 1, true), tostring(err))
  ok, err = pcall(dist.all_reduce_coalesced, {t, 3})
  assert(not ok and err:find("item 2 is number", 1, true), tostring(err))
  ok, err = pcall(dist.broadcast, t, 0)
  assert(not ok and err:find("root must be a rank", 1, true), tostring(err))
  same(t, {1, 2}, "unchanged")
end)

check("the loader's shard: disjoint parts, padded to equal length", function()
  ember.manual_seed(99 + rank)    -- different seeds: rank 1's order must win
  local x = ember.arange(1, 12)   -- 11 samples
  local loader = ember.data.loader(x, {batch_size = 4, shuffle = true, shard = true})
  assert(#loader == 2, "#loader " .. #loader)   -- 6 samples per rank
  local mine = {}
  for xb in loader do for _, v in ipairs(xb:totable()) do mine[#mine + 1] = v end end
  assert(#mine == 6, "samples " .. #mine)
  local all = dist.all_gather(ember.tensor(mine, {dtype = "int64"})):totable()
  local seen, dup = {}, 0
  for r = 1, 2 do for _, v in ipairs(all[r]) do
    if seen[v] then dup = dup + 1 end
    seen[v] = true
  end end
  for v = 1, 11 do assert(seen[v], "sample " .. v .. " missing") end
  assert(dup == 1, "duplicates " .. dup)
  -- in order (no shuffle): rank r takes r, r + 2, ...
  local l2 = ember.data.loader(x, {batch_size = 6, shard = true})
  local xb = l2:iter()()
  same(xb, rank == 1 and {1, 3, 5, 7, 9, 11} or {2, 4, 6, 8, 10, 1}, "in order")
  assert(tostring(l2):find("shard " .. rank .. " of 2", 1, true), tostring(l2))
end)

check("DDP: rank 1's weights, averaged gradients, unused parameters", function()
  ember.manual_seed(rank)          -- different initial weights per rank
  local Two = nn.Module:extend("TwoBranches")
  function Two:init() self.a = nn.Linear(3, 2); self.b = nn.Linear(3, 2) end
  function Two:forward(x, use_b)
    local y = self.a(x)
    if use_b then y = y + self.b(x) end
    return y
  end
  local net = Two()
  local model = nn.DistributedDataParallel(net, {bucket_mb = 0.0001})
  local w = dist.all_gather(net.a.weight:detach())
  same(w[1], w[2], "weights broadcast")
  local x = ember.full({4, 3}, rank)
  model(x, rank == 2):sum():backward()      -- b is used on rank 2 only
  for _, p in ipairs(net:parameters()) do
    assert(p.grad, "a gradient for every parameter")
    local g = dist.all_gather(p.grad)
    same(g[1], g[2], "same gradients")
  end
  -- a's weight: the mean of both ranks' sums of x over the batch
  same(net.a.weight.grad[1], {6, 6, 6}, "mean gradient")
  same(net.b.weight.grad[1], {4, 4, 4}, "b: rank 2's half, zeros from rank 1")
end)

check("DDP: no_sync accumulates, then one average", function()
  local net = nn.Linear(2, 1)
  local model = nn.DistributedDataParallel(net)
  model:no_sync(function()
    model(ember.full({1, 2}, rank)):sum():backward()
  end)
  same(net.weight.grad, {{rank, rank}}, "local gradient inside no_sync")
  model(ember.full({1, 2}, rank)):sum():backward()
  same(net.weight.grad, {{3, 3}}, "accumulated then averaged")
  -- a forward under no_grad or in eval mode does not average
  ember.no_grad(function() model(ember.ones(1, 2)) end)
  net:zero_grad()
  net(ember.full({1, 2}, rank)):sum():backward()
  same(net.weight.grad, {{rank, rank}}, "plain backward after a no_grad forward")
end)

check("DDP: a backward saved before the first wrapper still averages", function()
  assert(rawequal(ember.backward, saved_backward), "ember.backward was replaced")
  assert(rawequal(ember.Tensor.backward, saved_method), "Tensor.backward was replaced")
  local net = nn.Linear(2, 1, {bias = false})
  local model = nn.DistributedDataParallel(net)
  saved_backward(model(ember.full({1, 2}, rank)):sum())
  same(net.weight.grad, {{1.5, 1.5}}, "mean of 1 and 2 (saved ember.backward)")
  net:zero_grad()
  saved_method(model(ember.full({1, 2}, 2 * rank)):sum())
  same(net.weight.grad, {{3, 3}}, "mean of 2 and 4 (saved Tensor.backward)")
end)

check("DDP: buffers come from rank 1 at each training forward", function()
  local bn = nn.BatchNorm1d(2)
  local model = nn.DistributedDataParallel(bn)
  model(ember.full({4, 2}, rank) + ember.arange(0, 4):float():view(4, 1))
  local m = dist.all_gather(bn.running_mean)
  assert(m[1][1] ~= m[2][1], "each rank's batch updates its own statistics")
  -- the next forward starts from rank 1's: the same batch then gives the same
  model(ember.ones(4, 2))
  m = dist.all_gather(bn.running_mean)
  same(m[1], m[2], "rank 1's statistics, updated by the same batch")
end)

check("fit on a DDP model: distributed unless told otherwise", function()
  ember.manual_seed(rank)                      -- different data on each rank
  local x, y = ember.randn(32, 4), ember.randn(32, 1)
  local m = nn.DistributedDataParallel(nn.Sequential{nn.Linear(4, 1)})
  m:compile{optimizer = "sgd", loss = "mse"}
  m:fit(x, y, {epochs = 2, batch_size = 8, verbose = 0})
  local w = dist.all_gather(m.module[1].weight:detach())
  same(w[1], w[2], "the same weights (fit)")
  m:fit(x, y, {epochs = 1, batch_size = 8, verbose = 0, distributed = false})
  w = dist.all_gather(m.module[1].weight:detach())
  same(w[1], w[2], "the same weights (the wrapper's own averaging)")
end)

check("DDP save and nn.load", function()
  local net = nn.Sequential{nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)}
  local model = nn.DistributedDataParallel(net)
  local path = os.getenv("DIST_TMP") .. "/ddp.safetensors"
  if rank == 1 then model:save(path) end
  dist.barrier()
  local back = nn.load(path)
  local x = ember.randn(5, 2)
  dist.broadcast(x, 1)
  same(back(x), model(x), "loaded model")
  same(back.module(x), net(x), "its module")
end)

check("finalize, then collectives fail", function()
  dist.finalize()
  assert(not dist.is_initialized())
  local ok, err = pcall(dist.all_reduce, ember.ones(1))
  assert(not ok and err:find("all_reduce: the distributed job was finalized", 1, true), tostring(err))
  ok, err = pcall(dist.rank)
  assert(not ok and err:find("rank: the distributed job was finalized", 1, true), tostring(err))
  dist.finalize()   -- twice is fine
end)
