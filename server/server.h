/* fsd's libuv host: the listener, connections, file transfers on the
 * threadpool, the folder watcher and signal handling. */
#ifndef FSD_SERVER_H
#define FSD_SERVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"

struct fsd_cluster_config;

struct fsd_config {
  const char *root;             /* folder to serve */
  struct sockaddr_storage addr; /* where to listen */
  unsigned max_clients;         /* connections served at once */
  unsigned max_per_ip;          /* connections from one address */
  uint64_t min_free;            /* free disk bytes uploads never take */
  int min_free_set;             /* else 1% of the file system or 256 MiB */
  unsigned idle_timeout;        /* seconds; 0 disables */
  int read_only;                /* refuse PUT and DELETE */
  int no_fsync;                 /* commit uploads without fsync() */
  int tls;                      /* --tls: TLS even on loopback */
  int allow_plaintext;          /* --allow-plaintext beside TLS */
  const char *state_dir;        /* --state-dir: where fsd keeps its key */
  const char *tls_cert;         /* --tls-cert: a certificate to serve */
  const char *tls_key;          /* --tls-key: its private key */
  /* --cluster: the shared event log (struct fsd_cluster_config, cluster.h),
   * or NULL for a server on its own. Set only in builds with libnats. */
  const struct fsd_cluster_config *cluster;
};

/* Runs the server until SIGINT or SIGTERM. Returns 0 after a clean stop, or a
 * negative UV_E* code when it could not start (the reason is logged). */
int fsd_server_run(const struct fsd_config *cfg);

#endif /* FSD_SERVER_H */
