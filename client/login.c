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

/* Signs a challenge into id's buffers and points *m at them. */
static int answer(const struct fsc_key *key, const char *user,
                  const uint8_t *server_nonce, const uint8_t *binding,
                  size_t binding_len, uint8_t *cnonce, uint8_t *sig,
                  struct fsp_msg *m) {
  uint8_t t[FSP_TRANSCRIPT_MAX];
  ssize_t n;
  int r;

  if (fsp_user_check(user, strlen(user)) != 0)
    return UV_EINVAL;
  if (RAND_bytes(cnonce, FSP_NONCE_LEN) != 1)
    return UV_EIO;
  n = fsp_auth_transcript(t, sizeof(t), server_nonce, cnonce, user,
                          strlen(user), binding, binding_len);
  if (n < 0 || (size_t)n > sizeof(t))
    return UV_EINVAL;
  r = fsc_key_sign(key, t, (size_t)n, sig);
  OPENSSL_cleanse(t, sizeof(t));
  if (r != 0)
    return UV_EIO;
  memset(m, 0, sizeof(*m));
  m->op = FSP_OP_AUTH;
  m->id = FSP_EVENT_ID;
  m->u.auth.nonce = cnonce;
  m->u.auth.sig = sig;
  m->u.auth.user.ptr = user;
  m->u.auth.user.len = strlen(user);
  return 0;
}

/* Sets up an identity (see login.h). */
void fsc_identity_init(struct fsc_identity *id, const char *user_opt,
                       const char *path_opt) {
  const char *env = getenv("FSC_IDENTITY");
  const char *bad = NULL;

  memset(id, 0, sizeof(*id));
  if (fsc_login_user(user_opt, id->user_buf, sizeof(id->user_buf), &bad) == 0)
    id->user = id->user_buf;
  else
    id->bad_user = bad;
  if (path_opt == NULL && env != NULL && env[0] != '\0')
    path_opt = env;
  if (path_opt != NULL)
    snprintf(id->path_buf, sizeof(id->path_buf), "%s", path_opt);
  else if (fsc_key_default_path(id->path_buf, sizeof(id->path_buf)) != 0)
    snprintf(id->path_buf, sizeof(id->path_buf), "id_ed25519");
  id->path = id->path_buf;
}

/* Answers a CHALLENGE for a connection (see login.h). */
int fsc_login_challenge(void *arg, const uint8_t *nonce, const uint8_t *binding,
                        size_t binding_len, struct fsp_msg *auth, char *why,
                        size_t whylen) {
  struct fsc_identity *id = arg;
  int r;

  if (id->user == NULL) {
    snprintf(why, whylen,
             "the server asks who you are, and '%s' is not a user name it "
             "takes; give one with -u NAME",
             id->bad_user != NULL ? id->bad_user : "");
    return UV_EINVAL;
  }
  if (!id->loaded) {
    r = fsc_key_load(id->path, &id->key, why, whylen);
    if (r != 0)
      return r;
    id->loaded = 1;
  }
  r = answer(&id->key, id->user, nonce, binding, binding_len, id->cnonce,
             id->sig, auth);
  if (r != 0)
    snprintf(why, whylen, "cannot sign the server's challenge: %s",
             uv_strerror(r));
  return r;
}

void fsc_identity_free(struct fsc_identity *id) {
  if (id->loaded)
    fsc_key_free(&id->key);
  id->loaded = 0;
}

/* Builds the AUTH frame (see login.h). */
ssize_t fsc_login_frame(const struct fsc_key *key, const char *user,
                        const uint8_t *server_nonce, const uint8_t *binding,
                        size_t binding_len, uint8_t *buf, size_t cap) {
  uint8_t cnonce[FSP_NONCE_LEN], sig[FSP_SIG_LEN];
  struct fsp_msg m;
  ssize_t n;
  int r =
      answer(key, user, server_nonce, binding, binding_len, cnonce, sig, &m);

  if (r != 0)
    return r;
  n = fsp_msg_encode(buf, cap, &m);
  if (n < 0)
    return UV_EINVAL;
  return (size_t)n > cap ? UV_ENOBUFS : n;
}
