/* Tests of fsc's runs (client/run.c) with a command whose jobs need no
 * server: jobs added while the run goes (get -r adds a job per file as its
 * listing streams), a run held open until its command lets go, and jobs
 * freed as they finish, so that a tree of any size costs no more memory
 * than the jobs in flight. */
#include <string.h>

#include "alloc.h"
#include "run.h"
#include "suites.h"

#define TOTAL 5000 /* jobs added in batches while the run goes */
#define BATCH 100

static struct fsc_app app;
static int done_status = -1, started, destroyed, peak_live, max_active;
static long live0;
static struct fsc_job *pending[64]; /* jobs in flight, finished later */
static int npending;

static void job_destroy(struct fsc_job *j) {
  destroyed++;
  fsc_free(j);
}

static void job_cancel(struct fsc_job *j) {
  fsc_run_job_finished(j);
}

static const struct fsc_job_ops ops = {job_cancel, NULL, job_destroy};

static struct fsc_job *job_new(void) {
  struct fsc_job *j = fsc_calloc(1, sizeof *j);
  if (j != NULL)
    j->ops = &ops;
  return j;
}

/* Each job stays in flight until the test finishes it, as a download
 * waits for its answer. */
static void job_start(struct fsc_job *j) {
  started++;
  ck_assert_int_lt(npending, 64);
  pending[npending++] = j;
  if (j->run->active > max_active)
    max_active = j->run->active;
  long live = fsc_alloc_live() - live0;
  if (live > peak_live)
    peak_live = (int)live;
}

static const char *job_arg(struct fsc_run *r, int i) {
  (void)r;
  (void)i;
  return "x";
}

static int begin(struct fsc_run *r) {
  r->job_arg = job_arg;
  r->drop_finished = 1;
  r->njobs = 0;
  fsc_run_hold(r);
  return fsc_run_add_jobs(r, BATCH);
}

static const struct fsc_run_ops cmd_ops = {.parallel = 8,
                                           .per_arg = 0,
                                           .begin = begin,
                                           .job_new = job_new,
                                           .job_start = job_start};

static void on_done(struct fsc_app *a, int status) {
  (void)a;
  done_status = status;
}

static void print(struct fsc_app *a, int to_err, const char *line) {
  (void)a;
  (void)to_err;
  (void)line;
}

static void finish_all(void) {
  while (npending > 0) {
    struct fsc_job *j = pending[--npending];
    fsc_run_job_finished(j);
  }
}

START_TEST(test_run_grows_held_and_bounded) {
  memset(&app, 0, sizeof app);
  app.conn.state = FSC_CONN_READY;
  app.conn.peer_max_inflight = 64;
  app.on_done = on_done;
  app.print = print;
  live0 = fsc_alloc_live();
  struct fsc_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.kind = FSC_CMD_GET;
  ck_assert_int_eq(fsc_run_start(&app, &cmd, &cmd_ops), 0);
  struct fsc_run *r = app.run;
  ck_assert_ptr_nonnull(r);
  for (int added = BATCH; added < TOTAL; added += BATCH) {
    finish_all();
    /* The run is held: with every job so far finished, it waits. */
    ck_assert_int_eq(done_status, -1);
    ck_assert_int_eq(fsc_run_add_jobs(r, BATCH), 0);
  }
  while (started < TOTAL)
    finish_all();
  finish_all();
  ck_assert_int_eq(done_status, -1);
  fsc_run_release(r); /* the listing is over: now the run ends */
  ck_assert_int_eq(done_status, 0);
  ck_assert_int_eq(started, TOTAL);
  ck_assert_int_eq(destroyed, TOTAL);
  ck_assert_int_le(max_active, 8);
  /* Jobs are freed as they finish: memory holds the jobs in flight and
   * the table of pointers, not a job per file. */
  ck_assert_int_lt(peak_live, 8 + 4);
  ck_assert_int_eq(fsc_alloc_live(), live0);
}
END_TEST

/* Jobs that park (their request over, only local work left) give their
 * place to the next ones: requests in flight stay within parallel, parked
 * jobs within FSC_RUN_PARK_MAX more, and the run still waits for every
 * parked job to finish. */
static int max_in_flight;

static void job_start_park(struct fsc_job *j) {
  job_start(j);
  struct fsc_run *r = j->run;
  if (r->active - r->parked > max_in_flight)
    max_in_flight = r->active - r->parked;
  fsc_run_job_park(j);
}

static const struct fsc_run_ops park_ops = {.parallel = 8,
                                            .per_arg = 0,
                                            .job_new = job_new,
                                            .job_start = job_start_park};

static int begin_park(struct fsc_run *r) {
  r->job_arg = job_arg;
  r->drop_finished = 1;
  r->njobs = 0;
  return fsc_run_add_jobs(r, 200);
}

START_TEST(test_run_parked_jobs_free_their_place) {
  struct fsc_run_ops ops2 = park_ops;
  ops2.begin = begin_park;
  memset(&app, 0, sizeof app);
  app.conn.state = FSC_CONN_READY;
  app.conn.peer_max_inflight = 64;
  app.on_done = on_done;
  app.print = print;
  done_status = -1;
  started = destroyed = max_active = max_in_flight = npending = 0;
  live0 = fsc_alloc_live();
  struct fsc_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.kind = FSC_CMD_GET;
  ck_assert_int_eq(fsc_run_start(&app, &cmd, &ops2), 0);
  /* All parked at once: the parallel ones and as many more as allowed. */
  ck_assert_int_eq(started, 8 + FSC_RUN_PARK_MAX);
  ck_assert_int_eq(app.run->parked, 8 + FSC_RUN_PARK_MAX);
  while (npending > 0) {
    ck_assert_int_eq(done_status, -1); /* parked jobs hold the run */
    fsc_run_job_finished(pending[--npending]);
  }
  ck_assert_int_eq(done_status, 0);
  ck_assert_int_eq(started, 200);
  ck_assert_int_eq(destroyed, 200);
  ck_assert_int_le(max_in_flight, 8);
  ck_assert_int_le(max_active, 8 + FSC_RUN_PARK_MAX);
  ck_assert_int_eq(fsc_alloc_live(), live0);
}
END_TEST

Suite *run_suite(void) {
  Suite *s = suite_create("run");
  TCase *tc = tcase_create("run");
  tcase_add_test(tc, test_run_grows_held_and_bounded);
  tcase_add_test(tc, test_run_parked_jobs_free_their_place);
  suite_add_tcase(s, tc);
  return s;
}
