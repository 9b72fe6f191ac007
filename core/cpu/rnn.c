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
** float32 runs in float with vmath.h's sigmoid and tanh, the functions of
** the float32 unary kernels, in loops GCC vectorises (EMBER_SIMD, restrict
** row pointers), so a fused step and the same step composed of ops agree
** to float32 rounding; float64 runs on libm.  Threads take ranges of rows;
** every element is computed alone, so the bits do not depend on the
** threads.
*/
#include <math.h>

#include "cpu.h"
#include "vmath.h"

/* Elements per step below which one thread runs it (5 exps each). */
#define LSTM_PARALLEL_MIN 4096

static EMBER_ALWAYS_INLINE double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

typedef struct {
  void *hc, *act, *dgates, *dcp, *dgh, *dh;
  const void *gates, *cp, *dhc, *sact, *shc, *gh, *h;
  int64_t B, H;
} lstm_args;                    /* the GRU's too: gates is gx, hc is hn */

/* Each kernel below is one body over the element type T with its sigmoid
   SIG and tanh TANH, instantiated for float (vmath.h) and double (libm).
   Rows are read and written through restrict pointers so the float loops
   vectorise; an optional output (act when no backward will follow, dcp,
   dgh, ...) is a masked store in the vector loop. */

/* {======================================================================
** LSTM forward and backward
** ======================================================================= */

#define LSTM_FWD_TYPED(NAME, T, SIG, TANH)                                   \
  static EMBER_SIMD void NAME(const lstm_args *a, int64_t lo, int64_t hi) {  \
    const int64_t H = a->H, BH = a->B * H;                                   \
    for (int64_t b = lo; b < hi; b++) {                                      \
      const T *restrict gt = (const T *)a->gates + b * 4 * H;                \
      const T *restrict cp = (const T *)a->cp + b * H;                       \
      T *restrict h = (T *)a->hc + b * H, *restrict c = (T *)a->hc + BH + b * H; \
      T *restrict act = a->act ? (T *)a->act + b * 4 * H : NULL;             \
      _Pragma("omp simd")                                                    \
      for (int64_t k = 0; k < H; k++) {                                      \
        T i = SIG(gt[k]), f = SIG(gt[H + k]), g = TANH(gt[2 * H + k]);       \
        T o = SIG(gt[3 * H + k]), cn = f * cp[k] + i * g;                    \
        h[k] = o * TANH(cn);                                                 \
        c[k] = cn;                                                           \
        if (act) {                                                           \
          act[k] = i; act[H + k] = f; act[2 * H + k] = g; act[3 * H + k] = o; \
        }                                                                    \
      }                                                                      \
    }                                                                        \
  }

#define LSTM_BWD_TYPED(NAME, T, TANH)                                        \
  static EMBER_SIMD void NAME(const lstm_args *a, int64_t lo, int64_t hi) {  \
    const int64_t H = a->H, BH = a->B * H;                                   \
    for (int64_t b = lo; b < hi; b++) {                                      \
      const T *restrict act = (const T *)a->sact + b * 4 * H;                \
      const T *restrict cp = (const T *)a->cp + b * H;                       \
      const T *restrict c = (const T *)a->shc + BH + b * H;                  \
      const T *restrict dhv = (const T *)a->dhc + b * H;                     \
      const T *restrict dcv = (const T *)a->dhc + BH + b * H;                \
      T *restrict dg = (T *)a->dgates + b * 4 * H;                           \
      T *restrict dcp = a->dcp ? (T *)a->dcp + b * H : NULL;                 \
      _Pragma("omp simd")                                                    \
      for (int64_t k = 0; k < H; k++) {                                      \
        T i = act[k], f = act[H + k], g = act[2 * H + k], o = act[3 * H + k]; \
        T tc = TANH(c[k]), dh = dhv[k];                                      \
        T dc = dcv[k] + dh * o * (1 - tc * tc);                              \
        dg[k] = dc * g * i * (1 - i);                                        \
        dg[H + k] = dc * cp[k] * f * (1 - f);                                \
        dg[2 * H + k] = dc * i * (1 - g * g);                                \
        dg[3 * H + k] = dh * tc * o * (1 - o);                               \
        if (dcp) dcp[k] = dc * f;                                            \
      }                                                                      \
    }                                                                        \
  }

LSTM_FWD_TYPED(fwd_f32, float, vm_sigmoidf, vm_tanhf)
LSTM_FWD_TYPED(fwd_f64, double, sigm, tanh)
LSTM_BWD_TYPED(bwd_f32, float, vm_tanhf)
LSTM_BWD_TYPED(bwd_f64, double, tanh)

/* }====================================================================== */

/* {======================================================================
** GRU forward and backward
** ======================================================================= */

#define GRU_FWD_TYPED(NAME, T, SIG, TANH)                                    \
  static EMBER_SIMD void NAME(const lstm_args *a, int64_t lo, int64_t hi) {  \
    const int64_t H = a->H;                                                  \
    for (int64_t b = lo; b < hi; b++) {                                      \
      const T *restrict gx = (const T *)a->gates + b * 3 * H;                \
      const T *restrict gh = (const T *)a->gh + b * 3 * H;                   \
      const T *restrict h = (const T *)a->h + b * H;                         \
      T *restrict hn = (T *)a->hc + b * H;                                   \
      T *restrict act = a->act ? (T *)a->act + b * 3 * H : NULL;             \
      _Pragma("omp simd")                                                    \
      for (int64_t k = 0; k < H; k++) {                                      \
        T r = SIG(gx[k] + gh[k]), z = SIG(gx[H + k] + gh[H + k]);            \
        T n = TANH(gx[2 * H + k] + r * gh[2 * H + k]);                       \
        hn[k] = n + z * (h[k] - n);                                          \
        if (act) { act[k] = r; act[H + k] = z; act[2 * H + k] = n; }         \
      }                                                                      \
    }                                                                        \
  }

/* d n = g (1 - z), d z = g (h - n), d h = g z; through n = tanh(gx_n +
   r gh_n): d gx_n = d n (1 - n^2) =: dnp, d gh_n = dnp r, d r = dnp gh_n;
   the r and z gates' pre-activations are sums, so d gx = d gh there. */
#define GRU_BWD_TYPED(NAME, T)                                               \
  static EMBER_SIMD void NAME(const lstm_args *a, int64_t lo, int64_t hi) {  \
    const int64_t H = a->H;                                                  \
    for (int64_t b = lo; b < hi; b++) {                                      \
      const T *restrict act = (const T *)a->sact + b * 3 * H;                \
      const T *restrict gh = (const T *)a->gh + b * 3 * H;                   \
      const T *restrict h = (const T *)a->h + b * H;                         \
      const T *restrict gv = (const T *)a->dhc + b * H;                      \
      T *restrict dgx = a->dgates ? (T *)a->dgates + b * 3 * H : NULL;       \
      T *restrict dgh = a->dgh ? (T *)a->dgh + b * 3 * H : NULL;             \
      T *restrict dh = a->dh ? (T *)a->dh + b * H : NULL;                    \
      _Pragma("omp simd")                                                    \
      for (int64_t k = 0; k < H; k++) {                                      \
        T r = act[k], z = act[H + k], n = act[2 * H + k], g = gv[k];         \
        T dnp = g * (1 - z) * (1 - n * n);                                   \
        T dr = dnp * gh[2 * H + k] * r * (1 - r);                            \
        T dz = g * (h[k] - n) * z * (1 - z);                                 \
        if (dgx) { dgx[k] = dr; dgx[H + k] = dz; dgx[2 * H + k] = dnp; }     \
        if (dgh) { dgh[k] = dr; dgh[H + k] = dz; dgh[2 * H + k] = dnp * r; } \
        if (dh) dh[k] = g * z;                                               \
      }                                                                      \
    }                                                                        \
  }

GRU_FWD_TYPED(gru_fwd_f32, float, vm_sigmoidf, vm_tanhf)
GRU_FWD_TYPED(gru_fwd_f64, double, sigm, tanh)
GRU_BWD_TYPED(gru_bwd_f32, float)
GRU_BWD_TYPED(gru_bwd_f64, double)

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
