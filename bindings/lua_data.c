/*
** lua_data.c -- what lua/ember/data.lua needs from the core (IDX files,
** random permutations), the generators, and sampling.
**
**   ember._read_idx(path)            an IDX file as stored (data.read_idx)
**   ember._csv_buf(), _csv_scan(text, pos, line, sep, roles, buf),
**   _csv_record, _csv_x, _csv_targets, _csv_numeric_y, _csv_classes,
**   _csv_class_y                     data.csv's fast path (rows in a C buffer)
**   ember._read_image(path, c, h, w) one image, float32 c x h x w
**   ember._read_images(paths, c, h, w)  a batch, float32 n x c x h x w
**   ember._image_source(paths, labels, c, h, w, index, threads)
**                                    the same in C for the loader's prefetch
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
**   ember._transform(x, steps, seed, offset), ember._rng_reserve(opts, n),
**   ember._batch_queue()             data.transforms and the loader's
**                                    prefetch (core/data_transforms.c,
**                                    core/data_queue.c)
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
#include <omp.h>
#include <stdio.h>
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

/* data.csv's rows as they are read (lua/ember/data_csv.lua): the features
   in one growing double buffer, which becomes the tensor in one copy, and
   per row the target's span in the text, or NO_SPAN for a row the Lua path
   took (its target string is then in a Lua table at the row's index).
   A userdata with a __gc, so an error midway frees it. */
#define CSV_BUF "ember.csv_buf"
#define NO_SPAN ((size_t)-1)
typedef struct {
  double *x;
  size_t nx, capx;      /* values stored, allocated */
  size_t *span;         /* 2 per row: start, length */
  int64_t rows, caprows;
} csv_buf;

static int csv_buf_gc(lua_State *L) {
  csv_buf *b = luaL_checkudata(L, 1, CSV_BUF);
  free(b->x);
  free(b->span);
  b->x = NULL;
  b->span = NULL;
  return 0;
}

/* ember._csv_buf(): an empty buffer */
static int l_csv_buf(lua_State *L) {
  csv_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, CSV_BUF)) {
    lua_pushcfunction(L, csv_buf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return 1;
}

/* Room for `rows` more rows of nf values each (doubling, so appends are
   amortised O(1)). */
static void csv_buf_reserve(lua_State *L, csv_buf *b, int64_t rows, int64_t nf) {
  size_t needx = b->nx + (size_t)rows * (size_t)nf;
  if (needx > b->capx || !b->x) {       /* never NULL: b->x + nx is formed */
    size_t cap = b->capx ? b->capx : 1024;
    while (cap < needx) cap *= 2;
    double *x = realloc(b->x, cap * sizeof *x);
    if (!x) luaL_error(L, "csv: out of memory");
    b->x = x;
    b->capx = cap;
  }
  if (b->rows + rows > b->caprows) {
    int64_t cap = b->caprows ? b->caprows : 1024;
    while (cap < b->rows + rows) cap *= 2;
    size_t *span = realloc(b->span, (size_t)cap * 2 * sizeof *span);
    if (!span) luaL_error(L, "csv: out of memory");
    b->span = span;
    b->caprows = cap;
  }
}

/* ember._csv_scan(text, pos, line, sep, roles, buf): internal.  Parses the
   plain records of text from byte pos (1-based) with ember_csv_scan,
   roles[c] being column c's role there, appending them to buf.  Returns
   the new pos and line and the rows in buf; the record at pos, if any, is
   one for the Lua path. */
#define CSV_CHUNK 4096          /* rows per scan: the buffer grows between */
static int l_csv_scan(lua_State *L) {
  size_t len, seplen;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_Integer pos1 = luaL_checkinteger(L, 2);
  int64_t line = (int64_t)luaL_checkinteger(L, 3);
  const char *sep = luaL_checklstring(L, 4, &seplen);
  luaL_checktype(L, 5, LUA_TTABLE);
  csv_buf *b = luaL_checkudata(L, 6, CSV_BUF);
  if (seplen != 1 || pos1 < 1) return luaL_error(L, "_csv_scan: bad arguments");
  int64_t ncol = (int64_t)lua_rawlen(L, 5), nf = 0;
  int has_target = 0;
  int64_t *role = lua_newuserdatauv(L, (size_t)(ncol ? ncol : 1) * sizeof *role, 0);
  for (int64_t c = 0; c < ncol; c++) {
    lua_rawgeti(L, 5, (lua_Integer)c + 1);
    role[c] = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (role[c] >= 0) nf++;
    if (role[c] == EMBER_CSV_TARGET) has_target = 1;
  }
  size_t pos = (size_t)pos1 - 1;
  for (;;) {
    csv_buf_reserve(L, b, CSV_CHUNK, nf);
    size_t *span = b->span + 2 * b->rows;
    int64_t rows = ember_csv_scan(text, len, &pos, &line, sep[0], ncol, role, CSV_CHUNK,
                                  b->x + b->nx, span);
    /* no target column: the scanner wrote no span; none are read, but
       keep the buffer defined */
    for (int64_t i = 0; i < rows && !has_target; i++) span[2 * i] = NO_SPAN, span[2 * i + 1] = 0;
    b->nx += (size_t)(rows * nf);
    b->rows += rows;
    if (rows < CSV_CHUNK) break;
  }
  lua_pushinteger(L, (lua_Integer)pos + 1);
  lua_pushinteger(L, (lua_Integer)line);
  lua_pushinteger(L, (lua_Integer)b->rows);
  return 3;
}

/* ember._csv_record(buf, vals, nf): internal; appends a record the Lua path
   parsed (vals[1..nf], numbers); its target, if any, stays in Lua. */
static int l_csv_record(lua_State *L) {
  csv_buf *b = luaL_checkudata(L, 1, CSV_BUF);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t nf = (int64_t)luaL_checkinteger(L, 3);
  csv_buf_reserve(L, b, 1, nf);
  for (int64_t j = 0; j < nf; j++) {
    lua_rawgeti(L, 2, (lua_Integer)j + 1);
    b->x[b->nx++] = lua_tonumber(L, -1);  /* as ember.tensor reads a number */
    lua_pop(L, 1);
  }
  b->span[2 * b->rows] = NO_SPAN;
  b->span[2 * b->rows + 1] = 0;
  b->rows++;
  return 0;
}

/* ember._csv_x(buf, nf, dtype): internal; the features as a rows x nf
   tensor of dtype (float32 or float64), in one copy. */
static int l_csv_x(lua_State *L) {
  csv_buf *b = luaL_checkudata(L, 1, CSV_BUF);
  int64_t shape[2] = {b->rows, (int64_t)luaL_checkinteger(L, 2)};
  ember_dtype dt = l_checkdtype(L, 3);
  if ((size_t)(shape[0] * shape[1]) != b->nx) return luaL_error(L, "_csv_x: bad arguments");
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_empty(2, shape, dt));
  void *data = ember_data(slot->t);
  if (dt == EMBER_FLOAT64) {
    if (b->nx) memcpy(data, b->x, b->nx * sizeof *b->x);
  } else {
    float *f = data;
    for (size_t i = 0; i < b->nx; i++) f[i] = (float)b->x[i];
  }
  return 1;
}

/* Push row i's target string: its span in text, or ltargets[i + 1]. */
static void csv_push_target(lua_State *L, const csv_buf *b, const char *text, int ltargets,
                            int64_t i) {
  if (b->span[2 * i] == NO_SPAN) lua_rawgeti(L, ltargets, (lua_Integer)i + 1);
  else lua_pushlstring(L, text + b->span[2 * i], b->span[2 * i + 1]);
}

/* ember._csv_targets(buf, text, ltargets): internal; every row's target
   string in a table (the general path). */
static int l_csv_targets(lua_State *L) {
  csv_buf *b = luaL_checkudata(L, 1, CSV_BUF);
  const char *text = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_createtable(L, (int)b->rows, 0);
  for (int64_t i = 0; i < b->rows; i++) {
    csv_push_target(L, b, text, 3, i);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* ember._csv_numeric_y(buf, text, ltargets, dtype): internal.  When every
   target is a plain decimal number (ember_csv_number), the targets as an
   int64 tensor if all are integers for Lua, else as dtype; otherwise nil
   and the first target that is not, for the Lua path to decide. */
static int l_csv_numeric_y(lua_State *L) {
  csv_buf *b = luaL_checkudata(L, 1, CSV_BUF);
  const char *text = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  ember_dtype dt = l_checkdtype(L, 4);
  int64_t n = b->rows;
  int integer = 1;
  /* the values as doubles and int64s, in a userdata so an error frees it */
  double *dv = lua_newuserdatauv(L, (size_t)(n ? n : 1) * (sizeof(double) + sizeof(int64_t)), 0);
  int64_t *iv = (int64_t *)(dv + (n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    size_t slen;
    const char *s;
    if (b->span[2 * i] == NO_SPAN) {
      lua_rawgeti(L, 3, (lua_Integer)i + 1);
      s = lua_tolstring(L, -1, &slen);
      lua_pop(L, 1);                /* still referenced by ltargets */
    } else {
      s = text + b->span[2 * i];
      slen = b->span[2 * i + 1];
    }
    int kind = s ? ember_csv_number(s, slen, &dv[i], &iv[i]) : 0;
    if (!kind) {
      lua_pushnil(L);
      csv_push_target(L, b, text, 3, i);
      return 2;
    }
    if (kind == 1) integer = 0;
  }
  int64_t shape[1] = {n};
  if (integer) dt = EMBER_INT64;
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_empty(1, shape, dt));
  void *data = ember_data(slot->t);
  for (int64_t i = 0; i < n; i++) {
    if (dt == EMBER_INT64) ((int64_t *)data)[i] = iv[i];
    else if (dt == EMBER_FLOAT64) ((double *)data)[i] = dv[i];
    else ((float *)data)[i] = (float)dv[i];
  }
  return 1;
}

/* ember._csv_classes(buf, text, ltargets): internal; the distinct target
   strings, in order of first appearance (the caller sorts them). */
static int l_csv_classes(lua_State *L) {
  csv_buf *b = luaL_checkudata(L, 1, CSV_BUF);
  const char *text = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_newtable(L);                  /* 4: seen */
  lua_newtable(L);                  /* 5: the list */
  lua_Integer k = 0;
  for (int64_t i = 0; i < b->rows; i++) {
    csv_push_target(L, b, text, 3, i);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, 4) != LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 5, ++k);
    lua_pushboolean(L, 1);
    lua_rawset(L, 4);
  }
  return 1;
}

/* ember._csv_class_y(buf, text, ltargets, index): internal; the int64
   tensor of index[target] for every row. */
static int l_csv_class_y(lua_State *L) {
  csv_buf *b = luaL_checkudata(L, 1, CSV_BUF);
  const char *text = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  int64_t shape[1] = {b->rows};
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_empty(1, shape, EMBER_INT64));
  int64_t *y = ember_data(slot->t);
  for (int64_t i = 0; i < b->rows; i++) {
    csv_push_target(L, b, text, 3, i);
    lua_rawget(L, 4);
    y[i] = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
  }
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

/* {======================================================================
** An image folder's batch source (the loader's prefetch decodes there)
** ======================================================================= */

/* The file list of an image folder (or of a Subset of one, through its
   index map), copied once into C so the worker reads no Lua.  Shared by
   the jobs in flight and the Lua userdata: refs counts them, changed only
   on the caller's thread (make, release, __gc), never by the worker. */
typedef struct {
  int refs;
  int channels, threads;   /* threads: the worker's decode team, 0: default */
  int64_t h, w;
  int64_t n;               /* the data set's length (rows 0 .. n-1) */
  int64_t *index;          /* row -> file (0-based), NULL: the identity */
  int64_t nfiles;
  int64_t *labels;         /* per file */
  const char **paths;      /* per file, into the block after them */
} image_source;

static void image_source_drop(image_source *c) {
  if (c && --c->refs == 0) {
    free(c->index);
    free(c->labels);
    free(c->paths);
    free(c);
  }
}

static int image_source_load(void *ctx, const int64_t *rows, int64_t n, ember_tensor **out) {
  const image_source *c = ctx;
  const char **paths = malloc((size_t)(n > 0 ? n : 1) * sizeof *paths);
  if (!paths) return ember_set_error("image_folder: out of memory");
  int64_t shape[4] = {n, c->channels, c->h, c->w};
  out[0] = ember_empty(4, shape, EMBER_FLOAT32);
  out[1] = ember_empty(1, shape, EMBER_INT64);
  if (!out[0] || !out[1]) {
    free(paths);
    return -1;
  }
  int64_t *y = ember_data(out[1]);
  for (int64_t i = 0; i < n; i++) {
    if (rows[i] < 0 || rows[i] >= c->n) {
      free(paths);
      return ember_set_error("image_folder: index %lld is out of range 1..%lld",
                             (long long)rows[i] + 1, (long long)c->n);
    }
    int64_t f = c->index ? c->index[rows[i]] : rows[i];
    paths[i] = c->paths[f];
    y[i] = c->labels[f];
  }
  /* this thread's own team size (an OpenMP ICV is per thread) */
  if (c->threads > 0) omp_set_num_threads(c->threads);
  int rc = ember_read_images(out[0], paths, n);
  free(paths);
  if (rc < 0) {
    /* the message names the file; say whose it is, as ds:batch does */
    const char *msg = ember_last_error();
    const char *prefix = "read_image: ";
    if (strncmp(msg, prefix, strlen(prefix)) == 0) msg += strlen(prefix);
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", msg);
    return ember_set_error("image_folder: %s", copy);
  }
  return 0;
}

static void image_source_release(void *ctx) { image_source_drop(ctx); }

static int image_source_make(lua_State *L, int idx, ember_batch_source *src) {
  image_source **u = lua_touserdata(L, idx);
  (*u)->refs++;
  *src = (ember_batch_source){image_source_load, image_source_release, *u, 2};
  return 0;
}

static const l_batch_source_hook image_source_hook = {image_source_make};

#define IMAGE_SOURCE_MT "ember.ImageSource"

static int image_source_gc(lua_State *L) {
  image_source **u = luaL_checkudata(L, 1, IMAGE_SOURCE_MT);
  image_source_drop(*u);
  *u = NULL;
  return 0;
}

/* ember._image_source(paths, labels, c, h, w, index, threads): internal
   (data.image_folder's _batch_source).  paths and labels are lists (the
   data set's, checked there); index a 1-d int64 tensor of 1-based files,
   or nil; threads the worker's decode team (0: the default). */
static int l_image_source(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t nfiles = (int64_t)luaL_len(L, 1);
  lua_settop(L, 7);   /* the userdata is 8 */
  image_source **u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = NULL;
  luaL_setmetatable(L, IMAGE_SOURCE_MT);
  image_source *c = calloc(1, sizeof *c);
  if (!c) return luaL_error(L, "image_folder: out of memory");
  *u = c;   /* from here __gc frees what was made, also on an error */
  c->refs = 1;
  c->channels = (int)luaL_checkinteger(L, 3);
  c->h = luaL_checkinteger(L, 4);
  c->w = luaL_checkinteger(L, 5);
  c->threads = (int)luaL_optinteger(L, 7, 0);
  c->nfiles = c->n = nfiles;
  size_t bytes = 0;
  for (int64_t i = 0; i < nfiles; i++) {
    size_t len;
    if (lua_geti(L, 1, i + 1) != LUA_TSTRING)
      return luaL_error(L, "image_folder: path %d is not a string", (int)i + 1);
    lua_tolstring(L, -1, &len);
    bytes += len + 1;
    lua_pop(L, 1);
  }
  /* one block: the pointers, then the strings they point to */
  c->paths = malloc((size_t)(nfiles > 0 ? nfiles : 1) * sizeof *c->paths + bytes);
  c->labels = malloc((size_t)(nfiles > 0 ? nfiles : 1) * sizeof *c->labels);
  if (!c->paths || !c->labels) return luaL_error(L, "image_folder: out of memory");
  char *text = (char *)(c->paths + (nfiles > 0 ? nfiles : 1));
  for (int64_t i = 0; i < nfiles; i++) {
    size_t len;
    lua_geti(L, 1, i + 1);
    const char *s = lua_tolstring(L, -1, &len);
    memcpy(text, s, len + 1);
    c->paths[i] = text;
    text += len + 1;
    lua_geti(L, 2, i + 1);
    c->labels[i] = (int64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 2);
  }
  if (!lua_isnoneornil(L, 6)) {
    ember_tensor *ix = l_check(L, 6);
    if (ix->dtype != EMBER_INT64 || ix->ndim != 1 || !ember_is_contiguous(ix) ||
        ix->storage->device != EMBER_CPU)
      return luaL_error(L, "image_folder: the index must be a 1-d int64 CPU tensor");
    c->n = ember_numel(ix);
    c->index = malloc((size_t)(c->n > 0 ? c->n : 1) * sizeof *c->index);
    if (!c->index) return luaL_error(L, "image_folder: out of memory");
    const int64_t *one = ember_data(ix);
    for (int64_t i = 0; i < c->n; i++) {
      if (one[i] < 1 || one[i] > nfiles)
        return luaL_error(L, "image_folder: index %lld is out of range 1..%lld",
                          (long long)one[i], (long long)nfiles);
      c->index[i] = one[i] - 1;
    }
  }
  lua_pushvalue(L, 8);
  return 1;
}

static void register_image_source(lua_State *L) {
  luaL_newmetatable(L, IMAGE_SOURCE_MT);
  lua_pushcfunction(L, image_source_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushlightuserdata(L, (void *)&image_source_hook);
  lua_setfield(L, -2, "__ember_batch_source");
  lua_pop(L, 1);
}

/* }====================================================================== */

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

/* {======================================================================
** Transforms and the batch queue (data.transforms, the loader's prefetch)
** ======================================================================= */

static double num_field(lua_State *L, int idx, const char *k, double def) {
  lua_getfield(L, idx, k);
  double v = lua_isnil(L, -1) ? def : lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The steps of a composed transform (data.lua checked them): a list of
   {kind = "crop" | "hflip" | "normalize" | "rotate", ...}.  The array is a
   userdata on the stack, so an error leaks nothing. */
static ember_transform *check_steps(lua_State *L, int idx, int *n) {
  *n = lua_isnoneornil(L, idx) ? 0 : (int)luaL_len(L, idx);
  ember_transform *tf = lua_newuserdatauv(L, (size_t)(*n > 0 ? *n : 1) * sizeof *tf, 0);
  static const char *const kinds[] = {"crop", "hflip", "normalize", "rotate", NULL};
  for (int s = 0; s < *n; s++) {
    lua_geti(L, idx, s + 1);
    int t = lua_gettop(L);
    lua_getfield(L, t, "kind");
    ember_transform *f = &tf[s];
    memset(f, 0, sizeof *f);
    f->kind = (ember_transform_kind)luaL_checkoption(L, -1, NULL, kinds);
    lua_pop(L, 1);
    f->h = (int64_t)num_field(L, t, "h", 0);
    f->w = (int64_t)num_field(L, t, "w", 0);
    f->padding = (int64_t)num_field(L, t, "padding", 0);
    f->fill = num_field(L, t, "fill", 0);
    f->p = num_field(L, t, "p", 0.5);
    f->lo = num_field(L, t, "lo", 0);
    f->hi = num_field(L, t, "hi", 0);
    lua_getfield(L, t, "reflect");
    f->reflect = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (f->kind == EMBER_TF_NORMALIZE) {
      lua_getfield(L, t, "mean");
      lua_getfield(L, t, "std");
      f->channels = (int)luaL_len(L, -2);
      if (f->channels > EMBER_TF_MAX_CHANNELS)
        luaL_error(L, "Normalize: at most %d channels", EMBER_TF_MAX_CHANNELS);
      for (int c = 0; c < f->channels; c++) {
        lua_geti(L, -2, c + 1);
        f->mean[c] = lua_tonumber(L, -1);
        lua_geti(L, -2, c + 1);
        f->std[c] = lua_tonumber(L, -1);
        lua_pop(L, 2);
      }
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  return tf;
}

/* ember._transform(x, steps, seed, offset): internal (data.transforms) */
static int l_transform(lua_State *L) {
  ember_tensor *x = l_check(L, 1);
  int n;
  ember_transform *tf = check_steps(L, 2, &n);
  uint64_t seed = (uint64_t)luaL_checkinteger(L, 3);
  uint64_t offset = (uint64_t)luaL_checkinteger(L, 4);
  l_tensor *slot = l_newslot(L);
  l_fill(L, slot, ember_transforms_apply(tf, n, x, seed, offset));
  return 1;
}

/* ember._rng_reserve(opts, n): seed and offset of n counters of the
   generator that opts names (or the state's), which moves past them. */
static int l_rng_reserve(lua_State *L) {
  ember_generator *g = l_optgen(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "n must be >= 0");
  lua_pushinteger(L, (lua_Integer)g->seed);
  lua_pushinteger(L, (lua_Integer)g->offset);
  g->offset += (uint64_t)n;
  return 2;
}

#define QUEUE_MT "ember.BatchQueue"

static ember_batch_queue **check_queue(lua_State *L) {
  ember_batch_queue **q = luaL_checkudata(L, 1, QUEUE_MT);
  if (!*q) luaL_error(L, "loader: the batch queue is closed");
  return q;
}

/* ember._batch_queue(): internal (the loader's prefetch) */
static int l_batch_queue(lua_State *L) {
  ember_batch_queue **q = lua_newuserdatauv(L, sizeof *q, 0);
  *q = NULL;
  luaL_setmetatable(L, QUEUE_MT);
  if (!(*q = ember_batch_queue_new())) return l_error(L);
  return 1;
}

/* The most tensors a batch may have (queue_next's array). */
#define QUEUE_MAX_OUT 32

/* The batch source that the value at idx stands for (on this thread):
   a table of contiguous CPU tensors (their rows), or a userdata whose
   metatable's __ember_batch_source field is a light userdata pointing to
   an l_batch_source_hook (lua_internal.h): the hook of a data set that
   makes its batches in C. */
static int source_of(lua_State *L, int idx, ember_batch_source *src) {
  if (lua_type(L, idx) == LUA_TUSERDATA &&
      luaL_getmetafield(L, idx, "__ember_batch_source") == LUA_TLIGHTUSERDATA) {
    const l_batch_source_hook *hook = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return hook->make(L, idx, src);
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  int nt = (int)luaL_len(L, idx);
  if (nt > QUEUE_MAX_OUT) return luaL_error(L, "loader: at most %d tensors", QUEUE_MAX_OUT);
  ember_tensor *ts[QUEUE_MAX_OUT];
  for (int k = 0; k < nt; k++) {
    lua_geti(L, idx, k + 1);
    ts[k] = l_check(L, -1);
    lua_pop(L, 1);
  }
  return ember_batch_rows_source(ts, nt, src);
}

/* q:submit(source, rows, steps, seed, offset): rows an int64 CPU tensor
   of 1-based rows (source_of's source; for tensors, their rows) */
static int queue_submit(lua_State *L) {
  ember_batch_queue *q = *check_queue(L);
  ember_tensor *r = l_check(L, 3);
  if (r->dtype != EMBER_INT64 || r->ndim != 1 || !ember_is_contiguous(r) ||
      r->storage->device != EMBER_CPU)
    return luaL_error(L, "loader: rows must be a 1-d int64 CPU tensor");
  int ntf;
  ember_transform *tf = check_steps(L, 4, &ntf);
  uint64_t seed = (uint64_t)luaL_optinteger(L, 5, 0);
  uint64_t offset = (uint64_t)luaL_optinteger(L, 6, 0);
  int64_t n = ember_numel(r);
  int64_t *rows = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *rows, 0);
  const int64_t *one = ember_data(r);
  for (int64_t i = 0; i < n; i++) rows[i] = one[i] - 1;
  ember_batch_source src;
  if (source_of(L, 2, &src) < 0) return l_error(L);
  if (src.nout > QUEUE_MAX_OUT) {
    if (src.release) src.release(src.ctx);
    return luaL_error(L, "loader: at most %d tensors", QUEUE_MAX_OUT);
  }
  if (ember_batch_queue_submit(q, src, rows, n, tf, ntf, seed, offset) < 0)
    return l_error(L);
  return 0;
}

/* q:next(): the oldest batch's tensors, or its error */
static int queue_next(lua_State *L) {
  ember_batch_queue *q = *check_queue(L);
  ember_tensor *out[QUEUE_MAX_OUT];
  int n = ember_batch_queue_next(q, out);
  if (n < 0) return l_error(L);
  for (int k = 0; k < n; k++) l_fill(L, l_newslot(L), out[k]);
  return n;
}

static int queue_clear(lua_State *L) {
  ember_batch_queue_clear(*check_queue(L));
  return 0;
}

static int queue_pending(lua_State *L) {
  lua_pushinteger(L, ember_batch_queue_pending(*check_queue(L)));
  return 1;
}

static int queue_gc(lua_State *L) {
  ember_batch_queue **q = luaL_checkudata(L, 1, QUEUE_MT);
  ember_batch_queue_free(*q);
  *q = NULL;
  return 0;
}

static const luaL_Reg queue_methods[] = {
  {"submit", queue_submit},
  {"next", queue_next},
  {"clear", queue_clear},
  {"pending", queue_pending},
  {NULL, NULL},
};

static void register_queue(lua_State *L) {
  luaL_newmetatable(L, QUEUE_MT);
  lua_pushcfunction(L, queue_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, queue_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* }====================================================================== */

static const luaL_Reg module_funcs[] = {
  {"_transform", l_transform},
  {"_rng_reserve", l_rng_reserve},
  {"_batch_queue", l_batch_queue},
  {"_bpe_load", l_bpe_load},
  {"_bpe_train", l_bpe_train},
  {"_read_idx", l_read_idx},
  {"_csv_scan", l_csv_scan},
  {"_csv_buf", l_csv_buf},
  {"_csv_record", l_csv_record},
  {"_csv_x", l_csv_x},
  {"_csv_targets", l_csv_targets},
  {"_csv_numeric_y", l_csv_numeric_y},
  {"_csv_classes", l_csv_classes},
  {"_csv_class_y", l_csv_class_y},
  {"_read_image", l_read_image},
  {"_read_images", l_read_images},
  {"_image_source", l_image_source},
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
  register_queue(L);
  register_image_source(L);
  lua_pop(L, 1);
  l_register(L, module_funcs, both_funcs);
}
