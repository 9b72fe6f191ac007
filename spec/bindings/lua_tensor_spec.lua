-- bindings/lua_tensor.c: how a value is recognised as a tensor.  The state
-- that loads Ember first compares metatables by address (a shortcut, see
-- fast_mt there); other states look the metatable up.  Both must accept
-- exactly the tensors, in any order of opening and closing states, and a
-- tiny op's fast lane (two tensors) must answer every mistake as the
-- general path does.
local ember = require "ember"
local run = require "helpers.run"

describe("tensor checks in the bindings", function()
  it("refuse other values on either side with the usual messages", function()
    local a = ember.ones(4)
    local function err(f)
      local ok, e = pcall(f)
      assert.is_false(ok)
      return e
    end
    assert.truthy(err(function() return a + io.stdout end)
                  :find("bad argument #2 to 'add' (tensor or number expected, got FILE*)", 1, true))
    assert.truthy(err(function() return io.stdout * a end)
                  :find("bad argument #1 to 'mul' (tensor or number expected, got FILE*)", 1, true))
    assert.truthy(err(function() return a - {} end)
                  :find("tensor or number expected, got table", 1, true))
    assert.truthy(err(function() return ember.add(a, "x") end)
                  :find("tensor or number expected, got string", 1, true))
    local closed = ember.ones(4)
    getmetatable(closed).__close(closed)
    assert.truthy(err(function() return closed + a end)
                  :find("bad argument #1 to 'add' (tensor has been closed)", 1, true))
    assert.truthy(err(function() return a / closed end)
                  :find("bad argument #2 to 'div' (tensor has been closed)", 1, true))
    assert.truthy(err(function() return a + ember.ones(3) end):find("cannot be broadcast"))
  end)

  it("still take numbers and booleans beside a tensor", function()
    local a = ember.tensor({1, 2})
    assert.are.same({2, 3}, (a + 1):totable())
    assert.are.same({2, 4}, (2 * a):totable())
    assert.are.same({2, 3}, (a + true):totable())
    assert.are.same({0.5, 1}, (a / 2):totable())
  end)

  it("let __gc and __close called by hand on anything pass harmlessly", function()
    local mt = getmetatable(ember.ones(1))
    mt.__gc(io.stdout)
    mt.__gc({})
    mt.__close(42)
    io.stdout:write("")                        -- still a working file
    local t = ember.ones(2)
    mt.__gc(t)
    assert.has_error(function() return t + t end, nil)
  end)

  it("keep working when the registry's shortcuts are taken away", function()
    -- a child process: this breaks the shortcut for good
    local out, rc = run.lua_run([[
      local ember = require "ember"
      local reg = debug.getregistry()
      local mt = getmetatable(ember.ones(1))
      -- the integer key of the metatable now names another table
      for k, v in pairs(reg) do
        if v == mt and math.type(k) == "integer" then reg[k] = {} end
      end
      local t = ember.ones(2)
      assert(getmetatable(t) == mt and (t + t)[1] == 2)
      -- the sentinel goes: the shortcut is cleared, the lookup stays
      for k, v in pairs(reg) do
        if type(v) == "userdata" and debug.getuservalue(v, 1) == mt then reg[k] = nil end
      end
      collectgarbage(); collectgarbage()
      local a, b = ember.ones(3), ember.full({3}, 2)
      assert(getmetatable(a + b) == mt and (a + b)[3] == 3)
      assert(not pcall(function() return a + io.stdout end))
      local w = ember.ones(2, {requires_grad = true})
      ;(w * w):sum():backward()
      assert(w.grad[2] == 2)
      print("child ok")
    ]])
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("child ok", 1, true), out)
  end)

  it("are right in every state of a host that opens and closes several", function()
    local dir = run.tmpdir()
    local src = dir .. "/states.c"
    local f = assert(io.open(src, "w"))
    f:write([[
#include <stdio.h>
#include <lauxlib.h>
#include <lualib.h>
#include "ember_lua.h"

static const char *ops =
  "local a, b = ember.ones(4), ember.full({4}, 2)\n"
  "local c = a + b\n"
  "assert(c[4] == 3 and ember.is_tensor(c) and not ember.is_tensor(io.stdout))\n"
  "assert((a * 2 - b):sum():item() == 0)\n"
  "local ok, err = pcall(function() return a + io.stdout end)\n"
  "assert(not ok and err:find('tensor or number expected, got FILE', 1, true), err)\n"
  "ok, err = pcall(function() return io.stdout + a end)\n"
  "assert(not ok and err:find('bad argument #1', 1, true), err)\n"
  "local w = ember.ones(3, {requires_grad = true})\n"
  "local y = (w * w):sum(); y:backward()\n"
  "assert(w.grad[1] == 2)\n"
  "for i = 1, 20000 do c = a + b end\n"
  "collectgarbage()\n";

static lua_State *open_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "ember", luaopen_ember, 1);
  lua_pop(L, 1);
  return L;
}

static int run(lua_State *L, const char *name) {
  if (luaL_dostring(L, ops) != LUA_OK) {
    printf("%s: %s\n", name, lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

int main(void) {
  lua_State *s1 = open_state(), *s2 = open_state();
  int bad = run(s1, "s1") + run(s2, "s2");
  lua_close(s1);
  bad += run(s2, "s2 after closing s1");
  lua_State *s3 = open_state();
  bad += run(s3, "s3") + run(s2, "s2 beside s3");
  lua_close(s2);
  bad += run(s3, "s3 after closing s2");
  lua_close(s3);
  lua_State *s4 = open_state();
  bad += run(s4, "s4 alone");
  lua_close(s4);
  puts(bad ? "host: FAILED" : "host: ok");
  return bad != 0;
}
]])
    f:close()
    local san = os.getenv("EMBER_SAN") or ""
    local exe = dir .. "/states"
    local out, rc = run.sh(("cc -std=c11 %s -Icore/include -Ibindings -I/usr/include/lua5.4 " ..
                            "-o %s %s %s/libember.a -llua5.4 -lopenblas -lpng -ljpeg -lz -lm -fopenmp")
                           :format(san, run.q(exe), run.q(src), run.build))
    assert.are.equal(0, rc, out)
    out, rc = run.sh(run.q(exe))
    run.rmdir(dir)
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("host: ok", 1, true), out)
  end)
end)
