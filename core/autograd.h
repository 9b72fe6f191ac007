/*
** autograd.h -- the graph that reverse-mode autograd records (internal).
**
** A tensor that requires grad carries an ember_autograd_meta.  A leaf's meta
** holds its accumulated .grad; a recorded result's meta holds the node
** (grad_fn) that produced it.  A node knows its inputs through edges: an
** edge leads to the node that produced the input, or to the input itself
** when that is a leaf (whose .grad receives the gradient), or nowhere when
** the input needs no gradient.
**
** Nodes never point at the tensors they produced, so the graph has no
** cycles and dies by reference counting with the last result that reaches
** it.  Tensors a backward function needs are saved as detached aliases
** (same storage, no meta) together with their storage's version, so an
** in-place write after the forward pass is caught, not silently used.
**
** Recording happens in the public ops, after the result is computed: an
** op whose input requires grad (ember_ag_active1/2) makes a node, puts
** its parameters in a typed struct (EMBER_NODE_STATE), saves the tensors
** its backward needs and attaches the node to the result.  Each family's
** file in core/ops/ holds its ops' forward, recording and backward side
** by side (core/ops/ops.h, docs/internals.md).  Backward functions run
** with grad mode off.
*/
#ifndef EMBER_AUTOGRAD_H
#define EMBER_AUTOGRAD_H

#include "core.h"     /* the core's private helpers, and backend.h */

typedef struct ember_node ember_node;

/* Compute the gradients of a node's inputs from the gradient of its output.
   gin[i] is NULL on entry; fill those with n->needs[i] set (new
   references).  A gradient may have the shape of the broadcast result (the
   engine sums it down to the input's shape) and any float dtype (the engine
   casts it).  Return -1 after ember_set_error on failure. */
typedef int (*ember_backward_fn)(ember_node *n, ember_tensor *g,
                                 ember_tensor **gin);

/* Optional, for a node whose input's gradient is zeros except in the part
   its output was taken from (narrow, select, slice): add g into that part
   of acc, the input's gradient so far, in place.  The engine calls it only
   when it owns acc alone, so that a sequence cut into L steps costs L
   parts instead of L full-size zero tensors.  Returns 0 when done, -1
   after ember_set_error. */
typedef int (*ember_add_part_fn)(ember_node *n, const ember_tensor *g,
                                 ember_tensor *acc);

typedef struct ember_edge {
  ember_node *fn;       /* producer of the input (retained), or NULL */
  ember_tensor *leaf;   /* the input itself when it is a leaf (retained) */
} ember_edge;

typedef struct ember_in_meta {  /* what the engine needs of each input */
  int ndim;
  ember_dtype dtype;
  ember_device device;
  int slot;             /* which output of its producer the input is (the
                           output_nr of its meta); read only when the
                           producer is a function node (ext) */
  int64_t shape[EMBER_MAX_DIMS];
} ember_in_meta;

#define EMBER_NODE_MAX_SAVED 6   /* attention saves q, k, v, o, lse, mask */
#define EMBER_NODE_STATE_BYTES 64

/*
** A node made by ember_function_apply (a custom function: its backward is
** the caller's callback) has more than one output and its own list of
** saved tensors, so it carries this extension; every other node has
** ext == NULL and the engine takes one test of it per node.  The engine
** sums the gradient of output i into grads[i] (through the `slot` of its
** consumers' edges) instead of into node->grad.
*/
typedef struct ember_node_ext {
  ember_function_backward_fn backward;
  ember_function_release_fn release;
  void *ctx;
  char *name;                     /* the node's name, owned */
  int nout;
  ember_tensor **grads;           /* [nout]: engine scratch, as node->grad */
  ember_in_meta *out;             /* [nout]: zeros for an output no gradient
                                     reached are made from these */
  int nsaved;
  int released;                   /* saved tensors freed by a backward */
  ember_tensor **saved;           /* [nsaved]: detached aliases */
  uint64_t *saved_version;        /* [nsaved] */
} ember_node_ext;

struct ember_node {
  int refcount;
  const char *name;               /* "MulBackward", ... */
  ember_backward_fn backward;
  ember_add_part_fn add_part;     /* NULL unless the op sets it */
  int ninputs;
  ember_edge *next;               /* [ninputs] */
  ember_in_meta *in;              /* [ninputs] */
  unsigned char *needs;           /* [ninputs]: input needs a gradient */
  int nsaved;
  ember_tensor *saved[EMBER_NODE_MAX_SAVED];
  uint64_t saved_version[EMBER_NODE_MAX_SAVED];
  int released;                   /* saved tensors freed by backward */
  /* The op's own parameters, as a struct of its family's file
     (`struct conv_saved`), read and written through EMBER_NODE_STATE.
     Zeroed when the node is made. */
  union {
    unsigned char bytes[EMBER_NODE_STATE_BYTES];
    double align_d;
    int64_t align_i;
    void *align_p;
  } state;
  ember_tensor *retained_out;     /* weak: a non-leaf that retains grad */
  char *where;                    /* anomaly mode: the forward call site
                                     (malloc'd, from the where hook) */
  ember_node_ext *ext;            /* a custom function's node, else NULL */
  /* engine scratch, valid during one backward */
  uint64_t mark;
  int deps;
  ember_tensor *grad;
};

struct ember_autograd_meta {
  int requires_grad;
  int retains_grad;
  int is_view;                    /* a recorded view of another tensor */
  ember_tensor *grad;             /* accumulated gradient (leaves) */
  ember_node *grad_fn;            /* producer (non-leaves), retained */
  ember_tensor *pending;          /* engine scratch: this backward's sum */
  int output_nr;                  /* which output of grad_fn (a function
                                     node's; 0 for every other node) */
};

/* Per thread (autograd.c).  The default TLS model: in the ember executable
   and a static host the linker makes every read one %fs-relative load;
   initial-exec would also make a dlopen'd core.so claim glibc's small
   static TLS reserve for its whole TLS block (the free lists too). */
extern _Thread_local int ember_grad_mode_;

/* The post-backward hooks (ember_add_post_backward_hook): the engine's
   whole hook state is this one struct, so that it can move as a unit into
   whatever state owns the engine (today one per thread, in autograd.c).
   `running` is set while the hooks run, so a backward they start runs
   none. */
typedef struct ember_hook_list {
  int n, running;
  struct {
    ember_post_backward_fn fn;
    void *ctx;
  } at[EMBER_MAX_POST_BACKWARD_HOOKS];
} ember_hook_list;

static inline int ember_ag_requires(const ember_tensor *t) {
  return t && t->grad_info && t->grad_info->requires_grad;
}
static inline int ember_ag_active1(const ember_tensor *a) {
  return ember_grad_mode_ && ember_ag_requires(a);
}
static inline int ember_ag_active2(const ember_tensor *a, const ember_tensor *b) {
  return ember_grad_mode_ && (ember_ag_requires(a) || ember_ag_requires(b));
}

/* The node's parameters as the op's struct `type` (at most
   EMBER_NODE_STATE_BYTES bytes: a bigger struct fails to compile through
   the negative array size). */
#define EMBER_NODE_STATE(node, type)                                       \
  ((type *)(void *)((node)->state.bytes +                                 \
                    0 * sizeof(char[sizeof(type) <= EMBER_NODE_STATE_BYTES \
                                        ? 1 : -1])))

/* A node for an op over `n` inputs (any may be NULL: no gradient). */
ember_node *ember_ag_node(const char *name, ember_backward_fn fn, int n,
                          const ember_tensor *const *inputs);
/* Save t (a detached alias) for backward; -1 on failure. */
int ember_ag_save(ember_node *node, const ember_tensor *t);
/* Make `out` the node's result: out requires grad with grad_fn = node.
   Consumes the caller's reference to node.  On failure releases out and
   returns NULL, so ops can `return ember_ag_finish(node, out);`. */
ember_tensor *ember_ag_finish(ember_node *node, ember_tensor *out, int is_view);
void ember_ag_node_release(ember_node *n);
void ember_ag_meta_free(struct ember_autograd_meta *m);
/* Per-thread free lists (storage.c: tensor headers and small blocks;
   autograd.c: nodes and metadata) are emptied when their thread exits.
   ember_thread_cache_arm: call before a thread first keeps a freed block
   (storage.c).  ember_ag_cache_drop: empties autograd.c's lists. */
void ember_thread_cache_arm(void);
void ember_ag_cache_drop(void);

/* Turn recording off around a nested call; returns the previous mode. */
int ember_ag_pause(void);
void ember_ag_resume(int prev);

/* The gradient g summed down to shape (ndim, shape): broadcasting's
   adjoint.  New reference. */
ember_tensor *ember_ag_sum_to(const ember_tensor *g, int ndim,
                              const int64_t *shape);

/* In-place ops on a tensor that requires grad: a leaf (while recording) is
   an error; a non-leaf's history is replaced by the op's node (rebase).
   Returns 0 when `t` needs no special handling, -1 on error. */
int ember_ag_check_inplace(const char *fn, const ember_tensor *t);

#endif
