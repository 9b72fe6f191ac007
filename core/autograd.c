/*
** autograd.c -- the tape: metadata, nodes, and the backward pass.
**
** See autograd.h for the shape of the graph.  Backward runs in three steps:
**   1. walk the graph from the root and count, for every node, the edges
**      that lead into it (its dependencies);
**   2. run nodes in dependency order (Kahn's algorithm): a node runs once
**      the gradients from all its consumers have been summed into it;
**   3. only when every node has run, add the leaves' gradients into their
**      .grad and, unless retain_graph, free the saved tensors.
** A failure in step 2 changes nothing: no .grad is touched before step 3.
** Then the post-backward hooks run (a data-parallel wrapper averages the
** gradients there), with the grad mode the caller had.
*/
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"

/* Grad mode, anomaly mode and its where hook are per thread, as PyTorch's
   are: a host running one lua_State per thread (docs/c-api.md, "Threads")
   turns recording off in one without touching the others. */
_Thread_local int ember_grad_mode_ = 1;

void ember_set_grad_enabled(int on) { ember_grad_mode_ = on != 0; }
int ember_is_grad_enabled(void) { return ember_grad_mode_; }
int ember_ag_pause(void) { int p = ember_grad_mode_; ember_grad_mode_ = 0; return p; }
void ember_ag_resume(int prev) { ember_grad_mode_ = prev; }

/* Anomaly detection (torch.autograd.set_detect_anomaly): when on, backward
   checks every gradient a node computes for NaN and fails naming the node.
   Off, it costs one test of this flag per node. */
static _Thread_local int anomaly_mode = 0;

void ember_set_anomaly_detection(int on) { anomaly_mode = on != 0; }
int ember_anomaly_detection_enabled(void) { return anomaly_mode; }

static _Thread_local ember_anomaly_where_fn where_hook = NULL;
static _Thread_local void *where_ctx = NULL;

void ember_set_anomaly_where(ember_anomaly_where_fn fn, void *ctx) {
  where_hook = fn;
  where_ctx = fn ? ctx : NULL;
}
void *ember_anomaly_where_ctx(void) { return where_ctx; }

/* Anomaly mode: keep the forward op's call site with its node.  A failure
   to allocate only loses the detail. */
static void record_where(ember_node *node) {
  char buf[256];
  buf[0] = '\0';
  where_hook(buf, sizeof buf, where_ctx);
  buf[sizeof buf - 1] = '\0';
  if (buf[0] == '\0') return;
  size_t n = strlen(buf) + 1;
  if ((node->where = malloc(n))) memcpy(node->where, buf, n);
}

/* {======================================================================
** Recycling: every recorded op makes a node and its result's metadata,
** and the collector frees them in bursts (see storage.c's fused blocks),
** where malloc is at its slowest.  Both are kept on per-thread free lists
** that run through the freed blocks themselves.  A meta made elsewhere
** with calloc (ember_ag_rebase, core/ops/common.c) is the same size and joins the list too.
** ======================================================================= */

#if defined(__SANITIZE_ADDRESS__)
#define RECYCLE_MAX 0      /* let AddressSanitizer see every use after free */
#else
#define RECYCLE_MAX 4096   /* of each: at most ~2 MiB of nodes a thread */
#endif

typedef struct free_block { struct free_block *next; } free_block;
typedef struct {
  free_block *head;
  int n;
} free_list;

static void *list_pop(free_list *l) {
  free_block *b = l->head;
  if (b) { l->head = b->next; l->n--; }
  return b;
}

static _Thread_local int lists_armed;

static void list_push(free_list *l, void *p) {
  if (l->n >= RECYCLE_MAX) { free(p); return; }
  if (!lists_armed) {
    lists_armed = 1;
    ember_thread_cache_arm();
  }
  free_block *b = p;
  b->next = l->head;
  l->head = b;
  l->n++;
}

static _Thread_local free_list free_metas, free_nodes;

void ember_ag_cache_drop(void) {
  void *p;
  while ((p = list_pop(&free_metas))) free(p);
  while ((p = list_pop(&free_nodes))) free(p);
  lists_armed = 0;
}

/* A node of at most SMALL_NODE_INPUTS inputs comes from the free list; its
   edges, input shapes and flags follow it in the same block. */
#define SMALL_NODE_INPUTS 2
#define NODE_BYTES(n) \
  (sizeof(ember_node) + (size_t)(n) * (sizeof(ember_edge) + sizeof(ember_in_meta) + 1))

static void node_dealloc(ember_node *n) {
  if (n->ninputs <= SMALL_NODE_INPUTS) list_push(&free_nodes, n);
  else free(n);
}

static struct ember_autograd_meta *meta_of(ember_tensor *t) {
  if (!t->grad_info) {
    struct ember_autograd_meta *m = list_pop(&free_metas);
    if (m) memset(m, 0, sizeof *m);
    else if (!(m = calloc(1, sizeof *m))) ember_set_error("out of memory");
    t->grad_info = m;
  }
  return t->grad_info;
}

/* }====================================================================== */

/* {======================================================================
** Metadata and nodes
** ======================================================================= */

static void release_all(ember_tensor **t, int n) {
  for (int i = 0; i < n; i++) {
    ember_tensor_release(t[i]);
    t[i] = NULL;
  }
}

static void ext_free(ember_node_ext *x) {
  release_all(x->grads, x->nout);
  release_all(x->saved, x->nsaved);
  if (x->release) x->release(x->ctx);
  free(x);
}

/*
** Releasing a node may release the nodes behind it, and so on down a chain
** as long as the training loop is deep: do it with a worklist, not by
** recursion, so a long graph cannot overflow the C stack.
*/
static void node_free_one(ember_node *n, ember_node ***work, size_t *len,
                          size_t *cap) {
  for (int i = 0; i < n->ninputs; i++) {
    ember_tensor_release(n->next[i].leaf);
    ember_node *f = n->next[i].fn;
    if (f && --f->refcount == 0) {
      if (*len == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        ember_node **w = realloc(*work, nc * sizeof *w);
        if (!w) { node_free_one(f, work, len, cap); continue; } /* rare */
        *work = w;
        *cap = nc;
      }
      (*work)[(*len)++] = f;
    }
  }
  for (int i = 0; i < n->nsaved; i++) ember_tensor_release(n->saved[i]);
  ember_tensor_release(n->grad);
  free(n->where);
  if (n->ext) ext_free(n->ext);
  node_dealloc(n);
}

void ember_ag_node_release(ember_node *n) {
  if (!n || --n->refcount > 0) return;
  ember_node **work = NULL;
  size_t len = 0, cap = 0;
  node_free_one(n, &work, &len, &cap);
  while (len > 0) node_free_one(work[--len], &work, &len, &cap);
  free(work);
}

void ember_ag_meta_free(struct ember_autograd_meta *m) {
  if (!m) return;
  if (m->retains_grad && m->grad_fn) m->grad_fn->retained_out = NULL;
  ember_tensor_release(m->grad);
  ember_tensor_release(m->pending);
  ember_ag_node_release(m->grad_fn);
  list_push(&free_metas, m);
}

/* The node, then its edges, input shapes and flags, in one block. */
ember_node *ember_ag_node(const char *name, ember_backward_fn fn, int n,
                          const ember_tensor *const *inputs) {
  int slots = n <= SMALL_NODE_INPUTS ? SMALL_NODE_INPUTS : n;
  ember_node *node = n <= SMALL_NODE_INPUTS ? list_pop(&free_nodes) : NULL;
  if (!node && !(node = malloc(NODE_BYTES(slots)))) {
    ember_set_error("out of memory");
    return NULL;
  }
  /* field by field: a memset of the whole node compiles to `rep stos`,
     whose start-up cost was a quarter of recording an op */
  node->refcount = 1;
  node->name = name;
  node->backward = fn;
  node->add_part = NULL;
  node->ninputs = n;
  node->nsaved = 0;
  memset(node->saved, 0, sizeof node->saved);
  memset(node->saved_version, 0, sizeof node->saved_version);
  node->released = 0;
  memset(node->state.bytes, 0, sizeof node->state.bytes);
  node->retained_out = NULL;
  node->where = NULL;
  node->ext = NULL;
  if (anomaly_mode && where_hook) record_where(node);
  node->mark = 0;
  node->deps = 0;
  node->grad = NULL;
  node->next = (ember_edge *)(node + 1);
  node->in = (ember_in_meta *)(node->next + slots);
  node->needs = (unsigned char *)(node->in + slots);
  /* the shapes are written below for the inputs there are; an absent
     input (NULL) reads as a 0-d one */
  memset(node->next, 0, (size_t)slots * sizeof *node->next);
  memset(node->needs, 0, (size_t)slots);
  for (int i = 0; i < n; i++) {
    const ember_tensor *t = inputs[i];
    if (!t) {
      node->in[i].ndim = 0;
      node->in[i].dtype = EMBER_FLOAT32;
      node->in[i].device = EMBER_CPU;
      continue;
    }
    node->in[i].ndim = t->ndim;
    node->in[i].dtype = t->dtype;
    node->in[i].device = t->storage->device;
    /* the whole array (a tensor has all of it): a copy of fixed size is a
       few moves, of t->ndim sizes a call to memcpy */
    memcpy(node->in[i].shape, t->shape, sizeof t->shape);
    if (!ember_ag_requires(t)) continue;
    node->needs[i] = 1;
    ember_node *f = t->grad_info->grad_fn;
    if (f) {
      f->refcount++;
      node->next[i].fn = f;
      node->in[i].slot = t->grad_info->output_nr;
    } else {
      ember_tensor_retain((ember_tensor *)t);
      node->next[i].leaf = (ember_tensor *)t;
    }
  }
  return node;
}

int ember_ag_save(ember_node *node, const ember_tensor *t) {
  if (node->nsaved == EMBER_NODE_MAX_SAVED) {
    ember_set_error("autograd: too many saved tensors");
    return -1;
  }
  ember_tensor *a = ember_tensor_alias(t, t->ndim, t->shape, t->strides,
                                       t->offset);
  if (!a) return -1;
  node->saved_version[node->nsaved] = t->storage->version;
  node->saved[node->nsaved++] = a;
  return 0;
}

ember_tensor *ember_ag_finish(ember_node *node, ember_tensor *out,
                              int is_view) {
  if (!node || !out) {
    ember_ag_node_release(node);
    ember_tensor_release(out);
    return NULL;
  }
  struct ember_autograd_meta *m = meta_of(out);
  if (!m) {
    ember_ag_node_release(node);
    ember_tensor_release(out);
    return NULL;
  }
  ember_ag_node_release(m->grad_fn);
  m->grad_fn = node;
  m->requires_grad = 1;
  m->is_view = is_view;
  m->output_nr = 0;
  return out;
}

/* }====================================================================== */

/* {======================================================================
** The public tensor API
** ======================================================================= */

int ember_requires_grad(const ember_tensor *t) { return ember_ag_requires(t); }

int ember_is_leaf(const ember_tensor *t) {
  return !t->grad_info || !t->grad_info->grad_fn;
}

int ember_set_requires_grad(ember_tensor *t, int on) {
  if (!ember_is_leaf(t)) {
    if (on) return 0;
    ember_set_error("requires_grad_: you can only change requires_grad of "
                    "leaf tensors; use detach() to get a tensor outside the graph");
    return -1;
  }
  if (on && !ember_dtype_is_float(t->dtype)) {
    ember_set_error("requires_grad_: only floating-point tensors can require "
                    "grad (got %s)", ember_dtype_name(t->dtype));
    return -1;
  }
  if (!on && !t->grad_info) return 0;
  struct ember_autograd_meta *m = meta_of(t);
  if (!m) return -1;
  m->requires_grad = on != 0;
  return 0;
}

ember_tensor *ember_grad(const ember_tensor *t) {
  return t->grad_info ? t->grad_info->grad : NULL;
}

int ember_set_grad(ember_tensor *t, ember_tensor *g) {
  if (g) {
    if (g == t) {
      ember_set_error("grad: a tensor cannot be its own gradient");
      return -1;
    }
    if (g->dtype != t->dtype || g->ndim != t->ndim ||
        memcmp(g->shape, t->shape, (size_t)t->ndim * sizeof *t->shape) != 0) {
      char b1[96], b2[96];
      ember_set_error("grad: assigned grad has shape %s and dtype %s, but "
                      "the tensor has shape %s and dtype %s",
                      ember_shape_str(b1, sizeof b1, g->ndim, g->shape),
                      ember_dtype_name(g->dtype),
                      ember_shape_str(b2, sizeof b2, t->ndim, t->shape),
                      ember_dtype_name(t->dtype));
      return -1;
    }
    if (g->storage->device != t->storage->device) {
      ember_set_error("grad: assigned grad is on %s but the tensor is on %s",
                      ember_device_name(g->storage->device),
                      ember_device_name(t->storage->device));
      return -1;
    }
  } else if (!t->grad_info) {
    return 0;
  }
  struct ember_autograd_meta *m = meta_of(t);
  if (!m) return -1;
  if (g) ember_tensor_retain(g);
  ember_tensor_release(m->grad);
  m->grad = g;
  return 0;
}

int ember_retain_grad(ember_tensor *t) {
  if (!ember_ag_requires(t)) {
    ember_set_error("retain_grad: can't retain_grad on a tensor that has "
                    "requires_grad = false");
    return -1;
  }
  if (ember_is_leaf(t)) return 0;
  if (t->grad_info->grad_fn->ext) {
    /* the engine keeps one retained output a node; a function node has
       several: not worth the bookkeeping */
    ember_set_error("retain_grad: not supported on the output of a custom "
                    "function (%s); retain the grad of a copy: (y * 1)",
                    t->grad_info->grad_fn->name);
    return -1;
  }
  t->grad_info->retains_grad = 1;
  t->grad_info->grad_fn->retained_out = t;
  return 0;
}

const char *ember_grad_fn_name(const ember_tensor *t) {
  return t->grad_info && t->grad_info->grad_fn ? t->grad_info->grad_fn->name
                                               : NULL;
}

ember_tensor *ember_detach(const ember_tensor *t) {
  return ember_tensor_alias(t, t->ndim, t->shape, t->strides, t->offset);
}

/* The node goes (released: it dies unless another result still needs it),
   and with it the weak pointer it may hold back to t (retain_grad). */
int ember_detach_(ember_tensor *t) {
  struct ember_autograd_meta *m = t->grad_info;
  if (!m) return 0;
  if (m->is_view) {
    ember_set_error("detach_: can't detach a view in place (it shares the "
                    "history of the tensor it views); use detach() instead");
    return -1;
  }
  ember_node *n = m->grad_fn;
  if (n && n->retained_out == t) n->retained_out = NULL;
  m->grad_fn = NULL;
  m->requires_grad = 0;
  m->retains_grad = 0;
  ember_ag_node_release(n);
  return 0;
}

int ember_ag_check_inplace(const char *fn, const ember_tensor *t) {
  if (!ember_ag_active1(t)) return 0;
  if (ember_is_leaf(t)) {
    ember_set_error("%s: a leaf tensor that requires grad is being used in "
                    "an in-place operation (wrap it in ember.no_grad)", fn);
    return -1;
  }
  if (t->grad_info->is_view) {
    ember_set_error("%s: in-place operation on a view of a tensor that "
                    "requires grad is not supported; use the out-of-place "
                    "form", fn);
    return -1;
  }
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Gradient helpers
** ======================================================================= */

ember_tensor *ember_ag_sum_to(const ember_tensor *g, int ndim,
                              const int64_t *shape) {
  ember_tensor *cur = (ember_tensor *)g;
  ember_tensor_retain(cur);
  /* leading dims the input did not have */
  while (cur && cur->ndim > ndim) {
    ember_tensor *s = ember_sum_dim(cur, 0, 0);
    ember_tensor_release(cur);
    cur = s;
  }
  for (int d = 0; cur && d < ndim; d++) {
    if (shape[d] == 1 && cur->shape[d] != 1) {
      ember_tensor *s = ember_sum_dim(cur, d, 1);
      ember_tensor_release(cur);
      cur = s;
    }
  }
  return cur;
}

static int same_shape(const ember_tensor *t, const ember_in_meta *m) {
  return t->ndim == m->ndim &&
         memcmp(t->shape, m->shape, (size_t)m->ndim * sizeof *m->shape) == 0;
}

/* g brought to the input's shape and dtype; consumes g. */
static ember_tensor *fit_grad(ember_node *n, int i, ember_tensor *g) {
  const ember_in_meta *m = &n->in[i];
  if (!same_shape(g, m)) {
    ember_tensor *s = ember_ag_sum_to(g, m->ndim, m->shape);
    ember_tensor_release(g);
    g = s;
    if (g && !same_shape(g, m)) {
      char b1[96], b2[96];
      ember_set_error("backward: %s returned a gradient of shape %s for an "
                      "input of shape %s", n->name,
                      ember_shape_str(b1, sizeof b1, g->ndim, g->shape),
                      ember_shape_str(b2, sizeof b2, m->ndim, m->shape));
      ember_tensor_release(g);
      return NULL;
    }
  }
  if (g && g->dtype != m->dtype) {
    ember_tensor *c = ember_to_dtype(g, m->dtype);
    ember_tensor_release(g);
    g = c;
  }
  if (g && g->storage->device != m->device) {   /* copy_ across devices */
    ember_tensor *c = ember_to_device(g, m->device);
    ember_tensor_release(g);
    g = c;
  }
  return g;
}

/* *acc += g (consumes g); the first gradient is taken as it is. */
static int accumulate(ember_tensor **acc, ember_tensor *g) {
  if (!*acc) { *acc = g; return 0; }
  ember_tensor *s = ember_binary(EMBER_ADD, *acc, g);
  ember_tensor_release(g);
  if (!s) return -1;
  ember_tensor_release(*acc);
  *acc = s;
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Post-backward hooks
** ======================================================================= */

/* Per thread, as the free lists above: a hook added by one host thread
   never runs inside another thread's backward. */
static _Thread_local ember_hook_list post_hooks;

static int find_hook(const ember_hook_list *h, ember_post_backward_fn fn,
                     void *ctx) {
  for (int i = 0; i < h->n; i++)
    if (h->at[i].fn == fn && h->at[i].ctx == ctx) return i;
  return -1;
}

int ember_add_post_backward_hook(ember_post_backward_fn fn, void *ctx) {
  ember_hook_list *h = &post_hooks;
  if (!fn) return ember_set_error("add_post_backward_hook: fn is NULL");
  if (find_hook(h, fn, ctx) >= 0)
    return ember_set_error("add_post_backward_hook: this hook (fn and ctx) "
                           "is already added");
  if (h->n == EMBER_MAX_POST_BACKWARD_HOOKS)
    return ember_set_error("add_post_backward_hook: at most %d hooks",
                           EMBER_MAX_POST_BACKWARD_HOOKS);
  h->at[h->n].fn = fn;
  h->at[h->n].ctx = ctx;
  h->n++;
  return 0;
}

int ember_remove_post_backward_hook(ember_post_backward_fn fn, void *ctx) {
  ember_hook_list *h = &post_hooks;
  int i = find_hook(h, fn, ctx);
  if (i < 0)
    return ember_set_error("remove_post_backward_hook: no such hook (fn and "
                           "ctx) was added");
  memmove(&h->at[i], &h->at[i + 1], (size_t)(h->n - i - 1) * sizeof h->at[0]);
  h->n--;
  return 0;
}

/* Each hook in turn, from a copy of the list so that a hook may add or
   remove hooks; one removed meanwhile (its ctx perhaps freed) is skipped. */
static int run_post_hooks(void) {
  ember_hook_list *h = &post_hooks;
  if (h->n == 0 || h->running) return 0;
  ember_hook_list now = *h;
  int rc = 0;
  h->running = 1;
  for (int i = 0; i < now.n && rc == 0; i++)
    if (find_hook(h, now.at[i].fn, now.at[i].ctx) >= 0)
      rc = now.at[i].fn(now.at[i].ctx) < 0 ? -1 : 0;
  h->running = 0;
  return rc;
}

/* }====================================================================== */

/* {======================================================================
** Backward
** ======================================================================= */

/* A growing array that starts in itself: a small graph's backward (the
   common case in a loop of tiny ops) allocates nothing for its lists.
   `vec v = {0}` is an empty one; vec_free releases it. */
#define VEC_INLINE 16
typedef struct {
  void **items;
  size_t len, cap;
  void *first[VEC_INLINE];
} vec;

static int vec_push(vec *v, void *x) {
  if (!v->items) {
    v->items = v->first;
    v->cap = VEC_INLINE;
  }
  if (v->len == v->cap) {
    size_t nc = v->cap * 2;
    void **it = v->items == v->first ? malloc(nc * sizeof *it)
                                     : realloc(v->items, nc * sizeof *it);
    if (!it) { ember_set_error("out of memory"); return -1; }
    if (v->items == v->first) memcpy(it, v->first, v->len * sizeof *it);
    v->items = it;
    v->cap = nc;
  }
  v->items[v->len++] = x;
  return 0;
}

static void vec_free(vec *v) {
  if (v->items != v->first) free(v->items);
}

/*
** Marks are unique in the process, not only in a thread: a graph built on
** one thread may be walked on another (a state moved between threads),
** and must not meet a mark it already carries.  A thread takes a serial
** once (one atomic add) and counts its own walks below it, so a backward
** pays no locked instruction: serial << 40 | count, a new serial every
** 2^40 walks.
*/
static _Atomic uint64_t mark_serials = 0;
static _Thread_local uint64_t last_mark = 0;

static uint64_t next_mark(void) {
  if ((last_mark & (((uint64_t)1 << 40) - 1)) == (((uint64_t)1 << 40) - 1) ||
      last_mark == 0)
    last_mark = (atomic_fetch_add_explicit(&mark_serials, 1, memory_order_relaxed) + 1)
                << 40;
  return ++last_mark;
}

/*
** Backwards in progress on this thread, outermost first: a custom
** function's backward (ember.checkpoint's) runs a backward of its own
** inside the outer one.  The inner graph must not reach a node of an
** outer one: that node's mark, dependency count and gradient sum belong
** to the outer walk.  A rerun over detached inputs never does; a
** function that closes over a non-leaf of the outer graph would.
*/
#define MAX_NESTED_BACKWARD 16
static _Thread_local int backward_depth;
static _Thread_local uint64_t active_marks[MAX_NESTED_BACKWARD];

static int outer_node(const ember_node *f) {
  for (int d = 0; d < backward_depth - 1; d++)
    if (f->mark == active_marks[d]) {
      ember_set_error("backward: a backward run inside a backward (by a "
                      "custom function such as ember.checkpoint) reached "
                      "%s, a node of the outer graph; pass the tensors "
                      "that require grad to the function as arguments "
                      "instead of closing over them", f->name);
      return 1;
    }
  return 0;
}

/* Step 1: every node reachable from root, with its dependency count. */
static int collect(ember_node *root, uint64_t mark, vec *nodes) {
  vec stack = {0};
  int rc = 0;
  if (backward_depth > 1 && outer_node(root)) return -1;
  root->mark = mark;
  root->deps = 0;
  if (vec_push(nodes, root) < 0 || vec_push(&stack, root) < 0) rc = -1;
  while (rc == 0 && stack.len > 0) {
    ember_node *n = stack.items[--stack.len];
    for (int i = 0; i < n->ninputs; i++) {
      ember_node *f = n->next[i].fn;
      if (!f) continue;
      if (f->mark != mark) {
        if (backward_depth > 1 && outer_node(f)) { rc = -1; break; }
        f->mark = mark;
        f->deps = 0;
        if (vec_push(nodes, f) < 0 || vec_push(&stack, f) < 0) { rc = -1; break; }
      }
      f->deps++;
    }
  }
  vec_free(&stack);
  return rc;
}

static int check_saved(ember_node *n) {
  if (n->released) {  /* only nodes that had saved tensors are marked */
    ember_set_error("backward: trying to backward through the graph a second "
                    "time (%s's saved tensors were freed by the first "
                    "backward); pass {retain_graph = true} to the first "
                    "backward if you need to", n->name);
    return -1;
  }
  for (int i = 0; i < n->nsaved; i++) {
    if (n->saved[i]->storage->version != n->saved_version[i]) {
      ember_set_error("backward: a tensor needed by %s to compute gradients "
                      "has been modified by an in-place operation (version "
                      "%llu, expected %llu); use an out-of-place op or clone() "
                      "it first", n->name,
                      (unsigned long long)n->saved[i]->storage->version,
                      (unsigned long long)n->saved_version[i]);
      return -1;
    }
  }
  return 0;
}

/* 1 if g holds a NaN, 0 if not, -1 on error.  g != g is true exactly at
   the NaNs (an Inf is not one); the reduction reads back one bool, so on
   the GPU this is one sync per gradient -- paid only in anomaly mode. */
static int has_nan(const ember_tensor *g) {
  if (!ember_dtype_is_float(g->dtype) || ember_numel(g) == 0) return 0;
  ember_tensor *ne = ember_compare(EMBER_NE, g, g);
  ember_tensor *any = ne ? ember_reduce(EMBER_MAX, ne, 0) : NULL;
  double v = 0;
  int rc = any ? ember_item(any, &v) : -1;
  ember_tensor_release(any);
  ember_tensor_release(ne);
  return rc < 0 ? -1 : v != 0;
}

/* Anomaly mode: the first input gradient of n that holds a NaN fails the
   backward, naming the node and the input (1-based, as Lua counts). */
static int check_anomaly(ember_node *n, ember_tensor **gin) {
  for (int i = 0; i < n->ninputs; i++) {
    if (!gin[i]) continue;
    int bad = has_nan(gin[i]);
    if (bad < 0) return -1;
    if (bad) {
      if (n->where)
        ember_set_error("backward: %s produced NaN in its gradient for "
                        "input %d (anomaly detection); its forward op was "
                        "called at %s", n->name, i + 1, n->where);
      else
        ember_set_error("backward: %s produced NaN in its gradient for "
                        "input %d (anomaly detection)", n->name, i + 1);
      return -1;
    }
  }
  return 0;
}

/* Step 2 for one node: its inputs' gradients, handed on.  A node that
   received no gradient (every consumer's was zero by construction) still
   counts down its producers so that they run. */
/* Where the gradient of n's only input collects, if n can add its part
   there in place (ember_add_part_fn): the sum so far exists, and nothing
   but the engine holds it or its storage (so no other tensor sees it
   change), with g's dtype and device.  NULL otherwise. */
static ember_tensor *part_target(ember_node *n) {
  if (!n->add_part || n->ninputs != 1 || !n->needs[0] || n->retained_out ||
      anomaly_mode || (n->next[0].fn && n->next[0].fn->ext))
    return NULL;
  ember_tensor *acc = n->next[0].fn ? n->next[0].fn->grad
                                    : n->next[0].leaf->grad_info->pending;
  if (!acc || acc->refcount != 1 || acc->storage->refcount != 1 ||
      acc->dtype != n->grad->dtype || acc->storage->device != n->grad->storage->device ||
      !same_shape(acc, &n->in[0]))
    return NULL;
  return acc;
}

/* {======================================================================
** Function nodes (ember_function_apply): the caller's backward
** ======================================================================= */

static int check_function_saved(const ember_node *n) {
  const ember_node_ext *x = n->ext;
  if (x->released) {
    ember_set_error("backward: trying to backward through the graph a second "
                    "time (%s's saved tensors were freed by the first "
                    "backward); pass {retain_graph = true} to the first "
                    "backward if you need to", n->name);
    return -1;
  }
  for (int i = 0; i < x->nsaved; i++) {
    if (x->saved[i]->storage->version != x->saved_version[i]) {
      ember_set_error("backward: a tensor saved by %s (its saved tensor %d) "
                      "has been modified by an in-place operation since "
                      "(version %llu, expected %llu); use an out-of-place "
                      "op or clone() it first", n->name, i + 1,
                      (unsigned long long)x->saved[i]->storage->version,
                      (unsigned long long)x->saved_version[i]);
      return -1;
    }
  }
  return 0;
}

/* What the callback returned for input i: the shape, a float dtype and
   the device of the input, or an error naming both. */
static int check_function_grad(const ember_node *n, int i,
                               const ember_tensor *g) {
  const ember_in_meta *m = &n->in[i];
  char b1[96], b2[96];
  if (!same_shape(g, m))
    return ember_set_error("backward: %s's backward returned a gradient of "
                           "shape %s for input %d, of shape %s", n->name,
                           ember_shape_str(b1, sizeof b1, g->ndim, g->shape),
                           i + 1,
                           ember_shape_str(b2, sizeof b2, m->ndim, m->shape));
  if (!ember_dtype_is_float(g->dtype))
    return ember_set_error("backward: %s's backward returned a %s gradient "
                           "for input %d; gradients are floating point",
                           n->name, ember_dtype_name(g->dtype), i + 1);
  if (g->storage->device != m->device)
    return ember_set_error("backward: %s's backward returned a gradient on "
                           "%s for input %d, which is on %s", n->name,
                           ember_device_name(g->storage->device), i + 1,
                           ember_device_name(m->device));
  return 0;
}

/* The node's backward: zeros for the float outputs no gradient reached
   (the callback sees every gradient, as PyTorch's materialize_grads),
   then the callback, then its results checked.  Runs once the node's
   consumers have all run, so grads[] are complete. */
static int run_function(ember_node *n, ember_tensor **gin) {
  ember_node_ext *x = n->ext;
  int any = 0;
  for (int i = 0; i < x->nout; i++) any |= x->grads[i] != NULL;
  if (!any) return 0;   /* nothing reached it: its inputs get nothing */
  if (check_function_saved(n) < 0) return -1;
  for (int i = 0; i < x->nout; i++) {
    const ember_in_meta *m = &x->out[i];
    if (x->grads[i] || !ember_dtype_is_float(m->dtype)) continue;
    if (!(x->grads[i] = ember_zeros_on(m->device, m->ndim, m->shape, m->dtype)))
      return -1;
  }
  ember_function_grads a = {
    .nout = x->nout, .grad_outputs = x->grads,
    .nsaved = x->nsaved, .saved = x->saved,
    .nin = n->ninputs, .needs = n->needs, .grad_inputs = gin,
  };
  int rc = x->backward(x->ctx, &a) < 0 ? -1 : 0;
  for (int i = 0; i < n->ninputs; i++) {
    if (!gin[i]) continue;
    if (rc == 0 && n->needs[i]) {
      rc = check_function_grad(n, i, gin[i]);
      if (rc == 0) continue;
    }
    ember_tensor_release(gin[i]);
    gin[i] = NULL;
  }
  return rc;
}

/* }====================================================================== */

static int run_node(ember_node *n, vec *ready, vec *leaves) {
  ember_tensor *acc = n->grad ? part_target(n) : NULL;
  if (acc) {
    int rc = check_saved(n);
    if (rc == 0) rc = n->add_part(n, n->grad, acc);
    ember_node *f = n->next[0].fn;
    if (rc == 0 && f && --f->deps == 0 && vec_push(ready, f) < 0) rc = -1;
    ember_tensor_release(n->grad);
    n->grad = NULL;
    return rc;
  }
  ember_tensor *gin_small[4] = {0};
  ember_tensor **gin = n->ninputs <= 4 ? gin_small
                                       : calloc((size_t)n->ninputs, sizeof *gin);
  if (!gin) { ember_set_error("out of memory"); return -1; }
  int rc = 0;
  if (n->ext) {
    rc = run_function(n, gin);
    if (rc == 0 && anomaly_mode) rc = check_anomaly(n, gin);
  } else if (n->grad) {
    rc = check_saved(n);
    if (rc == 0) rc = n->backward(n, n->grad, gin);
    if (rc == 0 && anomaly_mode) rc = check_anomaly(n, gin);
    if (rc == 0 && n->retained_out) {
      struct ember_autograd_meta *m = n->retained_out->grad_info;
      ember_tensor_retain(n->grad);
      rc = accumulate(&m->pending, n->grad);
      if (rc == 0 && vec_push(leaves, n->retained_out) == 0)
        ember_tensor_retain(n->retained_out);
      else
        rc = -1;
    }
  }
  for (int i = 0; i < n->ninputs; i++) {
    ember_tensor *g = gin[i];
    gin[i] = NULL;
    ember_node *f = n->next[i].fn;
    if (rc == 0 && g && n->needs[i]) {
      if (!(g = fit_grad(n, i, g))) {
        rc = -1;
      } else if (f) {
        rc = accumulate(f->ext ? &f->ext->grads[n->in[i].slot] : &f->grad, g);
      } else {
        ember_tensor *leaf = n->next[i].leaf;
        struct ember_autograd_meta *m = leaf->grad_info;
        int first = m->pending == NULL;
        rc = accumulate(&m->pending, g);
        if (rc == 0 && first) {
          if (vec_push(leaves, leaf) == 0) ember_tensor_retain(leaf);
          else rc = -1;
        }
      }
    } else {
      ember_tensor_release(g);
    }
    if (rc == 0 && f && --f->deps == 0 && vec_push(ready, f) < 0) rc = -1;
  }
  if (gin != gin_small) free(gin);
  ember_tensor_release(n->grad);
  n->grad = NULL;
  if (n->ext) release_all(n->ext->grads, n->ext->nout);
  return rc;
}

/* Step 3: the leaves' .grad += their sums (or the sum becomes .grad). */
static int commit_leaf(ember_tensor *leaf) {
  struct ember_autograd_meta *m = leaf->grad_info;
  ember_tensor *g = m->pending;
  m->pending = NULL;
  if (!m->grad) {
    /* own the gradient: never alias a tensor something else still uses */
    if (g->refcount == 1 && g->storage->refcount == 1 && ember_is_contiguous(g)) {
      m->grad = g;
      return 0;
    }
    ember_tensor *c = ember_clone(g);
    ember_tensor_release(g);
    if (!c) return -1;
    m->grad = c;
    return 0;
  }
  int rc = ember_binary_(EMBER_ADD, m->grad, g);
  ember_tensor_release(g);
  return rc;
}

int ember_backward(ember_tensor *t, const ember_tensor *grad,
                   int retain_graph) {
  if (!ember_ag_requires(t)) {
    ember_set_error("backward: the tensor does not require grad and has no "
                    "grad_fn (did you set requires_grad on its inputs, or run "
                    "it under no_grad?)");
    return -1;
  }
  ember_tensor *g0;
  if (grad) {
    if (grad->ndim != t->ndim ||
        memcmp(grad->shape, t->shape, (size_t)t->ndim * sizeof *t->shape) != 0) {
      char b1[96], b2[96];
      ember_set_error("backward: grad has shape %s but the tensor has shape %s",
                      ember_shape_str(b1, sizeof b1, grad->ndim, grad->shape),
                      ember_shape_str(b2, sizeof b2, t->ndim, t->shape));
      return -1;
    }
    if (!ember_dtype_is_float(grad->dtype)) {
      ember_set_error("backward: grad must be a floating-point tensor, got %s",
                      ember_dtype_name(grad->dtype));
      return -1;
    }
    if (grad->storage->device != t->storage->device) {
      ember_set_error("backward: grad is on %s but the tensor is on %s",
                      ember_device_name(grad->storage->device),
                      ember_device_name(t->storage->device));
      return -1;
    }
    /* the caller's tensor itself when of t's dtype, not a copy: the engine
       never writes into a gradient something else holds (part_target and
       commit_leaf check the counts), so sharing it is safe, and a copy
       cost a tenth of a softmax (4096, 64) forward + backward */
    g0 = ember_cast(grad, t->dtype);
  } else {
    if (ember_numel(t) != 1) {
      char b[96];
      ember_set_error("backward: grad can be implicitly created only for a "
                      "tensor of one element (this one has shape %s); pass "
                      "the gradient: t:backward(grad)",
                      ember_shape_str(b, sizeof b, t->ndim, t->shape));
      return -1;
    }
    g0 = ember_empty_on(t->storage->device, t->ndim, t->shape, t->dtype);
    if (g0 && ember_backend_of(g0)->fill(g0, 1.0, 1) < 0) {
      ember_tensor_release(g0);
      g0 = NULL;
    }
  }
  if (!g0) return -1;

  if (backward_depth == MAX_NESTED_BACKWARD) {
    ember_tensor_release(g0);
    return ember_set_error("backward: more than %d backwards run inside one "
                           "another", MAX_NESTED_BACKWARD);
  }
  backward_depth++;
  int prev = ember_ag_pause();
  vec nodes = {0}, ready = {0}, leaves = {0};
  int rc = 0;
  ember_node *root = t->grad_info->grad_fn;
  if (!root) {
    /* backward on a leaf: its own gradient is g0 */
    ember_tensor_retain(t);
    t->grad_info->pending = g0;
    g0 = NULL;  /* pending owns it now; the cleanup below must not
                   release it a second time */
    rc = vec_push(&leaves, t);
    if (rc < 0) {
      ember_tensor_release(t->grad_info->pending);
      t->grad_info->pending = NULL;
      ember_tensor_release(t);
    }
  } else {
    uint64_t mark = next_mark();
    active_marks[backward_depth - 1] = mark;
    rc = collect(root, mark, &nodes);
    if (rc == 0) {
      if (root->ext) root->ext->grads[t->grad_info->output_nr] = g0;
      else root->grad = g0;
      g0 = NULL;
      rc = vec_push(&ready, root);
    }
    while (rc == 0 && ready.len > 0)
      rc = run_node(ready.items[--ready.len], &ready, &leaves);
    /* on failure, drop the sums collected so far */
    for (size_t i = 0; i < nodes.len; i++) {
      ember_node *n = nodes.items[i];
      ember_tensor_release(n->grad);
      n->grad = NULL;
      if (n->ext) release_all(n->ext->grads, n->ext->nout);
      n->mark = 0;
    }
  }
  ember_tensor_release(g0);
  for (size_t i = 0; i < leaves.len; i++) {
    ember_tensor *leaf = leaves.items[i];
    if (rc == 0) {
      if (commit_leaf(leaf) < 0) rc = -1;
    } else {
      ember_tensor_release(leaf->grad_info->pending);
      leaf->grad_info->pending = NULL;
    }
    ember_tensor_release(leaf);
  }
  if (rc == 0 && !retain_graph) {
    for (size_t i = 0; i < nodes.len; i++) {
      ember_node *n = nodes.items[i];
      if (n->ext && n->ext->nsaved > 0) {
        release_all(n->ext->saved, n->ext->nsaved);
        n->ext->released = 1;
      }
      if (n->nsaved == 0) continue;
      for (int k = 0; k < n->nsaved; k++) ember_tensor_release(n->saved[k]);
      n->nsaved = 0;
      n->released = 1;
    }
  }
  vec_free(&nodes);
  vec_free(&ready);
  vec_free(&leaves);
  ember_ag_resume(prev);
  backward_depth--;
  /* the hooks see the whole step's gradients: the outermost backward's */
  return rc == 0 && backward_depth == 0 ? run_post_hooks() : rc;
}

/* }====================================================================== */

/* {======================================================================
** Custom functions (ember_function_apply, ember.h)
** ======================================================================= */

/* Everything checked before anything is made or changed: a failed call
   leaves the outputs as they were. */
static int check_function_outputs(int nout, ember_tensor *const *outputs) {
  if (nout < 1) return ember_set_error("function: needs at least one output");
  for (int i = 0; i < nout; i++) {
    const ember_tensor *o = outputs[i];
    if (!o) return ember_set_error("function: output %d is missing", i + 1);
    if (ember_ag_requires(o))
      return ember_set_error("function: output %d already requires grad "
                             "(return a new tensor, or a detached alias of "
                             "an input, not the input itself)", i + 1);
    for (int j = 0; j < i; j++)
      if (outputs[j] == o)
        return ember_set_error("function: output %d is output %d again",
                               i + 1, j + 1);
  }
  return 0;
}

/* The extension, its arrays and the name in one block. */
static ember_node_ext *ext_new(const char *name, int nout, int nsaved) {
  size_t len = strlen(name) + 1;
  size_t bytes = sizeof(ember_node_ext) +
                 (size_t)nout * (sizeof(ember_tensor *) + sizeof(ember_in_meta)) +
                 (size_t)nsaved * (sizeof(ember_tensor *) + sizeof(uint64_t)) + len;
  ember_node_ext *x = calloc(1, bytes);
  if (!x) { ember_set_error("out of memory"); return NULL; }
  /* the in_meta (8-byte fields) first, then the pointers, the versions,
     and the name's bytes last */
  x->out = (ember_in_meta *)(x + 1);
  x->grads = (ember_tensor **)(x->out + nout);
  x->saved = x->grads + nout;
  x->saved_version = (uint64_t *)(x->saved + nsaved);
  x->name = (char *)(x->saved_version + nsaved);
  memcpy(x->name, name, len);
  x->nout = nout;
  return x;
}

int ember_function_apply(const char *name, int nin,
                         const ember_tensor *const *inputs, int nsaved,
                         const ember_tensor *const *saved, int nout,
                         ember_tensor *const *outputs,
                         ember_function_backward_fn backward,
                         ember_function_release_fn release, void *ctx) {
  int rc = 0, any = 0;
  ember_node_ext *x = NULL;
  ember_node *node = NULL;
  if (!name || !backward || nin < 0 || nsaved < 0 || (nsaved && !saved) ||
      (nin && !inputs) || !outputs) {
    rc = ember_set_error("function: bad arguments");
    goto done;
  }
  for (int i = 0; i < nsaved; i++)
    if (!saved[i]) { rc = ember_set_error("function: saved tensor %d is missing", i + 1); goto done; }
  if ((rc = check_function_outputs(nout, outputs)) < 0) goto done;
  for (int i = 0; i < nin; i++) any |= ember_ag_requires(inputs[i]);
  if (!ember_grad_mode_ || !any) goto done;   /* nothing to record: 0 */
  if (!(x = ext_new(name, nout, nsaved))) { rc = -1; goto done; }
  for (int i = 0; i < nsaved; i++) {
    const ember_tensor *t = saved[i];
    if (!(x->saved[i] = ember_tensor_alias(t, t->ndim, t->shape, t->strides,
                                           t->offset))) {
      rc = -1;
      goto done;
    }
    x->saved_version[i] = t->storage->version;
    x->nsaved = i + 1;
  }
  if (!(node = ember_ag_node(x->name, NULL, nin, inputs))) { rc = -1; goto done; }
  /* metadata for every float output first: the only step that can fail */
  for (int i = 0; i < nout; i++) {
    const ember_tensor *o = outputs[i];
    x->out[i].ndim = o->ndim;
    x->out[i].dtype = o->dtype;
    x->out[i].device = o->storage->device;
    memcpy(x->out[i].shape, o->shape, sizeof o->shape);
    if (ember_dtype_is_float(o->dtype) && !meta_of(outputs[i])) { rc = -1; goto done; }
  }
  x->backward = backward;
  x->release = release;
  x->ctx = ctx;
  node->ext = x;
  x = NULL;
  for (int i = 0; i < nout; i++) {
    if (!ember_dtype_is_float(outputs[i]->dtype)) continue;
    struct ember_autograd_meta *m = outputs[i]->grad_info;
    ember_ag_node_release(m->grad_fn);   /* none: it did not require grad */
    node->refcount++;
    m->grad_fn = node;
    m->requires_grad = 1;
    m->is_view = 0;
    m->output_nr = i;
  }
  ember_ag_node_release(node);           /* the outputs hold it now */
  return 1;
done:
  /* not recorded: the ctx goes now (ext_free on a partial extension
     would release it too, so it is detached first) */
  if (x) {
    x->release = NULL;
    ext_free(x);
  }
  ember_ag_node_release(node);
  if (release) release(ctx);
  return rc;
}

/* }====================================================================== */
