/* Helpers every command's jobs share: reporting a job's error once,
 * asking the server to stop a request, ending a job as failed, starting a
 * file operation whose failure to start goes down the same path as its
 * failure, and the count line of a recursive transfer. */
#ifndef FSC_JOB_H
#define FSC_JOB_H

#include <stdint.h>
#include <uv.h>

#include "run.h"

/* Reports "fsc: VERB ARG: MESSAGE" for a job of the command named verb, and
 * marks it failed. Only the first error of a job is reported: later ones
 * are its consequences. */
void fsc_job_error(struct fsc_job *j, const char *verb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The job failed or was canceled while the server may still send: sends
 * CANCEL for its request, once (*sent). Frames until the final answer are
 * the caller's to ignore. */
void fsc_job_cancel_request(struct fsc_job *j, int *sent);

/* Ends a job that has nothing left in flight (no request, no file), as
 * failed: canceled, or its request failed or was lost. */
void fsc_job_fail(struct fsc_job *j);

/* rc is what a uv_fs_* call that would complete in cb returned: when it
 * failed to start, cb runs now with the error in req->result, so a file
 * operation fails in one place whether it failed early or late. */
void fsc_fs_started(uv_fs_t *req, int rc, uv_fs_cb cb);

/* put -r and get -r end with "N files, M bytes" (the files moved), and
 * with -c "; K already there" (the files kept as they were). */
void fsc_run_print_count(struct fsc_run *r, uint64_t files, uint64_t bytes,
                         uint64_t same);

#endif /* FSC_JOB_H */
