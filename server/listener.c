/* The listening socket; see listener.h. */
#include "listener.h"

#include <stdio.h>
#include <string.h>

#include "authsrv.h"
#include "host.h"
#include "log.h"

/* Connections the kernel queues before we accept them: the usual
 * SOMAXCONN, so that a burst of clients connecting at once is not refused
 * while the loop is busy (the kernel caps it at net.core.somaxconn). */
#define LISTEN_BACKLOG 511

static void on_connection(uv_stream_t *server, int status) {
  struct fsd_listener *l = fsd_container_of(server, struct fsd_listener, tcp);
  struct fsd_conn *c;

  if (status < 0) {
    fsd_warn("accept: %s", uv_strerror(status));
    return;
  }
  c = fsd_conn_accept(l->net, server, l->ctx, &fsd_host_ops);
  if (c != NULL &&
      (l->net->auth == NULL || fsd_authsrv_admit(l->net->auth, c) == 0))
    fsd_conn_start(c);
}

/* Always printed, whatever the log level: scripts and tests that start fsd
 * on port 0 read the real port from this line. */
static void log_listening(struct fsd_listener *l) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char name[FSD_ADDR_STRLEN];

  memset(&ss, 0, sizeof(ss));
  if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) != 0)
    return;
  fprintf(stderr, "fsd: listening on %s\n",
          fsd_addr_format(&ss, name, sizeof(name)));
  fflush(stderr);
}

/* Listens on addr (fd < 0) or on fd; see listener.h. */
static int listen_on(struct fsd_listener *l, struct fsd_net *net,
                     struct fsd_ctx *ctx, const struct sockaddr_storage *addr,
                     int fd) {
  int r;

  l->net = net;
  l->ctx = ctx;
  uv_tcp_init(net->loop, &l->tcp);
  if (fd >= 0)
    r = uv_tcp_open(&l->tcp, fd);
  else
    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
  if (r == 0)
    log_listening(l);
  return r;
}

/* Binds and listens; see listener.h. */
int fsd_listener_start(struct fsd_listener *l, struct fsd_net *net,
                       struct fsd_ctx *ctx,
                       const struct sockaddr_storage *addr) {
  return listen_on(l, net, ctx, addr, -1);
}

/* Listens on a passed socket; see listener.h. */
int fsd_listener_adopt(struct fsd_listener *l, struct fsd_net *net,
                       struct fsd_ctx *ctx, int fd) {
  return listen_on(l, net, ctx, NULL, fd);
}
