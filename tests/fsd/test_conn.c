/* Connections on a real loopback socket: bytes in through the read callback
 * and the transport to the session, frames out gathered into one write per
 * loop iteration, and a clear error when the output buffer cannot be had. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "host.h"
#include "mem.h"
#include "suites.h"

static uv_loop_t loop;
static struct fsd_ctx ctx;
static struct fsd_net net;
static uv_tcp_t server;
static struct fsd_conn *conn;
static int cfd = -1;

static void on_connection(uv_stream_t *s, int status) {
  ck_assert_int_eq(status, 0);
  conn = fsd_conn_accept(&net, s, &ctx, &fsd_host_ops);
  ck_assert_ptr_nonnull(conn);
  ck_assert_int_eq(fsd_conn_start(conn), 0);
}

static void setup(void) {
  struct sockaddr_in a;
  int len = sizeof(a);

  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(fsd_ctx_init(&ctx, 5), 0);
  fsd_net_init(&net, &loop, NULL, 4, 0);
  uv_tcp_init(&loop, &server);
  uv_ip4_addr("127.0.0.1", 0, &a);
  ck_assert_int_eq(uv_tcp_bind(&server, (struct sockaddr *)&a, 0), 0);
  ck_assert_int_eq(uv_listen((uv_stream_t *)&server, 4, on_connection), 0);
  uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
  cfd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(cfd, 0);
  ck_assert_int_eq(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
  conn = NULL;
  while (conn == NULL)
    uv_run(&loop, UV_RUN_ONCE);
}

static void close_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void teardown(void) {
  fsd_conn_hard_close(conn);
  close(cfd);
  uv_walk(&loop, close_cb, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert(fsd_list_empty(&net.conns)); /* the connection was freed */
  fsd_net_free(&net);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  fsd_ctx_free(&ctx);
}

/* Reads what the client socket holds within a second, up to cap bytes. */
static size_t client_read(uint8_t *buf, size_t cap) {
  struct pollfd p = {.fd = cfd, .events = POLLIN};
  ssize_t n;

  ck_assert_int_eq(poll(&p, 1, 1000), 1);
  n = recv(cfd, buf, cap, 0);
  ck_assert_int_gt(n, 0);
  return (size_t)n;
}

START_TEST(test_conn_gathers_frames_into_one_write) {
  uint8_t buf[64];

  ck_assert_int_eq(fsd_conn_send(conn, "abc", 3), 0);
  ck_assert_int_eq(fsd_conn_send(conn, "defg", 4), 0);
  ck_assert_uint_eq(fsd_conn_backlog(conn), 7); /* nothing sent yet */
  uv_run(&loop, UV_RUN_NOWAIT);                 /* the flush check */
  ck_assert_uint_eq(fsd_conn_backlog(conn), 0);
  ck_assert_uint_eq(client_read(buf, sizeof(buf)), 7);
  ck_assert_mem_eq(buf, "abcdefg", 7);
}
END_TEST

START_TEST(test_conn_bytes_in_reach_session_split_anyhow) {
  uint8_t frame[128], buf[256];
  struct fsp_frame f;
  struct fsp_msg m;
  ssize_t n;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = 1;
  m.u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  n = fsp_msg_encode(frame, sizeof(frame), &m);
  ck_assert_int_gt(n, 5);
  /* The HELLO in two reads: the connection keeps the first part. */
  ck_assert_int_eq(send(cfd, frame, 5, 0), 5);
  for (int i = 0; i < 20 && conn->rb == NULL; i++)
    uv_run(&loop, UV_RUN_ONCE);
  ck_assert_ptr_nonnull(conn->rb);
  ck_assert_uint_eq(conn->rb->len, 5);
  ck_assert_int_eq(send(cfd, frame + 5, (size_t)n - 5, 0), n - 5);
  while (conn->sess.state == FSD_SESS_HELLO)
    uv_run(&loop, UV_RUN_ONCE);
  uv_run(&loop, UV_RUN_NOWAIT);
  ck_assert_ptr_null(conn->rb); /* all parsed: an idle connection holds none */
  n = (ssize_t)client_read(buf, sizeof(buf));
  ck_assert_int_eq(fsp_frame_decode(buf, (size_t)n, 0, &f), n);
  ck_assert_uint_eq(f.op, FSP_OP_HELLO);
}
END_TEST

static void *no_malloc(size_t n, void *u) {
  (void)n;
  (void)u;
  return NULL;
}

static void *no_calloc(size_t n, size_t s, void *u) {
  (void)n;
  (void)s;
  (void)u;
  return NULL;
}

static void *no_realloc(void *p, size_t n, void *u) {
  (void)p;
  (void)n;
  (void)u;
  return NULL;
}

static void libc_free(void *p, void *u) {
  (void)u;
  free(p);
}

START_TEST(test_conn_send_without_memory_fails_cleanly) {
  static const struct fsd_mem none = {no_malloc, no_calloc, no_realloc,
                                      libc_free, NULL};
  uint8_t buf[8];

  fsd_mem_set_allocator(&none);
  ck_assert_int_eq(fsd_conn_send(conn, "abc", 3), UV_ENOMEM);
  fsd_mem_set_allocator(NULL);
  ck_assert_uint_eq(fsd_conn_backlog(conn), 0);
  /* The connection goes on once memory is back. */
  ck_assert_int_eq(fsd_conn_send(conn, "xyz", 3), 0);
  uv_run(&loop, UV_RUN_NOWAIT);
  ck_assert_uint_eq(client_read(buf, sizeof(buf)), 3);
  ck_assert_mem_eq(buf, "xyz", 3);
}
END_TEST

Suite *conn_suite(void) {
  Suite *s = suite_create("conn");
  TCase *tc = tcase_create("loopback");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_conn_gathers_frames_into_one_write);
  tcase_add_test(tc, test_conn_bytes_in_reach_session_split_anyhow);
  tcase_add_test(tc, test_conn_send_without_memory_fails_cleanly);
  suite_add_tcase(s, tc);
  return s;
}
