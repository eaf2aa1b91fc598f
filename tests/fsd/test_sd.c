/* Socket activation and readiness notification (server/sd.c), against real
 * sockets: a listening TCP socket on loopback, datagram sockets in a
 * temporary folder and in the abstract namespace. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "sd.h"
#include "suites.h"

START_TEST(test_sd_listen_fds_for_us) {
  ck_assert_int_eq(fsd_sd_listen_fds("4242", "1", 4242), 1);
  ck_assert_int_eq(fsd_sd_listen_fds("4242", "3", 4242), 3);
  ck_assert_int_eq(fsd_sd_listen_fds("4242", "0", 4242), 0);
  ck_assert_int_eq(fsd_sd_listen_fds("4242", "1024", 4242), 1024);
}
END_TEST

START_TEST(test_sd_listen_fds_not_for_us) {
  /* Unset, or inherited from a parent that was socket-activated. */
  ck_assert_int_eq(fsd_sd_listen_fds(NULL, NULL, 4242), 0);
  ck_assert_int_eq(fsd_sd_listen_fds(NULL, "1", 4242), 0);
  ck_assert_int_eq(fsd_sd_listen_fds("4242", NULL, 4242), 0);
  ck_assert_int_eq(fsd_sd_listen_fds("4241", "1", 4242), 0);
  /* Another process's value is not looked at. */
  ck_assert_int_eq(fsd_sd_listen_fds("4241", "junk", 4242), 0);
}
END_TEST

START_TEST(test_sd_listen_fds_malformed) {
  static const char *const bad_pid[] = {
      "", "0", "-4242", "+4242", " 4242", "4242 ", "42x", "99999999999"};
  static const char *const bad_fds[] = {
      "", "-1", "+1", " 1", "1 ", "0x1", "1025", "99999999999999999999"};

  for (size_t i = 0; i < sizeof(bad_pid) / sizeof(bad_pid[0]); i++)
    ck_assert_msg(fsd_sd_listen_fds(bad_pid[i], "1", 4242) == UV_EINVAL,
                  "LISTEN_PID '%s' accepted", bad_pid[i]);
  for (size_t i = 0; i < sizeof(bad_fds) / sizeof(bad_fds[0]); i++)
    ck_assert_msg(fsd_sd_listen_fds("4242", bad_fds[i], 4242) == UV_EINVAL,
                  "LISTEN_FDS '%s' accepted", bad_fds[i]);
}
END_TEST

START_TEST(test_sd_notify_addr_path_and_abstract) {
  struct sockaddr_un sa;
  socklen_t len;

  ck_assert_int_eq(fsd_sd_notify_addr("/run/systemd/notify", &sa, &len), 0);
  ck_assert_int_eq(sa.sun_family, AF_UNIX);
  ck_assert_str_eq(sa.sun_path, "/run/systemd/notify");
  ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 20);

  /* "@name": a NUL first, and the length counts the name's bytes only. */
  ck_assert_int_eq(fsd_sd_notify_addr("@fsd/x", &sa, &len), 0);
  ck_assert_int_eq(sa.sun_path[0], '\0');
  ck_assert_int_eq(memcmp(sa.sun_path + 1, "fsd/x", 5), 0);
  ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 6);
}
END_TEST

START_TEST(test_sd_notify_addr_rejects) {
  struct sockaddr_un sa;
  socklen_t len;
  char longest[sizeof(sa.sun_path) + 2];

  ck_assert_int_eq(fsd_sd_notify_addr("", &sa, &len), UV_EINVAL);
  ck_assert_int_eq(fsd_sd_notify_addr("@", &sa, &len), UV_EINVAL);
  ck_assert_int_eq(fsd_sd_notify_addr("run/notify", &sa, &len), UV_EINVAL);

  /* A path fills sun_path with its NUL; an abstract name needs no NUL. */
  memset(longest, 'a', sizeof(longest));
  longest[0] = '/';
  longest[sizeof(sa.sun_path) - 1] = '\0';
  ck_assert_int_eq(fsd_sd_notify_addr(longest, &sa, &len), 0);
  longest[sizeof(sa.sun_path) - 1] = 'a';
  longest[sizeof(sa.sun_path)] = '\0';
  ck_assert_int_eq(fsd_sd_notify_addr(longest, &sa, &len), UV_ENAMETOOLONG);
  longest[0] = '@';
  ck_assert_int_eq(fsd_sd_notify_addr(longest, &sa, &len), 0);
  ck_assert_uint_eq(len, sizeof(sa));
  longest[sizeof(sa.sun_path)] = 'a';
  longest[sizeof(sa.sun_path) + 1] = '\0';
  ck_assert_int_eq(fsd_sd_notify_addr(longest, &sa, &len), UV_ENAMETOOLONG);
}
END_TEST

/* Binds a datagram socket at name (a path, or "@abstract"). */
static int bind_dgram(const char *name) {
  struct sockaddr_un sa;
  socklen_t len;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(fsd_sd_notify_addr(name, &sa, &len), 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
  return fd;
}

static void expect_datagram(int fd, const char *want) {
  char buf[256];
  ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  ck_assert_str_eq(buf, want);
}

START_TEST(test_sd_notify_sends_one_datagram) {
  char dir[] = "/tmp/fsd-sd-XXXXXX";
  char path[64];
  int fd;

  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/notify", dir);
  fd = bind_dgram(path);
  ck_assert_int_eq(fsd_sd_notify(path, "READY=1"), 0);
  ck_assert_int_eq(fsd_sd_notify(path, "STATUS=serving 2 files\nREADY=1"), 0);
  expect_datagram(fd, "READY=1");
  expect_datagram(fd, "STATUS=serving 2 files\nREADY=1");
  close(fd);
  unlink(path);
  /* Nobody listens any more: an error to log, not a crash or a wait. */
  ck_assert_int_eq(fsd_sd_notify(path, "READY=1"), UV_ENOENT);
  rmdir(dir);
}
END_TEST

START_TEST(test_sd_notify_abstract) {
  char name[64];
  int fd;

  snprintf(name, sizeof(name), "@fsd-sd-test-%ld", (long)getpid());
  fd = bind_dgram(name);
  ck_assert_int_eq(fsd_sd_notify(name, "STOPPING=1"), 0);
  expect_datagram(fd, "STOPPING=1");
  close(fd);
}
END_TEST

START_TEST(test_sd_notify_without_systemd) {
  ck_assert_int_eq(fsd_sd_notify(NULL, "READY=1"), 0);
  ck_assert_int_eq(fsd_sd_notify("relative", "READY=1"), UV_EINVAL);
}
END_TEST

static int tcp_socket(int listening) {
  struct sockaddr_in in;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  ck_assert_int_ge(fd, 0);
  memset(&in, 0, sizeof(in));
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
  if (listening)
    ck_assert_int_eq(listen(fd, 8), 0);
  return fd;
}

START_TEST(test_sd_check_listener) {
  int fd = tcp_socket(1), idle = tcp_socket(0), pipefd[2], udp, ux;

  ck_assert_int_eq(fsd_sd_check_listener(fd), 0);
  ck_assert_int_eq(fsd_sd_check_listener(idle), UV_EINVAL);
  udp = socket(AF_INET, SOCK_DGRAM, 0);
  ck_assert_int_eq(fsd_sd_check_listener(udp), UV_EPROTOTYPE);
  ux = socket(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_eq(fsd_sd_check_listener(ux), UV_EAFNOSUPPORT);
  ck_assert_int_eq(pipe(pipefd), 0);
  ck_assert_int_eq(fsd_sd_check_listener(pipefd[0]), UV_ENOTSOCK);
  close(pipefd[0]);
  ck_assert_int_eq(fsd_sd_check_listener(pipefd[0]), UV_EBADF);
  close(pipefd[1]);
  close(ux);
  close(udp);
  close(idle);
  close(fd);
}
END_TEST

/* Runs fsd_sd_take_listener() with sock (or nothing, when -1) at fd 3 and
 * LISTEN_PID/LISTEN_FDS set as given ("self": this process). Check itself
 * may use fd 3 (its pipe to the runner), so nothing is asserted until fd 3
 * is restored. Returns the result; *fd and err as the function left them. */
static int take(int sock, const char *pid, const char *nfds, int *fd, char *err,
                size_t errlen) {
  char self[32];
  int saved = dup(3), moved = 1, r, leaked;

  snprintf(self, sizeof(self), "%ld", (long)getpid());
  if (sock >= 0)
    moved = dup2(sock, 3) == 3;
  if (pid != NULL)
    setenv("LISTEN_PID", strcmp(pid, "self") == 0 ? self : pid, 1);
  if (nfds != NULL)
    setenv("LISTEN_FDS", nfds, 1);
  setenv("LISTEN_FDNAMES", "fsd.socket", 1);
  err[0] = '\0';
  r = fsd_sd_take_listener(fd, err, errlen);
  /* Whatever happened, no child of fsd may see them. */
  leaked = getenv("LISTEN_PID") != NULL || getenv("LISTEN_FDS") != NULL ||
           getenv("LISTEN_FDNAMES") != NULL;
  if (saved >= 0) {
    dup2(saved, 3);
    close(saved);
  } else {
    close(3);
  }
  ck_assert(moved);
  ck_assert_msg(!leaked, "LISTEN_* left in the environment");
  return r;
}

START_TEST(test_sd_take_listener) {
  int lst = tcp_socket(1), udp = socket(AF_INET, SOCK_DGRAM, 0), fd = 0;
  char err[200];

  /* Not socket-activated: bind --listen as usual. */
  ck_assert_int_eq(take(-1, NULL, NULL, &fd, err, sizeof(err)), 0);
  ck_assert_int_eq(fd, -1);
  ck_assert_int_eq(take(lst, "1", "1", &fd, err, sizeof(err)), 0);
  ck_assert_int_eq(fd, -1);

  ck_assert_int_eq(take(lst, "self", "1", &fd, err, sizeof(err)), 0);
  ck_assert_int_eq(fd, 3);

  ck_assert_int_eq(take(lst, "self", "2", &fd, err, sizeof(err)), UV_EINVAL);
  ck_assert_int_eq(fd, -1);
  ck_assert_ptr_nonnull(strstr(err, "2 sockets"));

  ck_assert_int_eq(take(udp, "self", "1", &fd, err, sizeof(err)),
                   UV_EPROTOTYPE);
  ck_assert_ptr_nonnull(strstr(err, "fd 3"));

  ck_assert_int_eq(take(lst, "self", "x", &fd, err, sizeof(err)), UV_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "malformed"));
  close(udp);
  close(lst);
}
END_TEST

Suite *sd_suite(void) {
  Suite *s = suite_create("sd");
  TCase *tc = tcase_create("sd");

  tcase_add_test(tc, test_sd_listen_fds_for_us);
  tcase_add_test(tc, test_sd_listen_fds_not_for_us);
  tcase_add_test(tc, test_sd_listen_fds_malformed);
  tcase_add_test(tc, test_sd_notify_addr_path_and_abstract);
  tcase_add_test(tc, test_sd_notify_addr_rejects);
  tcase_add_test(tc, test_sd_notify_sends_one_datagram);
  tcase_add_test(tc, test_sd_notify_abstract);
  tcase_add_test(tc, test_sd_notify_without_systemd);
  tcase_add_test(tc, test_sd_check_listener);
  tcase_add_test(tc, test_sd_take_listener);
  suite_add_tcase(s, tc);
  return s;
}
