/* fsc runs: every command is a run, a set of jobs (one per NAME or FILE, or
 * one for the whole command) that each own one request at a time on the
 * shared connection. A run starts up to a few jobs at once, so many
 * requests are in flight together, and ends when every job has finished
 * its local cleanup. The run knows no command: what a command does comes
 * in a struct fsc_run_ops (see commands.c). */
#ifndef FSC_RUN_H
#define FSC_RUN_H

#include "app.h"
#include "cli.h"
#include "conn.h"

struct fsc_job;
struct fsc_run;

/* What a job does when the run needs it to stop. */
struct fsc_job_ops {
  /* Ctrl-C: stop, clean up, then end with fsc_run_job_finished(). */
  void (*cancel)(struct fsc_job *j);
  /* The connection is gone and the run ends. Requests already had
   * on_lost; a job holding no request ends here. NULL: nothing to do. */
  void (*lost)(struct fsc_job *j);
  /* Frees the job (the run is over). */
  void (*destroy)(struct fsc_job *j);
};

/* Common head of every job, embedded first in each command's job. */
struct fsc_job {
  struct fsc_req req;
  struct fsc_run *run;
  const struct fsc_job_ops *ops;
  int index;       /* operand index */
  const char *arg; /* the operand, or "" */
  int failed;      /* an error was reported */
  int req_done;    /* the request ended (final frame, or connection) */
  int finished;    /* the job is over */
  int parked;      /* fsc_run_job_park() was called */
};

/* One command's operations, as the run calls them. */
struct fsc_run_ops {
  int parallel; /* jobs at once, before the server's own limit */
  int per_arg;  /* one job per operand (else one for the command) */
  int stop_ok;  /* Ctrl-C is how it ends: that is no failure */
  /* Before any job: set up the command's state (r->state). Returns 0, an
   * exit status after printing why, or UV_ENOMEM (the run says it); the
   * run is then dropped. NULL: nothing to set up. */
  int (*begin)(struct fsc_run *r);
  /* A new job (zeroed, its ops and request ops set), or NULL when out of
   * memory. */
  struct fsc_job *(*job_new)(void);
  /* Starts the job once run, index and arg are filled in. */
  void (*job_start)(struct fsc_job *j);
  /* Every job is over (or the run was stopped): last output. NULL: none. */
  void (*end)(struct fsc_run *r);
  /* Frees the command's state. NULL: it has none. */
  void (*free)(struct fsc_run *r);
  /* Only for a command that lives across reconnects (watch); NULL
   * otherwise. conn_lost returns 1 when the run waits for a reconnect. */
  int (*conn_lost)(struct fsc_run *r);
  void (*reconnected)(struct fsc_run *r);
  void (*push)(struct fsc_run *r, const struct fsp_msg *m);
};

struct fsc_run {
  struct fsc_app *app;
  const struct fsc_run_ops *ops;
  struct fsc_cmd cmd;
  void *state;           /* the command's own state (begin/free) */
  int status;            /* worst exit status so far */
  int canceled;          /* Ctrl-C */
  int lost;              /* the connection is gone */
  int next;              /* next operand to start a job for */
  int active;            /* jobs started and not finished */
  int parked;            /* of which parked (fsc_run_job_park) */
  int parallel;          /* jobs allowed at once */
  int finished;          /* on_done ran */
  int in_next;           /* run_next is on the stack: do not recurse or end */
  struct fsc_job **jobs; /* one per operand (NULL until started, and once
                            finished when drop_finished is set) */
  int njobs;
  /* Set by a command's begin when its jobs are not its operands (put -r,
   * get -r: one job per file of a tree). */
  const char *(*job_arg)(struct fsc_run *r, int i); /* job i's operand */
  int drop_finished; /* free each job as it finishes: a tree of a million
                        files must not keep a million jobs */
  int holds;         /* the command still adds jobs (fsc_run_hold) */
};

/* Starts cmd on the ready connection with the command's ops. cmd (and the
 * strings it points to) must stay valid until on_done. Returns 0 (on_done
 * will run) or an exit status for a command that failed to start (on_done
 * will not run). */
int fsc_run_start(struct fsc_app *a, const struct fsc_cmd *cmd,
                  const struct fsc_run_ops *ops);

/* Ctrl-C: cancels the running command. Transfers stop, temporary files are
 * removed (a `get -c` keeps its partial copy), uploads are canceled on the
 * server, and on_done runs once the local cleanup is over. */
void fsc_run_cancel(struct fsc_app *a);

/* The connection was lost: the running command fails (on_done runs with
 * FSC_EXIT_CONN once local cleanup is over). A watch, while a->reconnect
 * is set, keeps running instead and waits for fsc_run_reconnected(). */
void fsc_run_conn_lost(struct fsc_app *a, int err);

/* The connection is ready again after a loss (a->reconnect): a watch
 * subscribes again with the last epoch and seq it saw, and catches up. */
void fsc_run_reconnected(struct fsc_app *a);

/* A pushed frame (EVENT, NOTIFY, RESYNC) for the running command. */
void fsc_run_push(struct fsc_app *a, const struct fsp_msg *m);

/* Ends a job: unregisters its request, counts its failure, and starts the
 * next job or ends the run. The run (and the job) may be freed on return. */
void fsc_run_job_finished(struct fsc_job *j);

/* At most this many parked jobs, beyond the run's parallel ones. */
#define FSC_RUN_PARK_MAX 32

/* The job's request is over and it only waits for local work (get -r's
 * store of a small file): its place goes to the next job, so requests
 * keep flowing while the disk catches up. The run still waits for it to
 * finish; at most FSC_RUN_PARK_MAX jobs are parked at once (what they hold
 * stays bounded). Call it before queuing that work. */
void fsc_run_job_park(struct fsc_job *j);

/* Makes the run's exit status at least status (a failure the command
 * found outside its jobs, such as an entry it left out). */
void fsc_run_fail(struct fsc_run *r, int status);

/* Appends n jobs to the run (their operands come from r->job_arg) and
 * starts them as room allows. May be called from begin. Returns 0 or
 * UV_ENOMEM (nothing added). */
int fsc_run_add_jobs(struct fsc_run *r, int n);

/* A command that finds its jobs while it runs (get -r, from a LIST) holds
 * the run open: it does not end while held, even with no job left, unless
 * it is canceled or its connection is lost. fsc_run_release() lets go and
 * may end the run (and free it) on return. */
void fsc_run_hold(struct fsc_run *r);
void fsc_run_release(struct fsc_run *r);

/* Job i of the run when it was made with ops (a command finding its own
 * jobs), else NULL. */
struct fsc_job *fsc_run_job(const struct fsc_run *r, int i,
                            const struct fsc_job_ops *ops);

#endif /* FSC_RUN_H */
