/* The per-connection state machine, driven by a fake host: frames in,
 * host calls and frames out, no sockets and no files. */
#include <fsproto/fsproto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <xxhash.h>

#include "ctx.h"
#include "session.h"
#include "suites.h"

#define OUT_CAP (4u << 20)
#define MAX_REQS 128

struct fake {
  struct fsd_session s;
  uint8_t *out; /* frames the session sent */
  size_t outlen;
  size_t outpos;  /* next frame to read back */
  int closed;     /* close() called */
  size_t backlog; /* what backlog() reports */
  int grow;       /* sends add to the backlog */
  struct fsd_req *started[MAX_REQS];
  int nstarted;
  struct fsd_req *aborted[MAX_REQS];
  int naborted;
  struct fsd_req *committed;
  uint64_t written;  /* PUT bytes handed to put_write */
  uint64_t next_off; /* offset the next put_write must have */
};

static struct fsd_ctx ctx;

static int f_send(void *host, const void *frame, size_t len) {
  struct fake *f = host;
  ck_assert_int_eq(f->closed, 0);
  ck_assert_uint_le(f->outlen + len, OUT_CAP);
  memcpy(f->out + f->outlen, frame, len);
  f->outlen += len;
  if (f->grow)
    f->backlog += len; /* nothing drains until the test says so */
  return 0;
}

static size_t f_backlog(void *host) {
  return ((struct fake *)host)->backlog;
}

static void f_close(void *host) {
  ((struct fake *)host)->closed = 1;
}

static void f_start(void *host, struct fsd_req *r) {
  struct fake *f = host;
  ck_assert_int_lt(f->nstarted, MAX_REQS);
  f->started[f->nstarted++] = r;
}

static int f_put_write(void *host, struct fsd_req *r, const uint8_t *p,
                       size_t n, uint64_t off) {
  struct fake *f = host;
  ck_assert_uint_eq(off, f->next_off);
  f->next_off += n;
  f->written += n;
  return 0;
}

static void f_put_commit(void *host, struct fsd_req *r) {
  ((struct fake *)host)->committed = r;
}

static void f_abort(void *host, struct fsd_req *r) {
  struct fake *f = host;
  f->aborted[f->naborted++] = r;
}

static const struct fsd_host_ops fake_ops = {
    .send = f_send,
    .backlog = f_backlog,
    .close = f_close,
    .start = f_start,
    .put_write = f_put_write,
    .put_commit = f_put_commit,
    .abort = f_abort,
};

static struct fake *fake_new(void) {
  struct fake *f = calloc(1, sizeof(*f));
  f->out = malloc(OUT_CAP);
  fsd_session_init(&f->s, &ctx, &fake_ops, f);
  return f;
}

static void fake_free(struct fake *f) {
  fsd_session_close(&f->s);
  /* Complete the aborts the close asked for, as a host would. */
  for (int i = 0; i < f->naborted; i++)
    if (f->aborted[i] != NULL)
      fsd_session_aborted(&f->s, f->aborted[i]);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  free(f->out);
  free(f);
}

static void setup(void) {
  ck_assert_int_eq(fsd_ctx_init(&ctx, 77), 0);
}

static void teardown(void) {
  ck_assert(fsd_list_empty(&ctx.subs));
  fsd_ctx_free(&ctx);
}

/* Feeds all of buf, keeping the unconsumed tail as a host does. */
static void feed_bytes(struct fake *f, const uint8_t *buf, size_t len,
                       size_t step) {
  uint8_t *pending = malloc(len + 1);
  size_t plen = 0;

  for (size_t pos = 0; pos < len;) {
    size_t n = len - pos < step ? len - pos : step;
    size_t used;
    memcpy(pending + plen, buf + pos, n);
    plen += n;
    pos += n;
    used = fsd_session_feed(&f->s, pending, plen);
    memmove(pending, pending + used, plen - used);
    plen -= used;
  }
  ck_assert_uint_eq(plen, 0);
  free(pending);
}

static void feed_msg(struct fake *f, const struct fsp_msg *m) {
  uint8_t buf[8192];
  ssize_t n = fsp_msg_encode(buf, sizeof(buf), m);
  ck_assert_int_gt(n, 0);
  ck_assert_int_le(n, (ssize_t)sizeof(buf));
  feed_bytes(f, buf, (size_t)n, (size_t)n);
}

static void feed_simple(struct fake *f, uint8_t op, uint32_t id) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = op;
  m.id = id;
  feed_msg(f, &m);
}

static void feed_name(struct fake *f, uint8_t op, uint32_t id,
                      const char *name) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = op;
  m.id = id;
  m.u.name.ptr = name;
  m.u.name.len = strlen(name);
  feed_msg(f, &m);
}

/* A name frame built by hand: the encoder refuses bad names. */
static void feed_raw_name(struct fake *f, uint8_t op, uint32_t id,
                          const char *name) {
  uint8_t buf[FSP_HDR_LEN + 256];
  size_t n = strlen(name);
  fsp_header_write(buf, op, id, (uint32_t)n);
  memcpy(buf + FSP_HDR_LEN, name, n);
  feed_bytes(f, buf, FSP_HDR_LEN + n, FSP_HDR_LEN + n);
}

static void feed_range(struct fake *f, uint8_t op, uint32_t id,
                       const char *name, uint64_t off, uint64_t len) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = op;
  m.id = id;
  m.u.range.offset = off;
  m.u.range.length = len;
  m.u.range.name.ptr = name;
  m.u.range.name.len = strlen(name);
  feed_msg(f, &m);
}

static void feed_put(struct fake *f, uint32_t id, const char *name,
                     uint64_t size, uint8_t mode) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_PUT;
  m.id = id;
  m.u.put.size = size;
  m.u.put.mode = mode;
  m.u.put.name.ptr = name;
  m.u.put.name.len = strlen(name);
  feed_msg(f, &m);
}

static void feed_data(struct fake *f, uint32_t id, const void *p, size_t n) {
  uint8_t *buf = malloc(FSP_HDR_LEN + n);
  fsp_header_write(buf, FSP_OP_DATA, id, (uint32_t)n);
  memcpy(buf + FSP_HDR_LEN, p, n);
  feed_bytes(f, buf, FSP_HDR_LEN + n, 1000);
  free(buf);
}

static void feed_end(struct fake *f, uint32_t id, uint64_t size,
                     uint64_t hash) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_END;
  m.id = id;
  m.u.end.size = size;
  m.u.end.hash = hash;
  feed_msg(f, &m);
}

/* Reads back the next frame the session sent; 0 when there is none. */
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

static void expect_op(struct fake *f, uint8_t op, uint32_t id,
                      struct fsp_msg *m) {
  struct fsp_msg tmp;
  if (m == NULL)
    m = &tmp;
  ck_assert_msg(next_out(f, m), "no frame, expected %s", fsp_op_name(op));
  ck_assert_msg(m->op == op, "got %s, expected %s", fsp_op_name(m->op),
                fsp_op_name(op));
  ck_assert_uint_eq(m->id, id);
}

/* Starts a replacing PUT of id and name, as the only request started so far,
 * lets the host report its temp file ready, and checks the READY answer. */
static struct fsd_req *ready_put(struct fake *f, uint32_t id, const char *name,
                                 uint64_t size) {
  struct fsd_req *r;
  feed_put(f, id, name, size, FSP_PUT_REPLACE);
  ck_assert_int_eq(f->nstarted, 1);
  r = f->started[0];
  fsd_session_put_ready(&f->s, r);
  expect_op(f, FSP_OP_READY, id, NULL);
  return r;
}

static void expect_error(struct fake *f, uint32_t id, uint16_t status) {
  struct fsp_msg m;
  expect_op(f, FSP_OP_ERROR, id, &m);
  ck_assert_msg(m.u.error.status == status, "status %s, expected %s",
                fsp_status_name(m.u.error.status), fsp_status_name(status));
}

static void expect_nothing(struct fake *f) {
  struct fsp_msg m;
  if (next_out(f, &m))
    ck_abort_msg("unexpected %s", fsp_op_name(m.op));
}

static void do_hello(struct fake *f) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = 1;
  m.u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  feed_msg(f, &m);
  expect_op(f, FSP_OP_HELLO, 0, &m);
}

static struct fake *connected(void) {
  struct fake *f = fake_new();
  do_hello(f);
  return f;
}

/* ------------------------------------------------------------------------ */

START_TEST(test_session_hello_reply) {
  struct fake *f = fake_new();
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = 3; /* a newer client: we announce our highest */
  m.u.hello.max_payload = 200000;
  feed_msg(f, &m);
  expect_op(f, FSP_OP_HELLO, 0, &m);
  ck_assert_uint_eq(m.u.hello.version, FSD_PROTO_VERSION);
  ck_assert_uint_eq(m.u.hello.max_payload, 1048576);
  ck_assert_uint_eq(m.u.hello.max_inflight, 64);
  ck_assert_uint_eq(m.u.hello.caps, FSP_CAP_EVENTS | FSP_CAP_NOTICE);
  ck_assert_int_eq(strncmp(m.u.hello.agent.ptr, "fsd/", 4), 0);
  ck_assert_uint_eq(fsd_session_peer_max(&f->s), 200000);
  fake_free(f);
}
END_TEST

START_TEST(test_session_hello_read_only_cap) {
  struct fake *f;
  struct fsp_msg m;

  ctx.read_only = 1;
  f = fake_new();
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = 1;
  m.u.hello.max_payload = 65536;
  feed_msg(f, &m);
  expect_op(f, FSP_OP_HELLO, 0, &m);
  ck_assert_uint_eq(m.u.hello.caps,
                    FSP_CAP_EVENTS | FSP_CAP_NOTICE | FSP_CAP_READ_ONLY);
  feed_put(f, 1, "x", 1, 0);
  expect_error(f, 1, FSP_ST_READ_ONLY);
  fsd_register_set(&ctx.reg, "x", 1, 1, 1);
  feed_name(f, FSP_OP_DELETE, 2, "x");
  expect_error(f, 2, FSP_ST_READ_ONLY);
  ck_assert_int_eq(f->nstarted, 0);
  fake_free(f);
}
END_TEST

START_TEST(test_session_first_frame_must_be_hello) {
  struct fake *f = fake_new();

  feed_simple(f, FSP_OP_LIST, 1);
  expect_error(f, 0, FSP_ST_PROTOCOL);
  ck_assert_int_eq(f->closed, 1);
  expect_nothing(f);
  fake_free(f);
}
END_TEST

START_TEST(test_session_version_zero_refused) {
  struct fake *f = fake_new();
  uint8_t frame[FSP_HDR_LEN + 20];

  /* HELLO with version 0: fsp_msg_encode may refuse to build it, so by
   * hand. */
  memset(frame, 0, sizeof(frame));
  fsp_header_write(frame, FSP_OP_HELLO, 0, 20);
  frame[FSP_HDR_LEN + 5] = 1; /* max_payload 65536 */
  feed_bytes(f, frame, sizeof(frame), sizeof(frame));
  expect_error(f, 0, FSP_ST_VERSION);
  ck_assert_int_eq(f->closed, 1);
  fake_free(f);
}
END_TEST

/* Frames split at every byte position must give the same answers. */
START_TEST(test_session_split_feed) {
  struct fake *f = fake_new();
  uint8_t buf[256];
  size_t len = 0;
  struct fsp_msg m;
  ssize_t n;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = 1;
  m.u.hello.max_payload = 65536;
  n = fsp_msg_encode(buf, sizeof(buf), &m);
  len += (size_t)n;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_PING;
  m.id = 9;
  m.u.text.ptr = "abc";
  m.u.text.len = 3;
  n = fsp_msg_encode(buf + len, sizeof(buf) - len, &m);
  len += (size_t)n;
  feed_bytes(f, buf, len, (size_t)_i + 1);
  expect_op(f, FSP_OP_HELLO, 0, NULL);
  expect_op(f, FSP_OP_PONG, 9, &m);
  ck_assert_uint_eq(m.u.text.len, 3);
  ck_assert_mem_eq(m.u.text.ptr, "abc", 3);
  expect_nothing(f);
  fake_free(f);
}
END_TEST

START_TEST(test_session_unknown_opcode_stays_open) {
  struct fake *f = connected();
  uint8_t frame[FSP_HDR_LEN + 4];

  fsp_header_write(frame, 0x7e, 5, 4);
  memcpy(frame + FSP_HDR_LEN, "abcd", 4);
  feed_bytes(f, frame, sizeof(frame), sizeof(frame));
  expect_error(f, 5, FSP_ST_UNKNOWN_OP);
  ck_assert_int_eq(f->closed, 0);
  /* With the id of a request in flight (or 0) it goes on id 0. */
  feed_range(f, FSP_OP_GET, 8, "a", 0, 1);
  fsp_header_write(frame, 0x7e, 8, 4);
  feed_bytes(f, frame, sizeof(frame), sizeof(frame));
  expect_error(f, 0, FSP_ST_UNKNOWN_OP);
  fsp_header_write(frame, 0x7e, 0, 4);
  feed_bytes(f, frame, sizeof(frame), sizeof(frame));
  expect_error(f, 0, FSP_ST_UNKNOWN_OP);
  ck_assert_int_eq(f->naborted, 0);
  feed_simple(f, FSP_OP_PING, 6);
  expect_op(f, FSP_OP_PONG, 6, NULL);
  fake_free(f);
}
END_TEST

START_TEST(test_session_broken_framing_closes) {
  struct fake *f = connected();
  uint8_t frame[FSP_HDR_LEN];

  fsp_header_write(frame, FSP_OP_PING, 1, 0);
  frame[0] = 0x00; /* bad magic */
  ck_assert_uint_eq(fsd_session_feed(&f->s, frame, sizeof(frame)),
                    sizeof(frame));
  expect_error(f, 0, FSP_ST_PROTOCOL);
  ck_assert_int_eq(f->closed, 1);
  fake_free(f);

  f = connected();
  fsp_header_write(frame, FSP_OP_NOTICE, 1, FSD_MAX_PAYLOAD + 1);
  fsd_session_feed(&f->s, frame, sizeof(frame));
  expect_error(f, 0, FSP_ST_TOO_LARGE);
  ck_assert_int_eq(f->closed, 1);
  fake_free(f);
}
END_TEST

START_TEST(test_session_malformed_and_bad_name) {
  struct fake *f = connected();
  uint8_t frame[FSP_HDR_LEN + 3];

  feed_raw_name(f, FSP_OP_STAT, 1, "../etc");
  expect_error(f, 1, FSP_ST_BAD_NAME);
  feed_raw_name(f, FSP_OP_STAT, 2, ".hidden");
  expect_error(f, 2, FSP_ST_BAD_NAME);
  fsp_header_write(frame, FSP_OP_GET, 3, 3); /* too short for GET */
  memset(frame + FSP_HDR_LEN, 0, 3);
  feed_bytes(f, frame, sizeof(frame), sizeof(frame));
  expect_error(f, 3, FSP_ST_BAD_REQUEST);
  ck_assert_int_eq(f->nstarted, 0);
  ck_assert_int_eq(f->closed, 0);
  fake_free(f);
}
END_TEST

START_TEST(test_session_out_of_sequence) {
  struct fake *f = connected();
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = 1;
  m.u.hello.max_payload = 65536;
  feed_msg(f, &m);
  expect_error(f, 0, FSP_ST_PROTOCOL);
  /* None of these is a request: the ERROR goes on id 0, ending nothing. */
  feed_simple(f, FSP_OP_OK, 4); /* server-only */
  expect_error(f, 0, FSP_ST_PROTOCOL);
  feed_end(f, 5, 0, 0); /* no upload */
  expect_error(f, 0, FSP_ST_PROTOCOL);
  feed_data(f, 6, "x", 1);
  expect_error(f, 0, FSP_ST_PROTOCOL);
  feed_simple(f, FSP_OP_LIST, 0); /* id 0 is reserved */
  expect_error(f, 0, FSP_ST_PROTOCOL);
  ck_assert_int_eq(f->closed, 0);
  fake_free(f);
}
END_TEST

START_TEST(test_session_stat_from_register) {
  struct fake *f = connected();
  struct fsp_msg m;

  fsd_register_set(&ctx.reg, "a.txt", 5, 1234, 1700000000123456789);
  feed_name(f, FSP_OP_STAT, 7, "a.txt");
  expect_op(f, FSP_OP_INFO, 7, &m);
  ck_assert_uint_eq(m.u.entry.size, 1234);
  ck_assert_int_eq(m.u.entry.mtime_ns, 1700000000123456789);
  feed_name(f, FSP_OP_STAT, 8, "b.txt");
  expect_error(f, 8, FSP_ST_NOT_FOUND);
  ck_assert_int_eq(f->nstarted, 0); /* no disk access */
  fake_free(f);
}
END_TEST

START_TEST(test_session_list_in_batches) {
  struct fake *f = connected();
  struct fsp_msg m;
  char name[256];
  size_t total = 0;
  int batches = 0;

  for (int i = 0; i < 1000; i++) {
    int n = snprintf(name, sizeof(name), "%0200d", i);
    fsd_register_set(&ctx.reg, name, (size_t)n, (uint64_t)i, i);
  }
  feed_simple(f, FSP_OP_LIST, 3);
  for (;;) {
    size_t pos = 0;
    struct fsp_entry e;
    ck_assert(next_out(f, &m));
    ck_assert_uint_eq(m.id, 3);
    if (m.op == FSP_OP_OK)
      break;
    ck_assert_uint_eq(m.op, FSP_OP_ENTRIES);
    ck_assert_uint_le(m.u.entries.len + 4, FSD_LIST_BATCH);
    batches++;
    while (fsp_entries_next(&m, &pos, &e) == 1) {
      ck_assert_uint_eq(e.name.len, 200);
      total++;
    }
  }
  ck_assert_uint_eq(total, 1000);
  ck_assert_int_ge(batches, 3);
  fake_free(f);
}
END_TEST

/* With a long backlog, LIST sends a batch and waits; each writable() call
 * sends more, so a huge register never sits in the output queue at once. */
START_TEST(test_session_list_waits_for_backlog) {
  struct fake *f = connected();
  struct fsp_msg m;
  char name[256];
  size_t total = 0, before;
  int rounds = 0;

  for (int i = 0; i < 3000; i++) {
    int n = snprintf(name, sizeof(name), "%0200d", i);
    fsd_register_set(&ctx.reg, name, (size_t)n, 1, 1);
  }
  f->grow = 1; /* as if the client were slow */
  feed_simple(f, FSP_OP_LIST, 3);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 1);
  for (;;) {
    int done = 0;
    before = total;
    while (next_out(f, &m)) {
      size_t pos = 0;
      struct fsp_entry e;
      if (m.op == FSP_OP_OK) {
        done = 1;
        break;
      }
      ck_assert_uint_eq(m.op, FSP_OP_ENTRIES);
      while (fsp_entries_next(&m, &pos, &e) == 1)
        total++;
    }
    if (done)
      break;
    ck_assert_uint_gt(total, before); /* one batch per round */
    ck_assert_uint_lt(total - before, 1000);
    rounds++;
    f->backlog = 0;
    fsd_session_writable(&f->s); /* sends one batch, then backlog is high */
    if (rounds > 100)
      ck_abort_msg("LIST never ends");
  }
  ck_assert_uint_eq(total, 3000);
  ck_assert_int_ge(rounds, 3);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  fake_free(f);
}
END_TEST

/* A LIST paused for the backlog ends with the connection. */
START_TEST(test_session_list_ends_on_close) {
  struct fake *f = connected();
  char name[256];

  for (int i = 0; i < 3000; i++) {
    int n = snprintf(name, sizeof(name), "%0200d", i);
    fsd_register_set(&ctx.reg, name, (size_t)n, 1, 1);
  }
  f->backlog = FSD_LIST_BATCH;
  feed_simple(f, FSP_OP_LIST, 3);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 1);
  fsd_session_close(&f->s);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  ck_assert_int_eq(f->naborted, 0);
  fake_free(f);
}
END_TEST

START_TEST(test_session_list_empty) {
  struct fake *f = connected();

  feed_simple(f, FSP_OP_LIST, 3);
  expect_op(f, FSP_OP_OK, 3, NULL);
  expect_nothing(f);
  fake_free(f);
}
END_TEST

START_TEST(test_session_get_flow) {
  struct fake *f = connected();
  struct fsp_msg m;
  uint64_t off, len;

  feed_range(f, FSP_OP_GET, 9, "a.txt", 2, FSP_LENGTH_TO_END);
  ck_assert_int_eq(f->nstarted, 1);
  ck_assert_str_eq(f->started[0]->name, "a.txt");
  ck_assert_uint_eq(fsd_session_busy(&f->s), 1);
  ck_assert_int_eq(fsd_session_active(&f->s), 1);
  expect_nothing(f); /* nothing until the file is open */
  ck_assert_int_eq(
      fsd_session_get_begin(&f->s, f->started[0], 10, 55, &off, &len), 0);
  ck_assert_uint_eq(off, 2);
  ck_assert_uint_eq(len, 8);
  expect_op(f, FSP_OP_BEGIN, 9, &m);
  ck_assert_uint_eq(m.u.begin.file_size, 10);
  ck_assert_int_eq(m.u.begin.mtime_ns, 55);
  ck_assert_uint_eq(m.u.begin.offset, 2);
  ck_assert_uint_eq(m.u.begin.length, 8);
  fsd_session_get_end(&f->s, f->started[0], 8, 0xabcdef);
  expect_op(f, FSP_OP_END, 9, &m);
  ck_assert_uint_eq(m.u.end.size, 8);
  ck_assert_uint_eq(m.u.end.hash, 0xabcdef);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  /* The id may be reused once the request ended. */
  feed_range(f, FSP_OP_GET, 9, "a.txt", 11, 1);
  ck_assert_int_eq(
      fsd_session_get_begin(&f->s, f->started[1], 10, 55, &off, &len),
      FSP_ST_RANGE);
  expect_error(f, 9, FSP_ST_RANGE);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  fake_free(f);
}
END_TEST

START_TEST(test_session_range_clamp) {
  uint64_t len;

  ck_assert_int_eq(fsd_range_clamp(10, 0, FSP_LENGTH_TO_END, &len), 0);
  ck_assert_uint_eq(len, 10);
  ck_assert_int_eq(fsd_range_clamp(10, 4, 3, &len), 0);
  ck_assert_uint_eq(len, 3);
  ck_assert_int_eq(fsd_range_clamp(10, 8, 5, &len), 0);
  ck_assert_uint_eq(len, 2);
  ck_assert_int_eq(fsd_range_clamp(10, 10, 5, &len), 0);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(fsd_range_clamp(10, 11, 0, &len), FSP_ST_RANGE);
  ck_assert_int_eq(fsd_range_clamp(0, 0, FSP_LENGTH_TO_END, &len), 0);
  ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_session_duplicate_id_and_busy) {
  struct fake *f = connected();

  feed_range(f, FSP_OP_GET, 1, "a", 0, 1);
  feed_range(f, FSP_OP_HASH, 1, "b", 0, 1);
  /* On id 0: an ERROR on id 1 would end the GET in the client's eyes. */
  expect_error(f, 0, FSP_ST_PROTOCOL);
  ck_assert_int_eq(f->nstarted, 1);
  for (uint32_t id = 2; id <= FSD_MAX_INFLIGHT; id++)
    feed_range(f, FSP_OP_GET, id, "a", 0, 1);
  ck_assert_int_eq(f->nstarted, FSD_MAX_INFLIGHT);
  expect_nothing(f);
  feed_range(f, FSP_OP_GET, 1000, "a", 0, 1);
  expect_error(f, 1000, FSP_ST_BUSY);
  /* PING is not a request: still answered. */
  feed_simple(f, FSP_OP_PING, 1001);
  expect_op(f, FSP_OP_PONG, 1001, NULL);
  fake_free(f);
}
END_TEST

/* Regression: with 64 requests in flight, PUT, GET, LIST, HASH and DELETE
 * got BUSY while STAT, SUBSCRIBE, UNSUBSCRIBE and NOTICE were answered. One
 * rule now: any request over the limit is BUSY. */
START_TEST(test_session_busy_is_one_rule_for_every_request) {
  static const uint8_t ops[] = {
      FSP_OP_LIST,      FSP_OP_STAT,        FSP_OP_DELETE,
      FSP_OP_GET,       FSP_OP_PUT,         FSP_OP_HASH,
      FSP_OP_SUBSCRIBE, FSP_OP_UNSUBSCRIBE, FSP_OP_NOTICE};
  struct fake *f = connected();
  struct fsp_msg m;
  uint64_t off, len;

  fsd_register_set(&ctx.reg, "a", 1, 1, 1);
  for (uint32_t id = 1; id <= FSD_MAX_INFLIGHT; id++)
    feed_range(f, FSP_OP_GET, id, "a", 0, 1);
  for (size_t i = 0; i < sizeof(ops); i++) {
    uint32_t id = 500 + (uint32_t)i;
    memset(&m, 0, sizeof(m));
    m.op = ops[i];
    m.id = id;
    m.u.name.ptr = "a"; /* STAT, DELETE */
    m.u.name.len = 1;
    if (ops[i] == FSP_OP_GET || ops[i] == FSP_OP_HASH) {
      m.u.range.name.ptr = "a";
      m.u.range.name.len = 1;
    } else if (ops[i] == FSP_OP_PUT) {
      m.u.put.name.ptr = "a";
      m.u.put.name.len = 1;
    } else if (ops[i] == FSP_OP_NOTICE) {
      m.u.text.ptr = "hi";
      m.u.text.len = 2;
    } else if (ops[i] == FSP_OP_SUBSCRIBE || ops[i] == FSP_OP_UNSUBSCRIBE ||
               ops[i] == FSP_OP_LIST) {
      memset(&m.u, 0, sizeof(m.u));
    }
    feed_msg(f, &m);
    expect_error(f, id, FSP_ST_BUSY);
  }
  ck_assert_int_eq(f->nstarted, FSD_MAX_INFLIGHT);
  /* The refused SUBSCRIBE subscribed nothing: no event comes. */
  fsd_ctx_update(&ctx, "z", 1, 1, 1, 1);
  expect_nothing(f);
  /* Once one ends, the next request is served. */
  ck_assert_int_eq(
      fsd_session_get_begin(&f->s, f->started[0], 1, 1, &off, &len), 0);
  fsd_session_get_end(&f->s, f->started[0], 1, 0);
  expect_op(f, FSP_OP_BEGIN, 1, NULL);
  expect_op(f, FSP_OP_END, 1, NULL);
  feed_name(f, FSP_OP_STAT, 600, "a");
  expect_op(f, FSP_OP_INFO, 600, NULL);
  fake_free(f);
}
END_TEST

/* Regression: a CANCEL with a 1-byte payload naming a running GET drew an
 * ERROR with the GET's id, and the GET then went on to its END: two final
 * frames for one request. */
START_TEST(test_session_malformed_cancel_ends_no_request) {
  struct fake *f = connected();
  uint8_t frame[FSP_HDR_LEN + 1];
  uint64_t off, len;

  feed_range(f, FSP_OP_GET, 3, "a", 0, 1);
  fsp_header_write(frame, FSP_OP_CANCEL, 3, 1);
  frame[FSP_HDR_LEN] = 0;
  feed_bytes(f, frame, sizeof(frame), sizeof(frame));
  expect_error(f, 0, FSP_ST_BAD_REQUEST);
  ck_assert_int_eq(f->naborted, 0);
  ck_assert_int_eq(
      fsd_session_get_begin(&f->s, f->started[0], 1, 1, &off, &len), 0);
  fsd_session_get_end(&f->s, f->started[0], 1, 0);
  expect_op(f, FSP_OP_BEGIN, 3, NULL);
  expect_op(f, FSP_OP_END, 3, NULL);
  expect_nothing(f);
  fake_free(f);
}
END_TEST

/* Every ERROR with a non-zero id is the final frame of that request: bad
 * frames that are not requests, sent with the id of a running one, are
 * answered on id 0 and leave it running. */
START_TEST(test_session_stray_frames_never_end_a_request) {
  struct fake *f = connected();
  uint8_t ping[FSP_HDR_LEN + FSP_PING_MAX + 1];
  struct fsd_req *get, *put;
  uint64_t off, len;

  feed_range(f, FSP_OP_GET, 3, "a", 0, 1);
  get = f->started[0];
  feed_data(f, 3, "x", 1); /* DATA for a GET */
  expect_error(f, 0, FSP_ST_PROTOCOL);
  feed_end(f, 3, 0, 0); /* END for a GET */
  expect_error(f, 0, FSP_ST_PROTOCOL);
  feed_name(f, FSP_OP_STAT, 3, "a"); /* id in flight */
  expect_error(f, 0, FSP_ST_PROTOCOL);
  feed_simple(f, FSP_OP_OK, 3); /* server-only */
  expect_error(f, 0, FSP_ST_PROTOCOL);
  fsp_header_write(ping, FSP_OP_PING, 3, FSP_PING_MAX + 1);
  memset(ping + FSP_HDR_LEN, 'p', FSP_PING_MAX + 1);
  feed_bytes(f, ping, sizeof(ping), sizeof(ping)); /* over-long PING */
  expect_error(f, 0, FSP_ST_BAD_REQUEST);
  ck_assert_int_eq(f->naborted, 0);
  ck_assert_int_eq(fsd_session_get_begin(&f->s, get, 1, 1, &off, &len), 0);
  fsd_session_get_end(&f->s, get, 1, 0);
  expect_op(f, FSP_OP_BEGIN, 3, NULL);
  expect_op(f, FSP_OP_END, 3, NULL);

  /* A second END while the upload commits: its INFO still ends it. */
  put = NULL;
  feed_put(f, 4, "p", 1, FSP_PUT_REPLACE);
  put = f->started[1];
  fsd_session_put_ready(&f->s, put);
  expect_op(f, FSP_OP_READY, 4, NULL);
  feed_data(f, 4, "x", 1);
  feed_end(f, 4, 1, XXH3_64bits("x", 1));
  ck_assert_ptr_eq(f->committed, put);
  feed_end(f, 4, 1, XXH3_64bits("x", 1));
  expect_error(f, 0, FSP_ST_PROTOCOL);
  fsd_session_put_done(&f->s, put, &(struct fsd_stamp){1, 9, 1, 9});
  expect_op(f, FSP_OP_INFO, 4, NULL);
  expect_nothing(f);
  fake_free(f);
}
END_TEST

/* Regression: a HELLO announcing max_payload 1,000 was accepted, and the
 * client then got 64 KiB DATA frames. It is malformed: BAD_REQUEST, and
 * the connection closes as after any bad first HELLO. */
START_TEST(test_session_hello_below_min_payload_refused) {
  static const uint32_t bad[] = {1000, FSP_MIN_PAYLOAD - 1, 0,
                                 FSP_MAX_PAYLOAD + 1};

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct fake *f = fake_new();
    uint8_t frame[FSP_HDR_LEN + 20];

    memset(frame, 0, sizeof(frame));
    fsp_header_write(frame, FSP_OP_HELLO, 0, 20);
    frame[FSP_HDR_LEN + 1] = 1; /* version 1 */
    frame[FSP_HDR_LEN + 4] = (uint8_t)(bad[i] >> 24);
    frame[FSP_HDR_LEN + 5] = (uint8_t)(bad[i] >> 16);
    frame[FSP_HDR_LEN + 6] = (uint8_t)(bad[i] >> 8);
    frame[FSP_HDR_LEN + 7] = (uint8_t)bad[i];
    feed_bytes(f, frame, sizeof(frame), sizeof(frame));
    expect_error(f, 0, FSP_ST_BAD_REQUEST);
    expect_nothing(f);
    ck_assert_int_eq(f->closed, 1);
    fake_free(f);
  }
}
END_TEST

/* Regression: a 257-byte HELLO agent got BAD_REQUEST, a 4,097-byte NOTICE
 * TOO_LARGE. One rule: a field over its limit is a malformed payload. */
START_TEST(test_session_overlong_fields_are_bad_request) {
  struct fake *f = connected();
  static uint8_t frame[FSP_HDR_LEN + FSP_NOTICE_MAX + 1];
  uint8_t hello[FSP_HDR_LEN + 20 + FSP_AGENT_MAX + 1];

  fsp_header_write(frame, FSP_OP_NOTICE, 7, FSP_NOTICE_MAX + 1);
  memset(frame + FSP_HDR_LEN, 'n', FSP_NOTICE_MAX + 1);
  feed_bytes(f, frame, sizeof(frame), sizeof(frame));
  expect_error(f, 7, FSP_ST_BAD_REQUEST);
  ck_assert_int_eq(f->closed, 0);
  fake_free(f);

  f = fake_new();
  memset(hello, 'a', sizeof(hello));
  fsp_header_write(hello, FSP_OP_HELLO, 0, 20 + FSP_AGENT_MAX + 1);
  memset(hello + FSP_HDR_LEN, 0, 20);
  hello[FSP_HDR_LEN + 1] = 1;
  hello[FSP_HDR_LEN + 5] = 1; /* max_payload 65536 */
  feed_bytes(f, hello, sizeof(hello), sizeof(hello));
  expect_error(f, 0, FSP_ST_BAD_REQUEST);
  ck_assert_int_eq(f->closed, 1);
  fake_free(f);
}
END_TEST

START_TEST(test_session_put_flow_and_event) {
  struct fake *f = connected();
  struct fake *sub = connected();
  static uint8_t data[300000];
  struct fsp_msg m;
  struct fsd_req *r;

  for (size_t i = 0; i < sizeof(data); i++)
    data[i] = (uint8_t)(i * 7);
  feed_simple(sub, FSP_OP_SUBSCRIBE, 1);
  expect_op(sub, FSP_OP_SUBSCRIBED, 1, &m);
  ck_assert_uint_eq(m.u.sub.epoch, 77);
  ck_assert_uint_eq(m.u.sub.seq, 0);

  feed_put(f, 4, "new.bin", sizeof(data), FSP_PUT_REPLACE);
  ck_assert_int_eq(f->nstarted, 1);
  r = f->started[0];
  ck_assert_uint_eq(r->opcode, FSP_OP_PUT);
  expect_nothing(f);
  fsd_session_put_ready(&f->s, r);
  expect_op(f, FSP_OP_READY, 4, NULL);
  feed_data(f, 4, data, 100000);
  feed_data(f, 4, data + 100000, sizeof(data) - 100000);
  ck_assert_uint_eq(f->written, sizeof(data));
  ck_assert_ptr_null(f->committed);
  feed_end(f, 4, sizeof(data), XXH3_64bits(data, sizeof(data)));
  ck_assert_ptr_eq(f->committed, r);
  expect_nothing(f);
  fsd_session_put_done(&f->s, r,
                       &(struct fsd_stamp){sizeof(data), 1234, 10, 1234});
  expect_op(f, FSP_OP_INFO, 4, &m);
  ck_assert_uint_eq(m.u.entry.size, sizeof(data));
  ck_assert_ptr_nonnull(fsd_register_get(&ctx.reg, "new.bin", 7));
  expect_op(sub, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.seq, 1);
  ck_assert_uint_eq(m.u.event.kind, FSP_EV_ADDED);
  ck_assert_uint_eq(m.u.event.file.size, sizeof(data));
  ck_assert_mem_eq(m.u.event.file.name.ptr, "new.bin", 7);
  fake_free(f);
  fake_free(sub);
}
END_TEST

/* Regression: a commit with the size and mtime of the one before it (the
 * file system's clock ticks coarsely) gave no event. Each commit is a new
 * inode: one event each, in commit order. When the folder watcher saw the
 * new file first, it told the event and the commit adds none. */
START_TEST(test_session_each_commit_is_one_event) {
  struct fake *f = connected();
  struct fake *sub = connected();
  struct fsp_msg m;

  feed_simple(sub, FSP_OP_SUBSCRIBE, 1);
  expect_op(sub, FSP_OP_SUBSCRIBED, 1, NULL);
  for (uint32_t i = 0; i < 5; i++) {
    struct fsd_stamp st = {3, 1700000000000000000, 100 + i,
                           1700000000000000000};
    struct fsd_req *r;

    f->next_off = 0; /* each upload writes from offset 0 */
    feed_put(f, 7, "same", 3, FSP_PUT_REPLACE);
    r = f->started[f->nstarted - 1];
    fsd_session_put_ready(&f->s, r);
    expect_op(f, FSP_OP_READY, 7, NULL);
    feed_data(f, 7, "abc", 3);
    feed_end(f, 7, 3, XXH3_64bits("abc", 3));
    ck_assert_ptr_eq(f->committed, r);
    if (i == 3) /* the watcher's stat saw this commit's file first */
      ck_assert_int_eq(fsd_ctx_put(&ctx, "same", 4, &st), FSP_EV_REPLACED);
    fsd_session_put_done(&f->s, r, &st);
    expect_op(f, FSP_OP_INFO, 7, NULL);
    expect_op(sub, FSP_OP_EVENT, 0, &m);
    ck_assert_uint_eq(m.u.event.seq, i + 1);
    ck_assert_uint_eq(m.u.event.kind, i == 0 ? FSP_EV_ADDED : FSP_EV_REPLACED);
    ck_assert_uint_eq(m.u.event.file.size, 3);
    ck_assert_int_eq(m.u.event.file.mtime_ns, st.mtime_ns);
    expect_nothing(sub);
  }
  fake_free(f);
  fake_free(sub);
}
END_TEST

/* A malformed END fails the upload: BAD_REQUEST is its final frame, and
 * nothing is committed. */
START_TEST(test_session_malformed_end_fails_upload) {
  struct fake *f = connected();
  uint8_t end[FSP_HDR_LEN + 3];
  struct fsd_req *r = ready_put(f, 4, "x", 1);

  feed_data(f, 4, "a", 1);
  fsp_header_write(end, FSP_OP_END, 4, 3);
  memset(end + FSP_HDR_LEN, 0, 3);
  feed_bytes(f, end, sizeof(end), sizeof(end));
  ck_assert_int_eq(f->naborted, 1);
  ck_assert_ptr_null(f->committed);
  f->aborted[0] = NULL;
  fsd_session_aborted(&f->s, r);
  expect_error(f, 4, FSP_ST_BAD_REQUEST);
  expect_nothing(f);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  fake_free(f);
}
END_TEST

START_TEST(test_session_put_checksum_mismatch) {
  struct fake *f = connected();
  struct fsd_req *r;

  r = ready_put(f, 4, "x", 3);
  feed_data(f, 4, "abc", 3);
  feed_end(f, 4, 3, XXH3_64bits("abd", 3));
  ck_assert_ptr_null(f->committed);
  ck_assert_int_eq(f->naborted, 1);
  ck_assert_ptr_eq(f->aborted[0], r);
  expect_nothing(f); /* the error waits until the temp file is gone */
  f->aborted[0] = NULL;
  fsd_session_aborted(&f->s, r);
  expect_error(f, 4, FSP_ST_CHECKSUM);
  ck_assert_ptr_null(fsd_register_get(&ctx.reg, "x", 1));
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  fake_free(f);
}
END_TEST

START_TEST(test_session_put_short_is_size) {
  struct fake *f = connected();
  struct fsd_req *r;

  r = ready_put(f, 4, "x", 5);
  feed_data(f, 4, "abc", 3);
  feed_end(f, 4, 3, XXH3_64bits("abc", 3));
  ck_assert_int_eq(f->naborted, 1);
  f->aborted[0] = NULL;
  fsd_session_aborted(&f->s, r);
  expect_error(f, 4, FSP_ST_SIZE);
  fake_free(f);
}
END_TEST

/* More DATA than declared fails at once; the rest the client already sent
 * is swallowed quietly, and the id can be reused. */
START_TEST(test_session_put_too_much_data) {
  struct fake *f = connected();
  struct fsd_req *r;

  r = ready_put(f, 4, "x", 3);
  feed_data(f, 4, "abcdef", 6);
  ck_assert_int_eq(f->naborted, 1);
  f->aborted[0] = NULL;
  fsd_session_aborted(&f->s, r);
  expect_error(f, 4, FSP_ST_SIZE);
  feed_data(f, 4, "more", 4);
  feed_data(f, 4, "more", 4);
  expect_nothing(f);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 0);
  feed_end(f, 4, 3, 0);
  expect_nothing(f);
  /* After END the id is free; DATA for it is now out of sequence (on id
   * 0: the client may have reused id 4 already). */
  feed_data(f, 4, "z", 1);
  expect_error(f, 0, FSP_ST_PROTOCOL);
  fake_free(f);
}
END_TEST

START_TEST(test_session_put_no_clobber_seen_in_register) {
  struct fake *f = connected();

  fsd_register_set(&ctx.reg, "there", 5, 1, 1);
  feed_put(f, 4, "there", 1, FSP_PUT_NO_CLOBBER);
  expect_error(f, 4, FSP_ST_EXISTS);
  ck_assert_int_eq(f->nstarted, 0);
  feed_put(f, 5, "there", 1, FSP_PUT_REPLACE);
  ck_assert_int_eq(f->nstarted, 1);
  fake_free(f);
}
END_TEST

START_TEST(test_session_data_before_ready) {
  struct fake *f = connected();

  feed_put(f, 4, "x", 3, FSP_PUT_REPLACE);
  feed_data(f, 4, "abc", 3);
  ck_assert_int_eq(f->naborted, 1);
  ck_assert_uint_eq(f->written, 0);
  f->aborted[0] = NULL;
  fsd_session_aborted(&f->s, f->started[0]);
  expect_error(f, 4, FSP_ST_PROTOCOL);
  fake_free(f);
}
END_TEST

START_TEST(test_session_cancel) {
  struct fake *f = connected();

  feed_range(f, FSP_OP_GET, 3, "a", 0, 1);
  feed_simple(f, FSP_OP_CANCEL, 99); /* not in flight: ignored */
  ck_assert_int_eq(f->naborted, 0);
  feed_simple(f, FSP_OP_CANCEL, 3);
  ck_assert_int_eq(f->naborted, 1);
  feed_simple(f, FSP_OP_CANCEL, 3); /* twice: one abort */
  ck_assert_int_eq(f->naborted, 1);
  expect_nothing(f);
  f->aborted[0] = NULL;
  fsd_session_aborted(&f->s, f->started[0]);
  expect_error(f, 3, FSP_ST_CANCELED);
  fake_free(f);
}
END_TEST

START_TEST(test_session_delete) {
  struct fake *f = connected();
  struct fake *sub = connected();
  struct fsp_msg m;

  feed_name(f, FSP_OP_DELETE, 2, "gone");
  expect_error(f, 2, FSP_ST_NOT_FOUND);
  fsd_register_set(&ctx.reg, "gone", 4, 3, 3);
  feed_simple(sub, FSP_OP_SUBSCRIBE, 1);
  expect_op(sub, FSP_OP_SUBSCRIBED, 1, NULL);
  feed_name(f, FSP_OP_DELETE, 3, "gone");
  ck_assert_int_eq(f->nstarted, 1);
  fsd_session_delete_done(&f->s, f->started[0], 999);
  expect_op(f, FSP_OP_OK, 3, NULL);
  ck_assert_ptr_null(fsd_register_get(&ctx.reg, "gone", 4));
  expect_op(sub, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.kind, FSP_EV_REMOVED);
  ck_assert_int_eq(m.u.event.file.mtime_ns, 999);
  fake_free(f);
  fake_free(sub);
}
END_TEST

START_TEST(test_session_subscribe_replay_and_resync) {
  struct fake *f;
  struct fsp_msg m;

  fsd_ctx_update(&ctx, "a", 1, 1, 1, 1);
  fsd_ctx_update(&ctx, "b", 1, 1, 2, 2);
  fsd_ctx_update(&ctx, "c", 1, 1, 3, 3);

  f = connected();
  m.op = FSP_OP_SUBSCRIBE;
  m.id = 1;
  m.u.sub.epoch = 77;
  m.u.sub.seq = 1;
  feed_msg(f, &m);
  expect_op(f, FSP_OP_SUBSCRIBED, 1, &m);
  ck_assert_uint_eq(m.u.sub.seq, 3);
  expect_op(f, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.seq, 2);
  expect_op(f, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.seq, 3);
  expect_nothing(f);
  /* Subscribing twice is harmless; another epoch means RESYNC. */
  m.op = FSP_OP_SUBSCRIBE;
  m.id = 2;
  m.u.sub.epoch = 78;
  m.u.sub.seq = 3;
  feed_msg(f, &m);
  expect_op(f, FSP_OP_SUBSCRIBED, 2, NULL);
  expect_op(f, FSP_OP_RESYNC, 0, &m);
  ck_assert_uint_eq(m.u.sub.epoch, 77);
  ck_assert_uint_eq(m.u.sub.seq, 3);
  feed_simple(f, FSP_OP_UNSUBSCRIBE, 3);
  expect_op(f, FSP_OP_OK, 3, NULL);
  fsd_ctx_update(&ctx, "d", 1, 1, 4, 4);
  expect_nothing(f);
  feed_simple(f, FSP_OP_UNSUBSCRIBE, 4); /* not subscribed: OK anyway */
  expect_op(f, FSP_OP_OK, 4, NULL);
  fake_free(f);
}
END_TEST

/* SUBSCRIBED comes first, then the replay or RESYNC: a client that waits
 * for SUBSCRIBED before it reads events loses nothing. A seq is only
 * replayed from with its own epoch: epoch 0 (none known) with since > 0,
 * or a since past the latest seq, is RESYNC. */
START_TEST(test_session_subscribe_edges) {
  struct fake *f;
  struct fsp_msg m;
  static const uint64_t cases[][2] = {{0, 1}, {77, 4}, {78, 1}};

  fsd_ctx_update(&ctx, "a", 1, 1, 1, 1);
  fsd_ctx_update(&ctx, "b", 1, 1, 2, 2);
  fsd_ctx_update(&ctx, "c", 1, 1, 3, 3);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    f = connected();
    memset(&m, 0, sizeof(m));
    m.op = FSP_OP_SUBSCRIBE;
    m.id = 1;
    m.u.sub.epoch = cases[i][0];
    m.u.sub.seq = cases[i][1];
    feed_msg(f, &m);
    expect_op(f, FSP_OP_SUBSCRIBED, 1, &m);
    ck_assert_uint_eq(m.u.sub.seq, 3);
    expect_op(f, FSP_OP_RESYNC, 0, &m);
    ck_assert_uint_eq(m.u.sub.epoch, 77);
    ck_assert_uint_eq(m.u.sub.seq, 3);
    expect_nothing(f);
    fake_free(f);
  }
  /* since = the latest seq: nothing to replay, live from there. */
  f = connected();
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_SUBSCRIBE;
  m.id = 1;
  m.u.sub.epoch = 77;
  m.u.sub.seq = 3;
  feed_msg(f, &m);
  expect_op(f, FSP_OP_SUBSCRIBED, 1, NULL);
  expect_nothing(f);
  fsd_ctx_update(&ctx, "d", 1, 1, 4, 4);
  expect_op(f, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.seq, 4);
  fake_free(f);
}
END_TEST

START_TEST(test_session_subscribe_too_old_is_resync) {
  struct fake *f;
  struct fsp_msg m;
  char name[16];

  for (int i = 0; i < 5000; i++) {
    int n = snprintf(name, sizeof(name), "n%d", i);
    fsd_ctx_update(&ctx, name, (size_t)n, 1, 1, 1);
  }
  f = connected();
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_SUBSCRIBE;
  m.id = 1;
  m.u.sub.epoch = 77;
  m.u.sub.seq = 10;
  feed_msg(f, &m);
  expect_op(f, FSP_OP_SUBSCRIBED, 1, NULL);
  expect_op(f, FSP_OP_RESYNC, 0, NULL);
  expect_nothing(f);
  fake_free(f);
}
END_TEST

START_TEST(test_session_slow_subscriber_coalesces) {
  struct fake *f = connected();
  struct fsp_msg m;

  feed_simple(f, FSP_OP_SUBSCRIBE, 1);
  expect_op(f, FSP_OP_SUBSCRIBED, 1, NULL);
  fsd_ctx_update(&ctx, "a", 1, 1, 1, 1);
  expect_op(f, FSP_OP_EVENT, 0, NULL);
  f->backlog = FSD_SUB_BACKLOG + 1; /* the client stopped reading */
  fsd_ctx_update(&ctx, "b", 1, 1, 1, 1);
  fsd_ctx_update(&ctx, "c", 1, 1, 1, 1);
  fsd_ctx_notify(&ctx, "lost", 4);
  expect_nothing(f);
  f->backlog = 0;
  fsd_session_drained(&f->s);
  expect_op(f, FSP_OP_RESYNC, 0, &m);
  ck_assert_uint_eq(m.u.sub.seq, 3);
  fsd_session_drained(&f->s); /* one RESYNC only */
  expect_nothing(f);
  fsd_ctx_update(&ctx, "d", 1, 1, 1, 1);
  expect_op(f, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.seq, 4);
  fake_free(f);
}
END_TEST

/* A broadcast reaches every subscriber as one frame each, byte for byte the
 * same, up to the longest NOTICE; a subscriber that is behind gets none and
 * later one RESYNC; a session that is not subscribed gets nothing. */
START_TEST(test_session_broadcast_same_bytes_to_all) {
  struct fake *subs[3], *idle = connected(), *slow = connected();
  static char text[FSP_NOTICE_MAX];
  struct fsp_msg m;
  size_t at[3];

  for (int i = 0; i < 3; i++) {
    subs[i] = connected();
    feed_simple(subs[i], FSP_OP_SUBSCRIBE, 1);
    expect_op(subs[i], FSP_OP_SUBSCRIBED, 1, NULL);
  }
  feed_simple(slow, FSP_OP_SUBSCRIBE, 1);
  expect_op(slow, FSP_OP_SUBSCRIBED, 1, NULL);
  slow->backlog = FSD_SUB_BACKLOG + 1;
  for (size_t i = 0; i < sizeof(text); i++)
    text[i] = (char)('a' + i % 26);

  for (int i = 0; i < 3; i++)
    at[i] = subs[i]->outpos;
  fsd_ctx_update(&ctx, "bcast", 5, 1, 42, 7);
  fsd_ctx_notify(&ctx, text, sizeof(text));
  for (int i = 0; i < 3; i++) {
    expect_op(subs[i], FSP_OP_EVENT, 0, &m);
    ck_assert_uint_eq(m.u.event.seq, ctx.seq);
    ck_assert_uint_eq(m.u.event.kind, FSP_EV_ADDED);
    ck_assert_uint_eq(m.u.event.file.size, 42);
    ck_assert_int_eq(m.u.event.file.mtime_ns, 7);
    ck_assert_mem_eq(m.u.event.file.name.ptr, "bcast", 5);
    expect_op(subs[i], FSP_OP_NOTIFY, 0, &m);
    ck_assert_uint_eq(m.u.text.len, sizeof(text));
    ck_assert_mem_eq(m.u.text.ptr, text, sizeof(text));
    expect_nothing(subs[i]);
    ck_assert_uint_eq(subs[i]->outlen - at[i], subs[0]->outlen - at[0]);
    ck_assert_mem_eq(subs[i]->out + at[i], subs[0]->out + at[0],
                     subs[0]->outlen - at[0]);
  }
  expect_nothing(idle);
  expect_nothing(slow);
  slow->backlog = 0;
  fsd_session_drained(&slow->s);
  expect_op(slow, FSP_OP_RESYNC, 0, &m);
  ck_assert_uint_eq(m.u.sub.seq, ctx.seq);
  for (int i = 0; i < 3; i++)
    fake_free(subs[i]);
  fake_free(idle);
  fake_free(slow);
}
END_TEST

START_TEST(test_session_notice_relayed) {
  struct fake *a = connected(), *b = connected(), *c = connected();
  struct fsp_msg m;

  feed_simple(a, FSP_OP_SUBSCRIBE, 1);
  expect_op(a, FSP_OP_SUBSCRIBED, 1, NULL);
  feed_simple(b, FSP_OP_SUBSCRIBE, 1);
  expect_op(b, FSP_OP_SUBSCRIBED, 1, NULL);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_NOTICE;
  m.id = 5;
  m.u.text.ptr = "hi there";
  m.u.text.len = 8;
  feed_msg(b, &m);
  expect_op(a, FSP_OP_NOTIFY, 0, &m);
  ck_assert_mem_eq(m.u.text.ptr, "hi there", 8);
  expect_op(b, FSP_OP_NOTIFY, 0, NULL);
  expect_op(b, FSP_OP_OK, 5, NULL);
  expect_nothing(c);
  fake_free(a);
  fake_free(b);
  fake_free(c);
}
END_TEST

START_TEST(test_session_bye_waits_for_requests) {
  struct fake *f = connected();
  struct fsp_msg m;

  feed_range(f, FSP_OP_GET, 3, "a", 0, 1);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_BYE;
  m.id = 8;
  feed_msg(f, &m);
  ck_assert_int_eq(f->naborted, 1);
  expect_nothing(f);
  ck_assert_int_eq(f->closed, 0);
  /* Nothing after BYE is read. */
  feed_simple(f, FSP_OP_PING, 9);
  expect_nothing(f);
  f->aborted[0] = NULL;
  fsd_session_aborted(&f->s, f->started[0]);
  expect_error(f, 3, FSP_ST_CANCELED);
  expect_op(f, FSP_OP_BYE, 8, &m);
  ck_assert_uint_eq(m.u.error.status, 0);
  ck_assert_int_eq(f->closed, 1);
  fake_free(f);
}
END_TEST

START_TEST(test_session_shutdown_and_timeout) {
  struct fake *f = connected();
  struct fsp_msg m;

  fsd_session_shutdown(&f->s);
  expect_op(f, FSP_OP_BYE, 0, &m);
  ck_assert_uint_eq(m.u.error.status, FSP_ST_SHUTDOWN);
  ck_assert_int_eq(f->closed, 1);
  fake_free(f);

  f = connected();
  ck_assert_int_eq(fsd_session_active(&f->s), 0);
  fsd_session_timeout(&f->s);
  expect_error(f, 0, FSP_ST_TIMEOUT);
  ck_assert_int_eq(f->closed, 1);
  fake_free(f);
}
END_TEST

/* At shutdown every request in flight ends with ERROR SHUTDOWN (or its
 * normal final frame, if the host finished it first), then BYE id 0. */
START_TEST(test_session_shutdown_ends_requests_first) {
  struct fake *f = connected();
  struct fsp_msg m;
  struct fsd_req *put;

  feed_range(f, FSP_OP_GET, 3, "a", 0, 1);
  put = NULL;
  feed_put(f, 4, "b", 1, FSP_PUT_REPLACE);
  put = f->started[1];
  fsd_session_put_ready(&f->s, put);
  expect_op(f, FSP_OP_READY, 4, NULL);
  fsd_session_shutdown(&f->s);
  ck_assert_int_eq(f->naborted, 2);
  expect_nothing(f);
  for (int i = 0; i < 2; i++) {
    struct fsd_req *r = f->aborted[i];
    uint32_t id = r->id;
    f->aborted[i] = NULL;
    fsd_session_aborted(&f->s, r);
    expect_error(f, id, FSP_ST_SHUTDOWN);
  }
  expect_op(f, FSP_OP_BYE, 0, &m);
  ck_assert_uint_eq(m.u.error.status, FSP_ST_SHUTDOWN);
  ck_assert_int_eq(f->closed, 1);
  fake_free(f);
}
END_TEST

/* A commit the host already started completes even when the client goes:
 * the file is in place, so the register must know. */
START_TEST(test_session_close_during_commit) {
  struct fake *f = connected();
  struct fsd_req *r;

  r = ready_put(f, 4, "late", 1);
  feed_data(f, 4, "z", 1);
  feed_end(f, 4, 1, XXH3_64bits("z", 1));
  ck_assert_ptr_eq(f->committed, r);
  fsd_session_close(&f->s);
  ck_assert_int_eq(f->naborted, 0);
  ck_assert_uint_eq(fsd_session_busy(&f->s), 1);
  fsd_session_put_done(&f->s, r, &(struct fsd_stamp){1, 5, 11, 5});
  ck_assert_ptr_nonnull(fsd_register_get(&ctx.reg, "late", 4));
  expect_nothing(f);
  fake_free(f);
}
END_TEST

Suite *session_suite(void) {
  Suite *s = suite_create("session");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_session_hello_reply);
  tcase_add_test(tc, test_session_hello_read_only_cap);
  tcase_add_test(tc, test_session_first_frame_must_be_hello);
  tcase_add_test(tc, test_session_version_zero_refused);
  tcase_add_loop_test(tc, test_session_split_feed, 0, 60);
  tcase_add_test(tc, test_session_unknown_opcode_stays_open);
  tcase_add_test(tc, test_session_broken_framing_closes);
  tcase_add_test(tc, test_session_malformed_and_bad_name);
  tcase_add_test(tc, test_session_out_of_sequence);
  tcase_add_test(tc, test_session_stat_from_register);
  tcase_add_test(tc, test_session_list_in_batches);
  tcase_add_test(tc, test_session_list_empty);
  tcase_add_test(tc, test_session_list_waits_for_backlog);
  tcase_add_test(tc, test_session_list_ends_on_close);
  tcase_add_test(tc, test_session_get_flow);
  tcase_add_test(tc, test_session_range_clamp);
  tcase_add_test(tc, test_session_duplicate_id_and_busy);
  tcase_add_test(tc, test_session_busy_is_one_rule_for_every_request);
  tcase_add_test(tc, test_session_malformed_cancel_ends_no_request);
  tcase_add_test(tc, test_session_stray_frames_never_end_a_request);
  tcase_add_test(tc, test_session_hello_below_min_payload_refused);
  tcase_add_test(tc, test_session_overlong_fields_are_bad_request);
  tcase_add_test(tc, test_session_subscribe_edges);
  tcase_add_test(tc, test_session_put_flow_and_event);
  tcase_add_test(tc, test_session_each_commit_is_one_event);
  tcase_add_test(tc, test_session_malformed_end_fails_upload);
  tcase_add_test(tc, test_session_shutdown_ends_requests_first);
  tcase_add_test(tc, test_session_put_checksum_mismatch);
  tcase_add_test(tc, test_session_put_short_is_size);
  tcase_add_test(tc, test_session_put_too_much_data);
  tcase_add_test(tc, test_session_put_no_clobber_seen_in_register);
  tcase_add_test(tc, test_session_data_before_ready);
  tcase_add_test(tc, test_session_cancel);
  tcase_add_test(tc, test_session_delete);
  tcase_add_test(tc, test_session_subscribe_replay_and_resync);
  tcase_add_test(tc, test_session_subscribe_too_old_is_resync);
  tcase_add_test(tc, test_session_slow_subscriber_coalesces);
  tcase_add_test(tc, test_session_broadcast_same_bytes_to_all);
  tcase_add_test(tc, test_session_notice_relayed);
  tcase_add_test(tc, test_session_bye_waits_for_requests);
  tcase_add_test(tc, test_session_shutdown_and_timeout);
  tcase_add_test(tc, test_session_close_during_commit);
  suite_add_tcase(s, tc);
  return s;
}
