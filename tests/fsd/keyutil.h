/* Real Ed25519 keys for the authentication tests, made with OpenSSL. */
#ifndef FSD_TEST_KEYUTIL_H
#define FSD_TEST_KEYUTIL_H

#include <fsproto/fsproto.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh key pair; free with EVP_PKEY_free(). */
EVP_PKEY *tk_keygen(void);

/* The raw public key of k. */
void tk_pub(EVP_PKEY *k, uint8_t pub[FSP_PUBKEY_LEN]);

/* Writes "ssh-ed25519 BASE64" for pub into buf (NUL-terminated). */
void tk_sshpub(const uint8_t pub[FSP_PUBKEY_LEN], char *buf, size_t cap);

/* Signs msg[0..len) with k. */
void tk_sign(EVP_PKEY *k, const uint8_t *msg, size_t len,
             uint8_t sig[FSP_SIG_LEN]);

/* Runs a shell command; returns its exit status (-1 if it did not run). */
int tk_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a whole small file into buf (NUL-terminated); returns its length or
 * -1. */
long tk_slurp(const char *path, char *buf, size_t cap);

#endif
