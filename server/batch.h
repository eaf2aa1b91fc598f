/* Threadpool trips shared by the small jobs of many requests. Each job on
 * the threadpool costs a wakeup of a worker and one of the loop; for the
 * open, write or rename of a file of a few KiB those cost more than the
 * file itself (a `put -r` of 10,000 files of 4 KiB: fsd spent 0.74-0.99 s
 * of CPU with a job each, 0.53-0.63 s with the same work done in place).
 * A batcher keeps at most FSD_BATCH_TRIPS trips in flight and gives the
 * next one every item queued meanwhile (up to FSD_BATCH_MAX), so a burst
 * pays one trip per many files while a lone item leaves at once. Few trips
 * at once also keep creations in one folder from fighting over its lock.
 * Only jobs that never wait long belong here (no fsync, no lock across
 * servers): an item waits for those before it in its trip. */
#ifndef FSD_BATCH_H
#define FSD_BATCH_H

#include <uv.h>

#define FSD_BATCH_TRIPS 2
#define FSD_BATCH_MAX 64

/* One job: work(w) on a worker thread, then after(w, status) on the loop,
 * as uv_queue_work() would run them (status 0, or the UV_E* code of a trip
 * that could not be made, work then not run). */
struct fsd_batch_item {
  struct fsd_batch_item *next; /* private */
  uv_work_t *w;
  uv_work_cb work;
  uv_after_work_cb after;
};

struct fsd_batch_trip {
  uv_work_t w;
  struct fsd_batcher *b;
  struct fsd_batch_item *items; /* this trip's, in order */
  int busy;
};

/* Zero it and set loop before use. */
struct fsd_batcher {
  uv_loop_t *loop;
  struct fsd_batch_item *head, *tail; /* items waiting for a trip */
  struct fsd_batch_trip trips[FSD_BATCH_TRIPS];
};

/* Queues it (it and *it->w stay valid until after has run): it runs in
 * this trip or the next. after never runs before this returns. Returns 0,
 * or a negative UV_E* code when no trip could be made (it is not queued). */
int fsd_batcher_add(struct fsd_batcher *b, struct fsd_batch_item *it);

#endif /* FSD_BATCH_H */
