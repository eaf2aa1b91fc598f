/* The commit queue; see commitq.h. */
#include "commitq.h"

#include <string.h>

/* Empties the queue; see commitq.h. */
void fsd_commitq_init(struct fsd_commitq *q) {
  fsd_list_init(&q->running);
  fsd_list_init(&q->waiting);
  fsd_list_init(&q->changed);
  fsd_list_init(&q->flushing);
  q->flush_runs = 0;
}

static struct fsd_commitq_entry *find(struct fsd_list *head, const char *name) {
  struct fsd_list *l, *n;

  fsd_list_each_safe(l, n, head) {
    struct fsd_commitq_entry *e =
        fsd_container_of(l, struct fsd_commitq_entry, link);
    if (strcmp(e->name, name) == 0)
      return e;
  }
  return NULL;
}

/* Runs e now or queues it; see commitq.h. */
int fsd_commitq_enter(struct fsd_commitq *q, struct fsd_commitq_entry *e) {
  if (find(&q->running, e->name) != NULL) {
    fsd_list_append(&q->waiting, &e->link);
    return 0;
  }
  fsd_list_push(&q->running, &e->link);
  return 1;
}

/* Ends e and hands over to the next of its name; see commitq.h. */
struct fsd_commitq_entry *fsd_commitq_leave(struct fsd_commitq *q,
                                            struct fsd_commitq_entry *e) {
  struct fsd_commitq_entry *next;

  fsd_list_remove(&e->link);
  next = find(&q->waiting, e->name);
  if (next != NULL) {
    fsd_list_remove(&next->link);
    fsd_list_push(&q->running, &next->link);
  }
  return next;
}

/* Moves every node of from to the end of to, in order. */
static void move_all(struct fsd_list *to, struct fsd_list *from) {
  struct fsd_list *l;

  while ((l = fsd_list_pop(from)) != NULL)
    fsd_list_append(to, l);
}

/* Makes the entries that changed the batch of a new flush: its first, or
 * NULL when none changed. */
static struct fsd_commitq_entry *next_batch(struct fsd_commitq *q) {
  if (fsd_list_empty(&q->changed)) {
    q->flush_runs = 0;
    return NULL;
  }
  move_all(&q->flushing, &q->changed);
  q->flush_runs = 1;
  return fsd_container_of(q->flushing.next, struct fsd_commitq_entry, flink);
}

/* e waits for a flush; see commitq.h. */
struct fsd_commitq_entry *fsd_commitq_changed(struct fsd_commitq *q,
                                              struct fsd_commitq_entry *e) {
  fsd_list_append(&q->changed, &e->flink);
  return q->flush_runs ? NULL : next_batch(q);
}

/* A flush ended; see commitq.h. */
struct fsd_commitq_entry *fsd_commitq_flushed(struct fsd_commitq *q,
                                              struct fsd_list *done) {
  fsd_list_init(done);
  move_all(done, &q->flushing);
  return next_batch(q);
}
