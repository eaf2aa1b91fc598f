/* fsc's identity: an Ed25519 key pair in a file, as ssh keeps one.
 *
 * `fsc keygen` writes a new key in OpenSSH's format (so `ssh-keygen -y -f`
 * prints its public line, and an existing unencrypted ~/.ssh/id_ed25519 can
 * serve as an fsc identity too); PKCS#8 PEM files are read as well. A private
 * key file that its group or others may access is refused, as ssh refuses
 * it. Nothing here prints; errors come back as negative UV_E* codes with one
 * line of text in err. The file work blocks: fsc does it before its loop
 * runs. */
#ifndef FSC_KEYS_H
#define FSC_KEYS_H

#include <fsproto/fsproto.h>
#include <stddef.h>
#include <stdint.h>

#define FSC_KEY_FILE_MAX 16384u /* largest key file read */
#define FSC_KEY_COMMENT_MAX 255u

struct evp_pkey_st;

struct fsc_key {
  struct evp_pkey_st *pkey;              /* OpenSSL's key; owned */
  uint8_t pub[FSP_PUBKEY_LEN];           /* the raw public key */
  char comment[FSC_KEY_COMMENT_MAX + 1]; /* e.g. "alice@laptop"; may be "" */
};

/* Writes the default identity path into buf: $XDG_CONFIG_HOME/fsc/id_ed25519
 * when that variable holds an absolute path, else
 * $HOME/.config/fsc/id_ed25519. Returns 0, UV_ENOENT when neither variable
 * is usable, or UV_ENAMETOOLONG. */
int fsc_key_default_path(char *buf, size_t cap);

/* Makes a new key pair and writes its private key to path in OpenSSH format
 * with mode 0600, creating a missing parent directory with mode 0700. Never
 * replaces a file: UV_EEXIST when path exists. comment goes into the file
 * (ssh-keygen's -C). On success *out holds the key (free it with
 * fsc_key_free). Other errors: negative UV_E* codes, with err set. */
int fsc_key_generate(const char *path, const char *comment, struct fsc_key *out,
                     char *err, size_t errlen);

/* Reads the private key at path: OpenSSH format without a passphrase, or
 * PKCS#8 PEM. Refuses with err saying what to do: a file its group or others
 * may access or that another user owns (UV_EPERM), a key protected by a
 * passphrase (UV_ENOTSUP), a key that is not Ed25519 (UV_ENOTSUP), a file
 * that is not a key (UV_EINVAL), a missing file (UV_ENOENT). */
int fsc_key_load(const char *path, struct fsc_key *out, char *err,
                 size_t errlen);

/* Frees the key and wipes what it held. */
void fsc_key_free(struct fsc_key *k);

/* Signs msg[0..len) with k (pure Ed25519). Returns 0 or UV_EIO. */
int fsc_key_sign(const struct fsc_key *k, const uint8_t *msg, size_t len,
                 uint8_t sig[FSP_SIG_LEN]);

/* Writes the public key as OpenSSH writes it in id_ed25519.pub:
 * "ssh-ed25519 BASE64" and, when there is one, " comment". Returns the
 * length written (without the NUL) or UV_ENOBUFS. */
int fsc_key_publine(const struct fsc_key *k, char *buf, size_t cap);

/* Writes the line to add to fsd's users file for user (all rights):
 * "NAME read,write,delete,notice ssh-ed25519 BASE64 comment". Returns the
 * length or UV_ENOBUFS, UV_EINVAL for a name fsd would not accept. */
int fsc_key_users_line(const struct fsc_key *k, const char *user, char *buf,
                       size_t cap);

#endif /* FSC_KEYS_H */
