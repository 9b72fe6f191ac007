/*
** lua_optim.c -- the fused optimizer steps, for lua/ember/optim.
**
** Low-level and internal (hence the leading underscore, which also keeps
** them out of the tensor methods): the optimizer classes call them once
** per parameter and step with positional arguments, so that no table is
** built per call.  Each reads its arguments, calls one ember_*_step and
** raises the core's message on failure; they return nothing.
**
**   _sgd_step(p, g, buf|nil, lr, momentum, dampening, weight_decay,
**             nesterov, maximize, first_step)
**   _adam_step(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq|nil, step, lr,
**              beta1, beta2, eps, weight_decay, decoupled, maximize)
**   _rmsprop_step(p, g, square_avg, momentum_buf|nil, grad_avg|nil, lr,
**                 alpha, eps, weight_decay, momentum, maximize)
**   _adagrad_step(p, g, state_sum, step, lr, lr_decay, weight_decay, eps,
**                 maximize)
*/
#include "lua_internal.h"

/* A tensor or nil (NULL) at idx. */
static ember_tensor *opt_tensor(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? NULL : l_check(L, idx);
}

/* A boolean flag (nil is false); anything else is an argument error, so
   a shifted argument list does not pass silently. */
static int check_flag(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TBOOLEAN);
  return lua_toboolean(L, idx);
}

static int l_sgd_step(lua_State *L) {
  ember_tensor *p = l_check(L, 1), *g = l_check(L, 2), *buf = opt_tensor(L, 3);
  double lr = luaL_checknumber(L, 4), momentum = luaL_checknumber(L, 5);
  double dampening = luaL_checknumber(L, 6), wd = luaL_checknumber(L, 7);
  int nesterov = check_flag(L, 8), maximize = check_flag(L, 9);
  int first = check_flag(L, 10);
  if (ember_sgd_step(p, g, buf, lr, momentum, dampening, wd, nesterov,
                     maximize, first) < 0)
    return l_error(L);
  return 0;
}

static int l_adam_step(lua_State *L) {
  ember_tensor *p = l_check(L, 1), *g = l_check(L, 2);
  ember_tensor *m = l_check(L, 3), *v = l_check(L, 4), *vmax = opt_tensor(L, 5);
  lua_Integer step = luaL_checkinteger(L, 6);
  double lr = luaL_checknumber(L, 7), b1 = luaL_checknumber(L, 8);
  double b2 = luaL_checknumber(L, 9), eps = luaL_checknumber(L, 10);
  double wd = luaL_checknumber(L, 11);
  int decoupled = check_flag(L, 12), maximize = check_flag(L, 13);
  if (ember_adam_step(p, g, m, v, vmax, (int64_t)step, lr, b1, b2, eps, wd,
                      decoupled, maximize) < 0)
    return l_error(L);
  return 0;
}

static int l_rmsprop_step(lua_State *L) {
  ember_tensor *p = l_check(L, 1), *g = l_check(L, 2), *sq = l_check(L, 3);
  ember_tensor *buf = opt_tensor(L, 4), *gavg = opt_tensor(L, 5);
  double lr = luaL_checknumber(L, 6), alpha = luaL_checknumber(L, 7);
  double eps = luaL_checknumber(L, 8), wd = luaL_checknumber(L, 9);
  double momentum = luaL_checknumber(L, 10);
  int maximize = check_flag(L, 11);
  if (ember_rmsprop_step(p, g, sq, buf, gavg, lr, alpha, eps, wd, momentum,
                         maximize) < 0)
    return l_error(L);
  return 0;
}

static int l_adagrad_step(lua_State *L) {
  ember_tensor *p = l_check(L, 1), *g = l_check(L, 2), *sum = l_check(L, 3);
  lua_Integer step = luaL_checkinteger(L, 4);
  double lr = luaL_checknumber(L, 5), lr_decay = luaL_checknumber(L, 6);
  double wd = luaL_checknumber(L, 7), eps = luaL_checknumber(L, 8);
  int maximize = check_flag(L, 9);
  if (ember_adagrad_step(p, g, sum, (int64_t)step, lr, lr_decay, wd, eps,
                         maximize) < 0)
    return l_error(L);
  return 0;
}

static const luaL_Reg module_funcs[] = {
  {"_sgd_step", l_sgd_step},
  {"_adam_step", l_adam_step},
  {"_rmsprop_step", l_rmsprop_step},
  {"_adagrad_step", l_adagrad_step},
  {NULL, NULL},
};

/* module table at -2, method table at -1 (as l_register_ops); the steps
   are module functions only */
void l_register_optim(lua_State *L) {
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, module_funcs, 0);
  lua_pop(L, 1);
}
