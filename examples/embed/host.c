/*
** host.c -- a C program that embeds Ember.
**
** It opens a lua_State, loads Ember, wraps a buffer it owns as a tensor
** without copying, runs a Lua function on it, and reads the results back.
** The Lua function scales the tensor in place, so the host sees its own
** buffer change: proof that no copy was made.  When Lua lets go of the
** tensor, Ember calls our release callback and never frees the buffer.
*/
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "ember.h"
#include "ember_lua.h"

static const char *script =
  "function normalise(t)\n"
  "  t:div_(t:sum())            -- in place: the host's buffer changes\n"
  "  return t:max(), t:argmax()\n"
  "end\n";

static int released = 0;

/* Ember calls this when the last view of the buffer dies. */
static void on_release(void *data, void *ctx) {
  (void)data;
  released = 1;
  printf("host: Ember released the buffer (%s)\n", (const char *)ctx);
}

int main(void) {
  float buffer[6] = {1, 2, 3, 4, 5, 5};     /* owned by the host */
  int64_t shape[2] = {2, 3};
  lua_State *L = luaL_newstate();
  if (!L) return 1;
  luaL_openlibs(L);
  luaL_requiref(L, "ember", luaopen_ember, 1);   /* global `ember` */
  lua_pop(L, 1);
  if (luaL_dostring(L, script) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    return 1;
  }

  ember_tensor *t = ember_from_blob(buffer, EMBER_FLOAT32, 2, shape, NULL,
                                    on_release, "the host's float[6]");
  if (!t) { fprintf(stderr, "host: %s\n", ember_last_error()); return 1; }

  lua_getglobal(L, "normalise");
  ember_lua_push(L, t);              /* Lua takes its own reference */
  ember_tensor_release(t);           /* and we drop ours */
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    return 1;
  }
  double maxv;
  int64_t argmax;
  if (ember_item(ember_lua_check(L, -2), &maxv) < 0 ||
      ember_item_int(ember_lua_check(L, -1), &argmax) < 0) {
    fprintf(stderr, "host: %s\n", ember_last_error());
    return 1;
  }
  lua_pop(L, 2);
  printf("host: buffer after Lua = {");
  for (int i = 0; i < 6; i++) printf(i ? ", %.4f" : "%.4f", buffer[i]);
  printf("}\nhost: max = %.4f at flat position %lld (1-based)\n", maxv,
         (long long)argmax);

  /* an error inside Lua comes back to the host; the state stays usable */
  int caught = 0;
  if (luaL_dostring(L, "return normalise(ember.zeros(0))") != LUA_OK) {
    printf("host: Lua error caught: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    caught = 1;
  }
  if (luaL_dostring(L, "return ember.ones(3):sum():item()") != LUA_OK ||
      lua_tonumber(L, -1) != 3) {
    fprintf(stderr, "host: the state is not usable after an error\n");
    return 1;
  }
  lua_pop(L, 1);

  lua_close(L);                      /* collects the tensor: release runs */
  int ok = released && caught && buffer[0] > 0.0499f && buffer[0] < 0.0501f &&
           argmax == 5 && maxv > 0.2499 && maxv < 0.2501;
  printf("host: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
