/* fsc and fsd agree: a key fsc makes, the users-file line it prints, the
 * AUTH frame it builds for a CHALLENGE, decoded and checked by fsd's gate.
 * Sans I/O, with every real component (OpenSSL, the codec, both sides). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "login.h"
#include "gate.h"
#include "keys.h"
#include "keyutil.h"

Suite *handshake_suite(void);

static char dir[256];

static void setup(void) {
  snprintf(dir, sizeof(dir), "/tmp/fsd-hs-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  tk_sh("rm -rf '%s'", dir);
}

/* Runs one exchange: fsd's gate challenges, fsc answers as user with key
 * over client_binding, fsd checks with server_binding. */
static int exchange(const struct fsc_key *key, const char *user,
                    const struct fsd_users *users,
                    const struct fsd_verifier *ver,
                    const uint8_t *client_binding,
                    const uint8_t *server_binding, size_t blen,
                    struct fsd_gate *g) {
  uint8_t frame[FSC_LOGIN_FRAME_MAX];
  struct fsp_frame f;
  struct fsp_msg m;
  uint16_t v;
  uint64_t caps = 0;
  ssize_t n;

  fsd_gate_init(g, 1, 0);
  ck_assert_int_eq(fsd_gate_hello(g, FSD_PROTO_VERSION, &v, &caps), 0);
  n = fsc_login_frame(key, user, g->nonce, client_binding, blen, frame,
                      sizeof(frame));
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(fsp_frame_decode(frame, (size_t)n, FSP_PREAUTH_MAX, &f), n);
  ck_assert_int_eq(fsp_msg_decode(&f, &m), 0);
  ck_assert_int_eq(m.op, FSP_OP_AUTH);
  ck_assert_int_eq(fsd_gate_frame(g, m.op), FSD_GATE_TAKE_AUTH);
  ck_assert_int_eq(fsd_gate_take(g, &m), 0);
  return fsd_gate_verify(g, ver, users, server_binding, blen);
}

START_TEST(test_handshake_fsc_key_opens_fsd) {
  char path[300], line[512], err[256];
  struct fsc_key key, other;
  struct fsd_users users;
  struct fsd_verifier ver;
  struct fsd_gate g;
  uint8_t b1[FSP_BINDING_LEN], b2[FSP_BINDING_LEN];

  snprintf(path, sizeof(path), "%s/fsc/id_ed25519", dir);
  ck_assert_int_eq(fsc_key_generate(path, "dana@host", &key, err, sizeof(err)),
                   0);
  ck_assert_int_gt(fsc_key_users_line(&key, "dana", line, sizeof(line)), 0);
  memset(&users, 0, sizeof(users));
  ck_assert_int_eq(fsd_users_parse(line, strlen(line), &users, err, 256), 0);
  ck_assert_int_eq(fsd_verifier_init(&ver), 0);
  memset(b1, 0x11, sizeof(b1));
  memset(b2, 0x22, sizeof(b2));

  /* Plaintext, and TLS with the same channel on both ends: let in, with
   * the rights of the line fsc printed. */
  ck_assert_int_eq(exchange(&key, "dana", &users, &ver, NULL, NULL, 0, &g), 0);
  ck_assert_uint_eq(g.rights, FSD_RIGHTS_ALL);
  ck_assert_str_eq(g.user, "dana");
  ck_assert_int_eq(exchange(&key, "dana", &users, &ver, b1, b1, 32, &g), 0);
  /* Two different channels (a man in the middle): refused. */
  ck_assert_int_eq(exchange(&key, "dana", &users, &ver, b1, b2, 32, &g),
                   UV_EACCES);
  /* Another name, another key: refused. */
  ck_assert_int_eq(exchange(&key, "erin", &users, &ver, NULL, NULL, 0, &g),
                   UV_EACCES);
  snprintf(path, sizeof(path), "%s/other", dir);
  ck_assert_int_eq(fsc_key_generate(path, "", &other, err, sizeof(err)), 0);
  ck_assert_int_eq(exchange(&other, "dana", &users, &ver, NULL, NULL, 0, &g),
                   UV_EACCES);
  fsc_key_free(&key);
  fsc_key_free(&other);
  fsd_users_free(&users);
}
END_TEST

/* The same with a key made by ssh-keygen and its .pub line. */
START_TEST(test_handshake_ssh_keygen_key) {
  char path[300], pub[512], line[700], err[256];
  struct fsc_key key;
  struct fsd_users users;
  struct fsd_verifier ver;
  struct fsd_gate g;

  snprintf(path, sizeof(path), "%s/id_ed25519", dir);
  ck_assert_int_eq(tk_sh("ssh-keygen -q -t ed25519 -N '' -f '%s'", path), 0);
  ck_assert_int_eq(fsc_key_load(path, &key, err, sizeof(err)), 0);
  snprintf(path + strlen(path), sizeof(path) - strlen(path), ".pub");
  ck_assert_int_gt(tk_slurp(path, pub, sizeof(pub)), 0);
  snprintf(line, sizeof(line), "frank read %s", pub);
  memset(&users, 0, sizeof(users));
  ck_assert_int_eq(fsd_users_parse(line, strlen(line), &users, err, 256), 0);
  ck_assert_int_eq(fsd_verifier_init(&ver), 0);
  ck_assert_int_eq(exchange(&key, "frank", &users, &ver, NULL, NULL, 0, &g), 0);
  ck_assert_uint_eq(g.rights, FSD_RIGHT_READ);
  fsc_key_free(&key);
  fsd_users_free(&users);
}
END_TEST

/* Each AUTH is fresh: two answers to one challenge differ (the client
 * nonce), so none can be predicted from another. */
START_TEST(test_handshake_fresh_client_nonce) {
  char path[300], err[256];
  struct fsc_key key;
  uint8_t nonce[FSP_NONCE_LEN] = {0}, a[FSC_LOGIN_FRAME_MAX],
          b[FSC_LOGIN_FRAME_MAX];
  ssize_t na, nb;

  snprintf(path, sizeof(path), "%s/k", dir);
  ck_assert_int_eq(fsc_key_generate(path, "", &key, err, sizeof(err)), 0);
  na = fsc_login_frame(&key, "gus", nonce, NULL, 0, a, sizeof(a));
  nb = fsc_login_frame(&key, "gus", nonce, NULL, 0, b, sizeof(b));
  ck_assert_int_eq(na, nb);
  ck_assert_int_ne(memcmp(a + FSP_HDR_LEN, b + FSP_HDR_LEN, FSP_NONCE_LEN), 0);
  ck_assert_int_eq(fsc_login_frame(&key, "gus", nonce, NULL, 0, a, 20),
                   UV_ENOBUFS);
  ck_assert_int_eq(fsc_login_frame(&key, "g s", nonce, NULL, 0, a, sizeof(a)),
                   UV_EINVAL);
  fsc_key_free(&key);
}
END_TEST

Suite *handshake_suite(void) {
  Suite *s = suite_create("handshake");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_handshake_fsc_key_opens_fsd);
  tcase_add_test(tc, test_handshake_ssh_keygen_key);
  tcase_add_test(tc, test_handshake_fresh_client_nonce);
  suite_add_tcase(s, tc);
  return s;
}
