-- Every script in examples/ runs to completion (CI runs them all).
local run = require "helpers.run"

describe("examples", function()
  local p = io.popen("ls examples/*.lua")
  for path in p:lines() do
    it(path .. " runs", function()
      local out, rc = run.sh(run.ember .. " " .. path)
      assert.are.equal(0, rc, out)
      assert.is_true(#out > 0)
    end)
  end
  p:close()
end)

describe("examples converge", function()
  it("xor.lua learns XOR", function()
    local out, rc = run.sh(run.ember .. " examples/xor.lua")
    assert.are.equal(0, rc, out)
    local loss = tonumber(out:match("final loss ([%d%.e%-]+)"))
    assert.is_true(loss ~= nil and loss < 0.05, out)
    local want = {["0 xor 0"] = 0, ["0 xor 1"] = 1, ["1 xor 0"] = 1, ["1 xor 1"] = 0}
    for case, target in pairs(want) do
      local p = tonumber(out:match(case .. " %-> ([%d%.]+)"))
      assert.is_true(p ~= nil and math.abs(p - target) < 0.2, case .. "\n" .. out)
    end
  end)

  it("regression.lua recovers the line", function()
    local out, rc = run.sh(run.ember .. " examples/regression.lua")
    assert.are.equal(0, rc, out)
    local w, b = out:match("recovered: y = ([%d%.%-]+) x ([%+%-][%d%.]+)")
    assert.is_true(math.abs(tonumber(w) - 3) < 0.05, out)
    assert.is_true(math.abs(tonumber(b) + 2) < 0.05, out)
  end)
end)
