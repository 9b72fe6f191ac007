/*
** lua_nn.c -- nn functions of the `ember` module: convolution, pooling,
** the fused normalisations and the fused cross entropy.
**
** Arguments are positional, as in torch.nn.functional:
**   conv2d(x, w [, b [, stride [, padding [, dilation [, groups]]]]])
**   max_pool2d(x, k [, stride [, padding [, dilation [, ceil_mode
**              [, return_indices]]]]])
**   avg_pool2d(x, k [, stride [, padding [, ceil_mode
**              [, count_include_pad]]]])
**   layer_norm(x, n [, weight [, bias [, eps]]])   n: trailing dims
**   rms_norm(x, n [, weight [, eps]])
**   lstm_cell(gates, c_prev) -> h, c   (the fused LSTM step)
**   gru_cell(gx, gh, h) -> h'          (the fused GRU step)
**   _cross_entropy_rows(x, target, weight, ignore_index, smoothing)
**       -> per-row loss, per-row weight (nn.functional.cross_entropy's core)
** plus the low-level backward functions.  Every size is an integer or an
** {h, w} pair; conv2d's padding may also be "valid" or "same".
*/
#include <float.h>
#include <math.h>
#include <limits.h>
#include <string.h>

#include "lua_internal.h"

/* Like lua_ops.c: the result slot is pushed before `expr` runs. */
#define PUSH(L, expr)                                                        \
  do {                                                                       \
    l_tensor *slot_ = l_newslot(L);                                          \
    l_fill(L, slot_, (expr));                                                \
  } while (0)

/* One integer of a size argument, in int range (the core checks signs). */
static int pair_item(lua_State *L, int ok, lua_Integer v, const char *fn,
                     const char *what) {
  if (!ok || v < INT_MIN || v > INT_MAX)
    luaL_error(L, "%s: %s must be an integer or a pair {h, w} of integers",
               fn, what);
  return (int)v;
}

/*
** The size argument at idx into out[2]: an integer (both dims), a table
** {h, w}, or nil/none for `def` (NULL def: the argument is required).
** Returns 0 when absent and defaulted, 1 when given.
*/
static int l_pair(lua_State *L, int idx, const char *fn, const char *what,
                  const int *def, int out[2]) {
  int isint;
  lua_Integer v;
  switch (lua_type(L, idx)) {
    case LUA_TNONE: case LUA_TNIL:
      if (!def) luaL_error(L, "%s: %s is required", fn, what);
      out[0] = def[0];
      out[1] = def[1];
      return 0;
    case LUA_TNUMBER:
      v = lua_tointegerx(L, idx, &isint);
      out[0] = out[1] = pair_item(L, isint, v, fn, what);
      return 1;
    case LUA_TTABLE:
      if (luaL_len(L, idx) != 2) pair_item(L, 0, 0, fn, what);
      for (int i = 0; i < 2; i++) {
        lua_geti(L, idx, i + 1);
        v = lua_tointegerx(L, -1, &isint);
        out[i] = pair_item(L, isint, v, fn, what);
        lua_pop(L, 1);
      }
      return 1;
    default:
      return pair_item(L, 0, 0, fn, what);
  }
}

/* An optional integer argument in int range. */
static int l_optint(lua_State *L, int idx, const char *fn, const char *what,
                    int def) {
  if (lua_isnoneornil(L, idx)) return def;
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint || v < INT_MIN || v > INT_MAX)
    luaL_error(L, "%s: %s must be an integer", fn, what);
  return (int)v;
}

/* An optional boolean argument (nil: def). */
static int l_optbool(lua_State *L, int idx, const char *fn, const char *what,
                     int def) {
  if (lua_isnoneornil(L, idx)) return def;
  if (!lua_isboolean(L, idx))
    luaL_error(L, "%s: %s must be a boolean, got %s", fn, what,
               luaL_typename(L, idx));
  return lua_toboolean(L, idx);
}

/* A tensor or nil at idx. */
static ember_tensor *l_opttensor(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? NULL : l_check(L, idx);
}

/* {======================================================================
** Convolution
** ======================================================================= */

static const int ONES[2] = {1, 1}, ZEROS[2] = {0, 0};

/* padding argument of conv2d at idx: a pair (into pad), "valid" or
   "same" (the core computes those: ember_conv2d_ex) */
static ember_pad_mode conv_padding(lua_State *L, int idx, int pad[2]) {
  if (lua_type(L, idx) != LUA_TSTRING) {
    l_pair(L, idx, "conv2d", "padding", ZEROS, pad);
    return EMBER_PAD_EXPLICIT;
  }
  const char *s = lua_tostring(L, idx);
  pad[0] = pad[1] = 0;
  if (!strcmp(s, "valid")) return EMBER_PAD_VALID;
  if (!strcmp(s, "same")) return EMBER_PAD_SAME;
  luaL_error(L, "conv2d: padding must be an integer, {h, w}, 'valid' or "
             "'same', got '%s'", s);
  return EMBER_PAD_EXPLICIT;   /* not reached */
}

/* conv2d, or with relu its fused form ember_conv2d_relu */
static int conv2d_call(lua_State *L, int relu) {
  ember_tensor *x = l_check(L, 1), *w = l_check(L, 2), *b = l_opttensor(L, 3);
  int stride[2], pad[2], dil[2];
  l_pair(L, 4, "conv2d", "stride", ONES, stride);
  l_pair(L, 6, "conv2d", "dilation", ONES, dil);
  ember_pad_mode mode = conv_padding(L, 5, pad);
  int groups = l_optint(L, 7, "conv2d", "groups", 1);
  PUSH(L, ember_conv2d_ex(x, w, b, stride, pad, dil, groups, mode, relu));
  return 1;
}

static int l_conv2d(lua_State *L) { return conv2d_call(L, 0); }
static int l_conv2d_relu(lua_State *L) { return conv2d_call(L, 1); }

/* conv2d_backward(gy, x, w, stride, padding, dilation, groups) -> gx, gw, gb */
static int l_conv2d_backward(lua_State *L) {
  const char *fn = "conv2d_backward";
  ember_tensor *gy = l_check(L, 1), *x = l_check(L, 2), *w = l_check(L, 3);
  int stride[2], pad[2], dil[2];
  l_pair(L, 4, fn, "stride", ONES, stride);
  l_pair(L, 5, fn, "padding", ZEROS, pad);
  l_pair(L, 6, fn, "dilation", ONES, dil);
  int groups = l_optint(L, 7, fn, "groups", 1);
  l_tensor *sx = l_newslot(L), *sw = l_newslot(L), *sb = l_newslot(L);
  ember_tensor *gb;
  if (ember_conv2d_backward(gy, x, w, stride, pad, dil, groups, &sx->t,
                            &sw->t, &gb) < 0)
    return l_error(L);
  l_fill(L, sb, gb);   /* paces the collector */
  return 3;
}

/* }====================================================================== */

/* {======================================================================
** Pooling
** ======================================================================= */

static int l_max_pool2d(lua_State *L) {
  const char *fn = "max_pool2d";
  ember_tensor *x = l_check(L, 1);
  int k[2], stride[2], pad[2], dil[2];
  l_pair(L, 2, fn, "kernel_size", NULL, k);
  l_pair(L, 3, fn, "stride", k, stride);
  l_pair(L, 4, fn, "padding", ZEROS, pad);
  l_pair(L, 5, fn, "dilation", ONES, dil);
  int ceil_mode = l_optbool(L, 6, fn, "ceil_mode", 0);
  int want = l_optbool(L, 7, fn, "return_indices", 0);
  l_tensor *sy = l_newslot(L), *si = want ? l_newslot(L) : NULL;
  ember_tensor *y = ember_max_pool2d(x, k, stride, pad, dil, ceil_mode,
                                     want ? &si->t : NULL);
  l_fill(L, sy, y);
  return want ? 2 : 1;
}

static int l_max_pool2d_backward(lua_State *L) {
  ember_tensor *gy = l_check(L, 1), *x = l_check(L, 2), *idx = l_check(L, 3);
  PUSH(L, ember_max_pool2d_backward(gy, x, idx));
  return 1;
}

/* the arguments after x shared by avg_pool2d and its backward, from idx */
typedef struct {
  int k[2], stride[2], pad[2], ceil_mode, count_include_pad;
} avg_args;

static void l_avg_args(lua_State *L, int idx, const char *fn, avg_args *a) {
  l_pair(L, idx, fn, "kernel_size", NULL, a->k);
  l_pair(L, idx + 1, fn, "stride", a->k, a->stride);
  l_pair(L, idx + 2, fn, "padding", ZEROS, a->pad);
  a->ceil_mode = l_optbool(L, idx + 3, fn, "ceil_mode", 0);
  a->count_include_pad = l_optbool(L, idx + 4, fn, "count_include_pad", 1);
}

static int l_avg_pool2d(lua_State *L) {
  ember_tensor *x = l_check(L, 1);
  avg_args a;
  l_avg_args(L, 2, "avg_pool2d", &a);
  PUSH(L, ember_avg_pool2d(x, a.k, a.stride, a.pad, a.ceil_mode,
                           a.count_include_pad));
  return 1;
}

static int l_avg_pool2d_backward(lua_State *L) {
  ember_tensor *gy = l_check(L, 1), *x = l_check(L, 2);
  avg_args a;
  l_avg_args(L, 3, "avg_pool2d_backward", &a);
  PUSH(L, ember_avg_pool2d_backward(gy, x, a.k, a.stride, a.pad, a.ceil_mode,
                                    a.count_include_pad));
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Normalisation and cross entropy
** ======================================================================= */

/* An optional number argument (nil: def). */
static double l_optnum(lua_State *L, int idx, const char *fn, const char *what,
                       double def) {
  if (lua_isnoneornil(L, idx)) return def;
  if (!lua_isnumber(L, idx))
    luaL_error(L, "%s: %s must be a number, got %s", fn, what,
               luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

static int l_layer_norm(lua_State *L) {
  ember_tensor *x = l_check(L, 1);
  int n = l_optint(L, 2, "layer_norm", "n (the number of normalised dims)", 0);
  ember_tensor *w = l_opttensor(L, 3), *b = l_opttensor(L, 4);
  double eps = l_optnum(L, 5, "layer_norm", "eps", 1e-5);
  PUSH(L, ember_layer_norm(x, n, w, b, eps));
  return 1;
}

/* eps defaults to the machine epsilon of x's dtype, as torch.rms_norm's */
static int l_rms_norm(lua_State *L) {
  ember_tensor *x = l_check(L, 1);
  int n = l_optint(L, 2, "rms_norm", "n (the number of normalised dims)", 0);
  ember_tensor *w = l_opttensor(L, 3);
  double eps = l_optnum(L, 4, "rms_norm", "eps",
                        x->dtype == EMBER_FLOAT64 ? DBL_EPSILON : FLT_EPSILON);
  PUSH(L, ember_rms_norm(x, n, w, eps));
  return 1;
}

static int l_cross_entropy_rows(lua_State *L) {
  ember_tensor *x = l_check(L, 1), *t = l_check(L, 2), *w = l_opttensor(L, 3);
  lua_Integer ignore = luaL_checkinteger(L, 4);
  double s = luaL_checknumber(L, 5);
  l_tensor *loss = l_newslot(L), *wt = l_newslot(L);
  ember_tensor *rw = NULL;
  l_fill(L, loss, ember_cross_entropy_rows(x, t, w, ignore, s, &rw));
  l_fill(L, wt, rw);
  return 2;
}

/* }====================================================================== */

/* lstm_cell(gates, c_prev) -> h, c: the two halves of the core's (2, B, H)
   result, as selects (recorded, so each half's gradient reaches the one
   fused node) */
static int l_lstm_cell(lua_State *L) {
  ember_tensor *g = l_check(L, 1), *c = l_check(L, 2);
  l_tensor *h_slot = l_newslot(L), *c_slot = l_newslot(L);
  ember_tensor *hc = ember_lstm_cell(g, c);
  if (!hc) l_fill(L, h_slot, NULL);            /* raises the core's error */
  ember_tensor *h = ember_select(hc, 0, 0), *cn = h ? ember_select(hc, 0, 1) : NULL;
  ember_tensor_release(hc);
  if (!cn) ember_tensor_release(h);
  l_fill(L, h_slot, cn ? h : NULL);
  l_fill(L, c_slot, cn);
  return 2;
}

static int l_gru_cell(lua_State *L) {
  ember_tensor *gx = l_check(L, 1), *gh = l_check(L, 2), *h = l_check(L, 3);
  PUSH(L, ember_gru_cell(gx, gh, h));
  return 1;
}

/* {======================================================================
** Attention
** ======================================================================= */

/* ember._scaled_dot_product_attention(q, k, v, mask|nil, is_causal,
   scale|nil, dropout_p|nil, opts|nil): nn.functional.
   scaled_dot_product_attention checks the options and calls this; opts
   may name the dropout's generator. */
static int l_scaled_dot_product_attention(lua_State *L) {
  ember_tensor *q = l_check(L, 1), *k = l_check(L, 2), *v = l_check(L, 3);
  ember_tensor *mask = lua_isnoneornil(L, 4) ? NULL : l_check(L, 4);
  int causal = lua_toboolean(L, 5);
  double scale = lua_isnoneornil(L, 6) ? NAN : luaL_checknumber(L, 6);
  double p = luaL_optnumber(L, 7, 0.0);
  if (p == 0)
    PUSH(L, ember_scaled_dot_product_attention(q, k, v, mask, causal, scale));
  else
    PUSH(L, ember_scaled_dot_product_attention_dropout(q, k, v, mask, causal,
                                                       scale, p, l_optgen(L, 8)));
  return 1;
}

/* }====================================================================== */

/* Not methods: their first argument is not "the" tensor of the call. */
static const luaL_Reg nn_module_funcs[] = {
  {"_scaled_dot_product_attention", l_scaled_dot_product_attention},
  {"lstm_cell", l_lstm_cell},
  {"gru_cell", l_gru_cell},
  {NULL, NULL},
};

/* Every function takes a tensor first: module functions and methods. */
static const luaL_Reg nn_funcs[] = {
  {"conv2d", l_conv2d},
  {"_conv2d_relu", l_conv2d_relu},
  {"conv2d_backward", l_conv2d_backward},
  {"max_pool2d", l_max_pool2d},
  {"max_pool2d_backward", l_max_pool2d_backward},
  {"avg_pool2d", l_avg_pool2d},
  {"avg_pool2d_backward", l_avg_pool2d_backward},
  {"layer_norm", l_layer_norm},
  {"rms_norm", l_rms_norm},
  {"_cross_entropy_rows", l_cross_entropy_rows},
  {NULL, NULL},
};

/* module table at -2, method table at -1 (as l_register_ops) */
void l_register_nn(lua_State *L) {
  l_register(L, nn_module_funcs, nn_funcs);
}
