/* Connections per client address (server/peers.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "peers.h"
#include "suites.h"

static struct sockaddr_storage v4(const char *ip, int port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss);
  return ss;
}

static struct sockaddr_storage v6(const char *ip, int port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss);
  return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

START_TEST(test_peers_counts_per_address) {
  struct fsd_peers p;
  struct sockaddr_storage a1 = v4("10.0.0.1", 1000), a2 = v4("10.0.0.1", 2000);
  struct sockaddr_storage b = v4("10.0.0.2", 1000);

  fsd_peers_init(&p, 42);
  /* The port does not matter: one address, two connections. */
  ck_assert_int_eq(fsd_peers_add(&p, SA(a1)), 1);
  ck_assert_int_eq(fsd_peers_add(&p, SA(a2)), 2);
  ck_assert_int_eq(fsd_peers_add(&p, SA(b)), 1);
  ck_assert_uint_eq(fsd_peers_count(&p, SA(a1)), 2);
  fsd_peers_remove(&p, SA(a1));
  ck_assert_uint_eq(fsd_peers_count(&p, SA(a2)), 1);
  fsd_peers_remove(&p, SA(a2));
  ck_assert_uint_eq(fsd_peers_count(&p, SA(a1)), 0);
  /* An address with no connection holds nothing. */
  ck_assert_uint_eq(p.n, 1);
  fsd_peers_remove(&p, SA(a1)); /* not counted: ignored */
  ck_assert_uint_eq(fsd_peers_count(&p, SA(b)), 1);
  fsd_peers_free(&p);
}
END_TEST

START_TEST(test_peers_mapped_ipv4_is_ipv4) {
  struct fsd_peers p;
  struct sockaddr_storage a = v4("192.0.2.7", 1);
  struct sockaddr_storage m = v6("::ffff:192.0.2.7", 2);
  struct sockaddr_storage o = v6("2001:db8::7", 3);
  struct sockaddr_storage u;

  fsd_peers_init(&p, 1);
  ck_assert_int_eq(fsd_peers_add(&p, SA(a)), 1);
  ck_assert_int_eq(fsd_peers_add(&p, SA(m)), 2);
  ck_assert_int_eq(fsd_peers_add(&p, SA(o)), 1);
  memset(&u, 0, sizeof(u));
  u.ss_family = AF_UNIX;
  ck_assert_int_eq(fsd_peers_add(&p, SA(u)), UV_EAFNOSUPPORT);
  ck_assert_uint_eq(fsd_peers_count(&p, SA(u)), 0);
  fsd_peers_free(&p);
}
END_TEST

/* Many addresses: the table grows and every count stays right. */
START_TEST(test_peers_many_addresses) {
  struct fsd_peers p;
  struct sockaddr_storage any = v4("10.9.9.9", 1);
  char ip[32];

  fsd_peers_init(&p, 7);
  ck_assert_uint_eq(fsd_peers_count(&p, SA(any)), 0);
  fsd_peers_remove(&p, SA(any)); /* on an empty table */
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 5000; i++) {
      struct sockaddr_storage a;
      snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
      a = v4(ip, i);
      ck_assert_int_eq(fsd_peers_add(&p, SA(a)), round + 1);
    }
  ck_assert_uint_eq(p.n, 5000);
  ck_assert_uint_ge(p.nbuckets, 2048);
  for (int i = 0; i < 5000; i++) {
    struct sockaddr_storage a;
    snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
    a = v4(ip, 0);
    ck_assert_uint_eq(fsd_peers_count(&p, SA(a)), 3);
    for (int k = 0; k < 3; k++)
      fsd_peers_remove(&p, SA(a));
  }
  ck_assert_uint_eq(p.n, 0);
  fsd_peers_free(&p);
}
END_TEST

Suite *peers_suite(void) {
  Suite *s = suite_create("peers");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_peers_counts_per_address);
  tcase_add_test(tc, test_peers_mapped_ipv4_is_ipv4);
  tcase_add_test(tc, test_peers_many_addresses);
  suite_add_tcase(s, tc);
  return s;
}
