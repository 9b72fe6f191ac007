-- ember.cuda.stats(): what the device did, and what a training step costs
-- in waits and allocations (GPU only; CI runs it on the stand-in plugin,
-- spec/bindings/fake_cuda_spec.lua, which counts the same calls: syncs are
-- counted in the core, where it asks the plugin to wait or to copy to the
-- host, and the stand-in caches memory as the device's allocator does).
--
-- The point of the counts: a training step on the GPU must not wait for
-- the device except where the user asks (loss:item(), printing, copying to
-- the host).  A hidden wait per op (reading an error flag, validating
-- targets with item()) costs a round trip each and idles the GPU; here a
-- CNN step (forward, cross-entropy, backward, Adam) must make none, and,
-- after a warm-up step, no device allocation either.
local ember = require "ember"
local cuda_helper = require "helpers.cuda"
local nn, optim = ember.nn, ember.optim
local F = nn.functional

local function delta(before)
  local now = ember.cuda.stats()
  local d = {}
  for k, v in pairs(now) do d[k] = v - before[k] end
  return d
end

describe("ember.cuda.stats", function()
  if not cuda_helper.available() then return end

  it("has the counts, as integers", function()
    local s = ember.cuda.stats()
    for _, k in ipairs{"syncs", "uploads", "allocations", "releases", "allocated_bytes", "cached_bytes"} do
      assert.are.equal("integer", math.type(s[k]), k)
      assert.is_true(s[k] >= 0, k)
    end
    assert.are.equal(ember.cuda.memory_allocated(), s.allocated_bytes)
    assert.are.equal(ember.cuda.memory_reserved(), s.allocated_bytes + s.cached_bytes)
  end)

  it("counts a copy to the host and synchronize as syncs, a copy from the host as an upload", function()
    local x = ember.ones(8)
    local s = ember.cuda.stats()
    local g = x:cuda()
    local d = delta(s)
    assert.are.equal(1, d.uploads)
    assert.are.equal(0, d.syncs)
    s = ember.cuda.stats()
    local v = g:sum():item()
    assert.are.equal(8.0, v)
    assert.are.equal(1, delta(s).syncs)
    s = ember.cuda.stats()
    ember.cuda.synchronize()
    g:cpu()
    assert.is_truthy(tostring(g):find("cuda"))
    assert.are.equal(3, delta(s).syncs)     -- synchronize, cpu(), and tostring
  end)

  it("counts no sync for ops that only queue work", function()
    local x = ember.randn(16, 8, {device = "cuda"})
    local idx = ember.tensor({1, 3, 5}, {dtype = "int64"}):cuda()
    local s = ember.cuda.stats()
    local y = (x * 2 + 1):relu():sum(2)
    local z = x:index_select(1, idx):softmax(2)
    local w = x:gather(2, ember.ones(16, 1, {dtype = "int64", device = "cuda"}))
    local e = F.embedding(idx, x)
    local d = delta(s)
    assert.are.equal(0, d.syncs)
    assert.are.equal(0, d.uploads)
    assert.is_not_nil(y and z and w and e)
  end)

  describe("a training step of the DESIGN.md CNN", function()
    local function cnn()
      return nn.Sequential{
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
      }
    end

    it("makes no sync and, after warm-up, no device allocation", function()
      ember.manual_seed(7)
      local model = cnn():cuda()
      local opt = optim.Adam(model:parameters(), {lr = 1e-3})
      local xs, ys = ember.randn(16, 1, 28, 28), ember.randint(1, 10, {16})
      -- Each step ends with a full collection, so that its temporaries go
      -- back to the cache at the same point every step (when Lua's
      -- collector runs is otherwise up to its pacing, and a step that
      -- happens to hold two steps' temporaries may need one more block:
      -- the cache's business is reuse, not Lua's timing).
      local function step()
        local x, y = xs:cuda(), ys:cuda()          -- a batch from the host
        opt:zero_grad()
        local loss = F.cross_entropy(model(x), y)
        loss:backward()
        opt:step()
        collectgarbage()
        collectgarbage()
        return loss
      end
      for _ = 1, 3 do step() end                  -- warm-up
      local s = ember.cuda.stats()
      local loss
      for _ = 1, 3 do loss = step() end
      local d = delta(s)
      assert.are.equal(0, d.syncs, "syncs in three steps")
      assert.are.equal(0, d.allocations, "device allocations in three steps after warm-up")
      assert.are.equal(6, d.uploads, "a batch is two uploads")
      s = ember.cuda.stats()
      local v = loss:item()                       -- the one the user asks for
      assert.are.equal(1, delta(s).syncs)
      assert.is_true(v > 0 and v < 10, tostring(v))
    end)
  end)
end)
