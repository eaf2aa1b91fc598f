/* The per-address failure table and its growing delay (guard.c). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "guard.h"

Suite *guard_suite(void);

static struct fsd_guard_key key4(const char *ip) {
  struct sockaddr_in in;
  struct fsd_guard_key k;

  memset(&in, 0, sizeof(in));
  in.sin_family = AF_INET;
  ck_assert_int_eq(inet_pton(AF_INET, ip, &in.sin_addr), 1);
  fsd_guard_key_of((struct sockaddr *)&in, &k);
  return k;
}

static struct fsd_guard_key key6(const char *ip) {
  struct sockaddr_in6 in6;
  struct fsd_guard_key k;

  memset(&in6, 0, sizeof(in6));
  in6.sin6_family = AF_INET6;
  ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
  fsd_guard_key_of((struct sockaddr *)&in6, &k);
  return k;
}

/* 0, then 50, 100, 200 ... ms, never over 5 s, however many failures. */
START_TEST(test_guard_delay_grows_and_is_bounded) {
  struct fsd_guard g;
  struct fsd_guard_key a = key4("192.0.2.1");
  uint64_t t = 1000, prev = 0;

  ck_assert_int_eq(fsd_guard_init(&g, 16), 0);
  ck_assert_uint_eq(fsd_guard_delay(&g, &a, t), 0);
  fsd_guard_fail(&g, &a, t);
  ck_assert_uint_eq(fsd_guard_delay(&g, &a, t), FSD_GUARD_BASE_MS);
  fsd_guard_fail(&g, &a, t);
  ck_assert_uint_eq(fsd_guard_delay(&g, &a, t), 2 * FSD_GUARD_BASE_MS);
  fsd_guard_fail(&g, &a, t);
  ck_assert_uint_eq(fsd_guard_delay(&g, &a, t), 4 * FSD_GUARD_BASE_MS);
  for (int i = 0; i < 100000; i++) {
    uint64_t d;
    fsd_guard_fail(&g, &a, t);
    d = fsd_guard_delay(&g, &a, t);
    ck_assert_uint_ge(d, prev);
    ck_assert_uint_le(d, FSD_GUARD_MAX_MS);
    prev = d;
  }
  ck_assert_uint_eq(prev, FSD_GUARD_MAX_MS);
  fsd_guard_free(&g);
}
END_TEST

/* Failures are forgotten 10 minutes after the last one; a failure in
 * between keeps the count. */
START_TEST(test_guard_forgets) {
  struct fsd_guard g;
  struct fsd_guard_key a = key4("192.0.2.1");

  ck_assert_int_eq(fsd_guard_init(&g, 16), 0);
  fsd_guard_fail(&g, &a, 0);
  fsd_guard_fail(&g, &a, FSD_GUARD_FORGET_MS - 1);
  ck_assert_uint_eq(fsd_guard_delay(&g, &a, 2 * FSD_GUARD_FORGET_MS - 2),
                    2 * FSD_GUARD_BASE_MS);
  ck_assert_uint_eq(fsd_guard_delay(&g, &a, 2 * FSD_GUARD_FORGET_MS), 0);
  fsd_guard_fail(&g, &a, 2 * FSD_GUARD_FORGET_MS);
  ck_assert_uint_eq(fsd_guard_delay(&g, &a, 2 * FSD_GUARD_FORGET_MS),
                    FSD_GUARD_BASE_MS);
  fsd_guard_free(&g);
}
END_TEST

/* Other addresses are not slowed; an IPv6 /64 counts as one host; an IPv4
 * client is the same whether it came in over IPv4 or IPv4-mapped IPv6. */
START_TEST(test_guard_per_address) {
  struct fsd_guard g;
  struct fsd_guard_key a = key4("192.0.2.1"), b = key4("192.0.2.2");
  struct fsd_guard_key m = key6("::ffff:192.0.2.1");
  struct fsd_guard_key p = key6("2001:db8:1:2::5"), q = key6("2001:db8:1:2::9");
  struct fsd_guard_key r = key6("2001:db8:1:3::5");

  ck_assert_int_eq(fsd_guard_init(&g, 16), 0);
  for (int i = 0; i < 5; i++)
    fsd_guard_fail(&g, &a, 10);
  ck_assert_uint_gt(fsd_guard_delay(&g, &a, 10), 0);
  ck_assert_uint_eq(fsd_guard_delay(&g, &b, 10), 0);
  ck_assert_uint_eq(fsd_guard_delay(&g, &m, 10), fsd_guard_delay(&g, &a, 10));
  fsd_guard_fail(&g, &p, 10);
  ck_assert_uint_eq(fsd_guard_delay(&g, &q, 10), FSD_GUARD_BASE_MS);
  ck_assert_uint_eq(fsd_guard_delay(&g, &r, 10), 0);
  fsd_guard_free(&g);
}
END_TEST

/* A full table makes room by dropping the address whose last failure is the
 * oldest, so a flood of new addresses cannot grow it. */
START_TEST(test_guard_bounded) {
  struct fsd_guard g;
  struct fsd_guard_key k[5];
  char ip[32];

  ck_assert_int_eq(fsd_guard_init(&g, 4), 0);
  for (int i = 0; i < 5; i++) {
    snprintf(ip, sizeof(ip), "198.51.100.%d", i + 1);
    k[i] = key4(ip);
  }
  for (int i = 0; i < 4; i++)
    fsd_guard_fail(&g, &k[i], 100 + (uint64_t)i);
  fsd_guard_fail(&g, &k[0], 200); /* k[1] is now the oldest */
  fsd_guard_fail(&g, &k[4], 300);
  ck_assert_uint_eq(fsd_guard_delay(&g, &k[1], 300), 0);
  ck_assert_uint_eq(fsd_guard_delay(&g, &k[0], 300), 2 * FSD_GUARD_BASE_MS);
  ck_assert_uint_eq(fsd_guard_delay(&g, &k[4], 300), FSD_GUARD_BASE_MS);
  fsd_guard_free(&g);
  /* A table of no slots counts nothing and does not crash. */
  ck_assert_int_eq(fsd_guard_init(&g, 0), 0);
  fsd_guard_fail(&g, &k[0], 1);
  ck_assert_uint_eq(fsd_guard_delay(&g, &k[0], 1), 0);
  fsd_guard_free(&g);
}
END_TEST

Suite *guard_suite(void) {
  Suite *s = suite_create("guard");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_guard_delay_grows_and_is_bounded);
  tcase_add_test(tc, test_guard_forgets);
  tcase_add_test(tc, test_guard_per_address);
  tcase_add_test(tc, test_guard_bounded);
  suite_add_tcase(s, tc);
  return s;
}
