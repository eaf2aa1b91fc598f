/* fsd's own keys: made once in the state directory with safe modes, kept
 * across restarts, refused when others can read them; and fingerprints as
 * ssh prints them. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include "helpers.h"

/* A P-256 key, and its fingerprint computed with the openssl tool:
 * openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary |
 * base64 | tr -d = */
static const char vec_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgP8osWHxqlarPHnuc\n"
    "/1aUjqQXCIA43TdPfYIby4e04/6hRANCAAS5F+MlgHUTZ7b7U6t23Ou9hkfH3ZPR\n"
    "/+UuUpqP9fQTtUswXa+FbJYgZMyvREYitlPCSPfae+pZWUtW4N8mprSu\n"
    "-----END PRIVATE KEY-----\n";
static const char vec_fp[] =
    "SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao";

START_TEST(test_keys_fingerprint_vector) {
  BIO *b = BIO_new_mem_buf(vec_key, -1);
  EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
  uint8_t hash[FSTLS_HASH_LEN], back[FSTLS_HASH_LEN];
  char fp[FSTLS_FP_SIZE];

  ck_assert_ptr_nonnull(k);
  ck_assert_int_eq(fstls_spki_hash(k, hash), 0);
  fstls_fp_format(hash, fp);
  ck_assert_str_eq(fp, vec_fp);
  ck_assert_int_eq(strlen(fp), FSTLS_FP_SIZE - 1);
  ck_assert_int_eq(fstls_fp_parse(fp, back), 0);
  ck_assert_int_eq(memcmp(hash, back, sizeof(hash)), 0);
  EVP_PKEY_free(k);
  BIO_free(b);
}
END_TEST

START_TEST(test_keys_fingerprint_roundtrip) {
  uint8_t hash[FSTLS_HASH_LEN], back[FSTLS_HASH_LEN];
  char fp[FSTLS_FP_SIZE];
  int i;

  for (i = 0; i < 1000; i++) {
    ck_assert_int_eq(RAND_bytes(hash, sizeof(hash)), 1);
    if (i < 2)
      memset(hash, i == 0 ? 0 : 0xff, sizeof(hash));
    fstls_fp_format(hash, fp);
    ck_assert_int_eq(fstls_fp_parse(fp, back), 0);
    ck_assert_int_eq(memcmp(hash, back, sizeof(hash)), 0);
  }
}
END_TEST

START_TEST(test_keys_fingerprint_parse_rejects) {
  static const char *bad[] = {
      "",
      "SHA256:",
      "c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao",
      "sha256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao",
      "MD5:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao",
      "SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBa",
      "SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBaoo",
      "SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBa==",
      "SHA256:c60ik4YI3BLDpnmxA2Z-nwFpHABi1qf8gCOlE3XKBao",
      "SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao ",
      "SHA256: c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao",
      /* Same bytes, non-zero trailing bits: a second spelling. */
      "SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBap",
  };
  uint8_t hash[FSTLS_HASH_LEN];
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(fstls_fp_parse(bad[i], hash) == FSTLS_EINVAL, "accepted %s",
                  bad[i]);
  ck_assert_int_eq(fstls_fp_parse(NULL, hash), FSTLS_EINVAL);
  /* ssh prints it unpadded; a padded copy is the same key. */
  ck_assert_int_eq(
      fstls_fp_parse("SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao=",
                     hash),
      0);
}
END_TEST

static unsigned file_mode(const char *path) {
  struct stat st;

  ck_assert_int_eq(stat(path, &st), 0);
  return (unsigned)(st.st_mode & 07777);
}

/* First start makes the key (0600) in a new directory (0700); later starts
 * keep it, and a lost certificate is made again for the same key. */
START_TEST(test_keys_ensure_creates_then_keeps) {
  char dir[PATH_MAX], key[PATH_MAX], cert[PATH_MAX], why[256] = "";
  char fp1[FSTLS_FP_SIZE], fp2[FSTLS_FP_SIZE], fp3[FSTLS_FP_SIZE];
  const char *top = tt_tmpdir();
  SSL_CTX *ctx;

  snprintf(dir, sizeof(dir), "%s/state/fsd", top);
  ck_assert_int_eq(fstls_keys_ensure(dir, key, cert, why, sizeof(why)), 1);
  ck_assert_uint_eq(file_mode(dir), 0700);
  ck_assert_uint_eq(file_mode(key), 0600);
  ck_assert_ptr_nonnull(strstr(key, "/state/fsd/" FSTLS_KEY_NAME));
  ck_assert_int_eq(fstls_server_ctx_new(cert, key, &ctx, fp1, why, sizeof(why)),
                   0);
  SSL_CTX_free(ctx);

  ck_assert_int_eq(fstls_keys_ensure(dir, key, cert, why, sizeof(why)), 0);
  ck_assert_int_eq(fstls_server_ctx_new(cert, key, &ctx, fp2, why, sizeof(why)),
                   0);
  SSL_CTX_free(ctx);
  ck_assert_str_eq(fp1, fp2);

  ck_assert_int_eq(unlink(cert), 0);
  ck_assert_int_eq(fstls_keys_ensure(dir, key, cert, why, sizeof(why)), 0);
  ck_assert_int_eq(fstls_server_ctx_new(cert, key, &ctx, fp3, why, sizeof(why)),
                   0);
  SSL_CTX_free(ctx);
  ck_assert_str_eq(fp1, fp3);
  tt_rmdir(top);
}
END_TEST

/* A key that group or others may read is refused, with the fix in the
 * message, both in the state directory and given with --tls-key. */
START_TEST(test_keys_readable_key_refused) {
  static const unsigned modes[] = {0644, 0640, 0604, 0660, 0602, 0610};
  char key[PATH_MAX], cert[PATH_MAX], why[256];
  const char *dir = tt_tmpdir();
  SSL_CTX *ctx = NULL;
  size_t i;

  ck_assert_int_eq(fstls_keys_ensure(dir, key, cert, why, sizeof(why)), 1);
  for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
    ck_assert_int_eq(chmod(key, modes[i]), 0);
    why[0] = '\0';
    ck_assert_int_eq(fstls_keys_ensure(dir, key, cert, why, sizeof(why)),
                     FSTLS_EKEYPERM);
    ck_assert_ptr_nonnull(strstr(why, "chmod 600"));
    ck_assert_ptr_nonnull(strstr(why, key));
    why[0] = '\0';
    ck_assert_int_eq(
        fstls_server_ctx_new(cert, key, &ctx, NULL, why, sizeof(why)),
        FSTLS_EKEYPERM);
    ck_assert_ptr_null(ctx);
    ck_assert_ptr_nonnull(strstr(why, "chmod 600"));
  }
  /* 0400 is as good as 0600. */
  ck_assert_int_eq(chmod(key, 0400), 0);
  ck_assert_int_eq(
      fstls_server_ctx_new(cert, key, &ctx, NULL, why, sizeof(why)), 0);
  SSL_CTX_free(ctx);
  tt_rmdir(dir);
}
END_TEST

START_TEST(test_keys_bad_files_refused) {
  char key[PATH_MAX], cert[PATH_MAX], other[PATH_MAX], why[256];
  const char *dir = tt_tmpdir();
  EVP_PKEY *k = tt_key();
  SSL_CTX *ctx = NULL;
  FILE *f;

  ck_assert_int_eq(fstls_keys_ensure(dir, key, cert, why, sizeof(why)), 1);
  /* A key that does not belong to the certificate. */
  strcpy(other, tt_write_key(dir, "other.key", k));
  ck_assert_int_eq(
      fstls_server_ctx_new(cert, other, &ctx, NULL, why, sizeof(why)),
      FSTLS_EKEY);
  /* A key with a pass phrase fails to load instead of prompting. */
  f = fopen(other, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(PEM_write_PrivateKey(f, k, EVP_aes_128_cbc(), NULL, 0, NULL,
                                        (void *)"secret"),
                   1);
  fclose(f);
  ck_assert_int_eq(
      fstls_server_ctx_new(cert, other, &ctx, NULL, why, sizeof(why)),
      FSTLS_EKEY);
  ck_assert_ptr_nonnull(strstr(why, other));
  /* Not PEM at all; missing files. */
  strcpy(other, tt_write(dir, "junk.key", "junk\n", 0600));
  ck_assert_int_eq(
      fstls_server_ctx_new(cert, other, &ctx, NULL, why, sizeof(why)),
      FSTLS_EKEY);
  ck_assert_int_eq(fstls_server_ctx_new(cert, "/nonexistent/key.pem", &ctx,
                                        NULL, why, sizeof(why)),
                   FSTLS_EIO);
  ck_assert_int_eq(fstls_server_ctx_new("/nonexistent/cert.pem", key, &ctx,
                                        NULL, why, sizeof(why)),
                   FSTLS_EKEY);
  ck_assert_ptr_null(ctx);
  /* A state directory that is a file. */
  ck_assert_int_lt(fstls_keys_ensure(other, key, cert, why, sizeof(why)), 0);
  EVP_PKEY_free(k);
  tt_rmdir(dir);
}
END_TEST

START_TEST(test_keys_state_dir_default) {
  char buf[PATH_MAX];

  setenv("STATE_DIRECTORY", "/var/lib/fsd:/var/lib/other", 1);
  setenv("XDG_STATE_HOME", "/x/state", 1);
  setenv("HOME", "/home/u", 1);
  ck_assert_int_eq(fstls_state_dir_default(buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "/var/lib/fsd");
  unsetenv("STATE_DIRECTORY");
  ck_assert_int_eq(fstls_state_dir_default(buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "/x/state/fsd");
  /* XDG says relative paths are to be ignored. */
  setenv("XDG_STATE_HOME", "rel", 1);
  ck_assert_int_eq(fstls_state_dir_default(buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "/home/u/.local/state/fsd");
  unsetenv("XDG_STATE_HOME");
  unsetenv("HOME");
  ck_assert_int_eq(fstls_state_dir_default(buf, sizeof(buf)), FSTLS_EINVAL);
  setenv("HOME", "/home/u", 1);
  ck_assert_int_eq(fstls_state_dir_default(buf, 5), FSTLS_EINVAL);
}
END_TEST

/* The kernel TLS probe reads the kernel's list of TCP upper layers. */
START_TEST(test_keys_ktls_probe) {
  char why[256] = "";
  int has;

  ck_assert_int_eq(fstls_ulp_has_tls("tls"), 1);
  ck_assert_int_eq(fstls_ulp_has_tls("mptcp tls\n"), 1);
  ck_assert_int_eq(fstls_ulp_has_tls("tls\tmptcp"), 1);
  ck_assert_int_eq(fstls_ulp_has_tls("mptcp\n"), 0);
  ck_assert_int_eq(fstls_ulp_has_tls("tlsx ktls"), 0);
  ck_assert_int_eq(fstls_ulp_has_tls(""), 0);
  has = fstls_ktls_available(why, sizeof(why));
  ck_assert_int_eq(has == 0 || has == 1, 1);
  ck_assert_ptr_nonnull(strstr(why, "kernel TLS"));
}
END_TEST

Suite *keys_suite(void) {
  Suite *s = suite_create("keys");
  TCase *tc = tcase_create("keys");

  tcase_add_test(tc, test_keys_fingerprint_vector);
  tcase_add_test(tc, test_keys_fingerprint_roundtrip);
  tcase_add_test(tc, test_keys_fingerprint_parse_rejects);
  tcase_add_test(tc, test_keys_ensure_creates_then_keeps);
  tcase_add_test(tc, test_keys_readable_key_refused);
  tcase_add_test(tc, test_keys_bad_files_refused);
  tcase_add_test(tc, test_keys_state_dir_default);
  tcase_add_test(tc, test_keys_ktls_probe);
  suite_add_tcase(s, tc);
  return s;
}
