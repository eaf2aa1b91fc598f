/* The session's host operations; see host.h. */
#include "host.h"

#include <time.h>

#include "alog.h"
#include "authsrv.h"
#include "get.h"
#include "put.h"
#include "treeop.h"

/* What the host does for one kind of file request. */
struct kind_ops {
  /* Starts r's file work; returns 0 or a negative UV_E* code. */
  int (*start)(struct fsd_op *op);
  /* Stops it as soon as possible; NULL when it always runs to its end. */
  void (*abort)(struct fsd_op *op);
};

/* HASH's worker sees the flag between chunks. */
static void hash_abort(struct fsd_op *op) {
  __atomic_store_n(&op->aborted, 1, __ATOMIC_RELAXED);
}

/* The kinds the session hands to the host, by opcode. A DELETE runs to
 * its end, so that the register follows the disk. */
static const struct kind_ops kinds[UINT8_MAX + 1] = {
    [FSP_OP_GET] = {fsd_get_start, fsd_get_abort},
    [FSP_OP_HASH] = {fsd_hash_start, hash_abort},
    [FSP_OP_DELETE] = {fsd_delete_start, NULL},
    [FSP_OP_PUT] = {fsd_put_start, fsd_put_abort},
    [FSP_OP_MKDIR] = {fsd_treeop_start, NULL},
    [FSP_OP_RENAME] = {fsd_treeop_start, NULL},
};

/* A DELETE of a folder runs to its end too, through the tree's job. */
static const struct kind_ops tree_delete = {fsd_treeop_start, NULL};

static const struct kind_ops *kind_of(const struct fsd_req *r) {
  return r->tree_op ? &tree_delete : &kinds[r->opcode];
}

static int host_send(void *host, const void *frame, size_t len) {
  return fsd_conn_send(host, frame, len);
}

static size_t host_backlog(void *host) {
  return fsd_conn_backlog(host);
}

static void host_close(void *host) {
  fsd_conn_close(host);
}

static void host_start(void *host, struct fsd_req *r) {
  struct fsd_conn *c = host;
  const struct kind_ops *k = kind_of(r);
  struct fsd_op *op = k->start != NULL ? fsd_op_new(c->net->host, c, r) : NULL;

  if (op == NULL) {
    fsd_session_fail(&c->sess, r, FSP_ST_BUSY, "out of memory");
    return;
  }
  if (k->start(op) != 0) {
    r->op = NULL;
    fsd_op_free(op);
    fsd_session_fail(&c->sess, r, FSP_ST_IO, NULL);
  }
}

static int host_put_write(void *host, struct fsd_req *r, const uint8_t *p,
                          size_t n, uint64_t off) {
  (void)host;
  return fsd_put_write(r->op, p, n, off);
}

static void host_put_commit(void *host, struct fsd_req *r) {
  (void)host;
  fsd_put_commit(r->op);
}

/* An AUTH to check: now, or after the delay its address earned. */
static void host_auth(void *host) {
  struct fsd_conn *c = host;

  fsd_authsrv_hold(c->net->auth, c);
}

/* The channel binding comes from the transport: none over plaintext. */
static size_t host_binding(void *host, uint8_t *out, size_t cap) {
  struct fsd_conn *c = host;

  return c->tp->binding != NULL ? c->tp->binding(c, out, cap) : 0;
}

/* A request ended: its access log line. */
static void host_done(void *host, const struct fsd_done *d) {
  struct fsd_conn *c = host;
  struct fsd_alog *alog = c->net->host->alog;
  struct fsd_alog_rec rec;
  struct timespec ts;
  uint64_t now_us = uv_hrtime() / 1000;

  if (alog == NULL)
    return;
  clock_gettime(CLOCK_REALTIME, &ts);
  rec.when_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  rec.peer = c->peer;
  rec.user = fsd_session_user(&c->sess);
  rec.op = fsp_op_name(d->op) != NULL ? fsp_op_name(d->op) : "?";
  rec.name = d->name;
  rec.name_len = d->name_len;
  rec.bytes = d->bytes;
  rec.status = d->status == 0 ? "OK" : fsp_status_name(d->status);
  rec.duration_us = now_us > d->t0_us ? now_us - d->t0_us : 0;
  fsd_alog_write(alog, &rec);
}

static void host_abort(void *host, struct fsd_req *r) {
  const struct kind_ops *k = kind_of(r);

  (void)host;
  if (r->op != NULL && k->abort != NULL)
    k->abort(r->op);
}

const struct fsd_host_ops fsd_host_ops = {
    .send = host_send,
    .backlog = host_backlog,
    .close = host_close,
    .start = host_start,
    .put_write = host_put_write,
    .put_commit = host_put_commit,
    .abort = host_abort,
    .auth = host_auth,
    .binding = host_binding,
    .done = host_done,
};
