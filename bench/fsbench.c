/* fsbench: a load generator for fsd, in the spirit of redis-benchmark.
 *
 * One libuv loop drives C connections, each with P requests in flight. A
 * request slot is reused as soon as its final frame arrives, with the same
 * request id (ids are 1..P per connection), so there is no per-request state
 * to allocate: each slot holds its start time and its transfer counters.
 *
 * Lean on purpose, because the size test is compared with redis-benchmark:
 * - all frames a read callback produces go out in one write per connection
 *   (uv_try_write, falling back to uv_write with a second buffer);
 * - request frames are encoded once as templates and only the id is patched;
 * - reads land in one loop-wide buffer; only an incomplete non-DATA frame is
 *   copied aside for the connection, so idle connections hold no buffer;
 * - upload payloads point into one pattern buffer and are never copied;
 * - one clock reading per read callback serves every request it completes.
 *
 * Tests: size (STAT), ls (LIST), get, put, mixed, plus two modes that are not
 * request loops: fanout (N subscribers, one client puts a file, time until
 * all N have the EVENT) and idle (hold N connections open, for RSS probes).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <xxhash.h>

#include "fsproto/fsproto.h"

#include "benchutil.h"

#define RBUF_SIZE (256u * 1024u) /* loop-wide read buffer */
#define PATTERN_SIZE (1u << 20)  /* upload content repeats this buffer */
#define MAX_CONNECTING 128       /* connects in flight, to spare the backlog */
#define WQ_MAX (4u << 20)        /* upload bytes queued per connection */
#define DW_CHUNKS 8              /* DATA frames per upload write */
#define NAME_ROOM 64u            /* room for generated names in frames */
#define HSUB 64u                 /* histogram sub-buckets per power of two */
#define HBUCKETS (2u * HSUB + 57u * HSUB)
#define FAN_PAUSE_MS 50      /* pause between fan-out rounds */
#define FAN_TIMEOUT_MS 60000 /* a round that takes longer is a failure */
#define MAX_ROUNDS 1000

enum test { T_SIZE, T_LS, T_GET, T_PUT, T_MIXED, T_FANOUT, T_IDLE };
static const char *const test_names[] = {"size",  "ls",     "get", "put",
                                         "mixed", "fanout", "idle"};

enum phase { PH_CONNECT, PH_SETUP, PH_RUN, PH_DONE };

enum slot_state {
  S_IDLE,      /* no request in flight */
  S_WAIT,      /* waiting for the final frame */
  S_PUT_READY, /* PUT sent, waiting for READY */
  S_PUT_SEND,  /* READY came, DATA still to queue */
  S_PUT_INFO   /* END queued, waiting for INFO */
};

/* One request in flight on a connection; its id is its index + 1. */
struct slot {
  uint64_t t0;      /* when the request was sent, ns */
  uint64_t sent;    /* put: DATA payload bytes queued so far */
  uint64_t got;     /* get: DATA payload bytes received so far */
  uint64_t expect;  /* get: bytes BEGIN announced */
  XXH3_state_t *xs; /* get with --verify: running hash */
  uint8_t op;       /* request opcode */
  uint8_t state;    /* enum slot_state */
};

struct bench;

struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq; /* write of out[wcur] */
  struct bench *b;
  uint32_t idx;      /* index in bench.conns */
  uint32_t peer_max; /* largest payload the server accepts */
  struct fsp_decoder dec;
  uint8_t *keep; /* an incomplete frame carried to the next read */
  uint32_t keep_len, keep_cap;
  uint8_t *out[2]; /* small frames waiting to be written */
  uint32_t out_len[2];
  uint32_t out_cap;
  uint8_t cur;     /* which out buffer takes new frames */
  uint8_t wcur;    /* which out buffer is being written */
  uint8_t writing; /* a write of out[wcur] is in flight */
  uint8_t ready;   /* HELLO (and for watchers SUBSCRIBED) came */
  uint32_t nslots;
  struct slot *slots;
  uint32_t send_rr;       /* put: next slot to feed, round robin */
  uint32_t nsending;      /* put: slots in S_PUT_SEND */
  uint32_t nissued;       /* mixed: position in the rotation */
  uint32_t events;        /* fanout: rounds this watcher has seen */
  uv_timer_t *rate_timer; /* get --rate: resumes reading */
  uint64_t rate_t0;       /* get --rate: when reading began */
  uint64_t rate_bytes;    /* get --rate: bytes read since */
};

/* A batch of DATA frames (and maybe the END) of uploads on one connection. */
struct dwrite {
  uv_write_t req;
  struct conn *c;
  struct dwrite *next; /* free list */
  uint8_t hdr[DW_CHUNKS][FSP_HDR_LEN];
  uint8_t end[FSP_HDR_LEN + 16];
  uv_buf_t bufs[2 * DW_CHUNKS + 1];
};

struct opts {
  const char *host;
  int port;
  uint32_t conns;
  uint32_t pipeline;
  uint64_t requests;
  double seconds;
  enum test test;
  uint64_t file_size;
  int file_size_set;
  const char *name;
  int json;
  int quiet;
  int rounds;
  int notice;
  int raw;
  int verify;
  uint64_t rate;
};

struct bench {
  struct opts o;
  uv_loop_t *loop;
  struct sockaddr_storage addr;
  struct conn *conns;
  uint32_t nconns; /* watchers + publisher in fanout mode */
  uint32_t next_connect;
  uint32_t connecting;
  uint32_t nready;
  enum phase phase;
  uint64_t now; /* clock reading for the current callback */
  uint64_t t_start, t_end;
  uint64_t target; /* requests to complete; 0 with -d */
  uint64_t issued, completed, errors;
  uint64_t payload; /* file bytes moved by completed requests */
  uint64_t rx, tx;  /* bytes read and written */
  int stopping;
  int finished;
  int exit_code;
  uint64_t hist[HBUCKETS];
  uint8_t *rbuf;
  uint8_t *pattern;
  uint64_t put_hash; /* XXH3 of file_size bytes of the pattern */
  struct dwrite *dw_free;
  uv_timer_t timer; /* -d deadline, fan-out pauses and timeouts */
  int timer_open;
  /* Request templates with id 0; the id is patched in per request. */
  uint8_t tpl_stat[FSP_HDR_LEN + FSP_NAME_MAX];
  uint8_t tpl_get[FSP_HDR_LEN + 16 + FSP_NAME_MAX];
  uint8_t tpl_list[FSP_HDR_LEN];
  uint32_t tpl_stat_len, tpl_get_len;
  uint32_t req_max; /* largest request frame + END, for out_cap */
  /* fanout */
  int round;
  uint32_t fan_left;
  int pub_done;
  uint64_t fan_t0, fan_t_end;
  uint64_t fan_t_put_end; /* when the publisher's END was queued */
  double fan_ms[MAX_ROUNDS];
  double fan_end_ms[MAX_ROUNDS];
  char fan_text[64];
  size_t fan_text_len;
  uint64_t fan_resync;
};

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    bench_fatal("out of memory");
  return p;
}

static void *xcalloc(size_t n, size_t m) {
  void *p = calloc(n ? n : 1, m ? m : 1);
  if (p == NULL)
    bench_fatal("out of memory");
  return p;
}

static void put_u32be(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint64_t get_u64be(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

/* ------------------------------------------------------------------------ */
/* Latency histogram: exact below 128 ns, then 64 buckets per power of two
 * (about 1.6% resolution), in fixed memory. */

static unsigned hist_index(uint64_t v) {
  unsigned e;
  if (v < 2 * HSUB)
    return (unsigned)v;
  e = 63u - (unsigned)__builtin_clzll(v);
  return 2 * HSUB + (e - 7) * HSUB + (unsigned)((v >> (e - 6)) & (HSUB - 1));
}

static uint64_t hist_value(unsigned i) {
  unsigned e, sub;
  if (i < 2 * HSUB)
    return i;
  e = (i - 2 * HSUB) / HSUB + 7;
  sub = (i - 2 * HSUB) % HSUB;
  return ((uint64_t)(HSUB + sub) << (e - 6)) + ((1ull << (e - 6)) >> 1);
}

static double hist_pct_ms(const struct bench *b, double q) {
  uint64_t total = 0, want, acc = 0;
  for (unsigned i = 0; i < HBUCKETS; i++)
    total += b->hist[i];
  if (total == 0)
    return 0;
  want = (uint64_t)(q * (double)total + 0.999999);
  if (want == 0)
    want = 1;
  for (unsigned i = 0; i < HBUCKETS; i++) {
    acc += b->hist[i];
    if (acc >= want)
      return (double)hist_value(i) / 1e6;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Writing */

static void on_out_written(uv_write_t *req, int status);

/* Sends what the connection's current out buffer holds, in one write. */
static void flush(struct conn *c) {
  uv_buf_t buf;
  uint32_t len = c->out_len[c->cur];
  int r;

  if (c->writing || len == 0)
    return;
  buf = uv_buf_init((char *)c->out[c->cur], len);
  r = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (r == (int)len) {
    c->out_len[c->cur] = 0;
    c->b->tx += len;
    return;
  }
  if (r < 0 && r != UV_EAGAIN)
    bench_fatal("connection %u: write: %s", c->idx, uv_strerror(r));
  if (r < 0)
    r = 0;
  c->b->tx += len;
  buf.base += r;
  buf.len -= (size_t)r;
  /* New frames go to the other buffer while this one is in flight. */
  c->writing = 1;
  c->wcur = c->cur;
  c->cur ^= 1;
  r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_out_written);
  if (r < 0)
    bench_fatal("connection %u: write: %s", c->idx, uv_strerror(r));
}

static void on_out_written(uv_write_t *req, int status) {
  struct conn *c = req->data;
  if (status < 0) {
    if (c->b->phase == PH_DONE)
      return;
    bench_fatal("connection %u: write: %s", c->idx, uv_strerror(status));
  }
  c->writing = 0;
  c->out_len[c->wcur] = 0;
  flush(c);
}

/* Room for one frame of at most max bytes in the current out buffer. */
static uint8_t *out_room(struct conn *c, size_t max) {
  if (c->out_len[c->cur] + max > c->out_cap)
    bench_fatal("connection %u: output buffer full", c->idx);
  return c->out[c->cur] + c->out_len[c->cur];
}

static void out_msg(struct conn *c, const struct fsp_msg *m) {
  size_t cap = c->out_cap - c->out_len[c->cur];
  ssize_t n = fsp_msg_encode(out_room(c, 0), cap, m);
  if (n < 0)
    bench_fatal("cannot encode %s: %s", fsp_op_name(m->op),
                fsp_strerror((int)n));
  if ((size_t)n > cap)
    bench_fatal("connection %u: output buffer full", c->idx);
  c->out_len[c->cur] += (uint32_t)n;
}

static void out_tpl(struct conn *c, const uint8_t *tpl, uint32_t len,
                    uint32_t id) {
  uint8_t *p = out_room(c, len);
  memcpy(p, tpl, len);
  put_u32be(p + 4, id);
  c->out_len[c->cur] += len;
}

static struct dwrite *dw_get(struct bench *b) {
  struct dwrite *w = b->dw_free;
  if (w != NULL) {
    b->dw_free = w->next;
    return w;
  }
  w = xmalloc(sizeof(*w));
  w->req.data = w;
  return w;
}

static void pump(struct conn *c);

static void on_dw_written(uv_write_t *req, int status) {
  struct dwrite *w = req->data;
  struct conn *c = w->c;
  struct bench *b = c->b;
  w->next = b->dw_free;
  b->dw_free = w;
  if (status < 0) {
    if (b->phase == PH_DONE)
      return;
    bench_fatal("connection %u: write: %s", c->idx, uv_strerror(status));
  }
  pump(c);
}

/* Queues DATA (and END) frames of the uploads that are sending, while the
 * connection's write queue is below WQ_MAX. Payloads point into the pattern
 * buffer, so the file content is the pattern repeated. */
static void pump(struct conn *c) {
  struct bench *b = c->b;
  uv_stream_t *s = (uv_stream_t *)&c->tcp;
  uint64_t size = b->o.file_size;
  uint32_t chunk = c->peer_max < PATTERN_SIZE ? c->peer_max : PATTERN_SIZE;

  while (c->nsending > 0 && uv_stream_get_write_queue_size(s) < WQ_MAX &&
         !b->stopping) {
    struct slot *sl = NULL;
    struct dwrite *w;
    uint32_t id, nb = 0;
    int r;

    for (uint32_t k = 0; k < c->nslots; k++) {
      uint32_t i = (c->send_rr + k) % c->nslots;
      if (c->slots[i].state == S_PUT_SEND) {
        sl = &c->slots[i];
        c->send_rr = (i + 1) % c->nslots;
        break;
      }
    }
    if (sl == NULL)
      return;
    id = (uint32_t)(sl - c->slots) + 1;
    w = dw_get(b);
    w->c = c;
    for (int k = 0; k < DW_CHUNKS && sl->sent < size; k++) {
      uint32_t off = (uint32_t)(sl->sent % PATTERN_SIZE);
      uint64_t n = chunk;
      if (n > PATTERN_SIZE - off)
        n = PATTERN_SIZE - off;
      if (n > size - sl->sent)
        n = size - sl->sent;
      fsp_header_write(w->hdr[k], FSP_OP_DATA, id, (uint32_t)n);
      w->bufs[nb++] = uv_buf_init((char *)w->hdr[k], FSP_HDR_LEN);
      w->bufs[nb++] = uv_buf_init((char *)b->pattern + off, (unsigned)n);
      sl->sent += n;
      b->tx += FSP_HDR_LEN + n;
    }
    if (sl->sent == size) {
      struct fsp_msg m;
      ssize_t n;
      memset(&m, 0, sizeof(m));
      m.op = FSP_OP_END;
      m.id = id;
      m.u.end.size = size;
      m.u.end.hash = b->put_hash;
      n = fsp_msg_encode(w->end, sizeof(w->end), &m);
      if (n != (ssize_t)sizeof(w->end))
        bench_fatal("cannot encode END");
      w->bufs[nb++] = uv_buf_init((char *)w->end, (unsigned)n);
      b->tx += (uint64_t)n;
      sl->state = S_PUT_INFO;
      c->nsending--;
      if (b->o.test == T_FANOUT)
        b->fan_t_put_end = uv_hrtime();
    }
    r = uv_write(&w->req, s, w->bufs, nb, on_dw_written);
    if (r < 0)
      bench_fatal("connection %u: write: %s", c->idx, uv_strerror(r));
  }
}

/* ------------------------------------------------------------------------ */
/* Requests */

static void put_name(const struct conn *c, uint32_t slot, char *buf,
                     size_t cap) {
  snprintf(buf, cap, "fsbench-put.%u.%u", c->idx, slot);
}

static void send_put(struct conn *c, uint32_t slot, const char *name,
                     uint64_t size) {
  struct fsp_msg m;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_PUT;
  m.id = slot + 1;
  m.u.put.size = size;
  m.u.put.mode = FSP_PUT_REPLACE;
  m.u.put.name.ptr = name;
  m.u.put.name.len = strlen(name);
  out_msg(c, &m);
  c->slots[slot].op = FSP_OP_PUT;
  c->slots[slot].state = S_PUT_READY;
  c->slots[slot].sent = 0;
}

/* The rotation of the mixed test: mostly size, some of each other kind. */
static const uint8_t mixed_ops[10] = {
    FSP_OP_STAT, FSP_OP_STAT, FSP_OP_STAT, FSP_OP_STAT, FSP_OP_STAT,
    FSP_OP_STAT, FSP_OP_STAT, FSP_OP_LIST, FSP_OP_GET,  FSP_OP_PUT};

/* Starts the next request of the run in slot. */
static void issue(struct conn *c, uint32_t slot) {
  struct bench *b = c->b;
  struct slot *sl = &c->slots[slot];
  uint8_t op;
  char name[NAME_ROOM];

  switch (b->o.test) {
  case T_SIZE:
    op = FSP_OP_STAT;
    break;
  case T_LS:
    op = FSP_OP_LIST;
    break;
  case T_GET:
    op = FSP_OP_GET;
    break;
  case T_PUT:
    op = FSP_OP_PUT;
    break;
  default:
    op = mixed_ops[c->nissued++ % 10];
    break;
  }
  sl->t0 = b->now;
  sl->op = op;
  sl->state = S_WAIT;
  b->issued++;
  switch (op) {
  case FSP_OP_STAT:
    out_tpl(c, b->tpl_stat, b->tpl_stat_len, slot + 1);
    break;
  case FSP_OP_LIST:
    out_tpl(c, b->tpl_list, FSP_HDR_LEN, slot + 1);
    break;
  case FSP_OP_GET:
    sl->got = 0;
    sl->expect = 0;
    if (sl->xs != NULL)
      XXH3_64bits_reset(sl->xs);
    out_tpl(c, b->tpl_get, b->tpl_get_len, slot + 1);
    break;
  default:
    put_name(c, slot, name, sizeof(name));
    send_put(c, slot, name, b->o.file_size);
    break;
  }
}

static void finish(struct bench *b);
static void start_run(struct bench *b);
static void fan_round(struct bench *b);

/* The final frame of the request in slot arrived. */
static void complete(struct conn *c, uint32_t slot, int ok) {
  struct bench *b = c->b;
  struct slot *sl = &c->slots[slot];
  uint64_t lat;

  sl->state = S_IDLE;
  if (b->phase != PH_RUN || b->stopping)
    return;
  lat = b->now > sl->t0 ? b->now - sl->t0 : 0;
  b->hist[hist_index(lat)]++;
  b->completed++;
  if (!ok)
    b->errors++;
  else if (sl->op == FSP_OP_GET)
    b->payload += sl->got;
  else if (sl->op == FSP_OP_PUT)
    b->payload += b->o.file_size;
  if (b->target != 0 && b->completed >= b->target) {
    b->stopping = 1;
    return;
  }
  if (b->target == 0 || b->issued < b->target)
    issue(c, slot);
}

static void report_error(struct conn *c, const struct fsp_frame *f) {
  struct fsp_msg m;
  struct bench *b = c->b;
  if (fsp_msg_decode(f, &m) != 0)
    bench_fatal("connection %u: malformed ERROR", c->idx);
  if (b->errors == 0 || b->phase != PH_RUN)
    fprintf(stderr, "fsbench: connection %u id %" PRIu32 ": %s: %.*s\n", c->idx,
            f->id, fsp_status_name(m.u.error.status), (int)m.u.error.text.len,
            m.u.error.text.ptr);
}

/* ------------------------------------------------------------------------ */
/* Set-up: make sure the file that size/get/ls/mixed read exists with the
 * requested size, uploading it when it does not. Uses slot 0 of conn 0. */

static void setup_frame(struct conn *c, const struct fsp_frame *f) {
  struct bench *b = c->b;
  struct slot *sl = &c->slots[0];

  if (f->id != 1)
    return;
  switch (f->op) {
  case FSP_OP_INFO:
    if (sl->op == FSP_OP_STAT && f->len >= 8 &&
        get_u64be(f->payload) != b->o.file_size) {
      send_put(c, 0, b->o.name, b->o.file_size);
      return;
    }
    sl->state = S_IDLE;
    start_run(b);
    return;
  case FSP_OP_READY:
    sl->state = S_PUT_SEND;
    c->nsending++;
    pump(c);
    return;
  case FSP_OP_ERROR:
    if (sl->op == FSP_OP_STAT && f->len >= 2 &&
        ((f->payload[0] << 8) | f->payload[1]) == FSP_ST_NOT_FOUND) {
      send_put(c, 0, b->o.name, b->o.file_size);
      return;
    }
    report_error(c, f);
    bench_fatal("set-up of %s failed", b->o.name);
  default:
    return;
  }
}

static void start_setup(struct bench *b) {
  struct conn *c = &b->conns[0];
  b->phase = PH_SETUP;
  if (b->o.test == T_PUT) {
    start_run(b);
    return;
  }
  c->slots[0].op = FSP_OP_STAT;
  c->slots[0].state = S_WAIT;
  out_tpl(c, b->tpl_stat, b->tpl_stat_len, 1);
  flush(c);
}

static void on_deadline(uv_timer_t *t) {
  struct bench *b = t->data;
  b->stopping = 1;
  finish(b);
}

static void start_run(struct bench *b) {
  b->phase = PH_RUN;
  b->now = uv_hrtime();
  b->t_start = b->now;
  /* Handshakes and set-up are not part of the run's traffic. */
  b->rx = 0;
  b->tx = 0;
  if (b->target == 0) {
    uint64_t ms = (uint64_t)(b->o.seconds * 1000.0);
    uv_timer_start(&b->timer, on_deadline, ms ? ms : 1, 0);
  }
  for (uint32_t s = 0; s < b->o.pipeline; s++)
    for (uint32_t i = 0; i < b->nconns; i++)
      if (b->target == 0 || b->issued < b->target)
        issue(&b->conns[i], s);
  for (uint32_t i = 0; i < b->nconns; i++)
    flush(&b->conns[i]);
}

/* ------------------------------------------------------------------------ */
/* Frames in */

static void conn_ready(struct conn *c) {
  struct bench *b = c->b;
  c->ready = 1;
  if (++b->nready < b->nconns)
    return;
  if (b->o.test == T_IDLE) {
    printf("ready %u\n", b->nconns);
    fflush(stdout);
    b->phase = PH_RUN;
    if (b->o.seconds > 0)
      uv_timer_start(&b->timer, on_deadline, (uint64_t)(b->o.seconds * 1000.0),
                     0);
  } else if (b->o.test == T_FANOUT) {
    b->phase = PH_RUN;
    fan_round(b);
  } else {
    start_setup(b);
  }
}

static void on_hello(struct conn *c, const struct fsp_frame *f) {
  struct fsp_msg m;
  int r = fsp_msg_decode(f, &m);
  if (r != 0)
    bench_fatal("connection %u: bad HELLO: %s", c->idx, fsp_strerror(r));
  c->peer_max = m.u.hello.max_payload;
  if (c->idx == 0 && m.u.hello.max_inflight < c->nslots)
    fprintf(stderr,
            "fsbench: warning: pipeline %u exceeds the server's limit of %u "
            "requests in flight\n",
            c->nslots, m.u.hello.max_inflight);
  /* Watchers are ready once SUBSCRIBED arrives. */
  if (c->b->o.test == T_FANOUT && c->idx + 1 < c->b->nconns)
    return;
  conn_ready(c);
}

static void fan_check_done(struct bench *b);

static void on_push(struct conn *c, const struct fsp_frame *f) {
  struct bench *b = c->b;
  struct fsp_msg m;
  const struct fsp_str *s;
  int r;

  if (b->o.test != T_FANOUT || b->phase != PH_RUN)
    return;
  if (f->op == FSP_OP_RESYNC) {
    b->fan_resync++;
    s = NULL;
  } else {
    r = fsp_msg_decode(f, &m);
    if (r != 0)
      bench_fatal("connection %u: bad %s: %s", c->idx, fsp_op_name(f->op),
                  fsp_strerror(r));
    s = f->op == FSP_OP_EVENT ? &m.u.event.file.name : &m.u.text;
    if ((f->op == FSP_OP_EVENT) == (b->o.notice != 0))
      return;
    if (s->len != b->fan_text_len || memcmp(s->ptr, b->fan_text, s->len) != 0)
      return;
  }
  if (c->events >= (uint32_t)b->round)
    return;
  c->events = (uint32_t)b->round;
  if (--b->fan_left == 0) {
    b->fan_t_end = uv_hrtime();
    fan_check_done(b);
  }
}

static void on_frame(struct conn *c, const struct fsp_frame *f) {
  struct bench *b = c->b;
  struct slot *sl;
  uint32_t slot;

  switch (f->op) {
  case FSP_OP_HELLO:
    on_hello(c, f);
    return;
  case FSP_OP_EVENT:
  case FSP_OP_NOTIFY:
  case FSP_OP_RESYNC:
    on_push(c, f);
    return;
  case FSP_OP_BYE:
    if (b->phase != PH_DONE)
      bench_fatal("connection %u: the server said BYE", c->idx);
    return;
  case FSP_OP_PING:
  case FSP_OP_PONG:
    return;
  default:
    break;
  }
  if (f->id == 0) {
    if (f->op == FSP_OP_ERROR)
      report_error(c, f);
    bench_fatal("connection %u: unexpected %s for the connection", c->idx,
                fsp_op_name(f->op) ? fsp_op_name(f->op) : "frame");
  }
  slot = f->id - 1;
  if (slot >= c->nslots)
    return;
  sl = &c->slots[slot];
  if (b->phase == PH_SETUP) {
    setup_frame(c, f);
    return;
  }
  if (sl->state == S_IDLE)
    return;
  if (f->op == FSP_OP_ERROR) {
    report_error(c, f);
    if (sl->state == S_PUT_SEND || sl->state == S_PUT_INFO)
      bench_fatal("upload failed");
    if (sl->op == FSP_OP_SUBSCRIBE)
      bench_fatal("subscribe failed");
    complete(c, slot, 0);
    return;
  }
  switch (sl->op) {
  case FSP_OP_STAT:
    if (f->op == FSP_OP_INFO)
      complete(c, slot, 1);
    return;
  case FSP_OP_LIST:
    if (f->op == FSP_OP_OK)
      complete(c, slot, 1);
    return;
  case FSP_OP_GET:
    if (f->op == FSP_OP_BEGIN && f->len == 32) {
      sl->expect = get_u64be(f->payload + 24);
    } else if (f->op == FSP_OP_END && f->len == 16) {
      uint64_t size = get_u64be(f->payload);
      if (size != sl->got || size != sl->expect)
        bench_fatal("GET %s: got %" PRIu64 " bytes, BEGIN said %" PRIu64
                    ", END said %" PRIu64,
                    b->o.name, sl->got, sl->expect, size);
      if (sl->xs != NULL &&
          XXH3_64bits_digest(sl->xs) != get_u64be(f->payload + 8))
        bench_fatal("GET %s: checksum mismatch", b->o.name);
      complete(c, slot, 1);
    }
    return;
  case FSP_OP_PUT:
    if (f->op == FSP_OP_READY && sl->state == S_PUT_READY) {
      sl->state = S_PUT_SEND;
      c->nsending++;
      pump(c);
    } else if (f->op == FSP_OP_INFO) {
      if (b->o.test != T_FANOUT) {
        complete(c, slot, 1);
        return;
      }
      sl->state = S_IDLE;
      b->pub_done = 1;
      fan_check_done(b);
    }
    return;
  case FSP_OP_NOTICE:
    if (f->op == FSP_OP_OK) {
      sl->state = S_IDLE;
      b->pub_done = 1;
      fan_check_done(b);
    }
    return;
  case FSP_OP_SUBSCRIBE:
    if (f->op == FSP_OP_SUBSCRIBED) {
      sl->state = S_IDLE;
      conn_ready(c);
    }
    return;
  default:
    return;
  }
}

static void on_data(struct conn *c, const struct fsp_item *it) {
  uint32_t slot = it->frame.id - 1;
  struct slot *sl;
  if (slot >= c->nslots)
    return;
  sl = &c->slots[slot];
  if (sl->state != S_WAIT || sl->op != FSP_OP_GET)
    return;
  sl->got += it->data_len;
  if (sl->xs != NULL)
    XXH3_64bits_update(sl->xs, it->data, it->data_len);
}

/* ------------------------------------------------------------------------ */
/* Reading */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct conn *c = h->data;
  if (c->keep_len == 0) {
    *buf = uv_buf_init((char *)c->b->rbuf, RBUF_SIZE);
    return;
  }
  /* An incomplete frame is waiting: read behind it, with room to grow up to
   * the largest frame we accept. */
  if (c->keep_cap - c->keep_len < 16384) {
    uint32_t cap = c->keep_cap * 2;
    if (cap < c->keep_len + 16384)
      cap = c->keep_len + 16384;
    if (cap > FSP_HDR_LEN + FSP_DEFAULT_PAYLOAD + 16384)
      cap = FSP_HDR_LEN + FSP_DEFAULT_PAYLOAD + 16384;
    if (cap > c->keep_cap) {
      uint8_t *p = realloc(c->keep, cap);
      if (p == NULL)
        bench_fatal("out of memory");
      c->keep = p;
      c->keep_cap = cap;
    }
  }
  *buf = uv_buf_init((char *)c->keep + c->keep_len, c->keep_cap - c->keep_len);
}

static void on_rate_timer(uv_timer_t *t);

/* For --rate: stops reading while this connection is ahead of schedule. */
static void rate_check(struct conn *c, size_t n) {
  struct bench *b = c->b;
  uint64_t due_ns, now;
  if (b->o.rate == 0 || b->phase != PH_RUN)
    return;
  now = b->now;
  if (c->rate_t0 == 0)
    c->rate_t0 = now;
  c->rate_bytes += n;
  due_ns = (uint64_t)((double)c->rate_bytes * 1e9 / (double)b->o.rate);
  if (c->rate_t0 + due_ns > now + 1000000) {
    uint64_t ms = (c->rate_t0 + due_ns - now) / 1000000;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(c->rate_timer, on_rate_timer, ms, 0);
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_rate_timer(uv_timer_t *t) {
  struct conn *c = t->data;
  if (c->b->phase == PH_DONE)
    return;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  struct bench *b = c->b;
  const uint8_t *base;
  size_t len, off = 0;
  int shared;

  if (nread == 0)
    return;
  if (nread < 0) {
    if (b->phase == PH_DONE)
      return;
    bench_fatal("connection %u: %s", c->idx,
                nread == UV_EOF ? "closed by the server"
                                : uv_strerror((int)nread));
  }
  if (b->phase == PH_DONE)
    return;
  /* The clock times requests; fan-out watchers only time the last event. */
  if (b->o.test != T_FANOUT)
    b->now = uv_hrtime();
  b->rx += (uint64_t)nread;
  shared = (uint8_t *)buf->base == b->rbuf;
  base = shared ? b->rbuf : c->keep;
  len = shared ? (size_t)nread : c->keep_len + (size_t)nread;

  while (off < len) {
    struct fsp_item it;
    ssize_t n = fsp_decoder_feed(&c->dec, base + off, len - off, &it);
    if (n < 0)
      bench_fatal("connection %u: broken stream: %s", c->idx,
                  fsp_strerror((int)n));
    off += (size_t)n;
    if (it.type == FSP_ITEM_FRAME)
      on_frame(c, &it.frame);
    else if (it.type == FSP_ITEM_DATA)
      on_data(c, &it);
    else if (n == 0)
      break;
    if (b->phase == PH_DONE)
      return;
  }
  /* Keep the start of an incomplete frame for the next read. */
  if (off < len) {
    size_t rest = len - off;
    if (shared) {
      if (c->keep_cap < rest) {
        uint32_t cap = (uint32_t)rest + 16384;
        free(c->keep);
        c->keep = xmalloc(cap);
        c->keep_cap = cap;
      }
      memcpy(c->keep, base + off, rest);
    } else if (off > 0) {
      memmove(c->keep, c->keep + off, rest);
    }
    c->keep_len = (uint32_t)rest;
  } else {
    c->keep_len = 0;
  }
  flush(c);
  if (b->stopping) {
    finish(b);
    return;
  }
  rate_check(c, (size_t)nread);
}

/* ------------------------------------------------------------------------ */
/* Connecting */

static void connect_more(struct bench *b);

static void on_connect(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  struct bench *b = c->b;
  struct fsp_msg m;
  static const char agent[] = "fsbench/" FSP_VERSION_STRING;

  b->connecting--;
  if (status < 0)
    bench_fatal("connection %u: connect: %s", c->idx, uv_strerror(status));
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  connect_more(b);
  if (b->o.raw) {
    conn_ready(c);
    return;
  }
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_HELLO;
  m.u.hello.version = FSP_PROTO_VERSION;
  m.u.hello.max_payload = FSP_DEFAULT_PAYLOAD;
  m.u.hello.agent.ptr = agent;
  m.u.hello.agent.len = sizeof(agent) - 1;
  out_msg(c, &m);
  if (b->o.test == T_FANOUT && c->idx + 1 < b->nconns) {
    /* Watchers subscribe right away; they are ready on SUBSCRIBED. */
    memset(&m, 0, sizeof(m));
    m.op = FSP_OP_SUBSCRIBE;
    m.id = 1;
    out_msg(c, &m);
    c->slots[0].op = FSP_OP_SUBSCRIBE;
    c->slots[0].state = S_WAIT;
  }
  flush(c);
}

static void connect_more(struct bench *b) {
  while (b->next_connect < b->nconns && b->connecting < MAX_CONNECTING) {
    struct conn *c = &b->conns[b->next_connect++];
    int r = uv_tcp_init(b->loop, &c->tcp);
    if (r < 0)
      bench_fatal("tcp init: %s", uv_strerror(r));
    c->tcp.data = c;
    c->creq.data = c;
    r = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&b->addr,
                       on_connect);
    if (r < 0)
      bench_fatal("connection %u: connect: %s%s", c->idx, uv_strerror(r),
                  r == UV_EMFILE ? " (open-file limit)" : "");
    b->connecting++;
  }
}

/* ------------------------------------------------------------------------ */
/* Fan-out rounds */

static void on_fan_pause(uv_timer_t *t) {
  fan_round(t->data);
}

static void on_fan_timeout(uv_timer_t *t) {
  struct bench *b = t->data;
  bench_fatal(
      "fan-out round %d: %u of %u watchers still without the event after "
      "%d ms",
      b->round, b->fan_left, b->nconns - 1, FAN_TIMEOUT_MS);
}

static void fan_report(struct bench *b) {
  int n = b->round;
  uint32_t w = b->nconns - 1;
  double med, med_end, lo, hi;
  med_end = bench_median(b->fan_end_ms, n);
  med = bench_median(b->fan_ms, n);
  lo = b->fan_ms[0];
  hi = b->fan_ms[n - 1];
  if (!b->o.quiet) {
    printf("fanout: %u watchers, %d rounds, %s\n", w, n,
           b->o.notice ? "NOTICE" : "PUT");
    printf("  all watchers had it after %.3f ms (median; min %.3f, max %.3f)\n",
           med, lo, hi);
    if (!b->o.notice)
      printf("  counted from END instead of PUT: %.3f ms (median)\n", med_end);
    if (b->fan_resync)
      printf("  %" PRIu64 " RESYNC frames counted as delivered\n",
             b->fan_resync);
  }
  if (b->o.json)
    printf("{\"test\":\"fanout\",\"watchers\":%u,\"rounds\":%d,"
           "\"via\":\"%s\",\"median_ms\":%.4f,\"min_ms\":%.4f,"
           "\"max_ms\":%.4f,\"median_from_end_ms\":%.4f,\"resync\":%" PRIu64
           "}\n",
           w, n, b->o.notice ? "notice" : "put", med, lo, hi, med_end,
           b->fan_resync);
}

static void fan_check_done(struct bench *b) {
  int i = b->round - 1;
  if (b->fan_left != 0 || !b->pub_done)
    return;
  uv_timer_stop(&b->timer);
  b->fan_ms[i] = (double)(b->fan_t_end - b->fan_t0) / 1e6;
  b->fan_end_ms[i] = b->o.notice
                         ? b->fan_ms[i]
                         : (double)(b->fan_t_end - b->fan_t_put_end) / 1e6;
  if (b->round >= b->o.rounds) {
    fan_report(b);
    finish(b);
    return;
  }
  uv_timer_start(&b->timer, on_fan_pause, FAN_PAUSE_MS, 0);
}

/* One round: the publisher (the last connection) puts the file or sends a
 * notice; the round ends when every watcher has the event and the publisher
 * has its answer. */
static void fan_round(struct bench *b) {
  struct conn *pub = &b->conns[b->nconns - 1];
  struct fsp_msg m;

  b->round++;
  b->fan_left = b->nconns - 1;
  b->pub_done = 0;
  memset(&m, 0, sizeof(m));
  m.id = 1;
  if (b->o.notice) {
    b->fan_text_len = (size_t)snprintf(b->fan_text, sizeof(b->fan_text),
                                       "fsbench round %d", b->round);
    m.op = FSP_OP_NOTICE;
    m.u.text.ptr = b->fan_text;
    m.u.text.len = b->fan_text_len;
    out_msg(pub, &m);
    pub->slots[0].op = FSP_OP_NOTICE;
    pub->slots[0].state = S_WAIT;
  } else {
    b->fan_text_len = strlen(b->o.name);
    memcpy(b->fan_text, b->o.name, b->fan_text_len);
    send_put(pub, 0, b->o.name, b->o.file_size);
  }
  uv_timer_start(&b->timer, on_fan_timeout, FAN_TIMEOUT_MS, 0);
  b->fan_t0 = uv_hrtime();
  pub->slots[0].t0 = b->fan_t0;
  flush(pub);
}

/* ------------------------------------------------------------------------ */
/* Report and shutdown */

static void report(struct bench *b) {
  double secs = (double)(b->t_end - b->t_start) / 1e9;
  double rps = secs > 0 ? (double)b->completed / secs : 0;
  int bulk = b->o.test == T_GET || b->o.test == T_PUT || b->o.test == T_MIXED;
  double mbps =
      secs > 0 ? (double)(bulk ? b->payload : b->rx + b->tx) / secs / 1e6 : 0;
  double p50 = hist_pct_ms(b, 0.50), p99 = hist_pct_ms(b, 0.99),
         p999 = hist_pct_ms(b, 0.999);

  if (!b->o.quiet) {
    printf("%s: %" PRIu64 " requests in %.3f s, %u connections, pipeline %u"
           "%s\n",
           test_names[b->o.test], b->completed, secs, b->nconns, b->o.pipeline,
           bulk ? "" : " (MB/s counts wire bytes)");
    printf("  %.0f requests/s, %.1f MB/s\n", rps, mbps);
    printf("  latency p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms\n", p50, p99,
           p999);
    if (b->errors)
      printf("  %" PRIu64 " requests ended with an error\n", b->errors);
  }
  if (b->o.json)
    printf("{\"test\":\"%s\",\"connections\":%u,\"pipeline\":%u,"
           "\"file_size\":%" PRIu64 ",\"requests\":%" PRIu64
           ",\"errors\":%" PRIu64 ",\"seconds\":%.6f,\"rps\":%.1f,"
           "\"mbps\":%.3f,\"payload_bytes\":%" PRIu64 ",\"rx_bytes\":%" PRIu64
           ",\"tx_bytes\":%" PRIu64 ",\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
           "\"p999_ms\":%.4f}\n",
           test_names[b->o.test], b->nconns, b->o.pipeline, b->o.file_size,
           b->completed, b->errors, secs, rps, mbps, b->payload, b->rx, b->tx,
           p50, p99, p999);
  if (b->errors)
    b->exit_code = 1;
}

static void finish(struct bench *b) {
  if (b->finished)
    return;
  b->finished = 1;
  b->t_end = uv_hrtime();
  if (b->o.test != T_FANOUT && b->o.test != T_IDLE)
    report(b);
  fflush(stdout);
  b->phase = PH_DONE;
  /* Closing 10,000 sockets one by one costs more than the kernel needs to
   * tear them down at exit, and the numbers are out already. */
  exit(b->exit_code);
}

/* ------------------------------------------------------------------------ */
/* Options */

static uint64_t parse_size(const char *s) {
  char *end;
  double v;
  errno = 0;
  v = strtod(s, &end);
  if (errno != 0 || end == s || v < 0)
    bench_fatal("bad size: %s", s);
  switch (*end) {
  case 'k':
  case 'K':
    v *= 1024.0;
    end++;
    break;
  case 'm':
  case 'M':
    v *= 1024.0 * 1024.0;
    end++;
    break;
  case 'g':
  case 'G':
    v *= 1024.0 * 1024.0 * 1024.0;
    end++;
    break;
  default:
    break;
  }
  if (*end == 'i' || *end == 'B')
    end++;
  if (*end == 'B')
    end++;
  if (*end != '\0')
    bench_fatal("bad size: %s", s);
  return (uint64_t)v;
}

static void usage(FILE *f) {
  fprintf(
      f, "usage: fsbench [options]\n"
         "  -s HOST:PORT     server (default 127.0.0.1:7878)\n"
         "  -c N             connections (default 50); watchers for fanout\n"
         "  -P N             requests in flight per connection (default 1)\n"
         "  -n N             requests to complete (default 100000)\n"
         "  -d SECONDS       run for a time instead of -n\n"
         "  -t TEST          size|ls|get|put|mixed|fanout|idle (default size)\n"
         "  --file-size N    bytes of the file read or written (K/M/G "
         "suffixes;\n"
         "                   default 4096, 16 for fanout)\n"
         "  --name NAME      file the tests use (default fsbench.dat;\n"
         "                   fsbench-fan for fanout)\n"
         "  --rounds N       fanout rounds, median reported (default 5)\n"
         "  --notice         fanout with NOTICE instead of PUT\n"
         "  --rate BYTES     get: read at most BYTES per second per "
         "connection\n"
         "  --verify         get: check each download's XXH3\n"
         "  --raw            idle: TCP connections without HELLO\n"
         "  --json           also print one JSON line with the results\n"
         "  -q               only the JSON line\n"
         "  -h, --help       this text\n"
         "size/get/ls/mixed upload NAME first unless it already has the "
         "size.\n"
         "idle prints \"ready N\" once all connections are up, then holds "
         "them\n"
         "(for -d seconds, or until killed).\n");
}

static uint64_t parse_count(const char *s, const char *what) {
  char *end;
  unsigned long long v;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0')
    bench_fatal("bad %s: %s", what, s);
  return v;
}

static void parse_opts(struct bench *b, int argc, char **argv) {
  enum {
    O_FILE_SIZE = 256,
    O_NAME,
    O_ROUNDS,
    O_NOTICE,
    O_RATE,
    O_VERIFY,
    O_RAW,
    O_JSON
  };
  static const struct option lopts[] = {
      {"file-size", required_argument, NULL, O_FILE_SIZE},
      {"name", required_argument, NULL, O_NAME},
      {"rounds", required_argument, NULL, O_ROUNDS},
      {"notice", no_argument, NULL, O_NOTICE},
      {"rate", required_argument, NULL, O_RATE},
      {"verify", no_argument, NULL, O_VERIFY},
      {"raw", no_argument, NULL, O_RAW},
      {"json", no_argument, NULL, O_JSON},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct opts *o = &b->o;
  const char *server = "127.0.0.1:7878";
  int ch, n_set = 0;

  o->conns = 50;
  o->pipeline = 1;
  o->requests = 100000;
  o->test = T_SIZE;
  o->file_size = 4096;
  o->rounds = 5;
  while ((ch = getopt_long(argc, argv, "s:c:P:n:d:t:qh", lopts, NULL)) != -1) {
    switch (ch) {
    case 's':
      server = optarg;
      break;
    case 'c':
      o->conns = (uint32_t)parse_count(optarg, "connection count");
      break;
    case 'P':
      o->pipeline = (uint32_t)parse_count(optarg, "pipeline");
      break;
    case 'n':
      o->requests = parse_count(optarg, "request count");
      n_set = 1;
      break;
    case 'd':
      o->seconds = strtod(optarg, NULL);
      if (o->seconds <= 0)
        bench_fatal("bad duration: %s", optarg);
      break;
    case 't': {
      int found = 0;
      for (int i = 0; i < (int)(sizeof(test_names) / sizeof(*test_names)); i++)
        if (strcmp(optarg, test_names[i]) == 0) {
          o->test = (enum test)i;
          found = 1;
        }
      if (!found)
        bench_fatal("unknown test %s", optarg);
      break;
    }
    case 'q':
      o->quiet = 1;
      break;
    case O_FILE_SIZE:
      o->file_size = parse_size(optarg);
      o->file_size_set = 1;
      break;
    case O_NAME:
      o->name = optarg;
      break;
    case O_ROUNDS:
      o->rounds = (int)parse_count(optarg, "round count");
      break;
    case O_NOTICE:
      o->notice = 1;
      break;
    case O_RATE:
      o->rate = parse_size(optarg);
      break;
    case O_VERIFY:
      o->verify = 1;
      break;
    case O_RAW:
      o->raw = 1;
      break;
    case O_JSON:
      o->json = 1;
      break;
    case 'h':
      usage(stdout);
      exit(0);
    default:
      usage(stderr);
      exit(2);
    }
  }
  if (optind != argc) {
    usage(stderr);
    exit(2);
  }
  if (o->conns == 0 || o->pipeline == 0 || o->pipeline > 65536)
    bench_fatal("-c and -P must be at least 1 (and -P at most 65536)");
  if (o->rounds < 1 || o->rounds > MAX_ROUNDS)
    bench_fatal("--rounds must be 1..%d", MAX_ROUNDS);
  if (o->seconds > 0 && n_set)
    bench_fatal("-n and -d exclude each other");
  if (o->raw && o->test != T_IDLE)
    bench_fatal("--raw is for -t idle");
  if (o->test == T_FANOUT) {
    o->pipeline = 1;
    if (!o->file_size_set)
      o->file_size = 16;
  }
  if (o->name == NULL)
    o->name = o->test == T_FANOUT ? "fsbench-fan" : "fsbench.dat";
  if (fsp_name_check(o->name, strlen(o->name)) != 0)
    bench_fatal("bad name: %s", o->name);
  if (o->seconds == 0 && o->requests == 0)
    bench_fatal("-n must be at least 1");
  bench_parse_addr(server, &b->addr);
}

/* Builds the request templates (id 0) once. */
static void build_templates(struct bench *b) {
  struct fsp_msg m;
  ssize_t n;
  size_t nl = strlen(b->o.name);

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_STAT;
  m.u.name.ptr = b->o.name;
  m.u.name.len = nl;
  n = fsp_msg_encode(b->tpl_stat, sizeof(b->tpl_stat), &m);
  if (n < 0 || (size_t)n > sizeof(b->tpl_stat))
    bench_fatal("cannot encode STAT");
  b->tpl_stat_len = (uint32_t)n;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_GET;
  m.u.range.offset = 0;
  m.u.range.length = FSP_LENGTH_TO_END;
  m.u.range.name.ptr = b->o.name;
  m.u.range.name.len = nl;
  n = fsp_msg_encode(b->tpl_get, sizeof(b->tpl_get), &m);
  if (n < 0 || (size_t)n > sizeof(b->tpl_get))
    bench_fatal("cannot encode GET");
  b->tpl_get_len = (uint32_t)n;

  fsp_header_write(b->tpl_list, FSP_OP_LIST, 0, 0);
  /* The biggest request: PUT with the longer of the two names. */
  b->req_max = FSP_HDR_LEN + 17 + (nl > NAME_ROOM ? (uint32_t)nl : NAME_ROOM);
}

static void fill_pattern(struct bench *b) {
  uint64_t x = 0x9e3779b97f4a7c15ull, left;
  XXH3_state_t *st;
  b->pattern = xmalloc(PATTERN_SIZE);
  for (uint32_t i = 0; i < PATTERN_SIZE; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(b->pattern + i, &x, 8);
  }
  if (b->o.test == T_IDLE)
    return;
  st = XXH3_createState();
  if (st == NULL)
    bench_fatal("out of memory");
  XXH3_64bits_reset(st);
  left = b->o.file_size;
  while (left > 0) {
    size_t n = left < PATTERN_SIZE ? (size_t)left : PATTERN_SIZE;
    XXH3_64bits_update(st, b->pattern, n);
    left -= n;
  }
  b->put_hash = XXH3_64bits_digest(st);
  XXH3_freeState(st);
}

int main(int argc, char **argv) {
  static struct bench bench;
  struct bench *b = &bench;
  uint32_t out_cap;
  int r;

  signal(SIGPIPE, SIG_IGN);
  bench_set_prog("fsbench");
  parse_opts(b, argc, argv);
  b->nconns = b->o.conns + (b->o.test == T_FANOUT ? 1 : 0);
  /* Thousands of connections need thousands of descriptors. */
  bench_raise_nofile(b->nconns);
  if (b->o.test != T_FANOUT && b->o.test != T_IDLE)
    b->target = b->o.seconds > 0 ? 0 : b->o.requests;
  b->loop = uv_default_loop();
  b->rbuf = xmalloc(RBUF_SIZE);
  build_templates(b);
  fill_pattern(b);
  uv_timer_init(b->loop, &b->timer);
  b->timer.data = b;

  out_cap = 256 + b->o.pipeline * b->req_max;
  b->conns = xcalloc(b->nconns, sizeof(*b->conns));
  for (uint32_t i = 0; i < b->nconns; i++) {
    struct conn *c = &b->conns[i];
    c->b = b;
    c->idx = i;
    c->peer_max = FSP_MIN_PAYLOAD;
    c->wreq.data = c;
    fsp_decoder_init(&c->dec, FSP_DEFAULT_PAYLOAD);
    c->nslots = b->o.pipeline;
    c->slots = xcalloc(c->nslots, sizeof(*c->slots));
    c->out_cap = out_cap;
    c->out[0] = xmalloc(2 * (size_t)out_cap);
    c->out[1] = c->out[0] + out_cap;
    if (b->o.verify && (b->o.test == T_GET || b->o.test == T_MIXED))
      for (uint32_t s = 0; s < c->nslots; s++) {
        c->slots[s].xs = XXH3_createState();
        if (c->slots[s].xs == NULL)
          bench_fatal("out of memory");
      }
    if (b->o.rate) {
      c->rate_timer = xmalloc(sizeof(*c->rate_timer));
      uv_timer_init(b->loop, c->rate_timer);
      c->rate_timer->data = c;
    }
  }
  connect_more(b);
  r = uv_run(b->loop, UV_RUN_DEFAULT);
  (void)r;
  /* The loop only ends early when every handle is gone, which finish()
   * preempts; reaching here means the run never started. */
  bench_fatal("the run ended before it finished");
}
