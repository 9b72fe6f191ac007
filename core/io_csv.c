/*
** io_csv.c -- the numeric fast path of data.csv: a scanner for plain CSV
** records.  It never decides anything the Lua path would decide
** differently: it takes only records it can parse exactly as
** lua/ember/data_csv.lua does (no double quote, the expected field count,
** every wanted field a plain decimal number) and stops at the first other
** one, which the caller then handles with the general code (and its error
** messages).
*/
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

/* Lua's lisspace: the C locale's isspace, without the locale lookup */
static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* See ember.h.  The value is what tonumber gives: an integer-looking token
   that fits in int64 is an integer for Lua (so "-0" is +0.0), any other
   goes through strtod as lua_str2number does. */
int ember_csv_number(const char *s, size_t n, double *out, int64_t *ival) {
  size_t i = 0, start, end;
  int integer = 1, digits = 0;
  while (i < n && is_ws(s[i])) i++;
  start = i;
  if (i < n && (s[i] == '+' || s[i] == '-')) i++;
  while (i < n && is_digit(s[i])) i++, digits++;
  if (i < n && s[i] == '.') {
    integer = 0;
    i++;
    while (i < n && is_digit(s[i])) i++, digits++;
  }
  if (!digits) return 0;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    integer = 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    if (i >= n || !is_digit(s[i])) return 0;
    while (i < n && is_digit(s[i])) i++;
  }
  end = i;
  while (i < n && is_ws(s[i])) i++;
  if (i != n) return 0;
  if (integer) {
    /* Lua's l_str2int: an int64 unless it overflows (then a float) */
    int neg = s[start] == '-';
    uint64_t a = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    size_t k = start + (s[start] == '-' || s[start] == '+');
    for (; k < end; k++) {
      uint64_t d = (uint64_t)(s[k] - '0');
      if (a > (lim - d) / 10) break;
      a = a * 10 + d;
    }
    if (k == end) {
      int64_t v = neg ? (a == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)a) : (int64_t)a;
      *out = (double)v;                    /* tonumber("-0") is the integer 0: +0.0 */
      if (ival) *ival = v;
      return 2;
    }
  }
  /* strtod needs a terminated string: the token is short, copy it */
  char buf[128];
  size_t len = end - start;
  if (len >= sizeof buf) return 0;         /* leave very long ones to Lua */
  memcpy(buf, s + start, len);
  buf[len] = '\0';
  *out = strtod(buf, NULL);
  return 1;
}

int64_t ember_csv_scan(const char *text, size_t len, size_t *pos, int64_t *lines, char sep,
                       int64_t ncol, const int64_t *role, int64_t max_rows, double *out,
                       size_t *target) {
  int64_t rows = 0, nf = 0;
  size_t p = *pos;
  const char *dp = localeconv()->decimal_point;
  if (!dp || strcmp(dp, ".") != 0) return 0;   /* strtod would not read '.' */
  for (int64_t c = 0; c < ncol; c++)
    if (role[c] >= 0) nf++;
  while (p < len && rows < max_rows) {
    const char *nl = memchr(text + p, '\n', len - p);
    size_t e = nl ? (size_t)(nl - text) : len, next = nl ? e + 1 : len;
    size_t stop = e;
    if (stop > p && text[stop - 1] == '\r') stop--;   /* CRLF: one \r goes */
    if (stop == p) {                                   /* a blank line */
      p = next;
      ++*lines;
      continue;
    }
    if (memchr(text + p, '"', stop - p)) break;       /* quotes: Lua's */
    double *row = out + rows * nf;
    size_t f = p;
    int64_t c = 0;
    int ok = 1;
    for (;;) {
      const char *s = memchr(text + f, sep, stop - f);
      size_t fe = s ? (size_t)(s - text) : stop;
      if (c >= ncol) { ok = 0; break; }                /* too many fields */
      if (role[c] >= 0) {
        if (!ember_csv_number(text + f, fe - f, &row[role[c]], NULL)) { ok = 0; break; }
      } else if (role[c] == EMBER_CSV_TARGET) {
        if (fe == f) { ok = 0; break; }              /* an empty target: Lua's error */
        if (target) {
          target[2 * rows] = f;
          target[2 * rows + 1] = fe - f;
        }
      }
      c++;
      if (!s) break;
      f = fe + 1;
    }
    if (!ok || c != ncol) break;
    rows++;
    ++*lines;
    p = next;
  }
  *pos = p;
  return rows;
}
