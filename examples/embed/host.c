/*
** host.c -- a C program that embeds Ember.
**
** It opens a lua_State, loads Ember, wraps a buffer it owns as a tensor
** without copying, runs a Lua function on it, and reads the results back.
** The Lua function scales the tensor in place, so the host sees its own
** buffer change: proof that no copy was made.  When Lua lets go of the
** tensor, Ember calls our release callback (exactly once) and never frees
** the buffer.
**
** The embedding contract, shown step by step:
**   - an error inside a Lua function the host calls (a shape mismatch)
**     comes back from lua_pcall as a status and a message; the call
**     changed nothing, and the same lua_State then serves the next call;
**   - memory wrapped with no release callback is never freed or written
**     by Ember: a canary in it reads back intact after lua_close.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "ember.h"
#include "ember_lua.h"

static const char *script =
  "function normalise(t)\n"
  "  t:div_(t:sum())            -- in place: the host's buffer changes\n"
  "  return t:max(), t:argmax()\n"
  "end\n"
  "function add_bias(t, bias)\n"
  "  t:add_(bias)                -- [2,3] += [4]: a shape mismatch\n"
  "  return t\n"
  "end\n"
  "function keep(t) kept = {t, t[1], t:view(-1)} return t:sum():item() end\n";

static int released = 0;       /* calls of on_release: must end at 1 */

/* Ember calls this when the last view of the buffer dies. */
static void on_release(void *data, void *ctx) {
  (void)data;
  released++;
  printf("host: Ember released the buffer (%s)\n", (const char *)ctx);
}

/* Call the global Lua function `fn` on tensor t, expecting nres results.
   Returns lua_pcall's status; on error prints the message and pops it,
   so the stack is as before the call. */
static int call(lua_State *L, const char *fn, ember_tensor *t, ember_tensor *arg,
                int nres) {
  lua_getglobal(L, fn);
  ember_lua_push(L, t);
  if (arg) ember_lua_push(L, arg);
  int status = lua_pcall(L, arg ? 2 : 1, nres, 0);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);   /* may be a non-string error */
    printf("host: Lua error caught: %s\n", msg ? msg : "(not a string)");
    lua_pop(L, 1);
  }
  return status;
}

#define CANARY 0x5EEDC0DEu
#define NCANARY 64

int main(void) {
  float buffer[6] = {1, 2, 3, 4, 5, 5};     /* owned by the host */
  int64_t shape[2] = {2, 3};
  lua_State *L = luaL_newstate();
  if (!L) return 1;
  luaL_openlibs(L);
  luaL_requiref(L, "ember", luaopen_ember, 1);   /* global `ember` */
  lua_pop(L, 1);
  if (luaL_dostring(L, script) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    return 1;
  }

  ember_tensor *t = ember_from_blob(buffer, EMBER_FLOAT32, 2, shape, NULL,
                                    on_release, "the host's float[6]");
  if (!t) { fprintf(stderr, "host: %s\n", ember_last_error()); return 1; }

  lua_getglobal(L, "normalise");
  ember_lua_push(L, t);              /* Lua takes its own reference */
  if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
    fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    return 1;
  }
  double maxv;
  int64_t argmax;
  if (ember_item(ember_lua_check(L, -2), &maxv) < 0 ||
      ember_item_int(ember_lua_check(L, -1), &argmax) < 0) {
    fprintf(stderr, "host: %s\n", ember_last_error());
    return 1;
  }
  lua_pop(L, 2);
  printf("host: buffer after Lua = {");
  for (int i = 0; i < 6; i++) printf(i ? ", %.4f" : "%.4f", buffer[i]);
  printf("}\nhost: max = %.4f at flat position %lld (1-based)\n", maxv,
         (long long)argmax);

  /* A Lua function the host calls fails (shape mismatch): lua_pcall
     returns an error status with the message, the host's buffer is
     unchanged, and the same state runs the next call. */
  float before[6];
  memcpy(before, buffer, sizeof before);
  int64_t bshape[1] = {4};
  ember_tensor *bias = ember_full(1, bshape, 1.0, EMBER_FLOAT32);
  if (!bias) { fprintf(stderr, "host: %s\n", ember_last_error()); return 1; }
  int mismatch = call(L, "add_bias", t, bias, 1) != LUA_OK &&
                 memcmp(before, buffer, sizeof before) == 0 && lua_gettop(L) == 0;
  ember_tensor_release(bias);
  bshape[0] = 3;                                   /* now a bias that fits */
  bias = ember_full(1, bshape, 1.0, EMBER_FLOAT32);
  if (!bias) { fprintf(stderr, "host: %s\n", ember_last_error()); return 1; }
  int again = call(L, "add_bias", t, bias, 1) == LUA_OK;
  if (again) {
    again = lua_gettop(L) == 1 && buffer[0] > 1.0499f && buffer[0] < 1.0501f;
    lua_pop(L, 1);
  }
  ember_tensor_release(bias);
  ember_tensor_release(t);           /* we drop ours; Lua may still hold some */
  printf("host: %s, then the same state ran add_bias: buffer[0] = %.4f\n",
         mismatch ? "the failed call changed nothing" : "FAILED: the failed call left a trace",
         buffer[0]);

  /* Memory wrapped without a release callback: Lua keeps views of it in a
     global, the host drops its reference, and lua_close collects them.
     Ember must neither free nor write it: the canary reads back intact
     after lua_close, and our own free() below is not a double free (ASan
     and glibc would report one). */
  unsigned *canary = malloc(NCANARY * sizeof *canary);
  if (!canary) return 1;
  for (int i = 0; i < NCANARY; i++) canary[i] = CANARY;
  int64_t cshape[2] = {8, 8};
  ember_tensor *c = ember_from_blob(canary, EMBER_INT32, 2, cshape, NULL, NULL, NULL);
  if (!c) { fprintf(stderr, "host: %s\n", ember_last_error()); return 1; }
  int kept = call(L, "keep", c, NULL, 1) == LUA_OK;
  if (kept) lua_pop(L, 1);
  ember_tensor_release(c);

  /* an error inside Lua comes back to the host; the state stays usable */
  int caught = 0;
  if (luaL_dostring(L, "return normalise(ember.zeros(0))") != LUA_OK) {
    printf("host: Lua error caught: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    caught = 1;
  }
  if (luaL_dostring(L, "return ember.ones(3):sum():item()") != LUA_OK ||
      lua_tonumber(L, -1) != 3) {
    fprintf(stderr, "host: the state is not usable after an error\n");
    return 1;
  }
  lua_pop(L, 1);

  lua_close(L);                      /* collects the tensors: release runs */
  int intact = 1;
  for (int i = 0; i < NCANARY; i++) intact &= canary[i] == CANARY;
  free(canary);                      /* ours to free: Ember never did */
  printf("host: release callback called %d time(s)\n", released);
  printf("host: canary after lua_close: %s\n", intact ? "intact" : "CHANGED");
  int ok = released == 1 && caught && mismatch && again && kept && intact &&
           argmax == 5 && maxv > 0.2499 && maxv < 0.2501;
  printf("host: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
