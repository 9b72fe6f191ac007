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
