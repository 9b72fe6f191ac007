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

/* "cpu", "cuda" or "cuda:N" (N the device's 0-based number); *index is
   N, or -1 for "cpu" and a bare "cuda" (the process's device). */
static int parse_device(const char *s, ember_device *out, int *index) {
  *index = -1;
  if (strcmp(s, "cpu") == 0) { *out = EMBER_CPU; return 0; }
  if (strcmp(s, "cuda") == 0) { *out = EMBER_CUDA; return 0; }
  if (strncmp(s, "cuda:", 5) != 0 || s[5] < '0' || s[5] > '9') return -1;
  long n = 0;
  for (const char *c = s + 5; *c; c++) {
    if (*c < '0' || *c > '9' || n > 9999) return -1;
    n = n * 10 + (*c - '0');
  }
  *out = EMBER_CUDA;
  *index = (int)n;
  return 0;
}

int l_isdevice(lua_State *L, int idx) {
  ember_device d;
  int n;
  return lua_type(L, idx) == LUA_TSTRING && parse_device(lua_tostring(L, idx), &d, &n) == 0;
}

/* "cuda:N" names the process's device, or makes device N the process's
   device while no CUDA tensor exists (ember_cuda_set_device). */
static void use_index(lua_State *L, int index) {
  if (index < 0) return;
  if (!ember_cuda_is_available())
    luaL_error(L, "cuda: CUDA is not available (%s)", ember_cuda_unavailable_reason());
  if (index != ember_cuda_current_device() && ember_cuda_set_device(index) < 0) l_error(L);
}

static int bad_device(lua_State *L, int idx, const char *s) {
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown device '%s' (expected 'cpu', "
                       "'cuda' or 'cuda:N')", s));
}

ember_device l_checkdevice(lua_State *L, int idx) {
  ember_device d;
  int n;
  const char *s = luaL_checkstring(L, idx);
  if (parse_device(s, &d, &n) < 0) bad_device(L, idx, s);
  use_index(L, n);
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
      int n;
      if (!s || parse_device(s, &dev, &n) < 0) bad_device(L, idx, s ? s : luaL_typename(L, -1));
      use_index(L, n);
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

/* ember.cuda.stats(): the device's counts (ember_cuda_stats) */
static int l_stats(lua_State *L) {
  ember_cuda_counters c;
  ember_cuda_stats(&c);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)c.syncs);
  lua_setfield(L, -2, "syncs");
  lua_pushinteger(L, (lua_Integer)c.uploads);
  lua_setfield(L, -2, "uploads");
  lua_pushinteger(L, (lua_Integer)c.allocations);
  lua_setfield(L, -2, "allocations");
  lua_pushinteger(L, (lua_Integer)c.releases);
  lua_setfield(L, -2, "releases");
  lua_pushinteger(L, (lua_Integer)c.allocated_bytes);
  lua_setfield(L, -2, "allocated_bytes");
  lua_pushinteger(L, (lua_Integer)c.cached_bytes);
  lua_setfield(L, -2, "cached_bytes");
  return 1;
}

/* ember.cuda.set_device(n): n 0-based, as in "cuda:1" */
static int l_set_device(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (!ember_cuda_is_available())
    return luaL_error(L, "cuda.set_device: CUDA is not available (%s)",
                      ember_cuda_unavailable_reason());
  if (n < 0 || n > 9999)
    return luaL_argerror(L, 1, "expected a device number 0..device_count()-1");
  if (ember_cuda_set_device((int)n) < 0) return l_error(L);
  return 0;
}

/* ember.cuda.current_device(): 0-based, nil without CUDA */
static int l_current_device(lua_State *L) {
  int n = ember_cuda_current_device();
  if (n < 0) lua_pushnil(L); else lua_pushinteger(L, n);
  return 1;
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
  {"get_allow_tf32", l_get_allow_tf32}, {"stats", l_stats},
  {"set_device", l_set_device}, {"current_device", l_current_device}, {NULL, NULL},
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
