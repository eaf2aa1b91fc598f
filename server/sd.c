/* Socket activation and readiness notification; see sd.h. */
#include "sd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* Parses a decimal number without sign, spaces or leading junk, at most
 * max. Returns 0 or -1. */
static int parse_num(const char *s, long max, long *out) {
  long v = 0;

  if (*s == '\0')
    return -1;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    if (v > (max - (*s - '0')) / 10)
      return -1;
    v = v * 10 + (*s - '0');
  }
  *out = v;
  return 0;
}

int fsd_sd_listen_fds(const char *listen_pid, const char *listen_fds,
                      long self) {
  long pid, n;

  if (listen_pid == NULL || listen_fds == NULL)
    return 0;
  if (parse_num(listen_pid, 0x7fffffffL, &pid) != 0 || pid == 0)
    return UV_EINVAL;
  /* Meant for another process: its variables were inherited. */
  if (pid != self)
    return 0;
  if (parse_num(listen_fds, FSD_SD_LISTEN_FDS_MAX, &n) != 0)
    return UV_EINVAL;
  return (int)n;
}

int fsd_sd_check_listener(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int v;
  socklen_t vlen = sizeof(v);

  if (fcntl(fd, F_GETFD) < 0)
    return UV_EBADF;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return errno == ENOTSOCK ? UV_ENOTSOCK : uv_translate_sys_error(errno);
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
    return UV_EAFNOSUPPORT;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vlen) != 0 || v != SOCK_STREAM)
    return UV_EPROTOTYPE;
  vlen = sizeof(v);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vlen) != 0 || v == 0)
    return UV_EINVAL;
  return 0;
}

int fsd_sd_take_listener(int *fd, char *err, size_t errlen) {
  int n = fsd_sd_listen_fds(getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
                            (long)getpid());
  int r;

  *fd = -1;
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (n < 0) {
    snprintf(err, errlen, "LISTEN_PID or LISTEN_FDS is malformed");
    return n;
  }
  if (n == 0)
    return 0;
  if (n > 1) {
    snprintf(err, errlen,
             "the service manager passed %d sockets; fsd takes one "
             "(one ListenStream= in fsd.socket)",
             n);
    return UV_EINVAL;
  }
  r = fsd_sd_check_listener(FSD_SD_LISTEN_FDS_START);
  if (r != 0) {
    snprintf(err, errlen,
             "the passed socket (fd %d) is not a listening TCP socket: %s",
             FSD_SD_LISTEN_FDS_START, uv_strerror(r));
    return r;
  }
  (void)fcntl(FSD_SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
  *fd = FSD_SD_LISTEN_FDS_START;
  return 0;
}

int fsd_sd_notify_addr(const char *notify_socket, struct sockaddr_un *sa,
                       socklen_t *len) {
  size_t n = strlen(notify_socket);

  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (notify_socket[0] != '/' && notify_socket[0] != '@')
    return UV_EINVAL;
  if (n < 2 && notify_socket[0] == '@')
    return UV_EINVAL;
  /* A path needs room for its NUL; an abstract name has none. */
  if (n + (notify_socket[0] == '/') > sizeof(sa->sun_path))
    return UV_ENAMETOOLONG;
  memcpy(sa->sun_path, notify_socket, n);
  if (sa->sun_path[0] == '@')
    sa->sun_path[0] = '\0';
  /* The abstract name is exactly n bytes long: no trailing NUL counted. */
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                     (notify_socket[0] == '/'));
  return 0;
}

int fsd_sd_notify(const char *notify_socket, const char *state) {
  struct sockaddr_un sa;
  socklen_t len;
  ssize_t sent;
  int fd, r;

  if (notify_socket == NULL)
    return 0;
  r = fsd_sd_notify_addr(notify_socket, &sa, &len);
  if (r != 0)
    return r;
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  sent = sendto(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL,
                (const struct sockaddr *)&sa, len);
  r = sent < 0 ? uv_translate_sys_error(errno) : 0;
  close(fd);
  return r;
}
