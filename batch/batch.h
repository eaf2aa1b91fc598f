/* Threadpool trips shared by small blocking jobs, for fsd and fsc alike.
 * Each job on libuv's threadpool costs a wakeup of a worker and one of the
 * loop; for the open, write or rename of a file of a few KiB those cost
 * more than the file itself (a `put -r` of 10,000 files of 4 KiB: fsd
 * spent 0.74-0.99 s of CPU with a job each, 0.53-0.63 s with the same work
 * done in place). A batcher keeps at most FSB_TRIPS trips in flight and
 * gives the next one every item queued meanwhile (up to FSB_MAX), so a
 * burst pays one trip per many files while a lone item leaves at once. Few
 * trips at once also keep creations in one folder from fighting over its
 * lock. Only jobs that never wait long belong here (no fsync, no lock
 * across servers): an item waits for those before it in its trip.
 *
 * fsc stores and loads the small files of `get -r` and `put -r` this way
 * (client/store.c); fsd its small GETs and uploads (server/op.c). */
#ifndef FS_BATCH_H
#define FS_BATCH_H

#include <uv.h>

#define FSB_TRIPS 2
#define FSB_MAX 64

struct fsb_item;

/* One job: work runs on a worker thread, then done on the loop (status 0,
 * or the UV_E* code of a trip that could not be made, work then not
 * run). The item must stay valid until done has run. */
struct fsb_item {
  struct fsb_item *next; /* private */
  void (*work)(struct fsb_item *it);
  void (*done)(struct fsb_item *it, int status);
};

struct fsb_trip {
  uv_work_t w;
  struct fsb_batcher *b;
  struct fsb_item *items; /* this trip's, in order */
  int busy;
};

/* Zero it and set loop before use. */
struct fsb_batcher {
  uv_loop_t *loop;
  struct fsb_item *head, *tail; /* items waiting for a trip */
  struct fsb_trip trips[FSB_TRIPS];
};

/* Queues it: it runs in this trip or the next. done never runs before this
 * returns. Returns 0, or a negative UV_E* code when no trip could be made
 * (it is not queued: its done will not run). The batcher must stay valid
 * while any item is not done; a done may free it once the last one is. */
int fsb_add(struct fsb_batcher *b, struct fsb_item *it);

#endif /* FS_BATCH_H */
