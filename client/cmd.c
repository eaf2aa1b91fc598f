/* fsc commands on libuv. See cmd.h.
 *
 * Every command is a "run": a set of jobs (one per NAME or FILE) that each
 * own one request at a time on the shared connection. Runs start up to a
 * few jobs at once, so many requests are in flight together, and end when
 * every job has finished its local cleanup. */
#include "cmd.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmt.h"
#include "path.h"
#include "xfer.h"

/* DATA frames we send are at most this big (and at most what the server
 * accepts): big frames mean few headers, few syscalls, few callbacks. */
#define PUT_CHUNK (1u << 20)
/* Upload buffers per file: one being read from disk while others are on
 * their way to the socket. Memory per upload is PUT_NBUF * PUT_CHUNK. */
#define PUT_NBUF 4
/* Files transferred at the same time. */
#define GET_PARALLEL 16
#define PUT_PARALLEL 4
#define SMALL_PARALLEL 32 /* STAT, DELETE */
/* Downloads: stop reading the socket while this many received bytes wait
 * for the disk, and start again below the low mark. */
#define GET_HIGH_WATER (16u << 20)
#define GET_LOW_WATER (4u << 20)
/* Pieces written to disk with one call, and the bytes worth a call: each
 * write is a trip through the threadpool, so small pieces are gathered. */
#define GET_IOV 64
#define GET_WRITE_MIN (1u << 20)
/* Reads of a partial copy being hashed, and of stdin being spooled. */
#define IO_CHUNK (1u << 20)
#define PROGRESS_MS 200

/* The process's umask, read once: new downloads get 0666 & ~umask. */
static mode_t fsc_umask = 022;

void fsc_app_init_umask(void) {
  fsc_umask = umask(022);
  umask(fsc_umask);
}

/* --- Shared helpers --------------------------------------------------------
 */

const char *fsc_strerror(int err) {
  const char *s = fsc_xfer_strerror(err);
  if (s != NULL)
    return s;
  if (err <= -500 && err > -600)
    return fsp_strerror(err);
  return uv_strerror(err);
}

static void clear_progress(struct fsc_app *a) {
  if (a->progress_shown) {
    fputs("\r\x1b[K", stderr);
    fflush(stderr);
    a->progress_shown = 0;
  }
}

void fsc_app_errorf(struct fsc_app *a, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  int n = snprintf(line, sizeof line, "fsc: ");
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  clear_progress(a);
  a->print(a, 1, line);
}

void fsc_app_print_push(struct fsc_app *a, const struct fsp_msg *m) {
  char line[6 * FSP_NOTICE_MAX + 128];
  if (fsc_fmt_push(line, sizeof line, m, a->push_json) > 0)
    a->print(a, 0, line);
}

/* A name for messages, made safe for the terminal. */
static const char *esc(char *buf, size_t cap, const char *s) {
  fsc_fmt_escape(buf, cap, s, strlen(s));
  return buf;
}

/* The server's words for an ERROR frame: its message, or the status text. */
static void server_msg(char *buf, size_t cap, const struct fsp_msg *m) {
  if (m->u.error.text.len > 0)
    fsc_fmt_escape(buf, cap, m->u.error.text.ptr, m->u.error.text.len);
  else
    snprintf(buf, cap, "%s", fsp_status_str(m->u.error.status));
}

/* --- Runs and jobs ---------------------------------------------------------
 */

struct job;

struct fsc_run {
  struct fsc_app *app;
  struct fsc_cmd cmd;
  int status;        /* worst exit status so far */
  int canceled;      /* Ctrl-C */
  int lost;          /* the connection is gone */
  int next;          /* next operand to start a job for */
  int active;        /* jobs started and not finished */
  int parallel;      /* jobs allowed at once */
  int finished;      /* on_done ran */
  struct job **jobs; /* one per operand (NULL until started) */
  int njobs;
  /* ls */
  struct fsp_entry *entries; /* names owned (malloc'd ptr) */
  size_t nentries, centries;
  /* get */
  int out_is_dir;
  uint64_t waiting; /* downloaded bytes waiting for the disk */
  int paused;       /* we paused the connection's reading */
  /* progress */
  uv_timer_t timer;
  int timer_on;
  uint64_t t0;     /* ms */
  uint64_t total;  /* bytes to transfer, as far as known */
  uint64_t done;   /* bytes transferred */
  int sizes_known; /* jobs whose size is in total */
  int in_next;     /* run_next is on the stack: do not recurse or end */
};

/* Common head of every job. */
struct job {
  struct fsc_req req;
  struct fsc_run *run;
  int index;       /* operand index */
  const char *arg; /* the operand */
  int failed;      /* an error was reported */
  int req_done;    /* the request ended (final frame, or connection) */
  int finished;    /* the job is over */
  void (*cancel)(struct job *j); /* Ctrl-C or connection lost */
  void (*destroy)(struct job *j);
};

static void run_next(struct fsc_run *r);

static void run_fail(struct fsc_run *r, int status) {
  if (status > r->status)
    r->status = status;
}

static void progress_draw(struct fsc_run *r) {
  struct fsc_app *a = r->app;
  if (!a->progress || a->shell)
    return;
  struct winsize ws;
  int width = 80;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
    width = ws.ws_col - 1;
  uint64_t ms = uv_now(a->loop) - r->t0;
  double rate = ms >= 200 ? (double)r->done * 1000.0 / (double)ms : 0;
  char label[64];
  if (r->cmd.nargs == 1) {
    /* The file's name, not the path it came from. */
    size_t len;
    const char *name = r->cmd.kind == FSC_CMD_PUT
                           ? fsc_put_name(r->cmd.args[0], r->cmd.as, &len)
                           : r->cmd.args[0];
    if (r->cmd.kind != FSC_CMD_PUT)
      len = strlen(name);
    fsc_fmt_escape(label, sizeof label, name, len);
  } else
    snprintf(label, sizeof label, "%d files", r->cmd.nargs);
  char line[512];
  fsc_fmt_progress(line, sizeof line, width, label, r->done,
                   r->sizes_known == r->cmd.nargs ? r->total : 0, rate);
  fprintf(stderr, "\r%s\x1b[K", line);
  fflush(stderr);
  a->progress_shown = 1;
}

static void on_progress_timer(uv_timer_t *t) {
  progress_draw(t->data);
}

static void progress_start(struct fsc_run *r) {
  struct fsc_app *a = r->app;
  r->t0 = uv_now(a->loop);
  if (!a->progress || a->shell)
    return;
  uv_timer_init(a->loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_progress_timer, PROGRESS_MS, PROGRESS_MS);
  r->timer_on = 1;
}

static void run_free(struct fsc_run *r) {
  for (int i = 0; i < r->njobs; i++)
    if (r->jobs[i] != NULL)
      r->jobs[i]->destroy(r->jobs[i]);
  free(r->jobs);
  for (size_t i = 0; i < r->nentries; i++)
    free((void *)r->entries[i].name.ptr);
  free(r->entries);
  free(r);
}

static void on_timer_closed(uv_handle_t *h) {
  run_free(h->data);
}

static void run_end(struct fsc_run *r) {
  struct fsc_app *a = r->app;
  if (r->finished)
    return;
  r->finished = 1;
  if (r->paused) {
    r->paused = 0;
    fsc_conn_resume(&a->conn);
  }
  if (r->timer_on && !r->canceled && r->status == 0)
    progress_draw(r); /* show the final 100% before clearing */
  clear_progress(a);
  fflush(stdout);
  a->run = NULL;
  int status = r->status;
  if (r->timer_on) {
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
  } else
    run_free(r);
  a->on_done(a, status);
}

/* A job is over: start the next one, or end the run. */
static void job_finished(struct job *j) {
  struct fsc_run *r = j->run;
  if (j->finished)
    return;
  j->finished = 1;
  fsc_conn_finish(&r->app->conn, &j->req);
  r->active--;
  /* Stopping a watch is how it ends: that is no failure. */
  if (j->failed && !(r->canceled && r->cmd.kind == FSC_CMD_WATCH))
    run_fail(r, r->lost       ? FSC_EXIT_CONN
                : r->canceled ? FSC_EXIT_INTR
                              : FSC_EXIT_FAIL);
  run_next(r);
}

static void run_next(struct fsc_run *r);

/* --- ls --------------------------------------------------------------------
 */

static int entry_cmp(const void *x, const void *y) {
  const struct fsp_entry *a = x, *b = y;
  size_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
  int c = memcmp(a->name.ptr, b->name.ptr, n);
  if (c != 0)
    return c;
  return (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

static void emit_line(void *arg, const char *line) {
  struct fsc_app *a = arg;
  a->print(a, 0, line);
}

static void ls_print(struct fsc_run *r) {
  struct fsc_app *a = r->app;
  char line[4 * FSP_NAME_MAX + 128];
  if (r->nentries > 1)
    qsort(r->entries, r->nentries, sizeof r->entries[0], entry_cmp);
  if (r->cmd.json) {
    for (size_t i = 0; i < r->nentries; i++) {
      fsc_fmt_ls_json(line, sizeof line, &r->entries[i]);
      a->print(a, 0, line);
    }
    return;
  }
  if (r->cmd.long_fmt) {
    int width = 1;
    for (size_t i = 0; i < r->nentries; i++) {
      char sz[32];
      int w =
          (int)fsc_fmt_size(sz, sizeof sz, r->entries[i].size, r->cmd.human);
      if (w > width)
        width = w;
    }
    for (size_t i = 0; i < r->nentries; i++) {
      fsc_fmt_ls_line(line, sizeof line, &r->entries[i], 1, r->cmd.human,
                      width);
      a->print(a, 0, line);
    }
    return;
  }
  if (!a->stdout_tty || r->nentries == 0) {
    for (size_t i = 0; i < r->nentries; i++) {
      fsc_fmt_ls_line(line, sizeof line, &r->entries[i], 0, 0, 0);
      a->print(a, 0, line);
    }
    return;
  }
  /* On a terminal: columns, filled top to bottom, like ls. */
  struct winsize ws;
  size_t term = 80;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    term = ws.ws_col;
  char **names = calloc(r->nentries, sizeof *names);
  if (names == NULL)
    return;
  for (size_t i = 0; i < r->nentries; i++) {
    fsc_fmt_ls_line(line, sizeof line, &r->entries[i], 0, 0, 0);
    names[i] = strdup(line);
  }
  fsc_fmt_columns((const char *const *)names, r->nentries, term, emit_line, a);
  for (size_t i = 0; i < r->nentries; i++)
    free(names[i]);
  free(names);
}

static void ls_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct job *j = req->data;
  struct fsc_run *r = j->run;
  char msg[512];
  switch (m->op) {
  case FSP_OP_ENTRIES: {
    size_t pos = 0;
    struct fsp_entry e;
    while (fsp_entries_next(m, &pos, &e) == 1) {
      if (r->nentries == r->centries) {
        size_t nc = r->centries ? 2 * r->centries : 256;
        struct fsp_entry *ne = realloc(r->entries, nc * sizeof *ne);
        if (ne == NULL) {
          fsc_app_errorf(r->app, "ls: %s", fsc_strerror(UV_ENOMEM));
          j->failed = 1;
          return;
        }
        r->entries = ne;
        r->centries = nc;
      }
      char *name = malloc(e.name.len + 1);
      if (name == NULL)
        return;
      memcpy(name, e.name.ptr, e.name.len);
      name[e.name.len] = '\0';
      e.name.ptr = name;
      r->entries[r->nentries++] = e;
    }
    return;
  }
  case FSP_OP_OK:
    if (!j->failed)
      ls_print(r);
    break;
  case FSP_OP_ERROR:
    server_msg(msg, sizeof msg, m);
    fsc_app_errorf(r->app, "ls: %s", msg);
    j->failed = 1;
    break;
  default:
    return;
  }
  j->req_done = 1;
  job_finished(j);
}

/* --- size, rm, announce: one request, one answer ---------------------------
 */

struct small_job {
  struct job j;
  uint64_t size; /* size: the answer */
  int ok;
};

static void small_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct small_job *s = req->data;
  struct fsc_run *r = s->j.run;
  char msg[512], name[1024];
  if (m->op == FSP_OP_ERROR) {
    server_msg(msg, sizeof msg, m);
    if (r->cmd.kind == FSC_CMD_ANNOUNCE)
      fsc_app_errorf(r->app, "announce: %s", msg);
    else
      fsc_app_errorf(r->app, "%s %s: %s", fsc_cmd_name(r->cmd.kind),
                     esc(name, sizeof name, s->j.arg), msg);
    s->j.failed = 1;
  } else if (m->op == FSP_OP_INFO && r->cmd.kind == FSC_CMD_SIZE) {
    s->size = m->u.entry.size;
    s->ok = 1;
  } else if (m->op == FSP_OP_OK && r->cmd.kind != FSC_CMD_SIZE) {
    s->ok = 1;
  } else
    return;
  s->j.req_done = 1;
  job_finished(&s->j);
}

/* size prints its answers in the order of the NAMEs, once all are in. */
static void size_print(struct fsc_run *r) {
  char line[1200], sz[32], name[1024];
  for (int i = 0; i < r->njobs; i++) {
    struct small_job *s = (struct small_job *)r->jobs[i];
    if (s == NULL || !s->ok)
      continue;
    fsc_fmt_size(sz, sizeof sz, s->size, r->cmd.human);
    if (r->cmd.nargs == 1)
      snprintf(line, sizeof line, "%s", sz);
    else
      snprintf(line, sizeof line, "%s\t%s", sz,
               esc(name, sizeof name, s->j.arg));
    r->app->print(r->app, 0, line);
  }
}

/* --- get -------------------------------------------------------------------
 */

struct piece {
  struct fsc_rblock *blk;
  const uint8_t *p;
  size_t n;
};

enum get_phase {
  GP_OPEN,   /* opening the file to write */
  GP_PREFIX, /* hashing the partial copy */
  GP_XFER,   /* request in flight */
  GP_VERIFY, /* resumed: HASH of the whole file in flight */
  GP_CLOSE,  /* closing the file */
  GP_RENAME, /* moving it into place */
  GP_UNLINK, /* removing the temporary file */
  GP_DONE,
};

struct get_job {
  struct job j;
  char target[PATH_MAX]; /* where the file ends up ("-": stdout) */
  char work[PATH_MAX];   /* the file being written */
  int direct;            /* writing into target itself (stdout, a device) */
  int keep_part;         /* on failure, keep work (resumable) */
  int fd;                /* -1 when not open */
  int own_fd;            /* fd is ours to close */
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
};

static void get_step(struct get_job *g);

static void get_error(struct get_job *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void get_error(struct get_job *g, const char *fmt, ...) {
  char msg[768], name[1024];
  va_list ap;
  if (g->j.failed)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fsc_app_errorf(g->j.run->app, "get %s: %s", esc(name, sizeof name, g->j.arg),
                 msg);
  g->j.failed = 1;
}

static void drop_queue(struct get_job *g) {
  struct fsc_run *r = g->j.run;
  for (size_t i = 0; i < g->qlen; i++) {
    r->waiting -= g->q[i].n;
    fsc_rblock_unref(g->q[i].blk);
  }
  g->qlen = 0;
  g->qbytes = 0;
}

static void get_write(struct get_job *g);

static void check_water(struct fsc_run *r) {
  struct fsc_conn *c = &r->app->conn;
  if (!r->paused && r->waiting > GET_HIGH_WATER) {
    r->paused = 1;
    fsc_conn_pause(c);
    /* Nothing more arrives until the disk catches up: write out what
     * every download holds, however little. */
    for (int i = 0; i < r->njobs; i++)
      if (r->jobs[i] != NULL && !r->jobs[i]->finished &&
          r->cmd.kind == FSC_CMD_GET)
        get_write((struct get_job *)r->jobs[i]);
  } else if (r->paused && r->waiting < GET_LOW_WATER) {
    r->paused = 0;
    fsc_conn_resume(c);
  }
}

/* The download failed or was canceled while the server may still send:
 * tell it to stop. Frames until its final answer are ignored. */
static void get_cancel_request(struct get_job *g) {
  struct fsc_conn *c = &g->j.run->app->conn;
  if (g->j.req_done || g->cancel_sent || !g->j.req.registered)
    return;
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_CANCEL;
  m.id = g->j.req.id;
  fsc_conn_send(c, &m);
  g->cancel_sent = 1;
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
      size_t nc = g->qlen + k + 64;
      struct piece *nq = realloc(g->q, nc * sizeof *nq);
      if (nq == NULL) {
        for (; i < g->ninflight; i++) {
          r->waiting -= g->inflight[i].n;
          fsc_rblock_unref(g->inflight[i].blk);
        }
        g->ninflight = 0;
        r->waiting -= written;
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
  r->waiting -= written;
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
  r->done += written;
  check_water(r);
  get_step(g);
}

/* Writes what is queued, in one call for up to GET_IOV pieces. */
static void get_write(struct get_job *g) {
  if (g->fs_busy || g->qlen == 0 || g->fd < 0 || g->j.failed)
    return;
  if (g->qbytes < GET_WRITE_MIN && g->sm.state == FSC_GET_DATA &&
      !g->j.run->paused)
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
  if (rc < 0) {
    g->fs.result = rc;
    on_get_write(&g->fs);
  }
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
  if (g->qlen == g->qcap) {
    size_t nc = g->qcap ? 2 * g->qcap : 64;
    struct piece *nq = realloc(g->q, nc * sizeof *nq);
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
  r->waiting += n;
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
  m.u.range.name.ptr = g->j.arg;
  m.u.range.name.len = strlen(g->j.arg);
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

static void get_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct get_job *g = req->data;
  struct fsc_run *r = g->j.run;
  char msg[512];
  int rc;
  if (m->op == FSP_OP_ERROR) {
    g->j.req_done = 1;
    fsc_conn_finish(&r->app->conn, req);
    if (!g->j.failed) {
      server_msg(msg, sizeof msg, m);
      get_error(g, "%s", msg);
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
    rc = fsc_get_on_digest(&g->sm, m);
    if (rc < 0) {
      get_error(g, "%s", fsc_strerror(rc));
      get_step(g);
    } else if (rc == 0) {
      /* The partial copy is not the start of this file: start over. */
      g->woff = 0;
      g->fs.data = g;
      g->fs_busy = 1;
      rc = uv_fs_ftruncate(r->app->loop, &g->fs, g->fd, 0, on_truncated);
      if (rc < 0) {
        g->fs.result = rc;
        on_truncated(&g->fs);
      }
    } else {
      g->woff = g->sm.offset;
      r->done += g->sm.offset;
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
    r->total += g->sm.offset + g->sm.length;
    r->sizes_known++;
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
    if (!g->direct && !g->j.failed) {
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
    if (g->j.failed && g->keep_part && g->work[0] != '\0' && !g->direct) {
      char name[1024];
      fsc_app_errorf(r->app,
                     "get %s: partial copy kept in %s (resume with "
                     "get -c)",
                     esc(name, sizeof name, g->j.arg), g->work);
    }
    job_finished(&g->j);
    return;
  default:
    return;
  }
  if (rc < 0) {
    g->fs.result = rc;
    on_get_fs(&g->fs);
  }
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

static void prefix_read_next(struct get_job *g) {
  uint64_t left = g->sm.prefix - g->prefix_off;
  uv_buf_t b = uv_buf_init((char *)g->iobuf,
                           (unsigned)(left < IO_CHUNK ? left : IO_CHUNK));
  g->fs.data = g;
  g->fs_busy = 1;
  int rc = uv_fs_read(g->j.run->app->loop, &g->fs, g->fd, &b, 1,
                      (int64_t)g->prefix_off, on_prefix_read);
  if (rc < 0) {
    g->fs.result = rc;
    on_prefix_read(&g->fs);
  }
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
    get_error(g, "cannot read %s: %s", g->work,
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
  free(g->iobuf);
  g->iobuf = NULL;
  fsc_get_prefix_done(&g->sm);
  g->phase = GP_XFER;
  send_range(g, FSP_OP_HASH, 0, g->sm.prefix);
  get_step(g);
}

static void on_get_opened(uv_fs_t *req);

static void on_part_stat(uv_fs_t *req) {
  struct get_job *g = req->data;
  ssize_t res = req->result;
  uint64_t size = req->statbuf.st_size;
  uv_fs_req_cleanup(req);
  g->fs_busy = 0;
  if (res < 0 || g->j.failed) {
    if (!g->j.failed)
      get_error(g, "cannot stat %s: %s", g->work, uv_strerror((int)res));
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
  g->iobuf = malloc(IO_CHUNK);
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
    int rc = uv_fs_fchmod(g->j.run->app->loop, &g->fs, g->fd, 0666 & ~fsc_umask,
                          on_get_opened);
    if (rc == 0)
      return;
    g->fs_busy = 0;
  }
  if (chmoded || mkstemp)
    res = g->fd; /* a failed chmod leaves the file private, no more */
  if (res < 0) {
    get_error(g, "cannot create %s: %s", g->direct ? g->target : g->work,
              uv_strerror((int)res));
    g->work[0] = '\0';
    g->j.req_done = 1;
    get_step(g);
    return;
  }
  g->fd = (int)res;
  g->own_fd = 1;
  if (g->j.failed) { /* canceled meanwhile */
    g->j.req_done = 1;
    get_step(g);
    return;
  }
  if (g->keep_part) {
    /* Resuming: how much of the file do we have already? */
    g->fs.data = g;
    g->fs_busy = 1;
    int rc = uv_fs_fstat(g->j.run->app->loop, &g->fs, g->fd, on_part_stat);
    if (rc < 0) {
      g->fs.result = rc;
      on_part_stat(&g->fs);
    }
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
    g->j.req_done = 1;
    get_step(g);
    return;
  }
  if (res == 0 && S_ISDIR(mode)) {
    get_error(g, "%s is a folder", g->target);
    g->j.req_done = 1;
    get_step(g);
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
    g->keep_part = 1;
    if (fsc_part_path(g->work, sizeof g->work, g->target) < 0)
      rc = UV_ENAMETOOLONG;
    else
      rc = uv_fs_open(loop, &g->fs, g->work, O_RDWR | O_CREAT | O_CLOEXEC, 0644,
                      on_get_opened);
  } else {
    char tmpl[PATH_MAX];
    if (fsc_temp_template(tmpl, sizeof tmpl, g->target) < 0)
      rc = UV_ENAMETOOLONG;
    else
      rc = uv_fs_mkstemp(loop, &g->fs, tmpl, on_get_opened);
  }
  if (rc < 0) {
    g->fs.result = rc;
    g->fs.fs_type = UV_FS_OPEN;
    on_get_opened(&g->fs);
  }
}

static void get_cancel(struct job *j) {
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

static void get_destroy(struct job *j) {
  struct get_job *g = (struct get_job *)j;
  drop_queue(g);
  free(g->q);
  free(g->iobuf);
  fsc_get_free(&g->sm);
  free(g);
}

static const struct fsc_req_ops get_ops = {get_msg, get_data, get_lost};

static struct job *get_job_new(struct fsc_run *r, int index) {
  struct get_job *g = calloc(1, sizeof *g);
  if (g == NULL)
    return NULL;
  g->fd = -1;
  g->j.cancel = get_cancel;
  g->j.destroy = get_destroy;
  g->j.req.ops = &get_ops;
  g->j.req.data = g;
  return &g->j;
}

static void get_job_start(struct get_job *g) {
  struct fsc_run *r = g->j.run;
  const char *name = g->j.arg;
  char ename[1024];
  g->phase = GP_OPEN;
  if (fsc_name_safe(name) != 0) {
    fsc_app_errorf(r->app, "get %s: %s", esc(ename, sizeof ename, name),
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
  if (fsc_target_path(g->target, sizeof g->target, r->cmd.out, r->out_is_dir,
                      name) < 0) {
    get_error(g, "%s", uv_strerror(UV_ENAMETOOLONG));
    g->j.req_done = 1;
    get_step(g);
    return;
  }
  g->fs.data = g;
  g->fs_busy = 1;
  int rc = uv_fs_stat(r->app->loop, &g->fs, g->target, on_target_stat);
  if (rc < 0) {
    g->fs.result = rc;
    on_target_stat(&g->fs);
  }
}

/* --- put -------------------------------------------------------------------
 */

struct put_buf {
  uv_write_t w;
  struct put_job *p;
  uint8_t *frame; /* FSP_HDR_LEN + chunk bytes */
  uint32_t len;   /* payload bytes in flight */
  int busy;
};

struct put_job {
  struct job j;
  char name[FSP_NAME_MAX + 1]; /* the name on the server */
  int fd;
  int own_fd;
  int is_stdin;
  uint64_t size;
  struct fsc_put sm;
  uv_fs_t fs; /* open, fstat, read, spool, close */
  int fs_busy;
  struct put_buf bufs[PUT_NBUF];
  int writes;              /* DATA frames not yet written */
  uint64_t roff;           /* file offset of the next read */
  struct put_buf *reading; /* the buffer being read into */
  int ready;               /* READY came */
  int end_sent;
  int cancel_sent;
  int closing; /* final close requested */
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
  } in;               /* stdin, when it is spooled */
  int in_open;        /* in is initialised and not yet closed */
  int in_eof;         /* all of stdin has been read */
  uint8_t *spool_buf; /* one read of stdin */
  size_t spool_len;   /* bytes in spool_buf */
  size_t spool_off;   /* of which already in the spool file */
  uint64_t spooled;   /* bytes of stdin in the spool file */
};

static void put_step(struct put_job *p);

static void put_error(struct put_job *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put_error(struct put_job *p, const char *fmt, ...) {
  char msg[768], name[1024];
  va_list ap;
  if (p->j.failed)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fsc_app_errorf(p->j.run->app, "put %s: %s", esc(name, sizeof name, p->j.arg),
                 msg);
  p->j.failed = 1;
}

static void put_cancel_request(struct put_job *p) {
  if (p->j.req_done || p->cancel_sent || !p->j.req.registered)
    return;
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_CANCEL;
  m.id = p->j.req.id;
  fsc_conn_send(&p->j.run->app->conn, &m);
  p->cancel_sent = 1;
}

static void put_read_next(struct put_job *p);

static void on_put_written(uv_write_t *w, int status) {
  struct put_buf *b = (struct put_buf *)w;
  struct put_job *p = b->p;
  b->busy = 0;
  p->writes--;
  if (status == 0)
    p->j.run->done += b->len;
  put_step(p);
}

static void on_put_read(uv_fs_t *req) {
  struct put_job *p = req->data;
  struct put_buf *b = p->reading;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  p->reading = NULL;
  b->busy = 0;
  if (p->j.failed) {
    put_step(p);
    return;
  }
  if (res < 0) {
    put_error(p, "cannot read: %s", uv_strerror((int)res));
    put_cancel_request(p);
    put_step(p);
    return;
  }
  uint32_t want = fsc_put_next_len(&p->sm);
  int rc = fsc_put_on_read(&p->sm, b->frame + FSP_HDR_LEN, (size_t)res, want);
  if (rc < 0) {
    put_error(p, "%s", fsc_strerror(rc));
    put_cancel_request(p);
    put_step(p);
    return;
  }
  p->roff += (uint64_t)res;
  b->len = (uint32_t)res;
  b->busy = 1;
  p->writes++;
  rc = fsc_conn_send_data(&p->j.run->app->conn, &b->w, p->j.req.id, b->frame,
                          b->len, on_put_written);
  if (rc < 0) {
    b->busy = 0;
    p->writes--;
    put_error(p, "%s", fsc_strerror(rc));
    put_step(p);
    return;
  }
  put_step(p);
}

static void put_read_next(struct put_job *p) {
  struct put_buf *b = NULL;
  for (int i = 0; i < PUT_NBUF; i++)
    if (!p->bufs[i].busy) {
      b = &p->bufs[i];
      break;
    }
  if (b == NULL)
    return;
  if (b->frame == NULL) {
    /* A small file needs no full-size chunk buffer. */
    uint64_t need = p->size < p->sm.chunk ? p->size : p->sm.chunk;
    b->frame = malloc(FSP_HDR_LEN + (size_t)need + 1);
    if (b->frame == NULL) {
      put_error(p, "%s", fsc_strerror(UV_ENOMEM));
      put_cancel_request(p);
      return;
    }
  }
  b->p = p;
  b->busy = 1;
  p->reading = b;
  p->fs.data = p;
  p->fs_busy = 1;
  uv_buf_t ub =
      uv_buf_init((char *)b->frame + FSP_HDR_LEN, fsc_put_next_len(&p->sm));
  int rc = uv_fs_read(p->j.run->app->loop, &p->fs, p->fd, &ub, 1,
                      (int64_t)p->roff, on_put_read);
  if (rc < 0) {
    p->fs.result = rc;
    on_put_read(&p->fs);
  }
}

static void on_put_closed(uv_fs_t *req) {
  struct put_job *p = req->data;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  p->fd = -1;
  put_step(p);
}

static void put_step(struct put_job *p) {
  if (p->j.finished || p->fs_busy || p->in_open)
    return;
  if (!p->j.failed && p->ready && !p->end_sent) {
    if (fsc_put_next_len(&p->sm) > 0) {
      put_read_next(p);
      return;
    }
    struct fsp_msg end;
    if (fsc_put_end(&p->sm, &end, p->j.req.id) == 0) {
      int rc = fsc_conn_send(&p->j.run->app->conn, &end);
      if (rc < 0)
        put_error(p, "%s", fsc_strerror(rc));
      p->end_sent = 1;
    }
  }
  if (!p->j.req_done || p->writes > 0)
    return;
  if (p->fd >= 0 && p->own_fd) {
    p->fs.data = p;
    p->fs_busy = 1;
    int fd = p->fd;
    p->fd = -1;
    if (uv_fs_close(p->j.run->app->loop, &p->fs, fd, on_put_closed) < 0)
      p->fs_busy = 0;
    else
      return;
  }
  job_finished(&p->j);
}

static void put_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct put_job *p = req->data;
  struct fsc_run *r = p->j.run;
  char msg[512];
  int rc;
  switch (m->op) {
  case FSP_OP_READY:
    if (p->j.failed)
      return;
    rc = fsc_put_on_ready(&p->sm);
    if (rc < 0) {
      put_error(p, "%s", fsc_strerror(rc));
      put_cancel_request(p);
      return;
    }
    p->ready = 1;
    put_step(p);
    return;
  case FSP_OP_INFO:
    p->j.req_done = 1;
    fsc_conn_finish(&r->app->conn, req);
    if (!p->j.failed) {
      rc = fsc_put_on_info(&p->sm, m);
      if (rc < 0)
        put_error(p, "%s", fsc_strerror(rc));
    }
    put_step(p);
    return;
  case FSP_OP_ERROR:
    p->j.req_done = 1;
    fsc_conn_finish(&r->app->conn, req);
    if (!p->j.failed || m->u.error.status != FSP_ST_CANCELED) {
      server_msg(msg, sizeof msg, m);
      put_error(p, "%s", msg);
    }
    p->j.failed = 1;
    put_step(p);
    return;
  default:
    return;
  }
}

static void put_lost(struct fsc_req *req, int err) {
  struct put_job *p = req->data;
  p->j.req_done = 1;
  if (!p->j.failed && !p->j.run->canceled)
    put_error(p, "connection lost");
  p->j.failed = 1;
  put_step(p);
}

static void put_send_request(struct put_job *p) {
  struct fsc_run *r = p->j.run;
  if (fsc_put_init(&p->sm, p->size, r->app->conn.peer_max_payload, PUT_CHUNK) <
      0) {
    put_error(p, "%s", fsc_strerror(UV_ENOMEM));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  r->total += p->size;
  r->sizes_known++;
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_PUT;
  m.u.put.size = p->size;
  m.u.put.mode = r->cmd.no_clobber ? FSP_PUT_NO_CLOBBER : FSP_PUT_REPLACE;
  m.u.put.name.ptr = p->name;
  m.u.put.name.len = strlen(p->name);
  int rc = fsc_conn_request(&r->app->conn, &p->j.req, &m);
  if (rc < 0) {
    put_error(p, "%s", fsc_strerror(rc));
    p->j.req_done = 1;
    put_step(p);
  }
}

/* stdin is a pipe or a terminal: its size is unknown, but PUT announces
 * it, so it is first copied to an unlinked temporary file (bounded memory:
 * one buffer, and reading pauses while it is written out). stdin is read
 * as a libuv stream rather than with uv_fs_read, because a read blocked in
 * the threadpool could not be interrupted by Ctrl-C. */
static void spool_start(struct put_job *p);

static void on_in_closed(uv_handle_t *h) {
  struct put_job *p = h->data;
  p->in_open = 0;
  if (p->in_eof && !p->j.failed) {
    p->size = p->spooled;
    put_send_request(p);
    return;
  }
  put_step(p);
}

static void spool_stop(struct put_job *p) {
  if (p->in_open && !uv_is_closing((uv_handle_t *)&p->in)) {
    uv_read_stop((uv_stream_t *)&p->in);
    uv_close((uv_handle_t *)&p->in, on_in_closed);
  }
}

static void on_spool_written(uv_fs_t *req);

static void spool_write(struct put_job *p) {
  uv_buf_t b = uv_buf_init((char *)p->spool_buf + p->spool_off,
                           (unsigned)(p->spool_len - p->spool_off));
  p->fs.data = p;
  p->fs_busy = 1;
  int rc = uv_fs_write(p->j.run->app->loop, &p->fs, p->fd, &b, 1,
                       (int64_t)p->spooled, on_spool_written);
  if (rc < 0) {
    p->fs.result = rc;
    on_spool_written(&p->fs);
  }
}

static void on_spool_written(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  if (p->j.failed) {
    spool_stop(p);
    put_step(p);
    return;
  }
  if (res < 0) {
    put_error(p, "cannot spool stdin: %s", uv_strerror((int)res));
    p->j.req_done = 1;
    spool_stop(p);
    return;
  }
  p->spooled += (uint64_t)res;
  p->spool_off += (size_t)res;
  if (p->spool_off < p->spool_len) {
    /* A short write: write the rest, which works or shows the error. */
    if (res == 0) {
      put_error(p, "cannot spool stdin: nothing was written");
      p->j.req_done = 1;
      spool_stop(p);
      return;
    }
    spool_write(p);
    return;
  }
  spool_start(p);
}

static void on_in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct put_job *p = h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)p->spool_buf, IO_CHUNK);
}

static void on_in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct put_job *p = s->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    if (nread == UV_EOF)
      p->in_eof = 1;
    else {
      put_error(p, "cannot read stdin: %s", uv_strerror((int)nread));
      p->j.req_done = 1;
    }
    spool_stop(p);
    return;
  }
  /* One buffer: stop reading until it is on disk. */
  uv_read_stop(s);
  p->spool_len = (size_t)nread;
  p->spool_off = 0;
  spool_write(p);
}

static void spool_start(struct put_job *p) {
  int rc = uv_read_start((uv_stream_t *)&p->in, on_in_alloc, on_in_read);
  if (rc < 0) {
    put_error(p, "cannot read stdin: %s", uv_strerror(rc));
    p->j.req_done = 1;
    spool_stop(p);
  }
}

static void on_spool_file(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uv_fs_type type = req->fs_type;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", req->path ? req->path : "");
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  if (res < 0) {
    put_error(p, "cannot create a temporary file for stdin: %s",
              uv_strerror((int)res));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (type == UV_FS_MKSTEMP) {
    p->fd = (int)res;
    p->own_fd = 1;
    /* Nobody needs its name: the open descriptor is enough, and nothing
     * is left behind whatever happens next. */
    p->fs.data = p;
    p->fs_busy = 1;
    if (uv_fs_unlink(p->j.run->app->loop, &p->fs, path, on_spool_file) < 0)
      p->fs_busy = 0;
    else
      return;
  }
  p->spool_buf = malloc(IO_CHUNK);
  uv_loop_t *loop = p->j.run->app->loop;
  int rc = p->spool_buf == NULL ? UV_ENOMEM
           : uv_guess_handle(STDIN_FILENO) == UV_TTY
               ? uv_tty_init(loop, &p->in.tty, STDIN_FILENO, 1)
               : uv_pipe_init(loop, &p->in.pipe, 0);
  if (rc == 0 && uv_guess_handle(STDIN_FILENO) != UV_TTY)
    rc = uv_pipe_open(&p->in.pipe, STDIN_FILENO);
  if (rc < 0) {
    put_error(p, "cannot read stdin: %s", uv_strerror(rc));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->in.pipe.data = p;
  p->in_open = 1;
  spool_start(p);
}

static void on_put_stat(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uint64_t mode = req->statbuf.st_mode;
  uint64_t size = req->statbuf.st_size;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  if (res < 0 || p->j.failed) {
    if (!p->j.failed)
      put_error(p, "%s", uv_strerror((int)res));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (S_ISDIR(mode)) {
    put_error(p, "is a folder");
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (!S_ISREG(mode) && p->is_stdin) {
    const char *tmp = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/fsc-stdin-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    p->fs.data = p;
    p->fs_busy = 1;
    int rc = uv_fs_mkstemp(p->j.run->app->loop, &p->fs, tmpl, on_spool_file);
    if (rc < 0) {
      p->fs.result = rc;
      p->fs.fs_type = UV_FS_MKSTEMP;
      on_spool_file(&p->fs);
    }
    return;
  }
  if (!S_ISREG(mode)) {
    put_error(p, "not a regular file");
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->size = size;
  put_send_request(p);
}

static void on_put_opened(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  if (res < 0) {
    put_error(p, "%s", uv_strerror((int)res));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->fd = (int)res;
  p->own_fd = 1;
  if (p->j.failed) {
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->fs.data = p;
  p->fs_busy = 1;
  int rc = uv_fs_fstat(p->j.run->app->loop, &p->fs, p->fd, on_put_stat);
  if (rc < 0) {
    p->fs.result = rc;
    on_put_stat(&p->fs);
  }
}

static void put_cancel(struct job *j) {
  struct put_job *p = (struct put_job *)j;
  if (j->failed)
    return;
  j->failed = 1;
  spool_stop(p);
  put_cancel_request(p);
  j->req_done = 1;
  fsc_conn_finish(&j->run->app->conn, &j->req);
  put_step(p);
}

static void put_destroy(struct job *j) {
  struct put_job *p = (struct put_job *)j;
  for (int i = 0; i < PUT_NBUF; i++)
    free(p->bufs[i].frame);
  free(p->spool_buf);
  fsc_put_free(&p->sm);
  free(p);
}

static const struct fsc_req_ops put_ops = {put_msg, NULL, put_lost};

static struct job *put_job_new(struct fsc_run *r, int index) {
  struct put_job *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->fd = -1;
  p->j.cancel = put_cancel;
  p->j.destroy = put_destroy;
  p->j.req.ops = &put_ops;
  p->j.req.data = p;
  return &p->j;
}

static void put_job_start(struct put_job *p) {
  struct fsc_run *r = p->j.run;
  size_t len;
  const char *name = fsc_put_name(p->j.arg, r->cmd.as, &len);
  char ename[1024];
  if (len > FSP_NAME_MAX || fsp_name_check(name, len) != 0) {
    fsc_fmt_escape(ename, sizeof ename, name, len);
    put_error(p, "'%s': %s", ename, fsp_strerror(FSP_EBADNAME));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  memcpy(p->name, name, len);
  p->name[len] = '\0';
  p->fs.data = p;
  p->fs_busy = 1;
  int rc;
  if (strcmp(p->j.arg, "-") == 0) {
    p->is_stdin = 1;
    p->fd = STDIN_FILENO;
    p->own_fd = 0;
    rc = uv_fs_fstat(r->app->loop, &p->fs, p->fd, on_put_stat);
    if (rc < 0) {
      p->fs.result = rc;
      on_put_stat(&p->fs);
    }
    return;
  }
  rc = uv_fs_open(r->app->loop, &p->fs, p->j.arg, O_RDONLY | O_CLOEXEC, 0,
                  on_put_opened);
  if (rc < 0) {
    p->fs.result = rc;
    on_put_opened(&p->fs);
  }
}

/* --- watch -----------------------------------------------------------------
 */

static void watch_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct job *j = req->data;
  struct fsc_app *a = j->run->app;
  char msg[512];
  if (m->op == FSP_OP_SUBSCRIBED) {
    if (!a->quiet && !a->shell) {
      char line[300];
      snprintf(line, sizeof line, "fsc: watching %s (Ctrl-C to stop)",
               a->server);
      a->print(a, 1, line);
    }
    return; /* runs until Ctrl-C or the connection ends */
  }
  if (m->op == FSP_OP_ERROR) {
    server_msg(msg, sizeof msg, m);
    fsc_app_errorf(a, "watch: %s", msg);
    j->failed = 1;
    j->req_done = 1;
    job_finished(j);
  }
}

/* --- Generic job plumbing --------------------------------------------------
 */

static void small_lost(struct fsc_req *req, int err) {
  struct job *j = req->data;
  j->req_done = 1;
  j->failed = 1;
  job_finished(j);
}

static void small_cancel(struct job *j) {
  j->failed = 1;
  j->req_done = 1;
  job_finished(j);
}

static void small_destroy(struct job *j) {
  free(j);
}

static const struct fsc_req_ops ls_ops = {ls_msg, NULL, small_lost};
static const struct fsc_req_ops small_ops = {small_msg, NULL, small_lost};
static const struct fsc_req_ops watch_ops = {watch_msg, NULL, small_lost};

static struct job *simple_job_new(const struct fsc_req_ops *ops) {
  struct small_job *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->j.cancel = small_cancel;
  s->j.destroy = small_destroy;
  s->j.req.ops = ops;
  s->j.req.data = s;
  return &s->j;
}

/* Starts the request of a one-request job. */
static void simple_job_start(struct job *j) {
  struct fsc_run *r = j->run;
  struct fsp_msg m;
  char text[FSP_NOTICE_MAX + 2], ename[1024];
  memset(&m, 0, sizeof m);
  switch (r->cmd.kind) {
  case FSC_CMD_LS:
    m.op = FSP_OP_LIST;
    break;
  case FSC_CMD_WATCH:
    m.op = FSP_OP_SUBSCRIBE;
    break;
  case FSC_CMD_SIZE:
  case FSC_CMD_RM:
    m.op = r->cmd.kind == FSC_CMD_SIZE ? FSP_OP_STAT : FSP_OP_DELETE;
    m.u.name.ptr = j->arg;
    m.u.name.len = strlen(j->arg);
    if (fsp_name_check(j->arg, m.u.name.len) != 0) {
      fsc_app_errorf(r->app, "%s %s: %s", fsc_cmd_name(r->cmd.kind),
                     esc(ename, sizeof ename, j->arg),
                     fsp_strerror(FSP_EBADNAME));
      small_cancel(j);
      return;
    }
    break;
  case FSC_CMD_ANNOUNCE: {
    /* The words are joined with spaces, as echo does. */
    size_t len = 0;
    for (int i = 0; i < r->cmd.nargs; i++) {
      size_t n = strlen(r->cmd.args[i]);
      if (len + n + (i > 0) > FSP_NOTICE_MAX) {
        fsc_app_errorf(r->app, "announce: text longer than %u bytes",
                       FSP_NOTICE_MAX);
        small_cancel(j);
        return;
      }
      if (i > 0)
        text[len++] = ' ';
      memcpy(text + len, r->cmd.args[i], n);
      len += n;
    }
    if (len == 0 || fsp_utf8_check(text, len) != 0) {
      fsc_app_errorf(r->app, "announce: %s",
                     len == 0 ? "empty text" : fsp_strerror(FSP_EUTF8));
      small_cancel(j);
      return;
    }
    m.op = FSP_OP_NOTICE;
    m.u.text.ptr = text;
    m.u.text.len = len;
    break;
  }
  default:
    small_cancel(j);
    return;
  }
  int rc = fsc_conn_request(&r->app->conn, &j->req, &m);
  if (rc < 0) {
    fsc_app_errorf(r->app, "%s: %s", fsc_cmd_name(r->cmd.kind),
                   fsc_strerror(rc));
    small_cancel(j);
  }
}

/* Starts jobs while there is room, and ends the run when all are done. */
static void run_next(struct fsc_run *r) {
  /* Jobs that fail at once finish inside this loop; the outermost call
   * carries on instead of recursing, and alone may end the run. */
  if (r->in_next)
    return;
  r->in_next = 1;
  if (r->app->conn.state != FSC_CONN_READY && !r->lost) {
    r->lost = 1;
    run_fail(r, FSC_EXIT_CONN);
  }
  while (!r->canceled && !r->lost && r->active < r->parallel &&
         r->next < r->njobs) {
    int i = r->next++;
    struct job *j;
    switch (r->cmd.kind) {
    case FSC_CMD_GET:
      j = get_job_new(r, i);
      break;
    case FSC_CMD_PUT:
      j = put_job_new(r, i);
      break;
    case FSC_CMD_LS:
      j = simple_job_new(&ls_ops);
      break;
    case FSC_CMD_WATCH:
      j = simple_job_new(&watch_ops);
      break;
    default:
      j = simple_job_new(&small_ops);
      break;
    }
    if (j == NULL) {
      fsc_app_errorf(r->app, "%s", fsc_strerror(UV_ENOMEM));
      run_fail(r, FSC_EXIT_FAIL);
      continue;
    }
    j->run = r;
    j->index = i;
    j->arg = r->cmd.nargs > 0 ? r->cmd.args[i] : "";
    r->jobs[i] = j;
    r->active++;
    if (r->cmd.kind == FSC_CMD_GET)
      get_job_start((struct get_job *)j);
    else if (r->cmd.kind == FSC_CMD_PUT)
      put_job_start((struct put_job *)j);
    else
      simple_job_start(j);
  }
  r->in_next = 0;
  if (r->active == 0 && (r->next >= r->njobs || r->canceled || r->lost)) {
    if (r->cmd.kind == FSC_CMD_SIZE)
      size_print(r);
    run_end(r);
  }
}

int fsc_run_start(struct fsc_app *a, const struct fsc_cmd *cmd) {
  struct fsc_run *r = calloc(1, sizeof *r);
  if (r == NULL)
    return FSC_EXIT_FAIL;
  r->app = a;
  r->cmd = *cmd;
  switch (cmd->kind) {
  case FSC_CMD_GET:
  case FSC_CMD_PUT:
  case FSC_CMD_SIZE:
  case FSC_CMD_RM:
    r->njobs = cmd->nargs;
    break;
  case FSC_CMD_LS:
  case FSC_CMD_WATCH:
  case FSC_CMD_ANNOUNCE:
    r->njobs = 1;
    break;
  default:
    free(r);
    return FSC_EXIT_USAGE;
  }
  r->jobs = calloc((size_t)r->njobs, sizeof *r->jobs);
  if (r->jobs == NULL) {
    free(r);
    return FSC_EXIT_FAIL;
  }
  int limit = cmd->kind == FSC_CMD_GET   ? GET_PARALLEL
              : cmd->kind == FSC_CMD_PUT ? PUT_PARALLEL
                                         : SMALL_PARALLEL;
  /* Stay within what the server allows in flight (its HELLO), leaving room
   * for the shell's subscription and a CANCEL. */
  int server = (int)a->conn.peer_max_inflight - 2;
  if (server < 1)
    server = 1;
  r->parallel = limit < server ? limit : server;
  if (cmd->kind == FSC_CMD_GET && cmd->out != NULL &&
      strcmp(cmd->out, "-") != 0) {
    uv_fs_t st;
    /* One stat before anything runs: is -o a folder? */
    int rc = uv_fs_stat(NULL, &st, cmd->out, NULL);
    r->out_is_dir = rc == 0 && S_ISDIR(st.statbuf.st_mode);
    uv_fs_req_cleanup(&st);
    if (cmd->nargs > 1 && !r->out_is_dir) {
      char ename[1024];
      fsc_app_errorf(a, "get: -o %s: not a folder (several NAMEs need one)",
                     esc(ename, sizeof ename, cmd->out));
      free(r->jobs);
      free(r);
      return FSC_EXIT_USAGE;
    }
  }
  a->run = r;
  if (cmd->kind == FSC_CMD_GET || cmd->kind == FSC_CMD_PUT)
    progress_start(r);
  if (cmd->kind == FSC_CMD_WATCH)
    a->push_json = cmd->json;
  run_next(r);
  return 0;
}

void fsc_run_cancel(struct fsc_app *a) {
  struct fsc_run *r = a->run;
  if (r == NULL || r->canceled)
    return;
  r->canceled = 1;
  /* Stopping a watch is how it ends: that is success. */
  if (r->cmd.kind != FSC_CMD_WATCH)
    run_fail(r, FSC_EXIT_INTR);
  r->in_next = 1; /* the run must outlive this loop */
  for (int i = 0; i < r->njobs; i++) {
    struct job *j = r->jobs[i];
    if (j != NULL && !j->finished)
      j->cancel(j);
  }
  r->in_next = 0;
  run_next(r);
}

void fsc_run_conn_lost(struct fsc_app *a, int err) {
  struct fsc_run *r = a->run;
  if (r == NULL)
    return;
  r->lost = 1;
  run_fail(r, FSC_EXIT_CONN);
  /* Requests already got on_lost from the connection; jobs that were not
   * started have nothing to clean up. */
  run_next(r);
}
