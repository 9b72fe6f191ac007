/*
** json.c -- the strict JSON reader behind the safetensors header.
**
** See json.h for how a caller walks a text.  Strict by RFC 8259: no
** comments, no trailing commas, no leading zeros or '+', only the six
** whitespace bytes, valid UTF-8 everywhere, no lone surrogates; strings
** holding NUL are refused too, as C strings could not hold them.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "include/ember.h"
#include "json.h"

/* {======================================================================
** UTF-8 (JSON text must be valid UTF-8, and so must names we write)
** ======================================================================= */

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if the
   bytes there are not one: overlong forms, surrogates and code points
   past U+10FFFF are invalid. */
size_t ember_utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xbf;     /* range of the second byte */
  if (c >= 0xc2 && c <= 0xdf) len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;        /* overlong */
    if (c == 0xed) hi = 0x9f;        /* surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;        /* overlong */
    if (c == 0xf4) hi = 0x8f;        /* past U+10FFFF */
  } else return 0;
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return len;
}

int ember_utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  while (n > 0) {
    size_t k = ember_utf8_seq(p, n);
    if (!k) return 0;
    p += k;
    n -= k;
  }
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Reading values
** ======================================================================= */

/* Short names inside this file. */
#define peek ember_json_peek
#define skip_ws ember_json_skip_ws
#define syntax_error ember_json_syntax_error

/* An error about the file's content: "load: 'path': " and the message. */
int ember_json_error(ember_json *j, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ember_set_error("load: '%s': %s", j->file, msg);
}

int ember_json_syntax_error(ember_json *j, const char *what) {
  return ember_set_error("load: '%s': header is not valid JSON at byte %zu "
                         "of the header: %s", j->file, j->pos, what);
}

static int has_literal(const ember_json *j, const char *lit) {
  size_t k = strlen(lit);
  return j->n - j->pos >= k && memcmp(j->s + j->pos, lit, k) == 0;
}

/* What kind of JSON value starts here, for messages ("got an array");
   NULL when no value can start here. */
const char *ember_json_kind(const ember_json *j) {
  int c = peek(j);
  switch (c) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't': return has_literal(j, "true") ? "a boolean" : NULL;
    case 'f': return has_literal(j, "false") ? "a boolean" : NULL;
    case 'n': return has_literal(j, "null") ? "null" : NULL;
    default: return c == '-' || (c >= '0' && c <= '9') ? "a number" : NULL;
  }
}

/* A value of the wrong kind: an error about the schema, unless no JSON
   value stands there at all (then the header is not JSON). */
int ember_json_value_error(ember_json *j, const char *fmt, ...) {
  if (peek(j) < 0) return syntax_error(j, "unexpected end of the header");
  if (!ember_json_kind(j)) return syntax_error(j, "expected a JSON value");
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ember_set_error("load: '%s': %s", j->file, msg);
}

int ember_json_expect(ember_json *j, int c, const char *what) {
  skip_ws(j);
  if (peek(j) != c) return syntax_error(j, what);
  j->pos++;
  return 0;
}

static int hex4(ember_json *j, unsigned *out) {
  if (j->n - j->pos < 4) return syntax_error(j, "truncated \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int c = j->s[j->pos + i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return syntax_error(j, "bad hex digit in a \\u escape");
  }
  j->pos += 4;
  *out = v;
  return 0;
}

/* Append code point u as UTF-8 to the pool. */
static void put_utf8(ember_json *j, unsigned u) {
  char *o = j->pool + j->pool_used;
  if (u < 0x80) { o[0] = (char)u; j->pool_used += 1; }
  else if (u < 0x800) {
    o[0] = (char)(0xc0 | (u >> 6));
    o[1] = (char)(0x80 | (u & 0x3f));
    j->pool_used += 2;
  } else if (u < 0x10000) {
    o[0] = (char)(0xe0 | (u >> 12));
    o[1] = (char)(0x80 | ((u >> 6) & 0x3f));
    o[2] = (char)(0x80 | (u & 0x3f));
    j->pool_used += 3;
  } else {
    o[0] = (char)(0xf0 | (u >> 18));
    o[1] = (char)(0x80 | ((u >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((u >> 6) & 0x3f));
    o[3] = (char)(0x80 | (u & 0x3f));
    j->pool_used += 4;
  }
}

/*
** A JSON string at pos, decoded into the pool.  The pool has as many
** bytes as the header: a decoded string plus its NUL is never longer than
** its JSON form with the quotes.  Rejects raw control characters, bad
** escapes, lone surrogates, invalid UTF-8, and NUL characters (C strings
** could not hold them).
*/
int ember_json_string(ember_json *j, const char **out) {
  skip_ws(j);
  if (peek(j) != '"') return syntax_error(j, "expected a string");
  j->pos++;
  const char *start = j->pool + j->pool_used;
  for (;;) {
    if (j->pos >= j->n) return syntax_error(j, "unterminated string");
    unsigned c = j->s[j->pos];
    if (c == '"') { j->pos++; break; }
    if (c < 0x20) return syntax_error(j, "control character in a string");
    if (c == '\\') {
      j->pos++;
      if (j->pos >= j->n) return syntax_error(j, "unterminated string");
      c = j->s[j->pos++];
      unsigned u;
      switch (c) {
        case '"': case '\\': case '/': u = c; break;
        case 'b': u = '\b'; break;
        case 'f': u = '\f'; break;
        case 'n': u = '\n'; break;
        case 'r': u = '\r'; break;
        case 't': u = '\t'; break;
        case 'u':
          if (hex4(j, &u) < 0) return -1;
          if (u >= 0xdc00 && u <= 0xdfff)
            return syntax_error(j, "lone low surrogate in a \\u escape");
          if (u >= 0xd800 && u <= 0xdbff) {       /* needs its low half */
            unsigned lo;
            if (j->n - j->pos < 2 || j->s[j->pos] != '\\' ||
                j->s[j->pos + 1] != 'u')
              return syntax_error(j, "lone high surrogate in a \\u escape");
            j->pos += 2;
            if (hex4(j, &lo) < 0) return -1;
            if (lo < 0xdc00 || lo > 0xdfff)
              return syntax_error(j, "lone high surrogate in a \\u escape");
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
          }
          if (u == 0)
            return syntax_error(j, "NUL character (\\u0000) in a string");
          break;
        default:
          j->pos--;
          return syntax_error(j, "invalid escape in a string");
      }
      put_utf8(j, u);
    } else {
      size_t k = ember_utf8_seq(j->s + j->pos, j->n - j->pos);
      if (!k) return syntax_error(j, "invalid UTF-8 in a string");
      memcpy(j->pool + j->pool_used, j->s + j->pos, k);
      j->pool_used += k;
      j->pos += k;
    }
  }
  j->pool[j->pool_used++] = '\0';
  *out = start;
  return 0;
}

/*
** A JSON number at pos, strictly by the grammar (no leading zeros, no
** '+', digits after '.' and 'e').  *is_int is set when it is an integer
** without fraction or exponent that fits in int64; its text (for
** messages) goes to txt.
*/
int ember_json_number(ember_json *j, int64_t *v, int *is_int, char *txt,
                      size_t txtn) {
  skip_ws(j);
  size_t start = j->pos;
  int neg = 0, fits = 1;
  uint64_t mag = 0;
  if (peek(j) == '-') { neg = 1; j->pos++; }
  int c = peek(j);
  if (c < '0' || c > '9') return syntax_error(j, "expected a number");
  if (c == '0') j->pos++;
  else
    while ((c = peek(j)) >= '0' && c <= '9') {
      unsigned d = (unsigned)(c - '0');
      if (mag > (UINT64_MAX - d) / 10) fits = 0;
      else mag = mag * 10 + d;
      j->pos++;
    }
  int integral = 1;
  if (peek(j) == '.') {
    integral = 0;
    j->pos++;
    if ((c = peek(j)) < '0' || c > '9')
      return syntax_error(j, "expected a digit after '.'");
    while ((c = peek(j)) >= '0' && c <= '9') j->pos++;
  }
  if (peek(j) == 'e' || peek(j) == 'E') {
    integral = 0;
    j->pos++;
    if (peek(j) == '+' || peek(j) == '-') j->pos++;
    if ((c = peek(j)) < '0' || c > '9')
      return syntax_error(j, "expected a digit in the exponent");
    while ((c = peek(j)) >= '0' && c <= '9') j->pos++;
  }
  size_t len = j->pos - start;
  snprintf(txt, txtn, "%.*s%s", (int)(len < 40 ? len : 40),
           (const char *)j->s + start, len > 40 ? "..." : "");
  if (fits && mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
    fits = 0;
  *is_int = integral && fits;
  *v = !*is_int ? 0 : neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                                                            : -(int64_t)mag)
                          : (int64_t)mag;
  return 0;
}

/* The object at the current position, member by member: fn consumes
   each value.  The three objects of a safetensors header (the header,
   each tensor's entry, "__metadata__") are all walked here. */
int ember_json_object(ember_json *j, ember_json_member fn, void *ud) {
  if (peek(j) != '{') return syntax_error(j, "expected an object");
  j->pos++;
  skip_ws(j);
  if (peek(j) == '}') { j->pos++; return 0; }
  for (;;) {
    const char *key;
    if (ember_json_string(j, &key) < 0) return -1;
    if (ember_json_expect(j, ':', "expected ':'") < 0) return -1;
    skip_ws(j);
    if (fn(j, key, ud) < 0) return -1;
    skip_ws(j);
    if (peek(j) == ',') { j->pos++; continue; }
    if (peek(j) == '}') { j->pos++; return 0; }
    return syntax_error(j, "expected ',' or '}' in an object");
  }
}

/* }====================================================================== */
