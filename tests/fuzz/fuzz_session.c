/* libFuzzer target: fsd's per-connection request state machine, without
 * sockets.
 *
 * Input layout: the first 8 bytes seed a small generator that plays the host
 * (how the bytes are split into reads, when file work completes or fails, a
 * slow socket, outside changes to the folder, idle timeouts, shutdown); the
 * rest is what a client sends, fed to fsd_session_feed() in pieces, the
 * unconsumed tail kept and fed again as the libuv host does. A second
 * session on the same server context subscribes, so events and notices fan
 * out.
 *
 * With bit 0x40 of the first byte the server has a users file (one user,
 * alice, whose key the harness holds): the input then starts before
 * authentication, or, with bit 0x40 of the second byte too, the harness
 * authenticates first with rights taken from the third byte. The host holds
 * AUTH checks for a while, may run over TLS (a channel binding), and reloads
 * the users file with other rights or without alice.
 *
 * Besides the sanitizers' checks, the target aborts when the session sends a
 * frame that does not decode, sends frames after it asked for the close,
 * counts other requests in flight than the host holds, or still holds a
 * request once everything was torn down. */
#include <fsproto/fsproto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "mem.h"
#include "log.h"
#include "session.h"
#include "users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HELD 256u /* requests the fake host can hold at once */
#define MAX_KEEP (FSP_HDR_LEN + FSD_MAX_PAYLOAD)

/* Where a request held by the fake host stands. */
enum held_stage {
  HELD_STARTED = 0,   /* start() called: open/hash/unlink/create pending */
  HELD_STREAMING = 1, /* GET: BEGIN sent, get_end pending */
  HELD_RECEIVING = 2, /* PUT: READY sent, DATA flowing */
  HELD_COMMITTING = 3 /* PUT: put_commit() called */
};

struct held {
  struct fsd_req *r;
  int stage;    /* enum held_stage */
  int aborting; /* abort() called or fsd_session_failing() used */
};

struct host {
  struct fsd_session s;
  struct held held[MAX_HELD];
  size_t nheld;
  int closed;       /* close() was called */
  size_t backlog;   /* what backlog() reports */
  uint64_t written; /* PUT bytes written, all requests */
  int auth_pending; /* an AUTH waits for fsd_session_auth_check() */
  int tls;          /* the connection has a channel binding */
};

/* The users file of auth mode: alice, with the test key of RFC 8032
 * section 7.1 (protocol.md's example key), whose seed the harness holds. */
static const char users_text[] =
    "alice read ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea\n";
static const uint8_t alice_seed[32] = {
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
    0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
    0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static struct fsd_users users, nobody;
static struct fsd_verifier verifier;
static EVP_PKEY *alice_key;

static uint64_t rng_state;

/* splitmix64: the host's decisions, reproducible from the input. */
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static struct held *find_held(struct host *h, const struct fsd_req *r) {
  for (size_t i = 0; i < h->nheld; i++)
    if (h->held[i].r == r)
      return &h->held[i];
  return NULL;
}

static void forget(struct host *h, struct held *e) {
  *e = h->held[--h->nheld];
}

/* Every frame fsd sends must decode as a valid server message. */
static int host_send(void *arg, const void *frame, size_t len) {
  struct host *h = arg;
  struct fsp_frame f;
  struct fsp_msg m;
  ssize_t n;

  if (h->closed) {
    fprintf(stderr, "frame sent after close\n");
    abort();
  }
  n = fsp_frame_decode(frame, len, FSP_MAX_PAYLOAD, &f);
  if (n < 0 || (size_t)n != len) {
    fprintf(stderr, "fsd sent a broken frame (%zd of %zu)\n", n, len);
    abort();
  }
  if (f.op != FSP_OP_DATA && fsp_msg_decode(&f, &m) != 0) {
    fprintf(stderr, "fsd sent a malformed %s\n", fsp_op_name(f.op));
    abort();
  }
  return 0;
}

static size_t host_backlog(void *arg) {
  return ((struct host *)arg)->backlog;
}

static void host_close(void *arg) {
  ((struct host *)arg)->closed = 1;
}

static void host_start(void *arg, struct fsd_req *r) {
  struct host *h = arg;

  if (h->nheld == MAX_HELD || find_held(h, r) != NULL) {
    fprintf(stderr, "start() for a request already held\n");
    abort();
  }
  h->held[h->nheld].r = r;
  h->held[h->nheld].stage = HELD_STARTED;
  h->held[h->nheld].aborting = 0;
  h->nheld++;
}

static int host_put_write(void *arg, struct fsd_req *r, const uint8_t *p,
                          size_t n, uint64_t off) {
  struct host *h = arg;
  struct held *e = find_held(h, r);

  if (e == NULL || e->stage != HELD_RECEIVING || off != r->received) {
    fprintf(stderr, "put_write() out of sequence\n");
    abort();
  }
  /* Touch every byte, so ASan checks the pointer range. */
  for (size_t i = 0; i < n; i++)
    h->written += p[i];
  if (!e->aborting && rnd() % 64 == 0) {
    /* The disk fails under this upload. */
    fsd_session_failing(&h->s, r, FSP_ST_NO_SPACE, "no space left");
    e->aborting = 1;
    return -1;
  }
  return 0;
}

static void host_put_commit(void *arg, struct fsd_req *r) {
  struct host *h = arg;
  struct held *e = find_held(h, r);

  if (e == NULL || e->stage != HELD_RECEIVING) {
    fprintf(stderr, "put_commit() out of sequence\n");
    abort();
  }
  e->stage = HELD_COMMITTING;
}

static void host_abort(void *arg, struct fsd_req *r) {
  struct held *e = find_held(arg, r);

  if (e == NULL) {
    fprintf(stderr, "abort() of a request the host does not hold\n");
    abort();
  }
  e->aborting = 1;
}

/* An AUTH to check: now, or later in host_turn(), as fsd does after
 * failures from the peer's address. */
static void host_auth(void *arg) {
  struct host *h = arg;

  if (rnd() % 2)
    fsd_session_auth_check(&h->s);
  else
    h->auth_pending = 1;
}

static size_t host_binding(void *arg, uint8_t *out, size_t cap) {
  struct host *h = arg;

  if (!h->tls || cap < FSP_BINDING_LEN)
    return 0;
  memset(out, 0x5a, FSP_BINDING_LEN);
  return FSP_BINDING_LEN;
}

static const struct fsd_host_ops host_ops = {
    .send = host_send,
    .backlog = host_backlog,
    .close = host_close,
    .start = host_start,
    .put_write = host_put_write,
    .put_commit = host_put_commit,
    .abort = host_abort,
    .auth = host_auth,
    .binding = host_binding,
};

/* Moves one held request forward, as the file work would. */
static void complete(struct host *h, struct held *e) {
  struct fsd_session *s = &h->s;
  struct fsd_req *r = e->r;
  uint64_t v = rnd();

  if (e->aborting) {
    forget(h, e);
    fsd_session_aborted(s, r);
    return;
  }
  switch (e->stage) {
  case HELD_STARTED:
    if (v % 8 == 0) {
      static const uint16_t errs[] = {FSP_ST_NOT_FOUND, FSP_ST_IO,
                                      FSP_ST_NO_SPACE, FSP_ST_EXISTS};
      forget(h, e);
      fsd_session_fail(s, r, errs[(v >> 8) % 4], NULL);
      return;
    }
    switch (r->opcode) {
    case FSP_OP_GET: {
      uint64_t off, len;
      if (fsd_session_get_begin(s, r, (v >> 8) % 100000, 1700000000, &off,
                                &len) != 0) {
        forget(h, e);
        return;
      }
      e->stage = HELD_STREAMING;
      return;
    }
    case FSP_OP_HASH: {
      uint64_t fsize = (v >> 8) % 100000, len;
      forget(h, e);
      if (fsd_range_clamp(fsize, r->offset, r->length, &len) != 0)
        fsd_session_fail(s, r, FSP_ST_RANGE, NULL);
      else
        fsd_session_hash_done(s, r, r->offset, len, v);
      return;
    }
    case FSP_OP_DELETE:
      forget(h, e);
      fsd_session_delete_done(s, r, 1700000001);
      return;
    case FSP_OP_PUT:
      e->stage = HELD_RECEIVING;
      fsd_session_put_ready(s, r);
      return;
    default:
      fprintf(stderr, "start() for opcode %u\n", r->opcode);
      abort();
    }
  case HELD_STREAMING:
    forget(h, e);
    fsd_session_get_end(s, r, 0, 0x2d06800538d394c2u);
    return;
  case HELD_RECEIVING:
    return; /* waits for the client's END */
  case HELD_COMMITTING:
    forget(h, e);
    if (v % 8 == 0)
      fsd_session_fail(s, r, FSP_ST_EXISTS, NULL);
    else
      fsd_session_put_done(
          s, r, &(struct fsd_stamp){r->size, 1700000002, r->id, 1700000002});
    return;
  }
}

/* A few host events between reads. */
static void host_turn(struct host *h, struct fsd_ctx *ctx) {
  unsigned steps = (unsigned)(rnd() % 4);

  for (unsigned i = 0; i < steps && h->nheld > 0; i++)
    complete(h, &h->held[rnd() % h->nheld]);
  if (h->auth_pending && rnd() % 2) {
    h->auth_pending = 0;
    fsd_session_auth_check(&h->s);
  }
  switch (rnd() % 32) {
  case 0:
    h->backlog = h->backlog ? 0 : 2 * FSD_SUB_BACKLOG;
    if (h->backlog == 0)
      fsd_session_drained(&h->s);
    break;
  case 1: {
    /* Another program changes the folder. */
    char name[8];
    int n = snprintf(name, sizeof(name), "f%u", (unsigned)(rnd() % 16));
    fsd_ctx_update(ctx, name, (size_t)n, (int)(rnd() % 2), rnd() % 1000,
                   1700000003);
    break;
  }
  case 2:
    if (rnd() % 8 == 0)
      fsd_session_timeout(&h->s);
    break;
  case 3:
    if (rnd() % 8 == 0)
      fsd_session_shutdown(&h->s);
    break;
  case 4:
    /* The users file is reloaded: other rights, or alice removed. */
    if (ctx->users != NULL) {
      users.v[0].rights = (unsigned)(rnd() % 16);
      fsd_session_reload(&h->s, rnd() % 4 == 0 ? &nobody : &users);
    }
    break;
  default:
    break;
  }
}

/* A quiet second client subscribed to the same server. */
static void peer_init(struct host *p, struct fsd_ctx *ctx) {
  uint8_t buf[128];
  struct fsp_msg m;
  ssize_t n1, n2;

  memset(p, 0, sizeof(*p));
  fsd_session_init(&p->s, ctx, &host_ops, p);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = FSP_PROTO_VERSION;
  m.u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  n1 = fsp_msg_encode(buf, sizeof(buf), &m);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_SUBSCRIBE;
  m.id = 1;
  n2 = n1 > 0 ? fsp_msg_encode(buf + n1, sizeof(buf) - (size_t)n1, &m) : -1;
  if (n2 <= 0 ||
      fsd_session_feed(&p->s, buf, (size_t)(n1 + n2)) != (size_t)(n1 + n2) ||
      !p->s.subscribed) {
    fprintf(stderr, "peer did not subscribe\n");
    abort();
  }
}

/* Tears a session down as the libuv host does after a disconnect. */
static void teardown(struct host *h) {
  unsigned rounds = 0;

  fsd_session_close(&h->s);
  /* After the close every held request is aborting or committing, so each
   * completion ends one; more rounds than requests means one never ends. */
  while (h->nheld > 0) {
    if (++rounds > 4 * MAX_HELD) {
      fprintf(stderr, "a request never ends after the close\n");
      abort();
    }
    complete(h, &h->held[h->nheld - 1]);
  }
  if (fsd_session_busy(&h->s) != 0 || h->s.reqs != NULL) {
    fprintf(stderr, "requests left after the close\n");
    abort();
  }
}

/* A fresh server context for each input. fsd_ctx_init() allocates a 1 MiB
 * event ring, which costs more than most inputs under ASan, so the ring is
 * kept from one input to the next and only the slots used are cleared. */
static int ctx_reset(struct fsd_ctx *ctx) {
  static struct fsd_ctx fresh;
  static int ready;
  uint64_t used;

  if (!ready) {
    if (fsd_ctx_init(&fresh, 0x1234) != 0)
      return -1;
    ready = 1;
    *ctx = fresh;
    /* The list head links to itself, so a copy must point at its own. */
    fsd_list_init(&ctx->subs);
    return 0;
  }
  used = ctx->seq < FSD_RING_SIZE ? ctx->seq : FSD_RING_SIZE;
  for (uint64_t q = ctx->seq - used + 1; q <= ctx->seq; q++) {
    fsd_free(ctx->ring[q % FSD_RING_SIZE].own);
    memset(&ctx->ring[q % FSD_RING_SIZE], 0, sizeof(*ctx->ring));
  }
  fsd_register_free(&ctx->reg);
  if (fsd_register_init(&ctx->reg) != 0)
    return -1;
  fsd_treereg_free(&ctx->tree);
  if (fsd_treereg_init(&ctx->tree) != 0)
    return -1;
  ctx->seq = 0;
  fsd_list_init(&ctx->subs);
  ctx->read_only = 0;
  ctx->users = NULL;
  ctx->verifier = NULL;
  return 0;
}

/* Loads auth mode's users and key, once. */
static int auth_init(void) {
  static int ready;
  char err[256];

  if (ready)
    return 0;
  alice_key =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, alice_seed, 32);
  if (alice_key == NULL ||
      fsd_users_parse(users_text, sizeof(users_text) - 1, &users, err,
                      sizeof(err)) != 0 ||
      fsd_verifier_init(&verifier) != 0)
    return -1;
  ready = 1;
  return 0;
}

/* Authenticates h as alice with rights: HELLO, then an AUTH signed over the
 * session's own nonce, as a real client would. */
static void auth_first(struct host *h, unsigned rights) {
  uint8_t buf[512], t[FSP_TRANSCRIPT_MAX], cn[FSP_NONCE_LEN], sig[64];
  uint8_t binding[FSP_BINDING_LEN];
  size_t siglen = sizeof(sig), blen;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  struct fsp_msg m;
  ssize_t n, tn;

  users.v[0].rights = rights;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = FSD_PROTO_VERSION;
  m.u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  n = fsp_msg_encode(buf, sizeof(buf), &m);
  if (n <= 0 || fsd_session_feed(&h->s, buf, (size_t)n) != (size_t)n ||
      h->s.gate.state != FSD_GATE_CHALLENGED) {
    fprintf(stderr, "no challenge after HELLO\n");
    abort();
  }
  memset(cn, 0x33, sizeof(cn));
  blen = host_binding(h, binding, sizeof(binding));
  tn = fsp_auth_transcript(t, sizeof(t), h->s.gate.nonce, cn, "alice", 5,
                           binding, blen);
  if (md == NULL || tn <= 0 ||
      EVP_DigestSignInit(md, NULL, NULL, NULL, alice_key) != 1 ||
      EVP_DigestSign(md, sig, &siglen, t, (size_t)tn) != 1)
    abort();
  EVP_MD_CTX_free(md);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_AUTH;
  m.u.auth.nonce = cn;
  m.u.auth.sig = sig;
  m.u.auth.user.ptr = "alice";
  m.u.auth.user.len = 5;
  n = fsp_msg_encode(buf, sizeof(buf), &m);
  if (n <= 0 || fsd_session_feed(&h->s, buf, (size_t)n) != (size_t)n)
    abort();
  if (h->auth_pending) {
    h->auth_pending = 0;
    fsd_session_auth_check(&h->s);
  }
  if (!fsd_session_authenticated(&h->s)) {
    fprintf(stderr, "a good AUTH was refused\n");
    abort();
  }
}

/* libFuzzer's entry point: one whole session per input (see the top of the
 * file). Always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct host h, peer;
  static uint8_t keep[MAX_KEEP];
  static struct fsd_ctx ctx;
  size_t kept = 0, pos;

  fsd_log_threshold = -1;
  if (size < 8)
    return 0;
  memcpy(&rng_state, data, 8);
  pos = 8;
  if (ctx_reset(&ctx) != 0)
    return 0;
  ctx.read_only = (data[0] & 0x80) && (data[1] & 0x80);
  fsd_ctx_update(&ctx, "a.txt", 5, 1, 1234, 1700000000);
  fsd_ctx_update(&ctx, "b", 1, 1, 0, 1700000000);

  peer_init(&peer, &ctx);
  memset(&h, 0, sizeof(h));
  if ((data[0] & 0x40) && auth_init() == 0) {
    ctx.users = &users;
    ctx.verifier = &verifier;
    users.v[0].rights = FSD_RIGHT_READ;
    h.tls = (data[3] & 0x80) != 0;
  }
  fsd_session_init(&h.s, &ctx, &host_ops, &h);
  if (ctx.users != NULL && (data[1] & 0x40))
    auth_first(&h, data[2] & 15u);

  while (pos < size && !h.closed) {
    size_t piece = 1 + (size_t)(rnd() % 300), used;

    if (piece > size - pos)
      piece = size - pos;
    if (kept + piece > sizeof(keep) && h.auth_pending) {
      /* The host checks a held AUTH before it buffers more. */
      h.auth_pending = 0;
      fsd_session_auth_check(&h.s);
    }
    if (kept + piece > sizeof(keep)) {
      fprintf(stderr, "the session left more than one frame unconsumed\n");
      abort();
    }
    memcpy(keep + kept, data + pos, piece);
    kept += piece;
    pos += piece;
    used = fsd_session_feed(&h.s, keep, kept);
    if (used > kept)
      abort();
    /* Writes point into keep: the fake host finished them synchronously, so
     * the consumed bytes may be dropped now. */
    memmove(keep, keep + used, kept - used);
    kept -= used;
    host_turn(&h, &ctx);
    /* Every request the session counts is one the host works on. */
    if (fsd_session_busy(&h.s) != h.nheld ||
        fsd_session_busy(&h.s) > FSD_MAX_INFLIGHT) {
      fprintf(stderr, "session counts %u requests, host holds %zu\n",
              fsd_session_busy(&h.s), h.nheld);
      abort();
    }
  }
  teardown(&h);
  teardown(&peer);
  if (!fsd_list_empty(&ctx.subs)) {
    fprintf(stderr, "a closed session is still subscribed\n");
    abort();
  }
  return 0;
}
