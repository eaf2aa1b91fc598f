/* Byte buffers and the pool that keeps spare ones.
 *
 * One buffer type serves every byte fsd moves through memory: a
 * connection's read buffer (which PUT's disk writes pin by reference), its
 * gathered output and a GET's chunk (each written with the uv_write_t it
 * embeds, as libuv's test/echo-server.c does). A pool keeps buffers that
 * were given back for the next request of a fitting size, within a count
 * and a byte limit, so that memory stays bounded: fresh memory for every
 * buffer costs page faults, zero-filling and brk()/munmap() on each use.
 * Pure: no I/O, no loop. */
#ifndef FSD_BUFPOOL_H
#define FSD_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "list.h"

struct fsd_buf {
  uv_write_t req;       /* when written to a socket; req.data is free */
  struct fsd_list link; /* in a pool's spares, or a list of the owner */
  void *owner;          /* the connection the buffer belongs to */
  void *user;           /* the transfer it belongs to, if any */
  /* Called by the connection once the buffer was written (status 0) or
   * could not be (negative UV_E*); the callee frees the buffer. */
  void (*done)(struct fsd_buf *b, int status);
  size_t refs; /* holders: the owner, plus every disk write into it */
  size_t pins; /* a read buffer's upload pieces waiting for the disk */
  size_t cap;  /* bytes in data */
  size_t len;  /* bytes filled */
  uint8_t data[];
};

struct fsd_bufpool {
  struct fsd_list spares; /* buffers kept, linked through ->link */
  size_t keep_min;        /* buffers with less room are never kept */
  size_t keep_max;        /* nor with more */
  size_t round;           /* new buffers above keep_min round up to this */
  unsigned n;             /* spares held */
  unsigned max_n;         /* spares held at most */
  size_t bytes;           /* their room in all */
  size_t max_bytes;       /* room held at most */
  int taken;              /* a spare was taken since fsd_bufpool_trim() */
};

/* Initialises an empty pool that keeps buffers of keep_min..keep_max
 * bytes, at most max_n of them and max_bytes in all. With round non-zero,
 * new buffers of more than keep_min bytes are rounded up to a multiple of
 * round, so that the buffers of one stream come in one size and fit each
 * other's requests. */
void fsd_bufpool_init(struct fsd_bufpool *p, size_t keep_min, size_t keep_max,
                      size_t round, unsigned max_n, size_t max_bytes);

/* Frees every spare. The pool may be used again. */
void fsd_bufpool_free(struct fsd_bufpool *p);

/* Returns an empty buffer with room for at least need bytes, held once:
 * the smallest spare that fits when need is within the kept sizes, else a
 * new one. Returns NULL when out of memory. */
struct fsd_buf *fsd_bufpool_get(struct fsd_bufpool *p, size_t need);

/* Gives back a buffer nobody holds: kept as a spare while it has a kept
 * size and there is room, freed otherwise. NULL is ignored. */
void fsd_bufpool_put(struct fsd_bufpool *p, struct fsd_buf *b);

/* Drops one reference to b, giving it back to p with the last. */
void fsd_buf_unref(struct fsd_bufpool *p, struct fsd_buf *b);

/* Frees every spare unless one was taken since the last call: a pool that
 * served nobody for one period gives its memory back. */
void fsd_bufpool_trim(struct fsd_bufpool *p);

/* A new buffer of cap bytes outside any pool, held once, or NULL. Free it
 * with fsd_buf_free(). */
struct fsd_buf *fsd_buf_new(size_t cap);

/* Frees a buffer from fsd_buf_new() (or any buffer, bypassing its pool). */
void fsd_buf_free(struct fsd_buf *b);

#endif /* FSD_BUFPOOL_H */
