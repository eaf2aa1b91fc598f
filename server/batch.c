/* Threadpool trips shared by small jobs. See batch.h. */
#include "batch.h"

#include <stddef.h>

static void trip_work(uv_work_t *w) {
  struct fsd_batch_trip *t = w->data;

  for (struct fsd_batch_item *it = t->items; it != NULL; it = it->next)
    it->work(it->w);
}

static int launch(struct fsd_batcher *b);

static void trip_done(uv_work_t *w, int status) {
  struct fsd_batch_trip *t = w->data;
  struct fsd_batcher *b = t->b;
  struct fsd_batch_item *it = t->items;

  t->items = NULL;
  t->busy = 0;
  /* What queued meanwhile leaves before this trip's items are answered:
   * their after callbacks may queue more, which then joins it or the
   * next. A trip that cannot be made leaves its items queued: the trips
   * in flight take them as they end. */
  (void)launch(b);
  while (it != NULL) {
    struct fsd_batch_item *next = it->next;
    it->after(it->w, status);
    it = next;
  }
}

/* Sends the waiting items (up to FSD_BATCH_MAX) on a free trip. Returns 0
 * (also when no trip is free: they wait) or the UV_E* code of
 * uv_queue_work(), the items then back at the head of the queue. */
static int launch(struct fsd_batcher *b) {
  struct fsd_batch_trip *t = NULL;
  struct fsd_batch_item *last;
  int rc;

  for (int i = 0; i < FSD_BATCH_TRIPS && t == NULL; i++)
    if (!b->trips[i].busy)
      t = &b->trips[i];
  if (t == NULL || b->head == NULL)
    return 0;
  last = b->head;
  for (int n = 1; n < FSD_BATCH_MAX && last->next != NULL; n++)
    last = last->next;
  t->items = b->head;
  b->head = last->next;
  if (b->head == NULL)
    b->tail = NULL;
  last->next = NULL;
  t->b = b;
  t->w.data = t;
  rc = uv_queue_work(b->loop, &t->w, trip_work, trip_done);
  if (rc != 0) {
    last->next = b->head;
    b->head = t->items;
    if (b->tail == NULL)
      b->tail = last;
    t->items = NULL;
    return rc;
  }
  t->busy = 1;
  return 0;
}

/* Queues a job; see batch.h. */
int fsd_batcher_add(struct fsd_batcher *b, struct fsd_batch_item *it) {
  int rc;

  it->next = NULL;
  if (b->tail != NULL)
    b->tail->next = it;
  else
    b->head = it;
  b->tail = it;
  rc = launch(b);
  if (rc != 0) {
    /* Take it back out: it is the last one queued. */
    struct fsd_batch_item **pp = &b->head;
    while (*pp != it)
      pp = &(*pp)->next;
    *pp = NULL;
    b->tail = NULL;
    for (struct fsd_batch_item *x = b->head; x != NULL; x = x->next)
      b->tail = x;
  }
  return rc;
}
