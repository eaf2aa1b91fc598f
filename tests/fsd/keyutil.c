/* Test keys (see keyutil.h). */
#include "keyutil.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

EVP_PKEY *tk_keygen(void) {
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

  ck_assert_ptr_nonnull(k);
  return k;
}

void tk_pub(EVP_PKEY *k, uint8_t pub[FSP_PUBKEY_LEN]) {
  size_t len = FSP_PUBKEY_LEN;

  ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, pub, &len), 1);
  ck_assert_uint_eq(len, FSP_PUBKEY_LEN);
}

void tk_sshpub(const uint8_t pub[FSP_PUBKEY_LEN], char *buf, size_t cap) {
  uint8_t blob[51] = {0,   0,   0,   11,  's', 's', 'h', '-', 'e', 'd',
                      '2', '5', '5', '1', '9', 0,   0,   0,   32};
  unsigned char b64[80];

  memcpy(blob + 19, pub, FSP_PUBKEY_LEN);
  ck_assert_int_eq(EVP_EncodeBlock(b64, blob, sizeof(blob)), 68);
  ck_assert_int_lt(snprintf(buf, cap, "ssh-ed25519 %s", b64), (int)cap);
}

void tk_sign(EVP_PKEY *k, const uint8_t *msg, size_t len,
             uint8_t sig[FSP_SIG_LEN]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t siglen = FSP_SIG_LEN;

  ck_assert_ptr_nonnull(ctx);
  ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, NULL, NULL, k), 1);
  ck_assert_int_eq(EVP_DigestSign(ctx, sig, &siglen, msg, len), 1);
  EVP_MD_CTX_free(ctx);
}

int tk_sh(const char *fmt, ...) {
  char cmd[1024];
  va_list ap;
  int st;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  st = system(cmd);
  if (st == -1 || !WIFEXITED(st))
    return -1;
  return WEXITSTATUS(st);
}

long tk_slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;

  if (f == NULL)
    return -1;
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}
