/* PUT: writer, writeback and commit; see put.h. */
#include "put.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "tree.h"
#include "treeop.h"

#define PUT_FLUSH_STEP (8u << 20) /* written bytes per writeback job */
#define RESERVE_STEP (64u << 20)  /* fallocate() ahead of the writes */
/* Uploads up to PUT_SMALL bytes set nothing aside with fallocate() (a
 * system call and an extent to convert, to save a few blocks), and skip
 * the fresh look at the disk while the last one is under LOOK_FRESH_MS
 * old and left LOOK_ROOM beyond --min-free and every promise: what others
 * write meanwhile cannot take that much, and a write that finds the disk
 * full still fails the upload cleanly. */
#define PUT_SMALL (64u << 10)
#define LOOK_FRESH_MS 100u
#define LOOK_ROOM (256ull << 20)

static void step(struct fsd_op *op);
static void commit_work(uv_work_t *w);
static void after_commit(uv_work_t *w, int status);
static void commit(struct fsd_op *op);

static void put_open_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  int fd;

  /* The temp file is made in the target's folder, so that the commit is a
   * rename within one folder. No look at the disk unless prepared. */
  op->vfs_avail = UINT64_MAX;
  fd = fsd_treeop_put_dir(op);
  if (fd == 0)
    fd = fsd_put_prepare(op->u.put.dirfd, op->u.put.leaf,
                         op->r->mode == FSP_PUT_NO_CLOBBER, &op->u.put.room,
                         op->u.put.temp, &op->vfs_avail);
  if (fd < 0 && op->u.put.dirfd >= 0) {
    close(op->u.put.dirfd);
    op->u.put.dirfd = -1;
  }
  op->err = fd < 0 ? fd : 0;
  op->fd = fd < 0 ? -1 : fd;
  if (fd < 0)
    op->u.put.room.first = 0; /* nothing was set aside */
}

/* The upload's file is on disk (written or set aside) up to end: those
 * bytes move from its promise to the disk's used space. */
static void on_disk(struct fsd_op *op, uint64_t end) {
  struct fsd_put *p = &op->u.put;
  uint64_t n;

  if (end <= p->on_disk)
    return;
  n = end - p->on_disk;
  p->on_disk = end;
  if (n > p->reserved)
    n = p->reserved;
  p->reserved -= n;
  fsd_space_used(&op->h->space, n);
}

static void after_put_open(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_conn *c = op->c;

  (void)status;
  op->jobs--;
  fsd_treeop_put_made(op);
  fsd_space_seen(&op->h->space, op->vfs_avail, op->space_mark);
  if (op->vfs_avail != UINT64_MAX)
    op->h->space.looked = uv_now(op->h->loop);
  on_disk(op, op->u.put.room.first);
  op->u.put.falloc_end = op->u.put.room.first;
  op->u.put.last_data = uv_now(op->h->loop);
  if (op->err < 0 && !op->aborted && !c->hard) {
    if (op->err != UV_EEXIST)
      fsd_warn("cannot create a temp file for %s: %s", op->r->name,
               uv_strerror(op->err));
    fsd_session_fail(&c->sess, op->r, fsd_treeop_status(op->err), NULL);
    fsd_op_free(op);
    return;
  }
  if (op->aborted || c->hard) {
    step(op);
    return;
  }
  op->u.put.open = 1;
  c->puts++;
  fsd_session_put_ready(&c->sess, op->r);
}

/* Whether the last fresh look at the disk stands for an upload of size. */
static int look_stands(const struct fsd_space *sp, uint64_t size,
                       uint64_t now) {
  return size <= PUT_SMALL && now - sp->looked < LOOK_FRESH_MS &&
         fsd_space_fits(sp->avail, sp->reserved, sp->min_free, LOOK_ROOM);
}

/* Starts an upload; see put.h. The announced size is promised at once,
 * or refused at once: no job, no temp file. */
int fsd_put_start(struct fsd_op *op) {
  struct fsd_put *p = &op->u.put;
  struct fsd_space *sp = &op->h->space;
  struct fsd_req *r = op->r;
  int err;

  fsd_list_init(&p->queue);
  p->dirfd = -1;
  if (fsd_space_reserve(sp, r->size) != 0) {
    r->op = NULL;
    fsd_op_free(op);
    fsd_session_fail(r->s, r, FSP_ST_NO_SPACE,
                     "not enough free disk space (fsd keeps --min-free "
                     "free)");
    return 0;
  }
  p->reserved = r->size;
  p->room.reserved = sp->reserved;
  p->room.min_free = sp->min_free;
  p->room.first = r->size <= PUT_SMALL     ? 0
                  : r->size < RESERVE_STEP ? r->size
                                           : RESERVE_STEP;
  p->room.look = !look_stands(sp, r->size, uv_now(op->h->loop));
  op->space_mark = fsd_space_mark(sp);
  fsd_treeop_put_hold(op);
  p->moves = op->h->tree_moves;
  op->h->puts_seen++;
  /* With --no-fsync a small upload's jobs share trips (batch.h). With the
   * flushes, those set the pace, and waiting for a trip only delayed the
   * commits (put -r of 10,000 files of 4 KiB: 1.33-1.72 s against
   * 1.23-1.54 s). */
  op->small = r->size <= PUT_SMALL && op->h->no_fsync;
  err = op->small ? fsd_op_queue_small(op, put_open_work, after_put_open)
                  : fsd_op_queue(op, put_open_work, after_put_open);
  if (err != 0) {
    fsd_treeop_put_made(op); /* tells the watcher the job is over */
    fsd_space_release(sp, p->reserved);
    p->reserved = 0;
  }
  return err;
}

static void cleanup_work(uv_work_t *w) {
  struct fsd_op *op = w->data;

  fsd_temp_drop(op->u.put.dirfd, op->fd, op->u.put.temp);
  op->fd = -1;
  if (op->u.put.dirfd >= 0)
    close(op->u.put.dirfd);
  op->u.put.dirfd = -1;
}

static void after_cleanup(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;

  (void)status;
  op->jobs--;
  /* The temp file is gone: what it held is free again. */
  fsd_space_freed(&op->h->space, op->u.put.on_disk);
  op->u.put.on_disk = 0;
  fsd_debug("upload of %s dropped", op->r->name);
  fsd_session_aborted(&op->c->sess, op->r);
  fsd_op_free(op);
}

/* Threadpool: flushes fd (what for a test may be told to fail). With
 * FSD_FAIL_FSYNC=NAME (undocumented, for tests), the data flush of an
 * upload of path NAME fails with EIO, as a failing disk's would; with
 * FSD_FAIL_FSYNC=. the root folder's flush does, with FSD_FAIL_FSYNC=a/b/.
 * that of folder a/b. */
static int flush(int fd, const char *what) {
  const char *fail = getenv("FSD_FAIL_FSYNC");

  if (fail != NULL && strcmp(fail, what) == 0)
    return UV_EIO;
  return fsd_flush_fd(fd);
}

/* Threadpool: the data flush of a finished upload, before its rename. */
static void sync_work(uv_work_t *w) {
  struct fsd_op *op = w->data;

  op->err = flush(op->fd, op->r->name);
}

/* The data are on disk: the upload waits for its name's turn to rename.
 * A failed flush fails this upload alone; its temp file goes, and the file
 * it would have replaced stays as it was. */
static void after_sync(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_conn *c = op->c;

  (void)status;
  op->jobs--;
  if (op->err < 0 && op->status == 0) {
    fsd_warn("flush of %s to disk failed: %s", op->r->name,
             uv_strerror(op->err));
    op->status = FSP_ST_IO;
    fsd_session_failing(&c->sess, op->r, op->status,
                        "the data could not be flushed to disk");
  }
  if (op->status != 0 || op->aborted || c->hard) {
    step(op); /* cleans up */
    return;
  }
  commit(op);
}

/* Queues the rename into place, in the name's turn. Its event is ours:
 * the watcher need not look (the register learns from after_commit()). */
static void commit(struct fsd_op *op) {
  fsd_watch_expect(op->h->watch, op->r->name, op->r->name_len);
  fsd_op_commit(op, commit_work, after_commit);
}

/* Threadpool, in the name's turn: the rename into place. */
static void commit_work(uv_work_t *w) {
  struct fsd_op *op = w->data;

  op->err = fsd_op_lock(op);
  if (op->err != 0) {
    fsd_temp_drop(op->u.put.dirfd, op->fd, op->u.put.temp);
    op->fd = -1;
    close(op->u.put.dirfd);
    op->u.put.dirfd = -1;
    return;
  }
  /* The data were flushed by sync_work(), unless --no-fsync. */
  op->err =
      fsd_temp_commit(op->u.put.dirfd, op->fd, op->u.put.temp, op->u.put.leaf,
                      op->r->mode == FSP_PUT_NO_CLOBBER, &op->st);
  fsd_temp_drop(op->u.put.dirfd, op->fd, "");
  op->fd = -1;
  /* The folder stays open for its flush (folder_sync_work()): the flush
   * must reach the folder the rename changed, also when a RENAME of the
   * folder moved it meanwhile. */
  if (op->err != 0 || op->h->no_fsync) {
    close(op->u.put.dirfd);
    op->u.put.dirfd = -1;
  }
  if (op->err == 0)
    op->r->elsewhere = !fsd_treeop_put_landed(op);
  /* A replaced file's space is free: look, as a delete does. */
  op->vfs_avail =
      op->u.put.replacing ? fsd_free_bytes(op->h->rootfd) : UINT64_MAX;
}

/* Once the register's event is in the log (fsd_op_after_log): INFO or
 * the error, then the name's lock goes and op ends. */
static void commit_answer(struct fsd_op *op) {
  struct fsd_req *r = op->r;
  char name[FSP_PATH_MAX + 1];
  struct fsd_stamp st;

  snprintf(name, sizeof(name), "%s", r->name);
  if (op->err == 0) {
    fsd_stamp_of(&op->st, &st);
    fsd_session_put_info(&op->c->sess, r, &st);
  } else {
    fsd_session_fail(&op->c->sess, r, fsd_treeop_status(op->err), op->why);
  }
  fsd_op_unlock(op, name); /* after the event, so others commit after it */
  fsd_op_free(op);
}

/* The upload is done: stored (and durable unless --no-fsync), or failed.
 * renamed says the rename was done, so that a failure is the folder
 * flush's and the new file is in place all the same. Lets the next commit
 * of the name go, tells the register, and answers after the log. */
static void commit_finish(struct fsd_op *op, int renamed) {
  struct fsd_conn *c = op->c;
  struct fsd_req *r = op->r;
  struct fsd_stamp st;

  fsd_op_commit_done(op);
  /* A folder renamed or removed since the upload began may have taken the
   * file (or the folder it was made in) along: the register, which that
   * RENAME or DELETE updated already, must not get the old path; the
   * watcher looks instead. */
  op->h->puts_seen++;
  if (op->u.put.moves != op->h->tree_moves)
    r->elsewhere = 1;
  if (op->err == 0) {
    fsd_info("stored %s, %llu bytes (from %s)", r->name,
             (unsigned long long)op->st.st_size, c->peer);
  } else {
    if (op->err != UV_EEXIST)
      fsd_warn("commit of %s failed: %s", r->name, uv_strerror(op->err));
    op->why = renamed ? "the folder could not be flushed to disk"
                      : fsd_op_why(op->err);
  }
  if (op->err == 0 || renamed) { /* the new file is in place */
    fsd_watch_own_change(op->h->watch, r->name, r->name_len);
    if (r->elsewhere) { /* its folder moved meanwhile: look for it */
      fsd_watch_look(op->h->watch);
    } else {
      fsd_stamp_of(&op->st, &st);
      fsd_ctx_put(op->h->ctx, r->name, r->name_len, &st);
    }
  }
  fsd_op_after_log(op, commit_answer);
}

static void after_folder_sync(uv_work_t *w, int status);

/* "a/b/." for the folder a/b that holds path, "." for the root: how
 * FSD_FAIL_FSYNC names a folder (see flush()). */
static void folder_what(const char *path, char *what, size_t cap) {
  const char *slash = strrchr(path, '/');

  snprintf(what, cap, "%.*s.", slash != NULL ? (int)(slash - path) + 1 : 0,
           path);
}

/* Whether the folder of path is that of an entry of the batch before it. */
static int same_folder_before(const struct fsd_list *head,
                              const struct fsd_list *upto, const char *path) {
  const char *slash = strrchr(path, '/');
  size_t n = slash != NULL ? (size_t)(slash - path) : 0;

  for (const struct fsd_list *l = head->next; l != upto; l = l->next) {
    const struct fsd_op *o = fsd_container_of(l, struct fsd_op, cq.flink);
    const char *s2 = strrchr(o->r->name, '/');
    size_t n2 = s2 != NULL ? (size_t)(s2 - o->r->name) : 0;

    if (n2 == n && memcmp(o->r->name, path, n) == 0)
      return 1;
  }
  return 0;
}

/* Threadpool: the folder flushes that make a batch of renames durable, one
 * per folder the batch changed, through the folder each rename was made
 * in (held open since); then those folders are closed. The batch (the
 * commit queue's flushing list) does not change while its flush runs. */
static void folder_sync_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  const struct fsd_list *head = &op->h->commitq.flushing;

  op->err = 0;
  for (const struct fsd_list *l = head->next; l != head; l = l->next) {
    struct fsd_op *o = fsd_container_of(l, struct fsd_op, cq.flink);
    char what[FSP_PATH_MAX + 3];
    int r;

    /* Every entry's rename succeeded, with --no-fsync off: commit_work()
     * kept its folder open. */
    if (!same_folder_before(head, l, o->r->name)) {
      folder_what(o->r->name, what, sizeof(what));
      r = flush(o->u.put.dirfd, what);
      if (r != 0 && op->err == 0)
        op->err = r;
    }
    close(o->u.put.dirfd);
    o->u.put.dirfd = -1;
  }
}

/* Runs the folder flush of the batch whose first entry is e, on e's job. */
static void folder_sync_start(struct fsd_commitq_entry *e) {
  struct fsd_op *op = fsd_container_of(e, struct fsd_op, cq);

  if (fsd_op_queue(op, folder_sync_work, after_folder_sync) != 0) {
    op->jobs++; /* cannot happen: the loop is alive */
    op->err = UV_EIO;
    after_folder_sync(&op->work, 0);
  }
}

/* A folder flush ended: the next batch's flush starts, then every upload
 * of this batch is answered, in the order of their renames. */
static void after_folder_sync(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_commitq_entry *next;
  struct fsd_list done, *l;
  int err = op->err;

  (void)status;
  op->jobs--;
  if (err != 0)
    fsd_warn("flush of the folder failed: %s", uv_strerror(err));
  next = fsd_commitq_flushed(&op->h->commitq, &done);
  if (next != NULL)
    folder_sync_start(next);
  /* op is among them: it is not used after this. */
  while ((l = fsd_list_pop(&done)) != NULL) {
    struct fsd_op *o = fsd_container_of(l, struct fsd_op, cq.flink);
    o->jobs--; /* it was waiting */
    o->err = err;
    commit_finish(o, 1);
  }
}

/* The rename job ended. With --no-fsync, or when it failed, that is the
 * end; else the rename waits for a flush of the folder (which many
 * renames share, see commitq.h) before the answer. */
static void after_commit(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_commitq_entry *first;

  (void)status;
  op->jobs--;
  fsd_space_seen(&op->h->space, op->vfs_avail, op->space_mark);
  if (op->err != 0)
    fsd_watch_unexpect(op->h->watch, op->r->name, op->r->name_len);
  if (op->err != 0 || op->h->no_fsync) {
    commit_finish(op, 0);
    return;
  }
  /* A stat the watcher began before the rename must not be applied after
   * it (the register learns of it only after the flush). */
  fsd_watch_own_change(op->h->watch, op->r->name, op->r->name_len);
  op->jobs++; /* waiting for the flush counts as a job */
  first = fsd_commitq_changed(&op->h->commitq, &op->cq);
  if (first != NULL)
    folder_sync_start(first);
}

/* Moves a PUT along once its disk writes are done: commit, or clean up. */
static void step(struct fsd_op *op) {
  struct fsd_put *p = &op->u.put;

  if (op->jobs > 0 || p->writes > 0 || p->flushing || p->cleaning)
    return;
  if (op->aborted || op->status != 0 || op->c->hard) {
    p->cleaning = 1;
    if (fsd_op_queue(op, cleanup_work, after_cleanup) != 0)
      after_cleanup(&op->work, 0); /* cannot happen: the loop is alive */
    return;
  }
  if (!p->commit)
    return;
  p->commit = 0;
  /* The data flush runs before the name's turn, so the flushes of many
   * uploads run side by side (the file system's journal commits them
   * together) instead of one after another in the commit queue. */
  if (op->h->no_fsync) {
    commit(op);
  } else if (fsd_op_queue(op, sync_work, after_sync) != 0) {
    op->jobs++; /* cannot happen: the loop is alive */
    op->err = UV_EIO;
    after_sync(&op->work, 0);
  }
}

/* Threadpool: writes the pieces writer_start() gathered. */
static void writer_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  struct fsd_put *p = &op->u.put;
  struct fsd_pseg *first =
      fsd_container_of(p->queue.next, struct fsd_pseg, link);
  uint64_t end = first->off + p->busy_len;
  uint64_t size = op->r->size;

  /* Set aside the next RESERVE_STEP once the writes reach the end of what
   * is set aside (see put_open_work()). A failure is no loss: the write
   * itself then reports a full disk. */
  if (size > PUT_SMALL && end > p->falloc_end && p->falloc_end < size) {
    uint64_t to = end + RESERVE_STEP < size ? end + RESERVE_STEP : size;
    if (fsd_reserve(op->fd, p->falloc_end, to - p->falloc_end) == 0)
      p->falloc_end = to;
  }
  p->res = fsd_write_at(op->fd, p->job->iov, (int)p->nbusy, first->off);
}

/* Threadpool: starts the writeback of what was written since the last. */
static void flush_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  struct fsd_put *p = &op->u.put;

  fsd_writeback_start(op->fd, p->flushed, p->fl_end - p->flushed);
}

static void flush_maybe(struct fsd_op *op);

static void flush_done(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_put *p = &op->u.put;

  (void)status;
  p->flushing = 0;
  p->flushed = p->fl_end;
  flush_maybe(op);
  step(op);
}

/* Starts the writeback of what was written since the last one, once there
 * is PUT_FLUSH_STEP of it. Left to the kernel, the pages of a large upload
 * stay dirty until the fsync before the commit, which then writes all of
 * them while the client waits; started early, the disk writes them while
 * the rest arrives. A separate job, so that a disk queue that is full
 * delays the writeback, not the next write; the upload waits for it
 * (flushing) before its commit or cleanup. A failure is no loss: the fsync
 * reports write errors. */
static void flush_maybe(struct fsd_op *op) {
  struct fsd_put *p = &op->u.put;

  if (!op->h->writeback || p->flushing || op->status != 0 || op->aborted ||
      op->c->hard || p->written - p->flushed < PUT_FLUSH_STEP)
    return;
  p->fl_end = p->written;
  p->flush.data = op;
  if (uv_queue_work(op->h->loop, &p->flush, flush_work, flush_done) == 0)
    p->flushing = 1;
}

static void writer_done(uv_work_t *w, int status);

/* Starts a job writing the queued pieces: as many as are contiguous in the
 * file, at most FSD_PUT_IOV. */
static void writer_start(struct fsd_op *op) {
  struct fsd_put *p = &op->u.put;
  struct fsd_list *l, *n;
  uint64_t next = 0;

  p->nbusy = 0;
  p->busy_len = 0;
  fsd_list_each_safe(l, n, &p->queue) {
    struct fsd_pseg *sg = fsd_container_of(l, struct fsd_pseg, link);
    if (p->nbusy == FSD_PUT_IOV || (p->nbusy > 0 && sg->off != next))
      break;
    p->job->iov[p->nbusy].iov_base = (void *)sg->p;
    p->job->iov[p->nbusy].iov_len = sg->len;
    p->nbusy++;
    p->busy_len += sg->len;
    next = sg->off + sg->len;
  }
  p->job->work.data = op;
  if ((op->small ? fsd_host_queue_small(op->h, &p->job->small, &p->job->work,
                                        writer_work, writer_done)
                 : uv_queue_work(op->h->loop, &p->job->work, writer_work,
                                 writer_done)) != 0) {
    p->res = UV_EIO; /* cannot happen: the loop is alive */
    writer_done(&p->job->work, 0);
  }
}

/* Unlinks the first n queued pieces and lets go of their buffers. */
static void writer_drop(struct fsd_op *op, unsigned n) {
  struct fsd_put *p = &op->u.put;
  struct fsd_conn *c = op->c;
  struct fsd_list *l;

  while (n-- > 0 && (l = fsd_list_pop(&p->queue)) != NULL) {
    struct fsd_pseg *sg = fsd_container_of(l, struct fsd_pseg, link);
    if (--sg->b->pins == 0)
      c->put_mem -= sg->b->cap;
    fsd_buf_unref(&c->net->rpool, sg->b);
    c->put_writes--;
    p->writes--;
    fsd_free(sg);
  }
}

/* A write job ended: let go of its pieces, start the next one with what
 * queued meanwhile, or drop that when the upload failed or was dropped. */
static void writer_done(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_put *p = &op->u.put;
  struct fsd_conn *c = op->c;
  ssize_t res = p->res;
  size_t len = p->busy_len;

  (void)status;
  writer_drop(op, p->nbusy);
  p->nbusy = 0;
  if (res > 0)
    p->written += (uint64_t)res;
  on_disk(op, p->written > p->falloc_end ? p->written : p->falloc_end);
  flush_maybe(op);
  if ((res < 0 || (size_t)res != len) && op->status == 0) {
    int err = res < 0 ? (int)res : UV_ENOSPC;
    fsd_warn("write of %s failed: %s", op->r->name, uv_strerror(err));
    op->status = fsd_status_from_uv(err);
    fsd_session_failing(&c->sess, op->r, op->status, NULL);
  }
  if (!fsd_list_empty(&p->queue)) {
    if (op->status != 0 || op->aborted || c->hard)
      writer_drop(op, UINT_MAX); /* nobody will commit them */
    else
      writer_start(op);
  }
  step(op);
  fsd_conn_update_reading(c);
}

/* Queues upload bytes; see put.h. */
int fsd_put_write(struct fsd_op *op, const uint8_t *bytes, size_t n,
                  uint64_t off) {
  struct fsd_put *p = &op->u.put;
  struct fsd_conn *c = op->c;
  struct fsd_pseg *sg;

  if (op->status != 0 || op->aborted)
    return UV_ECANCELED;
  if (p->job == NULL)
    p->job = fsd_malloc(sizeof(*p->job));
  sg = p->job != NULL ? fsd_malloc(sizeof(*sg)) : NULL;
  if (sg == NULL) {
    op->status = FSP_ST_IO;
    fsd_session_failing(&c->sess, op->r, FSP_ST_IO, "out of memory");
    step(op);
    return UV_ENOMEM;
  }
  sg->b = c->rb;
  sg->p = bytes;
  sg->len = n;
  sg->off = off;
  c->rb->refs++;
  if (c->rb->pins++ == 0)
    c->put_mem += c->rb->cap;
  fsd_list_append(&p->queue, &sg->link);
  p->writes++;
  p->last_data = uv_now(op->h->loop);
  c->put_writes++;
  if (p->nbusy == 0)
    writer_start(op);
  fsd_conn_update_reading(c);
  return 0;
}

/* Commits once written; see put.h. */
void fsd_put_commit(struct fsd_op *op) {
  op->u.put.commit = 1;
  step(op);
}

/* Ends c's uploads that received no DATA for limit ms (nginx's
 * client_body_timeout) with ERROR TIMEOUT: their temp files and disk
 * promises go, the connection stays. Not while reading is paused: then
 * the client waits for us. */
static void timeouts(struct fsd_conn *c, uint64_t now, uint64_t limit,
                     unsigned secs) {
  struct fsd_req *r, *next;

  if (c->paused || c->hard || c->closing)
    return;
  for (r = c->sess.reqs; r != NULL; r = next) {
    struct fsd_op *op = r->op;
    uint64_t since;
    next = r->next;
    if (r->opcode != FSP_OP_PUT || r->state != FSD_REQ_RECEIVING ||
        op == NULL || op->status != 0)
      continue;
    since = op->u.put.last_data > c->unpaused_at ? op->u.put.last_data
                                                 : c->unpaused_at;
    if (now - since <= limit)
      continue;
    fsd_info("upload of %s from %s got no data for %u s, dropped", r->name,
             c->peer, secs);
    op->status = FSP_ST_TIMEOUT;
    fsd_session_failing(&c->sess, r, FSP_ST_TIMEOUT,
                        "no data for the idle timeout");
    step(op);
  }
}

/* Times out stalled uploads; see put.h. */
void fsd_put_sweep(struct fsd_net *net) {
  uint64_t now = uv_now(net->loop);
  struct fsd_list *l, *n;

  if (net->idle_timeout == 0)
    return;
  fsd_list_each_safe(l, n, &net->conns) {
    timeouts(fsd_container_of(l, struct fsd_conn, link), now,
             (uint64_t)net->idle_timeout * 1000u, net->idle_timeout);
  }
}

/* Drops the upload; see put.h. */
void fsd_put_abort(struct fsd_op *op) {
  op->aborted = 1;
  step(op);
}
