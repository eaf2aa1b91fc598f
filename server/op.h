/* The host state of one request that works on files (GET, HASH, DELETE,
 * PUT): what every kind shares, a union of what each kind keeps, and the
 * server-wide state they work with (struct fsd_host). HASH and DELETE are
 * small enough to live here; GET is in get.c, PUT in put.c. Every file
 * system call runs on the threadpool (uv_queue_work / uv_fs_*). */
#ifndef FSD_OP_H
#define FSD_OP_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <uv.h>
#include <xxhash.h>

#include "batch.h"
#include "commitq.h"
#include "conn.h"
#include "ctx.h"
#include "fsops.h"
#include "hcache.h"
#include "space.h"
#include "watch.h"

/* A job of the threadpool's shape (uv_work_cb, uv_after_work_cb) as an
 * item of the host's batch (fsd_host_queue_small). */
struct fsd_small_job {
  struct fsb_item it;
  uv_work_t *w;
  uv_work_cb work;
  uv_after_work_cb after;
};

/* Pieces of upload data one disk write gathers (one pwritev). */
#define FSD_PUT_IOV 64u

/* What the host operations share across connections. */
struct fsd_host {
  uv_loop_t *loop;
  struct fsd_ctx *ctx;        /* the register and subscribers */
  struct fsd_watch *watch;    /* told of our own changes to the folder */
  int rootfd;                 /* the folder served */
  uint8_t zero_copy;          /* GET payloads may go with sendfile() */
  uint8_t writeback;          /* uploads start their writeback early */
  uint8_t no_fsync;           /* commits do not wait for the disk */
  uint64_t tree_moves;        /* folders renamed or removed by us, ever */
  uint64_t puts_seen;         /* uploads started or ended, ever */
  struct fsd_hcache hcache;   /* whole-file hashes of files served lately */
  struct fsd_commitq commitq; /* commits and unlinks, in order per name */
  struct fsd_space space;     /* disk space promised to uploads */
  struct fsd_alog *alog;      /* --access-log, or NULL */
  struct fsb_batcher batch;   /* small jobs, several to a trip (batch.h) */
};

struct fsd_op;

/* GET: streams a range of an open file. */
struct fsd_get {
  struct fsd_waiter waiter;  /* in c->waiters while streaming */
  struct fsd_budget_wait bw; /* place in c->budget's queue */
  size_t held;               /* bytes of c->budget taken */
  size_t zlen;               /* sendfile: payload of the frame being sent */
  uint64_t pos, end;         /* next byte to read, end of the range */
  uint64_t length;           /* bytes in the range */
  uint64_t file_size;        /* when opened */
  size_t chunk_len;          /* bytes the read job in flight reads */
  XXH3_state_t *hs;          /* hash of the bytes read so far */
  uint64_t hash;             /* the whole file's hash, when hash_known */
  struct fsd_buf *ready;     /* copy path: a chunk read, waiting to go */
  struct fsd_buf *chunk;     /* copy path: the chunk being read */
  size_t zready;             /* sendfile: bytes prepared but not sent */
  struct fsd_zframe zf;      /* sendfile: the frame being sent */
  uint8_t writing;           /* a chunk or frame is on the way out */
  uint8_t reading;           /* a read job is in flight */
  uint8_t changed;           /* the file was changed in place meanwhile */
  uint8_t zc;                /* payloads go out with sendfile() */
  uint8_t hash_known;        /* the whole file's hash came from the cache */
  uint8_t whole;             /* small: the open job read the file whole
                                into chunk (chunk_len bytes set up) */
};

/* HASH: the digest of a range. */
struct fsd_hash {
  uint64_t length; /* bytes hashed */
  uint64_t hash;   /* their XXH3-64 */
};

/* A piece of upload data in a read buffer, queued for the temp file. */
struct fsd_pseg {
  struct fsd_list link; /* in the writer's queue, in file order */
  struct fsd_buf *b;    /* holds the bytes: one reference */
  const uint8_t *p;     /* the bytes */
  size_t len;
  uint64_t off; /* where they go in the file */
};

/* PUT: the disk writer's job and the pieces it gathers, made at the first
 * piece (an upload that fails before gets none; GETs never pay for it). */
struct fsd_put_job {
  uv_work_t work;                /* the write job */
  struct fsd_small_job small;    /* a small upload's: in h->batch */
  struct iovec iov[FSD_PUT_IOV]; /* the pieces it writes */
};

/* PUT: the disk writer of one upload. One job at a time writes every piece
 * queued so far in one pwritev: concurrent writes to one file only queue
 * on the inode's lock in the kernel, and larger writes cost fewer jobs and
 * wake-ups. The socket keeps being read while a job runs. */
struct fsd_put {
  struct fsd_put_job *job;      /* the write job, NULL before the first piece */
  struct fsd_list queue;        /* pieces to write (struct fsd_pseg) */
  unsigned nbusy;               /* pieces at the head the running job writes */
  size_t busy_len;              /* their bytes */
  ssize_t res;                  /* the job's result */
  uint64_t written;             /* file bytes written so far */
  unsigned writes;              /* pieces queued or being written */
  uv_work_t flush;              /* the writeback job */
  uint8_t flushing;             /* it runs */
  uint64_t flushed;             /* writeback started up to here */
  uint64_t fl_end;              /* the running writeback's end */
  uint8_t commit;               /* END checked: commit once writes are done */
  uint8_t cleaning;             /* cleanup job started */
  uint8_t open;                 /* counted in c->puts */
  uint8_t replacing;            /* the name held a file at the open */
  uint16_t making;              /* bytes of the path told to the watcher
                                   (fsd_watch_making) while the open job
                                   runs, 0 when none */
  uint64_t moves;               /* h->tree_moves when the upload began */
  char temp[FSD_TEMP_NAME_LEN]; /* the temp file, "" when none */
  uint64_t last_data;           /* uv_now() of the last DATA, or READY */
  uint64_t reserved;            /* bytes of h->space promised, not on disk */
  uint64_t on_disk;             /* bytes counted as on disk (written or
                                   set aside by fallocate) */
  uint64_t falloc_end;          /* set aside up to here (writer's job) */
  struct fsd_put_room room;     /* what the open job may take */
  int dirfd;                    /* the target's folder (temp file and
                                   commit are made in it), -1 when none */
  const char *leaf;             /* the target's name in it (in r->name) */
  struct fsd_made *made;        /* PARENTS: the folders the open job
                                   created, for their events, or NULL */
};

/* An entry a folder DELETE removed or left (treeop.c). */
struct fsd_treeop_rec {
  uint16_t status; /* 0 removed, else the SKIPPED status */
  uint8_t type;    /* FSP_TYPE_* */
  uint16_t len;    /* bytes in path */
  char *path;      /* full path, NUL-terminated */
};

/* Folders a job created (MKDIR, PUT with PARENTS), parents first, as
 * they were just after: their events name them the way another server's
 * watcher does (treeop.c). */
struct fsd_made {
  size_t n;
  struct {
    uint16_t len;     /* bytes of the path that name it */
    uint64_t ino;     /* its inode */
    int64_t mtime_ns; /* its mtime */
  } v[];
};

/* MKDIR, RENAME and DELETE of a folder (treeop.c). */
struct fsd_treeop {
  uint64_t puts_at;         /* h->puts_seen when the job began */
  struct fsd_made *made;    /* MKDIR: the folders it created, or NULL */
  struct fsd_stamp st;      /* RENAME: the entry's version after */
  uint8_t type;             /* RENAME: the entry's type */
  struct fsd_treeop_rec *v; /* DELETE: what was removed or left, in order */
  size_t n, cap;            /* entries in v, room */
  size_t nskipped;          /* DELETE: entries left, reported or not */
};

struct fsd_op {
  struct fsd_host *h;
  struct fsd_conn *c;
  struct fsd_req *r;           /* the session's request; gone once ended */
  uint8_t kind;                /* r's opcode, which says the union's member */
  uv_work_t work;              /* the job on the threadpool */
  struct fsd_small_job sjob;   /* or its place in h->batch */
  uv_fs_t fs;                  /* for uv_fs_close */
  int jobs;                    /* jobs in flight (or waiting to commit) */
  int fd;                      /* open file, -1 when none */
  int err;                     /* UV_E* result of the last job */
  const char *why;             /* the ERROR text when status is set */
  uint16_t status;             /* wire status once failed, 0 while fine */
  uint8_t aborted;             /* the session asked to stop */
  uint8_t locked;              /* holds its name's lock across servers */
  uint8_t small;               /* PUT: its jobs go in h->batch (put.c) */
  struct stat st;              /* result of open or commit */
  uint64_t space_mark;         /* fsd_space_mark() when a job began */
  uint64_t vfs_avail;          /* free bytes the job saw, or UINT64_MAX */
  struct fsd_commitq_entry cq; /* PUT and DELETE: in h->commitq */
  uv_work_cb commit_work;      /* and the job that commits */
  uv_after_work_cb commit_after;
  struct fsd_log_wait logged; /* waits for its events to be in the log */
  void (*after_log)(struct fsd_op *op);
  union {
    struct fsd_get get;
    struct fsd_hash hash;
    struct fsd_put put;
    struct fsd_treeop tree;
  } u;
};

/* A new op for r on c, held by c, or NULL when out of memory. */
struct fsd_op *fsd_op_new(struct fsd_host *h, struct fsd_conn *c,
                          struct fsd_req *r);

/* Frees op (its GET buffers and hash state too) and drops its hold on c. */
void fsd_op_free(struct fsd_op *op);

/* Closes op's file on the threadpool, then frees op. */
void fsd_op_release(struct fsd_op *op);

/* Queues work then after on the threadpool, counting a job. Returns 0 or
 * a negative UV_E* code. */
int fsd_op_queue(struct fsd_op *op, uv_work_cb work, uv_after_work_cb after);

/* The same for a job that never waits long (no fsync, no lock across
 * servers), which shares a threadpool trip with others (batch.h). */
int fsd_op_queue_small(struct fsd_op *op, uv_work_cb work,
                       uv_after_work_cb after);

/* Queues w's work then after as a small job in h's batch: job is the
 * place the batch keeps it in. Returns 0 or a negative UV_E* code. */
int fsd_host_queue_small(struct fsd_host *h, struct fsd_small_job *job,
                         uv_work_t *w, uv_work_cb work, uv_after_work_cb after);

/* Runs op's commit (work, then after) now, or after the commit or unlink
 * of the same name in progress. */
void fsd_op_commit(struct fsd_op *op, uv_work_cb work, uv_after_work_cb after);

/* op's commit is done and the register is about to learn of it: lets the
 * next commit of the same name go. */
void fsd_op_commit_done(struct fsd_op *op);

/* Threadpool, in a commit or unlink job: in a cluster, waits until this
 * server alone may change op's name (ctx.h, struct fsd_ctx_log). Returns 0
 * (also outside a cluster) or UV_EAGAIN or UV_ETIMEDOUT. */
int fsd_op_lock(struct fsd_op *op);

/* The ERROR text for a commit or unlink that fsd_op_lock refused, or NULL
 * for the status's own text. */
const char *fsd_op_why(int err);

/* Loop: lets go of the lock fsd_op_lock took on name (a copy of op's
 * name: the request may have ended), once the change's event was
 * appended. Does nothing when op holds no lock. */
void fsd_op_unlock(struct fsd_op *op, const char *name);

/* Calls fn(op) once the events op's change appended are in a cluster's
 * shared log (at once without one): a change is answered only then. The
 * wait counts as a job of op, so an abort waits for it too. */
void fsd_op_after_log(struct fsd_op *op, void (*fn)(struct fsd_op *op));

/* HASH: starts hashing the range. Returns 0 or a negative UV_E* code. */
int fsd_hash_start(struct fsd_op *op);

/* DELETE: unlinks the file once no commit of its name runs. Returns 0. */
int fsd_delete_start(struct fsd_op *op);

#endif /* FSD_OP_H */
