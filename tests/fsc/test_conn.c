/* Tests of fsc's connection layer (client/conn.c) against a scripted server
 * on loopback: frames must come out whole and in order however the bytes
 * are cut, DATA payloads must arrive intact through the zero-copy read
 * blocks (including a partial frame carried over into a new block), a
 * server that breaks the framing must end the connection, and a connection
 * that ended can be opened again. */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "conn.h"
#include "suites.h"

#define DATA_TOTAL (2u * 1048576u + 12345u)

/* The scripted server: accepts one client, waits for its HELLO, then sends
 * `script` in writes of `chunk` bytes. */
struct server {
  uv_tcp_t listener;
  uv_tcp_t peer;
  int accepted;
  uint8_t *script;
  size_t script_len;
  size_t chunk;
  size_t got; /* bytes received from the client */
  int sent;
};

struct client {
  struct fsc_conn conn;
  struct fsc_req list;
  struct fsc_req get;
  int ready;
  int entries;  /* entries seen in ENTRIES */
  int list_ok;  /* OK for the LIST came */
  size_t data;  /* DATA bytes for the GET */
  int data_bad; /* a DATA byte differed from the pattern */
  int end_ok;   /* END came after all the data */
  int lost;     /* on_lost ran */
  int closed;
  int order_bad; /* a frame came out of order */
  int hold;      /* keep DATA pieces a while before checking them */
};

static struct server srv;
static struct client cli;
/* The version the scripted server announces (its frames use its layout). */
static unsigned srv_version = 1;
/* Folders among the entries seen. */
static int folders;

static uint8_t pattern(size_t i) {
  return (uint8_t)(i * 31u + (i >> 12));
}

static void let_all_go(void);

static void on_list_msg(struct fsc_req *r, const struct fsp_msg *m) {
  if (m->op == FSP_OP_ENTRIES) {
    size_t pos = 0;
    struct fsp_entry e;
    while (fsp_entries_next(m, &pos, &e) == 1) {
      cli.entries++;
      folders += e.type == FSP_TYPE_FOLDER;
    }
  } else if (m->op == FSP_OP_OK) {
    cli.list_ok = 1;
    fsc_conn_finish(&cli.conn, r);
  }
}

static void on_get_msg(struct fsc_req *r, const struct fsp_msg *m) {
  if (m->op == FSP_OP_END) {
    let_all_go();
    cli.end_ok = cli.data == DATA_TOTAL && m->u.end.size == DATA_TOTAL;
    if (!cli.list_ok)
      cli.order_bad = 1;
    fsc_conn_finish(&cli.conn, r);
    fsc_conn_close(&cli.conn);
  }
}

/* DATA pieces are kept (with a reference on their read block) for a while
 * and checked only when let go, as a download waiting for the disk would:
 * the bytes must stay put while the connection reads on into new blocks. */
#define HELD 16
static struct held {
  struct fsc_rblock *blk;
  const uint8_t *p;
  size_t n;
  size_t off; /* offset of p[0] in the data */
} held[HELD];
static size_t nheld;

static void let_go(struct held *h) {
  for (size_t i = 0; i < h->n; i++)
    if (h->p[i] != pattern(h->off + i))
      cli.data_bad = 1;
  fsc_rblock_unref(h->blk);
}

static void let_all_go(void) {
  for (size_t i = 0; i < nheld; i++)
    let_go(&held[i]);
  nheld = 0;
}

static void on_get_data(struct fsc_req *r, const uint8_t *p, size_t n,
                        struct fsc_rblock *blk) {
  (void)r;
  if (!cli.hold) {
    struct held now = {blk, p, n, cli.data};
    fsc_rblock_ref(blk);
    let_go(&now);
    cli.data += n;
    return;
  }
  if (nheld == HELD) {
    let_go(&held[0]);
    memmove(held, held + 1, (HELD - 1) * sizeof held[0]);
    nheld--;
  }
  fsc_rblock_ref(blk);
  held[nheld].blk = blk;
  held[nheld].p = p;
  held[nheld].n = n;
  held[nheld].off = cli.data;
  nheld++;
  cli.data += n;
}

static void on_req_lost(struct fsc_req *r, int err) {
  (void)r;
  (void)err;
}

static const struct fsc_req_ops list_ops = {on_list_msg, NULL, on_req_lost};
static const struct fsc_req_ops get_ops = {on_get_msg, on_get_data,
                                           on_req_lost};

static void on_ready(struct fsc_conn *c, int status) {
  ck_assert_int_eq(status, 0);
  cli.ready = 1;
  ck_assert_uint_eq(c->peer_max_payload, 1048576);
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_LIST;
  cli.list.ops = &list_ops;
  ck_assert_int_eq(fsc_conn_request(c, &cli.list, &m), 0);
  ck_assert_uint_eq(cli.list.id, 1);
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_GET;
  m.u.range.length = FSP_LENGTH_TO_END;
  m.u.range.name.ptr = "f";
  m.u.range.name.len = 1;
  cli.get.ops = &get_ops;
  ck_assert_int_eq(fsc_conn_request(c, &cli.get, &m), 0);
  ck_assert_uint_eq(cli.get.id, 2);
}

static void on_lost(struct fsc_conn *c, int err) {
  (void)c;
  (void)err;
  let_all_go();
  cli.lost = 1;
}

static void on_closed(struct fsc_conn *c) {
  (void)c;
  cli.closed = 1;
  uv_close((uv_handle_t *)&srv.listener, NULL);
  if (srv.accepted)
    uv_close((uv_handle_t *)&srv.peer, NULL);
}

/* --- The script ----------------------------------------------------------- */

static size_t put_frame(uint8_t *at, const struct fsp_msg *m) {
  ssize_t n = fsp_msg_encode(at, 1u << 21, m);
  ck_assert_int_gt(n, 0);
  return (size_t)n;
}

/* HELLO, an ENTRIES batch and OK for id 1, then DATA frames of up to 1 MiB
 * for id 2 (with a PING and an unknown-id frame mixed in), then END. */
static void build_script(void) {
  size_t cap = DATA_TOTAL + 16 * 300000 + 4096;
  uint8_t *s = malloc(cap);
  size_t len = 0;
  struct fsp_msg m;
  ck_assert_ptr_nonnull(s);

  memset(&m, 0, sizeof m);
  m.op = FSP_OP_HELLO;
  m.u.hello.version = (uint16_t)srv_version;
  m.u.hello.max_payload = 1048576;
  m.u.hello.max_inflight = 64;
  m.u.hello.agent.ptr = "script";
  m.u.hello.agent.len = 6;
  len += put_frame(s + len, &m);

  struct fsp_entries_builder b;
  unsigned v =
      srv_version < FSC_PROTO_VERSION ? srv_version : FSC_PROTO_VERSION;
  ck_assert_int_eq(fsp_entries_begin_v(&b, s + len, cap - len, 1, v), 0);
  struct fsp_entry e = {5, 7, {"a.txt", 5}, FSP_TYPE_FILE};
  ck_assert_int_eq(fsp_entries_add(&b, &e), 0);
  e.name.ptr = "b";
  e.name.len = 1;
  e.type = FSP_TYPE_FOLDER;
  ck_assert_int_eq(fsp_entries_add(&b, &e), 0);
  len += fsp_entries_finish(&b);

  memset(&m, 0, sizeof m);
  m.op = FSP_OP_OK;
  m.id = 1;
  len += put_frame(s + len, &m);

  memset(&m, 0, sizeof m);
  m.op = FSP_OP_PING;
  m.u.text.ptr = "ping";
  m.u.text.len = 4;
  len += put_frame(s + len, &m);

  for (size_t off = 0; off < DATA_TOTAL;) {
    /* Frames of several sizes up to the 1 MiB maximum. */
    size_t want = (off / 7 % 3 + 1) * 349525u;
    size_t n = DATA_TOTAL - off < want ? DATA_TOTAL - off : want;
    fsp_header_write(s + len, FSP_OP_DATA, 2, (uint32_t)n);
    len += FSP_HDR_LEN;
    for (size_t i = 0; i < n; i++)
      s[len + i] = pattern(off + i);
    len += n;
    off += n;
    /* A big frame for a request nobody made (ignored once decoded): big
     * enough that it often straddles two read blocks and has to be carried
     * over into the new one. */
    struct fsp_entries_builder big;
    char name[101];
    memset(name, 'n', 100);
    name[100] = '\0';
    ck_assert_int_eq(fsp_entries_begin_v(&big, s + len, 300000, 99, v), 0);
    for (int k = 0; k < 2000; k++) {
      struct fsp_entry be = {1, 1, {name, 100}, FSP_TYPE_FILE};
      ck_assert_int_eq(fsp_entries_add(&big, &be), 0);
    }
    len += fsp_entries_finish(&big);
  }
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_END;
  m.id = 2;
  m.u.end.size = DATA_TOTAL;
  len += put_frame(s + len, &m);
  srv.script = s;
  srv.script_len = len;
}

struct chunk_write {
  uv_write_t req;
};

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void send_script(void) {
  for (size_t off = 0, n; off < srv.script_len; off += n) {
    /* Small chunks cut the first few thousand writes' worth of bytes
     * (every control frame at the start, and DATA headers), then the bulk
     * goes in ordinary pieces: a million tiny writes would test only
     * patience. */
    size_t want =
        srv.chunk < 4096 && off >= 4096 * srv.chunk ? 65536 : srv.chunk;
    n = srv.script_len - off < want ? srv.script_len - off : want;
    struct chunk_write *w = malloc(sizeof *w);
    ck_assert_ptr_nonnull(w);
    uv_buf_t b = uv_buf_init((char *)srv.script + off, (unsigned)n);
    ck_assert_int_eq(
        uv_write(&w->req, (uv_stream_t *)&srv.peer, &b, 1, on_written), 0);
  }
}

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char mem[65536];
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(mem, sizeof mem);
}

static void srv_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread <= 0)
    return;
  srv.got += (size_t)nread;
  /* The client's HELLO (12 + 29 bytes) is in: answer with the script. The
   * client makes its requests when our HELLO arrives, before it decodes
   * the answers that follow in the same bytes, so they find their
   * requests. */
  if (!srv.sent && srv.got >= 41) {
    srv.sent = 1;
    send_script();
  }
  (void)s;
}

static void on_connection(uv_stream_t *l, int status) {
  ck_assert_int_eq(status, 0);
  uv_tcp_init(l->loop, &srv.peer);
  ck_assert_int_eq(uv_accept(l, (uv_stream_t *)&srv.peer), 0);
  srv.accepted = 1;
  uv_tcp_nodelay(&srv.peer, 1);
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

static const size_t chunks[] = {1, 7, 4093, 1048576 + 5, 1u << 24};
/* Read blocks: the default, and small ones, so that frames often straddle
 * two blocks and must be carried over (or grow a block to hold them); the
 * last column says whether DATA pieces are held (else the connection can
 * reuse its block and moves a partial frame to its front instead). */
static const size_t blocks[][3] = {
    {0, 0, 1}, {65536, 16384, 1}, {300000, 4096, 0}};

START_TEST(test_conn_frames_survive_any_split) {
  uv_loop_t loop;
  char server[64];
  memset(&srv, 0, sizeof srv);
  memset(&cli, 0, sizeof cli);
  srv.chunk = chunks[_i % (int)(sizeof chunks / sizeof chunks[0])];
  cli.conn.rblock_size =
      blocks[_i / (int)(sizeof chunks / sizeof chunks[0])][0];
  cli.conn.min_read = blocks[_i / (int)(sizeof chunks / sizeof chunks[0])][1];
  cli.hold = blocks[_i / (int)(sizeof chunks / sizeof chunks[0])][2];
  build_script();
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  snprintf(server, sizeof server, "127.0.0.1:%d", start_server(&loop));
  cli.conn.on_ready = on_ready;
  cli.conn.on_lost = on_lost;
  cli.conn.on_closed = on_closed;
  ck_assert_int_eq(fsc_conn_open(&cli.conn, &loop, server), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(cli.ready, 1);
  ck_assert_int_eq(cli.entries, 2);
  ck_assert_int_eq(cli.list_ok, 1);
  ck_assert_int_eq(cli.data_bad, 0);
  ck_assert_uint_eq(cli.data, DATA_TOTAL);
  ck_assert_int_eq(cli.end_ok, 1);
  ck_assert_int_eq(cli.order_bad, 0);
  ck_assert_int_eq(cli.lost, 0);
  ck_assert_int_eq(cli.closed, 1);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  free(srv.script);
}
END_TEST

/* A transport that counts what crosses it and passes it on as plaintext:
 * every byte from and to the server must go through the transport. */
static size_t bytes_in, bytes_out;
static int writes_out; /* write calls */

static void count_alloc(struct fsc_conn *c, uv_buf_t *buf) {
  fsc_plain_transport.alloc(c, buf);
}

static void count_read(struct fsc_conn *c, size_t nread) {
  bytes_in += nread;
  fsc_plain_transport.read(c, nread);
}

static int count_write(struct fsc_conn *c, uv_write_t *req,
                       const uv_buf_t *bufs, unsigned n, uv_write_cb cb) {
  for (unsigned i = 0; i < n; i++)
    bytes_out += bufs[i].len;
  writes_out++;
  return fsc_plain_transport.write(c, req, bufs, n, cb);
}

static const struct fsc_transport counting = {
    .alloc = count_alloc, .read = count_read, .write = count_write};

START_TEST(test_conn_every_byte_crosses_the_transport) {
  uv_loop_t loop;
  char server[64];
  memset(&srv, 0, sizeof srv);
  memset(&cli, 0, sizeof cli);
  bytes_in = bytes_out = 0;
  writes_out = 0;
  srv.chunk = 65536;
  build_script();
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  snprintf(server, sizeof server, "127.0.0.1:%d", start_server(&loop));
  cli.conn.transport = &counting;
  cli.conn.on_ready = on_ready;
  cli.conn.on_lost = on_lost;
  cli.conn.on_closed = on_closed;
  ck_assert_int_eq(fsc_conn_open(&cli.conn, &loop, server), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(cli.end_ok, 1);
  ck_assert_int_eq(cli.data_bad, 0);
  /* END is the script's last frame: all of it was read, through the
   * transport. The server saw no byte that did not pass it either. */
  ck_assert_uint_eq(bytes_in, srv.script_len);
  ck_assert_uint_gt(bytes_out, 0);
  ck_assert_uint_le(srv.got, bytes_out);
  /* Five frames went out (HELLO, LIST, GET, the PONG, BYE), but the
   * frames of one turn leave together: LIST and GET, made in the same
   * callback, in one write. */
  ck_assert_int_le(writes_out, 4);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  free(srv.script);
}
END_TEST

/* A DATA frame gathered for the socket and not yet written when the
 * connection is dropped: its owner still hears how its write ended, before
 * the connection reports itself closed. */
static int data_cb_status = 1;
static int data_cb_before_close;

static void on_data_written(uv_write_t *w, int status) {
  (void)w;
  data_cb_status = status;
  data_cb_before_close = !cli.closed;
}

static void on_ready_abort(struct fsc_conn *c, int status) {
  static uint8_t frame[FSP_HDR_LEN + 5];
  static uv_write_t w;
  ck_assert_int_eq(status, 0);
  cli.ready = 1;
  memcpy(frame + FSP_HDR_LEN, "hello", 5);
  ck_assert_int_eq(fsc_conn_send_data(c, &w, 7, frame, 5, on_data_written), 0);
  ck_assert_int_eq(data_cb_status, 1); /* gathered, not yet written */
  fsc_conn_abort(c);
}

START_TEST(test_conn_abort_ends_gathered_writes) {
  uv_loop_t loop;
  char server[64];
  memset(&srv, 0, sizeof srv);
  memset(&cli, 0, sizeof cli);
  data_cb_status = 1;
  data_cb_before_close = 0;
  srv.chunk = 65536;
  build_script();
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  snprintf(server, sizeof server, "127.0.0.1:%d", start_server(&loop));
  cli.conn.on_ready = on_ready_abort;
  cli.conn.on_lost = on_lost;
  cli.conn.on_closed = on_closed;
  ck_assert_int_eq(fsc_conn_open(&cli.conn, &loop, server), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(cli.ready, 1);
  ck_assert_int_eq(cli.closed, 1);
  ck_assert(data_cb_status == 0 || data_cb_status == UV_ECANCELED);
  ck_assert_int_eq(data_cb_before_close, 1);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  free(srv.script);
}
END_TEST

/* Runs a session with a script whose frame after HELLO has a broken magic
 * byte, until the connection is closed. Returns the offset of that byte;
 * its right value is in *magic. */
static size_t run_broken_session(uv_loop_t *loop, char *server,
                                 size_t server_len, uint8_t *magic) {
  memset(&srv, 0, sizeof srv);
  memset(&cli, 0, sizeof cli);
  build_script();
  size_t hello_len =
      FSP_HDR_LEN + ((size_t)srv.script[10] << 8 | srv.script[11]);
  *magic = srv.script[hello_len];
  srv.script[hello_len] = 0x00;
  srv.chunk = 4096;
  ck_assert_int_eq(uv_loop_init(loop), 0);
  snprintf(server, server_len, "127.0.0.1:%d", start_server(loop));
  cli.conn.on_ready = on_ready;
  cli.conn.on_lost = on_lost;
  cli.conn.on_closed = on_closed;
  ck_assert_int_eq(fsc_conn_open(&cli.conn, loop, server), 0);
  uv_run(loop, UV_RUN_DEFAULT);
  return hello_len;
}

START_TEST(test_conn_broken_framing_ends_connection) {
  uv_loop_t loop;
  char server[64];
  uint8_t magic;
  run_broken_session(&loop, server, sizeof server, &magic);
  ck_assert_int_eq(cli.ready, 1);
  ck_assert_int_eq(cli.lost, 1);
  ck_assert_int_eq(cli.conn.err, UV_EPROTO);
  ck_assert_ptr_nonnull(strstr(cli.conn.msg, "broken stream"));
  ck_assert_int_eq(cli.entries, 0);
  ck_assert_int_eq(cli.closed, 1);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  free(srv.script);
}
END_TEST

/* A connection that failed can be opened again on the same struct, as
 * fsc watch does after a drop: requests and ids start afresh (on_ready
 * checks that the LIST gets id 1 again) and every frame of the second
 * session arrives. */
START_TEST(test_conn_reopen_after_loss) {
  uv_loop_t loop;
  char server[64];
  uint8_t magic;
  size_t hello_len = run_broken_session(&loop, server, sizeof server, &magic);
  ck_assert_int_eq(cli.lost, 1);
  ck_assert_int_eq(cli.closed, 1);
  ck_assert_int_eq(cli.conn.state, FSC_CONN_CLOSED);

  /* A new server, an intact script, the same connection struct. */
  uint8_t *script = srv.script;
  size_t script_len = srv.script_len;
  script[hello_len] = magic;
  memset(&srv, 0, sizeof srv);
  srv.script = script;
  srv.script_len = script_len;
  srv.chunk = 65536;
  struct fsc_conn keep = cli.conn;
  memset(&cli, 0, sizeof cli);
  cli.conn = keep;
  snprintf(server, sizeof server, "127.0.0.1:%d", start_server(&loop));
  ck_assert_int_eq(fsc_conn_open(&cli.conn, &loop, server), 0);
  /* Not while it is open. */
  ck_assert_int_eq(fsc_conn_open(&cli.conn, &loop, server), UV_EBUSY);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(cli.ready, 1);
  ck_assert_int_eq(cli.conn.err, 0);
  ck_assert_int_eq(cli.entries, 2);
  ck_assert_int_eq(cli.list_ok, 1);
  ck_assert_uint_eq(cli.data, DATA_TOTAL);
  ck_assert_int_eq(cli.end_ok, 1);
  ck_assert_int_eq(cli.lost, 0);
  ck_assert_int_eq(cli.closed, 1);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  free(srv.script);
}
END_TEST

/* The version spoken is the lower of the two HELLOs' (protocol.md section
 * 3), and frames are decoded in its layout: a version 3 server's ENTRIES
 * carry types, an older server's do not. */
static const unsigned versions[] = {1, 2, 3, 9};

START_TEST(test_conn_speaks_the_lower_version) {
  uv_loop_t loop;
  char server[64];
  memset(&srv, 0, sizeof srv);
  memset(&cli, 0, sizeof cli);
  folders = 0;
  srv_version = versions[_i];
  srv.chunk = 65536;
  build_script();
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  snprintf(server, sizeof server, "127.0.0.1:%d", start_server(&loop));
  cli.conn.on_ready = on_ready;
  cli.conn.on_lost = on_lost;
  cli.conn.on_closed = on_closed;
  ck_assert_int_eq(fsc_conn_open(&cli.conn, &loop, server), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  unsigned want = srv_version < 3 ? srv_version : 3;
  ck_assert_uint_eq(cli.conn.version, want);
  ck_assert_int_eq(fsc_conn_tree(&cli.conn), want >= 3);
  ck_assert_int_eq(cli.entries, 2);
  ck_assert_int_eq(folders, want >= 3 ? 1 : 0);
  ck_assert_int_eq(cli.end_ok, 1);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  free(srv.script);
  srv_version = 1;
}
END_TEST

Suite *conn_suite(void) {
  Suite *s = suite_create("conn");
  TCase *tc = tcase_create("conn");
  tcase_set_timeout(tc, 100);
  tcase_add_loop_test(tc, test_conn_frames_survive_any_split, 0,
                      (int)(sizeof chunks / sizeof chunks[0] *
                            (sizeof blocks / sizeof blocks[0])));
  tcase_add_test(tc, test_conn_every_byte_crosses_the_transport);
  tcase_add_test(tc, test_conn_abort_ends_gathered_writes);
  tcase_add_test(tc, test_conn_broken_framing_ends_connection);
  tcase_add_test(tc, test_conn_reopen_after_loss);
  tcase_add_loop_test(tc, test_conn_speaks_the_lower_version, 0,
                      (int)(sizeof versions / sizeof versions[0]));
  suite_add_tcase(s, tc);
  return s;
}
