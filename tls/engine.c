/* One TLS connection between two memory BIOs; see fstls.h.
 *
 * The socket never touches OpenSSL: fsd and fsc read it with libuv and hand
 * the bytes over (fstls_feed), and whatever OpenSSL wants to send waits in
 * the write BIO until they take it (fstls_drain) for uv_write. This is the
 * shape of node's TLSWrap and h2o's socket layer, and it lets the tests run
 * two engines against each other in memory.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fstls_int.h"

/* Wraps ctx in a new SSL between two empty memory BIOs. */
static int engine_init(struct fstls_engine *e, SSL_CTX *ctx, int server) {
  BIO *rb, *wb;

  memset(e, 0, sizeof(*e));
  e->_ssl = SSL_new(ctx);
  rb = BIO_new(BIO_s_mem());
  wb = BIO_new(BIO_s_mem());
  if (e->_ssl == NULL || rb == NULL || wb == NULL) {
    BIO_free(rb);
    BIO_free(wb);
    SSL_free(e->_ssl);
    e->_ssl = NULL;
    ERR_clear_error();
    return FSTLS_ENOMEM;
  }
  /* An empty BIO means "wait for the socket", never end of stream. */
  BIO_set_mem_eof_return(rb, -1);
  BIO_set_mem_eof_return(wb, -1);
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

/* Replaces an emptied memory BIO that grew with a fresh one: BUF_MEM never
 * shrinks, and an idle connection should not keep a record's worth of
 * buffer on either side (OpenSSL's own are released by
 * SSL_MODE_RELEASE_BUFFERS). */
static void shrink(struct fstls_engine *e, int rbio) {
  BIO *b = rbio ? SSL_get_rbio(e->_ssl) : SSL_get_wbio(e->_ssl);
  BUF_MEM *bm = NULL;
  BIO *nb;

  if (BIO_ctrl_pending(b) != 0 || BIO_get_mem_ptr(b, &bm) != 1 || bm == NULL ||
      bm->max == 0)
    return;
  nb = BIO_new(BIO_s_mem());
  if (nb == NULL) {
    ERR_clear_error();
    return; /* Keep the old one; it still works. */
  }
  BIO_set_mem_eof_return(nb, -1);
  if (rbio)
    SSL_set0_rbio(e->_ssl, nb);
  else
    SSL_set0_wbio(e->_ssl, nb);
}

/* Copies ciphertext in; see fstls.h. */
int fstls_feed(struct fstls_engine *e, const void *buf, size_t len) {
  BIO *rb = SSL_get_rbio(e->_ssl);

  while (len > 0) {
    int n = len > INT_MAX ? INT_MAX : (int)len;
    int w = BIO_write(rb, buf, n);
    if (w <= 0) {
      ERR_clear_error();
      return FSTLS_ENOMEM;
    }
    buf = (const char *)buf + w;
    len -= (size_t)w;
  }
  return 0;
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
  if (r != 1) {
    r = after_call(e, r);
    if (r == FSTLS_EAGAIN)
      shrink(e, 1);
    return r;
  }
  if (SSL_version(e->_ssl) != TLS1_3_VERSION)
    return fail(e, FSTLS_EVERSION, 0);
  if (!alpn_agreed(e->_ssl))
    return fail(e, FSTLS_EALPN, 0);
  e->_done = 1;
  return 1;
}

/* Non-zero once the handshake is over. */
int fstls_handshake_done(const struct fstls_engine *e) {
  return e->_done && e->_failed == 0;
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
  r = after_call(e, r);
  if (r == FSTLS_EAGAIN)
    shrink(e, 1);
  return r;
}

/* Whether fstls_read may have data without a feed; see fstls.h. */
int fstls_pending(const struct fstls_engine *e) {
  if (e->_ssl == NULL || e->_failed != 0)
    return 0;
  return SSL_has_pending(e->_ssl) ||
         BIO_ctrl_pending(SSL_get_rbio(e->_ssl)) > 0;
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
  /* A memory BIO never asks to wait; treat it as the failure it is. */
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
  return e->_ssl != NULL ? BIO_ctrl_pending(SSL_get_wbio(e->_ssl)) : 0;
}

/* Moves ciphertext out; see fstls.h. */
size_t fstls_drain(struct fstls_engine *e, void *buf, size_t len) {
  BIO *wb;
  int n;

  if (e->_ssl == NULL || len == 0)
    return 0;
  wb = SSL_get_wbio(e->_ssl);
  n = BIO_read(wb, buf, len > INT_MAX ? INT_MAX : (int)len);
  if (n <= 0) {
    ERR_clear_error();
    n = 0;
  }
  if (BIO_ctrl_pending(wb) == 0)
    shrink(e, 0);
  return (size_t)n;
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
