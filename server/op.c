/* Requests that work on files: their shared state, HASH and DELETE; see
 * op.h. */
#include "op.h"

#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

/* Bytes HASH reads per pread, and between looks at the abort flag. */
#define HASH_CHUNK 262144u

/* A new op; see op.h. */
struct fsd_op *fsd_op_new(struct fsd_host *h, struct fsd_conn *c,
                          struct fsd_req *r) {
  struct fsd_op *op = fsd_calloc(1, sizeof(*op));

  if (op == NULL)
    return NULL;
  op->h = h;
  op->c = c;
  op->r = r;
  op->kind = r->opcode;
  op->fd = -1;
  op->work.data = op;
  op->fs.data = op;
  fsd_list_init(&op->cq.link);
  r->op = op;
  fsd_conn_ref(c);
  return op;
}

/* A GET is done with its connection's budget: out of the queue, its bytes
 * given back, and the GETs waiting woken (after this poll phase: the
 * caller may be the session, walking its requests). */
static void budget_leave(struct fsd_op *op) {
  struct fsd_get *g = &op->u.get;

  fsd_budget_cancel(&op->c->budget, &g->bw);
  if (g->held > 0) {
    fsd_budget_give(&op->c->budget, g->held);
    g->held = 0;
    fsd_conn_wake(op->c);
  }
}

/* Frees an op; see op.h. */
void fsd_op_free(struct fsd_op *op) {
  struct fsd_conn *c = op->c;

  if (op->kind == FSP_OP_GET) {
    struct fsd_get *g = &op->u.get;
    budget_leave(op);
    if (g->waiter.link.next != NULL)
      fsd_list_remove(&g->waiter.link);
    if (g->hs != NULL)
      XXH3_freeState(g->hs);
    fsd_buf_free(g->ready);
    fsd_buf_free(g->chunk);
  } else if (op->kind == FSP_OP_PUT) {
    /* What it promised and did not put on disk is free again. */
    fsd_space_release(&op->h->space, op->u.put.reserved);
    if (op->u.put.open)
      c->puts--;
    fsd_free(op->u.put.job);
  }
  fsd_free(op);
  fsd_conn_unref(c);
}

static void on_op_fd_closed(uv_fs_t *req) {
  struct fsd_op *op = req->data;
  uv_fs_req_cleanup(req);
  fsd_op_free(op);
}

/* Closes the file on the threadpool, then frees; see op.h. */
void fsd_op_release(struct fsd_op *op) {
  if (op->kind == FSP_OP_GET) {
    budget_leave(op);
    if (op->u.get.waiter.link.next != NULL)
      fsd_list_remove(&op->u.get.waiter.link); /* no more output calls */
  }
  if (op->fd >= 0) {
    int fd = op->fd;
    op->fd = -1;
    if (uv_fs_close(op->h->loop, &op->fs, fd, on_op_fd_closed) == 0)
      return;
    close(fd); /* could not queue: a close of a regular file is quick */
  }
  fsd_op_free(op);
}

/* Queues a job; see op.h. */
int fsd_op_queue(struct fsd_op *op, uv_work_cb work, uv_after_work_cb after) {
  int r = uv_queue_work(op->h->loop, &op->work, work, after);
  if (r == 0)
    op->jobs++;
  return r;
}

static void small_work(struct fsb_item *it) {
  struct fsd_small_job *j = fsd_container_of(it, struct fsd_small_job, it);

  j->work(j->w);
}

static void small_done(struct fsb_item *it, int status) {
  struct fsd_small_job *j = fsd_container_of(it, struct fsd_small_job, it);

  j->after(j->w, status);
}

/* Queues a small job in h's batch; see op.h. */
int fsd_host_queue_small(struct fsd_host *h, struct fsd_small_job *job,
                         uv_work_t *w, uv_work_cb work,
                         uv_after_work_cb after) {
  h->batch.loop = h->loop;
  job->it.work = small_work;
  job->it.done = small_done;
  job->w = w;
  job->work = work;
  job->after = after;
  return fsb_add(&h->batch, &job->it);
}

/* Queues a small job of op; see op.h. */
int fsd_op_queue_small(struct fsd_op *op, uv_work_cb work,
                       uv_after_work_cb after) {
  int r = fsd_host_queue_small(op->h, &op->sjob, &op->work, work, after);
  if (r == 0)
    op->jobs++;
  return r;
}

/* Starts the commit job of op, whose turn it is: a small upload's shares
 * a trip, unless its lock across servers may make it wait. */
static void commit_run(struct fsd_op *op) {
  int r;

  op->space_mark = fsd_space_mark(&op->h->space);
  if (op->small && op->h->ctx->log == NULL)
    r = fsd_op_queue_small(op, op->commit_work, op->commit_after);
  else
    r = fsd_op_queue(op, op->commit_work, op->commit_after);
  if (r == 0)
    return;
  fsd_op_commit_done(op); /* cannot happen: the loop is alive */
  fsd_session_fail(&op->c->sess, op->r, FSP_ST_IO, NULL);
  fsd_op_release(op);
}

/* Commits now or after the one of the same name; see op.h. */
void fsd_op_commit(struct fsd_op *op, uv_work_cb work, uv_after_work_cb after) {
  op->cq.name = op->r->name;
  op->commit_work = work;
  op->commit_after = after;
  if (fsd_commitq_enter(&op->h->commitq, &op->cq)) {
    commit_run(op);
    return;
  }
  op->jobs++; /* waiting counts as a job: nothing else may start meanwhile */
}

/* Lets the next commit of the name go; see op.h. */
void fsd_op_commit_done(struct fsd_op *op) {
  struct fsd_commitq_entry *e = fsd_commitq_leave(&op->h->commitq, &op->cq);
  struct fsd_op *next;

  if (e == NULL)
    return;
  next = fsd_container_of(e, struct fsd_op, cq);
  next->jobs--; /* it was waiting */
  commit_run(next);
}

/* Takes the name's lock across servers; see op.h. */
int fsd_op_lock(struct fsd_op *op) {
  struct fsd_ctx_log *log = op->h->ctx->log;
  int r;

  if (log == NULL)
    return 0;
  r = log->lock(log, op->r->name);
  op->locked = r == 0;
  return r;
}

/* Says why a lock was refused; see op.h. */
const char *fsd_op_why(int err) {
  if (err == UV_EAGAIN)
    return "cluster log unreachable: writes refused, reads go on";
  if (err == UV_ETIMEDOUT)
    return "another server kept the name locked";
  return NULL;
}

/* Lets the name go; see op.h. */
void fsd_op_unlock(struct fsd_op *op, const char *name) {
  struct fsd_ctx_log *log = op->h->ctx->log;

  if (!op->locked || log == NULL)
    return;
  op->locked = 0;
  log->unlock(log, name);
}

static void on_logged(struct fsd_log_wait *w) {
  struct fsd_op *op = fsd_container_of(w, struct fsd_op, logged);

  op->jobs--;
  op->after_log(op);
}

/* Answers after the shared log; see op.h. */
void fsd_op_after_log(struct fsd_op *op, void (*fn)(struct fsd_op *op)) {
  struct fsd_ctx_log *log = op->h->ctx->log;

  if (log == NULL) {
    fn(op);
    return;
  }
  op->after_log = fn;
  op->logged.done = on_logged;
  op->jobs++;
  log->wait(log, &op->logged);
}

/* --- HASH --- */

static void hash_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  struct fsd_hash *hh = &op->u.hash;
  XXH3_state_t *hs = NULL;
  uint8_t *buf = NULL;
  uint64_t len, pos;
  int fd;

  fd = fsd_open_file(op->h->rootfd, op->r->name, &op->st);
  if (fd < 0) {
    op->err = fd;
    return;
  }
  op->err = 0;
  if (fsd_range_clamp((uint64_t)op->st.st_size, op->r->offset, op->r->length,
                      &len) != 0) {
    op->status = FSP_ST_RANGE;
    goto out;
  }
  hs = XXH3_createState();
  buf = fsd_malloc(HASH_CHUNK);
  if (hs == NULL || buf == NULL) {
    op->err = UV_ENOMEM;
    goto out;
  }
  XXH3_64bits_reset(hs);
  for (pos = 0; pos < len;) {
    size_t n = len - pos < HASH_CHUNK ? (size_t)(len - pos) : HASH_CHUNK;
    if (__atomic_load_n(&op->aborted, __ATOMIC_RELAXED))
      goto out;
    op->err = fsd_read_at(fd, buf, n, op->r->offset + pos);
    if (op->err < 0)
      goto out;
    XXH3_64bits_update(hs, buf, n);
    pos += n;
  }
  hh->length = len;
  hh->hash = XXH3_64bits_digest(hs);
out:
  fsd_free(buf);
  if (hs != NULL)
    XXH3_freeState(hs);
  close(fd);
}

static void after_hash(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_conn *c = op->c;

  (void)status;
  op->jobs--;
  if (op->aborted || c->hard)
    fsd_session_aborted(&c->sess, op->r);
  else if (op->status != 0)
    fsd_session_fail(&c->sess, op->r, op->status, NULL);
  else if (op->err < 0)
    fsd_session_fail(&c->sess, op->r, fsd_status_from_uv(op->err), NULL);
  else
    fsd_session_hash_done(&c->sess, op->r, op->r->offset, op->u.hash.length,
                          op->u.hash.hash);
  fsd_op_free(op);
}

/* Starts a HASH; see op.h. */
int fsd_hash_start(struct fsd_op *op) {
  return fsd_op_queue(op, hash_work, after_hash);
}

/* --- DELETE --- */

static void delete_work(uv_work_t *w) {
  struct fsd_op *op = w->data;

  op->err = fsd_op_lock(op);
  if (op->err == 0)
    op->err = fsd_unlink_file(op->h->rootfd, op->r->name);
  /* A look at the free space the unlink made, so that an upload right
   * after the answer finds it (see space.h). */
  op->vfs_avail = fsd_free_bytes(op->h->rootfd);
}

/* Once the register's event is in the log (fsd_op_after_log): OK or the
 * error, then the name's lock goes and op ends. */
static void delete_answer(struct fsd_op *op) {
  struct fsd_req *r = op->r;
  char name[FSP_PATH_MAX + 1];

  snprintf(name, sizeof(name), "%s", r->name);
  if (op->err == 0)
    fsd_session_ok(&op->c->sess, r);
  else
    fsd_session_fail(&op->c->sess, r, fsd_status_from_uv(op->err),
                     fsd_op_why(op->err));
  fsd_op_unlock(op, name); /* after the event, so others commit after it */
  fsd_op_free(op);
}

static void after_delete(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_conn *c = op->c;
  struct fsd_req *r = op->r;

  (void)status;
  op->jobs--;
  fsd_space_seen(&op->h->space, op->vfs_avail, op->space_mark);
  fsd_op_commit_done(op);
  /* A delete is never abandoned half way: report what happened, even to a
   * closed session, so the register follows the disk. */
  if (op->err == 0 || op->err == UV_ENOENT) {
    /* Gone, by this DELETE or meanwhile: the register catches up. */
    if (op->err == 0)
      fsd_info("deleted %s (by %s)", r->name, c->peer);
    fsd_watch_own_change(op->h->watch, r->name, r->name_len);
    fsd_ctx_update(op->h->ctx, r->name, r->name_len, 0, 0, fsd_now_ns());
  } else {
    fsd_warn("delete %s failed: %s", r->name, uv_strerror(op->err));
  }
  fsd_op_after_log(op, delete_answer);
}

/* Starts a DELETE, in order with uploads of the same name; see op.h. */
int fsd_delete_start(struct fsd_op *op) {
  fsd_op_commit(op, delete_work, after_delete);
  return 0;
}
