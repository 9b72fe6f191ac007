/*
** error.c -- the core's error message.
**
** The core reports failure by return value and leaves a message here; the
** bindings turn it into a Lua error.  The buffer is thread-local so kernels
** running on worker threads and several host threads cannot garble it.
*/
#include <stdarg.h>
#include <stdio.h>

#include "include/ember.h"

static _Thread_local char last_error[512];

const char *ember_last_error(void) { return last_error; }

int ember_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return -1;
}
