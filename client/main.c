/* fsc: the command-line client. Parses the command line, connects, runs one
 * command and exits with its status. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "keys.h"
#include "login.h"
#include "reconnect.h"
#include "shell.h"
#include "tls.h"

struct cli {
  struct fsc_app app;
  struct fsc_opts opts;
  uv_signal_t sigs[3]; /* SIGINT, SIGTERM, SIGHUP */
  int status;
  int interrupted;
  int finished; /* the command ended; only the connection is closing */
  /* watch: reopening a lost connection (see on_lost). */
  struct fsc_reconnect rc;
  /* watch: stdout failed (its reader went away); ended from a timer. */
  uv_timer_t out_timer;
  int out_failed;
  struct fsc_identity id; /* who to authenticate as, when asked */
  /* -s with several servers (one cluster): tried in turn. */
  char server[FSC_SERVER_MAX]; /* the one in use, for messages too */
  unsigned server_i;           /* its index in the list */
  unsigned nservers;           /* servers in the list */
  unsigned tried;              /* first connection: servers that failed */
  int open_next;               /* on_closed opens server next */
  uv_timer_t open_timer;       /* ... from the loop, not inside a close */
};

/* Moves to the next server of the list. */
static void next_server(struct cli *c) {
  c->server_i++;
  fsc_server_pick(c->opts.server, c->server_i, c->server, sizeof c->server);
}

static void reconnect_next(struct fsc_reconnect *r) {
  next_server(r->data);
}

/* fsc keygen: a new key, and the line for the server's users file on
 * stdout. Needs no server. */
static int keygen(const struct fsc_opts *o) {
  struct fsc_identity id;
  struct fsc_key key;
  char host[256] = "", comment[FSP_USER_MAX + 260], line[1024], err[512];
  int r;

  fsc_identity_init(&id, o->user, o->identity);
  if (id.user == NULL) {
    fprintf(stderr,
            "fsc: keygen: '%s' is not a user name a server takes; give one "
            "with -u NAME\n",
            id.bad_user != NULL ? id.bad_user : "");
    return FSC_EXIT_USAGE;
  }
  gethostname(host, sizeof host - 1);
  snprintf(comment, sizeof comment, "%s@%s", id.user,
           host[0] != '\0' ? host : "localhost");
  r = fsc_key_generate(id.path, comment, &key, err, sizeof err);
  if (r != 0) {
    fprintf(stderr, "fsc: keygen: %s\n", err);
    return FSC_EXIT_FAIL;
  }
  r = fsc_key_users_line(&key, id.user, line, sizeof line);
  fsc_key_free(&key);
  if (r < 0) {
    fprintf(stderr, "fsc: keygen: %s\n", fsc_strerror(r));
    return FSC_EXIT_FAIL;
  }
  puts(line);
  fprintf(stderr,
          "fsc: new key in %s; the server's admin adds the line above to its "
          "users file (fewer rights: edit the second word)\n",
          id.path);
  return fflush(stdout) == 0 ? FSC_EXIT_OK : FSC_EXIT_FAIL;
}

static void on_out_timer(uv_timer_t *t) {
  struct cli *c = t->data;
  uv_close((uv_handle_t *)t, NULL);
  if (c->finished || c->interrupted)
    return;
  /* As for Ctrl-C; main() turns the write error into status 1. */
  c->interrupted = 1;
  fsc_run_cancel(&c->app);
  fsc_conn_abort(&c->app.conn);
}

static void cli_print(struct fsc_app *a, int to_err, const char *line) {
  struct cli *c = a->data;
  FILE *f = to_err ? stderr : stdout;
  fputs(line, f);
  fputc('\n', f);
  /* watch lines must reach a pipe as they happen, not when a buffer fills. */
  if (to_err || c->opts.cmd.kind == FSC_CMD_WATCH)
    fflush(f);
  /* A watch whose reader has gone (`fsc watch | head -1`; SIGPIPE is
   * ignored) would otherwise run for ever unseen. It ends from a timer:
   * this line may be printed from deep inside the watch's own code. */
  if (!to_err && c->opts.cmd.kind == FSC_CMD_WATCH && ferror(stdout) &&
      !c->out_failed) {
    c->out_failed = 1;
    uv_timer_init(a->loop, &c->out_timer);
    c->out_timer.data = c;
    uv_timer_start(&c->out_timer, on_out_timer, 0, 0);
  }
}

static const int caught[3] = {SIGINT, SIGTERM, SIGHUP};

static void close_signals(struct cli *c) {
  for (int i = 0; i < 3; i++)
    if (!uv_is_closing((uv_handle_t *)&c->sigs[i]))
      uv_close((uv_handle_t *)&c->sigs[i], NULL);
}

static int cli_halted(struct fsc_reconnect *r) {
  struct cli *c = r->data;
  return c->interrupted || c->finished;
}

static void on_closed(struct fsc_conn *conn);

static void on_open_timer(uv_timer_t *t) {
  struct cli *c = t->data;
  uv_close((uv_handle_t *)t, NULL);
  if (c->interrupted ||
      fsc_conn_open(&c->app.conn, c->app.loop, c->server) != 0) {
    c->status = FSC_EXIT_CONN;
    on_closed(&c->app.conn);
  }
}

static void on_closed(struct fsc_conn *conn) {
  struct cli *c = conn->data;
  if (c->open_next) {
    c->open_next = 0;
    uv_timer_init(c->app.loop, &c->open_timer);
    c->open_timer.data = c;
    uv_timer_start(&c->open_timer, on_open_timer, 0, 0);
    return;
  }
  if (fsc_reconnect_closed(&c->rc, conn->err))
    return;
  close_signals(c);
}

static void on_done(struct fsc_app *a, int status) {
  struct cli *c = a->data;
  c->finished = 1;
  fsc_reconnect_stop(&c->rc);
  if (status > c->status)
    c->status = status;
  fsc_conn_close(&a->conn);
}

static void on_ready(struct fsc_conn *conn, int status) {
  struct cli *c = conn->data;
  if (fsc_reconnect_ready(&c->rc, status))
    return;
  if (status < 0) {
    if (c->interrupted || status == UV_ECANCELED)
      return;
    if (status != UV_EACCES && ++c->tried < c->nservers) {
      /* Another server of the cluster may answer: try it once this
       * connection has closed. */
      fsc_app_errorf(&c->app, "cannot connect to %s: %s; trying the next",
                     c->app.server, fsc_conn_why(conn, status));
      next_server(c);
      c->open_next = 1;
      return;
    }
    if (status == UV_EACCES)
      fsc_app_errorf(&c->app, "%s refused to let user %s in: %s", c->app.server,
                     c->id.user ? c->id.user : "?", fsc_conn_why(conn, status));
    else
      fsc_app_errorf(&c->app, "cannot connect to %s: %s", c->app.server,
                     fsc_conn_why(conn, status));
    c->status = FSC_EXIT_CONN;
    return;
  }
  int rc = fsc_command_start(&c->app, &c->opts.cmd);
  if (rc != 0) {
    c->status = rc;
    fsc_conn_close(conn);
  }
}

static void on_lost(struct fsc_conn *conn, int err) {
  struct cli *c = conn->data;
  if (c->interrupted)
    return;
  /* A watch reconnects (unless --retry 0); the connection's handle is
   * closing, and on_closed starts the first attempt. */
  int again = c->app.reconnect && c->app.run != NULL;
  fsc_app_errorf(&c->app, "connection to %s lost: %s%s", c->app.server,
                 fsc_conn_why(conn, err), again ? "; reconnecting" : "");
  if (again)
    fsc_reconnect_begin(&c->rc);
  else
    c->status = FSC_EXIT_CONN;
  fsc_run_conn_lost(&c->app, err);
}

static void on_push(struct fsc_conn *conn, const struct fsp_msg *m) {
  struct cli *c = conn->data;
  fsc_run_push(&c->app, m);
}

/* Ctrl-C, and also kill or a closed terminal: clean up as for Ctrl-C so no
 * temporary file is left behind, and exit with 128 + the signal. */
static void on_signal(uv_signal_t *s, int signum) {
  struct cli *c = s->data;
  if (c->finished)
    return; /* too late to interrupt: the command's outcome stands */
  if (c->interrupted) {
    /* A second Ctrl-C: the user does not want to wait for the cleanup. */
    _exit(128 + signum);
  }
  c->interrupted = 1;
  if (c->opts.cmd.kind != FSC_CMD_WATCH || signum != SIGINT)
    c->status = 128 + signum;
  /* Cancel first (temporary files go, CANCEL frames are queued), then drop
   * the connection: the server drops an upload when its client leaves,
   * even if a CANCEL is still stuck behind DATA frames. */
  fsc_run_cancel(&c->app);
  fsc_conn_abort(&c->app.conn);
}

int main(int argc, char **argv) {
  static struct cli c;
  char err[512];
  signal(SIGPIPE, SIG_IGN);
  fsc_app_init_umask();
  int rc = fsc_parse_args(argc, argv, getenv("FSC_SERVER"), &c.opts, err,
                          sizeof err);
  if (rc != 0) {
    fprintf(stderr, "fsc: %s\n", err);
    return rc;
  }
  if (c.opts.help) {
    fputs(fsc_help_text(FSC_CMD_NONE), stdout);
    return FSC_EXIT_OK;
  }
  if (c.opts.version) {
    printf("fsc %s (libfsproto %s, protocol %u)\n", FSC_VERSION,
           fsp_version_string(), FSP_HELLO_VERSION);
    return FSC_EXIT_OK;
  }
  if (c.opts.cmd.help) {
    fputs(fsc_help_text(c.opts.cmd.kind), stdout);
    return FSC_EXIT_OK;
  }
  if (c.opts.cmd.kind == FSC_CMD_KEYGEN)
    return keygen(&c.opts);
  /* -s was checked: every entry is HOST:PORT. */
  c.nservers =
      (unsigned)fsc_server_pick(c.opts.server, 0, c.server, sizeof c.server);
  if (c.opts.cmd.kind == FSC_CMD_SHELL) {
    c.opts.server = c.server; /* the shell uses the first */
    return fsc_shell_main(&c.opts);
  }

  uv_loop_t *loop = uv_default_loop();
  c.app.loop = loop;
  c.app.server = c.server;
  c.app.quiet = c.opts.quiet;
  c.app.progress = !c.opts.quiet && isatty(STDERR_FILENO);
  c.app.stdout_tty = isatty(STDOUT_FILENO);
  c.app.print = cli_print;
  c.app.on_done = on_done;
  c.app.data = &c;
  c.app.conn.data = &c;
  c.app.conn.on_ready = on_ready;
  c.app.conn.on_lost = on_lost;
  c.app.conn.on_push = on_push;
  c.app.conn.on_closed = on_closed;
  fsc_identity_init(&c.id, c.opts.user, c.opts.identity);
  c.app.conn.on_challenge = fsc_login_challenge;
  c.app.conn.challenge_arg = &c.id;
  /* A watch outlives a lost connection unless told not to. */
  c.app.reconnect = c.opts.cmd.kind == FSC_CMD_WATCH && c.opts.cmd.retry != 0;
  c.rc.app = &c.app;
  c.rc.server = c.server;
  if (c.nservers > 1)
    c.rc.next = reconnect_next;
  c.rc.retry = c.opts.cmd.retry;
  c.rc.halted = cli_halted;
  c.rc.data = &c;

  for (int i = 0; i < 3; i++) {
    uv_signal_init(loop, &c.sigs[i]);
    c.sigs[i].data = &c;
    uv_signal_start(&c.sigs[i], on_signal, caught[i]);
    /* The signal watchers alone must not keep the program alive. */
    uv_unref((uv_handle_t *)&c.sigs[i]);
  }

  /* TLS trusts the first server of a list (see README: several servers). */
  struct fsc_opts first = c.opts;
  first.server = c.server;
  rc = fsc_tls_setup(&c.app.conn, &first, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "fsc: %s\n", err);
    close_signals(&c);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return rc;
  }
  rc = fsc_conn_open(&c.app.conn, loop, c.server);
  if (rc < 0) {
    fsc_app_errorf(&c.app, "cannot connect to %s: %s", c.server,
                   fsc_strerror(rc));
    close_signals(&c);
    c.status = FSC_EXIT_CONN;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  close_signals(&c);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  fsc_tls_release(&c.app.conn);
  fsc_rblock_trim();
  fsc_identity_free(&c.id);
  fflush(stdout);
  if (ferror(stdout) && c.status == 0)
    c.status = FSC_EXIT_FAIL;
  return c.status;
}
