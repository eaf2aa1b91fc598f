/* fsd's libuv host. The protocol logic lives in session.c; this file moves
 * bytes between sockets, the threadpool and the session, and keeps memory
 * bounded:
 *  - a connection's read buffer exists only while bytes are being parsed or
 *    pinned by disk writes (an idle connection holds none);
 *  - a GET holds at most two chunks (one being read, one being written) and
 *    reads ahead only while the socket's write queue is short;
 *  - a PUT stops reading the socket while too many bytes wait for the disk.
 * Every file system call runs on the threadpool (uv_queue_work / uv_fs_*). */
#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <fsproto/fsproto.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

#include "ctx.h"
#include "fsops.h"
#include "log.h"
#include "session.h"

#define READ_BLOCK 65536u           /* usual read buffer size */
#define PUT_BLOCK 262144u           /* read buffer while an upload streams */
#define PUT_WRITES_MAX 64u          /* DATA pieces waiting for the disk */
#define PUT_IOV 64u                 /* pieces one disk write gathers */
#define PUT_FLUSH_STEP (8u << 20)   /* written bytes per writeback job */
#define GET_CHUNK 262144u           /* DATA payload of a GET, at most */
#define GET_ZC_CHUNK 1048576u       /* the same when nothing is hashed */
#define GET_QUEUE_MAX 262144u       /* write queue above which GET waits */
#define PUT_PENDING_MAX (4u << 20)  /* disk backlog that pauses reading */
#define OUT_FIRST 256u              /* first room for gathered frames */
#define OUT_CHUNK 16384u            /* small frames gathered per write */
#define OUT_PAUSE (2u << 20)        /* unsent output that pauses reading */
#define SWEEP_MS 1000u              /* idle and flush checks */
#define RECONCILE_MS 10000u         /* full rescan of the root */
#define FLUSH_TIMEOUT_MS 10000u     /* a closing peer must read by then */
#define STOP_TIMEOUT_MS 5000u       /* shutdown waits this long for peers */

/* A read buffer. Disk writes of PUT data point into it, so it is counted:
 * the connection holds one reference while it is the current buffer, each
 * pending write one more. */
struct block {
  size_t refs; /* holders */
  size_t cap;  /* bytes in data */
  size_t len;  /* bytes filled */
  uint8_t data[];
};

struct conn {
  uv_tcp_t tcp;              /* the socket; tcp.data points here */
  struct fsd_session sess;   /* protocol state */
  struct conn *prev, *next;  /* all connections */
  struct block *rb;          /* current read buffer, NULL when idle */
  struct op *ops;            /* GETs in progress, to pump on write */
  uint64_t last_active;      /* uv_now() of the last byte in */
  uint64_t closing_since;    /* uv_now() when close-after-flush began */
  size_t put_pending;        /* PUT bytes waiting for the disk */
  unsigned put_writes;       /* disk writes in flight */
  unsigned puts;             /* uploads open (temp file created) */
  unsigned refs;             /* the handle + every op */
  uint8_t closing;           /* no more reading; closing after flush */
  uint8_t paused;            /* reading stopped for backpressure */
  uint8_t hard;              /* being closed without flush */
  uint8_t counted;           /* counts against --max-clients */
  uint8_t dirty;             /* in srv.dirty: out waits for a flush */
  uint8_t wrote;             /* out went out at once: after_write() due */
  struct wreq *out;          /* small frames gathered for one write */
  struct conn *dirty_next;   /* next in srv.dirty */
  struct op *zop;            /* GET whose DATA frame sendfile() is sending */
  struct zpoll *poll;        /* writability of a dup of the socket, for zop */
  uint8_t close_pending;     /* close once the zop frame is out */
  char peer[56];             /* "addr:port" for the log */
};

/* A poll handle on a dup of a connection's socket, with that dup. */
struct zpoll {
  uv_poll_t handle;
  struct conn *c;
  int fd;
};

/* A write request with its bytes inline (libuv test/echo-server.c style). */
struct wreq {
  uv_write_t req;
  struct conn *c;
  struct op *op; /* GET chunk: the transfer it belongs to */
  struct wreq *next; /* in written, waiting to be freed */
  size_t len;    /* bytes in data */
  size_t cap;    /* room in data */
  uint8_t data[];
};

/* Host state of one GET, HASH, DELETE or PUT. */
struct op {
  struct conn *c;
  struct fsd_req *r;
  struct op *prev, *next; /* in c->ops (GET only) */
  uv_work_t work;         /* the job on the threadpool */
  uv_fs_t fs;             /* for uv_fs_close */
  int jobs;               /* jobs (work, reads) in flight */
  int fd;                 /* open file, -1 when none */
  int err;                /* UV_E* result of the last job */
  const char *why;        /* the ERROR text when status is set, or NULL */
  uint8_t changed;        /* GET: the file was changed in place meanwhile */
  uint16_t status;        /* wire status once failed, 0 while fine */
  uint8_t aborted;        /* the session asked to stop */
  uint8_t in_list;        /* linked in c->ops */
  /* GET */
  uint64_t pos, end;      /* next byte to read, end of the range */
  uint64_t length;        /* bytes in the range */
  size_t chunk_len;       /* bytes the read job in flight reads */
  uint64_t file_size;
  int64_t mtime_ns;
  XXH3_state_t *hs;       /* hash of the bytes read so far */
  struct wreq *ready;     /* a chunk read and waiting to be written */
  struct wreq *chunk;     /* the chunk being read */
  uint8_t writing;        /* a chunk is in the socket's write queue */
  uint8_t reading;        /* a read job is in flight */
  /* GET with sendfile() */
  uint8_t zc;             /* DATA payloads go out with sendfile() */
  uint8_t hash_known;     /* the whole file's hash came from the cache */
  uint64_t zpos;          /* next file byte to send */
  size_t zready;          /* bytes prepared (cached, hashed) but not sent */
  uint8_t zhdr[FSP_HDR_LEN]; /* header of the frame being sent */
  size_t zhdr_done;       /* header bytes sent */
  size_t zleft;           /* payload bytes still to send */
  /* HASH */
  uint64_t hash;
  /* PUT */
  unsigned writes;        /* DATA pieces queued or being written */
  struct pwriter *pw;     /* the disk writer, made at the first piece */
  uint8_t commit;         /* END checked: commit once writes are done */
  struct op *cnext;       /* in srv.committing or srv.commit_wait */
  uint8_t cleaning;       /* cleanup job started */
  uint8_t put_open;       /* counted in c->puts */
  struct stat st;         /* result of open or commit */
  char temp[FSD_TEMP_NAME_LEN];
};

/* A piece of PUT data, in a read buffer, queued for the temp file. */
struct pseg {
  struct pseg *next;
  struct block *b;  /* holds the bytes: one reference */
  const uint8_t *p; /* the bytes */
  size_t len;
  uint64_t off;     /* where they go in the file */
};

/* The disk writer of one PUT. One job at a time writes every piece queued
 * so far in one pwritev: concurrent writes to one file only queued on the
 * inode's lock in the kernel (13% of fsd's CPU spinning on it, with 64
 * writes in flight), and larger writes cost fewer jobs and wake-ups. The
 * socket keeps being read while a job runs. */
struct pwriter {
  uv_work_t work;
  struct op *op;
  struct pseg *head;  /* queued pieces, in file order */
  struct pseg **tail; /* where the next piece is linked */
  unsigned nbusy;     /* pieces at head that the running job writes */
  size_t busy_len;    /* their bytes */
  ssize_t res;        /* the job's result */
  uint64_t written;   /* file bytes written so far */
  uv_work_t flush;    /* the writeback job */
  uint8_t flushing;   /* it runs */
  uint64_t flushed;   /* writeback started up to here */
  uint64_t fl_end;    /* the running job's end */
  struct iovec iov[PUT_IOV];
};

/* A stat job for a name the watcher reported. */
struct watch_job {
  uv_work_t work;
  int err;
  uint64_t size;
  int64_t mtime_ns;
  uint16_t name_len;
  char name[256];
};

struct server {
  uv_loop_t *loop;
  struct fsd_ctx ctx;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  uv_timer_t sweep;
  uv_timer_t stop_timer;
  uv_check_t flush;       /* writes gathered output after each poll */
  struct conn *dirty;     /* connections with gathered output */
  int zero_copy;          /* GET payloads with sendfile() */
  int writeback;          /* uploads start their writeback early */
  int no_fsync;           /* --no-fsync: commits do not wait for the disk */
  struct hash_entry {     /* whole-file hashes of files served lately */
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
    uint64_t hash;
  } hcache[64];
  unsigned hcache_next;   /* slot to replace next */
  uv_fs_event_t watch;
  uv_work_t scan_work;
  struct fsd_scan scan;
  int scan_err;
  uint64_t last_reconcile;
  unsigned rescan_ms;     /* RECONCILE_MS, or FSD_RESCAN_MS for tests */
  unsigned watch_delay_ms; /* FSD_WATCH_DELAY_MS, for tests */
  int scanning;
  int rootfd;
  unsigned max_clients;
  unsigned idle_timeout;
  unsigned nclients;
  struct conn *conns;
  struct fsd_register watched; /* names with a stat job queued; size 1 when
                                 the watcher reported another change
                                 meanwhile, mtime_ns 1 when our own PUT or
                                 DELETE of the name was applied meanwhile */
  struct op *committing;  /* PUTs whose commit job runs */
  struct op *commit_wait; /* PUTs waiting for a commit of the same name */
  int stopping;
  int watching;
};

static struct server srv;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */

static void op_pump(struct op *op);
static void commit_next(struct op *op);
static void out_flush(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_hard_close(struct conn *c);

/* Spare receive buffers. An upload's 1 MiB DATA frames each fill a block
 * that stays pinned until its disk write is done; allocated fresh, every
 * such block was mapped, zero-filled page by page and unmapped again (21%
 * of fsd's CPU in page faults, 5% in munmap during an upload). Blocks of
 * PUT_BLOCK bytes or more are kept here instead, at most BLOCK_SPARES of
 * them and BLOCK_SPARE_BYTES in all, so the memory they hold stays
 * bounded; a connection takes one only while it has bytes to parse. */
#define BLOCK_SPARES 16u
#define BLOCK_SPARE_BYTES (8u << 20)
static struct block *spares[BLOCK_SPARES];
static unsigned nspares;
static size_t spare_bytes;

/* Returns a buffer with room for at least need bytes, empty and held once:
 * for PUT_BLOCK bytes or more the smallest spare that fits, else a new one
 * (NULL when out of memory). Large buffers are rounded up to a multiple of
 * PUT_BLOCK, so that the blocks of one upload come in one size and fit
 * each other's requests. */
static struct block *block_get(size_t need) {
  struct block *b = NULL;
  unsigned best = BLOCK_SPARES;

  /* Small requests keep small buffers: a connection that only asks
   * questions reads 64 KiB at a time, as before, and pauses as soon. */
  for (unsigned i = 0; need >= PUT_BLOCK && i < nspares; i++)
    if (spares[i]->cap >= need &&
        (best == BLOCK_SPARES || spares[i]->cap < spares[best]->cap))
      best = i;
  if (best != BLOCK_SPARES) {
    b = spares[best];
    spares[best] = spares[--nspares];
    spare_bytes -= b->cap;
  } else {
    if (need > PUT_BLOCK)
      need = (need + PUT_BLOCK - 1) / PUT_BLOCK * PUT_BLOCK;
    b = malloc(sizeof(*b) + need);
    if (b == NULL)
      return NULL;
    b->cap = need;
  }
  b->refs = 1;
  b->len = 0;
  return b;
}

/* Gives back a buffer nobody holds: kept as a spare while there is room,
 * freed otherwise. */
static void block_put(struct block *b) {
  if (b->cap >= PUT_BLOCK && nspares < BLOCK_SPARES &&
      spare_bytes + b->cap <= BLOCK_SPARE_BYTES) {
    spares[nspares++] = b;
    spare_bytes += b->cap;
    return;
  }
  free(b);
}

static void block_unref(struct block *b) {
  if (--b->refs == 0)
    block_put(b);
}

/* Output buffers of the first size (OUT_FIRST), once sent, are kept for the
 * next broadcast, which needs one per subscriber: malloc() gave them fresh
 * heap each time (glibc trims the freed top), and the page faults and brk()
 * that cost were 5% of fsd's CPU in a fan-out to 1,000 watchers. At most
 * OUT_SPARES are kept (about 7 MiB), and all are freed by the sweep after a
 * second in which none was taken. */
#define OUT_SPARES 16384u
static struct wreq *out_spares; /* linked through ->next */
static unsigned nout_spares;
static int out_spares_taken;    /* since the last sweep */

static struct wreq *out_get(size_t cap) {
  struct wreq *w = out_spares;

  if (cap == OUT_FIRST && w != NULL) {
    out_spares = w->next;
    nout_spares--;
    out_spares_taken = 1;
    return w;
  }
  return malloc(sizeof(*w) + cap);
}

/* Gives back an output buffer: kept as a spare if it has the first size and
 * there is room, freed otherwise. */
static void out_put(struct wreq *w) {
  if (w != NULL && w->cap == OUT_FIRST && nout_spares < OUT_SPARES) {
    w->next = out_spares;
    out_spares = w;
    nout_spares++;
    return;
  }
  free(w);
}

static void out_spares_free(void) {
  while (out_spares != NULL) {
    struct wreq *w = out_spares;
    out_spares = w->next;
    free(w);
  }
  nout_spares = 0;
}

static void conn_unref(struct conn *c) {
  if (--c->refs > 0)
    return;
  if (c->rb != NULL)
    block_unref(c->rb);
  out_put(c->out);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    srv.conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  if (c->counted)
    srv.nclients--;
  free(c);
  if (srv.stopping && srv.conns == NULL &&
      !uv_is_closing((uv_handle_t *)&srv.stop_timer))
    uv_close((uv_handle_t *)&srv.stop_timer, NULL);
}

static void on_conn_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  fsd_info("client %s gone", c->peer);
  conn_unref(c);
}

static void on_poll_closed(uv_handle_t *h) {
  struct zpoll *p = (struct zpoll *)h;
  struct conn *c = p->c;

  close(p->fd);
  free(p);
  conn_unref(c);
}

/* Closes the socket handle, and the poll on its dup if there is one. */
static void close_tcp(struct conn *c) {
  if (c->poll != NULL) {
    uv_close((uv_handle_t *)&c->poll->handle, on_poll_closed);
    c->poll = NULL;
  }
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* Closes now, without waiting for queued output. */
static void conn_hard_close(struct conn *c) {
  if (c->hard)
    return;
  c->hard = 1;
  out_put(c->out); /* nobody will read it */
  c->out = NULL;
  if (c->zop != NULL) {
    /* A DATA frame cut short: the stream is broken anyway. */
    c->zop->writing = 0;
    c->zop->status = FSP_ST_IO;
    c->zop = NULL;
  }
  fsd_session_close(&c->sess);
  close_tcp(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct conn *c = req->data;
  free(req);
  close_tcp(c);
}

/* Session callback: close once everything queued has been written. */
static void host_close(void *host) {
  struct conn *c = host;
  uv_shutdown_t *req;

  if (c->closing || c->hard)
    return;
  if (c->zop != NULL) {
    c->close_pending = 1; /* not in the middle of a DATA frame */
    return;
  }
  out_flush(c); /* the shutdown follows everything queued */
  if (c->hard)
    return;
  c->closing = 1;
  c->closing_since = uv_now(srv.loop);
  uv_read_stop((uv_stream_t *)&c->tcp);
  req = malloc(sizeof(*req));
  if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
    free(req);
    conn_hard_close(c);
    return;
  }
  req->data = c;
}

/* Stops reading the socket while the disk lags behind an upload, or while
 * the client leaves our answers unread (it could otherwise pile up requests
 * whose answers we would queue without bound); resumes at half the mark. */
static size_t host_backlog(void *host);

static void update_reading(struct conn *c) {
  size_t q = host_backlog(c);

  if (c->closing || c->hard)
    return;
  if (!c->paused && (c->put_pending > PUT_PENDING_MAX ||
                     c->put_writes > PUT_WRITES_MAX || q > OUT_PAUSE)) {
    c->paused = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
  } else if (c->paused && c->put_pending <= PUT_PENDING_MAX / 2 &&
             c->put_writes <= PUT_WRITES_MAX / 2 && q <= OUT_PAUSE / 2) {
    c->paused = 0;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
}

static void after_write(struct conn *c) {
  struct op *op, *next;

  /* Output moved on: transfers waiting for a short queue may go on. */
  for (op = c->ops; op != NULL; op = next) {
    next = op->next;
    op_pump(op);
  }
  if (!c->hard) {
    fsd_session_writable(&c->sess);
    update_reading(c);
  }
}

static void on_written(uv_write_t *req, int status) {
  struct wreq *w = (struct wreq *)req;
  struct conn *c = w->c;

  out_put(w);
  if (status < 0) {
    if (status != UV_ECANCELED)
      fsd_debug("write to %s failed: %s", c->peer, uv_strerror(status));
    conn_hard_close(c);
    return;
  }
  after_write(c);
}

/* Writes what the socket takes of p[0..len) now: the number of bytes (0
 * when the socket is full or libuv's write queue holds earlier bytes), or a
 * negative UV_E* code. This is uv_try_write() with send() in place of its
 * write(): the socket layer is entered directly instead of through
 * vfs_write(). In a broadcast, one small write per watcher, the kernel's
 * work above tcp_sendmsg() was 10.6% of fsd's CPU with write() and is 6.3%
 * with send() (perf record, 1,000 watchers). */
static int out_send(struct conn *c, const uint8_t *p, size_t len) {
  uv_os_fd_t fd;
  ssize_t k;

  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) != 0)
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

/* Hands the gathered small frames to the socket as one write. When nothing
 * is queued before them, they are written at once with out_send() and
 * only what the socket did not take becomes a uv_write() request: a
 * request costs a copy of the bytes in flight and, in libuv 1.44, one
 * epoll_ctl() to arm the socket and one to disarm it after the write,
 * which made a broadcast to 1,000 watchers cost 2,000 epoll_ctl() more
 * than the writes themselves. Bytes queued earlier (a GET chunk, a
 * remainder) keep their order, as out_send() refuses to write while
 * libuv's write queue is not empty; a DATA frame half sent by sendfile()
 * keeps everything back (c->zop). When all bytes went out, c->wrote asks
 * on_flush() for the after_write() that on_written() would have done. */
static int flushing;           /* on_flush() runs */
static struct wreq *written;   /* sent buffers on_flush() frees at its end */

static void out_flush(struct conn *c) {
  struct wreq *w = c->out;
  uv_buf_t buf;
  int k;

  if (w == NULL || c->zop != NULL)
    return; /* nothing, or sendfile() is in the middle of a frame */
  c->out = NULL;
  buf = uv_buf_init((char *)w->data, (unsigned)w->len);
  k = out_send(c, w->data, w->len);
  if (k == (int)w->len) {
    if (flushing) {
      w->next = written;
      written = w;
    } else {
      out_put(w);
    }
    c->wrote = 1;
    return;
  }
  if (k < 0) {
    out_put(w);
    conn_hard_close(c);
    return;
  }
  if (k > 0) {
    buf.base += k;
    buf.len -= (size_t)k;
  }
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
    out_put(w);
    conn_hard_close(c);
  }
}

/* Runs once per loop iteration, after the callbacks of the poll phase: all
 * the answers and events one iteration produced for a client go out in one
 * write, and a client with thousands of small answers pending costs bytes,
 * not one write request (about 200 bytes) each. A connection whose output
 * went out at once gets after_write() here, at the top of a callback, so
 * that what waits for the output to drain (a LIST, paused reading) goes
 * on; it may queue more, which puts the connection back on the list. */
static void on_flush(uv_check_t *h) {
  flushing = 1;
  while (srv.dirty != NULL) {
    struct conn *done = NULL;

    while (srv.dirty != NULL) {
      struct conn *c = srv.dirty;
      srv.dirty = c->dirty_next;
      c->dirty = 0;
      out_flush(c);
      if (c->wrote) {
        c->wrote = 0;
        c->dirty_next = done; /* keeps the list's reference */
        done = c;
      } else {
        conn_unref(c);
      }
    }
    /* Freed only after all the writes: freeing each 16 KiB buffer right
     * after its write, between the writes of a broadcast, made a NOTICE
     * reach the last of 1,000 watchers later than with uv_write() (27-33
     * ms median against 21-22 ms); freed here it is as fast as before. */
    while (written != NULL) {
      struct wreq *w = written;
      written = w->next;
      out_put(w);
    }
    while (done != NULL) {
      struct conn *c = done;
      done = c->dirty_next;
      if (!c->hard)
        after_write(c);
      conn_unref(c);
    }
  }
  flushing = 0;
}

/* Room for frames of need bytes: OUT_FIRST doubled up to OUT_CHUNK, or need
 * when that is more. */
static size_t out_cap(size_t need) {
  size_t cap = OUT_FIRST;

  while (cap < need && cap < OUT_CHUNK)
    cap *= 2;
  return cap < need ? need : cap;
}

/* Session callback: queue a frame (copied into the gathered output). The
 * buffer starts small and doubles as frames come, up to OUT_CHUNK: a
 * broadcast gives each of thousands of subscribers one frame of about 60
 * bytes, and a 16 KiB buffer each, fresh memory every time, cost fsd more
 * in page faults and brk() than the frames themselves. */
static int host_send(void *host, const void *frame, size_t len) {
  struct conn *c = host;
  struct wreq *w = c->out;

  if (c->hard || uv_is_closing((uv_handle_t *)&c->tcp))
    return UV_ECANCELED;
  if (w != NULL && w->cap - w->len < len) {
    /* Grow within OUT_CHUNK; past it only while a sendfile() frame holds
     * the socket: out_flush() can send nothing then, and starting another
     * buffer would drop this one (with its frames). */
    if (w->len + len <= OUT_CHUNK || c->zop != NULL) {
      size_t need = w->len + len;
      size_t cap = need <= OUT_CHUNK ? out_cap(need) : 2 * need;
      struct wreq *nw = realloc(w, sizeof(*w) + cap);
      if (nw == NULL)
        return UV_ENOMEM;
      c->out = w = nw;
      w->cap = cap;
    } else {
      out_flush(c);
      w = NULL;
    }
  }
  if (w == NULL) {
    size_t cap = out_cap(len);
    w = out_get(cap);
    if (w == NULL)
      return UV_ENOMEM;
    w->c = c;
    w->op = NULL;
    w->len = 0;
    w->cap = cap;
    c->out = w;
    if (!c->dirty) {
      c->dirty = 1;
      c->refs++; /* held by srv.dirty until the flush */
      c->dirty_next = srv.dirty;
      srv.dirty = c;
    }
  }
  memcpy(w->data + w->len, frame, len);
  w->len += len;
  return 0;
}

static size_t host_backlog(void *host) {
  struct conn *c = host;
  return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) +
         (c->out != NULL ? c->out->len : 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct conn *c = h->data;
  struct block *b = c->rb;
  /* Uploads come in bigger reads: fewer disk writes per byte. */
  size_t need = c->puts > 0 ? PUT_BLOCK : READ_BLOCK;

  if (b != NULL) {
    size_t more = fsd_session_need(&c->sess, b->data, b->len);
    if (more > need)
      need = more; /* a large frame is coming: make room for all of it */
    if (b->cap - b->len < need) {
      /* No disk write points into c->rb (see keep_tail()): it may move. */
      struct block *nb = block_get(b->len + need);
      if (nb == NULL) {
        *buf = uv_buf_init(NULL, 0);
        return;
      }
      memcpy(nb->data, b->data, b->len);
      nb->len = b->len;
      block_put(b);
      c->rb = b = nb;
    }
  } else {
    b = block_get(need);
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
static void keep_tail(struct conn *c, size_t used) {
  struct block *b = c->rb;
  size_t left = b->len - used;

  if (b->refs == 1) {
    if (left == 0) {
      block_put(b);
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
    struct block *nb =
        block_get(left + (more > READ_BLOCK ? more : READ_BLOCK));
    if (nb == NULL) {
      block_unref(b);
      conn_hard_close(c);
      return;
    }
    nb->len = left;
    memcpy(nb->data, b->data + used, left);
    c->rb = nb;
  }
  block_unref(b);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = stream->data;
  size_t used;

  if (nread < 0) {
    if (c->rb != NULL && c->rb->len == 0 && c->rb->refs == 1) {
      block_put(c->rb);
      c->rb = NULL;
    }
    if (nread != UV_EOF)
      fsd_debug("read from %s: %s", c->peer, uv_strerror((int)nread));
    /* After BYE the peer may half-close while our answer is queued. */
    if (nread == UV_EOF &&
        (c->closing || c->sess.state == FSD_SESS_BYE)) {
      uv_read_stop(stream);
      return;
    }
    conn_hard_close(c);
    return;
  }
  if (c->rb == NULL)
    return;
  if (nread == 0) {
    if (c->rb->len == 0) {
      block_put(c->rb);
      c->rb = NULL;
    }
    return;
  }
  c->rb->len += (size_t)nread;
  c->last_active = uv_now(srv.loop);
  used = fsd_session_feed(&c->sess, c->rb->data, c->rb->len);
  if (c->rb != NULL)
    keep_tail(c, used);
  update_reading(c);
}

/* ------------------------------------------------------------------------ */
/* File operations                                                           */

static struct op *op_new(struct conn *c, struct fsd_req *r) {
  struct op *op = calloc(1, sizeof(*op));

  if (op == NULL)
    return NULL;
  op->c = c;
  op->r = r;
  op->fd = -1;
  op->work.data = op;
  op->fs.data = op;
  r->op = op;
  c->refs++;
  return op;
}

static void op_unlist(struct op *op) {
  if (!op->in_list)
    return;
  if (op->prev != NULL)
    op->prev->next = op->next;
  else
    op->c->ops = op->next;
  if (op->next != NULL)
    op->next->prev = op->prev;
  op->in_list = 0;
}

static void op_free(struct op *op) {
  struct conn *c = op->c;

  op_unlist(op);
  if (op->put_open)
    c->puts--;
  if (op->hs != NULL)
    XXH3_freeState(op->hs);
  free(op->ready);
  free(op->chunk);
  free(op->pw);
  free(op);
  conn_unref(c);
}

static void on_op_fd_closed(uv_fs_t *req) {
  struct op *op = req->data;
  uv_fs_req_cleanup(req);
  op_free(op);
}

/* Closes the op's file on the threadpool, then frees the op. */
static void op_release(struct op *op) {
  op_unlist(op);
  if (op->fd >= 0) {
    int fd = op->fd;
    op->fd = -1;
    if (uv_fs_close(srv.loop, &op->fs, fd, on_op_fd_closed) == 0)
      return;
    close(fd); /* could not queue: a close of a regular file is quick */
  }
  op_free(op);
}

/* --- GET --- */

static void get_open_work(uv_work_t *w) {
  struct op *op = w->data;
  int fd = fsd_open_file(srv.rootfd, op->r->name, &op->st);

  op->err = fd < 0 ? fd : 0;
  op->fd = fd < 0 ? -1 : fd;
}

/* Brings the bytes [pos, pos + n) of fd into the page cache and returns
 * once every page of the range is there (0), or a negative UV_E* code; runs
 * on the threadpool.
 *
 * readahead(2) only starts the reads: it returns while pages may still be
 * in flight, and a sendfile() that meets such a page would block the loop
 * thread until the disk delivers it. So residency is checked with mincore()
 * on a mapping of the range that is never touched (no page is mapped, no
 * RSS is charged), and only pages not yet up to date are read, one byte
 * each, which waits for their I/O. A cached file costs three system calls
 * per chunk instead of one pread per 4 KiB page. Where mincore() can not
 * tell (no mapping, or the kernel hides residency because we may not
 * write the file), every page is read a byte at a time, as before. */
static int page_in(int fd, uint64_t pos, size_t n) {
  uint64_t psz = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t start = pos & ~(psz - 1);
  size_t span = (size_t)(pos + n - start);
  size_t pages = (span + psz - 1) / psz;
  unsigned char vec[GET_ZC_CHUNK / 4096 + 2];
  unsigned char *v = pages <= sizeof(vec) ? vec : NULL;
  void *map;

  if (n == 0)
    return 0;
  map = v != NULL ? mmap(NULL, span, PROT_READ, MAP_SHARED, fd, (off_t)start)
                  : MAP_FAILED;
  if (map == MAP_FAILED || mincore(map, span, v) != 0) {
    v = NULL;
  } else {
    size_t i;
    for (i = 0; i < pages && (v[i] & 1); i++)
      ;
    if (i == pages) {
      munmap(map, span);
      return 0; /* all resident: the usual case for a file served often */
    }
  }
  if (map != MAP_FAILED)
    munmap(map, span);
  /* Start the reads of the whole range at once, then wait page by page. */
  (void)readahead(fd, (off_t)pos, n);
  for (size_t i = 0; i < pages; i++) {
    uint64_t at = start + i * psz;
    uint8_t b;
    ssize_t k;

    if (v != NULL && (v[i] & 1))
      continue;
    if (at < pos)
      at = pos;
    do
      k = pread(fd, &b, 1, (off_t)at);
    while (k < 0 && errno == EINTR);
    if (k != 1)
      return k < 0 ? -errno : UV_EIO;
  }
  return 0;
}

/* After a read of n bytes at op->pos: whether that was the GET's last read
 * and the open file was changed in place (written to or truncated, not
 * replaced) since the GET opened it, its size or mtime moved. Such a file
 * would end in a hash that matches neither version; the GET says what
 * happened instead. (Not its ctime: a replace by rename, which leaves the
 * open file intact, changes the old file's ctime as it drops its link.) */
static int last_read_saw_change(const struct op *op, size_t n) {
  struct stat now;

  if (op->pos + n != op->end || fstat(op->fd, &now) != 0)
    return 0;
  return now.st_size != op->st.st_size ||
         fsd_mtime_ns(&now) != fsd_mtime_ns(&op->st);
}

static void get_read_work(uv_work_t *w) {
  struct op *op = w->data;
  struct wreq *ch = op->chunk;
  size_t n = op->chunk_len;
  size_t got = 0;

  if (op->zc && op->hash_known) {
    /* Nothing to hash: only make sure the pages are in the page cache, so
     * that sendfile() on the loop thread does not wait for the disk. */
    op->err = page_in(op->fd, op->pos, n);
    if (op->err == 0) {
      op->err = (int)n;
      op->changed = last_read_saw_change(op, n);
    }
    return;
  }
  while (got < n) {
    ssize_t k = pread(op->fd, ch->data + FSP_HDR_LEN + got, n - got,
                      (off_t)(op->pos + got));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      /* The file shrank under us (changed in place, not replaced). */
      op->err = k < 0 ? -errno : UV_EIO;
      return;
    }
    got += (size_t)k;
  }
  XXH3_64bits_update(op->hs, ch->data + FSP_HDR_LEN, n);
  if (!op->zc)
    fsp_header_write(ch->data, FSP_OP_DATA, op->r->id, (uint32_t)n);
  op->err = (int)n;
  op->changed = last_read_saw_change(op, n);
}

static void on_chunk_written(uv_write_t *req, int status) {
  struct wreq *w = (struct wreq *)req;
  struct op *op = w->op;
  struct conn *c = w->c;

  free(w);
  op->writing = 0;
  if (status < 0) {
    op->status = FSP_ST_IO;
    op_pump(op);
    conn_hard_close(c);
    return;
  }
  after_write(c); /* pumps op too */
}

static void after_get_read(uv_work_t *w, int status) {
  struct op *op = w->data;

  op->reading = 0;
  op->jobs--;
  if (op->err < 0 || op->changed) {
    if (op->changed)
      fsd_warn("%s was changed in place while being sent", op->r->name);
    else
      fsd_warn("read of %s failed: %s", op->r->name, uv_strerror(op->err));
    free(op->chunk);
    op->chunk = NULL;
    if (op->status == 0) {
      op->status = FSP_ST_IO;
      if (op->changed)
        op->why = "the file was changed in place while being sent";
    }
  } else if (op->zc) {
    op->pos += (uint64_t)op->err;
    op->zready = (size_t)op->err; /* the buffer stays for the next read */
  } else {
    op->pos += (uint64_t)op->err;
    op->ready = op->chunk;
    op->chunk = NULL;
  }
  op_pump(op);
}

/* --- GET payloads with sendfile() ---
 *
 * A DATA frame's header goes out with send() and its payload with sendfile()
 * straight from the page cache, on the loop thread: the socket is
 * non-blocking and the pages were brought in (and hashed, unless the hash
 * is cached) by a threadpool job just before. Nothing else may reach the
 * socket in the middle of a frame, so while one is in flight (c->zop)
 * gathered output waits, other transfers wait, and libuv's write queue is
 * empty. When the socket is full, a uv_poll on a dup of it says when to go
 * on (libuv allows one handle per fd in its epoll set, not per socket). */

static uint64_t *hcache_find(const struct stat *st) {
  for (unsigned i = 0; i < 64; i++) {
    struct hash_entry *e = &srv.hcache[i];
    if (e->ino == (uint64_t)st->st_ino && e->dev == (uint64_t)st->st_dev &&
        e->size == (uint64_t)st->st_size &&
        e->mtime_ns == fsd_mtime_ns(st) &&
        e->ctime_ns == (int64_t)st->st_ctim.tv_sec * 1000000000 +
                           st->st_ctim.tv_nsec)
      return &e->hash;
  }
  return NULL;
}

static void hcache_put(const struct stat *st, uint64_t hash) {
  int64_t ctime_ns =
      (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
  struct hash_entry *e;

  /* File times tick coarsely (a few ms): a file changed again within the
   * same tick would keep its times. Like git's "racily clean" entries,
   * files changed in the last two seconds are not cached. */
  if (now_ns() - ctime_ns < 2000000000)
    return;
  e = &srv.hcache[srv.hcache_next++ % 64];
  e->dev = (uint64_t)st->st_dev;
  e->ino = (uint64_t)st->st_ino;
  e->size = (uint64_t)st->st_size;
  e->mtime_ns = fsd_mtime_ns(st);
  e->ctime_ns =
      (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
  e->hash = hash;
}

static void on_zc_writable(uv_poll_t *h, int status, int events);

/* Sends what the socket takes of c->zop's frame. Returns 1 when the frame
 * is out, 0 when the socket is full (the poll will call back), -1 when the
 * connection failed (and is being closed). */
static int zc_send(struct conn *c) {
  struct op *op = c->zop;
  uv_os_fd_t fd;

  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    goto fail;
  while (op->zhdr_done < FSP_HDR_LEN) {
    ssize_t k = send(fd, op->zhdr + op->zhdr_done,
                     FSP_HDR_LEN - op->zhdr_done,
                     MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      goto wait;
    if (k <= 0)
      goto fail;
    op->zhdr_done += (size_t)k;
  }
  while (op->zleft > 0) {
    off_t off = (off_t)op->zpos;
    ssize_t k = sendfile(fd, op->fd, &off, op->zleft);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      goto wait;
    if (k <= 0) {
      /* The file shrank in place in the middle of a frame: the frame can
       * not be completed, so the connection can not go on. */
      if (k == 0)
        fsd_warn("%s changed while being sent", op->r->name);
      goto fail;
    }
    op->zpos += (uint64_t)k;
    op->zleft -= (size_t)k;
  }
  if (c->poll != NULL)
    uv_poll_stop(&c->poll->handle);
  return 1;

wait:
  if (c->poll == NULL) {
    struct zpoll *p = malloc(sizeof(*p));
    if (p == NULL)
      goto fail;
    p->c = c;
    p->fd = dup(fd);
    if (p->fd < 0 || uv_poll_init(srv.loop, &p->handle, p->fd) != 0) {
      if (p->fd >= 0)
        close(p->fd);
      free(p);
      goto fail;
    }
    c->poll = p;
    c->refs++; /* released when the poll handle is closed */
  }
  if (uv_poll_start(&c->poll->handle, UV_WRITABLE, on_zc_writable) != 0)
    goto fail;
  return 0;

fail:
  conn_hard_close(c);
  return -1;
}

/* The frame of c->zop is out: let everything that waited for it go on. */
static void zc_finish(struct conn *c) {
  struct op *op = c->zop;

  c->zop = NULL;
  op->writing = 0;
  out_flush(c);
  if (c->close_pending) {
    c->close_pending = 0;
    host_close(c);
  }
}

static void on_zc_writable(uv_poll_t *h, int status, int events) {
  struct conn *c = ((struct zpoll *)h)->c;

  if (c->zop == NULL || c->hard) {
    uv_poll_stop(h);
    return;
  }
  if (status < 0) {
    conn_hard_close(c);
    return;
  }
  if (zc_send(c) == 1) {
    zc_finish(c);
    after_write(c);
  }
}

/* Starts sending the prepared bytes of op as one DATA frame, when nothing
 * else is on the way to the socket. Returns 0, or -1 when the connection
 * failed: op may be gone then. */
static int zc_start(struct op *op) {
  struct conn *c = op->c;
  int r;

  if (op->zready == 0 || op->writing || c->zop != NULL)
    return 0;
  if (c->hard || uv_is_closing((uv_handle_t *)&c->tcp)) {
    conn_hard_close(c);
    return -1;
  }
  out_flush(c);
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) != 0)
    return 0; /* after_write() comes back here */
  fsp_header_write(op->zhdr, FSP_OP_DATA, op->r->id, (uint32_t)op->zready);
  op->zhdr_done = 0;
  op->zleft = op->zready;
  op->zready = 0;
  op->writing = 1;
  c->zop = op;
  r = zc_send(c);
  if (r < 0)
    return -1;
  if (r == 1) {
    zc_finish(c);
    if (c->hard)
      return -1;
  }
  return 0;
}

/* Moves a GET along: write the chunk read ahead when the socket's queue is
 * short, start the next read, or finish. The single place that decides, so
 * every event (read done, write done, abort) just calls it. */
static void op_pump(struct op *op) {
  struct conn *c = op->c;

  if (op->jobs > 0 && !op->reading)
    return; /* still opening */
  if (op->aborted || op->status != 0 || c->hard) {
    if (op->reading || op->writing)
      return;
    if (op->aborted || c->hard)
      fsd_session_aborted(&c->sess, op->r);
    else
      fsd_session_fail(&c->sess, op->r, op->status, op->why);
    op_release(op);
    return;
  }
  if (op->zc) {
    if (zc_start(op) < 0)
      return;
  } else if (op->ready != NULL && !op->writing && c->zop == NULL &&
             uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) <
                 GET_QUEUE_MAX) {
    struct wreq *ch = op->ready;
    uint32_t n = (uint32_t)((size_t)(ch->data[8]) << 24 |
                            (size_t)(ch->data[9]) << 16 |
                            (size_t)(ch->data[10]) << 8 | ch->data[11]);
    uv_buf_t buf = uv_buf_init((char *)ch->data, FSP_HDR_LEN + n);
    out_flush(c); /* BEGIN and other answers go first */
    op->ready = NULL;
    if (uv_write(&ch->req, (uv_stream_t *)&c->tcp, &buf, 1,
                 on_chunk_written) != 0) {
      free(ch);
      op->status = FSP_ST_IO;
      op_pump(op);
      return;
    }
    op->writing = 1;
  }
  if (!op->reading && op->ready == NULL && op->zready == 0 &&
      op->pos < op->end) {
    struct wreq *ch = op->chunk;
    if (ch == NULL)
      ch = malloc(sizeof(*ch) + FSP_HDR_LEN + GET_CHUNK);
    if (ch == NULL) {
      op->status = FSP_ST_IO;
      op_pump(op);
      return;
    }
    uint64_t left = op->end - op->pos;
    size_t max = fsd_session_peer_max(&c->sess);
    ch->c = c;
    ch->op = op;
    /* A cached hash leaves the job only the page cache to check, and the
     * payload goes out with sendfile(): bigger chunks, fewer jobs and
     * frames. Hashed chunks stay small, as they are read into memory. */
    size_t cmax = op->zc && op->hash_known ? GET_ZC_CHUNK : GET_CHUNK;
    op->chunk_len = left < cmax ? (size_t)left : cmax;
    if (op->chunk_len > max)
      op->chunk_len = max;
    op->chunk = ch;
    op->reading = 1;
    op->jobs++;
    if (uv_queue_work(srv.loop, &op->work, get_read_work, after_get_read)) {
      op->reading = 0;
      op->jobs--;
      op->status = FSP_ST_IO;
      op_pump(op);
    }
    return;
  }
  if (op->pos == op->end && !op->reading && op->ready == NULL &&
      op->zready == 0 && !op->writing) {
    uint64_t hash = op->hash;
    if (!op->hash_known) {
      hash = XXH3_64bits_digest(op->hs);
      if (op->zc && op->length == op->file_size)
        hcache_put(&op->st, hash);
    }
    fsd_session_get_end(&c->sess, op->r, op->length, hash);
    op_release(op);
  }
}

static void after_get_open(uv_work_t *w, int status) {
  struct op *op = w->data;
  struct conn *c = op->c;
  uint64_t off, len;

  op->jobs--;
  if (op->aborted || c->hard) {
    fsd_session_aborted(&c->sess, op->r);
    op_release(op);
    return;
  }
  if (op->err < 0) {
    fsd_session_fail(&c->sess, op->r, fsd_status_from_uv(op->err), NULL);
    op_release(op);
    return;
  }
  op->file_size = (uint64_t)op->st.st_size;
  op->mtime_ns = fsd_mtime_ns(&op->st);
  if (fsd_session_get_begin(&c->sess, op->r, op->file_size, op->mtime_ns, &off,
                            &len) != 0) {
    op_release(op);
    return;
  }
  op->hs = XXH3_createState();
  if (op->hs == NULL) {
    fsd_session_fail(&c->sess, op->r, FSP_ST_IO, "out of memory");
    op_release(op);
    return;
  }
  XXH3_64bits_reset(op->hs);
  op->pos = off;
  op->zpos = off;
  op->end = off + len;
  op->length = len;
  op->zc = (uint8_t)srv.zero_copy;
  if (op->zc && off == 0 && len == op->file_size) {
    uint64_t *h = hcache_find(&op->st);
    if (h != NULL) {
      op->hash = *h;
      op->hash_known = 1;
    }
  }
  fsd_debug("GET %s from %s: %llu bytes at %llu", op->r->name, c->peer,
            (unsigned long long)len, (unsigned long long)off);
  op->next = c->ops;
  op->prev = NULL;
  if (c->ops != NULL)
    c->ops->prev = op;
  c->ops = op;
  op->in_list = 1;
  op_pump(op);
}

/* --- HASH --- */

static void hash_work(uv_work_t *w) {
  struct op *op = w->data;
  struct stat st;
  XXH3_state_t *hs = NULL;
  uint8_t *buf = NULL;
  uint64_t len, pos;
  int fd;

  fd = fsd_open_file(srv.rootfd, op->r->name, &st);
  if (fd < 0) {
    op->err = fd;
    return;
  }
  op->err = 0;
  if (fsd_range_clamp((uint64_t)st.st_size, op->r->offset, op->r->length,
                      &len) != 0) {
    op->status = FSP_ST_RANGE;
    goto out;
  }
  hs = XXH3_createState();
  buf = malloc(GET_CHUNK);
  if (hs == NULL || buf == NULL) {
    op->err = UV_ENOMEM;
    goto out;
  }
  XXH3_64bits_reset(hs);
  for (pos = 0; pos < len;) {
    size_t n = len - pos < GET_CHUNK ? (size_t)(len - pos) : GET_CHUNK;
    ssize_t k;
    if (__atomic_load_n(&op->aborted, __ATOMIC_RELAXED))
      goto out;
    k = pread(fd, buf, n, (off_t)(op->r->offset + pos));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      op->err = k < 0 ? -errno : UV_EIO;
      goto out;
    }
    XXH3_64bits_update(hs, buf, (size_t)k);
    pos += (uint64_t)k;
  }
  op->length = len;
  op->hash = XXH3_64bits_digest(hs);
out:
  free(buf);
  if (hs != NULL)
    XXH3_freeState(hs);
  close(fd);
}

static void after_hash(uv_work_t *w, int status) {
  struct op *op = w->data;
  struct conn *c = op->c;

  op->jobs--;
  if (op->aborted || c->hard)
    fsd_session_aborted(&c->sess, op->r);
  else if (op->status != 0)
    fsd_session_fail(&c->sess, op->r, op->status, NULL);
  else if (op->err < 0)
    fsd_session_fail(&c->sess, op->r, fsd_status_from_uv(op->err), NULL);
  else
    fsd_session_hash_done(&c->sess, op->r, op->r->offset, op->length,
                          op->hash);
  op_free(op);
}

/* --- DELETE --- */

static void watch_own_change(const char *name, size_t len);

static void delete_work(uv_work_t *w) {
  struct op *op = w->data;
  uint64_t size;
  int64_t mtime;
  int err = fsd_stat_file(srv.rootfd, op->r->name, &size, &mtime);

  if (err == 0 && unlinkat(srv.rootfd, op->r->name, 0) != 0)
    err = -errno;
  op->err = err;
}

static void after_delete(uv_work_t *w, int status) {
  struct op *op = w->data;
  struct conn *c = op->c;

  op->jobs--;
  commit_next(op);
  /* A delete is never abandoned half way: report what happened, even to a
   * closed session, so the register follows the disk. */
  if (op->err == 0) {
    fsd_info("deleted %s (by %s)", op->r->name, c->peer);
    watch_own_change(op->r->name, op->r->name_len);
    fsd_session_delete_done(&c->sess, op->r, now_ns());
  } else {
    if (op->err == UV_ENOENT) { /* gone meanwhile: the register catches up */
      watch_own_change(op->r->name, op->r->name_len);
      fsd_ctx_update(&srv.ctx, op->r->name, op->r->name_len, 0, 0, now_ns());
    } else
      fsd_warn("delete %s failed: %s", op->r->name, uv_strerror(op->err));
    fsd_session_fail(&c->sess, op->r, fsd_status_from_uv(op->err), NULL);
  }
  op_free(op);
}

/* --- PUT --- */

static void put_step(struct op *op);

static void put_open_work(uv_work_t *w) {
  struct op *op = w->data;
  struct statvfs vfs;
  struct stat st;
  int fd;

  if (op->r->mode == FSP_PUT_NO_CLOBBER &&
      fstatat(srv.rootfd, op->r->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    op->err = UV_EEXIST;
    return;
  }
  if (fstatvfs(srv.rootfd, &vfs) == 0 &&
      op->r->size / vfs.f_frsize >= (uint64_t)vfs.f_bavail) {
    op->err = UV_ENOSPC; /* refuse now rather than after the upload */
    return;
  }
  fd = fsd_temp_create(srv.rootfd, op->temp);
  op->err = fd < 0 ? fd : 0;
  op->fd = fd < 0 ? -1 : fd;
  /* Blocks in one go: less work for the writeback, and no ENOSPC half-way
   * (the statvfs() guess above misses quotas and concurrent uploads). */
  if (fd >= 0 && (op->err = fsd_reserve(fd, op->r->size)) < 0) {
    close(fd);
    op->fd = -1;
    unlinkat(srv.rootfd, op->temp, 0);
    op->temp[0] = '\0';
  }
}

static void after_put_open(uv_work_t *w, int status) {
  struct op *op = w->data;
  struct conn *c = op->c;

  op->jobs--;
  if (op->err < 0 && !op->aborted && !c->hard) {
    if (op->err != UV_EEXIST)
      fsd_warn("cannot create a temp file for %s: %s", op->r->name,
               uv_strerror(op->err));
    fsd_session_fail(&c->sess, op->r, fsd_status_from_uv(op->err), NULL);
    op_free(op);
    return;
  }
  if (op->aborted || c->hard) {
    put_step(op);
    return;
  }
  op->put_open = 1;
  c->puts++;
  fsd_session_put_ready(&c->sess, op->r);
}

static void cleanup_work(uv_work_t *w) {
  struct op *op = w->data;

  if (op->fd >= 0) {
    close(op->fd);
    op->fd = -1;
  }
  if (op->temp[0] != '\0')
    unlinkat(srv.rootfd, op->temp, 0);
}

static void after_cleanup(uv_work_t *w, int status) {
  struct op *op = w->data;

  op->jobs--;
  fsd_debug("upload of %s dropped", op->r->name);
  fsd_session_aborted(&op->c->sess, op->r);
  op_free(op);
}

static void commit_work(uv_work_t *w) {
  struct op *op = w->data;

  op->err = fsd_temp_commit(srv.rootfd, op->fd, op->temp, op->r->name,
                            op->r->mode == FSP_PUT_NO_CLOBBER, !srv.no_fsync,
                            &op->st);
  close(op->fd);
  op->fd = -1;
}

static void start_commit(struct op *op);

/* Takes op out of one of the commit lists. */
static void commit_unlist(struct op **head, struct op *op) {
  for (struct op **pp = head; *pp != NULL; pp = &(*pp)->cnext)
    if (*pp == op) {
      *pp = op->cnext;
      op->cnext = NULL;
      return;
    }
}

static int commit_busy(const char *name) {
  for (struct op *o = srv.committing; o != NULL; o = o->cnext)
    if (strcmp(o->r->name, name) == 0)
      return 1;
  return 0;
}

/* op's rename or unlink is done and the register is about to learn of it:
 * let the next commit or delete of the same name go. Running them one at a
 * time per name keeps the register in the order the disk changed. */
static void commit_next(struct op *op) {
  commit_unlist(&srv.committing, op);
  for (struct op *o = srv.commit_wait; o != NULL; o = o->cnext)
    if (strcmp(o->r->name, op->r->name) == 0) {
      commit_unlist(&srv.commit_wait, o);
      start_commit(o);
      break;
    }
}

/* Runs op's commit (PUT) or unlink (DELETE) now, or after the one of the same
 * name in progress. */
static void commit_or_wait(struct op *op) {
  if (commit_busy(op->r->name)) {
    struct op **pp = &srv.commit_wait;
    while (*pp != NULL)
      pp = &(*pp)->cnext;
    *pp = op;
    op->jobs++; /* counts as a job: nothing else may start meanwhile */
    return;
  }
  start_commit(op);
}

static void after_commit(uv_work_t *w, int status) {
  struct op *op = w->data;
  struct conn *c = op->c;

  op->jobs--;
  commit_next(op);
  if (op->err == 0) {
    fsd_info("stored %s, %llu bytes (from %s)", op->r->name,
             (unsigned long long)op->st.st_size, c->peer);
    watch_own_change(op->r->name, op->r->name_len);
    fsd_session_put_done(&c->sess, op->r, (uint64_t)op->st.st_size,
                         fsd_mtime_ns(&op->st));
  } else {
    if (op->err != UV_EEXIST)
      fsd_warn("commit of %s failed: %s", op->r->name, uv_strerror(op->err));
    fsd_session_fail(&c->sess, op->r, fsd_status_from_uv(op->err), NULL);
  }
  op_free(op);
}

static int queue(struct op *op, uv_work_cb work, uv_after_work_cb after) {
  int r = uv_queue_work(srv.loop, &op->work, work, after);
  if (r == 0)
    op->jobs++;
  return r;
}

/* Moves a PUT along once its disk writes are done: commit, or clean up. */
static void put_step(struct op *op) {
  if (op->jobs > 0 || op->writes > 0 || op->cleaning)
    return;
  if (op->aborted || op->status != 0 || op->c->hard) {
    op->cleaning = 1;
    if (queue(op, cleanup_work, after_cleanup) != 0)
      after_cleanup(&op->work, 0); /* cannot happen: the loop is alive */
    return;
  }
  if (op->commit) {
    op->commit = 0;
    commit_or_wait(op);
  }
}

static void start_commit(struct op *op) {
  int r;

  if (op->jobs > 0)
    op->jobs--; /* it was waiting */
  if (op->r->opcode == FSP_OP_DELETE)
    r = queue(op, delete_work, after_delete);
  else
    r = queue(op, commit_work, after_commit);
  if (r != 0) {
    fsd_session_fail(&op->c->sess, op->r, FSP_ST_IO, NULL);
    op_release(op);
    return;
  }
  op->cnext = srv.committing;
  srv.committing = op;
}

/* Threadpool: writes the pieces pwriter_start() gathered. */
static void pwriter_work(uv_work_t *w) {
  struct pwriter *pw = w->data;

  pw->res = fsd_write_at(pw->op->fd, pw->iov, (int)pw->nbusy, pw->head->off);
}

/* Threadpool: starts the writeback of what was written since the last. */
static void flush_work(uv_work_t *w) {
  struct pwriter *pw = w->data;

  fsd_writeback_start(pw->op->fd, pw->flushed, pw->fl_end - pw->flushed);
}

static void flush_maybe(struct op *op);

static void flush_done(uv_work_t *w, int status) {
  struct pwriter *pw = w->data;
  struct op *op = pw->op;

  (void)status;
  pw->flushing = 0;
  pw->flushed = pw->fl_end;
  op->writes--;
  flush_maybe(op);
  put_step(op);
}

/* Starts the writeback of what was written since the last one, once there
 * is PUT_FLUSH_STEP of it. Left to the kernel, the pages of a large upload
 * stayed dirty until the fsync before the commit, which then wrote all of
 * them while the client waited (1.9 s of a 4.5 s upload of 1 GiB on the
 * test machine); started early, the disk writes them while the rest
 * arrives. A separate job, so that a disk queue that is full delays the
 * writeback, not the next write. A failure is no loss: the fsync reports
 * write errors. */
static void flush_maybe(struct op *op) {
  struct pwriter *pw = op->pw;

  if (!srv.writeback || pw->flushing || op->status != 0 || op->aborted ||
      op->c->hard || pw->written - pw->flushed < PUT_FLUSH_STEP)
    return;
  pw->fl_end = pw->written;
  pw->flush.data = pw;
  if (uv_queue_work(srv.loop, &pw->flush, flush_work, flush_done) == 0) {
    pw->flushing = 1;
    op->writes++;
  }
}

static void pwriter_done(uv_work_t *w, int status);

/* Starts a job writing the queued pieces: as many as are contiguous in the
 * file, at most PUT_IOV. */
static void pwriter_start(struct op *op) {
  struct pwriter *pw = op->pw;
  uint64_t next = pw->head->off;

  pw->nbusy = 0;
  pw->busy_len = 0;
  for (struct pseg *sg = pw->head; sg != NULL && pw->nbusy < PUT_IOV;
       sg = sg->next) {
    if (sg->off != next)
      break;
    pw->iov[pw->nbusy].iov_base = (void *)sg->p;
    pw->iov[pw->nbusy].iov_len = sg->len;
    pw->nbusy++;
    pw->busy_len += sg->len;
    next += sg->len;
  }
  pw->work.data = pw;
  if (uv_queue_work(srv.loop, &pw->work, pwriter_work, pwriter_done) != 0) {
    pw->res = UV_EIO; /* cannot happen: the loop is alive */
    pwriter_done(&pw->work, 0);
  }
}

/* Unlinks the first n queued pieces and lets go of their buffers. */
static void pwriter_drop(struct op *op, unsigned n) {
  struct pwriter *pw = op->pw;
  struct conn *c = op->c;

  while (n-- > 0 && pw->head != NULL) {
    struct pseg *sg = pw->head;
    pw->head = sg->next;
    block_unref(sg->b);
    c->put_pending -= sg->len;
    c->put_writes--;
    op->writes--;
    free(sg);
  }
  if (pw->head == NULL)
    pw->tail = &pw->head;
}

/* A write job ended: let go of its pieces, start the next one with what
 * queued meanwhile, or drop that when the upload failed or was dropped. */
static void pwriter_done(uv_work_t *w, int status) {
  struct pwriter *pw = w->data;
  struct op *op = pw->op;
  struct conn *c = op->c;
  ssize_t res = pw->res;
  size_t len = pw->busy_len;

  (void)status;
  pwriter_drop(op, pw->nbusy);
  pw->nbusy = 0;
  if (res > 0)
    pw->written += (uint64_t)res;
  flush_maybe(op);
  if ((res < 0 || (size_t)res != len) && op->status == 0) {
    int err = res < 0 ? (int)res : UV_ENOSPC;
    fsd_warn("write of %s failed: %s", op->r->name, uv_strerror(err));
    op->status = fsd_status_from_uv(err);
    fsd_session_failing(&c->sess, op->r, op->status, NULL);
  }
  if (pw->head != NULL) {
    if (op->status != 0 || op->aborted || c->hard)
      pwriter_drop(op, UINT_MAX); /* nobody will commit them */
    else
      pwriter_start(op);
  }
  put_step(op);
  update_reading(c);
}

/* Session callback: queue PUT bytes that live in the current read buffer
 * for the disk; they stay there (the buffer held) until written. */
static int host_put_write(void *host, struct fsd_req *r, const uint8_t *p,
                          size_t n, uint64_t off) {
  struct conn *c = host;
  struct op *op = r->op;
  struct pseg *sg;

  if (op->status != 0 || op->aborted)
    return UV_ECANCELED;
  if (op->pw == NULL) {
    op->pw = calloc(1, sizeof(*op->pw));
    if (op->pw != NULL) {
      op->pw->op = op;
      op->pw->tail = &op->pw->head;
    }
  }
  sg = op->pw != NULL ? malloc(sizeof(*sg)) : NULL;
  if (sg == NULL) {
    op->status = FSP_ST_IO;
    fsd_session_failing(&c->sess, r, FSP_ST_IO, "out of memory");
    put_step(op);
    return UV_ENOMEM;
  }
  sg->next = NULL;
  sg->b = c->rb;
  sg->p = p;
  sg->len = n;
  sg->off = off;
  c->rb->refs++;
  *op->pw->tail = sg;
  op->pw->tail = &sg->next;
  op->writes++;
  c->put_pending += n;
  c->put_writes++;
  if (op->pw->nbusy == 0)
    pwriter_start(op);
  update_reading(c);
  return 0;
}

static void host_put_commit(void *host, struct fsd_req *r) {
  struct op *op = r->op;
  op->commit = 1;
  put_step(op);
}

/* --- dispatch --- */

static void host_start(void *host, struct fsd_req *r) {
  struct conn *c = host;
  struct op *op = op_new(c, r);
  uv_work_cb work;
  uv_after_work_cb after;

  if (op == NULL) {
    fsd_session_fail(&c->sess, r, FSP_ST_BUSY, "out of memory");
    return;
  }
  switch (r->opcode) {
  case FSP_OP_GET:
    work = get_open_work;
    after = after_get_open;
    break;
  case FSP_OP_HASH:
    work = hash_work;
    after = after_hash;
    break;
  case FSP_OP_DELETE:
    /* In order with uploads of the same name; see commit_next(). */
    commit_or_wait(op);
    return;
  default:
    work = put_open_work;
    after = after_put_open;
    break;
  }
  if (queue(op, work, after) != 0) {
    r->op = NULL;
    op_free(op);
    fsd_session_fail(&c->sess, r, FSP_ST_IO, NULL);
  }
}

static void host_abort(void *host, struct fsd_req *r) {
  struct op *op = r->op;

  if (op == NULL)
    return;
  switch (r->opcode) {
  case FSP_OP_GET:
    __atomic_store_n(&op->aborted, 1, __ATOMIC_RELAXED);
    op_pump(op);
    break;
  case FSP_OP_HASH:
    /* The worker sees the flag between chunks. */
    __atomic_store_n(&op->aborted, 1, __ATOMIC_RELAXED);
    break;
  case FSP_OP_PUT:
    op->aborted = 1;
    put_step(op);
    break;
  default:
    break; /* DELETE runs to its end */
  }
}

static const struct fsd_host_ops host_ops = {
    .send = host_send,
    .backlog = host_backlog,
    .close = host_close,
    .start = host_start,
    .put_write = host_put_write,
    .put_commit = host_put_commit,
    .abort = host_abort,
};

/* ------------------------------------------------------------------------ */
/* Listener                                                                  */

static void peer_name(struct conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[48] = "?";
  int port = 0;

  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  snprintf(c->peer, sizeof(c->peer), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *server, int status) {
  struct conn *c;

  if (status < 0) {
    fsd_warn("accept: %s", uv_strerror(status));
    return;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  uv_tcp_init(srv.loop, &c->tcp);
  c->tcp.data = c;
  c->refs = 1;
  c->next = srv.conns;
  if (srv.conns != NULL)
    srv.conns->prev = c;
  srv.conns = c;
  fsd_session_init(&c->sess, &srv.ctx, &host_ops, c);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    c->hard = 1;
    close_tcp(c);
    return;
  }
  peer_name(c);
  c->sess.label = c->peer;
  uv_tcp_nodelay(&c->tcp, 1);
  c->last_active = uv_now(srv.loop);
  if (srv.nclients >= srv.max_clients) {
    uint8_t frame[64];
    struct fsp_msg m;
    ssize_t n;

    fsd_warn("client %s refused: %u clients already", c->peer, srv.nclients);
    memset(&m, 0, sizeof(m));
    m.op = FSP_OP_ERROR;
    m.u.error.status = FSP_ST_LIMIT;
    m.u.error.text.ptr = "too many clients";
    m.u.error.text.len = strlen(m.u.error.text.ptr);
    n = fsp_msg_encode(frame, sizeof(frame), &m);
    if (n > 0 && (size_t)n <= sizeof(frame))
      host_send(c, frame, (size_t)n);
    c->sess.state = FSD_SESS_CLOSED;
    host_close(c);
    return;
  }
  c->counted = 1;
  srv.nclients++;
  fsd_info("client %s connected", c->peer);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_hard_close(c);
}

/* ------------------------------------------------------------------------ */
/* Watching the folder                                                       */

static void watch_stat_work(uv_work_t *w) {
  struct watch_job *j = w->data;
  j->err = fsd_stat_file(srv.rootfd, j->name, &j->size, &j->mtime_ns);
  /* A worker may be descheduled between its stat and handing the result
   * back; FSD_WATCH_DELAY_MS (undocumented, for tests) makes that gap long
   * enough for a test to put requests into it. */
  if (srv.watch_delay_ms != 0)
    uv_sleep(srv.watch_delay_ms);
}

static void watch_dispatch(struct watch_job *j);

/* Our own PUT or DELETE of name changed the disk and is being applied to
 * the register: a stat of the name in flight may have looked before that
 * change and must not be applied after it. after_watch_stat() looks again
 * instead. (Comparing the entry before and after the stat is not enough: a
 * name absent at both ends may have been added and deleted meanwhile, and a
 * stat that saw the file in between would bring a deleted file back.) */
static void watch_own_change(const char *name, size_t len) {
  struct fsd_file *w = fsd_register_get(&srv.watched, name, len);

  if (w != NULL)
    w->mtime_ns = 1;
}

static void after_watch_stat(uv_work_t *w, int status) {
  struct watch_job *j = w->data;
  struct fsd_file *pending;

  if (srv.stopping) {
    fsd_register_remove(&srv.watched, j->name, j->name_len);
    free(j);
    return;
  }
  pending = fsd_register_get(&srv.watched, j->name, j->name_len);
  if (pending != NULL && pending->mtime_ns != 0) {
    /* Overtaken by our own change: what the stat saw may be older. A new
     * look starts after that change, so it sees it or something newer. */
    pending->mtime_ns = 0;
    pending->size = 0;
    watch_dispatch(j);
    return;
  }
  if (j->err == 0)
    fsd_ctx_update(&srv.ctx, j->name, j->name_len, 1, j->size, j->mtime_ns);
  else if (j->err == UV_ENOENT &&
           fsd_ctx_update(&srv.ctx, j->name, j->name_len, 0, 0, now_ns()) > 0)
    fsd_debug("%s is gone from the folder", j->name);
  else if (j->err < 0 && j->err != UV_ENOENT)
    fsd_warn("stat of %s: %s", j->name, uv_strerror(j->err));
  if (pending != NULL && pending->size != 0) {
    /* More changes came while this stat ran: look once more. */
    pending->size = 0;
    watch_dispatch(j);
    return;
  }
  fsd_register_remove(&srv.watched, j->name, j->name_len);
  free(j);
}

static void watch_dispatch(struct watch_job *j) {
  j->work.data = j;
  if (uv_queue_work(srv.loop, &j->work, watch_stat_work, after_watch_stat)) {
    fsd_register_remove(&srv.watched, j->name, j->name_len);
    free(j);
  }
}

/* Confirms what happened to name with a stat on the threadpool. A file
 * being written by another program reports a change per write: while a
 * stat for the name is queued, further reports only mark it for one more
 * look, so the queue holds at most one job per name. */
static void watch_name(const char *name, size_t len) {
  struct fsd_file *pending;
  struct watch_job *j;

  if (fsp_name_check(name, len) != 0)
    return; /* dotfiles, including our temp files */
  pending = fsd_register_get(&srv.watched, name, len);
  if (pending != NULL) {
    pending->size = 1;
    return;
  }
  j = malloc(sizeof(*j));
  if (j == NULL)
    return;
  if (fsd_register_set(&srv.watched, name, len, 0, 0) < 0) {
    free(j);
    return;
  }
  j->name_len = (uint16_t)len;
  memcpy(j->name, name, len);
  j->name[len] = '\0';
  watch_dispatch(j);
}

static void reconcile_start(void);

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events,
                        int status) {
  if (status < 0) {
    fsd_warn("watching the root: %s", uv_strerror(status));
    reconcile_start();
    return;
  }
  if (filename == NULL) {
    reconcile_start(); /* the kernel lost track: look at everything */
    return;
  }
  watch_name(filename, strlen(filename));
}

static void scan_work(uv_work_t *w) {
  srv.scan_err = fsd_scan_dir(srv.rootfd, 0, &srv.scan);
}

static void after_scan(uv_work_t *w, int status) {
  struct fsd_register *reg = &srv.ctx.reg;
  struct fsd_scan *sc = &srv.scan;
  struct fsd_register names;
  size_t i;

  srv.scanning = 0;
  if (srv.stopping || srv.scan_err != 0) {
    if (srv.scan_err != 0)
      fsd_warn("rescan of the root failed: %s", uv_strerror(srv.scan_err));
    fsd_scan_free(sc);
    return;
  }
  /* Whatever differs is confirmed by a fresh stat rather than applied from
   * the scan, which may be older than changes our own requests made while it
   * ran. Usually nothing differs and nothing is queued. */
  for (i = 0; i < sc->n; i++) {
    const struct fsd_file *f =
        fsd_register_get(reg, sc->v[i].name, sc->v[i].name_len);
    if (f == NULL || f->size != sc->v[i].size ||
        f->mtime_ns != sc->v[i].mtime_ns)
      watch_name(sc->v[i].name, sc->v[i].name_len);
  }
  /* Register entries the scan did not find. */
  if (fsd_register_init(&names) == 0) {
    for (i = 0; i < sc->n; i++)
      fsd_register_set(&names, sc->v[i].name, sc->v[i].name_len, 0, 0);
    for (size_t b = 0; b < reg->nbuckets; b++)
      for (const struct fsd_file *f = reg->buckets[b]; f != NULL; f = f->next)
        if (fsd_register_get(&names, f->name, f->name_len) == NULL)
          watch_name(f->name, f->name_len);
    fsd_register_free(&names);
  }
  fsd_scan_free(sc);
}

static void reconcile_start(void) {
  if (srv.scanning || srv.stopping)
    return;
  srv.scanning = 1;
  srv.last_reconcile = uv_now(srv.loop);
  if (uv_queue_work(srv.loop, &srv.scan_work, scan_work, after_scan) != 0)
    srv.scanning = 0;
}

/* ------------------------------------------------------------------------ */
/* Timers and signals                                                        */

static void on_sweep(uv_timer_t *t) {
  uint64_t now = uv_now(srv.loop);
  struct conn *c, *next;

  for (c = srv.conns; c != NULL; c = next) {
    next = c->next;
    if (c->hard)
      continue;
    if (c->closing) {
      if (now - c->closing_since > FLUSH_TIMEOUT_MS)
        conn_hard_close(c); /* the peer stopped reading our last frames */
      continue;
    }
    if (srv.idle_timeout != 0 && !fsd_session_active(&c->sess) &&
        now - c->last_active > (uint64_t)srv.idle_timeout * 1000) {
      fsd_info("client %s idle for %u s, closing", c->peer, srv.idle_timeout);
      fsd_session_timeout(&c->sess);
    }
  }
  if (now - srv.last_reconcile >= srv.rescan_ms)
    reconcile_start();
  if (!out_spares_taken)
    out_spares_free();
  out_spares_taken = 0;
}

static void on_stop_timer(uv_timer_t *t) {
  struct conn *c, *next;

  fsd_warn("clients did not close in time, dropping them");
  for (c = srv.conns; c != NULL; c = next) {
    next = c->next;
    conn_hard_close(c);
  }
  uv_close((uv_handle_t *)t, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  struct conn *c, *next;

  if (srv.stopping)
    return;
  srv.stopping = 1;
  fsd_info("%s: shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
  uv_close((uv_handle_t *)&srv.listener, NULL);
  uv_close((uv_handle_t *)&srv.sweep, NULL);
  /* Keep catching signals (a second Ctrl-C must not kill us half way), but
   * let the loop end without them. */
  uv_unref((uv_handle_t *)&srv.sigint);
  uv_unref((uv_handle_t *)&srv.sigterm);
  if (srv.watching)
    uv_close((uv_handle_t *)&srv.watch, NULL);
  uv_timer_init(srv.loop, &srv.stop_timer);
  uv_timer_start(&srv.stop_timer, on_stop_timer, STOP_TIMEOUT_MS, 0);
  for (c = srv.conns; c != NULL; c = next) {
    next = c->next;
    if (!c->hard && !c->closing)
      fsd_session_shutdown(&c->sess);
  }
  if (srv.conns == NULL)
    uv_close((uv_handle_t *)&srv.stop_timer, NULL);
}

/* ------------------------------------------------------------------------ */
/* Start                                                                     */

static void raise_nofile(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      fsd_warn("cannot raise the open file limit: %s", strerror(errno));
  }
}

static int load_register(void) {
  struct fsd_scan sc;
  int r = fsd_scan_dir(srv.rootfd, 1, &sc);

  if (r != 0)
    return r;
  if (sc.removed_temps > 0)
    fsd_info("removed %d stale temp file(s)", sc.removed_temps);
  for (size_t i = 0; i < sc.n; i++) {
    r = fsd_register_set(&srv.ctx.reg, sc.v[i].name, sc.v[i].name_len,
                         sc.v[i].size, sc.v[i].mtime_ns);
    if (r < 0)
      break;
  }
  fsd_info("serving %zu file(s)", sc.n);
  fsd_scan_free(&sc);
  return r < 0 ? r : 0;
}

/* Always printed, whatever the log level: scripts and tests that start fsd on
 * port 0 read the real port from this line. */
static void log_listening(void) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[48];

  if (uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&ss, &len) != 0)
    return;
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
    fprintf(stderr, "fsd: listening on [%s]:%d\n", ip,
            ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
    fprintf(stderr, "fsd: listening on %s:%d\n", ip,
            ntohs(((struct sockaddr_in *)&ss)->sin_port));
  }
  fflush(stderr);
}

static void close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Runs the server; see server.h. */
/* An on/off switch from the environment (undocumented, for measuring):
 * on unless set to "0". */
static int env_flag(const char *name) {
  const char *v = getenv(name);

  return v == NULL || strcmp(v, "0") != 0;
}

int fsd_server_run(const struct fsd_config *cfg) {
  uint64_t epoch = 0;
  unsigned sweep_ms;
  int r;

  memset(&srv, 0, sizeof(srv));
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  /* Threadpool size is read on the first uv_queue_work: set it before. A
   * few more threads than the default keep fsyncs from starving reads. */
  setenv("UV_THREADPOOL_SIZE", "8", 0);
  srv.max_clients = cfg->max_clients;
  /* sendfile() for GET payloads unless FSD_SENDFILE=0: it spent about a
   * third less CPU than pread + write for the same throughput (see the
   * notes on the zero-copy path above). The copy path stays for A/B runs. */
  srv.zero_copy = env_flag("FSD_SENDFILE");
  /* Early writeback of uploads unless FSD_WRITEBACK=0 (to measure it). */
  srv.writeback = env_flag("FSD_WRITEBACK");
  srv.idle_timeout = cfg->idle_timeout;
  /* FSD_RESCAN_MS (undocumented, for tests): rescan the root this often, so
   * that rescans racing with uploads and deletes can be provoked. */
  srv.rescan_ms = RECONCILE_MS;
  if (getenv("FSD_RESCAN_MS") != NULL) {
    unsigned long v = strtoul(getenv("FSD_RESCAN_MS"), NULL, 10);
    if (v > 0 && v < RECONCILE_MS)
      srv.rescan_ms = (unsigned)v;
  }
  sweep_ms = srv.rescan_ms < SWEEP_MS ? srv.rescan_ms : SWEEP_MS;
  if (getenv("FSD_WATCH_DELAY_MS") != NULL)
    srv.watch_delay_ms =
        (unsigned)strtoul(getenv("FSD_WATCH_DELAY_MS"), NULL, 10) % 10000u;
  srv.rootfd = fsd_root_open(cfg->root);
  if (srv.rootfd < 0) {
    fsd_error("cannot open root %s: %s", cfg->root, uv_strerror(srv.rootfd));
    return srv.rootfd;
  }
  if (getrandom(&epoch, sizeof(epoch), 0) != sizeof(epoch) || epoch == 0)
    epoch = (uint64_t)now_ns() ^ (uint64_t)getpid() << 32;
  r = fsd_ctx_init(&srv.ctx, epoch);
  if (r != 0)
    goto out_fd;
  srv.ctx.read_only = cfg->read_only;
  srv.no_fsync = cfg->no_fsync;
  if (srv.no_fsync)
    fsd_warn("uploads are committed without fsync: an upload acknowledged "
             "just before a power failure may be lost");
  r = fsd_register_init(&srv.watched);
  if (r != 0)
    goto out_ctx;

  /* Watch before the first scan, so that nothing created after the scan
   * read its directory entry goes unseen until the next rescan. */
  srv.loop = uv_default_loop();
  uv_fs_event_init(srv.loop, &srv.watch);
  if (uv_fs_event_start(&srv.watch, on_fs_event, cfg->root, 0) == 0) {
    srv.watching = 1;
  } else {
    fsd_warn("cannot watch %s; relying on rescans", cfg->root);
    uv_close((uv_handle_t *)&srv.watch, NULL);
  }
  r = load_register();
  if (r != 0) {
    fsd_error("cannot read root %s: %s", cfg->root, uv_strerror(r));
    uv_walk(srv.loop, close_walk, NULL);
    uv_run(srv.loop, UV_RUN_DEFAULT);
    uv_loop_close(srv.loop);
    goto out_ctx;
  }
  uv_tcp_init(srv.loop, &srv.listener);
  r = uv_tcp_bind(&srv.listener, (const struct sockaddr *)&cfg->addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&srv.listener, 511, on_connection);
  if (r != 0) {
    fsd_error("cannot listen: %s", uv_strerror(r));
    uv_walk(srv.loop, close_walk, NULL);
    uv_run(srv.loop, UV_RUN_DEFAULT);
    uv_loop_close(srv.loop);
    goto out_ctx;
  }
  log_listening();

  uv_signal_init(srv.loop, &srv.sigint);
  uv_signal_start(&srv.sigint, on_signal, SIGINT);
  uv_signal_init(srv.loop, &srv.sigterm);
  uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
  uv_timer_init(srv.loop, &srv.sweep);
  uv_timer_start(&srv.sweep, on_sweep, sweep_ms, sweep_ms);
  uv_check_init(srv.loop, &srv.flush);
  uv_check_start(&srv.flush, on_flush);
  uv_unref((uv_handle_t *)&srv.flush); /* never the reason to keep running */
  srv.last_reconcile = uv_now(srv.loop);

  uv_run(srv.loop, UV_RUN_DEFAULT);
  /* Closing the signal handles restores the default action; ignore the
   * signals right away so that a second SIGTERM during the last steps of a
   * clean stop does not turn it into a kill. */
  uv_walk(srv.loop, close_walk, NULL);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  uv_run(srv.loop, UV_RUN_DEFAULT);
  r = uv_loop_close(srv.loop);
  if (r != 0)
    fsd_warn("loop closed with handles open: %s", uv_strerror(r));
  fsd_info("stopped");
  r = 0;
out_ctx:
  out_spares_free();
  if (srv.watched.buckets != NULL)
    fsd_register_free(&srv.watched);
  fsd_ctx_free(&srv.ctx);
out_fd:
  close(srv.rootfd);
  return r;
}
