/*
** io_safetensors.c -- tensors to and from safetensors files.
**
** The format (github.com/huggingface/safetensors):
**
**     [8 bytes: N, little-endian uint64] [N bytes: JSON header] [data]
**
** The header is a JSON object mapping each tensor's name to
** {"dtype": "F32", "shape": [2,3], "data_offsets": [begin, end]}, the
** offsets counted from the start of the data buffer, end exclusive; an
** optional "__metadata__" entry maps strings to strings.  Data is raw,
** row-major, little-endian.
**
** The writer follows the reference implementation: tensors sorted by
** element size (largest first), then by name, laid out back to back; the
** header compact JSON with "__metadata__" first, padded with spaces so the
** data starts at a multiple of 8 bytes (so every tensor's data is aligned
** to its element size).  It writes a temporary file in the target's folder
** and renames it over the target, so a failed save never leaves a partial
** file and never harms the previous one.
**
** The reader trusts nothing: the header length is checked against the
** file size and a 100 MiB limit before anything is allocated, and the
** header is parsed by a strict JSON reader (core/json.c) that is driven by
** the schema (an object of objects, nothing deeper than "shape": [...]),
** so it never recurses and nesting cannot exhaust the stack; every offset
** and size is checked against the shape, the dtype and the file before
** data is read.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core.h"
#include "json.h"

/* Tensor data goes to and from memory as it is: that is the file's byte
   order only on a little-endian machine. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "io_safetensors.c assumes a little-endian machine"
#endif

#define MAX_HEADER (100u << 20)   /* the largest header we accept, bytes */
#define METADATA_KEY "__metadata__"

/* {======================================================================
** Dtypes
** ======================================================================= */

/* How a file dtype becomes an Ember dtype. */
enum { AS_IS, FROM_I8, FROM_I16, FROM_U16, FROM_U32, CHECK_BOOL,
       UNSUPPORTED };

typedef struct st_dtype {
  const char *code;   /* as in the header */
  int size;           /* bytes per element in the file */
  int ember;          /* the Ember dtype it loads as */
  int conv;           /* one of the enum above */
} st_dtype;

/* Every dtype code of the reference implementation.  F16 and BF16 load as
   Ember's float16 and bfloat16, bit for bit.  The ones Ember lacks are
   widened on load when that is exact (small integers to int32, U32 to
   int64); the rest are named in an error. */
static const st_dtype dtypes[] = {
  {"F64", 8, EMBER_FLOAT64, AS_IS},
  {"F32", 4, EMBER_FLOAT32, AS_IS},
  {"F16", 2, EMBER_FLOAT16, AS_IS},
  {"BF16", 2, EMBER_BFLOAT16, AS_IS},
  {"I64", 8, EMBER_INT64, AS_IS},
  {"I32", 4, EMBER_INT32, AS_IS},
  {"I16", 2, EMBER_INT32, FROM_I16},
  {"I8", 1, EMBER_INT32, FROM_I8},
  {"U32", 4, EMBER_INT64, FROM_U32},
  {"U16", 2, EMBER_INT32, FROM_U16},
  {"U8", 1, EMBER_UINT8, AS_IS},
  {"BOOL", 1, EMBER_BOOL, CHECK_BOOL},
  {"U64", 8, 0, UNSUPPORTED},
  {"C64", 8, 0, UNSUPPORTED},
  {"F8_E5M2", 1, 0, UNSUPPORTED},
  {"F8_E4M3", 1, 0, UNSUPPORTED},
  {"F8_E8M0", 1, 0, UNSUPPORTED},
  {"F6_E2M3", 1, 0, UNSUPPORTED},
  {"F6_E3M2", 1, 0, UNSUPPORTED},
  {"F4", 1, 0, UNSUPPORTED},
};
#define NDTYPES_FILE ((int)(sizeof dtypes / sizeof dtypes[0]))

static const st_dtype *find_dtype(const char *code) {
  for (int i = 0; i < NDTYPES_FILE; i++)
    if (strcmp(dtypes[i].code, code) == 0) return &dtypes[i];
  return NULL;
}

/* The code an Ember dtype is written as. */
static const char *code_of(ember_dtype dt) {
  switch (dt) {
    case EMBER_FLOAT32: return "F32";
    case EMBER_FLOAT64: return "F64";
    case EMBER_FLOAT16: return "F16";
    case EMBER_BFLOAT16: return "BF16";
    case EMBER_INT32: return "I32";
    case EMBER_INT64: return "I64";
    case EMBER_UINT8: return "U8";
    case EMBER_BOOL: return "BOOL";
    default: return NULL;
  }
}

/*
** Widen n elements of the file's dtype, read into the start of `data`, to
** the Ember dtype in place.  The Ember element is never smaller than the
** file's, so walking from the last element down, each write lands on
** bytes whose source elements have been read already.  For BOOL, check
** instead that every byte is 0 or 1 (Ember's bools hold nothing else).
** Returns the index of a bad bool, or -1.
*/
static int64_t convert(const st_dtype *d, void *data, int64_t n) {
  unsigned char *p = data;
  if (d->conv == CHECK_BOOL) {
    for (int64_t i = 0; i < n; i++)
      if (p[i] > 1) return i;
    return -1;
  }
  if (d->conv == AS_IS) return -1;
  for (int64_t i = n - 1; i >= 0; i--) {
    switch (d->conv) {
      case FROM_I8: case FROM_I16: case FROM_U16: {
        int32_t v;
        if (d->conv == FROM_I8) v = (int8_t)p[i];
        else {
          uint16_t h;
          memcpy(&h, p + 2 * i, 2);
          v = d->conv == FROM_I16 ? (int16_t)h : (int32_t)h;
        }
        memcpy(p + 4 * i, &v, 4);
        break;
      }
      case FROM_U32: {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        int64_t v = u;
        memcpy(p + 8 * i, &v, 8);
        break;
      }
      default:
        return -1;
    }
  }
  return -1;
}

/* }====================================================================== */

/* {======================================================================
** Writing
** ======================================================================= */

/* A growing byte buffer for the header. */
typedef struct sbuf {
  char *p;
  size_t n, cap;
  int failed;          /* out of memory: the buffer stops growing */
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->failed || n == 0) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { b->failed = 1; return; }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* A JSON string: quotes, backslashes and control characters escaped as
   serde_json escapes them (the reference writer); UTF-8 passes as is. */
static void sb_json_string(sbuf *b, const char *s) {
  sb_add(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[8];
    switch (*p) {
      case '"': sb_add(b, "\\\"", 2); break;
      case '\\': sb_add(b, "\\\\", 2); break;
      case '\b': sb_add(b, "\\b", 2); break;
      case '\f': sb_add(b, "\\f", 2); break;
      case '\n': sb_add(b, "\\n", 2); break;
      case '\r': sb_add(b, "\\r", 2); break;
      case '\t': sb_add(b, "\\t", 2); break;
      default:
        if (*p < 0x20) {
          snprintf(esc, sizeof esc, "\\u%04x", *p);
          sb_add(b, esc, 6);
        } else {
          sb_add(b, (const char *)p, 1);
        }
    }
  }
  sb_add(b, "\"", 1);
}

/* qsort helpers: indices into an array of names (context in a
   thread-local, since qsort has none: two threads may save at once). */
static _Thread_local const char *const *sort_names;
static _Thread_local ember_tensor *const *sort_tensors;

static int by_name(const void *a, const void *b) {
  return strcmp(sort_names[*(const int *)a], sort_names[*(const int *)b]);
}

/* The reference writer's order: larger elements first (so that with the
   data 8-byte aligned every tensor is aligned to its element size), then
   by name. */
static int by_size_then_name(const void *a, const void *b) {
  int i = *(const int *)a, j = *(const int *)b;
  size_t si = ember_dtype_size(sort_tensors[i]->dtype);
  size_t sj = ember_dtype_size(sort_tensors[j]->dtype);
  if (si != sj) return si > sj ? -1 : 1;
  return strcmp(sort_names[i], sort_names[j]);
}

/* Index of a name that appears twice among n (sorted in `order`), or -1. */
static int find_duplicate(int n, const char *const *names, int *order) {
  for (int i = 0; i < n; i++) order[i] = i;
  sort_names = names;
  qsort(order, (size_t)n, sizeof *order, by_name);
  for (int i = 1; i < n; i++)
    if (strcmp(names[order[i - 1]], names[order[i]]) == 0) return order[i];
  return -1;
}

/* Everything a save checks before it creates a file. */
static int check_save_args(const char *path, int n, const char *const *names,
                           ember_tensor *const *tensors, int nmeta,
                           const char *const *keys, const char *const *values,
                           int *order, int *morder) {
  if (!path || !*path) return ember_set_error("save: the path is empty");
  if (n < 0 || nmeta < 0)
    return ember_set_error("save: negative count (%d tensors, %d metadata "
                           "entries)", n, nmeta);
  if (n > 0 && (!names || !tensors))
    return ember_set_error("save: names or tensors is NULL");
  if (nmeta > 0 && (!keys || !values))
    return ember_set_error("save: metadata keys or values is NULL");
  for (int i = 0; i < n; i++) {
    const char *name = names[i];
    if (!name || !*name)
      return ember_set_error("save: tensor %d has an empty name", i + 1);
    if (strcmp(name, METADATA_KEY) == 0)
      return ember_set_error("save: '%s' is reserved for the metadata and "
                             "cannot name a tensor", METADATA_KEY);
    if (!ember_utf8_valid(name))
      return ember_set_error("save: tensor name %d is not valid UTF-8", i + 1);
    const ember_tensor *t = tensors[i];
    if (!t) return ember_set_error("save: tensor '%s' is NULL", name);
    if (!code_of(t->dtype))
      return ember_set_error("save: tensor '%s' has an unknown dtype", name);
    if (ember_check_mapped(t) < 0) {
      char why[256];
      snprintf(why, sizeof why, "%s", ember_last_error());
      return ember_set_error("save: tensor '%s': %s", name, why);
    }
  }
  int dup = find_duplicate(n, names, order);
  if (dup >= 0)
    return ember_set_error("save: tensor name '%s' appears twice", names[dup]);
  for (int i = 0; i < nmeta; i++) {
    if (!keys[i] || !values[i])
      return ember_set_error("save: metadata entry %d is NULL", i + 1);
    if (!ember_utf8_valid(keys[i]))
      return ember_set_error("save: metadata key %d is not valid UTF-8", i + 1);
    if (!ember_utf8_valid(values[i]))
      return ember_set_error("save: metadata value for '%s' is not valid "
                             "UTF-8", keys[i]);
  }
  dup = find_duplicate(nmeta, keys, morder);
  if (dup >= 0)
    return ember_set_error("save: metadata key '%s' appears twice", keys[dup]);
  return 0;
}

/* The header: compact JSON, metadata first (in `morder`: by key, so that
   equal saves give equal files), tensors in `order` with their data laid
   out back to back, padded with spaces to a multiple of 8. */
static int build_header(sbuf *b, int n, const char *const *names,
                        ember_tensor *const *tensors, const int *order,
                        int nmeta, const char *const *keys,
                        const char *const *values, const int *morder) {
  char num[64];
  sb_str(b, "{");
  if (nmeta > 0) {
    sb_str(b, "\"" METADATA_KEY "\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) sb_str(b, ",");
      sb_json_string(b, keys[morder[i]]);
      sb_str(b, ":");
      sb_json_string(b, values[morder[i]]);
    }
    sb_str(b, "}");
  }
  int64_t offset = 0;
  for (int k = 0; k < n; k++) {
    const ember_tensor *t = tensors[order[k]];
    if (nmeta > 0 || k > 0) sb_str(b, ",");
    sb_json_string(b, names[order[k]]);
    sb_str(b, ":{\"dtype\":\"");
    sb_str(b, code_of(t->dtype));
    sb_str(b, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]);
      sb_str(b, num);
    }
    /* numel * size fits: the tensor's storage exists */
    int64_t nbytes = ember_numel(t) * (int64_t)ember_dtype_size(t->dtype);
    snprintf(num, sizeof num, "],\"data_offsets\":[%lld,%lld]}",
             (long long)offset, (long long)(offset + nbytes));
    sb_str(b, num);
    offset += nbytes;
  }
  sb_str(b, "}");
  while (!b->failed && b->n % 8 != 0) sb_str(b, " ");
  if (b->failed) return ember_set_error("save: out of memory");
  return 0;
}

/* write(2) all of it, through partial writes and signals. */
static int write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t k = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* The tensors' data in `order`, each in row-major order (a strided tensor
   goes through a contiguous copy, and a GPU tensor through a host copy,
   made with grad mode off so that nothing is recorded). */
static int write_data(int fd, int n, ember_tensor *const *tensors,
                      const int *order) {
  for (int k = 0; k < n; k++) {
    const ember_tensor *t = tensors[order[k]];
    int grad = ember_is_grad_enabled();
    ember_set_grad_enabled(0);
    ember_tensor *c = t->storage->device == EMBER_CPU ? ember_contiguous(t)
                                                      : ember_to_device(t, EMBER_CPU);
    ember_set_grad_enabled(grad);
    if (!c) {                /* out of memory for the copy */
      char why[256];
      snprintf(why, sizeof why, "%s", ember_last_error());
      return ember_set_error("save: %s", why);
    }
    size_t nbytes = (size_t)ember_numel(c) * ember_dtype_size(c->dtype);
    int rc = nbytes ? write_all(fd, ember_data(c), nbytes) : 0;
    ember_tensor_release(c);
    if (rc < 0) return -2;   /* errno is set */
  }
  return 0;
}

/* Make the rename durable: sync the folder that holds path (best effort;
   some file systems refuse to sync a folder, and the data is safe). */
static void sync_folder(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
                    : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

int ember_save_safetensors(const char *path, int n, const char *const *names,
                           ember_tensor *const *tensors, int nmeta,
                           const char *const *meta_keys,
                           const char *const *meta_values) {
  /* n, nmeta >= 0 is checked below; before that, size by what is safe */
  int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  int *morder = malloc((size_t)(nmeta > 0 ? nmeta : 1) * sizeof *morder);
  if (!order || !morder) {
    free(order);
    free(morder);
    return ember_set_error("save: out of memory");
  }
  if (check_save_args(path, n, names, tensors, nmeta, meta_keys, meta_values,
                      order, morder) < 0) {
    free(order);
    free(morder);
    return -1;
  }
  for (int i = 0; i < n; i++) order[i] = i;
  sort_names = names;
  sort_tensors = tensors;
  qsort(order, (size_t)n, sizeof *order, by_size_then_name);

  sbuf hdr = {0};
  int rc = build_header(&hdr, n, names, tensors, order, nmeta, meta_keys,
                        meta_values, morder);
  free(morder);
  if (rc < 0) {
    free(hdr.p);
    free(order);
    return -1;
  }

  /* The temporary file: next to the target (so rename is atomic), named
     after it and our pid; O_EXCL so we never write into someone's file. */
  size_t tlen = strlen(path) + 48;
  char *tmp = malloc(tlen);
  int fd = -1;
  if (tmp) {
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
      snprintf(tmp, tlen, attempt ? "%s.tmp.%ld.%d" : "%s.tmp.%ld", path,
               (long)getpid(), attempt);
      fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
      if (fd < 0 && errno != EEXIST) break;
    }
  }
  if (fd < 0) {
    int err = tmp ? errno : ENOMEM;
    free(tmp);
    free(hdr.p);
    free(order);
    return ember_set_error("save: cannot write '%s': %s", path, strerror(err));
  }

  unsigned char len8[8];
  uint64_t hlen = hdr.n;
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
  if (write_all(fd, len8, 8) < 0 || write_all(fd, hdr.p, hdr.n) < 0) rc = -2;
  if (rc == 0) rc = write_data(fd, n, tensors, order);
  if (rc == 0 && fsync(fd) < 0) rc = -2;
  int err = errno;
  if (close(fd) < 0 && rc == 0) { rc = -2; err = errno; }
  if (rc == 0 && rename(tmp, path) < 0) {
    err = errno;
    ember_set_error("save: cannot replace '%s': %s", path, strerror(err));
    rc = -1;
  } else if (rc == -2) {
    ember_set_error("save: cannot write '%s': %s", path, strerror(err));
    rc = -1;
  }
  if (rc < 0) unlink(tmp);   /* the message is already set */
  else sync_folder(path);
  free(tmp);
  free(hdr.p);
  free(order);
  return rc;
}

/* }====================================================================== */

/* {======================================================================
** The header's schema (the JSON itself is read by core/json.c)
** ======================================================================= */

/* One tensor's entry, as parsed. */
typedef struct entry {
  const char *name;       /* in the string pool */
  const st_dtype *dt;
  int ndim;
  int64_t shape[EMBER_MAX_DIMS];
  int64_t begin, end;
  int index;              /* position in the header, for a stable order */
} entry;

typedef struct parser {
  ember_json j;                /* the header, its position, its strings */
  entry *e;                    /* tensors */
  int ne, cap_e;
  const char **keys, **values; /* metadata */
  int nmeta, cap_meta;
  int seen_metadata;
} parser;

/* An error about the file's content: "load: '<path>': " and the message. */
#define perr(p, ...) ember_json_error(&(p)->j, __VA_ARGS__)

/*
** A JSON array of non-negative integers into out[0..max), its length in
** *count.  `what` names the field in messages ("shape", "data_offsets").
** More than max entries is an error.
*/
static int parse_uint_array(ember_json *j, const char *name, const char *what,
                            int64_t *out, int max, int *count) {
  ember_json_skip_ws(j);
  if (ember_json_peek(j) != '[')
    return ember_json_value_error(j, "tensor '%s': %s must be an array of "
                                  "non-negative integers, got %s", name, what,
                                  ember_json_kind(j));
  j->pos++;
  *count = 0;
  ember_json_skip_ws(j);
  if (ember_json_peek(j) == ']') { j->pos++; return 0; }
  for (;;) {
    ember_json_skip_ws(j);
    int c = ember_json_peek(j);
    if (c != '-' && (c < '0' || c > '9'))
      return ember_json_value_error(j, "tensor '%s': %s entries must be "
                                    "non-negative integers, got %s", name,
                                    what, ember_json_kind(j));
    int64_t v = 0;
    int is_int = 0;
    char txt[48];
    if (ember_json_number(j, &v, &is_int, txt, sizeof txt) < 0) return -1;
    if (!is_int || v < 0)
      return ember_json_error(j, "tensor '%s' has %s entry %s (entries must "
                              "be non-negative integers)", name, what, txt);
    if (*count >= max) {
      if (max == EMBER_MAX_DIMS)
        return ember_json_error(j, "tensor '%s' has more than %d dimensions "
                                "(Ember supports at most %d)", name, max, max);
      return ember_json_error(j, "tensor '%s': %s must hold exactly %d "
                              "integers, got more", name, what, max);
    }
    out[(*count)++] = v;
    ember_json_skip_ws(j);
    if (ember_json_peek(j) == ',') { j->pos++; continue; }
    if (ember_json_peek(j) == ']') { j->pos++; return 0; }
    return ember_json_syntax_error(j, "expected ',' or ']' in an array");
  }
}

/* What the walk of one tensor's object has seen so far. */
typedef struct entry_walk {
  entry *e;
  const char *dtype;
  int seen_dtype, seen_shape, seen_offsets;
} entry_walk;

/* One field of a tensor's object: dtype, shape or data_offsets, once. */
static int entry_field(ember_json *j, const char *field, void *ud) {
  entry_walk *w = ud;
  entry *e = w->e;
  const char *name = e->name;
  int *seen = !strcmp(field, "dtype") ? &w->seen_dtype
            : !strcmp(field, "shape") ? &w->seen_shape
            : !strcmp(field, "data_offsets") ? &w->seen_offsets : NULL;
  if (!seen)
    return ember_json_error(j, "tensor '%s' has an unknown field '%s' "
                            "(expected dtype, shape and data_offsets)", name,
                            field);
  if (*seen)
    return ember_json_error(j, "tensor '%s' has '%s' twice", name, field);
  *seen = 1;
  if (seen == &w->seen_dtype) {
    if (ember_json_peek(j) != '"')
      return ember_json_value_error(j, "tensor '%s': dtype must be a string, "
                                    "got %s", name, ember_json_kind(j));
    return ember_json_string(j, &w->dtype);
  }
  if (seen == &w->seen_shape)
    return parse_uint_array(j, name, "shape", e->shape, EMBER_MAX_DIMS,
                            &e->ndim);
  int64_t off[2];
  int k;
  if (parse_uint_array(j, name, "data_offsets", off, 2, &k) < 0) return -1;
  if (k != 2)
    return ember_json_error(j, "tensor '%s': data_offsets must hold exactly "
                            "2 integers [begin, end], got %d", name, k);
  e->begin = off[0];
  e->end = off[1];
  return 0;
}

/* One tensor's object {dtype, shape, data_offsets}, in any order, each
   exactly once and nothing else; then its sizes checked. */
static int parse_entry(parser *p, const char *name) {
  ember_json *j = &p->j;
  if (ember_json_peek(j) != '{')
    return ember_json_value_error(j, "tensor '%s': expected an object with "
                                  "dtype, shape and data_offsets, got %s",
                                  name, ember_json_kind(j));
  if (p->ne == p->cap_e) {
    int cap = p->cap_e ? 2 * p->cap_e : 16;
    entry *e = realloc(p->e, (size_t)cap * sizeof *e);
    if (!e) return ember_set_error("load: out of memory");
    p->e = e;
    p->cap_e = cap;
  }
  entry *e = &p->e[p->ne];
  memset(e, 0, sizeof *e);
  e->name = name;
  e->index = p->ne;
  entry_walk w = {.e = e};
  if (ember_json_object(j, entry_field, &w) < 0) return -1;
  if (!w.seen_dtype || !w.seen_shape || !w.seen_offsets)
    return ember_json_error(j, "tensor '%s' has no '%s'", name,
                            !w.seen_dtype ? "dtype"
                            : !w.seen_shape ? "shape" : "data_offsets");
  const char *dtype = w.dtype;
  e->dt = find_dtype(dtype);
  if (!e->dt)
    return ember_json_error(j, "tensor '%s' has unknown dtype '%s'", name,
                            dtype);
  if (e->dt->conv == UNSUPPORTED)
    return ember_json_error(j, "tensor '%s' has dtype %s, which Ember cannot "
                            "load (it reads F64, F32, F16, BF16, I64, I32, "
                            "I16, I8, U32, U16, U8 and BOOL)", name, dtype);
  /* The element count, and the extent of every dimension (Ember computes
     strides from sizes even when one of them is 0, so those must not
     overflow either). */
  int64_t numel = 1, extent = 1;
  char shp[160];
  ember_shape_str(shp, sizeof shp, e->ndim, e->shape);
  for (int d = 0; d < e->ndim; d++) {
    int64_t s = e->shape[d];
    if (s > 0 && extent > INT64_MAX / 16 / s)
      return ember_json_error(j, "tensor '%s' has shape %s, which is too "
                              "large", name, shp);
    if (s > 0) extent *= s;
    numel *= s;
  }
  if (e->end < e->begin)
    return ember_json_error(j, "tensor '%s' has data_offsets [%lld, %lld] "
                            "that end before they begin", name,
                            (long long)e->begin, (long long)e->end);
  int64_t need = numel * e->dt->size;
  if (e->end - e->begin != need)
    return ember_json_error(j, "tensor '%s' has data_offsets [%lld, %lld] "
                            "but shape %s %s needs %lld bytes", name,
                            (long long)e->begin, (long long)e->end, shp,
                            e->dt->code, (long long)need);
  p->ne++;
  return 0;
}

/* One member of "__metadata__": a string value. */
static int metadata_member(ember_json *j, const char *key, void *ud) {
  parser *p = ud;
  const char *value;
  if (ember_json_peek(j) != '"')
    return ember_json_value_error(j, "%s value for '%s' must be a string, "
                                  "got %s", METADATA_KEY, key,
                                  ember_json_kind(j));
  if (ember_json_string(j, &value) < 0) return -1;
  if (p->nmeta == p->cap_meta) {
    int cap = p->cap_meta ? 2 * p->cap_meta : 8;
    const char **k = realloc(p->keys, (size_t)cap * sizeof *k);
    if (!k) return ember_set_error("load: out of memory");
    p->keys = k;
    const char **v = realloc(p->values, (size_t)cap * sizeof *v);
    if (!v) return ember_set_error("load: out of memory");
    p->values = v;
    p->cap_meta = cap;
  }
  p->keys[p->nmeta] = key;
  p->values[p->nmeta++] = value;
  return 0;
}

/* "__metadata__": an object whose values are strings. */
static int parse_metadata(parser *p) {
  ember_json *j = &p->j;
  if (p->seen_metadata)
    return ember_json_error(j, "%s appears twice in the header", METADATA_KEY);
  p->seen_metadata = 1;
  if (ember_json_peek(j) != '{')
    return ember_json_value_error(j, "%s must be an object of strings, got "
                                  "%s", METADATA_KEY, ember_json_kind(j));
  return ember_json_object(j, metadata_member, p);
}

/* One member of the header: "__metadata__" or a tensor. */
static int header_member(ember_json *j, const char *name, void *ud) {
  (void)j;
  if (strcmp(name, METADATA_KEY) == 0) return parse_metadata(ud);
  return parse_entry(ud, name);
}

/* The whole header: one object, then nothing but whitespace. */
static int parse_header(parser *p) {
  ember_json *j = &p->j;
  ember_json_skip_ws(j);
  if (ember_json_peek(j) != '{') {
    const char *kind = ember_json_kind(j);
    return ember_json_error(j, "header is not a JSON object (it starts with "
                            "%s)", kind ? kind : ember_json_peek(j) < 0
                                                 ? "nothing" : "no JSON value");
  }
  if (ember_json_object(j, header_member, p) < 0) return -1;
  ember_json_skip_ws(j);
  if (j->pos != j->n)
    return ember_json_syntax_error(j, "unexpected characters after the "
                                   "top-level object");
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Reading
** ======================================================================= */

struct ember_safetensors {
  int n;
  const char **names;       /* [n], in the pool */
  ember_tensor **tensors;   /* [n], owned */
  int nmeta;
  const char **keys, **values;
  char *pool;               /* every string */
};

/* sort entries by offsets (begin, end), then header position */
static int by_offsets(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static int by_entry_name(const void *a, const void *b) {
  return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static int by_string(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names and keys unique, data inside the buffer, no two ranges sharing a
   byte.  Leaves the entries sorted by offsets. */
static int check_layout(parser *p, int64_t data_len) {
  /* (qsort only with two or more: p->e is NULL when there are none) */
  if (p->ne > 1)
    qsort(p->e, (size_t)p->ne, sizeof *p->e, by_entry_name);
  for (int i = 1; i < p->ne; i++)
    if (!strcmp(p->e[i - 1].name, p->e[i].name))
      return perr(p, "tensor name '%s' appears twice in the header",
                  p->e[i].name);
  if (p->nmeta > 1) {
    const char **k = malloc((size_t)p->nmeta * sizeof *k);
    if (!k) return ember_set_error("load: out of memory");
    memcpy(k, p->keys, (size_t)p->nmeta * sizeof *k);
    qsort(k, (size_t)p->nmeta, sizeof *k, by_string);
    for (int i = 1; i < p->nmeta; i++)
      if (!strcmp(k[i - 1], k[i])) {
        perr(p, "%s key '%s' appears twice", METADATA_KEY, k[i]);
        free(k);
        return -1;
      }
    free(k);
  }
  if (p->ne > 1)
    qsort(p->e, (size_t)p->ne, sizeof *p->e, by_offsets);
  const entry *last = NULL;   /* the non-empty range reaching furthest */
  for (int i = 0; i < p->ne; i++) {
    const entry *e = &p->e[i];
    if (e->end > data_len)
      return perr(p, "tensor '%s' has data_offsets [%lld, %lld] past the end "
                  "of the data (%lld bytes): the file is truncated or corrupt",
                  e->name, (long long)e->begin, (long long)e->end,
                  (long long)data_len);
    if (e->begin == e->end) continue;
    if (last && e->begin < last->end)
      return perr(p, "tensors '%s' and '%s' overlap (data_offsets [%lld, "
                  "%lld] and [%lld, %lld])", last->name, e->name,
                  (long long)last->begin, (long long)last->end,
                  (long long)e->begin, (long long)e->end);
    if (!last || e->end > last->end) last = e;
  }
  return 0;
}

/* pread(2) all n bytes at off; -1 on error or a short file. */
static int read_at(int fd, void *buf, size_t n, off_t off) {
  char *b = buf;
  while (n > 0) {
    ssize_t k = pread(fd, b, n > (1u << 30) ? (1u << 30) : n, off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) errno = 0;
      return -1;
    }
    b += k;
    n -= (size_t)k;
    off += k;
  }
  return 0;
}

void ember_safetensors_free(ember_safetensors *h) {
  if (!h) return;
  if (h->tensors)
    for (int i = 0; i < h->n; i++) ember_tensor_release(h->tensors[i]);
  free(h->tensors);
  free(h->names);
  free(h->keys);
  free(h->values);
  free(h->pool);
  free(h);
}

/* Tensor e of the file, empty, in the handle's slot i. */
static ember_tensor *new_tensor(parser *p, const entry *e, int i,
                                ember_safetensors *h) {
  ember_tensor *t = ember_empty(e->ndim, e->shape, (ember_dtype)e->dt->ember);
  if (!t) {
    char why[256];
    snprintf(why, sizeof why, "%s", ember_last_error());
    perr(p, "tensor '%s': %s", e->name, why);
    return NULL;
  }
  h->names[i] = e->name;
  h->tensors[i] = t;
  return t;
}

/* Widen in place, or check a BOOL's bytes (see convert). */
static int convert_checked(parser *p, const entry *e, void *data, int64_t n) {
  int64_t bad = convert(e->dt, data, n);
  if (bad >= 0)
    return perr(p, "tensor '%s' (BOOL) holds a byte other than 0 or 1 at "
                "element %lld", e->name, (long long)bad + 1);
  return 0;
}

/* The tensors' data, read and converted into the handle (entries sorted
   by offsets). */
static int read_tensors(parser *p, int fd, off_t data_start,
                        ember_safetensors *h) {
  for (int i = 0; i < p->ne; i++) {
    const entry *e = &p->e[i];
    ember_tensor *t = new_tensor(p, e, i, h);
    if (!t) return -1;
    size_t nbytes = (size_t)(e->end - e->begin);
    if (nbytes && read_at(fd, ember_data(t), nbytes,
                          data_start + (off_t)e->begin) < 0)
      return perr(p, "cannot read tensor '%s': %s", e->name,
                  errno ? strerror(errno) : "the file is truncated");
    if (convert_checked(p, e, ember_data(t), ember_numel(t)) < 0) return -1;
  }
  return 0;
}

/*
** The tensors as views of the mapped file m, whose data starts at
** data_start.  A tensor is a view when its bytes are Ember's as they lie:
** a dtype loaded as it is (a BOOL once its bytes are checked, which reads
** its pages) at an offset aligned to its element size (the reference
** writer aligns every tensor; a hand-made file may not, and Ember's
** kernels assume aligned elements).  The others are copied out of the
** mapping: widened dtypes, misaligned data, empty tensors.  A fault taken
** while reading the mapping here (the file shrank since it was measured)
** fails the load.
*/
static int map_tensors(parser *p, ember_mapping *m, size_t data_start,
                       ember_safetensors *h) {
  const char *base = ember_mapping_data(m);
  for (int i = 0; i < p->ne; i++) {
    const entry *e = &p->e[i];
    size_t at = data_start + (size_t)e->begin;
    size_t nbytes = (size_t)(e->end - e->begin);
    int64_t numel = nbytes / (size_t)e->dt->size;
    if (nbytes > 0 && (e->dt->conv == AS_IS || e->dt->conv == CHECK_BOOL) &&
        at % (size_t)e->dt->size == 0) {
      if (convert_checked(p, e, (void *)(base + at), numel) < 0) return -1;
      ember_tensor *t = ember_tensor_mapped(m, at, (ember_dtype)e->dt->ember,
                                            e->ndim, e->shape);
      if (!t) return perr(p, "tensor '%s': out of memory", e->name);
      h->names[i] = e->name;
      h->tensors[i] = t;
    } else {
      ember_tensor *t = new_tensor(p, e, i, h);
      if (!t) return -1;
      memcpy(ember_data(t), base + at, nbytes);
      if (convert_checked(p, e, ember_data(t), numel) < 0) return -1;
    }
  }
  if (ember_mapping_lost(m))
    return perr(p, "the file shrank while it was being loaded");
  return 0;
}

ember_safetensors *ember_load_safetensors(const char *path) {
  return ember_load_safetensors_ex(path, 0);
}

ember_safetensors *ember_load_safetensors_ex(const char *path, int flags) {
  if (!path) { ember_set_error("load: the path is NULL"); return NULL; }
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    ember_set_error("load: cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  parser p = {0};
  p.j.file = path;
  ember_safetensors *h = NULL;
  unsigned char *hdr = NULL;
  ember_mapping *map = NULL;
  struct stat st;
  unsigned char len8[8];
  if (fstat(fd, &st) < 0) {
    ember_set_error("load: cannot read '%s': %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    ember_set_error("load: '%s' is not a regular file", path);
    goto fail;
  }
  int64_t size = (int64_t)st.st_size;
  if (size < 8) {
    ember_set_error("load: '%s': the file is truncated: %lld bytes, but a "
                    "safetensors file starts with an 8-byte header length",
                    path, (long long)size);
    goto fail;
  }
  if (read_at(fd, len8, 8, 0) < 0) {
    ember_set_error("load: cannot read '%s': %s", path,
                    errno ? strerror(errno) : "the file is truncated");
    goto fail;
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
  if (hlen > MAX_HEADER) {
    ember_set_error("load: '%s': the header length %llu is over the limit of "
                    "%u bytes (not a safetensors file?)", path,
                    (unsigned long long)hlen, MAX_HEADER);
    goto fail;
  }
  if (hlen > (uint64_t)(size - 8)) {
    ember_set_error("load: '%s': the file is truncated: its header length is "
                    "%llu bytes but only %lld bytes follow", path,
                    (unsigned long long)hlen, (long long)(size - 8));
    goto fail;
  }
  /* hlen is now known to be small and backed by the file */
  hdr = malloc(hlen ? hlen : 1);
  p.j.pool = malloc(hlen + 1);
  if (!hdr || !p.j.pool) {
    ember_set_error("load: out of memory reading the header of '%s'", path);
    goto fail;
  }
  if (read_at(fd, hdr, hlen, 8) < 0) {
    ember_set_error("load: cannot read '%s': %s", path,
                    errno ? strerror(errno) : "the file is truncated");
    goto fail;
  }
  p.j.s = hdr;
  p.j.n = hlen;
  if (parse_header(&p) < 0) goto fail;
  if (check_layout(&p, size - 8 - (int64_t)hlen) < 0) goto fail;

  h = calloc(1, sizeof *h);
  if (!h || !(h->names = calloc((size_t)p.ne + 1, sizeof *h->names)) ||
      !(h->tensors = calloc((size_t)p.ne + 1, sizeof *h->tensors))) {
    ember_set_error("load: out of memory");
    goto fail;
  }
  h->n = p.ne;
  if (flags & EMBER_LOAD_MMAP) {
    /* the file as it was measured: a later change is the SIGBUS rule's */
    if (!(map = ember_mapping_open(fd, (size_t)size, path))) goto fail;
    if (map_tensors(&p, map, (size_t)(8 + hlen), h) < 0) goto fail;
    ember_mapping_release(map);   /* the tensors hold it now, if any */
    map = NULL;
  } else if (read_tensors(&p, fd, (off_t)(8 + hlen), h) < 0) {
    goto fail;
  }
  h->nmeta = p.nmeta;
  h->keys = p.keys;
  h->values = p.values;
  h->pool = p.j.pool;
  free(p.e);
  free(hdr);
  close(fd);
  return h;

fail:
  ember_safetensors_free(h);   /* its strings are in p.j.pool, freed below */
  ember_mapping_release(map);
  free(p.e);
  free(p.keys);
  free(p.values);
  free(p.j.pool);
  free(hdr);
  close(fd);
  return NULL;
}

int ember_safetensors_count(const ember_safetensors *h) { return h ? h->n : 0; }

const char *ember_safetensors_name(const ember_safetensors *h, int i) {
  return h && i >= 0 && i < h->n ? h->names[i] : NULL;
}

ember_tensor *ember_safetensors_tensor(const ember_safetensors *h, int i) {
  if (!h || i < 0 || i >= h->n) {
    ember_set_error("safetensors_tensor: index %d is out of range (%d "
                    "tensors)", i, h ? h->n : 0);
    return NULL;
  }
  ember_tensor_retain(h->tensors[i]);
  return h->tensors[i];
}

int ember_safetensors_metadata_count(const ember_safetensors *h) {
  return h ? h->nmeta : 0;
}

const char *ember_safetensors_metadata_key(const ember_safetensors *h, int i) {
  return h && i >= 0 && i < h->nmeta ? h->keys[i] : NULL;
}

const char *ember_safetensors_metadata_value(const ember_safetensors *h,
                                             int i) {
  return h && i >= 0 && i < h->nmeta ? h->values[i] : NULL;
}

/* }====================================================================== */
