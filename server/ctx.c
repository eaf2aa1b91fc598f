/* Server-wide state and event fan-out. See ctx.h. */
#include "ctx.h"

#include "users.h"

#include <fsproto/fsproto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "mem.h"

/* Initialises the context; see ctx.h. */
int fsd_ctx_init(struct fsd_ctx *ctx, uint64_t epoch) {
  int r;

  memset(ctx, 0, sizeof(*ctx));
  fsd_list_init(&ctx->subs);
  r = fsd_register_init(&ctx->reg);
  if (r != 0)
    return r;
  /* calloc'd pages stay untouched (and out of RSS) until events fill them. */
  ctx->ring = fsd_calloc(FSD_RING_SIZE, sizeof(*ctx->ring));
  if (ctx->ring == NULL) {
    fsd_register_free(&ctx->reg);
    return UV_ENOMEM;
  }
  ctx->epoch = epoch != 0 ? epoch : 1;
  snprintf(ctx->agent, sizeof(ctx->agent), "fsd/%s", fsp_version_string());
  ctx->anon_rights = FSD_RIGHTS_ALL;
  return 0;
}

/* Frees the context; see ctx.h. */
void fsd_ctx_free(struct fsd_ctx *ctx) {
  fsd_register_free(&ctx->reg);
  fsd_free(ctx->ring);
  ctx->ring = NULL;
}

/* Returns a held event; see ctx.h. */
const struct fsd_event *fsd_ctx_event(const struct fsd_ctx *ctx, uint64_t seq) {
  const struct fsd_event *ev;

  if (seq == 0 || seq > ctx->seq)
    return NULL;
  ev = &ctx->ring[seq % FSD_RING_SIZE];
  return ev->seq == seq ? ev : NULL;
}

/* The EVENT frame of ev; see ctx.h. */
void fsd_event_msg(const struct fsd_event *ev, struct fsp_msg *m) {
  memset(m, 0, sizeof(*m));
  m->op = FSP_OP_EVENT;
  m->id = FSP_EVENT_ID;
  m->u.event.seq = ev->seq;
  m->u.event.kind = ev->kind;
  m->u.event.file.size = ev->size;
  m->u.event.file.mtime_ns = ev->mtime_ns;
  m->u.event.file.name.ptr = ev->name;
  m->u.event.file.name.len = ev->name_len;
}

/* Encodes a pushed frame (EVENT or NOTIFY) once and hands the same bytes to
 * every subscriber: with 10,000 subscribers, encoding it for each one was
 * 10,000 encodes, and a long NOTICE 10,000 mallocs. */
static void broadcast(struct fsd_ctx *ctx, const struct fsp_msg *m) {
  uint8_t frame[FSD_PUSH_MAX];
  struct fsd_list *l, *next;
  ssize_t n;

  if (fsd_list_empty(&ctx->subs))
    return;
  n = fsp_msg_encode(frame, sizeof(frame), m);
  if (n < 0) {
    fsd_error("cannot encode %s: %s", fsp_op_name(m->op), fsp_strerror((int)n));
    return;
  }
  /* A push may not unsubscribe, but fetch next first all the same. */
  fsd_list_each_safe(l, next, &ctx->subs) {
    struct fsd_subscriber *sub =
        fsd_container_of(l, struct fsd_subscriber, link);
    sub->push(sub, frame, (size_t)n);
  }
}

/* Adds a subscriber; see ctx.h. */
void fsd_ctx_subscribe(struct fsd_ctx *ctx, struct fsd_subscriber *sub) {
  fsd_list_push(&ctx->subs, &sub->link);
}

/* Removes a subscriber; see ctx.h. */
void fsd_ctx_unsubscribe(struct fsd_ctx *ctx, struct fsd_subscriber *sub) {
  (void)ctx;
  fsd_list_remove(&sub->link);
}

/* Keeps ev under its seq in the ring and sends its EVENT to every
 * subscriber. */
static void log_event(struct fsd_ctx *ctx, const struct fsd_event *in) {
  struct fsd_event *ev = &ctx->ring[in->seq % FSD_RING_SIZE];
  struct fsp_msg m;

  *ev = *in;
  ctx->seq = in->seq;
  fsd_event_msg(ev, &m);
  broadcast(ctx, &m);
}

/* Logs one event of kind for name and fans it out, or, in a cluster,
 * hands it to the shared log, which numbers it (now: the version after,
 * NULL for a removal; prev: the version before). */
static void emit(struct fsd_ctx *ctx, const char *name, size_t len, int kind,
                 uint64_t size, int64_t mtime_ns, const struct fsd_stamp *now,
                 const struct fsd_stamp *prev) {
  struct fsd_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.seq = ctx->seq + 1;
  ev.kind = (uint8_t)kind;
  ev.size = size;
  ev.mtime_ns = mtime_ns;
  ev.name_len = (uint8_t)len;
  memcpy(ev.name, name, len);
  if (ctx->log != NULL) {
    ev.seq = 0; /* it comes back numbered, through fsd_ctx_apply */
    ctx->log->append(ctx->log, &ev, now, prev);
    return;
  }
  log_event(ctx, &ev);
}

/* The version the register holds for name, or zeros when it has none. */
static struct fsd_stamp held(const struct fsd_ctx *ctx, const char *name,
                             size_t len) {
  const struct fsd_file *f = fsd_register_get(&ctx->reg, name, len);
  struct fsd_stamp st = {0, 0, 0, 0};

  if (f != NULL) {
    st.size = f->size;
    st.mtime_ns = f->mtime_ns;
    st.ino = f->ino;
    st.ctime_ns = f->ctime_ns;
  }
  return st;
}

/* Applies a new version and fans out its event; see ctx.h. */
int fsd_ctx_put(struct fsd_ctx *ctx, const char *name, size_t len,
                const struct fsd_stamp *st) {
  struct fsd_stamp prev = held(ctx, name, len);
  int kind;

  /* With the shared log unreachable, the register stays as the log left
   * it: the rescan finds the change again once the log is back. */
  if (fsd_ctx_log_down(ctx))
    return 0;
  kind = fsd_register_put(&ctx->reg, name, len, st);
  if (kind > 0)
    emit(ctx, name, len, kind, st->size, st->mtime_ns, st, &prev);
  return kind;
}

/* Applies a change and fans out its event; see ctx.h. */
int fsd_ctx_update(struct fsd_ctx *ctx, const char *name, size_t len,
                   int present, uint64_t size, int64_t mtime_ns) {
  struct fsd_stamp st = {size, mtime_ns, 0, 0};
  struct fsd_stamp prev;

  if (present)
    return fsd_ctx_put(ctx, name, len, &st);
  if (fsd_ctx_log_down(ctx))
    return 0;
  prev = held(ctx, name, len);
  if (!fsd_register_remove(&ctx->reg, name, len))
    return 0;
  emit(ctx, name, len, FSP_EV_REMOVED, 0, mtime_ns, NULL, &prev);
  return FSP_EV_REMOVED;
}

/* Applies an event of the shared log; see ctx.h. */
int fsd_ctx_apply(struct fsd_ctx *ctx, const struct fsd_event *ev,
                  const struct fsd_stamp *st) {
  struct fsd_stamp known = {ev->size, ev->mtime_ns, 0, 0};
  int r;

  if (ev->seq <= ctx->seq)
    return 0;
  if (ev->kind == FSP_EV_REMOVED) {
    fsd_register_remove(&ctx->reg, ev->name, ev->name_len);
  } else {
    r = fsd_register_put(&ctx->reg, ev->name, ev->name_len,
                         st != NULL ? st : &known);
    if (r < 0)
      return r;
  }
  log_event(ctx, ev);
  return 1;
}

/* Whether the shared log refuses writes; see ctx.h. */
int fsd_ctx_log_down(const struct fsd_ctx *ctx) {
  return ctx->log != NULL && !atomic_load(&ctx->log->writable);
}

/* Relays a notice; see ctx.h. */
void fsd_ctx_notify(struct fsd_ctx *ctx, const char *text, size_t len) {
  if (ctx->log != NULL)
    ctx->log->notify(ctx->log, text, len);
  else
    fsd_ctx_relay(ctx, text, len);
}

/* Relays a notice to this server's subscribers; see ctx.h. */
void fsd_ctx_relay(struct fsd_ctx *ctx, const char *text, size_t len) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_NOTIFY;
  m.id = FSP_EVENT_ID;
  m.u.text.ptr = text;
  m.u.text.len = len;
  broadcast(ctx, &m);
}
