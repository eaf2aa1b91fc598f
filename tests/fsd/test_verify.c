/* fsd's signature checks (auth.c) with real keys: the right user with the
 * right signature passes; everything else is refused the same way. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "auth.h"
#include "keyutil.h"

Suite *verify_suite(void);

static struct fsd_verifier ver;
static struct fsd_users users;
static EVP_PKEY *alice, *bob, *mallory;
static uint8_t snonce[FSP_NONCE_LEN], cnonce[FSP_NONCE_LEN];
static uint8_t binding[FSP_BINDING_LEN];

static void setup(void) {
  uint8_t pub[FSP_PUBKEY_LEN];
  char a[128], b[128], text[512], err[256];

  alice = tk_keygen();
  bob = tk_keygen();
  mallory = tk_keygen(); /* a real key the server does not know */
  tk_pub(alice, pub);
  tk_sshpub(pub, a, sizeof(a));
  tk_pub(bob, pub);
  tk_sshpub(pub, b, sizeof(b));
  snprintf(text, sizeof(text), "alice read,write %s\nbob read %s\n", a, b);
  memset(&users, 0, sizeof(users));
  ck_assert_int_eq(fsd_users_parse(text, strlen(text), &users, err, 256), 0);
  ck_assert_int_eq(fsd_verifier_init(&ver), 0);
  ck_assert_int_eq(fsd_auth_nonce(snonce), 0);
  ck_assert_int_eq(fsd_auth_nonce(cnonce), 0);
  memset(binding, 0x77, sizeof(binding));
}

static void teardown(void) {
  EVP_PKEY_free(alice);
  EVP_PKEY_free(bob);
  EVP_PKEY_free(mallory);
  fsd_users_free(&users);
}

/* An AUTH message from `user`, signed with k over the transcript for
 * (sn, cnonce, sign_as, b). sig must outlive the message. */
static struct fsp_msg make_auth(EVP_PKEY *k, const char *user,
                                const char *sign_as, const uint8_t *sn,
                                const uint8_t *b, size_t blen,
                                uint8_t sig[FSP_SIG_LEN]) {
  uint8_t t[FSP_TRANSCRIPT_MAX];
  ssize_t n = fsp_auth_transcript(t, sizeof(t), sn, cnonce, sign_as,
                                  strlen(sign_as), b, blen);
  struct fsp_msg m;

  ck_assert_int_gt(n, 0);
  tk_sign(k, t, (size_t)n, sig);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_AUTH;
  m.u.auth.nonce = cnonce;
  m.u.auth.sig = sig;
  m.u.auth.user.ptr = user;
  m.u.auth.user.len = strlen(user);
  return m;
}

static int check(const struct fsp_msg *m, const uint8_t *b, size_t blen,
                 const struct fsd_user **who) {
  return fsd_auth_verify(&ver, &users, m, snonce, b, blen, who);
}

START_TEST(test_verify_good_signature) {
  uint8_t sig[FSP_SIG_LEN];
  struct fsp_msg m =
      make_auth(alice, "alice", "alice", snonce, binding, 32, sig);
  const struct fsd_user *who;

  ck_assert_int_eq(check(&m, binding, 32, &who), 0);
  ck_assert_ptr_nonnull(who);
  ck_assert_str_eq(who->name, "alice");
  ck_assert_uint_eq(who->rights, FSD_RIGHT_READ | FSD_RIGHT_WRITE);
  /* Plaintext: no binding on either side. */
  m = make_auth(bob, "bob", "bob", snonce, NULL, 0, sig);
  ck_assert_int_eq(check(&m, NULL, 0, &who), 0);
  ck_assert_str_eq(who->name, "bob");
}
END_TEST

START_TEST(test_verify_bad_signature) {
  uint8_t sig[FSP_SIG_LEN];
  struct fsp_msg m = make_auth(alice, "alice", "alice", snonce, NULL, 0, sig);
  const struct fsd_user *who = (const struct fsd_user *)&who;

  for (size_t i = 0; i < FSP_SIG_LEN; i += 7) {
    sig[i] ^= 0x10;
    ck_assert_int_eq(check(&m, NULL, 0, &who), UV_EACCES);
    ck_assert_ptr_null(who);
    sig[i] ^= 0x10;
  }
  ck_assert_int_eq(check(&m, NULL, 0, &who), 0);
}
END_TEST

/* A user the server does not know, even with a good signature of their own
 * key; and a known user whose name is signed by someone else's key. */
START_TEST(test_verify_unknown_user_and_wrong_key) {
  uint8_t sig[FSP_SIG_LEN];
  const struct fsd_user *who;
  struct fsp_msg m =
      make_auth(mallory, "mallory", "mallory", snonce, NULL, 0, sig);

  ck_assert_int_eq(check(&m, NULL, 0, &who), UV_EACCES);
  ck_assert_ptr_null(who);
  m = make_auth(mallory, "alice", "alice", snonce, NULL, 0, sig);
  ck_assert_int_eq(check(&m, NULL, 0, &who), UV_EACCES);
  m = make_auth(bob, "alice", "alice", snonce, NULL, 0, sig);
  ck_assert_int_eq(check(&m, NULL, 0, &who), UV_EACCES);
  /* bob's signature for bob, sent as alice: the name is signed. */
  m = make_auth(bob, "alice", "bob", snonce, NULL, 0, sig);
  ck_assert_int_eq(check(&m, NULL, 0, &who), UV_EACCES);
}
END_TEST

/* A signature made for another server nonce (a replay of an old exchange)
 * or for another channel (relayed from another connection) fails. */
START_TEST(test_verify_replay_and_other_channel) {
  uint8_t sig[FSP_SIG_LEN], old[FSP_NONCE_LEN], other[FSP_BINDING_LEN];
  const struct fsd_user *who;
  struct fsp_msg m;

  ck_assert_int_eq(fsd_auth_nonce(old), 0);
  ck_assert_int_ne(memcmp(old, snonce, sizeof(old)), 0);
  m = make_auth(alice, "alice", "alice", old, binding, 32, sig);
  ck_assert_int_eq(check(&m, binding, 32, &who), UV_EACCES);
  memset(other, 0x78, sizeof(other));
  m = make_auth(alice, "alice", "alice", snonce, other, 32, sig);
  ck_assert_int_eq(check(&m, binding, 32, &who), UV_EACCES);
  /* Signed over plaintext, presented on a TLS connection, and back. */
  m = make_auth(alice, "alice", "alice", snonce, NULL, 0, sig);
  ck_assert_int_eq(check(&m, binding, 32, &who), UV_EACCES);
  m = make_auth(alice, "alice", "alice", snonce, binding, 32, sig);
  ck_assert_int_eq(check(&m, NULL, 0, &who), UV_EACCES);
}
END_TEST

START_TEST(test_verify_refuses_non_auth) {
  struct fsp_msg m;
  const struct fsd_user *who;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  ck_assert_int_eq(check(&m, NULL, 0, &who), UV_EINVAL);
  m.op = FSP_OP_AUTH; /* no nonce, no signature */
  ck_assert_int_eq(check(&m, NULL, 0, &who), UV_EINVAL);
}
END_TEST

/* Nonces are fresh, and the dummy key is a real key that differs per
 * server. */
START_TEST(test_verify_nonces_and_dummy) {
  uint8_t a[FSP_NONCE_LEN], b[FSP_NONCE_LEN], zero[FSP_NONCE_LEN] = {0};
  struct fsd_verifier v2;
  EVP_PKEY *k;

  ck_assert_int_eq(fsd_auth_nonce(a), 0);
  ck_assert_int_eq(fsd_auth_nonce(b), 0);
  ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
  ck_assert_int_ne(memcmp(a, zero, sizeof(a)), 0);
  ck_assert_int_eq(fsd_verifier_init(&v2), 0);
  ck_assert_int_ne(memcmp(ver.dummy, v2.dummy, sizeof(v2.dummy)), 0);
  k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, ver.dummy, 32);
  ck_assert_ptr_nonnull(k);
  EVP_PKEY_free(k);
}
END_TEST

Suite *verify_suite(void) {
  Suite *s = suite_create("verify");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_verify_good_signature);
  tcase_add_test(tc, test_verify_bad_signature);
  tcase_add_test(tc, test_verify_unknown_user_and_wrong_key);
  tcase_add_test(tc, test_verify_replay_and_other_channel);
  tcase_add_test(tc, test_verify_refuses_non_auth);
  tcase_add_test(tc, test_verify_nonces_and_dummy);
  suite_add_tcase(s, tc);
  return s;
}
