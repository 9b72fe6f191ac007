--- bench/allreduce.lua -- the cost of Ember's all-reduce (issue 8).  Peers:
-- bench/allreduce_c.c (MPI_Allreduce called directly from C) and
-- bench/dist_torch.py (PyTorch over gloo).
--
--   mpirun -np W ./ember bench/allreduce.lua [FLOATS [WARM [NBATCH [REPS]]]]
--   mpirun -np W ./ember bench/allreduce.lua grads [WARM [NBATCH [REPS]]]
--
-- The first form: ember.distributed.all_reduce(t, "sum") on a float32
-- tensor of FLOATS zeros (default 25,000,000: 100 MB), the work of
-- allreduce_c with the same arguments (defaults WARM 3, NBATCH 9, REPS 1).
-- The second: what a training step of the CNN of DESIGN.md pays, on that
-- network's gradients (10 tensors, 93,322 floats, 373 KB): first
-- all_reduce_coalesced(grads, "mean") alone, then
-- ember.distributed.average_gradients(params), which DDP's backward calls
-- (the same, plus the list it builds and a flag per parameter); defaults
-- WARM 100, NBATCH 9, REPS 50.  Its peer is allreduce_c on one buffer of
-- 93,322 floats, summed: Ember's figure adds the packing of ten tensors
-- into one bucket and back, the pass dividing by W, and the check that
-- every rank passed the same layout (one 64-byte all-reduce).
--
-- Method (the same as allreduce_c's): every batch of REPS calls starts
-- after a barrier and is timed on each rank's ember.clock(); a batch's time
-- is the slowest rank's; the figure is the median batch / REPS.  The counts
-- are fixed rather than chosen from a warm-up (bench/timing.lua's way)
-- because every rank must make the same calls.  Bandwidth as allreduce_c
-- gives it: algbw = bytes / t, busbw = algbw * 2 (W-1) / W (the NCCL-tests
-- convention), GB = 10^9 bytes.
-- Output (rank 1): comment lines, then "allreduce_ms", "algbw_gbs" and
-- "busbw_gbs"; the grads form adds "avg_grads_ms".
local ember = require "ember"
local nn, dist = ember.nn, ember.distributed

local function usage(msg)
  error("allreduce.lua: " .. msg .. "; usage: allreduce.lua [FLOATS [WARM [NBATCH [REPS]]]]"
        .. " or allreduce.lua grads [WARM [NBATCH [REPS]]]", 0)
end

local grads = arg[1] == "grads"
local function int_arg(i, name, min, dflt)
  if arg[i] == nil then return dflt end
  local v = math.tointeger(tonumber(arg[i]))
  if not v or v < min then
    usage(("%s must be an integer >= %d, got '%s'"):format(name, min, tostring(arg[i])))
  end
  return v
end
local n = not grads and int_arg(1, "FLOATS", 1, 25000000) or nil
local warm = int_arg(2, "WARM", 0, grads and 100 or 3)
local nbatch = int_arg(3, "NBATCH", 1, 9)
local reps = int_arg(4, "REPS", 1, grads and 50 or 1)

dist.init()
local world, rank = dist.world_size(), dist.rank()
local clock = ember.clock

--- The median over batches (each the slowest rank's) of fn(reps)'s
-- seconds, per call.
local function time_calls(fn)
  for _ = 1, warm do fn(1) end
  local secs = {}
  for k = 1, nbatch do
    dist.barrier()
    local t0 = clock()
    fn(reps)
    secs[k] = clock() - t0
  end
  local t = dist.all_reduce(ember.tensor(secs, {dtype = "float64"}), "max"):totable()
  table.sort(t)
  return t[(#t + 1) // 2] / reps
end

local function report(t, bytes)
  local algbw = bytes / t * 1e-9
  io.write(("allreduce_ms %.4g\nalgbw_gbs %.3f\nbusbw_gbs %.3f\n")
           :format(t * 1e3, algbw, algbw * 2 * (world - 1) / world))
end

local say = rank == 1 and io.write or function() end
local backend, version = dist.backend()
say(("# ember %s, backend %s %s\n"):format(ember._VERSION or "?", backend, version or ""))
if not grads then
  local x = ember.zeros(n)
  local t = time_calls(function(r) for _ = 1, r do dist.all_reduce(x, "sum") end end)
  say(("# ember ranks %d: all_reduce(t, \"sum\") of a float32 tensor of %d elements (%.1f MB), "
       .. "warm-up %d calls, %d batches of %d call(s) each after a barrier, median batch "
       .. "(slowest rank) per call\n"):format(world, n, n * 4e-6, warm, nbatch, reps))
  if rank == 1 then report(t, n * 4) end
else
  -- the network of DESIGN.md and examples/fashion_mnist_cnn.lua
  local net = nn.Sequential{
    nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3), nn.ReLU(),
    nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
  }
  local params, list, floats = net:parameters(), {}, 0
  for i, p in ipairs(params) do
    p.grad = ember.zeros_like(p)
    list[i] = p.grad
    floats = floats + p:numel()
  end
  local t = time_calls(function(r)
    for _ = 1, r do dist.all_reduce_coalesced(list, "mean") end
  end)
  local ta = time_calls(function(r)
    for _ = 1, r do dist.average_gradients(params) end
  end)
  say(("# ember ranks %d: the CNN's gradients, %d tensors, %d floats (%.1f KB): "
       .. "all_reduce_coalesced(grads, \"mean\") and average_gradients(params), each "
       .. "warm-up %d calls, %d batches of %d calls each after a barrier, median batch "
       .. "(slowest rank) per call\n"):format(world, #list, floats, floats * 4e-3, warm,
                                              nbatch, reps))
  if rank == 1 then
    report(t, floats * 4)
    io.write(("avg_grads_ms %.4g\n"):format(ta * 1e3))
  end
end
