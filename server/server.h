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
  const char *users;            /* --users FILE, or NULL */
  unsigned max_unauth;          /* connections waiting to authenticate */
  unsigned auth_timeout_ms;     /* time to authenticate after accept */
  unsigned anon_rights;         /* FSD_RIGHT_* without users */
  int anonymous;                /* --anonymous: no users beyond loopback */
  const char *access_log;       /* --access-log FILE or "-", or NULL */
  int tls;                      /* --tls: TLS even on loopback */
  int allow_plaintext;          /* --allow-plaintext beside TLS */
  const char *state_dir;        /* --state-dir: where fsd keeps its key */
  const char *tls_cert;         /* --tls-cert: a certificate to serve */
  const char *tls_key;          /* --tls-key: its private key */
  /* --cluster: the shared event log (struct fsd_cluster_config, cluster.h),
   * or NULL for a server on its own. Set only in builds with libnats. */
  const struct fsd_cluster_config *cluster;
};

/* fsd_server_run() refused to start: a file it was given (the users file)
 * is unusable. fsd exits 2 then, as for a usage error. */
#define FSD_RUN_BADCONFIG 2

/* Runs the server until SIGINT or SIGTERM. Returns 0 after a clean stop,
 * FSD_RUN_BADCONFIG, or a negative UV_E* code when it could not start (the
 * reason is logged either way). */
int fsd_server_run(const struct fsd_config *cfg);

#endif /* FSD_SERVER_H */
