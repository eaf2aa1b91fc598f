/* fsc's TLS transport; see tls.h.
 *
 * The connection layer sends HELLO as soon as TCP connects, through the
 * transport: that first write starts a fresh engine (a reconnect gets a new
 * one too) and sends the ClientHello; HELLO waits, encrypted only once the
 * handshake is over and the server's key passed the trust check. A
 * refused server so never sees a single request. Socket bytes are read
 * into a buffer here and fed to the engine; its plaintext goes into the
 * connection's read blocks (fsc_conn_plain_buf/in) as a plaintext socket's
 * bytes would.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cli.h"
#include "fstls.h"
#include "uvwrite.h"

/* Ciphertext read per socket read. */
#define TLS_READ_SIZE 65536u

/* A write that waits for the handshake (HELLO). */
struct held {
  struct held *next;
  uv_write_t *req; /* the caller's request, completed with cb */
  uv_write_cb cb;
  size_t len;
  uint8_t data[];
};

struct fsc_tls {
  SSL_CTX *ctx;             /* shared by reconnects */
  struct fstls_engine e;    /* this connection's TLS */
  struct fstls_trust trust; /* how the server is trusted */
  char host[FSC_HOST_MAX];  /* for SNI and the CA's host name check */
  int live;                 /* e holds an engine */
  struct held *held, **held_tail;
  uint8_t in[TLS_READ_SIZE]; /* ciphertext from the socket */
};

/* Whether host is loopback; see tls.h. */
int fsc_tls_is_loopback(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;

  if (strcmp(host, "localhost") == 0)
    return 1;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host, &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&a6);
  return 0;
}

static const struct fstls_alloc alloc = {fsc_malloc, fsc_free};

/* Writes the engine's pending records, completing orig with cb once they
 * are out. Returns 0 or a UV_E* code (cb will not run). */
static int flush_records(struct fsc_conn *c, uv_write_t *orig, uv_write_cb cb) {
  struct fsc_tls *t = c->transport_data;

  return fstls_write_out(&t->e, (uv_stream_t *)&c->tcp, orig, cb, &alloc);
}

/* Encrypts and writes the writes held for the handshake. */
static int release_held(struct fsc_conn *c) {
  struct fsc_tls *t = c->transport_data;
  int r = 0;

  while (t->held != NULL) {
    struct held *h = t->held;
    t->held = h->next;
    if (r == 0 && fstls_write(&t->e, h->data, h->len) < 0)
      r = UV_EPROTO;
    if (r == 0)
      r = flush_records(c, h->req, h->cb);
    fsc_free(h);
  }
  t->held_tail = &t->held;
  return r;
}

/* Ends held writes as canceled (the connection failed; its requests are
 * told by the connection layer, and the writes' owners free them). */
static void drop_held(struct fsc_tls *t) {
  while (t->held != NULL) {
    struct held *h = t->held;
    t->held = h->next;
    if (h->cb != NULL)
      h->cb(h->req, UV_ECANCELED);
    fsc_free(h);
  }
  t->held_tail = &t->held;
}

/* The handshake is over: record a first-met server, then send HELLO. */
static int handshake_done(struct fsc_conn *c) {
  struct fsc_tls *t = c->transport_data;
  char note[FSC_HOST_MAX + 2 * PATH_MAX];

  if (fstls_trust_done(&t->trust, &t->e, note, sizeof(note)) != 0) {
    fsc_conn_fail(c, UV_EIO, note);
    return -1;
  }
  if (note[0] != '\0')
    fprintf(stderr, "fsc: %s\n", note);
  if (release_held(c) != 0) {
    fsc_conn_fail(c, UV_EPROTO, "cannot send over TLS");
    return -1;
  }
  return 0;
}

/* Moves the engine on after ciphertext came in: the handshake, then
 * plaintext into the read blocks while the connection reads. */
static void pump(struct fsc_conn *c) {
  struct fsc_tls *t = c->transport_data;
  char msg[1024];
  ssize_t r;

  if (!fstls_handshake_done(&t->e)) {
    r = fstls_handshake(&t->e);
    flush_records(c, NULL, NULL); /* Finished, or the alert */
    if (r == FSTLS_EAGAIN)
      return;
    if (r < 0) {
      drop_held(t);
      fstls_trust_failure(&t->trust, &t->e, (int)r, msg, sizeof(msg));
      fsc_conn_fail(c, UV_EPROTO, msg);
      return;
    }
    if (handshake_done(c) != 0)
      return;
  }
  while (c->read_paused == 0 &&
         (c->state == FSC_CONN_READY || c->state == FSC_CONN_CONNECTING)) {
    uv_buf_t buf;
    fsc_conn_plain_buf(c, &buf);
    if (buf.len == 0) {
      fsc_conn_fail(c, UV_ENOBUFS, "out of memory");
      return;
    }
    r = fstls_read(&t->e, buf.base, buf.len);
    if (r == FSTLS_EAGAIN)
      break;
    if (r == FSTLS_ECLOSED)
      break; /* the server's close_notify; its EOF follows */
    if (r < 0) {
      snprintf(msg, sizeof(msg), "TLS error: %s (%s)", fstls_strerror((int)r),
               fstls_engine_why(&t->e));
      fsc_conn_fail(c, UV_EPROTO, msg);
      return;
    }
    fsc_conn_plain_in(c, (size_t)r);
  }
  flush_records(c, NULL, NULL);
}

static void tls_alloc(struct fsc_conn *c, uv_buf_t *buf) {
  struct fsc_tls *t = c->transport_data;
  *buf = uv_buf_init((char *)t->in, sizeof(t->in));
}

static void tls_read(struct fsc_conn *c, size_t nread) {
  struct fsc_tls *t = c->transport_data;
  if (!t->live || fstls_feed(&t->e, t->in, nread) != 0) {
    fsc_conn_fail(c, UV_EPROTO, "TLS: unexpected bytes");
    return;
  }
  pump(c);
}

/* TCP connected: a fresh engine (a reconnect gets a new one too), and the
 * ClientHello on its way. */
static int tls_connected(struct fsc_conn *c) {
  struct fsc_tls *t = c->transport_data;

  if (t->live)
    fstls_engine_free(&t->e);
  drop_held(t);
  t->live = 0;
  if (fstls_engine_client(&t->e, t->ctx, t->host, fstls_trust_pin(&t->trust)) !=
      0)
    return UV_ENOMEM;
  t->live = 1;
  fstls_handshake(&t->e);
  return flush_records(c, NULL, NULL);
}

/* Encrypts and writes; before the handshake is over (HELLO), holds. */
static int tls_write(struct fsc_conn *c, uv_write_t *req, const uv_buf_t *bufs,
                     unsigned n, uv_write_cb cb) {
  struct fsc_tls *t = c->transport_data;
  unsigned i;

  if (!t->live)
    return UV_ENOTCONN;
  if (!fstls_handshake_done(&t->e)) {
    size_t len = 0;
    struct held *h;
    for (i = 0; i < n; i++)
      len += bufs[i].len;
    h = fsc_malloc(sizeof(*h) + len);
    if (h == NULL)
      return UV_ENOMEM;
    h->next = NULL;
    h->req = req;
    h->cb = cb;
    h->len = 0;
    for (i = 0; i < n; i++) {
      memcpy(h->data + h->len, bufs[i].base, bufs[i].len);
      h->len += bufs[i].len;
    }
    *t->held_tail = h;
    t->held_tail = &h->next;
    return 0;
  }
  for (i = 0; i < n; i++)
    if (fstls_write(&t->e, bufs[i].base, bufs[i].len) < 0)
      return UV_EPROTO;
  return flush_records(c, req, cb);
}

/* Reading resumed: plaintext already inside the engine goes on now. */
static void tls_resume(struct fsc_conn *c) {
  struct fsc_tls *t = c->transport_data;
  if (t->live && fstls_pending(&t->e))
    pump(c);
}

/* The channel binding AUTH signs: the TLS exporter's bytes. */
static size_t tls_binding(struct fsc_conn *c, uint8_t *out, size_t cap) {
  struct fsc_tls *t = c->transport_data;
  if (!t->live || cap < FSP_BINDING_LEN ||
      fstls_export(&t->e, FSP_BINDING_LABEL, out, FSP_BINDING_LEN) != 0)
    return 0;
  return FSP_BINDING_LEN;
}

static const struct fsc_transport tls_transport = {
    .alloc = tls_alloc,
    .read = tls_read,
    .write = tls_write,
    .resume = tls_resume,
    .connected = tls_connected,
    .binding = tls_binding,
};

/* Decides and prepares; see tls.h. */
int fsc_tls_setup(struct fsc_conn *c, const struct fsc_opts *o, char *err,
                  size_t errlen) {
  const char *server = o->server;
  char host[FSC_HOST_MAX], why[1024] = "";
  struct fsc_tls *t;
  int port, rc;

  if (fsc_parse_hostport(server, host, sizeof(host), &port) != 0) {
    snprintf(err, errlen, "bad server address '%s'", server);
    return FSC_EXIT_USAGE;
  }
  if (!o->tls && o->pin == NULL && o->ca == NULL && fsc_tls_is_loopback(host))
    return 0;
  t = fsc_calloc(1, sizeof(*t));
  if (t == NULL) {
    snprintf(err, errlen, "out of memory");
    return FSC_EXIT_CONN;
  }
  t->held_tail = &t->held;
  snprintf(t->host, sizeof(t->host), "%s", host);
  rc = fstls_trust_init(&t->trust, host, (unsigned)port, o->pin, NULL,
                        o->ca != NULL, why, sizeof(why));
  if (rc == 0)
    rc = fstls_client_ctx_new(o->ca, &t->ctx, why, sizeof(why));
  if (rc != 0) {
    snprintf(err, errlen, "%s", why[0] != '\0' ? why : fstls_strerror(rc));
    SSL_CTX_free(t->ctx);
    fsc_free(t);
    return rc == FSTLS_EINVAL ? FSC_EXIT_USAGE : FSC_EXIT_CONN;
  }
  c->transport = &tls_transport;
  c->transport_data = t;
  return 0;
}

/* Frees the TLS state; see tls.h. */
void fsc_tls_release(struct fsc_conn *c) {
  struct fsc_tls *t = c->transport_data;

  if (c->transport != &tls_transport)
    return;
  if (t->live)
    fstls_engine_free(&t->e);
  drop_held(t);
  SSL_CTX_free(t->ctx);
  fsc_free(t);
  c->transport = NULL;
  c->transport_data = NULL;
}
