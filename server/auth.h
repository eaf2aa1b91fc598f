/* fsd's side of authentication (protocol.md section 11): nonces, and the
 * Ed25519 check of an AUTH frame against the users file, with OpenSSL's EVP
 * interface. Every check costs the same whether the user exists or not. */
#ifndef FSD_AUTH_H
#define FSD_AUTH_H

#include <fsproto/fsproto.h>
#include <stddef.h>
#include <stdint.h>

#include "users.h"

/* What a verifier keeps: the key an unknown user is checked against. */
struct fsd_verifier {
  uint8_t dummy[FSP_PUBKEY_LEN]; /* public half of a key nobody holds */
};

/* Fills out[0..FSP_NONCE_LEN) from OpenSSL's CSPRNG. Returns 0 or UV_EIO
 * when the generator fails (then no connection can be challenged). */
int fsd_auth_nonce(uint8_t *out);

/* Makes the dummy key: a fresh key pair whose private half is thrown away,
 * so that verifying against it does the full work of a real check (a random
 * 32-byte string is often not a curve point, which OpenSSL refuses early).
 * Returns 0 or UV_EIO. */
int fsd_verifier_init(struct fsd_verifier *v);

/* Checks the AUTH message m (as fsp_msg_decode() gave it) against users,
 * for the server nonce sent in CHALLENGE and the channel binding of this
 * connection (binding_len 0 without TLS). Returns 0 and sets *who when the
 * user exists and the signature verifies; UV_EACCES otherwise, with *who
 * NULL, after the same work either way; UV_EINVAL for a message that is not
 * a valid AUTH; UV_ENOMEM when OpenSSL cannot allocate. */
int fsd_auth_verify(const struct fsd_verifier *v, const struct fsd_users *users,
                    const struct fsp_msg *m, const uint8_t *server_nonce,
                    const uint8_t *binding, size_t binding_len,
                    const struct fsd_user **who);

#endif /* FSD_AUTH_H */
