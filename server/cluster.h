/* Several fsd serving one shared folder, with one order of events: every
 * change a server commits is published to a NATS JetStream stream, and
 * every server consumes the stream in order, applies each event to its
 * register and sends it to its own subscribers. The stream's sequence is
 * the event's seq on every server; the stream's creation time is the
 * epoch. Commits of one name are serialised across servers by a lock in a
 * JetStream key-value bucket, held from before the rename until the event
 * is in the stream. Built only with libnats (meson option "cluster"). */
#ifndef FSD_CLUSTER_H
#define FSD_CLUSTER_H

#include <uv.h>

#include "ctx.h"
#include "watch.h"

#define FSD_CLUSTER_STREAM "FSD_EVENTS" /* default stream name */
#define FSD_CLUSTER_LOCK_TTL_S 30u      /* a dead server's lock expires */
#define FSD_CLUSTER_MAX_URLS 16         /* NATS servers in --cluster */

/* What --cluster and its companions set. */
struct fsd_cluster_config {
  const char *urls;   /* nats://HOST:PORT[,...]: servers of one NATS cluster */
  const char *node;   /* this server's name, in logs and the NATS name */
  const char *creds;  /* NATS credentials file (JWT and seed), or NULL */
  const char *ca;     /* CA certificates for tls:// servers, or NULL */
  const char *stream; /* stream name; the lock bucket is <stream>_LOCKS */
  unsigned retention_s; /* events older than this go (0: kept forever) */
  unsigned replicas;    /* stream and bucket replicas (1..5) */
};

struct fsd_cluster;

/* Connects to NATS, creates the stream and the lock bucket when missing,
 * sets ctx->epoch from the stream, and replays the stream's last
 * FSD_RING_SIZE events into ctx (its register and event ring) before it
 * returns, so that a server listens
 * only once it caught up. Then consumes the stream on the loop (through a
 * uv_async) and publishes ctx's changes from a thread of its own: nothing
 * it does blocks the loop once started. Blocks while starting (before the
 * server listens). ctx->log points into *out until fsd_cluster_free.
 * Returns 0 or a negative UV_E* code (the reason is logged). */
int fsd_cluster_start(const struct fsd_cluster_config *cfg, uv_loop_t *loop,
                      struct fsd_ctx *ctx, struct fsd_watch *watch,
                      struct fsd_cluster **out);

/* Stops consuming: closes the loop's handle. Call on the loop before it
 * ends; c may be NULL. */
void fsd_cluster_close(struct fsd_cluster *c);

/* Publishes what is still queued (for a few seconds at most), disconnects
 * and frees c; the loop has ended. c may be NULL. */
void fsd_cluster_free(struct fsd_cluster *c);

#endif /* FSD_CLUSTER_H */
