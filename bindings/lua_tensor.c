/*
** lua_tensor.c -- the tensor userdata: creation of the Lua object, argument
** checks, indexing, metamethods, and conversion from and to Lua tables.
**
** The userdata holds one pointer to a core tensor (liolib's recipe: the
** userdata is created empty first, then filled, so an error in between
** leaks nothing).  __gc and __close are the same function; a closed tensor
** has a NULL pointer and any use of it is an error.
**
** Memory: Lua only sees a pointer-sized userdata, so the collector would not
** hurry to free tensors whose storage is large.  gc_pace() below makes it
** account for storage bytes, which keeps a loop that drops big tensors flat
** without any collectgarbage() call.
*/
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "lua_internal.h"
#include "../core/half.h"

/* {======================================================================
** The userdata, errors, GC pacing
** ======================================================================= */

int l_error(lua_State *L) {
  return luaL_error(L, "%s", ember_last_error());
}

/*
** The state's context (l_context, lua_internal.h), under the address
** ctx_key in the registry.  Made by luaopen_ember_core; made here too if a
** function runs before it (a C host calling ember_lua_push first).
*/
static const char ctx_key = 0;

l_context *l_ctx(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key);
  l_context *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (c) return c;
  c = lua_newuserdatauv(L, sizeof *c, 0);
  c->gen = (ember_generator)EMBER_GENERATOR_INIT;
  c->paced = 0;
  c->floor_live = 0;
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_key);
  return c;
}

ember_generator *l_gen(lua_State *L) { return &l_ctx(L)->gen; }

/*
** Pace the collector by tensor bytes.  Every 256 KiB of new storage we step
** it as if those bytes were Lua allocations; and when the storage alive
** has grown by an eighth (at least 8 MiB) since the last full collection,
** we collect fully, which also runs the finalizers that free storage.
** That bounds a loop's memory at about 1.125x what it really holds plus
** 8 MiB: a training step's garbage tensors (its activations, gradients,
** batches) go every step or two.  A full collection is cheap beside a
** step (the Lua heap is small; the storage freed comes back through the
** core's block cache without page faults; bench/NOTES.md has the
** figures).
**
** The marks are the state's (its context); the byte counts are the
** process's, so states on other threads make a state step its collector
** somewhat more often, never less.  pace_seen keeps the per-op cost at
** two loads: the context is looked up only every 256 KiB a thread
** allocates.
*/
static _Thread_local uint64_t pace_seen;

static void gc_pace(lua_State *L) {
  uint64_t now = ember_bytes_allocated();
  if (now - pace_seen < (256u << 10)) return;
  pace_seen = now;
  l_context *c = l_ctx(L);
  if (now < c->paced) {      /* the state last ran on a thread ahead of us */
    c->paced = now;
    return;
  }
  uint64_t debt = now - c->paced;
  if (debt < (256u << 10)) return;
  c->paced = now;
  size_t live = ember_bytes_live();
  size_t slack = c->floor_live / 8 > (8u << 20) ? c->floor_live / 8 : (8u << 20);
  if (live > c->floor_live + slack) {
    lua_gc(L, LUA_GCCOLLECT);
    c->floor_live = ember_bytes_live();
    return;
  }
  uint64_t kb = debt >> 10;
  lua_gc(L, LUA_GCSTEP, kb > 0x3fffffff ? 0x3fffffff : (int)kb);
}

/*
** Finding the metatable.  It is kept in the registry under its name, under
** the address mt_key, and under an integer reference.  Every op checks its
** operands and makes a result, and a tiny op spent a fifth of its time in
** these lookups (a light-userdata key hashes with a division), so the
** state that registered first also gets two shortcuts:
**   - fast_mt, the metatable's address: a tensor check compares the
**     operand's metatable with it, no lookup at all;
**   - fast_ref, its integer key: the array part of the registry, no hash.
** Other states (an embedding host may open several) miss the shortcuts and
** take the lookup, so both are only ever hints.  fast_mt must not outlive
** its table, or another table at the same address would pass for it: a
** sentinel userdata that anchors the metatable clears it from its
** finalizer, which runs before the state frees any object (lua_close runs
** every finalizer first) or as soon as the sentinel is unreachable.
*/
static const char mt_key = 0;
static const char sentinel_key = 0;
static _Atomic(const void *) fast_mt;
static _Atomic int fast_ref = LUA_NOREF;

/* Push the metatable. */
static void push_mt(lua_State *L) {
  int ref = atomic_load_explicit(&fast_ref, memory_order_relaxed);
  if (ref > 0) {
    if (lua_rawgeti(L, LUA_REGISTRYINDEX, ref) == LUA_TTABLE &&
        lua_topointer(L, -1) == atomic_load_explicit(&fast_mt, memory_order_relaxed))
      return;
    lua_pop(L, 1);
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &mt_key);
}

l_tensor *l_newslot(lua_State *L) {
  l_tensor *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->t = NULL;
  push_mt(L);
  lua_setmetatable(L, -2);
  return u;
}

/* The userdata at idx if it is a tensor (live or closed), else NULL.
   (A light userdata is no tensor, whatever metatable it was given.) */
static l_tensor *l_testtensor(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return NULL;
  int ok = lua_topointer(L, -1) == atomic_load_explicit(&fast_mt, memory_order_relaxed);
  if (!ok) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &mt_key);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok ? lua_touserdata(L, idx) : NULL;
}

/* The sentinel's __gc: its state's metatable is going, forget it. */
static int forget_mt(lua_State *L) {
  const void **box = lua_touserdata(L, 1);
  const void *mine = box && lua_rawlen(L, 1) == sizeof *box ? *box : NULL;
  if (mine && atomic_compare_exchange_strong(&fast_mt, &mine, NULL))
    atomic_store(&fast_ref, LUA_NOREF);
  return 0;
}

/* With the metatable at mt: the sentinel, and the shortcuts if free.  (A
   second registration in one state keeps the first sentinel: replacing it
   would have its finalizer clear shortcuts still in use.) */
static void setup_fast_mt(lua_State *L, int mt) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &sentinel_key);
  const void **old = lua_touserdata(L, -1);
  int have = old && lua_rawlen(L, -1) == sizeof *old && *old == lua_topointer(L, mt);
  lua_pop(L, 1);
  if (have) return;
  const void **box = lua_newuserdatauv(L, sizeof *box, 1);
  *box = lua_topointer(L, mt);
  lua_pushvalue(L, mt);                  /* the sentinel anchors the table */
  lua_setiuservalue(L, -2, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, forget_mt);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &sentinel_key);
  lua_pushvalue(L, mt);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  const void *none = NULL;
  if (atomic_compare_exchange_strong(&fast_mt, &none, lua_topointer(L, mt)))
    atomic_store(&fast_ref, ref);
}

/* A tensor argument on a mapped file that shrank: raise (lua_io.c's
   ember.load{mmap = true}; docs/internals.md, "Mapped files"). */
static void check_mapped(lua_State *L, ember_tensor *t) {
  if (ember_check_mapped(t) < 0) l_error(L);
}

/* After a fault in a mapped file (ever), a result computed from a lost
   mapping read zeros: drop it, raising the mapping's error. */
static void check_args_mapped(lua_State *L, ember_tensor *result) {
  for (int i = 1, n = lua_gettop(L); i <= n; i++) {
    l_tensor *u = l_testtensor(L, i);
    if (u && u->t && ember_check_mapped(u->t) < 0) {
      ember_tensor_release(result);
      l_error(L);
    }
  }
}

void l_fill(lua_State *L, l_tensor *slot, ember_tensor *t) {
  if (!t) l_error(L);
  if (ember_mapping_faults() != 0) check_args_mapped(L, t);
  slot->t = t;
  gc_pace(L);
}

void ember_lua_push(lua_State *L, ember_tensor *t) {
  l_tensor *u = l_newslot(L);
  ember_tensor_retain(t);
  u->t = t;
}

ember_tensor *ember_lua_totensor(lua_State *L, int idx) {
  l_tensor *u = l_testtensor(L, idx);
  return u ? u->t : NULL;
}

ember_tensor *l_check(lua_State *L, int idx) {
  l_tensor *u = l_testtensor(L, idx);
  if (!u) luaL_typeerror(L, idx, "tensor");
  if (!u->t) luaL_argerror(L, idx, "tensor has been closed");
  check_mapped(L, u->t);
  return u->t;
}

ember_tensor *ember_lua_check(lua_State *L, int idx) { return l_check(L, idx); }

static int t_gc(lua_State *L) {
  l_tensor *u = l_testtensor(L, 1);
  if (!u) return 0;
  ember_tensor_release(u->t);
  u->t = NULL;
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Argument helpers
** ======================================================================= */

/* 1-based Lua dim (negative counts from the end) to the core's 0-based. */
static int to_dim(lua_State *L, int idx, lua_Integer d) {
  if (d == 0)
    luaL_argerror(L, idx, "dimension 0 is invalid (dimensions count from 1)");
  if (d > 64 || d < -64) luaL_argerror(L, idx, "dimension out of range");
  return d > 0 ? (int)d - 1 : (int)d;
}

static lua_Integer check_integer(lua_State *L, int idx, const char *what) {
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      luaL_argerror(L, idx, lua_pushfstring(L, "%s must be an integer, got %f",
                                            what, (LUAI_UACNUMBER)lua_tonumber(L, idx)));
    luaL_typeerror(L, idx, "integer");
  }
  return v;
}

int l_checkdim(lua_State *L, int idx) {
  return to_dim(L, idx, check_integer(L, idx, "dimension"));
}

int l_optdim(lua_State *L, int idx, int def) {
  return lua_isnoneornil(L, idx) ? def : l_checkdim(L, idx);
}

ember_dtype l_checkdtype(lua_State *L, int idx) {
  const char *name = luaL_checkstring(L, idx);
  ember_dtype dt;
  if (ember_dtype_from_name(name, &dt) < 0)
    luaL_argerror(L, idx, lua_pushfstring(L, "unknown dtype '%s' (expected "
                  "float32, float64, int32, int64, uint8 or bool)", name));
  return dt;
}

int l_isoptions(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  if (lua_rawlen(L, idx) > 0) return 0;
  lua_pushnil(L);
  if (lua_next(L, idx < 0 ? idx - 1 : idx)) {
    lua_pop(L, 2);
    return 1;
  }
  return 0;                       /* {} is an empty shape, not options */
}

ember_dtype l_optdtype_field(lua_State *L, int idx, ember_dtype def) {
  if (!l_isoptions(L, idx)) return def;
  ember_dtype dt = def;
  if (lua_getfield(L, idx, "dtype") != LUA_TNIL) {
    const char *name = lua_tostring(L, -1);
    if (!name || ember_dtype_from_name(name, &dt) < 0)
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown dtype '%s' (expected "
                    "float32, float64, int32, int64, uint8 or bool)",
                    name ? name : luaL_typename(L, -1)));
  }
  lua_pop(L, 1);
  return dt;
}

static int64_t check_size(lua_State *L, int idx, lua_Integer v) {
  if (v < 0)
    luaL_argerror(L, idx, lua_pushfstring(L, "size must be >= 0, got %I", v));
  return (int64_t)v;
}

/* A shape whose element count (or a stride: zeros counted as ones) would
   overflow is the caller's error, named after the caller, rather than
   empty's when the core allocates. */
static int checked_count(lua_State *L, int idx, const int64_t *shape, int n) {
  int64_t count = 1;
  for (int i = 0; i < n; i++)
    if (shape[i] > 1 && (__builtin_mul_overflow(count, shape[i], &count) ||
                         count > INT64_MAX / 16))
      luaL_argerror(L, idx, "shape is too large (element count overflows)");
  return n;
}

int l_checkshape(lua_State *L, int idx, int64_t *shape, int *next) {
  int n = 0;
  if (lua_type(L, idx) == LUA_TTABLE && !l_isoptions(L, idx)) {
    lua_Unsigned len = lua_rawlen(L, idx);
    if (len > EMBER_MAX_DIMS)
      luaL_argerror(L, idx, lua_pushfstring(L, "at most %d dimensions are "
                    "supported, got %d", EMBER_MAX_DIMS, (int)len));
    for (lua_Unsigned i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i);
      int isint;
      lua_Integer v = lua_tointegerx(L, -1, &isint);
      if (!isint)
        luaL_argerror(L, idx, lua_pushfstring(L, "size %d must be an integer, "
                      "got %s", (int)i, luaL_typename(L, -1)));
      shape[n++] = check_size(L, idx, v);
      lua_pop(L, 1);
    }
    *next = idx + 1;
    return checked_count(L, idx, shape, n);
  }
  int i = idx;
  while (lua_type(L, i) == LUA_TNUMBER) {
    if (n == EMBER_MAX_DIMS)
      luaL_argerror(L, i, lua_pushfstring(L, "at most %d dimensions are "
                    "supported", EMBER_MAX_DIMS));
    shape[n++] = check_size(L, i, check_integer(L, i, "size"));
    i++;
  }
  if (!lua_isnoneornil(L, i) && !l_isoptions(L, i))
    luaL_typeerror(L, i, "size or options table");
  *next = i;
  return checked_count(L, idx, shape, n);
}

/* A tensor (borrowed) or NULL for a number/boolean; raises otherwise. */
static ember_tensor *check_operand(lua_State *L, int idx) {
  l_tensor *u = l_testtensor(L, idx);   /* the common case first */
  if (!u) {
    int ty = lua_type(L, idx);
    if (ty == LUA_TNUMBER || ty == LUA_TBOOLEAN) return NULL;
    luaL_typeerror(L, idx, "tensor or number");
  }
  if (!u->t) luaL_argerror(L, idx, "tensor has been closed");
  check_mapped(L, u->t);
  return u->t;
}

ember_tensor *l_operand(lua_State *L, int idx, const ember_tensor *other) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    ember_tensor *s;
    if (lua_isinteger(L, idx)) {
      lua_Integer v = lua_tointeger(L, idx);
      s = ember_scalar_like(other, (double)v, (int64_t)v, 1);
    } else {
      s = ember_scalar_like(other, lua_tonumber(L, idx), 0, 0);
    }
    if (!s) l_error(L);
    return s;
  }
  if (lua_type(L, idx) == LUA_TBOOLEAN) {
    ember_tensor *s = ember_scalar(lua_toboolean(L, idx), EMBER_BOOL);
    if (s && other && other->storage->device != EMBER_CPU) {  /* follows other */
      ember_tensor *m = ember_to_device(s, other->storage->device);
      ember_tensor_release(s);
      s = m;
    }
    if (!s) l_error(L);
    return s;
  }
  ember_tensor *t = check_operand(L, idx);
  ember_tensor_retain(t);
  return t;
}

/* }====================================================================== */

/* {======================================================================
** Tables <-> tensors
** ======================================================================= */

/* Walk the nested table at idx to find its shape (first elements). */
static int table_shape(lua_State *L, int idx, int64_t *shape, int *isbool) {
  int n = 0;
  lua_pushvalue(L, idx);
  for (;;) {
    if (lua_type(L, -1) != LUA_TTABLE) {
      *isbool = lua_type(L, -1) == LUA_TBOOLEAN;
      break;
    }
    if (n == EMBER_MAX_DIMS)
      luaL_error(L, "tensor: nested tables go deeper than %d dimensions",
                 EMBER_MAX_DIMS);
    shape[n++] = (int64_t)lua_rawlen(L, -1);
    if (shape[n - 1] == 0) { *isbool = 0; break; }
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return n;
}

/* Path like "[2][1]" for messages ("" names a scalar: "the value"). */
static const char *path_str(char *buf, size_t sz, const int64_t *pos, int depth) {
  size_t k = 0;
  snprintf(buf, sz, "%s", depth ? "" : "(the value)");
  for (int i = 0; i < depth && k < sz; i++)
    k += (size_t)snprintf(buf + k, sz - k, "[%lld]", (long long)pos[i] + 1);
  return buf;
}

typedef struct {
  ember_tensor *t;
  int inferred_bool;   /* the dtype came from the first element */
  char *data;
  int64_t next;      /* next element, in order */
  int64_t pos[EMBER_MAX_DIMS];
} fill_state;

static void store_value(lua_State *L, fill_state *fs, int depth) {
  char path[128];
  int64_t i = fs->next++;
  int type = lua_type(L, -1);
  ember_dtype dt = fs->t->dtype;
  if (type == LUA_TBOOLEAN) {
    if (dt != EMBER_BOOL)
      luaL_error(L, "tensor: element %s is a boolean in a %s tensor",
                 path_str(path, sizeof path, fs->pos, depth), ember_dtype_name(dt));
    fs->data[i] = (char)lua_toboolean(L, -1);
    return;
  }
  if (type != LUA_TNUMBER)
    luaL_error(L, "tensor: element %s is a %s, expected a number",
               path_str(path, sizeof path, fs->pos, depth), luaL_typename(L, -1));
  if (fs->inferred_bool)
    luaL_error(L, "tensor: element %s is a number in a table of booleans",
               path_str(path, sizeof path, fs->pos, depth));
  if (lua_isinteger(L, -1) && !ember_dtype_is_float(dt)) {
    lua_Integer v = lua_tointeger(L, -1);
    if ((dt == EMBER_INT32 && (v < INT32_MIN || v > INT32_MAX)) ||
        (dt == EMBER_UINT8 && (v < 0 || v > 255)))
      luaL_error(L, "tensor: element %s (%I) does not fit in dtype %s",
                 path_str(path, sizeof path, fs->pos, depth), v, ember_dtype_name(dt));
    switch (dt) {
      case EMBER_INT32: ((int32_t *)fs->data)[i] = (int32_t)(uint32_t)v; break;
      case EMBER_INT64: ((int64_t *)fs->data)[i] = v; break;
      case EMBER_UINT8: ((uint8_t *)fs->data)[i] = (uint8_t)v; break;
      default: ((uint8_t *)fs->data)[i] = v != 0; break;
    }
    return;
  }
  double v = lua_tonumber(L, -1);
  switch (dt) {
    case EMBER_FLOAT32: ((float *)fs->data)[i] = (float)v; break;
    case EMBER_FLOAT64: ((double *)fs->data)[i] = v; break;
    case EMBER_BFLOAT16:
      ((uint16_t *)fs->data)[i] = ember_f32_to_bf16((float)v);
      break;
    case EMBER_FLOAT16:
      ((uint16_t *)fs->data)[i] = ember_f32_to_f16((float)v);
      break;
    default:
      if (v != floor(v) || !isfinite(v))
        luaL_error(L, "tensor: element %s is %f, not an integer as dtype %s needs",
                   path_str(path, sizeof path, fs->pos, depth), (LUAI_UACNUMBER)v,
                   ember_dtype_name(dt));
      if (dt == EMBER_INT64) ((int64_t *)fs->data)[i] = (int64_t)v;
      else if (dt == EMBER_INT32) ((int32_t *)fs->data)[i] = (int32_t)v;
      else if (dt == EMBER_UINT8) ((uint8_t *)fs->data)[i] = (uint8_t)v;
      else ((uint8_t *)fs->data)[i] = v != 0;
  }
}

/* Copy the nested table on top of the stack, checking it is rectangular. */
static void fill_from_table(lua_State *L, fill_state *fs, int depth) {
  const ember_tensor *t = fs->t;
  char path[128];
  if (depth == t->ndim) { store_value(L, fs, depth); return; }
  if (lua_type(L, -1) != LUA_TTABLE)
    luaL_error(L, "tensor: element %s is a %s, expected a table of length %d",
               path_str(path, sizeof path, fs->pos, depth), luaL_typename(L, -1),
               (int)t->shape[depth]);
  if ((int64_t)lua_rawlen(L, -1) != t->shape[depth])
    luaL_error(L, "tensor: table %s has length %d, expected %d (rows must "
               "have equal lengths)", depth ? path_str(path, sizeof path, fs->pos, depth) : "at top",
               (int)lua_rawlen(L, -1), (int)t->shape[depth]);
  luaL_checkstack(L, 2, "tensor: nested too deeply");
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    fs->pos[depth] = i;
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    fill_from_table(L, fs, depth + 1);
    lua_pop(L, 1);
  }
}

/* {requires_grad = true} in the options at idx: set it on the tensor at
   the top of the stack (the result just pushed). */
void l_opt_requires_grad(lua_State *L, int idx) {
  if (!l_isoptions(L, idx)) return;
  int type = lua_getfield(L, idx, "requires_grad");
  if (type != LUA_TNIL && type != LUA_TBOOLEAN)
    luaL_argerror(L, idx, lua_pushfstring(L, "requires_grad must be a boolean, "
                  "got %s", lua_typename(L, type)));
  int on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (on && ember_set_requires_grad(l_check(L, -1), 1) < 0) l_error(L);
}

/* ember.tensor(data [, {dtype=, requires_grad=}]) */
static int l_tensor_new(lua_State *L) {
  ember_dtype def = EMBER_FLOAT32;
  int64_t shape[EMBER_MAX_DIMS];
  int ndim = 0, isbool = 0;
  ember_tensor *src = ember_lua_totensor(L, 1);
  if (src) {
    ember_dtype dt = l_optdtype_field(L, 2, src->dtype);
    l_tensor *slot = l_newslot(L);
    int prev = ember_is_grad_enabled();   /* a new leaf: a copy, detached */
    ember_set_grad_enabled(0);
    ember_tensor *c = ember_to_dtype(src, dt);
    ember_set_grad_enabled(prev);
    l_fill(L, slot, c);
    l_opt_place(L, 2, src->storage->device);
    l_opt_requires_grad(L, 2);
    return 1;
  }
  switch (lua_type(L, 1)) {
    case LUA_TTABLE: ndim = table_shape(L, 1, shape, &isbool); break;
    case LUA_TNUMBER: break;
    case LUA_TBOOLEAN: isbool = 1; break;
    default: return luaL_typeerror(L, 1, "table, number, boolean or tensor");
  }
  if (isbool) def = EMBER_BOOL;
  ember_dtype dt = l_optdtype_field(L, 2, def);
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_empty(ndim, shape, dt));
  fill_state fs = {slot->t, isbool && dt == EMBER_BOOL && !l_isoptions(L, 2),
                   ember_data(slot->t), 0, {0}};
  lua_pushvalue(L, 1);
  fill_from_table(L, &fs, 0);
  lua_pop(L, 1);
  l_opt_place(L, 2, EMBER_CPU);
  l_opt_requires_grad(L, 2);
  return 1;
}

static void push_element(lua_State *L, const ember_tensor *t,
                         const int64_t *index) {
  if (ember_dtype_is_float(t->dtype)) {
    double v;
    if (ember_get(t, index, &v) < 0) l_error(L);
    lua_pushnumber(L, v);
  } else {
    int64_t v;
    if (ember_get_int(t, index, &v) < 0) l_error(L);
    if (t->dtype == EMBER_BOOL) lua_pushboolean(L, v != 0);
    else lua_pushinteger(L, v);
  }
}

static void totable_rec(lua_State *L, const ember_tensor *t, int64_t *index,
                        int depth) {
  if (depth == t->ndim) { push_element(L, t, index); return; }
  luaL_checkstack(L, 3, "totable");
  lua_createtable(L, (int)t->shape[depth], 0);
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    index[depth] = i;
    totable_rec(L, t, index, depth + 1);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int l_totable(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int64_t index[EMBER_MAX_DIMS] = {0};
  if (t->storage->device != EMBER_CPU) {   /* one transfer, not one per element */
    l_fill(L, l_newslot(L), ember_to_device(t, EMBER_CPU));
    t = l_check(L, -1);
  }
  totable_rec(L, t, index, 0);
  return 1;
}

static int l_item(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (ember_numel(t) != 1) {
    double d;
    ember_item(t, &d);
    return l_error(L);
  }
  int64_t zero[EMBER_MAX_DIMS] = {0};   /* a one-element tensor's index */
  push_element(L, t, zero);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Indexing: t[i] and t[i] = v (1-based, negative from the end)
** ======================================================================= */

/* Position i (1-based, negative from the end) of dim d (0-based) of size
   `size`, made 0-based; t[i]'s error, which every slicing bound shares. */
static int64_t key_position(lua_State *L, lua_Integer i, int d, int64_t size) {
  lua_Integer n = (lua_Integer)size;
  if (i == 0 || i > n || i < -n)
    luaL_error(L, "index: index %I is out of range for dimension %d of size %I",
               i, d + 1, n);
  return i > 0 ? i - 1 : n + i;
}

static int64_t check_index(lua_State *L, const ember_tensor *t, int idx) {
  if (t->ndim == 0) luaL_error(L, "index: cannot index a 0-d tensor (use item)");
  int isint;
  lua_Integer i = lua_tointegerx(L, idx, &isint);
  if (!isint)
    luaL_error(L, "index: index must be an integer, got %s %s",
               luaL_typename(L, idx), luaL_tolstring(L, idx, NULL));
  return key_position(L, i, 0, t->shape[0]);
}

/* {======================================================================
** Slicing: t[{ ... }], t[index], t[mask] and their writes
** ======================================================================= */

/* Number j of entry k (a table at `tab`): an integer or an error. */
static lua_Integer range_number(lua_State *L, int tab, int j, int k) {
  lua_geti(L, tab, j);
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint)
    luaL_error(L, "index: entry %d: range bounds and steps must be integers, "
               "got %s", k + 1, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* An int64 (or int32) 1-d index tensor at e, for entry k (0-based). */
static const ember_tensor *index_entry(lua_State *L, int e, int k) {
  l_tensor *u = l_testtensor(L, e);
  if (!u)
    luaL_error(L, "index: entry %d must be an integer, a table or an int64 "
               "index tensor, got %s", k + 1, luaL_typename(L, e));
  if (!u->t) luaL_error(L, "index: entry %d is a closed tensor", k + 1);
  if (u->t->dtype == EMBER_BOOL)
    luaL_error(L, "index: entry %d is a bool tensor; a mask must be the whole "
               "key (t[mask])", k + 1);
  if (u->t->dtype != EMBER_INT64 && u->t->dtype != EMBER_INT32)
    luaL_error(L, "index: entry %d is a %s tensor; index tensors must be "
               "int64", k + 1, ember_dtype_name(u->t->dtype));
  if (u->t->ndim != 1)
    luaL_error(L, "index: entry %d: an index tensor must be 1-d, got %d-d",
               k + 1, u->t->ndim);
  return u->t;
}

/* Entry k of a key (the value at e) for dim k of t: an integer, {}, {i},
   {first, last}, {first, last, step} (1-based, inclusive, negative from
   the end) or an index tensor. */
static void parse_entry(lua_State *L, int e, int k, const ember_tensor *t,
                        ember_key *key) {
  int64_t size = t->shape[k];
  key->index = NULL;
  if (lua_type(L, e) == LUA_TNUMBER) {
    int isint;
    lua_Integer i = lua_tointegerx(L, e, &isint);
    if (!isint)
      luaL_error(L, "index: entry %d must be an integer, got %s", k + 1,
                 lua_tostring(L, e));
    key->kind = EMBER_KEY_AT;
    key->start = key_position(L, i, k, size);
    return;
  }
  if (lua_type(L, e) != LUA_TTABLE) {
    key->kind = EMBER_KEY_INDEX;
    key->index = index_entry(L, e, k);
    return;
  }
  lua_Unsigned len = lua_rawlen(L, e);
  if (len == 0) { key->kind = EMBER_KEY_ALL; return; }
  if (len > 3)
    luaL_error(L, "index: entry %d has %d numbers; expected {}, {i}, "
               "{first, last} or {first, last, step}", k + 1, (int)len);
  lua_Integer a = range_number(L, e, 1, k);
  lua_Integer b = len >= 2 ? range_number(L, e, 2, k) : a;
  lua_Integer step = len == 3 ? range_number(L, e, 3, k) : 1;
  if (step <= 0)
    luaL_error(L, "index: entry %d: step must be positive, got %I", k + 1, step);
  int64_t first = key_position(L, a, k, size), last = key_position(L, b, k, size);
  if (last < first - 1)
    luaL_error(L, "index: entry %d: range {%I, %I} ends before it starts in "
               "dimension %d of size %I", k + 1, a, b, k + 1, (lua_Integer)size);
  key->kind = EMBER_KEY_RANGE;
  key->start = first;
  key->stop = last + 1;
  key->step = step;
}

/* The key at idx (a table, or an index tensor alone) into keys; returns
   their number.  Raises before anything is allocated. */
static int parse_key(lua_State *L, int idx, const ember_tensor *t,
                     ember_key *keys) {
  if (lua_type(L, idx) != LUA_TTABLE) {
    if (t->ndim == 0) luaL_error(L, "index: cannot index a 0-d tensor with a tensor");
    parse_entry(L, idx, 0, t, &keys[0]);
    return 1;
  }
  lua_Unsigned n = lua_rawlen(L, idx);
  if (n > (lua_Unsigned)t->ndim)
    luaL_error(L, "index: too many indices (%I) for a %d-d tensor",
               (lua_Integer)n, t->ndim);
  luaL_checkstack(L, 2, "index");
  for (int k = 0; k < (int)n; k++) {
    lua_geti(L, idx, k + 1);
    parse_entry(L, lua_gettop(L), k, t, &keys[k]);
    lua_pop(L, 1);    /* an index tensor stays alive in the key table */
  }
  return (int)n;
}

/* Is the value at idx a bool tensor (a mask key)? */
static int is_mask(lua_State *L, int idx) {
  l_tensor *u = l_testtensor(L, idx);
  return u && u->t && u->t->dtype == EMBER_BOOL;
}

/* t[mask] and t[mask] = v go to the masked ops by method name:
   masked_select, masked_fill_, masked_scatter_.  Calls t:method(mask [, v])
   with t, mask (and v) at 1, 2 (and 3). */
static int mask_call(lua_State *L, const char *method, int nargs) {
  lua_getfield(L, 1, method);
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "index: indexing with a bool mask needs t:%s, which "
                      "this build lacks", method);
  lua_insert(L, 1);
  lua_call(L, nargs, 1);
  return 1;
}

/* t[key] for a table or tensor key */
static int slice_read(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (is_mask(L, 2)) {
    lua_settop(L, 2);
    return mask_call(L, "masked_select", 2);
  }
  ember_key keys[EMBER_MAX_DIMS];
  int n = parse_key(L, 2, t, keys);
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_slice_get(t, n, keys));
  return 1;
}

/* t[key] = v for a table or tensor key: a number fills, a tensor is
   copied (broadcast); an integer into an integer tensor goes exactly */
static int slice_write(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int vt = lua_type(L, 3);
  ember_tensor *src = vt == LUA_TNUMBER || vt == LUA_TBOOLEAN
                          ? NULL : ember_lua_totensor(L, 3);
  if (!src && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN)
    return luaL_typeerror(L, 3, "number or tensor");
  if (is_mask(L, 2)) {
    lua_settop(L, 3);
    if (src && src->ndim == 0) {      /* a 0-d value fills, as PyTorch */
      double v;
      if (ember_item(src, &v) < 0) return l_error(L);
      lua_pushnumber(L, v);
      lua_replace(L, 3);
      src = NULL;
    }
    mask_call(L, src ? "masked_scatter_" : "masked_fill_", 3);
    return 0;
  }
  ember_key keys[EMBER_MAX_DIMS];
  int n = parse_key(L, 2, t, keys);
  int rc;
  if (src) {
    rc = ember_slice_set_(t, n, keys, src);
  } else if (lua_isinteger(L, 3) && !ember_dtype_is_float(t->dtype)) {
    ember_tensor *s = ember_scalar_int(lua_tointeger(L, 3), t->dtype);
    rc = s ? ember_slice_set_(t, n, keys, s) : -1;
    ember_tensor_release(s);
  } else {
    rc = ember_slice_fill_(t, n, keys, vt == LUA_TBOOLEAN ? lua_toboolean(L, 3)
                                                          : lua_tonumber(L, 3));
  }
  return rc < 0 ? l_error(L) : 0;
}

/* }====================================================================== */

static int t_index(lua_State *L) {
  l_tensor *u = l_testtensor(L, 1);
  if (!u) return luaL_typeerror(L, 1, "tensor");
  if (u->t) check_mapped(L, u->t);       /* t:method() and t.field */
  if (lua_type(L, 2) == LUA_TSTRING) {
    /* methods first: the common case of t:method() */
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    const char *k = lua_tostring(L, 2);
    if (!u->t) return luaL_error(L, "tensor has been closed");
    if (strcmp(k, "dtype") == 0) {
      lua_pushstring(L, ember_dtype_name(u->t->dtype));
      return 1;
    }
    if (strcmp(k, "device") == 0) {
      lua_pushstring(L, ember_device_name(u->t->storage->device));
      return 1;
    }
    if (strcmp(k, "grad") == 0) {
      ember_tensor *g = ember_grad(u->t);
      if (!g) { lua_pushnil(L); return 1; }
      l_tensor *slot = l_newslot(L);   /* may raise: retain after it */
      ember_tensor_retain(g);
      l_fill(L, slot, g);
      return 1;
    }
    if (strcmp(k, "requires_grad") == 0) {
      lua_pushboolean(L, ember_requires_grad(u->t));
      return 1;
    }
    if (strcmp(k, "is_leaf") == 0) {
      lua_pushboolean(L, ember_is_leaf(u->t));
      return 1;
    }
    if (strcmp(k, "grad_fn") == 0) {
      const char *name = ember_grad_fn_name(u->t);
      if (name) lua_pushstring(L, name); else lua_pushnil(L);
      return 1;
    }
    /* further fields live in the Lua library's table */
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(2));
    if (lua_isfunction(L, -1)) {
      lua_pushvalue(L, 1);
      lua_call(L, 1, 1);
    }
    return 1;
  }
  if (lua_type(L, 2) == LUA_TTABLE || lua_type(L, 2) == LUA_TUSERDATA)
    return slice_read(L);
  ember_tensor *t = l_check(L, 1);
  int64_t i = check_index(L, t, 2);
  if (t->ndim == 1) {
    push_element(L, t, &i);
    return 1;
  }
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_select(t, 0, i));
  return 1;
}

static int t_newindex(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    if (strcmp(k, "grad") == 0) {
      ember_tensor *g = NULL;
      if (!lua_isnil(L, 3) && !(g = ember_lua_totensor(L, 3)))
        return luaL_error(L, "grad: expected a tensor or nil, got %s",
                          luaL_typename(L, 3));
      return ember_set_grad(t, g) < 0 ? l_error(L) : 0;
    }
    if (strcmp(k, "requires_grad") == 0) {
      if (!lua_isboolean(L, 3))
        return luaL_error(L, "requires_grad: expected a boolean, got %s",
                          luaL_typename(L, 3));
      return ember_set_requires_grad(t, lua_toboolean(L, 3)) < 0 ? l_error(L) : 0;
    }
    return luaL_error(L, "cannot set field '%s' of a tensor", k);
  }
  if (lua_type(L, 2) == LUA_TTABLE || lua_type(L, 2) == LUA_TUSERDATA)
    return slice_write(L);
  int64_t i = check_index(L, t, 2);
  ember_tensor *row = ember_select(t, 0, i);
  if (!row) return l_error(L);
  int rc;
  if (lua_type(L, 3) == LUA_TNUMBER || lua_type(L, 3) == LUA_TBOOLEAN) {
    double v = lua_type(L, 3) == LUA_TBOOLEAN ? lua_toboolean(L, 3)
                                               : lua_tonumber(L, 3);
    if (lua_isinteger(L, 3) && !ember_dtype_is_float(t->dtype)) {
      ember_tensor *s = ember_scalar_int(lua_tointeger(L, 3), t->dtype);
      rc = s ? ember_copy_(row, s) : -1;
      ember_tensor_release(s);
    } else {
      rc = ember_fill_(row, v);
    }
  } else {
    ember_tensor *src = ember_lua_totensor(L, 3);
    if (!src) {
      ember_tensor_release(row);
      return luaL_typeerror(L, 3, "number or tensor");
    }
    rc = ember_copy_(row, src);
  }
  ember_tensor_release(row);
  if (rc < 0) return l_error(L);
  return 0;
}

static int t_len(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "len: a 0-d tensor has no length");
  lua_pushinteger(L, (lua_Integer)t->shape[0]);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Arithmetic metamethods: numbers on either side
** ======================================================================= */

/*
** The fast lane of l_arith: two live tensors in the state that holds the
** shortcuts (see fast_mt).  The metatable that the first operand's check
** pushes is the one the result gets, so no lookup at all; this is most of
** what `a + b` costs the bindings.  Returns 0 otherwise, the stack cut to
** the two operands at most.
*/
static int arith_fast(lua_State *L, ember_binary_op op) {
  const void *mt = atomic_load_explicit(&fast_mt, memory_order_relaxed);
  if (!mt || lua_type(L, 1) != LUA_TUSERDATA || lua_type(L, 2) != LUA_TUSERDATA)
    return 0;
  lua_settop(L, 2);
  if (!lua_getmetatable(L, 1)) return 0;                  /* a b mt */
  if (lua_topointer(L, 3) != mt || !lua_getmetatable(L, 2) ||
      lua_topointer(L, 4) != mt) {
    lua_settop(L, 2);
    return 0;
  }
  lua_settop(L, 3);
  l_tensor *ua = lua_touserdata(L, 1), *ub = lua_touserdata(L, 2);
  /* closed, or a mapped file has ever shrunk: the general path checks */
  if (!ua->t || !ub->t || ember_mapping_faults() != 0) {
    lua_settop(L, 2);
    return 0;
  }
  l_tensor *slot = lua_newuserdatauv(L, sizeof *slot, 0);
  slot->t = NULL;
  lua_pushvalue(L, 3);
  lua_setmetatable(L, 4);
  l_fill(L, slot, ember_binary(op, ua->t, ub->t));
  return 1;
}

/* a op b for the metamethods and ember.add & co.: both operands are checked
   before either is converted, and the one conversion (which raises for a
   number the tensor's dtype cannot hold, u8 + 1000) runs before anything
   is held, so an error cannot leak a reference.  Two tensors (the common
   case) take no detour through l_operand. */
int l_arith(lua_State *L, ember_binary_op op) {
  if (arith_fast(L, op)) return 1;
  ember_tensor *ta = check_operand(L, 1), *tb = check_operand(L, 2);
  if (!ta && !tb) return luaL_error(L, "arithmetic needs at least one tensor");
  l_tensor *slot = l_newslot(L);
  ember_tensor *r;
  if (ta && tb) {
    r = ember_binary(op, ta, tb);
  } else {
    ember_tensor *n = ta ? l_operand(L, 2, ta) : l_operand(L, 1, tb);
    r = ta ? ember_binary(op, ta, n) : ember_binary(op, n, tb);
    ember_tensor_release(n);
  }
  l_fill(L, slot, r);
  return 1;
}

static int t_add(lua_State *L) { return l_arith(L, EMBER_ADD); }
static int t_sub(lua_State *L) { return l_arith(L, EMBER_SUB); }
static int t_mul(lua_State *L) { return l_arith(L, EMBER_MUL); }
static int t_div(lua_State *L) { return l_arith(L, EMBER_DIV); }
static int t_pow(lua_State *L) { return l_arith(L, EMBER_POW); }

static int t_unm(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_unary(EMBER_NEG, t));
  return 1;
}

/* }====================================================================== */

static int t_tostring_fallback(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  char b[128];
  lua_pushfstring(L, "tensor(%s, %s)", ember_dtype_name(t->dtype),
                  ember_shape_str(b, sizeof b, t->ndim, t->shape));
  return 1;
}

static const luaL_Reg tensor_meta[] = {
  {"__newindex", t_newindex},
  {"__len", t_len},
  {"__add", t_add},
  {"__sub", t_sub},
  {"__mul", t_mul},
  {"__div", t_div},
  {"__pow", t_pow},
  {"__unm", t_unm},
  {"__gc", t_gc},
  {"__close", t_gc},
  {"__tostring", t_tostring_fallback},
  {NULL, NULL},
};

static const luaL_Reg tensor_funcs[] = {
  {"tensor", l_tensor_new},
  {NULL, NULL},
};

static const luaL_Reg tensor_methods[] = {
  {"totable", l_totable},
  {"item", l_item},
  {NULL, NULL},
};

/*
** With the module table at -2 and the method table at -1: create the
** metatable (its __index closes over the methods and a table of computed
** fields that the Lua library may extend), register functions.
*/
void l_register_tensor(lua_State *L) {
  l_ctx(L);                              /* the state's context, kept if there */
  int methods = lua_gettop(L), module = methods - 1;
  luaL_newmetatable(L, EMBER_TENSOR_MT);
  int mt = lua_gettop(L);
  lua_pushvalue(L, mt);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &mt_key);
  setup_fast_mt(L, mt);
  luaL_setfuncs(L, tensor_meta, 0);
  lua_pushvalue(L, methods);
  lua_setfield(L, mt, "__methods");
  lua_newtable(L);                       /* computed fields */
  lua_pushvalue(L, -1);
  lua_setfield(L, mt, "__fields");
  lua_pushvalue(L, methods);
  lua_insert(L, -2);
  lua_pushcclosure(L, t_index, 2);
  lua_setfield(L, mt, "__index");
  lua_pushvalue(L, mt);
  lua_setfield(L, module, "_tensor_mt");
  lua_pop(L, 1);
  lua_pushvalue(L, module);
  luaL_setfuncs(L, tensor_funcs, 0);
  lua_pop(L, 1);
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, tensor_methods, 0);
  lua_pop(L, 1);
  /* methods are module functions too: ember.totable(t) */
  lua_pushvalue(L, module);
  luaL_setfuncs(L, tensor_methods, 0);
  lua_pop(L, 1);
}
