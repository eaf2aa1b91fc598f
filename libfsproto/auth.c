/* User names and the bytes an AUTH signature covers (protocol.md section
 * 10). Pure functions: the signing and verifying themselves happen in fsc
 * and fsd, with OpenSSL, so this library stays free of crypto. */
#include <string.h>

#include "fsp_int.h"

static int user_char(uint8_t c, int first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9') || c == '_')
    return 1;
  /* A leading '-' would read as an option on a command line, a leading
   * '.' as a hidden file; neither can start a name. */
  return !first && (c == '.' || c == '-');
}

/* Checks a user name; see fsproto.h. The alphabet is small on purpose: a
 * user name lands in log lines and in the users file unescaped. */
int fsp_user_check(const void *user, size_t len) {
  const uint8_t *p = user;

  if (len == 0 || len > FSP_USER_MAX || p == NULL)
    return FSP_EBADUSER;
  for (size_t i = 0; i < len; i++)
    if (!user_char(p[i], i == 0))
      return FSP_EBADUSER;
  return 0;
}

/* Builds the transcript; see fsproto.h. Each variable field carries its
 * length, so no two different (user, binding) pairs give the same bytes. */
ssize_t fsp_auth_transcript(uint8_t *buf, size_t cap,
                            const uint8_t *server_nonce,
                            const uint8_t *client_nonce, const char *user,
                            size_t user_len, const uint8_t *binding,
                            size_t binding_len) {
  size_t n;
  uint8_t *p;

  if (server_nonce == NULL || client_nonce == NULL ||
      binding_len > FSP_BINDING_MAX || (binding_len > 0 && binding == NULL))
    return FSP_EINVAL;
  if (fsp_user_check(user, user_len) != 0)
    return FSP_EBADUSER;
  n = FSP_AUTH_CONTEXT_LEN + 2 * FSP_NONCE_LEN + 1 + user_len + 1 + binding_len;
  if (cap < n || buf == NULL)
    return (ssize_t)n;
  p = buf;
  memcpy(p, FSP_AUTH_CONTEXT, FSP_AUTH_CONTEXT_LEN); /* with its NUL */
  p += FSP_AUTH_CONTEXT_LEN;
  memcpy(p, server_nonce, FSP_NONCE_LEN);
  p += FSP_NONCE_LEN;
  memcpy(p, client_nonce, FSP_NONCE_LEN);
  p += FSP_NONCE_LEN;
  *p++ = (uint8_t)user_len;
  memcpy(p, user, user_len);
  p += user_len;
  *p++ = (uint8_t)binding_len;
  if (binding_len > 0)
    memcpy(p, binding, binding_len);
  return (ssize_t)n;
}
