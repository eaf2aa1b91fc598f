/* Who connects, and the AUTH frame. See login.h. */
#include "login.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* Picks the user name (see login.h). */
int fsc_login_user(const char *opt, char *buf, size_t cap, const char **bad) {
  const char *name = opt;
  const struct passwd *pw;

  if (name == NULL || name[0] == '\0')
    name = getenv("FSC_USER");
  if (name == NULL || name[0] == '\0')
    name = getenv("USER");
  if (name == NULL || name[0] == '\0')
    name = getenv("LOGNAME");
  if ((name == NULL || name[0] == '\0') && (pw = getpwuid(getuid())) != NULL)
    name = pw->pw_name;
  if (name == NULL || name[0] == '\0')
    return UV_ENOENT;
  *bad = name;
  if (fsp_user_check(name, strlen(name)) != 0 || strlen(name) >= cap)
    return UV_EINVAL;
  memcpy(buf, name, strlen(name) + 1);
  return 0;
}

/* Builds the AUTH frame (see login.h). */
ssize_t fsc_login_frame(const struct fsc_key *key, const char *user,
                        const uint8_t *server_nonce, const uint8_t *binding,
                        size_t binding_len, uint8_t *buf, size_t cap) {
  uint8_t t[FSP_TRANSCRIPT_MAX], cnonce[FSP_NONCE_LEN], sig[FSP_SIG_LEN];
  struct fsp_msg m;
  ssize_t n;

  if (fsp_user_check(user, strlen(user)) != 0)
    return UV_EINVAL;
  if (RAND_bytes(cnonce, sizeof(cnonce)) != 1)
    return UV_EIO;
  n = fsp_auth_transcript(t, sizeof(t), server_nonce, cnonce, user,
                          strlen(user), binding, binding_len);
  if (n < 0 || (size_t)n > sizeof(t))
    return UV_EINVAL;
  if (fsc_key_sign(key, t, (size_t)n, sig) != 0)
    return UV_EIO;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_AUTH;
  m.id = FSP_EVENT_ID;
  m.u.auth.nonce = cnonce;
  m.u.auth.sig = sig;
  m.u.auth.user.ptr = user;
  m.u.auth.user.len = strlen(user);
  n = fsp_msg_encode(buf, cap, &m);
  OPENSSL_cleanse(t, sizeof(t));
  if (n < 0)
    return UV_EINVAL;
  return (size_t)n > cap ? UV_ENOBUFS : n;
}
