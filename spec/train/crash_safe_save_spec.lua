-- Crash-safe checkpoints (issue 7): a process killed with SIGKILL in the
-- middle of model:save never harms the file it was replacing.  Child
-- ember processes save a model over and over, each save with every weight
-- set to the save's number k, and print "saved k" once save returns; the
-- spec kills them at random moments and checks that the file then holds
-- exactly the last save that returned, or the one after it (killed after
-- the rename but before the print): loadable by nn.load, all weights equal
-- to one k, never a mix or a torn file.  A temporary file left behind
-- shows the kill landed inside a save; it must not stop a later save.
local ember = require "ember"
local nn = ember.nn
local run = require "helpers.run"

-- The child: saves a 1 MiB model (a save takes a while: it syncs the file) until it
-- is killed; the save's number is in every weight.
local CHILD = [[
local ember = require "ember"
local nn = ember.nn
local path = arg[1]
ember.manual_seed(0)
local model = nn.Sequential{nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256),
                            nn.Linear(256, 256), nn.Linear(256, 256)}
for k = 1, 1000 do
  ember.no_grad(function()
    for _, p in ipairs(model:parameters()) do p:fill_(k) end
  end)
  model:save(path)
  io.stdout:write("saved ", k, "\n")
  io.stdout:flush()
end
]]

--- The one value every weight of the model in `path` holds (nil, why if
-- the weights differ or the file does not load).
local function save_number(path)
  local ok, model = pcall(nn.load, path)
  if not ok then return nil, "nn.load failed: " .. tostring(model) end
  local k
  for i, p in ipairs(model:parameters()) do
    local lo, hi = p:min():item(), p:max():item()
    if lo ~= hi or (k and lo ~= k) then
      return nil, ("parameter %d holds %g..%g (others %s)"):format(i, lo, hi, tostring(k))
    end
    k = lo
  end
  return k
end

--- The last "saved k" a child printed (0 when none).
local function last_saved(out)
  local k = 0
  for n in out:gmatch("saved (%d+)") do k = tonumber(n) end
  return k
end

--- The temporary files save left next to `path`.
local function temps(path)
  local out = run.sh("ls -1 " .. run.q(path) .. ".tmp.* 2>/dev/null")
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

describe("model:save killed with SIGKILL", function()
  it("leaves the previous file intact and loadable, kill after kill", function()
    local ROUNDS, PER_ROUND = 4, 8
    local dir = run.tmpdir()
    finally(function() run.rmdir(dir) end)
    local child = dir .. "/child.lua"
    local f = assert(io.open(child, "w"))
    f:write(CHILD)
    f:close()
    math.randomseed(7)

    local kills, mid_save = 0, 0
    for round = 1, ROUNDS do
      -- PER_ROUND children at once, each on its own file: each is killed
      -- a random 0..150 ms after its first save returned (so that there
      -- is a previous file), while it saves again and again; one thread
      -- each, so that 8 of them do not crowd the cores
      local script = {}
      for j = 1, PER_ROUND do
        local base = ("%s/m%d_%d"):format(dir, round, j)
        script[#script + 1] = ([[
( EMBER_NUM_THREADS=1 %s %s %s.safetensors > %s.out 2>&1 & p=$!
  while ! grep -q 'saved 1' %s.out 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 0.01; done
  sleep %.3f; kill -9 $p; wait $p 2>/dev/null ) &]]):format(
          run.q(run.ember), run.q(child), run.q(base), run.q(base), run.q(base),
          math.random() * 0.15)
      end
      script[#script + 1] = "wait"
      run.sh(table.concat(script, "\n"))

      for j = 1, PER_ROUND do
        local base = ("%s/m%d_%d"):format(dir, round, j)
        local fo = assert(io.open(base .. ".out"))
        local out = fo:read("a")
        fo:close()
        local last = last_saved(out)
        assert.is_true(last >= 1, "the child never saved: " .. out)
        kills = kills + 1
        local k, why = save_number(base .. ".safetensors")
        assert.is_not_nil(k, ("kill %d: %s"):format(kills, tostring(why)))
        assert.is_true(k == last or k == last + 1,
          ("kill %d: the file holds save %s, the child had finished save %d"):format(kills, k, last))
        if #temps(base .. ".safetensors") > 0 then mid_save = mid_save + 1 end
      end
    end
    -- the kills did land inside saves (most do: a save is almost all of
    -- the child's loop), so the checks above tested something
    assert.is_true(mid_save >= 1, ("none of %d kills landed inside a save"):format(kills))

    -- a later save over a killed one's leftovers works and leaves nothing
    -- of its own behind, also when a stale temporary file has the name
    -- this process would use first (a killed process with our pid)
    local path = dir .. "/m1_1.safetensors"
    local fs = assert(io.open("/proc/self/stat"))
    local pid = fs:read("l"):match("^(%d+)")
    fs:close()
    local stale = assert(io.open(path .. ".tmp." .. pid, "w"))
    stale:write("junk from a killed save")
    stale:close()
    local before = #temps(path)
    local model = nn.load(path)
    ember.no_grad(function()
      for _, p in ipairs(model:parameters()) do p:fill_(-1) end
    end)
    model:save(path)
    assert.are.equal(-1, save_number(path))
    assert.are.equal(before, #temps(path))
    if os.getenv("EMBER_SPEC_VERBOSE") then
      print(("\ncrash_safe_save: %d kills, %d inside a save"):format(kills, mid_save))
    end
  end)
end)
