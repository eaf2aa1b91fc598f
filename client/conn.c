/* fsc connection on libuv. See conn.h. */
#include "conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "outq.h"

/* Read blocks are big so that a 1 MiB DATA frame takes few reads and few
 * blocks; a read is only offered the tail of a block when at least
 * MIN_READ bytes are left, else a new block starts. */
#define RBLOCK_SIZE (2u << 20)
#define MIN_READ (128u * 1024)

/* Spare read blocks of the default size. A download cycles through blocks
 * as fast as the disk writes release them; handing freed ones back to malloc
 * made glibc trim and regrow its heap, and the kernel fault the fresh pages
 * in again: about 56,000 page faults per GiB, a quarter of fsc's time. Up to
 * SPARE_MAX blocks (16 MiB) are kept instead. All on the loop thread. */
#define SPARE_MAX 8u
static struct fsc_rblock *spares[SPARE_MAX];
static unsigned nspares;

static struct fsc_rblock *rblock_new(size_t cap) {
  struct fsc_rblock *b;
  if (cap == RBLOCK_SIZE && nspares > 0)
    b = spares[--nspares];
  else
    b = fsc_malloc(sizeof *b + cap);
  if (b != NULL) {
    b->refs = 1;
    b->cap = cap;
  }
  return b;
}

void fsc_rblock_ref(struct fsc_rblock *b) {
  b->refs++;
}

void fsc_rblock_unref(struct fsc_rblock *b) {
  if (b == NULL || --b->refs != 0)
    return;
  if (b->cap == RBLOCK_SIZE && nspares < SPARE_MAX)
    spares[nspares++] = b;
  else
    fsc_free(b);
}

void fsc_rblock_trim(void) {
  while (nspares > 0)
    fsc_free(spares[--nspares]);
}

/* A batch is written at once, rather than at the end of the turn, once it
 * holds this many bytes: what one turn sends stays bounded, and a big DATA
 * frame goes out as soon as it is ready, as it would alone. */
#define OUT_FLUSH_BYTES (1u << 20)

static void fail(struct fsc_conn *c, int err);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
set_msg(struct fsc_conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof c->msg, fmt, ap);
  va_end(ap);
}

static void stop_timer(struct fsc_conn *c) {
  if (c->timer_open) {
    uv_close((uv_handle_t *)&c->hello_timer, NULL);
    c->timer_open = 0;
  }
}

static void on_hello_timeout(uv_timer_t *t) {
  struct fsc_conn *c = t->data;
  set_msg(c, "no answer within %d s", FSC_HELLO_TIMEOUT_MS / 1000);
  fail(c, UV_ETIMEDOUT);
}

/* Both handles (the socket and the flush) are closed: the connection is
 * over, and may be freed or opened again. */
static void finish_close(struct fsc_conn *c) {
  if (c->tcp_closing || c->flush_state == 2)
    return;
  if (c->out != NULL) { /* gathered after the close began: never written */
    fsc_outq_done(c->out, UV_ECANCELED);
    fsc_outq_free(c->out);
    c->out = NULL;
  }
  c->state = FSC_CONN_CLOSED;
  fsc_rblock_unref(c->blk);
  c->blk = NULL;
  if (c->on_closed)
    c->on_closed(c);
}

static void on_close(uv_handle_t *h) {
  struct fsc_conn *c = h->data;
  c->tcp_closing = 0;
  finish_close(c);
}

static void on_flush_closed(uv_handle_t *h) {
  struct fsc_conn *c = h->data;
  c->flush_state = 0;
  finish_close(c);
}

static void flush_out(struct fsc_conn *c, int closing);

static void close_handle(struct fsc_conn *c) {
  if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp)) {
    /* What is gathered goes to the socket first: libuv then ends every
     * write, with UV_ECANCELED for what the close leaves unwritten, so
     * each owner hears of its DATA frames. The state changes first, so
     * that an owner's callback cannot gather more. */
    c->state = FSC_CONN_CLOSING;
    flush_out(c, 1);
    if (c->flush_state == 1) {
      c->flush_state = 2;
      uv_close((uv_handle_t *)&c->flush, on_flush_closed);
    }
    c->tcp_closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_close);
  } else if (!c->tcp_open && c->state != FSC_CONN_CLOSED) {
    if (c->out != NULL) { /* no socket to write it to */
      fsc_outq_done(c->out, UV_ECANCELED);
      fsc_outq_free(c->out);
      c->out = NULL;
    }
    if (c->flush_state == 1) {
      c->state = FSC_CONN_CLOSING;
      c->flush_state = 2;
      uv_close((uv_handle_t *)&c->flush, on_flush_closed);
      return;
    }
    c->state = FSC_CONN_CLOSED;
    if (c->on_closed)
      c->on_closed(c);
  }
}

/* A batch was written (or failed): its callers' callbacks run, then a
 * failed write fails the connection, and a written BYE closes it. */
static void on_batch_written(uv_write_t *req, int status) {
  struct fsc_outq *q = (struct fsc_outq *)req;
  struct fsc_conn *c = q->data;
  int bye = q->bye;
  fsc_outq_done(q, status);
  fsc_outq_free(q);
  if (status < 0 && status != UV_ECANCELED)
    fail(c, status);
  else if (bye)
    close_handle(c);
}

/* Hands the gathered batch to the transport as one write. A write that
 * cannot start ends the batch's writes with its error; unless the
 * connection is closing anyway, the connection fails. */
static void flush_out(struct fsc_conn *c, int closing) {
  struct fsc_outq *q = c->out;
  if (q == NULL)
    return;
  c->out = NULL;
  if (c->flush_state == 1)
    uv_prepare_stop(&c->flush);
  if (q->nsegs == 0) { /* nothing was added (out of memory) */
    fsc_outq_free(q);
    return;
  }
  uv_buf_t *bufs;
  unsigned n;
  int rc = fsc_outq_bufs(q, &bufs, &n);
  if (rc == 0)
    rc = c->transport->write(c, &q->req, bufs, n, on_batch_written);
  if (rc == 0)
    return;
  fsc_outq_done(q, rc);
  fsc_outq_free(q);
  if (!closing)
    fail(c, rc);
}

/* Just before the loop waits for I/O: everything the turn sent goes out in
 * one write. */
static void on_flush(uv_prepare_t *h) {
  flush_out(h->data, 0);
}

/* The batch the next frames join, made (and its flush armed) when none is
 * gathering. Returns NULL when out of memory. */
static struct fsc_outq *out_batch(struct fsc_conn *c) {
  if (c->out != NULL)
    return c->out;
  if (c->flush_state == 0) {
    if (uv_prepare_init(c->loop, &c->flush) != 0)
      return NULL;
    c->flush.data = c;
    c->flush_state = 1;
  }
  if (c->flush_state != 1)
    return NULL;
  struct fsc_outq *q = fsc_outq_new();
  if (q == NULL)
    return NULL;
  q->data = c;
  uv_prepare_start(&c->flush, on_flush);
  c->out = q;
  return q;
}

/* A full batch goes now rather than at the end of the turn. */
static void out_added(struct fsc_conn *c) {
  if (c->out != NULL && c->out->bytes >= OUT_FLUSH_BYTES)
    flush_out(c, 0);
}

static int send_msg(struct fsc_conn *c, const struct fsp_msg *m, int bye) {
  ssize_t need = fsp_msg_encode_v(NULL, 0, c->version, m);
  if (need < 0)
    return (int)need;
  struct fsc_outq *q = out_batch(c);
  uint8_t *p = q != NULL ? fsc_outq_reserve(q, (size_t)need) : NULL;
  if (p == NULL)
    return UV_ENOMEM;
  fsp_msg_encode_v(p, (size_t)need, c->version, m);
  if (bye) {
    q->bye = 1;
    flush_out(c, 0);
  } else
    out_added(c);
  return 0;
}

int fsc_conn_tree(const struct fsc_conn *c) {
  return c->version >= FSP_TREE_VERSION;
}

int fsc_conn_send(struct fsc_conn *c, const struct fsp_msg *m) {
  if (c->state != FSC_CONN_READY && c->state != FSC_CONN_CONNECTING)
    return UV_ENOTCONN;
  return send_msg(c, m, 0);
}

int fsc_conn_send_data(struct fsc_conn *c, uv_write_t *req, uint32_t id,
                       uint8_t *frame, uint32_t len, uv_write_cb cb) {
  if (c->state != FSC_CONN_READY)
    return UV_ENOTCONN;
  fsp_header_write(frame, FSP_OP_DATA, id, len);
  struct fsc_outq *q = out_batch(c);
  if (q == NULL || fsc_outq_add(q, frame, FSP_HDR_LEN + len, req, cb) < 0)
    return UV_ENOMEM;
  out_added(c);
  return 0;
}

size_t fsc_conn_write_queue(const struct fsc_conn *c) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) +
         (c->out != NULL ? c->out->bytes : 0);
}

static struct fsc_req *find_req(struct fsc_conn *c, uint32_t id) {
  /* Most frames belong to the same request as the one before. */
  if (c->last != NULL && c->last->id == id && c->last->registered)
    return c->last;
  for (struct fsc_req *r = c->reqs; r != NULL; r = r->next)
    if (r->id == id) {
      c->last = r;
      return r;
    }
  return NULL;
}

int fsc_conn_request(struct fsc_conn *c, struct fsc_req *r, struct fsp_msg *m) {
  if (c->state != FSC_CONN_READY)
    return UV_ENOTCONN;
  /* Ids are never reused within a connection: a late frame for a request
   * that already ended can then never be mistaken for a new one. */
  if (++c->next_id == 0)
    c->next_id = 1;
  r->id = c->next_id;
  m->id = r->id;
  int rc = send_msg(c, m, 0);
  if (rc < 0)
    return rc;
  r->next = c->reqs;
  c->reqs = r;
  r->registered = 1;
  return 0;
}

void fsc_conn_finish(struct fsc_conn *c, struct fsc_req *r) {
  if (!r->registered)
    return;
  for (struct fsc_req **p = &c->reqs; *p != NULL; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      break;
    }
  r->registered = 0;
  r->next = NULL;
  if (c->last == r)
    c->last = NULL;
}

static void stop_reading(struct fsc_conn *c) {
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void start_reading(struct fsc_conn *c) {
  if (!c->reading && c->read_paused == 0 && c->tcp_open &&
      (c->state == FSC_CONN_READY || c->state == FSC_CONN_CONNECTING)) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
      c->reading = 1;
  }
}

void fsc_conn_pause(struct fsc_conn *c) {
  c->read_paused++;
  stop_reading(c);
}

void fsc_conn_resume(struct fsc_conn *c) {
  if (c->read_paused > 0 && --c->read_paused == 0) {
    start_reading(c);
    if (c->transport->resume != NULL)
      c->transport->resume(c);
  }
}

/* The connection broke or the server ended it: tell every request, then the
 * owner, then close. */
static void fail(struct fsc_conn *c, int err) {
  enum fsc_conn_state was = c->state;
  if (was == FSC_CONN_CLOSED || (was == FSC_CONN_CLOSING && c->err != 0))
    return;
  if (c->err == 0)
    c->err = err;
  stop_timer(c);
  stop_reading(c);
  c->ai_next = NULL;
  close_handle(c);
  if (was == FSC_CONN_CONNECTING) {
    if (c->on_ready)
      c->on_ready(c, err);
    return;
  }
  if (was == FSC_CONN_CLOSING)
    return; /* we were closing anyway: nothing is waiting */
  while (c->reqs != NULL) {
    struct fsc_req *r = c->reqs;
    fsc_conn_finish(c, r);
    if (r->ops->on_lost)
      r->ops->on_lost(r, err);
  }
  if (c->on_lost)
    c->on_lost(c, err);
}

/* HELLO exchanged (and authenticated, when asked): requests may go. */
static void ready(struct fsc_conn *c) {
  c->state = FSC_CONN_READY;
  stop_timer(c);
  if (c->on_ready)
    c->on_ready(c, 0);
}

/* Signs the server's challenge through the owner's callback and sends
 * AUTH; without a callback, or when it fails, gives up with UV_EACCES. */
static void answer_challenge(struct fsc_conn *c, const uint8_t *nonce) {
  uint8_t binding[FSP_BINDING_MAX];
  size_t blen = 0;
  struct fsp_msg auth;
  int rc;

  if (c->on_challenge == NULL) {
    set_msg(c, "the server requires authentication");
    fail(c, UV_EACCES);
    return;
  }
  if (c->transport->binding != NULL)
    blen = c->transport->binding(c, binding, sizeof binding);
  memset(&auth, 0, sizeof auth);
  rc = c->on_challenge(c->challenge_arg, nonce, binding,
                       blen > sizeof binding ? 0 : blen, &auth, c->msg,
                       sizeof c->msg);
  if (rc == 0)
    rc = send_msg(c, &auth, 0);
  if (rc < 0)
    fail(c, UV_EACCES);
}

void fsc_conn_fail(struct fsc_conn *c, int err, const char *msg) {
  set_msg(c, "%s", msg);
  fail(c, err);
}

/* Frames with id 0 concern the whole connection. */
static void conn_frame(struct fsc_conn *c, const struct fsp_msg *m) {
  switch (m->op) {
  case FSP_OP_HELLO:
    if (c->state != FSC_CONN_CONNECTING)
      return;
    c->peer_max_payload = m->u.hello.max_payload;
    c->peer_max_inflight = m->u.hello.max_inflight;
    c->peer_caps = m->u.hello.caps;
    /* Section 3: the lower of the two versions is spoken. */
    c->version = m->u.hello.version < FSC_PROTO_VERSION ? m->u.hello.version
                                                        : FSC_PROTO_VERSION;
    if (c->version < 1)
      c->version = 1;
    if (c->peer_max_payload < FSP_MIN_PAYLOAD)
      c->peer_max_payload = FSP_MIN_PAYLOAD;
    if (c->peer_max_inflight == 0)
      c->peer_max_inflight = 1;
    if (m->u.hello.caps & FSP_CAP_AUTH) {
      c->authing = 1; /* ready once the server accepted our AUTH */
      return;
    }
    ready(c);
    return;
  case FSP_OP_CHALLENGE:
    if (c->state == FSC_CONN_CONNECTING && c->authing)
      answer_challenge(c, m->u.challenge.nonce);
    return;
  case FSP_OP_OK:
    if (c->state == FSC_CONN_CONNECTING && c->authing) {
      c->authing = 0;
      ready(c);
    }
    return;
  case FSP_OP_ERROR:
    if (m->u.error.text.len > 0)
      set_msg(c, "%.*s", (int)m->u.error.text.len, m->u.error.text.ptr);
    else
      set_msg(c, "%s", fsp_status_str(m->u.error.status));
    /* A refused authentication is not a broken connection: say so. */
    fail(c, m->u.error.status == FSP_ST_UNAUTHENTICATED ? UV_EACCES
                                                        : UV_ECONNABORTED);
    return;
  case FSP_OP_BYE:
    set_msg(c, "server closed the connection%s%.*s",
            m->u.error.text.len ? ": " : "", (int)m->u.error.text.len,
            m->u.error.text.ptr);
    fail(c, UV_ECONNRESET);
    return;
  case FSP_OP_PING: {
    struct fsp_msg pong = *m;
    pong.op = FSP_OP_PONG;
    send_msg(c, &pong, 0);
    return;
  }
  case FSP_OP_EVENT:
  case FSP_OP_NOTIFY:
  case FSP_OP_RESYNC:
    if (c->state == FSC_CONN_READY && c->on_push)
      c->on_push(c, m);
    return;
  default:
    return;
  }
}

static void dispatch_frame(struct fsc_conn *c, const struct fsp_frame *f) {
  struct fsp_msg m;
  int rc = fsp_msg_decode_v(f, c->version, &m);
  if (rc == FSP_EOPCODE)
    return; /* a newer server's frame: nothing we asked for */
  if (rc < 0) {
    const char *name = fsp_op_name(f->op);
    set_msg(c, "malformed %s frame from the server (%s)", name ? name : "?",
            fsp_strerror(rc));
    fail(c, UV_EPROTO);
    return;
  }
  if (f->id == FSP_EVENT_ID) {
    conn_frame(c, &m);
    return;
  }
  if (m.op == FSP_OP_BYE) { /* the answer to our BYE */
    close_handle(c);
    return;
  }
  if (m.op == FSP_OP_PING) {
    conn_frame(c, &m);
    return;
  }
  struct fsc_req *r = find_req(c, f->id);
  if (r != NULL && r->ops->on_msg)
    r->ops->on_msg(r, &m);
}

/* --- Plaintext in: read blocks and the decoder --- */

void fsc_conn_plain_buf(struct fsc_conn *c, uv_buf_t *buf) {
  struct fsc_rblock *b = c->blk;
  size_t min_read = c->min_read ? c->min_read : MIN_READ;
  if (b != NULL && b->cap - c->end >= min_read) {
    *buf = uv_buf_init((char *)b->data + c->end, (unsigned)(b->cap - c->end));
    return;
  }
  size_t keep = b != NULL ? c->end - c->start : 0;
  /* Nobody else holds the block: move the partial frame to its front. */
  if (b != NULL && b->refs == 1 && b->cap - keep >= min_read) {
    memmove(b->data, b->data + c->start, keep);
    c->start = 0;
    c->end = keep;
    *buf = uv_buf_init((char *)b->data + c->end, (unsigned)(b->cap - c->end));
    return;
  }
  size_t cap = c->rblock_size ? c->rblock_size : RBLOCK_SIZE;
  if (keep + min_read > cap)
    cap = keep + min_read; /* a big frame started: room for all of it */
  struct fsc_rblock *nb = rblock_new(cap);
  if (nb == NULL) {
    *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
    return;
  }
  if (keep > 0)
    memcpy(nb->data, b->data + c->start, keep);
  fsc_rblock_unref(b);
  c->blk = nb;
  c->start = 0;
  c->end = keep;
  *buf = uv_buf_init((char *)nb->data + keep, (unsigned)(cap - keep));
}

void fsc_conn_plain_in(struct fsc_conn *c, size_t len) {
  c->end += len;
  /* The block may be swapped by a callback only through on_alloc, which
   * cannot run inside this loop, so b stays valid throughout. */
  struct fsc_rblock *b = c->blk;
  fsc_rblock_ref(b);
  while (c->start < c->end &&
         (c->state == FSC_CONN_READY || c->state == FSC_CONN_CONNECTING)) {
    struct fsp_item it;
    ssize_t n =
        fsp_decoder_feed(&c->dec, b->data + c->start, c->end - c->start, &it);
    if (n < 0) {
      set_msg(c, "broken stream from the server (%s)", fsp_strerror((int)n));
      fail(c, UV_EPROTO);
      break;
    }
    if (n == 0)
      break;
    c->start += (size_t)n;
    if (it.type == FSP_ITEM_DATA) {
      struct fsc_req *r = find_req(c, it.frame.id);
      if (r != NULL && r->ops->on_data)
        r->ops->on_data(r, it.data, it.data_len, b);
    } else if (it.type == FSP_ITEM_FRAME)
      dispatch_frame(c, &it.frame);
  }
  if (c->blk == b && c->start == c->end && b->refs == 2)
    c->start = c->end = 0; /* all decoded and nobody holds a piece */
  fsc_rblock_unref(b);
}

/* --- The socket: everything that reads it goes through the transport --- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct fsc_conn *c = h->data;
  (void)suggested;
  c->transport->alloc(c, buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct fsc_conn *c = s->data;
  (void)buf;
  if (nread == 0)
    return;
  if (nread < 0) {
    if (nread == UV_EOF && c->state == FSC_CONN_CLOSING)
      close_handle(c);
    else {
      if (nread == UV_EOF && c->msg[0] == '\0')
        set_msg(c, "the server closed the connection");
      fail(c, nread == UV_EOF ? UV_ECONNRESET : (int)nread);
    }
    return;
  }
  c->transport->read(c, (size_t)nread);
}

/* Plaintext: the socket reads straight into the read blocks. */
static void plain_alloc(struct fsc_conn *c, uv_buf_t *buf) {
  fsc_conn_plain_buf(c, buf);
}

static void plain_read(struct fsc_conn *c, size_t nread) {
  fsc_conn_plain_in(c, nread);
}

static int plain_write(struct fsc_conn *c, uv_write_t *req,
                       const uv_buf_t *bufs, unsigned n, uv_write_cb cb) {
  return uv_write(req, (uv_stream_t *)&c->tcp, bufs, n, cb);
}

const struct fsc_transport fsc_plain_transport = {
    .alloc = plain_alloc, .read = plain_read, .write = plain_write};

static void try_connect(struct fsc_conn *c);

/* A failed attempt's handle is closed: its memory may be reused for the
 * next address. */
static void on_attempt_closed(uv_handle_t *h) {
  struct fsc_conn *c = h->data;
  if (c->state == FSC_CONN_CONNECTING)
    try_connect(c);
  else {
    uv_freeaddrinfo(c->ai_list);
    c->ai_list = c->ai_next = NULL;
    c->state = FSC_CONN_CLOSED;
    if (c->on_closed)
      c->on_closed(c);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  struct fsc_conn *c = req->data;
  if (status == UV_ECANCELED)
    return;
  if (status < 0) {
    if (c->ai_next != NULL && c->state == FSC_CONN_CONNECTING) {
      /* Try the next address once this handle is closed. */
      c->tcp_open = 0;
      uv_close((uv_handle_t *)&c->tcp, on_attempt_closed);
      return;
    }
    uv_freeaddrinfo(c->ai_list);
    c->ai_list = NULL;
    fail(c, status);
    return;
  }
  uv_freeaddrinfo(c->ai_list);
  c->ai_list = c->ai_next = NULL;
  uv_tcp_nodelay(&c->tcp, 1);
  if (c->transport->connected != NULL) {
    int trc = c->transport->connected(c);
    if (trc < 0) {
      fail(c, trc);
      return;
    }
  }
  struct fsp_msg hello;
  memset(&hello, 0, sizeof hello);
  hello.op = FSP_OP_HELLO;
  hello.id = FSP_EVENT_ID;
  hello.u.hello.version = FSC_PROTO_VERSION;
  hello.u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  hello.u.hello.agent.ptr = "fsc/" FSC_VERSION;
  hello.u.hello.agent.len = strlen(hello.u.hello.agent.ptr);
  int rc = send_msg(c, &hello, 0);
  if (rc < 0) {
    fail(c, rc);
    return;
  }
  start_reading(c);
}

static void try_connect(struct fsc_conn *c) {
  while (c->ai_next != NULL) {
    struct addrinfo *ai = c->ai_next;
    c->ai_next = ai->ai_next;
    if (uv_tcp_init(c->loop, &c->tcp) != 0)
      continue;
    c->tcp.data = c;
    c->tcp_open = 1;
    c->connect_req.data = c;
    if (uv_tcp_connect(&c->connect_req, &c->tcp, ai->ai_addr, on_connect) == 0)
      return;
    c->tcp_open = 0;
    uv_close((uv_handle_t *)&c->tcp, on_attempt_closed);
    return;
  }
  uv_freeaddrinfo(c->ai_list);
  c->ai_list = NULL;
  fail(c, UV_ECONNREFUSED);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  struct fsc_conn *c = req->data;
  if (c->state != FSC_CONN_CONNECTING) { /* closed while resolving */
    uv_freeaddrinfo(res);
    if (c->state != FSC_CONN_CLOSED) {
      c->state = FSC_CONN_CLOSED;
      if (c->on_closed)
        c->on_closed(c);
    }
    return;
  }
  if (status < 0) {
    fail(c, status);
    return;
  }
  c->ai_list = c->ai_next = res;
  try_connect(c);
}

int fsc_conn_open(struct fsc_conn *c, uv_loop_t *loop, const char *server) {
  char host[FSC_HOST_MAX], port[sizeof "65535"];
  int portn;
  if (fsc_parse_hostport(server, host, sizeof host, &portn) != 0)
    return UV_EINVAL;
  snprintf(port, sizeof port, "%d", portn);
  if (c->state != FSC_CONN_IDLE && c->state != FSC_CONN_CLOSED)
    return UV_EBUSY;
  /* A closed connection may be opened again: start from a clean slate,
   * keeping what the owner set (callbacks, data, buffer sizes). */
  c->ai_list = c->ai_next = NULL;
  c->tcp_open = 0;
  c->timer_open = 0;
  c->blk = NULL;
  c->out = NULL;
  c->tcp_closing = 0;
  c->start = c->end = 0;
  c->read_paused = 0;
  c->reading = 0;
  c->next_id = 0;
  c->reqs = c->last = NULL;
  c->err = 0;
  c->msg[0] = '\0';
  c->authing = 0;
  c->loop = loop;
  if (c->transport == NULL)
    c->transport = &fsc_plain_transport;
  c->state = FSC_CONN_CONNECTING;
  fsp_decoder_init(&c->dec, FSP_DEFAULT_PAYLOAD);
  c->peer_max_payload = FSP_MIN_PAYLOAD;
  c->peer_max_inflight = 1;
  c->version = FSP_AUTH_VERSION;
  c->gai.data = c;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV;
  int rc = uv_getaddrinfo(loop, &c->gai, on_resolved, host, port, &hints);
  if (rc < 0) {
    c->state = FSC_CONN_CLOSED; /* nothing started; may be opened again */
    return rc;
  }
  if (uv_timer_init(loop, &c->hello_timer) == 0) {
    c->hello_timer.data = c;
    c->timer_open = 1;
    uv_timer_start(&c->hello_timer, on_hello_timeout, FSC_HELLO_TIMEOUT_MS, 0);
  }
  return 0;
}

void fsc_conn_close(struct fsc_conn *c) {
  stop_timer(c);
  if (c->state == FSC_CONN_READY) {
    struct fsp_msg bye;
    memset(&bye, 0, sizeof bye);
    bye.op = FSP_OP_BYE;
    bye.id = ++c->next_id ? c->next_id : (c->next_id = 1);
    c->state = FSC_CONN_CLOSING;
    /* Requests still registered get nothing more. */
    while (c->reqs != NULL)
      fsc_conn_finish(c, c->reqs);
    if (send_msg(c, &bye, 1) == 0)
      return;
  }
  if (c->state == FSC_CONN_CONNECTING) {
    c->err = UV_ECANCELED;
    c->ai_next = NULL;
    if (!c->tcp_open) {
      /* Resolving, or between two attempts: the pending callback sees the
       * state and finishes the close. */
      c->state = FSC_CONN_CLOSING;
      uv_cancel((uv_req_t *)&c->gai);
      return;
    }
  }
  stop_reading(c);
  close_handle(c);
}

void fsc_conn_abort(struct fsc_conn *c) {
  while (c->reqs != NULL)
    fsc_conn_finish(c, c->reqs);
  if (c->state == FSC_CONN_CONNECTING && !c->tcp_open) {
    fsc_conn_close(c);
    return;
  }
  c->ai_next = NULL;
  stop_reading(c);
  close_handle(c);
}
