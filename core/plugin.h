/*
** plugin.h -- finding a plugin's shared object, and what the core gives
** every plugin (core/plugin.c).
*/
#ifndef EMBER_PLUGIN_H
#define EMBER_PLUGIN_H

#include "device.h"

/* The core's functions for a plugin's init (ember_set_error). */
extern const ember_core_api ember_plugin_core_api;

/* Call try_path(path, ctx) on each place `name` may be (see plugin.c), in
   order, until it returns 1 (loaded, or a definite answer); returns that
   1, or 0 when no place gave one. */
int ember_plugin_search(const char *name, int (*try_path)(const char *path, void *ctx),
                        void *ctx);

#endif
