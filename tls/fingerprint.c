/* Key fingerprints as ssh prints them: "SHA256:" + unpadded base64 of the
 * SHA-256 of the DER SubjectPublicKeyInfo. See fstls.h. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "fstls_int.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Hashes the public key; see fstls.h. */
int fstls_spki_hash(const EVP_PKEY *pkey, uint8_t hash[FSTLS_HASH_LEN]) {
  unsigned char *der = NULL;
  unsigned int hl = 0;
  int n, ok;

  n = i2d_PUBKEY(pkey, &der);
  if (n <= 0)
    return FSTLS_ENOMEM;
  ok = EVP_Digest(der, (size_t)n, hash, &hl, EVP_sha256(), NULL);
  OPENSSL_free(der);
  return ok == 1 && hl == FSTLS_HASH_LEN ? 0 : FSTLS_ENOMEM;
}

/* Prints a hash; see fstls.h. 32 bytes are ten 3-byte groups (40
 * characters) and two bytes left (3 characters, unpadded). */
void fstls_fp_format(const uint8_t hash[FSTLS_HASH_LEN],
                     char fp[FSTLS_FP_SIZE]) {
  char *o = fp;
  size_t i;

  memcpy(o, "SHA256:", 7);
  o += 7;
  for (i = 0; i + 3 <= FSTLS_HASH_LEN; i += 3) {
    uint32_t v =
        (uint32_t)hash[i] << 16 | (uint32_t)hash[i + 1] << 8 | hash[i + 2];
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = b64[(v >> 6) & 63];
    *o++ = b64[v & 63];
  }
  {
    uint32_t v = (uint32_t)hash[i] << 16 | (uint32_t)hash[i + 1] << 8;
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = b64[(v >> 6) & 63];
  }
  *o = '\0';
}

/* Value of one base64 character, or -1. */
static int b64_val(char c) {
  const char *p = c != '\0' ? strchr(b64, c) : NULL;
  return p != NULL ? (int)(p - b64) : -1;
}

/* Parses a printed fingerprint; see fstls.h. */
int fstls_fp_parse(const char *s, uint8_t hash[FSTLS_HASH_LEN]) {
  uint8_t out[FSTLS_HASH_LEN];
  size_t len, i, o = 0;
  uint32_t acc = 0;
  int bits = 0;

  if (s == NULL || strncmp(s, "SHA256:", 7) != 0)
    return FSTLS_EINVAL;
  s += 7;
  len = strlen(s);
  if (len == 44 && s[43] == '=')
    len = 43;
  if (len != 43)
    return FSTLS_EINVAL;
  for (i = 0; i < len; i++) {
    int v = b64_val(s[i]);
    if (v < 0)
      return FSTLS_EINVAL;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* 43 characters carry 258 bits: the last 2 must be zero, or two
   * spellings would name one key. */
  if (o != FSTLS_HASH_LEN || acc != 0)
    return FSTLS_EINVAL;
  memcpy(hash, out, FSTLS_HASH_LEN);
  return 0;
}
