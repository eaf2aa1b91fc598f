/* fsc shell: an interactive prompt on one connection, subscribed to events.
 *
 * The terminal is read through a libuv tty handle in raw mode and fed byte by
 * byte to the line editor (edit.c); everything the shell prints goes through
 * shell_print(), which erases the prompt line, prints, and draws the prompt
 * and the half-typed line again, so events and notices appear the moment they
 * arrive without mangling what the user is typing. While a command runs the
 * prompt is hidden; keys typed meanwhile are kept for the next prompt. When
 * stdin is not a terminal the shell reads commands line by line, without a
 * prompt, which makes it scriptable. */
#include "shell.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "edit.h"
#include "fmt.h"
#include "login.h"
#include "tls.h"

#define PROMPT "fsc> "
/* The longest current folder the prompt shows: its end, the part that
 * says where one is. */
#define PROMPT_PATH_MAX 48
#define MAX_WORDS 256
#define MAX_QUEUED 16 /* lines typed ahead while a command runs */

struct shell {
  struct fsc_app app;
  const struct fsc_opts *opts;
  union {
    uv_tty_t tty;
    uv_pipe_t pipe;
  } in;                /* stdin */
  uv_tty_t out;        /* stdout, when it is a terminal */
  uv_signal_t sigint;  /* Ctrl-C when stdin is not in raw mode */
  uv_signal_t sigterm; /* kill or a closed terminal: restore the tty */
  uv_signal_t sighup;
  struct fsc_req sub;     /* the subscription */
  struct fsc_identity id; /* who to authenticate as, when asked */
  int interactive;        /* stdin and stdout are terminals: raw mode, prompt */
  int out_tty;            /* out is initialised */
  int in_open;
  int in_file;       /* stdin is a regular file: read on the threadpool */
  int in_reading;    /* in_file: reading wanted (the input "stream" is on) */
  int in_busy;       /* in_file: a read is in flight */
  uv_fs_t in_req;    /* in_file: that read */
  char in_buf[4096]; /* in_file: its buffer */
  int raw;           /* the terminal is in raw mode */
  struct fsc_edit ed;
  char line[FSC_EDIT_MAX + 1]; /* the running command's words live here */
  char *argv[MAX_WORDS];
  struct fsc_cmd cmd;
  int running;              /* a command is running */
  char *queued[MAX_QUEUED]; /* lines typed while a command ran (owned) */
  int nqueued;
  char pend[4096];     /* without a terminal: input not yet acted on */
  size_t npend, ppend; /* bytes in pend, and the next one to use */
  int prompt_shown;    /* the prompt line is on the screen */
  int quitting;
  int status;
};

static void in_start(struct shell *sh);
static void in_stop(struct shell *sh);

/* Writes to the terminal through the tty handle; a write that cannot go at
 * once is queued with a copy, after anything queued before it. */
static void on_out_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void term_write(struct shell *sh, const char *s, size_t n) {
  if (!sh->out_tty) {
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return;
  }
  uv_buf_t b = uv_buf_init((char *)s, (unsigned)n);
  int done = uv_try_write((uv_stream_t *)&sh->out, &b, 1);
  if (done == (int)n)
    return;
  if (done < 0)
    done = 0;
  uv_write_t *w = malloc(sizeof *w + n - (size_t)done);
  if (w == NULL)
    return;
  char *copy = (char *)(w + 1);
  memcpy(copy, s + done, n - (size_t)done);
  b = uv_buf_init(copy, (unsigned)(n - (size_t)done));
  if (uv_write(w, (uv_stream_t *)&sh->out, &b, 1, on_out_written) < 0)
    free(w);
}

/* "fsc> " at the top folder, "fsc:/photos/2024> " below it. */
static const char *prompt(const struct shell *sh) {
  static char p[4 * PROMPT_PATH_MAX + 16];
  const char *cwd = sh->app.cwd;
  size_t len = strlen(cwd);
  if (len == 0)
    return PROMPT;
  const char *cut = len > PROMPT_PATH_MAX ? "..." : "/";
  if (len > PROMPT_PATH_MAX) {
    cwd += len - PROMPT_PATH_MAX;
    while (((unsigned char)*cwd & 0xc0) == 0x80) /* a whole character */
      cwd++;
  }
  char esc[4 * PROMPT_PATH_MAX + 1];
  fsc_fmt_escape(esc, sizeof esc, cwd, strlen(cwd));
  snprintf(p, sizeof p, "fsc:%s%s> ", cut, esc);
  return p;
}

static void draw_prompt(struct shell *sh) {
  static char buf[FSC_EDIT_MAX + 64 + 4 * PROMPT_PATH_MAX];
  if (!sh->interactive || sh->running || sh->quitting)
    return;
  int cols = 0, rows = 0;
  if (!sh->out_tty || uv_tty_get_winsize(&sh->out, &cols, &rows) != 0 ||
      cols < 0)
    cols = 0; /* unknown: the line is drawn whole */
  size_t n =
      fsc_edit_render(&sh->ed, prompt(sh), (unsigned)cols, buf, sizeof buf);
  if (n >= sizeof buf)
    n = sizeof buf - 1;
  term_write(sh, buf, n);
  sh->prompt_shown = 1;
}

static void shell_print(struct fsc_app *a, int to_err, const char *line) {
  struct shell *sh = a->data;
  if (to_err && !sh->out_tty) {
    /* Output goes to a pipe or a file: errors stay apart from it. On a
     * terminal, errors and output interleave in order on one screen. */
    fprintf(stderr, "%s\n", line);
    return;
  }
  if (sh->prompt_shown)
    term_write(sh, "\r\x1b[K", 4);
  term_write(sh, line, strlen(line));
  term_write(sh, "\n", 1);
  if (sh->prompt_shown)
    draw_prompt(sh);
}

/* Prints a multi-line text (help) one line at a time. */
static void print_text(struct shell *sh, const char *text) {
  char line[256];
  while (*text) {
    const char *nl = strchr(text, '\n');
    size_t n = nl ? (size_t)(nl - text) : strlen(text);
    if (n >= sizeof line)
      n = sizeof line - 1;
    memcpy(line, text, n);
    line[n] = '\0';
    shell_print(&sh->app, 0, line);
    text += n + (nl != NULL);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  (void)h;
}

static void close_signals(struct shell *sh) {
  uv_signal_t *sigs[] = {&sh->sigint, &sh->sigterm, &sh->sighup};
  for (int i = 0; i < 3; i++)
    if (!uv_is_closing((uv_handle_t *)sigs[i]))
      uv_close((uv_handle_t *)sigs[i], on_handle_closed);
}

static void shell_quit(struct shell *sh, int status) {
  if (sh->quitting)
    return;
  sh->quitting = 1;
  if (status > sh->status)
    sh->status = status;
  if (sh->prompt_shown && sh->interactive)
    term_write(sh, "\n", 1);
  sh->prompt_shown = 0;
  if (sh->app.run != NULL)
    fsc_run_cancel(&sh->app);
  if (sh->raw) {
    uv_tty_reset_mode();
    sh->raw = 0;
  }
  if (sh->in_open) {
    in_stop(sh);
    if (!sh->in_file)
      uv_close((uv_handle_t *)&sh->in, on_handle_closed);
    sh->in_open = 0;
  }
  close_signals(sh);
  /* The command (if any) finishes its cleanup first; on_done closes the
   * connection then. */
  if (sh->app.run == NULL)
    fsc_conn_close(&sh->app.conn);
}

static void run_line(struct shell *sh, const char *text) {
  char err[512];
  snprintf(sh->line, sizeof sh->line, "%s", text);
  int argc = fsc_split_line(sh->line, sh->argv, MAX_WORDS);
  if (argc < 0) {
    shell_print(&sh->app, 1, "fsc: unterminated quote or too many words");
    return;
  }
  if (argc == 0)
    return;
  if (fsc_parse_cmd(argc, sh->argv, 1, &sh->cmd, err, sizeof err) != 0) {
    char msg[600];
    snprintf(msg, sizeof msg, "fsc: %s", err);
    shell_print(&sh->app, 1, msg);
    return;
  }
  if (sh->cmd.help) {
    print_text(sh, fsc_help_text(sh->cmd.kind));
    return;
  }
  switch (sh->cmd.kind) {
  case FSC_CMD_QUIT:
    shell_quit(sh, FSC_EXIT_OK);
    return;
  case FSC_CMD_HELP: {
    enum fsc_cmd_kind k = FSC_CMD_HELP;
    if (sh->cmd.nargs == 1)
      for (int i = FSC_CMD_LS; i <= FSC_CMD_QUIT; i++)
        if (fsc_cmd_name(i) && strcmp(fsc_cmd_name(i), sh->cmd.args[0]) == 0)
          k = i;
    print_text(sh, fsc_help_text(k));
    return;
  }
  case FSC_CMD_PWD: {
    char cwd[FSC_ESC_MAX + 2];
    cwd[0] = '/';
    fsc_fmt_escape(cwd + 1, sizeof cwd - 1, sh->app.cwd, strlen(sh->app.cwd));
    shell_print(&sh->app, 0, cwd);
    return;
  }
  default:
    break;
  }
  sh->running = 1;
  sh->prompt_shown = 0;
  int rc = fsc_command_start(&sh->app, &sh->cmd);
  if (rc != 0)
    sh->running = 0;
}

static void process_pending(struct shell *sh);

static void on_done(struct fsc_app *a, int status) {
  struct shell *sh = a->data;
  sh->running = 0;
  /* A script's caller learns that a command failed (an interactive user
   * has seen it). */
  if (!sh->interactive && status > sh->status)
    sh->status = status;
  if (sh->quitting) {
    fsc_conn_close(&a->conn);
    return;
  }
  /* Lines typed ahead run now, shown after a prompt as if just typed. */
  while (sh->nqueued > 0 && !sh->running && !sh->quitting) {
    char *l = sh->queued[0];
    memmove(sh->queued, sh->queued + 1,
            (size_t)(--sh->nqueued) * sizeof sh->queued[0]);
    if (sh->interactive) {
      term_write(sh, prompt(sh), strlen(prompt(sh)));
      term_write(sh, l, strlen(l));
      term_write(sh, "\n", 1);
    }
    run_line(sh, l);
    free(l);
  }
  if (sh->running || sh->quitting)
    return;
  draw_prompt(sh);
  if (!sh->interactive && sh->in_open) {
    process_pending(sh);
    if (!sh->running && sh->npend == 0 && !sh->quitting)
      in_start(sh);
  }
}

static void on_key(struct shell *sh, unsigned char c) {
  enum fsc_edit_result r = fsc_edit_key(&sh->ed, c);
  switch (r) {
  case FSC_EDIT_NONE:
    return;
  case FSC_EDIT_REDRAW:
    if (!sh->running)
      draw_prompt(sh);
    return;
  case FSC_EDIT_CLEAR:
    if (!sh->running) {
      term_write(sh, "\x1b[H\x1b[2J", 7);
      draw_prompt(sh);
    }
    return;
  case FSC_EDIT_LINE:
    if (sh->running) {
      /* One command at a time: the line waits for this one to end. */
      const char *l = fsc_edit_take(&sh->ed);
      if (sh->nqueued < MAX_QUEUED &&
          (sh->queued[sh->nqueued] = strdup(l)) != NULL)
        sh->nqueued++;
      return;
    }
    if (sh->interactive)
      term_write(sh, "\n", 1);
    sh->prompt_shown = 0;
    run_line(sh, fsc_edit_take(&sh->ed));
    draw_prompt(sh);
    return;
  case FSC_EDIT_INTR:
    if (sh->running) {
      fsc_run_cancel(&sh->app);
      return;
    }
    term_write(sh, "^C\n", 3);
    sh->prompt_shown = 0;
    draw_prompt(sh);
    return;
  case FSC_EDIT_EOF:
    if (!sh->running)
      shell_quit(sh, FSC_EXIT_OK);
    return;
  }
}

static void on_in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char mem[sizeof((struct shell *)0)->pend];
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(mem, sizeof mem);
}

/* Without a terminal, commands come one per line and run one after the
 * other: input waits in pend (and reading pauses) while a command runs. */
static void process_pending(struct shell *sh) {
  while (sh->ppend < sh->npend && !sh->running && !sh->quitting)
    on_key(sh, (unsigned char)sh->pend[sh->ppend++]);
  if (sh->ppend < sh->npend || sh->quitting || !sh->in_open)
    return;
  sh->npend = sh->ppend = 0;
  if (sh->running)
    in_stop(sh);
}

/* nread bytes of input at base, or the end of the input (nread < 0). */
static void on_input(struct shell *sh, ssize_t nread, const char *base) {
  if (nread < 0) {
    /* End of input: a last line without newline still runs. */
    if (!sh->interactive && sh->ed.len > 0 && !sh->running)
      on_key(sh, '\n');
    if (sh->running) {
      in_stop(sh);
      sh->npend = sh->ppend = 0;
      sh->pend[0] = 0x04;
      sh->npend = 1; /* quit once the command is done */
      sh->ed.len = 0;
      return;
    }
    shell_quit(sh, FSC_EXIT_OK);
    return;
  }
  if (!sh->interactive) {
    memcpy(sh->pend, base, (size_t)nread);
    sh->npend = (size_t)nread;
    sh->ppend = 0;
    process_pending(sh);
    if (sh->ppend < sh->npend)
      in_stop(sh);
    return;
  }
  for (ssize_t i = 0; i < nread && !sh->quitting; i++)
    on_key(sh, (unsigned char)base[i]);
}

static void on_in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  if (nread != 0)
    on_input(s->data, nread, buf->base);
}

/* A regular file cannot be polled: it is read on the threadpool, one block
 * at a time while reading is on. */
static void file_read_next(struct shell *sh);

static void on_file_read(uv_fs_t *req) {
  struct shell *sh = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  sh->in_busy = 0;
  if (sh->quitting || !sh->in_open)
    return;
  if (n < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "fsc: cannot read the input: %s",
             uv_strerror((int)n));
    shell_print(&sh->app, 1, msg);
    if (FSC_EXIT_FAIL > sh->status)
      sh->status = FSC_EXIT_FAIL;
  }
  on_input(sh, n > 0 ? n : UV_EOF, sh->in_buf);
  file_read_next(sh);
}

static void file_read_next(struct shell *sh) {
  if (!sh->in_reading || sh->in_busy || sh->quitting || !sh->in_open)
    return;
  uv_buf_t b = uv_buf_init(sh->in_buf, sizeof sh->in_buf);
  sh->in_req.data = sh;
  sh->in_busy = 1;
  int rc = uv_fs_read(sh->app.loop, &sh->in_req, STDIN_FILENO, &b, 1, -1,
                      on_file_read);
  if (rc < 0) {
    sh->in_req.result = rc;
    on_file_read(&sh->in_req);
  }
}

static void in_start(struct shell *sh) {
  if (sh->in_file) {
    sh->in_reading = 1;
    file_read_next(sh);
  } else
    uv_read_start((uv_stream_t *)&sh->in, on_in_alloc, on_in_read);
}

static void in_stop(struct shell *sh) {
  if (sh->in_file)
    sh->in_reading = 0;
  else
    uv_read_stop((uv_stream_t *)&sh->in);
}

static void on_sigint(uv_signal_t *s, int signum) {
  struct shell *sh = s->data;
  if (signum != SIGINT) {
    shell_quit(sh, 128 + signum);
    return;
  }
  if (sh->running)
    fsc_run_cancel(&sh->app);
  else
    shell_quit(sh, FSC_EXIT_INTR);
}

static void sub_msg(struct fsc_req *r, const struct fsp_msg *m) {
  struct shell *sh = r->data;
  if (m->op == FSP_OP_ERROR) {
    shell_print(&sh->app, 1, "fsc: the server does not send events");
    fsc_conn_finish(&sh->app.conn, r);
  }
}

static void sub_lost(struct fsc_req *r, int err) {
  (void)r;
  (void)err;
}

static const struct fsc_req_ops sub_ops = {sub_msg, NULL, sub_lost};

static void on_push(struct fsc_conn *c, const struct fsp_msg *m) {
  struct shell *sh = c->data;
  fsc_app_print_push(&sh->app, m);
}

static void start_input(struct shell *sh) {
  uv_loop_t *loop = sh->app.loop;
  int rc;
  uv_handle_type type = uv_guess_handle(STDIN_FILENO);
  if (type == UV_FILE) {
    rc = 0;
    sh->in_file = 1;
  } else if (type == UV_TTY) {
    rc = uv_tty_init(loop, &sh->in.tty, STDIN_FILENO, 1);
    if (rc == 0 && sh->interactive &&
        uv_tty_set_mode(&sh->in.tty, UV_TTY_MODE_RAW) == 0)
      sh->raw = 1;
  } else {
    rc = uv_pipe_init(loop, &sh->in.pipe, 0);
    if (rc == 0)
      rc = uv_pipe_open(&sh->in.pipe, STDIN_FILENO);
  }
  if (rc < 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "fsc: cannot read the terminal: %s",
             uv_strerror(rc));
    shell_print(&sh->app, 1, msg);
    shell_quit(sh, FSC_EXIT_FAIL);
    return;
  }
  sh->in.tty.data = sh;
  sh->in_open = 1;
  in_start(sh);
}

static void on_ready(struct fsc_conn *c, int status) {
  struct shell *sh = c->data;
  char msg[700];
  if (status < 0) {
    if (status == UV_EACCES)
      snprintf(msg, sizeof msg, "fsc: %s refused to let user %s in: %s",
               sh->app.server, sh->id.user ? sh->id.user : "?",
               fsc_conn_why(c, status));
    else
      snprintf(msg, sizeof msg, "fsc: cannot connect to %s: %s", sh->app.server,
               fsc_conn_why(c, status));
    shell_print(&sh->app, 1, msg);
    sh->status = FSC_EXIT_CONN;
    sh->quitting = 1;
    close_signals(sh);
    return;
  }
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_SUBSCRIBE;
  sh->sub.ops = &sub_ops;
  sh->sub.data = sh;
  fsc_conn_request(c, &sh->sub, &m);
  if (sh->interactive) {
    snprintf(msg, sizeof msg,
             "Connected to %s. Type help for the commands, quit or Ctrl-D "
             "to leave.",
             sh->app.server);
    shell_print(&sh->app, 0, msg);
  }
  start_input(sh);
  draw_prompt(sh);
}

static void on_lost(struct fsc_conn *c, int err) {
  struct shell *sh = c->data;
  char msg[700];
  snprintf(msg, sizeof msg, "fsc: connection to %s lost: %s", sh->app.server,
           fsc_conn_why(c, err));
  shell_print(&sh->app, 1, msg);
  fsc_run_conn_lost(&sh->app, err);
  shell_quit(sh, FSC_EXIT_CONN);
}

static void on_closed(struct fsc_conn *c) {
  struct shell *sh = c->data;
  if (!sh->quitting)
    shell_quit(sh, FSC_EXIT_CONN);
  if (sh->out_tty && !uv_is_closing((uv_handle_t *)&sh->out))
    uv_close((uv_handle_t *)&sh->out, on_handle_closed);
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

int fsc_shell_main(const struct fsc_opts *o) {
  static struct shell sh;
  uv_loop_t *loop = uv_default_loop();
  sh.opts = o;
  sh.app.loop = loop;
  sh.app.server = o->server;
  sh.app.quiet = o->quiet;
  sh.app.shell = 1;
  sh.app.stdout_tty = 0; /* one name per line: columns would fight events */
  sh.app.print = shell_print;
  sh.app.on_done = on_done;
  sh.app.data = &sh;
  sh.app.conn.data = &sh;
  sh.app.conn.on_ready = on_ready;
  sh.app.conn.on_lost = on_lost;
  sh.app.conn.on_push = on_push;
  sh.app.conn.on_closed = on_closed;
  fsc_identity_init(&sh.id, o->user, o->identity);
  sh.app.conn.on_challenge = fsc_login_challenge;
  sh.app.conn.challenge_arg = &sh.id;
  {
    char err[1024];
    int trc = fsc_tls_setup(&sh.app.conn, o, err, sizeof err);
    if (trc != 0) {
      fprintf(stderr, "fsc: %s\n", err);
      return trc;
    }
  }
  sh.interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  fsc_edit_init(&sh.ed);
  if (isatty(STDOUT_FILENO) &&
      uv_tty_init(loop, &sh.out, STDOUT_FILENO, 0) == 0)
    sh.out_tty = 1;
  uv_signal_init(loop, &sh.sigint);
  sh.sigint.data = &sh;
  uv_signal_start(&sh.sigint, on_sigint, SIGINT);
  uv_signal_init(loop, &sh.sigterm);
  sh.sigterm.data = &sh;
  uv_signal_start(&sh.sigterm, on_sigint, SIGTERM);
  uv_signal_init(loop, &sh.sighup);
  sh.sighup.data = &sh;
  uv_signal_start(&sh.sighup, on_sigint, SIGHUP);

  int rc = fsc_conn_open(&sh.app.conn, loop, o->server);
  if (rc < 0) {
    fprintf(stderr, "fsc: cannot connect to %s: %s\n", o->server,
            fsc_strerror(rc));
    sh.status = FSC_EXIT_CONN;
    close_signals(&sh);
    if (sh.out_tty)
      uv_close((uv_handle_t *)&sh.out, on_handle_closed);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (sh.raw)
    uv_tty_reset_mode();
  uv_walk(loop, close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  fsc_tls_release(&sh.app.conn);
  fsc_edit_free(&sh.ed);
  for (int i = 0; i < sh.nqueued; i++)
    free(sh.queued[i]);
  return sh.status;
}
