/* The folder watcher; see watch.h. */
#include "watch.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "fnv.h"
#include "mem.h"
#include "tree.h"

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
  uint8_t type;        /* what it found: FSP_TYPE_FILE or FSP_TYPE_FOLDER */
  struct fsd_stamp st; /* its version (a folder: its mtime) */
  uint16_t name_len;
  char name[FSP_PATH_MAX + 1]; /* the path */
};

/* A path our own tree job is changing (fsd_watch_hold). */
struct fsd_watch_hold {
  struct fsd_watch_hold *next;
  uint16_t len;
  char path[];
};

/* Whether path lies at or below a path of the list. */
static int within_any(const struct fsd_watch_hold *h, const char *path,
                      size_t len) {
  for (; h != NULL; h = h->next)
    if (fsp_path_within(path, len, h->path, h->len))
      return 1;
  return 0;
}

/* Whether path lies at or below a path held by our own job. */
static int held(const struct fsd_watch *w, const char *path, size_t len) {
  return within_any(w->holds, path, len);
}

/* The watch of one folder below the root (inotify does not recurse):
 * made when the folder appears in the register, closed when it goes. */
struct fsd_fwatch {
  uv_fs_event_t h;
  struct fsd_watch *w;
  uint16_t len; /* bytes in path */
  char path[];  /* the folder's path, NUL-terminated */
};

static struct fsd_watch_job **slot(struct fsd_watch *w, uint32_t hash) {
  return &w->pending[hash & (w->npending_buckets - 1)];
}

static struct fsd_watch_job *pending_get(struct fsd_watch *w, const char *name,
                                         size_t len) {
  uint32_t h = fsd_fnv1a(name, len);

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
  j->hash = fsd_fnv1a(j->name, j->name_len);
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
  struct fsd_tree_info info;

  j->type = FSP_TYPE_FILE;
  j->err = fsd_stat_file(j->w->rootfd, j->name, &j->st);
  if (j->err == UV_ENOENT && fsd_tree_stat(j->w->rootfd, j->name, &info) == 0 &&
      info.type == FSP_TYPE_FOLDER) {
    j->type = FSP_TYPE_FOLDER;
    j->err = 0;
    memset(&j->st, 0, sizeof(j->st));
    j->st.mtime_ns = info.mtime_ns;
    j->st.ino = info.ino;
  }
  /* A worker may be descheduled between its stat and handing the result
   * back; FSD_WATCH_DELAY_MS (undocumented, for tests) makes that gap long
   * enough for a test to put requests into it. */
  if (j->w->stat_delay_ms != 0)
    uv_sleep(j->w->stat_delay_ms);
}

static void dispatch(struct fsd_watch_job *j);
static void rescan(struct fsd_watch *w);

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
  if (held(w, j->name, j->name_len)) {
    job_end(j); /* looked at again when the job is applied */
    return;
  }
  if (j->err == 0 && j->type == FSP_TYPE_FOLDER) {
    /* A folder made by another program may hold entries made before its
     * watch: a rescan finds them (mkdir -p x/y/z, then a file in z). */
    if (fsd_ctx_folder(w->ctx, j->name, j->name_len, &j->st) > 0 &&
        !within_any(w->making, j->name, j->name_len))
      rescan(w);
  } else if (j->err == 0)
    fsd_ctx_put(w->ctx, j->name, j->name_len, &j->st);
  else if (j->err == UV_ENOENT &&
           fsd_ctx_remove(w->ctx, j->name, j->name_len, fsd_now_ns()) > 0)
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

  if (fsp_path_check(name, len) != 0)
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

/* Adds path to the list at *head. */
static void path_push(struct fsd_watch_hold **head, const char *path,
                      size_t len) {
  struct fsd_watch_hold *h = fsd_malloc(sizeof(*h) + len + 1);

  if (h == NULL)
    return;
  h->len = (uint16_t)len;
  memcpy(h->path, path, len);
  h->path[len] = '\0';
  h->next = *head;
  *head = h;
}

/* Takes one entry of path out of the list at *head. */
static void path_pop(struct fsd_watch_hold **head, const char *path,
                     size_t len) {
  for (struct fsd_watch_hold **pp = head; *pp != NULL; pp = &(*pp)->next) {
    struct fsd_watch_hold *h = *pp;
    if (h->len == len && memcmp(h->path, path, len) == 0) {
      *pp = h->next;
      fsd_free(h);
      return;
    }
  }
}

/* Frees every entry of the list at *head. */
static void path_free_all(struct fsd_watch_hold **head) {
  while (*head != NULL) {
    struct fsd_watch_hold *h = *head;
    *head = h->next;
    fsd_free(h);
  }
}

/* Holds a path for our own job; see watch.h. */
void fsd_watch_hold(struct fsd_watch *w, const char *path, size_t len) {
  if (w != NULL)
    path_push(&w->holds, path, len);
}

/* Lets a held path go; see watch.h. */
void fsd_watch_release(struct fsd_watch *w, const char *path, size_t len) {
  if (w == NULL)
    return;
  path_pop(&w->holds, path, len);
  if (!w->stopping)
    watch_name(w, path, len);
}

/* Our own job may make folders at path; see watch.h. */
void fsd_watch_making(struct fsd_watch *w, const char *path, size_t len) {
  if (w != NULL)
    path_push(&w->making, path, len);
}

/* That job ended; see watch.h. */
void fsd_watch_made(struct fsd_watch *w, const char *path, size_t len) {
  if (w != NULL)
    path_pop(&w->making, path, len);
}

/* Our own commit is about to rename into path; see watch.h. */
void fsd_watch_expect(struct fsd_watch *w, const char *path, size_t len) {
  if (w != NULL && !w->stopping)
    (void)fsd_expect_add(&w->expect, path, len, uv_now(w->loop));
}

/* The rename did not happen; see watch.h. */
void fsd_watch_unexpect(struct fsd_watch *w, const char *path, size_t len) {
  if (w != NULL && !w->stopping && !fsd_expect_drop(&w->expect, path, len))
    watch_name(w, path, len); /* an event may have been skipped for it */
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

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events,
                        int status) {
  struct fsd_watch *w = fsd_container_of(h, struct fsd_watch, ev);
  size_t len;

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
  len = strlen(filename);
  if (!fsd_expect_take(&w->expect, filename, len, uv_now(w->loop)))
    watch_name(w, filename, len);
}

/* A change in a folder below the root: its path is the folder's and the
 * name reported. */
static void on_folder_event(uv_fs_event_t *h, const char *filename, int events,
                            int status) {
  struct fsd_fwatch *fw = fsd_container_of(h, struct fsd_fwatch, h);
  char path[FSP_PATH_MAX + 1];
  int n;

  (void)events;
  if (status < 0 || filename == NULL) {
    rescan(fw->w);
    return;
  }
  n = snprintf(path, sizeof(path), "%s/%s", fw->path, filename);
  if (n > 0 && (size_t)n < sizeof(path) &&
      !fsd_expect_take(&fw->w->expect, path, (size_t)n, uv_now(fw->w->loop)))
    watch_name(fw->w, path, (size_t)n);
}

static void free_fwatch(uv_handle_t *h) {
  fsd_free(fsd_container_of((uv_fs_event_t *)h, struct fsd_fwatch, h));
}

/* The context's hook: a folder appeared in the register; watch it. When
 * the kernel's watch limit is reached, one line says so and the rescans
 * carry the folders left unwatched. */
static void folder_added(void *arg, const struct fsd_node *n) {
  struct fsd_watch *w = arg;
  struct fsd_node *node = (struct fsd_node *)(uintptr_t)n;
  char abs[PATH_MAX];
  struct fsd_fwatch *fw;
  int r;

  if (w->stopping || node->watch != NULL || n->path_len == 0 ||
      snprintf(abs, sizeof(abs), "%s/%s", w->root, n->path) >= (int)sizeof(abs))
    return;
  fw = fsd_malloc(sizeof(*fw) + n->path_len + 1u);
  if (fw == NULL)
    return;
  fw->w = w;
  fw->len = n->path_len;
  memcpy(fw->path, n->path, n->path_len + 1u);
  uv_fs_event_init(w->loop, &fw->h);
  r = w->max_watches != 0 && w->nwatches >= w->max_watches
          ? UV_ENOSPC
          : uv_fs_event_start(&fw->h, on_folder_event, abs, 0);
  if (r != 0) {
    if (r == UV_ENOSPC && !w->limit_logged) {
      w->limit_logged = 1;
      fsd_warn("the kernel's limit of inotify watches is reached "
               "(fs.inotify.max_user_watches): changes in folders "
               "without a watch are found by the rescan, every %u s",
               (w->rescan_ms + 999u) / 1000u);
    } else if (r != UV_ENOSPC) {
      fsd_debug("cannot watch %s: %s", n->path, uv_strerror(r));
    }
    uv_close((uv_handle_t *)&fw->h, free_fwatch);
    return;
  }
  w->nwatches++;
  node->watch = fw;
}

/* The context's hook: a folder left the register (or moves); its watch
 * goes. */
static void folder_dropped(void *arg, const struct fsd_node *n) {
  struct fsd_watch *w = arg;
  struct fsd_node *node = (struct fsd_node *)(uintptr_t)n;
  struct fsd_fwatch *fw = node->watch;

  if (fw == NULL)
    return;
  node->watch = NULL;
  w->nwatches--;
  uv_close((uv_handle_t *)&fw->h, free_fwatch);
}

/* Watches every folder the register holds (after the first scan). */
void fsd_watch_folders(struct fsd_watch *w) {
  struct fsd_treereg *tree = &w->ctx->tree;
  struct fsd_tree_cursor c;
  const struct fsd_node *n;

  if (fsd_treereg_walk_open(tree, &c, "", 0, 1) != 0)
    return;
  while ((n = fsd_treereg_walk_next(tree, &c)) != NULL)
    if (n->type == FSP_TYPE_FOLDER)
      folder_added(w, n);
  fsd_treereg_walk_close(tree, &c);
}

static void scan_work(uv_work_t *work) {
  struct fsd_watch *w = fsd_container_of(work, struct fsd_watch, scan_work);
  w->scan_err = fsd_scan_tree(w->rootfd, 0, &w->scan);
}

/* Calls and forgets the callback of fsd_watch_rescan(), if any. */
static void rescan_done(struct fsd_watch *w) {
  void (*done)(struct fsd_watch *) = w->rescanned;

  w->rescanned = NULL;
  if (done != NULL)
    done(w);
}

/* Whether the register holds what the scan found at e. */
static int scan_agrees(struct fsd_watch *w, const struct fsd_scan_entry *e) {
  const struct fsd_node *n =
      fsd_treereg_get(&w->ctx->tree, e->name, e->name_len);
  const struct fsd_file *f;
  const struct fsd_stamp *st = &e->st;

  if (n == NULL || n->type != e->type)
    return 0;
  if (e->type == FSP_TYPE_FOLDER)
    return 1; /* a folder's mtime moves with its entries: no event */
  f = fsd_register_get(&w->ctx->reg, e->name, e->name_len);
  return f != NULL && f->size == st->size && f->mtime_ns == st->mtime_ns &&
         f->ino == st->ino && f->ctime_ns == st->ctime_ns;
}

/* Queues a stat of every path where the scan and the register differ. */
static void compare_scan(struct fsd_watch *w) {
  struct fsd_scan *sc = &w->scan;
  struct fsd_treereg *tree = &w->ctx->tree;
  struct fsd_register found;
  struct fsd_tree_cursor c;
  const struct fsd_node *n;

  /* Whatever differs is confirmed by a fresh stat rather than applied from
   * the scan, which may be older than changes our own requests made while it
   * ran. Usually nothing differs and nothing is queued. */
  for (size_t i = 0; i < sc->n; i++)
    if (!scan_agrees(w, &sc->v[i]))
      watch_name(w, sc->v[i].name, sc->v[i].name_len);
  /* Register entries the scan did not find. watch_name() changes only the
   * pending set, never the register being walked. */
  if (fsd_register_init(&found) == 0) {
    for (size_t i = 0; i < sc->n; i++)
      fsd_register_set(&found, sc->v[i].name, sc->v[i].name_len, 0, 0);
    if (fsd_treereg_walk_open(tree, &c, "", 0, 1) == 0) {
      while ((n = fsd_treereg_walk_next(tree, &c)) != NULL)
        if (fsd_register_get(&found, n->path, n->path_len) == NULL)
          watch_name(w, n->path, n->path_len);
      fsd_treereg_walk_close(tree, &c);
    }
    fsd_register_free(&found);
  }
  fsd_scan_free(sc);
}

static void after_scan(uv_work_t *work, int status) {
  struct fsd_watch *w = fsd_container_of(work, struct fsd_watch, scan_work);

  (void)status;
  w->scanning = 0;
  if (w->scan_again && !w->stopping) {
    /* Asked for while this one ran, which may have read too early. */
    w->scan_again = 0;
    fsd_scan_free(&w->scan);
    rescan(w);
    return;
  }
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
  if (w->scanning) {
    w->scan_again = 1;
    return;
  }
  if (w->stopping)
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

/* Rescans now; see watch.h. */
void fsd_watch_look(struct fsd_watch *w) {
  if (w != NULL)
    rescan(w);
}

/* Rescans when due; see watch.h. */
void fsd_watch_tick(struct fsd_watch *w) {
  fsd_expect_expire(&w->expect, uv_now(w->loop));
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
  fsd_expect_init(&w->expect);
  w->pending = fsd_calloc(PENDING_BUCKETS, sizeof(*w->pending));
  if (w->pending == NULL)
    return UV_ENOMEM;
  w->npending_buckets = PENDING_BUCKETS;
  w->last_rescan = uv_now(loop);
  w->root = root;
  ctx->added = folder_added;
  ctx->dropped = folder_dropped;
  ctx->dropped_arg = w;
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
  struct fsd_treereg *tree = &w->ctx->tree;
  struct fsd_tree_cursor c;
  const struct fsd_node *n;

  /* The folders' watches close with the loop's other handles. */
  if (fsd_treereg_walk_open(tree, &c, "", 0, 1) == 0) {
    while ((n = fsd_treereg_walk_next(tree, &c)) != NULL)
      if (n->type == FSP_TYPE_FOLDER)
        folder_dropped(w, n);
    fsd_treereg_walk_close(tree, &c);
  }
  w->ctx->added = NULL;
  w->ctx->dropped = NULL;
  w->stopping = 1;
  if (w->watching)
    uv_close((uv_handle_t *)&w->ev, NULL);
  w->watching = 0;
}

/* Frees the pending set; see watch.h. */
void fsd_watch_free(struct fsd_watch *w) {
  path_free_all(&w->making);
  path_free_all(&w->holds);
  fsd_expect_free(&w->expect);
  for (size_t i = 0; i < w->npending_buckets; i++)
    while (w->pending[i] != NULL) {
      struct fsd_watch_job *j = w->pending[i];
      w->pending[i] = j->hnext;
      fsd_free(j);
    }
  fsd_free(w->pending);
  w->pending = NULL;
}
