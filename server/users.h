/* fsd's users file: who may connect, with which key, and what they may do.
 *
 * One user per line, `NAME RIGHTS KEY`: NAME a user name (fsp_user_check),
 * RIGHTS a comma-separated list of read, write, delete and notice, and KEY
 * an Ed25519 public key in OpenSSH's format (`ssh-ed25519 AAAA... comment`),
 * so that a user can hand over the line of their id_ed25519.pub. `#` starts
 * a comment line; blank lines are ignored. Parsing is pure; loading adds the
 * file checks (not a symlink, not writable by group or others) and blocks,
 * so fsd does it before its loop starts or on the threadpool. */
#ifndef FSD_USERS_H
#define FSD_USERS_H

#include <fsproto/fsproto.h>
#include <stddef.h>
#include <stdint.h>

/* Rights, as a bit mask. */
#define FSD_RIGHT_READ 1u   /* LIST, STAT, GET, HASH, SUBSCRIBE */
#define FSD_RIGHT_WRITE 2u  /* PUT */
#define FSD_RIGHT_DELETE 4u /* DELETE */
#define FSD_RIGHT_NOTICE 8u /* NOTICE */
#define FSD_RIGHTS_ALL 15u

#define FSD_USERS_FILE_MAX (1u << 20) /* largest users file read: 1 MiB */
#define FSD_USERS_MAX 65536u          /* most users in one file */

struct fsd_user {
  char name[FSP_USER_MAX + 1]; /* NUL-terminated */
  uint8_t name_len;            /* bytes in name */
  unsigned rights;             /* FSD_RIGHT_* bits */
  unsigned line;               /* where it was defined, for messages */
  uint8_t key[FSP_PUBKEY_LEN]; /* the raw Ed25519 public key */
};

/* A parsed users file. Zero-filled is an empty one. */
struct fsd_users {
  struct fsd_user *v; /* n users, in file order; owned */
  size_t n;
};

/* Parses text[0..len) into *out, which must be empty (zero-filled); on
 * success the caller frees it with fsd_users_free(). Returns 0, UV_EINVAL
 * for a malformed line (err then holds one line such as "line 3: unknown
 * right 'admin' (read, write, delete, notice)"), UV_E2BIG past
 * FSD_USERS_MAX users, or UV_ENOMEM. On failure *out stays empty. */
int fsd_users_parse(const char *text, size_t len, struct fsd_users *out,
                    char *err, size_t errlen);

/* Reads and parses the users file at path. Refuses, with a message in err
 * saying how to fix it: a symbolic link (UV_ELOOP), anything but a regular
 * file (UV_EINVAL), a file writable by group or others or owned by another
 * user than fsd's or root (UV_EPERM), more than FSD_USERS_FILE_MAX bytes
 * (UV_EFBIG). Blocking: never call it on the loop thread while serving.
 * Other errors as fsd_users_parse() or a negative UV_E* from the system,
 * always with err naming the file. */
int fsd_users_load(const char *path, struct fsd_users *out, char *err,
                   size_t errlen);

/* Frees what *u holds and leaves it empty. */
void fsd_users_free(struct fsd_users *u);

/* The user called name[0..len), or NULL. The scan compares every entry in
 * full, whatever matches, so its time does not depend on where (or
 * whether) the name is found. */
const struct fsd_user *fsd_users_find(const struct fsd_users *u,
                                      const char *name, size_t len);

/* Parses a rights list such as "read,write" (at least one right, each one of
 * read, write, delete, notice, in any order). Returns 0 and sets *out, or
 * UV_EINVAL with *bad and *bad_len naming the offending item. */
int fsd_rights_parse(const char *s, size_t len, unsigned *out, const char **bad,
                     size_t *bad_len);

/* The rights a client frame needs (protocol.md sections 11 and 12):
 * FSD_RIGHT_READ for LIST, STAT, GET, HASH and SUBSCRIBE, FSD_RIGHT_WRITE
 * for PUT and MKDIR, FSD_RIGHT_DELETE for DELETE, both of these for
 * RENAME, FSD_RIGHT_NOTICE for NOTICE; 0 for frames
 * that need none (PING, BYE, CANCEL, UNSUBSCRIBE, and DATA and END, which
 * belong to a PUT that was already allowed). */
unsigned fsd_op_right(uint8_t op);

/* The name of one right bit ("read"), or "?" for anything else. */
const char *fsd_right_name(unsigned right);

/* Writes rights as "read,write,..." (or "none") into buf; returns buf. */
const char *fsd_rights_str(unsigned rights, char *buf, size_t cap);

/* Decodes the OpenSSH text `ssh-ed25519 BASE64` (type and key, a comment may
 * follow after a space and is not looked at) into the raw public key.
 * Returns 0, UV_ENOTSUP for another key type, UV_EINVAL otherwise. */
int fsd_sshkey_parse(const char *type, size_t type_len, const char *b64,
                     size_t b64_len, uint8_t key[FSP_PUBKEY_LEN]);

#endif /* FSD_USERS_H */
