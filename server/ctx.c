/* Server-wide state and event fan-out. See ctx.h. */
#include "ctx.h"

#include <fsproto/fsproto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "session.h"

/* Initialises the context; see ctx.h. */
int fsd_ctx_init(struct fsd_ctx *ctx, uint64_t epoch) {
  int r;

  memset(ctx, 0, sizeof(*ctx));
  r = fsd_register_init(&ctx->reg);
  if (r != 0)
    return r;
  /* calloc'd pages stay untouched (and out of RSS) until events fill them. */
  ctx->ring = calloc(FSD_RING_SIZE, sizeof(*ctx->ring));
  if (ctx->ring == NULL) {
    fsd_register_free(&ctx->reg);
    return UV_ENOMEM;
  }
  ctx->epoch = epoch != 0 ? epoch : 1;
  snprintf(ctx->agent, sizeof(ctx->agent), "fsd/%s", fsp_version_string());
  return 0;
}

/* Frees the context; see ctx.h. */
void fsd_ctx_free(struct fsd_ctx *ctx) {
  fsd_register_free(&ctx->reg);
  free(ctx->ring);
  ctx->ring = NULL;
}

/* Returns a held event; see ctx.h. */
const struct fsd_event *fsd_ctx_event(const struct fsd_ctx *ctx,
                                      uint64_t seq) {
  const struct fsd_event *ev;

  if (seq == 0 || seq > ctx->seq)
    return NULL;
  ev = &ctx->ring[seq % FSD_RING_SIZE];
  return ev->seq == seq ? ev : NULL;
}

/* Applies a change and fans out its event; see ctx.h. */
int fsd_ctx_update(struct fsd_ctx *ctx, const char *name, size_t len,
                   int present, uint64_t size, int64_t mtime_ns) {
  struct fsd_event *ev;
  struct fsd_session *s, *next;
  int kind;

  if (present) {
    kind = fsd_register_set(&ctx->reg, name, len, size, mtime_ns);
    if (kind <= 0)
      return kind;
  } else {
    if (!fsd_register_remove(&ctx->reg, name, len))
      return 0;
    kind = FSP_EV_REMOVED;
    size = 0;
  }
  ctx->seq++;
  ev = &ctx->ring[ctx->seq % FSD_RING_SIZE];
  ev->seq = ctx->seq;
  ev->kind = (uint8_t)kind;
  ev->size = size;
  ev->mtime_ns = mtime_ns;
  ev->name_len = (uint8_t)len;
  memcpy(ev->name, name, len);
  /* A delivery may not unsubscribe, but fetch next first all the same. */
  for (s = ctx->subs; s != NULL; s = next) {
    next = s->sub_next;
    fsd_session_deliver(s, ev);
  }
  return kind;
}

/* Relays a notice; see ctx.h. */
void fsd_ctx_notify(struct fsd_ctx *ctx, const char *text, size_t len) {
  struct fsd_session *s, *next;

  for (s = ctx->subs; s != NULL; s = next) {
    next = s->sub_next;
    fsd_session_notify(s, text, len);
  }
}
