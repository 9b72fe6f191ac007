/*
** lua_internal.h -- helpers shared by the binding files.
**
** The bindings are thin: check arguments, call one ember_ function, turn a
** failure into a Lua error with the core's message, push the result.
*/
#ifndef EMBER_LUA_INTERNAL_H
#define EMBER_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>

#include "ember_lua.h"

#define EMBER_TENSOR_MT "ember.Tensor"

/* The userdata: a pointer, NULL once closed. */
typedef struct {
  ember_tensor *t;
} l_tensor;

/*
** The state's own part of Ember (docs/c-api.md, "Threads"): everything
** that a lua_State must not share with another state, which may run on
** another thread at the same time.  One per state, a full userdata in
** the registry made by luaopen_ember_core (lua_tensor.c).
*/
typedef struct l_context {
  ember_generator gen;   /* ember.manual_seed, rand, randn, randperm, ... */
  uint64_t paced;        /* GC pacing: ember_bytes_allocated() when paced */
  size_t floor_live;     /* ember_bytes_live() after the last full collect */
} l_context;
l_context *l_ctx(lua_State *L);
/* The state's generator (l_ctx(L)->gen). */
ember_generator *l_gen(lua_State *L);
/* The generator an options table at idx names ({generator = g}, an
   ember.Generator), else the state's (lua_data.c). */
ember_generator *l_optgen(lua_State *L, int idx);

/* A fresh userdata slot on the stack (its tensor set later). */
l_tensor *l_newslot(lua_State *L);
/* Fill a slot with a result, or raise the core's error if it is NULL. */
void l_fill(lua_State *L, l_tensor *slot, ember_tensor *t);
/* Raise the core's last error. */
int l_error(lua_State *L);
/* Argument checks; dims are converted from Lua's 1-based to 0-based. */
ember_tensor *l_check(lua_State *L, int idx);
int l_checkdim(lua_State *L, int idx);
int l_optdim(lua_State *L, int idx, int def);
ember_dtype l_checkdtype(lua_State *L, int idx);
/* A shape from integers at idx.. or a table at idx; returns ndim and sets
   *next to the first argument after the shape. */
int l_checkshape(lua_State *L, int idx, int64_t *shape, int *next);
/* Options table at idx (or none): dtype field, with a default. */
ember_dtype l_optdtype_field(lua_State *L, int idx, ember_dtype def);
/* Options table at idx (or none): requires_grad applied to the tensor at
   the top of the stack. */
void l_opt_requires_grad(lua_State *L, int idx);
/* Is the value at idx an options table (a table that is not a sequence)? */
int l_isoptions(lua_State *L, int idx);
/* Raise "fn: unknown <what> 'k'" (with a suggestion) for a key of the table at idx that is
   not in `known` (NULL-terminated), as the Lua side's options check does. */
void l_check_keys(lua_State *L, int idx, const char *fn, const char *what,
                  const char *const *known);
/* The name in `known` (NULL-terminated) that key was likely a misspelling
   of, or NULL: as check.suggest on the Lua side (edit distance <= 2, or a
   prefix either way), which l_check_keys adds as "; did you mean 'x'?". */
const char *l_suggest(const char *key, const char *const *known);
/* A data set's C batch source (the loader's prefetch, lua_data.c): a
   userdata whose metatable has __ember_batch_source, a light userdata
   pointing to such a hook, is submitted to the prefetch worker by calling
   make on this thread with the userdata's index; it fills *src (retaining
   what load reads) and returns 0, or -1 with an error set.  (A struct, as
   ISO C has no conversion from void * to a function pointer.) */
typedef struct l_batch_source_hook {
  int (*make)(lua_State *L, int idx, ember_batch_source *src);
} l_batch_source_hook;

/* A tensor operand: a tensor (retained) or a number made into a 0-d tensor
   like `other`.  Returns a new reference. */
ember_tensor *l_operand(lua_State *L, int idx, const ember_tensor *other);

/* a op b with numbers allowed on either side (pushes the result) */
int l_arith(lua_State *L, ember_binary_op op);

/* With the module table at -2 and the method table at -1: register
   `module_only` (may be NULL) in the module, and `both` in the module and
   as methods, so ember.fn(t, ...) and t:fn(...) are one function. */
void l_register(lua_State *L, const luaL_Reg *module_only, const luaL_Reg *both);

/* Registration of the op functions (lua_ops.c) into the module table at
   -2 and the method table at -1. */
void l_register_ops(lua_State *L);
void l_register_tensor(lua_State *L);
void l_register_autograd(lua_State *L);  /* lua_autograd.c */
void l_register_nn(lua_State *L);        /* lua_nn.c: conv, pooling */
void l_register_dist(lua_State *L);      /* lua_dist.c: ember._dist */
void l_register_optim(lua_State *L);     /* lua_optim.c: fused steps */
void l_register_data(lua_State *L);      /* lua_data.c: IDX, randperm, RNG state,
                                            Generator, multinomial */
void l_register_io(lua_State *L);        /* lua_io.c: save, load */
void l_register_cuda(lua_State *L);      /* lua_cuda.c: devices */

/* Devices (lua_cuda.c).  l_opt_place: the options table at idx (or none)
   may say {device = "cuda"}; the tensor at the top of the stack is
   replaced by its copy there (def when no option says). */
int l_isdevice(lua_State *L, int idx);
/* The device an options table at idx names (def when none); "cuda" when
   CUDA is unavailable is an error. */
ember_device l_optdevice(lua_State *L, int idx, ember_device def);
ember_device l_checkdevice(lua_State *L, int idx);
void l_opt_place(lua_State *L, int idx, ember_device def);
int l_to_device(lua_State *L);          /* t:to(device) */

#endif
