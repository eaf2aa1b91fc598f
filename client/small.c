/* fsc size, rm, mkdir, mv and announce: one request, one answer. size, rm
 * and mkdir send a STAT, DELETE or MKDIR per PATH (rm -r prints the
 * entries the server skipped); mv sends one RENAME; announce sends one
 * NOTICE with its words. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cmds.h"
#include "fmt.h"
#include "job.h"
#include "rpath.h"

struct small_job {
  struct fsc_job j;
  uint64_t size; /* size: the answer */
  int folder;    /* size: the answer is a folder */
  int ok;
  char *path; /* cd: the folder to move to (owned) */
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
  } else if (m->op == FSP_OP_SKIPPED) {
    /* rm -r: an entry the server could not remove; the request goes on and
     * ends with NOT_EMPTY, which makes the status 1. */
    char path[FSC_ESC_MAX];
    fsc_fmt_escape(path, sizeof path, m->u.skipped.path.ptr,
                   m->u.skipped.path.len);
    fsc_app_errorf(r->app, "rm %s: skipped %s: %s",
                   fsc_esc(name, sizeof name, s->j.arg), path,
                   fsp_status_str(m->u.skipped.status));
    return;
  } else if (m->op == FSP_OP_INFO && r->cmd.kind == FSC_CMD_CD) {
    if (m->u.entry.type == FSP_TYPE_FOLDER) {
      snprintf(r->app->cwd, sizeof r->app->cwd, "%s", s->path);
      s->ok = 1;
    } else {
      fsc_app_errorf(r->app, "cd %s: %s", fsc_esc(name, sizeof name, s->j.arg),
                     fsp_status_str(FSP_ST_NOT_FOLDER));
      s->j.failed = 1;
    }
  } else if (m->op == FSP_OP_INFO && r->cmd.kind == FSC_CMD_SIZE) {
    s->size = m->u.entry.size;
    s->folder = m->u.entry.type == FSP_TYPE_FOLDER;
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
  fsc_free(((struct small_job *)j)->path);
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

/* The server path of operand arg, or NULL after saying why. */
static const char *job_path(struct fsc_job *j, const char *arg, char *buf,
                            size_t cap) {
  struct fsc_run *r = j->run;
  char ename[FSC_ESC_MAX];
  if (fsc_app_rpath(r->app, arg, buf, cap, 0) == 0)
    return buf;
  fsc_app_errorf(r->app, "%s %s: %s", fsc_cmd_name(r->cmd.kind),
                 fsc_esc(ename, sizeof ename, arg), fsp_strerror(FSP_EBADNAME));
  return NULL;
}

/* size, rm and mkdir: a STAT, DELETE or MKDIR of the job's PATH. */
static void name_job_start(struct fsc_job *j) {
  struct fsc_run *r = j->run;
  struct fsp_msg m;
  char path[FSP_PATH_MAX + 1];
  uint8_t op = r->cmd.kind == FSC_CMD_SIZE ? FSP_OP_STAT
               : r->cmd.kind == FSC_CMD_RM ? FSP_OP_DELETE
                                           : FSP_OP_MKDIR;
  uint8_t flags = 0;
  if (r->cmd.recursive)
    flags = FSP_DELETE_RECURSIVE;
  if (r->cmd.parents)
    flags = FSP_MKDIR_PARENTS;
  if (job_path(j, j->arg, path, sizeof path) == NULL) {
    fsc_job_fail(j);
    return;
  }
  fsc_rpath_msg(&m, op, r->app->conn.version, flags, path);
  small_send(j, &m);
}

/* mv: one RENAME of SRC to DST. */
static void mv_job_start(struct fsc_job *j) {
  struct fsc_run *r = j->run;
  char from[FSP_PATH_MAX + 1], to[FSP_PATH_MAX + 1];
  j->arg = r->cmd.args[0];
  if (job_path(j, r->cmd.args[0], from, sizeof from) == NULL ||
      job_path(j, r->cmd.args[1], to, sizeof to) == NULL) {
    fsc_job_fail(j);
    return;
  }
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_RENAME;
  m.u.rename.flags = r->cmd.no_clobber ? FSP_RENAME_NO_REPLACE : 0;
  m.u.rename.from.ptr = from;
  m.u.rename.from.len = strlen(from);
  m.u.rename.to.ptr = to;
  m.u.rename.to.len = strlen(to);
  small_send(j, &m);
}

/* cd (in the shell): a STAT says whether the path is a folder, and only
 * then does the shell's current folder move there. */
static void cd_job_start(struct fsc_job *j) {
  struct fsc_run *r = j->run;
  struct small_job *s = (struct small_job *)j;
  char path[FSP_PATH_MAX + 1];
  j->arg = r->cmd.nargs > 0 ? r->cmd.args[0] : "/";
  if (fsc_app_rpath(r->app, j->arg, path, sizeof path, 1) != 0) {
    job_path(j, j->arg, path, sizeof path); /* says why */
    fsc_job_fail(j);
    return;
  }
  if (path[0] == '\0') { /* the top folder is always there */
    r->app->cwd[0] = '\0';
    j->req_done = 1;
    fsc_run_job_finished(j);
    return;
  }
  if ((s->path = fsc_strdup(path)) == NULL) {
    fsc_app_errorf(r->app, "cd: %s", fsc_strerror(UV_ENOMEM));
    fsc_job_fail(j);
    return;
  }
  struct fsp_msg m;
  fsc_rpath_msg(&m, FSP_OP_STAT, r->app->conn.version, 0, path);
  small_send(j, &m);
}

/* mkdir, mv, cd and rm -r need a server with folders: anything else is
 * said once, before a request is sent. */
static int tree_begin(struct fsc_run *r) {
  if (r->cmd.kind == FSC_CMD_RM && !r->cmd.recursive)
    return 0;
  return fsc_app_need_tree(r->app, fsc_cmd_name(r->cmd.kind));
}

/* size prints its answers in the order of the NAMEs, once all are in. */
static void size_end(struct fsc_run *r) {
  char line[FSC_ESC_MAX + 64], sz[32], name[FSC_ESC_MAX];
  for (int i = 0; i < r->njobs; i++) {
    struct fsc_job *j = fsc_run_job(r, i, &small_job_ops);
    struct small_job *s = (struct small_job *)j;
    if (s == NULL || !s->ok)
      continue;
    if (s->folder)
      snprintf(sz, sizeof sz, "folder");
    else
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
    .begin = tree_begin,
    .job_new = small_job_new,
    .job_start = name_job_start,
};

const struct fsc_run_ops fsc_mkdir_ops = {
    /* One at a time, in the order given: `mkdir a a/b` works. */
    .parallel = 1,
    .per_arg = 1,
    .begin = tree_begin,
    .job_new = small_job_new,
    .job_start = name_job_start,
};

const struct fsc_run_ops fsc_cd_ops = {
    .parallel = 1,
    .begin = tree_begin,
    .job_new = small_job_new,
    .job_start = cd_job_start,
};

const struct fsc_run_ops fsc_mv_ops = {
    .parallel = 1,
    .begin = tree_begin,
    .job_new = small_job_new,
    .job_start = mv_job_start,
};

const struct fsc_run_ops fsc_announce_ops = {
    .parallel = FSC_SMALL_PARALLEL,
    .job_new = small_job_new,
    .job_start = announce_job_start,
};
