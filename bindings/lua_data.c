/*
** lua_data.c -- what lua/ember/data.lua needs from the core (IDX files,
** random permutations), the generators, and sampling.
**
**   ember._read_idx(path)            an IDX file as stored (data.read_idx)
**   ember._read_image(path, c, h, w) one image, float32 c x h x w
**   ember._read_images(paths, c, h, w)  a batch, float32 n x c x h x w
**   ember._listdir(path)             sorted entry names and which are dirs
**   ember.randperm(n [, opts])       a permutation of 1..n, int64 default
**   ember.get_rng_state()            {seed = int, offset = int}
**   ember.set_rng_state(state)       put a state from get_rng_state back
**   ember.Generator([seed])          a generator object of one's own
**   ember.default_generator          the state's generator as such an object
**   ember.multinomial(probs, n [, opts]), t:uniform_, t:normal_
**   ember._bpe_load(vocab, merges), ember._bpe_train(text, size, min_freq)
**                                    GPT-2's BPE tokenizer (data.BPE) and
**                                    its methods encode, decode, save
**
** Every random function takes {generator = g} in its options (l_optgen);
** without one it draws from the state's generator.
**
** The seed and the offset are uint64 in the core and Lua integers here:
** values past 2^63 travel as the same 64 bits (negative integers), so a
** state always round-trips.
*/
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua_internal.h"

/* Edit distance of a and b, or 3 when it is more than 2 (all the caller
   asks) or a word is too long to measure here. */
static size_t edit_distance(const char *a, const char *b) {
  enum { MAXLEN = 63 };
  size_t na = strlen(a), nb = strlen(b);
  size_t row[MAXLEN + 1];
  if (na > MAXLEN || nb > MAXLEN) return 3;
  for (size_t j = 0; j <= nb; j++) row[j] = j;
  for (size_t i = 1; i <= na; i++) {
    size_t diag = row[0];   /* row[i-1][j-1] */
    row[0] = i;
    for (size_t j = 1; j <= nb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[nb] > 3 ? 3 : row[nb];
}

const char *l_suggest(const char *key, const char *const *known) {
  const char *best = NULL;
  size_t bd = 0, nk = strlen(key);
  for (int i = 0; known[i]; i++) {
    size_t d = edit_distance(key, known[i]), nn = strlen(known[i]);
    int near = d <= 2 && d < nk && d < nn;
    int prefix = nk >= 2 && strncmp(key, known[i], nk < nn ? nk : nn) == 0;
    if ((near || prefix) && (!best || d < bd)) best = known[i], bd = d;
  }
  return best;
}

void l_check_keys(lua_State *L, int idx, const char *fn,
                  const char *what, const char *const *known) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (int i = 0; k && known[i] && !ok; i++) ok = strcmp(k, known[i]) == 0;
    if (!ok) {
      const char *near = k ? l_suggest(k, known) : NULL;
      luaL_error(L, "%s: unknown %s '%s'%s%s%s", fn, what, luaL_tolstring(L, -1, NULL),
                 near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    }
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

/* ember._read_image(path, channels, h, w): internal (data.read_image);
   h = w = 0 keeps the image's size */
static int l_read_image(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (strlen(path) != len)
    return luaL_error(L, "read_image: the file name contains a zero byte");
  int c = (int)luaL_checkinteger(L, 2);
  int64_t h = luaL_checkinteger(L, 3), w = luaL_checkinteger(L, 4);
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_read_image_chw(path, c, h, w));
  return 1;
}

/* ember._read_images({path, ...}, channels, h, w): internal (the batches
   of data.image_folder); the paths are checked strings */
static int l_read_images(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  int c = (int)luaL_checkinteger(L, 2);
  int64_t shape[4] = {n, c, luaL_checkinteger(L, 3), luaL_checkinteger(L, 4)};
  /* the strings stay referenced by the table, which stays on the stack */
  const char **paths = lua_newuserdatauv(L, sizeof *paths * (size_t)(n ? n : 1), 0);
  for (lua_Integer i = 0; i < n; i++) {
    /* a string only: a number converted here would be a new string that
       nothing keeps alive after the pop */
    if (lua_geti(L, 1, i + 1) != LUA_TSTRING)
      return luaL_error(L, "read_image: path %d is not a string", (int)i + 1);
    paths[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_empty(4, shape, EMBER_FLOAT32));
  if (ember_read_images(slot->t, paths, n) < 0) l_error(L);
  return 1;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ember._listdir(path) -> {name, ...} sorted bytewise (as Python's
   sorted), {name = true} for those that are directories; or nil, message */
static int l_listdir(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  DIR *d = opendir(dir);
  if (!d) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_newtable(L);   /* names, unsorted */
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  const char **names = lua_newuserdatauv(L, sizeof *names * (size_t)(n ? n : 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    names[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  lua_createtable(L, n, 0);   /* sorted */
  lua_newtable(L);            /* dirs */
  luaL_Buffer b;
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -3, i + 1);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, dir);
    luaL_addchar(&b, '/');
    luaL_addstring(&b, names[i]);
    luaL_pushresult(&b);
    struct stat st;
    if (stat(lua_tostring(L, -1), &st) == 0 && S_ISDIR(st.st_mode)) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -3, names[i]);
    }
    lua_pop(L, 1);
  }
  return 2;
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
    static const char *const known[] = {"dtype", "device", "generator", NULL};
    l_check_keys(L, 2, "randperm", "option", known);
    dt = l_optdtype_field(L, 2, EMBER_INT64);
  }
  ember_generator *g = l_optgen(L, 2);
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_randperm_gen(g, (int64_t)n, dt));
  l_opt_place(L, 2, EMBER_CPU);
  return 1;
}

/* {======================================================================
** Generators
** ======================================================================= */

#define GENERATOR_MT "ember.Generator"

/* A generator object: g is its own `own`, or the state's generator for
   ember.default_generator (the context lives as long as the state). */
typedef struct {
  ember_generator *g;
  ember_generator own;
} l_generator;

static ember_generator *check_gen(lua_State *L, int idx) {
  return ((l_generator *)luaL_checkudata(L, idx, GENERATOR_MT))->g;
}

ember_generator *l_optgen(lua_State *L, int idx) {
  if (!l_isoptions(L, idx)) return l_gen(L);
  lua_getfield(L, idx, "generator");
  ember_generator *g = l_gen(L);
  if (!lua_isnil(L, -1)) {
    l_generator *u = luaL_testudata(L, -1, GENERATOR_MT);
    if (!u)
      luaL_error(L, "generator: expected an ember.Generator, got %s",
                 luaL_typename(L, -1));
    g = u->g;
  }
  lua_pop(L, 1);
  return g;
}

static void push_state(lua_State *L, const ember_generator *g) {
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)g->seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)g->offset);
  lua_setfield(L, -2, "offset");
}

/* One integer field of the state table at idx. */
static uint64_t state_field(lua_State *L, int idx, const char *fn,
                            const char *key) {
  lua_getfield(L, idx, key);
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint || lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "%s: state.%s must be an integer, got %s", fn, key,
               lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                              : luaL_typename(L, -1));
  lua_pop(L, 1);
  return (uint64_t)v;
}

/* g = the state table at idx {seed = s, offset = o}: both read before
   either is set, so a bad state changes nothing */
static void set_state(lua_State *L, int idx, const char *fn,
                      ember_generator *g) {
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "%s: expected a table {seed = integer, offset = integer} "
                  "(from get_rng_state), got %s", fn, luaL_typename(L, idx));
  static const char *const known[] = {"seed", "offset", NULL};
  l_check_keys(L, idx, fn, "field", known);
  uint64_t seed = state_field(L, idx, fn, "seed");
  uint64_t offset = state_field(L, idx, fn, "offset");
  g->seed = seed;
  g->offset = offset;
}

static int l_get_rng_state(lua_State *L) {
  push_state(L, l_gen(L));
  return 1;
}

static int l_set_rng_state(lua_State *L) {
  set_state(L, 1, "set_rng_state", l_gen(L));
  return 0;
}

/* ember.Generator([seed]): PyTorch's default seed when none is given */
static int l_generator_new(lua_State *L) {
  uint64_t seed = EMBER_DEFAULT_SEED;
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    lua_Integer v = lua_tointegerx(L, 1, &isint);
    if (!isint)
      return luaL_error(L, "Generator: seed must be an integer, got %s",
                        lua_type(L, 1) == LUA_TNUMBER ? lua_tostring(L, 1)
                                                      : luaL_typename(L, 1));
    seed = (uint64_t)v;
  }
  l_generator *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->g = &u->own;
  ember_generator_seed(u->g, seed);
  luaL_setmetatable(L, GENERATOR_MT);
  return 1;
}

static int g_manual_seed(lua_State *L) {
  ember_generator *g = check_gen(L, 1);
  int isint;
  lua_Integer v = lua_tointegerx(L, 2, &isint);
  if (!isint)
    return luaL_error(L, "manual_seed: seed must be an integer, got %s",
                      lua_type(L, 2) == LUA_TNUMBER ? lua_tostring(L, 2)
                                                    : luaL_typename(L, 2));
  ember_generator_seed(g, (uint64_t)v);
  lua_settop(L, 1);
  return 1;
}

static int g_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_gen(L, 1)->seed);
  return 1;
}

static int g_get_state(lua_State *L) {
  push_state(L, check_gen(L, 1));
  return 1;
}

static int g_set_state(lua_State *L) {
  set_state(L, 2, "set_state", check_gen(L, 1));
  lua_settop(L, 1);
  return 1;
}

static int g_tostring(lua_State *L) {
  const ember_generator *g = check_gen(L, 1);
  lua_pushfstring(L, "Generator(seed=%I, offset=%I)", (lua_Integer)g->seed,
                  (lua_Integer)g->offset);
  return 1;
}

static const luaL_Reg generator_methods[] = {
  {"manual_seed", g_manual_seed},
  {"initial_seed", g_initial_seed},
  {"get_state", g_get_state},
  {"set_state", g_set_state},
  {NULL, NULL},
};

/* The metatable, and ember.default_generator into the table at -1. */
static void register_generator(lua_State *L) {
  luaL_newmetatable(L, GENERATOR_MT);
  lua_pushcfunction(L, g_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, generator_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  l_generator *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->g = l_gen(L);
  luaL_setmetatable(L, GENERATOR_MT);
  lua_setfield(L, -2, "default_generator");
}

/* }====================================================================== */

/* {======================================================================
** Sampling and in-place fills
** ======================================================================= */

/* The options table at idx (or none) of fn, with its known keys. */
static void check_opts(lua_State *L, int idx, const char *fn,
                       const char *const *known) {
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    luaL_error(L, "%s: expected an options table, got %s", fn,
               luaL_typename(L, idx));
  l_check_keys(L, idx, fn, "option", known);
}

/* ember.multinomial(probs, n [, {replacement = false, generator = g}]) */
static int l_multinomial(lua_State *L) {
  ember_tensor *p = l_check(L, 1);
  int isint;
  lua_Integer n = lua_tointegerx(L, 2, &isint);
  if (!isint)
    return luaL_error(L, "multinomial: num_samples must be an integer, got %s",
                      lua_type(L, 2) == LUA_TNUMBER ? lua_tostring(L, 2)
                                                    : luaL_typename(L, 2));
  static const char *const known[] = {"replacement", "generator", NULL};
  check_opts(L, 3, "multinomial", known);
  int repl = 0;
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_getfield(L, 3, "replacement");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
      return luaL_error(L, "multinomial: replacement must be a boolean, got %s",
                        luaL_typename(L, -1));
    repl = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  ember_generator *g = l_optgen(L, 3);
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_multinomial_gen(g, p, (int64_t)n, repl));
  return 1;
}

/* t:uniform_([a = 0, b = 1] [, opts]), t:normal_([mean = 0, std = 1]
   [, opts]): t itself, filled from the generator */
static int fill_(lua_State *L, int normal) {
  const char *fn = normal ? "normal_" : "uniform_";
  ember_tensor *t = l_check(L, 1);
  int opt = 2;
  double a = 0, b = 1;
  if (lua_type(L, 2) == LUA_TNUMBER) { a = lua_tonumber(L, 2); opt = 3; }
  if (lua_type(L, 3) == LUA_TNUMBER) { b = lua_tonumber(L, 3); opt = 4; }
  static const char *const known[] = {"generator", NULL};
  check_opts(L, opt, fn, known);
  if (normal ? !(b >= 0) : !(a <= b))
    return luaL_error(L, normal ? "%s: std must be >= 0, got %f"
                                : "%s: expected a <= b, got %f > %f",
                      fn, normal ? b : a, b);
  ember_generator *g = l_optgen(L, opt);
  if ((normal ? ember_normal_gen_(g, t, a, b) : ember_uniform_gen_(g, t, a, b)) < 0)
    return l_error(L);
  lua_settop(L, 1);
  return 1;
}
static int l_uniform_(lua_State *L) { return fill_(L, 0); }
static int l_normal_(lua_State *L) { return fill_(L, 1); }

/* }====================================================================== */

/* {======================================================================
** Byte-level BPE tokenizer (core/bpe.c); ember.data.BPE in data.lua
** ======================================================================= */

#define BPE_MT "ember.BPE"

typedef struct { ember_bpe *b; } l_bpe;

static ember_bpe *check_bpe(lua_State *L, int idx, const char *fn) {
  l_bpe *u = luaL_testudata(L, idx, BPE_MT);
  if (!u || !u->b)
    luaL_error(L, "%s: expected a BPE tokenizer, got %s", fn,
               luaL_typename(L, idx));
  return u->b;
}

/* A path argument without zero bytes. */
static const char *check_path(lua_State *L, int idx, const char *fn,
                              const char *what) {
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "%s: %s must be a string, got %s", fn, what,
               luaL_typename(L, idx));
  size_t len;
  const char *p = lua_tolstring(L, idx, &len);
  if (strlen(p) != len)
    luaL_error(L, "%s: %s contains a zero byte", fn, what);
  return p;
}

static void push_bpe(lua_State *L, ember_bpe *b) {
  if (!b) l_error(L);
  l_bpe *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->b = b;
  luaL_setmetatable(L, BPE_MT);
}

/* ember._bpe_load(vocab_path, merges_path) */
static int l_bpe_load(lua_State *L) {
  const char *v = check_path(L, 1, "BPE", "vocab_path");
  const char *m = check_path(L, 2, "BPE", "merges_path");
  push_bpe(L, ember_bpe_load(v, m));
  return 1;
}

/* ember._bpe_train(text, vocab_size, min_frequency): data.lua checks */
static int l_bpe_train(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  push_bpe(L, ember_bpe_train(text, n, luaL_checkinteger(L, 2),
                              luaL_checkinteger(L, 3)));
  return 1;
}

/* tok:encode(text [, {special = true}]) -> int64 tensor of ids */
static int bpe_encode(lua_State *L) {
  ember_bpe *b = check_bpe(L, 1, "encode");
  if (lua_type(L, 2) != LUA_TSTRING)
    return luaL_error(L, "encode: text must be a string, got %s",
                      luaL_typename(L, 2));
  static const char *const known[] = {"special", NULL};
  check_opts(L, 3, "encode", known);
  int special = 1;
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_getfield(L, 3, "special");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
      return luaL_error(L, "encode: special must be a boolean, got %s",
                        luaL_typename(L, -1));
    special = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  size_t len;
  const char *text = lua_tolstring(L, 2, &len);
  int64_t *ids;
  int64_t n = ember_bpe_encode(b, text, len, special, &ids);
  if (n < 0) return l_error(L);
  l_tensor *slot = l_newslot(L);
  ember_tensor *t = ember_empty(1, &n, EMBER_INT64);
  if (t) memcpy(ember_data(t), ids, (size_t)n * sizeof *ids);
  free(ids);
  l_fill(L, slot, t);
  return 1;
}

/* tok:decode(ids): ids a tensor of integers (any shape, read in order)
   or a table of integers */
static int bpe_decode(lua_State *L) {
  ember_bpe *b = check_bpe(L, 1, "decode");
  int64_t n;
  int64_t *ids;
  ember_tensor *held = NULL;
  if (lua_type(L, 2) == LUA_TTABLE) {
    n = (int64_t)luaL_len(L, 2);
    ids = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *ids, 0);
    for (int64_t i = 0; i < n; i++) {
      lua_geti(L, 2, i + 1);
      int isint;
      ids[i] = (int64_t)lua_tointegerx(L, -1, &isint);
      if (!isint)
        return luaL_error(L, "decode: ids[%d] must be an integer, got %s",
                          (int)i + 1, lua_type(L, -1) == LUA_TNUMBER
                          ? lua_tostring(L, -1) : luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  } else {
    ember_tensor *t = l_check(L, 2);
    if (!ember_dtype_is_int(t->dtype))
      return luaL_error(L, "decode: ids must be an integer tensor, got %s",
                        ember_dtype_name(t->dtype));
    if (t->storage->device != EMBER_CPU)
      return luaL_error(L, "decode: ids must be on the CPU, got a %s tensor "
                        "(call :cpu())", ember_device_name(t->storage->device));
    held = ember_to_dtype(t, EMBER_INT64);
    ember_tensor *c = held ? ember_contiguous(held) : NULL;
    ember_tensor_release(held);
    if (!c) return l_error(L);
    held = c;
    n = ember_numel(c);
    ids = ember_data(c);
  }
  size_t len;
  char *s = ember_bpe_decode(b, ids, n, &len);
  ember_tensor_release(held);
  if (!s) return l_error(L);
  lua_pushlstring(L, s, len);
  free(s);
  return 1;
}

/* tok:save(dir): dir/vocab.json and dir/merges.txt */
static int bpe_save(lua_State *L) {
  ember_bpe *b = check_bpe(L, 1, "save");
  if (ember_bpe_save(b, check_path(L, 2, "save", "dir")) < 0)
    return l_error(L);
  lua_settop(L, 1);
  return 1;
}

static int bpe_vocab_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ember_bpe_vocab_size(check_bpe(L, 1, "vocab_size")));
  return 1;
}

static int bpe_tostring(lua_State *L) {
  ember_bpe *b = check_bpe(L, 1, "tostring");
  lua_pushfstring(L, "BPE(vocab_size=%I, merges=%I)",
                  (lua_Integer)ember_bpe_vocab_size(b),
                  (lua_Integer)ember_bpe_merge_count(b));
  return 1;
}

static int bpe_gc(lua_State *L) {
  l_bpe *u = luaL_checkudata(L, 1, BPE_MT);
  ember_bpe_free(u->b);
  u->b = NULL;
  return 0;
}

static const luaL_Reg bpe_methods[] = {
  {"encode", bpe_encode},
  {"decode", bpe_decode},
  {"save", bpe_save},
  {"vocab_size", bpe_vocab_size},
  {NULL, NULL},
};

static void register_bpe(lua_State *L) {
  luaL_newmetatable(L, BPE_MT);
  lua_pushcfunction(L, bpe_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, bpe_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, bpe_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* }====================================================================== */

static const luaL_Reg module_funcs[] = {
  {"_bpe_load", l_bpe_load},
  {"_bpe_train", l_bpe_train},
  {"_read_idx", l_read_idx},
  {"_read_image", l_read_image},
  {"_read_images", l_read_images},
  {"_listdir", l_listdir},
  {"randperm", l_randperm},
  {"get_rng_state", l_get_rng_state},
  {"set_rng_state", l_set_rng_state},
  {"Generator", l_generator_new},
  {NULL, NULL},
};

static const luaL_Reg both_funcs[] = {
  {"multinomial", l_multinomial},
  {"uniform_", l_uniform_},
  {"normal_", l_normal_},
  {NULL, NULL},
};

/* module table at -2, method table at -1 (as l_register_ops) */
void l_register_data(lua_State *L) {
  lua_pushvalue(L, -2);
  register_generator(L);
  register_bpe(L);
  lua_pop(L, 1);
  l_register(L, module_funcs, both_funcs);
}
