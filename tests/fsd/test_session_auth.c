/* The session on a server with users (protocol.md section 11), driven by a
 * fake host: nothing before AUTH, one attempt, rights per request, events
 * only for readers, reloads. Real keys, real signatures, no sockets. */
#include <check.h>
#include <fsproto/fsproto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctx.h"
#include "keyutil.h"
#include "session.h"

Suite *session_auth_suite(void);

#define OUT_CAP (1u << 20)

struct fake {
  struct fsd_session s;
  uint8_t out[OUT_CAP]; /* frames the session sent */
  size_t outlen, outpos;
  int closed;
  int hold;            /* keep AUTH checks until the test runs them */
  int held;            /* an AUTH waits */
  uint8_t binding[32]; /* the channel binding this host reports */
  size_t binding_len;
  struct fsd_req *started[16];
  int nstarted;
  struct fsd_req *aborted[16];
  int naborted;
};

static struct fsd_ctx ctx;
static struct fsd_users users;
static struct fsd_verifier ver;
static EVP_PKEY *alice, *bob, *carol, *mallory;
static char keys[4][128];

static int f_send(void *host, const void *frame, size_t len) {
  struct fake *f = host;
  ck_assert_int_eq(f->closed, 0);
  ck_assert_uint_le(f->outlen + len, OUT_CAP);
  memcpy(f->out + f->outlen, frame, len);
  f->outlen += len;
  return 0;
}
static size_t f_backlog(void *host) {
  return 0;
}
static void f_close(void *host) {
  ((struct fake *)host)->closed = 1;
}
static void f_start(void *host, struct fsd_req *r) {
  struct fake *f = host;
  f->started[f->nstarted++] = r;
}
static int f_put_write(void *host, struct fsd_req *r, const uint8_t *p,
                       size_t n, uint64_t off) {
  return 0;
}
static void f_put_commit(void *host, struct fsd_req *r) {}
static void f_abort(void *host, struct fsd_req *r) {
  struct fake *f = host;
  f->aborted[f->naborted++] = r;
}
static void f_auth(void *host) {
  struct fake *f = host;
  if (f->hold)
    f->held = 1;
  else
    fsd_session_auth_check(&f->s);
}
static size_t f_binding(void *host, uint8_t *out, size_t cap) {
  struct fake *f = host;
  memcpy(out, f->binding, f->binding_len);
  return f->binding_len;
}

static const struct fsd_host_ops ops = {
    .send = f_send,
    .backlog = f_backlog,
    .close = f_close,
    .start = f_start,
    .put_write = f_put_write,
    .put_commit = f_put_commit,
    .abort = f_abort,
    .auth = f_auth,
    .binding = f_binding,
};

/* Loads a users file giving alice, bob and carol these rights; NULL leaves
 * the user out. */
static void load(const char *ra, const char *rb, const char *rc) {
  const char *rights[3] = {ra, rb, rc}, *names[3] = {"alice", "bob", "carol"};
  char text[1024], err[256];
  size_t n = 0;

  text[0] = '\0';
  for (int i = 0; i < 3; i++)
    if (rights[i] != NULL)
      n += (size_t)snprintf(text + n, sizeof(text) - n, "%s %s %s\n", names[i],
                            rights[i], keys[i]);
  fsd_users_free(&users);
  ck_assert_int_eq(fsd_users_parse(text, strlen(text), &users, err, 256), 0);
}

static void setup(void) {
  EVP_PKEY **k[4] = {&alice, &bob, &carol, &mallory};

  for (int i = 0; i < 4; i++) {
    uint8_t pub[FSP_PUBKEY_LEN];
    *k[i] = tk_keygen();
    tk_pub(*k[i], pub);
    tk_sshpub(pub, keys[i], sizeof(keys[i]));
  }
  memset(&users, 0, sizeof(users));
  load("read,write,delete,notice", "read", "write");
  ck_assert_int_eq(fsd_verifier_init(&ver), 0);
  ck_assert_int_eq(fsd_ctx_init(&ctx, 77), 0);
  ctx.users = &users;
  ctx.verifier = &ver;
}

static void teardown(void) {
  fsd_ctx_free(&ctx);
  fsd_users_free(&users);
  EVP_PKEY_free(alice);
  EVP_PKEY_free(bob);
  EVP_PKEY_free(carol);
  EVP_PKEY_free(mallory);
}

static struct fake *fake_new(void) {
  struct fake *f = calloc(1, sizeof(*f));
  ck_assert_ptr_nonnull(f);
  fsd_session_init(&f->s, &ctx, &ops, f);
  return f;
}

static void fake_free(struct fake *f) {
  fsd_session_close(&f->s);
  for (int i = 0; i < f->naborted; i++)
    fsd_session_aborted(&f->s, f->aborted[i]);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  free(f);
}

/* Feeds buf; returns how much the session consumed. */
static size_t feed(struct fake *f, const uint8_t *buf, size_t len) {
  return fsd_session_feed(&f->s, buf, len);
}

static size_t enc(uint8_t *buf, size_t cap, const struct fsp_msg *m) {
  ssize_t n = fsp_msg_encode(buf, cap, m);
  ck_assert_int_gt(n, 0);
  ck_assert_int_le(n, (ssize_t)cap);
  return (size_t)n;
}

static size_t enc_hello(uint8_t *buf, size_t cap, uint16_t version) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = version;
  m.u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  return enc(buf, cap, &m);
}

static size_t enc_name(uint8_t *buf, size_t cap, uint8_t op, uint32_t id,
                       const char *name) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = op;
  m.id = id;
  switch (op) {
  case FSP_OP_GET:
  case FSP_OP_HASH:
    m.u.range.length = FSP_LENGTH_TO_END;
    m.u.range.name.ptr = name;
    m.u.range.name.len = strlen(name);
    break;
  case FSP_OP_PUT:
    m.u.put.size = 3;
    m.u.put.name.ptr = name;
    m.u.put.name.len = strlen(name);
    break;
  case FSP_OP_NOTICE:
    m.u.text.ptr = name;
    m.u.text.len = strlen(name);
    break;
  default:
    m.u.name.ptr = name;
    m.u.name.len = strlen(name);
    break;
  }
  return enc(buf, cap, &m);
}

static int next_out(struct fake *f, struct fsp_msg *m) {
  struct fsp_frame fr;
  ssize_t n;

  if (f->outpos == f->outlen)
    return 0;
  n = fsp_frame_decode(f->out + f->outpos, f->outlen - f->outpos,
                       FSP_MAX_PAYLOAD, &fr);
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(fsp_msg_decode(&fr, m), 0);
  f->outpos += (size_t)n;
  return 1;
}

static void expect(struct fake *f, uint8_t op, uint32_t id, struct fsp_msg *m) {
  struct fsp_msg tmp;
  if (m == NULL)
    m = &tmp;
  ck_assert_msg(next_out(f, m), "no frame, expected %s", fsp_op_name(op));
  ck_assert_msg(m->op == op, "got %s, expected %s", fsp_op_name(m->op),
                fsp_op_name(op));
  ck_assert_uint_eq(m->id, id);
}

/* Expects ERROR status on id whose text contains want (unless NULL). */
static void expect_error(struct fake *f, uint32_t id, uint16_t status,
                         const char *want) {
  struct fsp_msg m;
  char text[512];

  expect(f, FSP_OP_ERROR, id, &m);
  ck_assert_msg(m.u.error.status == status, "status %s, expected %s",
                fsp_status_name(m.u.error.status), fsp_status_name(status));
  snprintf(text, sizeof(text), "%.*s", (int)m.u.error.text.len,
           m.u.error.text.ptr);
  if (want != NULL)
    ck_assert_msg(strstr(text, want) != NULL, "'%s' lacks '%s'", text, want);
}

static void expect_nothing(struct fake *f) {
  struct fsp_msg m;
  if (next_out(f, &m))
    ck_abort_msg("unexpected %s", fsp_op_name(m.op));
}

/* Sends HELLO v2 and reads HELLO and CHALLENGE; returns the server nonce. */
static const uint8_t *hello(struct fake *f) {
  uint8_t buf[128];
  struct fsp_msg m;
  size_t n = enc_hello(buf, sizeof(buf), FSP_AUTH_VERSION);

  ck_assert_uint_eq(feed(f, buf, n), n);
  expect(f, FSP_OP_HELLO, 0, &m);
  ck_assert_uint_eq(m.u.hello.version, FSD_PROTO_VERSION);
  ck_assert(m.u.hello.caps & FSP_CAP_AUTH);
  expect(f, FSP_OP_CHALLENGE, 0, &m);
  ck_assert_mem_eq(m.u.challenge.nonce, f->s.gate.nonce, FSP_NONCE_LEN);
  return f->s.gate.nonce;
}

/* Encodes an AUTH from user signed by k for server nonce sn and binding
 * b[0..blen). */
static size_t enc_auth(uint8_t *buf, size_t cap, EVP_PKEY *k, const char *user,
                       const uint8_t *sn, const uint8_t *b, size_t blen) {
  uint8_t t[FSP_TRANSCRIPT_MAX], cn[FSP_NONCE_LEN], sig[FSP_SIG_LEN];
  struct fsp_msg m;
  ssize_t n;

  memset(cn, 0x42, sizeof(cn));
  n = fsp_auth_transcript(t, sizeof(t), sn, cn, user, strlen(user), b, blen);
  ck_assert_int_gt(n, 0);
  tk_sign(k, t, (size_t)n, sig);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_AUTH;
  m.u.auth.nonce = cn;
  m.u.auth.sig = sig;
  m.u.auth.user.ptr = user;
  m.u.auth.user.len = strlen(user);
  return enc(buf, cap, &m);
}

/* A session authenticated as user with key k. */
static struct fake *login(EVP_PKEY *k, const char *user) {
  struct fake *f = fake_new();
  const uint8_t *sn = hello(f);
  uint8_t buf[256];
  size_t n = enc_auth(buf, sizeof(buf), k, user, sn, NULL, 0);

  ck_assert_uint_eq(feed(f, buf, n), n);
  expect(f, FSP_OP_OK, 0, NULL);
  ck_assert(fsd_session_authenticated(&f->s));
  ck_assert_str_eq(fsd_session_user(&f->s), user);
  return f;
}

/* ------------------------------------------------------------------------ */

/* Every frame a client might send before AUTH, other than HELLO, AUTH, PING
 * and BYE, is refused with its own id and closes the connection; the host
 * is never asked to touch a file. */
START_TEST(test_session_auth_refuses_every_opcode_before_auth) {
  static const uint8_t ops_before[] = {
      FSP_OP_LIST,   FSP_OP_STAT,   FSP_OP_DELETE,    FSP_OP_GET,
      FSP_OP_PUT,    FSP_OP_HASH,   FSP_OP_SUBSCRIBE, FSP_OP_UNSUBSCRIBE,
      FSP_OP_NOTICE, FSP_OP_CANCEL, FSP_OP_DATA,      FSP_OP_END,
      FSP_OP_PONG,   FSP_OP_OK,     FSP_OP_CHALLENGE, 0x7f};
  uint8_t op = ops_before[_i];
  struct fake *f = fake_new();
  uint8_t buf[256];
  size_t n;

  hello(f);
  if (fsp_op_name(op) != NULL && op != FSP_OP_DATA && op != FSP_OP_END &&
      op != FSP_OP_PONG && op != FSP_OP_OK && op != FSP_OP_CHALLENGE &&
      op != FSP_OP_UNSUBSCRIBE && op != FSP_OP_CANCEL && op != FSP_OP_LIST) {
    n = enc_name(buf, sizeof(buf), op, 5, "a.txt");
  } else {
    fsp_header_write(buf, op, 5, 2);
    buf[FSP_HDR_LEN] = buf[FSP_HDR_LEN + 1] = 0;
    n = FSP_HDR_LEN + 2;
  }
  feed(f, buf, n);
  expect_error(f, 5, FSP_ST_UNAUTHENTICATED, "authentication required");
  expect_nothing(f);
  ck_assert(f->closed);
  ck_assert_int_eq(f->nstarted, 0);
  ck_assert(fsd_list_empty(&ctx.subs));
  fake_free(f);
}
END_TEST

/* HELLO and GET in one write: HELLO, CHALLENGE, then the GET is refused;
 * no byte of any file is asked for. */
START_TEST(test_session_auth_pipelined_hello_get) {
  struct fake *f = fake_new();
  uint8_t buf[256];
  size_t n = enc_hello(buf, sizeof(buf), FSP_AUTH_VERSION);

  n += enc_name(buf + n, sizeof(buf) - n, FSP_OP_GET, 1, "a.txt");
  feed(f, buf, n);
  expect(f, FSP_OP_HELLO, 0, NULL);
  expect(f, FSP_OP_CHALLENGE, 0, NULL);
  expect_error(f, 1, FSP_ST_UNAUTHENTICATED, NULL);
  expect_nothing(f);
  ck_assert(f->closed);
  ck_assert_int_eq(f->nstarted, 0);
  fake_free(f);
}
END_TEST

/* PING and BYE work before AUTH. */
START_TEST(test_session_auth_ping_and_bye_before_auth) {
  struct fake *f = fake_new();
  uint8_t buf[128];
  struct fsp_msg m;
  size_t n;

  hello(f);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_PING;
  m.id = 3;
  m.u.text.ptr = "hi";
  m.u.text.len = 2;
  n = enc(buf, sizeof(buf), &m);
  ck_assert_uint_eq(feed(f, buf, n), n);
  expect(f, FSP_OP_PONG, 3, NULL);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_BYE;
  m.id = 4;
  n = enc(buf, sizeof(buf), &m);
  feed(f, buf, n);
  expect(f, FSP_OP_BYE, 4, NULL);
  ck_assert(f->closed);
  fake_free(f);
}
END_TEST

/* A version 1 client is told that it cannot authenticate. */
START_TEST(test_session_auth_old_client) {
  struct fake *f = fake_new();
  uint8_t buf[128];
  size_t n = enc_hello(buf, sizeof(buf), 1);

  feed(f, buf, n);
  expect_error(f, 0, FSP_ST_VERSION, "authentication required");
  expect_nothing(f);
  ck_assert(f->closed);
  fake_free(f);
}
END_TEST

/* A frame over 1 KiB before AUTH is refused when its header is in. */
START_TEST(test_session_auth_preauth_frame_limit) {
  struct fake *f = fake_new();
  uint8_t hdr[FSP_HDR_LEN];

  hello(f);
  fsp_header_write(hdr, FSP_OP_AUTH, 0, FSP_PREAUTH_MAX + 1);
  feed(f, hdr, sizeof(hdr));
  expect_error(f, 0, FSP_ST_TOO_LARGE, NULL);
  ck_assert(f->closed);
  fake_free(f);
}
END_TEST

/* A good AUTH: OK (id 0), then requests run with the announced limits. */
START_TEST(test_session_auth_good) {
  struct fake *f = login(alice, "alice");
  uint8_t buf[256];
  size_t n = enc_name(buf, sizeof(buf), FSP_OP_STAT, 2, "none");

  ck_assert_uint_eq(f->s.dec.max_payload, FSD_MAX_PAYLOAD);
  feed(f, buf, n);
  expect_error(f, 2, FSP_ST_NOT_FOUND, NULL);
  fake_free(f);
}
END_TEST

/* Requests pipelined behind AUTH wait while the host holds the check, and
 * run once it passes. */
START_TEST(test_session_auth_held_then_pipelined_request) {
  struct fake *f = fake_new();
  const uint8_t *sn;
  uint8_t buf[512];
  size_t n, a, used;

  f->hold = 1;
  sn = hello(f);
  a = enc_auth(buf, sizeof(buf), bob, "bob", sn, NULL, 0);
  n = a + enc_name(buf + a, sizeof(buf) - a, FSP_OP_GET, 1, "a.txt");
  used = feed(f, buf, n);
  ck_assert_uint_eq(used, a); /* the GET is left to the host */
  ck_assert(f->held);
  expect_nothing(f);
  ck_assert_uint_eq(feed(f, buf + used, n - used), 0);
  ck_assert_int_eq(fsd_session_auth_check(&f->s), 0);
  expect(f, FSP_OP_OK, 0, NULL);
  ck_assert_uint_eq(feed(f, buf + used, n - used), n - used);
  ck_assert_int_eq(f->nstarted, 1);
  ck_assert_uint_eq(f->started[0]->opcode, FSP_OP_GET);
  fsd_session_fail(&f->s, f->started[0], FSP_ST_IO, NULL);
  fake_free(f);
}
END_TEST

/* Refused, one attempt each: a bad signature, an unknown user, a key that
 * is not the user's, a signature made for another connection's nonce (a
 * replay), one made over another TLS channel; frames behind it never run. */
START_TEST(test_session_auth_refused) {
  struct fake *f = fake_new(), *old = fake_new();
  const uint8_t *sn;
  uint8_t buf[512], other[32], oldnonce[FSP_NONCE_LEN];
  size_t n;

  memcpy(oldnonce, hello(old), sizeof(oldnonce));
  f->binding_len = 32;
  memset(f->binding, 0x11, sizeof(f->binding));
  memset(other, 0x22, sizeof(other));
  sn = hello(f);
  switch (_i) {
  case 0: /* a bad signature */
    n = enc_auth(buf, sizeof(buf), alice, "alice", sn, f->binding, 32);
    buf[FSP_HDR_LEN + FSP_NONCE_LEN + 3] ^= 1;
    break;
  case 1: /* an unknown user, with a real key of their own */
    n = enc_auth(buf, sizeof(buf), mallory, "mallory", sn, f->binding, 32);
    break;
  case 2: /* bob's key, claiming to be alice */
    n = enc_auth(buf, sizeof(buf), bob, "alice", sn, f->binding, 32);
    break;
  case 3: /* signed for the nonce another connection got */
    n = enc_auth(buf, sizeof(buf), alice, "alice", oldnonce, f->binding, 32);
    break;
  default: /* signed over another TLS channel (relayed) */
    n = enc_auth(buf, sizeof(buf), alice, "alice", sn, other, 32);
    break;
  }
  n += enc_name(buf + n, sizeof(buf) - n, FSP_OP_LIST, 1, "");
  feed(f, buf, n);
  expect_error(f, 0, FSP_ST_UNAUTHENTICATED, "authentication failed for user");
  expect_nothing(f);
  ck_assert(f->closed);
  ck_assert(!fsd_session_authenticated(&f->s));
  ck_assert_ptr_null(fsd_session_user(&f->s));
  fake_free(f);
  fake_free(old);
}
END_TEST

/* The same exchange over the same channel passes, and the binding counts. */
START_TEST(test_session_auth_channel_binding) {
  struct fake *f = fake_new();
  const uint8_t *sn;
  uint8_t buf[512];
  size_t n;

  f->binding_len = 32;
  memset(f->binding, 0x11, sizeof(f->binding));
  sn = hello(f);
  n = enc_auth(buf, sizeof(buf), alice, "alice", sn, f->binding, 32);
  feed(f, buf, n);
  expect(f, FSP_OP_OK, 0, NULL);
  fake_free(f);
}
END_TEST

/* A malformed AUTH is one failed attempt. */
START_TEST(test_session_auth_malformed) {
  struct fake *f = fake_new();
  uint8_t buf[FSP_HDR_LEN + 100];

  hello(f);
  fsp_header_write(buf, FSP_OP_AUTH, 0, 97);
  memset(buf + FSP_HDR_LEN, 0, 96);
  buf[FSP_HDR_LEN + 96] = ' '; /* not a user name */
  feed(f, buf, FSP_HDR_LEN + 97);
  expect_error(f, 0, FSP_ST_UNAUTHENTICATED, "malformed AUTH");
  ck_assert(f->closed);
  fake_free(f);
}
END_TEST

/* bob may read only: PUT, DELETE and NOTICE end with FORBIDDEN naming the
 * user, the right and the file, and never reach the host; reads work. */
START_TEST(test_session_auth_read_only_user) {
  struct fake *f = login(bob, "bob");
  uint8_t buf[256];
  struct fsp_msg m;
  size_t n;

  fsd_ctx_update(&ctx, "a.txt", 5, 1, 3, 1700000000);
  n = enc_name(buf, sizeof(buf), FSP_OP_PUT, 1, "a.txt");
  feed(f, buf, n);
  expect_error(f, 1, FSP_ST_FORBIDDEN, "user bob lacks the write right: a.txt");
  n = enc_name(buf, sizeof(buf), FSP_OP_DELETE, 2, "a.txt");
  feed(f, buf, n);
  expect_error(f, 2, FSP_ST_FORBIDDEN, "lacks the delete right: a.txt");
  n = enc_name(buf, sizeof(buf), FSP_OP_NOTICE, 3, "hello");
  feed(f, buf, n);
  expect_error(f, 3, FSP_ST_FORBIDDEN, "lacks the notice right");
  ck_assert_int_eq(f->nstarted, 0);
  n = enc_name(buf, sizeof(buf), FSP_OP_STAT, 4, "a.txt");
  feed(f, buf, n);
  expect(f, FSP_OP_INFO, 4, &m);
  ck_assert_uint_eq(m.u.entry.size, 3);
  ck_assert(!f->closed);
  fake_free(f);
}
END_TEST

/* carol may write but not read: no LIST, GET, STAT or SUBSCRIBE, so no
 * events; a reader subscribed beside her gets them. */
START_TEST(test_session_auth_no_read_no_events) {
  struct fake *c = login(carol, "carol"), *b = login(bob, "bob");
  uint8_t buf[256];
  struct fsp_msg m;
  size_t n;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_SUBSCRIBE;
  m.id = 1;
  n = enc(buf, sizeof(buf), &m);
  feed(c, buf, n);
  expect_error(c, 1, FSP_ST_FORBIDDEN, "lacks the read right");
  feed(b, buf, n);
  expect(b, FSP_OP_SUBSCRIBED, 1, NULL);
  n = enc_name(buf, sizeof(buf), FSP_OP_GET, 2, "a.txt");
  feed(c, buf, n);
  expect_error(c, 2, FSP_ST_FORBIDDEN, "lacks the read right: a.txt");
  n = enc_name(buf, sizeof(buf), FSP_OP_LIST, 3, "");
  feed(c, buf, n);
  expect_error(c, 3, FSP_ST_FORBIDDEN, NULL);
  fsd_ctx_update(&ctx, "new.txt", 7, 1, 1, 1700000000);
  expect(b, FSP_OP_EVENT, 0, NULL);
  expect_nothing(c);
  /* She may upload. */
  n = enc_name(buf, sizeof(buf), FSP_OP_PUT, 4, "up.txt");
  feed(c, buf, n);
  ck_assert_int_eq(c->nstarted, 1);
  fsd_session_fail(&c->s, c->started[0], FSP_ST_IO, NULL);
  fake_free(c);
  fake_free(b);
}
END_TEST

/* A reload that removes a user closes that user's connection at once; one
 * that shrinks rights holds the connection to them at once: a running
 * upload ends FORBIDDEN, the lost read unsubscribes. */
START_TEST(test_session_auth_reload) {
  struct fake *a = login(alice, "alice"), *b = login(bob, "bob");
  uint8_t buf[256];
  struct fsp_msg m;
  size_t n;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_SUBSCRIBE;
  m.id = 1;
  n = enc(buf, sizeof(buf), &m);
  feed(a, buf, n);
  expect(a, FSP_OP_SUBSCRIBED, 1, NULL);
  n = enc_name(buf, sizeof(buf), FSP_OP_PUT, 2, "up.txt");
  feed(a, buf, n);
  ck_assert_int_eq(a->nstarted, 1);

  /* alice keeps only delete; bob is gone. */
  load("delete", NULL, "write");
  fsd_session_reload(&a->s, &users);
  fsd_session_reload(&b->s, &users);
  expect_error(b, 0, FSP_ST_UNAUTHENTICATED, "user bob was removed");
  ck_assert(b->closed);
  ck_assert(!a->closed);
  ck_assert_int_eq(a->naborted, 1);
  fsd_session_aborted(&a->s, a->aborted[0]);
  a->naborted = 0;
  expect_error(a, 2, FSP_ST_FORBIDDEN, "rights changed");
  ck_assert(fsd_list_empty(&ctx.subs));
  fsd_ctx_update(&ctx, "x", 1, 1, 1, 1700000000);
  expect_nothing(a);
  n = enc_name(buf, sizeof(buf), FSP_OP_STAT, 3, "x");
  feed(a, buf, n);
  expect_error(a, 3, FSP_ST_FORBIDDEN, "lacks the read right");
  fake_free(a);
  fake_free(b);
}
END_TEST

/* AUTH twice, or on a server without users: out of sequence, ignored. */
START_TEST(test_session_auth_stray_auth) {
  struct fake *f = login(alice, "alice"), *g;
  uint8_t buf[256];
  size_t n =
      enc_auth(buf, sizeof(buf), alice, "alice", f->s.gate.nonce, NULL, 0);

  feed(f, buf, n);
  expect_error(f, 0, FSP_ST_PROTOCOL, "AUTH out of sequence");
  ck_assert(!f->closed);
  fake_free(f);
  ctx.users = NULL;
  g = fake_new();
  n = enc_hello(buf, sizeof(buf), FSP_AUTH_VERSION);
  feed(g, buf, n);
  expect(g, FSP_OP_HELLO, 0, NULL);
  n = enc_auth(buf, sizeof(buf), alice, "alice", buf, NULL, 0);
  feed(g, buf, n);
  expect_error(g, 0, FSP_ST_PROTOCOL, "AUTH out of sequence");
  expect_nothing(g);
  fake_free(g);
}
END_TEST

/* The deadline: a session still unauthenticated gets TIMEOUT and closes. */
START_TEST(test_session_auth_deadline) {
  struct fake *f = fake_new();

  hello(f);
  ck_assert(!fsd_session_authenticated(&f->s));
  fsd_session_timeout(&f->s);
  expect_error(f, 0, FSP_ST_TIMEOUT, NULL);
  ck_assert(f->closed);
  fake_free(f);
}
END_TEST

Suite *session_auth_suite(void) {
  Suite *s = suite_create("session-auth");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_session_auth_refuses_every_opcode_before_auth, 0,
                      16);
  tcase_add_test(tc, test_session_auth_pipelined_hello_get);
  tcase_add_test(tc, test_session_auth_ping_and_bye_before_auth);
  tcase_add_test(tc, test_session_auth_old_client);
  tcase_add_test(tc, test_session_auth_preauth_frame_limit);
  tcase_add_test(tc, test_session_auth_good);
  tcase_add_test(tc, test_session_auth_held_then_pipelined_request);
  tcase_add_loop_test(tc, test_session_auth_refused, 0, 5);
  tcase_add_test(tc, test_session_auth_channel_binding);
  tcase_add_test(tc, test_session_auth_malformed);
  tcase_add_test(tc, test_session_auth_read_only_user);
  tcase_add_test(tc, test_session_auth_no_read_no_events);
  tcase_add_test(tc, test_session_auth_reload);
  tcase_add_test(tc, test_session_auth_stray_auth);
  tcase_add_test(tc, test_session_auth_deadline);
  suite_add_tcase(s, tc);
  return s;
}
