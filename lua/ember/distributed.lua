--- ember.distributed: training across processes and machines, over MPI.
--
--   mpirun -np 2 ./ember train.lua
--
--   local dist = ember.distributed
--   dist.init()                      -- a world of one without mpirun
--   local model = nn.DistributedDataParallel(net)
--   for xb, yb in data.loader(x, y, {batch_size = 32, shuffle = true, shard = true}) do ... end
--   if dist.rank() == 1 then model:save("m.safetensors") end
--
-- The collectives are C (bindings/lua_dist.c over core/dist.c and the MPI
-- plugin); this file adds what data-parallel training builds from them:
-- a rank's shard of an epoch, parameters broadcast from rank 1, and
-- gradients averaged in buckets.  Reference: docs/distributed.md.
local ember = require "ember"

local C = ember._dist
-- errors of the helpers below point at the user's call, past the library
local fail = require("ember.blame").failer("ember/distributed", "ember/train", "ember/data",
                                           "ember/nn/")
local dist = {}
for k, f in pairs(C) do dist[k] = f end

--- This rank's part of an epoch of n samples: `order` (a permutation of
-- 1..n, or nil for 1..n in order) as every rank has it after rank 1's is
-- broadcast, padded to a multiple of the world size by repeating its
-- start (as PyTorch's DistributedSampler does, so every rank runs the
-- same number of steps), then every world_size-th entry from this rank's
-- position.  The ranks' batch b together are the single-process batch b
-- of world_size times the size.  Returns an int64 tensor, or `order`
-- itself in a world of one.  Every rank must pass the same n (checked;
-- fname names the caller in the error).
function dist.shard(order, n, fname)
  local w = C.world_size()
  if w == 1 then return order end
  dist.check_same(fname or "shard", n, "numbers of samples", order and 1 or 0, "shuffle settings")
  if order then
    C.broadcast(order, 1)
  else
    order = ember.arange(1, n + 1, {dtype = "int64"})
  end
  local per = (n + w - 1) // w
  local full = order
  while full:numel() < per * w do
    full = ember.cat({full, order:narrow(1, 1, math.min(n, per * w - full:numel()))}, 1)
  end
  return full:narrow(1, 1, per * w):view(per, w):select(2, C.rank()):contiguous()
end

--- check_same(fname, v1, what1, v2, what2, ...): raise the same error on
-- every rank unless every rank passed the same integers (fname and `what`
-- name them in the message).  One all-reduce.
function dist.check_same(fname, ...)
  local args = table.pack(...)
  local vals = {}
  for i = 1, args.n, 2 do vals[#vals + 1] = args[i] end
  local k = #vals
  for i = 1, k do vals[k + i] = -vals[i] end
  local t = C.all_reduce(ember.tensor(vals, {dtype = "int64"}), "max"):totable()
  for i = 1, k do
    if t[i] ~= -t[k + i] then
      fail(("%s: the ranks have different %s (%d on rank %d; %d..%d across ranks)")
           :format(fname, args[2 * i], vals[i], C.rank(), -t[k + i], t[i]))
    end
  end
end

--- Every parameter and buffer of `module` set to rank `root`'s (1 unless
-- given), in buckets.
function dist.broadcast_module(module, root)
  local list = {}
  for _, p in ipairs(module:parameters()) do list[#list + 1] = p end
  for _, b in ipairs(module:buffers()) do list[#list + 1] = b end
  C.broadcast_coalesced(list, root or 1)
end

--- Average the gradients of `params` over the ranks: one all-reduce per
-- bucket of bucket_bytes (0: 25 MiB).  A parameter without a gradient
-- here counts as zeros, and gets one if any rank had one, so every rank
-- ends with the same gradients.  `extra` tensors (a loss, say) are
-- averaged in the same call.
function dist.average_gradients(params, bucket_bytes, extra)
  if C.world_size() == 1 then return end
  local list, flags, trainable, missing = {}, {}, {}, nil
  for _, p in ipairs(params) do
    if p.requires_grad then trainable[#trainable + 1] = p end
  end
  for i, p in ipairs(trainable) do
    local g = p.grad
    flags[i] = g and 1 or 0
    if g == nil then
      g = ember.zeros_like(p)
      missing = missing or {}
      missing[i] = g
    end
    list[#list + 1] = g
  end
  -- whether each parameter had a gradient, known to every rank
  local have = ember.tensor(flags, {dtype = "float32"})
  list[#list + 1] = have
  for _, t in ipairs(extra or {}) do list[#list + 1] = t end
  C.all_reduce_coalesced(list, "mean", bucket_bytes)
  if missing then
    local any = have:totable()
    for i, g in pairs(missing) do
      if any[i] > 0 then trainable[i].grad = g end
    end
  end
end

return dist
