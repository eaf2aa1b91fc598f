/* fsd's own key pair and self-signed certificate, and key file checks; see
 * fstls.h. Blocking file I/O: fsd calls these at start, before its loop
 * runs, or from a worker thread. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "fstls_int.h"

/* A self-signed certificate is only a carrier for the key, which clients
 * pin; its dates matter only to clients that check them anyway, so it is
 * long-lived, and starts an hour back to survive small clock skews. */
#define CERT_DAYS (20 * 365)
#define CERT_BACKDATE_SECONDS 3600L

/* The default state directory; see fstls.h. */
int fstls_state_dir_default(char *buf, size_t len) {
  const char *s = getenv("STATE_DIRECTORY");
  int n;

  if (s != NULL && s[0] != '\0') {
    /* systemd lists one directory per StateDirectory= entry, ':'-separated. */
    size_t first = strcspn(s, ":");
    n = snprintf(buf, len, "%.*s", (int)first, s);
  } else if ((s = getenv("XDG_STATE_HOME")) != NULL && s[0] == '/') {
    n = snprintf(buf, len, "%s/fsd", s);
  } else if ((s = getenv("HOME")) != NULL && s[0] != '\0') {
    n = snprintf(buf, len, "%s/.local/state/fsd", s);
  } else {
    return FSTLS_EINVAL;
  }
  return n > 0 && (size_t)n < len ? 0 : FSTLS_EINVAL;
}

/* Checks a key file's owner and mode; see fstls.h. */
int fstls_key_fd_check(int fd, const char *path, char *why, size_t whylen) {
  struct stat st;

  if (fstat(fd, &st) != 0) {
    fstls__why(why, whylen, "%s: %s", path, strerror(errno));
    return FSTLS_EIO;
  }
  if (!S_ISREG(st.st_mode)) {
    fstls__why(why, whylen, "%s: not a regular file", path);
    return FSTLS_EKEYPERM;
  }
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    fstls__why(why, whylen,
               "%s: private key owned by uid %u, not by this user or root",
               path, (unsigned)st.st_uid);
    return FSTLS_EKEYPERM;
  }
  if ((st.st_mode & 077) != 0) {
    fstls__why(why, whylen,
               "%s: private key has mode %04o, others may read it; "
               "run: chmod 600 %s",
               path, (unsigned)(st.st_mode & 07777), path);
    return FSTLS_EKEYPERM;
  }
  return 0;
}

/* Creates every missing directory of path; see fstls_int.h. */
int fstls__mkdirs(const char *path, char *why, size_t whylen) {
  char tmp[PATH_MAX];
  size_t i, n = strlen(path);

  if (n == 0 || n >= sizeof(tmp))
    return FSTLS_EINVAL;
  memcpy(tmp, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (tmp[i] != '/' && tmp[i] != '\0')
      continue;
    tmp[i] = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
      fstls__why(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
      return FSTLS_EIO;
    }
    tmp[i] = path[i];
  }
  return 0;
}

/* Writes a PEM object to path through path.tmp (mode 0600) and rename(),
 * so readers see the old file or the whole new one. */
static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, char *why,
                     size_t whylen) {
  char tmp[PATH_MAX + 8];
  FILE *f;
  int fd, ok;

  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  unlink(tmp); /* left over by a crash */
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
    fstls__why(why, whylen, "cannot create %s: %s", tmp, strerror(errno));
    if (fd >= 0)
      close(fd);
    return FSTLS_EIO;
  }
  ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                   : PEM_write_X509(f, cert);
  ok = ok == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (fclose(f) != 0)
    ok = 0;
  if (!ok || rename(tmp, path) != 0) {
    fstls__why(why, whylen, "cannot write %s: %s", path, strerror(errno));
    ERR_clear_error();
    unlink(tmp);
    return FSTLS_EIO;
  }
  return 0;
}

/* Makes a self-signed certificate for key, named after the host. */
static X509 *self_signed(EVP_PKEY *key) {
  X509 *x = X509_new();
  X509_NAME *name = X509_NAME_new();
  unsigned char serial[16];
  BIGNUM *bn = NULL;
  char host[256] = "fsd";
  int ok;

  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
    strcpy(host, "fsd");
  host[sizeof(host) - 1] = '\0';
  /* A positive random 127-bit serial, as RFC 5280 asks of CAs. */
  ok = x != NULL && name != NULL && RAND_bytes(serial, sizeof(serial)) == 1;
  if (ok) {
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
  }
  ok =
      ok && bn != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
      BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 (const unsigned char *)host, -1, -1, 0) == 1 &&
      X509_set_subject_name(x, name) == 1 &&
      X509_set_issuer_name(x, name) == 1 &&
      X509_gmtime_adj(X509_getm_notBefore(x), -CERT_BACKDATE_SECONDS) != NULL &&
      X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) != NULL &&
      X509_set_pubkey(x, key) == 1 && X509_sign(x, key, EVP_sha256()) > 0;
  BN_free(bn);
  X509_NAME_free(name);
  if (!ok) {
    X509_free(x);
    ERR_clear_error();
    return NULL;
  }
  return x;
}

/* Opens, checks and reads an existing key; *pkey NULL when there is none. */
static int open_key(const char *path, EVP_PKEY **pkey, char *why,
                    size_t whylen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

  *pkey = NULL;
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    fstls__why(why, whylen, "%s: %s", path, strerror(errno));
    return FSTLS_EIO;
  }
  rc = fstls_key_fd_check(fd, path, why, whylen);
  if (rc == 0 && (*pkey = fstls__read_key_fd(fd)) == NULL) {
    fstls__why(why, whylen, "%s: not a PEM private key (%s)", path,
               fstls__ssl_reason("unreadable"));
    rc = FSTLS_EKEY;
  }
  close(fd);
  return rc;
}

/* Whether the certificate at path exists and carries key. */
static int cert_matches(const char *path, EVP_PKEY *key) {
  FILE *f = fopen(path, "re");
  X509 *x;
  int ok;

  if (f == NULL)
    return 0;
  x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  ok = x != NULL && X509_check_private_key(x, key) == 1;
  X509_free(x);
  ERR_clear_error();
  return ok;
}

/* Makes sure the state directory holds a key and certificate; see fstls.h. */
int fstls_keys_ensure(const char *dir, char *key_path, char *cert_path,
                      char *why, size_t whylen) {
  EVP_PKEY *key = NULL;
  X509 *cert = NULL;
  int rc, created = 0;

  if (snprintf(key_path, PATH_MAX, "%s/%s", dir, FSTLS_KEY_NAME) >= PATH_MAX ||
      snprintf(cert_path, PATH_MAX, "%s/%s", dir, FSTLS_CERT_NAME) >=
          PATH_MAX) {
    fstls__why(why, whylen, "state directory name too long");
    return FSTLS_EINVAL;
  }
  rc = fstls__mkdirs(dir, why, whylen);
  if (rc == 0)
    rc = open_key(key_path, &key, why, whylen);
  if (rc == 0 && key == NULL) {
    key = EVP_EC_gen("P-256");
    if (key == NULL) {
      fstls__why(why, whylen, "cannot generate a key (%s)",
                 fstls__ssl_reason("out of memory"));
      return FSTLS_ENOMEM;
    }
    rc = write_pem(key_path, key, NULL, why, whylen);
    created = 1;
  }
  if (rc == 0 && (created || !cert_matches(cert_path, key))) {
    cert = self_signed(key);
    rc = cert != NULL ? write_pem(cert_path, NULL, cert, why, whylen)
                      : FSTLS_ENOMEM;
    if (cert == NULL)
      fstls__why(why, whylen, "cannot make a self-signed certificate");
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return rc != 0 ? rc : created;
}
