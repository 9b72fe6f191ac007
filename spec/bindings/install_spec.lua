-- `make install PREFIX=...` installs the executable, libember.a, the
-- headers and the Lua module, and the installed pieces work on their own;
-- its ember.pc lets a C host build with `pkg-config --cflags --libs ember`.
local run = require "helpers.run"

local HAS_PKG_CONFIG = select(2, run.sh("command -v pkg-config")) == 0

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

  local pc_it = HAS_PKG_CONFIG and it or pending
  pc_it("writes ember.pc: examples/embed/host.c builds with pkg-config against a DESTDIR install" ..
        (HAS_PKG_CONFIG and "" or " (pending: pkg-config is not installed; tools/deps.sh installs it)"),
        function()
    local root = run.tmpdir()
    local out, rc = run.sh("make --no-print-directory install DESTDIR=" .. run.q(root) ..
                           " PREFIX=/opt/ember")
    assert.are.equal(0, rc, out)
    local pcdir = root .. "/opt/ember/lib/pkgconfig"
    local h = assert(io.open(pcdir .. "/ember.pc"), "ember.pc was not installed")
    local pc = h:read("a")
    h:close()
    -- the file names the final PREFIX, not the staging DESTDIR
    assert.truthy(pc:find("prefix=/opt/ember\n", 1, true), pc)
    assert.is_nil(pc:find(root, 1, true), pc)
    -- --define-prefix takes the prefix from where the file lies: the stage
    local flags
    flags, rc = run.sh("PKG_CONFIG_PATH=" .. run.q(pcdir) ..
                       " pkg-config --define-prefix --cflags --libs ember")
    assert.are.equal(0, rc, flags)
    for _, want in ipairs({"-lember", "-llua5.4", "-lopenblas", "-lz", "-fopenmp",
                           "-I" .. root .. "/opt/ember/include/ember"}) do
      assert.truthy(flags:find(want, 1, true), flags)
    end
    local host = root .. "/host"
    out, rc = run.sh("cc -std=c11 examples/embed/host.c -o " .. run.q(host) .. " " ..
                     flags:gsub("%s+$", ""))
    assert.are.equal(0, rc, out)
    out, rc = run.sh(run.q(host))
    run.rmdir(root)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("host: ok", 1, true), out)
  end)
end)
