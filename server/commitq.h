/* The commit queue: runs the commits of uploads (rename into place) and
 * the unlinks of deletions one at a time per name, in the order they were
 * asked for, so that the register learns of the changes of one name in
 * the order the disk saw them. Different names run side by side. Pure: it
 * only says which entry may run; the caller runs it. */
#ifndef FSD_COMMITQ_H
#define FSD_COMMITQ_H

#include "list.h"

/* One commit or unlink, embedded in the caller's request. */
struct fsd_commitq_entry {
  struct fsd_list link; /* in running or waiting */
  const char *name;     /* the file name, NUL-terminated, owned by caller */
};

struct fsd_commitq {
  struct fsd_list running; /* entries whose job runs */
  struct fsd_list waiting; /* entries behind one of the same name */
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

#endif /* FSD_COMMITQ_H */
