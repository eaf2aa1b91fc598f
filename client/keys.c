/* fsc's key files: OpenSSH private keys (written and read), PKCS#8 PEM (read),
 * and the public lines handed to a server's admin. See keys.h.
 *
 * The OpenSSH format ("openssh-key-v1", described in OpenSSH's PROTOCOL.key)
 * is a base64 armour around: the magic and a NUL, the cipher and KDF names
 * ("none" for a key without passphrase), the KDF options, the number of keys
 * (1), the public key blob, and the private section: two equal check words,
 * the key type, the public key, the private key (seed and public key, 64
 * bytes), the comment and padding 1, 2, 3... to a multiple of 8. Every
 * string is a u32 big-endian length and its bytes. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "fstls.h"

#define MAGIC "openssh-key-v1"
#define BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define END "-----END OPENSSH PRIVATE KEY-----"
#define KEYTYPE "ssh-ed25519"
#define SEED_LEN 32u
#define WRAP 70 /* base64 columns, as ssh-keygen writes them */

/* ------------------------------------------------------------------------ */
/* Byte strings                                                             */

struct wbuf {
  uint8_t *p;
  size_t len, cap;
  int overflow;
};

static void put_bytes(struct wbuf *w, const void *p, size_t n) {
  if (w->overflow || w->cap - w->len < n) {
    w->overflow = 1;
    return;
  }
  memcpy(w->p + w->len, p, n);
  w->len += n;
}

static void put_u32(struct wbuf *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  put_bytes(w, b, 4);
}

static void put_string(struct wbuf *w, const void *p, size_t n) {
  put_u32(w, (uint32_t)n);
  put_bytes(w, p, n);
}

struct rbuf {
  const uint8_t *p;
  size_t len, pos;
};

static int get_u32(struct rbuf *r, uint32_t *v) {
  if (r->len - r->pos < 4)
    return -1;
  *v = (uint32_t)r->p[r->pos] << 24 | (uint32_t)r->p[r->pos + 1] << 16 |
       (uint32_t)r->p[r->pos + 2] << 8 | (uint32_t)r->p[r->pos + 3];
  r->pos += 4;
  return 0;
}

/* The next string; its length is checked against what is left, never
 * added to a pointer first. */
static int get_string(struct rbuf *r, const uint8_t **p, size_t *n) {
  uint32_t len;

  if (get_u32(r, &len) != 0 || r->len - r->pos < len)
    return -1;
  *p = r->p + r->pos;
  *n = len;
  r->pos += len;
  return 0;
}

static int str_is(const uint8_t *p, size_t n, const char *s) {
  return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* The public key blob: string "ssh-ed25519", string key. */
static void put_pub_blob(struct wbuf *w, const uint8_t *pub) {
  put_string(w, KEYTYPE, sizeof(KEYTYPE) - 1);
  put_string(w, pub, FSP_PUBKEY_LEN);
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                     */

/* Fills k from a raw seed, checking that the public key OpenSSL derives is
 * want_pub when one is given (a file whose halves disagree is corrupt). */
static int key_from_seed(struct fsc_key *k, const uint8_t *seed,
                         const uint8_t *want_pub) {
  size_t len = FSP_PUBKEY_LEN;

  k->pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SEED_LEN);
  if (k->pkey == NULL ||
      EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &len) != 1 ||
      len != FSP_PUBKEY_LEN ||
      (want_pub != NULL &&
       CRYPTO_memcmp(k->pub, want_pub, FSP_PUBKEY_LEN) != 0)) {
    fsc_key_free(k);
    return UV_EINVAL;
  }
  return 0;
}

static void set_comment(struct fsc_key *k, const void *p, size_t n) {
  if (n > FSC_KEY_COMMENT_MAX)
    n = FSC_KEY_COMMENT_MAX;
  memcpy(k->comment, p, n);
  k->comment[n] = '\0';
  /* A comment lands in a users file line: keep it on one line. */
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)k->comment[i] < 0x20 || k->comment[i] == 0x7f)
      k->comment[i] = '_';
}

/* Frees a key (see keys.h). */
void fsc_key_free(struct fsc_key *k) {
  EVP_PKEY_free(k->pkey);
  OPENSSL_cleanse(k, sizeof(*k));
  k->pkey = NULL;
}

/* Signs (see keys.h). */
int fsc_key_sign(const struct fsc_key *k, const uint8_t *msg, size_t len,
                 uint8_t sig[FSP_SIG_LEN]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t siglen = FSP_SIG_LEN;
  int ok;

  ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
       EVP_DigestSign(ctx, sig, &siglen, msg, len) == 1 &&
       siglen == FSP_SIG_LEN;
  EVP_MD_CTX_free(ctx);
  return ok ? 0 : UV_EIO;
}

/* Writes the public line (see keys.h). */
int fsc_key_publine(const struct fsc_key *k, char *buf, size_t cap) {
  uint8_t blob[64];
  unsigned char b64[96];
  struct wbuf w = {blob, 0, sizeof(blob), 0};
  int n;

  put_pub_blob(&w, k->pub);
  EVP_EncodeBlock(b64, blob, (int)w.len);
  n = snprintf(buf, cap, "%s %s%s%s", KEYTYPE, b64,
               k->comment[0] != '\0' ? " " : "", k->comment);
  if (n < 0 || (size_t)n >= cap)
    return UV_ENOBUFS;
  return n;
}

/* Writes the users file line (see keys.h). */
int fsc_key_users_line(const struct fsc_key *k, const char *user, char *buf,
                       size_t cap) {
  int n, m;

  if (fsp_user_check(user, strlen(user)) != 0)
    return UV_EINVAL;
  n = snprintf(buf, cap, "%s read,write,delete,notice ", user);
  if (n < 0 || (size_t)n >= cap)
    return UV_ENOBUFS;
  m = fsc_key_publine(k, buf + n, cap - (size_t)n);
  return m < 0 ? m : n + m;
}

/* The default path (see keys.h). */
int fsc_key_default_path(char *buf, size_t cap) {
  const char *xdg = getenv("XDG_CONFIG_HOME");
  const char *home = getenv("HOME");
  int n;

  /* The XDG spec says a relative value is invalid and must be ignored. */
  if (xdg != NULL && xdg[0] == '/')
    n = snprintf(buf, cap, "%s/fsc/id_ed25519", xdg);
  else if (home != NULL && home[0] != '\0')
    n = snprintf(buf, cap, "%s/.config/fsc/id_ed25519", home);
  else
    return UV_ENOENT;
  return n < 0 || (size_t)n >= cap ? UV_ENAMETOOLONG : 0;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

/* Encodes the OpenSSH private key of k (seed given) into out, as the armoured
 * text. Returns its length or UV_ENOBUFS. */
static int encode_openssh(const struct fsc_key *k, const uint8_t *seed,
                          char *out, size_t cap) {
  uint8_t body[512], priv[400], pubblob[64], both[SEED_LEN + FSP_PUBKEY_LEN];
  unsigned char b64[700];
  struct wbuf w = {body, 0, sizeof(body), 0};
  struct wbuf pv = {priv, 0, sizeof(priv), 0};
  struct wbuf pb = {pubblob, 0, sizeof(pubblob), 0};
  uint32_t check;
  size_t n = 0, blen;
  int r = UV_ENOBUFS;

  if (RAND_bytes((unsigned char *)&check, sizeof(check)) != 1)
    return UV_EIO;
  memcpy(both, seed, SEED_LEN);
  memcpy(both + SEED_LEN, k->pub, FSP_PUBKEY_LEN);
  put_pub_blob(&pb, k->pub);
  put_u32(&pv, check);
  put_u32(&pv, check);
  put_string(&pv, KEYTYPE, sizeof(KEYTYPE) - 1);
  put_string(&pv, k->pub, FSP_PUBKEY_LEN);
  put_string(&pv, both, sizeof(both));
  put_string(&pv, k->comment, strlen(k->comment));
  for (uint8_t pad = 1; pv.len % 8 != 0; pad++)
    put_bytes(&pv, &pad, 1);
  put_bytes(&w, MAGIC, sizeof(MAGIC)); /* with its NUL */
  put_string(&w, "none", 4);
  put_string(&w, "none", 4);
  put_string(&w, "", 0);
  put_u32(&w, 1);
  put_string(&w, pubblob, pb.len);
  put_string(&w, priv, pv.len);
  if (w.overflow || pv.overflow || pb.overflow)
    goto out;
  blen = (size_t)EVP_EncodeBlock(b64, body, (int)w.len);
  if (cap < sizeof(BEGIN) + sizeof(END) + blen + blen / WRAP + 2)
    goto out;
  n = (size_t)snprintf(out, cap, "%s\n", BEGIN);
  for (size_t i = 0; i < blen; i += WRAP) {
    size_t m = blen - i < WRAP ? blen - i : WRAP;
    memcpy(out + n, b64 + i, m);
    n += m;
    out[n++] = '\n';
  }
  n += (size_t)snprintf(out + n, cap - n, "%s\n", END);
  r = (int)n;
out:
  OPENSSL_cleanse(body, sizeof(body));
  OPENSSL_cleanse(priv, sizeof(priv));
  OPENSSL_cleanse(both, sizeof(both));
  OPENSSL_cleanse(b64, sizeof(b64));
  return r;
}

/* Creates the parent directory of path (one level) with mode 0700 when it is
 * missing; its own parent must exist or is created the same way. */
static int make_parent(const char *path) {
  char dir[4096];
  char *slash;

  if (strlen(path) >= sizeof(dir))
    return UV_ENAMETOOLONG;
  memcpy(dir, path, strlen(path) + 1);
  slash = strrchr(dir, '/');
  if (slash == NULL || slash == dir)
    return 0;
  *slash = '\0';
  if (mkdir(dir, 0700) == 0 || errno == EEXIST)
    return 0;
  if (errno == ENOENT) {
    int r = make_parent(dir);
    if (r != 0)
      return r;
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
      return 0;
  }
  return -errno;
}

/* Writes all of buf to fd. Returns 0 or a negative UV_E* code. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Makes and writes a key (see keys.h). */
int fsc_key_generate(const char *path, const char *comment, struct fsc_key *out,
                     char *err, size_t errlen) {
  uint8_t seed[SEED_LEN];
  char text[1024];
  size_t slen = SEED_LEN;
  EVP_PKEY *gen;
  int fd, n, r;

  memset(out, 0, sizeof(*out));
  r = make_parent(path);
  if (r != 0)
    return fstls_fail(err, errlen, r, "cannot create the folder of %s: %s",
                      path, uv_strerror(r));
  gen = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (gen == NULL || EVP_PKEY_get_raw_private_key(gen, seed, &slen) != 1 ||
      slen != SEED_LEN) {
    EVP_PKEY_free(gen);
    return fstls_fail(err, errlen, UV_EIO, "cannot make a key: OpenSSL failed");
  }
  EVP_PKEY_free(gen);
  r = key_from_seed(out, seed, NULL);
  if (r == 0) {
    set_comment(out, comment, strlen(comment));
    n = encode_openssh(out, seed, text, sizeof(text));
    r = n < 0 ? n : 0;
  }
  OPENSSL_cleanse(seed, sizeof(seed));
  if (r != 0) {
    fsc_key_free(out);
    return fstls_fail(err, errlen, r, "cannot encode the key: %s",
                      uv_strerror(r));
  }
  /* O_EXCL: an existing key (or a symlink planted in its place) is never
   * replaced; 0600 from the start, so no one can read it in between. */
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    r = -errno;
    OPENSSL_cleanse(text, sizeof(text));
    fsc_key_free(out);
    if (r == UV_EEXIST)
      return fstls_fail(err, errlen, r,
                        "%s already exists; fsc keygen never replaces a key "
                        "(remove it first, or use -i FILE for another one)",
                        path);
    return fstls_fail(err, errlen, r, "cannot create %s: %s", path,
                      uv_strerror(r));
  }
  r = write_all(fd, text, (size_t)n);
  if (r == 0 && fsync(fd) != 0)
    r = -errno;
  if (close(fd) != 0 && r == 0)
    r = -errno;
  OPENSSL_cleanse(text, sizeof(text));
  if (r != 0) {
    unlink(path);
    fsc_key_free(out);
    return fstls_fail(err, errlen, r, "cannot write %s: %s", path,
                      uv_strerror(r));
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

/* Decodes the armoured OpenSSH key in text into k. */
static int decode_openssh(const char *text, struct fsc_key *k, const char *path,
                          char *err, size_t errlen) {
  const char *b = strstr(text, BEGIN), *e;
  char *b64 = NULL;
  uint8_t *bin = NULL;
  size_t nb64 = 0, pad = 0, nbin;
  struct rbuf r, pv;
  const uint8_t *p, *pub = NULL, *priv = NULL, *cmt = NULL;
  size_t n, ncmt = 0;
  uint32_t nkeys, c1, c2;
  int rc = UV_EINVAL;

  e = b != NULL ? strstr(b, END) : NULL;
  if (e == NULL)
    return fstls_fail(err, errlen, UV_EINVAL, "%s is not a private key", path);
  b += sizeof(BEGIN) - 1;
  b64 = malloc((size_t)(e - b) + 1);
  bin = malloc((size_t)(e - b) + 1);
  if (b64 == NULL || bin == NULL) {
    rc = fstls_fail(err, errlen, UV_ENOMEM, "out of memory");
    goto out;
  }
  for (const char *q = b; q < e; q++)
    if (*q != '\n' && *q != '\r' && *q != ' ' && *q != '\t')
      b64[nb64++] = *q;
  b64[nb64] = '\0';
  while (pad < 2 && pad < nb64 && b64[nb64 - 1 - pad] == '=')
    pad++;
  if (nb64 == 0 || nb64 % 4 != 0 ||
      EVP_DecodeBlock(bin, (unsigned char *)b64, (int)nb64) < 0) {
    rc = fstls_fail(err, errlen, UV_EINVAL, "%s: the key is not valid base64",
                    path);
    goto out;
  }
  nbin = nb64 / 4 * 3 - pad;
  r.p = bin;
  r.len = nbin;
  r.pos = sizeof(MAGIC);
  if (nbin < sizeof(MAGIC) || memcmp(bin, MAGIC, sizeof(MAGIC)) != 0)
    goto corrupt;
  if (get_string(&r, &p, &n) != 0)
    goto corrupt;
  if (!str_is(p, n, "none")) {
    rc = fstls_fail(
        err, errlen, UV_ENOTSUP,
        "%s is protected by a passphrase, which fsc cannot ask for; use "
        "a key without one (fsc keygen makes one)",
        path);
    goto out;
  }
  if (get_string(&r, &p, &n) != 0 || !str_is(p, n, "none") ||
      get_string(&r, &p, &n) != 0 || get_u32(&r, &nkeys) != 0 || nkeys != 1 ||
      get_string(&r, &p, &n) != 0) /* the public blob, checked below */
    goto corrupt;
  {
    struct rbuf blob = {p, n, 0};
    if (get_string(&blob, &p, &n) != 0)
      goto corrupt;
    if (!str_is(p, n, KEYTYPE)) {
      rc = fstls_fail(
          err, errlen, UV_ENOTSUP,
          "%s holds a %.*s key; fsc needs an Ed25519 key (ssh-keygen -t "
          "ed25519, or fsc keygen)",
          path, (int)(n > 32 ? 32 : n), (const char *)p);
      goto out;
    }
  }
  if (get_string(&r, &p, &n) != 0)
    goto corrupt;
  pv.p = p;
  pv.len = n;
  pv.pos = 0;
  if (get_u32(&pv, &c1) != 0 || get_u32(&pv, &c2) != 0 || c1 != c2 ||
      get_string(&pv, &p, &n) != 0 || !str_is(p, n, KEYTYPE) ||
      get_string(&pv, &pub, &n) != 0 || n != FSP_PUBKEY_LEN ||
      get_string(&pv, &priv, &n) != 0 || n != SEED_LEN + FSP_PUBKEY_LEN ||
      get_string(&pv, &cmt, &ncmt) != 0)
    goto corrupt;
  /* What follows is padding 1, 2, 3, ... */
  for (size_t i = 0; pv.pos + i < pv.len; i++)
    if (pv.p[pv.pos + i] != (uint8_t)(i + 1))
      goto corrupt;
  if (CRYPTO_memcmp(priv + SEED_LEN, pub, FSP_PUBKEY_LEN) != 0 ||
      key_from_seed(k, priv, pub) != 0)
    goto corrupt;
  set_comment(k, cmt, ncmt);
  rc = 0;
  goto out;
corrupt:
  rc = fstls_fail(err, errlen, UV_EINVAL, "%s: the private key is corrupt",
                  path);
out:
  if (b64 != NULL)
    OPENSSL_cleanse(b64, nb64);
  if (bin != NULL)
    OPENSSL_cleanse(bin, nb64 / 4 * 3);
  free(b64);
  free(bin);
  return rc;
}

/* A PEM password callback that supplies none: an encrypted PEM fails. */
static int no_password(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  *(int *)u = 1;
  return -1;
}

/* Decodes a PKCS#8 PEM private key. */
static int decode_pem(const char *text, size_t len, struct fsc_key *k,
                      const char *path, char *err, size_t errlen) {
  BIO *bio = BIO_new_mem_buf(text, (int)len);
  int asked = 0;
  EVP_PKEY *pk;
  uint8_t seed[SEED_LEN];
  size_t slen = SEED_LEN;
  int r;

  if (bio == NULL)
    return fstls_fail(err, errlen, UV_ENOMEM, "out of memory");
  pk = PEM_read_bio_PrivateKey(bio, NULL, no_password, &asked);
  BIO_free(bio);
  if (pk == NULL) {
    if (asked)
      return fstls_fail(
          err, errlen, UV_ENOTSUP,
          "%s is protected by a passphrase, which fsc cannot ask for; "
          "use a key without one (fsc keygen makes one)",
          path);
    return fstls_fail(err, errlen, UV_EINVAL, "%s is not a private key", path);
  }
  if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(pk);
    return fstls_fail(err, errlen, UV_ENOTSUP,
                      "%s is not an Ed25519 key; fsc needs one (fsc keygen)",
                      path);
  }
  r = EVP_PKEY_get_raw_private_key(pk, seed, &slen) == 1 && slen == SEED_LEN
          ? key_from_seed(k, seed, NULL)
          : UV_EINVAL;
  OPENSSL_cleanse(seed, sizeof(seed));
  EVP_PKEY_free(pk);
  if (r != 0)
    return fstls_fail(err, errlen, r, "%s: the private key is corrupt", path);
  return 0;
}

/* Opens path and checks that only its owner, the current user, can read it,
 * as ssh's sshkey_perm_ok() does. Returns the fd or a negative code. */
static int open_private(const char *path, struct stat *st, char *err,
                        size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  int r;

  if (fd < 0) {
    r = -errno;
    if (r == UV_ENOENT)
      return fstls_fail(
          err, errlen, r,
          "no key at %s; make one with fsc keygen, or name one with "
          "-i FILE",
          path);
    return fstls_fail(err, errlen, r, "cannot open %s: %s", path,
                      uv_strerror(r));
  }
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    close(fd);
    return fstls_fail(err, errlen, UV_EINVAL, "%s is not a regular file", path);
  }
  if (st->st_uid != getuid()) {
    close(fd);
    return fstls_fail(err, errlen, UV_EPERM,
                      "%s belongs to another user; fsc uses only your own keys",
                      path);
  }
  if ((st->st_mode & 077) != 0) {
    close(fd);
    return fstls_fail(
        err, errlen, UV_EPERM,
        "permissions %04o for %s are too open: others could read your "
        "private key; run chmod 600 %s",
        (unsigned)(st->st_mode & 07777), path, path);
  }
  if (st->st_size > (off_t)FSC_KEY_FILE_MAX) {
    close(fd);
    return fstls_fail(err, errlen, UV_EINVAL, "%s is too large to be a key",
                      path);
  }
  return fd;
}

/* Loads a key (see keys.h). */
int fsc_key_load(const char *path, struct fsc_key *out, char *err,
                 size_t errlen) {
  char text[FSC_KEY_FILE_MAX + 1];
  struct stat st;
  size_t got = 0;
  int fd, r;

  memset(out, 0, sizeof(*out));
  fd = open_private(path, &st, err, errlen);
  if (fd < 0)
    return fd;
  while (got < sizeof(text) - 1) {
    ssize_t n = read(fd, text + got, sizeof(text) - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  text[got] = '\0';
  if (strstr(text, BEGIN) != NULL)
    r = decode_openssh(text, out, path, err, errlen);
  else
    r = decode_pem(text, got, out, path, err, errlen);
  OPENSSL_cleanse(text, got);
  return r;
}
