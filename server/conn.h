/* A client connection: the one place where socket bytes enter (the read
 * callback) and leave (gathered writes, uv_write() of a GET chunk, and
 * sendfile() of a GET payload), with the backpressure that keeps memory
 * bounded:
 *  - the read buffer exists only while bytes are being parsed or pinned by
 *    disk writes (an idle connection holds none);
 *  - small frames gathered in one loop iteration go out in one write;
 *  - reading stops while the client leaves answers unread or the disk lags
 *    behind an upload.
 *
 * Between the socket and the session sits a transport (struct
 * fsd_transport): plaintext today, which hands the read buffer to the
 * session as it is and writes frames as they are. A transport that
 * transforms the bytes (TLS through memory BIOs) implements the same three
 * operations and says zero_copy = 0: file bytes can then not go from the
 * page cache to the socket, and GETs take the copy path. */
#ifndef FSD_CONN_H
#define FSD_CONN_H

#include <fsproto/fsproto.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "addr.h"
#include "budget.h"
#include "bufpool.h"
#include "guard.h"
#include "list.h"
#include "peers.h"
#include "session.h"

/* Bytes all GETs of one connection may read ahead together (see
 * budget.h): what a connection whose client reads nothing can make fsd
 * hold for its downloads, whatever the number of its requests. */
#define FSD_CONN_XFER_BUDGET (2u << 20)

struct fsd_conn;
struct fsd_host;
struct fsd_tlsd;
struct fsd_tls_conn;

/* How bytes cross between a connection's socket and its session. */
struct fsd_transport {
  const char *name; /* for the log */
  /* Whether the bytes on the socket are the bytes of the frames, so that a
   * DATA payload may go out with sendfile() from the file. */
  int zero_copy;
  /* c->rb holds bytes just read from the socket: turn them into frames for
   * c->sess (fsd_session_feed) and keep what is left for later. */
  void (*bytes_in)(struct fsd_conn *c);
  /* Writes what the socket takes of p[0..len) at once. Returns the number
   * of bytes taken (0 when the socket is full or earlier bytes are still
   * queued), or a negative UV_E* code. */
  int (*try_write)(struct fsd_conn *c, const uint8_t *p, size_t len);
  /* Queues bufs[0..n) behind everything queued before, as uv_write(). */
  int (*write)(struct fsd_conn *c, uv_write_t *req, const uv_buf_t *bufs,
               unsigned n, uv_write_cb cb);
  /* Optional. Reading resumed after backpressure: bytes the transport
   * already holds (decrypted inside TLS) go to the session now, as no
   * socket read may come to carry them. */
  void (*resume)(struct fsd_conn *c);
  /* Optional. The connection closes after its output: the last bytes for
   * the peer (TLS close_notify) are queued here, before the shutdown. */
  void (*closing)(struct fsd_conn *c);
  /* Optional, from the periodic sweep: returns non-zero, having logged
   * why, when c is past a deadline of the transport (a TLS handshake) and
   * must be dropped. now is uv_now(). */
  int (*overdue)(struct fsd_conn *c, uint64_t now);
  /* Optional. Frees what the transport holds for c (c->tls), from the
   * connection's last unref. */
  void (*release)(struct fsd_conn *c);
  /* Writes the channel binding of protocol.md section 11 (TLS: the
   * exporter's bytes) into out and returns its length. NULL: none. */
  size_t (*binding)(struct fsd_conn *c, uint8_t *out, size_t cap);
};

/* The plaintext transport. */
extern const struct fsd_transport fsd_transport_plain;

/* A DATA frame whose payload sendfile() takes straight from a file. The
 * sender owns it; it must stay valid until done is called. */
struct fsd_zframe {
  int fd;                   /* the file */
  uint64_t pos;             /* next file byte to send */
  size_t left;              /* payload bytes still to send */
  uint8_t hdr[FSP_HDR_LEN]; /* the frame's header */
  size_t hdr_done;          /* header bytes sent */
  const char *name;         /* the file's name, for the log */
  /* The frame is out (status 0) or was cut short by the connection's end
   * (negative). Called once. */
  void (*done)(struct fsd_zframe *zf, int status);
};

/* Something that waits for a connection's output to move on: a GET that
 * reads ahead only while the socket's queue is short. */
struct fsd_waiter {
  struct fsd_list link; /* in c->waiters */
  void (*writable)(struct fsd_waiter *w);
};

/* The connections of one server. */
struct fsd_net {
  uv_loop_t *loop;
  struct fsd_host *host; /* the host operations' state (not looked into) */
  struct fsd_tlsd *tls;  /* TLS settings (tls.h); NULL when TLS is off */
  /* The transport every connection starts with: plaintext, or the
   * first-byte check of a listener with TLS (tls.h). */
  const struct fsd_transport *first;
  struct fsd_list conns;    /* every connection, through fsd_conn.link */
  unsigned nclients;        /* connections counted against max_clients */
  unsigned max_clients;     /* --max-clients */
  unsigned max_per_ip;      /* --max-clients-per-ip */
  struct fsd_peers peers;   /* connections per address */
  unsigned idle_timeout;    /* --idle-timeout, seconds; 0 never */
  struct fsd_list dirty;    /* connections with gathered output */
  struct fsd_list sent;     /* buffers sent at once, freed after the flush */
  int flushing;             /* the flush check runs */
  uv_check_t flush;         /* writes gathered output after each poll */
  struct fsd_bufpool rpool; /* spare read buffers */
  struct fsd_bufpool opool; /* spare output buffers */
  int stopping;             /* the server stops: on_empty when all are gone */
  struct fsd_authsrv *auth; /* authentication (authsrv.c) */
  void (*on_empty)(struct fsd_net *net);
};

struct fsd_conn {
  uv_tcp_t tcp;                   /* the socket; tcp.data points here */
  struct fsd_session sess;        /* protocol state */
  struct fsd_net *net;            /* the server's connections */
  const struct fsd_transport *tp; /* how bytes cross the socket */
  struct fsd_tls_conn *tls;       /* TLS state once a handshake began */
  struct fsd_list link;           /* in net->conns */
  struct fsd_list waiters;        /* fsd_waiters to call on output */
  struct fsd_buf *rb;             /* current read buffer, NULL when idle */
  struct fsd_buf *out;            /* small frames gathered for one write */
  struct fsd_list dirty_link;     /* in net->dirty */
  struct fsd_zframe *zf;          /* frame sendfile() is in the middle of */
  struct fsd_zpoll *poll;         /* writability of a dup of the socket */
  uint64_t last_active;           /* uv_now() of the last byte in */
  uint64_t last_out;              /* uv_now() when output last moved, or
                                     began to wait */
  size_t last_qsize;              /* libuv's write queue at the last sweep */
  int last_outq;                  /* the kernel's unsent bytes then */
  uint64_t unpaused_at;           /* uv_now() when reading last resumed */
  uint64_t closing_since;         /* uv_now() when close-after-flush began */
  struct fsd_budget budget;       /* read-ahead all GETs share */
  struct sockaddr_storage addr;   /* the peer's address */
  size_t put_mem;                 /* bytes of read buffers that upload
                                     pieces waiting for the disk hold */
  unsigned put_writes;            /* PUT disk writes in flight */
  unsigned puts;                  /* uploads open (temp file created) */
  unsigned refs;                  /* the handle, every op, the dirty list */
  uint8_t closing;                /* no more reading; closing after flush */
  uint8_t paused;                 /* reading stopped for backpressure */
  uint8_t hard;                   /* being closed without flush */
  uint8_t broken;                 /* failed: hard close at the next flush */
  uint8_t counted;                /* counts against max_clients */
  uint8_t ip_counted;             /* counted in net->peers */
  uint8_t dirty;                  /* in net->dirty: out waits for a flush */
  uint8_t wrote;                  /* out went out at once: writable due */
  uint8_t close_pending;          /* close once the zf frame is out */
  char peer[FSD_ADDR_STRLEN];     /* "addr:port" for the log */
  /* Authentication (authsrv.c). */
  struct fsd_list auth_link;     /* in the held AUTHs while auth_held */
  struct fsd_guard_key auth_key; /* the peer's address, as failures count */
  uint64_t auth_since;           /* uv_now() at accept: the deadline runs */
  uint64_t auth_due;             /* uv_now() when a held AUTH is checked */
  uint8_t unauth;                /* counted as waiting for AUTH */
  uint8_t auth_held;             /* an AUTH waits for its delay */
};

/* Initialises net (no connections) and starts its flush check on loop.
 * The check never keeps the loop running. */
void fsd_net_init(struct fsd_net *net, uv_loop_t *loop, struct fsd_host *host,
                  unsigned max_clients, unsigned idle_timeout);

/* Limits the connections from one address to max (--max-clients-per-ip;
 * no limit until this is called); seed keys the table of addresses. */
void fsd_net_limit_per_ip(struct fsd_net *net, unsigned max, uint64_t seed);

/* Frees the spare buffers; the connections must be gone. */
void fsd_net_free(struct fsd_net *net);

/* The periodic check: closes connections whose peer stopped reading our
 * last frames, or whose answers moved no byte for the idle timeout (it
 * reads nothing), times out idle ones, and trims the output pool. */
void fsd_net_sweep(struct fsd_net *net);

/* The server stops: every session ends its requests and says BYE. */
void fsd_net_shutdown(struct fsd_net *net);

/* Closes every connection at once. */
void fsd_net_drop_all(struct fsd_net *net);

/* Accepts a connection from server with a session on ctx whose host
 * operations are ops. Returns the connection, not yet reading (see
 * fsd_conn_start), or NULL when it could not be accepted. */
struct fsd_conn *fsd_conn_accept(struct fsd_net *net, uv_stream_t *server,
                                 struct fsd_ctx *ctx,
                                 const struct fsd_host_ops *ops);

/* Counts c against max_clients and max_per_ip and starts reading. Returns
 * 0, or FSP_ST_LIMIT when max_clients are connected or max_per_ip from c's
 * address (c is then refused with an ERROR LIMIT and closed). */
int fsd_conn_start(struct fsd_conn *c);

/* Takes and drops a reference: c is freed when the last goes. */
void fsd_conn_ref(struct fsd_conn *c);
void fsd_conn_unref(struct fsd_conn *c);

/* Queues a frame: copied into the gathered output, written after this loop
 * iteration. Returns 0, UV_ECANCELED when c is closing, or UV_ENOMEM. */
int fsd_conn_send(struct fsd_conn *c, const void *frame, size_t len);

/* Bytes queued for c's socket but not yet written. */
size_t fsd_conn_backlog(const struct fsd_conn *c);

/* Bytes in libuv's write queue of c (written by uv_write, not yet sent). */
size_t fsd_conn_queued(const struct fsd_conn *c);

/* Closes c once everything queued has been written. */
void fsd_conn_close(struct fsd_conn *c);

/* Closes c now, dropping what is queued. */
void fsd_conn_hard_close(struct fsd_conn *c);

/* Writes b->data[0..len) after the gathered output; b->done(b, status) is
 * called once written (then output moved on). b->owner is set to c.
 * Returns 0 or a negative UV_E* code (b->done is then not called). */
int fsd_conn_write(struct fsd_conn *c, struct fsd_buf *b, size_t len);

/* Starts sending zf (fd, pos, name and done set) as one DATA frame of len
 * payload bytes for request id: its header with send(), its payload with
 * sendfile(). Only for transports with zero_copy. Returns 1 when started
 * (zf->done follows, maybe already called), 0 when the socket is busy
 * (try again from the next fsd_waiter call), or -1 when c failed: zf->done
 * is not called, and c is closed after the current callback (the caller
 * and its transfer are still there when this returns). */
int fsd_conn_sendfile(struct fsd_conn *c, struct fsd_zframe *zf, uint32_t id,
                      size_t len);

/* Stops or resumes reading: stops while the disk lags behind an upload or
 * the client leaves answers unread, resumes at half the marks. */
void fsd_conn_update_reading(struct fsd_conn *c);

/* Calls c's waiters at the end of this loop iteration's poll phase, as if
 * output had moved: for bytes of c->budget given back by code that may not
 * call them itself (they may end requests the caller is walking). */
void fsd_conn_wake(struct fsd_conn *c);

/* For transports: after the session took used bytes of c->rb, keeps the
 * rest in a buffer no disk write points into (c->rb, or NULL when none is
 * left). */
void fsd_conn_keep_tail(struct fsd_conn *c, size_t used);

/* For transports: the size of a fresh read buffer, and the read buffer
 * pool. */
#define FSD_READ_BLOCK 65536u

#endif /* FSD_CONN_H */
