/* fsc uploads: put. Each FILE is a job that opens the file (or spools a
 * piped stdin to an unlinked temporary file, since PUT announces the size),
 * sends PUT, waits for READY, then reads the file in chunks into a few
 * buffers, each sent as one DATA frame with its header in front (no copy),
 * and ends with END carrying the XXH3-64 of what was read. put -r walks
 * each DIR first (walk.c) and runs one job per file (PUT with PARENTS) or
 * empty folder (MKDIR with PARENTS), many at once on the one connection,
 * each job freed as it ends; a small file is read whole by one threadpool
 * job (store.c) before its PUT goes out. With -c, a job first hashes its
 * file and asks the server's HASH of one byte more: a DIGEST of the same
 * length and hash (the length clamped to the server's file says the sizes
 * match) means the file is there already, and no PUT goes out. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "batch.h"
#include "cmds.h"
#include "fmt.h"
#include "hash.h"
#include "job.h"
#include "path.h"
#include "rpath.h"
#include "store.h"
#include "walk.h"
#include "xfer.h"

/* DATA frames we send are at most this big (and at most what the server
 * accepts): big frames mean few headers, few syscalls, few callbacks. */
#define PUT_CHUNK (1u << 20)
/* Upload buffers per file: one being read from disk while others are on
 * their way to the socket. Memory per upload is PUT_NBUF * PUT_CHUNK. */
#define PUT_NBUF 4
/* Uploads in flight at once: each holds up to PUT_NBUF * PUT_CHUNK of
 * memory, so a few keep the link busy and bound what fsc holds. */
#define PUT_PARALLEL 4
/* put -c: reads of the file being hashed before HASH. */
#define CHECK_CHUNK (256u << 10)
/* Reads of a piped stdin being spooled to a temporary file. */
#define SPOOL_CHUNK (1u << 20)
/* put -r: uploads in flight at once (within the server's limit), so that
 * small files never wait for a round trip each; with smaller chunks, so
 * that they hold at most PUT_TREE_PARALLEL * PUT_NBUF * PUT_TREE_CHUNK
 * (32 MiB) however big the files. */
#define PUT_TREE_PARALLEL 32
#define PUT_TREE_CHUNK (256u << 10)

/* What the uploads of one run share. */
struct put_run {
  struct fsc_progress prog;
  int tree;                /* put -r */
  struct fsc_walk walk;    /* put -r: the files and empty folders */
  uint64_t files_ok;       /* put -r: files stored */
  uint64_t bytes_ok;       /* and their bytes */
  uint64_t files_same;     /* put -c: already on the server, not sent */
  struct fsb_batcher disk; /* put -r: small files' loads */
};

struct put_buf {
  uv_write_t w;
  struct put_job *p;
  uint8_t *frame; /* FSP_HDR_LEN + chunk bytes */
  uint32_t len;   /* payload bytes in flight */
  int busy;
};

struct put_job {
  struct fsc_job j;
  char name[FSP_PATH_MAX + 1]; /* the path on the server */
  int folder;                  /* put -r: an empty folder, made by MKDIR */
  int fd;
  int own_fd;
  int is_stdin;
  int src_fd; /* a pipe being spooled (stdin or a FIFO) */
  uint64_t size;
  struct fsc_put sm;
  uv_fs_t fs; /* open, fstat, read, spool, close */
  int fs_busy;
  struct put_buf bufs[PUT_NBUF];
  int writes;              /* DATA frames not yet written */
  uint64_t roff;           /* file offset of the next read */
  struct put_buf *reading; /* the buffer being read into */
  int ready;               /* READY came */
  int end_sent;
  int cancel_sent;
  int closing; /* final close requested */
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
  } in;               /* stdin, when it is spooled */
  int in_open;        /* in is initialised and not yet closed */
  int in_eof;         /* all of stdin has been read */
  uint8_t *spool_buf; /* one read of stdin */
  size_t spool_len;   /* bytes in spool_buf */
  size_t spool_off;   /* of which already in the spool file */
  uint64_t spooled;   /* bytes of stdin in the spool file */
  /* put -r, a small file: open, fstat, read and close are one threadpool
   * job (store.c via batch.c) before PUT goes out; its bytes wait in
   * bufs[0] for READY. */
  struct fsb_item load;
  int small;      /* bufs[0] holds the whole file */
  size_t scap;    /* bytes bufs[0] has room for */
  size_t sgot;    /* bytes the load read */
  uint64_t lsize; /* what the load's fstat said */
  unsigned lmode;
  int lfd; /* the file, when the load left it open (not small after all) */
  struct fsc_store_res loaded;
  /* put -c: the file is hashed, then HASH asks whether the server has it. */
  int checked;         /* the check is done (or under way) */
  int asking;          /* HASH in flight */
  XXH3_state_t *check; /* the local file's hash, while it is read */
  uint8_t *check_buf;  /* one read of it */
  uint64_t check_off;  /* bytes hashed so far */
  uint64_t check_hash; /* the local file's XXH3-64 */
};

static void put_step(struct put_job *p);
static void put_send_request(struct put_job *p);

/* Reports the upload's first error. */
#define put_error(p, ...) fsc_job_error(&(p)->j, "put", __VA_ARGS__)

static struct put_run *put_run(const struct put_job *p) {
  return p->j.run->state;
}

/* The run's progress bar. */
static struct fsc_progress *put_progress(const struct put_job *p) {
  return &put_run(p)->prog;
}

static void put_cancel_request(struct put_job *p) {
  fsc_job_cancel_request(&p->j, &p->cancel_sent);
}

static void put_read_next(struct put_job *p);

static void on_put_written(uv_write_t *w, int status) {
  struct put_buf *b = (struct put_buf *)w;
  struct put_job *p = b->p;
  b->busy = 0;
  p->writes--;
  if (status == 0)
    put_progress(p)->done += b->len;
  put_step(p);
}

static void put_chunk_read(struct put_job *p, struct put_buf *b, ssize_t res);

static void on_put_read(uv_fs_t *req) {
  struct put_job *p = req->data;
  struct put_buf *b = p->reading;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  p->reading = NULL;
  put_chunk_read(p, b, res);
}

/* res bytes were read into b (or the read failed): they go out as one
 * DATA frame. */
static void put_chunk_read(struct put_job *p, struct put_buf *b, ssize_t res) {
  b->busy = 0;
  if (p->j.failed) {
    put_step(p);
    return;
  }
  if (res < 0) {
    put_error(p, "cannot read: %s", uv_strerror((int)res));
    put_cancel_request(p);
    put_step(p);
    return;
  }
  uint32_t want = fsc_put_next_len(&p->sm);
  int rc = fsc_put_on_read(&p->sm, b->frame + FSP_HDR_LEN, (size_t)res, want);
  if (rc < 0) {
    put_error(p, "%s", fsc_strerror(rc));
    put_cancel_request(p);
    put_step(p);
    return;
  }
  p->roff += (uint64_t)res;
  b->len = (uint32_t)res;
  b->busy = 1;
  p->writes++;
  rc = fsc_conn_send_data(&p->j.run->app->conn, &b->w, p->j.req.id, b->frame,
                          b->len, on_put_written);
  if (rc < 0) {
    b->busy = 0;
    p->writes--;
    put_error(p, "%s", fsc_strerror(rc));
    put_step(p);
    return;
  }
  put_step(p);
}

static void put_read_next(struct put_job *p) {
  if (p->small) {
    /* Read already, by the load: bufs[0] goes out as it is. */
    p->small = 0;
    put_chunk_read(p, &p->bufs[0], (ssize_t)p->sgot);
    return;
  }
  struct put_buf *b = NULL;
  for (int i = 0; i < PUT_NBUF; i++)
    if (!p->bufs[i].busy) {
      b = &p->bufs[i];
      break;
    }
  if (b == NULL)
    return;
  if (b->frame == NULL) {
    /* A small file needs no full-size chunk buffer. */
    uint64_t need = p->size < p->sm.chunk ? p->size : p->sm.chunk;
    b->frame = fsc_malloc(FSP_HDR_LEN + (size_t)need + 1);
    if (b->frame == NULL) {
      put_error(p, "%s", fsc_strerror(UV_ENOMEM));
      put_cancel_request(p);
      return;
    }
  }
  b->p = p;
  b->busy = 1;
  p->reading = b;
  p->fs.data = p;
  p->fs_busy = 1;
  uv_buf_t ub =
      uv_buf_init((char *)b->frame + FSP_HDR_LEN, fsc_put_next_len(&p->sm));
  int rc = uv_fs_read(p->j.run->app->loop, &p->fs, p->fd, &ub, 1,
                      (int64_t)p->roff, on_put_read);
  fsc_fs_started(&p->fs, rc, on_put_read);
}

static void on_put_closed(uv_fs_t *req) {
  struct put_job *p = req->data;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  p->fd = -1;
  put_step(p);
}

static void put_step(struct put_job *p) {
  if (p->j.finished || p->fs_busy || p->in_open)
    return;
  if (!p->j.failed && p->ready && !p->end_sent) {
    if (fsc_put_next_len(&p->sm) > 0) {
      put_read_next(p);
      return;
    }
    struct fsp_msg end;
    if (fsc_put_end(&p->sm, &end, p->j.req.id) == 0) {
      int rc = fsc_conn_send(&p->j.run->app->conn, &end);
      if (rc < 0)
        put_error(p, "%s", fsc_strerror(rc));
      p->end_sent = 1;
    }
  }
  if (!p->j.req_done || p->writes > 0)
    return;
  if (p->fd >= 0 && p->own_fd) {
    p->fs.data = p;
    p->fs_busy = 1;
    int fd = p->fd;
    p->fd = -1;
    if (uv_fs_close(p->j.run->app->loop, &p->fs, fd, on_put_closed) < 0)
      p->fs_busy = 0;
    else
      return;
  }
  fsc_run_job_finished(&p->j);
}

/* --- put -c: is the file on the server already? ----------------------- */

static void on_check_read(uv_fs_t *req);

/* Ends the check: the file is there (same), or the PUT goes out. */
static void put_check_done(struct put_job *p, int same) {
  struct fsc_run *r = p->j.run;
  struct put_run *pr = put_run(p);
  char line[FSC_ESC_MAX + 32], name[FSC_ESC_MAX];
  if (p->check != NULL)
    XXH3_freeState(p->check);
  p->check = NULL;
  fsc_free(p->check_buf);
  p->check_buf = NULL;
  if (p->j.failed) {
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (!same) {
    put_send_request(p);
    return;
  }
  pr->files_same++;
  if (pr->tree)
    pr->prog.done += p->size;
  else {
    snprintf(line, sizeof line, "%s: already there",
             fsc_esc(name, sizeof name, p->name));
    r->app->print(r->app, 0, line);
  }
  p->j.req_done = 1;
  put_step(p);
}

static void put_check_ask(struct put_job *p) {
  struct fsc_run *r = p->j.run;
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_HASH;
  m.u.range.offset = 0;
  m.u.range.length = p->size + 1;
  m.u.range.name.ptr = p->name;
  m.u.range.name.len = strlen(p->name);
  p->asking = 1;
  int rc = fsc_conn_request(&r->app->conn, &p->j.req, &m);
  if (rc < 0) {
    p->asking = 0;
    put_error(p, "%s", fsc_strerror(rc));
    put_check_done(p, 0);
  }
}

/* The answer to HASH: DIGEST, or an ERROR (NOT_FOUND: not there yet; any
 * other: the PUT will say what is wrong). */
static void put_check_answer(struct put_job *p, const struct fsp_msg *m) {
  struct fsc_run *r = p->j.run;
  if (m->op != FSP_OP_DIGEST && m->op != FSP_OP_ERROR)
    return;
  p->asking = 0;
  fsc_conn_finish(&r->app->conn, &p->j.req);
  put_check_done(p, m->op == FSP_OP_DIGEST && m->u.digest.offset == 0 &&
                        m->u.digest.length == p->size &&
                        m->u.digest.hash == p->check_hash);
}

static void check_read_next(struct put_job *p) {
  uint64_t left = p->size - p->check_off;
  uv_buf_t b = uv_buf_init((char *)p->check_buf,
                           (unsigned)(left < CHECK_CHUNK ? left : CHECK_CHUNK));
  p->fs.data = p;
  p->fs_busy = 1;
  int rc = uv_fs_read(p->j.run->app->loop, &p->fs, p->fd, &b, 1,
                      (int64_t)p->check_off, on_check_read);
  fsc_fs_started(&p->fs, rc, on_check_read);
}

static void on_check_read(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  if (p->j.failed) {
    put_check_done(p, 0);
    return;
  }
  if (res <= 0) {
    /* The upload reads the file again and says what is wrong. */
    put_check_done(p, 0);
    return;
  }
  fsc_hash_update(p->check, p->check_buf, (size_t)res);
  p->check_off += (uint64_t)res;
  if (p->check_off < p->size) {
    check_read_next(p);
    return;
  }
  p->check_hash = XXH3_64bits_digest(p->check);
  put_check_ask(p);
}

/* put -c: hashes the file (already in memory when small), then asks. */
static void put_check(struct put_job *p) {
  static const uint8_t empty[1];
  p->checked = 1;
  if (p->small || p->size == 0) {
    p->check_hash =
        XXH3_64bits(p->small ? p->bufs[0].frame + FSP_HDR_LEN : empty,
                    p->small ? p->sgot : 0);
    put_check_ask(p);
    return;
  }
  p->check = XXH3_createState();
  p->check_buf = fsc_malloc(CHECK_CHUNK);
  if (p->check == NULL || p->check_buf == NULL ||
      XXH3_64bits_reset(p->check) != XXH_OK) {
    put_error(p, "%s", fsc_strerror(UV_ENOMEM));
    p->j.req_done = 1;
    put_check_done(p, 0);
    return;
  }
  p->check_off = 0;
  check_read_next(p);
}

static void put_msg(struct fsc_req *req, const struct fsp_msg *m) {
  struct put_job *p = req->data;
  struct fsc_run *r = p->j.run;
  char msg[FSC_MSG_MAX];
  int rc;
  if (p->asking) {
    put_check_answer(p, m);
    return;
  }
  switch (m->op) {
  case FSP_OP_READY:
    if (p->j.failed)
      return;
    rc = fsc_put_on_ready(&p->sm);
    if (rc < 0) {
      put_error(p, "%s", fsc_strerror(rc));
      put_cancel_request(p);
      return;
    }
    p->ready = 1;
    put_step(p);
    return;
  case FSP_OP_INFO:
  case FSP_OP_OK: /* put -r: the MKDIR of an empty folder */
    if ((m->op == FSP_OP_OK) != p->folder)
      return;
    p->j.req_done = 1;
    fsc_conn_finish(&r->app->conn, req);
    if (!p->j.failed && !p->folder) {
      rc = fsc_put_on_info(&p->sm, m);
      if (rc < 0)
        put_error(p, "%s", fsc_strerror(rc));
      else {
        put_run(p)->files_ok++;
        put_run(p)->bytes_ok += p->size;
      }
    }
    put_step(p);
    return;
  case FSP_OP_ERROR:
    p->j.req_done = 1;
    fsc_conn_finish(&r->app->conn, req);
    if (!p->j.failed || m->u.error.status != FSP_ST_CANCELED) {
      fsc_server_msg(msg, sizeof msg, m);
      put_error(p, "%s", msg);
    }
    p->j.failed = 1;
    put_step(p);
    return;
  default:
    return;
  }
}

static void put_lost(struct fsc_req *req, int err) {
  struct put_job *p = req->data;
  p->j.req_done = 1;
  if (!p->j.failed && !p->j.run->canceled)
    put_error(p, "connection lost");
  p->j.failed = 1;
  put_step(p);
}

static void put_send_request(struct put_job *p) {
  struct fsc_run *r = p->j.run;
  struct put_run *pr = put_run(p);
  if (r->cmd.resume && !p->checked) {
    put_check(p);
    return;
  }
  if (fsc_put_init(&p->sm, p->size, r->app->conn.peer_max_payload,
                   pr->tree ? PUT_TREE_CHUNK : PUT_CHUNK) < 0) {
    put_error(p, "%s", fsc_strerror(UV_ENOMEM));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (pr->tree) {
    /* The walk counted the size it saw; the file may have changed. */
    pr->prog.total += p->size - pr->walk.items[p->j.index].size;
  } else {
    pr->prog.total += p->size;
    pr->prog.sizes_known++;
  }
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_PUT;
  m.u.put.size = p->size;
  m.u.put.mode = r->cmd.no_clobber ? FSP_PUT_NO_CLOBBER : FSP_PUT_REPLACE;
  /* Version 3: the mode byte holds flags, and the path's folders are made
   * as needed (--as a/b/c.txt, put -r). */
  if (fsc_conn_tree(&r->app->conn))
    m.u.put.mode |= FSP_PUT_PARENTS;
  m.u.put.name.ptr = p->name;
  m.u.put.name.len = strlen(p->name);
  int rc = fsc_conn_request(&r->app->conn, &p->j.req, &m);
  if (rc < 0) {
    put_error(p, "%s", fsc_strerror(rc));
    p->j.req_done = 1;
    put_step(p);
  }
}

/* stdin is a pipe or a terminal: its size is unknown, but PUT announces
 * it, so it is first copied to an unlinked temporary file (bounded memory:
 * one buffer, and reading pauses while it is written out). stdin is read
 * as a libuv stream rather than with uv_fs_read, because a read blocked in
 * the threadpool could not be interrupted by Ctrl-C. */
static void spool_start(struct put_job *p);

static void on_in_closed(uv_handle_t *h) {
  struct put_job *p = h->data;
  p->in_open = 0;
  if (p->in_eof && !p->j.failed) {
    p->size = p->spooled;
    put_send_request(p);
    return;
  }
  put_step(p);
}

static void spool_stop(struct put_job *p) {
  if (p->in_open && !uv_is_closing((uv_handle_t *)&p->in)) {
    uv_read_stop((uv_stream_t *)&p->in);
    uv_close((uv_handle_t *)&p->in, on_in_closed);
  }
}

static void on_spool_written(uv_fs_t *req);

static void spool_write(struct put_job *p) {
  uv_buf_t b = uv_buf_init((char *)p->spool_buf + p->spool_off,
                           (unsigned)(p->spool_len - p->spool_off));
  p->fs.data = p;
  p->fs_busy = 1;
  int rc = uv_fs_write(p->j.run->app->loop, &p->fs, p->fd, &b, 1,
                       (int64_t)p->spooled, on_spool_written);
  fsc_fs_started(&p->fs, rc, on_spool_written);
}

static void on_spool_written(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  if (p->j.failed) {
    spool_stop(p);
    put_step(p);
    return;
  }
  if (res < 0) {
    put_error(p, "cannot spool stdin: %s", uv_strerror((int)res));
    p->j.req_done = 1;
    spool_stop(p);
    return;
  }
  p->spooled += (uint64_t)res;
  p->spool_off += (size_t)res;
  if (p->spool_off < p->spool_len) {
    /* A short write: write the rest, which works or shows the error. */
    if (res == 0) {
      put_error(p, "cannot spool stdin: nothing was written");
      p->j.req_done = 1;
      spool_stop(p);
      return;
    }
    spool_write(p);
    return;
  }
  spool_start(p);
}

static void on_in_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct put_job *p = h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)p->spool_buf, SPOOL_CHUNK);
}

static void on_in_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct put_job *p = s->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    if (nread == UV_EOF)
      p->in_eof = 1;
    else {
      put_error(p, "cannot read stdin: %s", uv_strerror((int)nread));
      p->j.req_done = 1;
    }
    spool_stop(p);
    return;
  }
  /* One buffer: stop reading until it is on disk. */
  uv_read_stop(s);
  p->spool_len = (size_t)nread;
  p->spool_off = 0;
  spool_write(p);
}

static void spool_start(struct put_job *p) {
  int rc = uv_read_start((uv_stream_t *)&p->in, on_in_alloc, on_in_read);
  if (rc < 0) {
    put_error(p, "cannot read stdin: %s", uv_strerror(rc));
    p->j.req_done = 1;
    spool_stop(p);
  }
}

static void on_spool_file(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uv_fs_type type = req->fs_type;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", req->path ? req->path : "");
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  if (res < 0) {
    put_error(p, "cannot create a temporary file for stdin: %s",
              uv_strerror((int)res));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (type == UV_FS_MKSTEMP) {
    p->fd = (int)res;
    p->own_fd = 1;
    /* Nobody needs its name: the open descriptor is enough, and nothing
     * is left behind whatever happens next. */
    p->fs.data = p;
    p->fs_busy = 1;
    if (uv_fs_unlink(p->j.run->app->loop, &p->fs, path, on_spool_file) < 0)
      p->fs_busy = 0;
    else
      return;
  }
  p->spool_buf = fsc_malloc(SPOOL_CHUNK);
  uv_loop_t *loop = p->j.run->app->loop;
  int rc = p->spool_buf == NULL ? UV_ENOMEM
           : uv_guess_handle(p->src_fd) == UV_TTY
               ? uv_tty_init(loop, &p->in.tty, p->src_fd, 1)
               : uv_pipe_init(loop, &p->in.pipe, 0);
  if (rc == 0 && uv_guess_handle(p->src_fd) != UV_TTY)
    rc = uv_pipe_open(&p->in.pipe, p->src_fd);
  if (rc < 0) {
    put_error(p, "cannot read stdin: %s", uv_strerror(rc));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->in.pipe.data = p;
  p->in_open = 1;
  spool_start(p);
}

static void put_stat_done(struct put_job *p, int res, uint64_t mode,
                          uint64_t size);

static void on_put_stat(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uint64_t mode = req->statbuf.st_mode;
  uint64_t size = req->statbuf.st_size;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  put_stat_done(p, (int)res, mode, size);
}

/* The file is open and fstat said what it is (or failed, res < 0). */
static void put_stat_done(struct put_job *p, int res, uint64_t mode,
                          uint64_t size) {
  if (res < 0 || p->j.failed) {
    if (!p->j.failed)
      put_error(p, "%s", uv_strerror((int)res));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (S_ISDIR(mode)) {
    put_error(p, "is a folder (put -r sends folders)");
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (!S_ISREG(mode) && (p->is_stdin || S_ISFIFO(mode) || S_ISSOCK(mode) ||
                         uv_guess_handle(p->fd) == UV_TTY)) {
    /* A pipe (stdin, or a FIFO such as bash's <(command)) or a terminal:
     * spool it. The stream handle owns the descriptor from now on. */
    p->src_fd = p->fd;
    p->fd = -1;
    p->own_fd = 0;
    const char *tmp = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/fsc-spool-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    p->fs.data = p;
    p->fs_busy = 1;
    int rc = uv_fs_mkstemp(p->j.run->app->loop, &p->fs, tmpl, on_spool_file);
    if (rc < 0)
      p->fs.fs_type = UV_FS_MKSTEMP;
    fsc_fs_started(&p->fs, rc, on_spool_file);
    return;
  }
  if (!S_ISREG(mode)) {
    put_error(p, "not a regular file");
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->size = size;
  put_send_request(p);
}

static void on_put_opened(uv_fs_t *req) {
  struct put_job *p = req->data;
  ssize_t res = req->result;
  uv_fs_req_cleanup(req);
  p->fs_busy = 0;
  if (res < 0) {
    put_error(p, "%s", uv_strerror((int)res));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->fd = (int)res;
  p->own_fd = 1;
  if (p->j.failed) {
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->fs.data = p;
  p->fs_busy = 1;
  int rc = uv_fs_fstat(p->j.run->app->loop, &p->fs, p->fd, on_put_stat);
  fsc_fs_started(&p->fs, rc, on_put_stat);
}

#define load_job(it)                                                           \
  ((struct put_job *)((char *)(it)-offsetof(struct put_job, load)))

/* Runs on a worker thread: the whole disk work of a small file. */
static void load_work(struct fsb_item *it) {
  struct put_job *p = load_job(it);
  /* put -r never follows a link, even one made since the walk. */
  p->loaded = fsc_load_small(p->j.arg, 1, p->bufs[0].frame + FSP_HDR_LEN,
                             p->scap, &p->lsize, &p->lmode, &p->sgot, &p->lfd);
}

static void on_loaded(struct fsb_item *it, int status) {
  struct put_job *p = load_job(it);
  p->fs_busy = 0;
  if (status < 0) {
    p->loaded.err = status;
    p->loaded.step = FSC_STEP_OPEN;
    p->lfd = -1;
  }
  if (p->lfd >= 0) {
    p->fd = p->lfd;
    p->own_fd = 1;
  }
  if (p->loaded.err != 0) {
    put_error(p, "%s%s", p->loaded.step == FSC_STEP_READ ? "cannot read: " : "",
              uv_strerror(p->loaded.err));
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  if (p->fd >= 0) {
    /* Not a small regular file after all (it grew, or is no file): on
     * the usual way, from its open descriptor, with buffers of the usual
     * size. */
    fsc_free(p->bufs[0].frame);
    p->bufs[0].frame = NULL;
    put_stat_done(p, 0, p->lmode, p->lsize);
    return;
  }
  if (p->j.failed) {
    p->j.req_done = 1;
    put_step(p);
    return;
  }
  p->small = 1;
  p->size = p->lsize;
  put_send_request(p);
}

/* put -r: a file the walk saw small enough is loaded in one job. Returns 1
 * when the load started, 0 when the file takes the usual way. */
static int put_load(struct put_job *p) {
  struct put_run *pr = put_run(p);
  uint64_t seen = pr->walk.items[p->j.index].size;
  uint32_t max = p->j.run->app->conn.peer_max_payload;
  if (seen > FSC_SMALL_MAX || seen > max)
    return 0;
  p->bufs[0].frame = fsc_malloc(FSP_HDR_LEN + (size_t)seen + 1);
  if (p->bufs[0].frame == NULL)
    return 0;
  p->bufs[0].p = p;
  p->scap = (size_t)seen;
  p->lfd = -1;
  p->load.work = load_work;
  p->load.done = on_loaded;
  p->fs_busy = 1;
  pr->disk.loop = p->j.run->app->loop;
  int rc = fsb_add(&pr->disk, &p->load);
  if (rc != 0)
    on_loaded(&p->load, rc);
  return 1;
}

static void put_cancel(struct fsc_job *j) {
  struct put_job *p = (struct put_job *)j;
  if (j->failed)
    return;
  j->failed = 1;
  spool_stop(p);
  put_cancel_request(p);
  j->req_done = 1;
  fsc_conn_finish(&j->run->app->conn, &j->req);
  put_step(p);
}

static void put_destroy(struct fsc_job *j) {
  struct put_job *p = (struct put_job *)j;
  for (int i = 0; i < PUT_NBUF; i++)
    fsc_free(p->bufs[i].frame);
  fsc_free(p->spool_buf);
  fsc_free(p->check_buf);
  if (p->check != NULL)
    XXH3_freeState(p->check);
  fsc_put_free(&p->sm);
  fsc_free(p);
}

static const struct fsc_req_ops put_req_ops = {put_msg, NULL, put_lost};
static const struct fsc_job_ops put_job_ops = {put_cancel, NULL, put_destroy};

static struct fsc_job *put_job_new(void) {
  struct put_job *p = fsc_calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->fd = -1;
  p->j.ops = &put_job_ops;
  p->j.req.ops = &put_req_ops;
  p->j.req.data = p;
  return &p->j;
}

/* put -r: job i is item i of the walk, a file or an empty folder. */
static const char *put_tree_arg(struct fsc_run *r, int i) {
  struct put_run *pr = r->state;
  return pr->walk.items[i].local;
}

/* put -r: an empty folder is one MKDIR with PARENTS. */
static void put_mkdir(struct put_job *p) {
  struct fsc_run *r = p->j.run;
  struct fsp_msg m;
  fsc_rpath_msg(&m, FSP_OP_MKDIR, r->app->conn.version, FSP_MKDIR_PARENTS,
                p->name);
  int rc = fsc_conn_request(&r->app->conn, &p->j.req, &m);
  if (rc < 0) {
    put_error(p, "%s", fsc_strerror(rc));
    p->j.req_done = 1;
    put_step(p);
  }
}

/* The job's path on the server: the walk's, or FILE's base name (or --as)
 * resolved against the shell's current folder. Returns 0, or -1 after
 * saying why. */
static int put_target(struct put_job *p) {
  struct fsc_run *r = p->j.run;
  struct put_run *pr = put_run(p);
  char ename[FSC_ESC_MAX], want[FSP_PATH_MAX + 1];
  size_t len;
  if (pr->tree) {
    const struct fsc_walk_item *it = &pr->walk.items[p->j.index];
    p->folder = it->folder;
    len = strlen(it->remote);
    if (len <= FSP_PATH_MAX && fsp_path_check(it->remote, len) == 0) {
      memcpy(p->name, it->remote, len + 1);
      return 0;
    }
    fsc_fmt_escape(ename, sizeof ename, it->remote, len);
  } else {
    const char *name = fsc_put_name(p->j.arg, r->cmd.as, &len);
    if (len < sizeof want) {
      memcpy(want, name, len);
      want[len] = '\0';
      if (fsc_app_rpath(r->app, want, p->name, sizeof p->name, 0) == 0)
        return 0;
    }
    fsc_fmt_escape(ename, sizeof ename, name, len);
  }
  put_error(p, "'%s': %s", ename, fsp_strerror(FSP_EBADNAME));
  p->j.req_done = 1;
  put_step(p);
  return -1;
}

static void put_job_start(struct fsc_job *j) {
  struct put_job *p = (struct put_job *)j;
  struct fsc_run *r = p->j.run;
  if (put_target(p) < 0)
    return;
  if (p->folder) {
    put_mkdir(p);
    return;
  }
  p->fs.data = p;
  p->fs_busy = 1;
  int rc;
  if (strcmp(p->j.arg, "-") == 0) {
    p->is_stdin = 1;
    p->fd = STDIN_FILENO;
    p->own_fd = 0;
    rc = uv_fs_fstat(r->app->loop, &p->fs, p->fd, on_put_stat);
    fsc_fs_started(&p->fs, rc, on_put_stat);
    return;
  }
  if (put_run(p)->tree && put_load(p))
    return;
  /* put -r never follows a link, even one made since the walk. */
  rc = uv_fs_open(r->app->loop, &p->fs, p->j.arg,
                  O_RDONLY | O_CLOEXEC | (put_run(p)->tree ? O_NOFOLLOW : 0), 0,
                  on_put_opened);
  fsc_fs_started(&p->fs, rc, on_put_opened);
}

/* put -r: a warning for an entry the walk left out. */
static void put_walk_warn(void *arg, const char *local, const char *why,
                          int failure) {
  struct fsc_run *r = arg;
  char e[FSC_ESC_MAX];
  fsc_app_errorf(r->app, "put %s: %s%s", fsc_esc(e, sizeof e, local), why,
                 failure ? "" : " (warning)");
}

/* put -r: walks each DIR into the list of jobs. Returns 0 or an exit
 * status after saying why. */
static int put_tree_begin(struct fsc_run *r, struct put_run *pr) {
  struct fsc_app *a = r->app;
  char remote[FSP_PATH_MAX + 1], e[FSC_ESC_MAX];
  int rc = fsc_app_need_tree(a, "put -r");
  if (rc != 0)
    return rc;
  pr->tree = 1;
  pr->walk.warn = put_walk_warn;
  pr->walk.arg = r;
  for (int i = 0; i < r->cmd.nargs; i++) {
    const char *dir = r->cmd.args[i];
    size_t len;
    const char *base = fsc_put_name(dir, r->cmd.as, &len);
    char want[FSP_PATH_MAX + 1];
    snprintf(want, sizeof want, "%.*s", (int)len, base);
    /* "put -r ." uploads the current folder under its own name. */
    char real[PATH_MAX];
    if (r->cmd.as == NULL &&
        (strcmp(want, ".") == 0 || strcmp(want, "..") == 0) &&
        realpath(dir, real) != NULL)
      snprintf(want, sizeof want, "%s", fsc_rpath_base(real));
    if (fsc_app_rpath(a, want, remote, sizeof remote, r->cmd.as != NULL) < 0) {
      fsc_app_errorf(a, "put %s: '%s' %s", fsc_esc(e, sizeof e, dir), want,
                     fsp_strerror(FSP_EBADNAME));
      fsc_run_fail(r, FSC_EXIT_FAIL);
      continue;
    }
    rc = fsc_walk_tree(&pr->walk, dir, remote);
    if (rc == UV_ENOMEM)
      return rc;
    if (rc < 0) {
      fsc_app_errorf(a, "put %s: %s", fsc_esc(e, sizeof e, dir),
                     uv_strerror(rc));
      fsc_run_fail(r, FSC_EXIT_FAIL);
    }
  }
  if (pr->walk.failures > 0)
    fsc_run_fail(r, FSC_EXIT_FAIL);
  r->job_arg = put_tree_arg;
  r->drop_finished = 1;
  int server = (int)a->conn.peer_max_inflight - 2;
  r->parallel = PUT_TREE_PARALLEL < server ? PUT_TREE_PARALLEL : server;
  if (r->parallel < 1)
    r->parallel = 1;
  r->njobs = 0;
  if (fsc_run_add_jobs(r, (int)pr->walk.n) < 0)
    return UV_ENOMEM;
  /* One file: the bar shows its path, as for a plain put. */
  const char *one = "";
  for (size_t i = 0; i < pr->walk.n && pr->walk.files == 1; i++)
    if (!pr->walk.items[i].folder)
      one = pr->walk.items[i].remote;
  fsc_progress_start(&pr->prog, a, (int)pr->walk.files, one, strlen(one));
  pr->prog.total = pr->walk.bytes;
  pr->prog.sizes_known = (int)pr->walk.files;
  return 0;
}

static void put_free(struct fsc_run *r);

static int put_begin(struct fsc_run *r) {
  const struct fsc_cmd *cmd = &r->cmd;
  struct put_run *pr = fsc_calloc(1, sizeof *pr);
  if (pr == NULL)
    return UV_ENOMEM;
  r->state = pr;
  if (cmd->recursive) {
    int rc = put_tree_begin(r, pr);
    if (rc != 0)
      put_free(r);
    return rc;
  }
  /* The bar shows the file's name on the server, not the path it came
   * from. */
  size_t len = 0;
  const char *name =
      cmd->nargs > 0 ? fsc_put_name(cmd->args[0], cmd->as, &len) : "";
  fsc_progress_start(&pr->prog, r->app, cmd->nargs, name, len);
  return 0;
}

static void put_end(struct fsc_run *r) {
  struct put_run *pr = r->state;
  fsc_progress_stop(&pr->prog, !r->canceled && r->status == 0);
  if (pr->tree)
    fsc_run_print_count(r, pr->files_ok, pr->bytes_ok, pr->files_same);
}

static void put_free(struct fsc_run *r) {
  struct put_run *pr = r->state;
  fsc_walk_free(&pr->walk);
  fsc_free(pr);
  r->state = NULL;
}

const struct fsc_run_ops fsc_put_ops = {
    .parallel = PUT_PARALLEL,
    .per_arg = 1,
    .begin = put_begin,
    .job_new = put_job_new,
    .job_start = put_job_start,
    .end = put_end,
    .free = put_free,
};
