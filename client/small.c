/* fsc size, rm and announce: one request, one answer. size and rm send a
 * STAT or DELETE per NAME; announce sends one NOTICE with its words. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cmds.h"
#include "fmt.h"
#include "job.h"

struct small_job {
  struct fsc_job j;
  uint64_t size; /* size: the answer */
  int ok;
};

static void small_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct small_job *s = req->data;
  struct fsc_run *r = s->j.run;
  char msg[FSC_MSG_MAX], name[FSC_ESC_MAX];
  if (m->op == FSP_OP_ERROR) {
    fsc_server_msg(msg, sizeof msg, m);
    if (r->cmd.kind == FSC_CMD_ANNOUNCE)
      fsc_app_errorf(r->app, "announce: %s", msg);
    else
      fsc_app_errorf(r->app, "%s %s: %s", fsc_cmd_name(r->cmd.kind),
                     fsc_esc(name, sizeof name, s->j.arg), msg);
    s->j.failed = 1;
  } else if (m->op == FSP_OP_INFO && r->cmd.kind == FSC_CMD_SIZE) {
    s->size = m->u.entry.size;
    s->ok = 1;
  } else if (m->op == FSP_OP_OK && r->cmd.kind != FSC_CMD_SIZE) {
    s->ok = 1;
  } else
    return;
  s->j.req_done = 1;
  fsc_run_job_finished(&s->j);
}

static void small_lost(struct fsc_req *req, int err) {
  (void)err;
  fsc_job_fail(req->data);
}

static void small_destroy(struct fsc_job *j) {
  fsc_free(j);
}

static const struct fsc_req_ops small_req_ops = {small_msg, NULL, small_lost};
static const struct fsc_job_ops small_job_ops = {fsc_job_fail, NULL,
                                                 small_destroy};

static struct fsc_job *small_job_new(void) {
  struct small_job *s = fsc_calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->j.ops = &small_job_ops;
  s->j.req.ops = &small_req_ops;
  s->j.req.data = s;
  return &s->j;
}

/* Sends the job's request, or ends it as failed. */
static void small_send(struct fsc_job *j, struct fsp_msg *m) {
  struct fsc_run *r = j->run;
  int rc = fsc_conn_request(&r->app->conn, &j->req, m);
  if (rc < 0) {
    fsc_app_errorf(r->app, "%s: %s", fsc_cmd_name(r->cmd.kind),
                   fsc_strerror(rc));
    fsc_job_fail(j);
  }
}

/* size and rm: a STAT or DELETE of the job's NAME. */
static void name_job_start(struct fsc_job *j) {
  struct fsc_run *r = j->run;
  struct fsp_msg m;
  char ename[FSC_ESC_MAX];
  memset(&m, 0, sizeof m);
  m.op = r->cmd.kind == FSC_CMD_SIZE ? FSP_OP_STAT : FSP_OP_DELETE;
  m.u.name.ptr = j->arg;
  m.u.name.len = strlen(j->arg);
  if (fsp_name_check(j->arg, m.u.name.len) != 0) {
    fsc_app_errorf(r->app, "%s %s: %s", fsc_cmd_name(r->cmd.kind),
                   fsc_esc(ename, sizeof ename, j->arg),
                   fsp_strerror(FSP_EBADNAME));
    fsc_job_fail(j);
    return;
  }
  small_send(j, &m);
}

/* size prints its answers in the order of the NAMEs, once all are in. */
static void size_end(struct fsc_run *r) {
  char line[FSC_ESC_MAX + 64], sz[32], name[FSC_ESC_MAX];
  for (int i = 0; i < r->njobs; i++) {
    struct fsc_job *j = fsc_run_job(r, i, &small_job_ops);
    struct small_job *s = (struct small_job *)j;
    if (s == NULL || !s->ok)
      continue;
    fsc_fmt_size(sz, sizeof sz, s->size, r->cmd.human);
    if (r->cmd.nargs == 1)
      snprintf(line, sizeof line, "%s", sz);
    else
      snprintf(line, sizeof line, "%s\t%s", sz,
               fsc_esc(name, sizeof name, s->j.arg));
    r->app->print(r->app, 0, line);
  }
}

/* announce: one NOTICE of the words joined with spaces, as echo does. */
static void announce_job_start(struct fsc_job *j) {
  struct fsc_run *r = j->run;
  char text[FSP_NOTICE_MAX + 2];
  size_t len = 0;
  for (int i = 0; i < r->cmd.nargs; i++) {
    size_t n = strlen(r->cmd.args[i]);
    if (len + n + (i > 0) > FSP_NOTICE_MAX) {
      fsc_app_errorf(r->app, "announce: text longer than %u bytes",
                     FSP_NOTICE_MAX);
      fsc_job_fail(j);
      return;
    }
    if (i > 0)
      text[len++] = ' ';
    memcpy(text + len, r->cmd.args[i], n);
    len += n;
  }
  if (len == 0 || fsp_utf8_check(text, len) != 0) {
    fsc_app_errorf(r->app, "announce: %s",
                   len == 0 ? "empty text" : fsp_strerror(FSP_EUTF8));
    fsc_job_fail(j);
    return;
  }
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_NOTICE;
  m.u.text.ptr = text;
  m.u.text.len = len;
  small_send(j, &m);
}

const struct fsc_run_ops fsc_size_ops = {
    .parallel = FSC_SMALL_PARALLEL,
    .per_arg = 1,
    .job_new = small_job_new,
    .job_start = name_job_start,
    .end = size_end,
};

const struct fsc_run_ops fsc_rm_ops = {
    .parallel = FSC_SMALL_PARALLEL,
    .per_arg = 1,
    .job_new = small_job_new,
    .job_start = name_job_start,
};

const struct fsc_run_ops fsc_announce_ops = {
    .parallel = FSC_SMALL_PARALLEL,
    .job_new = small_job_new,
    .job_start = announce_job_start,
};
