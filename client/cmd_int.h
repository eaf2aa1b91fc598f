/* Internals shared by the command files: cmd.c (runs, ls, size, rm,
 * announce, watch), get.c and put.c. Not installed, not used elsewhere. */
#ifndef FSC_CMD_INT_H
#define FSC_CMD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmd.h"

/* Reads of a partial copy being hashed, and of stdin being spooled. */
#define FSC_IO_CHUNK (1u << 20)

/* Every command is a "run": a set of jobs (one per NAME or FILE) that each
 * own one request at a time on the shared connection. */
struct job;

struct fsc_run {
  struct fsc_app *app;
  struct fsc_cmd cmd;
  int status;        /* worst exit status so far */
  int canceled;      /* Ctrl-C */
  int lost;          /* the connection is gone */
  int next;          /* next operand to start a job for */
  int active;        /* jobs started and not finished */
  int parallel;      /* jobs allowed at once */
  int finished;      /* on_done ran */
  struct job **jobs; /* one per operand (NULL until started) */
  int njobs;
  /* ls */
  struct fsp_entry *entries; /* names owned (malloc'd ptr) */
  size_t nentries, centries;
  /* get */
  int out_is_dir;
  uint64_t waiting; /* downloaded bytes waiting for the disk */
  int paused;       /* we paused the connection's reading */
  /* progress */
  uv_timer_t timer;
  int timer_on;
  uint64_t t0;     /* ms */
  uint64_t total;  /* bytes to transfer, as far as known */
  uint64_t done;   /* bytes transferred */
  int sizes_known; /* jobs whose size is in total */
  int in_next;     /* run_next is on the stack: do not recurse or end */
};

/* Common head of every job. */
struct job {
  struct fsc_req req;
  struct fsc_run *run;
  int index;       /* operand index */
  const char *arg; /* the operand */
  int failed;      /* an error was reported */
  int req_done;    /* the request ended (final frame, or connection) */
  int finished;    /* the job is over */
  void (*cancel)(struct job *j); /* Ctrl-C or connection lost */
  void (*destroy)(struct job *j);
};

/* Ends a job: unregisters its request, counts its failure, and starts the
 * next job or ends the run. The run (and the job) may be freed on return. */
void fsc__job_finished(struct job *j);

/* s made safe for the terminal, in buf. Returns buf. */
const char *fsc__esc(char *buf, size_t cap, const char *s);

/* The server's words for an ERROR frame: its message (escaped), or the
 * status text. */
void fsc__server_msg(char *buf, size_t cap, const struct fsp_msg *m);

/* The process's umask, as read by fsc_app_init_umask(). */
mode_t fsc__umask(void);

/* A new download or upload job (zeroed, its request ops set), or NULL when
 * out of memory; and starting it once the run has filled in run, index and
 * arg. */
struct job *fsc__get_job_new(void);
void fsc__get_job_start(struct job *j);
struct job *fsc__put_job_new(void);
void fsc__put_job_start(struct job *j);

#endif /* FSC_CMD_INT_H */
