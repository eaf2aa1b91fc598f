/* How fsc decides to trust a server, as ssh does: a pin from the command
 * line, else the line of known_servers that names the server, else a CA
 * file, else trust on first use (and record the key). This file holds the
 * decision and the messages; the check itself runs inside the handshake
 * (ctx.c), so a refused server never sees a request. See fstls.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fstls_int.h"

/* Decides how the server will be trusted; see fstls.h. */
int fstls_trust_init(struct fstls_trust *t, const char *host, unsigned port,
                     const char *pin, const char *known_path, int use_ca,
                     char *why, size_t whylen) {
  struct fstls_known_hit hit;
  char *text = NULL;
  size_t len = 0;
  int rc;

  memset(t, 0, sizeof(*t));
  if (fstls_known_key(host, port, t->key, sizeof(t->key)) < 0) {
    fstls__why(why, whylen, "%s: not a host name or address", host);
    return FSTLS_EINVAL;
  }
  if (pin != NULL) {
    if (fstls_fp_parse(pin, t->pin) != 0) {
      fstls__why(why, whylen,
                 "--pin needs SHA256: and 43 base64 characters,"
                 " as fsd --fingerprint prints");
      return FSTLS_EINVAL;
    }
    t->mode = FSTLS_TRUST_PIN;
    return 0;
  }
  if (use_ca) {
    t->mode = FSTLS_TRUST_CA;
    return 0;
  }
  if (known_path != NULL)
    rc = snprintf(t->path, sizeof(t->path), "%s", known_path) <
                 (int)sizeof(t->path)
             ? 0
             : FSTLS_EINVAL;
  else
    rc = fstls_known_path(t->path, sizeof(t->path));
  if (rc != 0) {
    fstls__why(why, whylen, "cannot tell where known_servers is (set HOME)");
    return rc;
  }
  rc = fstls_known_read(t->path, &text, &len, why, whylen);
  if (rc != 0)
    return rc;
  rc = fstls_known_lookup(text, len, t->key, &hit);
  free(text);
  if (rc == 0) {
    t->mode = FSTLS_TRUST_KNOWN;
    t->line = hit.line;
    memcpy(t->pin, hit.hash, FSTLS_HASH_LEN);
  } else {
    t->mode = FSTLS_TRUST_NEW;
  }
  return 0;
}

/* The pin the handshake must see; see fstls.h. */
const uint8_t *fstls_trust_pin(const struct fstls_trust *t) {
  return t->mode == FSTLS_TRUST_PIN || t->mode == FSTLS_TRUST_KNOWN ? t->pin
                                                                    : NULL;
}

/* Records a server met for the first time; see fstls.h. */
int fstls_trust_done(struct fstls_trust *t, const struct fstls_engine *e,
                     char *note, size_t notelen) {
  char fp[FSTLS_FP_SIZE];
  unsigned line = 0;
  int rc;

  if (note != NULL && notelen > 0)
    note[0] = '\0';
  if (t->mode != FSTLS_TRUST_NEW)
    return 0;
  if (fstls_engine_peer_fp(e, fp) != 0)
    return FSTLS_ESTATE;
  rc = fstls_known_append(t->path, t->key, fp, &line, note, notelen);
  if (rc != 0)
    return rc;
  t->mode = FSTLS_TRUST_KNOWN;
  t->line = line;
  fstls_fp_parse(fp, t->pin);
  fstls__why(note, notelen,
             "first connection to %s: its key %s is now trusted "
             "(line %u of %s)",
             t->key, fp, line, t->path);
  return 0;
}

/* Explains a failed handshake; see fstls.h. */
void fstls_trust_failure(const struct fstls_trust *t,
                         const struct fstls_engine *e, int rc, char *msg,
                         size_t len) {
  char seen[FSTLS_FP_SIZE], want[FSTLS_FP_SIZE];

  if (fstls_engine_peer_fp(e, seen) != 0)
    strcpy(seen, "unknown");
  fstls_fp_format(t->pin, want);
  if (rc == FSTLS_EPIN && t->mode == FSTLS_TRUST_KNOWN)
    fstls__why(msg, len,
               "the key of %s changed: it is %s, %s recorded %s; if the "
               "change is expected, remove line %u of %s",
               t->key, seen, t->path, want, t->line, t->path);
  else if (rc == FSTLS_EPIN)
    fstls__why(msg, len, "the key of %s is %s, not the pinned %s", t->key, seen,
               want);
  else if (rc == FSTLS_ECERT)
    fstls__why(msg, len, "the certificate of %s is not trusted: %s", t->key,
               fstls_engine_why(e));
  else
    fstls__why(msg, len, "TLS with %s failed: %s (%s)", t->key,
               fstls_strerror(rc), fstls_engine_why(e));
}
