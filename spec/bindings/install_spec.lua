-- `make install PREFIX=...` installs the executable, libember.a, the
-- headers and the Lua module, and the installed pieces work on their own.
local run = require "helpers.run"

describe("make install", function()
  it("installs a working ember, C module and Lua library under PREFIX", function()
    local prefix = os.tmpname()
    os.remove(prefix)
    local out, rc = run.sh("make --no-print-directory install PREFIX=" .. prefix)
    assert.are.equal(0, rc, out)
    for _, f in ipairs({"bin/ember", "lib/libember.a", "include/ember/ember.h",
                        "include/ember/ember_lua.h", "lib/lua/5.4/ember/core.so",
                        "share/lua/5.4/ember/init.lua"}) do
      local h = io.open(prefix .. "/" .. f)
      assert.is_not_nil(h, f .. " was not installed")
      h:close()
    end
    -- the executable carries the Lua library: it runs from anywhere
    out, rc = run.sh("cd / && " .. prefix .. "/bin/ember -e 'print(ember.eye(2):sum():item())'")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("2.0", 1, true), out)
    local setup = ("package.path=%q..'/share/lua/5.4/?.lua;'..%q..'/share/lua/5.4/?/init.lua';" ..
                   "package.cpath=%q..'/lib/lua/5.4/?.so'"):format(prefix, prefix, prefix)
    out, rc = run.sh("cd / && lua5.4 -e " .. run.q(setup) ..
                     " -e 'print(require(\"ember\").ones(3):sum():item())'")
    run.sh("rm -rf " .. run.q(prefix))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("3.0", 1, true), out)
  end)
end)
