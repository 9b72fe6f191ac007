/*
** json.h -- the strict JSON reader behind the safetensors header
** (internal; core/json.c).
**
** A reader, not a tree builder: the caller walks the text as its schema
** expects, value by value, so nothing recurses and nesting cannot exhaust
** the stack.  An object is walked by ember_json_object, which calls back
** once per member with the decoded key and the position at its value:
**
**     static int member(ember_json *j, const char *key, void *ud) {
**       if (ember_json_peek(j) != '"')
**         return ember_json_value_error(j, "'%s' must be a string, got %s",
**                                       key, ember_json_kind(j));
**       return ember_json_string(j, &value);     // consume the value
**     }
**     ...
**     if (ember_json_peek(j) != '{') return ...;     // the caller's message
**     if (ember_json_object(j, member, ud) < 0) return -1;
**
** Every function returns 0 on success and -1 with the error set
** (ember_set_error).  Messages read "load: '<file>': ..."; a syntax error
** says where: "header is not valid JSON at byte 12 of the header: ...".
**
** Decoded strings live in a pool the caller allocates with at least n + 1
** bytes for a text of n bytes (a decoded string plus its NUL is never
** longer than its JSON form with the quotes), so they stay valid as long
** as the pool does.
*/
#ifndef EMBER_JSON_H
#define EMBER_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef struct ember_json {
  const char *file;            /* the path, for messages */
  const unsigned char *s;      /* the text (not NUL-terminated) */
  size_t n, pos;               /* its length; the read position */
  char *pool;                  /* decoded strings, NUL-terminated */
  size_t pool_used;
} ember_json;

/* The next byte, or -1 at the end of the text. */
static inline int ember_json_peek(const ember_json *j) {
  return j->pos < j->n ? j->s[j->pos] : -1;
}

/* Skip JSON whitespace (space, tab, newline, carriage return). */
static inline void ember_json_skip_ws(ember_json *j) {
  while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                           j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
    j->pos++;
}

#if defined(__GNUC__)
#define EMBER_JSON_PRINTF __attribute__((format(printf, 2, 3)))
#else
#define EMBER_JSON_PRINTF
#endif

/* An error about the content: "load: '<file>': " and the message. */
int ember_json_error(ember_json *j, const char *fmt, ...) EMBER_JSON_PRINTF;
/* The text is not JSON at the current position; `what` says why. */
int ember_json_syntax_error(ember_json *j, const char *what);
/* A value of the wrong kind: an error about the schema (fmt), unless no
   JSON value stands here at all (then a syntax error). */
int ember_json_value_error(ember_json *j, const char *fmt, ...)
    EMBER_JSON_PRINTF;

/* What kind of value starts here, for messages ("an array", "null");
   NULL when no value can start here. */
const char *ember_json_kind(const ember_json *j);
/* Skip whitespace, then consume the byte c, else a syntax error `what`. */
int ember_json_expect(ember_json *j, int c, const char *what);
/* A string (after whitespace), decoded into the pool: *out. */
int ember_json_string(ember_json *j, const char **out);
/* A number (after whitespace), strictly by the grammar.  *is_int is set
   when it is an integer without fraction or exponent that fits in int64
   (*v then holds it); its text, cut at 40 bytes, goes to txt. */
int ember_json_number(ember_json *j, int64_t *v, int *is_int, char *txt,
                      size_t txtn);

/* One member of an object: its decoded key, the text at its value (after
   whitespace).  It consumes the value; a negative result (with the error
   set) stops the walk. */
typedef int (*ember_json_member)(ember_json *j, const char *key, void *ud);
/* The object at the current position ('{', which the caller checked so
   as to word its own error), member by member, through fn. */
int ember_json_object(ember_json *j, ember_json_member fn, void *ud);

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if the
   bytes there are not one. */
size_t ember_utf8_seq(const unsigned char *s, size_t n);
/* Is the C string s valid UTF-8? */
int ember_utf8_valid(const char *s);

#endif
