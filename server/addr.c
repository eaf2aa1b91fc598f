/* Listen address parsing and formatting; see addr.h. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "addr.h"

/* Parses a listen address; see addr.h. */
int fsd_parse_listen(const char *s, struct sockaddr_storage *out) {
  char host[64];
  const char *colon, *port_s;
  char *end;
  unsigned long port;
  size_t hl;

  memset(out, 0, sizeof(*out));
  if (s[0] == '[') {
    const char *close_br = strchr(s, ']');
    if (close_br == NULL || close_br[1] != ':')
      return UV_EINVAL;
    hl = (size_t)(close_br - s - 1);
    if (hl == 0 || hl >= sizeof(host))
      return UV_EINVAL;
    memcpy(host, s + 1, hl);
    host[hl] = '\0';
    port_s = close_br + 2;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL || strchr(s, ':') != colon)
      return UV_EINVAL;
    hl = (size_t)(colon - s);
    if (hl == 0 || hl >= sizeof(host))
      return UV_EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    port_s = colon + 1;
  }
  if (*port_s < '0' || *port_s > '9')
    return UV_EINVAL;
  errno = 0;
  port = strtoul(port_s, &end, 10);
  if (errno != 0 || *end != '\0' || port > 65535)
    return UV_EINVAL;
  if (s[0] == '[')
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0
               ? 0
               : UV_EINVAL;
  if (strcmp(host, "localhost") == 0)
    strcpy(host, "127.0.0.1");
  return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0
             ? 0
             : UV_EINVAL;
}

/* Formats an address; see addr.h. */
char *fsd_addr_format(const struct sockaddr_storage *sa, char *out,
                      size_t len) {
  char ip[FSD_ADDR_STRLEN] = "?";
  int port = 0;

  if (sa->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, ip, sizeof(ip));
    port = ntohs(a->sin6_port);
    snprintf(out, len, "[%s]:%d", ip, port);
    return out;
  }
  if (sa->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof(ip));
    port = ntohs(a->sin_port);
  }
  snprintf(out, len, "%s:%d", ip, port);
  return out;
}
