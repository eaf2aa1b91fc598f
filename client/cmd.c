/* fsc commands on libuv: runs and their jobs, and the one-request
 * commands (ls, size, rm, announce, watch). See cmd.h; downloads are in
 * get.c, uploads in put.c.
 *
 * Every command is a "run": a set of jobs (one per NAME or FILE) that each
 * own one request at a time on the shared connection. Runs start up to a
 * few jobs at once, so many requests are in flight together, and end when
 * every job has finished its local cleanup. */
#include "cmd.h"
#include "cmd_int.h"

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
#include "snap.h"
#include "xfer.h"

/* Files transferred at the same time. */
#define GET_PARALLEL 16
#define PUT_PARALLEL 4
#define SMALL_PARALLEL 32 /* STAT, DELETE */
#define PROGRESS_MS 200

/* The process's umask, read once: new downloads get 0666 & ~umask. */
static mode_t fsc_umask = 022;

void fsc_app_init_umask(void) {
  fsc_umask = umask(022);
  umask(fsc_umask);
}

mode_t fsc__umask(void) {
  return fsc_umask;
}

/* --- Shared helpers --- */

const char *fsc_strerror(int err) {
  const char *s = fsc_xfer_strerror(err);
  if (s != NULL)
    return s;
  if (err <= -500 && err > -600)
    return fsp_strerror(err);
  return uv_strerror(err);
}

const char *fsc_conn_why(const struct fsc_conn *c, int err) {
  return c->msg[0] ? c->msg : fsc_strerror(err);
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

const char *fsc__esc(char *buf, size_t cap, const char *s) {
  fsc_fmt_escape(buf, cap, s, strlen(s));
  return buf;
}

void fsc__server_msg(char *buf, size_t cap, const struct fsp_msg *m) {
  if (m->u.error.text.len > 0)
    fsc_fmt_escape(buf, cap, m->u.error.text.ptr, m->u.error.text.len);
  else
    snprintf(buf, cap, "%s", fsp_status_str(m->u.error.status));
}

/* --- Runs and jobs --- */

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

void fsc__job_finished(struct job *j) {
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

/* --- ls --- */

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
    fsc__server_msg(msg, sizeof msg, m);
    fsc_app_errorf(r->app, "ls: %s", msg);
    j->failed = 1;
    break;
  default:
    return;
  }
  j->req_done = 1;
  fsc__job_finished(j);
}

/* --- size, rm, announce: one request, one answer --- */

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
    fsc__server_msg(msg, sizeof msg, m);
    if (r->cmd.kind == FSC_CMD_ANNOUNCE)
      fsc_app_errorf(r->app, "announce: %s", msg);
    else
      fsc_app_errorf(r->app, "%s %s: %s", fsc_cmd_name(r->cmd.kind),
                     fsc__esc(name, sizeof name, s->j.arg), msg);
    s->j.failed = 1;
  } else if (m->op == FSP_OP_INFO && r->cmd.kind == FSC_CMD_SIZE) {
    s->size = m->u.entry.size;
    s->ok = 1;
  } else if (m->op == FSP_OP_OK && r->cmd.kind != FSC_CMD_SIZE) {
    s->ok = 1;
  } else
    return;
  s->j.req_done = 1;
  fsc__job_finished(&s->j);
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
               fsc__esc(name, sizeof name, s->j.arg));
    r->app->print(r->app, 0, line);
  }
}

/* Ends a job that has nothing left in flight (no request, no file), as
 * failed: canceled, or its request failed or was lost. */
static void job_fail(struct job *j) {
  j->failed = 1;
  j->req_done = 1;
  fsc__job_finished(j);
}

/* --- watch --- */

/* A watch keeps a table of the server's files current from EVENTs. After
 * a RESYNC (it read too slowly and events were coalesced), or a reconnect
 * that finds a new server instance, it lists again and prints the
 * difference from its table as event lines, so that what it printed always
 * adds up to the server's state. Events that arrive while the LIST streams
 * are printed live and logged, and replayed on top of the listing once it
 * is complete (the listing may or may not include them). */
struct watch_job {
  struct job j;          /* j.req is the SUBSCRIBE */
  struct fsc_req list;   /* the LIST, while one is in flight */
  struct fsc_snap files; /* the server's files as printed so far */
  struct fsc_snap fresh; /* the LIST being received */
  struct fsc_evlog log;  /* events received during that LIST */
  uint64_t epoch;        /* the server instance (0: not subscribed yet) */
  uint64_t seq;          /* the last event seen */
  uint64_t resync_seq;   /* seq of the RESYNC being served */
  int have_files;        /* files holds a complete listing */
  int listing;           /* a LIST is in flight */
  int relist;            /* a RESYNC came during the LIST: list again */
  int announced;         /* "watching" was printed */
  int down;              /* connection lost; waiting for a reconnect */
  int rejoined;          /* subscribed again after a reconnect, and no
                            event or RESYNC yet */
  int stale;             /* a RESYNC is not served yet: files may lack
                            changes up to seq, whatever happens to the
                            connection meanwhile */
};

static void watch_fail(struct watch_job *w, const char *what, int err) {
  fsc_app_errorf(w->j.run->app, "watch: %s: %s", what, fsc_strerror(err));
  job_fail(&w->j);
}

static void watch_list(struct watch_job *w) {
  struct fsc_app *a = w->j.run->app;
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_LIST;
  fsc_snap_free(&w->fresh);
  fsc_evlog_free(&w->log);
  w->relist = 0;
  int rc = fsc_conn_request(&a->conn, &w->list, &m);
  if (rc < 0) {
    /* The connection is going; its loss is handled there. */
    if (a->conn.state != FSC_CONN_READY)
      return;
    watch_fail(w, "list", rc);
    return;
  }
  w->listing = 1;
}

/* Events missed: say so, then list again (or once the LIST in flight is
 * over, since it may lack what was missed). */
static void watch_resync(struct watch_job *w, uint64_t epoch, uint64_t seq) {
  struct fsc_app *a = w->j.run->app;
  const char *why = epoch != w->epoch ? "the server restarted"
                    : w->rejoined     ? "more events were missed than the "
                                        "server keeps"
                                      : "this watch read too slowly and "
                                        "events were dropped";
  w->rejoined = 0;
  w->epoch = epoch;
  w->seq = seq;
  w->resync_seq = seq;
  w->stale = 1;
  if (a->push_json) {
    struct fsp_msg m;
    memset(&m, 0, sizeof m);
    m.op = FSP_OP_RESYNC;
    m.u.sub.epoch = epoch;
    m.u.sub.seq = seq;
    fsc_app_print_push(a, &m);
  } else {
    char line[256];
    snprintf(line, sizeof line,
             "fsc: resync: %s; listing the files again to show what changed",
             why);
    a->print(a, 1, line);
  }
  if (w->listing)
    w->relist = 1;
  else
    watch_list(w);
}

static void print_change(void *arg, const struct fsp_msg *m) {
  fsc_app_print_push(arg, m);
}

static void list_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct watch_job *w = req->data;
  struct fsc_app *a = w->j.run->app;
  char msg[512];
  int rc;
  switch (m->op) {
  case FSP_OP_ENTRIES:
    rc = fsc_snap_add_entries(&w->fresh, m);
    if (rc < 0) {
      fsc_conn_finish(&a->conn, &w->list);
      w->listing = 0;
      watch_fail(w, "list", rc);
    }
    return;
  case FSP_OP_OK:
    break;
  case FSP_OP_ERROR:
    fsc_conn_finish(&a->conn, &w->list);
    w->listing = 0;
    fsc__server_msg(msg, sizeof msg, m);
    fsc_app_errorf(a, "watch: list: %s", msg);
    job_fail(&w->j);
    return;
  default:
    return;
  }
  fsc_conn_finish(&a->conn, &w->list);
  w->listing = 0;
  rc = fsc_evlog_replay(&w->log, &w->fresh);
  fsc_evlog_free(&w->log);
  /* The first listing is the starting point: nothing to print. */
  if (rc == 0 && w->have_files &&
      fsc_snap_diff(&w->files, &w->fresh, w->resync_seq, print_change, a) < 0)
    rc = FSC_ENOMEM;
  if (rc < 0) {
    watch_fail(w, "list", rc);
    return;
  }
  fsc_snap_free(&w->files);
  w->files = w->fresh;
  memset(&w->fresh, 0, sizeof w->fresh);
  w->have_files = 1;
  if (!w->relist)
    w->stale = 0;
  if (!w->announced) {
    w->announced = 1;
    if (!a->quiet && !a->shell) {
      char line[300];
      snprintf(line, sizeof line, "fsc: watching %s (Ctrl-C to stop)",
               a->server);
      a->print(a, 1, line);
    }
  }
  if (w->relist)
    watch_list(w);
}

static void list_lost(struct fsc_req *req, int err) {
  struct watch_job *w = req->data;
  (void)err;
  w->listing = 0;
  w->relist = 0;
  fsc_snap_free(&w->fresh);
  fsc_evlog_free(&w->log);
}

static void watch_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct watch_job *w = req->data;
  struct fsc_app *a = w->j.run->app;
  char msg[512];
  if (m->op == FSP_OP_SUBSCRIBED) {
    /* SUBSCRIBED is final; events come with id 0 from now on. */
    fsc_conn_finish(&a->conn, &w->j.req);
    uint64_t epoch = m->u.sub.epoch, seq = m->u.sub.seq;
    if (!w->have_files) {
      /* The first listing (again, if the first one was cut off). */
      w->epoch = epoch;
      w->seq = seq;
      if (!w->listing)
        watch_list(w);
    } else if (w->seq == 0 && (epoch != w->epoch || seq != 0)) {
      /* We asked for events after seq 0, which the server takes as "only
       * new ones": it cannot tell that we missed any. */
      watch_resync(w, epoch, seq);
    } else if (w->stale && !w->listing) {
      /* The connection dropped while a RESYNC was being served: its LIST
       * starts again (the seq we sent already counts it as served). */
      watch_list(w);
    }
    /* Otherwise the server replays what we missed, or sends RESYNC. */
    return;
  }
  if (m->op == FSP_OP_ERROR) {
    fsc_conn_finish(&a->conn, &w->j.req);
    fsc__server_msg(msg, sizeof msg, m);
    fsc_app_errorf(a, "watch: %s", msg);
    job_fail(&w->j);
  }
}

/* The SUBSCRIBE's connection went: fsc_run_conn_lost() decides. */
static void watch_req_lost(struct fsc_req *req, int err) {
  (void)req;
  (void)err;
}

/* SUBSCRIBE, with the last epoch and seq seen, so that after a reconnect
 * the server replays what we missed or says RESYNC. */
static void watch_subscribe(struct watch_job *w) {
  struct fsc_app *a = w->j.run->app;
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_SUBSCRIBE;
  m.u.sub.epoch = w->have_files ? w->epoch : 0;
  m.u.sub.seq = w->have_files ? w->seq : 0;
  int rc = fsc_conn_request(&a->conn, &w->j.req, &m);
  if (rc < 0 && a->conn.state == FSC_CONN_READY)
    watch_fail(w, "subscribe", rc);
}

static void watch_push(struct watch_job *w, const struct fsp_msg *m) {
  struct fsc_app *a = w->j.run->app;
  int rc = 0;
  if (w->down || w->j.finished)
    return;
  switch (m->op) {
  case FSP_OP_EVENT:
    w->rejoined = 0;
    w->seq = m->u.event.seq;
    if (w->have_files)
      rc = fsc_snap_apply(&w->files, m);
    if (rc == 0 && w->listing)
      rc = fsc_evlog_add(&w->log, m);
    fsc_app_print_push(a, m);
    if (rc < 0)
      watch_fail(w, "events", rc);
    return;
  case FSP_OP_RESYNC:
    watch_resync(w, m->u.sub.epoch, m->u.sub.seq);
    return;
  default:
    fsc_app_print_push(a, m);
    return;
  }
}

static void watch_cancel(struct job *j) {
  struct watch_job *w = (struct watch_job *)j;
  fsc_conn_finish(&j->run->app->conn, &w->list);
  w->listing = 0;
  job_fail(j);
}

static void watch_destroy(struct job *j) {
  struct watch_job *w = (struct watch_job *)j;
  fsc_snap_free(&w->files);
  fsc_snap_free(&w->fresh);
  fsc_evlog_free(&w->log);
  free(w);
}

static const struct fsc_req_ops watch_ops = {watch_msg, NULL, watch_req_lost};
static const struct fsc_req_ops list_ops = {list_msg, NULL, list_lost};

static struct job *watch_job_new(void) {
  struct watch_job *w = calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  w->j.cancel = watch_cancel;
  w->j.destroy = watch_destroy;
  w->j.req.ops = &watch_ops;
  w->j.req.data = w;
  w->list.ops = &list_ops;
  w->list.data = w;
  return &w->j;
}

/* --- Generic job plumbing --- */

static void small_lost(struct fsc_req *req, int err) {
  job_fail(req->data);
}

static void small_destroy(struct job *j) {
  free(j);
}

static const struct fsc_req_ops ls_ops = {ls_msg, NULL, small_lost};
static const struct fsc_req_ops small_ops = {small_msg, NULL, small_lost};

static struct job *simple_job_new(const struct fsc_req_ops *ops) {
  struct small_job *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->j.cancel = job_fail;
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
    watch_subscribe((struct watch_job *)j);
    return;
  case FSC_CMD_SIZE:
  case FSC_CMD_RM:
    m.op = r->cmd.kind == FSC_CMD_SIZE ? FSP_OP_STAT : FSP_OP_DELETE;
    m.u.name.ptr = j->arg;
    m.u.name.len = strlen(j->arg);
    if (fsp_name_check(j->arg, m.u.name.len) != 0) {
      fsc_app_errorf(r->app, "%s %s: %s", fsc_cmd_name(r->cmd.kind),
                     fsc__esc(ename, sizeof ename, j->arg),
                     fsp_strerror(FSP_EBADNAME));
      job_fail(j);
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
        job_fail(j);
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
      job_fail(j);
      return;
    }
    m.op = FSP_OP_NOTICE;
    m.u.text.ptr = text;
    m.u.text.len = len;
    break;
  }
  default:
    job_fail(j);
    return;
  }
  int rc = fsc_conn_request(&r->app->conn, &j->req, &m);
  if (rc < 0) {
    fsc_app_errorf(r->app, "%s: %s", fsc_cmd_name(r->cmd.kind),
                   fsc_strerror(rc));
    job_fail(j);
  }
}

/* Starts jobs while there is room, and ends the run when all are done. */
static void run_next(struct fsc_run *r) {
  /* Jobs that fail at once finish inside this loop; the outermost call
   * carries on instead of recursing, and alone may end the run. */
  if (r->in_next)
    return;
  r->in_next = 1;
  if (r->app->conn.state != FSC_CONN_READY && !r->lost && !r->canceled) {
    r->lost = 1;
    run_fail(r, FSC_EXIT_CONN);
  }
  while (!r->canceled && !r->lost && r->active < r->parallel &&
         r->next < r->njobs) {
    int i = r->next++;
    struct job *j;
    switch (r->cmd.kind) {
    case FSC_CMD_GET:
      j = fsc__get_job_new();
      break;
    case FSC_CMD_PUT:
      j = fsc__put_job_new();
      break;
    case FSC_CMD_LS:
      j = simple_job_new(&ls_ops);
      break;
    case FSC_CMD_WATCH:
      j = watch_job_new();
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
      fsc__get_job_start(j);
    else if (r->cmd.kind == FSC_CMD_PUT)
      fsc__put_job_start(j);
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
                     fsc__esc(ename, sizeof ename, cmd->out));
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

/* The watch job of a running watch, or NULL. */
static struct watch_job *run_watch(const struct fsc_app *a) {
  const struct fsc_run *r = a->run;
  if (r == NULL || r->cmd.kind != FSC_CMD_WATCH || r->njobs == 0)
    return NULL;
  return (struct watch_job *)r->jobs[0];
}

void fsc_run_conn_lost(struct fsc_app *a, int err) {
  struct fsc_run *r = a->run;
  (void)err;
  if (r == NULL)
    return;
  struct watch_job *w = run_watch(a);
  if (r->cmd.kind == FSC_CMD_WATCH && a->reconnect) {
    /* It keeps its table and waits for fsc_run_reconnected(). */
    if (w != NULL)
      w->down = 1;
    return;
  }
  r->lost = 1;
  run_fail(r, FSC_EXIT_CONN);
  /* Requests already got on_lost from the connection; jobs that were not
   * started have nothing to clean up. A watch's job has no request left
   * once subscribed, so it ends here. */
  if (w != NULL && !w->j.finished) {
    r->in_next = 1; /* the run must outlive this call */
    job_fail(&w->j);
    r->in_next = 0;
  }
  run_next(r);
}

void fsc_run_reconnected(struct fsc_app *a) {
  struct watch_job *w = run_watch(a);
  if (w == NULL || w->j.finished)
    return;
  w->down = 0;
  w->rejoined = 1;
  watch_subscribe(w);
}

void fsc_run_push(struct fsc_app *a, const struct fsp_msg *m) {
  struct watch_job *w = run_watch(a);
  if (w != NULL)
    watch_push(w, m);
}
