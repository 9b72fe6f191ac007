-- The bindings tell Lua's collector about tensor bytes, so memory stays
-- bounded without collectgarbage().  Measured in a child process so the
-- figure is the loop's alone.
local run = require "helpers.run"

-- Run `src` in a child (stock lua5.4, or `exe` given as a command) and
-- return its peak resident memory in KiB.
local function peak_kib(src, exe)
  local tail = [[
    for line in io.lines("/proc/self/status") do
      local kb = line:match("^VmHWM:%s+(%d+)")
      if kb then print("peak_kib", kb) end
    end
  ]]
  local out, rc
  if exe then out, rc = run.sh(exe .. " -e " .. run.q(src .. tail))
  else out, rc = run.lua_run(src .. tail) end
  assert.are.equal(0, rc, out)
  local kib = tonumber(out:match("peak_kib%s+(%d+)"))
  assert.is_not_nil(kib, out)
  return kib
end

describe("memory", function()
  it("stays under 300 MiB while 20,000 tensors of 1 MiB are made and dropped", function()
    local kib = peak_kib([[
      local ember = require "ember"
      for i = 1, 20000 do
        local t = ember.zeros(262144)          -- 1 MiB of float32, touched
        t = nil
      end
    ]])
    assert.is_true(kib < 300 * 1024, ("peak resident %d KiB"):format(kib))
  end)

  it("also for results of ops that allocate (a + b in a loop)", function()
    local kib = peak_kib([[
      local ember = require "ember"
      local a = ember.ones(512, 512)
      for i = 1, 3000 do local c = a + a end
    ]])
    assert.is_true(kib < 300 * 1024, ("peak resident %d KiB"):format(kib))
  end)

  it("also in the ember executable, whose collector is generational", function()
    local kib = peak_kib([[
      for i = 1, 20000 do local t = ember.zeros(262144) end
    ]], run.ember)
    assert.is_true(kib < 300 * 1024, ("peak resident %d KiB"):format(kib))
  end)
end)
