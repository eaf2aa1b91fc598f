/* The listening socket: accepts clients into connections whose sessions
 * use the host operations. */
#ifndef FSD_LISTENER_H
#define FSD_LISTENER_H

#include <sys/socket.h>
#include <uv.h>

#include "conn.h"

struct fsd_listener {
  uv_tcp_t tcp;        /* the listening socket */
  struct fsd_net *net; /* where accepted connections go */
  struct fsd_ctx *ctx; /* the state their sessions share */
};

/* Binds to addr and listens. Always logs the address listened on (tests and
 * scripts that ask for port 0 read the port from that line). Returns 0 or a
 * negative UV_E* code; the handle must be closed either way. */
int fsd_listener_start(struct fsd_listener *l, struct fsd_net *net,
                       struct fsd_ctx *ctx,
                       const struct sockaddr_storage *addr);

/* As fsd_listener_start(), on fd, a socket already bound (the one systemd
 * passes for socket activation, see sd.h). The handle owns fd from now on.
 * Returns 0 or a negative UV_E* code; the handle must be closed either
 * way. */
int fsd_listener_adopt(struct fsd_listener *l, struct fsd_net *net,
                       struct fsd_ctx *ctx, int fd);

#endif /* FSD_LISTENER_H */
