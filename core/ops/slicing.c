/*
** slicing.c -- Torch7's t[{ ... }]: reading and writing through a key of
** ranges, steps, integers and one index tensor, front door to autograd.
**
** A key is one ember_key per leading dim of t (see ember.h).  Ranges and
** integers are views (ember_slice, ember_select in shape.c); an index
** tensor is index_select, so a read with one is a copy, as PyTorch's
** advanced indexing.  Writing without autograd goes into that view:
** copy_ or fill_, or index_copy_/index_fill_ along the index tensor's dim.
**
** A write that autograd records (t or the source requires grad) cannot go
** into a view (in-place writes into views of recorded tensors are refused,
** autograd.c), so it builds the new value of t out of place -- for each
** keyed dim, index_select the part, recurse, index_copy it back -- and
** copies that into t, whose history becomes the copy's.  It costs copies
** of t, which only recorded writes pay.
*/
#include <string.h>

#include "ops.h"

/* {======================================================================
** The view a key takes
** ======================================================================= */

/* The key's view of t with any index entry left whole; *idim receives
   that entry's dim in the view (-1: none) and *index its tensor.  New
   reference, t's own geometry when the key changes nothing. */
static ember_tensor *key_view(const ember_tensor *t, int n,
                              const ember_key *keys, int *idim,
                              const ember_tensor **index) {
  if (n > t->ndim) {
    ember_set_error("index: too many indices (%d) for a %d-d tensor", n,
                    t->ndim);
    return NULL;
  }
  *idim = -1;
  *index = NULL;
  for (int k = 0; k < n; k++)
    if (keys[k].kind == EMBER_KEY_INDEX && *index) {
      ember_set_error("index: only one index tensor per key is supported");
      return NULL;
    } else if (keys[k].kind == EMBER_KEY_INDEX) {
      *index = keys[k].index;
    }
  /* With an index tensor, PyTorch treats integers as index tensors too
     and moves the indexed dim to the front unless all of them are next to
     each other; only the adjacent case (where that rule keeps the dim in
     place, as here) is supported. */
  if (*index) {
    int lo = n, hi = -1, between = 0;
    for (int k = 0; k < n; k++)
      if (keys[k].kind == EMBER_KEY_AT || keys[k].kind == EMBER_KEY_INDEX) {
        if (lo == n) lo = k;
        hi = k;
      }
    for (int k = lo; k <= hi; k++)
      if (keys[k].kind == EMBER_KEY_ALL || keys[k].kind == EMBER_KEY_RANGE)
        between = 1;
    if (between) {
      ember_set_error("index: an index tensor with integer entries apart "
                      "from it (t[{1, {}, idx}]) is not supported (PyTorch "
                      "moves the dim to the front then); index in two steps");
      return NULL;
    }
  }
  /* a 0-dim or untouched tensor still gets a view of its own, as t[:] */
  ember_tensor *cur = ember_expand(t, t->ndim, t->shape);
  for (int k = 0, d = 0; k < n && cur; k++) {
    ember_tensor *next = cur;
    switch (keys[k].kind) {
      case EMBER_KEY_ALL: d++; continue;
      case EMBER_KEY_INDEX: *idim = d++; continue;
      case EMBER_KEY_RANGE:
        next = ember_slice(cur, d++, keys[k].start, keys[k].stop, keys[k].step);
        break;
      case EMBER_KEY_AT:
        next = ember_select(cur, d, keys[k].start);
        break;
    }
    ember_tensor_release(cur);
    cur = next;
  }
  return cur;
}

/* }====================================================================== */

/* {======================================================================
** Reading
** ======================================================================= */

ember_tensor *ember_slice_get(const ember_tensor *t, int n,
                              const ember_key *keys) {
  int idim;
  const ember_tensor *index;
  ember_tensor *v = key_view(t, n, keys, &idim, &index);
  if (!v || !index) return v;
  ember_tensor *out = ember_index_select(v, idim, index);
  ember_tensor_release(v);
  return out;
}

/* }====================================================================== */

/* {======================================================================
** Writing
** ======================================================================= */

/* The shape a read of the key gives (v: key_view's view), with index's
   length at idim. */
static void read_shape(const ember_tensor *v, int idim,
                       const ember_tensor *index, int64_t *shape) {
  memcpy(shape, v->shape, (size_t)v->ndim * sizeof *shape);
  if (idim >= 0) shape[idim] = ember_numel(index);
}

/* src must broadcast to the read shape (ndim, shape). */
static int check_source(const ember_tensor *src, int ndim,
                        const int64_t *shape) {
  int ok = src->ndim <= ndim;
  for (int i = 1; ok && i <= src->ndim; i++) {
    int64_t a = src->shape[src->ndim - i], b = shape[ndim - i];
    if (a != b && a != 1) ok = 0;
  }
  if (ok) return 0;
  char b1[128], b2[128];
  return ember_set_error("index: value of shape %s does not broadcast to the "
                         "indexed shape %s",
                         ember_shape_str(b1, sizeof b1, src->ndim, src->shape),
                         ember_shape_str(b2, sizeof b2, ndim, shape));
}

/* src as t's dtype on t's device, broadcast to (ndim, shape); recorded
   when recording is on.  New reference. */
static ember_tensor *fit_source(const ember_tensor *t, const ember_tensor *src,
                                int ndim, const int64_t *shape) {
  ember_temps T;
  ember_temps_init(&T);
  const ember_tensor *s = src;
  if (s->storage->device != t->storage->device)
    s = ember_temp(&T, ember_to_device(s, t->storage->device));
  if (s && s->dtype != t->dtype) s = ember_temp(&T, ember_to_dtype(s, t->dtype));
  ember_tensor *out = s ? ember_expand(s, ndim, shape) : NULL;
  ember_temps_release(&T);
  return out;
}

/* Entry k's positions as a 1-based int64 index on x's device (a range's
   or an integer's; an index entry's own tensor).  New reference. */
static ember_tensor *entry_index(const ember_tensor *x, const ember_key *key) {
  if (key->kind == EMBER_KEY_INDEX) {
    ember_tensor_retain((ember_tensor *)key->index);
    return (ember_tensor *)key->index;
  }
  int64_t stop = key->kind == EMBER_KEY_AT ? key->start + 1 : key->stop;
  int64_t step = key->kind == EMBER_KEY_AT ? 1 : key->step;
  ember_tensor *r = ember_arange((double)key->start + 1, (double)stop + 1,
                                 (double)step, EMBER_INT64);
  if (r && x->storage->device != EMBER_CPU) {
    ember_tensor *d = ember_to_device(r, x->storage->device);
    ember_tensor_release(r);
    r = d;
  }
  return r;
}

/* x with its part under keys[k..n) (from dim d on) replaced by src, which
   has that part's shape with every dim kept: recorded, out of place. */
static ember_tensor *put_recorded(const ember_tensor *x, int k, int d, int n,
                                  const ember_key *keys,
                                  const ember_tensor *src) {
  while (k < n && keys[k].kind == EMBER_KEY_ALL) k++, d++;
  if (k == n) {
    ember_tensor_retain((ember_tensor *)src);
    return (ember_tensor *)src;
  }
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *idx = ember_temp(&T, entry_index(x, &keys[k]));
  ember_tensor *part = idx ? ember_temp(&T, ember_index_select(x, d, idx)) : NULL;
  ember_tensor *put = part ? ember_temp(&T, put_recorded(part, k + 1, d + 1, n,
                                                         keys, src))
                           : NULL;
  ember_tensor *out = put ? ember_index_copy(x, d, idx, put) : NULL;
  ember_temps_release(&T);
  return out;
}

/* The recorded write: src (fitted to the read shape) given back the dims
   the integer entries dropped, t's new value built by put_recorded, then
   copied into t. */
static int set_recorded(ember_tensor *t, int n, const ember_key *keys,
                        const ember_tensor *src) {
  int64_t kept[EMBER_MAX_DIMS];
  memcpy(kept, t->shape, sizeof kept);
  for (int k = 0; k < n; k++) {
    const ember_key *e = &keys[k];
    if (e->kind == EMBER_KEY_AT) kept[k] = 1;
    else if (e->kind == EMBER_KEY_INDEX) kept[k] = ember_numel(e->index);
    else if (e->kind == EMBER_KEY_RANGE)
      kept[k] = e->stop == e->start ? 0 : (e->stop - e->start - 1) / e->step + 1;
  }
  ember_temps T;
  ember_temps_init(&T);
  ember_tensor *s = ember_temp(&T, ember_reshape(src, t->ndim, kept));
  ember_tensor *val = s ? ember_temp(&T, put_recorded(t, 0, 0, n, keys, s)) : NULL;
  int rc = val ? ember_copy_(t, val) : -1;
  ember_temps_release(&T);
  return rc;
}

int ember_slice_set_(ember_tensor *t, int n, const ember_key *keys,
                     const ember_tensor *src) {
  int rec = ember_ag_active2(t, src);
  if (rec && (ember_ag_check_inplace("index", t) < 0 ||
              (ember_ag_requires(src) && ember_ag_check_target("index", t) < 0)))
    return -1;
  int idim;
  const ember_tensor *index;
  int prev = ember_ag_pause();     /* the view is a step, not a node */
  ember_tensor *v = key_view(t, n, keys, &idim, &index);
  ember_ag_resume(prev);
  if (!v) return -1;
  int64_t shape[EMBER_MAX_DIMS];
  read_shape(v, idim, index, shape);
  ember_tensor *s = NULL;
  int rc = check_source(src, v->ndim, shape);
  if (rc == 0 && !(s = fit_source(t, src, v->ndim, shape))) rc = -1;
  if (rc == 0 && rec) {
    /* the view goes first: t must not look shared to copy_'s check */
    ember_tensor_release(v);
    v = NULL;
    rc = set_recorded(t, n, keys, s);
  } else if (rc == 0) {
    rc = index ? ember_index_copy_(v, idim, index, s) : ember_copy_(v, s);
  }
  ember_tensor_release(s);
  ember_tensor_release(v);
  return rc;
}

int ember_slice_fill_(ember_tensor *t, int n, const ember_key *keys,
                      double value) {
  if (ember_ag_active1(t)) {      /* recorded: a constant source */
    ember_tensor *s = ember_scalar_as(t, value);
    int rc = s ? ember_slice_set_(t, n, keys, s) : -1;
    ember_tensor_release(s);
    return rc;
  }
  int idim;
  const ember_tensor *index;
  ember_tensor *v = key_view(t, n, keys, &idim, &index);
  if (!v) return -1;
  int rc;
  if (index) {
    ember_tensor *s = ember_scalar_as(t, value);
    rc = s ? ember_index_fill_(v, idim, index, s) : -1;
    ember_tensor_release(s);
  } else {
    rc = ember_fill_(v, value);
  }
  ember_tensor_release(v);
  return rc;
}

/* }====================================================================== */
