/*
** rnn.c -- the fused LSTM and GRU cells: the gate nonlinearities and the
** state update of one time step in one pass, and the backward in one pass
** (CPU).  The GRU's formulas are stated at its kernels below.
**
** Contract (core/backend.h, slots lstm_cell and lstm_cell_backward): all
** tensors contiguous and of one float dtype; gates and act [B, 4H] in
** PyTorch's gate order i, f, g, o; c_prev [B, H]; hc [2, B, H] with h in
** hc[0] and c in hc[1].  Per element (b, k), with i = sigmoid(gi), f =
** sigmoid(gf), g = tanh(gg), o = sigmoid(go):
**   c = f c_prev + i g,   h = o tanh(c);
** and backward, from dh and dc (the gradients of h and c):
**   dc' = dc + dh o (1 - tanh(c)^2)
**   d gi = dc' g i (1 - i),   d gf = dc' c_prev f (1 - f),
**   d gg = dc' i (1 - g^2),   d go = dh tanh(c) o (1 - o),
**   d c_prev = dc' f.
** The nonlinearities run in double (float32 tanh through exp, as the unary
** kernels: glibc's tanhf is 5x slower), so float32 results are the
** correctly rounded ones up to an ulp.  Threads take ranges of rows; every
** element is computed alone, so the bits do not depend on the threads.
*/
#include <math.h>

#include "cpu.h"

/* Elements per step below which one thread runs it (5 exps each). */
#define LSTM_PARALLEL_MIN 4096

static EMBER_ALWAYS_INLINE double ld(const void *p, int64_t i, int is64) {
  return is64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static EMBER_ALWAYS_INLINE void st(void *p, int64_t i, double v, int is64) {
  if (is64) ((double *)p)[i] = v;
  else ((float *)p)[i] = (float)v;
}

static EMBER_ALWAYS_INLINE double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* tanh: libm's for float64; for float32 (e - 1) / (e + 1) with the series
   below |x| < 1e-3, the formula of the float32 unary tanh (elementwise.c:
   within 0.5 ulp of float's tanh, the clamp lets NaN through) */
static EMBER_ALWAYS_INLINE double tnh(double x, int is64) {
  if (is64) return tanh(x);
  double v = x > 10.0 ? 10.0 : x < -10.0 ? -10.0 : x;
  double e = exp(2.0 * v), v2 = v * v;
  return fabs(v) < 1e-3 ? v * (1.0 - v2 * (1.0 / 3.0 - v2 * (2.0 / 15.0)))
                        : (e - 1.0) / (e + 1.0);
}

typedef struct {
  void *hc, *act, *dgates, *dcp, *dgh, *dh;
  const void *gates, *cp, *dhc, *sact, *shc, *gh, *h;
  int64_t B, H;
} lstm_args;                    /* the GRU's too: gates is gx, hc is hn */

/* {======================================================================
** Forward
** ======================================================================= */

static EMBER_ALWAYS_INLINE void fwd_rows(const lstm_args *a, int64_t lo,
                                         int64_t hi, int is64) {
  const int64_t H = a->H, BH = a->B * H;
  for (int64_t b = lo; b < hi; b++) {
    int64_t gr = b * 4 * H, r = b * H;
    for (int64_t k = 0; k < H; k++) {
      double i = sigm(ld(a->gates, gr + k, is64));
      double f = sigm(ld(a->gates, gr + H + k, is64));
      double g = tnh(ld(a->gates, gr + 2 * H + k, is64), is64);
      double o = sigm(ld(a->gates, gr + 3 * H + k, is64));
      double c = f * ld(a->cp, r + k, is64) + i * g;
      if (!is64) c = (float)c;       /* h from the c that is stored */
      st(a->hc, r + k, o * tnh(c, is64), is64);
      st(a->hc, BH + r + k, c, is64);
      if (a->act) {
        st(a->act, gr + k, i, is64);
        st(a->act, gr + H + k, f, is64);
        st(a->act, gr + 2 * H + k, g, is64);
        st(a->act, gr + 3 * H + k, o, is64);
      }
    }
  }
}

static void fwd_f32(const lstm_args *a, int64_t lo, int64_t hi) { fwd_rows(a, lo, hi, 0); }
static void fwd_f64(const lstm_args *a, int64_t lo, int64_t hi) { fwd_rows(a, lo, hi, 1); }

/* }====================================================================== */

/* {======================================================================
** Backward
** ======================================================================= */

static EMBER_ALWAYS_INLINE void bwd_rows(const lstm_args *a, int64_t lo,
                                         int64_t hi, int is64) {
  const int64_t H = a->H, BH = a->B * H;
  for (int64_t b = lo; b < hi; b++) {
    int64_t gr = b * 4 * H, r = b * H;
    for (int64_t k = 0; k < H; k++) {
      double i = ld(a->sact, gr + k, is64), f = ld(a->sact, gr + H + k, is64);
      double g = ld(a->sact, gr + 2 * H + k, is64);
      double o = ld(a->sact, gr + 3 * H + k, is64);
      double tc = tnh(ld(a->shc, BH + r + k, is64), is64);
      double dh = ld(a->dhc, r + k, is64);
      double dc = ld(a->dhc, BH + r + k, is64) + dh * o * (1.0 - tc * tc);
      st(a->dgates, gr + k, dc * g * i * (1.0 - i), is64);
      st(a->dgates, gr + H + k, dc * ld(a->cp, r + k, is64) * f * (1.0 - f), is64);
      st(a->dgates, gr + 2 * H + k, dc * i * (1.0 - g * g), is64);
      st(a->dgates, gr + 3 * H + k, dh * tc * o * (1.0 - o), is64);
      if (a->dcp) st(a->dcp, r + k, dc * f, is64);
    }
  }
}

static void bwd_f32(const lstm_args *a, int64_t lo, int64_t hi) { bwd_rows(a, lo, hi, 0); }
static void bwd_f64(const lstm_args *a, int64_t lo, int64_t hi) { bwd_rows(a, lo, hi, 1); }

/* }====================================================================== */

/* {======================================================================
** GRU
** ======================================================================= */

static EMBER_ALWAYS_INLINE void gru_fwd_rows(const lstm_args *a, int64_t lo,
                                             int64_t hi, int is64) {
  const int64_t H = a->H;
  for (int64_t b = lo; b < hi; b++) {
    int64_t gr = b * 3 * H, r0 = b * H;
    for (int64_t k = 0; k < H; k++) {
      double r = sigm(ld(a->gates, gr + k, is64) + ld(a->gh, gr + k, is64));
      double z = sigm(ld(a->gates, gr + H + k, is64) + ld(a->gh, gr + H + k, is64));
      double n = tnh(ld(a->gates, gr + 2 * H + k, is64) +
                     r * ld(a->gh, gr + 2 * H + k, is64), is64);
      st(a->hc, r0 + k, n + z * (ld(a->h, r0 + k, is64) - n), is64);
      if (a->act) {
        st(a->act, gr + k, r, is64);
        st(a->act, gr + H + k, z, is64);
        st(a->act, gr + 2 * H + k, n, is64);
      }
    }
  }
}

static void gru_fwd_f32(const lstm_args *a, int64_t lo, int64_t hi) { gru_fwd_rows(a, lo, hi, 0); }
static void gru_fwd_f64(const lstm_args *a, int64_t lo, int64_t hi) { gru_fwd_rows(a, lo, hi, 1); }

/* d n = g (1 - z), d z = g (h - n), d h = g z; through n = tanh(gx_n +
   r gh_n): d gx_n = d n (1 - n^2) =: dnp, d gh_n = dnp r, d r = dnp gh_n;
   the r and z gates' pre-activations are sums, so d gx = d gh there. */
static EMBER_ALWAYS_INLINE void gru_bwd_rows(const lstm_args *a, int64_t lo,
                                             int64_t hi, int is64) {
  const int64_t H = a->H;
  for (int64_t b = lo; b < hi; b++) {
    int64_t gr = b * 3 * H, r0 = b * H;
    for (int64_t k = 0; k < H; k++) {
      double r = ld(a->sact, gr + k, is64), z = ld(a->sact, gr + H + k, is64);
      double n = ld(a->sact, gr + 2 * H + k, is64), g = ld(a->dhc, r0 + k, is64);
      double dnp = g * (1.0 - z) * (1.0 - n * n);
      double dr = dnp * ld(a->gh, gr + 2 * H + k, is64) * r * (1.0 - r);
      double dz = g * (ld(a->h, r0 + k, is64) - n) * z * (1.0 - z);
      if (a->dgates) {
        st(a->dgates, gr + k, dr, is64);
        st(a->dgates, gr + H + k, dz, is64);
        st(a->dgates, gr + 2 * H + k, dnp, is64);
      }
      if (a->dgh) {
        st(a->dgh, gr + k, dr, is64);
        st(a->dgh, gr + H + k, dz, is64);
        st(a->dgh, gr + 2 * H + k, dnp * r, is64);
      }
      if (a->dh) st(a->dh, r0 + k, g * z, is64);
    }
  }
}

static void gru_bwd_f32(const lstm_args *a, int64_t lo, int64_t hi) { gru_bwd_rows(a, lo, hi, 0); }
static void gru_bwd_f64(const lstm_args *a, int64_t lo, int64_t hi) { gru_bwd_rows(a, lo, hi, 1); }

/* }====================================================================== */

/* fn over the B rows, in equal ranges across the threads when the step
   is large enough to pay for them */
static void run_rows(void (*fn)(const lstm_args *, int64_t, int64_t),
                     const lstm_args *a) {
  int nt = ember_cpu_threads();
  if (nt > a->B) nt = (int)a->B;
  if (nt < 2 || a->B * a->H < LSTM_PARALLEL_MIN) {
    fn(a, 0, a->B);
    return;
  }
  #pragma omp parallel for schedule(static) num_threads(nt)
  for (int t = 0; t < nt; t++) fn(a, a->B * t / nt, a->B * (t + 1) / nt);
}

int ember_cpu_lstm_cell(ember_tensor *hc, ember_tensor *act,
                        const ember_tensor *gates, const ember_tensor *c_prev) {
  lstm_args a = {.hc = ember_data(hc), .act = act ? ember_data(act) : NULL,
                 .gates = ember_data(gates), .cp = ember_data(c_prev),
                 .B = c_prev->shape[0], .H = c_prev->shape[1]};
  run_rows(gates->dtype == EMBER_FLOAT64 ? fwd_f64 : fwd_f32, &a);
  return 0;
}

int ember_cpu_lstm_cell_backward(ember_tensor *dgates, ember_tensor *dc_prev,
                                 const ember_tensor *dhc, const ember_tensor *act,
                                 const ember_tensor *c_prev, const ember_tensor *hc) {
  lstm_args a = {.dgates = ember_data(dgates),
                 .dcp = dc_prev ? ember_data(dc_prev) : NULL,
                 .dhc = ember_data(dhc), .sact = ember_data(act),
                 .cp = ember_data(c_prev), .shc = ember_data(hc),
                 .B = c_prev->shape[0], .H = c_prev->shape[1]};
  run_rows(act->dtype == EMBER_FLOAT64 ? bwd_f64 : bwd_f32, &a);
  return 0;
}

int ember_cpu_gru_cell(ember_tensor *hn, ember_tensor *act, const ember_tensor *gx,
                       const ember_tensor *gh, const ember_tensor *h) {
  lstm_args a = {.hc = ember_data(hn), .act = act ? ember_data(act) : NULL,
                 .gates = ember_data(gx), .gh = ember_data(gh), .h = ember_data(h),
                 .B = h->shape[0], .H = h->shape[1]};
  run_rows(h->dtype == EMBER_FLOAT64 ? gru_fwd_f64 : gru_fwd_f32, &a);
  return 0;
}

int ember_cpu_gru_cell_backward(ember_tensor *dgx, ember_tensor *dgh, ember_tensor *dh,
                                const ember_tensor *g, const ember_tensor *act,
                                const ember_tensor *gh, const ember_tensor *h) {
  lstm_args a = {.dgates = dgx ? ember_data(dgx) : NULL,
                 .dgh = dgh ? ember_data(dgh) : NULL, .dh = dh ? ember_data(dh) : NULL,
                 .dhc = ember_data(g), .sact = ember_data(act), .gh = ember_data(gh),
                 .h = ember_data(h), .B = h->shape[0], .H = h->shape[1]};
  run_rows(h->dtype == EMBER_FLOAT64 ? gru_bwd_f64 : gru_bwd_f32, &a);
  return 0;
}
