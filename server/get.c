/* GET: the copy path and the sendfile() path; see get.h. */
#include "get.h"

#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mem.h"

#define GET_CHUNK 262144u     /* DATA payload of a GET, at most */
#define GET_ZC_CHUNK 1048576u /* the same when nothing is hashed */
#define GET_QUEUE_MAX 262144u /* write queue above which GET waits */
#define GET_LEAST 65536u      /* the least read ahead worth a job */
#define HASH_PIECE 65536u     /* bytes hashed at a time on a worker */
/* A file the register knows to be at most GET_SMALL bytes is read whole
 * and closed by the job that opens it, when the connection's budget has
 * room: one threadpool job instead of three (open, read, close), which
 * is most of the cost of fetching a tree of small files. */
#define GET_SMALL 65536u
/* A small GET's DATA frame of at most GET_GATHER bytes is copied into the
 * connection's gathered output, with BEGIN before it and END after it: the
 * frames of many GETs then leave in one send(). Larger ones are written on
 * their own, as chunks are. */
#define GET_GATHER 16384u

static void pump(struct fsd_op *op);

/* Gives n bytes of the GET's read-ahead back to its connection's budget. */
static void give(struct fsd_op *op, size_t n) {
  op->u.get.held -= n;
  fsd_budget_give(&op->c->budget, n);
}

/* Threadpool, after the open of a small GET: reads the whole file into
 * the chunk set up for it and closes it. A file grown past what was set
 * up stays open, for the chunked way. */
static void small_read(struct fsd_op *op) {
  struct fsd_get *g = &op->u.get;
  size_t n = (size_t)op->st.st_size;

  if ((uint64_t)op->st.st_size > g->chunk_len)
    return;
  op->err = fsd_read_at(op->fd, g->chunk->data + FSP_HDR_LEN, n, 0);
  if (op->err < 0)
    return;
  g->changed = (uint8_t)fsd_changed_in_place(op->fd, &op->st);
  g->whole = 1;
  close(op->fd);
  op->fd = -1;
}

static void get_open_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  int fd = fsd_open_file(op->h->rootfd, op->r->name, &op->st);

  op->err = fd < 0 ? fd : 0;
  op->fd = fd < 0 ? -1 : fd;
  if (fd >= 0 && op->u.get.chunk != NULL)
    small_read(op);
}

/* After a read of n bytes at pos: whether that was the GET's last read
 * and the open file was changed in place since the GET opened it. Such a
 * file would end in a hash that matches neither version; the GET says
 * what happened instead. */
static int last_read_saw_change(const struct fsd_op *op, size_t n) {
  return op->u.get.pos + n == op->u.get.end &&
         fsd_changed_in_place(op->fd, &op->st);
}

static void get_read_work(uv_work_t *w) {
  struct fsd_op *op = w->data;
  struct fsd_get *g = &op->u.get;
  size_t n = g->chunk_len;

  if (g->zc && g->hash_known) {
    /* Nothing to hash: only make sure the pages are in the page cache, so
     * that sendfile() on the loop thread does not wait for the disk. */
    op->err = fsd_page_in(op->fd, g->pos, n);
  } else if (g->zc) {
    /* The payload leaves with sendfile(): the bytes are read only to be
     * hashed, a piece at a time on this worker's stack, so that no GET
     * keeps a buffer (each used to keep its 256 KiB chunk: 1.6 GiB for
     * 100 connections with 64 unread GETs each). */
    uint8_t piece[HASH_PIECE];
    op->err = 0;
    for (size_t got = 0; got < n && op->err == 0;) {
      size_t k = n - got < sizeof(piece) ? n - got : sizeof(piece);
      op->err = fsd_read_at(op->fd, piece, k, g->pos + got);
      if (op->err == 0)
        XXH3_64bits_update(g->hs, piece, k);
      got += k;
    }
  } else {
    uint8_t *p = g->chunk->data + FSP_HDR_LEN;
    op->err = fsd_read_at(op->fd, p, n, g->pos);
    if (op->err == 0) {
      XXH3_64bits_update(g->hs, p, n);
      if (!g->zc)
        fsp_header_write(g->chunk->data, FSP_OP_DATA, op->r->id, (uint32_t)n);
    }
  }
  if (op->err == 0) {
    op->err = (int)n;
    g->changed = (uint8_t)last_read_saw_change(op, n);
  }
}

static void after_get_read(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_get *g = &op->u.get;

  (void)status;
  g->reading = 0;
  op->jobs--;
  if (op->err < 0 || g->changed) {
    if (g->changed)
      fsd_warn("%s was changed in place while being sent", op->r->name);
    else
      fsd_warn("read of %s failed: %s", op->r->name, uv_strerror(op->err));
    fsd_buf_free(g->chunk);
    g->chunk = NULL;
    give(op, g->chunk_len);
    if (op->status == 0) {
      op->status = FSP_ST_IO;
      if (g->changed)
        op->why = "the file was changed in place while being sent";
    }
  } else if (g->zc) {
    g->pos += (uint64_t)op->err;
    g->zready = (size_t)op->err;
  } else {
    g->pos += (uint64_t)op->err;
    g->ready = g->chunk;
    g->chunk = NULL;
  }
  pump(op);
}

/* The copy path's chunk was written (or not). */
static void on_chunk_written(struct fsd_buf *b, int status) {
  struct fsd_op *op = b->user;

  give(op, b->len - FSP_HDR_LEN);
  fsd_buf_free(b);
  op->u.get.writing = 0;
  if (status < 0) {
    op->status = FSP_ST_IO;
    pump(op);
  }
  /* else the connection's waiters call pump() */
}

/* The sendfile() frame is out, or cut short. */
static void on_zframe_done(struct fsd_zframe *zf, int status) {
  struct fsd_op *op = fsd_container_of(zf, struct fsd_op, u.get.zf);

  give(op, op->u.get.zlen);
  op->u.get.zlen = 0;
  op->u.get.writing = 0;
  if (status < 0)
    op->status = FSP_ST_IO;
}

static void on_writable(struct fsd_waiter *w) {
  pump(fsd_container_of(w, struct fsd_op, u.get.waiter));
}

/* Sends the prepared bytes as one DATA frame with sendfile(), when nothing
 * else is on the way to the socket. Returns 0, or -1 when the connection
 * failed (it is closed after this callback, which ends the GET). */
static int zc_start(struct fsd_op *op) {
  struct fsd_get *g = &op->u.get;
  size_t n = g->zready;
  int r;

  if (n == 0 || g->writing)
    return 0;
  g->writing = 1;
  g->zlen = n; /* given back when the frame is done, maybe at once */
  r = fsd_conn_sendfile(op->c, &g->zf, op->r->id, n);
  if (r <= 0) {
    g->writing = 0; /* busy: a waiter call comes back here */
    g->zlen = 0;    /* (the bytes stay held until the GET ends) */
  } else {
    g->zready = 0;
  }
  if (r < 0)
    op->status = FSP_ST_IO;
  return r < 0 ? -1 : 0;
}

/* Writes the chunk read ahead (copy path). Returns 0, or -1 when the
 * write could not start (the GET then ends, through pump()). */
static int copy_write(struct fsd_op *op) {
  struct fsd_get *g = &op->u.get;
  struct fsd_buf *ch = g->ready;
  struct fsp_frame f;

  /* The chunk holds one DATA frame, its header written by get_read_work():
   * its length comes from there. */
  fsp_header_parse(ch->data, GET_CHUNK, &f);
  g->ready = NULL;
  ch->user = op;
  ch->done = on_chunk_written;
  ch->len = FSP_HDR_LEN + f.len; /* the payload goes back to the budget */
  if (fsd_conn_write(op->c, ch, ch->len) != 0) {
    give(op, f.len);
    fsd_buf_free(ch);
    op->status = FSP_ST_IO;
    pump(op);
    return -1;
  }
  g->writing = 1;
  return 0;
}

/* Starts reading the next chunk, once the connection's budget has room
 * for it. */
static void read_next(struct fsd_op *op) {
  struct fsd_get *g = &op->u.get;
  struct fsd_conn *c = op->c;
  uint64_t left = g->end - g->pos;
  size_t max = fsd_session_peer_max(&c->sess);
  /* A cached hash leaves the job only the page cache to check, and the
   * payload goes out with sendfile(): bigger chunks, fewer jobs and
   * frames. Hashed chunks stay small, as they are read into memory. */
  size_t cmax = g->zc && g->hash_known ? GET_ZC_CHUNK : GET_CHUNK;
  size_t want = left < cmax ? (size_t)left : cmax;

  if (want > max)
    want = max;
  /* Every GET of the connection reads ahead from one budget, given back
   * as the bytes leave: a connection that reads nothing holds at most
   * FSD_CONN_XFER_BUDGET, whatever the number of its GETs. Without a
   * grant the GET waits its turn (oldest first) for a waiter call. Older
   * GETs may be waiting for bytes given back while nothing else will call
   * them (a frame that went out at once): wake them. */
  g->chunk_len = fsd_budget_take(&c->budget, &g->bw, want, GET_LEAST);
  if (g->chunk_len == 0) {
    if (fsd_budget_next(&c->budget) != NULL)
      fsd_conn_wake(c);
    return;
  }
  g->held += g->chunk_len;
  if (!g->zc) {
    g->chunk = fsd_buf_new(FSP_HDR_LEN + g->chunk_len);
    if (g->chunk == NULL) {
      give(op, g->chunk_len);
      op->status = FSP_ST_IO;
      pump(op);
      return;
    }
  }
  g->reading = 1;
  if (fsd_op_queue(op, get_read_work, after_get_read) != 0) {
    g->reading = 0;
    give(op, g->chunk_len);
    op->status = FSP_ST_IO;
    pump(op);
  }
}

/* All bytes are out: END with the hash, and remember it. */
static void finish(struct fsd_op *op) {
  struct fsd_get *g = &op->u.get;
  uint64_t hash = g->hash;

  if (!g->hash_known) {
    hash = XXH3_64bits_digest(g->hs);
    if (g->zc && g->length == g->file_size) {
      struct fsd_file_id id = {
          .dev = (uint64_t)op->st.st_dev,
          .ino = (uint64_t)op->st.st_ino,
          .size = (uint64_t)op->st.st_size,
          .mtime_ns = fsd_mtime_ns(&op->st),
          .ctime_ns = fsd_ctime_ns(&op->st),
      };
      fsd_hcache_put(&op->h->hcache, &id, hash, fsd_now_ns());
    }
  }
  fsd_session_get_end(&op->c->sess, op->r, g->length, hash);
  fsd_op_release(op);
}

/* Moves a GET along: write the chunk read ahead when the socket's queue is
 * short, start the next read, or finish. The single place that decides, so
 * every event (read done, write done, abort) just calls it. */
static void pump(struct fsd_op *op) {
  struct fsd_get *g = &op->u.get;
  struct fsd_conn *c = op->c;

  if (op->jobs > 0 && !g->reading)
    return; /* still opening */
  if (op->aborted || op->status != 0 || c->hard) {
    if (g->reading || g->writing)
      return;
    if (op->aborted || c->hard)
      fsd_session_aborted(&c->sess, op->r);
    else
      fsd_session_fail(&c->sess, op->r, op->status, op->why);
    fsd_op_release(op);
    return;
  }
  if (g->zc) {
    if (zc_start(op) < 0)
      return;
  } else if (g->ready != NULL && !g->writing && c->zf == NULL &&
             fsd_conn_queued(c) < GET_QUEUE_MAX) {
    if (copy_write(op) < 0)
      return;
  }
  if (!g->reading && g->ready == NULL && g->zready == 0 && g->pos < g->end) {
    read_next(op);
    return;
  }
  if (g->pos == g->end && !g->reading && g->ready == NULL && g->zready == 0 &&
      !g->writing)
    finish(op);
}

/* After the open of a small GET (see GET_SMALL): when the file was read
 * whole, the range is made one DATA frame from the chunk (gathered, or
 * ready for copy_write()), off the sendfile() path. Else (the file grew)
 * the chunk and its budget go back: the GET goes on the chunked way. */
static void small_ready(struct fsd_op *op, uint64_t off, uint64_t len) {
  struct fsd_get *g = &op->u.get;
  uint8_t *data = g->chunk->data + FSP_HDR_LEN;

  if (!g->whole) {
    fsd_buf_free(g->chunk);
    g->chunk = NULL;
    give(op, g->chunk_len);
    return;
  }
  if (g->changed) {
    /* Nothing goes out: the GET ends in an error that says why. */
    op->status = FSP_ST_IO;
    op->why = "the file was changed in place while being sent";
    len = 0;
  }
  if (off > 0)
    memmove(data, data + off, (size_t)len);
  XXH3_64bits_update(g->hs, data, (size_t)len);
  fsp_header_write(g->chunk->data, FSP_OP_DATA, op->r->id, (uint32_t)len);
  give(op, g->chunk_len - (size_t)len); /* the frame gives the rest back */
  g->zc = 0;
  g->pos = g->end;
  if (len > 0 && FSP_HDR_LEN + len <= GET_GATHER && op->c->zf == NULL) {
    /* Gathered output counts in the backlog that stops the connection's
     * reading (conn.c), so a client that does not read cannot grow it. */
    if (fsd_conn_send(op->c, g->chunk->data, FSP_HDR_LEN + (size_t)len) != 0)
      op->status = FSP_ST_IO;
    give(op, (size_t)len);
    fsd_buf_free(g->chunk);
  } else if (len > 0) {
    g->ready = g->chunk;
  } else {
    fsd_buf_free(g->chunk);
  }
  g->chunk = NULL;
}

static void after_get_open(uv_work_t *w, int status) {
  struct fsd_op *op = w->data;
  struct fsd_get *g = &op->u.get;
  struct fsd_conn *c = op->c;
  uint64_t off, len;

  (void)status;
  op->jobs--;
  if (op->aborted || c->hard) {
    fsd_session_aborted(&c->sess, op->r);
    fsd_op_release(op);
    return;
  }
  if (op->err < 0) {
    fsd_session_fail(&c->sess, op->r, fsd_status_from_uv(op->err), NULL);
    fsd_op_release(op);
    return;
  }
  g->file_size = (uint64_t)op->st.st_size;
  if (fsd_session_get_begin(&c->sess, op->r, g->file_size,
                            fsd_mtime_ns(&op->st), &off, &len) != 0) {
    fsd_op_release(op);
    return;
  }
  g->hs = XXH3_createState();
  if (g->hs == NULL) {
    fsd_session_fail(&c->sess, op->r, FSP_ST_IO, "out of memory");
    fsd_op_release(op);
    return;
  }
  XXH3_64bits_reset(g->hs);
  g->pos = off;
  g->end = off + len;
  g->length = len;
  /* sendfile() only where the socket carries the file's bytes as they are
   * (not through TLS), and unless switched off. */
  g->zc = (uint8_t)(op->h->zero_copy && c->tp->zero_copy);
  g->zf.fd = op->fd;
  g->zf.pos = off;
  g->zf.name = op->r->name;
  g->zf.done = on_zframe_done;
  if (g->chunk != NULL)
    small_ready(op, off, len); /* sent from the chunk: zc off, no cache */
  if (g->zc && off == 0 && len == g->file_size) {
    struct fsd_file_id id = {
        .dev = (uint64_t)op->st.st_dev,
        .ino = (uint64_t)op->st.st_ino,
        .size = (uint64_t)op->st.st_size,
        .mtime_ns = fsd_mtime_ns(&op->st),
        .ctime_ns = fsd_ctime_ns(&op->st),
    };
    g->hash_known = (uint8_t)fsd_hcache_find(&op->h->hcache, &id, &g->hash);
  }
  fsd_debug("GET %s from %s: %llu bytes at %llu", op->r->name, c->peer,
            (unsigned long long)len, (unsigned long long)off);
  g->waiter.writable = on_writable;
  fsd_list_push(&c->waiters, &g->waiter.link);
  pump(op);
}

/* Sets a small GET up to be read whole by its open job (see GET_SMALL):
 * the connection's budget and a chunk for the size the register knows.
 * Nothing is set up when the file is not known small or the budget has no
 * room now (the chunked way then waits its turn as usual). */
static void small_setup(struct fsd_op *op) {
  struct fsd_get *g = &op->u.get;
  const struct fsd_file *f =
      fsd_register_get(&op->h->ctx->reg, op->r->name, op->r->name_len);
  size_t want;

  if (f == NULL || f->size > GET_SMALL)
    return;
  want = f->size > 0 ? (size_t)f->size : 1;
  g->chunk_len = fsd_budget_take(&op->c->budget, &g->bw, want, want);
  if (g->chunk_len == 0) {
    fsd_budget_cancel(&op->c->budget, &g->bw);
    return;
  }
  g->held += g->chunk_len;
  g->chunk = fsd_buf_new(FSP_HDR_LEN + g->chunk_len);
  if (g->chunk == NULL)
    give(op, g->chunk_len);
}

/* Starts a GET; see get.h. */
int fsd_get_start(struct fsd_op *op) {
  small_setup(op);
  /* A small file is read whole by the job: it shares a trip. */
  if (op->u.get.chunk != NULL)
    return fsd_op_queue_small(op, get_open_work, after_get_open);
  return fsd_op_queue(op, get_open_work, after_get_open);
}

/* Stops a GET; see get.h. */
void fsd_get_abort(struct fsd_op *op) {
  __atomic_store_n(&op->aborted, 1, __ATOMIC_RELAXED);
  pump(op);
}
