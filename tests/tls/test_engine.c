/* The engine: handshakes and records carried in memory between a server and
 * a client engine, split every way, and the peers it must refuse. */
#include <string.h>

#include <openssl/rand.h>

#include "helpers.h"

/* A server and a client engine on fresh contexts. */
struct pair {
  SSL_CTX *sctx, *cctx;
  struct fstls_engine s, c;
  char fp[FSTLS_FP_SIZE];
};

static void pair_open(struct pair *p) {
  char why[256] = "";

  memset(p, 0, sizeof(*p));
  p->sctx = tt_server_ctx(p->fp);
  ck_assert_int_eq(fstls_client_ctx_new(NULL, &p->cctx, why, sizeof(why)), 0);
  ck_assert_int_eq(fstls_engine_server(&p->s, p->sctx), 0);
  ck_assert_int_eq(fstls_engine_client(&p->c, p->cctx, "fsd.test", NULL), 0);
}

static void pair_close(struct pair *p) {
  fstls_engine_free(&p->s);
  fstls_engine_free(&p->c);
  SSL_CTX_free(p->sctx);
  SSL_CTX_free(p->cctx);
}

/* Sends len bytes from one side to the other in writes of chunk bytes and
 * checks they arrive unchanged. step is the feed size (0: all at once). */
static void send_check(struct fstls_engine *from, struct fstls_engine *to,
                       size_t len, size_t chunk, size_t step) {
  unsigned char *src = malloc(len + 1), *dst = malloc(len + 1);
  size_t sent = 0, got = 0;

  ck_assert_ptr_nonnull(src);
  ck_assert_ptr_nonnull(dst);
  ck_assert_int_eq(RAND_bytes(src, (int)len + 1), 1);
  while (got < len) {
    ssize_t r;
    if (sent < len) {
      size_t k = len - sent < chunk ? len - sent : chunk;
      ck_assert_int_eq(fstls_write(from, src + sent, k), (ssize_t)k);
      sent += k;
    }
    tt_move(from, to, step);
    while ((r = fstls_read(to, dst + got, len - got)) > 0)
      got += (size_t)r;
    ck_assert_msg(r == FSTLS_EAGAIN || got == len, "read: %s",
                  fstls_err_name((int)r));
  }
  ck_assert_int_eq(got, len);
  ck_assert_int_eq(memcmp(src, dst, len), 0);
  free(src);
  free(dst);
}

START_TEST(test_engine_handshake_and_data) {
  struct pair p;
  char fp[FSTLS_FP_SIZE];

  pair_open(&p);
  ck_assert_int_eq(fstls_handshake_done(&p.c), 0);
  ck_assert_int_eq(tt_handshake(&p.c, &p.s, 0, NULL), 0);
  ck_assert_int_eq(fstls_handshake_done(&p.c), 1);
  ck_assert_int_eq(fstls_handshake_done(&p.s), 1);
  /* The client saw the key the server loaded (trust on first use). */
  ck_assert_int_eq(fstls_engine_peer_fp(&p.c, fp), 0);
  ck_assert_str_eq(fp, p.fp);
  send_check(&p.c, &p.s, 5, 5, 0);
  send_check(&p.s, &p.c, 5, 5, 0);
  /* Several MiB each way, in writes of up to 64 KiB. */
  send_check(&p.s, &p.c, 3 * 1024 * 1024 + 1, 65536, 0);
  send_check(&p.c, &p.s, 3 * 1024 * 1024 + 1, 65536, 0);
  ck_assert_int_eq(fstls_out_pending(&p.s), 0);
  ck_assert_int_eq(fstls_pending(&p.s), 0);
  pair_close(&p);
}
END_TEST

/* The handshake and records, fed one byte at a time (the socket may split
 * anywhere) and in odd sizes. */
START_TEST(test_engine_split_feeds) {
  static const size_t steps[] = {1, 2, 7, 100, 1000, 5000};
  struct pair p;

  pair_open(&p);
  ck_assert_int_eq(tt_handshake(&p.c, &p.s, steps[_i], NULL), 0);
  send_check(&p.c, &p.s, 20000, 20000, steps[_i]);
  send_check(&p.s, &p.c, 20000, 7000, steps[_i]);
  pair_close(&p);
}
END_TEST

/* A record read through a small buffer: the rest waits decrypted inside
 * the engine, and fstls_pending says so without another feed. */
START_TEST(test_engine_pending_without_feed) {
  unsigned char src[16384], dst[16384];
  struct pair p;
  size_t got = 0;
  ssize_t r;

  pair_open(&p);
  ck_assert_int_eq(tt_handshake(&p.c, &p.s, 0, NULL), 0);
  memset(src, 'x', sizeof(src));
  src[sizeof(src) - 1] = 'z';
  ck_assert_int_eq(fstls_write(&p.c, src, sizeof(src)), (ssize_t)sizeof(src));
  tt_move(&p.c, &p.s, 0);
  ck_assert_int_ne(fstls_pending(&p.s), 0);
  while (got < sizeof(src)) {
    ck_assert_msg(fstls_pending(&p.s), "data left at %zu", got);
    r = fstls_read(&p.s, dst + got, 100);
    ck_assert_int_gt(r, 0);
    ck_assert_int_le(r, 100);
    got += (size_t)r;
  }
  ck_assert_int_eq(memcmp(src, dst, sizeof(src)), 0);
  ck_assert_int_eq(fstls_pending(&p.s), 0);
  ck_assert_int_eq(fstls_read(&p.s, dst, sizeof(dst)), FSTLS_EAGAIN);
  pair_close(&p);
}
END_TEST

START_TEST(test_engine_close_notify) {
  struct pair p;
  char buf[16];

  pair_open(&p);
  ck_assert_int_eq(fstls_close(&p.c), FSTLS_ESTATE);
  ck_assert_int_eq(tt_handshake(&p.c, &p.s, 0, NULL), 0);
  ck_assert_int_eq(fstls_write(&p.c, "bye", 3), 3);
  ck_assert_int_eq(fstls_close(&p.c), 0);
  tt_move(&p.c, &p.s, 0);
  ck_assert_int_eq(fstls_read(&p.s, buf, sizeof(buf)), 3);
  ck_assert_int_eq(fstls_read(&p.s, buf, sizeof(buf)), FSTLS_ECLOSED);
  ck_assert_int_eq(fstls_read(&p.s, buf, sizeof(buf)), FSTLS_ECLOSED);
  pair_close(&p);
}
END_TEST

START_TEST(test_engine_write_before_handshake) {
  struct pair p;

  pair_open(&p);
  ck_assert_int_eq(fstls_write(&p.c, "x", 1), FSTLS_ESTATE);
  ck_assert_int_eq(fstls_write(&p.s, "x", 1), FSTLS_ESTATE);
  pair_close(&p);
}
END_TEST

/* A raw client context (not fstls's), to play the peers fstls refuses. */
static SSL_CTX *raw_client(int max_version, const char *alpn) {
  SSL_CTX *c = SSL_CTX_new(TLS_client_method());

  ck_assert_ptr_nonnull(c);
  SSL_CTX_set_max_proto_version(c, max_version);
  SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
  if (alpn != NULL) {
    unsigned char wire[64];
    size_t n = strlen(alpn);
    wire[0] = (unsigned char)n;
    memcpy(wire + 1, alpn, n);
    ck_assert_int_eq(SSL_CTX_set_alpn_protos(c, wire, (unsigned)n + 1), 0);
  }
  return c;
}

/* Runs a handshake of a raw client context against an fstls server and
 * returns the server's verdict: 1 (accepted) or its FSTLS_E* code. */
static int server_verdict(SSL_CTX *cctx) {
  SSL_CTX *sctx = tt_server_ctx(NULL);
  struct fstls_engine s, c;
  char who = 0;
  int rc;

  ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
  ck_assert_int_eq(fstls_engine_client(&c, cctx, "fsd.test", NULL), 0);
  rc = tt_handshake(&c, &s, 0, &who);
  if (who != 's')
    rc = fstls_handshake(&s);
  ck_assert_int_eq(fstls_handshake_done(&s), rc == 1);
  fstls_engine_free(&s);
  fstls_engine_free(&c);
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
  return rc;
}

START_TEST(test_engine_alpn_mismatch_refused) {
  ck_assert_int_eq(server_verdict(raw_client(TLS1_3_VERSION, "http/1.1")),
                   FSTLS_EALPN);
  /* A prefix of the name is not the name. */
  ck_assert_int_eq(server_verdict(raw_client(TLS1_3_VERSION, "fsproto/")),
                   FSTLS_EALPN);
  /* A client that offers no ALPN at all gets no session either. */
  ck_assert_int_eq(server_verdict(raw_client(TLS1_3_VERSION, NULL)),
                   FSTLS_EALPN);
  /* The right name passes (the raw client checks nothing else). */
  ck_assert_int_eq(server_verdict(raw_client(TLS1_3_VERSION, FSTLS_ALPN)), 1);
}
END_TEST

START_TEST(test_engine_tls12_client_refused) {
  ck_assert_int_eq(server_verdict(raw_client(TLS1_2_VERSION, FSTLS_ALPN)),
                   FSTLS_EVERSION);
}
END_TEST

/* A raw server context with a self-signed key, TLS up to max_version, and
 * ALPN answered with alpn (NULL: no ALPN). */
static const char *raw_alpn;

static int raw_select(SSL *ssl, const unsigned char **out,
                      unsigned char *outlen, const unsigned char *in,
                      unsigned int inlen, void *arg) {
  (void)ssl;
  (void)in;
  (void)inlen;
  (void)arg;
  *out = (const unsigned char *)raw_alpn;
  *outlen = (unsigned char)strlen(raw_alpn);
  return SSL_TLSEXT_ERR_OK;
}

static int client_verdict(int max_version, const char *alpn) {
  SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = NULL;
  EVP_PKEY *key = tt_key();
  X509 *cert = tt_cert(key, NULL, NULL, "raw", NULL, -60, 3600, 0);
  struct fstls_engine s, c;
  char who = 0;
  int rc;

  ck_assert_int_eq(SSL_CTX_use_certificate(sctx, cert), 1);
  ck_assert_int_eq(SSL_CTX_use_PrivateKey(sctx, key), 1);
  SSL_CTX_set_max_proto_version(sctx, max_version);
  raw_alpn = alpn;
  if (alpn != NULL)
    SSL_CTX_set_alpn_select_cb(sctx, raw_select, NULL);
  ck_assert_int_eq(fstls_client_ctx_new(NULL, &cctx, NULL, 0), 0);
  ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
  ck_assert_int_eq(fstls_engine_client(&c, cctx, "fsd.test", NULL), 0);
  rc = tt_handshake(&c, &s, 0, &who);
  if (who != 'c')
    rc = fstls_handshake(&c);
  ck_assert_int_eq(fstls_handshake_done(&c), 0);
  fstls_engine_free(&s);
  fstls_engine_free(&c);
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
  X509_free(cert);
  EVP_PKEY_free(key);
  return rc;
}

START_TEST(test_engine_client_refuses_servers) {
  ck_assert_int_eq(client_verdict(TLS1_2_VERSION, NULL), FSTLS_EVERSION);
  ck_assert_int_eq(client_verdict(TLS1_3_VERSION, NULL), FSTLS_EALPN);
  /* A server choosing a protocol the client never offered: OpenSSL calls
   * that a bad extension, so it is a protocol error, but refused all the
   * same. */
  ck_assert_int_eq(client_verdict(TLS1_3_VERSION, "h2"), FSTLS_EPROTO);
}
END_TEST

/* Feeds bytes that are not a ClientHello to a fresh server engine; returns
 * its verdict and checks it stays failed. */
static int garbage_verdict(const void *buf, size_t len) {
  SSL_CTX *sctx = tt_server_ctx(NULL);
  struct fstls_engine s;
  char out[64];
  int rc;

  ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
  ck_assert_int_eq(fstls_feed(&s, buf, len), 0);
  rc = fstls_handshake(&s);
  if (rc < 0 && rc != FSTLS_EAGAIN) {
    ck_assert_int_eq(fstls_handshake(&s), rc);
    ck_assert_int_eq(fstls_read(&s, out, sizeof(out)), rc);
    ck_assert_str_ne(fstls_engine_why(&s), "");
  }
  fstls_engine_free(&s);
  SSL_CTX_free(sctx);
  return rc;
}

START_TEST(test_engine_garbage_refused) {
  static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  /* A handshake record header announcing an oversized record. */
  static const unsigned char big[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x01};
  /* A record that claims to be a ClientHello but holds junk. */
  static const unsigned char junk[] = {0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00,
                                       0x00, 0x04, 0xde, 0xad, 0xbe, 0xef};
  /* A plaintext fsproto frame (magic 0xF5). */
  static const unsigned char frame[] = {0xf5, 0x01, 0x01, 0x00, 0x00,
                                        0x00, 0x00, 0x00, 0x00};

  ck_assert_int_eq(garbage_verdict(http, sizeof(http) - 1), FSTLS_EPROTO);
  ck_assert_int_eq(garbage_verdict(big, sizeof(big)), FSTLS_EPROTO);
  ck_assert_int_eq(garbage_verdict(junk, sizeof(junk)), FSTLS_EPROTO);
  ck_assert_int_eq(garbage_verdict(frame, sizeof(frame)), FSTLS_EPROTO);
}
END_TEST

/* A ClientHello cut anywhere only makes the server wait for more. */
START_TEST(test_engine_truncated_clienthello_waits) {
  struct pair p;
  unsigned char hello[4096];
  size_t n, cut;

  pair_open(&p);
  ck_assert_int_eq(fstls_handshake(&p.c), FSTLS_EAGAIN);
  n = fstls_drain(&p.c, hello, sizeof(hello));
  ck_assert_int_gt(n, 5);
  ck_assert_int_lt(n, sizeof(hello));
  for (cut = 0; cut < n; cut++) {
    struct fstls_engine s;
    ck_assert_int_eq(fstls_engine_server(&s, p.sctx), 0);
    ck_assert_int_eq(fstls_feed(&s, hello, cut), 0);
    ck_assert_int_eq(fstls_handshake(&s), FSTLS_EAGAIN);
    ck_assert_int_eq(fstls_out_pending(&s), 0);
    fstls_engine_free(&s);
  }
  pair_close(&p);
}
END_TEST

/* The channel binding authentication signs (protocol.md section 11) is
 * RFC 9266's tls-exporter: both ends of one connection export the same 32
 * bytes for the label, exactly what OpenSSL gives without a context, and
 * another connection gets other bytes. There is none before the handshake. */
START_TEST(test_engine_channel_binding) {
  static const char label[] = "EXPORTER-Channel-Binding";
  uint8_t cb[32], sb[32], raw[32], other[32];
  struct pair p, q;

  pair_open(&p);
  ck_assert_int_eq(fstls_export(&p.c, label, cb, sizeof(cb)), FSTLS_ESTATE);
  ck_assert_int_eq(tt_handshake(&p.c, &p.s, 0, NULL), 0);
  ck_assert_int_eq(fstls_export(&p.c, label, cb, sizeof(cb)), 0);
  ck_assert_int_eq(fstls_export(&p.s, label, sb, sizeof(sb)), 0);
  ck_assert_mem_eq(cb, sb, sizeof(cb));
  /* The engine's SSL object, read only to compare with the RFC's call. */
  ck_assert_int_eq(SSL_export_keying_material(p.c._ssl, raw, sizeof(raw), label,
                                              strlen(label), NULL, 0, 0),
                   1);
  ck_assert_mem_eq(cb, raw, sizeof(raw));
  pair_open(&q);
  ck_assert_int_eq(tt_handshake(&q.c, &q.s, 0, NULL), 0);
  ck_assert_int_eq(fstls_export(&q.c, label, other, sizeof(other)), 0);
  ck_assert_int_ne(memcmp(cb, other, sizeof(cb)), 0);
  pair_close(&q);
  pair_close(&p);
}
END_TEST

/* No session tickets and no 0-RTT data (protocol.md section 10): after a
 * handshake and data both ways, the client holds no session it could
 * resume, and the server takes no early data. */
START_TEST(test_engine_no_tickets_no_early_data) {
  struct pair p;
  SSL_SESSION *sess;

  pair_open(&p);
  ck_assert_int_eq(tt_handshake(&p.c, &p.s, 0, NULL), 0);
  send_check(&p.s, &p.c, 1000, 1000, 0);
  send_check(&p.c, &p.s, 1000, 1000, 0);
  send_check(&p.s, &p.c, 1000, 1000, 0);
  sess = SSL_get1_session(p.c._ssl);
  ck_assert_msg(sess == NULL || !SSL_SESSION_is_resumable(sess),
                "the client could resume its session");
  SSL_SESSION_free(sess);
  ck_assert_uint_eq(SSL_get_max_early_data(p.s._ssl), 0);
  pair_close(&p);
}
END_TEST

/* A record that fails to decrypt ends the connection like broken framing
 * (protocol.md section 10): the read fails, says why, and stays failed
 * even when good records follow. */
START_TEST(test_engine_bad_record_ends_connection) {
  unsigned char rec[4096], buf[64];
  struct pair p;
  size_t n;

  pair_open(&p);
  ck_assert_int_eq(tt_handshake(&p.c, &p.s, 0, NULL), 0);
  ck_assert_int_eq(fstls_write(&p.c, "secret", 6), 6);
  n = fstls_drain(&p.c, rec, sizeof(rec));
  ck_assert_uint_gt(n, 6);
  rec[n - 1] ^= 0x01; /* in the record's authentication tag */
  ck_assert_int_eq(fstls_feed(&p.s, rec, n), 0);
  ck_assert_int_eq(fstls_read(&p.s, buf, sizeof(buf)), FSTLS_EPROTO);
  ck_assert_str_ne(fstls_engine_why(&p.s), "");
  ck_assert_int_eq(fstls_write(&p.c, "more", 4), 4);
  tt_move(&p.c, &p.s, 0);
  ck_assert_int_eq(fstls_read(&p.s, buf, sizeof(buf)), FSTLS_EPROTO);
  pair_close(&p);
}
END_TEST

START_TEST(test_engine_strerror) {
  static const int codes[] = {
      FSTLS_EAGAIN, FSTLS_ECLOSED, FSTLS_EPROTO,   FSTLS_EVERSION, FSTLS_EALPN,
      FSTLS_ECERT,  FSTLS_EPIN,    FSTLS_EKEYPERM, FSTLS_EKEY,     FSTLS_ENOMEM,
      FSTLS_EINVAL, FSTLS_EIO,     FSTLS_ESTATE,   FSTLS_ENOTFOUND};
  size_t i;

  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    ck_assert_str_ne(fstls_strerror(codes[i]), "unknown error");
    ck_assert_str_ne(fstls_err_name(codes[i]), "FSTLS_UNKNOWN");
  }
  ck_assert_str_eq(fstls_strerror(-1), "unknown error");
  ck_assert_str_eq(fstls_err_name(-600), "FSTLS_UNKNOWN");
  ck_assert_str_eq(fstls_err_name(FSTLS_EPIN), "FSTLS_EPIN");
}
END_TEST

Suite *engine_suite(void) {
  Suite *s = suite_create("engine");
  TCase *tc = tcase_create("engine");

  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_engine_handshake_and_data);
  tcase_add_loop_test(tc, test_engine_split_feeds, 0, 6);
  tcase_add_test(tc, test_engine_pending_without_feed);
  tcase_add_test(tc, test_engine_close_notify);
  tcase_add_test(tc, test_engine_write_before_handshake);
  tcase_add_test(tc, test_engine_alpn_mismatch_refused);
  tcase_add_test(tc, test_engine_tls12_client_refused);
  tcase_add_test(tc, test_engine_client_refuses_servers);
  tcase_add_test(tc, test_engine_garbage_refused);
  tcase_add_test(tc, test_engine_truncated_clienthello_waits);
  tcase_add_test(tc, test_engine_channel_binding);
  tcase_add_test(tc, test_engine_no_tickets_no_early_data);
  tcase_add_test(tc, test_engine_bad_record_ends_connection);
  tcase_add_test(tc, test_engine_strerror);
  suite_add_tcase(s, tc);
  return s;
}
