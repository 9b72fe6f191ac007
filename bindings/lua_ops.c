/*
** lua_ops.c -- the tensor functions of the `ember` module.
**
** Each function checks its arguments, calls one ember_ function and pushes
** the result.  Functions whose first argument is a tensor are registered
** both in the module table and in the method table, so `ember.sum(t)` and
** `t:sum()` are the same function.  Dimensions and indices arrive 1-based
** and are converted here, once; the core's messages already speak 1-based.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lua_internal.h"

/* Push the result of a core call that returns a new tensor.  The slot is
   pushed before `expr` runs, so every argument must be read before. */
#define PUSH(L, expr)                                                        \
  do {                                                                       \
    l_tensor *slot_ = l_newslot(L);                                          \
    l_fill(L, slot_, (expr));                                                \
  } while (0)

/* {======================================================================
** Creation
** ======================================================================= */

enum { MAKE_ZEROS, MAKE_ONES, MAKE_EMPTY, MAKE_FULL, MAKE_RAND, MAKE_RANDN };

/* A new tensor of a kind, made on dev itself (a GPU tensor is never made on
   the CPU and copied over: a dropout mask is drawn on the device).  Random
   ones come from the generator the options at opt name, else the state's. */
static ember_tensor *make_on(lua_State *L, int opt, ember_device dev, int kind,
                             int n, const int64_t *shape, ember_dtype dt,
                             double v) {
  switch (kind) {
    case MAKE_ZEROS: return ember_zeros_on(dev, n, shape, dt);
    case MAKE_ONES: return ember_ones_on(dev, n, shape, dt);
    case MAKE_EMPTY: return ember_empty_on(dev, n, shape, dt);
    case MAKE_FULL: return ember_full_on(dev, n, shape, v, dt);
    case MAKE_RAND: return ember_rand_gen(l_optgen(L, opt), dev, n, shape, dt);
    default: return ember_randn_gen(l_optgen(L, opt), dev, n, shape, dt);
  }
}

/* zeros, ones, empty, rand, randn: (size... | shape) [, opts] */
static int sized(lua_State *L, int kind) {
  int64_t shape[EMBER_MAX_DIMS];
  int next, n = l_checkshape(L, 1, shape, &next);
  ember_dtype dt = l_optdtype_field(L, next, EMBER_FLOAT32);
  ember_device dev = l_optdevice(L, next, EMBER_CPU);
  PUSH(L, make_on(L, next, dev, kind, n, shape, dt, 0));
  l_opt_requires_grad(L, next);
  return 1;
}

static int l_zeros(lua_State *L) { return sized(L, MAKE_ZEROS); }
static int l_ones(lua_State *L) { return sized(L, MAKE_ONES); }
static int l_empty(lua_State *L) { return sized(L, MAKE_EMPTY); }
static int l_rand(lua_State *L) { return sized(L, MAKE_RAND); }
static int l_randn(lua_State *L) { return sized(L, MAKE_RANDN); }

/* ember.full({2, 3}, 7 [, opts]): the shape must be a table here */
static int l_full(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t shape[EMBER_MAX_DIMS];
  int next, n = l_checkshape(L, 1, shape, &next);
  lua_Number v = luaL_checknumber(L, next);
  ember_dtype dt = l_optdtype_field(L, next + 1, EMBER_FLOAT32);
  PUSH(L, make_on(L, next + 1, l_optdevice(L, next + 1, EMBER_CPU), MAKE_FULL, n, shape, dt, v));
  l_opt_requires_grad(L, next + 1);
  return 1;
}

/* arange(end) | arange(start, end [, step]) [, opts]: integers give int64
   as in PyTorch, and end is excluded */
static int l_arange(lua_State *L) {
  int nargs = 0;
  while (lua_type(L, nargs + 1) == LUA_TNUMBER && nargs < 3) nargs++;
  if (nargs == 0) return luaL_typeerror(L, 1, "number");
  double start = 0, end, step = 1;
  int allint = 1;
  for (int i = 1; i <= nargs; i++) allint &= lua_isinteger(L, i);
  if (nargs == 1) end = lua_tonumber(L, 1);
  else {
    start = lua_tonumber(L, 1);
    end = lua_tonumber(L, 2);
    if (nargs == 3) step = lua_tonumber(L, 3);
  }
  ember_dtype dt = l_optdtype_field(L, nargs + 1, allint ? EMBER_INT64 : EMBER_FLOAT32);
  PUSH(L, ember_arange(start, end, step, dt));
  l_opt_place(L, nargs + 1, EMBER_CPU);
  l_opt_requires_grad(L, nargs + 1);
  return 1;
}

static int l_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  ember_dtype dt = l_optdtype_field(L, 4, EMBER_FLOAT32);
  PUSH(L, ember_linspace(a, b, (int64_t)n, dt));
  l_opt_place(L, 4, EMBER_CPU);
  l_opt_requires_grad(L, 4);
  return 1;
}

static int l_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lua_Integer m = lua_type(L, 2) == LUA_TNUMBER ? luaL_checkinteger(L, 2) : n;
  if (n < 0 || m < 0) return luaL_error(L, "eye: sizes must be >= 0, got %I and %I", n, m);
  ember_dtype dt = l_optdtype_field(L, lua_type(L, 2) == LUA_TNUMBER ? 3 : 2,
                                    EMBER_FLOAT32);
  PUSH(L, ember_eye((int64_t)n, (int64_t)m, dt));
  l_opt_place(L, lua_type(L, 2) == LUA_TNUMBER ? 3 : 2, EMBER_CPU);
  l_opt_requires_grad(L, lua_type(L, 2) == LUA_TNUMBER ? 3 : 2);
  return 1;
}

/* randint(high, shape...) or randint(low, high, shape...): inclusive bounds,
   as math.random; the shape is a table or integers */
static int l_randint(lua_State *L) {
  lua_Integer low = 1, high;
  int at;
  if (lua_type(L, 2) == LUA_TNUMBER && (lua_type(L, 3) == LUA_TNUMBER ||
                                        lua_type(L, 3) == LUA_TTABLE)) {
    low = luaL_checkinteger(L, 1);
    high = luaL_checkinteger(L, 2);
    at = 3;
  } else {
    high = luaL_checkinteger(L, 1);
    at = 2;
  }
  int64_t shape[EMBER_MAX_DIMS];
  int next, n = l_checkshape(L, at, shape, &next);
  ember_dtype dt = l_optdtype_field(L, next, EMBER_INT64);
  PUSH(L, ember_randint_gen(l_optgen(L, next), (int64_t)low, (int64_t)high, n, shape, dt));
  l_opt_place(L, next, EMBER_CPU);
  return 1;
}

/* the *_like family: options may override the dtype */
static int like(lua_State *L, int kind) {
  ember_tensor *t = l_check(L, 1);
  int opt = kind == MAKE_FULL ? 3 : 2;
  ember_dtype dt = l_optdtype_field(L, opt, t->dtype);
  double v = kind == MAKE_FULL ? luaL_checknumber(L, 2) : 0;
  ember_device dev = l_optdevice(L, opt, t->storage->device);
  PUSH(L, make_on(L, opt, dev, kind, t->ndim, t->shape, dt, v));
  l_opt_requires_grad(L, opt);
  return 1;
}
static int l_zeros_like(lua_State *L) { return like(L, MAKE_ZEROS); }
static int l_ones_like(lua_State *L) { return like(L, MAKE_ONES); }
static int l_empty_like(lua_State *L) { return like(L, MAKE_EMPTY); }
static int l_full_like(lua_State *L) { return like(L, MAKE_FULL); }
static int l_rand_like(lua_State *L) { return like(L, MAKE_RAND); }
static int l_randn_like(lua_State *L) { return like(L, MAKE_RANDN); }

static int l_randint_like(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  lua_Integer low = 1, high = luaL_checkinteger(L, 2);
  int opt = 3;
  if (lua_type(L, 3) == LUA_TNUMBER) {
    low = high;
    high = luaL_checkinteger(L, 3);
    opt = 4;
  }
  ember_dtype dt = l_optdtype_field(L, opt, t->dtype);
  PUSH(L, ember_randint_gen(l_optgen(L, opt), (int64_t)low, (int64_t)high, t->ndim, t->shape, dt));
  l_opt_place(L, opt, t->storage->device);
  return 1;
}

static int l_manual_seed(lua_State *L) {
  ember_generator_seed(l_gen(L), (uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

static int l_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)l_gen(L)->seed);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Information
** ======================================================================= */

static void push_shape(lua_State *L, int n, const int64_t *v) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static int l_shape(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  push_shape(L, t->ndim, t->shape);
  return 1;
}

/* size() is the shape; size(d) one dimension */
static int l_size(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (lua_isnoneornil(L, 2)) return l_shape(L);
  int d = ember_wrap_dim("size", l_checkdim(L, 2), t->ndim);
  if (d < 0) return l_error(L);
  lua_pushinteger(L, (lua_Integer)t->shape[d]);
  return 1;
}

static int l_stride(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (lua_isnoneornil(L, 2)) { push_shape(L, t->ndim, t->strides); return 1; }
  int d = ember_wrap_dim("stride", l_checkdim(L, 2), t->ndim);
  if (d < 0) return l_error(L);
  lua_pushinteger(L, (lua_Integer)t->strides[d]);
  return 1;
}

static int l_dim(lua_State *L) {
  lua_pushinteger(L, l_check(L, 1)->ndim);
  return 1;
}

static int l_is_floating_point(lua_State *L) {
  lua_pushboolean(L, ember_dtype_is_float(l_check(L, 1)->dtype));
  return 1;
}

static int l_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ember_numel(l_check(L, 1)));
  return 1;
}

static int l_is_contiguous(lua_State *L) {
  lua_pushboolean(L, ember_is_contiguous(l_check(L, 1)));
  return 1;
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, ember_lua_totensor(L, 1) != NULL);
  return 1;
}

static int l_type(lua_State *L) {
  lua_pushstring(L, ember_dtype_name(l_check(L, 1)->dtype));
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Views and copies
** ======================================================================= */

/* Sizes from the arguments at idx..: integers, or one table of them
   (-1 allowed: view/reshape infer it, expand keeps the size).  */
static int read_sizes(lua_State *L, int idx, int64_t *shape) {
  int n = 0;
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_Unsigned len = lua_rawlen(L, idx);
    if (len > EMBER_MAX_DIMS) return luaL_argerror(L, idx, "too many dimensions");
    for (lua_Unsigned i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i);
      int isint;
      shape[n++] = (int64_t)lua_tointegerx(L, -1, &isint);
      if (!isint) return luaL_argerror(L, idx, "sizes must be integers");
      lua_pop(L, 1);
    }
  } else {
    for (int i = idx; !lua_isnone(L, i); i++) {
      if (n == EMBER_MAX_DIMS) return luaL_argerror(L, i, "too many dimensions");
      shape[n++] = (int64_t)luaL_checkinteger(L, i);
    }
  }
  return n;
}

static int reshape_like(lua_State *L, int copy_ok) {
  ember_tensor *t = l_check(L, 1);
  int64_t shape[EMBER_MAX_DIMS];
  int n = read_sizes(L, 2, shape);
  PUSH(L, copy_ok ? ember_reshape(t, n, shape) : ember_view(t, n, shape));
  return 1;
}
static int l_view(lua_State *L) { return reshape_like(L, 0); }
static int l_reshape(lua_State *L) { return reshape_like(L, 1); }

static int l_view_as(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *o = l_check(L, 2);
  PUSH(L, ember_view(t, o->ndim, o->shape));
  return 1;
}

static int l_reshape_as(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *o = l_check(L, 2);
  PUSH(L, ember_reshape(t, o->ndim, o->shape));
  return 1;
}

static int l_transpose(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d0 = l_checkdim(L, 2), d1 = l_checkdim(L, 3);
  PUSH(L, ember_transpose(t, d0, d1));
  return 1;
}

/* t:t() transposes a matrix (and leaves 0-d and 1-d tensors alone) */
static int l_t(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (t->ndim > 2)
    return luaL_error(L, "t: expected a tensor with at most 2 dimensions, got %d", t->ndim);
  PUSH(L, t->ndim < 2 ? ember_transpose(t, 0, 0) : ember_transpose(t, 0, 1));
  return 1;
}

static int l_permute(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int perm[EMBER_MAX_DIMS], n = 0;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_Unsigned len = lua_rawlen(L, 2);
    if (len > EMBER_MAX_DIMS) return luaL_argerror(L, 2, "too many dimensions");
    for (lua_Unsigned i = 1; i <= len; i++) {
      lua_rawgeti(L, 2, (lua_Integer)i);
      perm[n++] = l_checkdim(L, lua_gettop(L));
      lua_pop(L, 1);
    }
  } else {
    for (int i = 2; !lua_isnone(L, i); i++) {
      if (n == EMBER_MAX_DIMS) return luaL_argerror(L, i, "too many dimensions");
      perm[n++] = l_checkdim(L, i);
    }
  }
  PUSH(L, ember_permute(t, n, perm));
  return 1;
}

/* narrow(dim, start, length): start is 1-based */
static int l_narrow(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  if (start < 1) return luaL_argerror(L, 3, "start must be >= 1 (indices count from 1)");
  PUSH(L, ember_narrow(t, d, (int64_t)start - 1, (int64_t)len));
  return 1;
}

/* select(dim, index): index is 1-based, negative from the end */
static int l_select(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  lua_Integer i = luaL_checkinteger(L, 3);
  int wd = t->ndim ? ember_wrap_dim("select", d, t->ndim) : 0;
  if (wd < 0) return l_error(L);
  lua_Integer n = t->ndim ? (lua_Integer)t->shape[wd] : 0;
  if (i == 0 || i > n || i < -n)
    return luaL_error(L, "select: index %I is out of range for dimension %d of size %I",
                      i, wd + 1, n);
  PUSH(L, ember_select(t, d, (int64_t)(i > 0 ? i - 1 : n + i)));
  return 1;
}

/* diagonal([offset [, d1 [, d2]]]): a view, as PyTorch's; offset 0 and
   dims 1, 2 by default */
static int l_diagonal(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  lua_Integer off = luaL_optinteger(L, 2, 0);
  int d1 = lua_isnoneornil(L, 3) ? 0 : l_checkdim(L, 3);
  int d2 = lua_isnoneornil(L, 4) ? 1 : l_checkdim(L, 4);
  PUSH(L, ember_diagonal(t, (int64_t)off, d1, d2));
  return 1;
}

static int l_squeeze(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d = lua_isnoneornil(L, 2) ? EMBER_ALL_DIMS : l_checkdim(L, 2);
  PUSH(L, ember_squeeze(t, d));
  return 1;
}

static int l_unsqueeze(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  PUSH(L, ember_unsqueeze(t, d));
  return 1;
}

static int l_expand(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int64_t shape[EMBER_MAX_DIMS];
  int n = read_sizes(L, 2, shape);
  PUSH(L, ember_expand(t, n, shape));
  return 1;
}

static int l_expand_as(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *o = l_check(L, 2);
  PUSH(L, ember_expand(t, o->ndim, o->shape));
  return 1;
}

static int l_flatten(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d0 = l_optdim(L, 2, 0), d1 = l_optdim(L, 3, -1);
  PUSH(L, ember_flatten(t, d0, d1));
  return 1;
}

static int l_contiguous(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (ember_is_contiguous(t)) { lua_settop(L, 1); return 1; }
  PUSH(L, ember_contiguous(t));
  return 1;
}

static int l_clone(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  PUSH(L, ember_clone(t));
  return 1;
}

/* fill_(v) (and its Torch7 name fill): in place, returns the tensor; an
   integer goes in exactly, a float or boolean as a double */
static int l_fillv(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int rc;
  if (lua_isinteger(L, 2)) {
    rc = ember_fill_int_(t, (int64_t)lua_tointeger(L, 2));
  } else {
    double v = lua_isboolean(L, 2) ? lua_toboolean(L, 2) : luaL_checknumber(L, 2);
    rc = ember_fill_(t, v);
  }
  if (rc < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_zero_(lua_State *L) {
  if (ember_fill_(l_check(L, 1), 0.0) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

/* copy(src): in place (src broadcasts, dtypes convert), returns the tensor */
static int l_copy(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *src = l_check(L, 2);
  if (ember_copy_(t, src) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Conversions
** ======================================================================= */

static int convert(lua_State *L, ember_dtype dt) {
  ember_tensor *t = l_check(L, 1);
  if (t->dtype == dt) { lua_settop(L, 1); return 1; }
  PUSH(L, ember_to_dtype(t, dt));
  return 1;
}
static int l_float(lua_State *L) { return convert(L, EMBER_FLOAT32); }
static int l_double(lua_State *L) { return convert(L, EMBER_FLOAT64); }
static int l_int(lua_State *L) { return convert(L, EMBER_INT32); }
static int l_long(lua_State *L) { return convert(L, EMBER_INT64); }
static int l_byte(lua_State *L) { return convert(L, EMBER_UINT8); }
static int l_bool(lua_State *L) { return convert(L, EMBER_BOOL); }

/* to(dtype) or to(device) or to(tensor): like PyTorch's Tensor.to */
static int l_to(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  ember_tensor *o = ember_lua_totensor(L, 2);
  if (o) return convert(L, o->dtype);
  (void)t;
  if (l_isdevice(L, 2)) return l_to_device(L);
  return convert(L, l_checkdtype(L, 2));
}

/* }====================================================================== */

/* {======================================================================
** Math
** ======================================================================= */

static int l_add(lua_State *L) { return l_arith(L, EMBER_ADD); }
static int l_sub(lua_State *L) { return l_arith(L, EMBER_SUB); }
static int l_mul(lua_State *L) { return l_arith(L, EMBER_MUL); }
static int l_div(lua_State *L) { return l_arith(L, EMBER_DIV); }
static int l_pow(lua_State *L) { return l_arith(L, EMBER_POW); }
static int l_maximum(lua_State *L) { return l_arith(L, EMBER_MAXIMUM); }
static int l_minimum(lua_State *L) { return l_arith(L, EMBER_MINIMUM); }
static int l_remainder(lua_State *L) { return l_arith(L, EMBER_REMAINDER); }
static int l_fmod(lua_State *L) { return l_arith(L, EMBER_FMOD); }
static int l_atan2(lua_State *L) { return l_arith(L, EMBER_ATAN2); }
static int l_hypot(lua_State *L) { return l_arith(L, EMBER_HYPOT); }

/* a:op_(b): in place into a, returns a */
static int arith_(lua_State *L, ember_binary_op op) {
  ember_tensor *a = l_check(L, 1);
  ember_tensor *b = l_operand(L, 2, a);
  int rc = ember_binary_(op, a, b);
  ember_tensor_release(b);
  if (rc < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}
static int l_add_(lua_State *L) { return arith_(L, EMBER_ADD); }
static int l_sub_(lua_State *L) { return arith_(L, EMBER_SUB); }
static int l_mul_(lua_State *L) { return arith_(L, EMBER_MUL); }
static int l_div_(lua_State *L) { return arith_(L, EMBER_DIV); }
static int l_pow_(lua_State *L) { return arith_(L, EMBER_POW); }
static int l_remainder_(lua_State *L) { return arith_(L, EMBER_REMAINDER); }
static int l_fmod_(lua_State *L) { return arith_(L, EMBER_FMOD); }
static int l_atan2_(lua_State *L) { return arith_(L, EMBER_ATAN2); }
static int l_hypot_(lua_State *L) { return arith_(L, EMBER_HYPOT); }

/* unary ops are one closure each, with the op as upvalue */
static int l_unary(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  PUSH(L, ember_unary((ember_unary_op)lua_tointeger(L, lua_upvalueindex(1)), t));
  return 1;
}

static int l_unary_(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (ember_unary_((ember_unary_op)lua_tointeger(L, lua_upvalueindex(1)), t) < 0)
    return l_error(L);
  lua_settop(L, 1);
  return 1;
}

static const struct { const char *name; ember_unary_op op; } unary_ops[] = {
  {"neg", EMBER_NEG}, {"abs", EMBER_ABS}, {"exp", EMBER_EXP},
  {"log", EMBER_LOG}, {"sqrt", EMBER_SQRT}, {"sin", EMBER_SIN},
  {"cos", EMBER_COS}, {"tanh", EMBER_TANH}, {"sigmoid", EMBER_SIGMOID},
  {"relu", EMBER_RELU}, {"erf", EMBER_ERF}, {"log1p", EMBER_LOG1P},
  {"expm1", EMBER_EXPM1}, {"floor", EMBER_FLOOR}, {"ceil", EMBER_CEIL},
  {"round", EMBER_ROUND}, {"trunc", EMBER_TRUNC}, {"sign", EMBER_SIGN},
  {"erfinv", EMBER_ERFINV}, {"silu", EMBER_SILU},
};

/* gelu(x [, approximate]): "none" (erf, the default) or "tanh" */
static int gelu_mode(lua_State *L, int idx) {
  const char *m = luaL_optstring(L, idx, "none");
  if (strcmp(m, "none") == 0) return 0;
  if (strcmp(m, "tanh") == 0) return 1;
  return luaL_argerror(L, idx, lua_pushfstring(L, "approximate must be "
                       "'none' or 'tanh', got '%s'", m));
}

static int l_gelu(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int mode = gelu_mode(L, 2);
  PUSH(L, ember_unary_p(EMBER_GELU, t, mode));
  return 1;
}

static int l_gelu_(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (ember_unary_p_(EMBER_GELU, t, gelu_mode(L, 2)) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

/* leaky_relu(x [, negative_slope = 0.01]) */
static int l_leaky_relu(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  double slope = luaL_optnumber(L, 2, 0.01);
  PUSH(L, ember_unary_p(EMBER_LEAKY_RELU, t, slope));
  return 1;
}

static int l_leaky_relu_(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (ember_unary_p_(EMBER_LEAKY_RELU, t, luaL_optnumber(L, 2, 0.01)) < 0)
    return l_error(L);
  lua_settop(L, 1);
  return 1;
}

/* index_add_(dim, index, src) and scatter_add_(dim, index, src) */
static int add_at(lua_State *L, int scatter) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  ember_tensor *idx = l_check(L, 3), *src = l_check(L, 4);
  int rc = scatter ? ember_scatter_add_(t, d, idx, src)
                   : ember_index_add_(t, d, idx, src);
  if (rc < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}
static int l_index_add_(lua_State *L) { return add_at(L, 0); }

/*
** index_copy_(dim, index, src), index_fill_(dim, index, value) and their
** copies index_copy, index_fill.  A number value becomes a 0-d tensor of
** t's dtype (an integer exactly, into an integer tensor), made after the
** result's slot so that no raise can leak it.
*/
static int index_write(lua_State *L, int fill, int inplace) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  ember_tensor *idx = l_check(L, 3);
  int number = fill && (lua_type(L, 4) == LUA_TNUMBER ||
                        lua_type(L, 4) == LUA_TBOOLEAN);
  ember_tensor *v = number ? NULL : l_check(L, 4);
  l_tensor *slot = inplace ? NULL : l_newslot(L);
  ember_tensor *own = NULL;
  if (number) {
    own = lua_isinteger(L, 4) && !ember_dtype_is_float(t->dtype)
              ? ember_scalar_int(lua_tointeger(L, 4), t->dtype)
              : ember_scalar(lua_type(L, 4) == LUA_TBOOLEAN ? lua_toboolean(L, 4)
                                                            : lua_tonumber(L, 4),
                             t->dtype);
    if (!own) return l_error(L);
    v = own;
  }
  if (!inplace) {
    ember_tensor *r = fill ? ember_index_fill(t, d, idx, v)
                           : ember_index_copy(t, d, idx, v);
    ember_tensor_release(own);
    l_fill(L, slot, r);
    return 1;
  }
  int rc = fill ? ember_index_fill_(t, d, idx, v) : ember_index_copy_(t, d, idx, v);
  ember_tensor_release(own);
  if (rc < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}
static int l_index_copy_(lua_State *L) { return index_write(L, 0, 1); }
static int l_index_fill_(lua_State *L) { return index_write(L, 1, 1); }
static int l_index_copy(lua_State *L) { return index_write(L, 0, 0); }
static int l_index_fill(lua_State *L) { return index_write(L, 1, 0); }
static int l_scatter_add_(lua_State *L) { return add_at(L, 1); }

/* scatter[_](dim, index, src_or_value [, {reduce = nil|"sum"|...}]): a
   number becomes a 0-d tensor of t's dtype, which the core writes at
   every index.  The in-place form returns t. */
static int scatter_call(lua_State *L, int inplace) {
  const char *fn = inplace ? "scatter_" : "scatter";
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  ember_tensor *idx = l_check(L, 3);
  if (!ember_lua_totensor(L, 4) && lua_type(L, 4) != LUA_TNUMBER &&
      !lua_isboolean(L, 4))
    return luaL_typeerror(L, 4, "tensor or number");
  ember_scatter_reduce op = EMBER_SCATTER_ASSIGN;
  if (!lua_isnoneornil(L, 5)) {
    static const char *const known[] = {"reduce", NULL};
    static const char *const names[] = {"sum", "prod", "amax", "amin", "mean"};
    luaL_checktype(L, 5, LUA_TTABLE);
    l_check_keys(L, 5, fn, "option", known);
    if (lua_getfield(L, 5, "reduce") != LUA_TNIL) {
      const char *r = lua_tostring(L, -1);
      int k = 0;
      while (k < 5 && !(r && lua_type(L, -1) == LUA_TSTRING && strcmp(r, names[k]) == 0)) k++;
      if (k == 5)
        return luaL_error(L, "%s: reduce must be one of \"sum\", \"prod\", "
                          "\"amax\", \"amin\", \"mean\", got %s", fn,
                          luaL_tolstring(L, -1, NULL));
      op = (ember_scatter_reduce)(EMBER_SCATTER_SUM + k);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 4);
  if (lua_isboolean(L, 4)) lua_pushinteger(L, lua_toboolean(L, 4)), lua_replace(L, 4);
  l_tensor *hold = l_newslot(L);   /* the source, released on error too */
  l_fill(L, hold, l_operand(L, 4, t));
  if (hold->t->dtype != t->dtype && lua_type(L, 4) == LUA_TNUMBER) {
    /* a value takes t's dtype (l_operand keeps an integer int64 beside bool) */
    ember_tensor *v = ember_to_dtype(hold->t, t->dtype);
    if (!v) return l_error(L);
    ember_tensor_release(hold->t);
    hold->t = v;
  }
  if (inplace) {
    if (ember_scatter_(t, d, idx, hold->t, op) < 0) return l_error(L);
    lua_settop(L, 1);
    return 1;
  }
  PUSH(L, ember_scatter(t, d, idx, hold->t, op));
  return 1;
}
static int l_scatter(lua_State *L) { return scatter_call(L, 0); }
static int l_scatter_i(lua_State *L) { return scatter_call(L, 1); }

/* idx:_check_index(lo, hi [, skip [, prefix [, suffix]]]): the library's
   bounds check of labels and embedding rows (ember_check_index); nothing
   on success.  On a device a bad value is reported by the next sync. */
static int l_check_index(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  lua_Integer lo = luaL_checkinteger(L, 2), hi = luaL_checkinteger(L, 3);
  int has_skip = !lua_isnoneornil(L, 4);
  lua_Integer skip = has_skip ? luaL_checkinteger(L, 4) : 0;
  const char *prefix = luaL_optstring(L, 5, "check_index: index ");
  const char *suffix = luaL_optstring(L, 6, " is out of range");
  if (ember_check_index(t, lo, hi, has_skip, skip, prefix, suffix) < 0)
    return l_error(L);
  return 0;
}

/* clamp(min, max): either may be nil */
static void clamp_bounds(lua_State *L, double *lo, double *hi) {
  *lo = luaL_optnumber(L, 2, -INFINITY);
  *hi = luaL_optnumber(L, 3, INFINITY);
  if (lua_isnoneornil(L, 2) && lua_isnoneornil(L, 3))
    luaL_error(L, "clamp: at least one of min and max must be given");
}

static int l_clamp(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  double lo, hi;
  clamp_bounds(L, &lo, &hi);
  PUSH(L, ember_clamp(t, lo, hi));
  return 1;
}

static int l_clamp_(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  double lo, hi;
  clamp_bounds(L, &lo, &hi);
  if (ember_clamp_(t, lo, hi) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

static int compare(lua_State *L, ember_cmp_op op) {
  ember_tensor *a = l_check(L, 1);
  l_tensor *slot = l_newslot(L);
  ember_tensor *b = l_operand(L, 2, a);
  ember_tensor *r = ember_compare(op, a, b);
  ember_tensor_release(b);
  l_fill(L, slot, r);
  return 1;
}
static int l_eq(lua_State *L) { return compare(L, EMBER_EQ); }
static int l_ne(lua_State *L) { return compare(L, EMBER_NE); }
static int l_lt(lua_State *L) { return compare(L, EMBER_LT); }
static int l_le(lua_State *L) { return compare(L, EMBER_LE); }
static int l_gt(lua_State *L) { return compare(L, EMBER_GT); }
static int l_ge(lua_State *L) { return compare(L, EMBER_GE); }

/* The nonzero coordinates of the tensor at 1 ([N, D] int64, 1-based) as
   D columns in a sequence: nonzero's as_tuple form.  A 0-d tensor counts
   as 1-d, as in PyTorch. */
static int nonzero_tuple(lua_State *L, ember_tensor *t) {
  int64_t one = 1;
  ember_tensor *v = t->ndim == 0 ? ember_reshape(t, 1, &one) : NULL;
  if (t->ndim == 0 && !v) return l_error(L);
  ember_tensor *nz = ember_nonzero(v ? v : t);
  ember_tensor_release(v);
  l_tensor *hold = l_newslot(L);
  l_fill(L, hold, nz);
  int d = (int)nz->shape[1];
  lua_createtable(L, d, 0);
  for (int j = 0; j < d; j++) {
    l_tensor *slot = l_newslot(L);
    l_fill(L, slot, ember_select(nz, 1, j));
    lua_rawseti(L, -2, j + 1);
  }
  return 1;
}

/* nonzero(t [, {as_tuple = false}]) */
static int l_nonzero(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int tuple = 0;
  if (!lua_isnoneornil(L, 2)) {
    static const char *const known[] = {"as_tuple", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    l_check_keys(L, 2, "nonzero", "option", known);
    tuple = lua_getfield(L, 2, "as_tuple") != LUA_TNIL && lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  if (tuple) return nonzero_tuple(L, t);
  PUSH(L, ember_nonzero(t));
  return 1;
}

/* where(cond, a, b): a and b may be numbers; where(cond) is
   nonzero(cond, {as_tuple = true}) */
static int l_where(lua_State *L) {
  if (lua_gettop(L) == 1) return nonzero_tuple(L, l_check(L, 1));
  ember_tensor *cond = l_check(L, 1);
  ember_tensor *ta = ember_lua_totensor(L, 2), *tb = ember_lua_totensor(L, 3);
  if (!ta && lua_type(L, 2) != LUA_TNUMBER) return luaL_typeerror(L, 2, "tensor or number");
  if (!tb && lua_type(L, 3) != LUA_TNUMBER) return luaL_typeerror(L, 3, "tensor or number");
  /* numbers take the dtype of the tensor beside them; two numbers give
     int64 if both are integers, else float32 (as PyTorch) */
  ember_tensor f = *cond;
  f.dtype = lua_isinteger(L, 2) && lua_isinteger(L, 3) ? EMBER_INT64 : EMBER_FLOAT32;
  const ember_tensor *ref = ta ? ta : tb ? tb : &f;
  l_tensor *slot = l_newslot(L);
  /* a lives in a slot of its own while b is converted: b's conversion may
     raise (1000 beside a uint8 tensor), and a must not leak then */
  l_tensor *hold = l_newslot(L);
  l_fill(L, hold, l_operand(L, 2, ref));
  ember_tensor *b = l_operand(L, 3, ref);
  ember_tensor *r = ember_where(cond, hold->t, b);
  ember_tensor_release(b);
  lua_pop(L, 1);
  l_fill(L, slot, r);
  return 1;
}

static int l_masked_select(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *m = l_check(L, 2);
  PUSH(L, ember_masked_select(t, m));
  return 1;
}

static int l_masked_scatter(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *m = l_check(L, 2), *src = l_check(L, 3);
  PUSH(L, ember_masked_scatter(t, m, src));
  return 1;
}

static int l_masked_scatter_(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *m = l_check(L, 2), *src = l_check(L, 3);
  if (ember_masked_scatter_(t, m, src) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_take(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *idx = l_check(L, 2);
  PUSH(L, ember_take(t, idx));
  return 1;
}

static int l_masked_fill(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *m = l_check(L, 2);
  double v = lua_isboolean(L, 3) ? lua_toboolean(L, 3) : luaL_checknumber(L, 3);
  PUSH(L, ember_masked_fill(t, m, v));
  return 1;
}

static int l_masked_fill_(lua_State *L) {
  ember_tensor *t = l_check(L, 1), *m = l_check(L, 2);
  double v = lua_isboolean(L, 3) ? lua_toboolean(L, 3) : luaL_checknumber(L, 3);
  if (ember_masked_fill_(t, m, v) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

/* tril(t [, k]) / triu(t [, k]): k the diagonal offset, an integer, 0 by
   default; the in-place forms return t */
static int l_tril(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  lua_Integer k = luaL_optinteger(L, 2, 0);   /* read before PUSH adds a slot */
  PUSH(L, ember_tril(t, k));
  return 1;
}

static int l_triu(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  lua_Integer k = luaL_optinteger(L, 2, 0);   /* read before PUSH adds a slot */
  PUSH(L, ember_triu(t, k));
  return 1;
}

static int l_tri_(lua_State *L, int upper) {
  ember_tensor *t = l_check(L, 1);
  lua_Integer k = luaL_optinteger(L, 2, 0);
  if ((upper ? ember_triu_(t, k) : ember_tril_(t, k)) < 0) return l_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_tril_(lua_State *L) { return l_tri_(L, 0); }
static int l_triu_(lua_State *L) { return l_tri_(L, 1); }

static int l_equal(lua_State *L) {
  int rc = ember_equal(l_check(L, 1), l_check(L, 2));
  if (rc < 0) return l_error(L);
  lua_pushboolean(L, rc);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Reductions
** ======================================================================= */

/* sum(), sum(dim), sum(dim, keepdim): the op is the closure's upvalue */
static const struct { const char *name; ember_reduce_op op; } reduce_ops[] = {
  {"sum", EMBER_SUM}, {"mean", EMBER_MEAN}, {"prod", EMBER_PROD},
  {"argmax", EMBER_ARGMAX}, {"argmin", EMBER_ARGMIN}, {"var", EMBER_VAR},
  {"std", EMBER_STD},
};

static int l_reduce(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  ember_reduce_op op = (ember_reduce_op)lua_tointeger(L, lua_upvalueindex(1));
  int correction = 1, keep_opt = -1;
  int opt = l_isoptions(L, 2) ? 2 : l_isoptions(L, 3) ? 3 : l_isoptions(L, 4) ? 4 : 0;
  if (opt) {
    /* every option known to one of these ops: an unknown one (a typo, an
       option of another function) is an error, not silently nothing */
    static const char *const known[] = {"correction", "unbiased", "keepdim", NULL};
    const char *fn = "reduce";
    for (size_t k = 0; k < sizeof reduce_ops / sizeof reduce_ops[0]; k++)
      if (reduce_ops[k].op == op) fn = reduce_ops[k].name;
    l_check_keys(L, opt, fn, "option", known);
    if (lua_getfield(L, opt, "keepdim") != LUA_TNIL) keep_opt = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, opt, "correction") != LUA_TNIL) correction = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, opt, "unbiased") != LUA_TNIL) correction = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (lua_isboolean(L, 4)) {
    correction = lua_toboolean(L, 4);    /* var(dim, keepdim, unbiased) */
  }
  if (lua_isnoneornil(L, 2) || opt == 2) {
    PUSH(L, ember_reduce(op, t, correction));
    return 1;
  }
  int d = l_checkdim(L, 2);
  int keep = keep_opt >= 0 ? keep_opt : lua_toboolean(L, 3) && opt != 3;
  PUSH(L, ember_reduce_dim(op, t, d, keep, correction));
  return 1;
}

/* max()/min(): the value; max(dim [, keepdim]): values and 1-based indices */
static int extreme(lua_State *L, int is_max) {
  ember_tensor *t = l_check(L, 1);
  if (lua_isnoneornil(L, 2)) {
    PUSH(L, ember_reduce(is_max ? EMBER_MAX : EMBER_MIN, t, 0));
    return 1;
  }
  if (ember_lua_totensor(L, 2))   /* max(a, b) elementwise, as torch.max */
    return l_arith(L, is_max ? EMBER_MAXIMUM : EMBER_MINIMUM);
  int d = l_checkdim(L, 2);
  int keep = lua_toboolean(L, 3);
  l_tensor *vs = l_newslot(L);
  l_tensor *is = l_newslot(L);
  ember_tensor *v, *i;
  int rc = is_max ? ember_max_dim(t, d, keep, &v, &i) : ember_min_dim(t, d, keep, &v, &i);
  if (rc < 0) return l_error(L);
  vs->t = v;
  is->t = i;
  return 2;
}
static int l_max(lua_State *L) { return extreme(L, 1); }
static int l_min(lua_State *L) { return extreme(L, 0); }

/* cumsum(t, dim [, {dtype=}]) / cumprod: the dtype the input is cast to
   first; without it PyTorch's default (bool and integers in int64). */
static int cum_dtype(lua_State *L, int is_prod) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  ember_dtype dt = l_optdtype_field(L, 3, EMBER_NDTYPES);
  int dtype = dt == EMBER_NDTYPES ? -1 : (int)dt;
  PUSH(L, is_prod ? ember_cumprod(t, d, dtype) : ember_cumsum(t, d, dtype));
  return 1;
}
static int l_cumsum(lua_State *L) { return cum_dtype(L, 0); }
static int l_cumprod(lua_State *L) { return cum_dtype(L, 1); }

static int l_logcumsumexp(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  PUSH(L, ember_logcumsumexp(t, l_checkdim(L, 2)));
  return 1;
}

/* cummax(t, dim): values and 1-based indices (int64) */
static int l_cummax(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  l_tensor *vs = l_newslot(L);
  l_tensor *is = l_newslot(L);
  ember_tensor *v, *i;
  if (ember_cummax(t, d, &v, &i) < 0) return l_error(L);
  vs->t = v;
  is->t = i;
  return 2;
}

/* {======================================================================
** Sorting and selection
** ======================================================================= */

/* The options table at idx, if any (nil and none: every default): each key
   one of `known` (NULL-terminated).  Returns whether there is a table. */
static int sort_opts(lua_State *L, int idx, const char *fn,
                     const char *const *known) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (lua_type(L, idx) != LUA_TTABLE)
    return luaL_error(L, "%s: options must be a table, got %s", fn,
                      luaL_typename(L, idx));
  l_check_keys(L, idx, fn, "option", known);
  return 1;
}

/* A boolean option of the table at idx (or none). */
static int sort_flag(lua_State *L, int idx, const char *fn, const char *key,
                     int def) {
  if (lua_isnoneornil(L, idx)) return def;
  int ty = lua_getfield(L, idx, key);
  if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
    return luaL_error(L, "%s: %s must be a boolean, got %s", fn, key,
                      luaL_typename(L, -1));
  int v = ty == LUA_TNIL ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* dim at idx (default: the last) and the options after it, or the
   options at idx itself; *opt gets where the options are. */
static int sort_dim(lua_State *L, int idx, int *opt) {
  if (lua_type(L, idx) == LUA_TTABLE) {
    *opt = idx;
    return -1;
  }
  *opt = idx + 1;
  return l_optdim(L, idx, -1);
}

/* Push values and indices of a selection (rc from the core). */
static int push_pair(lua_State *L, l_tensor *vs, l_tensor *is, int rc,
                     ember_tensor *v, ember_tensor *i) {
  if (rc < 0) return l_error(L);
  vs->t = v;
  is->t = i;
  return 2;
}

/* sort(t [, dim] [, {descending=, stable=}]) -> values, indices; argsort
   the indices alone.  Always stable (stable = false is allowed). */
static int sort_common(lua_State *L, const char *fn, int want_values) {
  static const char *const known[] = {"descending", "stable", NULL};
  ember_tensor *t = l_check(L, 1);
  int opt, d = sort_dim(L, 2, &opt);
  sort_opts(L, opt, fn, known);
  int desc = sort_flag(L, opt, fn, "descending", 0);
  sort_flag(L, opt, fn, "stable", 1);
  l_tensor *vs = l_newslot(L);
  l_tensor *is = l_newslot(L);
  ember_tensor *v, *i;
  int rc = ember_sort(t, d, desc, &v, &i);
  if (want_values) return push_pair(L, vs, is, rc, v, i);
  if (rc < 0) return l_error(L);
  ember_tensor_release(v);
  is->t = i;
  return 1;
}
static int l_sort(lua_State *L) { return sort_common(L, "sort", 1); }
static int l_argsort(lua_State *L) { return sort_common(L, "argsort", 0); }

/* topk(t, k [, dim] [, {largest=, sorted=}]): always sorted */
static int l_topk(lua_State *L) {
  static const char *const known[] = {"largest", "sorted", NULL};
  ember_tensor *t = l_check(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  int opt, d = sort_dim(L, 3, &opt);
  sort_opts(L, opt, "topk", known);
  int largest = sort_flag(L, opt, "topk", "largest", 1);
  sort_flag(L, opt, "topk", "sorted", 1);
  l_tensor *vs = l_newslot(L);
  l_tensor *is = l_newslot(L);
  ember_tensor *v, *i;
  int rc = ember_topk(t, (int64_t)k, d, largest, &v, &i);
  return push_pair(L, vs, is, rc, v, i);
}

static const char *const keepdim_opt[] = {"keepdim", NULL};

/* kthvalue(t, k [, dim] [, {keepdim=}]) */
static int l_kthvalue(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  int opt, d = sort_dim(L, 3, &opt);
  sort_opts(L, opt, "kthvalue", keepdim_opt);
  int keep = sort_flag(L, opt, "kthvalue", "keepdim", 0);
  l_tensor *vs = l_newslot(L);
  l_tensor *is = l_newslot(L);
  ember_tensor *v, *i;
  int rc = ember_kthvalue(t, (int64_t)k, d, keep, &v, &i);
  return push_pair(L, vs, is, rc, v, i);
}

/* median(t) -> a 0-d value; median(t, dim [, {keepdim=}]) -> values,
   indices */
static int l_median(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  if (lua_isnoneornil(L, 2)) {
    if (!lua_isnone(L, 3))
      return luaL_error(L, "median: options need a dim (median(t) takes none)");
    PUSH(L, ember_median(t));
    return 1;
  }
  int d = l_checkdim(L, 2);
  sort_opts(L, 3, "median", keepdim_opt);
  int keep = sort_flag(L, 3, "median", "keepdim", 0);
  l_tensor *vs = l_newslot(L);
  l_tensor *is = l_newslot(L);
  ember_tensor *v, *i;
  int rc = ember_median_dim(t, d, keep, &v, &i);
  return push_pair(L, vs, is, rc, v, i);
}

/* }====================================================================== */

static int softmax(lua_State *L, int log) {
  ember_tensor *t = l_check(L, 1);
  int d = l_optdim(L, 2, -1);
  PUSH(L, log ? ember_log_softmax(t, d) : ember_softmax(t, d));
  return 1;
}
static int l_softmax(lua_State *L) { return softmax(L, 0); }
static int l_log_softmax(lua_State *L) { return softmax(L, 1); }


/* }====================================================================== */

/* {======================================================================
** Linear algebra, joining, indexing, threads
** ======================================================================= */

static int l_matmul(lua_State *L) {
  ember_tensor *a = l_check(L, 1), *b = l_check(L, 2);
  PUSH(L, ember_matmul(a, b));
  return 1;
}

/* ember._matmul_f32(a, b): bf16/f16 in, float32 out (mixed precision) */
static int l_matmul_f32(lua_State *L) {
  ember_tensor *a = l_check(L, 1), *b = l_check(L, 2);
  PUSH(L, ember_matmul_f32(a, b));
  return 1;
}

/* cat({t1, t2, ...} [, dim]) and stack: the list is a table of tensors */
static int join(lua_State *L, int stack) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int d = l_optdim(L, 2, 0);
  lua_Unsigned n = lua_rawlen(L, 1);
  if (n == 0) return luaL_argerror(L, 1, "expected a non-empty list of tensors");
  if (n > (1u << 20)) return luaL_argerror(L, 1, "too many tensors");
  ember_tensor **ts = lua_newuserdatauv(L, n * sizeof *ts, 0);  /* freed by GC */
  for (lua_Unsigned i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i);
    ts[i - 1] = ember_lua_totensor(L, -1);
    if (!ts[i - 1])
      return luaL_argerror(L, 1, lua_pushfstring(L, "element %d is a %s, "
                           "expected a tensor", (int)i, luaL_typename(L, -1)));
    lua_pop(L, 1);   /* still referenced by the table */
  }
  PUSH(L, stack ? ember_stack((int)n, ts, d) : ember_cat((int)n, ts, d));
  return 1;
}
static int l_cat(lua_State *L) { return join(L, 0); }
static int l_stack(lua_State *L) { return join(L, 1); }

static int l_index_select(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  ember_tensor *idx = l_check(L, 3);
  PUSH(L, ember_index_select(t, d, idx));
  return 1;
}

static int l_gather(lua_State *L) {
  ember_tensor *t = l_check(L, 1);
  int d = l_checkdim(L, 2);
  ember_tensor *idx = l_check(L, 3);
  PUSH(L, ember_gather(t, d, idx));
  return 1;
}

static int l_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 1 || n > 1024) return luaL_argerror(L, 1, "expected 1..1024 threads");
  ember_set_num_threads((int)n);
  return 0;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, ember_get_num_threads());
  return 1;
}

/* ember.clock(): seconds on a monotonic wall clock, for timing loops */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* ember._stdout_isatty(): is standard output a terminal?  (fit's progress
** bar redraws one line on a terminal and prints a line per epoch otherwise) */
static int l_stdout_isatty(lua_State *L) {
  lua_pushboolean(L, isatty(STDOUT_FILENO));
  return 1;
}

/* ember._terminal_columns(): the width of the terminal on standard output
** (TIOCGWINSZ), or nil when it is not a terminal or does not say (the
** progress bar fits its line to it) */
static int l_terminal_columns(lua_State *L) {
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    lua_pushinteger(L, ws.ws_col);
  else
    lua_pushnil(L);
  return 1;
}

/* }====================================================================== */

/* functions of the module only (their first argument is not a tensor) */
static const luaL_Reg module_funcs[] = {
  {"zeros", l_zeros}, {"ones", l_ones}, {"empty", l_empty}, {"full", l_full},
  {"arange", l_arange}, {"linspace", l_linspace}, {"eye", l_eye},
  {"rand", l_rand}, {"randn", l_randn}, {"randint", l_randint},
  {"manual_seed", l_manual_seed}, {"initial_seed", l_initial_seed},
  {"is_tensor", l_is_tensor}, {"cat", l_cat}, {"stack", l_stack},
  {"where", l_where}, {"set_num_threads", l_set_num_threads},
  {"get_num_threads", l_get_num_threads}, {"clock", l_clock},
  {"_stdout_isatty", l_stdout_isatty},
  {"_terminal_columns", l_terminal_columns}, {NULL, NULL},
};

/* functions that are methods too */
static const luaL_Reg method_funcs[] = {
  {"zeros_like", l_zeros_like}, {"ones_like", l_ones_like},
  {"empty_like", l_empty_like}, {"full_like", l_full_like},
  {"rand_like", l_rand_like}, {"randn_like", l_randn_like},
  {"randint_like", l_randint_like},
  {"shape", l_shape}, {"size", l_size}, {"stride", l_stride}, {"dim", l_dim},
  {"numel", l_numel}, {"is_floating_point", l_is_floating_point},
  {"is_contiguous", l_is_contiguous}, {"type", l_type},
  {"view", l_view}, {"reshape", l_reshape}, {"view_as", l_view_as},
  {"reshape_as", l_reshape_as}, {"transpose", l_transpose}, {"t", l_t},
  {"permute", l_permute}, {"narrow", l_narrow}, {"select", l_select},
  {"diagonal", l_diagonal},
  {"squeeze", l_squeeze}, {"unsqueeze", l_unsqueeze}, {"expand", l_expand},
  {"expand_as", l_expand_as}, {"flatten", l_flatten},
  {"contiguous", l_contiguous}, {"clone", l_clone},
  {"fill", l_fillv}, {"fill_", l_fillv}, {"zero_", l_zero_},
  {"copy", l_copy}, {"copy_", l_copy},
  {"float", l_float}, {"double", l_double}, {"int", l_int}, {"long", l_long},
  {"byte", l_byte}, {"bool", l_bool}, {"to", l_to},
  {"add", l_add}, {"sub", l_sub}, {"mul", l_mul}, {"div", l_div},
  {"pow", l_pow}, {"maximum", l_maximum}, {"minimum", l_minimum},
  {"remainder", l_remainder}, {"fmod", l_fmod}, {"atan2", l_atan2},
  {"hypot", l_hypot}, {"remainder_", l_remainder_}, {"fmod_", l_fmod_},
  {"atan2_", l_atan2_}, {"hypot_", l_hypot_},
  {"add_", l_add_}, {"sub_", l_sub_}, {"mul_", l_mul_}, {"div_", l_div_},
  {"pow_", l_pow_}, {"clamp", l_clamp}, {"clamp_", l_clamp_},
  {"eq", l_eq}, {"ne", l_ne}, {"lt", l_lt}, {"le", l_le}, {"gt", l_gt},
  {"ge", l_ge}, {"masked_fill", l_masked_fill},
  {"masked_fill_", l_masked_fill_}, {"equal", l_equal},
  {"tril", l_tril}, {"triu", l_triu}, {"tril_", l_tril_}, {"triu_", l_triu_},
  {"max", l_max}, {"min", l_min}, {"softmax", l_softmax},
  {"log_softmax", l_log_softmax}, {"matmul", l_matmul}, {"_matmul_f32", l_matmul_f32},
  {"index_select", l_index_select}, {"gather", l_gather},
  {"gelu", l_gelu}, {"gelu_", l_gelu_}, {"leaky_relu", l_leaky_relu},
  {"leaky_relu_", l_leaky_relu_}, {"index_add_", l_index_add_},
  {"index_copy_", l_index_copy_}, {"index_fill_", l_index_fill_},
  {"index_copy", l_index_copy}, {"index_fill", l_index_fill},
  {"scatter_add_", l_scatter_add_}, {"_check_index", l_check_index},
  {"scatter", l_scatter}, {"scatter_", l_scatter_i}, {"nonzero", l_nonzero},
  {"masked_select", l_masked_select}, {"masked_scatter", l_masked_scatter},
  {"masked_scatter_", l_masked_scatter_}, {"take", l_take},
  {"cumsum", l_cumsum}, {"cumprod", l_cumprod}, {"cummax", l_cummax},
  {"logcumsumexp", l_logcumsumexp},
  {"sort", l_sort}, {"argsort", l_argsort}, {"topk", l_topk},
  {"kthvalue", l_kthvalue}, {"median", l_median},
  {NULL, NULL},
};

/* set t[name] = f in both tables at `module` and `methods` */
static void set_both(lua_State *L, int module, int methods, const char *name) {
  lua_pushvalue(L, -1);
  lua_setfield(L, module, name);
  lua_setfield(L, methods, name);
}

void l_register(lua_State *L, const luaL_Reg *module_only, const luaL_Reg *both) {
  lua_pushvalue(L, -2);
  if (module_only) luaL_setfuncs(L, module_only, 0);
  luaL_setfuncs(L, both, 0);
  lua_pop(L, 1);
  luaL_setfuncs(L, both, 0);
}

void l_register_ops(lua_State *L) {
  int methods = lua_gettop(L), module = methods - 1;
  l_register(L, module_funcs, method_funcs);
  char name[32];
  for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++) {
    lua_pushinteger(L, unary_ops[i].op);
    lua_pushcclosure(L, l_unary, 1);
    set_both(L, module, methods, unary_ops[i].name);
    lua_pushinteger(L, unary_ops[i].op);
    lua_pushcclosure(L, l_unary_, 1);
    snprintf(name, sizeof name, "%s_", unary_ops[i].name);
    set_both(L, module, methods, name);
  }
  for (size_t i = 0; i < sizeof reduce_ops / sizeof reduce_ops[0]; i++) {
    lua_pushinteger(L, reduce_ops[i].op);
    lua_pushcclosure(L, l_reduce, 1);
    set_both(L, module, methods, reduce_ops[i].name);
  }
}
