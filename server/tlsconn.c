/* The transports of a connection when TLS is on; see tls.h.
 *
 * Every connection starts with the sniffing transport: the first byte is
 * 0x16 (a TLS handshake record) or the magic of a plaintext frame (0xF5).
 * A handshake switches the connection to the TLS transport, which keeps an
 * fstls engine: socket bytes are fed to it and the read buffer given back
 * at once; the plaintext it yields collects in a buffer of its own (t->pb)
 * that the session reads exactly as it reads c->rb on a plaintext
 * connection, disk writes of uploads pinning it the same way. Frames to
 * send are encrypted and their records written with uv_write, so libuv's
 * write queue still measures the backlog. File bytes must pass through the
 * engine: zero_copy is 0 and GETs take the copy path.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"
#include "session.h"
#include "tls.h"
#include "uvwrite.h"

/* The TLS state of one connection. */
struct fsd_tls_conn {
  struct fstls_engine e; /* the TLS connection */
  struct fsd_buf *pb;    /* plaintext not yet taken by the session, or NULL */
  uint64_t started;      /* uv_now() of the first handshake byte */
  uint8_t pumping;       /* pump() runs: a nested call returns at once */
  uint8_t up;            /* the handshake finished (logged once) */
};

static const struct fstls_alloc alloc = {fsd_malloc, fsd_free};

/* Writes all the ciphertext the engine holds, then completes orig with cb
 * (if any). Returns 0 or a negative UV_E* code (cb not called). */
static int flush_records(struct fsd_conn *c, uv_write_t *orig, uv_write_cb cb) {
  return fstls_write_out(&c->tls->e, (uv_stream_t *)&c->tcp, orig, cb, &alloc);
}

/* Ends a connection whose TLS failed: one line in the log, the alert (if
 * any) sent, then closed. Before the handshake the session never began,
 * so there is nothing to end but the socket. */
static void tls_failed(struct fsd_conn *c, int rc) {
  struct fsd_tls_conn *t = c->tls;

  if (rc == FSTLS_ECLOSED && c->sess.state == FSD_SESS_BYE)
    return; /* close_notify after BYE: our answer is on its way */
  if (!t->up) {
    fsd_info("client %s: TLS handshake failed: %s (%s)", c->peer,
             fstls_strerror(rc), fstls_engine_why(&t->e));
    flush_records(c, NULL, NULL);
    c->sess.state = FSD_SESS_CLOSED;
    fsd_conn_close(c);
    return;
  }
  if (rc != FSTLS_ECLOSED)
    fsd_info("client %s: TLS error: %s (%s)", c->peer, fstls_strerror(rc),
             fstls_engine_why(&t->e));
  fsd_conn_hard_close(c);
}

/* Room for the next plaintext in t->pb: a frame's worth when one has begun
 * (as on_alloc gives c->rb), else FSD_READ_BLOCK. Returns 0 or UV_ENOMEM. */
static int plain_room(struct fsd_conn *c) {
  struct fsd_tls_conn *t = c->tls;
  struct fsd_bufpool *pool = &c->net->rpool;
  struct fsd_buf *b = t->pb, *nb;
  size_t need = FSD_READ_BLOCK;

  if (b == NULL) {
    t->pb = fsd_bufpool_get(pool, need);
    return t->pb != NULL ? 0 : UV_ENOMEM;
  }
  {
    size_t more = fsd_session_need(&c->sess, b->data, b->len);
    if (more > need)
      need = more;
  }
  if (b->cap - b->len >= need)
    return 0;
  /* fsd_conn_keep_tail left t->pb unpinned: it may move. */
  nb = fsd_bufpool_get(pool, b->len + need);
  if (nb == NULL)
    return UV_ENOMEM;
  memcpy(nb->data, b->data, b->len);
  nb->len = b->len;
  fsd_bufpool_put(pool, b);
  t->pb = nb;
  return 0;
}

/* Notes (once) that the handshake is over: the deadline no longer
 * applies, and failures from now on are TLS errors, not handshakes. */
static void note_up(struct fsd_conn *c) {
  struct fsd_tls_conn *t = c->tls;

  if (!t->up && fstls_handshake_done(&t->e)) {
    t->up = 1;
    fsd_debug("client %s: TLS 1.3 established", c->peer);
  }
}

/* Hands decrypted bytes to the session until the engine has none, reading
 * stops (backpressure), or the connection ends; then sends what the engine
 * has for the peer (handshake messages, alerts). */
static void pump(struct fsd_conn *c) {
  struct fsd_tls_conn *t = c->tls;
  ssize_t r = 0;

  if (t->pumping)
    return;
  t->pumping = 1;
  fsd_conn_ref(c);
  while (!c->hard && !c->closing && !c->paused) {
    size_t used;
    if (plain_room(c) != 0) {
      r = UV_ENOMEM;
      break;
    }
    r = fstls_read(&t->e, t->pb->data + t->pb->len, t->pb->cap - t->pb->len);
    note_up(c);
    if (r <= 0)
      break;
    t->pb->len += (size_t)r;
    /* The session and fsd_conn_keep_tail work on c->rb, which is free:
     * the ciphertext buffer went back in bytes_in. */
    c->rb = t->pb;
    t->pb = NULL;
    used = fsd_session_feed(&c->sess, c->rb->data, c->rb->len);
    if (c->rb != NULL)
      fsd_conn_keep_tail(c, used);
    t->pb = c->rb;
    c->rb = NULL;
    fsd_conn_update_reading(c);
  }
  if (t->pb != NULL && t->pb->len == 0 && t->pb->refs == 1) {
    fsd_bufpool_put(&c->net->rpool, t->pb); /* idle: hold no buffer */
    t->pb = NULL;
  }
  if (r == UV_ENOMEM)
    fsd_conn_hard_close(c);
  else if (r < 0 && r != FSTLS_EAGAIN)
    tls_failed(c, (int)r);
  if (!c->hard && flush_records(c, NULL, NULL) != 0)
    fsd_conn_hard_close(c);
  t->pumping = 0;
  fsd_conn_unref(c);
}

/* TLS: the ciphertext just read goes into the engine. */
static void tls_bytes_in(struct fsd_conn *c) {
  struct fsd_buf *b = c->rb;
  int rc = fstls_feed(&c->tls->e, b->data, b->len);

  c->rb = NULL;
  fsd_bufpool_put(&c->net->rpool, b);
  if (rc != 0) {
    fsd_conn_hard_close(c);
    return;
  }
  pump(c);
}

/* TLS: encrypts p[0..len) and queues the records: all of it is taken. */
static int tls_try_write(struct fsd_conn *c, const uint8_t *p, size_t len) {
  ssize_t k = fstls_write(&c->tls->e, p, len);
  int r;

  if (k < 0)
    return UV_EPROTO;
  r = flush_records(c, NULL, NULL);
  return r < 0 ? r : (int)len;
}

/* TLS: encrypts bufs and writes the records, completing req with cb. */
static int tls_write(struct fsd_conn *c, uv_write_t *req, const uv_buf_t *bufs,
                     unsigned n, uv_write_cb cb) {
  unsigned i;

  for (i = 0; i < n; i++)
    if (fstls_write(&c->tls->e, bufs[i].base, bufs[i].len) < 0)
      return UV_EPROTO;
  return flush_records(c, req, cb);
}

/* TLS: decrypted bytes left inside the engine when reading paused. */
static void tls_resume(struct fsd_conn *c) {
  if (fstls_pending(&c->tls->e))
    pump(c);
}

/* TLS: close_notify goes last. */
static void tls_closing(struct fsd_conn *c) {
  if (fstls_close(&c->tls->e) == 0)
    flush_records(c, NULL, NULL);
}

/* TLS: the handshake must end within FSD_TLS_HANDSHAKE_MS of its first
 * byte. */
static int tls_overdue(struct fsd_conn *c, uint64_t now) {
  if (c->tls->up || now - c->tls->started <= FSD_TLS_HANDSHAKE_MS)
    return 0;
  fsd_info("client %s: TLS handshake not finished within %u s, closing",
           c->peer, FSD_TLS_HANDSHAKE_MS / 1000);
  return 1;
}

/* TLS: frees the engine and the plaintext buffer. */
static void tls_release(struct fsd_conn *c) {
  struct fsd_tls_conn *t = c->tls;

  if (t->pb != NULL)
    fsd_buf_unref(&c->net->rpool, t->pb);
  fstls_engine_free(&t->e);
  fsd_free(t);
  c->tls = NULL;
}

/* The channel binding AUTH signs: the TLS exporter's bytes. */
static size_t tls_binding(struct fsd_conn *c, uint8_t *out, size_t cap) {
  if (cap < FSP_BINDING_LEN ||
      fstls_export(&c->tls->e, FSP_BINDING_LABEL, out, FSP_BINDING_LEN) != 0)
    return 0; /* no binding: the client's signature, which has one, fails */
  return FSP_BINDING_LEN;
}

const struct fsd_transport fsd_transport_tls = {
    .name = "TLS",
    .zero_copy = 0,
    .bytes_in = tls_bytes_in,
    .try_write = tls_try_write,
    .write = tls_write,
    .resume = tls_resume,
    .closing = tls_closing,
    .overdue = tls_overdue,
    .release = tls_release,
    .binding = tls_binding,
};

/* Answers a plaintext client of a TLS-only listener with one ERROR frame,
 * in plaintext (it can read nothing else), and closes. */
static void refuse_plaintext(struct fsd_conn *c) {
  static const char text[] =
      "TLS is required: this server accepts only encrypted connections";
  uint8_t frame[FSP_HDR_LEN + sizeof(text) + 16];
  struct fsp_msg m;
  ssize_t n;

  fsd_info("client %s refused: plaintext on a TLS-only listener", c->peer);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_ERROR;
  m.u.error.status = FSP_ST_PROTOCOL;
  m.u.error.text.ptr = text;
  m.u.error.text.len = sizeof(text) - 1;
  n = fsp_msg_encode(frame, sizeof(frame), &m);
  c->tp = &fsd_transport_plain;
  if (n > 0 && (size_t)n <= sizeof(frame))
    fsd_conn_send(c, frame, (size_t)n);
  c->sess.state = FSD_SESS_CLOSED;
  fsd_conn_close(c);
}

/* Starts TLS on c with the current context. */
static void start_tls(struct fsd_conn *c) {
  struct fsd_tls_conn *t = fsd_calloc(1, sizeof(*t));

  if (t == NULL || fstls_engine_server(&t->e, c->net->tls->ctx) != 0) {
    fsd_free(t);
    fsd_conn_hard_close(c);
    return;
  }
  t->started = uv_now(c->net->loop);
  c->tls = t;
  c->tp = &fsd_transport_tls;
  tls_bytes_in(c);
}

/* The first byte decides. */
static void sniff_bytes_in(struct fsd_conn *c) {
  uint8_t first = c->rb->data[0];

  if (first == 0x16) {
    start_tls(c);
    return;
  }
  if (!c->net->tls->plaintext_ok) {
    /* What came is dropped: nothing of it is read. */
    c->rb->len = 0;
    fsd_conn_keep_tail(c, 0);
    refuse_plaintext(c);
    return;
  }
  c->tp = &fsd_transport_plain;
  c->tp->bytes_in(c);
}

/* Before the first byte nothing is sent but a refusal (too many clients),
 * which goes out in plaintext. */
static int sniff_try_write(struct fsd_conn *c, const uint8_t *p, size_t len) {
  return fsd_transport_plain.try_write(c, p, len);
}

static int sniff_write(struct fsd_conn *c, uv_write_t *req,
                       const uv_buf_t *bufs, unsigned n, uv_write_cb cb) {
  return fsd_transport_plain.write(c, req, bufs, n, cb);
}

/* Nothing within FSD_TLS_HANDSHAKE_MS of the accept (which is the last
 * activity of a connection that sent nothing). */
static int sniff_overdue(struct fsd_conn *c, uint64_t now) {
  if (now - c->last_active <= FSD_TLS_HANDSHAKE_MS)
    return 0;
  fsd_info("client %s: nothing within %u s, closing", c->peer,
           FSD_TLS_HANDSHAKE_MS / 1000);
  return 1;
}

const struct fsd_transport fsd_transport_sniff = {
    .name = "first byte",
    .zero_copy = 0,
    .bytes_in = sniff_bytes_in,
    .try_write = sniff_try_write,
    .write = sniff_write,
    .overdue = sniff_overdue,
};
