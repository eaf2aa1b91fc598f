/* How the client trusts a server: a pinned key, the first key seen, or a
 * certificate chain to a CA file with the host's name or address in it. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"

START_TEST(test_trust_pin_match) {
  SSL_CTX *sctx, *cctx;
  struct fstls_engine s, c;
  uint8_t pin[FSTLS_HASH_LEN];
  char fp[FSTLS_FP_SIZE], seen[FSTLS_FP_SIZE];

  sctx = tt_server_ctx(fp);
  ck_assert_int_eq(fstls_fp_parse(fp, pin), 0);
  ck_assert_int_eq(fstls_client_ctx_new(NULL, &cctx, NULL, 0), 0);
  ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
  ck_assert_int_eq(fstls_engine_client(&c, cctx, "127.0.0.1", pin), 0);
  ck_assert_int_eq(tt_handshake(&c, &s, 0, NULL), 0);
  ck_assert_int_eq(fstls_engine_peer_fp(&c, seen), 0);
  ck_assert_str_eq(seen, fp);
  fstls_engine_free(&s);
  fstls_engine_free(&c);
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
}
END_TEST

/* Another key than the pinned one: the client refuses before any
 * application data, says whose key it saw, and the server is told. */
START_TEST(test_trust_pin_mismatch) {
  SSL_CTX *sctx, *other, *cctx;
  struct fstls_engine s, c;
  uint8_t pin[FSTLS_HASH_LEN];
  char fp[FSTLS_FP_SIZE], ofp[FSTLS_FP_SIZE], seen[FSTLS_FP_SIZE], who = 0;

  sctx = tt_server_ctx(fp);
  other = tt_server_ctx(ofp);
  ck_assert_str_ne(fp, ofp);
  ck_assert_int_eq(fstls_fp_parse(ofp, pin), 0);
  ck_assert_int_eq(fstls_client_ctx_new(NULL, &cctx, NULL, 0), 0);
  ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
  ck_assert_int_eq(fstls_engine_client(&c, cctx, "fsd.test", pin), 0);
  ck_assert_int_eq(tt_handshake(&c, &s, 0, &who), FSTLS_EPIN);
  ck_assert_int_eq(who, 'c');
  ck_assert_int_eq(fstls_handshake_done(&c), 0);
  ck_assert_int_eq(fstls_write(&c, "x", 1), FSTLS_EPIN);
  ck_assert_int_eq(fstls_engine_peer_fp(&c, seen), 0);
  ck_assert_str_eq(seen, fp);
  ck_assert_str_ne(fstls_engine_why(&c), "");
  /* The alert reached the server, which never finished either. */
  ck_assert_int_lt(fstls_handshake(&s), 0);
  ck_assert_int_ne(fstls_handshake(&s), FSTLS_EAGAIN);
  fstls_engine_free(&s);
  fstls_engine_free(&c);
  SSL_CTX_free(sctx);
  SSL_CTX_free(other);
  SSL_CTX_free(cctx);
}
END_TEST

/* Trust by key looks at the key and nothing else (protocol.md section 10):
 * a self-signed certificate for another name that has expired, or is not
 * yet valid, passes with the pin of its key and on first use alike. */
START_TEST(test_trust_key_ignores_names_and_dates) {
  static const long when[][2] = {{-7200, -3600}, {3600, 7200}};
  char dir[64], key[PATH_MAX], cert[PATH_MAX], why[256] = "";
  char fp[FSTLS_FP_SIZE], seen[FSTLS_FP_SIZE];
  uint8_t pin[FSTLS_HASH_LEN];
  EVP_PKEY *k = tt_key();
  SSL_CTX *sctx = NULL, *cctx = NULL;
  X509 *x;

  strcpy(dir, tt_tmpdir());
  x = tt_cert(k, NULL, NULL, "elsewhere", "DNS:elsewhere.test", when[_i][0],
              when[_i][1], 0);
  strcpy(key, tt_write_key(dir, "key.pem", k));
  strcpy(cert, tt_write_cert(dir, "cert.pem", x));
  ck_assert_msg(fstls_server_ctx_new(cert, key, &sctx, fp, why, sizeof(why)) ==
                    0,
                "%s", why);
  ck_assert_int_eq(fstls_fp_parse(fp, pin), 0);
  ck_assert_int_eq(fstls_client_ctx_new(NULL, &cctx, NULL, 0), 0);
  for (int pinned = 0; pinned < 2; pinned++) {
    struct fstls_engine s, c;
    ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
    ck_assert_int_eq(
        fstls_engine_client(&c, cctx, "fsd.test", pinned ? pin : NULL), 0);
    ck_assert_msg(tt_handshake(&c, &s, 0, NULL) == 0, "refused: %s",
                  fstls_engine_why(&c));
    ck_assert_int_eq(fstls_engine_peer_fp(&c, seen), 0);
    ck_assert_str_eq(seen, fp);
    fstls_engine_free(&s);
    fstls_engine_free(&c);
  }
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
  X509_free(x);
  EVP_PKEY_free(k);
  tt_rmdir(dir);
}
END_TEST

/* A test CA, and server contexts made from certificates it signs. */
struct ca {
  char dir[64];
  EVP_PKEY *key;
  X509 *cert;
  char file[PATH_MAX];
};

static void ca_open(struct ca *ca, const char *cn) {
  strcpy(ca->dir, tt_tmpdir());
  ca->key = tt_key();
  ca->cert = tt_cert(ca->key, NULL, NULL, cn, NULL, -3600, 86400, 1);
  strcpy(ca->file, tt_write_cert(ca->dir, "ca.pem", ca->cert));
}

static void ca_close(struct ca *ca) {
  tt_rmdir(ca->dir);
  EVP_PKEY_free(ca->key);
  X509_free(ca->cert);
}

/* A server context whose certificate ca signed for san, valid from now+from
 * to now+to seconds. */
static SSL_CTX *ca_server(struct ca *ca, const char *san, long from, long to) {
  char key[PATH_MAX], why[256] = "";
  EVP_PKEY *k = tt_key();
  X509 *x = tt_cert(k, ca->key, ca->cert, "fsd", san, from, to, 0);
  const char *cert;
  SSL_CTX *ctx = NULL;
  int rc;

  strcpy(key, tt_write_key(ca->dir, "leaf.key", k));
  cert = tt_write_cert(ca->dir, "leaf.pem", x);
  rc = fstls_server_ctx_new(cert, key, &ctx, NULL, why, sizeof(why));
  ck_assert_msg(rc == 0, "%s", why);
  EVP_PKEY_free(k);
  X509_free(x);
  return ctx;
}

/* The client's verdict on sctx when it trusts ca_file and dials host. */
static int ca_verdict(SSL_CTX *sctx, const char *ca_file, const char *host,
                      const char **why) {
  static char whybuf[256];
  SSL_CTX *cctx = NULL;
  struct fstls_engine s, c;
  char who = 0;
  int rc;

  ck_assert_int_eq(fstls_client_ctx_new(ca_file, &cctx, NULL, 0), 0);
  ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
  ck_assert_int_eq(fstls_engine_client(&c, cctx, host, NULL), 0);
  rc = tt_handshake(&c, &s, 0, &who);
  if (rc != 0)
    ck_assert_int_eq(who, 'c');
  snprintf(whybuf, sizeof(whybuf), "%s", fstls_engine_why(&c));
  if (why != NULL)
    *why = whybuf;
  fstls_engine_free(&s);
  fstls_engine_free(&c);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  return rc;
}

START_TEST(test_trust_ca_good) {
  struct ca ca;

  ca_open(&ca, "Test CA");
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "DNS:fsd.test", -60, 3600),
                              ca.file, "fsd.test", NULL),
                   0);
  /* Host names compare without case. */
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "DNS:fsd.test", -60, 3600),
                              ca.file, "FSD.Test", NULL),
                   0);
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "IP:127.0.0.1", -60, 3600),
                              ca.file, "127.0.0.1", NULL),
                   0);
  ca_close(&ca);
}
END_TEST

START_TEST(test_trust_ca_wrong_host) {
  struct ca ca;
  const char *why;

  ca_open(&ca, "Test CA");
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "DNS:fsd.test", -60, 3600),
                              ca.file, "other.test", &why),
                   FSTLS_ECERT);
  ck_assert_str_eq(why, "hostname mismatch");
  /* A name is not an address, nor one address another. */
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "DNS:fsd.test", -60, 3600),
                              ca.file, "127.0.0.1", NULL),
                   FSTLS_ECERT);
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "IP:127.0.0.2", -60, 3600),
                              ca.file, "127.0.0.1", &why),
                   FSTLS_ECERT);
  ck_assert_str_eq(why, "IP address mismatch");
  /* No partial wildcards: "f*.test" does not cover fsd.test. */
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "DNS:f*.test", -60, 3600), ca.file,
                              "fsd.test", NULL),
                   FSTLS_ECERT);
  ca_close(&ca);
}
END_TEST

START_TEST(test_trust_ca_expired_or_not_yet) {
  struct ca ca;
  const char *why;

  ca_open(&ca, "Test CA");
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "DNS:fsd.test", -7200, -3600),
                              ca.file, "fsd.test", &why),
                   FSTLS_ECERT);
  ck_assert_str_eq(why, "certificate has expired");
  ck_assert_int_eq(ca_verdict(ca_server(&ca, "DNS:fsd.test", 3600, 7200),
                              ca.file, "fsd.test", &why),
                   FSTLS_ECERT);
  ck_assert_str_eq(why, "certificate is not yet valid");
  ca_close(&ca);
}
END_TEST

/* A certificate from another CA, and fsd's own self-signed one, fail when
 * the client was told to trust a CA. */
START_TEST(test_trust_ca_unknown_issuer) {
  struct ca ca, other;

  ca_open(&ca, "Test CA");
  ca_open(&other, "Other CA");
  ck_assert_int_eq(ca_verdict(ca_server(&other, "DNS:fsd.test", -60, 3600),
                              ca.file, "fsd.test", NULL),
                   FSTLS_ECERT);
  ck_assert_int_eq(ca_verdict(tt_server_ctx(NULL), ca.file, "fsd.test", NULL),
                   FSTLS_ECERT);
  ca_close(&ca);
  ca_close(&other);
}
END_TEST

START_TEST(test_trust_ca_file_errors) {
  SSL_CTX *cctx = NULL;
  char why[256] = "";
  const char *dir = tt_tmpdir();
  const char *bad = tt_write(dir, "bad.pem", "not a certificate\n", 0644);

  ck_assert_int_eq(
      fstls_client_ctx_new("/nonexistent/ca.pem", &cctx, why, sizeof(why)),
      FSTLS_EKEY);
  ck_assert_ptr_null(cctx);
  ck_assert_ptr_nonnull(strstr(why, "/nonexistent/ca.pem"));
  ck_assert_int_eq(fstls_client_ctx_new(bad, &cctx, why, sizeof(why)),
                   FSTLS_EKEY);
  tt_rmdir(dir);
  ck_assert_int_eq(
      fstls_engine_client(&(struct fstls_engine){0}, NULL, "", NULL),
      FSTLS_EINVAL);
}
END_TEST

/* One handshake of a client trusting as t against sctx. Returns the
 * client's verdict; on failure writes the user's line into msg. */
static int trust_verdict(struct fstls_trust *t, SSL_CTX *sctx, char *msg,
                         size_t len) {
  SSL_CTX *cctx = NULL;
  struct fstls_engine s, c;
  char who = 0;
  int rc;

  ck_assert_int_eq(fstls_client_ctx_new(NULL, &cctx, NULL, 0), 0);
  ck_assert_int_eq(fstls_engine_server(&s, sctx), 0);
  ck_assert_int_eq(
      fstls_engine_client(&c, cctx, "127.0.0.1", fstls_trust_pin(t)), 0);
  rc = tt_handshake(&c, &s, 0, &who);
  if (rc == 0)
    rc = fstls_trust_done(t, &c, msg, len);
  else
    fstls_trust_failure(t, &c, rc, msg, len);
  fstls_engine_free(&s);
  fstls_engine_free(&c);
  SSL_CTX_free(cctx);
  return rc;
}

/* First use records the key and says so; the next connection checks it; a
 * server with another key on the same address is refused with the line to
 * remove, and nothing is recorded. */
START_TEST(test_trust_first_use_then_changed_key) {
  const char *dir = tt_tmpdir();
  char path[PATH_MAX], msg[1024], fp[FSTLS_FP_SIZE], ofp[FSTLS_FP_SIZE];
  char removal[PATH_MAX + 64], *text;
  SSL_CTX *sctx = tt_server_ctx(fp), *other = tt_server_ctx(ofp);
  struct fstls_trust t;
  size_t len;

  snprintf(path, sizeof(path), "%s/fsc/known_servers", dir);
  ck_assert_int_eq(
      fstls_trust_init(&t, "127.0.0.1", 7878, NULL, path, 0, NULL, 0), 0);
  ck_assert_int_eq(t.mode, FSTLS_TRUST_NEW);
  ck_assert_ptr_null(fstls_trust_pin(&t));
  ck_assert_int_eq(trust_verdict(&t, sctx, msg, sizeof(msg)), 0);
  ck_assert_ptr_nonnull(strstr(msg, fp));
  ck_assert_ptr_nonnull(strstr(msg, path));
  ck_assert_ptr_nonnull(strstr(msg, "127.0.0.1:7878"));

  /* The same server again: checked against line 1, nothing to say. */
  ck_assert_int_eq(
      fstls_trust_init(&t, "127.0.0.1", 7878, NULL, path, 0, NULL, 0), 0);
  ck_assert_int_eq(t.mode, FSTLS_TRUST_KNOWN);
  ck_assert_uint_eq(t.line, 1);
  ck_assert_int_eq(trust_verdict(&t, sctx, msg, sizeof(msg)), 0);
  ck_assert_str_eq(msg, "");

  /* Another key on that address. */
  ck_assert_int_eq(trust_verdict(&t, other, msg, sizeof(msg)), FSTLS_EPIN);
  snprintf(removal, sizeof(removal), "remove line 1 of %s", path);
  ck_assert_ptr_nonnull(strstr(msg, removal));
  ck_assert_ptr_nonnull(strstr(msg, ofp));
  ck_assert_int_eq(fstls_known_read(path, &text, &len, NULL, 0), 0);
  ck_assert_ptr_null(memchr(text, '\n', len - 1)); /* still one line */
  free(text);

  /* Another port is another server. */
  ck_assert_int_eq(
      fstls_trust_init(&t, "127.0.0.1", 7879, NULL, path, 0, NULL, 0), 0);
  ck_assert_int_eq(t.mode, FSTLS_TRUST_NEW);
  SSL_CTX_free(sctx);
  SSL_CTX_free(other);
  tt_rmdir(dir);
}
END_TEST

/* --pin: that key only, and nothing written anywhere. */
START_TEST(test_trust_pin_option) {
  const char *dir = tt_tmpdir();
  char path[PATH_MAX], msg[1024], fp[FSTLS_FP_SIZE], ofp[FSTLS_FP_SIZE];
  SSL_CTX *sctx = tt_server_ctx(fp), *other = tt_server_ctx(ofp);
  struct fstls_trust t;
  struct stat st;

  snprintf(path, sizeof(path), "%s/known_servers", dir);
  ck_assert_int_eq(fstls_trust_init(&t, "h.test", 1, fp, path, 0, NULL, 0), 0);
  ck_assert_int_eq(t.mode, FSTLS_TRUST_PIN);
  ck_assert_int_eq(trust_verdict(&t, sctx, msg, sizeof(msg)), 0);
  ck_assert_int_eq(trust_verdict(&t, other, msg, sizeof(msg)), FSTLS_EPIN);
  ck_assert_ptr_nonnull(strstr(msg, "not the pinned"));
  ck_assert_ptr_nonnull(strstr(msg, ofp));
  ck_assert_int_ne(stat(path, &st), 0);
  ck_assert_int_eq(fstls_trust_init(&t, "h.test", 1, "SHA256:xyz", path, 0, msg,
                                    sizeof(msg)),
                   FSTLS_EINVAL);
  ck_assert_ptr_nonnull(strstr(msg, "--pin"));
  ck_assert_int_eq(fstls_trust_init(&t, "a b", 1, NULL, path, 0, NULL, 0),
                   FSTLS_EINVAL);
  ck_assert_int_eq(fstls_trust_init(&t, "h.test", 1, NULL, path, 1, NULL, 0),
                   0);
  ck_assert_int_eq(t.mode, FSTLS_TRUST_CA);
  ck_assert_ptr_null(fstls_trust_pin(&t));
  SSL_CTX_free(sctx);
  SSL_CTX_free(other);
  tt_rmdir(dir);
}
END_TEST

Suite *trust_suite(void) {
  Suite *s = suite_create("trust");
  TCase *tc = tcase_create("trust");

  tcase_add_test(tc, test_trust_pin_match);
  tcase_add_test(tc, test_trust_pin_mismatch);
  tcase_add_loop_test(tc, test_trust_key_ignores_names_and_dates, 0, 2);
  tcase_add_test(tc, test_trust_ca_good);
  tcase_add_test(tc, test_trust_ca_wrong_host);
  tcase_add_test(tc, test_trust_ca_expired_or_not_yet);
  tcase_add_test(tc, test_trust_ca_unknown_issuer);
  tcase_add_test(tc, test_trust_ca_file_errors);
  tcase_add_test(tc, test_trust_first_use_then_changed_key);
  tcase_add_test(tc, test_trust_pin_option);
  suite_add_tcase(s, tc);
  return s;
}
