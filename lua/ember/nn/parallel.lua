--- nn.DistributedDataParallel: PyTorch's DDP.  Wraps a module so that, in
-- a job of several processes (ember.distributed), each trains it on its
-- own shard of the data and all keep the same weights:
--
--   local model = nn.DistributedDataParallel(net)  -- net's weights: rank 1's
--   local loss = crit(model(xb), yb)
--   loss:backward()                                 -- gradients: the ranks' mean
--   opt:step()
--
-- Construction broadcasts the parameters and buffers from rank 1.  A
-- forward in training mode with recording on marks the module; the next
-- backward, when it returns, averages the gradients of every marked
-- module over the ranks, in buckets (one all-reduce per bucket_mb of
-- gradients, not one per tensor).  Buffers (BatchNorm's running
-- statistics) are broadcast from rank 1 before each training forward, as
-- PyTorch's broadcast_buffers does.  In a world of one it is the wrapped
-- module and nothing more.
--
-- As in PyTorch the module is the child "module": its parameters are
-- named "module.<name>" in this wrapper's state_dict, and
-- model.module:save(path) saves the plain module.
local ember = require "ember"
local check = require "ember.check"
local Module = require "ember.nn.module"

local dist = ember.distributed

local DDP = Module:extend("DistributedDataParallel")

-- Modules waiting for their gradients to be averaged, by serial number:
-- every rank makes its wrappers in the same order, so averaging them in
-- serial order issues the same collectives on every rank.
local pending = {}
local serial = 0

local function average_pending()
  local list = {}
  for _, m in pairs(pending) do list[#list + 1] = m end
  pending = {}
  table.sort(list, function(a, b) return a._serial < b._serial end)
  for _, m in ipairs(list) do m:sync_gradients() end
end

-- The averaging runs as a post-backward hook of the engine: every
-- backward (t:backward(), ember.backward, or either saved in a local
-- before any wrapper existed) ends with it.  Registered by the first
-- wrapper made in a job of several processes, so nothing else pays for it.
local hook = nil
local function install_hook()
  if hook then return end
  hook = ember.register_post_backward_hook(function()
    if next(pending) then average_pending() end
  end)
end

local function fail(msg) error("DistributedDataParallel: " .. msg, 4) end

--- DistributedDataParallel(module [, {bucket_mb = 25, broadcast_buffers = true}])
function DDP:init(module, opts)
  if not Module.is_module(module) then
    fail("expected a module to wrap, got " .. (ember.is_tensor(module) and "a tensor" or type(module)))
  end
  -- (level 3: DDP:init <- the class's constructor <- the user)
  opts = check.options("DistributedDataParallel", opts, {"bucket_mb", "broadcast_buffers"}, 3)
  local mb = opts.bucket_mb == nil and 25 or opts.bucket_mb
  if type(mb) ~= "number" or not (mb > 0) or mb > 1 << 20 then
    fail("bucket_mb must be a positive number of MiB, got " .. tostring(mb))
  end
  local bb = opts.broadcast_buffers
  if bb ~= nil and type(bb) ~= "boolean" then
    fail("broadcast_buffers must be a boolean, got " .. type(bb))
  end
  self.module = module
  self.bucket_bytes = math.floor(mb * 1048576)
  self.broadcast_buffers = bb ~= false
  serial = serial + 1
  self._serial = serial
  dist.init()
  if dist.world_size() > 1 then
    dist.broadcast_module(module, 1)
    install_hook()
  end
end

function DDP:forward(...)
  if self.training and dist.world_size() > 1 then
    if self.broadcast_buffers then
      local b = self.module:buffers()
      if #b > 0 then dist.broadcast_coalesced(b, 1) end
    end
    if ember.is_grad_enabled() and not self._no_sync then pending[self._serial] = self end
  end
  return self.module(...)
end

--- Average the gradients over the ranks now (the backward after a
-- forward does it by itself).
function DDP:sync_gradients()
  pending[self._serial] = nil
  dist.average_gradients(self.module:parameters(), self.bucket_bytes)
end

--- model:no_sync(fn, ...): run fn (forwards and backwards) with the
-- averaging off, so gradients accumulate locally; the next backward after
-- a forward outside averages all of them (gradient accumulation).
-- Returns fn's results.
function DDP:no_sync(fn, ...)
  if type(fn) ~= "function" then
    error("no_sync: expected a function, got " .. type(fn), 2)
  end
  local prev = self._no_sync
  self._no_sync = true
  local r = table.pack(pcall(fn, ...))
  self._no_sync = prev
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

function DDP:extra_repr()
  return ("world_size=%d, bucket_mb=%g"):format(dist.world_size(), self.bucket_bytes / 1048576)
end

return {DistributedDataParallel = DDP}
