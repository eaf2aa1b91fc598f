/* fsc downloads: get. Each NAME is a job that opens its local file
 * (a temporary file beside the target, the resumable NAME.fsc-part with
 * --continue, or the target itself for stdout and devices), sends GET (after
 * HASH when resuming), queues the DATA pieces it receives without copying
 * them, writes them with uv_fs_write in big gathered writes, and moves the
 * file into place only after END's size and checksum matched. A get -r job
 * sends GET first: a small file (BEGIN says) is held in memory and stored
 * whole by one threadpool job (store.c); a bigger one opens its file then. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "batch.h"
#include "cmds.h"
#include "fmt.h"
#include "job.h"
#include "getr.h"
#include "path.h"
#include "rpath.h"
#include "store.h"
#include "xfer.h"

/* Downloads: stop reading the socket while this many received bytes wait
 * for the disk, and start again below the low mark. */
#define GET_HIGH_WATER (16u << 20)
#define GET_LOW_WATER (4u << 20)
/* Pieces written to disk with one call, and the bytes worth a call: each
 * write is a trip through the threadpool, so small pieces are gathered. */
#define GET_IOV 64
#define GET_WRITE_MIN (1u << 20)
/* Downloads in flight at once: enough to keep a fast link busy with small
 * files, few enough that each gets the disk's attention. */
#define GET_PARALLEL 16
/* Reads of a partial copy being hashed before a resume. */
#define GET_PREFIX_CHUNK (1u << 20)

struct piece {
  struct fsc_rblock *blk;
  const uint8_t *p;
  size_t n;
};

enum get_phase {
  GP_OPEN,   /* opening the file to write */
  GP_PREFIX, /* hashing the partial copy */
  GP_XFER,   /* request in flight */
  GP_STORE,  /* get -r, a small file: stored in one threadpool job */
  GP_VERIFY, /* resumed: HASH of the whole file in flight */
  GP_CLOSE,  /* closing the file */
  GP_RENAME, /* moving it into place */
  GP_UNLINK, /* removing the temporary file */
  GP_DONE,
};

struct get_job {
  struct fsc_job j;
  char rpath[FSP_PATH_MAX + 1]; /* the file's path on the server */
  char target[PATH_MAX];        /* where the file ends up ("-": stdout) */
  char work[PATH_MAX];          /* the file being written */
  int direct;    /* writing into target itself (stdout, a device) */
  int keep_part; /* on failure, keep work (resumable) */
  /* get -r -c: a file is already at target. Its hash and size are checked
   * against the server's (HASH of one byte more than it holds: the
   * DIGEST's length, clamped to the server's file, then says whether the
   * sizes match too); the same file is kept as it is, another is fetched
   * through TARGET.fsc-part. */
  int checking; /* fd is the target, being hashed */
  int same;     /* the target was this file already */
  int fd;       /* -1 when not open */
  int own_fd;   /* fd is ours to close */
  enum get_phase phase;
  struct fsc_get sm;
  uv_fs_t fs; /* the one file operation in flight */
  int fs_busy;
  uint8_t *iobuf;      /* prefix hashing buffer */
  uint64_t prefix_off; /* prefix bytes hashed so far */
  struct piece *q;     /* received pieces waiting for the disk */
  size_t qlen, qcap;
  uint64_t qbytes;                /* bytes in q */
  struct piece inflight[GET_IOV]; /* pieces being written */
  size_t ninflight;
  uint64_t woff; /* file offset of the next write */
  int cancel_sent;
  /* get -r sends GET before it opens anything; BEGIN says which way the
   * file goes. A small one is held in memory and stored by one threadpool
   * job (store.c) once END vouched for it; a bigger one opens its file
   * then (late), while its first pieces wait in the queue. */
  int tree_pending;      /* GET sent, BEGIN not yet here */
  int small;             /* held in sbuf */
  int late;              /* the file is opened after the GET went out */
  uint8_t *sbuf;         /* the small file's bytes */
  size_t slen;           /* bytes in sbuf */
  struct fsb_item store; /* the store job (store.c via batch.c) */
  unsigned smode;        /* the new file's permissions */
  struct fsc_store_res stored;
};

static void get_step(struct get_job *g);

/* Reports the download's first error. */
#define get_error(g, ...) fsc_job_error(&(g)->j, "get", __VA_ARGS__)

static struct get_run *get_run(const struct get_job *g) {
  return g->j.run->state;
}

static void drop_queue(struct get_job *g) {
  struct get_run *gr = get_run(g);
  for (size_t i = 0; i < g->qlen; i++) {
    gr->waiting -= g->q[i].n;
    fsc_rblock_unref(g->q[i].blk);
  }
  g->qlen = 0;
  g->qbytes = 0;
}

static void get_write(struct get_job *g);

static const struct fsc_job_ops get_job_ops;

static void check_water(struct fsc_run *r) {
  struct get_run *gr = r->state;
  struct fsc_conn *c = &r->app->conn;
  if (!gr->paused && gr->waiting > GET_HIGH_WATER) {
    gr->paused = 1;
    fsc_conn_pause(c);
    /* Nothing more arrives until the disk catches up: write out what
     * every download holds, however little. */
    for (int i = 0; i < r->njobs; i++) {
      struct fsc_job *j = fsc_run_job(r, i, &get_job_ops);
      if (j != NULL && !j->finished)
        get_write((struct get_job *)j);
    }
  } else if (gr->paused && gr->waiting < GET_LOW_WATER) {
    gr->paused = 0;
    fsc_conn_resume(c);
  }
}

/* The download failed or was canceled while the server may still send:
 * tell it to stop. Frames until its final answer are ignored. */
static void get_cancel_request(struct get_job *g) {
  fsc_job_cancel_request(&g->j, &g->cancel_sent);
}

static void get_fail(struct get_job *g) {
  drop_queue(g);
  get_cancel_request(g);
  check_water(g->j.run);
  get_step(g);
}

static void on_get_write(uv_fs_t *req) {
  struct get_job *g = req->data;
  struct fsc_run *r = g->j.run;
  struct get_run *gr = r->state;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  size_t written = res > 0 ? (size_t)res : 0;
  size_t left = written, i = 0;
  for (; i < g->ninflight && left >= g->inflight[i].n; i++) {
    left -= g->inflight[i].n;
    fsc_rblock_unref(g->inflight[i].blk);
  }
  if (i < g->ninflight) {
    /* A short write (libuv reports the bytes written before an error,
     * such as a full disk or a file size limit, and drops the error): put
     * the rest back in front of the queue. Writing it again either works
     * or brings the error out. */
    size_t k = g->ninflight - i;
    g->inflight[i].p += left;
    g->inflight[i].n -= left;
    if (g->qlen + k > g->qcap) {
      size_t nc = g->qlen + k + GET_IOV;
      struct piece *nq = fsc_realloc(g->q, nc * sizeof *nq);
      if (nq == NULL) {
        for (; i < g->ninflight; i++) {
          gr->waiting -= g->inflight[i].n;
          fsc_rblock_unref(g->inflight[i].blk);
        }
        g->ninflight = 0;
        gr->waiting -= written;
        get_error(g, "%s", fsc_strerror(UV_ENOMEM));
        get_fail(g);
        return;
      }
      g->q = nq;
      g->qcap = nc;
    }
    memmove(g->q + k, g->q, g->qlen * sizeof g->q[0]);
    for (size_t m = 0; m < k; m++) {
      g->q[m] = g->inflight[i + m];
      g->qbytes += g->q[m].n;
    }
    g->qlen += k;
  }
  g->ninflight = 0;
  gr->waiting -= written;
  if (res < 0) {
    get_error(g, "cannot write %s: %s", g->direct ? g->target : g->work,
              uv_strerror((int)res));
    get_fail(g);
    return;
  }
  if (res == 0 && g->qbytes > 0) {
    /* No progress at all: do not spin. */
    get_error(g, "cannot write %s: nothing was written",
              g->direct ? g->target : g->work);
    get_fail(g);
    return;
  }
  g->woff += written;
  gr->prog.done += written;
  check_water(r);
  get_step(g);
}

/* Writes what is queued, in one call for up to GET_IOV pieces. */
static void get_write(struct get_job *g) {
  if (g->fs_busy || g->qlen == 0 || g->fd < 0 || g->j.failed)
    return;
  if (g->qbytes < GET_WRITE_MIN && g->sm.state == FSC_GET_DATA &&
      !get_run(g)->paused)
    return; /* more is on its way: write it together */
  uv_buf_t iov[GET_IOV];
  size_t n = g->qlen < GET_IOV ? g->qlen : GET_IOV;
  for (size_t i = 0; i < n; i++) {
    g->inflight[i] = g->q[i];
    g->qbytes -= g->q[i].n;
    iov[i] = uv_buf_init((char *)g->q[i].p, (unsigned)g->q[i].n);
  }
  g->ninflight = n;
  memmove(g->q, g->q + n, (g->qlen - n) * sizeof g->q[0]);
  g->qlen -= n;
  g->fs.data = g;
  g->fs_busy = 1;
  /* A pipe or terminal has no offsets: write at its current position. */
  int64_t off = g->direct ? -1 : (int64_t)g->woff;
  int rc = uv_fs_write(g->j.run->app->loop, &g->fs, g->fd, iov, (unsigned)n,
                       off, on_get_write);
  fsc_fs_started(&g->fs, rc, on_get_write);
}

static void get_data(struct fsc_req *req, const uint8_t *p, size_t n,
                     struct fsc_rblock *blk) {
  struct get_job *g = req->data;
  struct fsc_run *r = g->j.run;
  if (g->j.failed || g->phase != GP_XFER)
    return; /* canceled: the rest is discarded */
  int rc = fsc_get_on_data(&g->sm, p, n);
  if (rc < 0) {
    get_error(g, "%s", fsc_strerror(rc));
    get_fail(g);
    return;
  }
  if (n == 0)
    return;
  if (g->small) {
    /* fsc_get_on_data checked it fits what BEGIN announced. */
    memcpy(g->sbuf + g->slen, p, n);
    g->slen += n;
    return;
  }
  if (g->qlen == g->qcap) {
    size_t nc = g->qcap ? 2 * g->qcap : GET_IOV;
    struct piece *nq = fsc_realloc(g->q, nc * sizeof *nq);
    if (nq == NULL) {
      get_error(g, "%s", fsc_strerror(UV_ENOMEM));
      get_fail(g);
      return;
    }
    g->q = nq;
    g->qcap = nc;
  }
  fsc_rblock_ref(blk);
  g->q[g->qlen].blk = blk;
  g->q[g->qlen].p = p;
  g->q[g->qlen].n = n;
  g->qlen++;
  g->qbytes += n;
  get_run(g)->waiting += n;
  check_water(r);
  get_write(g);
}

static int send_range(struct get_job *g, uint8_t op, uint64_t off,
                      uint64_t len) {
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = op;
  m.u.range.offset = off;
  m.u.range.length = len;
  m.u.range.name.ptr = g->rpath;
  m.u.range.name.len = strlen(g->rpath);
  fsc_conn_finish(&g->j.run->app->conn, &g->j.req);
  g->j.req_done = 0;
  g->cancel_sent = 0;
  int rc = fsc_conn_request(&g->j.run->app->conn, &g->j.req, &m);
  if (rc < 0) {
    get_error(g, "%s", fsc_strerror(rc));
    g->j.req_done = 1;
  }
  return rc;
}

static void get_start_transfer(struct get_job *g) {
  g->phase = GP_XFER;
  if (send_range(g, FSP_OP_GET, g->sm.offset, FSP_LENGTH_TO_END) < 0)
    get_step(g);
}

static void on_truncated(uv_fs_t *req) {
  struct get_job *g = req->data;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  if (res < 0) {
    get_error(g, "cannot truncate %s: %s", g->work, uv_strerror((int)res));
    get_step(g);
    return;
  }
  get_start_transfer(g);
}

static void on_target_stat(uv_fs_t *req);
static void get_tree_begin(struct get_job *g);
static void check_over(struct get_job *g);

static void get_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct get_job *g = req->data;
  struct fsc_run *r = g->j.run;
  char msg[FSC_MSG_MAX];
  int rc;
  if (m->op == FSP_OP_ERROR) {
    g->j.req_done = 1;
    fsc_conn_finish(&r->app->conn, req);
    if (!g->j.failed) {
      fsc_server_msg(msg, sizeof msg, m);
      get_error(g, "%s%s", msg,
                m->u.error.status == FSP_ST_IS_FOLDER
                    ? " (get -r fetches folders)"
                    : "");
      if (m->u.error.status == FSP_ST_NOT_FOUND ||
          m->u.error.status == FSP_ST_RANGE)
        g->keep_part = 0;
    }
    get_fail(g);
    return;
  }
  if (g->j.failed) {
    /* Canceled: wait for the final frame, ignore the rest. */
    if (m->op == FSP_OP_END || m->op == FSP_OP_DIGEST) {
      g->j.req_done = 1;
      fsc_conn_finish(&r->app->conn, req);
      get_step(g);
    }
    return;
  }
  switch (m->op) {
  case FSP_OP_DIGEST:
    g->j.req_done = 1;
    fsc_conn_finish(&r->app->conn, req);
    if (g->phase == GP_VERIFY) {
      if (m->u.digest.length != g->woff ||
          m->u.digest.hash != fsc_get_whole_hash(&g->sm)) {
        get_error(g, "%s (the file changed on the server while resuming)",
                  fsc_strerror(FSC_ECHECKSUM));
        g->keep_part = 0;
      }
      g->phase = GP_CLOSE;
      get_step(g);
      return;
    }
    if (g->checking && g->sm.prefix == 0) /* an empty file there */
      rc = m->u.digest.offset == 0 && m->u.digest.length == 0;
    else
      rc = fsc_get_on_digest(&g->sm, m);
    if (rc < 0) {
      get_error(g, "%s", fsc_strerror(rc));
      get_step(g);
    } else if (g->checking && rc == 1) {
      /* get -r -c: the same bytes, and as many: keep the file there. */
      g->checking = 0;
      g->same = 1;
      get_run(g)->prog.done += g->sm.prefix;
      g->phase = GP_CLOSE;
      get_step(g);
    } else if (g->checking) {
      check_over(g);
    } else if (rc == 0) {
      /* The partial copy is not the start of this file: start over. */
      g->woff = 0;
      g->fs.data = g;
      g->fs_busy = 1;
      rc = uv_fs_ftruncate(r->app->loop, &g->fs, g->fd, 0, on_truncated);
      fsc_fs_started(&g->fs, rc, on_truncated);
    } else {
      g->woff = g->sm.offset;
      get_run(g)->prog.done += g->sm.offset;
      get_start_transfer(g);
    }
    return;
  case FSP_OP_BEGIN:
    rc = fsc_get_on_begin(&g->sm, m);
    if (rc < 0) {
      get_error(g, "%s", fsc_strerror(rc));
      get_fail(g);
      return;
    }
    if (!get_run(g)->tree) { /* get -r counted the listed sizes */
      get_run(g)->prog.total += g->sm.offset + g->sm.length;
      get_run(g)->prog.sizes_known++;
    }
    if (g->tree_pending)
      get_tree_begin(g);
    return;
  case FSP_OP_END:
    g->j.req_done = 1;
    fsc_conn_finish(&r->app->conn, req);
    rc = fsc_get_on_end(&g->sm, m);
    if (rc < 0) {
      get_error(g, "%s", fsc_strerror(rc));
      g->keep_part = 0;
      get_fail(g);
      return;
    }
    get_step(g);
    return;
  default:
    return;
  }
}

/* get -r: BEGIN says how big the file is. A small one is held in memory;
 * a bigger one has its file opened now (its pieces queue meanwhile). */
static void get_tree_begin(struct get_job *g) {
  g->tree_pending = 0;
  if (g->sm.length <= FSC_SMALL_MAX) {
    g->sbuf = fsc_malloc(g->sm.length > 0 ? (size_t)g->sm.length : 1);
    if (g->sbuf == NULL) {
      get_error(g, "%s", fsc_strerror(UV_ENOMEM));
      get_fail(g);
      return;
    }
    g->small = 1;
    return;
  }
  g->late = 1;
  g->fs.data = g;
  g->fs_busy = 1;
  int rc = uv_fs_lstat(g->j.run->app->loop, &g->fs, g->target, on_target_stat);
  fsc_fs_started(&g->fs, rc, on_target_stat);
}

static void get_lost(struct fsc_req *req, int err) {
  struct get_job *g = req->data;
  g->j.req_done = 1;
  if (!g->j.failed && !g->j.run->canceled)
    get_error(g, "connection lost");
  g->j.failed = 1;
  drop_queue(g);
  get_step(g);
}

static void on_get_fs(uv_fs_t *req);

#define store_job(it)                                                          \
  ((struct get_job *)((char *)(it)-offsetof(struct get_job, store)))

/* The store job's end: the small file is in place, or nothing is. */
static void on_stored(struct fsb_item *it, int status) {
  struct get_job *g = store_job(it);
  struct fsc_store_res st = g->stored;
  g->fs_busy = 0;
  if (status < 0) {
    st.err = status;
    st.step = FSC_STEP_CREATE;
  }
  if (st.step == FSC_STEP_FOLDER)
    get_error(g, "%s is a folder", g->target);
  else if (st.step == FSC_STEP_SPECIAL)
    get_error(g, "%s is not a regular file; left alone", g->target);
  else if (st.err != 0)
    get_error(g, "cannot %s %s: %s",
              st.step == FSC_STEP_WRITE    ? "write"
              : st.step == FSC_STEP_RENAME ? "move the new file to"
                                           : "create",
              g->target, uv_strerror(st.err));
  else {
    g->woff = g->slen;
    get_run(g)->prog.done += g->slen;
  }
  fsc_free(g->sbuf);
  g->sbuf = NULL;
  g->phase = GP_CLOSE;
  get_step(g);
}

/* Runs on a worker thread: the whole disk work of a small file. */
static void store_work(struct fsb_item *it) {
  struct get_job *g = store_job(it);
  g->stored = fsc_store_small(g->target, g->sbuf, g->slen, g->smode);
}

/* A small file arrived whole and checked: one threadpool job stores it. */
static void get_store(struct get_job *g) {
  g->phase = GP_STORE;
  g->smode = 0666 & ~(unsigned)fsc_app_umask();
  g->store.work = store_work;
  g->store.done = on_stored;
  g->fs_busy = 1;
  /* GET is over: the next download need not wait for this disk work. */
  fsc_run_job_park(&g->j);
  get_run(g)->disk.loop = g->j.run->app->loop;
  int rc = fsb_add(&get_run(g)->disk, &g->store);
  if (rc != 0)
    on_stored(&g->store, rc);
}

/* Advances a download through its phases, once the file operation in
 * flight (if any) has finished. */
static void get_step(struct get_job *g) {
  struct fsc_run *r = g->j.run;
  uv_loop_t *loop = r->app->loop;
  int rc = 0;
  if (g->fs_busy || g->phase == GP_DONE)
    return;
  if (g->phase < GP_CLOSE) {
    if (!g->j.failed) {
      if (g->phase != GP_XFER)
        return; /* waiting for the disk or the server */
      if (g->qlen > 0) {
        get_write(g);
        return;
      }
      if (g->sm.state != FSC_GET_DONE)
        return;
      if (g->small) {
        get_store(g);
        return;
      }
      if (g->sm.offset > 0) {
        /* Resumed: END vouched for the new bytes and DIGEST for the old
         * ones; one HASH of the whole file proves they belong together. */
        g->phase = GP_VERIFY;
        if (send_range(g, FSP_OP_HASH, 0, FSP_LENGTH_TO_END) < 0) {
          g->keep_part = 0;
          get_step(g);
        }
        return;
      }
    } else if (!g->j.req_done)
      return; /* CANCEL sent: wait for the final frame */
    g->phase = GP_CLOSE;
  }
  g->fs.data = g;
  switch (g->phase) {
  case GP_CLOSE:
    if (g->fd >= 0 && g->own_fd) {
      g->fs_busy = 1;
      rc = uv_fs_close(loop, &g->fs, g->fd, on_get_fs);
      g->fd = -1;
      break;
    }
    g->fd = -1;
    g->phase = GP_RENAME;
    /* fall through */
  case GP_RENAME:
    if (!g->direct && !g->j.failed && g->work[0] != '\0') {
      g->fs_busy = 1;
      rc = uv_fs_rename(loop, &g->fs, g->work, g->target, on_get_fs);
      break;
    }
    g->phase = GP_UNLINK;
    /* fall through */
  case GP_UNLINK:
    if (!g->direct && g->j.failed && !g->keep_part && g->work[0] != '\0') {
      g->fs_busy = 1;
      rc = uv_fs_unlink(loop, &g->fs, g->work, on_get_fs);
      g->work[0] = '\0';
      break;
    }
    g->phase = GP_DONE;
    if (!g->j.failed && g->same)
      get_run(g)->files_same++;
    else if (!g->j.failed) {
      get_run(g)->files_ok++;
      get_run(g)->bytes_ok += g->woff;
    }
    if (g->j.failed && g->keep_part && g->work[0] != '\0' && !g->direct) {
      char name[FSC_ESC_MAX];
      fsc_app_errorf(r->app,
                     "get %s: partial copy kept in %s (resume with "
                     "get %s)",
                     fsc_esc(name, sizeof name, g->j.arg), g->work,
                     get_run(g)->tree ? "-r -c" : "-c");
    }
    fsc_run_job_finished(&g->j);
    return;
  default:
    return;
  }
  fsc_fs_started(&g->fs, rc, on_get_fs);
}

/* Completion of close, rename and unlink. */
static void on_get_fs(uv_fs_t *req) {
  struct get_job *g = req->data;
  ssize_t res = req->result;
  uv_fs_type type = req->fs_type;
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  if (type == UV_FS_CLOSE) {
    /* Some file systems report write errors only at close. */
    if (res < 0 && !g->j.failed) {
      get_error(g, "cannot write %s: %s", g->work, uv_strerror((int)res));
      g->keep_part = 0;
    }
    g->phase = GP_RENAME;
  } else if (type == UV_FS_RENAME) {
    if (res < 0) {
      get_error(g, "cannot rename %s to %s: %s", g->work, g->target,
                uv_strerror((int)res));
      g->keep_part = 0;
    } else
      g->work[0] = '\0';
    g->phase = GP_UNLINK;
  } else
    g->phase = GP_UNLINK; /* unlinked; work[0] was cleared */
  get_step(g);
}

static void on_prefix_read(uv_fs_t *req);

/* The local file being hashed: the partial copy, or get -r -c's target. */
static const char *hashed_file(const struct get_job *g) {
  return g->checking ? g->target : g->work;
}

static void prefix_read_next(struct get_job *g) {
  uint64_t left = g->sm.prefix - g->prefix_off;
  uv_buf_t b = uv_buf_init(
      (char *)g->iobuf,
      (unsigned)(left < GET_PREFIX_CHUNK ? left : GET_PREFIX_CHUNK));
  g->fs.data = g;
  g->fs_busy = 1;
  int rc = uv_fs_read(g->j.run->app->loop, &g->fs, g->fd, &b, 1,
                      (int64_t)g->prefix_off, on_prefix_read);
  fsc_fs_started(&g->fs, rc, on_prefix_read);
}

static void on_prefix_read(uv_fs_t *req) {
  struct get_job *g = req->data;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  if (g->j.failed) {
    get_step(g);
    return;
  }
  if (res <= 0) {
    get_error(g, "cannot read %s: %s", hashed_file(g),
              res == 0 ? "file shrank" : uv_strerror((int)res));
    get_step(g);
    return;
  }
  fsc_get_prefix_data(&g->sm, g->iobuf, (size_t)res);
  g->prefix_off += (uint64_t)res;
  if (g->prefix_off < g->sm.prefix) {
    prefix_read_next(g);
    return;
  }
  fsc_free(g->iobuf);
  g->iobuf = NULL;
  fsc_get_prefix_done(&g->sm);
  g->phase = GP_XFER;
  send_range(g, FSP_OP_HASH, 0, g->sm.prefix + (g->checking ? 1 : 0));
  get_step(g);
}

static void on_get_opened(uv_fs_t *req);

/* Opening failed, or the job was canceled meanwhile. Before the GET went
 * out, nothing more is awaited; after it (get -r's late open), the request
 * is canceled and its final frame awaited. */
static void open_failed(struct get_job *g) {
  if (g->late) {
    get_fail(g);
    return;
  }
  g->j.req_done = 1;
  get_step(g);
}

/* get -c: opens TARGET.fsc-part, new or left by an interrupted get -c.
 * Under get -r it must not be a link: nothing is written through one. */
static void open_part(struct get_job *g) {
  int flags = O_RDWR | O_CREAT | O_CLOEXEC;
  int rc;
  if (get_run(g)->tree)
    flags |= O_NOFOLLOW;
  g->keep_part = 1;
  g->fs.data = g;
  g->fs_busy = 1;
  if (fsc_part_path(g->work, sizeof g->work, g->target) < 0)
    rc = UV_ENAMETOOLONG;
  else
    rc = uv_fs_open(g->j.run->app->loop, &g->fs, g->work, flags, 0644,
                    on_get_opened);
  if (rc < 0)
    g->fs.fs_type = UV_FS_OPEN;
  fsc_fs_started(&g->fs, rc, on_get_opened);
}

static void on_check_closed(uv_fs_t *req) {
  struct get_job *g = req->data;
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  if (g->j.failed) {
    get_step(g);
    return;
  }
  open_part(g);
}

/* get -r -c: the file at target is not the server's: it is fetched like
 * any other (through TARGET.fsc-part), and replaces it once whole. */
static void check_over(struct get_job *g) {
  int rc;
  g->checking = 0;
  fsc_get_free(&g->sm);
  fsc_free(g->iobuf);
  g->iobuf = NULL;
  g->fs.data = g;
  g->fs_busy = 1;
  rc = uv_fs_close(g->j.run->app->loop, &g->fs, g->fd, on_check_closed);
  g->fd = -1;
  g->own_fd = 0;
  fsc_fs_started(&g->fs, rc, on_check_closed);
}

static void on_part_stat(uv_fs_t *req) {
  struct get_job *g = req->data;
  ssize_t res = req->result;
  uint64_t size = req->statbuf.st_size;
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  if (res < 0 || g->j.failed) {
    if (!g->j.failed)
      get_error(g, "cannot stat %s: %s", hashed_file(g), uv_strerror((int)res));
    get_step(g);
    return;
  }
  if (g->checking && size == 0) {
    /* An empty file: nothing to hash; the DIGEST's length alone says
     * whether the server's is empty too. */
    g->phase = GP_XFER;
    send_range(g, FSP_OP_HASH, 0, 1);
    get_step(g);
    return;
  }
  if (fsc_get_init(&g->sm, size) < 0) {
    get_error(g, "%s", fsc_strerror(UV_ENOMEM));
    get_step(g);
    return;
  }
  if (size == 0) {
    get_start_transfer(g);
    return;
  }
  g->phase = GP_PREFIX;
  g->iobuf = fsc_malloc(GET_PREFIX_CHUNK);
  if (g->iobuf == NULL) {
    get_error(g, "%s", fsc_strerror(UV_ENOMEM));
    get_step(g);
    return;
  }
  prefix_read_next(g);
}

static void on_get_opened(uv_fs_t *req) {
  struct get_job *g = req->data;
  ssize_t res = req->result;
  int mkstemp = req->fs_type == UV_FS_MKSTEMP;
  int chmoded = req->fs_type == UV_FS_FCHMOD;
  if (mkstemp && res >= 0)
    snprintf(g->work, sizeof g->work, "%s", req->path);
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  if (mkstemp && res >= 0) {
    /* mkstemp makes the file private (0600); the download should get the
     * permissions any new file gets. The chmod result comes back here as
     * an UV_FS_FCHMOD completion. */
    g->fd = (int)res;
    g->own_fd = 1;
    g->fs.data = g;
    g->fs_busy = 1;
    int rc = uv_fs_fchmod(g->j.run->app->loop, &g->fs, g->fd,
                          0666 & ~fsc_app_umask(), on_get_opened);
    if (rc == 0)
      return;
    g->fs_busy = 0;
  }
  if (chmoded)
    res = g->fd; /* a failed chmod leaves the file private, no more */
  if (res < 0) {
    get_error(g, "cannot %s %s: %s", g->checking ? "read" : "create",
              g->direct || g->work[0] == '\0' ? g->target : g->work,
              uv_strerror((int)res));
    g->work[0] = '\0';
    open_failed(g);
    return;
  }
  g->fd = (int)res;
  g->own_fd = 1;
  if (g->j.failed) { /* canceled meanwhile */
    open_failed(g);
    return;
  }
  if (g->late) { /* the GET is out: write what arrived */
    get_step(g);
    return;
  }
  if (g->keep_part || g->checking) {
    /* Resuming, or checking: how much of the file do we have already? */
    g->fs.data = g;
    g->fs_busy = 1;
    int rc = uv_fs_fstat(g->j.run->app->loop, &g->fs, g->fd, on_part_stat);
    fsc_fs_started(&g->fs, rc, on_part_stat);
    return;
  }
  if (fsc_get_init(&g->sm, 0) < 0) {
    get_error(g, "%s", fsc_strerror(UV_ENOMEM));
    g->j.req_done = 1;
    get_step(g);
    return;
  }
  get_start_transfer(g);
}

static void on_target_stat(uv_fs_t *req) {
  struct get_job *g = req->data;
  struct fsc_run *r = g->j.run;
  uv_loop_t *loop = r->app->loop;
  ssize_t res = req->result;
  uint64_t mode = req->statbuf.st_mode;
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  int rc;
  if (g->j.failed) {
    open_failed(g);
    return;
  }
  if (res == 0 && (S_ISDIR(mode) || (get_run(g)->tree && !S_ISREG(mode)))) {
    /* get -r replaces files only: a link or a device in the way (checked
     * with lstat) is left alone rather than written through. */
    get_error(g, "%s is %s", g->target,
              S_ISDIR(mode) ? "a folder" : "not a regular file; left alone");
    open_failed(g);
    return;
  }
  if (r->cmd.resume && (res != 0 || S_ISREG(mode)) &&
      !(get_run(g)->tree && res == 0)) {
    open_part(g);
    return;
  }
  g->fs.data = g;
  g->fs_busy = 1;
  if (res == 0 && !S_ISREG(mode)) {
    /* A device or a pipe (/dev/null, a FIFO): there is no file to rename
     * into place, so write straight into it. */
    g->direct = 1;
    rc = uv_fs_open(loop, &g->fs, g->target, O_WRONLY | O_CLOEXEC, 0,
                    on_get_opened);
  } else if (r->cmd.resume) {
    /* get -r -c, a file already there (lstat said regular): is it the
     * server's? */
    g->checking = 1;
    rc = uv_fs_open(loop, &g->fs, g->target, O_RDONLY | O_CLOEXEC | O_NOFOLLOW,
                    0, on_get_opened);
  } else {
    char tmpl[PATH_MAX];
    if (fsc_temp_template(tmpl, sizeof tmpl, g->target) < 0)
      rc = UV_ENAMETOOLONG;
    else
      rc = uv_fs_mkstemp(loop, &g->fs, tmpl, on_get_opened);
  }
  if (rc < 0)
    g->fs.fs_type = UV_FS_OPEN;
  fsc_fs_started(&g->fs, rc, on_get_opened);
}

static void get_cancel(struct fsc_job *j) {
  struct get_job *g = (struct get_job *)j;
  if (j->failed)
    return;
  j->failed = 1;
  drop_queue(g);
  get_cancel_request(g);
  /* On Ctrl-C the connection closes right after, which ends the request
   * on the server too; nothing more will come. */
  g->j.req_done = 1;
  fsc_conn_finish(&j->run->app->conn, &j->req);
  check_water(j->run);
  get_step(g);
}

static void get_destroy(struct fsc_job *j) {
  struct get_job *g = (struct get_job *)j;
  drop_queue(g);
  fsc_free(g->q);
  fsc_free(g->iobuf);
  fsc_free(g->sbuf);
  fsc_get_free(&g->sm);
  fsc_free(g);
}

static const struct fsc_req_ops get_req_ops = {get_msg, get_data, get_lost};
static const struct fsc_job_ops get_job_ops = {get_cancel, NULL, get_destroy};

static struct fsc_job *get_job_new(void) {
  struct get_job *g = fsc_calloc(1, sizeof *g);
  if (g == NULL)
    return NULL;
  g->fd = -1;
  g->j.ops = &get_job_ops;
  g->j.req.ops = &get_req_ops;
  g->j.req.data = g;
  return &g->j;
}

static void get_job_start(struct fsc_job *j) {
  struct get_job *g = (struct get_job *)j;
  struct fsc_run *r = g->j.run;
  const char *name = g->j.arg;
  char ename[FSC_ESC_MAX];
  g->phase = GP_OPEN;
  if (get_run(g)->tree) {
    /* get -r: getr.c checked the path and made its folder. */
    snprintf(g->rpath, sizeof g->rpath, "%s", name);
    snprintf(g->target, sizeof g->target, "%s", get_run(g)->local[g->j.index]);
    if (r->cmd.resume) {
      /* get -r -c: what is there already decides (on_target_stat). */
      g->fs.data = g;
      g->fs_busy = 1;
      int rc = uv_fs_lstat(r->app->loop, &g->fs, g->target, on_target_stat);
      fsc_fs_started(&g->fs, rc, on_target_stat);
      return;
    }
    /* The GET goes out at once; BEGIN tells how the file is written
     * (get_tree_begin). */
    if (fsc_get_init(&g->sm, 0) < 0) {
      get_error(g, "%s", fsc_strerror(UV_ENOMEM));
      g->j.req_done = 1;
      get_step(g);
      return;
    }
    g->tree_pending = 1;
    get_start_transfer(g);
    return;
  }
  /* The path on the server (resolved against the shell's folder); the
   * local file takes its last component. */
  if (fsc_app_rpath(r->app, name, g->rpath, sizeof g->rpath, 0) == 0)
    name = fsc_rpath_base(g->rpath);
  else
    name = "";
  if (fsc_name_safe(name) != 0) {
    name = g->j.arg;
    fsc_app_errorf(r->app, "get %s: %s", fsc_esc(ename, sizeof ename, name),
                   fsp_strerror(FSP_EBADNAME));
    g->j.failed = 1;
    g->j.req_done = 1;
    get_step(g);
    return;
  }
  if (r->cmd.out != NULL && strcmp(r->cmd.out, "-") == 0) {
    snprintf(g->target, sizeof g->target, "-");
    g->direct = 1;
    g->fd = STDOUT_FILENO;
    g->own_fd = 0;
    if (fsc_get_init(&g->sm, 0) < 0) {
      get_error(g, "%s", fsc_strerror(UV_ENOMEM));
      g->j.req_done = 1;
      get_step(g);
      return;
    }
    get_start_transfer(g);
    return;
  }
  if (fsc_target_path(g->target, sizeof g->target, r->cmd.out,
                      get_run(g)->out_is_dir, name) < 0) {
    get_error(g, "%s", uv_strerror(UV_ENAMETOOLONG));
    g->j.req_done = 1;
    get_step(g);
    return;
  }
  g->fs.data = g;
  g->fs_busy = 1;
  int rc = uv_fs_stat(r->app->loop, &g->fs, g->target, on_target_stat);
  fsc_fs_started(&g->fs, rc, on_target_stat);
}

static int get_begin(struct fsc_run *r) {
  const struct fsc_cmd *cmd = &r->cmd;
  struct get_run *gr = fsc_calloc(1, sizeof *gr);
  if (gr == NULL)
    return UV_ENOMEM;
  if (cmd->out != NULL && strcmp(cmd->out, "-") != 0 && !cmd->recursive) {
    uv_fs_t st;
    /* One stat before anything runs: is -o a folder? */
    int rc = uv_fs_stat(NULL, &st, cmd->out, NULL);
    gr->out_is_dir = rc == 0 && S_ISDIR(st.statbuf.st_mode);
    uv_fs_req_cleanup(&st);
    if (cmd->nargs > 1 && !gr->out_is_dir) {
      char ename[FSC_ESC_MAX];
      fsc_app_errorf(r->app,
                     "get: -o %s: not a folder (several NAMEs need one)",
                     fsc_esc(ename, sizeof ename, cmd->out));
      fsc_free(gr);
      return FSC_EXIT_USAGE;
    }
  }
  r->state = gr;
  if (cmd->recursive) {
    int rc = fsc_getr_begin(r, gr);
    if (rc != 0) {
      fsc_getr_free(r, gr);
      fsc_free(gr);
      r->state = NULL;
    }
    return rc;
  }
  const char *first = cmd->nargs > 0 ? cmd->args[0] : "";
  fsc_progress_start(&gr->prog, r->app, cmd->nargs, first, strlen(first));
  return 0;
}

static void get_end(struct fsc_run *r) {
  struct get_run *gr = r->state;
  if (gr->paused) {
    gr->paused = 0;
    fsc_conn_resume(&r->app->conn);
  }
  fsc_progress_stop(&gr->prog, !r->canceled && r->status == 0);
  if (gr->tree)
    fsc_run_print_count(r, gr->files_ok, gr->bytes_ok, gr->files_same);
}

static void get_free(struct fsc_run *r) {
  struct get_run *gr = r->state;
  fsc_getr_free(r, gr);
  fsc_free(gr);
}

const struct fsc_run_ops fsc_get_ops = {
    .parallel = GET_PARALLEL,
    .per_arg = 1,
    .begin = get_begin,
    .job_new = get_job_new,
    .job_start = get_job_start,
    .end = get_end,
    .free = get_free,
};
