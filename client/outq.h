/* fsc output gathering: the frames the connection sends during one turn
 * of the loop, kept in order and handed to the socket as one write. Small
 * frames are encoded into the batch's own buffer; DATA frames stay in their
 * owner's buffer (no copy) and their owner's callback runs once the batch
 * is written. Pure bookkeeping: conn.c decides when a batch is written. */
#ifndef FSC_OUTQ_H
#define FSC_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* One run of bytes of the batch: the next len bytes of the batch's own
 * buffer (ext NULL), or len bytes at ext, which belong to a caller. */
struct fsc_outq_seg {
  const uint8_t *ext;
  size_t len;
};

/* A caller's write and the callback it expects. */
struct fsc_outq_cb {
  uv_write_t *req;
  uv_write_cb cb;
};

struct fsc_outq {
  uv_write_t req; /* the batch's one write */
  void *data;     /* for the owner (the connection) */
  int bye;        /* close the connection once the batch is written */
  size_t bytes;   /* bytes queued in all */
  uint8_t *own;   /* small frames, encoded in order */
  size_t own_len, own_cap;
  struct fsc_outq_seg *segs; /* the batch's bytes, in order */
  size_t nsegs, segcap;
  struct fsc_outq_cb *cbs; /* callers' writes, in order */
  size_t ncbs, cbcap;
  uv_buf_t *bufs; /* built by fsc_outq_bufs, freed with the batch */
};

/* A new empty batch, or NULL when out of memory. */
struct fsc_outq *fsc_outq_new(void);

/* Room for a small frame of n bytes at the end of the batch, to be filled
 * by the caller before the batch is written, or NULL when out of memory
 * (nothing is added). The pointer is valid until the next call on q. */
uint8_t *fsc_outq_reserve(struct fsc_outq *q, size_t n);

/* Appends n bytes at p, which stay the caller's and valid until cb(req,
 * status) runs (from fsc_outq_done). Returns 0 or UV_ENOMEM (nothing is
 * added, cb will not run). */
int fsc_outq_add(struct fsc_outq *q, const uint8_t *p, size_t n,
                 uv_write_t *req, uv_write_cb cb);

/* The batch as buffers for one write, in order (adjacent own bytes in one
 * buffer). *bufs stays valid until the batch is freed. Returns 0 or
 * UV_ENOMEM. */
int fsc_outq_bufs(struct fsc_outq *q, uv_buf_t **bufs, unsigned *n);

/* The batch's write ended with status (0 or a UV_E* code): runs every
 * caller's callback in order with that status. The batch is not freed. */
void fsc_outq_done(struct fsc_outq *q, int status);

/* Frees the batch (its callers' callbacks are not run). Safe on NULL. */
void fsc_outq_free(struct fsc_outq *q);

#endif /* FSC_OUTQ_H */
