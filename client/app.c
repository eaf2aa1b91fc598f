/* fsc's program-wide services: output, error text, the progress bar. See
 * app.h. */
#include "app.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "fmt.h"
#include "rpath.h"
#include "xfer.h"

/* How often the progress bar is redrawn: often enough to look alive,
 * seldom enough to cost nothing. */
#define PROGRESS_MS 200
/* Before this much time has passed the rate is mostly noise: none shown. */
#define PROGRESS_RATE_MIN_MS 200
/* The terminal width assumed when it cannot be read, and the narrowest
 * one the bar adapts to. */
#define TERM_WIDTH_DEFAULT 80
#define TERM_WIDTH_MIN 20
/* An error line: "fsc: ", a command, an escaped name and the reason. */
#define ERROR_LINE_MAX 1024

/* FSP_E* codes live in [-599, -500] (fsproto/error.h). */
#define FSP_ERR_FIRST (-500)
#define FSP_ERR_LAST (-599)

/* The process's umask, read once: new downloads get 0666 & ~umask. */
static mode_t fsc_umask = 022;

void fsc_app_init_umask(void) {
  fsc_umask = umask(022);
  umask(fsc_umask);
}

mode_t fsc_app_umask(void) {
  return fsc_umask;
}

const char *fsc_strerror(int err) {
  const char *s = fsc_xfer_strerror(err);
  if (s != NULL)
    return s;
  if (err <= FSP_ERR_FIRST && err >= FSP_ERR_LAST)
    return fsp_strerror(err);
  return uv_strerror(err);
}

const char *fsc_conn_why(const struct fsc_conn *c, int err) {
  return c->msg[0] ? c->msg : fsc_strerror(err);
}

void fsc_app_clear_progress(struct fsc_app *a) {
  if (a->progress_shown) {
    fputs("\r\x1b[K", stderr);
    fflush(stderr);
    a->progress_shown = 0;
  }
}

void fsc_app_errorf(struct fsc_app *a, const char *fmt, ...) {
  char line[ERROR_LINE_MAX];
  va_list ap;
  int n = snprintf(line, sizeof line, "fsc: ");
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  fsc_app_clear_progress(a);
  a->print(a, 1, line);
}

void fsc_app_print_push(struct fsc_app *a, const struct fsp_msg *m) {
  /* Each byte of the text may be escaped to 6 (\u00NN in JSON); a rename
   * carries two paths. */
  char line[12 * FSP_PATH_MAX + 128];
  if (fsc_fmt_push(line, sizeof line, m, a->push_json) > 0)
    a->print(a, 0, line);
}

int fsc_app_rpath(struct fsc_app *a, const char *arg, char *out, size_t cap,
                  int folder_ok) {
  unsigned v = a->conn.version;
  if (v >= FSP_TREE_VERSION) {
    if (fsc_rpath_resolve(out, cap, a->cwd, arg) < 0)
      return FSP_EBADNAME;
  } else {
    size_t n = strlen(arg);
    if (n >= cap)
      return FSP_EBADNAME;
    memcpy(out, arg, n + 1);
  }
  return fsc_rpath_check(v, out, folder_ok);
}

int fsc_app_need_tree(struct fsc_app *a, const char *cmd) {
  if (fsc_conn_tree(&a->conn))
    return 0;
  fsc_app_errorf(a, "%s: server does not serve folders (protocol version %u)",
                 cmd, a->conn.version);
  return FSC_EXIT_FAIL;
}

const char *fsc_esc(char *buf, size_t cap, const char *s) {
  fsc_fmt_escape(buf, cap, s, strlen(s));
  return buf;
}

void fsc_server_msg(char *buf, size_t cap, const struct fsp_msg *m) {
  if (m->u.error.text.len > 0)
    fsc_fmt_escape(buf, cap, m->u.error.text.ptr, m->u.error.text.len);
  else
    snprintf(buf, cap, "%s", fsp_status_str(m->u.error.status));
}

/* --- Progress --- */

static void progress_draw(struct fsc_progress *p) {
  struct fsc_app *a = p->app;
  struct winsize ws;
  int width = TERM_WIDTH_DEFAULT;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > TERM_WIDTH_MIN)
    width = ws.ws_col - 1;
  uint64_t ms = uv_now(a->loop) - p->t0;
  double rate =
      ms >= PROGRESS_RATE_MIN_MS ? (double)p->done * 1000.0 / (double)ms : 0;
  char line[512];
  fsc_fmt_progress(line, sizeof line, width, p->label, p->done,
                   p->sizes_known == p->files ? p->total : 0, rate);
  fprintf(stderr, "\r%s\x1b[K", line);
  fflush(stderr);
  a->progress_shown = 1;
}

static void on_progress_timer(uv_timer_t *t) {
  progress_draw(t->data);
}

static void on_timer_closed(uv_handle_t *h) {
  fsc_free(h);
}

void fsc_progress_start(struct fsc_progress *p, struct fsc_app *a, int files,
                        const char *name, size_t len) {
  memset(p, 0, sizeof *p);
  p->app = a;
  p->files = files;
  p->t0 = uv_now(a->loop);
  if (files == 1)
    fsc_fmt_escape(p->label, sizeof p->label, name, len);
  else
    snprintf(p->label, sizeof p->label, "%d files", files);
  if (!a->progress || a->shell)
    return;
  /* Without memory for the timer there is no bar; the transfer goes on. */
  p->timer = fsc_malloc(sizeof *p->timer);
  if (p->timer == NULL)
    return;
  uv_timer_init(a->loop, p->timer);
  p->timer->data = p;
  uv_timer_start(p->timer, on_progress_timer, PROGRESS_MS, PROGRESS_MS);
}

void fsc_progress_stop(struct fsc_progress *p, int final) {
  if (p->timer == NULL)
    return;
  if (final)
    progress_draw(p);
  uv_timer_stop(p->timer);
  uv_close((uv_handle_t *)p->timer, on_timer_closed);
  p->timer = NULL;
}
