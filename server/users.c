/* The users file: parsing (pure) and loading (blocking, with the file
 * checks). See users.h. */
#include "users.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "fstls.h"

/* The key blob inside an ssh-ed25519 public key (RFC 8709): string
 * "ssh-ed25519", string key (32 bytes), each string after a u32 length. */
#define SSH_ED25519 "ssh-ed25519"
#define BLOB_LEN (4 + sizeof(SSH_ED25519) - 1 + 4 + FSP_PUBKEY_LEN)

static const struct {
  const char *name;
  unsigned bit;
} rights[] = {
    {"read", FSD_RIGHT_READ},
    {"write", FSD_RIGHT_WRITE},
    {"delete", FSD_RIGHT_DELETE},
    {"notice", FSD_RIGHT_NOTICE},
};
#define NRIGHTS (sizeof(rights) / sizeof(rights[0]))

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Strict base64 (RFC 4648 with padding): returns the decoded length, or -1
 * for a bad character, bad padding or an output over cap. */
static ssize_t b64_decode(const char *in, size_t len, uint8_t *out,
                          size_t cap) {
  size_t n = 0, pad = 0;

  if (len % 4 != 0)
    return -1;
  while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
    pad++;
  for (size_t i = 0; i < len; i += 4) {
    uint32_t v = 0;
    size_t k = 4;

    if (i + 4 == len)
      k = 4 - pad;
    for (size_t j = 0; j < 4; j++) {
      int d = j < k ? b64_value((unsigned char)in[i + j]) : 0;
      if (d < 0)
        return -1;
      v = v << 6 | (uint32_t)d;
    }
    for (size_t j = 0; j + 1 < k; j++) {
      if (n == cap)
        return -1;
      out[n++] = (uint8_t)(v >> (16 - 8 * j));
    }
    /* The bits a padded group leaves over must be zero (canonical form),
     * or two texts would decode to one key. */
    if ((k == 3 && ((v >> 6) & 0x3u) != 0) ||
        (k == 2 && ((v >> 12) & 0xfu) != 0))
      return -1;
  }
  return (ssize_t)n;
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* Decodes an OpenSSH ed25519 public key (see users.h). */
int fsd_sshkey_parse(const char *type, size_t type_len, const char *b64,
                     size_t b64_len, uint8_t key[FSP_PUBKEY_LEN]) {
  uint8_t blob[BLOB_LEN + 3];
  ssize_t n;

  if (type_len != sizeof(SSH_ED25519) - 1 ||
      memcmp(type, SSH_ED25519, type_len) != 0)
    return UV_ENOTSUP;
  n = b64_decode(b64, b64_len, blob, sizeof(blob));
  if (n != (ssize_t)BLOB_LEN)
    return UV_EINVAL;
  /* The type inside must repeat the one outside, and the key be 32 bytes. */
  if (get32(blob) != sizeof(SSH_ED25519) - 1 ||
      memcmp(blob + 4, SSH_ED25519, sizeof(SSH_ED25519) - 1) != 0 ||
      get32(blob + 4 + sizeof(SSH_ED25519) - 1) != FSP_PUBKEY_LEN)
    return UV_EINVAL;
  memcpy(key, blob + BLOB_LEN - FSP_PUBKEY_LEN, FSP_PUBKEY_LEN);
  return 0;
}

/* Parses a rights list (see users.h). */
int fsd_rights_parse(const char *s, size_t len, unsigned *out, const char **bad,
                     size_t *bad_len) {
  unsigned r = 0;
  size_t i = 0;

  for (;;) {
    size_t j = i, k;

    while (j < len && s[j] != ',')
      j++;
    for (k = 0; k < NRIGHTS; k++)
      if (strlen(rights[k].name) == j - i &&
          memcmp(rights[k].name, s + i, j - i) == 0)
        break;
    if (k == NRIGHTS) {
      *bad = s + i;
      *bad_len = j - i;
      return UV_EINVAL;
    }
    r |= rights[k].bit;
    if (j == len)
      break;
    i = j + 1;
  }
  *out = r;
  return 0;
}

/* The right an opcode needs (see users.h). One table, so the session and
 * the tests agree on it. */
unsigned fsd_op_right(uint8_t op) {
  switch (op) {
  case FSP_OP_LIST:
  case FSP_OP_STAT:
  case FSP_OP_GET:
  case FSP_OP_HASH:
  case FSP_OP_SUBSCRIBE:
    return FSD_RIGHT_READ;
  case FSP_OP_PUT:
    return FSD_RIGHT_WRITE;
  case FSP_OP_DELETE:
    return FSD_RIGHT_DELETE;
  case FSP_OP_NOTICE:
    return FSD_RIGHT_NOTICE;
  default:
    return 0;
  }
}

const char *fsd_right_name(unsigned right) {
  for (size_t k = 0; k < NRIGHTS; k++)
    if (rights[k].bit == right)
      return rights[k].name;
  return "?";
}

/* Writes a rights list (see users.h). */
const char *fsd_rights_str(unsigned r, char *buf, size_t cap) {
  size_t n = 0;

  if (cap == 0)
    return buf;
  buf[0] = '\0';
  for (size_t k = 0; k < NRIGHTS; k++) {
    int w;
    if (!(r & rights[k].bit))
      continue;
    w = snprintf(buf + n, cap - n, "%s%s", n > 0 ? "," : "", rights[k].name);
    if (w < 0 || (size_t)w >= cap - n)
      break;
    n += (size_t)w;
  }
  if (n == 0)
    snprintf(buf, cap, "none");
  return buf;
}

/* Splits off the next field of line[*pos..len), separated by blanks.
 * Returns its length (0 at the end) with *start set. */
static size_t next_field(const char *line, size_t len, size_t *pos,
                         const char **start) {
  size_t i = *pos, j;

  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  j = i;
  while (j < len && line[j] != ' ' && line[j] != '\t')
    j++;
  *start = line + i;
  *pos = j;
  return j - i;
}

/* Parses one non-comment line into u. Returns 0 or UV_EINVAL with err. */
static int parse_line(const char *line, size_t len, unsigned lineno,
                      struct fsd_user *u, char *err, size_t errlen) {
  const char *name, *rs, *type, *b64, *bad;
  size_t pos = 0, name_len, rs_len, type_len, b64_len, bad_len;
  int r;

  name_len = next_field(line, len, &pos, &name);
  rs_len = next_field(line, len, &pos, &rs);
  type_len = next_field(line, len, &pos, &type);
  b64_len = next_field(line, len, &pos, &b64);
  if (fsp_user_check(name, name_len) != 0)
    return fstls_fail(err, errlen, UV_EINVAL,
                      "line %u: bad user name '%.*s' (1 to %u letters, digits, "
                      "'.', '_' or '-', not starting with '.' or '-')",
                      lineno, (int)(name_len > 64 ? 64 : name_len), name,
                      FSP_USER_MAX);
  if (rs_len == 0)
    return fstls_fail(err, errlen, UV_EINVAL,
                      "line %u: user %.*s has no rights and no key "
                      "(NAME RIGHTS ssh-ed25519 KEY)",
                      lineno, (int)name_len, name);
  if (fsd_rights_parse(rs, rs_len, &u->rights, &bad, &bad_len) != 0)
    return fstls_fail(
        err, errlen, UV_EINVAL,
        "line %u: unknown right '%.*s' (read, write, delete, notice, "
        "separated by commas)",
        lineno, (int)(bad_len > 32 ? 32 : bad_len), bad);
  if (type_len == 0 || b64_len == 0)
    return fstls_fail(
        err, errlen, UV_EINVAL,
        "line %u: user %.*s has no key (NAME RIGHTS ssh-ed25519 KEY)", lineno,
        (int)name_len, name);
  r = fsd_sshkey_parse(type, type_len, b64, b64_len, u->key);
  if (r == UV_ENOTSUP)
    return fstls_fail(
        err, errlen, UV_EINVAL,
        "line %u: key type '%.*s' is not supported (only ssh-ed25519)", lineno,
        (int)(type_len > 32 ? 32 : type_len), type);
  if (r != 0)
    return fstls_fail(
        err, errlen, UV_EINVAL,
        "line %u: the key of user %.*s is not a valid ssh-ed25519 "
        "public key",
        lineno, (int)name_len, name);
  memcpy(u->name, name, name_len);
  u->name[name_len] = '\0';
  u->name_len = (uint8_t)name_len;
  u->line = lineno;
  return 0;
}

static int is_blank_or_comment(const char *line, size_t len) {
  size_t i = 0;

  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  return i == len || line[i] == '#';
}

/* Parses a users file held in memory (see users.h). */
int fsd_users_parse(const char *text, size_t len, struct fsd_users *out,
                    char *err, size_t errlen) {
  struct fsd_users u = {NULL, 0};
  size_t cap = 0, pos = 0;
  unsigned lineno = 0;
  int r = 0;

  while (pos < len) {
    const char *line = text + pos;
    const char *nl = memchr(line, '\n', len - pos);
    size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
    struct fsd_user one;

    pos += n + (nl != NULL);
    lineno++;
    if (n > 0 && line[n - 1] == '\r')
      n--; /* a file written on Windows */
    if (is_blank_or_comment(line, n))
      continue;
    if (memchr(line, '\0', n) != NULL) {
      r = fstls_fail(err, errlen, UV_EINVAL, "line %u: contains a NUL byte",
                     lineno);
      break;
    }
    memset(&one, 0, sizeof(one));
    r = parse_line(line, n, lineno, &one, err, errlen);
    if (r != 0)
      break;
    {
      const struct fsd_user *dup = fsd_users_find(&u, one.name, one.name_len);
      if (dup != NULL) {
        r = fstls_fail(err, errlen, UV_EINVAL,
                       "line %u: user %s is already defined on line %u", lineno,
                       one.name, dup->line);
        break;
      }
    }
    if (u.n == FSD_USERS_MAX) {
      r = fstls_fail(err, errlen, UV_E2BIG, "line %u: more than %u users",
                     lineno, FSD_USERS_MAX);
      break;
    }
    if (u.n == cap) {
      size_t ncap = cap == 0 ? 8 : 2 * cap;
      struct fsd_user *v = realloc(u.v, ncap * sizeof(*v));
      if (v == NULL) {
        r = fstls_fail(err, errlen, UV_ENOMEM, "out of memory");
        break;
      }
      u.v = v;
      cap = ncap;
    }
    u.v[u.n++] = one;
  }
  if (r != 0) {
    fsd_users_free(&u);
    return r;
  }
  *out = u;
  return 0;
}

/* Frees a users list (see users.h). */
void fsd_users_free(struct fsd_users *u) {
  if (u->v != NULL)
    OPENSSL_cleanse(u->v, u->n * sizeof(*u->v));
  free(u->v);
  u->v = NULL;
  u->n = 0;
}

/* Finds a user (see users.h). Names are compared as fixed-size buffers with
 * CRYPTO_memcmp, and the scan never stops early, so a probe for a name learns
 * nothing from the time it takes. */
const struct fsd_user *fsd_users_find(const struct fsd_users *u,
                                      const char *name, size_t len) {
  char want[FSP_USER_MAX + 1];
  const struct fsd_user *found = NULL;

  if (len > FSP_USER_MAX)
    return NULL;
  memset(want, 0, sizeof(want));
  memcpy(want, name, len);
  for (size_t i = 0; i < u->n; i++) {
    char have[FSP_USER_MAX + 1];
    memset(have, 0, sizeof(have));
    memcpy(have, u->v[i].name, u->v[i].name_len);
    if (CRYPTO_memcmp(have, want, sizeof(want)) == 0)
      found = &u->v[i];
  }
  return found;
}

/* Loads the users file (see users.h). */
int fsd_users_load(const char *path, struct fsd_users *out, char *err,
                   size_t errlen) {
  struct stat st;
  char *buf;
  size_t got = 0;
  int fd, r;

  /* O_NOFOLLOW: a symlink is refused, not followed to wherever it points
   * (an attacker who can plant one could point it at a file they write). */
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    r = -errno;
    if (r == UV_ELOOP)
      return fstls_fail(
          err, errlen, r,
          "users file %s is a symbolic link; give the path of the "
          "file itself",
          path);
    return fstls_fail(err, errlen, r, "users file %s: %s", path,
                      uv_strerror(r));
  }
  if (fstat(fd, &st) != 0) {
    r = -errno;
    close(fd);
    return fstls_fail(err, errlen, r, "users file %s: %s", path,
                      uv_strerror(r));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return fstls_fail(err, errlen, UV_EINVAL,
                      "users file %s is not a regular file", path);
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    close(fd);
    return fstls_fail(
        err, errlen, UV_EPERM,
        "users file %s is writable by %s, who could add themselves; "
        "run chmod go-w %s",
        path, (st.st_mode & S_IWOTH) ? "others" : "its group", path);
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    close(fd);
    return fstls_fail(err, errlen, UV_EPERM,
                      "users file %s belongs to uid %u, neither fsd's user nor "
                      "root; chown it",
                      path, (unsigned)st.st_uid);
  }
  if (st.st_size > (off_t)FSD_USERS_FILE_MAX) {
    close(fd);
    return fstls_fail(err, errlen, UV_EFBIG, "users file %s is over %u bytes",
                      path, FSD_USERS_FILE_MAX);
  }
  buf = malloc((size_t)st.st_size + 1);
  if (buf == NULL) {
    close(fd);
    return fstls_fail(err, errlen, UV_ENOMEM, "out of memory");
  }
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* shrank while read: parse what is there */
    got += (size_t)n;
  }
  close(fd);
  {
    char perr[256];
    r = fsd_users_parse(buf, got, out, perr, sizeof(perr));
    if (r != 0)
      fstls_fail(err, errlen, r, "users file %s: %s", path, perr);
  }
  free(buf);
  return r;
}
