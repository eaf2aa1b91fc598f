/* Helpers shared by the command's jobs. See job.h. */
#include "job.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fmt.h"

/* The reason part of a job's error line; the line itself is cut at
 * ERROR_LINE_MAX by fsc_app_errorf. */
#define JOB_MSG_MAX 768

void fsc_job_error(struct fsc_job *j, const char *verb, const char *fmt, ...) {
  char msg[JOB_MSG_MAX], name[FSC_ESC_MAX];
  va_list ap;
  if (j->failed)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* The message may hold local paths made of server names (get -r):
   * escape it whole. Escaping is idempotent, so the server's words, which
   * come escaped already, are not changed. */
  char esc[JOB_MSG_MAX * 4];
  fsc_fmt_escape(esc, sizeof esc, msg, strlen(msg));
  fsc_app_errorf(j->run->app, "%s %s: %s", verb,
                 fsc_esc(name, sizeof name, j->arg), esc);
  j->failed = 1;
}

void fsc_job_cancel_request(struct fsc_job *j, int *sent) {
  if (j->req_done || *sent || !j->req.registered)
    return;
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_CANCEL;
  m.id = j->req.id;
  fsc_conn_send(&j->run->app->conn, &m);
  *sent = 1;
}

void fsc_job_fail(struct fsc_job *j) {
  j->failed = 1;
  j->req_done = 1;
  fsc_run_job_finished(j);
}

void fsc_fs_started(uv_fs_t *req, int rc, uv_fs_cb cb) {
  if (rc < 0) {
    req->result = rc;
    cb(req);
  }
}

/* The count line of a recursive transfer; see job.h. */
void fsc_run_print_count(struct fsc_run *r, uint64_t files, uint64_t bytes,
                         uint64_t same) {
  char line[128];
  int n = snprintf(line, sizeof line, "%" PRIu64 " files, %" PRIu64 " bytes",
                   files, bytes);
  if (r->cmd.resume && n > 0 && (size_t)n < sizeof line)
    snprintf(line + n, sizeof line - (size_t)n, "; %" PRIu64 " already there",
             same);
  r->app->print(r->app, 0, line);
}
