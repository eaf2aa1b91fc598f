/* The folder watcher; see watch.h. */
#include "watch.h"

#include <string.h>

#include "log.h"
#include "mem.h"

/* Buckets of the pending set at first; it doubles as names come. */
#define PENDING_BUCKETS 64u
/* FSD_WATCH_DELAY_MS is capped: a test needs a gap, not a hang. */
#define STAT_DELAY_MAX_MS 10000u

/* A stat job for a name the watcher reported, and its entry in the
 * pending set. */
struct fsd_watch_job {
  uv_work_t work;
  struct fsd_watch *w;
  struct fsd_watch_job *hnext; /* next in the pending set's chain */
  uint32_t hash;               /* of the name */
  uint8_t again;       /* the watcher reported the name again meanwhile */
  uint8_t overtaken;   /* our own PUT or DELETE of it was applied meanwhile */
  int err;             /* the stat's result */
  struct fsd_stamp st; /* what it found */
  uint16_t name_len;
  char name[FSP_NAME_MAX + 1];
};

static uint32_t name_hash(const char *name, size_t len) {
  uint32_t h = 2166136261u; /* FNV-1a */

  for (size_t i = 0; i < len; i++)
    h = (h ^ (uint8_t)name[i]) * 16777619u;
  return h;
}

static struct fsd_watch_job **slot(struct fsd_watch *w, uint32_t hash) {
  return &w->pending[hash & (w->npending_buckets - 1)];
}

static struct fsd_watch_job *pending_get(struct fsd_watch *w, const char *name,
                                         size_t len) {
  uint32_t h = name_hash(name, len);

  for (struct fsd_watch_job *j = *slot(w, h); j != NULL; j = j->hnext)
    if (j->hash == h && j->name_len == len && memcmp(j->name, name, len) == 0)
      return j;
  return NULL;
}

/* Doubles the buckets; on failure the chains just grow longer. */
static void pending_grow(struct fsd_watch *w) {
  size_t n = w->npending_buckets * 2;
  struct fsd_watch_job **b = fsd_calloc(n, sizeof(*b));

  if (b == NULL)
    return;
  for (size_t i = 0; i < w->npending_buckets; i++)
    while (w->pending[i] != NULL) {
      struct fsd_watch_job *j = w->pending[i];
      w->pending[i] = j->hnext;
      j->hnext = b[j->hash & (n - 1)];
      b[j->hash & (n - 1)] = j;
    }
  fsd_free(w->pending);
  w->pending = b;
  w->npending_buckets = n;
}

static void pending_add(struct fsd_watch *w, struct fsd_watch_job *j) {
  struct fsd_watch_job **s;

  if (w->npending >= w->npending_buckets)
    pending_grow(w);
  j->hash = name_hash(j->name, j->name_len);
  s = slot(w, j->hash);
  j->hnext = *s;
  *s = j;
  w->npending++;
}

/* Takes j out of the pending set and frees it. */
static void job_end(struct fsd_watch_job *j) {
  struct fsd_watch *w = j->w;

  for (struct fsd_watch_job **pp = slot(w, j->hash); *pp != NULL;
       pp = &(*pp)->hnext)
    if (*pp == j) {
      *pp = j->hnext;
      w->npending--;
      break;
    }
  fsd_free(j);
}

static void stat_work(uv_work_t *work) {
  struct fsd_watch_job *j = work->data;

  j->err = fsd_stat_file(j->w->rootfd, j->name, &j->st);
  /* A worker may be descheduled between its stat and handing the result
   * back; FSD_WATCH_DELAY_MS (undocumented, for tests) makes that gap long
   * enough for a test to put requests into it. */
  if (j->w->stat_delay_ms != 0)
    uv_sleep(j->w->stat_delay_ms);
}

static void dispatch(struct fsd_watch_job *j);

static void after_stat(uv_work_t *work, int status) {
  struct fsd_watch_job *j = work->data;
  struct fsd_watch *w = j->w;

  (void)status;
  if (w->stopping) {
    job_end(j);
    return;
  }
  if (j->overtaken) {
    /* Overtaken by our own change: what the stat saw may be older. A new
     * look starts after that change, so it sees it or something newer. */
    j->overtaken = 0;
    j->again = 0;
    dispatch(j);
    return;
  }
  if (j->err == UV_EAGAIN) {
    dispatch(j); /* the name was being replaced: look again */
    return;
  }
  if (j->err == 0)
    fsd_ctx_put(w->ctx, j->name, j->name_len, &j->st);
  else if (j->err == UV_ENOENT &&
           fsd_ctx_update(w->ctx, j->name, j->name_len, 0, 0, fsd_now_ns()) > 0)
    fsd_debug("%s is gone from the folder", j->name);
  else if (j->err < 0 && j->err != UV_ENOENT)
    fsd_warn("stat of %s: %s", j->name, uv_strerror(j->err));
  if (j->again) {
    /* More changes came while this stat ran: look once more. */
    j->again = 0;
    dispatch(j);
    return;
  }
  job_end(j);
}

static void dispatch(struct fsd_watch_job *j) {
  j->work.data = j;
  if (uv_queue_work(j->w->loop, &j->work, stat_work, after_stat) != 0)
    job_end(j);
}

/* Confirms what happened to name with a stat on the threadpool. A file
 * being written by another program reports a change per write: while a
 * stat for the name is queued, further reports only mark it for one more
 * look, so the queue holds at most one job per name. */
static void watch_name(struct fsd_watch *w, const char *name, size_t len) {
  struct fsd_watch_job *j;

  if (fsp_name_check(name, len) != 0)
    return; /* dotfiles, including our temp files */
  j = pending_get(w, name, len);
  if (j != NULL) {
    j->again = 1;
    return;
  }
  j = fsd_calloc(1, sizeof(*j));
  if (j == NULL)
    return;
  j->w = w;
  j->name_len = (uint16_t)len;
  memcpy(j->name, name, len);
  j->name[len] = '\0';
  pending_add(w, j);
  dispatch(j);
}

/* Tells the watcher of our own change; see watch.h. A stat of the name in
 * flight may have looked before that change and must not be applied after
 * it: after_stat() looks again instead. (Comparing the entry before and
 * after the stat is not enough: a name absent at both ends may have been
 * added and deleted meanwhile, and a stat that saw the file in between
 * would bring a deleted file back.) */
void fsd_watch_own_change(struct fsd_watch *w, const char *name, size_t len) {
  struct fsd_watch_job *j = w != NULL ? pending_get(w, name, len) : NULL;

  if (j != NULL)
    j->overtaken = 1;
}

static void rescan(struct fsd_watch *w);

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events,
                        int status) {
  struct fsd_watch *w = fsd_container_of(h, struct fsd_watch, ev);

  (void)events;
  if (status < 0) {
    fsd_warn("watching the root: %s", uv_strerror(status));
    rescan(w);
    return;
  }
  if (filename == NULL) {
    rescan(w); /* the kernel lost track: look at everything */
    return;
  }
  watch_name(w, filename, strlen(filename));
}

static void scan_work(uv_work_t *work) {
  struct fsd_watch *w = fsd_container_of(work, struct fsd_watch, scan_work);
  w->scan_err = fsd_scan_dir(w->rootfd, 0, &w->scan);
}

/* A register walk over the entries a rescan did not find. */
struct gone_walk {
  struct fsd_watch *w;
  struct fsd_register *found; /* the names the scan found */
};

static int check_gone(void *arg, const struct fsd_file *f) {
  struct gone_walk *g = arg;

  if (fsd_register_get(g->found, f->name, f->name_len) == NULL)
    watch_name(g->w, f->name, f->name_len);
  return 0;
}

/* Calls and forgets the callback of fsd_watch_rescan(), if any. */
static void rescan_done(struct fsd_watch *w) {
  void (*done)(struct fsd_watch *) = w->rescanned;

  w->rescanned = NULL;
  if (done != NULL)
    done(w);
}

/* Queues a stat of every name where the scan and the register differ. */
static void compare_scan(struct fsd_watch *w) {
  struct fsd_scan *sc = &w->scan;
  struct fsd_register found;
  struct gone_walk g = {w, &found};

  /* Whatever differs is confirmed by a fresh stat rather than applied from
   * the scan, which may be older than changes our own requests made while it
   * ran. Usually nothing differs and nothing is queued. */
  for (size_t i = 0; i < sc->n; i++) {
    const struct fsd_file *f =
        fsd_register_get(&w->ctx->reg, sc->v[i].name, sc->v[i].name_len);
    const struct fsd_stamp *st = &sc->v[i].st;
    if (f == NULL || f->size != st->size || f->mtime_ns != st->mtime_ns ||
        f->ino != st->ino || f->ctime_ns != st->ctime_ns)
      watch_name(w, sc->v[i].name, sc->v[i].name_len);
  }
  /* Register entries the scan did not find. watch_name() changes only the
   * pending set, never the register being walked. */
  if (fsd_register_init(&found) == 0) {
    for (size_t i = 0; i < sc->n; i++)
      fsd_register_set(&found, sc->v[i].name, sc->v[i].name_len, 0, 0);
    fsd_register_each(&w->ctx->reg, check_gone, &g);
    fsd_register_free(&found);
  }
  fsd_scan_free(sc);
}

static void after_scan(uv_work_t *work, int status) {
  struct fsd_watch *w = fsd_container_of(work, struct fsd_watch, scan_work);

  (void)status;
  w->scanning = 0;
  if (w->stopping || w->scan_err != 0) {
    if (w->scan_err != 0)
      fsd_warn("rescan of the root failed: %s", uv_strerror(w->scan_err));
    fsd_scan_free(&w->scan);
  } else {
    compare_scan(w);
  }
  rescan_done(w);
}

static void rescan(struct fsd_watch *w) {
  if (w->scanning || w->stopping)
    return;
  w->scanning = 1;
  w->last_rescan = uv_now(w->loop);
  if (uv_queue_work(w->loop, &w->scan_work, scan_work, after_scan) != 0) {
    w->scanning = 0;
    rescan_done(w);
  }
}

/* Rescans now; see watch.h. */
void fsd_watch_rescan(struct fsd_watch *w, void (*done)(struct fsd_watch *w)) {
  w->rescanned = done;
  if (w->scanning)
    return; /* after_scan calls done */
  rescan(w);
  if (!w->scanning)
    rescan_done(w); /* stopping, or the job could not be queued */
}

/* Rescans when due; see watch.h. */
void fsd_watch_tick(struct fsd_watch *w) {
  if (uv_now(w->loop) - w->last_rescan >= w->rescan_ms)
    rescan(w);
}

/* Sets up the watcher; see watch.h. Watching starts before the first scan
 * of the root, so that nothing created after the scan read its directory
 * entry goes unseen until the next rescan. */
int fsd_watch_init(struct fsd_watch *w, uv_loop_t *loop, struct fsd_ctx *ctx,
                   int rootfd, const char *root, unsigned rescan_ms,
                   unsigned stat_delay_ms) {
  memset(w, 0, sizeof(*w));
  w->loop = loop;
  w->ctx = ctx;
  w->rootfd = rootfd;
  w->rescan_ms = rescan_ms;
  w->stat_delay_ms = stat_delay_ms % STAT_DELAY_MAX_MS;
  w->pending = fsd_calloc(PENDING_BUCKETS, sizeof(*w->pending));
  if (w->pending == NULL)
    return UV_ENOMEM;
  w->npending_buckets = PENDING_BUCKETS;
  w->last_rescan = uv_now(loop);
  uv_fs_event_init(loop, &w->ev);
  if (uv_fs_event_start(&w->ev, on_fs_event, root, 0) == 0) {
    w->watching = 1;
  } else {
    fsd_warn("cannot watch %s; relying on rescans", root);
    uv_close((uv_handle_t *)&w->ev, NULL);
  }
  return 0;
}

/* Stops watching; see watch.h. */
void fsd_watch_stop(struct fsd_watch *w) {
  w->stopping = 1;
  if (w->watching)
    uv_close((uv_handle_t *)&w->ev, NULL);
  w->watching = 0;
}

/* Frees the pending set; see watch.h. */
void fsd_watch_free(struct fsd_watch *w) {
  for (size_t i = 0; i < w->npending_buckets; i++)
    while (w->pending[i] != NULL) {
      struct fsd_watch_job *j = w->pending[i];
      w->pending[i] = j->hnext;
      fsd_free(j);
    }
  fsd_free(w->pending);
  w->pending = NULL;
}
