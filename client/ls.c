/* fsc ls: one LIST (of a folder, or of its whole subtree with -R), its
 * ENTRIES gathered, sorted and printed once the server says OK (as lines,
 * columns on a terminal, long lines, or JSON). */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "alloc.h"
#include "cmds.h"
#include "fmt.h"
#include "job.h"
#include "rpath.h"

/* The listing's first allocation; it doubles from there. */
#define LS_FIRST_CAP 256
/* The terminal width assumed when it cannot be read. */
#define LS_TERM_WIDTH 80

/* The names received so far, and the folder listed. */
struct ls_state {
  char path[FSP_PATH_MAX + 1];
  struct fsp_entry *entries; /* names owned (fsc_malloc'd ptr) */
  size_t n, cap;
};

static int entry_cmp(const void *x, const void *y) {
  const struct fsp_entry *a = x, *b = y;
  size_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
  int c = memcmp(a->name.ptr, b->name.ptr, n);
  if (c != 0)
    return c;
  return (a->name.len > b->name.len) - (a->name.len < b->name.len);
}

static void emit_line(void *arg, const char *line) {
  struct fsc_app *a = arg;
  a->print(a, 0, line);
}

/* On a terminal: columns, filled top to bottom, like ls. */
static void ls_print_columns(struct fsc_app *a, const struct ls_state *s) {
  char line[FSC_ESC_MAX + 128];
  struct winsize ws;
  size_t term = LS_TERM_WIDTH;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    term = ws.ws_col;
  char **names = fsc_calloc(s->n, sizeof *names);
  if (names == NULL)
    return;
  for (size_t i = 0; i < s->n; i++) {
    fsc_fmt_ls_line(line, sizeof line, &s->entries[i], 0, 0, 0);
    names[i] = fsc_strdup(line);
  }
  fsc_fmt_columns((const char *const *)names, s->n, term, emit_line, a);
  for (size_t i = 0; i < s->n; i++)
    fsc_free(names[i]);
  fsc_free(names);
}

static void ls_print(struct fsc_run *r) {
  struct fsc_app *a = r->app;
  struct ls_state *s = r->state;
  char line[FSC_ESC_MAX + 128];
  if (s->n > 1)
    qsort(s->entries, s->n, sizeof s->entries[0], entry_cmp);
  /* A tree of paths reads best one per line, as ls -R's own lines. */
  int columns = a->stdout_tty && !r->cmd.recursive;
  if (r->cmd.json) {
    for (size_t i = 0; i < s->n; i++) {
      fsc_fmt_ls_json(line, sizeof line, &s->entries[i]);
      a->print(a, 0, line);
    }
    return;
  }
  if (r->cmd.long_fmt) {
    int width = 1;
    for (size_t i = 0; i < s->n; i++) {
      char sz[32];
      int w =
          (int)fsc_fmt_size(sz, sizeof sz, s->entries[i].size, r->cmd.human);
      if (w > width)
        width = w;
    }
    for (size_t i = 0; i < s->n; i++) {
      fsc_fmt_ls_line(line, sizeof line, &s->entries[i], 1, r->cmd.human,
                      width);
      a->print(a, 0, line);
    }
    return;
  }
  if (!columns || s->n == 0) {
    for (size_t i = 0; i < s->n; i++) {
      fsc_fmt_ls_line(line, sizeof line, &s->entries[i], 0, 0, 0);
      a->print(a, 0, line);
    }
    return;
  }
  ls_print_columns(a, s);
}

/* Keeps the entries of one ENTRIES frame. Returns 0 or UV_ENOMEM. */
static int ls_add(struct ls_state *s, const struct fsp_msg *m) {
  size_t pos = 0;
  struct fsp_entry e;
  while (fsp_entries_next(m, &pos, &e) == 1) {
    if (s->n == s->cap) {
      size_t nc = s->cap ? 2 * s->cap : LS_FIRST_CAP;
      struct fsp_entry *ne = fsc_realloc(s->entries, nc * sizeof *ne);
      if (ne == NULL)
        return UV_ENOMEM;
      s->entries = ne;
      s->cap = nc;
    }
    char *name = fsc_malloc(e.name.len + 1);
    if (name == NULL)
      return UV_ENOMEM;
    memcpy(name, e.name.ptr, e.name.len);
    name[e.name.len] = '\0';
    e.name.ptr = name;
    s->entries[s->n++] = e;
  }
  return 0;
}

static void ls_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct fsc_job *j = req->data;
  struct fsc_run *r = j->run;
  char msg[FSC_MSG_MAX];
  switch (m->op) {
  case FSP_OP_ENTRIES:
    if (!j->failed && ls_add(r->state, m) < 0) {
      fsc_app_errorf(r->app, "ls: %s", fsc_strerror(UV_ENOMEM));
      j->failed = 1;
    }
    return;
  case FSP_OP_OK:
    if (!j->failed)
      ls_print(r);
    break;
  case FSP_OP_ERROR:
    fsc_server_msg(msg, sizeof msg, m);
    if (r->cmd.nargs > 0) {
      char path[FSC_ESC_MAX];
      fsc_app_errorf(r->app, "ls %s: %s",
                     fsc_esc(path, sizeof path, r->cmd.args[0]), msg);
    } else
      fsc_app_errorf(r->app, "ls: %s", msg);
    j->failed = 1;
    break;
  default:
    return;
  }
  j->req_done = 1;
  fsc_run_job_finished(j);
}

static void ls_lost(struct fsc_req *req, int err) {
  (void)err;
  fsc_job_fail(req->data);
}

static void ls_destroy(struct fsc_job *j) {
  fsc_free(j);
}

static const struct fsc_req_ops ls_req_ops = {ls_msg, NULL, ls_lost};
static const struct fsc_job_ops ls_job_ops = {fsc_job_fail, NULL, ls_destroy};

static struct fsc_job *ls_job_new(void) {
  struct fsc_job *j = fsc_calloc(1, sizeof *j);
  if (j == NULL)
    return NULL;
  j->ops = &ls_job_ops;
  j->req.ops = &ls_req_ops;
  j->req.data = j;
  return j;
}

static void ls_job_start(struct fsc_job *j) {
  struct fsc_run *r = j->run;
  struct ls_state *s = r->state;
  struct fsp_msg m;
  fsc_rpath_msg(&m, FSP_OP_LIST, r->app->conn.version,
                r->cmd.recursive ? FSP_LIST_RECURSIVE : 0, s->path);
  int rc = fsc_conn_request(&r->app->conn, &j->req, &m);
  if (rc < 0) {
    fsc_app_errorf(r->app, "ls: %s", fsc_strerror(rc));
    fsc_job_fail(j);
  }
}

static int ls_begin(struct fsc_run *r) {
  struct fsc_app *a = r->app;
  struct ls_state *s = fsc_calloc(1, sizeof *s);
  if (s == NULL)
    return UV_ENOMEM;
  const char *arg = r->cmd.nargs > 0 ? r->cmd.args[0] : "";
  /* A flat server has one folder: a folder named is an error, said so. */
  int rc = 0;
  if (!fsc_conn_tree(&a->conn) && arg[0] != '\0')
    rc = fsc_app_need_tree(a, "ls");
  else if (fsc_conn_tree(&a->conn) &&
           fsc_app_rpath(a, arg, s->path, sizeof s->path, 1) < 0) {
    char e[FSC_ESC_MAX];
    fsc_app_errorf(a, "ls %s: %s", fsc_esc(e, sizeof e, arg),
                   fsp_strerror(FSP_EBADNAME));
    rc = FSC_EXIT_FAIL;
  }
  if (rc != 0) {
    fsc_free(s);
    return rc;
  }
  r->state = s;
  return 0;
}

static void ls_free(struct fsc_run *r) {
  struct ls_state *s = r->state;
  for (size_t i = 0; i < s->n; i++)
    fsc_free((void *)s->entries[i].name.ptr);
  fsc_free(s->entries);
  fsc_free(s);
}

const struct fsc_run_ops fsc_ls_ops = {
    .parallel = FSC_SMALL_PARALLEL,
    .begin = ls_begin,
    .job_new = ls_job_new,
    .job_start = ls_job_start,
    .free = ls_free,
};
