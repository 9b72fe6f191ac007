-- The embedding contract (issue 7), shown by the C host example
-- (examples/embed/host.c): an error inside a Lua function the host calls
-- comes back to it as a status and a message, changes nothing, and leaves
-- the lua_State usable; tensors wrapping host memory never free it, and a
-- release callback runs exactly once.
local run = require "helpers.run"

describe("the embedding contract", function()
  local out

  setup(function()
    local san = os.getenv("EMBER_SAN") or ""
    local build, rc = run.sh("make --no-print-directory embed BUILD=" .. run.build ..
                             " SAN=" .. run.q(san))
    assert.are.equal(0, rc, build)
    out, rc = run.sh(run.build .. "/embed-host")
    assert.are.equal(0, rc, out)
    assert.truthy(out:find("host: ok", 1, true), out)
  end)

  it("a Lua error reaches the host with its message", function()
    assert.truthy(out:find("host: Lua error caught: [^\n]*add: shapes %[2,3%] and %[4%] " ..
                           "cannot be broadcast"), out)
  end)

  it("the failed call changed nothing and the same state ran the next call", function()
    assert.truthy(out:find("host: the failed call changed nothing, then the same state ran " ..
                           "add_bias: buffer[0] = 1.0500", 1, true), out)
  end)

  it("a release callback is called exactly once, at the last view's death", function()
    local _, n = out:gsub("Ember released the buffer", "")
    assert.are.equal(1, n, out)
    assert.truthy(out:find("host: release callback called 1 time(s)", 1, true), out)
  end)

  it("memory wrapped without a callback is intact after lua_close", function()
    -- the host freed it itself afterwards: a free by Ember would have made
    -- that a double free (and the canary would not read back)
    assert.truthy(out:find("host: canary after lua_close: intact", 1, true), out)
  end)

  it("anomaly detection's hook dies with the lua_State that installed it", function()
    -- A host turns anomaly detection on from Lua, closes that state, and
    -- keeps using the core: the hook must not read the freed state.
    local src = [[
#include <stdio.h>
#include <lauxlib.h>
#include <lualib.h>
#include "ember.h"
#include "ember_lua.h"
int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "ember", luaopen_ember, 1);
  lua_pop(L, 1);
  if (luaL_dostring(L, "ember.set_anomaly_detection(true)") != LUA_OK) return 2;
  int hooked = ember_anomaly_where_ctx() != NULL;
  lua_close(L);
  int64_t shape[1] = {1};
  ember_tensor *x = ember_full(1, shape, 0.0, EMBER_FLOAT32);
  ember_set_requires_grad(x, 1);
  ember_tensor *r = ember_unary(EMBER_SQRT, x);      /* recorded: no hook now */
  ember_tensor *s = ember_reduce(EMBER_SUM, r, 0);
  ember_tensor *zero = ember_scalar(0.0, EMBER_FLOAT32);
  ember_tensor *z = ember_binary(EMBER_MUL, s, zero);
  int rc = ember_backward(z, NULL, 0);
  printf("hooked=%d after_close=%d enabled=%d rc=%d\n%s\n", hooked,
         ember_anomaly_where_ctx() != NULL, ember_anomaly_detection_enabled(),
         rc, rc < 0 ? ember_last_error() : "");
  ember_tensor_release(z); ember_tensor_release(zero); ember_tensor_release(s);
  ember_tensor_release(r); ember_tensor_release(x);
  return 0;
}
]]
    local dir = run.tmpdir()
    local f = assert(io.open(dir .. "/hook.c", "w"))
    f:write(src)
    f:close()
    local san = os.getenv("EMBER_SAN") or ""
    local lua_inc = os.getenv("LUA_INC") or "/usr/include/lua5.4"
    local res, rc = run.sh(("cc -std=c11 -Wall -Wextra %s -Icore/include -Ibindings -I%s " ..
                            "-o %s %s %s -llua5.4 -lopenblas -lpng -ljpeg -lz -lm -fopenmp")
                           :format(san, run.q(lua_inc), run.q(dir .. "/hook"),
                                   run.q(dir .. "/hook.c"), run.q(run.build .. "/libember.a")))
    assert.are.equal(0, rc, res)
    res, rc = run.sh(run.q(dir .. "/hook"))
    run.rmdir(dir)
    assert.are.equal(0, rc, res)
    assert.truthy(res:find("hooked=1 after_close=0 enabled=1 rc=-1", 1, true), res)
    -- still detected, without a call site
    assert.truthy(res:find("backward: SqrtBackward produced NaN in its gradient for input 1 " ..
                           "(anomaly detection)\n", 1, true), res)
  end)
end)
