/*
** plugin.h -- finding a plugin's shared object, and what the core gives
** every plugin (core/plugin.c).
*/
#ifndef EMBER_PLUGIN_H
#define EMBER_PLUGIN_H

#include "device.h"

/* The core's functions for a plugin's init (ember_set_error). */
extern const ember_core_api ember_plugin_core_api;

/* dlopen path with flags and find `symbol` in it: the symbol, or NULL with
   why in reason (n bytes; left as it was when path is a bare name the
   loader did not find, which keeps the search's "not found"). */
void *ember_plugin_open(const char *path, int flags, const char *symbol, char *reason,
                        size_t n);

/* Look for the plugin `name` (see plugin.c): try_path(path, ctx) on each
   place in order until it returns 1 (loaded, or a definite answer).
   reason starts as "<name> not found (build it with make where <builder>
   is installed, or set <env_var>)", and try_path may replace it. */
void ember_plugin_search(const char *name, const char *env_var, const char *builder,
                         int (*try_path)(const char *path, void *ctx), void *ctx,
                         char *reason, size_t n);

#endif
