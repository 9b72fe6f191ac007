/*
** lua_cuda.c -- the CUDA device functions (ember._cuda: lua/ember/init.lua
** makes them ember.cuda.*) and moving tensors between devices (t:cuda(),
** t:cpu(), t:to(device), creation options {device = ...}).
*/
#include <string.h>

#include "lua_internal.h"

/* {======================================================================
** Devices in arguments
** ======================================================================= */

/* "cpu", "cuda" or "cuda:0" (the one device Ember uses). */
static int parse_device(const char *s, ember_device *out) {
  if (strcmp(s, "cpu") == 0) { *out = EMBER_CPU; return 0; }
  if (strcmp(s, "cuda") == 0 || strcmp(s, "cuda:0") == 0) { *out = EMBER_CUDA; return 0; }
  return -1;
}

int l_isdevice(lua_State *L, int idx) {
  ember_device d;
  return lua_type(L, idx) == LUA_TSTRING && parse_device(lua_tostring(L, idx), &d) == 0;
}

ember_device l_checkdevice(lua_State *L, int idx) {
  ember_device d;
  const char *s = luaL_checkstring(L, idx);
  if (parse_device(s, &d) < 0)
    luaL_argerror(L, idx, lua_pushfstring(L, "unknown device '%s' (expected 'cpu' "
                  "or 'cuda')", s));
  return d;
}

/* The tensor at the top of the stack, replaced by its copy on dev. */
static void move_top(lua_State *L, ember_device dev) {
  ember_tensor *t = l_check(L, -1);
  if (t->storage->device == dev) return;
  int prev = ember_is_grad_enabled();
  ember_set_grad_enabled(0);        /* a creation: the copy is a new leaf */
  ember_tensor *m = ember_to_device(t, dev);
  ember_set_grad_enabled(prev);
  lua_pop(L, 1);
  l_fill(L, l_newslot(L), m);
}

ember_device l_optdevice(lua_State *L, int idx, ember_device def) {
  ember_device dev = def;
  if (l_isoptions(L, idx)) {
    if (lua_getfield(L, idx, "device") != LUA_TNIL) {
      const char *s = lua_tostring(L, -1);
      if (!s || parse_device(s, &dev) < 0)
        luaL_argerror(L, idx, lua_pushfstring(L, "unknown device '%s' (expected "
                      "'cpu' or 'cuda')", s ? s : luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
  }
  if (dev == EMBER_CUDA && !ember_cuda_is_available())
    luaL_error(L, "cuda: CUDA is not available (%s)", ember_cuda_unavailable_reason());
  return dev;
}

void l_opt_place(lua_State *L, int idx, ember_device def) {
  move_top(L, l_optdevice(L, idx, def));
}

/* }====================================================================== */

/* {======================================================================
** Methods
** ======================================================================= */

/* t itself when it is on dev already (as PyTorch), else its copy there */
static int push_on(lua_State *L, int idx, ember_device dev) {
  ember_tensor *t = l_check(L, idx);
  if (t->storage->device == dev) lua_pushvalue(L, idx);
  else l_fill(L, l_newslot(L), ember_to_device(t, dev));
  return 1;
}

/* t:cuda(), ember.cuda(t) */
static int l_cuda(lua_State *L) { return push_on(L, 1, EMBER_CUDA); }
/* t:cpu() */
static int l_cpu(lua_State *L) { return push_on(L, 1, EMBER_CPU); }

/* t:to(device) (t:to(dtype) and t:to(other) are in lua_ops.c, which calls
   this for a device name) */
int l_to_device(lua_State *L) {
  return push_on(L, 1, l_checkdevice(L, 2));
}

/* }====================================================================== */

/* {======================================================================
** ember.cuda.*
** ======================================================================= */

static int l_is_available(lua_State *L) {
  lua_pushboolean(L, ember_cuda_is_available());
  return 1;
}

static int l_unavailable_reason(lua_State *L) {
  const char *r = ember_cuda_unavailable_reason();
  if (r) lua_pushstring(L, r); else lua_pushnil(L);
  return 1;
}

static int l_device_count(lua_State *L) {
  lua_pushinteger(L, ember_cuda_device_count());
  return 1;
}

static int l_synchronize(lua_State *L) {
  if (ember_cuda_synchronize() < 0) return l_error(L);
  return 0;
}

static int l_memory_allocated(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ember_cuda_memory_allocated());
  return 1;
}

static int l_memory_reserved(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ember_cuda_memory_reserved());
  return 1;
}

static int l_empty_cache(lua_State *L) {
  (void)L;
  ember_cuda_empty_cache();
  return 0;
}

static int l_set_allow_tf32(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  ember_cuda_set_allow_tf32(lua_toboolean(L, 1));
  return 0;
}

static int l_get_allow_tf32(lua_State *L) {
  lua_pushboolean(L, ember_cuda_get_allow_tf32());
  return 1;
}

static const luaL_Reg device_funcs[] = {
  {"is_available", l_is_available}, {"unavailable_reason", l_unavailable_reason},
  {"device_count", l_device_count}, {"synchronize", l_synchronize},
  {"memory_allocated", l_memory_allocated}, {"memory_reserved", l_memory_reserved},
  {"empty_cache", l_empty_cache}, {"set_allow_tf32", l_set_allow_tf32},
  {"get_allow_tf32", l_get_allow_tf32}, {NULL, NULL},
};

static const luaL_Reg method_funcs[] = {
  {"cuda", l_cuda}, {"cpu", l_cpu}, {NULL, NULL},
};

void l_register_cuda(lua_State *L) {
  l_register(L, NULL, method_funcs);
  luaL_newlib(L, device_funcs);
  lua_setfield(L, -3, "_cuda");
}

/* }====================================================================== */
