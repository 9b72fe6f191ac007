/*
** ember_lua.h -- Ember's Lua bindings, for the `ember` executable and for C
** host programs that embed the engine.
**
** A host opens a lua_State, calls luaopen_ember (through luaL_requiref, so
** the module is also in package.loaded), and exchanges tensors with Lua:
**
**     lua_State *L = luaL_newstate();
**     luaL_openlibs(L);
**     luaL_requiref(L, "ember", luaopen_ember, 1);   // global `ember`
**     lua_pop(L, 1);
**     float buf[4] = {1, 2, 3, 4};
**     int64_t shape[1] = {4};
**     ember_tensor *t = ember_from_blob(buf, EMBER_FLOAT32, 1, shape, NULL,
**                                       NULL, NULL);   // wraps, no copy
**     ember_lua_push(L, t);       // Lua now holds a reference
**     ember_tensor_release(t);    // drop ours
**
** Every function here follows the Lua API's conventions: errors are raised
** with lua_error, so call them inside a protected call.
*/
#ifndef EMBER_LUA_H
#define EMBER_LUA_H

#include <lua.h>

#include "ember.h"

/* The Lua library: tensors, and the Lua modules built in at compile time
   (ember.nn, ... as they exist).  Pushes the `ember` table. */
int luaopen_ember(lua_State *L);
/* The C part alone (`require "ember.core"`). */
int luaopen_ember_core(lua_State *L);

/* Push t as a Lua tensor; Lua takes its own reference (t is retained). */
void ember_lua_push(lua_State *L, ember_tensor *t);
/* The tensor at idx, or a Lua error naming the argument. Borrowed. */
ember_tensor *ember_lua_check(lua_State *L, int idx);
/* The tensor at idx, or NULL if it is not a (live) tensor. Borrowed. */
ember_tensor *ember_lua_totensor(lua_State *L, int idx);

#endif
