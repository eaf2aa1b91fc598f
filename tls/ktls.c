/* Whether the kernel could encrypt TLS records itself (kTLS), which is
 * what sendfile() over TLS needs; see fstls.h. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fstls_int.h"

/* Lists the TCP upper-layer protocols the kernel has loaded. */
#define ULP_FILE "/proc/sys/net/ipv4/tcp_available_ulp"

/* Whether a tcp_available_ulp text names "tls"; see fstls.h. */
int fstls_ulp_has_tls(const char *text) {
  const char *p = text;

  while (p != NULL && *p != '\0') {
    size_t n;
    p += strspn(p, " \t\n");
    n = strcspn(p, " \t\n");
    if (n == 3 && memcmp(p, "tls", 3) == 0)
      return 1;
    p += n;
  }
  return 0;
}

/* Probes the kernel; see fstls.h. */
int fstls_ktls_available(char *why, size_t whylen) {
  char text[256];
  ssize_t n;
  int fd = open(ULP_FILE, O_RDONLY | O_CLOEXEC);

  if (fd < 0) {
    fstls__why(why, whylen, "kernel TLS: cannot read %s", ULP_FILE);
    return 0;
  }
  n = read(fd, text, sizeof(text) - 1);
  close(fd);
  text[n > 0 ? n : 0] = '\0';
  if (!fstls_ulp_has_tls(text)) {
    text[strcspn(text, "\n")] = '\0';
    fstls__why(why, whylen,
               "kernel TLS: the kernel has no tls module (loaded: %s)",
               text[0] != '\0' ? text : "none");
    return 0;
  }
  fstls__why(why, whylen, "kernel TLS: the tls module is loaded");
  return 1;
}
