/* The per-connection protocol state machine of fsd.
 *
 * A session takes the bytes a client sent (fsd_session_feed), checks and
 * dispatches every frame as protocol.md says, answers what it can answer from
 * memory (HELLO, PING, LIST, STAT, SUBSCRIBE, NOTICE, ...) and hands the rest
 * to its host through struct fsd_host_ops: file work (GET, HASH, DELETE, PUT)
 * and socket work (send a frame, close). The host reports back with the
 * fsd_session_*_done() family. The session does no I/O itself, so the tests
 * drive it with a fake host; the libuv server is one such host. */
#ifndef FSD_SESSION_H
#define FSD_SESSION_H

#include <fsproto/fsproto.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <xxhash.h>

#include "ctx.h"
#include "gate.h"

/* Where a request stands. */
enum fsd_req_state {
  FSD_REQ_RUNNING = 0,    /* the host works on it (PUT: opening the temp) */
  FSD_REQ_RECEIVING = 1,  /* PUT: READY sent, DATA flows to the host */
  FSD_REQ_COMMITTING = 2, /* PUT: END checked, the host moves it into place */
  FSD_REQ_ABORTING = 3,   /* the host cleans up; then fsd_session_aborted */
  FSD_REQ_DRAIN = 4       /* a failed PUT: swallow the client's late DATA */
};

struct fsd_session;

/* A request that ended, as the access log tells it (ops->done). */
struct fsd_done {
  uint8_t op;       /* its opcode */
  uint16_t status;  /* 0 for success, else the ERROR status sent */
  const char *name; /* the file it named, or NULL */
  size_t name_len;
  uint64_t bytes; /* bytes it moved (GET: sent, PUT: stored) */
  uint64_t t0_us; /* the session's clock_us when it arrived */
};

/* One request in flight. Owned by the session; the host may keep a pointer
 * until it reports the request's end. */
struct fsd_req {
  struct fsd_req *next;        /* next request of the session */
  struct fsd_session *s;       /* owning session */
  void *op;                    /* the host's state for this request */
  uint32_t id;                 /* request id from the client */
  uint8_t opcode;              /* FSP_OP_LIST, GET, PUT, HASH, DELETE, MKDIR
                                  or RENAME */
  uint8_t state;               /* enum fsd_req_state */
  uint8_t mode;                /* PUT mode: FSP_PUT_REPLACE or _NO_CLOBBER */
  uint8_t drain_after;         /* after the abort, swallow the client's DATA */
  uint16_t fail_status;        /* ERROR status to send once an abort is done */
  uint16_t done_status;        /* how it ended, for ops->done: 0 when well */
  uint64_t done_bytes;         /* bytes it moved, for ops->done */
  uint64_t t0_us;              /* the session's clock_us when it arrived */
  const char *fail_msg;        /* and its message (static text) */
  uint64_t offset;             /* GET/HASH: requested offset; LIST: cursor */
  uint64_t length;             /* GET/HASH: requested length */
  uint64_t size;               /* PUT: declared size */
  uint64_t received;           /* PUT: bytes received so far */
  XXH3_state_t *hash;          /* PUT: running hash of the received bytes */
  uint8_t flags;               /* version 3: the request's FSP_* flags */
  uint8_t tree_op;             /* DELETE of a folder: the host's tree job */
  uint8_t elsewhere;           /* PUT: committed, but its folder moved
                                  meanwhile: the register learns where
                                  from the watcher, not from the path */
  struct fsd_tree_cursor *cur; /* LIST in version 3: the walk, or NULL */
  uint16_t list_skip;          /* LIST in version 3: bytes of the folder's
                                  path (and its '/') cut off each entry */
  uint16_t to_len;             /* RENAME: bytes in to */
  char *to;                    /* RENAME: the new path, NUL-terminated */
  uint16_t name_len;           /* bytes in name */
  char name[];                 /* the file's path, NUL-terminated (sized
                                  to it: paths run to 4 KiB) */
};

/* What a session needs from its host. */
struct fsd_host_ops {
  /* Queues frame[0..len) for the client; the host copies it. Returns 0 or a
   * negative error (the frame is then lost: the connection is going). */
  int (*send)(void *host, const void *frame, size_t len);
  /* Bytes queued for the client but not yet written to the socket. */
  size_t (*backlog)(void *host);
  /* Closes the connection once everything queued has been written. */
  void (*close)(void *host);
  /* Starts the file work of r: open and stream (GET), hash (HASH), unlink
   * (DELETE; r->tree_op set: remove a folder, with r->flags), create the
   * temp file (PUT; with FSP_PUT_PARENTS in r->flags, its folders first),
   * make a folder (MKDIR) or move an entry (RENAME, r->name to r->to). The
   * host answers with the matching fsd_session_*() call, or
   * fsd_session_fail(). */
  void (*start)(void *host, struct fsd_req *r);
  /* PUT: writes p[0..n) at offset off of the temp file. p points into the
   * buffer the host passed to fsd_session_feed(); the host keeps that alive
   * until the write is done. Returns 0, or negative when r already failed. */
  int (*put_write)(void *host, struct fsd_req *r, const uint8_t *p, size_t n,
                   uint64_t off);
  /* PUT: all bytes arrived and checked; move the temp file into place once
   * the writes are done, then fsd_session_put_done() or _fail(). */
  void (*put_commit)(void *host, struct fsd_req *r);
  /* Stops r as soon as possible and removes what it left (a temp file); then
   * fsd_session_aborted() (or, if it finished first, its normal end). */
  void (*abort)(void *host, struct fsd_req *r);
  /* Optional. An AUTH arrived and is held (the session reads nothing more
   * meanwhile): the host calls fsd_session_auth_check() now or, after
   * failures from this peer, later. NULL: checked at once. */
  void (*auth)(void *host);
  /* Optional. Writes this connection's channel binding (the TLS exporter's
   * FSP_BINDING_LEN bytes) into out and returns its length, or 0 over
   * plaintext. NULL: plaintext. */
  size_t (*binding)(void *host, uint8_t *out, size_t cap);
  /* Optional. A request ended (its final frame is queued): the access
   * log's line. */
  void (*done)(void *host, const struct fsd_done *d);
};

enum fsd_session_state {
  FSD_SESS_HELLO = 0, /* waiting for the client's HELLO */
  FSD_SESS_OPEN = 1,  /* serving requests */
  FSD_SESS_BYE = 2,   /* BYE seen or shutdown: ending requests, then BYE */
  FSD_SESS_CLOSED = 3 /* nothing more is sent; requests being torn down */
};

struct fsd_session {
  struct fsd_ctx *ctx;            /* server-wide state */
  const struct fsd_host_ops *ops; /* host callbacks */
  void *host;                     /* their first argument */
  const char *label;              /* names the peer in log lines */
  struct fsp_decoder dec;         /* incremental frame decoder */
  struct fsd_req *reqs;           /* requests in flight and drains */
  struct fsd_subscriber sub;      /* in ctx's subscribers when subscribed */
  uint32_t peer_max;              /* client's max_payload */
  uint32_t bye_id;                /* id to answer BYE with */
  uint16_t bye_status;            /* status of our BYE */
  uint16_t nactive;               /* requests in flight (not drains) */
  uint8_t state;                  /* enum fsd_session_state */
  uint8_t subscribed;             /* receives events */
  uint8_t behind;                 /* events skipped; RESYNC when drained */
  uint8_t ndrain;                 /* drain entries held */
  uint8_t version;                /* protocol version spoken: the lower of
                                     the two HELLOs' (0 before HELLO) */
  struct fsd_gate gate;           /* authentication and rights */
  uint64_t clock_us;              /* the host's clock at this feed (a
                                     request's start, for ops->done) */
};

/* Initialises s for a new connection. Allocates nothing. */
void fsd_session_init(struct fsd_session *s, struct fsd_ctx *ctx,
                      const struct fsd_host_ops *ops, void *host);

/* Feeds bytes from the client. Returns the number consumed; the host keeps
 * the rest (an incomplete frame) and feeds it again with more bytes. All
 * bytes are consumed once the session stopped listening (closing). */
size_t fsd_session_feed(struct fsd_session *s, const uint8_t *buf, size_t len);

/* Bytes still needed to complete the frame at buf[0..len), as
 * fsp_frame_need() (0 when unknown). Lets the host size its buffer. */
size_t fsd_session_need(const struct fsd_session *s, const uint8_t *buf,
                        size_t len);

/* The connection is gone: sends nothing more, unsubscribes and aborts every
 * request. The host keeps its connection until fsd_session_busy() is 0. */
void fsd_session_close(struct fsd_session *s);

/* Checks the AUTH the session holds (after ops->auth): sends OK and opens
 * the session, or sends ERROR UNAUTHENTICATED and closes. Returns 0, or
 * UV_EACCES for a refusal (the host counts it against the peer's address).
 * The host then feeds the bytes it kept, which the session did not read
 * while the AUTH was held. */
int fsd_session_auth_check(struct fsd_session *s);

/* The time to authenticate ran out: ERROR TIMEOUT (id 0), then close. */
void fsd_session_auth_expired(struct fsd_session *s);

/* Non-zero once the session may serve requests: authenticated, or on a
 * server without users. */
int fsd_session_authenticated(const struct fsd_session *s);

/* The name of the authenticated user, or NULL. */
const char *fsd_session_user(const struct fsd_session *s);

/* The users file was reloaded (ctx->users now points at users): a removed
 * user gets ERROR UNAUTHENTICATED and the connection closes; a user whose
 * rights shrank is held to them at once (its requests that need a right it
 * lost end with FORBIDDEN, and it is unsubscribed when it lost read). */
void fsd_session_reload(struct fsd_session *s, const struct fsd_users *users);

/* The server is stopping: ends every request, then sends BYE (id 0,
 * SHUTDOWN) and asks the host to close. */
void fsd_session_shutdown(struct fsd_session *s);

/* The idle timeout passed: ERROR TIMEOUT (id 0), then close. */
void fsd_session_timeout(struct fsd_session *s);

/* Number of requests the host still works on (drains excluded). */
unsigned fsd_session_busy(const struct fsd_session *s);

/* Non-zero when the connection is not idle in protocol.md's sense: it has a
 * subscription or a request in flight. */
int fsd_session_active(const struct fsd_session *s);

/* The largest DATA payload the client accepts. */
uint32_t fsd_session_peer_max(const struct fsd_session *s);

/* The host wrote queued output: a LIST paused for a long backlog goes on,
 * and when the backlog is zero, fsd_session_drained() follows. */
void fsd_session_writable(struct fsd_session *s);

/* The host's backlog drained to zero: sends RESYNC if events were skipped. */
void fsd_session_drained(struct fsd_session *s);

/* Sends one event to a subscriber (SUBSCRIBE's replay). */
void fsd_session_deliver(struct fsd_session *s, const struct fsd_event *ev);

/* Event fan-out (called by fsd_ctx_update and fsd_ctx_notify, which encode
 * the EVENT or NOTIFY frame once for all subscribers): sends frame[0..len)
 * unless s is not subscribed, not open, or behind (then it is skipped, and
 * RESYNC follows once s drained). */
void fsd_session_push(struct fsd_session *s, const void *frame, size_t len);

/* Clamps a GET/HASH range to a file of file_size bytes. Returns 0 and sets
 * *out_len, or FSP_ST_RANGE when offset is past the end. */
int fsd_range_clamp(uint64_t file_size, uint64_t offset, uint64_t length,
                    uint64_t *out_len);

/* GET: the file is open. Sends BEGIN with the clamped range and returns 0,
 * setting *len to the bytes to send from *off; or sends ERROR RANGE, ends r
 * and returns FSP_ST_RANGE (the host forgets r and closes the file). */
int fsd_session_get_begin(struct fsd_session *s, struct fsd_req *r,
                          uint64_t file_size, int64_t mtime_ns, uint64_t *off,
                          uint64_t *len);

/* GET: all DATA frames are queued. Sends END (length of the range, hash) and
 * ends r. */
void fsd_session_get_end(struct fsd_session *s, struct fsd_req *r,
                         uint64_t length, uint64_t hash);

/* HASH: sends DIGEST and ends r. */
void fsd_session_hash_done(struct fsd_session *s, struct fsd_req *r,
                           uint64_t offset, uint64_t length, uint64_t hash);

/* PUT: the temp file is ready. Sends READY; DATA may flow. */
void fsd_session_put_ready(struct fsd_session *s, struct fsd_req *r);

/* PUT: the file is in place, the version st describes (as fstat saw it
 * after the move: its inode and ctime tell it from the file it replaced,
 * whatever the timestamps). Updates the register and sends subscribers its
 * event (exactly one per commit, see fsd_ctx_put), then INFO, and ends r.
 * With r->elsewhere set, the register is left to the watcher. */
void fsd_session_put_done(struct fsd_session *s, struct fsd_req *r,
                          const struct fsd_stamp *st);

/* PUT: the second half of fsd_session_put_done alone, for a host that
 * told the register itself: sends INFO and ends r. */
void fsd_session_put_info(struct fsd_session *s, struct fsd_req *r,
                          const struct fsd_stamp *st);

/* DELETE: the file is gone (at now_ns). Updates the register, sends OK and
 * ends r. */
void fsd_session_delete_done(struct fsd_session *s, struct fsd_req *r,
                             int64_t now_ns);

/* MKDIR, RENAME, a DELETE of a folder, or a DELETE whose register update
 * the host made, is done (the host recorded the change in the context):
 * sends OK and ends r. */
void fsd_session_ok(struct fsd_session *s, struct fsd_req *r);

/* DELETE RECURSIVE: path[0..len) stayed, for status; sends SKIPPED. */
void fsd_session_skipped(struct fsd_session *s, struct fsd_req *r,
                         uint16_t status, const char *path, size_t len);

/* Ends r with ERROR status and message msg (NULL for the default text of the
 * status; the file name is appended). */
void fsd_session_fail(struct fsd_session *s, struct fsd_req *r, uint16_t status,
                      const char *msg);

/* The host gives up on r (a disk write failed, say) and will clean up: marks
 * r aborting with status; the host calls fsd_session_aborted() when done. */
void fsd_session_failing(struct fsd_session *s, struct fsd_req *r,
                         uint16_t status, const char *msg);

/* An abort is complete (asked for by the session, or fsd_session_failing):
 * ends r with the stored error. */
void fsd_session_aborted(struct fsd_session *s, struct fsd_req *r);

#endif /* FSD_SESSION_H */
