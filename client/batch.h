/* fsc disk batches: small blocking jobs (store.c's stores and loads of
 * small files) run several to a threadpool trip. Each trip costs a wakeup
 * of a worker and one of the loop; for files of a few KiB those cost more
 * than the file itself. A batcher keeps at most FSC_BATCH_TRIPS trips in
 * flight and gives the next one every item that queued meanwhile (up to
 * FSC_BATCH_MAX), so a busy run pays one trip per many files while a lone
 * item goes at once. Few trips at once also keep creations in one folder
 * from fighting over its lock. */
#ifndef FSC_BATCH_H
#define FSC_BATCH_H

#include <uv.h>

#define FSC_BATCH_TRIPS 2
#define FSC_BATCH_MAX 64

struct fsc_batch_item;

/* One item: work runs on a worker thread, done on the loop afterwards
 * (status 0, or a UV_E* code when the trip could not be made). The item
 * must stay valid until done. */
struct fsc_batch_item {
  struct fsc_batch_item *next; /* private */
  void (*work)(struct fsc_batch_item *it);
  void (*done)(struct fsc_batch_item *it, int status);
};

struct fsc_batch_trip {
  uv_work_t w;
  struct fsc_batcher *b;
  struct fsc_batch_item *items; /* this trip's items, in order */
  int busy;
};

/* Zero it and set loop before use. */
struct fsc_batcher {
  uv_loop_t *loop;
  struct fsc_batch_item *head, *tail; /* items waiting for a trip */
  struct fsc_batch_trip trips[FSC_BATCH_TRIPS];
};

/* Queues it; it runs in this trip or the next. done may run before this
 * returns only when a trip cannot be made (its status is then the error).
 * The batcher must stay valid while any item is not done; done callbacks
 * may free it once the last item is done. */
void fsc_batcher_add(struct fsc_batcher *b, struct fsc_batch_item *it);

#endif /* FSC_BATCH_H */
