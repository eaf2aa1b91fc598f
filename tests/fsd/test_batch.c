/* batch/batch.c, the batcher of small jobs fsd and fsc share: every
 * item's work runs on a worker thread and its done once on the loop, never
 * more than FSB_TRIPS trips at once nor more than FSB_MAX items in one, and
 * a done may queue more. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "suites.h"

#define N_ITEMS 300

struct job {
  struct fsb_item it; /* first: an item is its job */
  int index;
  uv_thread_t ran_on; /* set by work */
  int worked;         /* set by work */
  int trip_rest;      /* set by work: it and those after it in its trip */
  int dones;          /* done calls */
  int status;
};

static struct fsb_batcher batch;
static struct job jobs[N_ITEMS];
static int order[N_ITEMS]; /* done calls, by index */
static int n_done;
static int requeue_below; /* dones of items below this index queue one more */
static int n_extra;
static struct job extra[N_ITEMS];
static atomic_int running, most_running;
static uv_thread_t loop_thread;

static void work(struct fsb_item *it) {
  struct job *j = (struct job *)it;
  int now = atomic_fetch_add(&running, 1) + 1;
  int most = atomic_load(&most_running);

  while (now > most && !atomic_compare_exchange_weak(&most_running, &most, now))
    ;
  /* j and the items after it in its trip (the trip's list is fixed before
   * it leaves, and changed again only after its work is over). */
  for (; it != NULL; it = it->next)
    j->trip_rest++;
  j->ran_on = uv_thread_self();
  j->worked = 1;
  usleep(200);
  atomic_fetch_sub(&running, 1);
}

static void queue(struct job *j, int index);

static void done(struct fsb_item *it, int status) {
  struct job *j = (struct job *)it;

  ck_assert(uv_thread_equal(&loop_thread, &(uv_thread_t){uv_thread_self()}));
  ck_assert_int_eq(j->worked, 1);
  j->dones++;
  j->status = status;
  if (j >= jobs && j < jobs + N_ITEMS) {
    order[n_done++] = j->index;
    if (j->index < requeue_below)
      queue(&extra[n_extra++], 1000 + j->index);
  }
}

static void queue(struct job *j, int index) {
  j->index = index;
  j->it.work = work;
  j->it.done = done;
  ck_assert_int_eq(fsb_add(&batch, &j->it), 0);
}

static uv_loop_t *setup(void) {
  static uv_loop_t loop;

  ck_assert_int_eq(uv_loop_init(&loop), 0);
  memset(&batch, 0, sizeof(batch));
  memset(jobs, 0, sizeof(jobs));
  memset(extra, 0, sizeof(extra));
  batch.loop = &loop;
  n_done = n_extra = requeue_below = 0;
  atomic_store(&running, 0);
  atomic_store(&most_running, 0);
  loop_thread = uv_thread_self();
  return &loop;
}

START_TEST(test_batch_runs_every_item_in_order) {
  uv_loop_t *loop = setup();

  for (int i = 0; i < N_ITEMS; i++)
    queue(&jobs[i], i);
  /* Nothing runs its done before the loop does. */
  ck_assert_int_eq(n_done, 0);
  ck_assert_int_eq(uv_run(loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(n_done, N_ITEMS);
  for (int i = 0; i < N_ITEMS; i++) {
    ck_assert_int_eq(jobs[i].dones, 1);
    ck_assert_int_eq(jobs[i].status, 0);
    ck_assert(!uv_thread_equal(&jobs[i].ran_on, &loop_thread));
  }
  /* Each once: two trips in flight may end in either order, but an item
   * is never answered twice nor lost. */
  {
    int seen[N_ITEMS] = {0};
    for (int i = 0; i < N_ITEMS; i++) {
      ck_assert_int_lt(order[i], N_ITEMS);
      ck_assert_int_eq(seen[order[i]]++, 0);
    }
  }
  ck_assert_int_le(atomic_load(&most_running), FSB_TRIPS);
  /* The first two leave alone (both trips were free); the rest queued
   * behind them and leave FSB_MAX to a trip (a trip's first item
   * sees the whole trip after it). */
  {
    int full = 0;
    for (int i = 0; i < N_ITEMS; i++) {
      ck_assert_int_ge(jobs[i].trip_rest, 1);
      ck_assert_int_le(jobs[i].trip_rest, FSB_MAX);
      full += jobs[i].trip_rest == FSB_MAX;
    }
    ck_assert_int_eq(jobs[0].trip_rest, 1);
    ck_assert_int_eq(jobs[1].trip_rest, 1);
    ck_assert_int_ge(full, 2);
  }
  ck_assert_int_eq(uv_loop_close(loop), 0);
}
END_TEST

START_TEST(test_batch_lone_item_leaves_at_once) {
  uv_loop_t *loop = setup();

  queue(&jobs[0], 0);
  ck_assert_int_eq(uv_run(loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(jobs[0].dones, 1);
  /* And the batcher is idle again: the next one goes too. */
  queue(&jobs[1], 1);
  ck_assert_int_eq(uv_run(loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(jobs[1].dones, 1);
  ck_assert_int_eq(uv_loop_close(loop), 0);
}
END_TEST

START_TEST(test_batch_done_may_queue_more) {
  uv_loop_t *loop = setup();

  requeue_below = 100;
  for (int i = 0; i < 150; i++)
    queue(&jobs[i], i);
  ck_assert_int_eq(uv_run(loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(n_done, 150);
  ck_assert_int_eq(n_extra, 100);
  for (int i = 0; i < n_extra; i++) {
    ck_assert_int_eq(extra[i].dones, 1);
    ck_assert_int_eq(extra[i].worked, 1);
  }
  ck_assert_int_eq(uv_loop_close(loop), 0);
}
END_TEST

Suite *batch_suite(void) {
  Suite *s = suite_create("batch");
  TCase *tc = tcase_create("core");

  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_batch_runs_every_item_in_order);
  tcase_add_test(tc, test_batch_lone_item_leaves_at_once);
  tcase_add_test(tc, test_batch_done_may_queue_more);
  suite_add_tcase(s, tc);
  return s;
}
