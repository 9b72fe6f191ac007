/*
** devcache.h -- a caching allocator for device memory, in portable C11,
** over a raw allocator its user supplies.
**
** Compiled into each device plugin, not into the core: the CUDA plugin
** (core/cuda/allocator.cu, over cudaMalloc / cudaFree) and the stand-in
** (tools/fake_cuda.c, over host memory, so that specs see the same
** caching).  It calls none of the core's functions; errors go through the
** set_error its user hands it.
**
** Modelled on PyTorch's CUDACachingAllocator:
**   - a request is rounded up: to 512 bytes up to 1 MiB ("small"), to
**     128 KiB above ("large");
**   - memory comes from the raw allocator in segments: small requests
**     share 2 MiB segments, a large one gets a segment of its own, rounded
**     up to 2 MiB;
**   - a free block serves the request it fits best (the smallest one that
**     fits, small and large kept apart); what it has left over becomes a
**     free block of its own when it is useful (any size in a small
**     segment, over 1 MiB in a large one), and a freed block merges with
**     the free blocks beside it in its segment;
**   - segments go back to the raw allocator only when wholly free: on
**     ember_devcache_empty, and when the raw allocator is out of memory
**     (then the request is retried once);
**   - one mutex over everything.  Blocks are reused without waiting for
**     the device: the user runs all its work on one queue (CUDA's default
**     stream), which orders a block's next use after its last.
*/
#ifndef EMBER_DEVCACHE_H
#define EMBER_DEVCACHE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a raw allocation may answer besides 0 (success). */
#define EMBER_DEVCACHE_OOM 1        /* out of memory: release, retry */

/*
** The raw allocator, and how to report errors.  The callbacks run under
** the cache's lock.
*/
typedef struct ember_devcache_raw {
  void *ctx;                                   /* passed to the callbacks */
  /* n bytes into *p: 0; EMBER_DEVCACHE_OOM when the device is out of
     memory (nothing reported); -1 for any other failure, after set_error
     with the reason in the device's own words */
  int (*malloc)(void *ctx, void **p, size_t n);
  void (*free)(void *ctx, void *p, size_t n);
  /* the device's free and total bytes (for the out-of-memory message):
     0, or -1 when unknown; may be NULL */
  int (*mem_info)(void *ctx, size_t *free_bytes, size_t *total_bytes);
  int (*set_error)(const char *fmt, ...);      /* returns -1 */
  const char *name;                            /* messages start "name: " */
  /* a block of n bytes at p handed out (live 1) or back in the cache
     (live 0): the stand-in poisons cached host memory for AddressSanitizer
     with it; may be NULL */
  void (*handed)(void *ctx, void *p, size_t n, int live);
} ember_devcache_raw;

typedef struct ember_devcache ember_devcache;

/* The counts of a cache. */
typedef struct ember_devcache_counts {
  unsigned long long allocations;  /* raw allocations made (segments) */
  unsigned long long releases;     /* raw frees made */
  size_t allocated_bytes;          /* in blocks handed out by _alloc */
  size_t internal_bytes;           /* in blocks handed out by _alloc_internal */
  size_t cached_bytes;             /* in free blocks, kept */
  size_t segments;                 /* segments held */
} ember_devcache_counts;

/* A new empty cache over *raw (copied); NULL when the host is out of
   memory (nothing reported). */
ember_devcache *ember_devcache_new(const ember_devcache_raw *raw);
/* Gives every segment back, live blocks or not, and frees the cache. */
void ember_devcache_destroy(ember_devcache *c);

/* A block of at least n bytes (512-byte aligned when the raw allocator's
   segments are); NULL after set_error. */
void *ember_devcache_alloc(ember_devcache *c, size_t n);
/* The same, for memory the user keeps for itself (cuBLAS's workspace):
   counted in internal_bytes, not allocated_bytes. */
void *ember_devcache_alloc_internal(ember_devcache *c, size_t n);
/* Back to the cache; NULL and pointers not handed out by c are ignored. */
void ember_devcache_free(ember_devcache *c, void *p);
/* Gives every wholly free segment back to the raw allocator. */
void ember_devcache_empty(ember_devcache *c);
void ember_devcache_stats(ember_devcache *c, ember_devcache_counts *out);

/* n bytes as "512 B", "1.50 MiB", "4.00 GiB" into buf; returns buf. */
char *ember_devcache_format_bytes(size_t n, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
