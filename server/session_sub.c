/* The session's subscriptions: SUBSCRIBE with its replay or RESYNC, and
 * the events and notices pushed to a subscriber. See session.h. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "session.h"
#include "session_int.h"

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

static int may_push(struct fsd_session *s) {
  if (!s->subscribed || s->state != FSD_SESS_OPEN || s->behind ||
      !(s->gate.rights & FSD_RIGHT_READ))
    return 0;
  if (s->ops->backlog(s->host) > FSD_SUB_BACKLOG) {
    /* Rather than queue without bound, coalesce: one RESYNC once drained. */
    s->behind = 1;
    fsd_debug("subscriber behind, events coalesced");
    return 0;
  }
  return 1;
}

static void deliver_cb(void *arg, const void *frame, size_t len) {
  struct fsd_session *s = arg;

  s->ops->send(s->host, frame, len);
}

/* Sends one event to a subscriber, as its view shows it (see session.h). */
void fsd_session_deliver(struct fsd_session *s, const struct fsd_event *ev) {
  if (!may_push(s))
    return;
  fsd_event_frames(ev, s->sub.version, s->sub.folder, s->sub.folder_len,
                   deliver_cb, s);
}

/* Sends a frame encoded once for all subscribers (see session.h). */
void fsd_session_push(struct fsd_session *s, const void *frame, size_t len) {
  if (may_push(s))
    s->ops->send(s->host, frame, len);
}

/* The subscriber record's push: the context knows no sessions. */
static void push_cb(struct fsd_subscriber *sub, const void *frame, size_t len) {
  fsd_session_push(fsd_container_of(sub, struct fsd_session, sub), frame, len);
}

static void send_resync(struct fsd_session *s) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_RESYNC;
  m.id = FSP_EVENT_ID;
  m.u.sub.epoch = s->ctx->epoch;
  m.u.sub.seq = s->ctx->seq;
  fsd__send_msg(s, &m);
}

/* The host's output drained (see session.h). */
void fsd_session_drained(struct fsd_session *s) {
  if (!s->behind || !s->subscribed || s->state != FSD_SESS_OPEN)
    return;
  s->behind = 0;
  fsd_debug("subscriber drained, RESYNC sent");
  send_resync(s);
}

/* Version 3: the subtree the subscription watches, which must be a folder
 * in the register. Returns 0, or the ERROR status sent. */
static uint16_t set_folder(struct fsd_session *s, const struct fsp_msg *m) {
  const struct fsp_str *p = &m->u.sub.path;
  const struct fsd_node *n = fsd_treereg_get(&s->ctx->tree, p->ptr, p->len);
  uint16_t st = 0;
  char *copy;

  if (n == NULL)
    st = FSP_ST_NOT_FOUND;
  else if (n->type != FSP_TYPE_FOLDER)
    st = FSP_ST_NOT_FOLDER;
  if (st != 0) {
    fsd__send_error(s, m->id, st, NULL, p->ptr, p->len);
    return st;
  }
  copy = malloc(p->len + 1);
  if (copy == NULL) {
    fsd__send_error(s, m->id, FSP_ST_BUSY, "out of memory", NULL, 0);
    return FSP_ST_BUSY;
  }
  memcpy(copy, p->ptr, p->len);
  copy[p->len] = '\0';
  /* A second SUBSCRIBE replaces the first's folder. */
  fsd__sub_folder_free(s);
  s->sub.folder = copy;
  s->sub.folder_len = (uint16_t)p->len;
  return 0;
}

/* Forgets the subscription's folder (see session_int.h). */
void fsd__sub_folder_free(struct fsd_session *s) {
  free((void *)(uintptr_t)s->sub.folder);
  s->sub.folder = NULL;
  s->sub.folder_len = 0;
}

void fsd__on_subscribe(struct fsd_session *s, const struct fsp_msg *m) {
  struct fsd_ctx *ctx = s->ctx;
  struct fsp_msg a;
  uint64_t since = m->u.sub.seq;

  if (s->version >= FSP_TREE_VERSION && set_folder(s, m) != 0)
    return;
  s->sub.version = s->version;
  if (!s->subscribed) {
    s->subscribed = 1;
    s->behind = 0;
    s->sub.push = push_cb;
    fsd_ctx_subscribe(ctx, &s->sub);
  }
  memset(&a, 0, sizeof(a));
  a.op = FSP_OP_SUBSCRIBED;
  a.id = m->id;
  a.u.sub.epoch = ctx->epoch;
  a.u.sub.seq = ctx->seq;
  fsd__send_msg(s, &a);
  if (since == 0)
    return;
  /* A seq means something only with the epoch it came from: epoch 0 (none
   * known) or another one cannot be replayed from. */
  if (m->u.sub.epoch != ctx->epoch || since > ctx->seq ||
      (since < ctx->seq && fsd_ctx_event(ctx, since + 1) == NULL)) {
    send_resync(s);
    return;
  }
  for (uint64_t q = since + 1; q <= ctx->seq; q++)
    fsd_session_deliver(s, fsd_ctx_event(ctx, q));
}
