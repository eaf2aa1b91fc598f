/* Server-wide state shared by all connections: the register, the event log
 * (epoch, sequence numbers and a ring of recent events for SUBSCRIBE's
 * "since"), the subscriber list and the server's settings. No I/O. */
#ifndef FSD_CTX_H
#define FSD_CTX_H

#include <fsproto/fsproto.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "register.h"

struct fsd_users;
struct fsd_verifier;

#define FSD_RING_SIZE 4096u      /* events kept for replay */
#define FSD_MAX_INFLIGHT 64u     /* requests in flight per connection */
#define FSD_MAX_PAYLOAD 1048576u /* payload limit fsd announces */
#define FSD_LIST_BATCH 65536u    /* largest ENTRIES payload fsd sends */
#define FSD_SUB_BACKLOG 1048576u /* unsent bytes before events coalesce */
/* The largest pushed frame: a NOTIFY with the longest NOTICE text (an EVENT
 * is shorter). */
#define FSD_PUSH_MAX (FSP_HDR_LEN + FSP_NOTICE_MAX)

/* A receiver of pushed frames (EVENT, NOTIFY): a session embeds one while
 * it is subscribed. The context owns the list it is in. */
struct fsd_subscriber {
  struct fsd_list link; /* in ctx->subs, kept by ctx.c */
  /* Sends frame[0..len), encoded once for all subscribers, or skips it. */
  void (*push)(struct fsd_subscriber *sub, const void *frame, size_t len);
};

/* One event as kept in the ring. */
struct fsd_event {
  uint64_t seq;     /* 0 for an unused slot */
  uint64_t size;    /* size after the change */
  int64_t mtime_ns; /* mtime after the change (removal time for removed) */
  uint8_t kind;     /* FSP_EV_* */
  uint8_t name_len; /* bytes in name (names are 1..255 bytes) */
  char name[FSP_NAME_MAX];
};

/* The shared log of a cluster (cluster.c): while set, a change is not
 * numbered here but handed to append, and comes back, numbered by the log,
 * through fsd_ctx_apply on every server; notices likewise go out through
 * notify and come back through fsd_ctx_relay. The context only holds the
 * pointer. */
struct fsd_ctx_log {
  /* Publishes ev (seq 0) after the register took it. now is the version
   * after (NULL for a removal), so that the other servers' registers hold
   * the very version (inode and ctime too); prev the version before (zeros
   * when the name was absent), so that servers noticing the same change
   * name it alike. */
  void (*append)(struct fsd_ctx_log *log, const struct fsd_event *ev,
                 const struct fsd_stamp *now, const struct fsd_stamp *prev);
  /* Publishes a NOTICE text. */
  void (*notify)(struct fsd_ctx_log *log, const char *text, size_t len);
  /* Threadpool: waits until this server alone may change the name (a lock
   * across servers), so that the last event of a name in the log describes
   * what is on disk. Returns 0, or UV_EAGAIN when the log is unreachable or
   * UV_ETIMEDOUT after waiting too long for another server. */
  int (*lock)(struct fsd_ctx_log *log, const char *name);
  /* Loop: lets the name go once the event of its change (appended before)
   * is in the log. */
  void (*unlock)(struct fsd_ctx_log *log, const char *name);
  /* 1 while the log takes events; writes are refused otherwise. Written by
   * the log's own thread, read on the loop. */
  atomic_int writable;
};

struct fsd_ctx {
  struct fsd_register reg; /* the files in the root */
  uint64_t epoch;          /* random, non-zero: names this instance */
  uint64_t seq;            /* seq of the latest event, 0 before the first */
  struct fsd_event *ring;  /* FSD_RING_SIZE slots, indexed by seq % size */
  struct fsd_list subs;    /* subscribers, through fsd_subscriber.link */
  int read_only;           /* refuse PUT and DELETE */
  /* Authentication: users is NULL when anyone may connect, with
   * anon_rights (FSD_RIGHT_* bits; all of them by default). */
  const struct fsd_users *users;
  const struct fsd_verifier *verifier; /* checks AUTH when users is set */
  unsigned anon_rights;
  struct fsd_ctx_log *log; /* the shared log of a cluster, or NULL */
  char agent[32];          /* HELLO agent, "fsd/<version>" */
};

/* Initialises ctx with an empty register. epoch must be non-zero. Returns 0
 * or UV_ENOMEM. */
int fsd_ctx_init(struct fsd_ctx *ctx, uint64_t epoch);

/* Frees the register and the ring. Sessions must be gone. */
void fsd_ctx_free(struct fsd_ctx *ctx);

/* Records that name[0..len) now holds the version st describes (a commit
 * of ours, or what a stat of the folder found). Updates the register and,
 * unless it held exactly that version already (same size, mtime, inode and
 * ctime), logs one event and sends it to every subscriber. Every commit
 * makes a new inode, so each one is one event, whatever its timestamps.
 * Returns the FSP_EV_* kind emitted, 0 when nothing changed, or a negative
 * UV_E* code. */
int fsd_ctx_put(struct fsd_ctx *ctx, const char *name, size_t len,
                const struct fsd_stamp *st);

/* Records what is now true of name[0..len): present with (size, mtime_ns)
 * and an unknown inode and ctime (as fsd_ctx_put()), or absent (present 0;
 * mtime_ns is then the time of the removal: a removed event when the
 * register had the name). Returns as fsd_ctx_put(). */
int fsd_ctx_update(struct fsd_ctx *ctx, const char *name, size_t len,
                   int present, uint64_t size, int64_t mtime_ns);

/* Applies ev, numbered by the shared log (ctx->log), whatever the register
 * held: the register takes its state, the ring keeps it under ev->seq, and
 * every subscriber gets its EVENT. Events at or below ctx->seq are ignored
 * (already applied). A gap (events before the log's first) makes "since"
 * below it RESYNC. st is the version (NULL: known by size and mtime only).
 * Returns 1 when applied, 0 when ignored, or UV_ENOMEM. */
int fsd_ctx_apply(struct fsd_ctx *ctx, const struct fsd_event *ev,
                  const struct fsd_stamp *st);

/* Whether writes must be refused because the shared log is unreachable. */
int fsd_ctx_log_down(const struct fsd_ctx *ctx);

/* The ring entry for seq, or NULL when it is no longer (or not yet) held. */
const struct fsd_event *fsd_ctx_event(const struct fsd_ctx *ctx, uint64_t seq);

/* Fills m with the EVENT frame of ev (m's name points into ev). */
void fsd_event_msg(const struct fsd_event *ev, struct fsp_msg *m);

/* Adds sub (push set) to the subscribers; it must not be one already. */
void fsd_ctx_subscribe(struct fsd_ctx *ctx, struct fsd_subscriber *sub);

/* Takes sub out of the subscribers. */
void fsd_ctx_unsubscribe(struct fsd_ctx *ctx, struct fsd_subscriber *sub);

/* Relays a NOTICE text to every subscriber as NOTIFY, or, in a cluster, to
 * the shared log, which relays it on every server. */
void fsd_ctx_notify(struct fsd_ctx *ctx, const char *text, size_t len);

/* Relays a NOTICE text that came through the shared log to this server's
 * subscribers. */
void fsd_ctx_relay(struct fsd_ctx *ctx, const char *text, size_t len);

#endif /* FSD_CTX_H */
