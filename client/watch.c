/* fsc watch: SUBSCRIBE (to a folder's subtree, in version 3), then print
 * every pushed EVENT and NOTIFY, keeping a table of the server's files
 * current so that a RESYNC or a reconnect to a new server instance can be
 * shown as the difference it made. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cmds.h"
#include "job.h"
#include "rpath.h"
#include "snap.h"
#include "xfer.h"

/* A status line: a fixed sentence and HOST:PORT (at most 255 + 7 bytes). */
#define WATCH_LINE_MAX 320

/* A watch keeps a table of the server's files current from EVENTs. After
 * a RESYNC (it read too slowly and events were coalesced), or a reconnect
 * that finds a new server instance, it lists again and prints the
 * difference from its table as event lines, so that what it printed always
 * adds up to the server's state. Events that arrive while the LIST streams
 * are printed live and logged, and replayed on top of the listing once it
 * is complete (the listing may or may not include them). */
struct watch_job {
  struct fsc_job j;      /* j.req is the SUBSCRIBE */
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
  fsc_job_fail(&w->j);
}

/* The folder watched: "" for all (r->state holds it). */
static const char *watch_path(const struct watch_job *w) {
  return w->j.run->state;
}

static void watch_list(struct watch_job *w) {
  struct fsc_app *a = w->j.run->app;
  struct fsp_msg m;
  /* Version 3: the whole subtree, whose files events name. */
  fsc_rpath_msg(&m, FSP_OP_LIST, a->conn.version, FSP_LIST_RECURSIVE,
                watch_path(w));
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
    char line[WATCH_LINE_MAX];
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
  char msg[FSC_MSG_MAX];
  int rc;
  switch (m->op) {
  case FSP_OP_ENTRIES:
    rc = fsc_snap_add_entries_in(&w->fresh, m, watch_path(w));
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
    fsc_server_msg(msg, sizeof msg, m);
    fsc_app_errorf(a, "watch: list: %s", msg);
    fsc_job_fail(&w->j);
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
      char line[WATCH_LINE_MAX];
      const char *p = watch_path(w);
      snprintf(line, sizeof line, "fsc: watching %s%s%.64s (Ctrl-C to stop)",
               a->server, p[0] ? " /" : "", p);
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
  char msg[FSC_MSG_MAX];
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
    fsc_server_msg(msg, sizeof msg, m);
    fsc_app_errorf(a, "watch: %s", msg);
    fsc_job_fail(&w->j);
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
  m.u.sub.path.ptr = watch_path(w);
  m.u.sub.path.len = strlen(watch_path(w));
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

static void watch_cancel(struct fsc_job *j) {
  struct watch_job *w = (struct watch_job *)j;
  fsc_conn_finish(&j->run->app->conn, &w->list);
  w->listing = 0;
  fsc_job_fail(j);
}

static void watch_destroy(struct fsc_job *j) {
  struct watch_job *w = (struct watch_job *)j;
  fsc_snap_free(&w->files);
  fsc_snap_free(&w->fresh);
  fsc_evlog_free(&w->log);
  fsc_free(w);
}

/* The connection is gone for good: a watch's job has no request left once
 * subscribed, so it ends here. */
static void watch_lost(struct fsc_job *j) {
  fsc_job_fail(j);
}

static const struct fsc_req_ops watch_req_ops = {watch_msg, NULL,
                                                 watch_req_lost};
static const struct fsc_req_ops list_req_ops = {list_msg, NULL, list_lost};
static const struct fsc_job_ops watch_job_ops = {watch_cancel, watch_lost,
                                                 watch_destroy};

static struct fsc_job *watch_job_new(void) {
  struct watch_job *w = fsc_calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  w->j.ops = &watch_job_ops;
  w->j.req.ops = &watch_req_ops;
  w->j.req.data = w;
  w->list.ops = &list_req_ops;
  w->list.data = w;
  return &w->j;
}

static void watch_job_start(struct fsc_job *j) {
  watch_subscribe((struct watch_job *)j);
}

/* The watch's one job, while it runs. */
static struct watch_job *run_watch(const struct fsc_run *r) {
  return (struct watch_job *)fsc_run_job(r, 0, &watch_job_ops);
}

static int watch_begin(struct fsc_run *r) {
  struct fsc_app *a = r->app;
  char path[FSP_PATH_MAX + 1] = "", e[FSC_ESC_MAX];
  a->push_json = r->cmd.json;
  if (r->cmd.nargs > 0) {
    int rc = fsc_app_need_tree(a, "watch");
    if (rc != 0)
      return rc;
    if (fsc_app_rpath(a, r->cmd.args[0], path, sizeof path, 1) != 0) {
      fsc_app_errorf(a, "watch %s: %s", fsc_esc(e, sizeof e, r->cmd.args[0]),
                     fsp_strerror(FSP_EBADNAME));
      return FSC_EXIT_FAIL;
    }
  }
  r->state = fsc_strdup(path);
  return r->state == NULL ? UV_ENOMEM : 0;
}

static void watch_free(struct fsc_run *r) {
  fsc_free(r->state);
}

/* It keeps its table and waits for fsc_run_reconnected(). */
static int watch_conn_lost(struct fsc_run *r) {
  struct watch_job *w = run_watch(r);
  if (w != NULL)
    w->down = 1;
  return 1;
}

static void watch_reconnected(struct fsc_run *r) {
  struct watch_job *w = run_watch(r);
  if (w == NULL || w->j.finished)
    return;
  w->down = 0;
  w->rejoined = 1;
  watch_subscribe(w);
}

static void watch_on_push(struct fsc_run *r, const struct fsp_msg *m) {
  struct watch_job *w = run_watch(r);
  if (w != NULL)
    watch_push(w, m);
}

const struct fsc_run_ops fsc_watch_ops = {
    .parallel = 1,
    .stop_ok = 1,
    .begin = watch_begin,
    .free = watch_free,
    .job_new = watch_job_new,
    .job_start = watch_job_start,
    .conn_lost = watch_conn_lost,
    .reconnected = watch_reconnected,
    .push = watch_on_push,
};
