/*
** data_queue.c -- the loader's prefetch: a queue of batch jobs and one
** worker thread that runs them while the caller's step runs.
**
** A job is a batch source (ember.h: a load function that builds the
** batch's tensors from a list of rows, e.g. the rows of tensors that
** ember_batch_rows_source gathers, or a decoder of image files) and a
** transform pipeline with its Philox (seed, offset) reserved by the caller,
** so a prefetched batch is bit for bit the batch made in place.
**
** Threads.  The worker touches no reference count of a tensor it did not
** make (the counts are plain ints): sources are retained and released by
** the caller's thread, at submit and when the job is collected or
** cancelled; the worker only reads their data.  It makes the batch's
** tensors itself and hands them over under the lock.  An error on the
** worker (its thread-local message) travels with the job and is raised
** again on the caller's thread by ember_batch_queue_next.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd.h"

enum { JOB_PENDING, JOB_RUNNING, JOB_DONE };

typedef struct job {
  struct job *next;
  ember_batch_source src;
  int64_t *rows, n;
  ember_transform *tf;
  int ntf;
  uint64_t seed, offset;
  int state, rc;
  ember_tensor **out;
  char error[512];
} job;

struct ember_batch_queue {
  pthread_mutex_t lock;
  pthread_cond_t changed;   /* a job was added or finished, or stop */
  pthread_t thread;
  int started, stop;
  job *head, *tail;         /* oldest first */
};

static void run_job(job *j) {
  for (int k = 0; k < j->src.nout; k++) j->out[k] = NULL;
  int prev = ember_ag_pause();   /* this thread's: the batch records nothing */
  int rc = j->src.load(j->src.ctx, j->rows, j->n, j->out);
  if (rc == 0 && j->ntf > 0) {
    ember_tensor *t = ember_transforms_apply(j->tf, j->ntf, j->out[0], j->seed, j->offset);
    if (t) {
      ember_tensor_release(j->out[0]);
      j->out[0] = t;
    } else {
      rc = -1;
    }
  }
  ember_ag_resume(prev);
  if (rc < 0) {
    snprintf(j->error, sizeof j->error, "%s", ember_last_error());
    for (int k = 0; k < j->src.nout; k++) ember_tensor_release(j->out[k]), j->out[k] = NULL;
  }
  j->rc = rc;
}

static void *worker(void *arg) {
  ember_batch_queue *q = arg;
  pthread_mutex_lock(&q->lock);
  for (;;) {
    job *j = q->head;
    while (j && j->state != JOB_PENDING) j = j->next;
    if (q->stop) break;
    if (!j) {
      pthread_cond_wait(&q->changed, &q->lock);
      continue;
    }
    j->state = JOB_RUNNING;
    pthread_mutex_unlock(&q->lock);
    run_job(j);
    pthread_mutex_lock(&q->lock);
    j->state = JOB_DONE;
    pthread_cond_broadcast(&q->changed);
  }
  pthread_mutex_unlock(&q->lock);
  return NULL;
}

ember_batch_queue *ember_batch_queue_new(void) {
  ember_batch_queue *q = calloc(1, sizeof *q);
  if (!q) {
    ember_set_error("batch queue: out of memory");
    return NULL;
  }
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->changed, NULL);
  return q;
}

/* Free a job that the worker no longer holds (caller's thread). */
static void drop_job(job *j) {
  if (j->state == JOB_DONE && j->rc == 0)
    for (int k = 0; k < j->src.nout; k++) ember_tensor_release(j->out[k]);
  if (j->src.release) j->src.release(j->src.ctx);
  free(j->rows);
  free(j->tf);
  free(j->out);
  free(j);
}

int ember_batch_queue_submit(ember_batch_queue *q, ember_batch_source src,
                             const int64_t *rows, int64_t n,
                             const ember_transform *tf, int ntf,
                             uint64_t seed, uint64_t offset) {
  job *j = calloc(1, sizeof *j);
  if (j) {
    j->rows = malloc((size_t)(n > 0 ? n : 1) * sizeof *rows);
    j->tf = malloc((size_t)(ntf > 0 ? ntf : 1) * sizeof *tf);
    j->out = calloc((size_t)(src.nout > 0 ? src.nout : 1), sizeof *j->out);
  }
  if (!j || !j->rows || !j->tf || !j->out) {
    if (j) free(j->rows), free(j->tf), free(j->out);
    free(j);
    if (src.release) src.release(src.ctx);
    return ember_set_error("batch queue: out of memory");
  }
  if (n > 0) memcpy(j->rows, rows, (size_t)n * sizeof *rows);
  if (ntf > 0) memcpy(j->tf, tf, (size_t)ntf * sizeof *tf);
  j->src = src;
  j->n = n;
  j->ntf = ntf;
  j->seed = seed;
  j->offset = offset;
  j->state = JOB_PENDING;
  pthread_mutex_lock(&q->lock);
  if (!q->started) {
    if (pthread_create(&q->thread, NULL, worker, q) != 0) {
      pthread_mutex_unlock(&q->lock);
      j->state = JOB_DONE, j->rc = -1;
      drop_job(j);
      return ember_set_error("batch queue: cannot start the worker thread");
    }
    q->started = 1;
  }
  if (q->tail) q->tail->next = j; else q->head = j;
  q->tail = j;
  pthread_cond_broadcast(&q->changed);
  pthread_mutex_unlock(&q->lock);
  return 0;
}

int ember_batch_queue_pending(ember_batch_queue *q) {
  pthread_mutex_lock(&q->lock);
  int n = 0;
  for (job *j = q->head; j; j = j->next) n++;
  pthread_mutex_unlock(&q->lock);
  return n;
}

int ember_batch_queue_next(ember_batch_queue *q, ember_tensor **out) {
  pthread_mutex_lock(&q->lock);
  job *j = q->head;
  if (!j) {
    pthread_mutex_unlock(&q->lock);
    return ember_set_error("batch queue: no batch was submitted");
  }
  while (j->state != JOB_DONE) pthread_cond_wait(&q->changed, &q->lock);
  q->head = j->next;
  if (!q->head) q->tail = NULL;
  pthread_mutex_unlock(&q->lock);
  int rc = j->rc, nout = j->src.nout;
  if (rc == 0) {
    for (int k = 0; k < nout; k++) out[k] = j->out[k];
    j->rc = -1;   /* the tensors are the caller's now */
  } else {
    ember_set_error("%s", j->error);
  }
  drop_job(j);
  return rc < 0 ? -1 : nout;
}

void ember_batch_queue_clear(ember_batch_queue *q) {
  pthread_mutex_lock(&q->lock);
  /* the running job finishes (a load cannot be interrupted); the pending
     ones never start: the list is taken from the worker first, else it
     would start the next one each time the running one finishes */
  job *j = q->head;
  q->head = q->tail = NULL;
  for (job *r = j; r; r = r->next)
    while (r->state == JOB_RUNNING) pthread_cond_wait(&q->changed, &q->lock);
  pthread_mutex_unlock(&q->lock);
  while (j) {
    job *next = j->next;
    drop_job(j);
    j = next;
  }
}

void ember_batch_queue_free(ember_batch_queue *q) {
  if (!q) return;
  ember_batch_queue_clear(q);
  if (q->started) {
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
  }
  pthread_cond_destroy(&q->changed);
  pthread_mutex_destroy(&q->lock);
  free(q);
}

/* {======================================================================
** The rows of tensors: what a TensorDataset's batch is
** ======================================================================= */

typedef struct {
  int n;
  ember_tensor *t[];
} rows_ctx;

static int rows_load(void *ctx, const int64_t *rows, int64_t n, ember_tensor **out) {
  rows_ctx *c = ctx;
  for (int k = 0; k < c->n; k++) {
    const ember_tensor *t = c->t[k];
    int64_t shape[EMBER_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    int64_t len = t->shape[0];
    shape[0] = n;
    size_t row = ember_dtype_size(t->dtype);
    for (int d = 1; d < t->ndim; d++) row *= (size_t)t->shape[d];
    out[k] = ember_empty(t->ndim, shape, t->dtype);
    if (!out[k]) return -1;
    const char *src = ember_data(t);
    char *dst = ember_data(out[k]);
    for (int64_t i = 0; i < n; i++) {
      if (rows[i] < 0 || rows[i] >= len)
        return ember_set_error("loader: row %lld is out of range 1..%lld",
                               (long long)rows[i] + 1, (long long)len);
      memcpy(dst + (size_t)i * row, src + (size_t)rows[i] * row, row);
    }
  }
  return 0;
}

static void rows_release(void *ctx) {
  rows_ctx *c = ctx;
  for (int k = 0; k < c->n; k++) ember_tensor_release(c->t[k]);
  free(c);
}

int ember_batch_rows_source(ember_tensor *const *t, int n, ember_batch_source *src) {
  for (int k = 0; k < n; k++)
    if (t[k]->storage->device != EMBER_CPU || !ember_is_contiguous(t[k]) || t[k]->ndim < 1)
      return ember_set_error("batch rows: tensor %d must be a contiguous CPU tensor "
                             "of at least 1 dim", k + 1);
  rows_ctx *c = malloc(sizeof *c + (size_t)n * sizeof c->t[0]);
  if (!c) return ember_set_error("batch rows: out of memory");
  c->n = n;
  for (int k = 0; k < n; k++) ember_tensor_retain(c->t[k] = t[k]);
  *src = (ember_batch_source){rows_load, rows_release, c, n};
  return 0;
}
