/* fsc commands on libuv: ls, size, rm, get, put, watch and announce, run on
 * one connection, for the command line and the shell alike. They use the
 * pure modules (cli, fmt, path, xfer) for every decision and keep only the
 * I/O here. */
#ifndef FSC_CMD_H
#define FSC_CMD_H

#include <uv.h>

#include "cli.h"
#include "conn.h"

struct fsc_run;

/* What the program and its commands share. */
struct fsc_app {
  uv_loop_t *loop;
  struct fsc_conn conn;
  const char *server;  /* HOST:PORT, for messages */
  int quiet;           /* -q */
  int progress;        /* draw a progress bar on stderr (a tty, no -q) */
  int stdout_tty;      /* stdout is a terminal: ls prints columns */
  int shell;           /* inside the shell: no progress bar */
  int push_json;       /* print pushed frames as JSON */
  int reconnect;       /* watch: the owner reopens a lost connection, and
                          the watch waits for it (fsc_run_reconnected) */
  int progress_shown;  /* a progress line is on the screen */
  struct fsc_run *run; /* the running command, or NULL */
  /* Prints one line (without newline) on stdout (to_err 0) or stderr. */
  void (*print)(struct fsc_app *a, int to_err, const char *line);
  /* The running command ended with an exit status (FSC_EXIT_*). */
  void (*on_done)(struct fsc_app *a, int status);
  void *data; /* for the owner */
};

/* Starts cmd on the ready connection. cmd (and the strings it points to)
 * must stay valid until on_done. Returns 0 (on_done will run) or an exit
 * status for a command that failed to start (on_done will not run). */
int fsc_run_start(struct fsc_app *a, const struct fsc_cmd *cmd);

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

/* A pushed frame (EVENT, NOTIFY, RESYNC) for the running command: a watch
 * keeps its table of the server's files current and prints the frame; a
 * RESYNC makes it list again and print what changed. */
void fsc_run_push(struct fsc_app *a, const struct fsp_msg *m);

/* Prints a pushed EVENT, NOTIFY or RESYNC as one line. */
void fsc_app_print_push(struct fsc_app *a, const struct fsp_msg *m);

/* Prints "fsc: " and a formatted message on stderr, clearing the progress
 * bar first. */
void fsc_app_errorf(struct fsc_app *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Reads the process's umask (call once at start-up, before any thread). */
void fsc_app_init_umask(void);

/* Text for a UV_E*, FSP_E* or FSC_E* code. */
const char *fsc_strerror(int err);

/* Why a connection failed or was lost: the server's own words when it gave
 * any, else the text of err. */
const char *fsc_conn_why(const struct fsc_conn *c, int err);

#endif /* FSC_CMD_H */
