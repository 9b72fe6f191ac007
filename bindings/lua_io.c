/*
** lua_io.c -- ember.save and ember.load: tensors to and from safetensors
** files.  core/io_safetensors.c does the format; this file maps Lua
** tables to the core's arrays and back.
**
**   ember.save(path, tensor_or_table [, metadata])
**   ember.load(path [, {mmap = false}]) -> tensors, metadata
**
** A single tensor is saved under the name "tensor" with the metadata entry
** "ember.format" = "tensor", and ember.load gives such a file back as the
** tensor itself (without that entry in the metadata it returns), so
** ember.load(ember.save(p, t)) round-trips both forms.
*/
#include <string.h>
#include <zlib.h>

#include "lua_internal.h"

#define READER_MT "ember.safetensors_reader"
#define FORMAT_KEY "ember.format"

/* The string at idx with no NUL byte inside (C strings end at the first). */
static const char *check_cstring(lua_State *L, int idx, const char *what) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (strlen(s) != len)
    luaL_error(L, "save: %s '%s...' contains a NUL byte", what, s);
  return s;
}

/* Raise "save: <what>, got <type> (<key>)" for the key at -2 of a
   traversal (the type is read before luaL_tolstring pushes). */
static void bad_key(lua_State *L, const char *what) {
  const char *type = luaL_typename(L, -2);
  luaL_error(L, "save: %s, got %s (%s)", what, type,
             luaL_tolstring(L, -2, NULL));
}

/* The number of entries of the table at idx (any keys). */
static int count_entries(lua_State *L, int idx) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (n == 1 << 24) luaL_error(L, "save: too many entries");
    n++;
  }
  return n;
}

/* Scratch arrays for n pointers, owned by a userdata left on the stack
   (collected with it, so an error in between leaks nothing). */
static const void **scratch(lua_State *L, int n) {
  return lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof(void *), 0);
}

/*
** The metadata table at idx (or nil) into keys/values; string keys and
** string values only (numbers too would round-trip as strings, silently:
** refuse them).  `extra` slots are left at the end for the caller.
** Returns the count; the arrays stay on the stack.
*/
static int collect_metadata(lua_State *L, int idx, int extra,
                            const char ***keys, const char ***values) {
  int n = 0;
  if (!lua_isnoneornil(L, idx)) {
    if (!lua_istable(L, idx))
      luaL_error(L, "save: metadata must be a table of strings, got %s",
                 luaL_typename(L, idx));
    n = count_entries(L, idx);
  }
  *keys = (const char **)scratch(L, n + extra);
  *values = (const char **)scratch(L, n + extra);
  if (n == 0) return 0;
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      bad_key(L, "metadata keys must be strings");
    const char *key = check_cstring(L, -2, "metadata key");
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "save: metadata value for '%s' must be a string, got %s",
                 key, luaL_typename(L, -1));
    (*keys)[i] = key;
    (*values)[i] = check_cstring(L, -1, "metadata value");
    i++;
    lua_pop(L, 1);
  }
  return n;
}

/* The table of tensors at idx into names/tensors (arrays on the stack). */
static int collect_tensors(lua_State *L, int idx, const char ***names,
                           ember_tensor ***tensors) {
  int n = count_entries(L, idx);
  *names = (const char **)scratch(L, n);
  *tensors = (ember_tensor **)scratch(L, n);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      bad_key(L, "the table of tensors must have string keys");
    const char *name = check_cstring(L, -2, "tensor name");
    ember_tensor *t = ember_lua_totensor(L, -1);
    if (!t) {
      if (luaL_testudata(L, -1, EMBER_TENSOR_MT))
        luaL_error(L, "save: tensor '%s' has been closed", name);
      luaL_error(L, "save: value for '%s' must be a tensor, got %s", name,
                 luaL_typename(L, -1));
    }
    (*names)[i] = name;
    (*tensors)[i] = t;
    i++;
    lua_pop(L, 1);
  }
  return n;
}

/* ember.save(path, tensor_or_table [, metadata]) */
static int l_save(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "save: expected a path (string) as argument 1, got "
                      "%s", luaL_typename(L, 1));
  const char *path = lua_tostring(L, 1);
  ember_tensor *single = ember_lua_totensor(L, 2);
  if (!single && !lua_istable(L, 2)) {
    if (luaL_testudata(L, 2, EMBER_TENSOR_MT))
      return luaL_error(L, "save: the tensor has been closed");
    return luaL_error(L, "save: expected a tensor or a table of tensors as "
                      "argument 2, got %s", luaL_typename(L, 2));
  }
  const char **keys, **values;
  int nmeta = collect_metadata(L, 3, 1, &keys, &values);
  const char **names;
  ember_tensor **tensors;
  int n;
  if (single) {
    for (int i = 0; i < nmeta; i++)
      if (strcmp(keys[i], FORMAT_KEY) == 0)
        return luaL_error(L, "save: metadata key '%s' is reserved when "
                          "saving a single tensor", FORMAT_KEY);
    keys[nmeta] = FORMAT_KEY;
    values[nmeta++] = "tensor";
    static const char *tensor_name = "tensor";
    names = &tensor_name;
    tensors = &single;
    n = 1;
  } else {
    n = collect_tensors(L, 2, &names, &tensors);
  }
  if (ember_save_safetensors(path, n, names, tensors, nmeta, keys, values) < 0)
    return l_error(L);
  return 0;
}

/* The reader handle lives in a userdata until load is done, so that an
   error (out of memory) between load and free does not leak it. */
static int reader_gc(lua_State *L) {
  ember_safetensors **box = luaL_checkudata(L, 1, READER_MT);
  ember_safetensors_free(*box);
  *box = NULL;
  return 0;
}

/* The options of ember.load at idx (none, or a table): its flags. */
static int load_flags(lua_State *L, int idx) {
  static const char *const known[] = {"mmap", NULL};
  if (lua_isnoneornil(L, idx)) return 0;
  if (!lua_istable(L, idx))
    return luaL_error(L, "load: expected an options table as argument 2, "
                      "got %s", luaL_typename(L, idx));
  l_check_keys(L, idx, "load", "option", known);
  int flags = 0;
  if (lua_getfield(L, idx, "mmap") != LUA_TNIL) {
    if (!lua_isboolean(L, -1))
      return luaL_error(L, "load: option mmap must be a boolean, got %s",
                        luaL_typename(L, -1));
    if (lua_toboolean(L, -1)) flags |= EMBER_LOAD_MMAP;
  }
  lua_pop(L, 1);
  return flags;
}

/* ember.load(path [, opts]) -> tensors, metadata */
static int l_load(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "load: expected a path (string) as argument 1, got "
                      "%s", luaL_typename(L, 1));
  const char *path = lua_tostring(L, 1);
  int flags = load_flags(L, 2);
  ember_safetensors **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, READER_MT);
  *box = ember_load_safetensors_ex(path, flags);
  if (!*box) return l_error(L);
  ember_safetensors *st = *box;
  int n = ember_safetensors_count(st), nmeta = ember_safetensors_metadata_count(st);

  /* a file saved from one tensor comes back as that tensor */
  int single = 0;
  for (int i = 0; i < nmeta; i++)
    if (!strcmp(ember_safetensors_metadata_key(st, i), FORMAT_KEY) &&
        !strcmp(ember_safetensors_metadata_value(st, i), "tensor"))
      single = n == 1 && !strcmp(ember_safetensors_name(st, 0), "tensor");

  if (!single) lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    l_tensor *slot = l_newslot(L);
    l_fill(L, slot, ember_safetensors_tensor(st, i));
    if (!single) lua_setfield(L, -2, ember_safetensors_name(st, i));
  }
  lua_createtable(L, 0, nmeta);
  for (int i = 0; i < nmeta; i++) {
    const char *key = ember_safetensors_metadata_key(st, i);
    if (single && !strcmp(key, FORMAT_KEY)) continue;
    lua_pushstring(L, ember_safetensors_metadata_value(st, i));
    lua_setfield(L, -2, key);
  }
  ember_safetensors_free(st);
  *box = NULL;
  return 2;
}

/* ember._is_mapped(t): is t a view of a file loaded with mmap?  (For the
   specs: which tensors ember.load copied.) */
static int l_is_mapped(lua_State *L) {
  lua_pushboolean(L, ember_tensor_is_mapped(l_check(L, 1)));
  return 1;
}

/* {======================================================================
** PNG encoding (for history:plot and data.write_image)
** ======================================================================= */

/* Appends a PNG chunk (length, type, data, CRC-32 of type and data). */
static void png_chunk(luaL_Buffer *b, const char *type, const unsigned char *data,
                      size_t len) {
  unsigned char be[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                         (unsigned char)(len >> 8), (unsigned char)len};
  uLong crc = crc32(0L, (const Bytef *)type, 4);
  if (len > 0) crc = crc32(crc, data, (uInt)len);
  luaL_addlstring(b, (const char *)be, 4);
  luaL_addlstring(b, type, 4);
  luaL_addlstring(b, (const char *)data, len);
  be[0] = (unsigned char)(crc >> 24); be[1] = (unsigned char)(crc >> 16);
  be[2] = (unsigned char)(crc >> 8); be[3] = (unsigned char)crc;
  luaL_addlstring(b, (const char *)be, 4);
}

/* ember._png_encode(width, height, pixels [, channels = 3 [, level = 9]])
   -> the bytes of an 8-bit PNG, grey (channels 1) or RGB (3).  pixels is
   a string of width*height*channels bytes, rows top to bottom (plots), or
   a contiguous CPU uint8 tensor holding them (data.write_image, which
   needs no copy into a Lua string).  level is zlib's, 0 (store) to 9.
   Every row gets filter type 0 (none): plots are mostly flat colour,
   which deflate compresses well without filtering. */
static int l_png_encode(lua_State *L) {
  lua_Integer w = luaL_checkinteger(L, 1), h = luaL_checkinteger(L, 2);
  lua_Integer channels = luaL_optinteger(L, 4, 3), level = luaL_optinteger(L, 5, 9);
  luaL_argcheck(L, channels == 1 || channels == 3, 4, "channels must be 1 or 3");
  luaL_argcheck(L, level >= 0 && level <= 9, 5, "level must be 0 to 9");
  size_t n;
  const unsigned char *px;
  if (lua_type(L, 3) == LUA_TSTRING) {
    px = (const unsigned char *)lua_tolstring(L, 3, &n);
  } else {
    const ember_tensor *t = l_check(L, 3);
    luaL_argcheck(L, t->dtype == EMBER_UINT8 && t->storage->device == EMBER_CPU &&
                  ember_is_contiguous(t), 3, "expected a contiguous CPU uint8 tensor");
    px = ember_data(t);
    n = (size_t)ember_numel(t);
  }
  if (w < 1 || h < 1 || w > 16384 || h > 16384)
    return luaL_error(L, "_png_encode: size %I x %I is out of range (1 to 16384)",
                      (LUAI_UACINT)w, (LUAI_UACINT)h);
  size_t row = (size_t)w * (size_t)channels;
  if (n != row * (size_t)h)
    return luaL_error(L, "_png_encode: expected %I bytes of %s, got %I",
                      (LUAI_UACINT)(row * (size_t)h), channels == 1 ? "grey" : "RGB",
                      (LUAI_UACINT)n);
  size_t raw_len = (row + 1) * (size_t)h;
  unsigned char *raw = lua_newuserdatauv(L, raw_len, 0);
  for (lua_Integer y = 0; y < h; y++) {
    raw[(size_t)y * (row + 1)] = 0;
    memcpy(raw + (size_t)y * (row + 1) + 1, px + (size_t)y * row, row);
  }
  uLongf z_len = compressBound((uLong)raw_len);
  unsigned char *z = lua_newuserdatauv(L, z_len, 0);
  if (compress2(z, &z_len, raw, (uLong)raw_len, (int)level) != Z_OK)
    return luaL_error(L, "_png_encode: zlib failed");
  unsigned char ihdr[13] = {
    (unsigned char)(w >> 24), (unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w,
    (unsigned char)(h >> 24), (unsigned char)(h >> 16), (unsigned char)(h >> 8), (unsigned char)h,
    8, channels == 1 ? 0 : 2, 0, 0, 0};   /* 8 bits, grey or truecolour, deflate,
                                             adaptive filters, no interlace */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, "\x89PNG\r\n\x1a\n", 8);
  png_chunk(&b, "IHDR", ihdr, sizeof ihdr);
  png_chunk(&b, "IDAT", z, z_len);
  png_chunk(&b, "IEND", NULL, 0);
  luaL_pushresult(&b);
  return 1;
}

/* ember._zlib_inflate(bytes, size) -> the size bytes a zlib stream holds
   (for the specs, which read back what _png_encode wrote), or nil and
   zlib's message. */
static int l_zlib_inflate(lua_State *L) {
  size_t n;
  const unsigned char *src = (const unsigned char *)luaL_checklstring(L, 1, &n);
  lua_Integer want = luaL_checkinteger(L, 2);
  luaL_argcheck(L, want >= 0 && want <= (lua_Integer)1 << 30, 2, "size out of range");
  uLongf len = (uLongf)want;
  unsigned char *dst = lua_newuserdatauv(L, len + 1, 0);
  int rc = uncompress(dst, &len, src, (uLong)n);
  if (rc != Z_OK) {
    lua_pushnil(L);
    lua_pushstring(L, zError(rc));
    return 2;
  }
  lua_pushlstring(L, (const char *)dst, len);
  return 1;
}

/* }====================================================================== */

static const luaL_Reg module_funcs[] = {
  {"save", l_save},
  {"load", l_load},
  {"_is_mapped", l_is_mapped},
  {"_png_encode", l_png_encode},
  {"_zlib_inflate", l_zlib_inflate},
  {NULL, NULL},
};

/* module table at -2, method table at -1 (as l_register_ops); save and
   load are module functions only */
void l_register_io(lua_State *L) {
  if (luaL_newmetatable(L, READER_MT)) {
    lua_pushcfunction(L, reader_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, module_funcs, 0);
  lua_pop(L, 1);
}
