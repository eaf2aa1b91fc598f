/* redis_fanout: how long one redis PUBLISH takes to reach N subscribers.
 *
 * The redis side of fsbench's fan-out mode, so that bench/compare measures
 * both servers with the same kind of client: one libuv loop, N connections
 * that SUBSCRIBE to a channel, one more that PUBLISHes; a round lasts from
 * the PUBLISH until the last subscriber has the whole message and the
 * publisher has its reply. The median over several rounds is reported.
 *
 * Redis answers deterministically, so a subscriber does not parse RESP: it
 * compares the bytes it receives with the bytes it expects (the SUBSCRIBE
 * confirmation, then one message per round) and knows it has the round's
 * message when its byte count reaches the end of it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "benchutil.h"

#define RBUF_SIZE (64u * 1024u)
#define MAX_CONNECTING 128
#define MAX_ROUNDS 1000
#define PAUSE_MS 50
#define TIMEOUT_MS 60000

struct sub {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  struct fan *f;
  unsigned idx;
  unsigned long long rx; /* bytes received */
  char reply[32];        /* publisher: the reply line so far */
  size_t reply_len;
};

struct fan {
  uv_loop_t *loop;
  struct sockaddr_storage addr;
  struct sub *subs; /* n watchers, then the publisher */
  unsigned n;
  unsigned next_connect, connecting, nready;
  int rounds, round, json, quiet, pub_done;
  unsigned left;
  unsigned long long t0, t_end;
  double ms[MAX_ROUNDS];
  uv_timer_t timer;
  char rbuf[RBUF_SIZE];
  char sub_cmd[128]; /* SUBSCRIBE command */
  size_t sub_cmd_len;
  char sub_reply[128]; /* what a subscriber receives first */
  size_t sub_reply_len;
  char pub_cmd[128]; /* this round's PUBLISH command */
  size_t pub_cmd_len;
  char msg[128]; /* this round's message, as a subscriber gets it */
  size_t msg_len;
  const char *chan;
};

static void round_start(struct fan *f);

static void report(struct fan *f) {
  int n = f->round;
  double med;
  med = bench_median(f->ms, n);
  if (!f->quiet) {
    printf("redis fanout: %u subscribers, %d rounds\n", f->n, n);
    printf("  all subscribers had it after %.3f ms (median; min %.3f, max "
           "%.3f)\n",
           med, f->ms[0], f->ms[n - 1]);
  }
  if (f->json)
    printf("{\"test\":\"redis_fanout\",\"watchers\":%u,\"rounds\":%d,"
           "\"median_ms\":%.4f,\"min_ms\":%.4f,\"max_ms\":%.4f}\n",
           f->n, n, med, f->ms[0], f->ms[n - 1]);
  fflush(stdout);
  /* Tearing down thousands of sockets is the kernel's job at exit. */
  exit(0);
}

static void on_pause(uv_timer_t *t) {
  round_start(t->data);
}

static void check_done(struct fan *f) {
  if (f->left != 0 || !f->pub_done)
    return;
  uv_timer_stop(&f->timer);
  f->ms[f->round - 1] = (double)(f->t_end - f->t0) / 1e6;
  if (f->round >= f->rounds)
    report(f);
  uv_timer_start(&f->timer, on_pause, PAUSE_MS, 0);
}

static void on_written(uv_write_t *req, int status) {
  struct sub *s = req->data;
  if (status < 0)
    bench_fatal("connection %u: write: %s", s->idx, uv_strerror(status));
}

static void send_bytes(struct sub *s, const char *p, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)p, (unsigned)len);
  int r = uv_try_write((uv_stream_t *)&s->tcp, &buf, 1);
  if (r == (int)len)
    return;
  if (r < 0 && r != UV_EAGAIN)
    bench_fatal("connection %u: write: %s", s->idx, uv_strerror(r));
  if (r > 0) {
    buf.base += r;
    buf.len -= (size_t)r;
  }
  /* The command buffers outlive the write: they change only next round. */
  r = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &buf, 1, on_written);
  if (r < 0)
    bench_fatal("connection %u: write: %s", s->idx, uv_strerror(r));
}

static void on_timeout(uv_timer_t *t) {
  struct fan *f = t->data;
  bench_fatal("round %d: %u of %u subscribers still without the message after "
              "%d ms",
              f->round, f->left, f->n, TIMEOUT_MS);
}

static void round_start(struct fan *f) {
  struct sub *pub = &f->subs[f->n];
  char payload[32];
  int pl;

  f->round++;
  f->left = f->n;
  f->pub_done = 0;
  pub->reply_len = 0;
  pl = snprintf(payload, sizeof(payload), "round-%06d", f->round);
  f->pub_cmd_len =
      (size_t)snprintf(f->pub_cmd, sizeof(f->pub_cmd),
                       "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n",
                       strlen(f->chan), f->chan, pl, payload);
  f->msg_len =
      (size_t)snprintf(f->msg, sizeof(f->msg),
                       "*3\r\n$7\r\nmessage\r\n$%zu\r\n%s\r\n$%d\r\n%s\r\n",
                       strlen(f->chan), f->chan, pl, payload);
  uv_timer_start(&f->timer, on_timeout, TIMEOUT_MS, 0);
  f->t0 = uv_hrtime();
  send_bytes(pub, f->pub_cmd, f->pub_cmd_len);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct sub *s = h->data;
  *buf = uv_buf_init(s->f->rbuf, RBUF_SIZE);
}

/* The publisher's reply is ":<subscribers>\r\n". */
static void pub_read(struct sub *s, const char *p, size_t n) {
  struct fan *f = s->f;
  for (size_t i = 0; i < n; i++) {
    if (s->reply_len + 1 >= sizeof(s->reply))
      bench_fatal("unexpected reply to PUBLISH");
    s->reply[s->reply_len++] = p[i];
    if (s->reply_len >= 2 && s->reply[s->reply_len - 2] == '\r' &&
        s->reply[s->reply_len - 1] == '\n') {
      s->reply[s->reply_len - 2] = '\0';
      if (s->reply[0] != ':' || strtoul(s->reply + 1, NULL, 10) != f->n)
        bench_fatal("PUBLISH answered %s, expected :%u", s->reply, f->n);
      s->reply_len = 0;
      f->pub_done = 1;
      check_done(f);
    }
  }
}

static void sub_read(struct sub *s, const char *p, size_t n) {
  struct fan *f = s->f;
  for (size_t i = 0; i < n; i++, s->rx++) {
    unsigned long long pos = s->rx;
    char want;
    if (pos < f->sub_reply_len) {
      want = f->sub_reply[pos];
    } else {
      unsigned long long k = (pos - f->sub_reply_len) / f->msg_len + 1;
      if (k != (unsigned long long)f->round)
        bench_fatal("subscriber %u: data beyond round %d", s->idx, f->round);
      want = f->msg[(pos - f->sub_reply_len) % f->msg_len];
    }
    if (p[i] != want)
      bench_fatal("subscriber %u: unexpected byte at %llu", s->idx, pos);
  }
  if (s->rx == f->sub_reply_len && f->round == 0) {
    if (++f->nready == f->n + 1)
      round_start(f);
  } else if (f->round > 0 &&
             s->rx ==
                 f->sub_reply_len + (unsigned long long)f->round * f->msg_len) {
    if (--f->left == 0) {
      f->t_end = uv_hrtime();
      check_done(f);
    }
  }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct sub *s = st->data;
  if (nread == 0)
    return;
  if (nread < 0)
    bench_fatal("connection %u: %s", s->idx,
                nread == UV_EOF ? "closed by the server"
                                : uv_strerror((int)nread));
  if (s->idx == s->f->n)
    pub_read(s, buf->base, (size_t)nread);
  else
    sub_read(s, buf->base, (size_t)nread);
}

static void connect_more(struct fan *f);

static void on_connect(uv_connect_t *req, int status) {
  struct sub *s = req->data;
  struct fan *f = s->f;
  f->connecting--;
  if (status < 0)
    bench_fatal("connection %u: connect: %s", s->idx, uv_strerror(status));
  uv_tcp_nodelay(&s->tcp, 1);
  uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
  connect_more(f);
  if (s->idx == f->n) {
    if (++f->nready == f->n + 1)
      round_start(f);
    return;
  }
  send_bytes(s, f->sub_cmd, f->sub_cmd_len);
}

static void connect_more(struct fan *f) {
  while (f->next_connect <= f->n && f->connecting < MAX_CONNECTING) {
    struct sub *s = &f->subs[f->next_connect++];
    int r = uv_tcp_init(f->loop, &s->tcp);
    if (r < 0)
      bench_fatal("tcp init: %s", uv_strerror(r));
    s->tcp.data = s;
    s->creq.data = s;
    s->wreq.data = s;
    r = uv_tcp_connect(&s->creq, &s->tcp, (struct sockaddr *)&f->addr,
                       on_connect);
    if (r < 0)
      bench_fatal("connection %u: connect: %s", s->idx, uv_strerror(r));
    f->connecting++;
  }
}

static void usage(FILE *out) {
  fprintf(out, "usage: redis_fanout [-s HOST:PORT] [-c SUBSCRIBERS] "
               "[--rounds N] [--channel NAME] [--json] [-q]\n"
               "  defaults: 127.0.0.1:6379, 1000 subscribers, 5 rounds\n");
}

int main(int argc, char **argv) {
  static struct fan fan;
  static const struct option lopts[] = {
      {"rounds", required_argument, NULL, 'r'},
      {"channel", required_argument, NULL, 'C'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct fan *f = &fan;
  const char *server = "127.0.0.1:6379";
  int ch;

  signal(SIGPIPE, SIG_IGN);
  bench_set_prog("redis_fanout");
  f->n = 1000;
  f->rounds = 5;
  f->chan = "fanout";
  while ((ch = getopt_long(argc, argv, "s:c:qh", lopts, NULL)) != -1) {
    switch (ch) {
    case 's':
      server = optarg;
      break;
    case 'c':
      f->n = (unsigned)strtoul(optarg, NULL, 10);
      break;
    case 'r':
      f->rounds = atoi(optarg);
      break;
    case 'C':
      f->chan = optarg;
      break;
    case 'j':
      f->json = 1;
      break;
    case 'q':
      f->quiet = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc || f->n == 0 || f->rounds < 1 || f->rounds > MAX_ROUNDS ||
      strlen(f->chan) == 0 || strlen(f->chan) > 32) {
    usage(stderr);
    return 2;
  }
  bench_parse_addr(server, &f->addr);
  bench_raise_nofile(f->n + 1);
  f->sub_cmd_len = (size_t)snprintf(f->sub_cmd, sizeof(f->sub_cmd),
                                    "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                                    strlen(f->chan), f->chan);
  f->sub_reply_len =
      (size_t)snprintf(f->sub_reply, sizeof(f->sub_reply),
                       "*3\r\n$9\r\nsubscribe\r\n$%zu\r\n%s\r\n:1\r\n",
                       strlen(f->chan), f->chan);
  f->loop = uv_default_loop();
  uv_timer_init(f->loop, &f->timer);
  f->timer.data = f;
  f->subs = calloc((size_t)f->n + 1, sizeof(*f->subs));
  if (f->subs == NULL)
    bench_fatal("out of memory");
  for (unsigned i = 0; i <= f->n; i++) {
    f->subs[i].f = f;
    f->subs[i].idx = i;
  }
  connect_more(f);
  uv_run(f->loop, UV_RUN_DEFAULT);
  bench_fatal("the run ended before it finished");
}
