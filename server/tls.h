/* fsd's TLS: the server-wide settings (tls.c: which connections must use
 * TLS, the key and certificate, SIGHUP reloads) and the two transports a
 * connection starts with when TLS is on (tlsconn.c). The TLS work itself
 * is the fstls library's (tls/). */
#ifndef FSD_TLS_H
#define FSD_TLS_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "conn.h"
#include "fstls.h"

struct fsd_config;

/* A handshake (or, on a TLS-only listener, the first byte) must come
 * within this many ms of the connection. */
#define FSD_TLS_HANDSHAKE_MS 10000u

/* Server-wide TLS state. */
struct fsd_tlsd {
  SSL_CTX *ctx;           /* for new connections; each SSL keeps its own */
  int plaintext_ok;       /* plaintext clients are served too */
  char cert[PATH_MAX];    /* certificate file (chain) */
  char key[PATH_MAX];     /* private key file */
  char fp[FSTLS_FP_SIZE]; /* the key's fingerprint */
  uv_signal_t sighup;     /* reloads cert and key */
  uv_work_t work;         /* the reload, on the threadpool */
  SSL_CTX *next;          /* the reload's new context */
  char next_fp[FSTLS_FP_SIZE];
  char why[512];        /* why the reload failed */
  int reloading, again; /* a reload runs; another SIGHUP came meanwhile */
  int watching;         /* sighup is initialised */
};

/* Whether the listen address is loopback (127.0.0.0/8, ::1): only there
 * may plaintext be the default. */
int fsd_tls_is_loopback(const struct sockaddr_storage *ss);

/* Decides from cfg and the address fsd listens on (`where`: --listen, or a
 * socket systemd passed) whether TLS is on (--tls, a non-loopback one, or a
 * certificate given) and whether plaintext is still served (loopback
 * without --tls, or --allow-plaintext); when TLS is on, makes or loads the
 * key and certificate and prints the fingerprint. Blocking (start-up).
 * Returns 0 with t->ctx NULL when TLS is off, 0 when on, or a negative
 * FSTLS_E* code (logged). */
int fsd_tls_setup(struct fsd_tlsd *t, const struct fsd_config *cfg,
                  const struct sockaddr_storage *where);

/* Prints the fingerprint of the key fsd would serve with cfg (made on
 * first use) on stdout. Returns the exit status. */
int fsd_tls_print_fingerprint(const struct fsd_config *cfg);

/* Starts the SIGHUP watcher (not keeping the loop alive). */
void fsd_tls_start(struct fsd_tlsd *t, uv_loop_t *loop);

/* Stops the SIGHUP watcher (at shutdown). */
void fsd_tls_stop(struct fsd_tlsd *t);

/* Frees the context(s). */
void fsd_tls_free(struct fsd_tlsd *t);

/* The transport of a connection whose first byte is still to come, and of
 * one whose first byte was 0x16 (a TLS handshake). */
extern const struct fsd_transport fsd_transport_sniff;
extern const struct fsd_transport fsd_transport_tls;

#endif /* FSD_TLS_H */
