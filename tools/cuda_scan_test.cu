/*
** cuda_scan_test.cu -- checks the tiled scan of core/cuda/scan.cu on the
** host: its decomposition (tiles, the three passes, the runs, warps and
** carries of a block) and its combine rule (scan_math.h), against the
** CPU kernel's sequential rule (core/cpu/scan.c).
**
** Host code only (no CUDA runtime; built by nvcc because scan_math.h is
** CUDA C++), so it runs on a machine without a GPU:
**
**   build/cuda-scan-test [seed]     prints "cuda-scan-test: ok ..."
**
** The emulation runs a block's threads in lock step: scan_run,
** scan_apply, scan_combine and the tile arithmetic are the kernel's own
** (scan_math.h); the warp shuffles and barriers of block_scan are
** replayed on arrays, step for step.  It runs the production block
** (SCAN_THREADS x SCAN_ITEMS) and small ones whose tiles are short, so
** that lines of many tiles, a pass 2 over several chunks of totals, and
** every boundary (a tile's last element, a run's, a warp's) come up with
** lines of a few thousand elements.  Checks, for every op and every
** element type: lengths 1, around a run, a warp, a block and a tile, and
** multiples of a tile; forward and reverse; lines `inner` apart; sums and
** products within double's rounding (scaled by the sum of |x|), maxima
** and their positions exactly (ties, NaNs, infinities), integers exactly
** (wrapping), logcumsumexp within double's rounding; the path choice.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>
#include <vector>

#include "../core/cuda/scan_math.h"

static uint64_t rng_state = 0x5eed5eedull;

static uint64_t rnd(void) {                       /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static long failures = 0, checks = 0, elements = 0;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    checks++;                                                                \
    if (!(cond)) {                                                           \
      if (failures++ < 20) {                                                 \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                 \
        fprintf(stderr, __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                 \
      }                                                                      \
    }                                                                        \
  } while (0)

/* {======================================================================
** The kernels, emulated
** ======================================================================= */

/* A block of THREADS threads, ITEMS items each, in lock step. */
template <class T, int OP, int THREADS, int ITEMS> struct block {
  typedef scan_item<T> I;
  I x[THREADS][ITEMS];

  /* warp_scan over the lanes of v[0..width) for each group of `width`
     lanes of one warp: Hillis-Steele, each step reading the values
     before it (what __shfl_up_sync gives) */
  static void warp_scan(I *v, int lanes, int width) {
    std::vector<I> o(v, v + lanes);
    for (int delta = 1; delta < width; delta *= 2) {
      for (int l = 0; l < lanes; l++) o[l] = v[l];
      for (int l = 0; l < lanes; l++)
        if (l % SCAN_WARP >= delta) v[l] = scan_combine<T, OP>(o[l - delta], v[l]);
    }
  }

  /* block_scan (scan.cu), emulated: the tile's total */
  I scan(int valid, bool has_carry, I carry) {
    const int NW = THREADS / SCAN_WARP;
    I incl[THREADS], excl[THREADS], warp[NW];
    for (int t = 0; t < THREADS; t++) {
      scan_run<T, OP, ITEMS>(x[t]);
      incl[t] = x[t][ITEMS - 1];
    }
    warp_scan(incl, THREADS, SCAN_WARP);
    for (int t = 0; t < THREADS; t++) excl[t] = t % SCAN_WARP ? incl[t - 1] : incl[t];
    for (int w = 0; w < NW; w++) warp[w] = incl[w * SCAN_WARP + SCAN_WARP - 1];
    warp_scan(warp, NW, NW);
    for (int t = 0; t < THREADS; t++) {
      int lane = t % SCAN_WARP, wp = t / SCAN_WARP;
      bool has = has_carry;
      I pre = carry;
      if (wp > 0) { pre = has ? scan_combine<T, OP>(pre, warp[wp - 1]) : warp[wp - 1]; has = true; }
      if (lane > 0) { pre = has ? scan_combine<T, OP>(pre, excl[t]) : excl[t]; has = true; }
      if (has) scan_apply<T, OP, ITEMS>(pre, x[t]);
    }
    return x[(valid - 1) / ITEMS][(valid - 1) % ITEMS];
  }
};

/* The tiled path over [outer, n, inner] (src s), emulated: out gets the
   items (value and position) of every element. */
template <class T, int OP, int THREADS, int ITEMS>
static void tiled(const std::vector<T> &s, std::vector<scan_item<T>> &out,
                  int64_t outer, int64_t n, int64_t inner, int reverse) {
  typedef scan_item<T> I;
  typedef typename scan_acc<T>::A A;
  const int64_t TILE = THREADS * ITEMS, lines = outer * inner;
  int64_t tiles = scan_tiles(n, TILE);
  std::vector<I> agg((size_t)(lines * tiles));
  static block<T, OP, THREADS, ITEMS> b;
  for (int pass = 1; pass <= 3; pass += 2) {
    if (pass == 1 && tiles == 1) continue;             /* as scan_launch */
    for (int64_t w = 0; w < lines * tiles; w++) {       /* k_scan_tiles */
      int64_t line = w / tiles, t = w - line * tiles;
      int64_t o = line / inner, j = line - o * inner;
      int64_t base = o * n * inner + j, r0 = t * TILE;
      int valid = (int)scan_tile_len(n, t, TILE);
      for (int th = 0; th < THREADS; th++)
        for (int i = 0; i < ITEMS; i++) {
          int e = th * ITEMS + i;
          b.x[th][i].v = e < valid ? (A)s[base + scan_pos(r0 + e, n, reverse) * inner] : (A)0;
          b.x[th][i].p = scan_pos(r0 + e, n, reverse);
        }
      bool has_carry = pass == 3 && t > 0;
      I total = b.scan(valid, has_carry, has_carry ? agg[w - 1] : b.x[0][0]);
      if (pass == 1) {
        agg[w] = total;
        continue;
      }
      for (int e = 0; e < valid; e++)
        out[base + scan_pos(r0 + e, n, reverse) * inner] = b.x[e / ITEMS][e % ITEMS];
    }
    if (pass == 3) break;
    for (int64_t line = 0; line < lines; line++) {      /* k_scan_totals */
      I *a = &agg[line * tiles], carry = a[0];
      for (int64_t c = 0; c * TILE < tiles; c++) {
        I *ac = a + c * TILE;
        int valid = (int)scan_tile_len(tiles, c, TILE);
        for (int th = 0; th < THREADS; th++)
          for (int i = 0; i < ITEMS; i++) {
            int e = th * ITEMS + i;
            b.x[th][i] = ac[e < valid ? e : 0];
          }
        carry = b.scan(valid, c > 0, carry);
        for (int e = 0; e < valid; e++) ac[e] = b.x[e / ITEMS][e % ITEMS];
      }
    }
  }
}

/* }====================================================================== */

/* {======================================================================
** The reference: the CPU kernel's loop (core/cpu/scan.c), written apart
** ======================================================================= */

static double ref_lae(double a, double b) {
  double mn = a < b ? a : b, mx = a < b ? b : a;
  if (isnan(a) || isnan(b)) return NAN;
  if (mn != mx || isfinite(mn)) return mx + log1p(exp(mn - mx));
  return a;
}

template <class T, int OP>
static void sequential(const std::vector<T> &s, std::vector<scan_item<T>> &out,
                       std::vector<double> &scale, int64_t outer, int64_t n,
                       int64_t inner, int reverse) {
  typedef typename scan_acc<T>::A A;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      A acc = 0;
      int64_t pos = 0;
      double sc = 0;
      for (int64_t r = 0; r < n; r++) {
        int64_t k = reverse ? n - 1 - r : r, e = (o * n + k) * inner + j;
        A x = (A)s[e];
        if (r == 0) {
          acc = x;
          pos = k;
        } else if (OP == EMBER_SCAN_SUM) {
          acc = acc + x;
        } else if (OP == EMBER_SCAN_PROD) {
          acc = acc * x;
        } else if (OP == EMBER_SCAN_MAX) {
          T xv = s[e], av = (T)acc;
          if (xv != xv || (av == av && xv >= av)) {
            acc = x;
            pos = k;
          }
        } else {
          acc = (A)ref_lae((double)acc, (double)x);
        }
        sc += fabs((double)x);
        out[e].v = acc;
        out[e].p = pos;
        scale[e] = sc;
      }
    }
}

/* }====================================================================== */

/* {======================================================================
** Cases
** ======================================================================= */

/* Inputs for op and T: ties and NaNs for max, values near 1 for prod. */
template <class T, int OP> static T input(void) {
  double u = rnd_unit();
  if (OP == EMBER_SCAN_MAX) {
    if constexpr (std::is_floating_point<T>::value) {
      if (u < 0.02) return (T)NAN;
      if (u < 0.04) return (T)(u < 0.03 ? INFINITY : -INFINITY);
    }
    return (T)(int)(rnd() % 16) - (T)(((T)-1 < 0) ? 8 : 0);   /* many ties */
  }
  if constexpr (!std::is_floating_point<T>::value)
    return (T)rnd();                                         /* they wrap */
  if (OP == EMBER_SCAN_PROD) return (T)(0.9 + 0.2 * u);
  return (T)(6 * u - 3);
}

template <class T, int OP, int THREADS, int ITEMS>
static void one(int64_t outer, int64_t n, int64_t inner, int reverse) {
  typedef scan_item<T> I;
  size_t size = (size_t)(outer * n * inner);
  std::vector<T> s(size);
  for (size_t i = 0; i < size; i++) s[i] = input<T, OP>();
  std::vector<I> got(size), want(size);
  std::vector<double> scale(size);
  for (size_t i = 0; i < size; i++) got[i].p = -7;        /* never written */
  tiled<T, OP, THREADS, ITEMS>(s, got, outer, n, inner, reverse);
  sequential<T, OP>(s, want, scale, outer, n, inner, reverse);
  const bool fl = std::is_floating_point<T>::value;
  for (size_t i = 0; i < size; i++) {
    double g = (double)got[i].v, w = (double)want[i].v;
    bool ok;
    if (OP == EMBER_SCAN_MAX)
      ok = got[i].p == want[i].p && ((g != g && w != w) || g == w);
    else if (!fl)
      ok = got[i].v == want[i].v;
    else if (OP == EMBER_SCAN_SUM)
      ok = fabs(g - w) <= 1e-13 * (scale[i] + 1);
    else
      ok = fabs(g - w) <= 1e-12 * (fabs(w) + 1);
    CHECK(ok, "op %d, %zu-byte T, block %dx%d, [%lld, %lld, %lld]%s, element %zu: "
          "got %.17g at %lld, want %.17g at %lld", OP, sizeof(T), THREADS, ITEMS,
          (long long)outer, (long long)n, (long long)inner, reverse ? " reverse" : "",
          i, g, (long long)got[i].p, w, (long long)want[i].p);
    if (!ok) return;
  }
  elements += (long)size;
}

/* Every length of interest for a block of THREADS x ITEMS. */
template <class T, int OP, int THREADS, int ITEMS>
static void lengths(void) {
  const int64_t TILE = THREADS * ITEMS;
  const int64_t ns[] = {1, 2, ITEMS - 1 > 0 ? ITEMS - 1 : 1, ITEMS, ITEMS + 1,
                        SCAN_WARP * ITEMS - 1, SCAN_WARP * ITEMS, SCAN_WARP * ITEMS + 1,
                        TILE - 1, TILE, TILE + 1, 2 * TILE, 3 * TILE + 5,
                        TILE * TILE + TILE + 1,          /* pass 2: chunks */
                        (int64_t)(rnd() % (8 * (uint64_t)TILE)) + 1};
  for (unsigned k = 0; k < sizeof ns / sizeof ns[0]; k++) {
    int64_t n = ns[k];
    if (n * TILE > 40000000 && TILE > 64) continue;     /* the big block: below */
    for (int reverse = 0; reverse <= 1; reverse++) {
      one<T, OP, THREADS, ITEMS>(1, n, 1, reverse);
      if (n <= 5000) one<T, OP, THREADS, ITEMS>(2, n, 3, reverse);
    }
  }
}

template <class T, int OP> static void op_type(void) {
  lengths<T, OP, 32, 1>();                  /* a warp, an item each */
  lengths<T, OP, 64, 2>();                  /* two warps */
  lengths<T, OP, 96, 3>();                  /* three warps: odd sizes */
  lengths<T, OP, SCAN_THREADS, SCAN_ITEMS>();        /* scan.cu's block */
}

template <int OP> static void op_all(void) {
  op_type<float, OP>();
  op_type<double, OP>();
  if (OP != EMBER_SCAN_LOGSUMEXP) {
    op_type<int32_t, OP>();
    op_type<int64_t, OP>();
    op_type<uint8_t, OP>();
  }
}

static void choice(void) {
  CHECK(scan_tiles(0, SCAN_TILE) == 0 && scan_tiles(1, SCAN_TILE) == 1 &&
        scan_tiles(SCAN_TILE, SCAN_TILE) == 1 && scan_tiles(SCAN_TILE + 1, SCAN_TILE) == 2,
        "scan_tiles");
  CHECK(scan_use_tiles(1, 10000000, 1), "a long line is tiled");
  CHECK(scan_use_tiles(1000, 10000, 1), "contiguous rows of 10000 are tiled");
  CHECK(!scan_use_tiles(10000, 1000, 10000), "many strided lines: a thread each");
  CHECK(scan_use_tiles(2, 10000000, 2), "two strided long lines are tiled");
  CHECK(!scan_use_tiles(100000, 7, 1), "short lines: a thread each");
}

/* }====================================================================== */

int main(int argc, char **argv) {
  if (argc > 1) rng_state = strtoull(argv[1], NULL, 0);
  choice();
  op_all<EMBER_SCAN_SUM>();
  op_all<EMBER_SCAN_PROD>();
  op_all<EMBER_SCAN_MAX>();
  op_all<EMBER_SCAN_LOGSUMEXP>();
  /* a pass 2 of two chunks with scan.cu's own block: 2049 tiles */
  one<int64_t, EMBER_SCAN_SUM, SCAN_THREADS, SCAN_ITEMS>(1, (int64_t)SCAN_TILE * SCAN_TILE + 7, 1, 1);
  one<float, EMBER_SCAN_MAX, SCAN_THREADS, SCAN_ITEMS>(1, (int64_t)SCAN_TILE * SCAN_TILE + 7, 1, 0);
  if (failures) {
    fprintf(stderr, "cuda-scan-test: %ld of %ld checks failed\n", failures, checks);
    return 1;
  }
  printf("cuda-scan-test: ok (%ld checks over %ld elements)\n", checks, elements);
  return 0;
}
