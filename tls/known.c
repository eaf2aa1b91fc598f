/* The client's known_servers file: one "host:port SHA256:..." line per
 * server, as ssh's known_hosts. The parser is pure so that tests can feed
 * it hostile text; reading and appending are separate. See fstls.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fstls_int.h"

/* Whether c may appear in a key: printable, no blank, no comment mark. */
static int key_char_ok(unsigned char c) {
  return c > 0x20 && c != 0x7f && c != '#';
}

/* Writes a server's key; see fstls.h. */
int fstls_known_key(const char *host, unsigned port, char *buf, size_t len) {
  char low[256];
  size_t i, n = host != NULL ? strlen(host) : 0;
  int v6, w;

  if (n == 0 || n >= sizeof(low) || port > 65535)
    return FSTLS_EINVAL;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)host[i];
    if (!key_char_ok(c) || c == '[' || c == ']')
      return FSTLS_EINVAL;
    low[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  low[n] = '\0';
  v6 = strchr(low, ':') != NULL;
  w = snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", low, port);
  return w > 0 && (size_t)w < len ? w : FSTLS_EINVAL;
}

/* Whether c separates fields. */
static int blank(char c) {
  return c == ' ' || c == '\t';
}

/* Parses one line (no newline) into a hit when it names key. Returns 1 on a
 * match, 0 for any other line, well-formed or not. */
static int match_line(const char *p, size_t n, const char *key, size_t keylen,
                      struct fstls_known_hit *hit) {
  char fp[FSTLS_FP_SIZE + 1];
  size_t i = 0, k0, kl, f0, fl;

  if (n > FSTLS_KNOWN_LINE_MAX || memchr(p, '\0', n) != NULL)
    return 0;
  if (n > 0 && p[n - 1] == '\r')
    n--;
  while (i < n && blank(p[i]))
    i++;
  if (i == n || p[i] == '#')
    return 0;
  k0 = i;
  while (i < n && !blank(p[i]))
    i++;
  kl = i - k0;
  while (i < n && blank(p[i]))
    i++;
  f0 = i;
  while (i < n && !blank(p[i]))
    i++;
  fl = i - f0;
  while (i < n && blank(p[i]))
    i++;
  /* Exactly two fields; a third is an error, not a comment, so that a line
   * cannot look like it says more than it does. */
  if (i != n || fl == 0 || fl > FSTLS_FP_SIZE)
    return 0;
  if (kl != keylen || memcmp(p + k0, key, keylen) != 0)
    return 0;
  memcpy(fp, p + f0, fl);
  fp[fl] = '\0';
  if (fstls_fp_parse(fp, hit->hash) != 0)
    return 0;
  fstls_fp_format(hit->hash, hit->fp);
  return 1;
}

/* Looks a server up; see fstls.h. */
int fstls_known_lookup(const char *buf, size_t len, const char *key,
                       struct fstls_known_hit *hit) {
  size_t keylen = key != NULL ? strlen(key) : 0;
  size_t pos = 0;
  unsigned line = 0;

  if (keylen == 0 || (buf == NULL && len != 0))
    return FSTLS_EINVAL;
  while (pos < len) {
    const char *nl = memchr(buf + pos, '\n', len - pos);
    size_t n = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;

    line++;
    if (match_line(buf + pos, n, key, keylen, hit)) {
      hit->line = line;
      return 0;
    }
    pos += n + (nl != NULL);
  }
  return FSTLS_ENOTFOUND;
}

/* The file's default path; see fstls.h. */
int fstls_known_path(char *buf, size_t len) {
  const char *s = getenv("XDG_CONFIG_HOME");
  int n;

  if (s != NULL && s[0] == '/')
    n = snprintf(buf, len, "%s/fsc/known_servers", s);
  else if ((s = getenv("HOME")) != NULL && s[0] != '\0')
    n = snprintf(buf, len, "%s/.config/fsc/known_servers", s);
  else
    return FSTLS_EINVAL;
  return n > 0 && (size_t)n < len ? 0 : FSTLS_EINVAL;
}

/* Reads the whole file; see fstls.h. */
int fstls_known_read(const char *path, char **out, size_t *outlen, char *why,
                     size_t whylen) {
  size_t cap = 4096, len = 0;
  char *buf;
  int fd;

  *out = NULL;
  *outlen = 0;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    fstls__why(why, whylen, "%s: %s", path, strerror(errno));
    return FSTLS_EIO;
  }
  buf = malloc(cap);
  while (buf != NULL) {
    ssize_t r;
    if (len == cap) {
      char *nb = cap >= FSTLS_KNOWN_FILE_MAX ? NULL : realloc(buf, cap * 2);
      if (nb == NULL) {
        fstls__why(why, whylen, "%s: larger than %d bytes", path,
                   FSTLS_KNOWN_FILE_MAX);
        free(buf);
        close(fd);
        return cap >= FSTLS_KNOWN_FILE_MAX ? FSTLS_EIO : FSTLS_ENOMEM;
      }
      buf = nb;
      cap *= 2;
    }
    r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      fstls__why(why, whylen, "%s: %s", path, strerror(errno));
      free(buf);
      close(fd);
      return FSTLS_EIO;
    }
    if (r == 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  if (buf == NULL)
    return FSTLS_ENOMEM;
  *out = buf;
  *outlen = len;
  return 0;
}

/* Creates the directory that will hold path. */
static int make_parent(const char *path, char *why, size_t whylen) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  size_t n = slash != NULL ? (size_t)(slash - path) : 0;

  if (n == 0)
    return 0;
  if (n >= sizeof(dir))
    return FSTLS_EINVAL;
  memcpy(dir, path, n);
  dir[n] = '\0';
  return fstls__mkdirs(dir, why, whylen);
}

/* Appends one line; see fstls.h. */
int fstls_known_append(const char *path, const char *key, const char *fp,
                       unsigned *line, char *why, size_t whylen) {
  char text[FSTLS_KNOWN_LINE_MAX + 2];
  uint8_t hash[FSTLS_HASH_LEN];
  char *old = NULL;
  size_t oldlen = 0, i, kl = key != NULL ? strlen(key) : 0;
  unsigned lines = 0;
  int rc, fd, n, need_nl;
  ssize_t w;

  if (kl == 0 || fstls_fp_parse(fp, hash) != 0)
    return FSTLS_EINVAL;
  for (i = 0; i < kl; i++)
    if (!key_char_ok((unsigned char)key[i]))
      return FSTLS_EINVAL;
  rc = make_parent(path, why, whylen);
  if (rc == 0)
    rc = fstls_known_read(path, &old, &oldlen, why, whylen);
  if (rc != 0)
    return rc;
  for (i = 0; i < oldlen; i++)
    lines += old[i] == '\n';
  need_nl = oldlen > 0 && old[oldlen - 1] != '\n';
  free(old);
  n = snprintf(text, sizeof(text), "%s%s %s\n", need_nl ? "\n" : "", key, fp);
  if (n <= 0 || (size_t)n >= sizeof(text))
    return FSTLS_EINVAL;
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    fstls__why(why, whylen, "cannot open %s: %s", path, strerror(errno));
    return FSTLS_EIO;
  }
  /* One write with O_APPEND, so two clients appending at once do not
   * interleave their lines. */
  w = write(fd, text, (size_t)n);
  if (w != n) {
    fstls__why(why, whylen, "cannot write %s: %s", path,
               w < 0 ? strerror(errno) : "short write");
    close(fd);
    return FSTLS_EIO;
  }
  if (close(fd) != 0) {
    fstls__why(why, whylen, "cannot write %s: %s", path, strerror(errno));
    return FSTLS_EIO;
  }
  if (line != NULL)
    *line = lines + (unsigned)need_nl + 1;
  return 0;
}
