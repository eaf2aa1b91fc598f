/* The session's side of the host's completions: each turns the outcome of
 * a file operation into the request's frames. See session.h. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "session.h"
#include "session_int.h"

/* ------------------------------------------------------------------------ */
/* Completions from the host                                                 */

/* Clamps a range (see session.h). */
int fsd_range_clamp(uint64_t file_size, uint64_t offset, uint64_t length,
                    uint64_t *out_len) {
  if (offset > file_size)
    return FSP_ST_RANGE;
  *out_len = length < file_size - offset ? length : file_size - offset;
  return 0;
}

/* GET: file open (see session.h). */
int fsd_session_get_begin(struct fsd_session *s, struct fsd_req *r,
                          uint64_t file_size, int64_t mtime_ns, uint64_t *off,
                          uint64_t *len) {
  struct fsp_msg m;

  if (fsd_range_clamp(file_size, r->offset, r->length, len) != 0) {
    fsd_session_fail(s, r, FSP_ST_RANGE, NULL);
    return FSP_ST_RANGE;
  }
  *off = r->offset;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_BEGIN;
  m.id = r->id;
  m.u.begin.file_size = file_size;
  m.u.begin.mtime_ns = mtime_ns;
  m.u.begin.offset = r->offset;
  m.u.begin.length = *len;
  fsd__send_msg(s, &m);
  return 0;
}

/* GET: done (see session.h). */
void fsd_session_get_end(struct fsd_session *s, struct fsd_req *r,
                         uint64_t length, uint64_t hash) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_END;
  m.id = r->id;
  m.u.end.size = length;
  m.u.end.hash = hash;
  fsd__send_msg(s, &m);
  r->done_bytes = length;
  fsd__end_req(s, r, 0);
}

/* HASH: done (see session.h). */
void fsd_session_hash_done(struct fsd_session *s, struct fsd_req *r,
                           uint64_t offset, uint64_t length, uint64_t hash) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_DIGEST;
  m.id = r->id;
  m.u.digest.offset = offset;
  m.u.digest.length = length;
  m.u.digest.hash = hash;
  fsd__send_msg(s, &m);
  r->done_bytes = length;
  fsd__end_req(s, r, 0);
}

/* PUT: temp ready (see session.h). */
void fsd_session_put_ready(struct fsd_session *s, struct fsd_req *r) {
  r->state = FSD_REQ_RECEIVING;
  fsd__send_empty(s, FSP_OP_READY, r->id);
}

/* PUT: committed (see session.h). */
void fsd_session_put_done(struct fsd_session *s, struct fsd_req *r,
                          const struct fsd_stamp *st) {
  if (!r->elsewhere)
    fsd_ctx_put(s->ctx, r->name, r->name_len, st);
  fsd_session_put_info(s, r, st);
}

/* PUT: INFO (see session.h). */
void fsd_session_put_info(struct fsd_session *s, struct fsd_req *r,
                          const struct fsd_stamp *st) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_INFO;
  m.id = r->id;
  m.u.entry.size = st->size;
  m.u.entry.mtime_ns = st->mtime_ns;
  m.u.entry.type = FSP_TYPE_FILE;
  fsd__send_msg(s, &m);
  r->done_bytes = st->size;
  fsd__end_req(s, r, 0);
}

/* DELETE: done (see session.h). */
void fsd_session_delete_done(struct fsd_session *s, struct fsd_req *r,
                             int64_t now_ns) {
  fsd_ctx_update(s->ctx, r->name, r->name_len, 0, 0, now_ns);
  fsd__send_empty(s, FSP_OP_OK, r->id);
  fsd__end_req(s, r, 0);
}

/* MKDIR, RENAME, DELETE of a folder: done (see session.h). */
void fsd_session_ok(struct fsd_session *s, struct fsd_req *r) {
  fsd__send_empty(s, FSP_OP_OK, r->id);
  fsd__end_req(s, r, 0);
}

/* DELETE RECURSIVE: an entry stayed (see session.h). */
void fsd_session_skipped(struct fsd_session *s, struct fsd_req *r,
                         uint16_t status, const char *path, size_t len) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_SKIPPED;
  m.id = r->id;
  m.u.skipped.status = status;
  m.u.skipped.path.ptr = path;
  m.u.skipped.path.len = len;
  fsd__send_msg(s, &m);
}

/* Ends a request with an error (see session.h). */
void fsd_session_fail(struct fsd_session *s, struct fsd_req *r, uint16_t status,
                      const char *msg) {
  int drain = r->state == FSD_REQ_RECEIVING;

  fsd__send_error(s, r->id, status, msg, r->name, r->name_len);
  r->done_status = status;
  fsd__end_req(s, r, drain);
}

/* The host gives up on a request (see session.h). */
void fsd_session_failing(struct fsd_session *s, struct fsd_req *r,
                         uint16_t status, const char *msg) {
  if (r->state == FSD_REQ_ABORTING)
    return;
  r->drain_after = r->state == FSD_REQ_RECEIVING;
  r->fail_status = status;
  r->fail_msg = msg;
  r->state = FSD_REQ_ABORTING;
}

/* An abort completed (see session.h). */
void fsd_session_aborted(struct fsd_session *s, struct fsd_req *r) {
  fsd__send_error(s, r->id, r->fail_status, r->fail_msg, r->name, r->name_len);
  r->done_status = r->fail_status;
  fsd__end_req(s, r, r->drain_after);
}
