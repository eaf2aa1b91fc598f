/* The session's host operations (struct fsd_host_ops) for a libuv
 * connection: frames and closing go to conn.c, file work to the op of its
 * kind (get.c, put.c, op.c), through one table per kind. */
#ifndef FSD_HOST_H
#define FSD_HOST_H

#include "op.h"

/* The host operations; their host argument is a struct fsd_conn whose
 * net->host is a struct fsd_host. */
extern const struct fsd_host_ops fsd_host_ops;

#endif /* FSD_HOST_H */
