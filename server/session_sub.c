/* The session's subscriptions: SUBSCRIBE with its replay or RESYNC, and
 * the events and notices pushed to a subscriber. See session.h. */
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

/* Sends one event to a subscriber (see session.h). */
void fsd_session_deliver(struct fsd_session *s, const struct fsd_event *ev) {
  struct fsp_msg m;

  if (!may_push(s))
    return;
  fsd_event_msg(ev, &m);
  fsd__send_msg(s, &m);
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

void fsd__on_subscribe(struct fsd_session *s, const struct fsp_msg *m) {
  struct fsd_ctx *ctx = s->ctx;
  struct fsp_msg a;
  uint64_t since = m->u.sub.seq;

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
