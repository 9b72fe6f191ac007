/*
** lua_module.c -- the entry points: luaopen_ember_core (the C module) and
** luaopen_ember (the whole library, for the executable and C hosts).
*/
#include <lualib.h>

#include "ember_lua_modules.h"
#include "lua_internal.h"

/* ember.core._docs(): {["lua-api.md"] = text, ...}, docs/ as compiled in */
static int l_docs(lua_State *L) {
  lua_newtable(L);
  for (int i = 0; ember_docs[i].name; i++) {
    lua_pushlstring(L, ember_docs[i].source, ember_docs[i].len);
    lua_setfield(L, -2, ember_docs[i].name);
  }
  return 1;
}

int luaopen_ember_core(lua_State *L) {
  ember_get_num_threads();        /* settle the thread count for OpenBLAS */
  lua_newtable(L);                /* module */
  lua_newtable(L);                /* methods */
  l_register_tensor(L);
  l_register_ops(L);
  l_register_autograd(L);
  l_register_nn(L);
  l_register_optim(L);
  l_register_cuda(L);
  l_register_data(L);
  l_register_io(L);
  l_register_dist(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "_methods");
  lua_pop(L, 1);
  lua_pushliteral(L, EMBER_VERSION);
  lua_setfield(L, -2, "_VERSION");
  lua_pushcfunction(L, l_docs);
  lua_setfield(L, -2, "_docs");
  return 1;
}

/* package.preload loader for one embedded module (upvalue: its index) */
static int load_embedded(lua_State *L) {
  const ember_lua_module *m = &ember_lua_modules[lua_tointeger(L, lua_upvalueindex(1))];
  if (luaL_loadbuffer(L, m->source, m->len, m->chunk) != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  return 1;
}

/*
** Register ember.core and every embedded Lua module in package.preload,
** then require "ember".  Works with or without the package library's paths
** pointing anywhere, so a host needs nothing installed but its binary.
*/
int luaopen_ember(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_ember_core);
  lua_setfield(L, -2, "ember.core");
  for (int i = 0; ember_lua_modules[i].name; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, ember_lua_modules[i].name);
  }
  lua_pop(L, 1);
  /* require "ember" through package.loaded so both names share one table */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "ember") == LUA_TTABLE) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "ember: needs the package library (call "
                         "luaL_openlibs before luaopen_ember)");
  lua_pushliteral(L, "ember");
  lua_call(L, 1, 1);
  lua_remove(L, -2);
  return 1;
}
