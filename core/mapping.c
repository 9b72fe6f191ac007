/*
** mapping.c -- files mapped into memory (ember.load{mmap = true}), and
** what keeps a file that shrinks under its mapping from killing the
** process.
**
** A mapping is a whole file mapped MAP_PRIVATE, readable and writable:
** tensors are views of it (core/storage.c, "Mapped storage"), a write
** copies the page it touches (copy-on-write), and nothing ever goes back
** to the file.  Each tensor's storage holds a reference; the last one
** gone unmaps the file.
**
** The danger of a mapping: when another process truncates the file, a
** read of a page past the new end raises SIGBUS, whose default action
** kills the process.  The rule:
**
**   - Every mapping is entered in a fixed table of slots (base, length,
**     lost), which a SIGBUS handler, installed with the first mapping,
**     reads without a lock.
**   - A SIGBUS whose address lies inside a slot's range maps anonymous
**     zero pages over that whole mapping (mmap MAP_FIXED: one system call,
**     the same address, so every pointer into it stays valid), marks the
**     slot lost and counts the fault; the faulting access then completes,
**     reading zeros.  The whole mapping, not only the page: the file's
**     content is no longer what was validated, and a tensor half real
**     and half zeros would be worse than one plainly lost.
**   - Ember raises "the file under this mapped tensor ... shrank" at the
**     next Lua-level use of a tensor on a lost mapping (the binding's
**     argument checks call ember_check_mapped), and the op result that
**     was computed while the fault happened is dropped with the same
**     error (l_fill, after a fault has ever happened, looks at the op's
**     arguments).
**   - A SIGBUS outside every mapping goes to the handler that was there
**     before (SIG_DFL: restored, and the faulting access repeats and ends
**     the process as it would have).
**
** Thread safety: slots are claimed and freed under a mutex; the handler
** only reads atomics and writes the lost flag and the fault count, and
** calls mmap, which is a plain system call (not on POSIX's list of
** async-signal-safe functions, but it takes no user-space lock).  A fault
** is synchronous, so the handler runs on the faulting thread, which may
** be an OpenMP worker.  A host that installs its own SIGBUS handler after
** Ember's must chain to it, or mapped files lose this protection.
**
** Content changed in place by another writer (the file rewritten without
** shrinking) is visible in every page not yet copied by a write, as with
** PyTorch's torch.load(mmap=True): the mapping is MAP_PRIVATE, which does
** not freeze the file.  docs/internals.md says so.
*/
#define _DEFAULT_SOURCE   /* MAP_ANONYMOUS */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core.h"

#define MAX_MAPPINGS 4096   /* files mapped at once */

struct ember_mapping {
  void *base;
  size_t len;
  int slot;                 /* in slots[] */
  atomic_int refs;          /* storages on it, and the loader while it runs */
  char path[];              /* for messages */
};

/* What the SIGBUS handler sees of a mapping. */
static struct {
  _Atomic uintptr_t base;   /* 0: a free slot */
  _Atomic size_t len;
  atomic_int lost;
} slots[MAX_MAPPINGS];
static atomic_int slots_used;          /* slots[0..slots_used) were ever used */
static _Atomic uint64_t faults;        /* SIGBUS faults taken in mappings */
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static struct sigaction previous;      /* the SIGBUS handler before ours */
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed;

/* A fault outside Ember's mappings: as if Ember had no handler. */
static void chain(int sig, siginfo_t *si, void *uctx) {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction) previous.sa_sigaction(sig, si, uctx);
    return;
  }
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  /* default (an ignored SIGBUS from a fault would repeat forever): the
     access runs again and ends the process; a sent signal is raised again */
  signal(sig, SIG_DFL);
  if (si->si_code <= 0) raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uctx) {
  uintptr_t a = (uintptr_t)si->si_addr;
  int n = atomic_load(&slots_used);
  for (int i = 0; i < n; i++) {
    uintptr_t b = atomic_load(&slots[i].base);
    size_t len = atomic_load(&slots[i].len);
    if (b == 0 || a - b >= len) continue;
    int saved = errno;
    void *p = mmap((void *)b, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    errno = saved;
    if (p == MAP_FAILED) break;        /* cannot repair: as before Ember */
    atomic_store(&slots[i].lost, 1);
    atomic_fetch_add(&faults, 1);
    return;
  }
  chain(sig, si, uctx);
}

static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  installed = sigaction(SIGBUS, &sa, &previous) == 0;
}

ember_mapping *ember_mapping_open(int fd, size_t len, const char *path) {
  pthread_once(&install_once, install);
  if (!installed) {
    ember_set_error("load: cannot map '%s': the SIGBUS handler that protects "
                    "mapped files could not be installed", path);
    return NULL;
  }
  size_t plen = strlen(path);
  ember_mapping *m = malloc(sizeof *m + plen + 1);
  if (!m) { ember_set_error("load: out of memory"); return NULL; }
  memcpy(m->path, path, plen + 1);
  m->len = len;
  atomic_init(&m->refs, 1);
  m->base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (m->base == MAP_FAILED) {
    ember_set_error("load: cannot map '%s': %s", path, strerror(errno));
    free(m);
    return NULL;
  }
  pthread_mutex_lock(&slots_lock);
  int i = 0;
  while (i < MAX_MAPPINGS && atomic_load(&slots[i].base) != 0) i++;
  if (i < MAX_MAPPINGS) {
    atomic_store(&slots[i].lost, 0);
    atomic_store(&slots[i].len, len);
    atomic_store(&slots[i].base, (uintptr_t)m->base);   /* last: now live */
    if (i >= atomic_load(&slots_used)) atomic_store(&slots_used, i + 1);
  }
  pthread_mutex_unlock(&slots_lock);
  if (i == MAX_MAPPINGS) {
    munmap(m->base, len);
    free(m);
    ember_set_error("load: cannot map '%s': %d files are mapped already (load "
                    "without mmap, or let some mapped tensors go)", path,
                    MAX_MAPPINGS);
    return NULL;
  }
  m->slot = i;
  return m;
}

void *ember_mapping_data(const ember_mapping *m) { return m->base; }

void ember_mapping_retain(ember_mapping *m) { atomic_fetch_add(&m->refs, 1); }

void ember_mapping_release(ember_mapping *m) {
  if (!m || atomic_fetch_sub(&m->refs, 1) != 1) return;
  /* under the lock: a new mapping cannot claim the slot (and perhaps the
     same addresses) before this one is gone */
  pthread_mutex_lock(&slots_lock);
  munmap(m->base, m->len);
  atomic_store(&slots[m->slot].base, 0);
  pthread_mutex_unlock(&slots_lock);
  free(m);
}

int ember_mapping_lost(const ember_mapping *m) {
  return atomic_load(&slots[m->slot].lost);
}

const char *ember_mapping_path(const ember_mapping *m) { return m->path; }

uint64_t ember_mapping_faults(void) { return atomic_load(&faults); }
