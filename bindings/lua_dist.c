/*
** lua_dist.c -- the collectives (ember._dist; lua/ember/distributed.lua
** makes ember.distributed of them).  Ranks are 1-based here, 0-based in
** the core.
**
** The state that first joins the job owns leaving it: a sentinel in its
** registry finalizes when the state closes (normal end of a script), so a
** script need not call finalize.  (Not a world of one, which other states
** of the process share: see sentinel_gc.)  The ember executable aborts the whole
** job instead when its script fails (bindings/ember_main.c), so no rank is
** left waiting in a collective for one that died.
*/
#include <string.h>

#include "lua_internal.h"

#define SENTINEL "ember.distributed.sentinel"

/* A world of one (no launcher: backend "none") has nothing to leave, and
   finalizing it would end it for the process's other states, which may
   still be running on other threads; only a real job is left here. */
static int sentinel_gc(lua_State *L) {
  (void)L;
  if (ember_dist_is_initialized() && strcmp(ember_dist_backend(), "none") != 0)
    ember_dist_finalize();
  return 0;
}

/* Join the job if not yet (raising the core's error), and make this state
   the one that leaves it.  fn names the caller once the job is over. */
static void joined(lua_State *L, const char *fn) {
  if (ember_dist_is_initialized()) return;
  if (ember_dist_is_finalized()) luaL_error(L, "%s: the distributed job was finalized", fn);
  if (ember_dist_init() < 0) l_error(L);
  lua_newuserdatauv(L, 0, 0);
  lua_newtable(L);
  lua_pushcfunction(L, sentinel_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, SENTINEL);
}

static int l_init(lua_State *L) {
  joined(L, "init");
  lua_pushinteger(L, ember_dist_rank() + 1);
  lua_pushinteger(L, ember_dist_world_size());
  return 2;
}

static int l_is_initialized(lua_State *L) {
  lua_pushboolean(L, ember_dist_is_initialized());
  return 1;
}

static int l_rank(lua_State *L) {
  joined(L, "rank");
  lua_pushinteger(L, ember_dist_rank() + 1);
  return 1;
}

static int l_world_size(lua_State *L) {
  joined(L, "world_size");
  lua_pushinteger(L, ember_dist_world_size());
  return 1;
}

static int l_local_size(lua_State *L) {
  joined(L, "local_size");
  lua_pushinteger(L, ember_dist_local_size());
  return 1;
}

static int l_backend(lua_State *L) {
  joined(L, "backend");
  lua_pushstring(L, ember_dist_backend());
  const char *v = ember_dist_version();
  if (v) lua_pushstring(L, v);
  else lua_pushnil(L);
  return 2;
}

static int l_is_available(lua_State *L) {
  lua_pushboolean(L, ember_dist_is_available());
  const char *r = ember_dist_unavailable_reason();
  if (r) lua_pushstring(L, r);
  else lua_pushnil(L);
  return 2;
}

static int l_barrier(lua_State *L) {
  joined(L, "barrier");
  if (ember_dist_barrier() < 0) return l_error(L);
  return 0;
}

static ember_reduce_op check_op(lua_State *L, int idx) {
  static const char *const names[] = {"sum", "mean", "max", "min", NULL};
  static const ember_reduce_op ops[] = {EMBER_SUM, EMBER_MEAN, EMBER_MAX, EMBER_MIN};
  return ops[luaL_checkoption(L, idx, "sum", names)];
}

/* A root rank (1-based, default 1) -> 0-based; the range is the core's. */
static int check_root(lua_State *L, int idx) {
  lua_Integer r = luaL_optinteger(L, idx, 1);
  if (r < 1 || r > 1 << 30) luaL_argerror(L, idx, "root must be a rank, 1..world_size");
  return (int)r - 1;
}

/* Bucket size in bytes (0: the core's default). */
static size_t check_bucket(lua_State *L, int idx) {
  lua_Integer b = luaL_optinteger(L, idx, 0);
  if (b < 0) luaL_argerror(L, idx, "bucket size must be >= 0 bytes");
  return (size_t)b;
}

/* all_reduce(t [, op = "sum"]) -> t */
static int l_all_reduce(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  ember_reduce_op op = check_op(L, 2);
  joined(L, "all_reduce");
  if (ember_dist_all_reduce(t, op) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

/* broadcast(t [, root = 1]) -> t */
static int l_broadcast(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int root = check_root(L, 2);
  joined(L, "broadcast");
  if (ember_dist_broadcast(t, root) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

/* all_gather(t) -> tensor [world_size, t's shape] */
static int l_all_gather(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  joined(L, "all_gather");
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_dist_all_gather(t));
  return 1;
}

/* The tensors of the list at idx, in a userdata kept on the stack. */
static ember_tensor **check_list(lua_State *L, int idx, int *n) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer len = luaL_len(L, idx);
  if (len > 1 << 24) luaL_argerror(L, idx, "too many tensors");
  ember_tensor **ts = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *ts, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti(L, idx, i);
    l_tensor *u = luaL_testudata(L, -1, EMBER_TENSOR_MT);
    if (!u || !u->t)
      luaL_error(L, "expected a list of tensors, but item %d is %s", (int)i,
                 u ? "a closed tensor" : luaL_typename(L, -1));
    ts[i - 1] = u->t;
    lua_pop(L, 1);
  }
  *n = (int)len;
  return ts;
}

/* all_reduce_coalesced(list [, op = "sum" [, bucket_bytes]]) */
static int l_all_reduce_coalesced(lua_State *L) {
  ember_reduce_op op = check_op(L, 2);
  size_t bucket = check_bucket(L, 3);
  int n;
  ember_tensor **ts = check_list(L, 1, &n);
  joined(L, "all_reduce_coalesced");
  if (ember_dist_all_reduce_many(ts, n, op, bucket) < 0) return l_error(L);
  return 0;
}

/* broadcast_coalesced(list [, root = 1 [, bucket_bytes]]) */
static int l_broadcast_coalesced(lua_State *L) {
  int root = check_root(L, 2);
  size_t bucket = check_bucket(L, 3);
  int n;
  ember_tensor **ts = check_list(L, 1, &n);
  joined(L, "broadcast_coalesced");
  if (ember_dist_broadcast_many(ts, n, root, bucket) < 0) return l_error(L);
  return 0;
}

static int l_finalize(lua_State *L) {
  if (ember_dist_finalize() < 0) return l_error(L);
  return 0;
}

/* abort([code = 1]): in a job of several processes, stop them all. */
static int l_abort(lua_State *L) {
  lua_Integer code = luaL_optinteger(L, 1, 1);
  ember_dist_abort((int)code);
  return 0;
}

static const luaL_Reg funcs[] = {
  {"init", l_init}, {"is_initialized", l_is_initialized}, {"rank", l_rank},
  {"world_size", l_world_size}, {"local_size", l_local_size}, {"backend", l_backend},
  {"is_available", l_is_available}, {"barrier", l_barrier}, {"all_reduce", l_all_reduce},
  {"broadcast", l_broadcast}, {"all_gather", l_all_gather},
  {"all_reduce_coalesced", l_all_reduce_coalesced},
  {"broadcast_coalesced", l_broadcast_coalesced}, {"finalize", l_finalize},
  {"abort", l_abort}, {NULL, NULL},
};

/* With the module table at -2 and the method table at -1. */
void l_register_dist(lua_State *L) {
  luaL_newlib(L, funcs);
  lua_setfield(L, -3, "_dist");
}
