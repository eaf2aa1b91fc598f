/* The users file: parsing, rights, lookup and the file checks (users.c),
 * with real keys from OpenSSL and from ssh-keygen. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "keyutil.h"
#include "users.h"

Suite *users_suite(void);

static char alice_key[128], bob_key[128];
static uint8_t alice_pub[FSP_PUBKEY_LEN], bob_pub[FSP_PUBKEY_LEN];

static void setup_keys(void) {
  EVP_PKEY *a = tk_keygen(), *b = tk_keygen();

  tk_pub(a, alice_pub);
  tk_pub(b, bob_pub);
  tk_sshpub(alice_pub, alice_key, sizeof(alice_key));
  tk_sshpub(bob_pub, bob_key, sizeof(bob_key));
  EVP_PKEY_free(a);
  EVP_PKEY_free(b);
}

static int parse(const char *text, struct fsd_users *u, char *err,
                 size_t errlen) {
  memset(u, 0, sizeof(*u));
  err[0] = '\0';
  return fsd_users_parse(text, strlen(text), u, err, errlen);
}

START_TEST(test_users_parse_good_file) {
  struct fsd_users u;
  char text[2048], err[256];
  const struct fsd_user *a, *b;

  setup_keys();
  snprintf(text, sizeof(text),
           "# who may use this server\n"
           "\n"
           "alice read,write,delete,notice %s alice@laptop\n"
           "   # an indented comment\n"
           "bob\tread\t%s  bob's key, with spaces\r\n"
           "carol notice,read %s",
           alice_key, bob_key, bob_key);
  ck_assert_int_eq(parse(text, &u, err, sizeof(err)), 0);
  ck_assert_uint_eq(u.n, 3);
  a = fsd_users_find(&u, "alice", 5);
  b = fsd_users_find(&u, "bob", 3);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_str_eq(a->name, "alice");
  ck_assert_uint_eq(a->rights, FSD_RIGHTS_ALL);
  ck_assert_uint_eq(a->line, 3);
  ck_assert_mem_eq(a->key, alice_pub, FSP_PUBKEY_LEN);
  ck_assert_uint_eq(b->rights, FSD_RIGHT_READ);
  ck_assert_uint_eq(b->line, 5);
  ck_assert_mem_eq(b->key, bob_pub, FSP_PUBKEY_LEN);
  ck_assert_uint_eq(fsd_users_find(&u, "carol", 5)->rights,
                    FSD_RIGHT_READ | FSD_RIGHT_NOTICE);
  fsd_users_free(&u);
  ck_assert_ptr_null(u.v);
  ck_assert_uint_eq(u.n, 0);
}
END_TEST

START_TEST(test_users_parse_empty_file) {
  struct fsd_users u;
  char err[256];

  ck_assert_int_eq(parse("", &u, err, sizeof(err)), 0);
  ck_assert_uint_eq(u.n, 0);
  ck_assert_int_eq(parse("# nobody yet\n\n", &u, err, sizeof(err)), 0);
  ck_assert_uint_eq(u.n, 0);
  ck_assert_ptr_null(fsd_users_find(&u, "alice", 5));
}
END_TEST

/* Each malformed line is refused with a message naming its line number and
 * what is wrong, and nothing is kept. */
/* Copies tmpl into out with "KEY" replaced by key. */
static void expand(char *out, size_t cap, const char *tmpl, const char *key) {
  const char *at = strstr(tmpl, "KEY");

  if (at == NULL)
    snprintf(out, cap, "%s", tmpl);
  else
    snprintf(out, cap, "%.*s%s%s", (int)(at - tmpl), tmpl, key, at + 3);
}

START_TEST(test_users_parse_errors_name_the_line) {
  static const struct {
    const char *line; /* KEY stands for a valid key */
    const char *want; /* in the message */
  } cases[] = {
      {".alice read KEY", "line 2: bad user name '.alice'"},
      {"al/ice read KEY", "line 2: bad user name 'al/ice'"},
      {"alice", "line 2: user alice has no rights and no key"},
      {"alice read", "line 2: user alice has no key"},
      {"alice admin KEY", "line 2: unknown right 'admin'"},
      {"alice read,,write KEY", "line 2: unknown right ''"},
      {"alice read, KEY", "line 2: unknown right ''"},
      {"alice READ KEY", "line 2: unknown right 'READ'"},
      {"alice read ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
       "line 2: key type 'ssh-rsa' is not supported"},
      {"alice read ssh-ed25519 AAAA!!!!",
       "line 2: the key of user alice is not a valid"},
      {"alice read ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",
       "line 2: the key of user alice is not a valid"},
      {"bob read KEY", "line 2: user bob is already defined on line 1"},
  };

  setup_keys();
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct fsd_users u;
    char line[512], text[1024], err[256];

    expand(line, sizeof(line), cases[i].line, alice_key);
    snprintf(text, sizeof(text), "bob read %s\n%s\ncarol read %s\n", bob_key,
             line, bob_key);
    ck_assert_int_eq(parse(text, &u, err, sizeof(err)), UV_EINVAL);
    ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: '%s'", i, err);
    ck_assert_ptr_null(u.v);
    ck_assert_uint_eq(u.n, 0);
  }
}
END_TEST

/* A key blob that says another type inside than outside, or carries a key
 * of the wrong length, is not an ed25519 key. */
START_TEST(test_users_key_blob_checked) {
  static const uint8_t good_hdr[19] = {0,   0,   0,   11,  's', 's', 'h',
                                       '-', 'e', 'd', '2', '5', '5', '1',
                                       '9', 0,   0,   0,   32};
  uint8_t blob[51], key[FSP_PUBKEY_LEN];
  unsigned char b64[80];
  int n;

  memcpy(blob, good_hdr, sizeof(good_hdr));
  memset(blob + 19, 0x42, 32);
  n = EVP_EncodeBlock(b64, blob, sizeof(blob));
  ck_assert_int_eq(
      fsd_sshkey_parse("ssh-ed25519", 11, (char *)b64, (size_t)n, key), 0);
  ck_assert_uint_eq(key[0], 0x42);
  blob[14] = '8'; /* "ssh-ed25518" inside */
  n = EVP_EncodeBlock(b64, blob, sizeof(blob));
  ck_assert_int_eq(
      fsd_sshkey_parse("ssh-ed25519", 11, (char *)b64, (size_t)n, key),
      UV_EINVAL);
  blob[14] = '9';
  blob[18] = 31; /* a 31-byte key */
  n = EVP_EncodeBlock(b64, blob, sizeof(blob));
  ck_assert_int_eq(
      fsd_sshkey_parse("ssh-ed25519", 11, (char *)b64, (size_t)n, key),
      UV_EINVAL);
  /* One byte short, then padded: 50 bytes. */
  blob[18] = 32;
  n = EVP_EncodeBlock(b64, blob, 50);
  ck_assert_int_eq(
      fsd_sshkey_parse("ssh-ed25519", 11, (char *)b64, (size_t)n, key),
      UV_EINVAL);
  ck_assert_int_eq(
      fsd_sshkey_parse("ssh-ed448", 9, (char *)b64, (size_t)n, key),
      UV_ENOTSUP);
}
END_TEST

START_TEST(test_users_rights) {
  const char *bad;
  size_t bad_len;
  unsigned r;
  char buf[64];

  ck_assert_int_eq(fsd_rights_parse("read", 4, &r, &bad, &bad_len), 0);
  ck_assert_uint_eq(r, FSD_RIGHT_READ);
  ck_assert_int_eq(
      fsd_rights_parse("notice,delete,write,read,read", 29, &r, &bad, &bad_len),
      0);
  ck_assert_uint_eq(r, FSD_RIGHTS_ALL);
  ck_assert_int_eq(fsd_rights_parse("read,writ", 9, &r, &bad, &bad_len),
                   UV_EINVAL);
  ck_assert_uint_eq(bad_len, 4);
  ck_assert_int_eq(memcmp(bad, "writ", 4), 0);
  ck_assert_int_eq(fsd_rights_parse("", 0, &r, &bad, &bad_len), UV_EINVAL);
  ck_assert_str_eq(fsd_rights_str(FSD_RIGHTS_ALL, buf, sizeof(buf)),
                   "read,write,delete,notice");
  ck_assert_str_eq(
      fsd_rights_str(FSD_RIGHT_READ | FSD_RIGHT_NOTICE, buf, sizeof(buf)),
      "read,notice");
  ck_assert_str_eq(fsd_rights_str(0, buf, sizeof(buf)), "none");
}
END_TEST

/* The table of protocol.md section 11, and nothing for the rest. */
START_TEST(test_users_op_rights) {
  static const struct {
    uint8_t op;
    unsigned right;
  } t[] = {
      {FSP_OP_LIST, FSD_RIGHT_READ},
      {FSP_OP_STAT, FSD_RIGHT_READ},
      {FSP_OP_GET, FSD_RIGHT_READ},
      {FSP_OP_HASH, FSD_RIGHT_READ},
      {FSP_OP_SUBSCRIBE, FSD_RIGHT_READ},
      {FSP_OP_PUT, FSD_RIGHT_WRITE},
      {FSP_OP_DELETE, FSD_RIGHT_DELETE},
      {FSP_OP_NOTICE, FSD_RIGHT_NOTICE},
      {FSP_OP_PING, 0},
      {FSP_OP_BYE, 0},
      {FSP_OP_MKDIR, FSD_RIGHT_WRITE},
      {FSP_OP_RENAME, FSD_RIGHT_WRITE | FSD_RIGHT_DELETE},
      {FSP_OP_CANCEL, 0},
      {FSP_OP_UNSUBSCRIBE, 0},
      {FSP_OP_DATA, 0},
      {FSP_OP_END, 0},
      {FSP_OP_AUTH, 0},
      {FSP_OP_HELLO, 0},
  };
  unsigned needing = 0;

  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    ck_assert_uint_eq(fsd_op_right(t[i].op), t[i].right);
  for (unsigned op = 0; op < 256; op++)
    needing += fsd_op_right((uint8_t)op) != 0;
  ck_assert_uint_eq(needing, 10);
  ck_assert_str_eq(fsd_right_name(FSD_RIGHT_WRITE), "write");
  ck_assert_str_eq(fsd_right_name(3), "?");
}
END_TEST

/* A prefix, an extension or a case change of a name finds no one. */
START_TEST(test_users_find_exact) {
  struct fsd_users u;
  char text[512], err[256];

  setup_keys();
  snprintf(text, sizeof(text), "alice read %s\n", alice_key);
  ck_assert_int_eq(parse(text, &u, err, sizeof(err)), 0);
  ck_assert_ptr_nonnull(fsd_users_find(&u, "alice", 5));
  ck_assert_ptr_null(fsd_users_find(&u, "alic", 4));
  ck_assert_ptr_null(fsd_users_find(&u, "alicex", 6));
  ck_assert_ptr_null(fsd_users_find(&u, "Alice", 5));
  ck_assert_ptr_null(fsd_users_find(&u, "", 0));
  ck_assert_ptr_null(fsd_users_find(&u, "alice", 200));
  fsd_users_free(&u);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Loading: the file checks                                                 */

static char dir[256];

static void make_dir(void) {
  snprintf(dir, sizeof(dir), "/tmp/fsd-users-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void drop_dir(void) {
  tk_sh("rm -rf '%s'", dir);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");

  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(test_users_load_checks_the_file) {
  char path[300], link[300], text[512], err[512];
  struct fsd_users u;

  setup_keys();
  make_dir();
  snprintf(path, sizeof(path), "%s/users", dir);
  snprintf(link, sizeof(link), "%s/users.link", dir);
  snprintf(text, sizeof(text), "alice read %s\n", alice_key);

  write_file(path, text, 0644);
  memset(&u, 0, sizeof(u));
  ck_assert_int_eq(fsd_users_load(path, &u, err, sizeof(err)), 0);
  ck_assert_uint_eq(u.n, 1);
  fsd_users_free(&u);

  /* A symlink is refused, even to a good file. */
  ck_assert_int_eq(symlink(path, link), 0);
  ck_assert_int_eq(fsd_users_load(link, &u, err, sizeof(err)), UV_ELOOP);
  ck_assert_ptr_nonnull(strstr(err, "is a symbolic link"));
  ck_assert_ptr_nonnull(strstr(err, link));

  /* Writable by others, or by the group: refused, saying how to fix it. */
  ck_assert_int_eq(chmod(path, 0646), 0);
  ck_assert_int_eq(fsd_users_load(path, &u, err, sizeof(err)), UV_EPERM);
  ck_assert_ptr_nonnull(strstr(err, "writable by others"));
  ck_assert_ptr_nonnull(strstr(err, "chmod go-w"));
  ck_assert_int_eq(chmod(path, 0664), 0);
  ck_assert_int_eq(fsd_users_load(path, &u, err, sizeof(err)), UV_EPERM);
  ck_assert_ptr_nonnull(strstr(err, "writable by its group"));
  ck_assert_int_eq(chmod(path, 0600), 0);
  ck_assert_int_eq(fsd_users_load(path, &u, err, sizeof(err)), 0);
  fsd_users_free(&u);

  /* A directory, a missing file, a malformed file (the path and the line
   * are both named). */
  ck_assert_int_eq(fsd_users_load(dir, &u, err, sizeof(err)), UV_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
  snprintf(link, sizeof(link), "%s/none", dir);
  ck_assert_int_eq(fsd_users_load(link, &u, err, sizeof(err)), UV_ENOENT);
  ck_assert_ptr_nonnull(strstr(err, link));
  write_file(path, "# ok\nalice read\n", 0600);
  ck_assert_int_eq(fsd_users_load(path, &u, err, sizeof(err)), UV_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, path));
  ck_assert_ptr_nonnull(strstr(err, "line 2"));
  ck_assert_ptr_null(u.v);
  drop_dir();
}
END_TEST

START_TEST(test_users_load_too_large) {
  char path[300], err[256];
  struct fsd_users u;
  FILE *f;

  make_dir();
  snprintf(path, sizeof(path), "%s/users", dir);
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (unsigned i = 0; i <= FSD_USERS_FILE_MAX / 64; i++)
    fprintf(f, "# %061u\n", i);
  fclose(f);
  memset(&u, 0, sizeof(u));
  ck_assert_int_eq(fsd_users_load(path, &u, err, sizeof(err)), UV_EFBIG);
  drop_dir();
}
END_TEST

/* The line a user copies from ssh-keygen's id_ed25519.pub works as is: the
 * key parsed from it has the SHA-256 fingerprint that ssh-keygen -l prints
 * for that file. */
START_TEST(test_users_ssh_keygen_pub_line) {
  char path[300], pub[512], text[700], fp[512], want[128], err[256];
  uint8_t blob[51] = {0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
                      '2', '5', '5', '1', '9', 0,   0,   0,   32};
  uint8_t md[32];
  unsigned char b64[64];
  struct fsd_users u;
  unsigned mdlen = sizeof(md);
  char *p;

  make_dir();
  snprintf(path, sizeof(path), "%s/id_ed25519", dir);
  ck_assert_int_eq(tk_sh("ssh-keygen -q -t ed25519 -N '' -C 'alice@laptop' "
                         "-f '%s' >/dev/null 2>&1",
                         path),
                   0);
  ck_assert_int_eq(
      tk_sh("ssh-keygen -l -E sha256 -f '%s.pub' > '%s.fp'", path, path), 0);
  snprintf(text, sizeof(text), "%s.fp", path);
  ck_assert_int_gt(tk_slurp(text, fp, sizeof(fp)), 0);
  snprintf(path + strlen(path), sizeof(path) - strlen(path), ".pub");
  ck_assert_int_gt(tk_slurp(path, pub, sizeof(pub)), 0);
  snprintf(text, sizeof(text), "alice read,write %s", pub);
  memset(&u, 0, sizeof(u));
  ck_assert_int_eq(fsd_users_parse(text, strlen(text), &u, err, sizeof(err)),
                   0);
  ck_assert_uint_eq(u.n, 1);
  /* "256 SHA256:<base64 without padding> alice@laptop (ED25519)" */
  memcpy(blob + 19, u.v[0].key, FSP_PUBKEY_LEN);
  ck_assert_int_eq(
      EVP_Digest(blob, sizeof(blob), md, &mdlen, EVP_sha256(), NULL), 1);
  ck_assert_int_eq(EVP_EncodeBlock(b64, md, sizeof(md)), 44);
  p = strchr((char *)b64, '=');
  ck_assert_ptr_nonnull(p);
  *p = '\0';
  snprintf(want, sizeof(want), "SHA256:%s ", b64);
  ck_assert_msg(strstr(fp, want) != NULL, "%s vs %s", fp, want);
  fsd_users_free(&u);
  drop_dir();
}
END_TEST

Suite *users_suite(void) {
  Suite *s = suite_create("users");
  TCase *tc = tcase_create("parse");
  TCase *tl = tcase_create("load");

  tcase_add_test(tc, test_users_parse_good_file);
  tcase_add_test(tc, test_users_parse_empty_file);
  tcase_add_test(tc, test_users_parse_errors_name_the_line);
  tcase_add_test(tc, test_users_key_blob_checked);
  tcase_add_test(tc, test_users_rights);
  tcase_add_test(tc, test_users_find_exact);
  tcase_add_test(tc, test_users_op_rights);
  suite_add_tcase(s, tc);
  tcase_add_test(tl, test_users_load_checks_the_file);
  tcase_add_test(tl, test_users_load_too_large);
  tcase_add_test(tl, test_users_ssh_keygen_pub_line);
  suite_add_tcase(s, tl);
  return s;
}
