/*
** common.c -- helpers every op family uses (see ops.h).
*/
#include <stdlib.h>

#include "ops.h"

ember_tensor *ember_temp(ember_temps *l, ember_tensor *t) {
  if (!t) return NULL;
  if (l->n == EMBER_TEMPS_MAX) {
    ember_tensor_release(t);
    ember_set_error("internal error: too many temporaries (EMBER_TEMPS_MAX)");
    return NULL;
  }
  l->t[l->n++] = t;
  return t;
}

void ember_temps_release(ember_temps *l) {
  while (l->n > 0) ember_tensor_release(l->t[--l->n]);
}

ember_node *ember_ag_node2(const char *name, ember_backward_fn fn,
                           const ember_tensor *a, const ember_tensor *b) {
  const ember_tensor *in[2] = {a, b};
  return ember_ag_node(name, fn, b ? 2 : 1, in);
}

int ember_ag_rebase(ember_tensor *t, ember_node *node, int requires) {
  struct ember_autograd_meta *m = t->grad_info;
  if (!m) {
    if (!requires) { ember_ag_node_release(node); return 0; }
    m = t->grad_info = calloc(1, sizeof *m);
    if (!m) { ember_ag_node_release(node); return ember_set_error("out of memory"); }
  }
  ember_ag_node_release(m->grad_fn);
  m->grad_fn = node;
  m->requires_grad = 1;
  return 0;
}

int ember_ag_check_target(const char *fn, const ember_tensor *t) {
  if (!ember_ag_requires(t) && t->storage->refcount > 1)
    return ember_set_error("%s: writing a value that requires grad into a "
                           "view (or a tensor sharing storage) is not "
                           "supported by autograd; build the result with "
                           "out-of-place ops (cat, stack, where)", fn);
  return 0;
}

ember_tensor *ember_scalar_as(const ember_tensor *like, double v) {
  ember_tensor *s = ember_empty_on(like->storage->device, 0, NULL, like->dtype);
  if (s && ember_fill_(s, v) < 0) { ember_tensor_release(s); return NULL; }
  return s;
}

ember_tensor *ember_zeros_meta(const ember_tensor *like,
                               const ember_in_meta *m) {
  ember_tensor *z = ember_empty_on(like->storage->device, m->ndim, m->shape,
                                   like->dtype);
  if (z && ember_fill_(z, 0) < 0) { ember_tensor_release(z); return NULL; }
  return z;
}

ember_tensor *ember_keep_dim(ember_tensor *g, int dim, int keepdim) {
  if (keepdim || dim < 0) { ember_tensor_retain(g); return g; }
  return ember_unsqueeze(g, dim);
}
