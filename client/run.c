/* fsc runs: starting jobs, counting their failures, ending the run. See
 * run.h. */
#include "run.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

static void run_next(struct fsc_run *r);

void fsc_run_fail(struct fsc_run *r, int status) {
  if (status > r->status)
    r->status = status;
}

/* A command that cannot start for want of memory says so, like any
 * failure. Returns the exit status. */
static int no_memory(struct fsc_app *a, const struct fsc_cmd *cmd) {
  fsc_app_errorf(a, "%s: %s", fsc_cmd_name(cmd->kind), fsc_strerror(UV_ENOMEM));
  return FSC_EXIT_FAIL;
}

static void run_free(struct fsc_run *r) {
  for (int i = 0; i < r->njobs; i++)
    if (r->jobs[i] != NULL)
      r->jobs[i]->ops->destroy(r->jobs[i]);
  fsc_free(r->jobs);
  if (r->ops->free != NULL)
    r->ops->free(r);
  fsc_free(r);
}

static void run_end(struct fsc_run *r) {
  struct fsc_app *a = r->app;
  if (r->finished)
    return;
  r->finished = 1;
  if (r->ops->end != NULL)
    r->ops->end(r);
  fsc_app_clear_progress(a);
  fflush(stdout);
  a->run = NULL;
  int status = r->status;
  run_free(r);
  a->on_done(a, status);
}

void fsc_run_job_finished(struct fsc_job *j) {
  struct fsc_run *r = j->run;
  if (j->finished)
    return;
  j->finished = 1;
  fsc_conn_finish(&r->app->conn, &j->req);
  r->active--;
  if (j->parked)
    r->parked--;
  if (j->failed && !(r->canceled && r->ops->stop_ok))
    fsc_run_fail(r, r->lost       ? FSC_EXIT_CONN
                    : r->canceled ? FSC_EXIT_INTR
                                  : FSC_EXIT_FAIL);
  if (r->drop_finished && j->index >= 0 && j->index < r->njobs &&
      r->jobs[j->index] == j) {
    /* Callers never touch a job after this call (it may end the run), so
     * it can go now. */
    r->jobs[j->index] = NULL;
    j->ops->destroy(j);
  }
  run_next(r);
}

int fsc_run_add_jobs(struct fsc_run *r, int n) {
  if (n <= 0)
    return 0;
  struct fsc_job **nj =
      fsc_realloc(r->jobs, (size_t)(r->njobs + n) * sizeof *nj);
  if (nj == NULL)
    return UV_ENOMEM;
  memset(nj + r->njobs, 0, (size_t)n * sizeof *nj);
  r->jobs = nj;
  r->njobs += n;
  if (r->app->run == r)
    run_next(r);
  return 0;
}

void fsc_run_job_park(struct fsc_job *j) {
  if (j->parked || j->finished)
    return;
  j->parked = 1;
  j->run->parked++;
  run_next(j->run);
}

void fsc_run_hold(struct fsc_run *r) {
  r->holds++;
}

void fsc_run_release(struct fsc_run *r) {
  if (r->holds > 0)
    r->holds--;
  run_next(r);
}

struct fsc_job *fsc_run_job(const struct fsc_run *r, int i,
                            const struct fsc_job_ops *ops) {
  if (i < 0 || i >= r->njobs || r->jobs[i] == NULL || r->jobs[i]->ops != ops)
    return NULL;
  return r->jobs[i];
}

/* Starts jobs while there is room, and ends the run when all are done. */
static void run_next(struct fsc_run *r) {
  /* Jobs that fail at once finish inside this loop; the outermost call
   * carries on instead of recursing, and alone may end the run. */
  if (r->in_next)
    return;
  r->in_next = 1;
  if (r->app->conn.state != FSC_CONN_READY && !r->lost && !r->canceled) {
    r->lost = 1;
    fsc_run_fail(r, FSC_EXIT_CONN);
  }
  while (!r->canceled && !r->lost && r->active - r->parked < r->parallel &&
         r->active < r->parallel + FSC_RUN_PARK_MAX && r->next < r->njobs) {
    int i = r->next++;
    struct fsc_job *j = r->ops->job_new();
    if (j == NULL) {
      fsc_app_errorf(r->app, "%s", fsc_strerror(UV_ENOMEM));
      fsc_run_fail(r, FSC_EXIT_FAIL);
      continue;
    }
    j->run = r;
    j->index = i;
    j->arg = r->job_arg != NULL ? r->job_arg(r, i)
             : r->cmd.nargs > 0 ? r->cmd.args[i]
                                : "";
    r->jobs[i] = j;
    r->active++;
    r->ops->job_start(j);
  }
  r->in_next = 0;
  if (r->active == 0 &&
      ((r->next >= r->njobs && r->holds == 0) || r->canceled || r->lost))
    run_end(r);
}

int fsc_run_start(struct fsc_app *a, const struct fsc_cmd *cmd,
                  const struct fsc_run_ops *ops) {
  struct fsc_run *r = fsc_calloc(1, sizeof *r);
  if (r == NULL)
    return no_memory(a, cmd);
  r->app = a;
  r->ops = ops;
  r->cmd = *cmd;
  r->njobs = ops->per_arg ? cmd->nargs : 1;
  /* At least one slot, so the array is never a zero-size allocation. */
  r->jobs = fsc_calloc((size_t)r->njobs + 1, sizeof *r->jobs);
  if (r->jobs == NULL) {
    fsc_free(r);
    return no_memory(a, cmd);
  }
  /* Stay within what the server allows in flight (its HELLO), leaving room
   * for the shell's subscription and a CANCEL. */
  int server = (int)a->conn.peer_max_inflight - 2;
  if (server < 1)
    server = 1;
  r->parallel = ops->parallel < server ? ops->parallel : server;
  int rc = ops->begin != NULL ? ops->begin(r) : 0;
  if (rc == UV_ENOMEM)
    rc = no_memory(a, cmd);
  if (rc != 0) {
    fsc_free(r->jobs);
    fsc_free(r);
    return rc;
  }
  a->run = r;
  run_next(r);
  return 0;
}

void fsc_run_cancel(struct fsc_app *a) {
  struct fsc_run *r = a->run;
  if (r == NULL || r->canceled)
    return;
  r->canceled = 1;
  if (!r->ops->stop_ok)
    fsc_run_fail(r, FSC_EXIT_INTR);
  r->in_next = 1; /* the run must outlive this loop */
  for (int i = 0; i < r->njobs; i++) {
    struct fsc_job *j = r->jobs[i];
    if (j != NULL && !j->finished)
      j->ops->cancel(j);
  }
  r->in_next = 0;
  run_next(r);
}

void fsc_run_conn_lost(struct fsc_app *a, int err) {
  struct fsc_run *r = a->run;
  (void)err;
  if (r == NULL)
    return;
  if (a->reconnect && r->ops->conn_lost != NULL && r->ops->conn_lost(r))
    return;
  r->lost = 1;
  fsc_run_fail(r, FSC_EXIT_CONN);
  /* Requests already got on_lost from the connection; jobs that were not
   * started have nothing to clean up. */
  r->in_next = 1; /* the run must outlive this loop */
  for (int i = 0; i < r->njobs; i++) {
    struct fsc_job *j = r->jobs[i];
    if (j != NULL && !j->finished && j->ops->lost != NULL)
      j->ops->lost(j);
  }
  r->in_next = 0;
  run_next(r);
}

void fsc_run_reconnected(struct fsc_app *a) {
  struct fsc_run *r = a->run;
  if (r != NULL && r->ops->reconnected != NULL)
    r->ops->reconnected(r);
}

void fsc_run_push(struct fsc_app *a, const struct fsp_msg *m) {
  struct fsc_run *r = a->run;
  if (r != NULL && r->ops->push != NULL)
    r->ops->push(r, m);
}
