/* GET: streams a range of a file as DATA frames, by the copy path (pread
 * into a chunk, hash, uv_write) or, on transports that allow it, with
 * sendfile() from the page cache (a threadpool job pages the chunk in and
 * hashes it unless the hash cache knows the file). */
#ifndef FSD_GET_H
#define FSD_GET_H

#include "op.h"

/* Starts a GET: opens the file on the threadpool, then streams. Returns 0
 * or a negative UV_E* code. */
int fsd_get_start(struct fsd_op *op);

/* The session asked to stop op. */
void fsd_get_abort(struct fsd_op *op);

#endif /* FSD_GET_H */
