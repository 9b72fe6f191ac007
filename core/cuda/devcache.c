/*
** devcache.c -- the caching allocator of the device plugins (devcache.h
** says what it does; this file how).
**
** Every piece of a segment is a block: the segment's blocks form a list
** by address (prev/next), free or handed out.  A free block sits in one
** of its pool's size bins; a block handed out sits in the live table,
** keyed by its address, so that ember_devcache_free finds it.  A segment
** is wholly free when its one block is free and has no neighbour.
*/
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "devcache.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#define SMALL_SIZE (1 * MiB)          /* largest "small" request */
#define SMALL_STEP ((size_t)512)      /* small requests round to this */
#define LARGE_STEP (128 * KiB)        /* large requests round to this */
#define SMALL_SEGMENT (2 * MiB)       /* small requests share these */
#define LARGE_SEGMENT_STEP (2 * MiB)  /* large segments round to this */
#define LARGE_MIN_SPLIT (1 * MiB)     /* a large remainder worth keeping: over this */

/* Size bins: 4 per power of two from 512 bytes (2^9) up. */
#define BIN_LOW 9
#define BINS ((64 - BIN_LOW) * 4)

enum { POOL_SMALL, POOL_LARGE, POOLS };

typedef struct block {
  char *ptr;
  size_t size;
  struct block *prev, *next;     /* neighbours in the segment, by address */
  struct block *fprev, *fnext;   /* the bin's list, while free */
  struct block *hnext;           /* the live table's chain, while handed out */
  unsigned char free, pool, internal;
} block;

struct ember_devcache {
  pthread_mutex_t lock;
  ember_devcache_raw raw;
  block *bins[POOLS][BINS];      /* free blocks */
  block **live;                  /* handed-out blocks, by address */
  size_t live_cap, live_count;   /* live_cap: a power of two */
  ember_devcache_counts st;
};

/* {======================================================================
** Sizes and bins
** ======================================================================= */

static size_t round_up(size_t n, size_t step) {
  return (n + step - 1) / step * step;
}

/* The bin of a free block of size n (a multiple of 512): bins grow with
   the size, so every block of a later bin is larger than any of an
   earlier one. */
static int bin_of(size_t n) {
  int lg = 63;
  while (lg > BIN_LOW && !(n >> lg)) lg--;
  int mant = lg >= 2 ? (int)((n >> (lg - 2)) & 3) : 0;
  return (lg - BIN_LOW) * 4 + mant;
}

static void bin_insert(ember_devcache *c, block *b) {
  block **head = &c->bins[b->pool][bin_of(b->size)];
  b->fprev = NULL;
  b->fnext = *head;
  if (*head) (*head)->fprev = b;
  *head = b;
  b->free = 1;
  c->st.cached_bytes += b->size;
}

static void bin_remove(ember_devcache *c, block *b) {
  if (b->fprev) b->fprev->fnext = b->fnext;
  else c->bins[b->pool][bin_of(b->size)] = b->fnext;
  if (b->fnext) b->fnext->fprev = b->fprev;
  b->fprev = b->fnext = NULL;
  b->free = 0;
  c->st.cached_bytes -= b->size;
}

/* Best fit: the smallest free block of the pool that holds n bytes.  In
   n's own bin a smaller block may not fit, so that bin is searched; in a
   later one every block fits, so its smallest wins. */
static block *best_fit(ember_devcache *c, int pool, size_t n) {
  for (int i = bin_of(n); i < BINS; i++) {
    block *best = NULL;
    for (block *b = c->bins[pool][i]; b; b = b->fnext)
      if (b->size >= n && (!best || b->size < best->size)) best = b;
    if (best) return best;
  }
  return NULL;
}

/* }====================================================================== */

/* {======================================================================
** The live table: handed-out blocks by address (chained; the chain link
** is in the block, so inserting never allocates)
** ======================================================================= */

static size_t live_hash(const void *p, size_t cap) {
  uint64_t h = (uint64_t)(uintptr_t)p >> 9;
  h *= UINT64_C(0x9E3779B97F4A7C15);
  return (size_t)(h >> 32) & (cap - 1);
}

/* Doubles the table when it is full; keeps the old one (longer chains)
   when the host has no memory for a bigger one. */
static void live_grow(ember_devcache *c) {
  size_t cap = c->live_cap * 2;
  block **t = calloc(cap, sizeof *t);
  if (!t) return;
  for (size_t i = 0; i < c->live_cap; i++)
    for (block *b = c->live[i], *nx; b; b = nx) {
      nx = b->hnext;
      size_t h = live_hash(b->ptr, cap);
      b->hnext = t[h];
      t[h] = b;
    }
  free(c->live);
  c->live = t;
  c->live_cap = cap;
}

static void live_insert(ember_devcache *c, block *b) {
  if (c->live_count >= c->live_cap) live_grow(c);
  size_t h = live_hash(b->ptr, c->live_cap);
  b->hnext = c->live[h];
  c->live[h] = b;
  c->live_count++;
}

static block *live_remove(ember_devcache *c, const void *p) {
  block **at = &c->live[live_hash(p, c->live_cap)];
  for (; *at; at = &(*at)->hnext)
    if ((*at)->ptr == p) {
      block *b = *at;
      *at = b->hnext;
      b->hnext = NULL;
      c->live_count--;
      return b;
    }
  return NULL;
}

/* }====================================================================== */

/* {======================================================================
** Segments
** ======================================================================= */

/* Gives every wholly free segment back to the raw allocator. */
static void release_free_segments(ember_devcache *c) {
  for (int p = 0; p < POOLS; p++)
    for (int i = 0; i < BINS; i++)
      for (block *b = c->bins[p][i], *nx; b; b = nx) {
        nx = b->fnext;
        if (b->prev || b->next) continue;     /* part of a segment in use */
        bin_remove(c, b);
        c->raw.free(c->raw.ctx, b->ptr, b->size);
        c->st.releases++;
        c->st.segments--;
        free(b);
      }
}

/* The out-of-memory message: what was asked for, what the cache holds
   (after it gave back what it could), and the device's own view. */
static void report_oom(ember_devcache *c, size_t n) {
  char req[32], alloc[32], cached[32], internal[40] = "", dev[96] = "";
  size_t fr = 0, total = 0;
  if (c->st.internal_bytes) {
    char b[32];
    snprintf(internal, sizeof internal, ", %s in workspaces",
             ember_devcache_format_bytes(c->st.internal_bytes, b, sizeof b));
  }
  if (c->raw.mem_info && c->raw.mem_info(c->raw.ctx, &fr, &total) == 0) {
    char t[32], f[32];
    snprintf(dev, sizeof dev, "; the device has %s, %s free",
             ember_devcache_format_bytes(total, t, sizeof t),
             ember_devcache_format_bytes(fr, f, sizeof f));
  }
  c->raw.set_error("%s: out of memory allocating %s (%s allocated to tensors%s, "
                   "%s cached after releasing the cache%s)", c->raw.name,
                   ember_devcache_format_bytes(n, req, sizeof req),
                   ember_devcache_format_bytes(c->st.allocated_bytes, alloc, sizeof alloc),
                   internal,
                   ember_devcache_format_bytes(c->st.cached_bytes, cached, sizeof cached),
                   dev);
}

/* A new segment of seg bytes as one block, not yet in any list; NULL
   after set_error.  A raw allocation out of memory gives the free
   segments back and tries once more; any other failure is the raw
   allocator's to report, in its own words. */
static block *new_segment(ember_devcache *c, int pool, size_t seg, size_t n) {
  block *b = calloc(1, sizeof *b);
  if (!b) {
    c->raw.set_error("%s: out of host memory in the device allocator", c->raw.name);
    return NULL;
  }
  void *p = NULL;
  int rc = c->raw.malloc(c->raw.ctx, &p, seg);
  if (rc == EMBER_DEVCACHE_OOM) {
    release_free_segments(c);
    p = NULL;
    rc = c->raw.malloc(c->raw.ctx, &p, seg);
    if (rc == EMBER_DEVCACHE_OOM) report_oom(c, n);
  }
  if (rc != 0) {
    free(b);
    return NULL;
  }
  c->st.allocations++;
  c->st.segments++;
  b->ptr = p;
  b->size = seg;
  b->pool = (unsigned char)pool;
  return b;
}

/* }====================================================================== */

/* {======================================================================
** The interface
** ======================================================================= */

ember_devcache *ember_devcache_new(const ember_devcache_raw *raw) {
  ember_devcache *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->live_cap = 256;
  c->live = calloc(c->live_cap, sizeof *c->live);
  if (!c->live || pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c->live);
    free(c);
    return NULL;
  }
  c->raw = *raw;
  if (!c->raw.name) c->raw.name = "device";
  return c;
}

void ember_devcache_destroy(ember_devcache *c) {
  if (!c) return;
  /* every segment's first block (a live one or a free one) once; the
     free-list link is free to reuse now */
  block *heads = NULL;
  for (size_t i = 0; i < c->live_cap; i++)
    for (block *b = c->live[i]; b; b = b->hnext)
      if (!b->prev) { b->fnext = heads; heads = b; }
  for (int p = 0; p < POOLS; p++)
    for (int i = 0; i < BINS; i++)
      for (block *b = c->bins[p][i], *nx; b; b = nx) {
        nx = b->fnext;
        if (!b->prev) { b->fnext = heads; heads = b; }
      }
  for (block *h = heads, *nh; h; h = nh) {
    nh = h->fnext;
    size_t seg = 0;
    for (block *b = h; b; b = b->next) seg += b->size;
    c->raw.free(c->raw.ctx, h->ptr, seg);
    for (block *b = h, *nx; b; b = nx) {
      nx = b->next;
      free(b);
    }
  }
  free(c->live);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

/* Rounds the request, takes the best free block or a new segment, and
   splits off what the request leaves over when it is worth keeping. */
static void *alloc_block(ember_devcache *c, size_t n, int internal) {
  size_t want = n ? n : 1;
  if (want > SIZE_MAX / 2) {
    char b[32];
    return c->raw.set_error("%s: out of memory allocating %s (more than any device holds)",
                            c->raw.name, ember_devcache_format_bytes(n, b, sizeof b)),
           NULL;
  }
  int pool = want <= SMALL_SIZE ? POOL_SMALL : POOL_LARGE;
  size_t size = round_up(want, pool == POOL_SMALL ? SMALL_STEP : LARGE_STEP);
  pthread_mutex_lock(&c->lock);
  block *b = best_fit(c, pool, size);
  if (b) {
    bin_remove(c, b);
  } else {
    size_t seg = pool == POOL_SMALL ? SMALL_SEGMENT : round_up(size, LARGE_SEGMENT_STEP);
    b = new_segment(c, pool, seg, n);
    if (!b) {
      pthread_mutex_unlock(&c->lock);
      return NULL;
    }
  }
  size_t rest = b->size - size;
  if (rest > 0 && (pool == POOL_SMALL || rest > LARGE_MIN_SPLIT)) {
    block *r = calloc(1, sizeof *r);
    if (r) {                     /* without it the block just stays whole */
      r->ptr = b->ptr + size;
      r->size = rest;
      r->pool = b->pool;
      r->prev = b;
      r->next = b->next;
      if (b->next) b->next->prev = r;
      b->next = r;
      b->size = size;
      bin_insert(c, r);
    }
  }
  b->free = 0;
  b->internal = (unsigned char)(internal != 0);
  live_insert(c, b);
  if (internal) c->st.internal_bytes += b->size;
  else c->st.allocated_bytes += b->size;
  void *p = b->ptr;
  if (c->raw.handed) c->raw.handed(c->raw.ctx, p, b->size, 1);
  pthread_mutex_unlock(&c->lock);
  return p;
}

void *ember_devcache_alloc(ember_devcache *c, size_t n) {
  return alloc_block(c, n, 0);
}

void *ember_devcache_alloc_internal(ember_devcache *c, size_t n) {
  return alloc_block(c, n, 1);
}

/* Back into its bin, merged with a free block on either side. */
void ember_devcache_free(ember_devcache *c, void *p) {
  if (!p) return;
  pthread_mutex_lock(&c->lock);
  block *b = live_remove(c, p);
  if (!b) {                                  /* not ours: leave it alone */
    pthread_mutex_unlock(&c->lock);
    return;
  }
  if (b->internal) c->st.internal_bytes -= b->size;
  else c->st.allocated_bytes -= b->size;
  if (c->raw.handed) c->raw.handed(c->raw.ctx, b->ptr, b->size, 0);
  b->internal = 0;
  block *nx = b->next;
  if (nx && nx->free) {
    bin_remove(c, nx);
    b->size += nx->size;
    b->next = nx->next;
    if (nx->next) nx->next->prev = b;
    free(nx);
  }
  block *pv = b->prev;
  if (pv && pv->free) {
    bin_remove(c, pv);
    pv->size += b->size;
    pv->next = b->next;
    if (b->next) b->next->prev = pv;
    free(b);
    b = pv;
  }
  bin_insert(c, b);
  pthread_mutex_unlock(&c->lock);
}

void ember_devcache_empty(ember_devcache *c) {
  pthread_mutex_lock(&c->lock);
  release_free_segments(c);
  pthread_mutex_unlock(&c->lock);
}

void ember_devcache_stats(ember_devcache *c, ember_devcache_counts *out) {
  pthread_mutex_lock(&c->lock);
  *out = c->st;
  pthread_mutex_unlock(&c->lock);
}

char *ember_devcache_format_bytes(size_t n, char *buf, size_t len) {
  static const char *unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (n < KiB) {
    snprintf(buf, len, "%zu B", n);
    return buf;
  }
  double v = (double)n / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    u++;
  }
  snprintf(buf, len, "%.2f %s", v, unit[u]);
  return buf;
}

/* }====================================================================== */
