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

/* t cast to dt, recorded.  A transposed view of a contiguous tensor (a
   Linear's w:t()) is cast through its contiguous base and transposed back:
   a straight copy instead of a strided one, and the copy keeps the
   view's layout, so that matmul's backward hands the weight a contiguous
   gradient and the product reads B transposed, as in float32. */
static ember_tensor *cast_view(const ember_tensor *t, ember_dtype dt) {
  int d = t->ndim;
  if (d < 2 || ember_is_contiguous(t)) return ember_cast(t, dt);
  ember_tensor *base = ember_transpose(t, d - 2, d - 1);
  if (!base) return NULL;
  if (!ember_is_contiguous(base)) {
    ember_tensor_release(base);
    return ember_cast(t, dt);
  }
  ember_tensor *c = ember_cast(base, dt);
  ember_tensor_release(base);
  ember_tensor *r = c ? ember_transpose(c, d - 2, d - 1) : NULL;
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
    out[i] = cast_view(in[i], (ember_dtype)autocast_dt);
    if (out[i] && widen) {
      ember_tensor *w = ember_to_dtype(out[i], EMBER_FLOAT32);
      ember_tensor_release(out[i]);
      out[i] = w;
    }
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
