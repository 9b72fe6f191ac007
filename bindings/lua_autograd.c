/*
** lua_autograd.c -- autograd functions of the `ember` module.
*/
#include "lua_internal.h"

static const luaL_Reg module_funcs[] = {
  {NULL, NULL},
};

static const luaL_Reg method_funcs[] = {
  {NULL, NULL},
};

/* module table at -2, method table at -1 (as l_register_ops) */
void l_register_autograd(lua_State *L) {
  int methods = lua_gettop(L), module = methods - 1;
  lua_pushvalue(L, module);
  luaL_setfuncs(L, module_funcs, 0);
  luaL_setfuncs(L, method_funcs, 0);
  lua_pop(L, 1);
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, method_funcs, 0);
  lua_pop(L, 1);
}
