/*
** plugin.h -- finding a plugin's shared object (core/plugin.c).
*/
#ifndef EMBER_PLUGIN_H
#define EMBER_PLUGIN_H

/* Call try_path(path, ctx) on each place `name` may be (see plugin.c), in
   order, until it returns 1 (loaded, or a definite answer); returns that
   1, or 0 when no place gave one. */
int ember_plugin_search(const char *name, int (*try_path)(const char *path, void *ctx),
                        void *ctx);

#endif
