/*
** autocast.c -- mixed precision: which dtype the products run in.
**
** Under autocast (per thread, as the grad mode), the products -- matmul
** and the linear layers built on it, conv2d, scaled dot-product attention
** -- take their float32 operands rounded to the autocast dtype (bfloat16
** or float16) and accumulate in float32; every other op runs in the dtype
** of its inputs.  docs/lua-api.md has the table.
**
** The rounding is a recorded cast (ember_to_dtype), so a gradient reaching
** an operand's bfloat16 copy flows back to the float32 tensor as float32:
** parameters, their gradients and the optimizer's state never leave
** float32 (the master weights).  Operands already in a half type, float64
** operands and integer operands are left alone.
*/
#include "core.h"

static _Thread_local int autocast_dt = -1;

int ember_set_autocast(int dt) {
  if (dt != -1 && dt != EMBER_BFLOAT16 && dt != EMBER_FLOAT16)
    return ember_set_error("autocast: the dtype must be bfloat16 or float16, got %s",
                           ember_dtype_name((ember_dtype)dt));
  autocast_dt = dt;
  return 0;
}

int ember_get_autocast(void) { return autocast_dt; }

int ember_autocast_wants(int n, const ember_tensor *const *t) {
  if (autocast_dt < 0) return 0;
  int any = 0;
  for (int i = 0; i < n; i++) {
    if (!t[i]) continue;
    if (t[i]->dtype != EMBER_FLOAT32 && t[i]->dtype != (ember_dtype)autocast_dt)
      return 0;
    any |= t[i]->dtype == EMBER_FLOAT32;
  }
  return any;
}

/* t cast to dt (and then to float32 when widen), recorded, in the order
   of t's memory: a view whose dims are permuted (a Linear's w:t(); a
   head-split q, [B, nh, T, hs] of a [B, T, 3C] projection) is cast as the
   permuted view that walks its memory in order, and permuted back.  So
   the copy runs over long rows (C elements, not hs; a transposed weight
   straight instead of through strides), the result keeps t's layout
   (matmul's backward then hands a weight a contiguous gradient and reads
   B transposed, as in float32), and the float32 copy of a rounding
   widens one contiguous run. */
static ember_tensor *cast_view(const ember_tensor *t, ember_dtype dt, int widen) {
  int d = t->ndim, perm[EMBER_MAX_DIMS], inv[EMBER_MAX_DIMS], moved = 0;
  for (int i = 0; i < d; i++) perm[i] = i;
  /* dims by decreasing stride (stable: insertion sort of a few) */
  for (int i = 1; i < d; i++)
    for (int j = i; j > 0 && t->strides[perm[j - 1]] < t->strides[perm[j]]; j--) {
      int x = perm[j];
      perm[j] = perm[j - 1];
      perm[j - 1] = x;
    }
  for (int i = 0; i < d; i++) {
    inv[perm[i]] = i;
    moved |= perm[i] != i;
  }
  ember_tensor *p = moved ? ember_permute(t, d, perm)
                          : (ember_tensor_retain((ember_tensor *)t), (ember_tensor *)t);
  ember_tensor *c = p ? ember_cast(p, dt) : NULL;
  ember_tensor_release(p);
  if (c && widen) {
    ember_tensor *w = ember_to_dtype(c, EMBER_FLOAT32);
    ember_tensor_release(c);
    c = w;
  }
  if (!c || !moved) return c;
  ember_tensor *r = ember_permute(c, d, inv);
  ember_tensor_release(c);
  return r;
}

/* out[i] = in[i] cast to the autocast dtype, and then to float32 when
   widen; recorded */
static int cast_all(int n, const ember_tensor *const *in, ember_tensor **out,
                    int widen) {
  for (int i = 0; i < n; i++) out[i] = NULL;
  for (int i = 0; i < n; i++) {
    if (!in[i]) continue;
    out[i] = cast_view(in[i], (ember_dtype)autocast_dt, widen);
    if (!out[i]) {
      for (int j = 0; j < i; j++) ember_tensor_release(out[j]);
      return -1;
    }
  }
  return 0;
}

int ember_autocast_operands(int n, const ember_tensor *const *in, ember_tensor **out) {
  return cast_all(n, in, out, 0);
}

int ember_autocast_round(int n, const ember_tensor *const *in, ember_tensor **out) {
  int rc = cast_all(n, in, out, 1);
  if (rc == 0) autocast_dt = -1;   /* the caller's inner call, then resume */
  return rc;
}

void ember_autocast_resume(int dt) { autocast_dt = dt; }
