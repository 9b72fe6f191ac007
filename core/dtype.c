/*
** dtype.c -- data types, their names and PyTorch's promotion rules.
*/
#include <string.h>

#include "include/ember.h"

static const struct {
  const char *name;
  size_t size;
} dtypes[EMBER_NDTYPES] = {
  [EMBER_FLOAT32] = {"float32", 4}, [EMBER_FLOAT64] = {"float64", 8},
  [EMBER_INT32] = {"int32", 4},     [EMBER_INT64] = {"int64", 8},
  [EMBER_UINT8] = {"uint8", 1},     [EMBER_BOOL] = {"bool", 1},
  [EMBER_BFLOAT16] = {"bfloat16", 2}, [EMBER_FLOAT16] = {"float16", 2},
};

/* Aliases a Torch7 or PyTorch user would type. */
static const struct {
  const char *alias;
  ember_dtype dt;
} aliases[] = {
  {"float", EMBER_FLOAT32}, {"double", EMBER_FLOAT64}, {"int", EMBER_INT32},
  {"long", EMBER_INT64},    {"byte", EMBER_UINT8},     {"boolean", EMBER_BOOL},
  {"bf16", EMBER_BFLOAT16}, {"half", EMBER_FLOAT16},
};

size_t ember_dtype_size(ember_dtype dt) {
  return (unsigned)dt < EMBER_NDTYPES ? dtypes[dt].size : 0;
}

const char *ember_dtype_name(ember_dtype dt) {
  return (unsigned)dt < EMBER_NDTYPES ? dtypes[dt].name : "?";
}

int ember_dtype_from_name(const char *name, ember_dtype *out) {
  for (int i = 0; i < EMBER_NDTYPES; i++)
    if (strcmp(name, dtypes[i].name) == 0) { *out = (ember_dtype)i; return 0; }
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcmp(name, aliases[i].alias) == 0) { *out = aliases[i].dt; return 0; }
  return -1;
}

int ember_dtype_is_float(ember_dtype dt) {
  return dt == EMBER_FLOAT32 || dt == EMBER_FLOAT64 || ember_dtype_is_half(dt);
}

int ember_dtype_is_half(ember_dtype dt) {
  return dt == EMBER_BFLOAT16 || dt == EMBER_FLOAT16;
}

int ember_dtype_is_int(ember_dtype dt) {
  return dt == EMBER_INT32 || dt == EMBER_INT64 || dt == EMBER_UINT8;
}

/*
** PyTorch's lattice for two tensors: bool < integers < floats; inside a
** category the wider type wins, and uint8 with a signed type goes signed.
** bfloat16 and float16 are the narrowest floats; neither holds the other
** (bfloat16 has the range, float16 the precision), so together they make
** float32.
*/
ember_dtype ember_promote(ember_dtype a, ember_dtype b) {
  static const int rank[EMBER_NDTYPES] = {
    [EMBER_BOOL] = 0, [EMBER_UINT8] = 1, [EMBER_INT32] = 2, [EMBER_INT64] = 3,
    [EMBER_BFLOAT16] = 4, [EMBER_FLOAT16] = 4,
    [EMBER_FLOAT32] = 5, [EMBER_FLOAT64] = 6,
  };
  if (a != b && ember_dtype_is_half(a) && ember_dtype_is_half(b))
    return EMBER_FLOAT32;
  return rank[a] >= rank[b] ? a : b;
}

const char *ember_device_name(ember_device dev) {
  return dev == EMBER_CUDA ? "cuda" : "cpu";
}
