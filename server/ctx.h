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
#include "treereg.h"

struct fsd_users;
struct fsd_verifier;

#define FSD_RING_SIZE 4096u      /* events kept for replay */
#define FSD_MAX_INFLIGHT 64u     /* requests in flight per connection */
#define FSD_MAX_PAYLOAD 1048576u /* payload limit fsd announces */
#define FSD_LIST_BATCH 65536u    /* largest ENTRIES payload fsd sends */
#define FSD_SUB_BACKLOG 1048576u /* unsent bytes before events coalesce */
/* The largest pushed frame: a version 3 EVENT of a rename between two
 * paths of the longest length (a NOTIFY with the longest NOTICE text is
 * shorter). */
#define FSD_PUSH_MAX (FSP_HDR_LEN + 36u + 2u * FSP_PATH_MAX)

/* A receiver of pushed frames (EVENT, NOTIFY): a session embeds one while
 * it is subscribed. The context owns the list it is in. */
struct fsd_subscriber {
  struct fsd_list link; /* in ctx->subs, kept by ctx.c */
  /* Sends frame[0..len), encoded once for all subscribers, or skips it. */
  void (*push)(struct fsd_subscriber *sub, const void *frame, size_t len);
  /* The protocol version the subscriber speaks: which events it sees
   * (before FSP_TREE_VERSION only those of files directly in the root)
   * and in which layout. */
  uint8_t version;
  uint16_t folder_len; /* version 3: bytes in folder */
  const char *folder;  /* version 3: the subtree watched ("" the whole
                          tree); owned by the subscriber */
};

/* One event. In the ring the context owns its paths; elsewhere they are
 * borrowed from the caller. */
struct fsd_event {
  uint64_t seq;      /* 0 for an unused slot */
  uint64_t size;     /* size after the change (0 for a folder) */
  int64_t mtime_ns;  /* mtime after the change (removal time for removed) */
  uint8_t kind;      /* FSP_EV_* */
  uint8_t type;      /* FSP_TYPE_FILE or FSP_TYPE_FOLDER */
  uint16_t path_len; /* bytes in path (1..FSP_PATH_MAX) */
  uint16_t from_len; /* bytes in from: 0 unless kind is FSP_EV_RENAMED */
  const char *path;  /* full path from the root */
  const char *from;  /* renamed: the old path */
  char *own;         /* ring: the allocation holding path and from */
};

/* A wait for the shared log (fsd_ctx_log.wait): done(w) is called on the
 * loop once the events appended before it are in the log. */
struct fsd_log_wait {
  struct fsd_list link;
  uint64_t ticket; /* the log's own count */
  void (*done)(struct fsd_log_wait *w);
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
  /* Loop: calls w->done(w), on the loop and later, once every event
   * appended before is in the log (or was given up); at once when the log
   * is stopping. A change is answered after it, so that the log holds the
   * changes in the order they were made (a client's next change can only
   * follow the answer). */
  void (*wait)(struct fsd_ctx_log *log, struct fsd_log_wait *w);
  /* 1 while the log takes events; writes are refused otherwise. Written by
   * the log's own thread, read on the loop. */
  atomic_int writable;
};

struct fsd_ctx {
  struct fsd_register reg; /* the files of the tree, by path, with versions */
  struct fsd_treereg tree; /* the files and folders of the tree */
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
  /* Called for each node the tree register drops, just before it is freed
   * (the watcher closes a folder's watch); NULL when nobody watches. */
  fsd_treereg_drop_fn *dropped;
  /* Called for each folder node that appears in the tree register (made,
   * found, or moved by a rename: the watcher watches it); NULL when
   * nobody watches. Both get dropped_arg. */
  fsd_treereg_drop_fn *added;
  void *dropped_arg;
  char agent[32]; /* HELLO agent, "fsd/<version>" */
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

/* Records that the folder path[0..len) exists (st: its mtime and inode;
 * size and ctime 0), with
 * the missing folders above it: one added event per folder new to the
 * register, parents first. A file of that path in the register is removed
 * first (its removed event). A folder that was known gives no event (its
 * mtime moves with every entry made in it). Returns FSP_EV_ADDED, 0 when it
 * was known, or a negative UV_E* code. */
int fsd_ctx_folder(struct fsd_ctx *ctx, const char *path, size_t len,
                   const struct fsd_stamp *st);

/* Records that path[0..len), a file or a folder with all it holds, is gone
 * (at now_ns): one removed event per entry, a folder's contents before the
 * folder. Returns FSP_EV_REMOVED, or 0 when the register did not have it. */
int fsd_ctx_remove(struct fsd_ctx *ctx, const char *path, size_t len,
                   int64_t now_ns);

/* Records that the entry at from moved to to (RENAME): the register moves
 * it (a folder with everything below it; what was at to is dropped) and
 * one renamed event reports it. type and st say what the disk holds at to
 * after the move (a file's ctime moves with a rename: the watcher must
 * not take that for a change). Returns FSP_EV_RENAMED, 0 when from was not
 * in the register (then to is recorded as added), or a negative UV_E*
 * code. */
int fsd_ctx_rename(struct fsd_ctx *ctx, const char *from, size_t from_len,
                   const char *to, size_t to_len, uint8_t type,
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

/* Fills m with the version 3 EVENT frame of ev (m's paths point into ev). */
void fsd_event_msg(const struct fsd_event *ev, struct fsp_msg *m);

/* Encodes the frames a subscriber that speaks version and watches the
 * subtree folder[0..folder_len) (version 3) receives for ev, and calls
 * fn(arg, frame, len) for each: none when ev concerns nothing it sees, one
 * in general, two for a version 1 or 2 subscriber when a file is renamed
 * within the root (removed, then added). */
void fsd_event_frames(const struct fsd_event *ev, unsigned version,
                      const char *folder, size_t folder_len,
                      void (*fn)(void *arg, const void *frame, size_t len),
                      void *arg);

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
