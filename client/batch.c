/* fsc disk batches. See batch.h. */
#include "batch.h"

#include <stddef.h>

static void trip_work(uv_work_t *w) {
  struct fsc_batch_trip *t = w->data;
  for (struct fsc_batch_item *it = t->items; it != NULL; it = it->next)
    it->work(it);
}

static void launch(struct fsc_batcher *b);

static void trip_done(uv_work_t *w, int status) {
  struct fsc_batch_trip *t = w->data;
  struct fsc_batcher *b = t->b;
  struct fsc_batch_item *it = t->items;
  t->items = NULL;
  t->busy = 0;
  /* The next trip leaves before any done runs: the last done may free
   * the batcher, which is then never touched again. */
  launch(b);
  while (it != NULL) {
    struct fsc_batch_item *next = it->next;
    it->done(it, status);
    it = next;
  }
}

/* Sends the waiting items (up to FSC_BATCH_MAX) on a free trip. */
static void launch(struct fsc_batcher *b) {
  struct fsc_batch_trip *t = NULL;
  for (int i = 0; i < FSC_BATCH_TRIPS && t == NULL; i++)
    if (!b->trips[i].busy)
      t = &b->trips[i];
  if (t == NULL || b->head == NULL)
    return;
  struct fsc_batch_item *last = b->head;
  for (int n = 1; n < FSC_BATCH_MAX && last->next != NULL; n++)
    last = last->next;
  t->items = b->head;
  b->head = last->next;
  if (b->head == NULL)
    b->tail = NULL;
  last->next = NULL;
  t->b = b;
  t->busy = 1;
  t->w.data = t;
  int rc = uv_queue_work(b->loop, &t->w, trip_work, trip_done);
  if (rc < 0)
    trip_done(&t->w, rc);
}

void fsc_batcher_add(struct fsc_batcher *b, struct fsc_batch_item *it) {
  it->next = NULL;
  if (b->tail != NULL)
    b->tail->next = it;
  else
    b->head = it;
  b->tail = it;
  launch(b);
}
