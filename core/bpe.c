/*
** bpe.c -- GPT-2's byte-level BPE tokenizer: loading vocab.json and
** merges.txt, encoding, decoding, training and saving (ember.data.BPE).
**
** Text is cut into pieces by GPT-2's pattern
**     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
** matched by hand over UTF-8 (next_piece; the classes come from
** core/bpe_unicode.h, generated from the regex package the pattern is
** written for).  Bytes that are not valid UTF-8 are one character each of
** the "other" class, so any byte string encodes.  Each piece's bytes start
** as the 256 byte tokens and the adjacent pair of lowest merge rank is
** merged, all its occurrences left to right, until no pair has a rank
** (GPT-2's encoder.py bpe()).  Pieces' results are cached.
**
** Tokens are kept in the vocab.json form (each byte as the printable
** character of GPT-2's bytes_to_unicode) and as the bytes they stand for,
** which decode concatenates.  Ids here are 1-based, GPT-2's plus one.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "json.h"
#include "bpe_unicode.h"

#define EOT "<|endoftext|>"

/* {======================================================================
** A hash table from byte strings (or 64-bit keys) to int64 values
** ======================================================================= */

typedef struct {
  char **keys;           /* NULL: empty slot; owned copies */
  uint32_t *lens;
  uint64_t *ikeys;       /* integer keys (pairs), when keys is unused */
  int64_t *vals;
  size_t cap, n;         /* cap a power of two */
  int ints;
} hmap;

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

static uint64_t hash_int(uint64_t k) {
  k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33;
  return k;
}

static void hmap_free(hmap *m) {
  if (m->keys)
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
  free(m->keys); free(m->lens); free(m->ikeys); free(m->vals);
  memset(m, 0, sizeof *m);
}

static int hmap_init(hmap *m, size_t cap, int ints) {
  memset(m, 0, sizeof *m);
  m->cap = 16;
  while (m->cap < cap * 2) m->cap *= 2;
  m->ints = ints;
  m->vals = malloc(m->cap * sizeof *m->vals);
  if (ints) {
    m->ikeys = malloc(m->cap * sizeof *m->ikeys);
    if (m->ikeys) memset(m->ikeys, 0xff, m->cap * sizeof *m->ikeys);
  } else {
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->lens = malloc(m->cap * sizeof *m->lens);
  }
  if (!m->vals || (ints ? !m->ikeys : !m->keys || !m->lens)) {
    hmap_free(m);
    return -1;
  }
  return 0;
}

/* The slot of key (string s/n or integer k): where it is, or the empty
   slot where it would go. */
static size_t hmap_slot(const hmap *m, const char *s, size_t n, uint64_t k) {
  size_t mask = m->cap - 1;
  size_t i = (m->ints ? hash_int(k) : hash_bytes(s, n)) & mask;
  if (m->ints) {
    while (m->ikeys[i] != UINT64_MAX && m->ikeys[i] != k) i = (i + 1) & mask;
  } else {
    while (m->keys[i] && !(m->lens[i] == n && memcmp(m->keys[i], s, n) == 0))
      i = (i + 1) & mask;
  }
  return i;
}

static int hmap_has(const hmap *m, size_t i) {
  return m->ints ? m->ikeys[i] != UINT64_MAX : m->keys[i] != NULL;
}

/* The value of a key, or -1. */
static int64_t hmap_get(const hmap *m, const char *s, size_t n, uint64_t k) {
  size_t i = hmap_slot(m, s, n, k);
  return hmap_has(m, i) ? m->vals[i] : -1;
}

static int hmap_grow(hmap *m) {
  hmap big;
  if (hmap_init(&big, m->cap, m->ints) < 0) return -1;
  for (size_t i = 0; i < m->cap; i++) {
    if (!hmap_has(m, i)) continue;
    size_t j = m->ints ? hmap_slot(&big, NULL, 0, m->ikeys[i])
                       : hmap_slot(&big, m->keys[i], m->lens[i], 0);
    if (m->ints) big.ikeys[j] = m->ikeys[i];
    else { big.keys[j] = m->keys[i]; big.lens[j] = m->lens[i]; m->keys[i] = NULL; }
    big.vals[j] = m->vals[i];
  }
  big.n = m->n;
  hmap_free(m);
  *m = big;
  return 0;
}

/* The value slot of a key, added with value v0 if absent; NULL when out
   of memory. */
static int64_t *hmap_put(hmap *m, const char *s, size_t n, uint64_t k,
                         int64_t v0) {
  if ((m->n + 1) * 2 > m->cap && hmap_grow(m) < 0) return NULL;
  size_t i = hmap_slot(m, s, n, k);
  if (!hmap_has(m, i)) {
    if (m->ints) m->ikeys[i] = k;
    else {
      char *c = malloc(n + 1);
      if (!c) return NULL;
      memcpy(c, s, n);
      c[n] = 0;
      m->keys[i] = c;
      m->lens[i] = (uint32_t)n;
    }
    m->vals[i] = v0;
    m->n++;
  }
  return &m->vals[i];
}

/* }====================================================================== */

/* {======================================================================
** The tokenizer
** ======================================================================= */

struct ember_bpe {
  int64_t n;              /* tokens */
  char **tok;             /* vocab.json form, NUL-terminated */
  char **raw;             /* the bytes each stands for */
  size_t *rawlen;
  hmap ids;               /* vocab.json form -> 0-based id */
  int32_t byte_id[256];   /* the token of each single byte */
  int64_t nmerges;
  int32_t (*merges)[2];   /* by rank */
  hmap ranks;             /* (a << 32 | b) -> rank */
  int32_t *merged;        /* rank -> the id the pair becomes */
  int64_t eot;            /* id of <|endoftext|>, -1 if none */
  hmap cache;             /* piece bytes -> offset in cache_ids */
  int32_t *cache_ids;     /* count, then the ids, per cached piece */
  size_t cache_n, cache_cap;
};

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the
   others for 256, 257, ... in byte order. */
static unsigned byte_cp[256];
static int cp_byte[324];   /* inverse, -1 where none */

static void init_byte_map(void) {
  static int done;
  if (done) return;
  int k = 0;
  for (int i = 0; i < 324; i++) cp_byte[i] = -1;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
                    (b >= 0xAE && b <= 0xFF);
    byte_cp[b] = printable ? (unsigned)b : 256u + (unsigned)k++;
    cp_byte[byte_cp[b]] = b;
  }
  done = 1;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63));
    o[2] = (char)(0x80 | (cp & 63));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
  o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
  return 4;
}

/* The code point of the valid UTF-8 sequence of length len at s. */
static unsigned get_utf8(const unsigned char *s, size_t len) {
  if (len == 1) return s[0];
  unsigned cp = s[0] & (0x7F >> len);
  for (size_t i = 1; i < len; i++) cp = cp << 6 | (s[i] & 63);
  return cp;
}

void ember_bpe_free(ember_bpe *b) {
  if (!b) return;
  for (int64_t i = 0; i < b->n; i++) {
    if (b->tok) free(b->tok[i]);
    if (b->raw) free(b->raw[i]);
  }
  free(b->tok); free(b->raw); free(b->rawlen);
  free(b->merges); free(b->merged); free(b->cache_ids);
  hmap_free(&b->ids); hmap_free(&b->ranks); hmap_free(&b->cache);
  free(b);
}

static ember_bpe *bpe_new(void) {
  init_byte_map();
  ember_bpe *b = calloc(1, sizeof *b);
  if (!b) ember_set_error("BPE: out of memory");
  return b;
}

/* After the tokens are in tok[0..n): the ids table, raw bytes, byte
   tokens and <|endoftext|>.  fn and file name the caller in messages. */
static int finish_vocab(ember_bpe *b, const char *fn, const char *file) {
  b->raw = calloc((size_t)b->n, sizeof *b->raw);
  b->rawlen = calloc((size_t)b->n, sizeof *b->rawlen);
  if (!b->raw || !b->rawlen || hmap_init(&b->ids, (size_t)b->n, 0) < 0)
    return ember_set_error("%s: out of memory", fn);
  for (int i = 0; i < 256; i++) b->byte_id[i] = -1;
  b->eot = -1;
  for (int64_t id = 0; id < b->n; id++) {
    const char *t = b->tok[id];
    size_t n = strlen(t);
    int64_t *v = hmap_put(&b->ids, t, n, 0, id);
    if (!v) return ember_set_error("%s: out of memory", fn);
    if (*v != id)
      return ember_set_error("%s: '%s': the token '%s' appears twice", fn,
                             file, t);
    /* the bytes: each character is one byte by bytes_to_unicode; a token
       with other characters (a special token) stands for its own text */
    char *r = malloc(n + 1);
    if (!r) return ember_set_error("%s: out of memory", fn);
    size_t k = 0, i = 0;
    while (i < n) {
      size_t len = ember_utf8_seq((const unsigned char *)t + i, n - i);
      unsigned cp = len ? get_utf8((const unsigned char *)t + i, len) : 0xFFFFu;
      if (!len || cp >= 324 || cp_byte[cp] < 0) break;
      r[k++] = (char)cp_byte[cp];
      i += len;
    }
    if (i < n) { memcpy(r, t, n); k = n; }
    else if (k == 1 && b->byte_id[(unsigned char)r[0]] < 0)
      b->byte_id[(unsigned char)r[0]] = (int32_t)id;
    b->raw[id] = r;
    b->rawlen[id] = k;
    if (strcmp(t, EOT) == 0) b->eot = id;
  }
  for (int c = 0; c < 256; c++)
    if (b->byte_id[c] < 0) {
      char s[8];
      s[put_utf8(s, byte_cp[c])] = 0;
      return ember_set_error("%s: '%s': the vocabulary lacks the token of "
                             "byte 0x%02X ('%s'); a byte-level BPE needs all "
                             "256", fn, file, c, s);
    }
  return 0;
}

/* Record merge (a, b) -> m as the next rank; 1 when (a, b) was already a
   merge (its first rank stays). */
static int add_merge(ember_bpe *b, int32_t x, int32_t y, int32_t m,
                     size_t *cap) {
  int64_t *v = hmap_put(&b->ranks, NULL, 0, (uint64_t)x << 32 | (uint32_t)y,
                        b->nmerges);
  if (!v) return -1;
  if (*v != b->nmerges) return 1;
  if ((size_t)b->nmerges == *cap) {
    *cap = *cap ? *cap * 2 : 1024;
    int32_t (*nm)[2] = realloc(b->merges, *cap * sizeof *nm);
    if (!nm) return -1;
    b->merges = nm;
    int32_t *nr = realloc(b->merged, *cap * sizeof *nr);
    if (!nr) return -1;
    b->merged = nr;
  }
  b->merges[b->nmerges][0] = x;
  b->merges[b->nmerges][1] = y;
  b->merged[b->nmerges++] = m;
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Loading vocab.json and merges.txt
** ======================================================================= */

/* The whole file, NUL-terminated (*n without the NUL). */
static char *read_file(const char *fn, const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return ember_set_error("%s: cannot open '%s': %s", fn, path,
                           strerror(errno)), NULL;
  size_t cap = 1 << 16, len = 0;
  char *s = malloc(cap);
  while (s) {
    len += fread(s + len, 1, cap - len - 1, f);
    if (len < cap - 1) break;
    char *t = realloc(s, cap *= 2);
    if (!t) { free(s); s = NULL; }
    else s = t;
  }
  int bad = ferror(f);
  fclose(f);
  if (!s) return ember_set_error("%s: out of memory reading '%s'", fn, path), NULL;
  if (bad) {
    free(s);
    return ember_set_error("%s: cannot read '%s'", fn, path), NULL;
  }
  s[len] = 0;
  *n = len;
  return s;
}

typedef struct {
  const char *s, *file;
  size_t n, pos;
} vjson;

static void vj_ws(vjson *j) {
  while (j->pos < j->n && strchr(" \t\r\n", j->s[j->pos]) && j->s[j->pos])
    j->pos++;
}

static int vj_error(vjson *j, const char *what) {
  return ember_set_error("BPE: '%s' is not a vocabulary (a JSON object of "
                         "token: id): %s at byte %zu", j->file, what, j->pos + 1);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 32;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int vj_hex4(vjson *j, size_t at, unsigned *cp) {
  if (at + 4 > j->n) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval((unsigned char)j->s[at + i]);
    if (h < 0) return -1;
    v = v << 4 | (unsigned)h;
  }
  *cp = v;
  return 0;
}

/* A JSON string at pos, decoded into out (which has room: a decoded
   string is never longer than its JSON form). */
static int vj_string(vjson *j, char *out, size_t *len) {
  if (j->pos >= j->n || j->s[j->pos] != '"') return vj_error(j, "expected a string");
  j->pos++;
  size_t k = 0;
  for (;;) {
    if (j->pos >= j->n) return vj_error(j, "unterminated string");
    unsigned char c = (unsigned char)j->s[j->pos];
    if (c == '"') { j->pos++; break; }
    if (c < 0x20) return vj_error(j, "control character in a string");
    if (c != '\\') {
      size_t l = ember_utf8_seq((const unsigned char *)j->s + j->pos, j->n - j->pos);
      if (!l) return vj_error(j, "invalid UTF-8");
      memcpy(out + k, j->s + j->pos, l);
      k += l;
      j->pos += l;
      continue;
    }
    if (j->pos + 1 >= j->n) return vj_error(j, "unterminated string");
    char e = j->s[j->pos + 1];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *p = e ? strchr(from, e) : NULL;
    if (p) { out[k++] = to[p - from]; j->pos += 2; continue; }
    unsigned cp, lo;
    if (e != 'u' || vj_hex4(j, j->pos + 2, &cp) < 0)
      return vj_error(j, "bad escape in a string");
    j->pos += 6;
    if (cp >= 0xD800 && cp < 0xDC00) {
      if (j->pos + 1 >= j->n || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u' ||
          vj_hex4(j, j->pos + 2, &lo) < 0 || lo < 0xDC00 || lo >= 0xE000)
        return vj_error(j, "unpaired surrogate in a string");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      j->pos += 6;
    } else if (cp >= 0xDC00 && cp < 0xE000) {
      return vj_error(j, "unpaired surrogate in a string");
    }
    k += put_utf8(out + k, cp);
  }
  out[k] = 0;
  *len = k;
  return 0;
}

/* vocab.json: {"token": id, ...}, the ids 0..n-1 each once. */
static int load_vocab(ember_bpe *b, const char *path) {
  size_t n;
  char *s = read_file("BPE", path, &n);
  if (!s) return -1;
  vjson j = {s, path, n, 0};
  int rc = 0;
  size_t cap = 0;
  char *buf = malloc(n + 1);
  if (!buf) { free(s); return ember_set_error("BPE: out of memory"); }
  vj_ws(&j);
  if (j.pos >= n || s[j.pos] != '{') { rc = vj_error(&j, "expected '{'"); goto done; }
  j.pos++;
  vj_ws(&j);
  if (j.pos < n && s[j.pos] == '}') {
    rc = ember_set_error("BPE: '%s': the vocabulary is empty", path);
    goto done;
  }
  for (;;) {
    size_t len = 0;
    vj_ws(&j);
    if ((rc = vj_string(&j, buf, &len)) < 0) goto done;
    if (len != strlen(buf)) {
      rc = vj_error(&j, "a token contains a zero character");
      goto done;
    }
    vj_ws(&j);
    if (j.pos >= n || s[j.pos] != ':') { rc = vj_error(&j, "expected ':'"); goto done; }
    j.pos++;
    vj_ws(&j);
    int64_t id = 0;
    size_t start = j.pos;
    while (j.pos < n && s[j.pos] >= '0' && s[j.pos] <= '9' && id < (1 << 30))
      id = id * 10 + (s[j.pos++] - '0');
    if (j.pos == start || (j.pos < n && strchr(".eE-0123456789", s[j.pos]) && s[j.pos])) {
      j.pos = start;
      rc = ember_set_error("BPE: '%s': the id of token '%s' must be an "
                           "integer from 0, at byte %zu", path, buf, start + 1);
      goto done;
    }
    /* every id from 0 up must have its entry, and an entry ("a":0,) takes
       five bytes at least: a larger id cannot be valid, and must not size
       the table (a hostile file would ask for gigabytes) */
    if (id >= (int64_t)(n / 5) + 1) {
      rc = ember_set_error("BPE: '%s': the id %lld of token '%s' is larger than a "
                           "vocabulary of %zu bytes can number", path, (long long)id, buf, n);
      goto done;
    }
    if (id >= b->n) {   /* tok grows to hold the largest id seen */
      if ((size_t)id >= cap) {
        size_t nc = cap ? cap : 1024;
        while (nc <= (size_t)id) nc *= 2;
        char **t = realloc(b->tok, nc * sizeof *t);
        if (!t) { rc = ember_set_error("BPE: out of memory"); goto done; }
        memset(t + cap, 0, (nc - cap) * sizeof *t);
        b->tok = t;
        cap = nc;
      }
      b->n = id + 1;
    }
    if (b->tok[id]) {
      rc = ember_set_error("BPE: '%s': id %lld is given to both '%s' and '%s'",
                           path, (long long)id, b->tok[id], buf);
      goto done;
    }
    if (!(b->tok[id] = strdup(buf))) { rc = ember_set_error("BPE: out of memory"); goto done; }
    vj_ws(&j);
    if (j.pos < n && s[j.pos] == ',') { j.pos++; continue; }
    if (j.pos < n && s[j.pos] == '}') { j.pos++; break; }
    rc = vj_error(&j, "expected ',' or '}'");
    goto done;
  }
  vj_ws(&j);
  if (j.pos < n) { rc = vj_error(&j, "text after the object"); goto done; }
  for (int64_t i = 0; i < b->n; i++)
    if (!b->tok[i]) {
      rc = ember_set_error("BPE: '%s': no token has id %lld (the ids must "
                           "be 0..%lld, each once)", path, (long long)i,
                           (long long)b->n - 1);
      goto done;
    }
  rc = finish_vocab(b, "BPE", path);
done:
  free(buf);
  free(s);
  return rc;
}

/* merges.txt: an optional "#version" line, then "left right" per line in
   rank order; both parts and their concatenation must be tokens. */
static int load_merges(ember_bpe *b, const char *path) {
  size_t n;
  char *s = read_file("BPE", path, &n);
  if (!s) return -1;
  size_t cap = 0;
  int rc = hmap_init(&b->ranks, 1024, 1) < 0 ? ember_set_error("BPE: out of memory") : 0;
  char *line = s, *cat = malloc(n + 1);
  if (!cat) rc = ember_set_error("BPE: out of memory");
  for (long lineno = 1; rc == 0 && line < s + n; lineno++) {
    char *end = memchr(line, '\n', (size_t)(s + n - line));
    if (!end) end = s + n;
    size_t len = (size_t)(end - line);
    if (len && line[len - 1] == '\r') len--;
    char *next = end + 1;
    if (len == 0 || (lineno == 1 && line[0] == '#')) { line = next; continue; }
    char *sp = memchr(line, ' ', len);
    if (!sp || sp == line || sp == line + len - 1 ||
        memchr(sp + 1, ' ', len - (size_t)(sp + 1 - line))) {
      rc = ember_set_error("BPE: '%s' line %ld: expected two tokens separated "
                           "by one space, got '%.*s'", path, lineno,
                           (int)(len > 60 ? 60 : len), line);
      break;
    }
    size_t la = (size_t)(sp - line), lb = len - la - 1;
    int64_t a = hmap_get(&b->ids, line, la, 0), c = hmap_get(&b->ids, sp + 1, lb, 0);
    memcpy(cat, line, la);
    memcpy(cat + la, sp + 1, lb);
    int64_t m = hmap_get(&b->ids, cat, la + lb, 0);
    if (a < 0 || c < 0 || m < 0) {
      int which = a < 0 ? 0 : c < 0 ? 1 : 2;
      rc = ember_set_error("BPE: '%s' line %ld: the merge '%.*s' uses %s "
                           "'%.*s', which is not in the vocabulary", path,
                           lineno, (int)len, line,
                           which == 2 ? "the result" : "the token",
                           which == 0 ? (int)la : which == 1 ? (int)lb : (int)(la + lb),
                           which == 0 ? line : which == 1 ? sp + 1 : cat);
      break;
    }
    if (add_merge(b, (int32_t)a, (int32_t)c, (int32_t)m, &cap) < 0)
      rc = ember_set_error("BPE: out of memory");
    line = next;
  }
  free(cat);
  free(s);
  return rc;
}

static int init_cache(ember_bpe *b) {
  return hmap_init(&b->cache, 4096, 0);
}

ember_bpe *ember_bpe_load(const char *vocab_path, const char *merges_path) {
  ember_bpe *b = bpe_new();
  if (!b) return NULL;
  if (load_vocab(b, vocab_path) < 0 || load_merges(b, merges_path) < 0) {
    ember_bpe_free(b);
    return NULL;
  }
  if (init_cache(b) < 0) {
    ember_bpe_free(b);
    return ember_set_error("BPE: out of memory"), NULL;
  }
  return b;
}

int64_t ember_bpe_vocab_size(const ember_bpe *b) { return b->n; }
int64_t ember_bpe_merge_count(const ember_bpe *b) { return b->nmerges; }

/* }====================================================================== */

/* {======================================================================
** Pre-tokenising: GPT-2's pattern by hand
** ======================================================================= */

enum { C_OTHER, C_LETTER, C_NUMBER, C_SPACE };

static int in_ranges(const bpe_range *r, size_t n, unsigned cp) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < r[mid].lo) hi = mid;
    else if (cp > r[mid].hi) lo = mid + 1;
    else return 1;
  }
  return 0;
}

#define NRANGES(t) (sizeof t / sizeof t[0])

/* The class of the character at s[i] and its length (an invalid byte is
   one character of class "other"). */
static int char_class(const unsigned char *s, size_t n, size_t i, size_t *len) {
  unsigned char c = s[i];
  if (c < 0x80) {
    *len = 1;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return C_LETTER;
    if (c >= '0' && c <= '9') return C_NUMBER;
    if (c == ' ' || (c >= 9 && c <= 13)) return C_SPACE;
    return C_OTHER;
  }
  size_t l = ember_utf8_seq(s + i, n - i);
  if (!l) { *len = 1; return C_OTHER; }
  *len = l;
  unsigned cp = get_utf8(s + i, l);
  if (in_ranges(bpe_letters, NRANGES(bpe_letters), cp)) return C_LETTER;
  if (in_ranges(bpe_numbers, NRANGES(bpe_numbers), cp)) return C_NUMBER;
  if (in_ranges(bpe_spaces, NRANGES(bpe_spaces), cp)) return C_SPACE;
  return C_OTHER;
}

/* The end of a run of characters of class cls from i (exclusive of what
   follows); *last gets the start of the run's last character. */
static size_t run_end(const unsigned char *s, size_t n, size_t i, int cls,
                      size_t *last) {
  size_t len;
  *last = i;
  while (i < n && char_class(s, n, i, &len) == cls) { *last = i; i += len; }
  return i;
}

/* The end of the piece that starts at i < n. */
static size_t next_piece(const unsigned char *s, size_t n, size_t i) {
  size_t len, last;
  if (s[i] == '\'' && i + 1 < n) {   /* 's 't 're 've 'm 'll 'd */
    unsigned char c = s[i + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
    if (i + 2 < n && ((c == 'r' && s[i + 2] == 'e') || (c == 'v' && s[i + 2] == 'e') ||
                      (c == 'l' && s[i + 2] == 'l')))
      return i + 3;
  }
  int cls = char_class(s, n, i, &len);
  size_t j = i;
  if (s[i] == ' ' && i + 1 < n) {      /* " ?" before a letter/number/other run */
    int next = char_class(s, n, i + 1, &len);
    if (next != C_SPACE) { j = i + 1; cls = next; }
  }
  if (cls != C_SPACE) return run_end(s, n, j, cls, &last);
  /* \s+(?!\S) takes the run but its last character when a non-space
     follows (that one goes with the next piece); \s+ takes one */
  size_t e = run_end(s, n, i, C_SPACE, &last);
  return e < n && last > i ? last : e;
}

/* }====================================================================== */

/* {======================================================================
** Encoding and decoding
** ======================================================================= */

typedef struct { int64_t *p; size_t n, cap; } ids_buf;

static int ids_push(ids_buf *o, int64_t v) {
  if (o->n == o->cap) {
    size_t nc = o->cap ? o->cap * 2 : 256;
    int64_t *np = realloc(o->p, nc * sizeof *np);
    if (!np) return -1;
    o->p = np;
    o->cap = nc;
  }
  o->p[o->n++] = v;
  return 0;
}

/* The tokens of one piece into sym (room for n), merged in rank order;
   returns how many. */
static size_t bpe_word(const ember_bpe *b, const unsigned char *w, size_t n,
                       int32_t *sym) {
  for (size_t i = 0; i < n; i++) sym[i] = b->byte_id[w[i]];
  while (n > 1) {
    int64_t best = -1;
    for (size_t i = 0; i + 1 < n; i++) {
      int64_t r = hmap_get(&b->ranks, NULL, 0, (uint64_t)sym[i] << 32 | (uint32_t)sym[i + 1]);
      if (r >= 0 && (best < 0 || r < best)) best = r;
    }
    if (best < 0) break;
    int32_t x = b->merges[best][0], y = b->merges[best][1], m = b->merged[best];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (i + 1 < n && sym[i] == x && sym[i + 1] == y) { sym[k++] = m; i++; }
      else sym[k++] = sym[i];
    }
    n = k;
  }
  return n;
}

/* Encode one piece through the cache. */
static int encode_piece(ember_bpe *b, const unsigned char *w, size_t n,
                        ids_buf *o) {
  int64_t off = hmap_get(&b->cache, (const char *)w, n, 0);
  if (off < 0) {
    if (b->cache.n > (1u << 20)) {   /* bound the memory: start afresh */
      hmap_free(&b->cache);
      b->cache_n = 0;
      if (init_cache(b) < 0) return -1;
    }
    if (b->cache_n + n + 1 > b->cache_cap) {
      size_t nc = b->cache_cap ? b->cache_cap : 1 << 16;
      while (nc < b->cache_n + n + 1) nc *= 2;
      int32_t *np = realloc(b->cache_ids, nc * sizeof *np);
      if (!np) return -1;
      b->cache_ids = np;
      b->cache_cap = nc;
    }
    int32_t *sym = b->cache_ids + b->cache_n + 1;
    size_t k = bpe_word(b, w, n, sym);
    sym[-1] = (int32_t)k;
    off = (int64_t)b->cache_n;
    int64_t *v = hmap_put(&b->cache, (const char *)w, n, 0, off);
    if (!v) return -1;
    b->cache_n += k + 1;
  }
  const int32_t *c = b->cache_ids + off;
  for (int32_t i = 1; i <= c[0]; i++)
    if (ids_push(o, (int64_t)c[i] + 1) < 0) return -1;
  return 0;
}

static int encode_segment(ember_bpe *b, const unsigned char *s, size_t n,
                          ids_buf *o) {
  for (size_t i = 0; i < n;) {
    size_t e = next_piece(s, n, i);
    if (encode_piece(b, s + i, e - i, o) < 0) return -1;
    i = e;
  }
  return 0;
}

/* The first occurrence of the m bytes of p in s (n bytes), or NULL. */
static const unsigned char *find(const unsigned char *s, size_t n,
                                 const char *p, size_t m) {
  for (size_t i = 0; i + m <= n; i++) {
    const unsigned char *h = memchr(s + i, p[0], n - m - i + 1);
    if (!h) return NULL;
    if (memcmp(h, p, m) == 0) return h;
    i = (size_t)(h - s);
  }
  return NULL;
}

int64_t ember_bpe_encode(ember_bpe *b, const char *text, size_t n,
                         int special, int64_t **ids) {
  ids_buf o = {0};
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0, el = strlen(EOT);
  int rc = 0;
  while (rc == 0 && i < n) {
    /* the text is split at <|endoftext|> first, as Hugging Face's
       tokenizers split at added tokens; each part is pre-tokenised alone */
    const unsigned char *hit = special && b->eot >= 0
        ? find(s + i, n - i, EOT, el) : NULL;
    size_t end = hit ? (size_t)(hit - s) : n;
    rc = encode_segment(b, s + i, end - i, &o);
    if (rc == 0 && hit) rc = ids_push(&o, b->eot + 1);
    i = hit ? end + el : n;
  }
  if (rc < 0 || (!o.p && !(o.p = malloc(sizeof *o.p)))) {
    free(o.p);
    return ember_set_error("encode: out of memory");
  }
  *ids = o.p;
  return (int64_t)o.n;
}

char *ember_bpe_decode(const ember_bpe *b, const int64_t *ids, int64_t n,
                       size_t *len) {
  size_t total = 0;
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 1 || ids[i] > b->n)
      return ember_set_error("decode: id %lld (at %lld) is out of range "
                             "1..%lld", (long long)ids[i], (long long)i + 1,
                             (long long)b->n), NULL;
    total += b->rawlen[ids[i] - 1];
  }
  char *out = malloc(total + 1);
  if (!out) return ember_set_error("decode: out of memory"), NULL;
  size_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    memcpy(out + k, b->raw[ids[i] - 1], b->rawlen[ids[i] - 1]);
    k += b->rawlen[ids[i] - 1];
  }
  out[k] = 0;
  *len = k;
  return out;
}

/* }====================================================================== */

/* {======================================================================
** Training: Hugging Face's BpeTrainer
** ======================================================================= */

typedef struct {
  int32_t *sym;
  size_t n;
  int64_t count;
} tword;

/* pair count += d */
static int pair_add(hmap *pc, int32_t a, int32_t c, int64_t d) {
  int64_t *v = hmap_put(pc, NULL, 0, (uint64_t)a << 32 | (uint32_t)c, 0);
  if (!v) return -1;
  *v += d;
  return 0;
}

/* Merge (x, y) -> m in w left to right, the pair counts following (the
   neighbours' pairs change as in Hugging Face's Word::merge). */
static int merge_word(tword *w, int32_t x, int32_t y, int32_t m, hmap *pc) {
  size_t k = 0;
  int64_t c = w->count;
  for (size_t i = 0; i < w->n; i++) {
    if (i + 1 < w->n && w->sym[i] == x && w->sym[i + 1] == y) {
      if (k > 0 && (pair_add(pc, w->sym[k - 1], x, -c) < 0 ||
                    pair_add(pc, w->sym[k - 1], m, c) < 0))
        return -1;
      if (i + 2 < w->n && (pair_add(pc, y, w->sym[i + 2], -c) < 0 ||
                           pair_add(pc, m, w->sym[i + 2], c) < 0))
        return -1;
      w->sym[k++] = m;
      i++;
    } else {
      w->sym[k++] = w->sym[i];
    }
  }
  w->n = k;
  return 0;
}

/* The words of text with their counts. */
static int count_words(ember_bpe *b, const unsigned char *s, size_t n,
                       tword **words, size_t *nw) {
  hmap seen;
  if (hmap_init(&seen, 4096, 0) < 0) return -1;
  size_t cap = 0;
  *words = NULL;
  *nw = 0;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0;) {
    size_t e = next_piece(s, n, i);
    int64_t *v = hmap_put(&seen, (const char *)s + i, e - i, 0, (int64_t)*nw);
    if (!v) { rc = -1; break; }
    if (*v == (int64_t)*nw) {
      if (*nw == cap) {
        cap = cap ? cap * 2 : 1024;
        tword *nwp = realloc(*words, cap * sizeof *nwp);
        if (!nwp) { rc = -1; break; }
        *words = nwp;
      }
      tword *w = &(*words)[(*nw)++];
      w->sym = malloc((e - i) * sizeof *w->sym);
      w->n = e - i;
      w->count = 0;
      if (!w->sym) { rc = -1; (*nw)--; break; }
      for (size_t k = 0; k < e - i; k++) w->sym[k] = b->byte_id[s[i + k]];
    }
    (*words)[*v].count++;
    i = e;
  }
  hmap_free(&seen);
  return rc;
}

/* The 256 byte tokens in GPT-2's order (by the character each stands
   for, as Hugging Face sorts its alphabet). */
static int byte_tokens(ember_bpe *b, size_t cap) {
  b->tok = calloc(cap, sizeof *b->tok);
  if (!b->tok) return -1;
  for (int c = 0; c < 256; c++) {
    char s[8];
    s[put_utf8(s, byte_cp[c])] = 0;
    size_t id = 0;   /* the rank of byte_cp[c] among the 256 */
    for (int d = 0; d < 256; d++) id += byte_cp[d] < byte_cp[c];
    if (!(b->tok[id] = strdup(s))) return -1;
  }
  b->n = 256;
  return 0;
}

static int train_loop(ember_bpe *b, tword *words, size_t nw, int64_t vocab,
                      int64_t min_freq, size_t *mcap) {
  hmap pc, strs;
  if (hmap_init(&pc, 1 << 16, 1) < 0) return -1;
  if (hmap_init(&strs, (size_t)vocab, 0) < 0) { hmap_free(&pc); return -1; }
  int rc = 0;
  for (int64_t i = 0; i < b->n && rc == 0; i++)
    if (!hmap_put(&strs, b->tok[i], strlen(b->tok[i]), 0, i)) rc = -1;
  for (size_t k = 0; k < nw && rc == 0; k++)
    for (size_t i = 0; i + 1 < words[k].n && rc == 0; i++)
      rc = pair_add(&pc, words[k].sym[i], words[k].sym[i + 1], words[k].count);
  while (rc == 0 && b->n < vocab) {
    /* the most frequent pair; among equal counts the smallest (left,
       right) ids, as Hugging Face's heap orders its merges */
    int64_t best = 0;
    uint64_t key = 0;
    for (size_t i = 0; i < pc.cap; i++)
      if (pc.ikeys[i] != UINT64_MAX && pc.vals[i] > 0 &&
          (pc.vals[i] > best || (pc.vals[i] == best && pc.ikeys[i] < key))) {
        best = pc.vals[i];
        key = pc.ikeys[i];
      }
    if (best < 1 || best < min_freq) break;
    int32_t x = (int32_t)(key >> 32), y = (int32_t)(uint32_t)key;
    size_t la = strlen(b->tok[x]), lb = strlen(b->tok[y]);
    char *cat = malloc(la + lb + 1);
    if (!cat) { rc = -1; break; }
    memcpy(cat, b->tok[x], la);
    memcpy(cat + la, b->tok[y], lb + 1);
    /* a string reached by another pair before keeps its id (Hugging
       Face's rule), so the merges may outnumber the new tokens */
    int64_t *id = hmap_put(&strs, cat, la + lb, 0, b->n);
    if (!id) { free(cat); rc = -1; break; }
    if (*id == b->n) b->tok[b->n++] = cat;
    else free(cat);
    int32_t m = (int32_t)*id;
    if (add_merge(b, x, y, m, mcap) < 0) { rc = -1; break; }
    for (size_t k = 0; k < nw && rc == 0; k++) {
      const tword *w = &words[k];
      for (size_t i = 0; i + 1 < w->n; i++)
        if (w->sym[i] == x && w->sym[i + 1] == y) {
          rc = merge_word(&words[k], x, y, m, &pc);
          break;
        }
    }
    /* the merged pair is done: Hugging Face never queues it again */
    int64_t *v = hmap_put(&pc, NULL, 0, key, 0);
    if (v) *v = 0;
  }
  hmap_free(&pc);
  hmap_free(&strs);
  return rc;
}

ember_bpe *ember_bpe_train(const char *text, size_t n, int64_t vocab_size,
                           int64_t min_frequency) {
  if (vocab_size < 256 || vocab_size > (1 << 22))
    return ember_set_error("BPE.train: vocab_size must be from 256 (the "
                           "bytes) to %d, got %lld", 1 << 22,
                           (long long)vocab_size), NULL;
  ember_bpe *b = bpe_new();
  if (!b) return NULL;
  tword *words = NULL;
  size_t nw = 0, mcap = 0;
  int rc = byte_tokens(b, (size_t)vocab_size + 1);
  if (rc == 0) {
    for (int c = 0; c < 256; c++) b->byte_id[c] = -1;
    for (int64_t id = 0; id < 256; id++) {   /* byte_id before finish_vocab */
      size_t len = strlen(b->tok[id]);
      unsigned cp = get_utf8((const unsigned char *)b->tok[id], len);
      b->byte_id[cp_byte[cp]] = (int32_t)id;
    }
    rc = hmap_init(&b->ranks, 1024, 1);
  }
  if (rc == 0) rc = count_words(b, (const unsigned char *)text, n, &words, &nw);
  if (rc == 0) rc = train_loop(b, words, nw, vocab_size, min_frequency, &mcap);
  for (size_t k = 0; k < nw; k++) free(words[k].sym);
  free(words);
  if (rc == 0 && !(b->tok[b->n] = strdup(EOT))) rc = -1;
  if (rc == 0) b->n++;   /* GPT-2 puts its special token last */
  if (rc < 0) ember_set_error("BPE.train: out of memory");
  if (rc == 0) rc = finish_vocab(b, "BPE.train", "(trained)");
  if (rc == 0 && init_cache(b) < 0) rc = ember_set_error("BPE.train: out of memory");
  if (rc < 0) { ember_bpe_free(b); return NULL; }
  return b;
}

/* }====================================================================== */

/* {======================================================================
** Saving
** ======================================================================= */

/* Write data to dir/name through a temporary file renamed over it. */
static int write_atomic(const char *dir, const char *name, const char *data,
                        size_t n) {
  size_t plen = strlen(dir) + strlen(name) + 2;
  char *path = malloc(plen), *tmp = malloc(plen + 32);
  if (!path || !tmp) {
    free(path); free(tmp);
    return ember_set_error("save: out of memory");
  }
  snprintf(path, plen, "%s/%s", dir, name);
  snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
  int rc = 0;
  FILE *f = fopen(tmp, "wb");
  if (!f) rc = ember_set_error("save: cannot write '%s': %s", tmp, strerror(errno));
  else {
    int bad = fwrite(data, 1, n, f) != n;
    bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
    int err = errno;
    bad |= fclose(f) != 0;
    if (bad) rc = ember_set_error("save: cannot write '%s': %s", tmp, strerror(err));
    else if (rename(tmp, path) < 0)
      rc = ember_set_error("save: cannot replace '%s': %s", path, strerror(errno));
    if (rc < 0) unlink(tmp);
  }
  free(path);
  free(tmp);
  return rc;
}

typedef struct { char *p; size_t n, cap; int oom; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->n + n + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) { b->oom = 1; return; }
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* A token as a JSON string: quotes, backslashes and control characters
   escaped, other text as it is (UTF-8, as Hugging Face writes it). */
static void sb_json(sbuf *b, const char *s) {
  sb_add(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char e[8];
    if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; sb_add(b, e, 2); }
    else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); sb_add(b, e, 6); }
    else sb_add(b, s, 1);
  }
  sb_add(b, "\"", 1);
}

int ember_bpe_save(const ember_bpe *b, const char *dir) {
  struct stat st;
  if (stat(dir, &st) < 0 && mkdir(dir, 0777) < 0)
    return ember_set_error("save: cannot make the folder '%s': %s", dir,
                           strerror(errno));
  sbuf v = {0}, m = {0};
  sb_str(&v, "{");
  for (int64_t i = 0; i < b->n; i++) {
    char num[32];
    if (i) sb_str(&v, ", ");
    sb_json(&v, b->tok[i]);
    snprintf(num, sizeof num, ": %lld", (long long)i);
    sb_str(&v, num);
  }
  sb_str(&v, "}\n");
  sb_str(&m, "#version: 0.2\n");
  for (int64_t r = 0; r < b->nmerges; r++) {
    sb_str(&m, b->tok[b->merges[r][0]]);
    sb_str(&m, " ");
    sb_str(&m, b->tok[b->merges[r][1]]);
    sb_str(&m, "\n");
  }
  int rc = v.oom || m.oom ? ember_set_error("save: out of memory") : 0;
  if (rc == 0) rc = write_atomic(dir, "vocab.json", v.p, v.n);
  if (rc == 0) rc = write_atomic(dir, "merges.txt", m.p, m.n);
  free(v.p);
  free(m.p);
  return rc;
}

/* }====================================================================== */
