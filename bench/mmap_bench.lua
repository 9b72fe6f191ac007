-- bench/mmap_bench.lua -- opening a big checkpoint: ember.load(path,
-- {mmap = true}) against reading it, and PyTorch's torch.load(mmap=True)
-- where the installed torch has it (issue 19's target: a 1 GiB file opens
-- with under 32 MiB of resident growth, in under 50 ms).
--
--   ./ember bench/mmap_bench.lua [MiB [tensors [rounds]]]
--
-- Writes a checkpoint of MiB (default 1024) in `tensors` float32 tensors
-- (default 16, so 64 MiB each) to $TMPDIR, then runs each case `rounds`
-- times (default 5), each in a fresh process (so neither the allocator's
-- caches nor an earlier mapping help): the process measures its resident
-- memory (/proc/self/statm), times the load alone (ember.clock, wall
-- time) and measures again; the table gives the median of each.  The
-- file is in the page cache after the write (a warm open, what a user
-- re-running a script sees); its pages count as resident only once a
-- tensor's data is touched, which the "open + sum one" row shows.
--
-- The PyTorch peer (bench/mmap_torch.py, /usr/bin/python3 or BENCH_PYTHON)
-- needs torch >= 2.1 for torch.load(mmap=True); Debian's python3-torch is
-- 1.13 and has no safetensors package, so the row says it is skipped and
-- why.
local ember = require "ember"

local MiB = tonumber(arg[1]) or 1024
local NT = tonumber(arg[2]) or 16
local ROUNDS = tonumber(arg[3]) or 5

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Resident bytes of this process.
local function rss()
  local f = assert(io.open("/proc/self/statm"))
  local _, res = f:read("n", "n")
  f:close()
  return res * 4096
end

-- {======================================================================
-- A child: one measurement, printed as "seconds rss_growth_bytes"
-- =======================================================================

if arg[1] == "--child" then
  local mode, path = arg[2], arg[3]
  collectgarbage()
  collectgarbage()
  local r0 = rss()
  local t0 = ember.clock()
  local t = ember.load(path, {mmap = mode ~= "read"})
  if mode == "touch" then local _ = t.t01:sum():item() end
  local secs = ember.clock() - t0
  io.write(("%.6f %d\n"):format(secs, rss() - r0))
  os.exit(0)
end

-- }======================================================================

--- The command that runs this interpreter as we were run (./ember, or
-- lua5.4 with its -e options).
local function interpreter()
  local lo = 0
  while arg[lo - 1] do lo = lo - 1 end
  local parts = {}
  for i = lo, -1 do parts[#parts + 1] = sh_quote(arg[i]) end
  return table.concat(parts, " ")
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) // 2] or (xs[n // 2] + xs[n // 2 + 1]) / 2
end

local dir = os.getenv("TMPDIR") or "/tmp"
local path = ("%s/ember_mmap_bench_%d.safetensors"):format(dir, MiB)
local per = MiB * 1024 * 1024 // 4 // NT                -- float32 elements each

io.write(("writing %d MiB in %d float32 tensors to %s ... "):format(MiB, NT, path))
io.flush()
do
  local tensors = {}
  for i = 1, NT do tensors[("t%02d"):format(i)] = ember.full({per}, i) end
  local t0 = ember.clock()
  ember.save(path, tensors)
  io.write(("%.2f s\n"):format(ember.clock() - t0))
end
collectgarbage()

local cmd = interpreter() .. " " .. sh_quote(arg[0]) .. " --child %s " .. sh_quote(path)
local function case(mode)
  local secs, grow = {}, {}
  for r = 1, ROUNDS do
    local p = assert(io.popen(cmd:format(mode)))
    local out = p:read("a")
    p:close()
    local s, g = out:match("^(%S+) (%S+)")
    assert(s, "child failed: " .. out)
    secs[r], grow[r] = tonumber(s), tonumber(g)
  end
  return median(secs), median(grow)
end

local function row(name, secs, grow, note)
  io.write(("  %-34s %10.2f ms %10.1f MiB  %s\n"):format(name, secs * 1e3, grow / 2^20, note or ""))
end

print(("\nopening a %d MiB checkpoint (%d tensors), median of %d fresh processes"):format(MiB, NT, ROUNDS))
print(("  %-34s %13s %14s"):format("case", "time", "RSS growth"))
local ms, mg = case("mmap")
local target = MiB == 1024 and ((ms < 0.05 and mg < 32 * 2^20) and "target met" or "TARGET MISSED") or ""
row("ember.load {mmap = true}", ms, mg, target .. " (target < 50 ms, < 32 MiB)")
local ts, tg = case("touch")
row(("  + t01:sum() (%d MiB touched)"):format(MiB // NT), ts, tg)
local rs, rg = case("read")
row("ember.load (read)", rs, rg)

local py = os.getenv("BENCH_PYTHON") or "/usr/bin/python3"
local p = io.popen(sh_quote(py) .. " bench/mmap_torch.py " .. MiB .. " " .. NT .. " " .. ROUNDS .. " 2>&1")
local out = p and p:read("a") or ""
if p then p:close() end
local s, g = out:match("^ok (%S+) (%S+)")
if s then row("torch.load(mmap=True)", tonumber(s), tonumber(g))
else print("  torch.load(mmap=True): skipped: " .. (out:gsub("%s+$", ""))) end
os.remove(path)
if target == "TARGET MISSED" then os.exit(1) end
