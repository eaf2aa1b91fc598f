/* PUT: the temp file, the disk writer that gathers the upload's pieces
 * into one pwritev per job, the early writeback, and the commit (fsync,
 * rename into place) through the commit queue. */
#ifndef FSD_PUT_H
#define FSD_PUT_H

#include "op.h"

/* Starts an upload: promises its announced size of disk space (see
 * space.h; when that would take the free space below --min-free it ends
 * the request with ERROR NO_SPACE at once and frees op), creates the temp
 * file on the threadpool, then READY. Returns 0 or a negative UV_E* code. */
int fsd_put_start(struct fsd_op *op);

/* Queues p[0..n) (in c->rb) for offset off of the temp file; the read
 * buffer is held until written. Returns 0, UV_ECANCELED when the upload
 * already failed, or UV_ENOMEM. */
int fsd_put_write(struct fsd_op *op, const uint8_t *p, size_t n, uint64_t off);

/* All bytes arrived and were checked: commit once the writes are done. */
void fsd_put_commit(struct fsd_op *op);

/* The session asked to stop op: the temp file goes once writes are done. */
void fsd_put_abort(struct fsd_op *op);

/* The periodic check: an upload that received no DATA for the idle
 * timeout, while its connection was being read, ends with ERROR TIMEOUT
 * (its temp file and disk promise go; the connection stays). */
void fsd_put_sweep(struct fsd_net *net);

#endif /* FSD_PUT_H */
