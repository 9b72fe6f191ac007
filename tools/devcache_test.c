/*
** devcache_test.c -- the caching allocator (core/cuda/devcache.c) over a
** simulated raw allocator: host memory with a device size, a count of
** raw calls, and a failure that is not out-of-memory on demand.
**
** Run by spec/bindings/devcache_spec.lua (make build/devcache-test).  Each
** check prints "ok <name>" or "FAIL <name>: <why>"; the program ends with
** "devcache-test: N failed" and exits 1 if N > 0.
*/
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/cuda/devcache.h"

#define MiB ((size_t)1 << 20)

static int failures;
static char last_error[512];

static int set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return -1;
}

/* The simulated device: `limit` bytes (0: unlimited), `used` of them in
   segments; `fail` makes the next raw allocation fail as a faulted
   device would. */
typedef struct sim {
  size_t limit, used;
  int fail;
  unsigned long long calls;
} sim;

static int sim_malloc(void *ctx, void **p, size_t n) {
  sim *s = ctx;
  s->calls++;
  if (s->fail) {
    set_error("sim: an illegal memory access was encountered (raw malloc of %zu bytes)", n);
    return -1;
  }
  if (s->limit && n > s->limit - s->used) return EMBER_DEVCACHE_OOM;
  if (posix_memalign(p, 512, n) != 0) return EMBER_DEVCACHE_OOM;
  s->used += n;
  return 0;
}

static void sim_free(void *ctx, void *p, size_t n) {
  sim *s = ctx;
  s->used -= n;
  free(p);
}

static int sim_info(void *ctx, size_t *fr, size_t *total) {
  sim *s = ctx;
  if (!s->limit) return -1;
  *total = s->limit;
  *fr = s->limit - s->used;
  return 0;
}

static ember_devcache *new_cache(sim *s) {
  ember_devcache_raw raw = {s, sim_malloc, sim_free, sim_info, set_error, "sim", NULL};
  ember_devcache *c = ember_devcache_new(&raw);
  if (!c) {
    fprintf(stderr, "devcache-test: no host memory\n");
    exit(2);
  }
  return c;
}

static ember_devcache_counts counts(ember_devcache *c) {
  ember_devcache_counts k;
  ember_devcache_stats(c, &k);
  return k;
}

#define CHECK(name, cond, ...)                                              \
  do {                                                                      \
    if (!(cond)) {                                                          \
      printf("FAIL %s: ", name);                                            \
      printf(__VA_ARGS__);                                                  \
      printf("\n");                                                         \
      failures++;                                                           \
      return;                                                               \
    }                                                                       \
  } while (0)

/* {======================================================================
** Checks
** ======================================================================= */

/* The same size again and again: one raw allocation. */
static void same_size_reused(void) {
  sim s = {0};
  ember_devcache *c = new_cache(&s);
  for (int i = 0; i < 100; i++) {
    void *p = ember_devcache_alloc(c, 3000);
    CHECK("same_size_reused", p, "alloc failed: %s", last_error);
    ember_devcache_free(c, p);
  }
  ember_devcache_counts k = counts(c);
  CHECK("same_size_reused", k.allocations == 1, "%llu raw allocations", k.allocations);
  CHECK("same_size_reused", k.allocated_bytes == 0 && k.cached_bytes == 2 * MiB,
        "allocated %zu cached %zu", k.allocated_bytes, k.cached_bytes);
  ember_devcache_destroy(c);
  CHECK("same_size_reused", s.used == 0, "%zu bytes left after destroy", s.used);
  printf("ok same_size_reused\n");
}

/* Small requests round to 512 bytes and share a 2 MiB segment. */
static void small_share_segment(void) {
  sim s = {0};
  ember_devcache *c = new_cache(&s);
  char *a = ember_devcache_alloc(c, 1);
  char *b = ember_devcache_alloc(c, 513);
  char *z = ember_devcache_alloc(c, 0);
  CHECK("small_share_segment", a && b && z, "alloc failed: %s", last_error);
  ember_devcache_counts k = counts(c);
  CHECK("small_share_segment", k.allocations == 1, "%llu raw allocations", k.allocations);
  CHECK("small_share_segment", k.allocated_bytes == 512 + 1024 + 512,
        "allocated %zu, want 2048", k.allocated_bytes);
  CHECK("small_share_segment", k.cached_bytes == 2 * MiB - 2048, "cached %zu", k.cached_bytes);
  CHECK("small_share_segment", b == a + 512 && z == b + 1024,
        "blocks not carved in order: %p %p %p", (void *)a, (void *)b, (void *)z);
  ember_devcache_destroy(c);
  printf("ok small_share_segment\n");
}

/* A large cached block serves a smaller large request, split; the best
   fit is the smallest free block that holds it. */
static void split_best_fit(void) {
  sim s = {0};
  ember_devcache *c = new_cache(&s);
  char *big = ember_devcache_alloc(c, 16 * MiB);
  char *mid = ember_devcache_alloc(c, 6 * MiB);
  char *keep = ember_devcache_alloc(c, 4 * MiB);
  CHECK("split_best_fit", big && mid && keep, "alloc failed: %s", last_error);
  ember_devcache_free(c, big);
  ember_devcache_free(c, mid);
  ember_devcache_counts k0 = counts(c);
  char *p = ember_devcache_alloc(c, 3 * MiB);     /* fits both: takes the 6 MiB */
  ember_devcache_counts k = counts(c);
  CHECK("split_best_fit", p == mid, "3 MiB went to %p, not the 6 MiB block %p",
        (void *)p, (void *)mid);
  CHECK("split_best_fit", k.allocations == k0.allocations, "a raw allocation was made");
  CHECK("split_best_fit", k.allocated_bytes == 4 * MiB + 3 * MiB,
        "allocated %zu: the block was not split", k.allocated_bytes);
  CHECK("split_best_fit", k.cached_bytes == k0.cached_bytes - 3 * MiB, "cached %zu", k.cached_bytes);
  /* the 3 MiB remainder serves the next 2 MiB request, whole: its last
     1 MiB is not worth a block of its own */
  char *q = ember_devcache_alloc(c, 2 * MiB);
  CHECK("split_best_fit", q == mid + 3 * MiB, "2 MiB went to %p", (void *)q);
  k = counts(c);
  CHECK("split_best_fit", k.allocated_bytes == 4 * MiB + 3 * MiB + 3 * MiB,
        "allocated %zu: a 1 MiB remainder was split off", k.allocated_bytes);
  /* a remainder of 1 MiB or less stays with the block */
  char *r = ember_devcache_alloc(c, 15 * MiB + 1);
  k = counts(c);
  CHECK("split_best_fit", r == big, "15 MiB went to %p, not %p", (void *)r, (void *)big);
  CHECK("split_best_fit", k.allocated_bytes == 4 * MiB + 3 * MiB + 3 * MiB + 16 * MiB,
        "allocated %zu: a <= 1 MiB remainder was split off", k.allocated_bytes);
  ember_devcache_destroy(c);
  printf("ok split_best_fit\n");
}

/* Freed neighbours merge, in either order, so their combined size is
   served from the cache. */
static void merge_neighbours(void) {
  for (int order = 0; order < 2; order++) {
    sim s = {0};
    ember_devcache *c = new_cache(&s);
    char *a = ember_devcache_alloc(c, 8 * MiB);
    ember_devcache_free(c, a);
    char *x = ember_devcache_alloc(c, 4 * MiB);
    char *y = ember_devcache_alloc(c, 2 * MiB);
    char *z = ember_devcache_alloc(c, 2 * MiB);
    CHECK("merge_neighbours", x == a && y == a + 4 * MiB && z == a + 6 * MiB,
          "not carved from one segment");
    if (order == 0) {
      ember_devcache_free(c, x); ember_devcache_free(c, z); ember_devcache_free(c, y);
    } else {
      ember_devcache_free(c, y); ember_devcache_free(c, x); ember_devcache_free(c, z);
    }
    ember_devcache_counts k = counts(c);
    CHECK("merge_neighbours", k.cached_bytes == 8 * MiB && k.allocated_bytes == 0,
          "cached %zu allocated %zu", k.cached_bytes, k.allocated_bytes);
    char *w = ember_devcache_alloc(c, 8 * MiB);
    ember_devcache_counts k2 = counts(c);
    CHECK("merge_neighbours", w == a && k2.allocations == 1,
          "order %d: 8 MiB after merging: %p (segment %p), %llu raw allocations", order,
          (void *)w, (void *)a, k2.allocations);
    ember_devcache_destroy(c);
  }
  printf("ok merge_neighbours\n");
}

/* empty gives back wholly free segments only. */
static void empty_releases_free_segments(void) {
  sim s = {0};
  ember_devcache *c = new_cache(&s);
  char *a = ember_devcache_alloc(c, 8 * MiB);
  char *b = ember_devcache_alloc(c, 100);
  char *d = ember_devcache_alloc(c, 100);
  ember_devcache_free(c, a);
  ember_devcache_free(c, b);
  ember_devcache_empty(c);
  ember_devcache_counts k = counts(c);
  CHECK("empty_releases_free_segments", k.releases == 1 && k.segments == 1,
        "%llu releases, %zu segments", k.releases, k.segments);
  CHECK("empty_releases_free_segments", k.cached_bytes == 2 * MiB - 512,
        "cached %zu (the small segment, partly in use, stays)", k.cached_bytes);
  CHECK("empty_releases_free_segments", s.used == 2 * MiB, "%zu bytes held", s.used);
  ember_devcache_free(c, d);
  ember_devcache_empty(c);
  k = counts(c);
  CHECK("empty_releases_free_segments", k.releases == 2 && k.cached_bytes == 0 && s.used == 0,
        "%llu releases, cached %zu, used %zu", k.releases, k.cached_bytes, s.used);
  ember_devcache_destroy(c);
  printf("ok empty_releases_free_segments\n");
}

/* Out of memory: the cache is released and the request retried; one that
   never fits says what was requested, allocated and cached, and changes
   nothing. */
static void oom_release_retry(void) {
  sim s = {16 * MiB, 0, 0, 0};
  ember_devcache *c = new_cache(&s);
  char *a = ember_devcache_alloc(c, 8 * MiB);
  ember_devcache_free(c, a);
  char *b = ember_devcache_alloc(c, 12 * MiB);    /* fits only without the cache */
  ember_devcache_counts k = counts(c);
  CHECK("oom_release_retry", b, "12 MiB failed: %s", last_error);
  CHECK("oom_release_retry", k.allocations == 2 && k.releases == 1,
        "%llu allocations %llu releases", k.allocations, k.releases);
  void *big = ember_devcache_alloc(c, 32 * MiB);
  ember_devcache_counts k2 = counts(c);
  CHECK("oom_release_retry", !big, "32 MiB on a 16 MiB device succeeded");
  const char *want = "sim: out of memory allocating 32.00 MiB (12.00 MiB allocated to "
                     "tensors, 0 B cached after releasing the cache; the device has "
                     "16.00 MiB, 4.00 MiB free)";
  CHECK("oom_release_retry", strcmp(last_error, want) == 0, "message: %s", last_error);
  CHECK("oom_release_retry", k2.allocated_bytes == k.allocated_bytes &&
        k2.allocations == k.allocations, "a failed allocation changed the counts");
  ember_devcache_free(c, b);
  ember_devcache_destroy(c);
  printf("ok oom_release_retry\n");
}

/* A raw failure that is not out of memory is reported in the raw
   allocator's words, not retried, and not called "out of memory". */
static void other_failure_not_oom(void) {
  sim s = {0};
  ember_devcache *c = new_cache(&s);
  char *a = ember_devcache_alloc(c, 8 * MiB);
  ember_devcache_free(c, a);
  s.fail = 1;
  unsigned long long calls = s.calls;
  void *p = ember_devcache_alloc(c, 32 * MiB);
  ember_devcache_counts k = counts(c);
  CHECK("other_failure_not_oom", !p, "allocation succeeded");
  CHECK("other_failure_not_oom", s.calls == calls + 1, "raw malloc called %llu times",
        s.calls - calls);
  CHECK("other_failure_not_oom", strstr(last_error, "illegal memory access") &&
        !strstr(last_error, "out of memory"), "message: %s", last_error);
  CHECK("other_failure_not_oom", k.releases == 0 && k.cached_bytes == 8 * MiB,
        "the cache was released for a failure that is not out of memory");
  ember_devcache_destroy(c);
  printf("ok other_failure_not_oom\n");
}

/* Internal blocks (a workspace) count apart; NULL and foreign pointers
   are ignored; a request too large for any device fails cleanly. */
static void internal_and_foreign(void) {
  sim s = {0};
  ember_devcache *c = new_cache(&s);
  void *w = ember_devcache_alloc_internal(c, 32 * MiB);
  ember_devcache_counts k = counts(c);
  CHECK("internal_and_foreign", w && k.internal_bytes == 32 * MiB && k.allocated_bytes == 0,
        "internal %zu allocated %zu", k.internal_bytes, k.allocated_bytes);
  int local;
  ember_devcache_free(c, NULL);
  ember_devcache_free(c, &local);
  ember_devcache_free(c, (char *)w + 512);
  k = counts(c);
  CHECK("internal_and_foreign", k.internal_bytes == 32 * MiB, "a foreign free changed counts");
  void *huge = ember_devcache_alloc(c, SIZE_MAX - 10);
  CHECK("internal_and_foreign", !huge && strstr(last_error, "out of memory allocating"),
        "SIZE_MAX-10: %p %s", huge, last_error);
  ember_devcache_free(c, w);
  k = counts(c);
  CHECK("internal_and_foreign", k.internal_bytes == 0 && k.cached_bytes == 32 * MiB,
        "internal %zu cached %zu", k.internal_bytes, k.cached_bytes);
  ember_devcache_destroy(c);
  printf("ok internal_and_foreign\n");
}

/* Random allocations and frees, one thread or several: blocks never
   overlap (each is filled with its owner's byte and checked before it is
   freed), and the counts add up to the segments held. */
typedef struct worker {
  ember_devcache *c;
  unsigned seed;
  int bad;
} worker;

static size_t rand_size(unsigned *seed) {
  unsigned r = (unsigned)rand_r(seed);
  switch (r % 4) {
    case 0: return r % 4096;
    case 1: return r % (1 << 20);
    case 2: return (1 << 20) + r % (8 << 20);
    default: return 512 * (1 + r % 64);
  }
}

static void *work(void *arg) {
  worker *w = arg;
  enum { SLOTS = 64 };
  unsigned char *p[SLOTS] = {0};
  size_t n[SLOTS] = {0};
  for (int it = 0; it < 4000; it++) {
    int i = rand_r(&w->seed) % SLOTS;
    if (p[i]) {
      for (size_t j = 0; j < n[i]; j += 97)
        if (p[i][j] != (unsigned char)(i + 1)) w->bad++;
      ember_devcache_free(w->c, p[i]);
      p[i] = NULL;
    } else {
      n[i] = rand_size(&w->seed);
      p[i] = ember_devcache_alloc(w->c, n[i]);
      if (!p[i]) { w->bad++; continue; }
      memset(p[i], i + 1, n[i]);
    }
  }
  for (int i = 0; i < SLOTS; i++) ember_devcache_free(w->c, p[i]);
  return NULL;
}

static void random_threads(void) {
  for (int nt = 1; nt <= 4; nt *= 4) {
    sim s = {0};
    ember_devcache *c = new_cache(&s);
    worker w[4];
    pthread_t th[4];
    for (int i = 0; i < nt; i++) {
      w[i] = (worker){c, 1234u + (unsigned)i * 77u, 0};
      pthread_create(&th[i], NULL, work, &w[i]);
    }
    int bad = 0;
    for (int i = 0; i < nt; i++) {
      pthread_join(th[i], NULL);
      bad += w[i].bad;
    }
    ember_devcache_counts k = counts(c);
    CHECK("random_threads", bad == 0, "%d threads: %d overlapping or failed blocks", nt, bad);
    CHECK("random_threads", k.allocated_bytes == 0 && k.cached_bytes == s.used,
          "%d threads: allocated %zu, cached %zu, segments hold %zu", nt,
          k.allocated_bytes, k.cached_bytes, s.used);
    CHECK("random_threads", k.allocations - k.releases == k.segments,
          "%llu allocations - %llu releases != %zu segments", k.allocations, k.releases,
          k.segments);
    ember_devcache_empty(c);
    k = counts(c);
    CHECK("random_threads", s.used == 0 && k.cached_bytes == 0 && k.segments == 0,
          "after empty: used %zu cached %zu segments %zu", s.used, k.cached_bytes, k.segments);
    ember_devcache_destroy(c);
    printf("ok random_threads %d\n", nt);
  }
}

static void format_bytes(void) {
  char b[32];
  CHECK("format_bytes", !strcmp(ember_devcache_format_bytes(0, b, sizeof b), "0 B"), "%s", b);
  CHECK("format_bytes", !strcmp(ember_devcache_format_bytes(1023, b, sizeof b), "1023 B"), "%s", b);
  CHECK("format_bytes", !strcmp(ember_devcache_format_bytes(1536, b, sizeof b), "1.50 KiB"), "%s", b);
  CHECK("format_bytes", !strcmp(ember_devcache_format_bytes((size_t)80 << 30, b, sizeof b),
                                "80.00 GiB"), "%s", b);
  printf("ok format_bytes\n");
}

/* }====================================================================== */

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  same_size_reused();
  small_share_segment();
  split_best_fit();
  merge_neighbours();
  empty_releases_free_segments();
  oom_release_retry();
  other_failure_not_oom();
  internal_and_foreign();
  random_threads();
  format_bytes();
  printf("devcache-test: %d failed\n", failures);
  return failures ? 1 : 0;
}
