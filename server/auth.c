/* Nonces and signature checks for authentication. See auth.h. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <uv.h>

/* Returns fresh random bytes (see auth.h). */
int fsd_auth_nonce(uint8_t *out) {
  return RAND_bytes(out, (int)FSP_NONCE_LEN) == 1 ? 0 : UV_EIO;
}

/* Makes the dummy key (see auth.h). */
int fsd_verifier_init(struct fsd_verifier *v) {
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  size_t len = sizeof(v->dummy);
  int ok;

  if (k == NULL)
    return UV_EIO;
  ok = EVP_PKEY_get_raw_public_key(k, v->dummy, &len) == 1 &&
       len == sizeof(v->dummy);
  EVP_PKEY_free(k);
  return ok ? 0 : UV_EIO;
}

/* Ed25519 verification of sig over msg with the raw public key pub. Returns
 * 1 for a good signature, 0 for a bad one, UV_ENOMEM when OpenSSL fails. */
static int ed25519_verify(const uint8_t *pub, const uint8_t *msg, size_t len,
                          const uint8_t *sig) {
  EVP_PKEY *k =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, FSP_PUBKEY_LEN);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int r = UV_ENOMEM;

  if (k != NULL && ctx != NULL &&
      EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1)
    r = EVP_DigestVerify(ctx, sig, FSP_SIG_LEN, msg, len) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(k);
  return r;
}

/* Checks an AUTH (see auth.h). The user's key, or the dummy key when there
 * is no such user, is picked without a branch on the secret outcome; the
 * signature is always verified; and the result is the AND of both. */
int fsd_auth_verify(const struct fsd_verifier *v, const struct fsd_users *users,
                    const struct fsp_msg *m, const uint8_t *server_nonce,
                    const uint8_t *binding, size_t binding_len,
                    const struct fsd_user **who) {
  uint8_t t[FSP_TRANSCRIPT_MAX];
  uint8_t key[FSP_PUBKEY_LEN];
  const struct fsd_user *u;
  uint8_t mask;
  ssize_t n;
  int good;

  *who = NULL;
  if (m->op != FSP_OP_AUTH || m->u.auth.nonce == NULL || m->u.auth.sig == NULL)
    return UV_EINVAL;
  n = fsp_auth_transcript(t, sizeof(t), server_nonce, m->u.auth.nonce,
                          m->u.auth.user.ptr, m->u.auth.user.len, binding,
                          binding_len);
  if (n < 0 || (size_t)n > sizeof(t))
    return UV_EINVAL;
  u = fsd_users_find(users, m->u.auth.user.ptr, m->u.auth.user.len);
  /* mask is 0xff when the user exists, 0x00 when not. */
  mask = (uint8_t)(0u - (unsigned)(u != NULL));
  for (size_t i = 0; i < FSP_PUBKEY_LEN; i++) {
    uint8_t real = u != NULL ? u->key[i] : 0;
    key[i] = (uint8_t)((real & mask) | (v->dummy[i] & (uint8_t)~mask));
  }
  good = ed25519_verify(key, t, (size_t)n, m->u.auth.sig);
  OPENSSL_cleanse(t, sizeof(t));
  if (good < 0)
    return good;
  if (!(good & (u != NULL)))
    return UV_EACCES;
  *who = u;
  return 0;
}
