-- Memory stays flat over a long training run (issue 7, "No leaks"): the
-- CNN of DESIGN.md trained for many small steps on random data, with the
-- PyTorch-style loop, keeps the process's resident memory under 5% above
-- what it was after warm-up (it may shrink: busted runs every spec in one
-- process, and memory earlier specs freed can go back to the system), and Ember's own count of tensor bytes does
-- not move from step to step.  A leak of a graph node, a saved tensor, a
-- gradient or an optimizer state per step would show in both.
local ember = require "ember"
local nn, optim = ember.nn, ember.optim

--- The process's resident set, in kB (VmRSS of /proc/self/status).
local function rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return assert(tonumber(s:match("VmRSS:%s*(%d+)%s*kB")), "no VmRSS in /proc/self/status")
end

-- The network of DESIGN.md (and bench/epoch.lua), for 1x28x28 images.
local function cnn()
  return nn.Sequential{
    nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3), nn.ReLU(),
    nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
  }
end

describe("a long training run", function()
  it("keeps resident memory and tensor bytes flat after warm-up", function()
    local WARMUP, STEPS, EVERY, BATCH = 60, 300, 20, 8
    -- one thread: batch-8 steps are too small to share, and OpenMP's
    -- spinning workers make them 20 times slower on a busy machine
    local threads = ember.get_num_threads()
    finally(function() ember.set_num_threads(threads) end)
    ember.set_num_threads(1)
    ember.manual_seed(0)
    local model = cnn()
    local opt = optim.Adam(model:parameters(), {lr = 1e-3})
    -- 8 batches of random images and labels, drawn in turn (narrow views,
    -- as a loader's batches are new tensors every step)
    local x = ember.rand(8 * BATCH, 1, 28, 28)
    local y = ember.randint(1, 10, {8 * BATCH})
    local loss
    local function step(i)
      local s = ((i - 1) % 8) * BATCH + 1
      opt:zero_grad()
      loss = nn.functional.cross_entropy(model(x:narrow(1, s, BATCH)), y:narrow(1, s, BATCH))
      loss:backward()
      opt:step()
    end

    for i = 1, WARMUP do step(i) end
    -- the bytes of the tensors alive once garbage is gone; then some steps
    -- for the collector to find its pace again, and the resident memory
    -- as the loop leaves it (no forced collection from here on: the
    -- bindings must pace the collector themselves)
    collectgarbage()
    local bytes0 = ember.memory_allocated()
    for i = WARMUP + 1, WARMUP + EVERY do step(i) end
    local rss0 = rss_kb()

    local rss = {}
    for i = 1, STEPS do
      step(WARMUP + EVERY + i)
      if i % EVERY == 0 then rss[#rss + 1] = rss_kb() end
    end
    collectgarbage()
    local bytes1 = ember.memory_allocated()
    local final = loss:item()
    assert.is_true(final == final and final < math.huge, "the loss diverged: " .. final)

    local lo, hi = math.huge, 0
    for _, r in ipairs(rss) do lo, hi = math.min(lo, r), math.max(hi, r) end
    local report = ("VmRSS after warm-up %d kB; over %d more steps %d..%d kB (%+.2f%%)")
                   :format(rss0, STEPS, lo, hi, 100 * (hi - rss0) / rss0)
    -- under AddressSanitizer (make asan, make leakcheck: EMBER_SAN is set)
    -- freed blocks sit in its quarantine (8 MiB there) before they are
    -- reused, and Ember keeps no blocks of its own: add the quarantine
    local slack = (os.getenv("EMBER_SAN") or "") ~= "" and 8 * 1024 or 0
    assert.is_true(hi <= rss0 * 1.05 + slack, "resident memory grew: " .. report)
    -- params, grads, Adam's two moments and the data, to the byte: no
    -- tensor is kept from one step to the next
    assert.are.equal(bytes0, bytes1, "memory_allocated grew over " .. STEPS .. " steps")
    assert.is_true(bytes0 > 0)
    if os.getenv("EMBER_SPEC_VERBOSE") then
      print(("\nmemory_flat: %s; memory_allocated %d bytes before and after")
            :format(report, bytes0))
    end
  end)

  -- the leak make leakcheck found: an operand taken before a conversion
  -- that raised (1000 does not fit uint8) was never given back
  it("loses no tensor to an error in a mixed tensor-number op", function()
    local cond = ember.tensor({true, false})
    collectgarbage()
    local before = ember.memory_allocated()
    for _ = 1, 50 do
      local u8 = ember.tensor({1, 2}, {dtype = "uint8"})   -- dropped each time
      assert.is_false(pcall(function() return u8 + 1000 end))
      assert.is_false(pcall(function() return 1000 - u8 end))
      assert.is_false(pcall(ember.where, cond, u8, 1000))
      assert.is_false(pcall(ember.where, cond, 1000, u8))
    end
    collectgarbage()
    assert.are.equal(before, ember.memory_allocated())
  end)
end)
