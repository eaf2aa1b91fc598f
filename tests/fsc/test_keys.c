/* fsc's key files (keys.c) with real tools on both sides: keys fsc writes
 * are read by ssh-keygen, keys ssh-keygen and openssl write are read by
 * fsc, and every signature is checked with OpenSSL. */
#include <check.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "keys.h"
#include "login.h"

static char dir[256];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...) {
  char cmd[1024];
  va_list ap;
  int st;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  st = system(cmd);
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;

  if (f == NULL)
    return -1;
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}

static void setup(void) {
  snprintf(dir, sizeof(dir), "/tmp/fsc-keys-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  sh("rm -rf '%s'", dir);
}

/* k's signature over a message verifies with k's public key, as a server
 * holding only the public key would check it; a changed message fails. */
static void check_signs(const struct fsc_key *k) {
  static const uint8_t msg[] = "fsproto-v2-auth-ed25519 test message";
  uint8_t sig[FSP_SIG_LEN];
  EVP_PKEY *pub =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->pub, 32);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();

  ck_assert_ptr_nonnull(pub);
  ck_assert_int_eq(fsc_key_sign(k, msg, sizeof(msg), sig), 0);
  ck_assert_int_eq(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub), 1);
  ck_assert_int_eq(EVP_DigestVerify(ctx, sig, sizeof(sig), msg, sizeof(msg)),
                   1);
  ck_assert_int_eq(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub), 1);
  ck_assert_int_ne(
      EVP_DigestVerify(ctx, sig, sizeof(sig), msg, sizeof(msg) - 1), 1);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pub);
}

/* keygen: a 0600 file in a new 0700 folder, which loads back to the same
 * key, which ssh-keygen reads and whose public line it prints as fsc does. */
START_TEST(test_keys_generate_and_load) {
  char path[300], line[512], sshline[512], err[256];
  struct fsc_key k, l;
  struct stat st;

  snprintf(path, sizeof(path), "%s/cfg/fsc/id_ed25519", dir);
  ck_assert_int_eq(fsc_key_generate(path, "alice@laptop", &k, err, sizeof(err)),
                   0);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0600);
  snprintf(line, sizeof(line), "%s/cfg/fsc", dir);
  ck_assert_int_eq(stat(line, &st), 0);
  ck_assert_uint_eq(st.st_mode & 07777, 0700);

  ck_assert_int_eq(fsc_key_load(path, &l, err, sizeof(err)), 0);
  ck_assert_mem_eq(k.pub, l.pub, FSP_PUBKEY_LEN);
  ck_assert_str_eq(l.comment, "alice@laptop");
  check_signs(&l);

  ck_assert_int_gt(fsc_key_publine(&k, line, sizeof(line)), 0);
  ck_assert_int_eq(
      sh("ssh-keygen -y -f '%s' > '%s.pub' 2>/dev/null", path, path), 0);
  snprintf(sshline, sizeof(sshline), "%s.pub", path);
  ck_assert_int_gt(slurp(sshline, sshline, sizeof(sshline)), 0);
  sshline[strcspn(sshline, "\n")] = '\0';
  ck_assert_str_eq(sshline, line);
  fsc_key_free(&k);
  fsc_key_free(&l);
  ck_assert_ptr_null(k.pkey);
}
END_TEST

/* keygen never replaces a key: the second run fails and the file is
 * unchanged. */
START_TEST(test_keys_generate_never_overwrites) {
  char path[300], before[4096], after[4096], err[256];
  struct fsc_key k;

  snprintf(path, sizeof(path), "%s/id_ed25519", dir);
  ck_assert_int_eq(fsc_key_generate(path, "a", &k, err, sizeof(err)), 0);
  fsc_key_free(&k);
  ck_assert_int_gt(slurp(path, before, sizeof(before)), 0);
  ck_assert_int_eq(fsc_key_generate(path, "b", &k, err, sizeof(err)),
                   UV_EEXIST);
  ck_assert_ptr_nonnull(strstr(err, "already exists"));
  ck_assert_ptr_nonnull(strstr(err, path));
  ck_assert_int_gt(slurp(path, after, sizeof(after)), 0);
  ck_assert_str_eq(before, after);
  /* Nor a symlink planted where the key would go. */
  snprintf(after, sizeof(after), "%s/planted", dir);
  ck_assert_int_eq(symlink("/tmp/fsc-keys-nowhere", after), 0);
  ck_assert_int_eq(fsc_key_generate(after, "c", &k, err, sizeof(err)),
                   UV_EEXIST);
  ck_assert_int_ne(access("/tmp/fsc-keys-nowhere", F_OK), 0);
}
END_TEST

/* An ssh-keygen key without passphrase works as is; one with a passphrase
 * is refused saying so; its public line is the .pub file's. */
START_TEST(test_keys_openssh_interop) {
  char path[300], pub[512], line[512], err[256];
  struct fsc_key k;

  snprintf(path, sizeof(path), "%s/id_ed25519", dir);
  ck_assert_int_eq(
      sh("ssh-keygen -q -t ed25519 -N '' -C 'bob@desk' -f '%s'", path), 0);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), 0);
  check_signs(&k);
  ck_assert_int_gt(fsc_key_publine(&k, line, sizeof(line)), 0);
  snprintf(pub, sizeof(pub), "%s.pub", path);
  ck_assert_int_gt(slurp(pub, pub, sizeof(pub)), 0);
  pub[strcspn(pub, "\n")] = '\0';
  ck_assert_str_eq(line, pub);
  fsc_key_free(&k);

  snprintf(path, sizeof(path), "%s/locked", dir);
  ck_assert_int_eq(
      sh("ssh-keygen -q -t ed25519 -N 'secret words' -f '%s'", path), 0);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), UV_ENOTSUP);
  ck_assert_ptr_nonnull(strstr(err, "passphrase"));
}
END_TEST

/* PKCS#8 PEM from openssl works; an encrypted one and a key of another
 * type are refused. */
START_TEST(test_keys_pem_interop) {
  char path[300], err[256];
  struct fsc_key k;

  snprintf(path, sizeof(path), "%s/k.pem", dir);
  ck_assert_int_eq(
      sh("umask 077; openssl genpkey -algorithm ed25519 -out '%s'", path), 0);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), 0);
  check_signs(&k);
  fsc_key_free(&k);
  ck_assert_int_eq(sh("umask 077; openssl genpkey -algorithm ed25519 "
                      "-aes256 -pass pass:secretword -out '%s' 2>/dev/null",
                      path),
                   0);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), UV_ENOTSUP);
  ck_assert_ptr_nonnull(strstr(err, "passphrase"));
  ck_assert_int_eq(sh("umask 077; openssl genpkey -algorithm EC -pkeyopt "
                      "ec_paramgen_curve:P-256 -out '%s' 2>/dev/null",
                      path),
                   0);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), UV_ENOTSUP);
  ck_assert_ptr_nonnull(strstr(err, "not an Ed25519 key"));
}
END_TEST

/* A key its group or others may access is refused, as ssh refuses it, with
 * the fix in the message. */
START_TEST(test_keys_refuses_open_permissions) {
  static const mode_t bad[] = {0644, 0640, 0604, 0660, 0601, 0610};
  char path[300], err[256];
  struct fsc_key k;

  snprintf(path, sizeof(path), "%s/id_ed25519", dir);
  ck_assert_int_eq(fsc_key_generate(path, "", &k, err, sizeof(err)), 0);
  fsc_key_free(&k);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(chmod(path, bad[i]), 0);
    ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), UV_EPERM);
    ck_assert_ptr_nonnull(strstr(err, "too open"));
    ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
    ck_assert_ptr_null(k.pkey);
  }
  ck_assert_int_eq(chmod(path, 0400), 0);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), 0);
  fsc_key_free(&k);
}
END_TEST

/* Garbage, a truncated key, a key whose halves disagree, a missing file. */
START_TEST(test_keys_refuses_broken_files) {
  char path[300], text[4096], err[256];
  struct fsc_key k;
  FILE *f;
  long n;
  char *mid;

  snprintf(path, sizeof(path), "%s/id_ed25519", dir);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), UV_ENOENT);
  ck_assert_ptr_nonnull(strstr(err, "fsc keygen"));
  ck_assert_int_eq(fsc_key_generate(path, "x", &k, err, sizeof(err)), 0);
  fsc_key_free(&k);
  n = slurp(path, text, sizeof(text));
  ck_assert_int_gt(n, 100);

  /* Cut in the middle of the base64, keeping the armour. */
  mid = strchr(text, '\n') + 40;
  memmove(mid, strstr(text, "-----END"), strlen(strstr(text, "-----END")) + 1);
  f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), UV_EINVAL);
  ck_assert_ptr_null(k.pkey);

  f = fopen(path, "w");
  fputs("not a key at all\n", f);
  fclose(f);
  ck_assert_int_eq(fsc_key_load(path, &k, err, sizeof(err)), UV_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "not a private key"));
}
END_TEST

START_TEST(test_keys_users_line) {
  char path[300], line[512], pub[512], err[256];
  struct fsc_key k;

  snprintf(path, sizeof(path), "%s/id_ed25519", dir);
  ck_assert_int_eq(fsc_key_generate(path, "carol@box", &k, err, sizeof(err)),
                   0);
  ck_assert_int_gt(fsc_key_users_line(&k, "carol", line, sizeof(line)), 0);
  ck_assert_int_gt(fsc_key_publine(&k, pub, sizeof(pub)), 0);
  ck_assert_ptr_eq(strstr(line, "carol read,write,delete,notice ssh-ed25519 "),
                   line);
  ck_assert_str_eq(line + strlen("carol read,write,delete,notice "), pub);
  ck_assert_int_eq(fsc_key_users_line(&k, "bad name", line, sizeof(line)),
                   UV_EINVAL);
  ck_assert_int_eq(fsc_key_users_line(&k, "carol", line, 20), UV_ENOBUFS);
  fsc_key_free(&k);
}
END_TEST

START_TEST(test_keys_default_path) {
  char buf[512];

  setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
  setenv("HOME", "/home/u", 1);
  ck_assert_int_eq(fsc_key_default_path(buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "/x/cfg/fsc/id_ed25519");
  setenv("XDG_CONFIG_HOME", "relative", 1);
  ck_assert_int_eq(fsc_key_default_path(buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "/home/u/.config/fsc/id_ed25519");
  unsetenv("XDG_CONFIG_HOME");
  ck_assert_int_eq(fsc_key_default_path(buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "/home/u/.config/fsc/id_ed25519");
  ck_assert_int_eq(fsc_key_default_path(buf, 10), UV_ENAMETOOLONG);
  unsetenv("HOME");
  ck_assert_int_eq(fsc_key_default_path(buf, sizeof(buf)), UV_ENOENT);
}
END_TEST

/* -u beats $FSC_USER beats the login name; a name no server accepts is
 * refused and named. */
START_TEST(test_keys_login_user) {
  char buf[FSP_USER_MAX + 1];
  const char *bad;

  setenv("FSC_USER", "envuser", 1);
  setenv("USER", "loginuser", 1);
  ck_assert_int_eq(fsc_login_user("opt", buf, sizeof(buf), &bad), 0);
  ck_assert_str_eq(buf, "opt");
  ck_assert_int_eq(fsc_login_user(NULL, buf, sizeof(buf), &bad), 0);
  ck_assert_str_eq(buf, "envuser");
  unsetenv("FSC_USER");
  ck_assert_int_eq(fsc_login_user(NULL, buf, sizeof(buf), &bad), 0);
  ck_assert_str_eq(buf, "loginuser");
  ck_assert_int_eq(fsc_login_user("a b", buf, sizeof(buf), &bad), UV_EINVAL);
  ck_assert_str_eq(bad, "a b");
  setenv("FSC_USER", "-x", 1);
  ck_assert_int_eq(fsc_login_user(NULL, buf, sizeof(buf), &bad), UV_EINVAL);
  ck_assert_str_eq(bad, "-x");
  unsetenv("FSC_USER");
}
END_TEST

static Suite *keys_suite(void) {
  Suite *s = suite_create("keys");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_keys_generate_and_load);
  tcase_add_test(tc, test_keys_generate_never_overwrites);
  tcase_add_test(tc, test_keys_openssh_interop);
  tcase_add_test(tc, test_keys_pem_interop);
  tcase_add_test(tc, test_keys_refuses_open_permissions);
  tcase_add_test(tc, test_keys_refuses_broken_files);
  tcase_add_test(tc, test_keys_users_line);
  tcase_add_test(tc, test_keys_default_path);
  tcase_add_test(tc, test_keys_login_user);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(keys_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
