/* One TLS connection between two byte buffers; see fstls.h.
 *
 * The socket never touches OpenSSL: fsd and fsc read it with libuv and hand
 * the bytes over (fstls_feed), and whatever OpenSSL wants to send waits in
 * the output buffer until they take it (fstls_take, fstls_drain) for
 * uv_write. This is the shape of node's TLSWrap and h2o's socket layer,
 * and it lets the tests run two engines against each other in memory.
 *
 * The BIOs are our own, in memory like OpenSSL's BIO_s_mem, but over plain
 * buffers in the engine: BIO_s_mem grows with BUF_MEM_grow_clean, which
 * copies and wipes the old buffer at each step and moves unread bytes to
 * the front on every write, and that cost fsc a third of its time in a
 * download. Ciphertext needs no wiping.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fstls_int.h"

/* Appends n bytes to b. Returns 0, or -1 when out of memory. */
static int bytes_append(struct fstls_bytes *b, const void *p, size_t n) {
  if (b->cap - b->len < n && b->off > 0) {
    memmove(b->p, b->p + b->off, b->len - b->off); /* rare: a partial read */
    b->len -= b->off;
    b->off = 0;
  }
  if (b->cap - b->len < n) {
    size_t cap = b->cap > 0 ? b->cap : 16384;
    uint8_t *np;
    while (cap - b->len < n)
      cap *= 2;
    np = realloc(b->p, cap);
    if (np == NULL)
      return -1;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

/* Takes up to n bytes from b into out; gives the buffer back once empty,
 * so an idle connection holds none. Returns the count. */
static size_t bytes_take(struct fstls_bytes *b, void *out, size_t n) {
  size_t k = b->len - b->off;

  if (k > n)
    k = n;
  memcpy(out, b->p + b->off, k);
  b->off += k;
  if (b->off == b->len) {
    free(b->p);
    memset(b, 0, sizeof(*b));
  }
  return k;
}

static void bytes_free(struct fstls_bytes *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

/* The BIO's read: from the engine's input, or "retry" when it is empty. */
static int bio_read(BIO *bio, char *out, size_t n, size_t *got) {
  struct fstls_bytes *b = BIO_get_data(bio);

  BIO_clear_retry_flags(bio);
  if (b->len == b->off) {
    BIO_set_retry_read(bio);
    *got = 0;
    return 0;
  }
  *got = bytes_take(b, out, n);
  return 1;
}

/* The BIO's write: appended to the engine's output, which never fills. */
static int bio_write(BIO *bio, const char *in, size_t n, size_t *put) {
  struct fstls_bytes *b = BIO_get_data(bio);

  BIO_clear_retry_flags(bio);
  if (bytes_append(b, in, n) != 0)
    return 0;
  *put = n;
  return 1;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
  struct fstls_bytes *b = BIO_get_data(bio);

  (void)num;
  (void)ptr;
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1;
  case BIO_CTRL_PENDING:
    return b != NULL ? (long)(b->len - b->off) : 0;
  default:
    return 0;
  }
}

static int bio_create(BIO *bio) {
  BIO_set_init(bio, 1);
  return 1;
}

static BIO_METHOD *bio_method;
static CRYPTO_ONCE bio_once = CRYPTO_ONCE_STATIC_INIT;

static void bio_method_init(void) {
  BIO_METHOD *m =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fstls bytes");

  if (m != NULL && (BIO_meth_set_read_ex(m, bio_read) != 1 ||
                    BIO_meth_set_write_ex(m, bio_write) != 1 ||
                    BIO_meth_set_ctrl(m, bio_ctrl) != 1 ||
                    BIO_meth_set_create(m, bio_create) != 1)) {
    BIO_meth_free(m);
    m = NULL;
  }
  bio_method = m;
}

/* A BIO over one of the engine's buffers. */
static BIO *bio_new(struct fstls_bytes *b) {
  BIO *bio;

  if (!CRYPTO_THREAD_run_once(&bio_once, bio_method_init) || bio_method == NULL)
    return NULL;
  bio = BIO_new(bio_method);
  if (bio != NULL)
    BIO_set_data(bio, b);
  return bio;
}

/* Wraps ctx in a new SSL between two empty buffers. */
static int engine_init(struct fstls_engine *e, SSL_CTX *ctx, int server) {
  BIO *rb, *wb;

  memset(e, 0, sizeof(*e));
  e->_ssl = SSL_new(ctx);
  rb = bio_new(&e->_in);
  wb = bio_new(&e->_out);
  if (e->_ssl == NULL || rb == NULL || wb == NULL) {
    BIO_free(rb);
    BIO_free(wb);
    SSL_free(e->_ssl);
    e->_ssl = NULL;
    ERR_clear_error();
    return FSTLS_ENOMEM;
  }
  SSL_set_bio(e->_ssl, rb, wb);
  SSL_set_app_data(e->_ssl, e);
  if (server)
    SSL_set_accept_state(e->_ssl);
  else
    SSL_set_connect_state(e->_ssl);
  return 0;
}

/* Starts a server connection; see fstls.h. */
int fstls_engine_server(struct fstls_engine *e, SSL_CTX *ctx) {
  return engine_init(e, ctx, 1);
}

/* Sets what the certificate is checked against: the host name (and SNI)
 * for a name, the address for an IP literal (RFC 6066 forbids those in
 * SNI). Only a context with a CA file looks at them. */
static int set_host(SSL *ssl, const char *host) {
  unsigned char addr[16];

  if (inet_pton(AF_INET, host, addr) == 1 ||
      inet_pton(AF_INET6, host, addr) == 1)
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set_tlsext_host_name(ssl, host) == 1 &&
         SSL_set1_host(ssl, host) == 1;
}

/* Starts a client connection; see fstls.h. */
int fstls_engine_client(struct fstls_engine *e, SSL_CTX *ctx, const char *host,
                        const uint8_t *pin) {
  int rc;

  if (host == NULL || host[0] == '\0') {
    memset(e, 0, sizeof(*e));
    return FSTLS_EINVAL;
  }
  rc = engine_init(e, ctx, 0);
  if (rc != 0)
    return rc;
  if (!set_host(e->_ssl, host)) {
    ERR_clear_error();
    fstls_engine_free(e);
    return FSTLS_EINVAL;
  }
  if (pin != NULL) {
    memcpy(e->_pin, pin, FSTLS_HASH_LEN);
    e->_pinned = 1;
  }
  return 0;
}

/* Frees the engine; see fstls.h. */
void fstls_engine_free(struct fstls_engine *e) {
  SSL_free(e->_ssl);
  e->_ssl = NULL;
  bytes_free(&e->_in);
  bytes_free(&e->_out);
  OPENSSL_cleanse(e->_pin, sizeof(e->_pin));
}

/* Records a failure; the engine stays failed. */
static int fail(struct fstls_engine *e, int code, unsigned long err) {
  e->_failed = code;
  e->_err = err;
  return code;
}

/* Maps the OpenSSL error behind a failed call to an FSTLS_E* code. */
static int classify(struct fstls_engine *e, unsigned long err) {
  int reason = ERR_GET_REASON(err);

  if (e->_pin_failed)
    return FSTLS_EPIN;
  if (ERR_GET_LIB(err) != ERR_LIB_SSL)
    return reason == ERR_R_MALLOC_FAILURE ? FSTLS_ENOMEM : FSTLS_EPROTO;
  switch (reason) {
  case SSL_R_UNSUPPORTED_PROTOCOL:
  case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    return FSTLS_EVERSION;
  case SSL_R_NO_APPLICATION_PROTOCOL:
  case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
    return FSTLS_EALPN;
  case SSL_R_CERTIFICATE_VERIFY_FAILED:
    e->_verify = SSL_get_verify_result(e->_ssl);
    return FSTLS_ECERT;
  default:
    return FSTLS_EPROTO;
  }
}

/* Turns the result r of an SSL_* call into FSTLS_EAGAIN or a failure. */
static int after_call(struct fstls_engine *e, int r) {
  unsigned long err;
  int code;

  switch (SSL_get_error(e->_ssl, r)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return FSTLS_EAGAIN;
  case SSL_ERROR_ZERO_RETURN:
    return fail(e, FSTLS_ECLOSED, 0);
  default:
    /* The oldest error names the cause; later ones are its consequences. */
    err = ERR_get_error();
    code = classify(e, err);
    ERR_clear_error();
    return fail(e, code, err);
  }
}

/* Copies ciphertext in; see fstls.h. */
int fstls_feed(struct fstls_engine *e, const void *buf, size_t len) {
  return len == 0 || bytes_append(&e->_in, buf, len) == 0 ? 0 : FSTLS_ENOMEM;
}

/* Checks that the peers agreed on FSTLS_ALPN. A server whose client sent no
 * ALPN at all, or a client whose server chose none, ends here. */
static int alpn_agreed(const SSL *ssl) {
  const unsigned char *p = NULL;
  unsigned int n = 0;

  SSL_get0_alpn_selected(ssl, &p, &n);
  return n == sizeof(FSTLS_ALPN) - 1 && memcmp(p, FSTLS_ALPN, n) == 0;
}

/* Moves the handshake on; see fstls.h. */
int fstls_handshake(struct fstls_engine *e) {
  int r;

  if (e->_failed != 0)
    return e->_failed;
  if (e->_done)
    return 1;
  ERR_clear_error();
  r = SSL_do_handshake(e->_ssl);
  if (r != 1)
    return after_call(e, r);
  if (SSL_version(e->_ssl) != TLS1_3_VERSION)
    return fail(e, FSTLS_EVERSION, 0);
  if (!alpn_agreed(e->_ssl))
    return fail(e, FSTLS_EALPN, 0);
  e->_done = 1;
  return 1;
}

/* Non-zero once the handshake is over. */
int fstls_handshake_done(const struct fstls_engine *e) {
  return e->_done;
}

/* The exporter; see fstls.h. */
int fstls_export(const struct fstls_engine *e, const char *label, uint8_t *out,
                 size_t len) {
  if (!e->_done || e->_ssl == NULL ||
      SSL_export_keying_material(e->_ssl, out, len, label, strlen(label), NULL,
                                 0, 0) != 1)
    return FSTLS_ESTATE;
  return 0;
}

/* Decrypts application data; see fstls.h. */
ssize_t fstls_read(struct fstls_engine *e, void *buf, size_t len) {
  size_t n = 0;
  int r;

  if (len == 0)
    return FSTLS_EINVAL;
  if (!e->_done || e->_failed != 0) {
    r = fstls_handshake(e);
    if (r != 1)
      return r;
  }
  ERR_clear_error();
  r = SSL_read_ex(e->_ssl, buf, len > INT_MAX ? INT_MAX : len, &n);
  if (r == 1)
    return (ssize_t)n;
  return after_call(e, r);
}

/* Whether fstls_read may have data without a feed; see fstls.h. */
int fstls_pending(const struct fstls_engine *e) {
  if (e->_ssl == NULL || e->_failed != 0)
    return 0;
  return SSL_has_pending(e->_ssl) || e->_in.len > e->_in.off;
}

/* Encrypts application data; see fstls.h. */
ssize_t fstls_write(struct fstls_engine *e, const void *buf, size_t len) {
  size_t n = 0;
  int r;

  if (e->_failed != 0)
    return e->_failed;
  if (!e->_done)
    return FSTLS_ESTATE;
  if (len == 0)
    return 0;
  if (len > SSIZE_MAX)
    len = SSIZE_MAX;
  ERR_clear_error();
  r = SSL_write_ex(e->_ssl, buf, len, &n);
  if (r == 1)
    return (ssize_t)n;
  r = after_call(e, r);
  /* The output never fills, so a wait is a failure. */
  return r == FSTLS_EAGAIN ? fail(e, FSTLS_ENOMEM, 0) : r;
}

/* Queues close_notify; see fstls.h. */
int fstls_close(struct fstls_engine *e) {
  if (e->_ssl == NULL || !e->_done)
    return FSTLS_ESTATE;
  ERR_clear_error();
  if (SSL_shutdown(e->_ssl) < 0)
    ERR_clear_error();
  return 0;
}

/* Bytes of ciphertext waiting to go out. */
size_t fstls_out_pending(const struct fstls_engine *e) {
  return e->_out.len - e->_out.off;
}

/* Moves ciphertext out; see fstls.h. */
size_t fstls_drain(struct fstls_engine *e, void *buf, size_t len) {
  return len == 0 || e->_out.len == e->_out.off
             ? 0
             : bytes_take(&e->_out, buf, len);
}

/* Hands the output over; see fstls.h. */
void *fstls_take(struct fstls_engine *e, size_t *len) {
  struct fstls_bytes *b = &e->_out;
  uint8_t *p;

  *len = b->len - b->off;
  if (*len == 0)
    return NULL;
  if (b->off > 0) {
    /* Taken in part by fstls_drain before: hand over a copy instead. */
    p = malloc(*len);
    if (p == NULL)
      return NULL;
    bytes_take(b, p, *len);
    return p;
  }
  p = b->p;
  memset(b, 0, sizeof(*b));
  return p;
}

/* Explains the last failure; see fstls.h. */
const char *fstls_engine_why(const struct fstls_engine *e) {
  const char *r;

  if (e->_failed == 0)
    return "";
  if (e->_pin_failed)
    return "the server's key is not the one expected";
  if (e->_verify != 0)
    return X509_verify_cert_error_string(e->_verify);
  r = e->_err != 0 ? ERR_reason_error_string(e->_err) : NULL;
  return r != NULL ? r : fstls_strerror(e->_failed);
}

/* The server's fingerprint as seen by the client; see fstls.h. */
int fstls_engine_peer_fp(const struct fstls_engine *e, char fp[FSTLS_FP_SIZE]) {
  if (!e->_have_seen)
    return FSTLS_ESTATE;
  fstls_fp_format(e->_seen, fp);
  return 0;
}
