/* The commit queue: runs the commits of uploads (rename into place) and
 * the unlinks of deletions one at a time per name, in the order they were
 * asked for, so that the register learns of the changes of one name in
 * the order the disk saw them. Different names run side by side.
 *
 * It also groups the folder flushes that make renames durable (group
 * commit): a renamed entry waits for a flush of the folder that began
 * after its rename, and all the entries renamed while one flush runs share
 * the next one, so a burst of commits costs one flush of the folder per
 * batch, not one per commit. An entry counts as running (its name stays
 * taken) until
 * the caller lets it leave, after its flush.
 *
 * Pure: it only says which entry may run and which flush to start; the
 * caller runs them. */
#ifndef FSD_COMMITQ_H
#define FSD_COMMITQ_H

#include "list.h"

/* One commit or unlink, embedded in the caller's request. */
struct fsd_commitq_entry {
  struct fsd_list link;  /* in running or waiting */
  struct fsd_list flink; /* in changed or flushing, or a caller's done */
  const char *name;      /* the file name, NUL-terminated, owned by caller */
};

struct fsd_commitq {
  struct fsd_list running;  /* entries whose job runs */
  struct fsd_list waiting;  /* entries behind one of the same name */
  struct fsd_list changed;  /* renamed, waiting for the next flush */
  struct fsd_list flushing; /* renamed before the flush that runs began */
  int flush_runs;           /* a flush of the folder runs */
};

/* Makes q empty. */
void fsd_commitq_init(struct fsd_commitq *q);

/* Asks to run e (e->name set). Returns 1 when it may run now (it counts as
 * running from here on), 0 when it waits for the one of the same name
 * before it. */
int fsd_commitq_enter(struct fsd_commitq *q, struct fsd_commitq_entry *e);

/* e (running) is done, or will not run after all. Returns the entry of the
 * same name that waited longest, which counts as running from here on and
 * which the caller starts, or NULL. */
struct fsd_commitq_entry *fsd_commitq_leave(struct fsd_commitq *q,
                                            struct fsd_commitq_entry *e);

/* e (running) changed the folder (its rename is done) and waits for a
 * flush of the folder that begins after now. When no flush runs, the
 * entries waiting (e among them) become the batch of a new one: returns
 * the first of them, whose job the caller uses to run the flush, and then
 * calls fsd_commitq_flushed() when it ends. Returns NULL when a flush runs:
 * e waits for the next. */
struct fsd_commitq_entry *fsd_commitq_changed(struct fsd_commitq *q,
                                              struct fsd_commitq_entry *e);

/* The flush that runs ended. Moves its batch, in the order of their
 * changes, to done (made a list by this call; its nodes are the entries'
 * flink): the caller answers each, then lets it leave. When entries
 * changed meanwhile, they become the next batch and the first of them is
 * returned, as by fsd_commitq_changed(); else NULL. */
struct fsd_commitq_entry *fsd_commitq_flushed(struct fsd_commitq *q,
                                              struct fsd_list *done);

#endif /* FSD_COMMITQ_H */
