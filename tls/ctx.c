/* The server's and the client's SSL_CTX; see fstls.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fstls_int.h"

/* ALPN wire form: one length byte, then the name. */
static const unsigned char alpn_wire[] = "\x09" FSTLS_ALPN;

/* Formats why and returns code; see fstls.h. */
int fstls_fail(char *why, size_t whylen, int code, const char *fmt, ...) {
  va_list ap;

  if (why == NULL || whylen == 0)
    return code;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return code;
}

const char *fstls__ssl_reason(const char *fallback) {
  unsigned long err = ERR_get_error();
  const char *r = err != 0 ? ERR_reason_error_string(err) : NULL;

  ERR_clear_error();
  return r != NULL ? r : fallback;
}

/* A pass phrase callback that has none: an encrypted key fails to load
 * rather than making OpenSSL prompt on the daemon's terminal. */
static int no_pass(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return 0;
}

EVP_PKEY *fstls__read_key_fd(int fd) {
  EVP_PKEY *pkey = NULL;
  int dupfd = dup(fd);
  FILE *f;

  if (dupfd < 0)
    return NULL;
  f = fdopen(dupfd, "r");
  if (f == NULL) {
    close(dupfd);
    return NULL;
  }
  pkey = PEM_read_PrivateKey(f, NULL, no_pass, NULL);
  fclose(f);
  return pkey;
}

/* Settings both sides share. TLS 1.3 only: it has no renegotiation, no
 * compression and no static-RSA key exchange to turn off, but the options
 * say so for readers and for a future OpenSSL default. Sessions are never
 * resumed: fsc is one process per run, and tickets or a cache would be
 * state a client could make the server hold. */
static SSL_CTX *ctx_base(const SSL_METHOD *method) {
  SSL_CTX *c = SSL_CTX_new(method);

  if (c == NULL)
    return NULL;
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
    SSL_CTX_free(c);
    return NULL;
  }
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                             SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  /* Give back the record buffers (about 34 KiB) of an idle connection. */
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  return c;
}

/* Picks FSTLS_ALPN from the client's list, or refuses the handshake with a
 * no_application_protocol alert. A client that offers no ALPN at all is
 * refused after the handshake by the engine, since OpenSSL does not call
 * this then. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  unsigned int i = 0;

  (void)ssl;
  (void)arg;
  while (i < inlen) {
    unsigned int n = in[i];
    if (n > inlen - i - 1)
      break;
    if (n == sizeof(alpn_wire) - 2 &&
        memcmp(in + i + 1, alpn_wire + 1, n) == 0) {
      *out = in + i + 1;
      *outlen = (unsigned char)n;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Loads and checks the key file; see fstls_server_ctx_new. */
static int load_key(SSL_CTX *c, const char *key_file, EVP_PKEY **pkey,
                    char *why, size_t whylen) {
  int fd, rc;

  fd = open(key_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fstls__why(why, whylen, "%s: %s", key_file, strerror(errno));
    return FSTLS_EIO;
  }
  rc = fstls_key_fd_check(fd, key_file, why, whylen);
  if (rc == 0) {
    *pkey = fstls__read_key_fd(fd);
    if (*pkey == NULL) {
      fstls__why(why, whylen,
                 "%s: not a PEM private key without pass phrase"
                 " (%s)",
                 key_file, fstls__ssl_reason("unreadable"));
      rc = FSTLS_EKEY;
    }
  }
  close(fd);
  if (rc != 0)
    return rc;
  if (SSL_CTX_use_PrivateKey(c, *pkey) != 1 ||
      SSL_CTX_check_private_key(c) != 1) {
    fstls__why(why, whylen, "%s does not belong to the certificate (%s)",
               key_file, fstls__ssl_reason("mismatch"));
    return FSTLS_EKEY;
  }
  return 0;
}

/* Builds the server's context; see fstls.h. */
int fstls_server_ctx_new(const char *cert_file, const char *key_file,
                         SSL_CTX **out, char fp[FSTLS_FP_SIZE], char *why,
                         size_t whylen) {
  SSL_CTX *c;
  EVP_PKEY *pkey = NULL;
  uint8_t hash[FSTLS_HASH_LEN];
  int rc;

  *out = NULL;
  if (cert_file == NULL || key_file == NULL)
    return FSTLS_EINVAL;
  c = ctx_base(TLS_server_method());
  if (c == NULL) {
    fstls__why(why, whylen, "cannot create a TLS context (%s)",
               fstls__ssl_reason("out of memory"));
    return FSTLS_ENOMEM;
  }
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_alpn_select_cb(c, alpn_select, NULL);
  if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
    fstls__why(why, whylen, "%s: cannot load the certificate (%s)", cert_file,
               fstls__ssl_reason("unreadable"));
    SSL_CTX_free(c);
    return FSTLS_EKEY;
  }
  rc = load_key(c, key_file, &pkey, why, whylen);
  if (rc == 0 && fp != NULL) {
    rc = fstls_spki_hash(pkey, hash);
    if (rc == 0)
      fstls_fp_format(hash, fp);
  }
  EVP_PKEY_free(pkey);
  if (rc != 0) {
    SSL_CTX_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* The certificate check of a client context, in place of OpenSSL's own:
 * records the server's key fingerprint in the engine, then either runs the
 * normal chain and host name check (a CA file was given: arg non-NULL) or
 * compares the key with the pin, if any. Without a pin any key passes and
 * the caller decides (trust on first use). The TLS layer still checks that
 * the server holds the private key (CertificateVerify) in every case. */
static int cert_check(X509_STORE_CTX *x, void *arg) {
  SSL *ssl =
      X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
  struct fstls_engine *e = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
  X509 *leaf = X509_STORE_CTX_get0_cert(x);
  EVP_PKEY *pkey = leaf != NULL ? X509_get0_pubkey(leaf) : NULL;

  if (e == NULL || pkey == NULL || fstls_spki_hash(pkey, e->_seen) != 0) {
    X509_STORE_CTX_set_error(x, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
  e->_have_seen = 1;
  if (arg != NULL)
    return X509_verify_cert(x);
  if (e->_pinned && CRYPTO_memcmp(e->_pin, e->_seen, FSTLS_HASH_LEN) != 0) {
    e->_pin_failed = 1;
    X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  return 1;
}

/* Any non-NULL pointer marks the CA mode for cert_check. */
static char ca_mode;

/* Builds the client's context; see fstls.h. */
int fstls_client_ctx_new(const char *ca_file, SSL_CTX **out, char *why,
                         size_t whylen) {
  SSL_CTX *c = ctx_base(TLS_client_method());

  *out = NULL;
  if (c == NULL) {
    fstls__why(why, whylen, "cannot create a TLS context (%s)",
               fstls__ssl_reason("out of memory"));
    return FSTLS_ENOMEM;
  }
  /* SSL_CTX_set_alpn_protos returns 0 on success. */
  if (SSL_CTX_set_alpn_protos(c, alpn_wire, sizeof(alpn_wire) - 1) != 0) {
    SSL_CTX_free(c);
    return FSTLS_ENOMEM;
  }
  if (ca_file != NULL && SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1) {
    fstls__why(why, whylen, "%s: cannot load CA certificates (%s)", ca_file,
               fstls__ssl_reason("unreadable"));
    SSL_CTX_free(c);
    return FSTLS_EKEY;
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_cert_verify_callback(c, cert_check,
                                   ca_file != NULL ? &ca_mode : NULL);
  *out = c;
  return 0;
}
