/*
** ember_main.c -- the `ember` executable: Lua 5.4's stand-alone interpreter
** with the Ember library preloaded.
**
** It behaves as lua.c (options, `arg`, LUA_INIT_5_4/LUA_INIT, exit status,
** messages), with these differences:
**   - after the standard libraries it opens Ember (luaopen_ember) into the
**     global `ember` and package.loaded["ember"]; if that fails, the error
**     is reported and the program exits with status 1;
**   - the banner reads "Ember x.y.z (Lua 5.4.n)  Copyright ...";
**   - on a terminal the REPL edits lines with libedit, keeps a history of at
**     most EMBER_HISTMAX chunks in $EMBER_HISTORY (or ~/.ember_history; an
**     empty $EMBER_HISTORY keeps none), completes names with TAB, and
**     Ctrl-C at the prompt drops the line instead of killing the program;
**   - end of input inside an unfinished chunk reports its syntax error;
**   - results print through ember.repl (lua/ember/repl.lua: tables as
**     tables, several results on labelled lines), the first goes to `_`,
**     a trailing ';' hides them, and 'x = 1; x' prints x.
**
** Completion contract with the bindings: a userdata (a tensor) offers the
** string keys of its metatable's `__methods` table after `t:` or `t.`; a
** value whose metatable has a `__dir` function offers the names it returns
** (nn modules: parameters, buffers, children, fields, methods). The only
** Lua code a TAB runs is `__dir` and, for a part of a chain the raw walk
** cannot reach, the value's `__index`: each under its own lua_pcall with an
** instruction budget, so a TAB never raises through libedit nor hangs.
**
** See Copyright Notice in lua.h for the parts that follow lua.c.
*/

#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "ember_lua.h"


#define EMBER_PROGNAME		"ember"
#define EMBER_PROMPT		"ember> "
#define EMBER_PROMPT2		">> "
#define EMBER_HISTFILE		".ember_history"	/* under $HOME */
#define EMBER_HISTMAX		1000

#define LUA_INIT_VAR		"LUA_INIT"
#define LUA_INITVARVERSION	LUA_INIT_VAR LUA_VERSUFFIX

/* what loadline answers when Ctrl-C dropped the line being typed */
#define LINE_CANCELLED		(-2)


static lua_State *globalL = NULL;

static const char *progname = EMBER_PROGNAME;


/*
** {==================================================================
** Signals
** ===================================================================
*/

/*
** Use 'sigaction' when available; sa_flags = 0 (no SA_RESTART) so that a
** Ctrl-C at the prompt interrupts libedit's read().
*/
static void setsignal (int sig, void (*handler)(int)) {
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);  /* do not mask any signal */
  sigaction(sig, &sa, NULL);
}


/*
** Hook set by signal function to stop the interpreter.
*/
static void lstop (lua_State *L, lua_Debug *ar) {
  (void)ar;  /* unused arg. */
  lua_sethook(L, NULL, 0, 0);  /* reset hook */
  luaL_error(L, "interrupted!");
}


/*
** Function to be called at a C signal while a chunk runs. Because a C
** signal cannot just change a Lua state (as there is no proper
** synchronization), this function only sets a hook that, when called,
** will stop the interpreter. A second Ctrl-C, before the hook runs (say,
** inside a long kernel), kills the program: SIG_DFL is back.
*/
static void laction (int i) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  setsignal(i, SIG_DFL);  /* if another SIGINT happens, terminate process */
  lua_sethook(globalL, lstop, flag, 1);
}


/* set by Ctrl-C while the REPL waits for a line */
static volatile sig_atomic_t prompt_interrupted = 0;

/*
** At the prompt nothing runs that a hook could stop, and losing a session
** of loaded data to a stray Ctrl-C is harsh: the signal only raises a flag,
** and the interrupted read makes readline return NULL.
*/
static void promptaction (int i) {
  (void)i;
  prompt_interrupted = 1;
}

/* }================================================================== */


/*
** {==================================================================
** Messages and protected calls (as lua.c)
** ===================================================================
*/

static void print_usage (const char *badoption) {
  lua_writestringerror("%s: ", progname);
  if (badoption[1] == 'e' || badoption[1] == 'l')
    lua_writestringerror("'%s' needs argument\n", badoption);
  else
    lua_writestringerror("unrecognized option '%s'\n", badoption);
  lua_writestringerror(
  "usage: %s [options] [script [args]]\n"
  "Available options are:\n"
  "  -e stat   execute string 'stat'\n"
  "  -i        enter interactive mode after executing 'script'\n"
  "  -l mod    require library 'mod' into global 'mod'\n"
  "  -l g=mod  require library 'mod' into global 'g'\n"
  "  -v        show version information\n"
  "  -E        ignore environment variables\n"
  "  -W        turn warnings on\n"
  "  --        stop handling options\n"
  "  -         stop handling options and execute stdin\n"
  ,
  progname);
}


/*
** Prints an error message, adding the program name in front of it
** (if present)
*/
static void l_message (const char *pname, const char *msg) {
  if (pname) lua_writestringerror("%s: ", pname);
  if (ember_dist_is_initialized() && ember_dist_world_size() > 1)  /* which rank */
    fprintf(stderr, "rank %d of %d: ", ember_dist_rank() + 1, ember_dist_world_size());
  lua_writestringerror("%s\n", msg);
}


/*
** Check whether 'status' is not OK and, if so, prints the error
** message on the top of the stack.
*/
static int report (lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    l_message(progname, msg);
    lua_pop(L, 1);  /* remove message */
  }
  return status;
}


/*
** Message handler used to run all chunks: an error object that is not a
** string but has a __tostring (a tensor, say) is shown through it;
** strings get a traceback.
*/
static int msghandler (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {  /* is error object not a string? */
    if (luaL_callmeta(L, 1, "__tostring") &&  /* does it have a metamethod */
        lua_type(L, -1) == LUA_TSTRING)  /* that produces a string? */
      return 1;  /* that is the message */
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                               luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);  /* append a standard traceback */
  return 1;  /* return the traceback */
}


/*
** Interface to 'lua_pcall', which sets appropriate message function
** and C-signal handler. Used to run all chunks.
*/
static int docall (lua_State *L, int narg, int nres) {
  int status;
  int base = lua_gettop(L) - narg;  /* function index */
  lua_pushcfunction(L, msghandler);  /* push message handler */
  lua_insert(L, base);  /* put it under function and args */
  globalL = L;  /* to be available to 'laction' */
  setsignal(SIGINT, laction);  /* set C-signal handler */
  status = lua_pcall(L, narg, nres, base);
  setsignal(SIGINT, SIG_DFL); /* reset C-signal handler */
  lua_remove(L, base);  /* remove message handler from the stack */
  return status;
}


/*
** "Ember 0.1.0 (Lua 5.4.4)  Copyright (C) 1994-2022 Lua.org, PUC-Rio":
** LUA_COPYRIGHT starts with LUA_RELEASE, which the banner already shows.
*/
static void print_version (void) {
  static const char banner[] = "Ember " EMBER_VERSION " (" LUA_RELEASE ")";
  const char *copyright = &LUA_COPYRIGHT[sizeof(LUA_RELEASE) - 1];
  lua_writestring(banner, sizeof(banner) - 1);
  lua_writestring(copyright, strlen(copyright));
  lua_writeline();
}

/* }================================================================== */


/*
** {==================================================================
** Arguments, scripts, libraries (as lua.c)
** ===================================================================
*/

/*
** Create the 'arg' table, which stores all arguments from the
** command line ('argv'). It should be aligned so that, at index 0,
** it has 'argv[script]', which is the script name. The arguments
** to the script (everything after 'script') go to positive indices;
** other arguments (before the script name) go to negative indices.
** If there is no script name, assume interpreter's name as base.
*/
static void createargtable (lua_State *L, char **argv, int argc, int script) {
  int i, narg;
  if (script == argc) script = 0;  /* no script name? */
  narg = argc - (script + 1);  /* number of positive indices */
  lua_createtable(L, narg, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}


static int dochunk (lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}


static int dofile (lua_State *L, const char *name) {
  return dochunk(L, luaL_loadfile(L, name));
}


static int dostring (lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}


/*
** Receives 'globname[=modname]' and runs 'globname = require(modname)'.
*/
static int dolibrary (lua_State *L, char *globname) {
  int status;
  char *modname = strchr(globname, '=');
  if (modname == NULL)  /* no explicit name? */
    modname = globname;  /* module name is equal to global name */
  else {
    *modname = '\0';  /* global name ends here */
    modname++;  /* module name starts after the '=' */
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  status = docall(L, 1, 1);  /* call 'require(modname)' */
  if (status == LUA_OK)
    lua_setglobal(L, globname);  /* globname = require(modname) */
  return report(L, status);
}


/*
** Ember goes in as `require "ember"` would put it, and as a global too,
** before LUA_INIT and the options run, so that all of them can use it.
*/
static int openember (lua_State *L) {
  luaL_requiref(L, "ember", luaopen_ember, 1);
  return 0;
}


static int loadember (lua_State *L) {
  lua_pushcfunction(L, openember);
  return report(L, docall(L, 0, 0));
}


/*
** Push on the stack the contents of table 'arg' from 1 to #arg
*/
static int pushargs (lua_State *L) {
  int i, n;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -i);  /* remove table from the stack */
  return n;
}


static int handle_script (lua_State *L, char **argv) {
  int status;
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
    fname = NULL;  /* stdin */
  status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);  /* push arguments to script */
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}


/* bits of various argument indicators in 'args' */
#define has_error	1	/* bad option */
#define has_i		2	/* -i */
#define has_v		4	/* -v */
#define has_e		8	/* -e */
#define has_E		16	/* -E */


/*
** Traverses all arguments from 'argv', returning a mask with those
** needed before running any Lua code or an error code if it finds any
** invalid argument. In case of error, 'first' is the index of the bad
** argument.  Otherwise, 'first' is -1 if there is no program name,
** 0 if there is no script name, or the index of the script name.
*/
static int collectargs (char **argv, int *first) {
  int args = 0;
  int i;
  if (argv[0] != NULL) {  /* is there a program name? */
    if (argv[0][0])  /* not empty? */
      progname = argv[0];  /* save it */
  }
  else {  /* no program name */
    *first = -1;
    return 0;
  }
  for (i = 1; argv[i] != NULL; i++) {  /* handle arguments */
    *first = i;
    if (argv[i][0] != '-')  /* not an option? */
        return args;  /* stop handling options */
    switch (argv[i][1]) {  /* else check option */
      case '-':  /* '--' */
        if (argv[i][2] != '\0')  /* extra characters after '--'? */
          return has_error;  /* invalid option */
        *first = i + 1;
        return args;
      case '\0':  /* '-' */
        return args;  /* script "name" is '-' */
      case 'E':
        if (argv[i][2] != '\0')  /* extra characters? */
          return has_error;  /* invalid option */
        args |= has_E;
        break;
      case 'W':
        if (argv[i][2] != '\0')  /* extra characters? */
          return has_error;  /* invalid option */
        break;
      case 'i':
        args |= has_i;  /* (-i implies -v) */
        /* FALLTHROUGH */
      case 'v':
        if (argv[i][2] != '\0')  /* extra characters? */
          return has_error;  /* invalid option */
        args |= has_v;
        break;
      case 'e':
        args |= has_e;
        /* FALLTHROUGH */
      case 'l':  /* both options need an argument */
        if (argv[i][2] == '\0') {  /* no concatenated argument? */
          i++;  /* try next 'argv' */
          if (argv[i] == NULL || argv[i][0] == '-')
            return has_error;  /* no next argument or it is another option */
        }
        break;
      default:  /* invalid option */
        return has_error;
    }
  }
  *first = 0;  /* no script name */
  return args;
}


/*
** Processes options 'e' and 'l', which involve running Lua code, and
** 'W', which also affects the state.
** Returns 0 if some code raises an error.
*/
static int runargs (lua_State *L, char **argv, int n) {
  int i;
  for (i = 1; i < n; i++) {
    int option = argv[i][1];
    switch (option) {
      case 'e':  case 'l': {
        int status;
        char *extra = argv[i] + 2;  /* both options need an argument */
        if (*extra == '\0') extra = argv[++i];
        status = (option == 'e')
                 ? dostring(L, extra, "=(command line)")
                 : dolibrary(L, extra);
        if (status != LUA_OK) return 0;
        break;
      }
      case 'W':
        lua_warning(L, "@on", 0);  /* warnings on */
        break;
    }
  }
  return 1;
}


static int handle_luainit (lua_State *L) {
  const char *name = "=" LUA_INITVARVERSION;
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=" LUA_INIT_VAR;
    init = getenv(name + 1);  /* try alternative name */
  }
  if (init == NULL) return LUA_OK;
  else if (init[0] == '@')
    return dofile(L, init+1);
  else
    return dostring(L, init, name);
}

/* }================================================================== */


/*
** {==================================================================
** History: a plain text file, one entered chunk per line
** ===================================================================
*/

/*
** libedit's own history file vis-encodes its entries (a space is "\040"),
** which makes the file unpleasant to read or grep; so Ember keeps the file
** itself. The last EMBER_HISTMAX lines also live in a ring here, to rewrite
** the file from when it grows past the cap. Any failure (no HOME, no
** permission, a full disk) just leaves the history unsaved.
** A multi-line chunk is one entry, so one Up recalls it whole; in the file
** its newlines are written as HIST_NL (a control character no one types),
** which keeps one entry per line.
*/
#define HIST_NL		'\x1f'
static char *hist_path = NULL;		/* NULL: no file */
static char *hist_ring[EMBER_HISTMAX];
static int hist_first = 0, hist_count = 0;	/* ring's oldest, size */
static long hist_filelines = 0;		/* lines in the file now */


static void hist_remember (char *line) {	/* takes ownership */
  if (hist_count == EMBER_HISTMAX) {
    free(hist_ring[hist_first]);
    hist_ring[hist_first] = line;
    hist_first = (hist_first + 1) % EMBER_HISTMAX;
  }
  else
    hist_ring[(hist_first + hist_count++) % EMBER_HISTMAX] = line;
}


static const char *hist_last (void) {
  if (hist_count == 0) return NULL;
  return hist_ring[(hist_first + hist_count - 1) % EMBER_HISTMAX];
}


/* owner-only: a history can hold paths and secrets typed at the prompt */
static FILE *hist_openfile (int flags) {
  int fd = open(hist_path, O_WRONLY | O_CREAT | flags, 0600);
  FILE *f;
  if (fd < 0) return NULL;
  f = fdopen(fd, "w");
  if (f == NULL) close(fd);
  return f;
}


/* One entry as one line of the file. */
static void hist_writeentry (FILE *f, const char *entry) {
  for (; *entry != '\0'; entry++)
    fputc(*entry == '\n' ? HIST_NL : *entry, f);
  fputc('\n', f);
}


/* Replace the file by the ring: the cap holds across sessions. */
static void hist_rewrite (void) {
  FILE *f;
  int i;
  if (hist_path == NULL || (f = hist_openfile(O_TRUNC)) == NULL) return;
  for (i = 0; i < hist_count; i++)
    hist_writeentry(f, hist_ring[(hist_first + i) % EMBER_HISTMAX]);
  fclose(f);
  hist_filelines = hist_count;
}


static void hist_setpath (void) {
  const char *env = getenv("EMBER_HISTORY");
  if (env != NULL) {
    if (env[0] != '\0') hist_path = strdup(env);  /* "": keep none */
  }
  else {
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0') {
      size_t n = strlen(home) + sizeof(EMBER_HISTFILE) + 1;
      if ((hist_path = malloc(n)) != NULL)
        snprintf(hist_path, n, "%s/%s", home, EMBER_HISTFILE);
    }
  }
}


static void hist_load (void) {
  FILE *f;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int i;
  hist_setpath();
  if (hist_path == NULL || (f = fopen(hist_path, "r")) == NULL) return;
  while ((n = getline(&line, &cap, f)) >= 0) {
    char *copy;
    if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
    hist_filelines++;
    if (n > 0 && (copy = strdup(line)) != NULL) {
      char *c;
      for (c = copy; (c = strchr(c, HIST_NL)) != NULL; c++) *c = '\n';
      hist_remember(copy);
    }
  }
  free(line);
  fclose(f);
  for (i = 0; i < hist_count; i++)
    add_history(hist_ring[(hist_first + i) % EMBER_HISTMAX]);
  if (hist_filelines > EMBER_HISTMAX)
    hist_rewrite();
}


/*
** Every non-blank chunk typed goes to the history (a repeat of the entry
** before it does not), and at once to the file, so a crash loses nothing.
*/
static void hist_add (const char *line) {
  const char *last = hist_last();
  char *copy;
  FILE *f;
  if (line[strspn(line, " \t\r\n")] == '\0') return;  /* blank */
  if (last != NULL && strcmp(last, line) == 0) return;  /* a repeat */
  if ((copy = strdup(line)) == NULL) return;
  add_history(copy);
  hist_remember(copy);
  if (hist_path == NULL) return;
  if (++hist_filelines > EMBER_HISTMAX)
    hist_rewrite();
  else if ((f = hist_openfile(O_APPEND)) != NULL) {
    hist_writeentry(f, copy);
    fclose(f);
  }
}


static void hist_close (void) {
  int i;
  for (i = 0; i < hist_count; i++)
    free(hist_ring[(hist_first + i) % EMBER_HISTMAX]);
  hist_first = hist_count = 0;
  hist_filelines = 0;
  free(hist_path);
  hist_path = NULL;
}

/* }================================================================== */


/*
** {==================================================================
** Completion
** ===================================================================
*/

/*
** The word before the cursor is a chain `a.b.c` or `a.b:c`; every part but
** the last names a field reached from the globals, the last is a prefix.
** Fields are found, and candidates listed, the same way: the raw keys of
** a table, then through the value's metatable, its `__methods` table (the
** tensor contract) and its `__index` when that is a table, recursively.
** Candidates also come from the metatable's `__dir` function (Python's
** __dir__: it returns a list of names), and a part that this raw walk
** cannot find is looked up by a real index, so an `__index` function (nn
** modules keep their parameters and children behind one) runs. A chain
** has few parts, so few such calls; the budget below stops a runaway one.
*/

#define COMP_DEPTH	8	/* metatables followed, against __index loops */
#define COMP_STEPS	1000000	/* Lua instructions one TAB may run */

/* characters that end a word: anything that cannot be in a chain */
static const char comp_breaks[] = " \t\n\"\\'`@$><=;|&{(}[]),+-*/%^#~!?";

static const char *const comp_keywords[] = {
  "and", "break", "do", "else", "elseif", "end", "false", "for",
  "function", "goto", "if", "in", "local", "nil", "not", "or", "repeat",
  "return", "then", "true", "until", "while", NULL
};

static const char *const comp_via[] = {"__methods", "__index", NULL};

static lua_State *compL = NULL;		/* the REPL's state */
static char **comp_list = NULL;		/* sorted full candidates */
static size_t comp_n = 0, comp_next = 0;


/* set when a TAB has spent COMP_STEPS: no more Lua calls for it */
static int comp_expired = 0;


/* count hook of a TAB's Lua calls: past the budget, they all fail */
static void comp_stop (lua_State *L, lua_Debug *ar) {
  (void)ar;
  comp_expired = 1;
  luaL_error(L, "completion ran too long");
}


/* identifiers as Lua's lexer reads them in the C locale */
static int comp_isstart (int c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int comp_isalnum (int c) {
  return comp_isstart(c) || (c >= '0' && c <= '9');
}

static int comp_iskeyword (const char *s) {
  int i;
  for (i = 0; comp_keywords[i]; i++)
    if (strcmp(s, comp_keywords[i]) == 0) return 1;
  return 0;
}

/* s[0..n) is a name usable after '.' or ':' (n == 0: not) */
static int comp_isname (const char *s, size_t n) {
  size_t i;
  if (n == 0 || !comp_isstart((unsigned char)s[0])) return 0;
  for (i = 1; i < n; i++)
    if (!comp_isalnum((unsigned char)s[i])) return 0;
  return 1;
}


/*
** A key is offered when it is a name that is no keyword and starts with
** the prefix; as Python's completer does, "_" keys (private: a module's
** stores, helpers) only to a "_" prefix, "__" keys (metamethods,
** internals) only to a "__" prefix.
*/
static int comp_wanted (const char *k, size_t klen, const char *prefix,
                        size_t plen) {
  if (klen < plen || memcmp(k, prefix, plen) != 0) return 0;
  if (!comp_isname(k, klen) || comp_iskeyword(k))
    return 0;
  if (k[0] == '_' && plen == 0)
    return 0;
  if (k[0] == '_' && k[1] == '_' && !(plen >= 2 && prefix[1] == '_'))
    return 0;
  return 1;
}


/* obj[k] with its metamethods, for comp_index's lua_pcall */
static int comp_gettable (lua_State *L) {
  lua_gettable(L, 1);
  return 1;
}


/*
** Push obj[k] as the program would read it (an `__index` function runs),
** protected, and return 1; or push nothing and return 0 when that raises,
** gives nil, or the TAB's budget is spent.
*/
static int comp_index (lua_State *L, int obj, const char *k, size_t klen) {
  if (comp_expired) return 0;
  luaL_checkstack(L, 3, NULL);
  lua_pushcfunction(L, comp_gettable);
  lua_pushvalue(L, obj);
  lua_pushlstring(L, k, klen);
  if (lua_pcall(L, 2, 1, 0) == LUA_OK && !lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);  /* nil or the error */
  return 0;
}


/*
** Push the field 'k' of the value at 'obj' as completion sees it and
** return 1, or push nothing and return 0.
*/
static int comp_field (lua_State *L, int obj, const char *k, size_t klen,
                       int depth) {
  luaL_checkstack(L, 4, NULL);
  if (lua_type(L, obj) == LUA_TTABLE) {
    lua_pushlstring(L, k, klen);
    if (lua_rawget(L, obj) != LUA_TNIL) return 1;
    lua_pop(L, 1);
  }
  if (depth < COMP_DEPTH && lua_getmetatable(L, obj)) {
    int mt = lua_gettop(L), i;
    for (i = 0; comp_via[i]; i++) {
      lua_pushstring(L, comp_via[i]);
      if (lua_rawget(L, mt) == LUA_TTABLE &&
          comp_field(L, lua_gettop(L), k, klen, depth + 1)) {
        lua_replace(L, mt);  /* the field takes the metatable's slot */
        lua_pop(L, 1);  /* the table it came from */
        return 1;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);  /* metatable */
  }
  /* not reachable raw: ask the value itself (once per part, not per
     metatable level) */
  if (depth == 0 && (lua_type(L, obj) == LUA_TTABLE ||
                     lua_type(L, obj) == LUA_TUSERDATA))
    return comp_index(L, obj, k, klen);
  return 0;
}


/*
** Add to 'set' the names that the `__dir` function of the metatable at
** 'mt' lists for the value at 'obj' (other entries, and a result that is
** no table, are ignored); after ':' only names whose values are functions.
*/
static void comp_dir (lua_State *L, int obj, int mt, const char *prefix,
                      size_t plen, int methods, int set) {
  lua_Integer i, n;
  int names;
  luaL_checkstack(L, 4, NULL);
  lua_pushliteral(L, "__dir");
  if (lua_rawget(L, mt) != LUA_TFUNCTION || comp_expired) {
    lua_pop(L, 1);
    return;
  }
  lua_pushvalue(L, obj);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_pop(L, 1);  /* the error or the odd result */
    return;
  }
  names = lua_gettop(L);
  n = (lua_Integer)lua_rawlen(L, names);
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, names, i) == LUA_TSTRING) {
      size_t klen;
      const char *k = lua_tolstring(L, -1, &klen);
      if (comp_wanted(k, klen, prefix, plen)) {
        int keep = 1;
        if (methods) {
          keep = comp_index(L, obj, k, klen);
          if (keep) {
            keep = lua_type(L, -1) == LUA_TFUNCTION;
            lua_pop(L, 1);
          }
        }
        if (keep) {
          lua_pushvalue(L, -1);
          lua_pushboolean(L, 1);
          lua_rawset(L, set);
        }
      }
    }
    lua_pop(L, 1);  /* the entry */
  }
  lua_pop(L, 1);  /* names */
}


/*
** Add to the set at 'set' the keys of the value at 'obj' that complete
** 'prefix'; after ':' only keys whose values are functions.
*/
static void comp_collect (lua_State *L, int obj, const char *prefix,
                          size_t plen, int methods, int set, int depth) {
  luaL_checkstack(L, 6, NULL);
  if (lua_type(L, obj) == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, obj)) {  /* key at -2, value at -1 */
      if (lua_type(L, -2) == LUA_TSTRING &&
          (!methods || lua_type(L, -1) == LUA_TFUNCTION)) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen);  /* a string: no
                                          conversion to upset lua_next */
        if (comp_wanted(k, klen, prefix, plen)) {
          lua_pushvalue(L, -2);
          lua_pushboolean(L, 1);
          lua_rawset(L, set);
        }
      }
      lua_pop(L, 1);  /* value; keep key for the next round */
    }
  }
  if (depth < COMP_DEPTH && lua_getmetatable(L, obj)) {
    int mt = lua_gettop(L), i;
    for (i = 0; comp_via[i]; i++) {
      lua_pushstring(L, comp_via[i]);
      if (lua_rawget(L, mt) == LUA_TTABLE)
        comp_collect(L, lua_gettop(L), prefix, plen, methods, set,
                     depth + 1);
      lua_pop(L, 1);
    }
    comp_dir(L, obj, mt, prefix, plen, methods, set);
    lua_pop(L, 1);  /* metatable */
  }
}


/*
** Walk the parts of 'text' before 'last' from the globals: push the value
** they name and return 1 (with 'methods' set after a ':'), or return 0 if
** the text is no chain of names or a part names nothing.
*/
static int comp_walk (lua_State *L, const char *text, const char *last,
                      int *methods) {
  const char *p = text;
  lua_pushglobaltable(L);
  while (p < last) {
    const char *sep = p;
    while (*sep != '.' && *sep != ':') sep++;
    if (!comp_isname(p, (size_t)(sep - p))) return 0;
    if (*sep == ':') {
      if (sep + 1 != last) return 0;  /* ':' only before the last part */
      *methods = 1;
    }
    if (!comp_field(L, lua_gettop(L), p, (size_t)(sep - p), 0)) return 0;
    p = sep + 1;
  }
  return 1;
}


/*
** Protected part of completion: with the word (a light userdata) at 1,
** return a set (table of key -> true) of the last part's completions.
** A word that is no chain of names gets an empty set.
*/
static int comp_find (lua_State *L) {
  const char *text = (const char *)lua_touserdata(L, 1);
  const char *p, *last = text;
  size_t plen;
  int set, methods = 0;
  lua_newtable(L);
  set = lua_gettop(L);
  for (p = text; *p; p++)  /* 'last': start of the final part */
    if (*p == '.' || *p == ':') last = p + 1;
  plen = strlen(last);
  if ((plen == 0 || comp_isname(last, plen)) &&
      comp_walk(L, text, last, &methods)) {
    comp_collect(L, lua_gettop(L), last, plen, methods, set, 0);
    if (last == text) {  /* a first word may be a keyword */
      int i;
      for (i = 0; comp_keywords[i]; i++)
        if (strncmp(comp_keywords[i], last, plen) == 0) {
          lua_pushboolean(L, 1);
          lua_setfield(L, set, comp_keywords[i]);
        }
    }
  }
  lua_settop(L, set);
  return 1;
}


static void comp_free (void) {
  size_t i;
  for (i = 0; i < comp_n; i++) free(comp_list[i]);
  free(comp_list);
  comp_list = NULL;
  comp_n = comp_next = 0;
}


static int comp_cmp (const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}


/*
** Fill comp_list with the full words ("ember.zeros") that complete 'text'.
** The Lua work runs under lua_pcall; what is read back afterwards (lua_next
** over our own table of strings) cannot raise.
*/
static void comp_build (const char *text) {
  lua_State *L = compL;
  int top, ok;
  size_t stem = 0, n = 0, i;
  lua_Hook hook;
  int hookmask, hookcount;
  comp_free();
  if (L == NULL || !lua_checkstack(L, 4)) return;
  top = lua_gettop(L);
  for (i = 0; text[i]; i++)
    if (text[i] == '.' || text[i] == ':') stem = i + 1;
  hook = lua_gethook(L);  /* none at the prompt; kept all the same */
  hookmask = lua_gethookmask(L);
  hookcount = lua_gethookcount(L);
  comp_expired = 0;
  lua_sethook(L, comp_stop, LUA_MASKCOUNT, COMP_STEPS);
  lua_pushcfunction(L, comp_find);
  lua_pushlightuserdata(L, (void *)text);
  ok = lua_pcall(L, 1, 1, 0) == LUA_OK;
  lua_sethook(L, hook, hookmask, hookcount);
  if (ok && lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) { n++; lua_pop(L, 1); }
    if (n > 0 && (comp_list = calloc(n, sizeof(char *))) != NULL) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen);  /* keys are strings */
        char *word = malloc(stem + klen + 1);
        if (word != NULL && comp_n < n) {
          memcpy(word, text, stem);
          memcpy(word + stem, k, klen + 1);
          comp_list[comp_n++] = word;
        }
        else free(word);
        lua_pop(L, 1);
      }
      qsort(comp_list, comp_n, sizeof(char *), comp_cmp);
    }
  }
  lua_settop(L, top);
}


/* libedit's generator: hands out comp_list one malloc'ed copy at a time */
static char *comp_generator (const char *text, int state) {
  (void)text;
  if (state == 0) comp_next = 0;
  if (comp_next < comp_n) return strdup(comp_list[comp_next++]);
  return NULL;
}


/*
** rl_attempted_completion_function: never falls back to file names, and
** appends nothing after a match, so "ember.zer<TAB>(2)" reads as typed.
*/
static char **comp_complete (const char *text, int start, int end) {
  char **matches = NULL;
  (void)start; (void)end;
  rl_attempted_completion_over = 1;
  rl_completion_append_character = '\0';
  comp_build(text);
  if (comp_n > 0)
    matches = rl_completion_matches(text, comp_generator);
  comp_free();
  return matches;
}

/* }================================================================== */


/*
** {==================================================================
** Reading lines
** ===================================================================
*/

static int line_editing = 0;	/* 1: libedit on a terminal */


/*
** On a terminal: libedit with completion and history. The locale's
** character type lets libedit handle UTF-8 input; LC_NUMERIC, which
** Lua's number conversions read, stays "C".
*/
static void line_init (lua_State *L) {
  line_editing = isatty(STDIN_FILENO);
  if (!line_editing) return;
  setlocale(LC_CTYPE, "");
  compL = L;
  rl_readline_name = EMBER_PROGNAME;
  rl_catch_signals = 0;  /* promptaction sees Ctrl-C; no kill(0, SIGINT) */
  rl_basic_word_break_characters = comp_breaks;
  rl_completer_word_break_characters = (char *)comp_breaks;
  rl_attempted_completion_function = comp_complete;
  rl_completion_append_character = '\0';
  rl_initialize();
  using_history();
  stifle_history(EMBER_HISTMAX);
  hist_load();
}


static void line_close (void) {
  if (!line_editing) return;
  hist_close();
  clear_history();
  compL = NULL;
}


/*
** Read one line into '*line' (malloc'ed, without its newline). Returns 1,
** 0 at end of input, or LINE_CANCELLED after a Ctrl-C at the prompt.
** Without a terminal, prompts go to stdout as lua.c prints them without
** readline, and lines may be of any length.
*/
static int line_read (const char *prompt, char **line) {
  *line = NULL;
  if (line_editing) {
    prompt_interrupted = 0;
    setsignal(SIGINT, promptaction);
    *line = readline(prompt);
    setsignal(SIGINT, SIG_DFL);
    if (*line == NULL && prompt_interrupted) {
      lua_writeline();  /* leave the "^C" line */
      return LINE_CANCELLED;
    }
    return *line != NULL;
  }
  else {
    size_t cap = 0;
    ssize_t n;
    fputs(prompt, stdout);
    fflush(stdout);
    if ((n = getline(line, &cap, stdin)) < 0) {
      free(*line);
      *line = NULL;
      return 0;
    }
    if (n > 0 && (*line)[n - 1] == '\n') (*line)[n - 1] = '\0';
    return 1;
  }
}

/* }================================================================== */


/*
** {==================================================================
** Read-Eval-Print Loop (REPL), as lua.c's
** ===================================================================
*/

/*
** Return the string to be used as a prompt by the interpreter. Leave
** the string (or nil, if using the default value) on the stack, to keep
** it anchored.
*/
static const char *get_prompt (lua_State *L, int firstline) {
  if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL)
    return (firstline ? EMBER_PROMPT : EMBER_PROMPT2);  /* the default */
  else {  /* apply 'tostring' over the value */
    const char *p = luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);  /* remove original value */
    return p;
  }
}

/* mark in error messages for incomplete statements */
#define EOFMARK		"<eof>"
#define marklen		(sizeof(EOFMARK)/sizeof(char) - 1)


/*
** Check whether 'status' signals a syntax error and the error
** message at the top of the stack ends with the above mark for
** incomplete statements. Unlike lua.c the message stays on the stack,
** to be reported if the input ends before the statement does.
*/
static int incomplete (lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= marklen && strcmp(msg + lmsg - marklen, EOFMARK) == 0)
      return 1;
  }
  return 0;  /* else... */
}


/* Push the chunk 'help("<name>")' for the line '?name' (blanks trimmed). */
static void pushhelp (lua_State *L, const char *name) {
  luaL_Buffer b;
  size_t n;
  while (*name == ' ' || *name == '\t') name++;
  n = strlen(name);
  while (n > 0 && strchr(" \t\r", name[n - 1]) != NULL) n--;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "help(\"");
  for (; n > 0; name++, n--) {  /* quote it: '\' and '"' escaped */
    if (*name == '\\' || *name == '"') luaL_addchar(&b, '\\');
    luaL_addchar(&b, *name);
  }
  luaL_addstring(&b, "\")");
  luaL_pushresult(&b);
}


/*
** Prompt the user, read a line, and push it into the Lua stack (the
** whole chunk goes to the history once complete, in 'loadline'). Returns
** 1, 0 at end of input, or LINE_CANCELLED (nothing pushed either way but
** for 1).
*/
static int pushline (lua_State *L, int firstline) {
  char *b;
  size_t l;
  const char *prmt = get_prompt(L, firstline);
  int readstatus = line_read(prmt, &b);
  lua_pop(L, 1);  /* remove prompt */
  if (readstatus != 1)
    return readstatus;
  l = strlen(b);
  if (firstline && b[0] == '=')  /* for compatibility with 5.2, ... */
    lua_pushfstring(L, "return %s", b + 1);  /* change '=' to 'return' */
  else if (firstline && b[0] == '?')  /* '?x' is help'x', as trepl's */
    pushhelp(L, b + 1);
  else
    lua_pushlstring(L, b, l);
  free(b);
  return 1;
}


/* set by 'loadline': the chunk ended with ';', so its results are kept
   in '_' but not printed (as trepl) */
static int repl_hidden = 0;


/* Does 'line' end with ';' (blanks after it aside)? */
static int ends_with_semicolon (const char *line) {
  size_t n = strlen(line);
  while (n > 0 && strchr(" \t\r\n", line[n - 1]) != NULL) n--;
  return n > 0 && line[n - 1] == ';';
}


/*
** Try to compile line on the stack as 'return <line>;' (as 'return <line>'
** when it ends with ';' already: 'x;' is the expression 'x', hidden); on
** return, stack has either compiled chunk or original line (if
** compilation failed).
*/
static int addreturn (lua_State *L) {
  const char *line = lua_tostring(L, -1);  /* original line */
  const char *retline = lua_pushfstring(L, repl_hidden ? "return %s" :
                                                         "return %s;", line);
  int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
  if (status == LUA_OK)
    lua_remove(L, -2);  /* remove modified line */
  else
    lua_pop(L, 2);  /* pop result from 'luaL_loadbuffer' and modified line */
  return status;
}


/*
** Statements that end in an expression ('x = 1; x') are not a chunk, and
** lua.c waits for more input after them. Try the chunk on the stack as
** '<statements>; return <expression>', splitting at each ';' from the
** last (a ';' inside a string of the tail fails to compile and the next
** one is tried). On success the compiled chunk replaces the syntax error
** message on top of the stack and LUA_OK is returned; else nothing changes.
*/
static int splitreturn (lua_State *L) {
  size_t len;
  const char *chunk = lua_tolstring(L, 1, &len);
  const char *semi = chunk + len;
  while (semi > chunk) {
    const char *code;
    size_t i;
    if (*--semi != ';') continue;
    i = (size_t)(semi - chunk) + 1;
    lua_pushlstring(L, chunk, i);
    lua_pushliteral(L, " return ");
    lua_pushlstring(L, semi + 1, len - i);
    lua_concat(L, 3);
    code = lua_tostring(L, -1);
    if (luaL_loadbuffer(L, code, strlen(code), "=stdin") == LUA_OK) {
      lua_remove(L, -2);  /* the code */
      lua_remove(L, -2);  /* the syntax error */
      return LUA_OK;
    }
    lua_pop(L, 2);  /* its error and the code */
  }
  return LUA_ERRSYNTAX;
}


/*
** Read multiple lines until a complete Lua statement. Ctrl-C drops the
** whole statement; end of input reports what the statement lacked, and
** the next read decides whether the session ends: on a terminal Ctrl-D
** at a ">>" prompt only drops the statement, as in lua.c and python.
*/
static int multiline (lua_State *L) {
  for (;;) {  /* repeat until gets a complete statement */
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);  /* get what it has */
    int status = luaL_loadbuffer(L, line, len, "=stdin");  /* try it */
    int more;
    if (status == LUA_ERRSYNTAX && splitreturn(L) == LUA_OK)
      return LUA_OK;
    if (!incomplete(L, status))
      return status;  /* cannot or should not try to add continuation */
    more = pushline(L, 0);
    if (more == LINE_CANCELLED) return LINE_CANCELLED;
    if (more == 0) {  /* no more input: report the error */
      /* on a line of its own, as the REPL's end leaves the prompt (on a
         terminal the REPL then goes on, as lua.c's and python's do) */
      lua_writeline();
      return status;
    }
    lua_remove(L, -2);  /* the "<eof>" message */
    lua_pushliteral(L, "\n");  /* add newline... */
    lua_insert(L, -2);  /* ...between the two lines */
    lua_concat(L, 3);  /* join them */
  }
}


/*
** Read a line and try to load (compile) it first as an expression (by
** adding "return " in front of it) and second as a statement. Return
** the final status of load/call with the resulting function (if any)
** in the top of the stack; -1 at end of input; LINE_CANCELLED (with an
** empty stack) after Ctrl-C.
*/
static int loadline (lua_State *L) {
  int status;
  lua_settop(L, 0);
  status = pushline(L, 1);
  if (status == 0) return -1;  /* no input */
  if (status == LINE_CANCELLED) return LINE_CANCELLED;
  repl_hidden = ends_with_semicolon(lua_tostring(L, 1));
  if ((status = addreturn(L)) != LUA_OK)  /* 'return ...' did not work? */
    status = multiline(L);  /* try as command, maybe with continuation lines */
  if (line_editing)  /* the chunk as typed, however many lines it took */
    hist_add(lua_tostring(L, 1));
  if (status == LINE_CANCELLED) {
    lua_settop(L, 0);
    return LINE_CANCELLED;
  }
  lua_remove(L, 1);  /* remove line from the stack */
  return status;
}


/* registry key of the REPL's printer, ember.repl's 'print' */
#define REPL_PRINTER	"ember.repl.print"


/*
** Load the printer (lua/ember/repl.lua). If it cannot be loaded (a broken
** installation), the REPL still works and prints with the global 'print'.
*/
static void load_printer (lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "ember.repl");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) &&
      lua_getfield(L, -1, "print") == LUA_TFUNCTION)
    lua_setfield(L, LUA_REGISTRYINDEX, REPL_PRINTER);
  else
    lua_pop(L, 1);  /* the error or the field */
  /* help(x) and ?x: ember.help as a global, in the REPL only (as trepl) */
  if (lua_getglobal(L, "help") == LUA_TNIL &&
      lua_getglobal(L, "ember") == LUA_TTABLE &&
      lua_getfield(L, -1, "help") == LUA_TFUNCTION)
    lua_setglobal(L, "help");
  lua_settop(L, 0);
}


/*
** Prints the values on the stack with ember.repl's printer (tables as
** tables, several results on labelled lines), else with 'print'; the
** first one becomes '_' (printed or hidden by a trailing ';').
*/
static void l_print (lua_State *L) {
  int n = lua_gettop(L);
  if (n > 0) {  /* any result to be printed? */
    lua_pushvalue(L, 1);
    lua_setglobal(L, "_");
    if (repl_hidden) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    if (lua_getfield(L, LUA_REGISTRYINDEX, REPL_PRINTER) != LUA_TFUNCTION) {
      lua_pop(L, 1);
      lua_getglobal(L, "print");
    }
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
      l_message(progname, lua_pushfstring(L, "error calling 'print' (%s)",
                                             lua_tostring(L, -1)));
  }
}


/*
** Do the REPL: repeatedly read (load) a line, evaluate (call) it, and
** print any results.
*/
static void doREPL (lua_State *L) {
  int status;
  const char *oldprogname = progname;
  progname = NULL;  /* no 'progname' on errors in interactive mode */
  load_printer(L);
  line_init(L);
  while ((status = loadline(L)) != -1) {
    if (status == LINE_CANCELLED) continue;
    if (status == LUA_OK)
      status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) l_print(L);
    else report(L, status);
  }
  line_close();
  lua_settop(L, 0);  /* clear stack */
  lua_writeline();
  progname = oldprogname;
}

/* }================================================================== */


/*
** Main body of stand-alone interpreter (to be called in protected mode).
** Reads the options and handles them all.
*/
static int pmain (lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script;
  int args = collectargs(argv, &script);
  int optlim = (script > 0) ? script : argc; /* first argv not an option */
  luaL_checkversion(L);  /* check that interpreter has correct version */
  if (args == has_error) {  /* bad arg? */
    print_usage(argv[script]);  /* 'script' has index of bad arg. */
    return 0;
  }
  if (args & has_v)  /* option '-v'? */
    print_version();
  if (args & has_E) {  /* option '-E'? */
    lua_pushboolean(L, 1);  /* signal for libraries to ignore env. vars. */
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);  /* open standard libraries */
  if (loadember(L) != LUA_OK)  /* then Ember */
    return 0;
  createargtable(L, argv, argc, script);  /* create table 'arg' */
  lua_gc(L, LUA_GCRESTART);  /* start GC... */
  lua_gc(L, LUA_GCGEN, 0, 0);  /* ...in generational mode */
  if (!(args & has_E)) {  /* no option '-E'? */
    if (handle_luainit(L) != LUA_OK)  /* run LUA_INIT */
      return 0;  /* error running LUA_INIT */
  }
  if (!runargs(L, argv, optlim))  /* execute arguments -e and -l */
    return 0;  /* something failed */
  if (script > 0) {  /* execute main script (if there is one) */
    if (handle_script(L, argv + script) != LUA_OK)
      return 0;  /* interrupt in case of error */
  }
  if (args & has_i)  /* -i option? */
    doREPL(L);  /* do read-eval-print loop */
  else if (script < 1 && !(args & (has_e | has_v))) { /* no active option? */
    if (isatty(STDIN_FILENO)) {  /* running in interactive mode? */
      print_version();
      doREPL(L);  /* do read-eval-print loop */
    }
    else dofile(L, NULL);  /* executes stdin as a file */
  }
  lua_pushboolean(L, 1);  /* signal no errors */
  return 1;
}


int main (int argc, char **argv) {
  int status, result;
  /* OpenBLAS fell back to its oldest kernels on a processor newer than it
     knows: start again with the ones this processor runs (threads.c); if
     the exec fails, go on as we are */
  const char *coretype = ember_blas_better_coretype();
  if (coretype && setenv("OPENBLAS_CORETYPE", coretype, 1) == 0)
    execv("/proc/self/exe", argv);
  lua_State *L = luaL_newstate();  /* create state */
  if (L == NULL) {
    l_message(argv[0], "cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);  /* stop GC while building state */
  lua_pushcfunction(L, &pmain);  /* to call 'pmain' in protected mode */
  lua_pushinteger(L, argc);  /* 1st argument */
  lua_pushlightuserdata(L, argv); /* 2nd argument */
  status = lua_pcall(L, 2, 1, 0);  /* do the call */
  result = lua_toboolean(L, -1);  /* get result */
  report(L, status);
  /* A failed script in a job of several processes (mpirun): stop the whole
     job, as mpi4py's `python -m mpi4py` does.  Closing the state would
     finalize MPI, which waits for every rank, while the others may be
     waiting in a collective for this one. */
  if (!(result && status == LUA_OK) && ember_dist_is_initialized() &&
      ember_dist_world_size() > 1)
    ember_dist_abort(EXIT_FAILURE);
  lua_close(L);
  return (result && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
