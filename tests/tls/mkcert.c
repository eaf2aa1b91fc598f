/* Writes the certificates the TLS integration tests serve, into DIR:
 *   ca.pem                  a test CA
 *   ok.pem, ok.key          for localhost and 127.0.0.1, valid now
 *   ok2.pem, ok2.key        the same names, another key (reload tests)
 *   host.pem, host.key      for other.test only (wrong host)
 *   old.pem, old.key        for localhost and 127.0.0.1, expired
 * Keys are written with mode 0600. Usage: mkcert DIR */
#include <stdio.h>
#include <string.h>

#include "helpers.h"

static void leaf(const char *dir, const char *name, EVP_PKEY *ca_key, X509 *ca,
                 const char *san, long from, long to) {
  char file[64];
  EVP_PKEY *k = tt_key();
  X509 *x = tt_cert(k, ca_key, ca, name, san, from, to, 0);

  snprintf(file, sizeof(file), "%s.key", name);
  tt_write_key(dir, file, k);
  snprintf(file, sizeof(file), "%s.pem", name);
  tt_write_cert(dir, file, x);
  X509_free(x);
  EVP_PKEY_free(k);
}

/* The folder to write into. */
static const char *out_dir;

/* Runs as a Check test, so that the helpers' assertions report a failure
 * properly. */
START_TEST(make_certs) {
  static const char local[] = "DNS:localhost,IP:127.0.0.1";
  EVP_PKEY *ca_key = tt_key();
  X509 *ca =
      tt_cert(ca_key, NULL, NULL, "fsproto test CA", NULL, -3600, 86400, 1);

  tt_write_cert(out_dir, "ca.pem", ca);
  leaf(out_dir, "ok", ca_key, ca, local, -3600, 86400);
  leaf(out_dir, "ok2", ca_key, ca, local, -3600, 86400);
  leaf(out_dir, "host", ca_key, ca, "DNS:other.test", -3600, 86400);
  leaf(out_dir, "old", ca_key, ca, local, -7200, -3600);
  X509_free(ca);
  EVP_PKEY_free(ca_key);
}
END_TEST

int main(int argc, char **argv) {
  Suite *s = suite_create("mkcert");
  TCase *tc = tcase_create("mkcert");
  SRunner *sr;
  int failed;

  if (argc != 2) {
    fprintf(stderr, "usage: mkcert DIR\n");
    return 2;
  }
  out_dir = argv[1];
  tcase_add_test(tc, make_certs);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_SILENT);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
