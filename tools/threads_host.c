/*
** threads_host.c -- independent lua_States on concurrent host threads
** (docs/c-api.md, "Thread safety").
**
** A C host that embeds Ember the way a server would: one lua_State per
** host thread, each training its own small seeded model at the same time.
** Each thread opens its state (luaopen_ember, concurrently), waits at a
** barrier so that the training runs really overlap, then trains a small
** CNN for a few epochs: random initialisation and random data from the
** state's generator, dropout, a shuffling data.loader, Adam, an evaluation
** under no_grad after every epoch, anomaly detection on in every other
** thread.  Its result is the final loss and evaluation loss as hex floats
** and a 64-bit FNV-1a hash of every parameter's bytes, and the sum of
** draws through the C API from the thread's default generator, made with
** recording off in every other thread while the rest train.
**
** Every seed is first run alone (one thread at a time: the reference),
** then in rounds of 2 and 4 concurrent threads, and every concurrent
** result must equal its seed's reference bit for bit.  Two states on the
** main thread drawing in turns must each draw what they draw alone.  A
** process-wide grad mode would show as "backward: the tensor does not
** require grad and has no grad_fn" (one thread's no_grad switching
** recording off in another), a shared generator as differing losses.
**
** One kernel thread each (ember_set_num_threads(1) before any state
** opens): equality bit for bit needs every reduction and GEMM split as
** in the reference run, which a fixed count gives, but the host threads
** already fill CI's cores, and OpenMP teams that spin while waiting would
** crawl when 4 of them share 2 cores.  It also keeps libgomp's thread
** pool, whose futex barriers ThreadSanitizer cannot see, out of `make
** tsan` (the kernels' own threading is not what this program checks).
**
** Usage: threads-host [rounds...]   (default: "2 4"; each a thread count)
** Prints one line per run and "threads-host: ok"; exits 1 on any
** mismatch or error.
*/
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "ember.h"
#include "ember_lua.h"

#define MAX_THREADS 16
#define RESULT_SIZE 160

/* train(seed, anomaly) -> "loss=<%a> eval=<%a> params=<hash>" */
static const char *script =
  "local nn, optim, data = ember.nn, ember.optim, ember.data\n"
  "local function hash(model)\n"
  "  local h = -3750763034362895579   -- FNV-1a 64 offset basis\n"
  "  for _, p in ipairs(model:parameters()) do\n"
  "    for _, v in ipairs(p:contiguous():view(-1):totable()) do\n"
  "      local s = string.pack('<f', v)\n"
  "      for i = 1, 4 do h = (h ~ s:byte(i)) * 1099511628211 end\n"
  "    end\n"
  "  end\n"
  "  return h\n"
  "end\n"
  "function train(seed, anomaly)\n"
  "  ember.set_anomaly_detection(anomaly)\n"
  "  ember.manual_seed(seed)\n"
  "  local model = nn.Sequential{\n"
  "    nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),\n"
  "    nn.Linear(36, 16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 3)}\n"
  "  local x = ember.randn(96, 1, 8, 8)\n"
  "  local y = ember.randint(1, 3, 96)\n"
  "  local opt = optim.Adam(model:parameters(), {lr = 1e-2})\n"
  "  local loss, eval\n"
  "  for _ = 1, 5 do\n"
  "    model:train()\n"
  "    for xb, yb in data.loader(x, y, {batch_size = 8, shuffle = true}) do\n"
  "      opt:zero_grad()\n"
  "      local l = nn.functional.cross_entropy(model(xb), yb)\n"
  "      l:backward()\n"
  "      opt:step()\n"
  "      loss = l:item()\n"
  "    end\n"
  "    model:eval()\n"
  "    eval = ember.no_grad(function()\n"
  "      return nn.functional.cross_entropy(model(x), y):item()\n"
  "    end)\n"
  "  end\n"
  "  ember.set_anomaly_detection(false)\n"
  "  return ('loss=%a eval=%a params=%016x'):format(loss, eval, hash(model))\n"
  "end\n";

typedef struct {
  int seed;
  int anomaly;
  pthread_barrier_t *start;     /* NULL: run alone */
  char result[RESULT_SIZE];     /* or "error: ..." */
  int ok;
} job;

static void fail(job *j, const char *what, const char *msg) {
  snprintf(j->result, sizeof j->result, "error: %s: %s", what, msg ? msg : "?");
  j->ok = 0;
}

/* The C API on this thread, no Lua: the thread's default generator and
   grad mode.  Odd seeds draw with recording off, which must not reach the
   other threads (they are training).  Returns the draws' sum, or NAN. */
static double c_part(int seed) {
  ember_manual_seed((uint64_t)seed);
  int was = ember_is_grad_enabled();
  ember_set_grad_enabled(!(seed & 1));
  int64_t shape[1] = {64};
  double sum = 0;
  for (int k = 0; k < 200; k++) {
    ember_tensor *t = ember_randn(1, shape, EMBER_FLOAT64);
    if (!t) return NAN;
    const double *d = ember_data(t);
    for (int i = 0; i < 64; i++) sum += d[i];
    ember_tensor_release(t);
  }
  int mode = ember_is_grad_enabled();
  ember_set_grad_enabled(was);
  return mode == !(seed & 1) && ember_default_generator()->offset == 200 * 64 ? sum : NAN;
}

/* One state, opened, used and closed on this thread. */
static void *run(void *arg) {
  job *j = arg;
  j->ok = 0;
  lua_State *L = luaL_newstate();
  if (!L) {
    fail(j, "luaL_newstate", "out of memory");
    if (j->start) pthread_barrier_wait(j->start);
    return NULL;
  }
  luaL_openlibs(L);
  luaL_requiref(L, "ember", luaopen_ember, 1);
  lua_pop(L, 1);
  int loaded = luaL_dostring(L, script) == LUA_OK;
  if (!loaded) fail(j, "script", lua_tostring(L, -1));
  if (j->start) pthread_barrier_wait(j->start);    /* all train together */
  double c = c_part(j->seed);
  if (loaded) {
    lua_getglobal(L, "train");
    lua_pushinteger(L, j->seed);
    lua_pushboolean(L, j->anomaly);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
      fail(j, "train", lua_tostring(L, -1));
    } else {
      snprintf(j->result, sizeof j->result, "%s c=%a", lua_tostring(L, -1), c);
      j->ok = c == c;                               /* not NaN */
    }
  }
  lua_close(L);
  return NULL;
}

/* Evaluate a chunk in L and return its string result in buf (or "error"). */
static void eval(lua_State *L, const char *chunk, char *buf, size_t size) {
  if (luaL_dostring(L, chunk) != LUA_OK || !lua_isstring(L, -1))
    snprintf(buf, size, "error: %s", lua_tostring(L, -1));
  else
    snprintf(buf, size, "%s", lua_tostring(L, -1));
  lua_settop(L, 0);
}

static lua_State *open_state(void) {
  lua_State *L = luaL_newstate();
  if (!L) return NULL;
  luaL_openlibs(L);
  luaL_requiref(L, "ember", luaopen_ember, 1);
  lua_pop(L, 1);
  return L;
}

/* Two states on one thread, drawing in turns: each state's draws are
   those of its seed alone (the generator is the state's, not the
   thread's). */
static int interleaved(void) {
  static const char *first = "ember.manual_seed(5) "
                             "return ('%a'):format(ember.rand(3):sum():item())";
  static const char *next = "return ('%a %d'):format(ember.randn(3):sum():item(), "
                            "ember.get_rng_state().offset)";
  char a1[RESULT_SIZE], a2[RESULT_SIZE], r1[RESULT_SIZE], r2[RESULT_SIZE], b[RESULT_SIZE];
  lua_State *A = open_state(), *B = open_state();
  if (!A || !B) return 0;
  eval(A, first, a1, sizeof a1);
  eval(B, "ember.manual_seed(6) ember.rand(100) return 'b'", b, sizeof b);
  eval(A, next, a2, sizeof a2);
  lua_close(B);
  lua_close(A);
  lua_State *R = open_state();
  if (!R) return 0;
  eval(R, first, r1, sizeof r1);
  eval(R, next, r2, sizeof r2);
  lua_close(R);
  int same = strcmp(a1, r1) == 0 && strcmp(a2, r2) == 0 && strcmp(b, "b") == 0 &&
             strncmp(a1, "error", 5) != 0 && strncmp(a2, "error", 5) != 0;
  printf("two states on one thread, in turns: %s %s%s\n", a2, a1,
         same ? "" : "   DIFFERS from the state alone");
  return same;
}

static const int seeds[MAX_THREADS] = {11, 22, 33, 44, 55, 66, 77, 88,
                                       99, 110, 121, 132, 143, 154, 165, 176};

int main(int argc, char **argv) {
  int rounds[8] = {2, 4}, nrounds = 2;
  if (argc > 1) {
    nrounds = 0;
    for (int i = 1; i < argc && nrounds < 8; i++) {
      int n = atoi(argv[i]);
      if (n < 1 || n > MAX_THREADS) {
        fprintf(stderr, "threads-host: a round is 1..%d threads, got '%s'\n",
                MAX_THREADS, argv[i]);
        return 2;
      }
      rounds[nrounds++] = n;
    }
  }
  int most = 0;
  for (int r = 0; r < nrounds; r++) if (rounds[r] > most) most = rounds[r];

  ember_set_num_threads(1);     /* see the comment at the top */

  /* The references: each seed alone, one after the other. */
  job ref[MAX_THREADS];
  int bad = 0;
  for (int i = 0; i < most; i++) {
    ref[i] = (job){.seed = seeds[i], .anomaly = i % 2, .start = NULL};
    run(&ref[i]);
    printf("alone    seed %3d: %s\n", ref[i].seed, ref[i].result);
    if (!ref[i].ok) bad++;
  }

  if (!interleaved()) bad++;

  for (int r = 0; r < nrounds && !bad; r++) {
    int n = rounds[r];
    pthread_t th[MAX_THREADS];
    job jobs[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    int started = 0;
    for (int i = 0; i < n; i++) {
      jobs[i] = (job){.seed = seeds[i], .anomaly = i % 2, .start = &start};
      if (pthread_create(&th[i], NULL, run, &jobs[i]) != 0) {
        fprintf(stderr, "threads-host: pthread_create failed\n");
        return 1;     /* the started threads wait at the barrier: exit */
      }
      started++;
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < n; i++) {
      int same = jobs[i].ok && strcmp(jobs[i].result, ref[i].result) == 0;
      printf("%d threads seed %3d: %s%s\n", n, jobs[i].seed, jobs[i].result,
             same ? "" : "   DIFFERS from the seed run alone");
      if (!same) bad++;
    }
  }
  printf("threads-host: %s\n", bad ? "FAILED" : "ok");
  return bad ? 1 : 0;
}
