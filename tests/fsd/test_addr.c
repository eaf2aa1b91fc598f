/* --listen address parsing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <uv.h>

#include "server.h"
#include "suites.h"

START_TEST(test_addr_ipv4_and_port) {
  struct sockaddr_storage ss;
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;

  ck_assert_int_eq(fsd_parse_listen("127.0.0.1:7878", &ss), 0);
  ck_assert_int_eq(ss.ss_family, AF_INET);
  ck_assert_int_eq(ntohs(in->sin_port), 7878);
  ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), 0x7f000001u);
  ck_assert_int_eq(fsd_parse_listen("0.0.0.0:0", &ss), 0);
  ck_assert_int_eq(ntohs(in->sin_port), 0);
  ck_assert_int_eq(fsd_parse_listen("localhost:80", &ss), 0);
  ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), 0x7f000001u);
}
END_TEST

START_TEST(test_addr_ipv6_literal) {
  struct sockaddr_storage ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

  ck_assert_int_eq(fsd_parse_listen("[::1]:7878", &ss), 0);
  ck_assert_int_eq(ss.ss_family, AF_INET6);
  ck_assert_int_eq(ntohs(in6->sin6_port), 7878);
  ck_assert_int_eq(in6->sin6_addr.s6_addr[15], 1);
}
END_TEST

START_TEST(test_addr_rejects_nonsense) {
  static const char *const bad[] = {"",
                                    "7878",
                                    "127.0.0.1",
                                    "127.0.0.1:",
                                    ":7878",
                                    "127.0.0.1:65536",
                                    "127.0.0.1:-1",
                                    "127.0.0.1:78x",
                                    "::1:7878",
                                    "[::1]7878",
                                    "[]:1",
                                    "example.com:1",
                                    "1.2.3:4",
                                    "[::1:7878"};
  struct sockaddr_storage ss;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(fsd_parse_listen(bad[i], &ss) == UV_EINVAL, "accepted %s",
                  bad[i]);
}
END_TEST

Suite *addr_suite(void) {
  Suite *s = suite_create("addr");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_addr_ipv4_and_port);
  tcase_add_test(tc, test_addr_ipv6_literal);
  tcase_add_test(tc, test_addr_rejects_nonsense);
  suite_add_tcase(s, tc);
  return s;
}
