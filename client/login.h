/* fsc's side of authentication (protocol.md section 11): who connects, and
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

/* Who this client authenticates as: the user name and the key, loaded the
 * first time a server asks (so that a server without users needs no key).
 * Zero-fill, set user and path, then hand it to fsc_login_challenge(). */
struct fsc_identity {
  const char *user;     /* the name (fsc_login_user()), for AUTH; NULL when
                           none is usable (bad_user says why) */
  const char *path;     /* the private key file */
  const char *bad_user; /* the unusable name, or NULL when there is none */
  char user_buf[FSP_USER_MAX + 1];
  char path_buf[4096];
  struct fsc_key key;            /* loaded once asked for */
  int loaded;                    /* key holds the key */
  uint8_t cnonce[FSP_NONCE_LEN]; /* the last AUTH's client nonce */
  uint8_t sig[FSP_SIG_LEN];      /* and its signature */
};

/* Sets id up for user_opt (-u) and path_opt (-i): the user from
 * fsc_login_user(), the key file from path_opt, else $FSC_IDENTITY, else
 * fsc_key_default_path(). Loads nothing. */
void fsc_identity_init(struct fsc_identity *id, const char *user_opt,
                       const char *path_opt);

/* fsc_conn's on_challenge with arg a struct fsc_identity: loads the key if
 * need be (a missing or unsafe key file fails, with a message saying what
 * to do) and fills *auth for the nonce and binding. Returns 0 or a negative
 * UV_E* code with why set. */
int fsc_login_challenge(void *arg, const uint8_t *nonce, const uint8_t *binding,
                        size_t binding_len, struct fsp_msg *auth, char *why,
                        size_t whylen);

/* Frees the key of id, if loaded. */
void fsc_identity_free(struct fsc_identity *id);

/* Room for any AUTH frame. */
#define FSC_LOGIN_FRAME_MAX                                                    \
  (FSP_HDR_LEN + FSP_NONCE_LEN + FSP_SIG_LEN + FSP_USER_MAX)

#endif /* FSC_LOGIN_H */
