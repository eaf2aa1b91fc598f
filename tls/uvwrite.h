/* Writing a TLS engine's records to a libuv stream: the one place where
 * fsd's and fsc's TLS transports hand ciphertext to the socket. */
#ifndef FSTLS_UVWRITE_H
#define FSTLS_UVWRITE_H

#include <uv.h>

#include "fstls.h"

/* The allocator of the caller's program, so that its allocation hook (and
 * the tests that fail every allocation in turn) covers this code too. */
struct fstls_alloc {
  void *(*alloc)(size_t n);
  void (*free)(void *p);
};

/* Writes all the ciphertext e holds to s, then completes orig with cb (both
 * may be NULL: nothing to complete). With no ciphertext and no cb there is
 * nothing to do. Returns 0 or a negative UV_E* code; cb is then not called
 * and the records are dropped. */
int fstls_write_out(struct fstls_engine *e, uv_stream_t *s, uv_write_t *orig,
                    uv_write_cb cb, const struct fstls_alloc *a);

#endif /* FSTLS_UVWRITE_H */
