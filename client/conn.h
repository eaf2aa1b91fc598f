/* fsc connection: one TCP connection to fsd on libuv. It resolves and
 * connects, exchanges HELLO, numbers requests, decodes incoming frames with
 * libfsproto's incremental decoder and hands each to its request. DATA
 * payloads are handed out where they landed in the read buffer (no copy);
 * a request that needs them after the callback takes a reference on the
 * read block that holds them. */
#ifndef FSC_CONN_H
#define FSC_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "fsproto/fsproto.h"

/* The highest protocol version fsc speaks, announced in its HELLO: folders
 * and paths (protocol.md section 12). */
#define FSC_PROTO_VERSION FSP_TREE_VERSION

/* A reference-counted piece of read buffer. */
struct fsc_rblock {
  unsigned refs; /* the connection holds one while it reads into it */
  size_t cap;    /* bytes in data */
  uint8_t data[];
};

/* Takes and drops a reference; with its last one the block is freed, or
 * kept as a spare for the next read (at most 16 MiB of spares). */
void fsc_rblock_ref(struct fsc_rblock *b);
void fsc_rblock_unref(struct fsc_rblock *b);
/* Frees the spare blocks (at exit, so leak checkers see a clean heap). */
void fsc_rblock_trim(void);

struct fsc_req;
struct fsc_conn;
struct fsc_outq;

/* The transport: the one place where the socket's bytes enter and leave.
 * Everything above it (the decoder, requests, HELLO) sees plaintext frames;
 * everything below is the TCP handle. fsc_plain_transport passes bytes
 * through untouched and lets the socket read straight into the read blocks
 * (no copy). A transport that transforms the bytes (TLS with memory BIOs)
 * reads the socket into its own buffer in alloc/read, writes what it
 * turns into plaintext at fsc_conn_plain_buf() and reports it with
 * fsc_conn_plain_in(); its write transforms the frames and writes the
 * result to c->tcp, calling cb once they are on their way; its connected
 * hook runs the handshake between connect and HELLO. */
struct fsc_transport {
  /* A buffer for the next socket read (uv_alloc_cb semantics). */
  void (*alloc)(struct fsc_conn *c, uv_buf_t *buf);
  /* nread > 0 bytes arrived in the buffer alloc gave. */
  void (*read)(struct fsc_conn *c, size_t nread);
  /* Sends bufs[0..n) in order; cb(req, status) runs when they are
   * written or failed. Returns 0 or a UV_E* code (cb will not run). */
  int (*write)(struct fsc_conn *c, uv_write_t *req, const uv_buf_t *bufs,
               unsigned n, uv_write_cb cb);
  /* Optional. Reading resumed after a pause: plaintext the transport
   * already holds (decrypted inside TLS) is delivered now, as no socket
   * read may come to carry it. */
  void (*resume)(struct fsc_conn *c);
  /* Optional. TCP connected, HELLO comes next: a TLS transport starts its
   * handshake here and holds HELLO until it is over. Returns 0 or a UV_E*
   * code (the connection fails). */
  int (*connected)(struct fsc_conn *c);
  /* Optional: writes the channel binding of protocol.md section 11 (TLS:
   * the exporter's bytes) into out and returns its length; NULL: none. */
  size_t (*binding)(struct fsc_conn *c, uint8_t *out, size_t cap);
};

/* Plaintext TCP: the transport every connection uses today. */
extern const struct fsc_transport fsc_plain_transport;

/* For transports: room in the read blocks for the next plaintext bytes
 * (empty when out of memory), and n plaintext bytes written there, to
 * decode and dispatch. */
void fsc_conn_plain_buf(struct fsc_conn *c, uv_buf_t *buf);
void fsc_conn_plain_in(struct fsc_conn *c, size_t n);

/* For transports: the connection failed (err UV_E*), msg saying why (shown
 * to the user as the server's words would be). */
void fsc_conn_fail(struct fsc_conn *c, int err, const char *msg);

/* What a request does with its frames. */
struct fsc_req_ops {
  /* A whole frame other than DATA, decoded, with this request's id. m and
   * its strings are valid during the call only. */
  void (*on_msg)(struct fsc_req *r, const struct fsp_msg *m);
  /* A piece of a DATA frame's payload: p[0..n) lies in blk, which stays
   * valid after the call only if the request takes a reference. */
  void (*on_data)(struct fsc_req *r, const uint8_t *p, size_t n,
                  struct fsc_rblock *blk);
  /* The connection is gone: the request gets nothing more and has been
   * unregistered. err is a UV_E* code. */
  void (*on_lost)(struct fsc_req *r, int err);
};

/* A request in flight. Embedded in the caller's state. */
struct fsc_req {
  struct fsc_req *next; /* private: the connection's list */
  uint32_t id;          /* assigned by fsc_conn_request() */
  int registered;       /* 1 while the connection routes frames to it */
  const struct fsc_req_ops *ops;
  void *data; /* for the owner */
};

enum fsc_conn_state {
  FSC_CONN_IDLE,       /* not started */
  FSC_CONN_CONNECTING, /* resolving, connecting, waiting for HELLO (and,
                          when the server asks, authenticating) */
  FSC_CONN_READY,      /* HELLO exchanged */
  FSC_CONN_CLOSING,    /* BYE sent or handle closing */
  FSC_CONN_CLOSED,     /* handle closed */
};

struct fsc_conn {
  uv_loop_t *loop;
  /* How bytes cross the socket; fsc_conn_open() sets fsc_plain_transport
   * when it is NULL. */
  const struct fsc_transport *transport;
  void *transport_data; /* for the transport */
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_getaddrinfo_t gai;
  uv_timer_t hello_timer;   /* gives up when HELLO does not come */
  int timer_open;           /* hello_timer is initialised, not closed */
  struct addrinfo *ai_list; /* resolved addresses, freed after connect */
  struct addrinfo *ai_next; /* next address to try */
  enum fsc_conn_state state;
  int tcp_open;    /* tcp was initialised and must be closed */
  int tcp_closing; /* tcp's uv_close is under way */
  /* Frames sent during this turn of the loop, written as one batch just
   * before the loop waits (flush, a prepare handle), or at once when big:
   * many small requests cost one socket write, not one each. */
  struct fsc_outq *out;
  uv_prepare_t flush;
  int flush_state; /* 0: flush not initialised, 1: open, 2: closing */
  struct fsp_decoder dec;
  struct fsc_rblock *blk;    /* block being read into */
  size_t start;              /* first byte of blk not yet decoded */
  size_t end;                /* end of the bytes read into blk */
  size_t rblock_size;        /* read block size; 0: the default (2 MiB) */
  size_t min_read;           /* smallest tail worth a read; 0: 128 KiB */
  int read_paused;           /* pause requests (backpressure) */
  int reading;               /* uv_read_start is in effect */
  uint32_t peer_max_payload; /* from the server's HELLO */
  uint32_t peer_max_inflight;
  uint64_t peer_caps;
  /* The version spoken: the lower of the two HELLOs' (FSP_AUTH_VERSION
   * until the server's HELLO came, which encodes as versions 1 and 2 do).
   * Every frame is encoded and decoded in its layout. */
  unsigned version;
  uint32_t next_id;     /* last request id used */
  struct fsc_req *reqs; /* requests in flight */
  struct fsc_req *last; /* the request that got the last frame */
  int err;              /* why the connection failed (UV_E*), or 0 */
  char msg[512];        /* the server's own words, when it gave any */
  void *data;           /* for the owner */
  /* Connected and HELLO exchanged (status 0), or failed (UV_E*; msg may
   * hold the server's reason). */
  void (*on_ready)(struct fsc_conn *c, int status);
  /* A frame with id 0 after HELLO: EVENT, NOTIFY or RESYNC. */
  void (*on_push)(struct fsc_conn *c, const struct fsp_msg *m);
  /* The connection broke after it was ready (err UV_E*; msg may hold the
   * server's reason). Requests already had on_lost. */
  void (*on_lost)(struct fsc_conn *c, int err);
  /* The handle is closed; c may be freed now. */
  void (*on_closed)(struct fsc_conn *c);
  /* Answers a server's CHALLENGE (protocol.md section 11): fills *auth
   * with the AUTH message for nonce and this connection's channel binding
   * (binding_len 0 over plaintext); what it points at stays valid until
   * the next call. Returns 0, or a negative UV_E* code with the reason in
   * why[0..whylen). NULL: a server that asks is refused, and on_ready gets
   * UV_EACCES, as when the server refuses the answer. */
  int (*on_challenge)(void *arg, const uint8_t *nonce, const uint8_t *binding,
                      size_t binding_len, struct fsp_msg *auth, char *why,
                      size_t whylen);
  void *challenge_arg; /* on_challenge's first argument */
  int authing;         /* the server asked for AUTH; not yet accepted */
};

/* How long connecting and the HELLO exchange may take, in ms. */
#define FSC_HELLO_TIMEOUT_MS 15000

/* Starts connecting to server ("HOST:PORT" or "[ADDR]:PORT"). The callbacks
 * must be set first. A connection whose on_closed has run may be opened
 * again (requests and ids start afresh). Returns 0 or a UV_E* code
 * (nothing started; UV_EBUSY while the connection is not closed). */
int fsc_conn_open(struct fsc_conn *c, uv_loop_t *loop, const char *server);

/* Registers r (its ops set), gives it a fresh id, and sends m with that id.
 * Returns 0 or a negative code (r is then not registered). */
int fsc_conn_request(struct fsc_conn *c, struct fsc_req *r, struct fsp_msg *m);

/* Unregisters r: frames for its id are ignored from now on. */
void fsc_conn_finish(struct fsc_conn *c, struct fsc_req *r);

/* Whether the connection serves folders and paths (it speaks version 3). */
int fsc_conn_tree(const struct fsc_conn *c);

/* Sends one message (its id set by the caller). Returns 0 or negative. */
int fsc_conn_send(struct fsc_conn *c, const struct fsp_msg *m);

/* Sends a DATA frame whose payload sits at frame + FSP_HDR_LEN; the header
 * is written into frame[0..FSP_HDR_LEN). frame must stay valid until cb
 * runs with req (which the caller owns). Returns 0 or negative (cb will
 * not run). */
int fsc_conn_send_data(struct fsc_conn *c, uv_write_t *req, uint32_t id,
                       uint8_t *frame, uint32_t len, uv_write_cb cb);

/* Bytes queued for the socket and not yet written. */
size_t fsc_conn_write_queue(const struct fsc_conn *c);

/* Backpressure: stop reading from the server until every pause has been
 * matched by a resume. */
void fsc_conn_pause(struct fsc_conn *c);
void fsc_conn_resume(struct fsc_conn *c);

/* Ends the connection: sends BYE (when ready) and closes once it is
 * written. on_closed runs at the end. Safe to call more than once. */
void fsc_conn_close(struct fsc_conn *c);

/* Ends the connection at once: pending writes are dropped, requests are
 * unregistered without on_lost, and the server sees a disconnect (which
 * drops uploads in progress). on_closed runs at the end. */
void fsc_conn_abort(struct fsc_conn *c);

#endif /* FSC_CONN_H */
