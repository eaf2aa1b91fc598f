/* Helpers shared by the fstls tests: temporary directories, test
 * certificates, and two engines talking through memory. */
#ifndef FSTLS_TEST_HELPERS_H
#define FSTLS_TEST_HELPERS_H

#include <check.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "fstls.h"

/* Suite constructors, one per test program (see main.c); mkcert.c uses
 * the certificate helpers outside any suite. */
Suite *engine_suite(void);
Suite *trust_suite(void);
Suite *keys_suite(void);
Suite *known_suite(void);
Suite *memory_suite(void);

/* Makes a fresh temporary directory; its path is static storage until the
 * next call. Removed (with its files) by tt_rmdir. */
const char *tt_tmpdir(void);
void tt_rmdir(const char *dir);

/* Writes dir/name with text and mode. Returns the path (static storage
 * until the next call). */
const char *tt_write(const char *dir, const char *name, const char *text,
                     unsigned mode);

/* A new P-256 key. */
EVP_PKEY *tt_key(void);

/* A certificate for key, signed by ca_key (self-signed when ca_key is
 * NULL), named cn with subjectAltName san (e.g. "DNS:a.test,IP:127.0.0.1",
 * or NULL), valid from now+from to now+to seconds, a CA when is_ca. */
X509 *tt_cert(EVP_PKEY *key, EVP_PKEY *ca_key, X509 *ca, const char *cn,
              const char *san, long from, long to, int is_ca);

/* Writes a key (mode 0600) or certificate (0644) as PEM to dir/name and
 * returns the path (static storage until the next call of either). */
const char *tt_write_key(const char *dir, const char *name, EVP_PKEY *key);
const char *tt_write_cert(const char *dir, const char *name, X509 *cert);

/* A server context on a fresh self-signed key in a new temporary
 * directory; its fingerprint in fp when not NULL. */
SSL_CTX *tt_server_ctx(char *fp);

/* Runs a handshake between client c and server s, carrying at most step
 * bytes per feed (0: everything at once) and calling the receiving side's
 * fstls_handshake after each feed. Returns 0 once both are done, or the
 * first failure of either side (FSTLS_E*). *who is set to 'c' or 's' to say
 * which side failed, when who is not NULL. */
int tt_handshake(struct fstls_engine *c, struct fstls_engine *s, size_t step,
                 char *who);

/* Moves all ciphertext waiting in from into to, step bytes per feed (0:
 * at once). Returns the number of bytes moved. */
size_t tt_move(struct fstls_engine *from, struct fstls_engine *to, size_t step);

#endif
