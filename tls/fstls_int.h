/* Internal helpers of the fstls library; not for fsd or fsc. */
#ifndef FSTLS_INT_H
#define FSTLS_INT_H

#include <stddef.h>

#include "fstls.h"

/* Formats one line into why[0..whylen) when why is not NULL. */
#define fstls__why(why, whylen, ...)                                           \
  ((void)fstls_fail((why), (whylen), 0, __VA_ARGS__))

/* The reason text of OpenSSL's oldest queued error (empties the queue), or
 * fallback when there is none. Static storage. */
const char *fstls__ssl_reason(const char *fallback);

/* Reads the private key from an open, already checked key file. Returns the
 * key or NULL. Never prompts for a pass phrase. */
EVP_PKEY *fstls__read_key_fd(int fd);

/* Creates every missing directory of path with mode 0700 (mkdir -p).
 * Returns 0, or FSTLS_EINVAL/FSTLS_EIO with a line in why. */
int fstls__mkdirs(const char *path, char *why, size_t whylen);

#endif
