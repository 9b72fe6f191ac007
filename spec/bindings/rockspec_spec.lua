-- `luarocks make` builds and installs the C module and the Lua library so
-- that the stock lua5.4 can require "ember", and the CUDA and MPI plugins
-- where nvcc and mpicc are found (the ones `make test` already built: make
-- reuses them, so no spec here waits for nvcc).
local run = require "helpers.run"

--- The fenced sh block under README.md's "### Private tree".
local function private_tree_snippet()
  local f = assert(io.open("README.md"))
  local text = f:read("a")
  f:close()
  local section = assert(text:match("\n### Private tree\n(.-)\n#"), "README.md: no ### Private tree")
  return assert(section:match("```sh\n(.-)```"), "README.md: no sh block under ### Private tree")
end

--- Whether `mpicc` is on PATH (the Makefile's test for the MPI plugin).
local function has_mpicc()
  local _, rc = run.sh("command -v mpicc")
  return rc == 0
end

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

  it("README's private tree: luarocks --local, luarocks path, the plugins beside core.so and loading", function()
    -- A fresh HOME holds the ~/.luarocks tree; no plugin variable set, so
    -- Ember finds the plugins where the rock put them, or says why not.
    local home = run.tmpdir()
    local probe = [[
      local ember = require "ember"
      print("cuda:", ember.cuda.is_available() or ember.cuda.unavailable_reason())
      print("mpi:", ember.distributed.is_available() or select(2, ember.distributed.is_available()))
    ]]
    local out, rc = run.sh("env -u EMBER_CUDA_PLUGIN -u EMBER_MPI_PLUGIN -u LUA_PATH -u LUA_CPATH" ..
                           " -u LUA_PATH_5_4 -u LUA_CPATH_5_4 HOME=" .. run.q(home) ..
                           " sh -ec " .. run.q(private_tree_snippet() ..
                           "\ncd /tmp && lua5.4 -e " .. run.q(probe)))
    local dir = home .. "/.luarocks/lib/lua/5.4/ember/"
    local function installed(name) return io.open(dir .. name) ~= nil end
    local cuda, mpi = installed("libember_cuda.so"), installed("libember_mpi.so")
    run.rmdir(home)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("tensor(6.)", 1, true), out)   -- the README's own line
    if run.nvcc() then
      assert.is_true(cuda, "libember_cuda.so not installed in " .. dir .. "\n" .. out)
      -- loaded: either a device, or the plugin's own word on why none
      local why = out:match("cuda:%s*([^\n]*)")
      assert.falsy(why:find("not found", 1, true) or why:find("cannot load", 1, true), out)
    end
    if has_mpicc() then
      assert.is_true(mpi, "libember_mpi.so not installed in " .. dir .. "\n" .. out)
      assert.truthy(out:find("mpi:%s*true"), out)
    end
  end)

  it("skips a plugin whose compiler is missing, saying so", function()
    local out, rc = run.sh("make --no-print-directory rock NVCC= MPICC=")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("no nvcc found", 1, true), out)
    assert.truthy(out:find("no mpicc found", 1, true), out)
  end)
end)
