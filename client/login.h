/* fsc's side of authentication (protocol.md section 10): who connects, and
 * the AUTH frame that answers a server's CHALLENGE. No I/O. */
#ifndef FSC_LOGIN_H
#define FSC_LOGIN_H

#include <fsproto/fsproto.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "keys.h"

/* The user name to connect as: opt (-u) when given, else $FSC_USER, else
 * the login name ($USER, $LOGNAME, then the password database). Writes it
 * into buf. Returns 0, UV_EINVAL when the name is not one a server accepts
 * (fsp_user_check; *bad then points at it), or UV_ENOENT when there is none. */
int fsc_login_user(const char *opt, char *buf, size_t cap, const char **bad);

/* Encodes into buf[0..cap) the AUTH frame that answers a CHALLENGE carrying
 * server_nonce: a fresh client nonce, user, and the signature with key over
 * the transcript with this connection's channel binding (binding_len 0
 * without TLS). Returns the frame's size, UV_ENOBUFS when cap is short,
 * UV_EINVAL for a bad user name, UV_EIO when signing or the random
 * generator fails. */
ssize_t fsc_login_frame(const struct fsc_key *key, const char *user,
                        const uint8_t *server_nonce, const uint8_t *binding,
                        size_t binding_len, uint8_t *buf, size_t cap);

/* Room for any AUTH frame. */
#define FSC_LOGIN_FRAME_MAX                                                    \
  (FSP_HDR_LEN + FSP_NONCE_LEN + FSP_SIG_LEN + FSP_USER_MAX)

#endif /* FSC_LOGIN_H */
