/* The session in protocol version 3 (protocol.md section 12), driven by a
 * fake host: LIST and STAT answered from the tree register, the checks made
 * before the host runs MKDIR, RENAME and DELETE, subtree subscriptions, and
 * the flat view a version 1 client keeps on the same register. */
#include <fsproto/fsproto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctx.h"
#include "session.h"
#include "suites.h"

#define OUT_CAP (1u << 20)

struct tfake {
  struct fsd_session s;
  uint8_t *out; /* frames the session sent */
  size_t outlen, outpos;
  unsigned version;        /* the version to decode them with */
  struct fsd_req *started; /* the last request handed to the host */
  int nstarted;
};

static struct fsd_ctx ctx;

static int t_send(void *host, const void *frame, size_t len) {
  struct tfake *f = host;
  ck_assert_uint_le(f->outlen + len, OUT_CAP);
  memcpy(f->out + f->outlen, frame, len);
  f->outlen += len;
  return 0;
}

static size_t t_backlog(void *host) {
  (void)host;
  return 0;
}

static void t_close(void *host) {
  (void)host;
}

static void t_start(void *host, struct fsd_req *r) {
  struct tfake *f = host;
  f->started = r;
  f->nstarted++;
}

static void t_abort(void *host, struct fsd_req *r) {
  (void)host;
  fsd_session_aborted(r->s, r);
}

static const struct fsd_host_ops tfake_ops = {
    .send = t_send,
    .backlog = t_backlog,
    .close = t_close,
    .start = t_start,
    .abort = t_abort,
};

static void feed(struct tfake *f, const struct fsp_msg *m) {
  uint8_t buf[FSP_HDR_LEN + 2 * FSP_PATH_MAX + 64];
  ssize_t n = fsp_msg_encode_v(buf, sizeof(buf), f->version, m);
  ck_assert_int_gt(n, 0);
  ck_assert_uint_eq(fsd_session_feed(&f->s, buf, (size_t)n), (size_t)n);
}

/* A session that said HELLO with version. */
static struct tfake *connect_v(unsigned version) {
  struct tfake *f = calloc(1, sizeof(*f));
  struct fsp_msg m;

  f->out = malloc(OUT_CAP);
  f->version = 1;
  fsd_session_init(&f->s, &ctx, &tfake_ops, f);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = (uint16_t)version;
  m.u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  feed(f, &m);
  f->version = version;
  return f;
}

static void tfake_free(struct tfake *f) {
  if (f->started != NULL && fsd_session_busy(&f->s) > 0)
    fsd_session_fail(&f->s, f->started, FSP_ST_IO, NULL);
  fsd_session_close(&f->s);
  free(f->out);
  free(f);
}

static int next_out(struct tfake *f, struct fsp_msg *m) {
  struct fsp_frame fr;
  ssize_t n;

  if (f->outpos == f->outlen)
    return 0;
  n = fsp_frame_decode(f->out + f->outpos, f->outlen - f->outpos,
                       FSP_MAX_PAYLOAD, &fr);
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(fsp_msg_decode_v(&fr, f->version, m), 0);
  f->outpos += (size_t)n;
  return 1;
}

static void expect_op(struct tfake *f, uint8_t op, uint32_t id,
                      struct fsp_msg *m) {
  struct fsp_msg tmp;
  if (m == NULL)
    m = &tmp;
  ck_assert_msg(next_out(f, m), "no frame, expected %s", fsp_op_name(op));
  ck_assert_msg(m->op == op, "got %s, expected %s", fsp_op_name(m->op),
                fsp_op_name(op));
  ck_assert_uint_eq(m->id, id);
}

static void expect_error(struct tfake *f, uint32_t id, uint16_t status) {
  struct fsp_msg m;
  expect_op(f, FSP_OP_ERROR, id, &m);
  ck_assert_msg(m.u.error.status == status, "status %s, expected %s",
                fsp_status_name(m.u.error.status), fsp_status_name(status));
}

static void expect_nothing(struct tfake *f) {
  struct fsp_msg m;
  if (next_out(f, &m))
    ck_abort_msg("unexpected %s", fsp_op_name(m.op));
}

static void tree_req(struct tfake *f, uint8_t op, uint32_t id, uint8_t flags,
                     const char *path) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = op;
  m.id = id;
  m.u.tree.flags = flags;
  m.u.tree.path.ptr = path;
  m.u.tree.path.len = strlen(path);
  feed(f, &m);
}

static void name_req(struct tfake *f, uint8_t op, uint32_t id,
                     const char *name) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = op;
  m.id = id;
  if (op == FSP_OP_GET || op == FSP_OP_HASH) {
    m.u.range.length = FSP_LENGTH_TO_END;
    m.u.range.name.ptr = name;
    m.u.range.name.len = strlen(name);
  } else {
    m.u.name.ptr = name;
    m.u.name.len = strlen(name);
  }
  feed(f, &m);
}

static void rename_req(struct tfake *f, uint32_t id, const char *from,
                       const char *to) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_RENAME;
  m.id = id;
  m.u.rename.from.ptr = from;
  m.u.rename.from.len = strlen(from);
  m.u.rename.to.ptr = to;
  m.u.rename.to.len = strlen(to);
  feed(f, &m);
}

static void file(const char *path, uint64_t size) {
  struct fsd_stamp st = {size, 1700000000000000000, 1, 1};
  ck_assert_int_ge(fsd_ctx_put(&ctx, path, strlen(path), &st), 0);
}

/* photos/, photos/2024/, photos/2024/a.jpg, photos/b.txt, top.txt */
static void setup(void) {
  ck_assert_int_eq(fsd_ctx_init(&ctx, 9), 0);
  file("photos/2024/a.jpg", 5);
  file("photos/b.txt", 3);
  file("top.txt", 1);
}

static void teardown(void) {
  fsd_ctx_free(&ctx);
}

/* The entries of a LIST, "path:type" joined by spaces, up to its OK. */
static void read_list(struct tfake *f, uint32_t id, char *out, size_t cap) {
  size_t len = 0;

  out[0] = '\0';
  for (;;) {
    struct fsp_msg m;
    struct fsp_entry e;
    size_t pos = 0;

    ck_assert(next_out(f, &m));
    ck_assert_uint_eq(m.id, id);
    if (m.op == FSP_OP_OK)
      return;
    ck_assert_uint_eq(m.op, FSP_OP_ENTRIES);
    while (fsp_entries_next(&m, &pos, &e) == 1) {
      int n = snprintf(out + len, cap - len, "%s%.*s:%u", len ? " " : "",
                       (int)e.name.len, e.name.ptr, (unsigned)e.type);
      ck_assert_int_gt(n, 0);
      len += (size_t)n;
      ck_assert_uint_lt(len, cap);
    }
  }
}

START_TEST(test_session_tree_list_recursive_folders_first) {
  struct tfake *f = connect_v(3);
  char got[512];

  expect_op(f, FSP_OP_HELLO, 0, NULL);
  ck_assert_uint_eq(f->s.version, 3);
  tree_req(f, FSP_OP_LIST, 1, FSP_LIST_RECURSIVE, "");
  read_list(f, 1, got, sizeof(got));
  /* Pre-order: each folder before what it holds (siblings in any order). */
  ck_assert_ptr_nonnull(strstr(got, "photos:2"));
  ck_assert(strstr(got, "photos:2") < strstr(got, "photos/2024:2"));
  ck_assert(strstr(got, "photos/2024:2") < strstr(got, "photos/2024/a.jpg:1"));
  ck_assert_ptr_nonnull(strstr(got, "photos/b.txt:1"));
  ck_assert_ptr_nonnull(strstr(got, "top.txt:1"));
  /* Relative to the folder listed; without RECURSIVE one level only. */
  tree_req(f, FSP_OP_LIST, 2, 0, "photos");
  read_list(f, 2, got, sizeof(got));
  ck_assert(strcmp(got, "2024:2 b.txt:1") == 0 ||
            strcmp(got, "b.txt:1 2024:2") == 0);
  tree_req(f, FSP_OP_LIST, 3, 0, "top.txt");
  expect_error(f, 3, FSP_ST_NOT_FOLDER);
  tree_req(f, FSP_OP_LIST, 4, 0, "nope");
  expect_error(f, 4, FSP_ST_NOT_FOUND);
  tree_req(f, FSP_OP_LIST, 5, 0, "top.txt/x");
  expect_error(f, 5, FSP_ST_NOT_FOLDER);
  tfake_free(f);
}
END_TEST

START_TEST(test_session_tree_stat_types) {
  struct tfake *f = connect_v(3);
  struct fsp_msg m;

  expect_op(f, FSP_OP_HELLO, 0, NULL);
  name_req(f, FSP_OP_STAT, 1, "photos/2024");
  expect_op(f, FSP_OP_INFO, 1, &m);
  ck_assert_uint_eq(m.u.entry.type, FSP_TYPE_FOLDER);
  ck_assert_uint_eq(m.u.entry.size, 0);
  name_req(f, FSP_OP_STAT, 2, "photos/2024/a.jpg");
  expect_op(f, FSP_OP_INFO, 2, &m);
  ck_assert_uint_eq(m.u.entry.type, FSP_TYPE_FILE);
  ck_assert_uint_eq(m.u.entry.size, 5);
  name_req(f, FSP_OP_STAT, 3, "top.txt/x");
  expect_error(f, 3, FSP_ST_NOT_FOLDER);
  name_req(f, FSP_OP_GET, 4, "photos");
  expect_error(f, 4, FSP_ST_IS_FOLDER);
  ck_assert_int_eq(f->nstarted, 0);
  tfake_free(f);
}
END_TEST

/* Bad paths never reach the host (protocol.md section 12, "Paths"). */
START_TEST(test_session_tree_bad_paths) {
  static const char *const bad[] = {"a/../../x", "a//b", "/abs",
                                    "a/./b",     "a/",   ".hidden"};
  struct tfake *f = connect_v(3);
  uint8_t buf[64];

  expect_op(f, FSP_OP_HELLO, 0, NULL);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t n = strlen(bad[i]);
    /* Built by hand: the encoder refuses bad paths. */
    fsp_header_write(buf, FSP_OP_MKDIR, 7, (uint32_t)(n + 1));
    buf[FSP_HDR_LEN] = FSP_MKDIR_PARENTS;
    memcpy(buf + FSP_HDR_LEN + 1, bad[i], n);
    ck_assert_uint_eq(fsd_session_feed(&f->s, buf, FSP_HDR_LEN + 1 + n),
                      FSP_HDR_LEN + 1 + n);
    expect_error(f, 7, FSP_ST_BAD_NAME);
    fsp_header_write(buf, FSP_OP_STAT, 8, (uint32_t)n);
    memcpy(buf + FSP_HDR_LEN, bad[i], n);
    ck_assert_uint_eq(fsd_session_feed(&f->s, buf, FSP_HDR_LEN + n),
                      FSP_HDR_LEN + n);
    expect_error(f, 8, FSP_ST_BAD_NAME);
  }
  ck_assert_int_eq(f->nstarted, 0);
  tfake_free(f);
}
END_TEST

START_TEST(test_session_tree_checks_before_the_host) {
  struct tfake *f = connect_v(3);

  expect_op(f, FSP_OP_HELLO, 0, NULL);
  tree_req(f, FSP_OP_MKDIR, 1, 0, "top.txt");
  expect_error(f, 1, FSP_ST_EXISTS);
  tree_req(f, FSP_OP_MKDIR, 2, 0, "photos");
  expect_error(f, 2, FSP_ST_EXISTS);
  tree_req(f, FSP_OP_MKDIR, 3, FSP_MKDIR_PARENTS, "photos");
  expect_op(f, FSP_OP_OK, 3, NULL);
  tree_req(f, FSP_OP_MKDIR, 4, FSP_MKDIR_PARENTS, "top.txt/x/y");
  expect_error(f, 4, FSP_ST_NOT_FOLDER);
  rename_req(f, 5, "photos", "photos/2024/photos");
  expect_error(f, 5, FSP_ST_INTO_SELF);
  rename_req(f, 6, "top.txt", "top.txt");
  expect_op(f, FSP_OP_OK, 6, NULL);
  tree_req(f, FSP_OP_DELETE, 7, 0, "photos");
  expect_error(f, 7, FSP_ST_NOT_EMPTY);
  tree_req(f, FSP_OP_DELETE, 8, 0, "nope");
  expect_error(f, 8, FSP_ST_NOT_FOUND);
  ck_assert_int_eq(f->nstarted, 0);
  /* What the register cannot answer goes to the host. */
  tree_req(f, FSP_OP_DELETE, 9, FSP_DELETE_RECURSIVE, "photos");
  ck_assert_int_eq(f->nstarted, 1);
  ck_assert_uint_eq(f->started->opcode, FSP_OP_DELETE);
  ck_assert_uint_eq(f->started->tree_op, 1);
  ck_assert_uint_eq(f->started->flags, FSP_DELETE_RECURSIVE);
  fsd_session_skipped(&f->s, f->started, FSP_ST_IO, "photos/b.txt", 12);
  fsd_session_fail(&f->s, f->started, FSP_ST_NOT_EMPTY, "1 entries remained");
  f->started = NULL;
  {
    struct fsp_msg m;
    expect_op(f, FSP_OP_SKIPPED, 9, &m);
    ck_assert_uint_eq(m.u.skipped.status, FSP_ST_IO);
    ck_assert_mem_eq(m.u.skipped.path.ptr, "photos/b.txt", 12);
    expect_error(f, 9, FSP_ST_NOT_EMPTY);
  }
  rename_req(f, 10, "top.txt", "photos/t.txt");
  ck_assert_int_eq(f->nstarted, 2);
  ck_assert_str_eq(f->started->name, "top.txt");
  ck_assert_str_eq(f->started->to, "photos/t.txt");
  fsd_session_ok(&f->s, f->started);
  f->started = NULL;
  expect_op(f, FSP_OP_OK, 10, NULL);
  tfake_free(f);
}
END_TEST

/* A version 1 client on the same register: the flat root, and the new
 * opcodes unknown. */
START_TEST(test_session_tree_version_1_flat_view) {
  struct tfake *f = connect_v(1);
  struct fsp_msg m;
  char got[256];

  expect_op(f, FSP_OP_HELLO, 0, &m);
  ck_assert_uint_eq(m.u.hello.version, FSD_PROTO_VERSION);
  ck_assert_uint_eq(f->s.version, 1);
  name_req(f, FSP_OP_LIST, 1, "");
  read_list(f, 1, got, sizeof(got));
  ck_assert_str_eq(got, "top.txt:0");
  name_req(f, FSP_OP_STAT, 2, "photos");
  expect_error(f, 2, FSP_ST_NOT_FOUND);
  name_req(f, FSP_OP_DELETE, 3, "photos");
  expect_error(f, 3, FSP_ST_NOT_FOUND);
  tree_req(f, FSP_OP_MKDIR, 4, 0, "x");
  expect_error(f, 4, FSP_ST_UNKNOWN_OP);
  ck_assert_int_eq(f->nstarted, 0);
  tfake_free(f);
}
END_TEST

static void subscribe(struct tfake *f, uint32_t id, const char *folder) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_SUBSCRIBE;
  m.id = id;
  m.u.sub.path.ptr = folder;
  m.u.sub.path.len = strlen(folder);
  feed(f, &m);
}

START_TEST(test_session_tree_events_per_view) {
  struct tfake *sub = connect_v(3), *old = connect_v(1), *bad = connect_v(3);
  struct fsd_stamp st = {2, 5, 7, 7};
  struct fsp_msg m;

  expect_op(sub, FSP_OP_HELLO, 0, NULL);
  expect_op(old, FSP_OP_HELLO, 0, NULL);
  expect_op(bad, FSP_OP_HELLO, 0, NULL);
  subscribe(bad, 1, "top.txt");
  expect_error(bad, 1, FSP_ST_NOT_FOLDER);
  subscribe(sub, 1, "photos");
  expect_op(sub, FSP_OP_SUBSCRIBED, 1, NULL);
  subscribe(old, 1, "");
  expect_op(old, FSP_OP_SUBSCRIBED, 1, NULL);
  fsd_ctx_put(&ctx, "elsewhere/x", 11, &st);
  fsd_ctx_put(&ctx, "photos/c.txt", 12, &st);
  expect_op(sub, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.kind, FSP_EV_ADDED);
  ck_assert_mem_eq(m.u.event.file.name.ptr, "photos/c.txt", 12);
  expect_nothing(sub);
  expect_nothing(old); /* nothing directly in the root changed */
  /* A rename out of the subtree: one renamed event for the subtree's
   * subscriber; a removal and an addition for version 1, in the root. */
  fsd_ctx_rename(&ctx, "photos/b.txt", 12, "b2.txt", 6, FSP_TYPE_FILE, &st);
  expect_op(sub, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.kind, FSP_EV_RENAMED);
  ck_assert_mem_eq(m.u.event.file.name.ptr, "b2.txt", 6);
  ck_assert_mem_eq(m.u.event.from.ptr, "photos/b.txt", 12);
  expect_op(old, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.kind, FSP_EV_ADDED);
  ck_assert_mem_eq(m.u.event.file.name.ptr, "b2.txt", 6);
  fsd_ctx_rename(&ctx, "b2.txt", 6, "b3.txt", 6, FSP_TYPE_FILE, &st);
  expect_nothing(sub);
  expect_op(old, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.kind, FSP_EV_REMOVED);
  expect_op(old, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.kind, FSP_EV_ADDED);
  /* Removing a folder: its contents first, then the folder. */
  fsd_ctx_remove(&ctx, "photos", 6, 99);
  expect_op(sub, FSP_OP_EVENT, 0, &m);
  ck_assert_uint_eq(m.u.event.kind, FSP_EV_REMOVED);
  ck_assert_uint_ne(m.u.event.file.name.len, 6);
  while (next_out(sub, &m) && m.u.event.file.name.len != 6)
    ck_assert_uint_eq(m.u.event.kind, FSP_EV_REMOVED);
  ck_assert_mem_eq(m.u.event.file.name.ptr, "photos", 6);
  ck_assert_uint_eq(m.u.event.file.type, FSP_TYPE_FOLDER);
  ck_assert_ptr_null(fsd_treereg_get(&ctx.tree, "photos/2024/a.jpg", 17));
  ck_assert_ptr_null(fsd_register_get(&ctx.reg, "photos/2024/a.jpg", 17));
  tfake_free(sub);
  tfake_free(old);
  tfake_free(bad);
}
END_TEST

Suite *session_tree_suite(void) {
  Suite *s = suite_create("session_tree");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_session_tree_list_recursive_folders_first);
  tcase_add_test(tc, test_session_tree_stat_types);
  tcase_add_test(tc, test_session_tree_bad_paths);
  tcase_add_test(tc, test_session_tree_checks_before_the_host);
  tcase_add_test(tc, test_session_tree_version_1_flat_view);
  tcase_add_test(tc, test_session_tree_events_per_view);
  suite_add_tcase(s, tc);
  return s;
}
