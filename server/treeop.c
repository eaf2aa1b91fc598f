/* MKDIR, RENAME, DELETE of a folder, and a PUT's folder; see treeop.h. */
#define _GNU_SOURCE /* O_PATH */
#include "treeop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"
#include "tree.h"

/* SKIPPED frames one DELETE sends at most (protocol.md section 12). */
#define MAX_SKIPPED 1000u

/* Threadpool: looks at each folder of path[0..len) from offset from on
 * (the first one a mkdir created), parents first. NULL when none, or out
 * of memory (then the watcher reports them). */
static struct fsd_made *made_look(int rootfd, const char *path, size_t len,
                                  size_t from) {
  char buf[FSP_PATH_MAX + 1];
  struct fsd_made *m;
  size_t n = 1;

  if (from >= len)
    return NULL;
  for (size_t i = from; i < len; i++)
    n += path[i] == '/';
  m = fsd_malloc(sizeof(*m) + n * sizeof(m->v[0]));
  if (m == NULL)
    return NULL;
  m->n = 0;
  memcpy(buf, path, len);
  buf[len] = '\0';
  for (size_t i = from; i <= len; i++) {
    struct fsd_tree_info info;
    if (i < len && buf[i] != '/')
      continue;
    buf[i] = '\0';
    if (fsd_tree_stat(rootfd, buf, &info) == 0) {
      m->v[m->n].len = (uint16_t)i;
      m->v[m->n].ino = info.ino;
      m->v[m->n].mtime_ns = info.mtime_ns;
      m->n++;
    }
    if (i < len)
      buf[i] = '/';
  }
  return m;
}

/* Loop: records the folders made (their added events, parents first) and
 * frees the list. */
static void made_apply(struct fsd_op *op, const char *path,
                       struct fsd_made **mp) {
  struct fsd_made *m = *mp;

  if (m == NULL)
    return;
  for (size_t i = 0; i < m->n; i++) {
    struct fsd_stamp st = {0, m->v[i].mtime_ns, m->v[i].ino, 0};
    fsd_watch_own_change(op->h->watch, path, m->v[i].len);
    fsd_ctx_folder(op->h->ctx, path, m->v[i].len, &st);
  }
  fsd_free(m);
  *mp = NULL;
}

/* ------------------------------------------------------------------------ */
/* MKDIR                                                                     */

/* Once the register's events are in the log (fsd_op_after_log): OK or
 * the error, and op ends. */
static void tree_answer(struct fsd_op *op) {
  struct fsd_req *r = op->r;
  char msg[96];

  if (op->err == 0) {
    fsd_session_ok(&op->c->sess, r);
  } else if (op->kind == FSP_OP_DELETE && op->err == UV_ENOTEMPTY &&
             op->u.tree.nskipped > 0) {
    snprintf(msg, sizeof(msg), "%zu entries remained", op->u.tree.nskipped);
    fsd_session_fail(&op->c->sess, r, FSP_ST_NOT_EMPTY, msg);
  } else {
    fsd_session_fail(&op->c->sess, r, fsd_tree_status(op->err), NULL);
  }
  fsd_op_free(op);
}

static void mkdir_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  size_t created = 0;

  op->err = fsd_tree_mkdir(op->h->rootfd, op->r->name,
                           (op->r->flags & FSP_MKDIR_PARENTS) != 0,
                           !op->h->no_fsync, &created);
  op->u.tree.made = NULL;
  if (op->err == 0)
    op->u.tree.made =
        made_look(op->h->rootfd, op->r->name, op->r->name_len, created);
}

static void after_mkdir(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_req *r = op->r;

  (void)status;
  op->jobs--;
  if (op->err == 0) {
    /* Parents first, each with its event. */
    made_apply(op, r->name, &op->u.tree.made);
    fsd_info("made folder %s (by %s)", r->name, op->c->peer);
  }
  fsd_op_after_log(op, tree_answer);
}

/* ------------------------------------------------------------------------ */
/* RENAME                                                                    */

static void rename_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  struct fsd_tree_info info;

  memset(&info, 0, sizeof(info));
  op->err = fsd_tree_rename(op->h->rootfd, op->r->name, op->r->to,
                            (op->r->flags & FSP_RENAME_NO_REPLACE) != 0,
                            !op->h->no_fsync, &info);
  op->u.tree.type = info.type;
  memset(&op->u.tree.st, 0, sizeof(op->u.tree.st));
  op->u.tree.st.size = info.size;
  op->u.tree.st.mtime_ns = info.mtime_ns;
  /* A rename moves a file's ctime: the register takes the version as it
   * is now, so that the watcher's look finds nothing new. */
  if (op->err == 0 && info.type == FSP_TYPE_FILE)
    fsd_stat_file(op->h->rootfd, op->r->to, &op->u.tree.st);
}

/* A RENAME or folder DELETE ended: when uploads started or ended while it
 * ran, their accounts and its own may have crossed in the register (a
 * file committed into a folder this job moved or removed): the watcher
 * rescans. Uploads alone, or tree jobs alone, need none. */
static void raced(struct fsd_op *op) {
  if (op->h->puts_seen != op->u.tree.puts_at)
    fsd_watch_look(op->h->watch);
}

static void after_rename(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_req *r = op->r;

  (void)status;
  op->jobs--;
  op->h->tree_moves++;
  if (op->err == 0) {
    fsd_ctx_rename(op->h->ctx, r->name, r->name_len, r->to, r->to_len,
                   op->u.tree.type, &op->u.tree.st);
    fsd_info("renamed %s to %s (by %s)", r->name, r->to, op->c->peer);
  }
  fsd_watch_release(op->h->watch, r->name, r->name_len);
  fsd_watch_release(op->h->watch, r->to, r->to_len);
  raced(op);
  fsd_op_after_log(op, tree_answer);
}

/* ------------------------------------------------------------------------ */
/* DELETE of a folder                                                        */

/* The SKIPPED status of an entry a removal left (protocol.md 12). */
static uint16_t skip_status(int err) {
  return err == UV_ENOENT ? FSP_ST_NOT_FOUND : fsd_tree_status(err);
}

/* Keeps what the removal did to one entry, for the loop to report. */
static int report(void *arg, const char *path, size_t len, uint8_t type,
                  int err) {
  struct fsd_op *op = arg;
  struct fsd_treeop *t = &op->u.tree;
  struct fsd_treeop_rec *rec;

  if (err < 0 && t->nskipped++ >= MAX_SKIPPED)
    return 0; /* counted, not reported */
  if (t->n == t->cap) {
    size_t ncap = t->cap != 0 ? t->cap * 2 : 64;
    void *v = fsd_realloc(t->v, ncap * sizeof(*t->v));
    if (v == NULL)
      return 0; /* the register catches up at the next rescan */
    t->v = v;
    t->cap = ncap;
  }
  rec = &t->v[t->n];
  rec->path = fsd_malloc(len + 1);
  if (rec->path == NULL)
    return 0;
  memcpy(rec->path, path, len + 1);
  rec->len = (uint16_t)len;
  rec->type = type;
  rec->status = err < 0 ? skip_status(err) : 0;
  t->n++;
  return 0;
}

static void delete_work(uv_work_t *w) {
  struct fsd_op *op = w->data;

  op->err = fsd_tree_remove(op->h->rootfd, op->r->name,
                            (op->r->flags & FSP_DELETE_RECURSIVE) != 0,
                            !op->h->no_fsync, report, op);
  op->vfs_avail = fsd_free_bytes(op->h->rootfd);
}

static void after_delete(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_treeop *t = &op->u.tree;
  struct fsd_req *r = op->r;
  int64_t now = fsd_now_ns();

  (void)status;
  op->jobs--;
  fsd_space_seen(&op->h->space, op->vfs_avail, op->space_mark);
  /* Events and SKIPPED frames in the order of the removal: contents
   * before their folder. */
  for (size_t i = 0; i < t->n; i++) {
    struct fsd_treeop_rec *rec = &t->v[i];
    if (rec->status == 0) {
      fsd_ctx_remove(op->h->ctx, rec->path, rec->len, now);
    } else {
      fsd_session_skipped(&op->c->sess, r, rec->status, rec->path, rec->len);
    }
    fsd_free(rec->path);
  }
  fsd_free(t->v);
  t->v = NULL;
  t->n = 0;
  op->h->tree_moves++;
  fsd_watch_release(op->h->watch, r->name, r->name_len);
  raced(op);
  if (op->err == 0)
    fsd_info("deleted folder %s (by %s)", r->name, op->c->peer);
  fsd_op_after_log(op, tree_answer);
}

/* Starts a tree request; see treeop.h. */
int fsd_treeop_start(struct fsd_op *op) {
  struct fsd_req *r = op->r;
  int err;

  switch (op->kind) {
  case FSP_OP_MKDIR:
    return fsd_op_queue(op, mkdir_work, after_mkdir);
  case FSP_OP_RENAME:
    op->u.tree.puts_at = op->h->puts_seen;
    err = fsd_op_queue(op, rename_work, after_rename);
    if (err == 0) {
      fsd_watch_hold(op->h->watch, r->name, r->name_len);
      fsd_watch_hold(op->h->watch, r->to, r->to_len);
    }
    return err;
  default:
    op->u.tree.puts_at = op->h->puts_seen;
    op->space_mark = fsd_space_mark(&op->h->space);
    err = fsd_op_queue(op, delete_work, after_delete);
    if (err == 0)
      fsd_watch_hold(op->h->watch, r->name, r->name_len);
    return err;
  }
}

/* ------------------------------------------------------------------------ */
/* A PUT's folder                                                            */

/* Opens the target's folder; see treeop.h. */
int fsd_treeop_put_dir(struct fsd_op *op) {
  struct fsd_put *p = &op->u.put;
  const char *path = op->r->name;
  const char *slash = strrchr(path, '/');
  struct stat st;
  int fd;

  p->dirfd = -1;
  p->made = NULL;
  /* PARENTS: the folder is most often there already (a tree's files after
   * its first); mkdir -p, a mkdir and an open per component, only when
   * it is not. */
  fd = fsd_tree_open_parent(op->h->rootfd, path, &p->leaf);
  if (fd == UV_ENOENT && slash != NULL && (op->r->flags & FSP_PUT_PARENTS)) {
    char dir[FSP_PATH_MAX + 1];
    size_t dlen = (size_t)(slash - path), created = 0;
    int err;

    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
    err = fsd_tree_mkdir(op->h->rootfd, dir, 1, !op->h->no_fsync, &created);
    if (err != 0)
      return err == UV_EEXIST ? UV_ENOTDIR : err; /* a file in the way */
    p->made = made_look(op->h->rootfd, dir, dlen, created);
    fd = fsd_tree_open_parent(op->h->rootfd, path, &p->leaf);
  }
  if (fd < 0)
    return fd;
  p->replacing = 0;
  if (fstatat(fd, p->leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) {
      close(fd);
      return UV_EISDIR;
    }
    p->replacing = 1;
  }
  p->dirfd = fd;
  return 0;
}

/* Tells the watcher where a PUT may make folders; see treeop.h. */
void fsd_treeop_put_hold(struct fsd_op *op) {
  const struct fsd_treereg *tree = &op->h->ctx->tree;
  const char *path = op->r->name;
  const char *slash = strrchr(path, '/');
  size_t end, pos = 0;

  op->u.put.making = 0;
  if (!(op->r->flags & FSP_PUT_PARENTS) || slash == NULL ||
      fsd_treereg_get(tree, path, (size_t)(slash - path)) != NULL)
    return; /* nothing to make, or its folder is known */
  end = (size_t)(slash - path);
  for (;;) {
    const char *s = memchr(path + pos, '/', end - pos);
    size_t e = s != NULL ? (size_t)(s - path) : end;

    if (fsd_treereg_get(tree, path, e) == NULL) {
      fsd_watch_making(op->h->watch, path, e);
      op->u.put.making = (uint16_t)e;
      return;
    }
    pos = e + 1;
  }
}

/* Records the folders a PUT made; see treeop.h. */
void fsd_treeop_put_made(struct fsd_op *op) {
  made_apply(op, op->r->name, &op->u.put.made);
  if (op->u.put.making != 0)
    fsd_watch_made(op->h->watch, op->r->name, op->u.put.making);
  op->u.put.making = 0;
}

/* Whether a PUT's path leads to its file; see treeop.h. */
int fsd_treeop_put_landed(struct fsd_op *op) {
  /* Which file the path leads to, not which version: one look will do. */
  int fd = fsd_tree_open(op->h->rootfd, op->r->name, O_PATH);
  struct stat st;
  int same;

  if (fd < 0)
    return 0;
  same = fstat(fd, &st) == 0 && st.st_ino == op->st.st_ino &&
         st.st_dev == op->st.st_dev;
  close(fd);
  return same;
}

/* A PUT's failure as a wire status; see treeop.h. */
uint16_t fsd_treeop_status(int err) {
  switch (err) {
  case UV_ENOTDIR:
  case UV_EISDIR:
    return fsd_tree_status(err);
  default:
    return fsd_status_from_uv(err);
  }
}
