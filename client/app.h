/* fsc's program-wide services for the commands: the output lines, the
 * error line, the text of any error code, the progress bar, and the
 * process's umask. Owned by main.c or shell.c, used by every command. */
#ifndef FSC_APP_H
#define FSC_APP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "conn.h"

struct fsc_run;

/* A name or path made safe for the terminal: fsc_fmt_escape() may turn each
 * byte into a 4-byte \xNN. A longer operand (a local path) is cut, as the error
 * line that shows it would be anyway. */
#define FSC_ESC_MAX (4 * FSP_PATH_MAX + 4)

/* The server's words in an ERROR frame, escaped; a longer text is cut to
 * fit an error line. */
#define FSC_MSG_MAX 512

/* What the program and its commands share. */
struct fsc_app {
  uv_loop_t *loop;
  struct fsc_conn conn;
  const char *server; /* HOST:PORT, for messages */
  int quiet;          /* -q */
  int progress;       /* draw a progress bar on stderr (a tty, no -q) */
  int stdout_tty;     /* stdout is a terminal: ls prints columns */
  int shell;          /* inside the shell: no progress bar */
  int push_json;      /* print pushed frames as JSON */
  int reconnect;      /* watch: the owner reopens a lost connection, and
                         the watch waits for it (fsc_run_reconnected) */
  int progress_shown; /* a progress line is on the screen */
  /* The shell's current folder (a folder path; "" is the top folder):
   * server paths the user types are resolved against it. */
  char cwd[FSP_PATH_MAX + 1];
  struct fsc_run *run; /* the running command, or NULL */
  /* Prints one line (without newline) on stdout (to_err 0) or stderr. */
  void (*print)(struct fsc_app *a, int to_err, const char *line);
  /* The running command ended with an exit status (FSC_EXIT_*). */
  void (*on_done)(struct fsc_app *a, int status);
  void *data; /* for the owner */
};

/* Prints a pushed EVENT, NOTIFY or RESYNC as one line. */
void fsc_app_print_push(struct fsc_app *a, const struct fsp_msg *m);

/* Prints "fsc: " and a formatted message on stderr, clearing the progress
 * bar first. */
void fsc_app_errorf(struct fsc_app *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The server path for the operand arg into out[0..cap): on a connection
 * that speaks version 3, arg resolved against the shell's current folder
 * (fsc_rpath_resolve: "a/../b" is "b", "/x" starts at the top); on an older
 * one arg as typed, which must be a plain name. folder_ok allows the top
 * folder itself (""). Returns 0 or FSP_EBADNAME. */
int fsc_app_rpath(struct fsc_app *a, const char *arg, char *out, size_t cap,
                  int folder_ok);

/* For a command that needs folders (protocol.md section 12): 0 when the
 * connection speaks version 3, else prints "fsc: CMD: server does not serve
 * folders (protocol version N)" and returns FSC_EXIT_FAIL. */
int fsc_app_need_tree(struct fsc_app *a, const char *cmd);

/* Removes the progress line from the screen, if one is shown. */
void fsc_app_clear_progress(struct fsc_app *a);

/* Reads the process's umask (call once at start-up, before any thread). */
void fsc_app_init_umask(void);

/* The process's umask, as read by fsc_app_init_umask(). */
mode_t fsc_app_umask(void);

/* Text for a UV_E*, FSP_E* or FSC_E* code. */
const char *fsc_strerror(int err);

/* Why a connection failed or was lost: the server's own words when it gave
 * any, else the text of err. */
const char *fsc_conn_why(const struct fsc_conn *c, int err);

/* s made safe for the terminal, in buf (FSC_ESC_MAX bytes hold any name).
 * Returns buf. */
const char *fsc_esc(char *buf, size_t cap, const char *s);

/* The server's words for an ERROR frame: its message (escaped), or the
 * status text. */
void fsc_server_msg(char *buf, size_t cap, const struct fsp_msg *m);

/* A transfer's progress bar: what is known of the bytes to move and those
 * moved, redrawn on stderr from a timer while the app draws one. */
struct fsc_progress {
  struct fsc_app *app;
  uv_timer_t *timer; /* its own allocation: freed when the handle closes */
  uint64_t t0;       /* ms */
  uint64_t total;    /* bytes to transfer, as far as known */
  uint64_t done;     /* bytes transferred */
  int sizes_known;   /* files whose size is in total */
  int files;         /* files in the transfer */
  char label[64];    /* a file's name or "N files", escaped */
};

/* Starts the bar for files files, labelled with name (len bytes) when
 * there is one file. Draws nothing unless the app shows progress. */
void fsc_progress_start(struct fsc_progress *p, struct fsc_app *a, int files,
                        const char *name, size_t len);

/* Stops the bar, drawing it once more first when final is set (so a
 * finished transfer shows 100% before the line is cleared). */
void fsc_progress_stop(struct fsc_progress *p, int final);

#endif /* FSC_APP_H */
