-- `luarocks make` builds and installs the C module and the Lua library so
-- that the stock lua5.4 can require "ember".
local run = require "helpers.run"

describe("luarocks", function()
  it("installs into a local tree that stock lua5.4 can require from", function()
    local tree = os.tmpname()
    os.remove(tree)
    local out, rc = run.sh("luarocks --lua-version=5.4 make --tree " .. tree ..
                           " rockspec/ember-scm-1.rockspec")
    assert.are.equal(0, rc, out)
    local setup = ("package.path=%q..'/share/lua/5.4/?.lua;'..%q..'/share/lua/5.4/?/init.lua';" ..
                   "package.cpath=%q..'/lib/lua/5.4/?.so'"):format(tree, tree, tree)
    local probe = [[
      local ember = require "ember"
      local t = ember.tensor({{1, 2}, {3, 4}})
      print(t:matmul(t):sum():item(), package.searchpath("ember.core", package.cpath))
    ]]
    out, rc = run.sh("cd /tmp && lua5.4 -e " .. run.q(setup) .. " -e " .. run.q(probe))
    run.sh("rm -rf " .. run.q(tree))
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("54.0", 1, true), out)
    assert.truthy(out:find(tree .. "/lib/lua/5.4/ember/core.so", 1, true), out)
  end)
end)
