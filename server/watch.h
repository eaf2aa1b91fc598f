/* The folder watcher: keeps the register current with changes other
 * programs make to the tree. An fs-event handle per folder (inotify does
 * not recurse; the watches follow the folders through the context's
 * hooks) reports names; each is
 * confirmed by a stat on the threadpool (at most one queued per name, in
 * its own pending set), and a periodic rescan catches what the events
 * missed. Our own PUTs and DELETEs update the register themselves and tell
 * the watcher, so that a stat that looked before them is not applied after
 * them. */
#ifndef FSD_WATCH_H
#define FSD_WATCH_H

#include <stdint.h>
#include <uv.h>

#include "ctx.h"
#include "expect.h"
#include "fsops.h"

struct fsd_watch_job;
struct fsd_watch_hold;

struct fsd_watch {
  uv_loop_t *loop;
  struct fsd_ctx *ctx;            /* the register to keep current */
  int rootfd;                     /* the folder */
  uv_fs_event_t ev;               /* reports changed names */
  int watching;                   /* ev runs */
  int stopping;                   /* no more stats or scans */
  struct fsd_watch_job **pending; /* names with a stat queued, by hash */
  size_t npending_buckets;        /* a power of two */
  size_t npending;                /* names in pending */
  uv_work_t scan_work;            /* the rescan job */
  struct fsd_scan scan;           /* its result */
  int scan_err;
  int scanning;       /* a rescan runs */
  int scan_again;     /* another was asked for while it ran */
  const char *root;   /* the root's path, for the folders' watches */
  size_t nwatches;    /* folders below the root with a watch */
  size_t max_watches; /* FSD_MAX_WATCHES, for tests: the kernel's limit
                         comes this early (0: none) */
  int limit_logged;   /* the kernel's watch limit was reported */
  struct fsd_watch_hold *holds;  /* paths our own tree jobs are changing */
  struct fsd_watch_hold *making; /* where our own PUTs may make folders */
  struct fsd_expect expect;      /* events of our own commits, to skip */
  uint64_t last_rescan;          /* uv_now() when the last began */
  unsigned rescan_ms;            /* rescan period */
  unsigned stat_delay_ms;        /* FSD_WATCH_DELAY_MS, for tests */
  /* Called once the rescan fsd_watch_rescan() asked for is compared. */
  void (*rescanned)(struct fsd_watch *w);
};

/* Initialises w and starts watching root (a failure to watch is logged;
 * the rescans remain). Returns 0 or UV_ENOMEM. */
int fsd_watch_init(struct fsd_watch *w, uv_loop_t *loop, struct fsd_ctx *ctx,
                   int rootfd, const char *root, unsigned rescan_ms,
                   unsigned stat_delay_ms);

/* Watches every folder below the root the register holds (once it holds
 * the first scan; later folders are watched as they appear). */
void fsd_watch_folders(struct fsd_watch *w);

/* Rescans the tree now (soon after one running), with no callback: where
 * an entry went is not known, the scan finds it. w may be NULL. */
void fsd_watch_look(struct fsd_watch *w);

/* Rescans the root when rescan_ms passed since the last rescan. */
void fsd_watch_tick(struct fsd_watch *w);

/* Rescans the root now, as a reload asks, and calls done(w) once the scan
 * has been compared with the register (the stats of what differs are then
 * queued), or at once when no scan can run. A rescan already running
 * counts. */
void fsd_watch_rescan(struct fsd_watch *w, void (*done)(struct fsd_watch *w));

/* Our own PUT or DELETE of name[0..len) changed the disk and is being
 * applied to the register. w may be NULL. */
void fsd_watch_own_change(struct fsd_watch *w, const char *name, size_t len);

/* Our own upload's commit is about to rename its file into path[0..len):
 * the one event that makes needs no look (see expect.h). w may be NULL. */
void fsd_watch_expect(struct fsd_watch *w, const char *path, size_t len);

/* That rename did not happen (the commit failed): the expectation goes,
 * and if an event used it meanwhile, the path is looked at. w may be
 * NULL. */
void fsd_watch_unexpect(struct fsd_watch *w, const char *path, size_t len);

/* Our own PUT's job may make folders at path[0..len) (and below): a
 * folder the watcher finds there before the job records it is ours, and
 * needs no rescan of the tree for what another program made in it before
 * its watch. Events there are applied as always. Until fsd_watch_made().
 * w may be NULL. */
void fsd_watch_making(struct fsd_watch *w, const char *path, size_t len);

/* The job of fsd_watch_making() ended (its folders are recorded). w may be
 * NULL. */
void fsd_watch_made(struct fsd_watch *w, const char *path, size_t len);

/* Our own RENAME or DELETE of a folder is about to change path[0..len)
 * and what is below it: until fsd_watch_release(), what the watcher
 * learns there is not applied (it would see a rename as a removal and an
 * addition, before the job's own account). w may be NULL. */
void fsd_watch_hold(struct fsd_watch *w, const char *path, size_t len);

/* The job is applied: the path is looked at once more, and the watcher
 * applies what it learns there again. w may be NULL. */
void fsd_watch_release(struct fsd_watch *w, const char *path, size_t len);

/* Stops watching; jobs in flight end without effect. */
void fsd_watch_stop(struct fsd_watch *w);

/* Frees the pending set; the loop must have ended. */
void fsd_watch_free(struct fsd_watch *w);

#endif /* FSD_WATCH_H */
