/*
** lua_data.c -- what lua/ember/data.lua needs from the core: IDX files,
** random permutations and the generator's state.
**
**   ember._read_idx(path)            an IDX file as stored (data.read_idx)
**   ember.randperm(n [, {dtype=}])   a permutation of 1..n, int64 default
**   ember.get_rng_state()            {seed = int, offset = int}
**   ember.set_rng_state(state)       put a state from get_rng_state back
**
** The seed and the offset are uint64 in the core and Lua integers here:
** values past 2^63 travel as the same 64 bits (negative integers), so a
** state always round-trips.
*/
#include <string.h>

#include "lua_internal.h"

void l_check_keys(lua_State *L, int idx, const char *fn,
                       const char *what, const char *const *known) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; known[i] && !ok; i++)
        ok = strcmp(lua_tostring(L, -1), known[i]) == 0;
    if (!ok)
      luaL_error(L, "%s: unknown %s '%s'", fn, what, luaL_tolstring(L, -1, NULL));
  }
}

/* ember._read_idx(path): internal; data.read_idx is the public name */
static int l_read_idx(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (strlen(path) != len)
    return luaL_error(L, "read_idx: the file name contains a zero byte");
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_read_idx(path));
  return 1;
}

/* ember.randperm(n [, {dtype = "int64"}]) */
static int l_randperm(lua_State *L) {
  int isint;
  lua_Integer n = lua_tointegerx(L, 1, &isint);
  if (!isint)
    return luaL_error(L, "randperm: n must be an integer, got %s",
                      lua_type(L, 1) == LUA_TNUMBER ? lua_tostring(L, 1)
                                                    : luaL_typename(L, 1));
  ember_dtype dt = EMBER_INT64;
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) != LUA_TTABLE)
      return luaL_error(L, "randperm: expected an options table, got %s",
                        luaL_typename(L, 2));
    static const char *const known[] = {"dtype", "device", NULL};
    l_check_keys(L, 2, "randperm", "option", known);
    dt = l_optdtype_field(L, 2, EMBER_INT64);
  }
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_randperm_gen(l_gen(L), (int64_t)n, dt));
  l_opt_place(L, 2, EMBER_CPU);
  return 1;
}

static int l_get_rng_state(lua_State *L) {
  const ember_generator *g = l_gen(L);
  uint64_t seed = g->seed, offset = g->offset;
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)offset);
  lua_setfield(L, -2, "offset");
  return 1;
}

/* One integer field of the state table at 1. */
static uint64_t state_field(lua_State *L, const char *key) {
  lua_getfield(L, 1, key);
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint || lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "set_rng_state: state.%s must be an integer, got %s", key,
               lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                              : luaL_typename(L, -1));
  lua_pop(L, 1);
  return (uint64_t)v;
}

/* ember.set_rng_state{seed = s, offset = o}: both read before either is
   set, so a bad state changes nothing */
static int l_set_rng_state(lua_State *L) {
  if (lua_type(L, 1) != LUA_TTABLE)
    return luaL_error(L, "set_rng_state: expected a table {seed = integer, "
                         "offset = integer} (from get_rng_state), got %s",
                      luaL_typename(L, 1));
  static const char *const known[] = {"seed", "offset", NULL};
  l_check_keys(L, 1, "set_rng_state", "field", known);
  uint64_t seed = state_field(L, "seed");
  uint64_t offset = state_field(L, "offset");
  ember_generator *g = l_gen(L);
  g->seed = seed;
  g->offset = offset;
  return 0;
}

static const luaL_Reg module_funcs[] = {
  {"_read_idx", l_read_idx},
  {"randperm", l_randperm},
  {"get_rng_state", l_get_rng_state},
  {"set_rng_state", l_set_rng_state},
  {NULL, NULL},
};

/* module table at -2, method table at -1 (as l_register_ops); none of
   these takes a tensor first, so they are module functions only */
void l_register_data(lua_State *L) {
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, module_funcs, 0);
  lua_pop(L, 1);
}
