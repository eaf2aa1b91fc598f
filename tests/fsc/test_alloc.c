/* Tests of fsc's handling of failed allocations: client/alloc.c makes the
 * N-th allocation fail, for every N a piece of work makes, and each time
 * the work must fail with a clear error (FSC_ENOMEM, or "not enough
 * memory" on stderr for a command) and give back everything it took. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>
#include <xxhash.h>

#include "alloc.h"
#include "commands.h"
#include "edit.h"
#include "snap.h"
#include "suites.h"
#include "xfer.h"

/* More allocations than any piece of work here makes: a loop that reaches
 * it has stopped failing and ends. */
#define MAX_ALLOCS 5000

static struct fsp_msg event(uint8_t kind, const char *name, uint64_t size) {
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_EVENT;
  m.u.event.kind = kind;
  m.u.event.seq = 1;
  m.u.event.file.name.ptr = name;
  m.u.event.file.name.len = strlen(name);
  m.u.event.file.size = size;
  return m;
}

static void count_change(void *arg, const struct fsp_msg *m) {
  (void)m;
  (*(int *)arg)++;
}

/* A watch's table, its event log and the difference of two tables: every
 * allocation they make may fail. */
static int snap_work(int *changes) {
  struct fsc_snap a, b;
  struct fsc_evlog log;
  char name[16];
  int rc = 0;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&log, 0, sizeof log);
  /* Enough names to grow the tables past their first size. */
  for (int i = 0; i < 100 && rc == 0; i++) {
    snprintf(name, sizeof name, "f%03d", i);
    rc = fsc_snap_set(&a, name, strlen(name), (uint64_t)i, 1);
    if (rc >= 0 && i % 2 == 0)
      rc = fsc_snap_set(&b, name, strlen(name), (uint64_t)i + 1, 1);
    rc = rc < 0 ? rc : 0;
  }
  for (int i = 0; i < 40 && rc == 0; i++) {
    snprintf(name, sizeof name, "e%03d", i);
    struct fsp_msg m = event(FSP_EV_ADDED, name, 3);
    rc = fsc_evlog_add(&log, &m);
  }
  if (rc == 0)
    rc = fsc_evlog_replay(&log, &b);
  if (rc == 0) {
    long n = fsc_snap_diff(&a, &b, 7, count_change, changes);
    rc = n < 0 ? (int)n : 0;
  }
  fsc_evlog_free(&log);
  fsc_snap_free(&a);
  fsc_snap_free(&b);
  return rc;
}

START_TEST(test_alloc_snap_failures_are_clean) {
  int failures = 0;
  for (long n = 0; n < MAX_ALLOCS; n++) {
    int changes = 0;
    fsc_alloc_fail_after(n, 0);
    int rc = snap_work(&changes);
    fsc_alloc_fail_after(-1, 0);
    ck_assert_int_eq(fsc_alloc_live(), 0);
    if (rc == 0) {
      /* Past the last allocation: the whole work succeeded. */
      /* 50 changed, 50 removed, 40 added. */
      ck_assert_int_eq(changes, 140);
      break;
    }
    ck_assert_int_eq(rc, FSC_ENOMEM);
    failures++;
  }
  ck_assert_int_gt(failures, 100);
}
END_TEST

START_TEST(test_alloc_transfer_states_fail_cleanly) {
  struct fsc_get g;
  struct fsc_put p;
  for (long n = 0; n < 2; n++) {
    fsc_alloc_fail_after(n, 0);
    ck_assert_int_eq(fsc_get_init(&g, 0), FSC_ENOMEM);
    fsc_alloc_fail_after(-1, 0);
    ck_assert_ptr_null(g.range);
    ck_assert_ptr_null(g.whole);
  }
  fsc_alloc_fail_after(0, 0);
  ck_assert_int_eq(fsc_put_init(&p, 10, 1u << 20, 1u << 20), FSC_ENOMEM);
  fsc_alloc_fail_after(-1, 0);
  ck_assert_ptr_null(p.hash);
  fsc_put_free(&p);
  ck_assert_int_eq(fsc_get_init(&g, 0), 0);
  fsc_get_free(&g);
}
END_TEST

START_TEST(test_alloc_edit_history_survives) {
  struct fsc_edit e;
  fsc_edit_init(&e);
  const char *line = "ls -l";
  for (const char *c = line; *c; c++)
    fsc_edit_key(&e, (unsigned char)*c);
  ck_assert_int_eq(fsc_edit_key(&e, '\r'), FSC_EDIT_LINE);
  fsc_alloc_fail_after(0, 0);
  /* The line is still taken; only its copy in the history is lost. */
  ck_assert_str_eq(fsc_edit_take(&e), line);
  fsc_alloc_fail_after(-1, 0);
  ck_assert_int_eq(e.nhist, 0);
  fsc_edit_free(&e);
  ck_assert_int_eq(fsc_alloc_live(), 0);
}
END_TEST

/* --- A command against a scripted server --------------------------------- */

#define NAMES 600
/* A download in small DATA frames: many pieces wait for the disk at once,
 * so the queue of pieces grows too. */
#define GET_SIZE (3u << 20)
#define GET_FRAME 8192u

/* Answers the client's HELLO with HELLO, then its first request with the
 * answer script. */
struct server {
  uv_tcp_t listener;
  uv_tcp_t peer;
  uv_write_t write_hello;
  uv_write_t write_answer;
  int accepted;
  uint8_t hello[256];
  size_t hello_len;
  uint8_t *answer;
  size_t answer_len;
  size_t got;
  int sent_hello;
  int sent_answer;
};

struct run {
  struct fsc_app app;
  struct fsc_cmd cmd;
  long fail_at; /* the allocation that fails, counted from the start */
  int status;   /* the command's exit status; -1 until it ends */
  int out;      /* lines on stdout */
  int nomem;    /* lines on stderr saying memory ran out */
  int other;    /* other lines on stderr */
};

static struct server srv;
static struct run cr;

static size_t put_msg(uint8_t *at, size_t cap, const struct fsp_msg *m) {
  ssize_t n = fsp_msg_encode(at, cap, m);
  ck_assert_int_gt(n, 0);
  return (size_t)n;
}

/* The version the scripted server announces. */
static unsigned hello_version = 1;

static void build_hello(void) {
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_HELLO;
  m.u.hello.version = (uint16_t)hello_version;
  m.u.hello.max_payload = 1048576;
  m.u.hello.max_inflight = 64;
  m.u.hello.agent.ptr = "script";
  m.u.hello.agent.len = 6;
  srv.hello_len = put_msg(srv.hello, sizeof srv.hello, &m);
}

/* NAMES entries in three ENTRIES frames and OK, for LIST (id 1). */
static void build_ls_answer(void) {
  size_t cap = 64 * 1024, len = 0;
  uint8_t *s = malloc(cap);
  ck_assert_ptr_nonnull(s);
  for (int f = 0; f < 3; f++) {
    struct fsp_entries_builder b;
    ck_assert_int_eq(fsp_entries_begin(&b, s + len, cap - len, 1), 0);
    for (int i = 0; i < NAMES / 3; i++) {
      char name[16];
      snprintf(name, sizeof name, "f%04d", f * (NAMES / 3) + i);
      struct fsp_entry e = {1, 1, {name, strlen(name)}, 0};
      ck_assert_int_eq(fsp_entries_add(&b, &e), 0);
    }
    len += fsp_entries_finish(&b);
  }
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_OK;
  m.id = 1;
  len += put_msg(s + len, cap - len, &m);
  srv.answer = s;
  srv.answer_len = len;
}

/* A version 3 recursive LIST's answer (id 1): folders only, nested. */
static const char *const tree_folders[] = {"a", "a/b", "a/b/c", "d", "e"};

static void build_tree_answer(void) {
  size_t cap = 4096, len = 0;
  uint8_t *s = malloc(cap);
  ck_assert_ptr_nonnull(s);
  struct fsp_entries_builder b;
  ck_assert_int_eq(fsp_entries_begin_v(&b, s, cap, 1, 3), 0);
  for (size_t i = 0; i < sizeof tree_folders / sizeof tree_folders[0]; i++) {
    struct fsp_entry e = {
        0, 1, {tree_folders[i], strlen(tree_folders[i])}, FSP_TYPE_FOLDER};
    ck_assert_int_eq(fsp_entries_add(&b, &e), 0);
  }
  len += fsp_entries_finish(&b);
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_OK;
  m.id = 1;
  len += put_msg(s + len, cap - len, &m);
  srv.answer = s;
  srv.answer_len = len;
}

/* OK for request 1: the MKDIR of put -r's one empty folder. */
static void build_ok_answer(void) {
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_OK;
  m.id = 1;
  srv.answer = malloc(64);
  ck_assert_ptr_nonnull(srv.answer);
  srv.answer_len = put_msg(srv.answer, 64, &m);
}

static uint8_t pattern(size_t i) {
  return (uint8_t)(i * 7u + (i >> 10));
}

/* BEGIN, GET_SIZE bytes in DATA frames and END, for GET (id 1). */
static void build_get_answer(void) {
  size_t cap = GET_SIZE + (GET_SIZE / GET_FRAME + 8) * 64, len = 0;
  uint8_t *s = malloc(cap);
  uint8_t *data = malloc(GET_SIZE);
  ck_assert_ptr_nonnull(s);
  ck_assert_ptr_nonnull(data);
  for (size_t i = 0; i < GET_SIZE; i++)
    data[i] = pattern(i);
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_BEGIN;
  m.id = 1;
  m.u.begin.length = GET_SIZE;
  m.u.begin.file_size = GET_SIZE;
  len += put_msg(s + len, cap - len, &m);
  for (size_t off = 0; off < GET_SIZE; off += GET_FRAME) {
    fsp_header_write(s + len, FSP_OP_DATA, 1, GET_FRAME);
    len += FSP_HDR_LEN;
    memcpy(s + len, data + off, GET_FRAME);
    len += GET_FRAME;
  }
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_END;
  m.id = 1;
  m.u.end.size = GET_SIZE;
  m.u.end.hash = XXH3_64bits(data, GET_SIZE);
  len += put_msg(s + len, cap - len, &m);
  free(data);
  srv.answer = s;
  srv.answer_len = len;
}

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char mem[4096];
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(mem, sizeof mem);
}

static void srv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread <= 0)
    return;
  srv.got += (size_t)nread;
  /* The client's HELLO is 12 + 29 bytes; anything after it is the
   * request, which the answer must not overtake. */
  if (!srv.sent_hello && srv.got >= 41) {
    srv.sent_hello = 1;
    uv_buf_t b = uv_buf_init((char *)srv.hello, (unsigned)srv.hello_len);
    ck_assert_int_eq(uv_write(&srv.write_hello, s, &b, 1, NULL), 0);
  }
  if (!srv.sent_answer && srv.got > 41) {
    srv.sent_answer = 1;
    uv_buf_t b = uv_buf_init((char *)srv.answer, (unsigned)srv.answer_len);
    ck_assert_int_eq(uv_write(&srv.write_answer, s, &b, 1, NULL), 0);
  }
}

static void on_connection(uv_stream_t *l, int status) {
  ck_assert_int_eq(status, 0);
  uv_tcp_init(l->loop, &srv.peer);
  ck_assert_int_eq(uv_accept(l, (uv_stream_t *)&srv.peer), 0);
  srv.accepted = 1;
  uv_read_start((uv_stream_t *)&srv.peer, srv_alloc, srv_read);
}

static int start_server(uv_loop_t *loop) {
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = sizeof bound;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_init(loop, &srv.listener);
  ck_assert_int_eq(
      uv_tcp_bind(&srv.listener, (const struct sockaddr *)&addr, 0), 0);
  ck_assert_int_eq(uv_listen((uv_stream_t *)&srv.listener, 4, on_connection),
                   0);
  uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&bound, &len);
  return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void app_print(struct fsc_app *a, int to_err, const char *line) {
  (void)a;
  if (!to_err)
    cr.out++;
  else if (strstr(line, uv_strerror(UV_ENOMEM)) != NULL)
    cr.nomem++;
  else
    cr.other++;
}

static void app_done(struct fsc_app *a, int status) {
  cr.status = status;
  fsc_alloc_fail_after(-1, 0);
  fsc_conn_close(&a->conn);
}

static void on_ready(struct fsc_conn *c, int status) {
  ck_assert_int_eq(status, 0);
  /* From here on, allocations count: the command's, and the connection's
   * as it reads the answers. */
  fsc_alloc_fail_after(cr.fail_at, 0);
  int rc = fsc_command_start(&cr.app, &cr.cmd);
  if (rc != 0) {
    cr.status = rc;
    fsc_alloc_fail_after(-1, 0);
    fsc_conn_close(c);
  }
}

static void on_lost(struct fsc_conn *c, int err) {
  (void)c;
  fsc_run_conn_lost(&cr.app, err);
}

static void on_closed(struct fsc_conn *c) {
  (void)c;
  uv_close((uv_handle_t *)&srv.listener, NULL);
  if (srv.accepted)
    uv_close((uv_handle_t *)&srv.peer, NULL);
}

/* Runs cmd once against the scripted answer (which it frees) with
 * allocation fail_at failing. */
static void run_cmd(const struct fsc_cmd *cmd, void (*build)(void),
                    long fail_at) {
  uv_loop_t loop;
  char server[64];
  memset(&srv, 0, sizeof srv);
  memset(&cr, 0, sizeof cr);
  build_hello();
  build();
  cr.cmd = *cmd;
  cr.fail_at = fail_at;
  cr.status = -1;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  cr.app.loop = &loop;
  cr.app.server = server;
  cr.app.print = app_print;
  cr.app.on_done = app_done;
  cr.app.conn.on_ready = on_ready;
  cr.app.conn.on_lost = on_lost;
  cr.app.conn.on_closed = on_closed;
  snprintf(server, sizeof server, "127.0.0.1:%d", start_server(&loop));
  ck_assert_int_eq(fsc_conn_open(&cr.app.conn, &loop, server), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  fsc_alloc_fail_after(-1, 0);
  fsc_rblock_trim();
  free(srv.answer);
}

START_TEST(test_alloc_ls_failures_are_clean) {
  static char *args[] = {NULL};
  struct fsc_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.kind = FSC_CMD_LS;
  cmd.args = args;
  int failures = 0;
  for (long n = 0; n < MAX_ALLOCS; n++) {
    run_cmd(&cmd, build_ls_answer, n);
    ck_assert_int_eq(fsc_alloc_live(), 0);
    if (cr.status == FSC_EXIT_OK) {
      /* Past the last allocation: the whole listing came out. */
      ck_assert_int_eq(cr.out, NAMES);
      ck_assert_int_eq(cr.nomem + cr.other, 0);
      break;
    }
    failures++;
    /* The connection's read buffer failed: the connection is lost, and
     * the owner says so. Otherwise the command says why, and prints no
     * half listing. */
    if (cr.status == FSC_EXIT_CONN) {
      ck_assert_int_ne(cr.app.conn.err, 0);
      continue;
    }
    ck_assert_int_eq(cr.status, FSC_EXIT_FAIL);
    ck_assert_int_eq(cr.nomem, 1);
    ck_assert_int_eq(cr.other, 0);
    ck_assert_int_eq(cr.out, 0);
  }
  ck_assert_int_gt(failures, NAMES);
}
END_TEST

/* Files in dir other than . and .., with the name of the last one. */
static int files_in(const char *dir, char *last, size_t cap) {
  uv_fs_t req;
  uv_dirent_t ent;
  int n = 0;
  ck_assert_int_ge(uv_fs_scandir(NULL, &req, dir, 0, NULL), 0);
  while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
    snprintf(last, cap, "%s", ent.name);
    n++;
  }
  uv_fs_req_cleanup(&req);
  return n;
}

/* The downloaded file holds the pattern. (One assertion for the whole
 * file: Check records every assertion it passes.) */
static void check_download(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  uint8_t *buf = malloc(GET_SIZE + 1);
  ck_assert_ptr_nonnull(buf);
  size_t n = fread(buf, 1, GET_SIZE + 1, f);
  fclose(f);
  size_t bad = 0;
  for (size_t i = 0; i < n; i++)
    bad += buf[i] != pattern(i);
  free(buf);
  ck_assert_uint_eq(n, GET_SIZE);
  ck_assert_uint_eq(bad, 0);
}

START_TEST(test_alloc_get_failures_are_clean) {
  char dir[] = "/tmp/fsc-alloc-XXXXXX", out[64], last[256];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  static char *args[] = {"big.bin", NULL};
  struct fsc_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.kind = FSC_CMD_GET;
  cmd.args = args;
  cmd.nargs = 1;
  cmd.out = dir;
  int failures = 0;
  for (long n = 0; n < MAX_ALLOCS; n++) {
    run_cmd(&cmd, build_get_answer, n);
    ck_assert_int_eq(fsc_alloc_live(), 0);
    int files = files_in(dir, last, sizeof last);
    if (cr.status == FSC_EXIT_OK) {
      /* Past the last allocation: the file is whole, and alone. */
      ck_assert_int_eq(files, 1);
      ck_assert_str_eq(last, "big.bin");
      snprintf(out, sizeof out, "%s/big.bin", dir);
      check_download(out);
      ck_assert_int_eq(unlink(out), 0);
      break;
    }
    failures++;
    /* No temporary file is left behind, and no half download. */
    ck_assert_int_eq(files, 0);
    if (cr.status == FSC_EXIT_CONN) {
      ck_assert_int_ne(cr.app.conn.err, 0);
      continue;
    }
    ck_assert_int_eq(cr.status, FSC_EXIT_FAIL);
    ck_assert_int_eq(cr.nomem, 1);
    ck_assert_int_eq(cr.other, 0);
  }
  ck_assert_int_gt(failures, 5);
  ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* get -r of a tree of folders: every allocation of the listing, the
 * folders' making and the run fails in turn; each time the command says
 * so and gives back all it took, and past the last one the tree is made. */
START_TEST(test_alloc_get_tree_failures_are_clean) {
  char dir[] = "/tmp/fsc-alloc-XXXXXX", cmdline[128], path[128];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  static char *args[] = {"t", NULL};
  struct fsc_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.kind = FSC_CMD_GET;
  cmd.args = args;
  cmd.nargs = 1;
  cmd.out = dir;
  cmd.recursive = 1;
  hello_version = 3;
  snprintf(cmdline, sizeof cmdline, "rm -rf '%s/t'", dir);
  int failures = 0;
  for (long n = 0; n < MAX_ALLOCS; n++) {
    run_cmd(&cmd, build_tree_answer, n);
    ck_assert_int_eq(fsc_alloc_live(), 0);
    if (cr.status == FSC_EXIT_OK) {
      for (size_t i = 0; i < sizeof tree_folders / sizeof tree_folders[0];
           i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/t/%s", dir, tree_folders[i]);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
      }
      ck_assert_int_eq(cr.out, 1); /* "0 files, 0 bytes" */
      ck_assert_int_eq(cr.nomem + cr.other, 0);
      break;
    }
    failures++;
    ck_assert_int_eq(system(cmdline), 0);
    if (cr.status == FSC_EXIT_CONN) {
      ck_assert_int_ne(cr.app.conn.err, 0);
      continue;
    }
    ck_assert_int_eq(cr.status, FSC_EXIT_FAIL);
    ck_assert_int_ge(cr.nomem, 1);
    ck_assert_int_eq(cr.other, 0);
  }
  hello_version = 1;
  ck_assert_int_gt(failures, 3);
  ck_assert_int_eq(system(cmdline), 0);
  ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* put -r of an empty folder (the walk, one MKDIR, the run): every
 * allocation fails in turn, cleanly. */
START_TEST(test_alloc_put_tree_failures_are_clean) {
  char dir[] = "/tmp/fsc-alloc-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  static char *args[1];
  args[0] = dir;
  struct fsc_cmd cmd;
  memset(&cmd, 0, sizeof cmd);
  cmd.kind = FSC_CMD_PUT;
  cmd.args = args;
  cmd.nargs = 1;
  cmd.recursive = 1;
  hello_version = 3;
  int failures = 0;
  for (long n = 0; n < MAX_ALLOCS; n++) {
    run_cmd(&cmd, build_ok_answer, n);
    ck_assert_int_eq(fsc_alloc_live(), 0);
    if (cr.status == FSC_EXIT_OK) {
      ck_assert_int_eq(cr.out, 1); /* "0 files, 0 bytes" */
      ck_assert_int_eq(cr.nomem + cr.other, 0);
      break;
    }
    failures++;
    if (cr.status == FSC_EXIT_CONN) {
      ck_assert_int_ne(cr.app.conn.err, 0);
      continue;
    }
    ck_assert_int_eq(cr.status, FSC_EXIT_FAIL);
    ck_assert_int_ge(cr.nomem, 1);
    ck_assert_int_eq(cr.other, 0);
  }
  hello_version = 1;
  ck_assert_int_gt(failures, 2);
  ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

Suite *alloc_suite(void) {
  Suite *s = suite_create("alloc");
  TCase *tc = tcase_create("alloc");
  tcase_set_timeout(tc, 100);
  tcase_add_test(tc, test_alloc_snap_failures_are_clean);
  tcase_add_test(tc, test_alloc_transfer_states_fail_cleanly);
  tcase_add_test(tc, test_alloc_edit_history_survives);
  tcase_add_test(tc, test_alloc_ls_failures_are_clean);
  tcase_add_test(tc, test_alloc_get_failures_are_clean);
  tcase_add_test(tc, test_alloc_get_tree_failures_are_clean);
  tcase_add_test(tc, test_alloc_put_tree_failures_are_clean);
  suite_add_tcase(s, tc);
  return s;
}
