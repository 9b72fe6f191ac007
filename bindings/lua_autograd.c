/*
** lua_autograd.c -- autograd from Lua: requires_grad_, backward, detach,
** retain_grad, the grad mode, anomaly detection and post-backward hooks.
** The fields (t.grad, t.requires_grad, t.is_leaf, t.grad_fn) are in
** lua_tensor.c's __index and __newindex.
*/
#include <stdatomic.h>
#include <stdlib.h>

#include "lua_internal.h"

/* t:requires_grad_([on = true]) -> t */
static int l_requires_grad_(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  if (ember_set_requires_grad(t, on) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

/* {======================================================================
** Post-backward hooks.  The functions given to
** ember.register_post_backward_hook are kept in a list owned by the state
** (the uservalue of a userdata in the registry); one core hook per state
** runs them, on the Lua thread that called backward.  That thread is known
** only while l_backward runs, so a backward the core runs for anyone else
** (a C host, another lua_State on the same host thread) leaves this
** state's hooks alone.  The core's hooks are per host thread: a state
** registers its core hook on the thread of its first Lua hook, and its
** __gc (at lua_close) removes it there.
** ======================================================================= */

/* The registry key of the state's hook_state: an address, so every
   backward finds it with one raw lookup, no string. */
static const char POST_BACKWARD_KEY[] = "ember.post_backward";
#define HOOK_HANDLE_MT "ember.PostBackwardHook"

typedef struct {
  lua_State *running;   /* the thread inside l_backward, or NULL */
} hook_state;

/* Whether any state of the process ever registered a hook: until one
   does, a backward skips the registry lookup below (a tiny backward's
   cost, measured in bench/NOTES.md). */
static atomic_int any_hook_state;

/* This state's hook_state, or NULL before its first hook. */
static hook_state *get_hook_state(lua_State *L) {
  if (!atomic_load_explicit(&any_hook_state, memory_order_relaxed))
    return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, POST_BACKWARD_KEY);
  hook_state *hs = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return hs;
}

/* After a failed lua_pcall of Lua code the core called (who: "a
   post-backward hook"): its message, popped, becomes the core's error;
   returns -1, the core's failure. */
static int pcall_error(lua_State *L, const char *who) {
  const char *msg = lua_tostring(L, -1);
  if (msg) ember_set_error("%s", msg);
  else ember_set_error("%s raised a non-string error", who);
  lua_pop(L, 1);
  return -1;
}

/* Run every hook of the list (a copy, so that a hook may remove one); a
   handle removed meanwhile has no fn and is skipped.  Errors propagate to
   the pcall of call_hooks.  A handle is a userdata whose uservalue is its
   function. */
static int run_hooks(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, POST_BACKWARD_KEY);
  lua_getiuservalue(L, -1, 1);
  lua_Integer n = luaL_len(L, -1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -2, i);
  }
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_getiuservalue(L, -1, 1) == LUA_TFUNCTION) lua_call(L, 0, 0);
    else lua_pop(L, 1);
    lua_pop(L, 1);
  }
  return 0;
}

/* The core hook (ctx: the state's hook_state): the Lua hooks, in a
   protected call, their error turned into the core's message. */
static int call_hooks(void *ctx) {
  hook_state *hs = ctx;
  lua_State *L = hs->running;
  if (!L) return 0;
  if (!lua_checkstack(L, 2))
    return ember_set_error("backward: no Lua stack left for the "
                           "post-backward hooks");
  lua_pushcfunction(L, run_hooks);
  if (lua_pcall(L, 0, 0, 0) == LUA_OK) return 0;
  return pcall_error(L, "a post-backward hook");
}

static int l_hook_state_gc(lua_State *L) {
  ember_remove_post_backward_hook(call_hooks, lua_touserdata(L, 1));
  return 0;
}

/* ember.register_post_backward_hook(fn) -> handle: fn() runs after each
   backward (t:backward(), ember.backward) has accumulated the gradients;
   handle:remove() takes it out.  nn.DistributedDataParallel averages its
   gradients this way. */
static int l_register_post_backward_hook(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, POST_BACKWARD_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    hook_state *hs = lua_newuserdatauv(L, sizeof *hs, 1);
    hs->running = NULL;
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    if (ember_add_post_backward_hook(call_hooks, hs) < 0) return l_error(L);
    lua_newtable(L);
    lua_pushcfunction(L, l_hook_state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, POST_BACKWARD_KEY);
    atomic_store_explicit(&any_hook_state, 1, memory_order_relaxed);
  }
  lua_getiuservalue(L, 2, 1);               /* 3: the list */
  lua_newuserdatauv(L, 0, 1);               /* 4: the handle */
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 4, 1);
  luaL_setmetatable(L, HOOK_HANDLE_MT);
  lua_pushvalue(L, 4);
  lua_rawseti(L, 3, luaL_len(L, 3) + 1);
  return 1;
}

/* handle:remove() -> true, or false when it was already removed */
static int l_hook_remove(lua_State *L) {
  luaL_checkudata(L, 1, HOOK_HANDLE_MT);
  lua_settop(L, 1);
  int found = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, POST_BACKWARD_KEY) != LUA_TNIL) {
    lua_getiuservalue(L, 2, 1);
    lua_Integer n = luaL_len(L, 3);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, 3, i);
      int same = lua_rawequal(L, -1, 1);
      lua_pop(L, 1);
      if (!same) continue;
      for (; i < n; i++) {                  /* close the gap */
        lua_rawgeti(L, 3, i + 1);
        lua_rawseti(L, 3, i);
      }
      lua_pushnil(L);
      lua_rawseti(L, 3, n);
      found = 1;
      break;
    }
  }
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1);
  lua_pushboolean(L, found);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Custom functions from Lua (ember._function_apply; lua/ember/autograd.lua
** builds ember.autograd.Function and ember.checkpoint on it).  The core
** node's ctx is a small C struct naming the Lua backward by an integer id
** in a table of the state.  A node may die anywhere -- in a tensor's
** __gc, inside an op, with no Lua call at hand -- so its release never
** touches Lua: it puts the ctx on the state's `dead` list, and the next
** _function_apply (or the state's close) drops those ids from the table.
** The backward runs on the Lua thread inside l_backward, found as the
** post-backward hooks find theirs.
** ======================================================================= */

static const char FUNCTIONS_KEY[] = "ember.functions";  /* the id -> fn table */

typedef struct fn_ctx fn_ctx;
typedef struct fn_registry {   /* malloc'd: nodes may outlive the state */
  int refs;                    /* the state's, and one per live ctx */
  int closed;                  /* the state is gone: releases free at once */
  lua_State *running;          /* the thread inside l_backward, or NULL */
  lua_Integer next_id;
  fn_ctx *dead;                /* released ctxs whose ids are still in the table */
} fn_registry;

struct fn_ctx {
  fn_registry *reg;
  lua_Integer id;
  fn_ctx *next;
};

/* Whether a state ever made a function: until then, a backward skips the
   registry lookup (as any_hook_state). */
static atomic_int any_fn_registry;

static void registry_unref(fn_registry *r) {
  if (--r->refs == 0) free(r);
}

static void fn_release(void *ctx) {
  fn_ctx *c = ctx;
  fn_registry *r = c->reg;
  if (r->closed) {
    free(c);
    registry_unref(r);
    return;
  }
  c->next = r->dead;
  r->dead = c;
}

/* The state's registry userdata (a pointer to the fn_registry) is at -1
   with the id table as its uservalue; drops the dead ids. */
static void drain_dead(lua_State *L, fn_registry *r) {
  lua_getiuservalue(L, -1, 1);
  while (r->dead) {
    fn_ctx *c = r->dead;
    r->dead = c->next;
    lua_pushnil(L);
    lua_rawseti(L, -2, c->id);
    free(c);
    registry_unref(r);
  }
  lua_pop(L, 1);
}

static int l_fn_registry_gc(lua_State *L) {
  fn_registry **pr = lua_touserdata(L, 1);
  fn_registry *r = *pr;
  if (!r) return 0;
  *pr = NULL;
  while (r->dead) {
    fn_ctx *c = r->dead;
    r->dead = c->next;
    free(c);
    r->refs--;
  }
  r->closed = 1;
  r->running = NULL;
  registry_unref(r);
  return 0;
}

static fn_registry *get_fn_registry(lua_State *L) {
  if (!atomic_load_explicit(&any_fn_registry, memory_order_relaxed))
    return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, FUNCTIONS_KEY);
  fn_registry **pr = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return pr ? *pr : NULL;
}

/* Pushes the state's registry userdata, making it on first use. */
static fn_registry *push_fn_registry(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, FUNCTIONS_KEY) != LUA_TNIL)
    return *(fn_registry **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  fn_registry **pr = lua_newuserdatauv(L, sizeof *pr, 1);
  *pr = NULL;
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_fn_registry_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  fn_registry *r = calloc(1, sizeof *r);
  if (!r) luaL_error(L, "out of memory");
  r->refs = 1;
  *pr = r;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, FUNCTIONS_KEY);
  atomic_store_explicit(&any_fn_registry, 1, memory_order_relaxed);
  return r;
}

/* A table of n values at idx (a sequence with field n, or of length n):
   the tensors, with NULL where the value is false or nil. */
static int tensor_list(lua_State *L, int idx, const char *what,
                       ember_tensor **out, int max) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "n");
  int n = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : (int)luaL_len(L, idx);
  lua_pop(L, 1);
  if (n < 0 || n > max)
    return luaL_error(L, "function: at most %d %s, got %d", max, what, n);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    out[i] = lua_toboolean(L, -1) ? ember_lua_totensor(L, -1) : NULL;
    if (lua_toboolean(L, -1) && !out[i])
      return luaL_error(L, "function: %s %d is a %s, not a tensor", what,
                        i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  return n;
}

#define FN_MAX_TENSORS 256

/* Pushes a sequence of the n tensors (false for NULL), with field n. */
static void push_tensor_list(lua_State *L, ember_tensor *const *t, int n) {
  lua_createtable(L, n, 1);
  for (int i = 0; i < n; i++) {
    if (t[i]) ember_lua_push(L, t[i]);
    else lua_pushboolean(L, 0);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
}

/* In a protected call: the Lua backward of ctx (1), with the gradients
   of g (2): backward(grad_outputs, saved, needs) -> a table of input
   gradients (nil or false for none).  A gradient goes to the core as a
   new reference once it is known to be a tensor. */
static int fn_call(lua_State *L) {
  fn_ctx *c = lua_touserdata(L, 1);
  const ember_function_grads *g = lua_touserdata(L, 2);
  lua_rawgetp(L, LUA_REGISTRYINDEX, FUNCTIONS_KEY);
  lua_getiuservalue(L, -1, 1);
  lua_rawgeti(L, -1, c->id);                                 /* 5: fn */
  push_tensor_list(L, g->grad_outputs, g->nout);
  push_tensor_list(L, g->saved, g->nsaved);
  lua_createtable(L, g->nin, 0);
  for (int i = 0; i < g->nin; i++) {
    lua_pushboolean(L, g->needs[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_call(L, 3, 1);                                         /* 5: result */
  if (!lua_istable(L, 5))
    return luaL_error(L, "a function's backward must return a table of "
                         "gradients, got %s", luaL_typename(L, 5));
  for (int i = 0; i < g->nin; i++) {
    lua_rawgeti(L, 5, i + 1);
    if (lua_toboolean(L, -1)) {
      ember_tensor *t = ember_lua_totensor(L, -1);
      if (!t)
        return luaL_error(L, "a function's backward returned a %s for "
                          "input %d, not a tensor", luaL_typename(L, -1), i + 1);
      if (g->needs[i]) {
        ember_tensor_retain(t);
        g->grad_inputs[i] = t;
      }
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* The core's callback: the Lua backward on the thread inside l_backward,
   its error (or a missing thread) turned into the core's message. */
static int fn_backward(void *ctx, const ember_function_grads *g) {
  fn_ctx *c = ctx;
  lua_State *L = c->reg->running;
  if (!L)
    return ember_set_error("backward: a Lua function's backward can only "
                           "run inside a backward started from Lua, in the "
                           "state that made it");
  if (!lua_checkstack(L, 12))
    return ember_set_error("backward: no Lua stack left for a function's "
                           "backward");
  lua_pushcfunction(L, fn_call);
  lua_pushlightuserdata(L, c);
  lua_pushlightuserdata(L, (void *)g);
  if (lua_pcall(L, 2, 0, 0) == LUA_OK) return 0;
  return pcall_error(L, "a function's backward");
}

/* ember._function_apply(name, inputs, saved, outputs, backward) -> bool:
   the tables as tensor_list reads them; backward(grad_outputs, saved,
   needs) as fn_call calls it.  True when a node was recorded. */
static int l_function_apply(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 5, LUA_TFUNCTION);
  ember_tensor *in[FN_MAX_TENSORS], *sv[FN_MAX_TENSORS], *out[FN_MAX_TENSORS];
  int nin = tensor_list(L, 2, "inputs", in, FN_MAX_TENSORS);
  int nsv = tensor_list(L, 3, "saved tensors", sv, FN_MAX_TENSORS);
  int nout = tensor_list(L, 4, "outputs", out, FN_MAX_TENSORS);
  lua_settop(L, 5);
  fn_registry *r = push_fn_registry(L);                      /* 6 */
  drain_dead(L, r);
  fn_ctx *c = malloc(sizeof *c);
  if (!c) return luaL_error(L, "out of memory");
  c->reg = r;
  c->id = ++r->next_id;
  c->next = NULL;
  r->refs++;
  lua_getiuservalue(L, 6, 1);
  lua_pushvalue(L, 5);
  lua_rawseti(L, -2, c->id);
  /* from here the core owns c: fn_release queues it for drain_dead */
  int rc = ember_function_apply(name, nin, (const ember_tensor *const *)in,
                                nsv, (const ember_tensor *const *)sv, nout,
                                out, fn_backward, fn_release, c);
  if (rc < 0) return l_error(L);
  lua_pushboolean(L, rc == 1);
  return 1;
}

/* }====================================================================== */

/* t:backward([grad] [, {retain_graph = false}]) */
static int l_backward(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int opt = l_isoptions(L, 2) ? 2 : 3;
  ember_tensor *g = NULL;
  if (opt == 3 && !lua_isnoneornil(L, 2)) g = l_check(L, 2);
  int retain = 0;
  if (!lua_isnoneornil(L, opt) && !l_isoptions(L, opt))
    return luaL_typeerror(L, opt, "options table");
  if (l_isoptions(L, opt)) {
    lua_getfield(L, opt, "retain_graph");
    retain = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  hook_state *hs = get_hook_state(L);
  lua_State *outer = hs ? hs->running : NULL;
  if (hs) hs->running = L;
  fn_registry *fr = get_fn_registry(L);
  lua_State *fouter = fr ? fr->running : NULL;
  if (fr) fr->running = L;
  int rc = ember_backward(t, g, retain);
  if (fr) fr->running = fouter;
  if (hs) hs->running = outer;
  if (rc < 0) return l_error(L);
  return 0;
}

static int l_detach(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_detach(t));
  return 1;
}

/* t:detach_(): t leaves the graph (a leaf that does not require grad) */
static int l_detach_(lua_State *L) {
  if (ember_detach_(l_check(L, 1)) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_retain_grad(lua_State *L) {
  if (ember_retain_grad(l_check(L, 1)) < 0) return l_error(L);
  return 0;
}

static int l_set_grad_enabled(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  ember_set_grad_enabled(lua_toboolean(L, 1));
  return 0;
}

static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, ember_is_grad_enabled());
  return 1;
}

/* ember._set_autocast(dtype name | false) -> the previous one (name or
   false); ember.autocast (lua/ember/init.lua) wraps it */
static int l_push_autocast(lua_State *L, int dt) {
  if (dt < 0) lua_pushboolean(L, 0);
  else lua_pushstring(L, ember_dtype_name((ember_dtype)dt));
  return 1;
}

static int l_set_autocast(lua_State *L) {
  int dt = -1;
  if (lua_type(L, 1) != LUA_TBOOLEAN || lua_toboolean(L, 1)) dt = (int)l_checkdtype(L, 1);
  int prev = ember_get_autocast();
  if (ember_set_autocast(dt) < 0) return l_error(L);
  return l_push_autocast(L, prev);
}

static int l_get_autocast(lua_State *L) {
  return l_push_autocast(L, ember_get_autocast());
}

/* {======================================================================
** Anomaly detection.  The core names the node whose gradient holds a NaN;
** it asks us, through a hook, where each node's forward op was called, so
** the message can point at the user's line as PyTorch's traceback does.
** ======================================================================= */

#include <stdio.h>

#define WHERE_FRAMES 4   /* Lua frames named, innermost first */

/* The hook: the innermost Lua frames of the state's main thread, as
   "file:line <- file:line".  It reads the stack only (lua_getstack and
   lua_getinfo "Sl" allocate nothing), so it cannot raise an error through
   the core.  Ops run inside a coroutine show where it was resumed. */
static void l_where(char *buf, size_t size, void *ctx) {
  lua_State *L = ctx;
  lua_Debug ar;
  size_t len = 0;
  int shown = 0;
  buf[0] = '\0';
  for (int level = 0; shown < WHERE_FRAMES && lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0) continue;  /* C */
    int w = snprintf(buf + len, size - len, "%s%s:%d", shown ? " <- " : "",
                     ar.short_src, ar.currentline);
    if (w < 0 || (size_t)w >= size - len) break;
    len += (size_t)w;
    shown++;
  }
}

/* The hook holds a lua_State: when that state closes, this sentinel's __gc
   removes the hook so that no later node reads a freed state.  The hook
   and the mode are per thread (the core's), so the sentinel can only
   clear the closing thread's: turning detection off removes it too, which
   lets a host close the state from another thread safely. */
#define ANOMALY_SENTINEL "ember.anomaly_sentinel"

static int l_sentinel_gc(lua_State *L) {
  lua_State **owner = lua_touserdata(L, 1);
  if (ember_anomaly_where_ctx() == *owner) ember_set_anomaly_where(NULL, NULL);
  return 0;
}

/* Remove the hook if it is this state's. */
static void remove_where_hook(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State *main = lua_tothread(L, -1);
  lua_pop(L, 1);
  if (ember_anomaly_where_ctx() == main) ember_set_anomaly_where(NULL, NULL);
}

static void install_where_hook(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State *main = lua_tothread(L, -1);
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, ANOMALY_SENTINEL) == LUA_TNIL) {
    lua_State **owner = lua_newuserdatauv(L, sizeof *owner, 0);
    *owner = main;
    lua_newtable(L);
    lua_pushcfunction(L, l_sentinel_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ANOMALY_SENTINEL);
  }
  lua_pop(L, 1);
  ember_set_anomaly_where(l_where, main);
}

/* ember.set_anomaly_detection(on): backward fails on the first NaN
   gradient, naming the node that computed it and where its forward op
   was called */
static int l_set_anomaly_detection(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  int on = lua_toboolean(L, 1);
  if (on) install_where_hook(L);
  ember_set_anomaly_detection(on);
  if (!on) remove_where_hook(L);
  return 0;
}

static int l_is_anomaly_detection_enabled(lua_State *L) {
  lua_pushboolean(L, ember_anomaly_detection_enabled());
  return 1;
}

/* }====================================================================== */

/* bytes of tensor storage alive now (what a leak would grow) */
static int l_memory_allocated(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ember_bytes_live());
  return 1;
}

/* the most bytes of tensor storage alive at once since the start or the
   last reset_peak_memory_stats() */
static int l_max_memory_allocated(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ember_peak_bytes_live());
  return 1;
}

static int l_reset_peak_memory_stats(lua_State *L) {
  (void)L;
  ember_reset_peak_bytes();
  return 0;
}

static const luaL_Reg module_funcs[] = {
  {"memory_allocated", l_memory_allocated},
  {"max_memory_allocated", l_max_memory_allocated},
  {"reset_peak_memory_stats", l_reset_peak_memory_stats},
  {"_function_apply", l_function_apply},
  {"set_grad_enabled", l_set_grad_enabled},
  {"is_grad_enabled", l_is_grad_enabled},
  {"_set_autocast", l_set_autocast}, {"get_autocast_dtype", l_get_autocast},
  {"set_anomaly_detection", l_set_anomaly_detection},
  {"is_anomaly_detection_enabled", l_is_anomaly_detection_enabled},
  {"register_post_backward_hook", l_register_post_backward_hook},
  {NULL, NULL},
};

static const luaL_Reg method_funcs[] = {
  {"requires_grad_", l_requires_grad_}, {"backward", l_backward},
  {"detach", l_detach}, {"detach_", l_detach_},
  {"retain_grad", l_retain_grad},
  {NULL, NULL},
};

/* module table at -2, method table at -1 (as l_register_ops) */
void l_register_autograd(lua_State *L) {
  l_register(L, module_funcs, method_funcs);
  if (luaL_newmetatable(L, HOOK_HANDLE_MT)) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_hook_remove);
    lua_setfield(L, -2, "remove");
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "PostBackwardHook");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
}
