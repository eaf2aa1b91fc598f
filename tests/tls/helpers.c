/* Helpers shared by the fstls tests; see helpers.h. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "helpers.h"

const char *tt_tmpdir(void) {
  static char dir[64];

  strcpy(dir, "/tmp/fstls-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  return dir;
}

/* Removes dir and everything below it (the tests make shallow trees). */
void tt_rmdir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char path[PATH_MAX];
  struct stat st;

  if (d == NULL)
    return;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
      tt_rmdir(path);
    else
      unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

const char *tt_write(const char *dir, const char *name, const char *text,
                     unsigned mode) {
  static char path[PATH_MAX];
  int fd;
  size_t n = strlen(text);

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  unlink(path);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
  ck_assert_int_eq(fchmod(fd, mode), 0);
  close(fd);
  return path;
}

EVP_PKEY *tt_key(void) {
  EVP_PKEY *k = EVP_EC_gen("P-256");

  ck_assert_ptr_nonnull(k);
  return k;
}

/* Adds one X509v3 extension given in openssl's config syntax. */
static void add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
  X509V3_CTX v3;
  X509_EXTENSION *ext;

  X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  ck_assert_ptr_nonnull(ext);
  ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
  X509_EXTENSION_free(ext);
}

X509 *tt_cert(EVP_PKEY *key, EVP_PKEY *ca_key, X509 *ca, const char *cn,
              const char *san, long from, long to, int is_ca) {
  static long serial = 1;
  X509 *x = X509_new();
  X509_NAME *name = X509_NAME_new();

  ck_assert_ptr_nonnull(x);
  ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_subject_name(x, name);
  X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name);
  X509_NAME_free(name);
  X509_gmtime_adj(X509_getm_notBefore(x), from);
  X509_gmtime_adj(X509_getm_notAfter(x), to);
  X509_set_pubkey(x, key);
  add_ext(x, ca != NULL ? ca : x, NID_basic_constraints,
          is_ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (is_ca)
    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (san != NULL)
    add_ext(x, ca != NULL ? ca : x, NID_subject_alt_name, san);
  ck_assert_int_gt(X509_sign(x, ca_key != NULL ? ca_key : key, EVP_sha256()),
                   0);
  return x;
}

static char pem_path[PATH_MAX];

const char *tt_write_key(const char *dir, const char *name, EVP_PKEY *key) {
  FILE *f;
  int fd;

  snprintf(pem_path, sizeof(pem_path), "%s/%s", dir, name);
  unlink(pem_path);
  fd = open(pem_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  f = fdopen(fd, "w");
  ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
  fclose(f);
  return pem_path;
}

const char *tt_write_cert(const char *dir, const char *name, X509 *cert) {
  FILE *f;

  snprintf(pem_path, sizeof(pem_path), "%s/%s", dir, name);
  f = fopen(pem_path, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(PEM_write_X509(f, cert), 1);
  fclose(f);
  return pem_path;
}

SSL_CTX *tt_server_ctx(char *fp) {
  char key[PATH_MAX], cert[PATH_MAX], why[256] = "";
  const char *dir = tt_tmpdir();
  SSL_CTX *ctx = NULL;
  int rc;

  rc = fstls_keys_ensure(dir, key, cert, why, sizeof(why));
  ck_assert_msg(rc == 1, "keys_ensure: %d %s", rc, why);
  rc = fstls_server_ctx_new(cert, key, &ctx, fp, why, sizeof(why));
  ck_assert_msg(rc == 0, "server_ctx_new: %d %s", rc, why);
  tt_rmdir(dir);
  return ctx;
}

size_t tt_move(struct fstls_engine *from, struct fstls_engine *to,
               size_t step) {
  unsigned char buf[65536];
  size_t n, total = 0, i;

  while ((n = fstls_drain(from, buf, sizeof(buf))) > 0) {
    size_t chunk = step == 0 ? n : step;
    for (i = 0; i < n; i += chunk) {
      size_t k = n - i < chunk ? n - i : chunk;
      ck_assert_int_eq(fstls_feed(to, buf + i, k), 0);
      if (step != 0 && i + k < n) {
        /* A partial record must only ever ask for more. */
        int r = fstls_handshake(to);
        ck_assert_msg(r == FSTLS_EAGAIN || r == 1, "mid-feed: %s",
                      fstls_err_name(r));
      }
    }
    total += n;
  }
  return total;
}

int tt_handshake(struct fstls_engine *c, struct fstls_engine *s, size_t step,
                 char *who) {
  int rc = 0, rs = 0, round;

  for (round = 0; round < 100; round++) {
    rc = fstls_handshake(c);
    tt_move(c, s, step);
    rs = fstls_handshake(s);
    tt_move(s, c, step);
    if (rc < 0 && rc != FSTLS_EAGAIN) {
      if (who != NULL)
        *who = 'c';
      return rc;
    }
    if (rs < 0 && rs != FSTLS_EAGAIN) {
      if (who != NULL)
        *who = 's';
      return rs;
    }
    if (rc == 1 && rs == 1)
      return 0;
  }
  ck_abort_msg("handshake does not end: client %s, server %s",
               fstls_err_name(rc), fstls_err_name(rs));
  return FSTLS_EPROTO;
}
