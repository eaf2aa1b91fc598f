/* Threadpool trips shared by small jobs. See batch.h. */
#include "batch.h"

#include <stddef.h>

static void trip_work(uv_work_t *w) {
  struct fsb_trip *t = w->data;

  for (struct fsb_item *it = t->items; it != NULL; it = it->next)
    it->work(it);
}

/* Calls the done of each item of the list it, in order. */
static void finish(struct fsb_item *it, int status) {
  while (it != NULL) {
    struct fsb_item *next = it->next;
    it->done(it, status);
    it = next;
  }
}

static int launch(struct fsb_batcher *b);

static void trip_done(uv_work_t *w, int status) {
  struct fsb_trip *t = w->data;
  struct fsb_batcher *b = t->b;
  struct fsb_item *it = t->items, *stuck = NULL;
  int rc;

  t->items = NULL;
  t->busy = 0;
  /* What queued meanwhile leaves before this trip's items are done: their
   * done callbacks may queue more, which then joins it or the next, and
   * the last done may free the batcher, which is then not touched again.
   * Should no trip leave (the loop is closing), what waits fails with
   * this trip's items. */
  rc = launch(b);
  if (rc != 0) {
    stuck = b->head;
    b->head = b->tail = NULL;
  }
  finish(it, status);
  finish(stuck, rc);
}

/* Sends the waiting items (up to FSB_MAX) on a free trip. Returns 0 (also
 * when no trip is free: they wait) or the UV_E* code of uv_queue_work(),
 * the items then still waiting. */
static int launch(struct fsb_batcher *b) {
  struct fsb_trip *t = NULL;
  struct fsb_item *last;
  int rc;

  for (int i = 0; i < FSB_TRIPS && t == NULL; i++)
    if (!b->trips[i].busy)
      t = &b->trips[i];
  if (t == NULL || b->head == NULL)
    return 0;
  last = b->head;
  for (int n = 1; n < FSB_MAX && last->next != NULL; n++)
    last = last->next;
  t->b = b;
  t->w.data = t;
  t->items = b->head;
  b->head = last->next;
  last->next = NULL; /* before the trip leaves: its worker walks the list */
  rc = uv_queue_work(b->loop, &t->w, trip_work, trip_done);
  if (rc != 0) {
    last->next = b->head;
    b->head = t->items;
    t->items = NULL;
    return rc;
  }
  t->busy = 1;
  if (b->head == NULL)
    b->tail = NULL;
  return 0;
}

/* Queues a job; see batch.h. */
int fsb_add(struct fsb_batcher *b, struct fsb_item *it) {
  int rc;

  it->next = NULL;
  if (b->tail != NULL)
    b->tail->next = it;
  else
    b->head = it;
  b->tail = it;
  rc = launch(b);
  if (rc != 0) {
    /* A trip was free, so nothing else was waiting: it was alone. */
    b->head = b->tail = NULL;
  }
  return rc;
}
