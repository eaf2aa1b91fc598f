/* A connection's authentication state (gate.c) with real keys: HELLO's
 * answer, what passes before AUTH, the check, rights, reloads. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "gate.h"
#include "keyutil.h"

Suite *gate_suite(void);

static struct fsd_verifier ver;
static struct fsd_users users;
static EVP_PKEY *alice, *bob;
static char alice_line[160], bob_line[160];

static void load_users(const char *text) {
  char err[256];

  fsd_users_free(&users);
  ck_assert_int_eq(fsd_users_parse(text, strlen(text), &users, err, 256), 0);
}

static void setup(void) {
  uint8_t pub[FSP_PUBKEY_LEN];
  char a[128], b[128], text[512];

  alice = tk_keygen();
  bob = tk_keygen();
  tk_pub(alice, pub);
  tk_sshpub(pub, a, sizeof(a));
  tk_pub(bob, pub);
  tk_sshpub(pub, b, sizeof(b));
  snprintf(alice_line, sizeof(alice_line), "alice read,write,delete,notice %s",
           a);
  snprintf(bob_line, sizeof(bob_line), "bob read %s", b);
  snprintf(text, sizeof(text), "%s\n%s\n", alice_line, bob_line);
  memset(&users, 0, sizeof(users));
  load_users(text);
  ck_assert_int_eq(fsd_verifier_init(&ver), 0);
}

static void teardown(void) {
  EVP_PKEY_free(alice);
  EVP_PKEY_free(bob);
  fsd_users_free(&users);
}

/* Drives a required gate through HELLO v2 and an AUTH signed by k for
 * user, on a connection with the given binding. Returns fsd_gate_verify's
 * result. */
static int authenticate(struct fsd_gate *g, EVP_PKEY *k, const char *user,
                        const uint8_t *b, size_t blen) {
  uint8_t t[FSP_TRANSCRIPT_MAX], cn[FSP_NONCE_LEN], sig[FSP_SIG_LEN];
  uint16_t version;
  uint64_t caps = 0;
  struct fsp_msg m;
  ssize_t n;

  fsd_gate_init(g, 1, 0);
  ck_assert_int_eq(fsd_gate_hello(g, 2, &version, &caps), 0);
  ck_assert_int_eq(fsd_auth_nonce(cn), 0);
  n = fsp_auth_transcript(t, sizeof(t), g->nonce, cn, user, strlen(user), b,
                          blen);
  ck_assert_int_gt(n, 0);
  tk_sign(k, t, (size_t)n, sig);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_AUTH;
  m.u.auth.nonce = cn;
  m.u.auth.sig = sig;
  m.u.auth.user.ptr = user;
  m.u.auth.user.len = strlen(user);
  ck_assert_int_eq(fsd_gate_frame(g, FSP_OP_AUTH), FSD_GATE_TAKE_AUTH);
  ck_assert_int_eq(fsd_gate_take(g, &m), 0);
  ck_assert_int_eq(g->state, FSD_GATE_HELD);
  ck_assert_int_eq(fsd_gate_frame(g, FSP_OP_LIST), FSD_GATE_WAIT);
  return fsd_gate_verify(g, &ver, &users, b, blen);
}

/* Without users: open at once, HELLO negotiates as before, no challenge,
 * an AUTH is out of sequence, all rights (or read only). */
START_TEST(test_gate_open_server) {
  struct fsd_gate g;
  uint16_t v;
  uint64_t caps = 0;

  fsd_gate_init(&g, 0, FSD_RIGHTS_ALL);
  ck_assert_int_eq(fsd_gate_hello(&g, 1, &v, &caps), 0);
  ck_assert_uint_eq(v, FSD_PROTO_VERSION);
  ck_assert_uint_eq(caps, 0);
  ck_assert_int_eq(fsd_gate_hello(&g, 9, &v, &caps), 0);
  ck_assert_uint_eq(v, FSD_PROTO_VERSION);
  ck_assert_uint_eq(caps & FSP_CAP_AUTH, 0);
  ck_assert_int_eq(fsd_gate_frame(&g, FSP_OP_GET), FSD_GATE_PASS);
  ck_assert_int_eq(fsd_gate_frame(&g, FSP_OP_AUTH), FSD_GATE_STRAY);
  ck_assert(fsd_gate_allows(&g, FSP_OP_PUT));
  ck_assert(fsd_gate_allows(&g, FSP_OP_NOTICE));
  fsd_gate_init(&g, 0, FSD_RIGHT_READ);
  ck_assert(fsd_gate_allows(&g, FSP_OP_GET));
  ck_assert(!fsd_gate_allows(&g, FSP_OP_PUT));
  ck_assert(!fsd_gate_allows(&g, FSP_OP_DELETE));
  ck_assert(!fsd_gate_allows(&g, FSP_OP_NOTICE));
  ck_assert_int_eq(fsd_gate_reload(&g, &users), 0);
}
END_TEST

/* With users: a version 1 client is told it is too old; a version 2 one
 * gets the AUTH capability and a fresh nonce. */
START_TEST(test_gate_hello_versions) {
  struct fsd_gate g, h;
  uint16_t v;
  uint64_t caps = FSP_CAP_EVENTS;
  uint8_t zero[FSP_NONCE_LEN] = {0};

  fsd_gate_init(&g, 1, 0);
  ck_assert_int_eq(fsd_gate_hello(&g, 1, &v, &caps), FSP_ST_VERSION);
  ck_assert_uint_eq(caps, FSP_CAP_EVENTS);
  fsd_gate_init(&g, 1, 0);
  ck_assert_int_eq(fsd_gate_hello(&g, 2, &v, &caps), 0);
  ck_assert_uint_eq(v, FSD_PROTO_VERSION); /* our highest: folders */
  ck_assert_uint_eq(caps, FSP_CAP_EVENTS | FSP_CAP_AUTH);
  ck_assert_int_eq(g.state, FSD_GATE_CHALLENGED);
  ck_assert_int_ne(memcmp(g.nonce, zero, sizeof(zero)), 0);
  fsd_gate_init(&h, 1, 0);
  ck_assert_int_eq(fsd_gate_hello(&h, 300, &v, &caps), 0);
  ck_assert_uint_eq(v, FSD_PROTO_VERSION);
  ck_assert_int_ne(memcmp(g.nonce, h.nonce, sizeof(zero)), 0);
}
END_TEST

/* Before AUTH: HELLO, PING and BYE pass, AUTH is taken, every other
 * opcode, known or not, is refused. */
START_TEST(test_gate_before_auth_every_opcode) {
  struct fsd_gate g;
  uint16_t v;
  uint64_t caps = 0;

  fsd_gate_init(&g, 1, 0);
  ck_assert_int_eq(fsd_gate_hello(&g, 2, &v, &caps), 0);
  for (unsigned op = 0; op < 256; op++) {
    enum fsd_gate_verdict want = FSD_GATE_REFUSE;
    if (op == FSP_OP_HELLO || op == FSP_OP_PING || op == FSP_OP_BYE)
      want = FSD_GATE_PASS;
    else if (op == FSP_OP_AUTH)
      want = FSD_GATE_TAKE_AUTH;
    ck_assert_msg(fsd_gate_frame(&g, (uint8_t)op) == want, "opcode 0x%02x", op);
    ck_assert_int_eq(fsd_gate_allows(&g, (uint8_t)op),
                     fsd_op_right((uint8_t)op) == 0);
  }
}
END_TEST

/* A good AUTH opens the gate with the user's rights, and each request is
 * held to them. */
START_TEST(test_gate_rights_after_auth) {
  struct fsd_gate g;
  uint8_t zero[FSP_SIG_LEN] = {0};

  ck_assert_int_eq(authenticate(&g, bob, "bob", NULL, 0), 0);
  ck_assert_int_eq(g.state, FSD_GATE_OPEN);
  ck_assert_str_eq(g.user, "bob");
  ck_assert_uint_eq(g.rights, FSD_RIGHT_READ);
  ck_assert_int_eq(memcmp(g.sig, zero, sizeof(zero)), 0); /* wiped */
  ck_assert(fsd_gate_allows(&g, FSP_OP_LIST));
  ck_assert(fsd_gate_allows(&g, FSP_OP_GET));
  ck_assert(fsd_gate_allows(&g, FSP_OP_SUBSCRIBE));
  ck_assert(fsd_gate_allows(&g, FSP_OP_CANCEL));
  ck_assert(!fsd_gate_allows(&g, FSP_OP_PUT));
  ck_assert(!fsd_gate_allows(&g, FSP_OP_DELETE));
  ck_assert(!fsd_gate_allows(&g, FSP_OP_NOTICE));
  ck_assert_int_eq(fsd_gate_frame(&g, FSP_OP_PUT), FSD_GATE_PASS);
  ck_assert_int_eq(fsd_gate_frame(&g, FSP_OP_AUTH), FSD_GATE_STRAY);
  ck_assert_int_eq(authenticate(&g, alice, "alice", NULL, 0), 0);
  ck_assert(fsd_gate_allows(&g, FSP_OP_PUT));
}
END_TEST

/* A bad AUTH closes the gate for good. */
START_TEST(test_gate_refused) {
  struct fsd_gate g;
  uint8_t b1[FSP_BINDING_LEN], b2[FSP_BINDING_LEN];

  ck_assert_int_eq(authenticate(&g, bob, "alice", NULL, 0), UV_EACCES);
  ck_assert_int_eq(g.state, FSD_GATE_REFUSED);
  ck_assert_uint_eq(g.rights, 0);
  ck_assert_int_eq(fsd_gate_frame(&g, FSP_OP_LIST), FSD_GATE_REFUSE);
  ck_assert_int_eq(fsd_gate_frame(&g, FSP_OP_AUTH), FSD_GATE_REFUSE);
  ck_assert(!fsd_gate_allows(&g, FSP_OP_LIST));
  /* Verifying again proves nothing: the nonce is spent. */
  ck_assert_int_eq(fsd_gate_verify(&g, &ver, &users, NULL, 0), UV_EACCES);
  ck_assert_int_eq(authenticate(&g, alice, "nobody", NULL, 0), UV_EACCES);
  memset(b1, 1, sizeof(b1));
  memset(b2, 2, sizeof(b2));
  ck_assert_int_eq(authenticate(&g, alice, "alice", b1, sizeof(b1)), 0);
}
END_TEST

/* A malformed AUTH cannot be taken. */
START_TEST(test_gate_take_refuses) {
  struct fsd_gate g;
  struct fsp_msg m;
  uint8_t z[FSP_SIG_LEN] = {0};
  uint16_t v;
  uint64_t caps = 0;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_AUTH;
  m.u.auth.nonce = z;
  m.u.auth.sig = z;
  m.u.auth.user.ptr = "a b";
  m.u.auth.user.len = 3;
  fsd_gate_init(&g, 1, 0);
  ck_assert_int_eq(fsd_gate_take(&g, &m), FSP_ST_UNAUTHENTICATED); /* early */
  fsd_gate_init(&g, 1, 0);
  ck_assert_int_eq(fsd_gate_hello(&g, 2, &v, &caps), 0);
  ck_assert_int_eq(fsd_gate_take(&g, &m), FSP_ST_UNAUTHENTICATED);
  ck_assert_int_eq(g.state, FSD_GATE_REFUSED);
}
END_TEST

/* Reloading: same rights, shrunk rights, a removed user. */
START_TEST(test_gate_reload) {
  struct fsd_gate g;
  char text[512];

  ck_assert_int_eq(authenticate(&g, alice, "alice", NULL, 0), 0);
  snprintf(text, sizeof(text), "%s\n%s\n", bob_line, alice_line);
  load_users(text);
  ck_assert_int_eq(fsd_gate_reload(&g, &users), 0);
  ck_assert_uint_eq(g.rights, FSD_RIGHTS_ALL);
  snprintf(text, sizeof(text), "alice read %s\n", strstr(alice_line, "ssh-"));
  load_users(text);
  ck_assert_int_eq(fsd_gate_reload(&g, &users), 1);
  ck_assert_uint_eq(g.rights, FSD_RIGHT_READ);
  ck_assert(!fsd_gate_allows(&g, FSP_OP_PUT));
  load_users(bob_line);
  ck_assert_int_eq(fsd_gate_reload(&g, &users), -1);
  ck_assert_int_eq(g.state, FSD_GATE_REFUSED);
  ck_assert(!fsd_gate_allows(&g, FSP_OP_LIST));
  ck_assert(fsd_gate_allows(&g, FSP_OP_BYE));
}
END_TEST

Suite *gate_suite(void) {
  Suite *s = suite_create("gate");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_gate_open_server);
  tcase_add_test(tc, test_gate_hello_versions);
  tcase_add_test(tc, test_gate_before_auth_every_opcode);
  tcase_add_test(tc, test_gate_rights_after_auth);
  tcase_add_test(tc, test_gate_refused);
  tcase_add_test(tc, test_gate_take_refuses);
  tcase_add_test(tc, test_gate_reload);
  suite_add_tcase(s, tc);
  return s;
}
