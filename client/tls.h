/* fsc's TLS transport: TLS 1.3 for every server that is not loopback (and
 * for loopback with --tls), the server trusted as ssh trusts hosts (a
 * pinned key, the key recorded in known_servers, a CA with --ca, or the
 * first key seen, then recorded). The TLS work is the fstls library's. */
#ifndef FSC_TLS_H
#define FSC_TLS_H

#include <stddef.h>

#include "conn.h"

struct fsc_opts;

/* Whether host (as in HOST:PORT, brackets removed) is loopback:
 * "localhost", 127.0.0.0/8 or ::1. A name that merely resolves to a
 * loopback address is not: TLS errs on the safe side. */
int fsc_tls_is_loopback(const char *host);

/* Sets c's transport for o->server as o asks: plaintext (nothing to do)
 * for a loopback server without --tls, --pin or --ca, else
 * TLS with its trust decided now (reads known_servers). Call before
 * fsc_conn_open(); the state lives until fsc_tls_release(). Returns 0, or
 * FSC_EXIT_USAGE (bad --pin) or FSC_EXIT_CONN (unreadable CA or
 * known_servers file) with a one-line message in err. */
int fsc_tls_setup(struct fsc_conn *c, const struct fsc_opts *o, char *err,
                  size_t errlen);

/* Frees the TLS state of c (after its handle closed). */
void fsc_tls_release(struct fsc_conn *c);

#endif /* FSC_TLS_H */
