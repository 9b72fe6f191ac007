/*
** cuda_index_test.cu -- checks the CUDA kernels' index arithmetic
** (core/cuda/index_math.h) on the host, against the naive / and %.
**
** Host code only: it never calls the CUDA runtime, so it runs on a machine
** without a GPU (built by nvcc because the header is CUDA C++; the
** __host__ __device__ functions run here exactly as written for the
** kernels, __umulhi aside, which cu_umulhi replaces by its definition).
**
**   build/cuda-index-test [seed]     prints "cuda-index-test: ok ..."
**
** Checks:
**   - the fast divider equals / and % for every divisor 1..4096, the
**     powers of two and their neighbours, 2^31 - 1, 2^31 and random ones,
**     with edge and random dividends below 2^31;
**   - the offset calculator (32-bit and 64-bit, and the runtime-selected
**     one) gives the naive offsets of every operand over thousands of
**     random layouts: broadcast (stride 0), transposed, narrowed (padded
**     strides, negative strides), size-1 dims, 0-d, up to EMBER_MAX_DIMS
**     dims, sizes near 2^31 and past it (the 64-bit path), offsets past
**     2^31 with few elements; that the 32-bit path is chosen exactly when
**     everything fits; that contiguous operands merge to one dim;
**   - im2col's and col2im's index maps against their naive formulas.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../core/cuda/index_math.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {                       /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static int64_t rnd_in(int64_t lo, int64_t hi) {
  return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* log-uniform in [1, max] */
static uint64_t rnd_log(uint64_t max) {
  int bits = 1 + (int)(rnd() % 64);
  uint64_t v = bits >= 64 ? rnd() : rnd() & (((uint64_t)1 << bits) - 1);
  return max ? 1 + v % max : 1;
}

static long failures = 0, checks = 0;

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
** The fast divider
** ======================================================================= */

static void check_div32(uint32_t d, uint32_t n) {
  cu_divider<uint32_t> v(d);
  cu_qr<uint32_t> x = v.divmod(n);
  CHECK(x.q == n / d && x.r == n % d && v.div(n) == n / d,
        "%u / %u: got q %u r %u, want %u %u", n, d, x.q, x.r, n / d, n % d);
}

static void divisor_32(uint32_t d) {
  const uint32_t M = INT32_MAX;                   /* largest dividend */
  uint32_t edge[] = {0, 1, 2, 3, d - 1, d, d + 1, 2 * d - 1, 2 * d,
                     M, M - 1, M - 2, M / d * d, M / d * d - 1,
                     (M / d - 1) * d, (M / d - 1) * d + d - 1,
                     (uint32_t)1 << 30, ((uint32_t)1 << 30) - 1};
  for (unsigned k = 0; k < sizeof edge / sizeof edge[0]; k++)
    if (edge[k] <= M) check_div32(d, edge[k]);
  for (int k = 0; k < 24; k++) check_div32(d, (uint32_t)(rnd_log(M + 1) - 1));
  for (int k = 0; k < 8; k++) check_div32(d, (uint32_t)(rnd() % (M + 1ull)));
}

static long test_divider(void) {
  long c0 = checks;
  for (uint32_t d = 1; d <= 4096; d++) divisor_32(d);
  for (int s = 1; s <= 31; s++) {
    uint32_t p = (uint32_t)1 << s;
    divisor_32(p - 1);
    divisor_32(p);
    if (s < 31) divisor_32(p + 1);
  }
  divisor_32(INT32_MAX);
  divisor_32(INT32_MAX - 1);
  divisor_32(46341);                       /* ~sqrt(2^31) */
  for (int k = 0; k < 100000; k++)
    divisor_32((uint32_t)rnd_log((uint64_t)1 << 31));
  /* the 64-bit path (plain division) */
  for (int k = 0; k < 20000; k++) {
    uint64_t d = rnd_log(UINT64_MAX - 1), n = rnd_log(UINT64_MAX - 1) - 1;
    cu_divider<uint64_t> v(d);
    cu_qr<uint64_t> x = v.divmod(n);
    CHECK(x.q == n / d && x.r == n % d, "64-bit %llu / %llu",
          (unsigned long long)n, (unsigned long long)d);
  }
  return checks - c0;
}

/* }====================================================================== */

/* {======================================================================
** The offset calculator
** ======================================================================= */

/* A kernel's operands: one shape (outermost first), per-operand strides. */
struct layout {
  int ndim, nargs;
  int64_t shape[EMBER_MAX_DIMS];
  int64_t strides[CU_MAX_ARGS][EMBER_MAX_DIMS];
};

static int64_t numel_of(const layout &L) {
  int64_t n = 1;
  for (int d = 0; d < L.ndim; d++) n *= L.shape[d];
  return n;
}

/* The naive offsets (the old cu_offset, for every operand). */
static void naive_offsets(const layout &L, int64_t i, int64_t off[]) {
  for (int k = 0; k < L.nargs; k++) off[k] = 0;
  for (int d = L.ndim - 1; d >= 0; d--) {
    int64_t s = L.shape[d], c = i % s;
    i /= s;
    for (int k = 0; k < L.nargs; k++) off[k] += c * L.strides[k][d];
  }
}

/* Whether everything fits 32 bits, computed on the unmerged layout. */
static bool naive_fits32(const layout &L) {
  if (numel_of(L) > INT32_MAX) return false;
  for (int k = 0; k < L.nargs; k++) {
    int64_t pos = 0, neg = 0;
    for (int d = 0; d < L.ndim; d++) {
      int64_t e = (L.shape[d] - 1) * L.strides[k][d];
      if (e > 0) pos += e;
      else neg += e;
    }
    if (pos > INT32_MAX || neg < INT32_MIN) return false;
  }
  return true;
}

static bool naive_contig(const layout &L) {
  for (int k = 0; k < L.nargs; k++) {
    int64_t expect = 1;
    for (int d = L.ndim - 1; d >= 0; d--) {
      if (L.shape[d] != 1 && L.strides[k][d] != expect) return false;
      expect *= L.shape[d];
    }
  }
  return true;
}

static cu_geom geom_of(const layout &L) {
  const int64_t *st[CU_MAX_ARGS];
  for (int k = 0; k < L.nargs; k++) st[k] = L.strides[k];
  return cu_geom_make(L.ndim, L.shape, L.nargs, st);
}

template <int N, typename IDX>
static void check_at(const layout &L, const cu_offsets<N, IDX> &oc,
                     int64_t i, const char *path) {
  int64_t want[CU_MAX_ARGS];
  naive_offsets(L, i, want);
  cu_offs<N, typename cu_offsets<N, IDX>::OFF> got = oc.get((IDX)i);
  bool ok = true;
  for (int k = 0; k < N; k++) ok = ok && (int64_t)got[k] == want[k];
  CHECK(ok, "%s: ndim %d nargs %d element %lld: operand 0 got %lld want %lld",
        path, L.ndim, N, (long long)i, (long long)got[0], (long long)want[0]);
}

template <int N>
static void check_any_at(const layout &L, const cu_offsets_any<N> &oc,
                         int64_t i) {
  int64_t want[CU_MAX_ARGS];
  naive_offsets(L, i, want);
  cu_offs<N, int64_t> got = oc.get(i);
  bool ok = true;
  for (int k = 0; k < N; k++) ok = ok && got[k] == want[k];
  CHECK(ok, "any: element %lld", (long long)i);
}

/* The elements to compare: all of them when few, else the ends, the
   neighbours of every dim boundary near them, and random ones. */
static int pick_elements(int64_t n, int64_t *out, int most) {
  int m = 0;
  if (n <= most) {
    for (int64_t i = 0; i < n; i++) out[m++] = i;
    return m;
  }
  for (int64_t i = 0; i < 64; i++) {
    out[m++] = i;
    out[m++] = n - 1 - i;
  }
  while (m < most) out[m++] = (int64_t)(rnd() % (uint64_t)n);
  return m;
}

static long elements_checked = 0;

template <int N>
static void check_layout(const layout &L) {
  cu_geom g = geom_of(L);
  int64_t n = numel_of(L);
  CHECK(cu_geom_numel(g) == n, "merged numel %lld != %lld",
        (long long)cu_geom_numel(g), (long long)n);
  CHECK(g.ndim <= L.ndim, "merging added dims");
  for (int d = 0; d < g.ndim; d++)
    CHECK(g.shape[d] != 1, "a size-1 dim survived");
  if (n == 0) return;
  bool fits = cu_geom_fits32(g);
  CHECK(fits == naive_fits32(L), "fits32 %d, want %d (n %lld)", fits,
        naive_fits32(L), (long long)n);
  CHECK(cu_geom_contig(g) == naive_contig(L), "contig %d, want %d",
        cu_geom_contig(g), naive_contig(L));
  static int64_t at[4096];
  int m = pick_elements(n, at, 1024);
  cu_offsets<N, uint64_t> o64 = cu_offsets_of<N, uint64_t>(g);
  cu_offsets_any<N> oany = cu_offsets_any_of<N>(g);
  CHECK(oany.wide == !fits, "any: wide %d with fits %d", oany.wide, fits);
  for (int e = 0; e < m; e++) {
    check_at(L, o64, at[e], "64-bit");
    check_any_at(L, oany, at[e]);
  }
  if (fits) {
    cu_offsets<N, uint32_t> o32 = cu_offsets_of<N, uint32_t>(g);
    for (int e = 0; e < m; e++) check_at(L, o32, at[e], "32-bit");
  }
  elements_checked += m;
}

static void check_layout_any(const layout &L) {
  switch (L.nargs) {
    case 1: check_layout<1>(L); break;
    case 2: check_layout<2>(L); break;
    case 3: check_layout<3>(L); break;
    default: check_layout<4>(L); break;
  }
}

/* Operand k of L: a view of a row-major storage in some order of the dims
   (transposed), with room around (narrowed), some dims broadcast, some
   flipped (negative strides). */
static void random_view(layout &L, int k, double p_bcast) {
  int perm[EMBER_MAX_DIMS];
  for (int d = 0; d < L.ndim; d++) perm[d] = d;
  if (rnd() % 2)                               /* a random order */
    for (int d = L.ndim - 1; d > 0; d--) {
      int j = (int)(rnd() % (unsigned)(d + 1));
      int t = perm[d]; perm[d] = perm[j]; perm[j] = t;
    }
  int64_t stride = 1 + (rnd() % 4 == 0 ? (int64_t)(rnd() % 3) : 0);
  for (int q = L.ndim - 1; q >= 0; q--) {     /* innermost storage dim last */
    int d = perm[q];
    L.strides[k][d] = stride;
    int64_t room = rnd() % 4 == 0 ? (int64_t)(rnd() % 3) : 0;
    stride *= L.shape[d] + room;
  }
  for (int d = 0; d < L.ndim; d++) {
    if ((double)(rnd() % 1000) < p_bcast * 1000) L.strides[k][d] = 0;
    else if (rnd() % 10 == 0) L.strides[k][d] = -L.strides[k][d];
  }
}

static void random_small(layout &L) {
  L.ndim = (int)rnd_in(0, EMBER_MAX_DIMS);
  L.nargs = (int)rnd_in(1, CU_MAX_ARGS);
  for (int d = 0; d < L.ndim; d++)
    L.shape[d] = rnd() % 4 == 0 ? 1 : rnd_in(2, L.ndim > 5 ? 3 : 6);
  double pb = rnd() % 2 ? 0.0 : 0.3;
  for (int k = 0; k < L.nargs; k++) random_view(L, k, k == 0 ? 0.0 : pb);
  /* index.cu's pseudo-operand: stride 1 along one dim, 0 elsewhere (its
     offset is the coordinate along that dim) */
  if (L.ndim > 0 && L.nargs > 1 && rnd() % 4 == 0) {
    int dim = (int)(rnd() % (unsigned)L.ndim);
    for (int d = 0; d < L.ndim; d++) L.strides[L.nargs - 1][d] = d == dim;
  }
}

/* Few dims, big sizes: around 2^31 elements, on either side. */
static void random_big(layout &L) {
  L.ndim = (int)rnd_in(1, 4);
  L.nargs = (int)rnd_in(1, CU_MAX_ARGS);
  double logn = 29.0 + (double)(rnd() % 4000) / 1000.0;   /* 2^29..2^33 */
  int64_t left = (int64_t)__builtin_exp2(logn);
  for (int d = 0; d < L.ndim; d++) {
    int64_t s = d == L.ndim - 1 ? left : rnd_in(1, 1 << (12 / L.ndim + 1));
    if (s < 1) s = 1;
    L.shape[d] = s;
    left /= s;
    if (left < 1) left = 1;
  }
  for (int k = 0; k < L.nargs; k++) random_view(L, k, k == 0 ? 0.0 : 0.25);
}

static long test_offsets(void) {
  long c0 = checks;
  layout L;
  /* random small layouts */
  for (int t = 0; t < 6000; t++) {
    random_small(L);
    check_layout_any(L);
  }
  /* big ones: the 64-bit path and the 32-bit path near its limit */
  for (int t = 0; t < 400; t++) {
    random_big(L);
    check_layout_any(L);
  }
  /* fixed cases */
  {
    layout C = {3, 1, {2, 3, 4}, {{12, 4, 1}}};          /* contiguous */
    cu_geom g = geom_of(C);
    CHECK(g.ndim == 1 && cu_geom_contig(g), "contiguous: ndim %d", g.ndim);
    check_layout_any(C);
    layout T = {2, 2, {5, 7}, {{7, 1}, {1, 5}}};          /* a transpose */
    g = geom_of(T);
    CHECK(g.ndim == 2 && !cu_geom_contig(g), "transpose: ndim %d", g.ndim);
    check_layout_any(T);
    layout B = {3, 2, {4, 1, 6}, {{6, 6, 1}, {0, 9, 1}}};  /* row broadcast */
    g = geom_of(B);
    CHECK(g.ndim == 2, "broadcast: ndim %d", g.ndim);
    check_layout_any(B);
    layout Z = {0, 3, {0}, {{0}, {0}, {0}}};               /* 0-d */
    g = geom_of(Z);
    CHECK(g.ndim == 0 && cu_geom_contig(g) && cu_geom_fits32(g), "0-d");
    check_layout_any(Z);
    layout O = {4, 1, {1, 1, 1, 1}, {{5, 7, 3, 1}}};       /* all size 1 */
    CHECK(geom_of(O).ndim == 0, "size-1 dims");
    check_layout_any(O);
    layout E = {2, 1, {3, 0}, {{1, 1}}};                   /* empty */
    check_layout_any(E);
    /* the largest 32-bit case and the first past it */
    layout M1 = {1, 1, {INT32_MAX}, {{1}}};
    CHECK(cu_geom_fits32(geom_of(M1)), "2^31 - 1 elements fit");
    check_layout_any(M1);
    layout M2 = {1, 1, {(int64_t)INT32_MAX + 1}, {{1}}};
    CHECK(!cu_geom_fits32(geom_of(M2)), "2^31 elements do not");
    check_layout_any(M2);
    layout M3 = {2, 2, {46341, 46340}, {{46340, 1}, {1, 46341}}};
    check_layout_any(M3);                      /* transposed, ~2^31 */
    /* few elements, offsets past 2^31: the 64-bit path */
    layout F = {2, 2, {4, 5}, {{5, 1}, {(int64_t)1 << 30, 1}}};
    CHECK(!cu_geom_fits32(geom_of(F)), "offsets past 2^31");
    check_layout_any(F);
    layout Nn = {2, 1, {3, (int64_t)1 << 30}, {{-((int64_t)1 << 30), 1}}};
    check_layout_any(Nn);                      /* negative, past -2^31 */
    /* every dim used, EMBER_MAX_DIMS of them, transposed */
    layout X;
    X.ndim = EMBER_MAX_DIMS;
    X.nargs = 2;
    int64_t s = 1;
    for (int d = 0; d < EMBER_MAX_DIMS; d++) {
      X.shape[d] = 2 + d % 3;
      X.strides[1][d] = s;
      s *= X.shape[d];
    }
    s = 1;
    for (int d = EMBER_MAX_DIMS - 1; d >= 0; d--) {
      X.strides[0][d] = s;
      s *= X.shape[d];
    }
    check_layout_any(X);
  }
  return checks - c0;
}

/* }====================================================================== */

/* {======================================================================
** Convolution's index maps
** ======================================================================= */

template <typename IDX>
static void check_im2col(int64_t C, int64_t KH, int64_t KW, int64_t nb,
                         int64_t L, int64_t OW) {
  int64_t cols = nb * L, total = C * KH * KW * cols;
  cu_im2col_ix<IDX> ix = cu_im2col_ix_of<IDX>(KH, KW, cols, L, OW);
  static int64_t at[4096];
  int m = pick_elements(total, at, 512);
  for (int k = 0; k < m; k++) {
    int64_t e = at[k];
    /* conv.cu's old formulas */
    int64_t r = e / cols, q = e % cols;
    int64_t j = r % KW, i = r / KW % KH, c = r / (KW * KH);
    int64_t b = q / L, rem = q % L, ohr = rem / OW, ow = rem % OW;
    IDX gc, gi, gj, gb, goh, gow;
    ix.at((IDX)e, &gc, &gi, &gj, &gb, &goh, &gow);
    CHECK((int64_t)gc == c && (int64_t)gi == i && (int64_t)gj == j &&
              (int64_t)gb == b && (int64_t)goh == ohr && (int64_t)gow == ow,
          "im2col (%d-bit) e %lld", (int)sizeof(IDX) * 8, (long long)e);
  }
}

template <typename IDX>
static void check_col2im(int64_t nb, int64_t C, int64_t H, int64_t W,
                         int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  int64_t total = nb * C * H * W;
  cu_col2im_ix<IDX> ix = cu_col2im_ix_of<IDX>(C, H, W, sh, sw);
  static int64_t at[4096];
  int m = pick_elements(total, at, 512);
  for (int k = 0; k < m; k++) {
    int64_t e = at[k];
    int64_t w = e % W, h = e / W % H, c = e / (W * H) % C, b = e / (W * H * C);
    IDX gb, gc, gh, gw;
    ix.at((IDX)e, &gb, &gc, &gh, &gw);
    CHECK((int64_t)gb == b && (int64_t)gc == c && (int64_t)gh == h &&
              (int64_t)gw == w,
          "col2im (%d-bit) e %lld", (int)sizeof(IDX) * 8, (long long)e);
  }
  /* the taps' dividends: 0 .. H + ph - 1 (and W + pw - 1) */
  for (int k = 0; k < 64; k++) {
    int64_t th = k < 32 ? (H + ph - 1 - k) : rnd_in(0, H + ph - 1);
    int64_t tw = k < 32 ? (W + pw - 1 - k) : rnd_in(0, W + pw - 1);
    if (th < 0 || tw < 0) continue;
    cu_qr<IDX> x = ix.sh.divmod((IDX)th), y = ix.sw.divmod((IDX)tw);
    CHECK((int64_t)x.q == th / sh && (int64_t)x.r == th % sh &&
              (int64_t)y.q == tw / sw && (int64_t)y.r == tw % sw,
          "col2im taps th %lld / %lld", (long long)th, (long long)sh);
  }
}

static long test_conv(void) {
  long c0 = checks;
  for (int t = 0; t < 3000; t++) {
    bool big = t % 10 == 0;
    int64_t C = rnd_in(1, big ? 512 : 16), KH = rnd_in(1, 7), KW = rnd_in(1, 7);
    int64_t OW = rnd_in(1, big ? 4096 : 40), OHb = rnd_in(1, big ? 512 : 40);
    int64_t nb = rnd_in(1, big ? 64 : 8), L = OHb * OW;
    int64_t total = C * KH * KW * nb * L;
    check_im2col<uint64_t>(C, KH, KW, nb, L, OW);
    CHECK(cu_im2col_fits32(total) == (total <= INT32_MAX), "im2col fits32");
    if (cu_im2col_fits32(total)) check_im2col<uint32_t>(C, KH, KW, nb, L, OW);
    int64_t H = rnd_in(1, big ? 8192 : 64), W = rnd_in(1, big ? 8192 : 64);
    int64_t sh = rnd_in(1, 5), sw = rnd_in(1, 5), ph = rnd_in(0, 3),
            pw = rnd_in(0, 3);
    if (t % 97 == 0) {            /* strides and paddings near the limits */
      sh = rnd_in(1, INT32_MAX);
      ph = rnd_in(0, (int64_t)INT32_MAX - H);
    }
    int64_t ctotal = nb * C * H * W;
    check_col2im<uint64_t>(nb, C, H, W, sh, sw, ph, pw);
    if (cu_col2im_fits32(ctotal, H, W, ph, pw, sh, sw))
      check_col2im<uint32_t>(nb, C, H, W, sh, sw, ph, pw);
  }
  return checks - c0;
}

/* }====================================================================== */

int main(int argc, char **argv) {
  if (argc > 1) rng_state = strtoull(argv[1], NULL, 0);
  long nd = test_divider();
  long no = test_offsets();
  long nc = test_conv();
  if (failures) {
    fprintf(stderr, "cuda-index-test: %ld of %ld checks failed\n", failures,
            checks);
    return 1;
  }
  printf("cuda-index-test: ok (%ld division checks, %ld layout checks over "
         "%ld elements, %ld conv index checks)\n",
         nd, no, elements_checked, nc);
  return 0;
}
