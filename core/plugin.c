/*
** plugin.c -- how the core finds and opens its separately built plugins
** (libember_cuda.so, libember_mpi.so), and what it gives every plugin.
** A plugin is looked for, on first use:
**   1. at the path its environment variable names (EMBER_CUDA_PLUGIN,
**      EMBER_MPI_PLUGIN), and nowhere else when that is set;
**   2. next to the binary that holds this code (the ember executable,
**      libember's host, or core.so), then in ../, ./build/ and ../lib/
**      from there, and ../../../ (core.so installed as
**      PREFIX/lib/lua/5.4/ember/core.so finds PREFIX/lib/);
**   3. the dynamic loader's own search (LD_LIBRARY_PATH, ...).
*/
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin.h"

/* What every plugin gets: the core's error function (a plugin links none
   of the core's symbols). */
static int api_set_error(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return ember_set_error("%s", buf);
}

const ember_core_api ember_plugin_core_api = {EMBER_PLUGIN_ABI, api_set_error};

/* Any object of this file: its address names the binary that holds it. */
static const char anchor;

/* The folder of the binary holding this code, resolved. */
static int self_dir(char *out, size_t n) {
  Dl_info info;
  char buf[PATH_MAX];
  const char *p = NULL;
  if (dladdr(&anchor, &info) && info.dli_fname && strchr(info.dli_fname, '/'))
    p = info.dli_fname;
  if (p && realpath(p, buf)) p = buf;
  else {
    ssize_t k = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (k <= 0) return -1;
    buf[k] = '\0';
    p = buf;
  }
  const char *slash = strrchr(p, '/');
  if (!slash || (size_t)(slash - p) >= n) return -1;
  memcpy(out, p, (size_t)(slash - p));
  out[slash - p] = '\0';
  return 0;
}

void *ember_plugin_open(const char *path, int flags, const char *symbol, char *reason,
                        size_t n) {
  void *h = dlopen(path, flags);
  if (!h) {
    const char *err = dlerror();
    /* a file that is there but does not load is worth a message; a bare
       name the loader did not find keeps the "not found" one */
    if (strchr(path, '/') && access(path, F_OK) == 0)
      snprintf(reason, n, "cannot load %s: %s", path, err);
    return NULL;
  }
  void *sym = dlsym(h, symbol);
  if (!sym) {
    snprintf(reason, n, "%s has no %s", path, symbol);
    dlclose(h);
  }
  return sym;
}

void ember_plugin_search(const char *name, const char *env_var, const char *builder,
                         int (*try_path)(const char *path, void *ctx), void *ctx,
                         char *reason, size_t n) {
  snprintf(reason, n, "%s not found (build it with make where %s is installed, or set %s)",
           name, builder, env_var);
  const char *env = getenv(env_var);
  if (env && *env) {
    reason[0] = '\0';
    if (!try_path(env, ctx) && !reason[0])
      snprintf(reason, n, "cannot load %s (%s): no such file", env, env_var);
    return;
  }
  char dir[PATH_MAX];
  if (self_dir(dir, sizeof dir) == 0) {
    static const char *const rel[] = {"", "/..", "/build", "/../lib", "/../../.."};
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
      char path[PATH_MAX + 64];
      snprintf(path, sizeof path, "%s%s/%s", dir, rel[i], name);
      if (access(path, F_OK) == 0 && try_path(path, ctx)) return;
    }
  }
  try_path(name, ctx);
}
