/* Client connections: reading, output and backpressure; see conn.h. */
#define _GNU_SOURCE
#include "conn.h"

#include <errno.h>
#include <limits.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authsrv.h"
#include "log.h"
#include "mem.h"

#define READ_BLOCK FSD_READ_BLOCK /* usual read buffer size */
#define PUT_BLOCK 262144u         /* read buffer while an upload streams */
#define PUT_WRITES_MAX 64u        /* PUT disk writes that pause reading */
#define PUT_MEM_MAX (4u << 20)    /* PUT buffers that pause reading */
#define OUT_FIRST 256u            /* first room for gathered frames */
#define OUT_CHUNK 16384u          /* small frames gathered per write */
#define OUT_PAUSE (2u << 20)      /* unsent output that pauses reading */
#define FLUSH_TIMEOUT_MS 10000u   /* a closing peer must read by then */
#define MS_PER_S 1000u

/* Spare read buffers. An upload's 1 MiB DATA frames each fill a buffer
 * that stays pinned until its disk write is done; allocated fresh, every
 * such buffer was mapped, zero-filled page by page and unmapped again.
 * Buffers of PUT_BLOCK bytes or more are kept instead, at most
 * RPOOL_SPARES of them and RPOOL_BYTES in all, so the memory they hold
 * stays bounded; a connection takes one only while it has bytes to parse. */
#define RPOOL_SPARES 16u
#define RPOOL_BYTES (8u << 20)
/* Spare output buffers of the first size (OUT_FIRST), kept for the next
 * broadcast, which needs one per subscriber: fresh heap for each cost page
 * faults and brk() (glibc trims the freed top). At most OPOOL_SPARES (about
 * 7 MiB), all freed by the sweep after a period in which none was taken. */
#define OPOOL_SPARES 16384u

/* A poll handle on a dup of a connection's socket, with that dup: libuv
 * allows one handle per fd in its epoll set, and the socket's is the
 * uv_tcp_t's. */
struct fsd_zpoll {
  uv_poll_t handle;
  struct fsd_conn *c;
  int fd;
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static int out_flush(struct fsd_conn *c);
static void conn_break(struct fsd_conn *c);
static void on_flush(uv_check_t *h);

/* Sets up the connection set; see conn.h. */
void fsd_net_init(struct fsd_net *net, uv_loop_t *loop, struct fsd_host *host,
                  unsigned max_clients, unsigned idle_timeout) {
  memset(net, 0, sizeof(*net));
  net->loop = loop;
  net->host = host;
  net->max_clients = max_clients;
  net->max_per_ip = UINT_MAX;
  fsd_peers_init(&net->peers, 0);
  net->idle_timeout = idle_timeout;
  fsd_list_init(&net->conns);
  fsd_list_init(&net->dirty);
  fsd_list_init(&net->sent);
  /* Blocks of one upload come in multiples of PUT_BLOCK, to fit each
   * other's requests; small requests keep small, unpooled buffers. */
  fsd_bufpool_init(&net->rpool, PUT_BLOCK, (size_t)-1, PUT_BLOCK, RPOOL_SPARES,
                   RPOOL_BYTES);
  fsd_bufpool_init(&net->opool, OUT_FIRST, OUT_FIRST, 0, OPOOL_SPARES,
                   (size_t)-1);
  uv_check_init(loop, &net->flush);
  uv_check_start(&net->flush, on_flush);
  uv_unref((uv_handle_t *)&net->flush); /* never the reason to keep running */
}

/* Sets --max-clients-per-ip; see conn.h. */
void fsd_net_limit_per_ip(struct fsd_net *net, unsigned max, uint64_t seed) {
  net->max_per_ip = max;
  fsd_peers_init(&net->peers, seed);
}

/* Frees the spares; see conn.h. */
void fsd_net_free(struct fsd_net *net) {
  fsd_bufpool_free(&net->rpool);
  fsd_bufpool_free(&net->opool);
  fsd_peers_free(&net->peers);
}

void fsd_conn_ref(struct fsd_conn *c) {
  c->refs++;
}

void fsd_conn_unref(struct fsd_conn *c) {
  struct fsd_net *net = c->net;

  if (--c->refs > 0)
    return;
  if (c->rb != NULL)
    fsd_buf_unref(&net->rpool, c->rb);
  if (c->tp->release != NULL)
    c->tp->release(c);
  fsd_bufpool_put(&net->opool, c->out);
  fsd_list_remove(&c->link);
  if (c->counted)
    net->nclients--;
  if (c->ip_counted)
    fsd_peers_remove(&net->peers, (struct sockaddr *)&c->addr);
  if (net->auth != NULL)
    fsd_authsrv_forget(net->auth, c);
  fsd_free(c);
  if (net->stopping && fsd_list_empty(&net->conns) && net->on_empty != NULL)
    net->on_empty(net);
}

static void on_conn_closed(uv_handle_t *h) {
  struct fsd_conn *c = h->data;
  fsd_info("client %s gone", c->peer);
  fsd_conn_unref(c);
}

static void on_poll_closed(uv_handle_t *h) {
  struct fsd_zpoll *p = (struct fsd_zpoll *)h;
  struct fsd_conn *c = p->c;

  close(p->fd);
  fsd_free(p);
  fsd_conn_unref(c);
}

/* Closes the socket handle, and the poll on its dup if there is one. */
static void close_tcp(struct fsd_conn *c) {
  if (c->poll != NULL) {
    uv_close((uv_handle_t *)&c->poll->handle, on_poll_closed);
    c->poll = NULL;
  }
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* Closes now, without waiting for queued output; see conn.h. */
void fsd_conn_hard_close(struct fsd_conn *c) {
  if (c->hard)
    return;
  c->hard = 1;
  fsd_bufpool_put(&c->net->opool, c->out); /* nobody will read it */
  c->out = NULL;
  if (c->zf != NULL) {
    /* A DATA frame cut short: the stream is broken anyway. */
    struct fsd_zframe *zf = c->zf;
    c->zf = NULL;
    zf->done(zf, UV_ECANCELED);
  }
  fsd_session_close(&c->sess);
  close_tcp(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct fsd_conn *c = req->data;
  (void)status;
  fsd_free(req);
  close_tcp(c);
}

/* Closes once everything queued has been written; see conn.h. */
void fsd_conn_close(struct fsd_conn *c) {
  uv_shutdown_t *req;

  if (c->closing || c->hard || c->broken)
    return;
  if (c->zf != NULL) {
    c->close_pending = 1; /* not in the middle of a DATA frame */
    return;
  }
  if (out_flush(c) < 0) { /* the shutdown follows everything queued */
    conn_break(c);
    return;
  }
  if (c->tp->closing != NULL)
    c->tp->closing(c);
  c->closing = 1;
  c->closing_since = uv_now(c->net->loop);
  uv_read_stop((uv_stream_t *)&c->tcp);
  req = fsd_malloc(sizeof(*req));
  if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
    fsd_free(req);
    conn_break(c);
    return;
  }
  req->data = c;
}

size_t fsd_conn_queued(const struct fsd_conn *c) {
  return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

size_t fsd_conn_backlog(const struct fsd_conn *c) {
  return fsd_conn_queued(c) + (c->out != NULL ? c->out->len : 0);
}

/* Stops reading the socket while the disk lags behind an upload, or while
 * the client leaves our answers unread (it could otherwise pile up requests
 * whose answers we would queue without bound); resumes at half the mark.
 * Uploads are measured by the read buffers their pieces hold (put_mem),
 * not by the bytes of the pieces: a 13-byte DATA frame alone in a read
 * holds a whole 256 KiB buffer until its disk write, and 64 uploads fed
 * that way held 16 MiB per connection. */
void fsd_conn_update_reading(struct fsd_conn *c) {
  size_t q = fsd_conn_backlog(c);

  if (c->closing || c->hard)
    return;
  /* A held AUTH also stops reading: the session reads nothing behind it
   * until it is checked, and the client must not fill our memory meanwhile. */
  if (!c->paused &&
      (c->put_mem > PUT_MEM_MAX || c->put_writes > PUT_WRITES_MAX ||
       q > OUT_PAUSE || c->auth_held)) {
    c->paused = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
  } else if (c->paused && c->put_mem <= PUT_MEM_MAX / 2 &&
             c->put_writes <= PUT_WRITES_MAX / 2 && q <= OUT_PAUSE / 2 &&
             !c->auth_held) {
    c->paused = 0;
    c->unpaused_at = uv_now(c->net->loop);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->tp->resume != NULL)
      c->tp->resume(c);
  }
}

/* Output moved on: transfers waiting for a short queue may go on, and so
 * may the session (a LIST paused for a long backlog) and reading. */
static void after_write(struct fsd_conn *c) {
  struct fsd_list *l, *n;

  fsd_list_each_safe(l, n, &c->waiters) {
    struct fsd_waiter *w = fsd_container_of(l, struct fsd_waiter, link);
    w->writable(w);
  }
  if (!c->hard) {
    fsd_session_writable(&c->sess);
    fsd_conn_update_reading(c);
  }
}

static void on_out_written(uv_write_t *req, int status) {
  struct fsd_buf *w = (struct fsd_buf *)req;
  struct fsd_conn *c = w->owner;

  fsd_bufpool_put(&c->net->opool, w);
  c->last_out = uv_now(c->net->loop);
  if (status < 0) {
    if (status != UV_ECANCELED)
      fsd_debug("write to %s failed: %s", c->peer, uv_strerror(status));
    fsd_conn_hard_close(c);
    return;
  }
  after_write(c);
}

/* Plaintext: writes what the socket takes of p[0..len) now. This is
 * uv_try_write() with send() in place of its write(): the socket layer is
 * entered directly instead of through vfs_write(), which costs less per
 * small write in a broadcast. */
static int plain_try_write(struct fsd_conn *c, const uint8_t *p, size_t len) {
  uv_os_fd_t fd;
  ssize_t k;

  if (fsd_conn_queued(c) != 0)
    return 0;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return UV_EBADF;
  do
    k = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (k < 0 && errno == EINTR);
  if (k >= 0)
    return (int)k;
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return 0;
  return uv_translate_sys_error(errno);
}

static int plain_write(struct fsd_conn *c, uv_write_t *req,
                       const uv_buf_t *bufs, unsigned n, uv_write_cb cb) {
  return uv_write(req, (uv_stream_t *)&c->tcp, bufs, n, cb);
}

/* Plaintext: the bytes read are the frames. */
static void plain_bytes_in(struct fsd_conn *c) {
  size_t used = fsd_session_feed(&c->sess, c->rb->data, c->rb->len);

  if (c->rb != NULL)
    fsd_conn_keep_tail(c, used);
}

const struct fsd_transport fsd_transport_plain = {
    .name = "plaintext",
    .zero_copy = 1,
    .bytes_in = plain_bytes_in,
    .try_write = plain_try_write,
    .write = plain_write,
};

/* Hands the gathered small frames to the socket as one write. When nothing
 * is queued before them, they are written at once with try_write() and
 * only what the socket did not take becomes a write request: a request
 * costs a copy of the bytes in flight and, in libuv 1.44, one epoll_ctl()
 * to arm the socket and one to disarm it after the write. Bytes queued
 * earlier (a GET chunk, a remainder) keep their order, as try_write()
 * refuses to write while libuv's write queue is not empty; a DATA frame
 * half sent by sendfile() keeps everything back (c->zf). When all bytes
 * went out, c->wrote asks on_flush() for the after_write() that
 * on_out_written() would have done. Returns 0, or a negative error when
 * the connection failed: the caller closes it (at once, or through
 * conn_break() when it may be inside a session's or a transfer's code). */
static int out_flush(struct fsd_conn *c) {
  struct fsd_net *net = c->net;
  struct fsd_buf *w = c->out;
  uv_buf_t buf;
  int k;

  if (w == NULL || c->zf != NULL)
    return 0; /* nothing, or sendfile() is in the middle of a frame */
  c->out = NULL;
  buf = uv_buf_init((char *)w->data, (unsigned)w->len);
  k = c->tp->try_write(c, w->data, w->len);
  if (k > 0)
    c->last_out = uv_now(net->loop);
  if (k == (int)w->len) {
    if (net->flushing)
      fsd_list_push(&net->sent, &w->link);
    else
      fsd_bufpool_put(&net->opool, w);
    c->wrote = 1;
    return 0;
  }
  if (k < 0) {
    fsd_bufpool_put(&net->opool, w);
    return k;
  }
  if (k > 0) {
    buf.base += k;
    buf.len -= (size_t)k;
  }
  k = c->tp->write(c, &w->req, &buf, 1, on_out_written);
  if (k != 0) {
    fsd_bufpool_put(&net->opool, w);
    return k;
  }
  return 0;
}

/* Puts c on the list on_flush() goes through at the end of this loop
 * iteration, once. */
static void mark_dirty(struct fsd_conn *c) {
  if (!c->dirty) {
    c->dirty = 1;
    fsd_conn_ref(c); /* held by net->dirty until the flush */
    fsd_list_push(&c->net->dirty, &c->dirty_link);
  }
}

/* The connection failed where closing it now would pull the session and
 * its transfers away from under the caller (a GET's pump, a session
 * walking its requests): nothing more is sent, and on_flush() closes it
 * at the top of its own callback. */
static void conn_break(struct fsd_conn *c) {
  if (c->hard || c->broken)
    return;
  c->broken = 1;
  mark_dirty(c);
}

/* Runs once per loop iteration, after the callbacks of the poll phase: all
 * the answers and events one iteration produced for a client go out in one
 * write, and a client with thousands of small answers pending costs bytes,
 * not one write request (about 200 bytes) each. A connection whose output
 * went out at once gets after_write() here, at the top of a callback, so
 * that what waits for the output to drain (a LIST, paused reading) goes
 * on; it may queue more, which puts the connection back on the list. */
static void on_flush(uv_check_t *h) {
  struct fsd_net *net = fsd_container_of(h, struct fsd_net, flush);
  struct fsd_list done, *l;

  net->flushing = 1;
  while (!fsd_list_empty(&net->dirty)) {
    fsd_list_init(&done);
    while ((l = fsd_list_pop(&net->dirty)) != NULL) {
      struct fsd_conn *c = fsd_container_of(l, struct fsd_conn, dirty_link);
      c->dirty = 0;
      if (c->broken || out_flush(c) < 0)
        fsd_conn_hard_close(c);
      if (c->wrote) {
        c->wrote = 0;
        fsd_list_push(&done, &c->dirty_link); /* keeps the list's ref */
      } else {
        fsd_conn_unref(c);
      }
    }
    /* Freed only after all the writes: freeing each buffer right after its
     * write, between the writes of a broadcast, made an event reach the
     * last of many watchers later. */
    while ((l = fsd_list_pop(&net->sent)) != NULL)
      fsd_bufpool_put(&net->opool, fsd_container_of(l, struct fsd_buf, link));
    while ((l = fsd_list_pop(&done)) != NULL) {
      struct fsd_conn *c = fsd_container_of(l, struct fsd_conn, dirty_link);
      if (!c->hard)
        after_write(c);
      fsd_conn_unref(c);
    }
  }
  net->flushing = 0;
}

/* Room for frames of need bytes: OUT_FIRST doubled up to OUT_CHUNK, or need
 * when that is more. */
static size_t out_cap(size_t need) {
  size_t cap = OUT_FIRST;

  while (cap < need && cap < OUT_CHUNK)
    cap *= 2;
  return cap < need ? need : cap;
}

/* Queues a frame; see conn.h. The buffer starts small and doubles as
 * frames come, up to OUT_CHUNK: a broadcast gives each of thousands of
 * subscribers one frame of about 60 bytes, and a large buffer each, fresh
 * memory every time, cost more in page faults and brk() than the frames. */
int fsd_conn_send(struct fsd_conn *c, const void *frame, size_t len) {
  struct fsd_buf *w = c->out;

  if (c->hard || c->broken || uv_is_closing((uv_handle_t *)&c->tcp))
    return UV_ECANCELED;
  if (w != NULL && w->cap - w->len < len) {
    /* Grow within OUT_CHUNK; past it only while a sendfile() frame holds
     * the socket: out_flush() can send nothing then, and starting another
     * buffer would drop this one (with its frames). */
    if (w->len + len <= OUT_CHUNK || c->zf != NULL) {
      size_t need = w->len + len;
      size_t cap = need <= OUT_CHUNK ? out_cap(need) : 2 * need;
      struct fsd_buf *nw = fsd_realloc(w, sizeof(*w) + cap);
      if (nw == NULL)
        return UV_ENOMEM;
      c->out = w = nw;
      w->cap = cap;
    } else {
      int r = out_flush(c);
      if (r < 0) {
        conn_break(c);
        return UV_ECANCELED;
      }
      w = NULL;
    }
  }
  if (w == NULL) {
    w = fsd_bufpool_get(&c->net->opool, out_cap(len));
    if (w == NULL)
      return UV_ENOMEM;
    w->owner = c;
    c->out = w;
    mark_dirty(c);
  }
  memcpy(w->data + w->len, frame, len);
  w->len += len;
  return 0;
}

static void on_buf_written(uv_write_t *req, int status) {
  struct fsd_buf *b = (struct fsd_buf *)req;
  struct fsd_conn *c = b->owner;

  b->done(b, status); /* frees b */
  c->last_out = uv_now(c->net->loop);
  if (status < 0) {
    fsd_conn_hard_close(c);
    return;
  }
  after_write(c);
}

/* Writes a buffer after the gathered output; see conn.h. */
int fsd_conn_write(struct fsd_conn *c, struct fsd_buf *b, size_t len) {
  uv_buf_t buf = uv_buf_init((char *)b->data, (unsigned)len);
  int r;

  if (c->hard || c->broken)
    return UV_ECANCELED;
  r = out_flush(c); /* BEGIN and other answers go first */
  if (r == 0) {
    b->owner = c;
    r = c->tp->write(c, &b->req, &buf, 1, on_buf_written);
  }
  if (r != 0)
    conn_break(c);
  return r;
}

/* --- DATA payloads with sendfile() ---
 *
 * A DATA frame's header goes out with send() and its payload with sendfile()
 * straight from the page cache, on the loop thread: the socket is
 * non-blocking and the pages were brought in by a threadpool job just
 * before. Nothing else may reach the socket in the middle of a frame, so
 * while one is in flight (c->zf) gathered output waits, other transfers
 * wait, and libuv's write queue is empty. When the socket is full, a
 * uv_poll on a dup of it says when to go on. */

static void on_zf_writable(uv_poll_t *h, int status, int events);

/* Sends what the socket takes of c->zf. Returns 1 when the frame is out, 0
 * when the socket is full (the poll will call back), -1 when the
 * connection failed: the caller closes it. */
static int zf_send(struct fsd_conn *c) {
  struct fsd_zframe *zf = c->zf;
  uv_os_fd_t fd;

  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    goto fail;
  while (zf->hdr_done < FSP_HDR_LEN) {
    ssize_t k = send(fd, zf->hdr + zf->hdr_done, FSP_HDR_LEN - zf->hdr_done,
                     MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      goto wait;
    if (k <= 0)
      goto fail;
    zf->hdr_done += (size_t)k;
    c->last_out = uv_now(c->net->loop);
  }
  while (zf->left > 0) {
    off_t off = (off_t)zf->pos;
    ssize_t k = sendfile(fd, zf->fd, &off, zf->left);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      goto wait;
    if (k <= 0) {
      /* The file shrank in place in the middle of a frame: the frame can
       * not be completed, so the connection can not go on. */
      if (k == 0)
        fsd_warn("%s changed while being sent", zf->name);
      goto fail;
    }
    zf->pos += (uint64_t)k;
    zf->left -= (size_t)k;
    c->last_out = uv_now(c->net->loop);
  }
  if (c->poll != NULL)
    uv_poll_stop(&c->poll->handle);
  return 1;

wait:
  if (c->poll == NULL) {
    struct fsd_zpoll *p = fsd_malloc(sizeof(*p));
    if (p == NULL)
      goto fail;
    p->c = c;
    p->fd = dup(fd);
    if (p->fd < 0 || uv_poll_init(c->net->loop, &p->handle, p->fd) != 0) {
      if (p->fd >= 0)
        close(p->fd);
      fsd_free(p);
      goto fail;
    }
    c->poll = p;
    fsd_conn_ref(c); /* released when the poll handle is closed */
  }
  if (uv_poll_start(&c->poll->handle, UV_WRITABLE, on_zf_writable) != 0)
    goto fail;
  return 0;

fail:
  return -1;
}

/* The frame of c->zf is out: let everything that waited for it go on. */
static void zf_finish(struct fsd_conn *c) {
  struct fsd_zframe *zf = c->zf;

  c->zf = NULL;
  zf->done(zf, 0);
  if (out_flush(c) < 0)
    conn_break(c);
  if (c->close_pending) {
    c->close_pending = 0;
    fsd_conn_close(c);
  }
}

static void on_zf_writable(uv_poll_t *h, int status, int events) {
  struct fsd_conn *c = ((struct fsd_zpoll *)h)->c;

  (void)events;
  if (c->zf == NULL || c->hard) {
    uv_poll_stop(h);
    return;
  }
  if (status < 0) {
    fsd_conn_hard_close(c);
    return;
  }
  switch (zf_send(c)) {
  case 1:
    zf_finish(c);
    after_write(c);
    break;
  case -1:
    fsd_conn_hard_close(c);
    break;
  }
}

/* Starts a sendfile() frame; see conn.h. */
int fsd_conn_sendfile(struct fsd_conn *c, struct fsd_zframe *zf, uint32_t id,
                      size_t len) {
  int r;

  if (c->zf != NULL)
    return 0;
  if (c->hard || c->broken || uv_is_closing((uv_handle_t *)&c->tcp) ||
      out_flush(c) < 0) {
    conn_break(c);
    return -1;
  }
  if (fsd_conn_queued(c) != 0)
    return 0; /* after_write() comes back to the waiter */
  fsp_header_write(zf->hdr, FSP_OP_DATA, id, (uint32_t)len);
  zf->hdr_done = 0;
  zf->left = len;
  c->zf = zf;
  r = zf_send(c);
  if (r < 0) {
    c->zf = NULL; /* zf->done is not called: the caller takes it back */
    conn_break(c);
    return -1;
  }
  if (r == 1)
    zf_finish(c);
  return 1;
}

/* --- Reading --- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct fsd_conn *c = h->data;
  struct fsd_buf *b = c->rb;
  /* Uploads come in bigger reads: fewer disk writes per byte. */
  size_t need = c->puts > 0 ? PUT_BLOCK : READ_BLOCK;

  (void)suggested;
  if (b != NULL) {
    size_t more = fsd_session_need(&c->sess, b->data, b->len);
    if (more > need)
      need = more; /* a large frame is coming: make room for all of it */
    if (b->cap - b->len < need) {
      /* No disk write points into c->rb (see keep_tail()): it may move. */
      struct fsd_buf *nb = fsd_bufpool_get(&c->net->rpool, b->len + need);
      if (nb == NULL) {
        *buf = uv_buf_init(NULL, 0);
        return;
      }
      memcpy(nb->data, b->data, b->len);
      nb->len = b->len;
      fsd_bufpool_put(&c->net->rpool, b);
      c->rb = b = nb;
    }
  } else {
    b = fsd_bufpool_get(&c->net->rpool, need);
    if (b == NULL) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->rb = b;
  }
  *buf = uv_buf_init((char *)b->data + b->len, (unsigned)(b->cap - b->len));
}

/* After parsing, keep only the unconsumed tail, in a buffer no disk write
 * points into; give the buffer back when nothing is left. */
void fsd_conn_keep_tail(struct fsd_conn *c, size_t used) {
  struct fsd_bufpool *pool = &c->net->rpool;
  struct fsd_buf *b = c->rb;
  size_t left = b->len - used;

  if (b->refs == 1) {
    if (left == 0) {
      fsd_bufpool_put(pool, b);
      c->rb = NULL;
    } else {
      memmove(b->data, b->data + used, left);
      b->len = left;
    }
    return;
  }
  c->rb = NULL;
  if (left > 0) {
    /* Room for the rest of the frame begun, so that on_alloc() does not
     * have to move it again. */
    size_t more = fsd_session_need(&c->sess, b->data + used, left);
    struct fsd_buf *nb =
        fsd_bufpool_get(pool, left + (more > READ_BLOCK ? more : READ_BLOCK));
    if (nb == NULL) {
      fsd_buf_unref(pool, b);
      fsd_conn_hard_close(c);
      return;
    }
    nb->len = left;
    memcpy(nb->data, b->data + used, left);
    c->rb = nb;
  }
  fsd_buf_unref(pool, b);
}

/* The one place where socket bytes come in. */
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct fsd_conn *c = stream->data;

  (void)buf;
  if (nread < 0) {
    if (c->rb != NULL && c->rb->len == 0 && c->rb->refs == 1) {
      fsd_bufpool_put(&c->net->rpool, c->rb);
      c->rb = NULL;
    }
    if (nread != UV_EOF)
      fsd_debug("read from %s: %s", c->peer, uv_strerror((int)nread));
    /* After BYE the peer may half-close while our answer is queued. */
    if (nread == UV_EOF && (c->closing || c->sess.state == FSD_SESS_BYE)) {
      uv_read_stop(stream);
      return;
    }
    fsd_conn_hard_close(c);
    return;
  }
  if (c->rb == NULL)
    return;
  if (nread == 0) {
    if (c->rb->len == 0) {
      fsd_bufpool_put(&c->net->rpool, c->rb);
      c->rb = NULL;
    }
    return;
  }
  c->rb->len += (size_t)nread;
  c->last_active = uv_now(c->net->loop);
  c->sess.clock_us = uv_hrtime() / 1000; /* requests start now */
  c->tp->bytes_in(c);
  fsd_conn_update_reading(c);
}

/* --- The connection set --- */

/* Accepts a connection; see conn.h. */
struct fsd_conn *fsd_conn_accept(struct fsd_net *net, uv_stream_t *server,
                                 struct fsd_ctx *ctx,
                                 const struct fsd_host_ops *ops) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  struct fsd_conn *c = fsd_calloc(1, sizeof(*c));

  if (c == NULL)
    return NULL;
  uv_tcp_init(net->loop, &c->tcp);
  c->tcp.data = c;
  c->net = net;
  c->tp = net->first != NULL ? net->first : &fsd_transport_plain;
  c->refs = 1;
  fsd_list_init(&c->waiters);
  fsd_list_init(&c->dirty_link);
  fsd_list_init(&c->auth_link);
  fsd_list_push(&net->conns, &c->link);
  fsd_session_init(&c->sess, ctx, ops, c);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    c->hard = 1;
    close_tcp(c);
    return NULL;
  }
  memset(&ss, 0, sizeof(ss));
  uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
  fsd_addr_format(&ss, c->peer, sizeof(c->peer));
  c->addr = ss;
  c->sess.label = c->peer;
  uv_tcp_nodelay(&c->tcp, 1);
  c->last_active = uv_now(net->loop);
  c->last_out = c->last_active;
  fsd_budget_init(&c->budget, FSD_CONN_XFER_BUDGET);
  return c;
}

/* Refuses c: ERROR LIMIT with the text why, then close. */
static void refuse(struct fsd_conn *c, const char *why) {
  uint8_t frame[FSP_HDR_LEN + 64]; /* the ERRORs below fit easily */
  struct fsp_msg m;
  ssize_t n;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_ERROR;
  m.u.error.status = FSP_ST_LIMIT;
  m.u.error.text.ptr = why;
  m.u.error.text.len = strlen(why);
  n = fsp_msg_encode(frame, sizeof(frame), &m);
  if (n > 0 && (size_t)n <= sizeof(frame))
    fsd_conn_send(c, frame, (size_t)n);
  c->sess.state = FSD_SESS_CLOSED;
  fsd_conn_close(c);
}

/* Counts c against its address; returns the connections from there, c
 * included (0 for an address that cannot be told apart, which is then not
 * limited; UINT_MAX when out of memory, which refuses). */
static unsigned count_peer(struct fsd_conn *c) {
  int n = fsd_peers_add(&c->net->peers, (struct sockaddr *)&c->addr);

  if (n < 0)
    return n == UV_ENOMEM ? UINT_MAX : 0;
  c->ip_counted = 1;
  return (unsigned)n;
}

/* Counts c and starts reading; see conn.h. */
int fsd_conn_start(struct fsd_conn *c) {
  struct fsd_net *net = c->net;

  if (net->nclients >= net->max_clients) {
    fsd_warn("client %s refused: %u clients already", c->peer, net->nclients);
    refuse(c, "too many clients");
    return FSP_ST_LIMIT;
  }
  if (net->max_per_ip != UINT_MAX && count_peer(c) > net->max_per_ip) {
    fsd_warn("client %s refused: %u connections from its address already",
             c->peer, net->max_per_ip);
    refuse(c, "too many connections from this address");
    return FSP_ST_LIMIT;
  }
  c->counted = 1;
  net->nclients++;
  fsd_info("client %s connected", c->peer);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    fsd_conn_hard_close(c);
  return 0;
}

/* Whether c's answers have moved no byte for limit ms while some waited
 * (nginx's send_timeout). A slow reader moves bytes and is never stalled;
 * a subscriber with nothing in flight is left alone, as its events
 * coalesce instead of queueing (see session.c). */
static int output_stalled(struct fsd_conn *c, uint64_t now, uint64_t limit) {
  size_t q = fsd_conn_queued(c);
  uv_os_fd_t fd;
  int outq = -1;

  /* libuv reports no partial progress of a queued write but its queue
   * size, which shrinks as the socket takes bytes. And a reader taking a
   * little at a time empties the socket's buffer without making room
   * enough to wake us: the kernel's count of unsent bytes shows it. */
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 ||
      ioctl(fd, SIOCOUTQ, &outq) != 0)
    outq = -1;
  if (q != c->last_qsize || outq != c->last_outq) {
    c->last_qsize = q;
    c->last_outq = outq;
    c->last_out = now;
  }
  if (q == 0 && c->out == NULL && c->zf == NULL) {
    c->last_out = now; /* nothing waits: the clock starts when it does */
    return 0;
  }
  if (c->sess.subscribed && fsd_session_busy(&c->sess) == 0)
    return 0;
  return now - c->last_out > limit;
}

/* The periodic check; see conn.h. */
void fsd_net_sweep(struct fsd_net *net) {
  uint64_t now = uv_now(net->loop);
  uint64_t limit = (uint64_t)net->idle_timeout * MS_PER_S;
  struct fsd_list *l, *n;

  fsd_list_each_safe(l, n, &net->conns) {
    struct fsd_conn *c = fsd_container_of(l, struct fsd_conn, link);
    if (c->hard)
      continue;
    if (c->closing) {
      if (now - c->closing_since > FLUSH_TIMEOUT_MS)
        fsd_conn_hard_close(c); /* the peer stopped reading our last frames */
      continue;
    }
    if (c->tp->overdue != NULL && c->tp->overdue(c, now)) {
      fsd_conn_hard_close(c);
      continue;
    }
    if (net->idle_timeout == 0)
      continue;
    if (output_stalled(c, now, limit)) {
      /* It reads nothing, so it would not read an ERROR either. */
      fsd_info("client %s read nothing for %u s, closing", c->peer,
               net->idle_timeout);
      fsd_conn_hard_close(c);
      continue;
    }
    if (!fsd_session_active(&c->sess) && now - c->last_active > limit) {
      fsd_info("client %s idle for %u s, closing", c->peer, net->idle_timeout);
      fsd_session_timeout(&c->sess);
    }
  }
  fsd_bufpool_trim(&net->opool);
}

/* Calls the waiters after this poll phase; see conn.h. */
void fsd_conn_wake(struct fsd_conn *c) {
  if (c->hard)
    return;
  c->wrote = 1; /* on_flush() calls after_write() */
  mark_dirty(c);
}

/* Ends every session; see conn.h. */
void fsd_net_shutdown(struct fsd_net *net) {
  struct fsd_list *l, *n;

  net->stopping = 1;
  fsd_list_each_safe(l, n, &net->conns) {
    struct fsd_conn *c = fsd_container_of(l, struct fsd_conn, link);
    if (!c->hard && !c->closing)
      fsd_session_shutdown(&c->sess);
  }
  if (fsd_list_empty(&net->conns) && net->on_empty != NULL)
    net->on_empty(net);
}

/* Closes every connection now; see conn.h. */
void fsd_net_drop_all(struct fsd_net *net) {
  struct fsd_list *l, *n;

  fsd_list_each_safe(l, n, &net->conns)
      fsd_conn_hard_close(fsd_container_of(l, struct fsd_conn, link));
}
