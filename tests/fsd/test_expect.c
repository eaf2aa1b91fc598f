/* Paths awaiting the event of our own change (server/expect.c). */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "expect.h"
#include "suites.h"

#define P(s) (s), strlen(s)

/* The one event of our own rename is taken; the next event of the same
 * path is somebody else's and is not. */
START_TEST(test_expect_take_once) {
  struct fsd_expect e;

  fsd_expect_init(&e);
  ck_assert_int_eq(fsd_expect_take(&e, P("a/b"), 1000), 0);
  ck_assert_int_eq(fsd_expect_add(&e, P("a/b"), 1000), 0);
  ck_assert_int_eq(fsd_expect_take(&e, P("a/c"), 1000), 0);
  ck_assert_int_eq(fsd_expect_take(&e, P("a"), 1000), 0);
  ck_assert_int_eq(fsd_expect_take(&e, P("a/b"), 1001), 1);
  ck_assert_int_eq(fsd_expect_take(&e, P("a/b"), 1001), 0);
  fsd_expect_free(&e);
}
END_TEST

/* Two commits of one path before either event: two events are taken. */
START_TEST(test_expect_counts) {
  struct fsd_expect e;

  fsd_expect_init(&e);
  ck_assert_int_eq(fsd_expect_add(&e, P("x"), 5), 0);
  ck_assert_int_eq(fsd_expect_add(&e, P("x"), 6), 0);
  ck_assert_int_eq(fsd_expect_take(&e, P("x"), 7), 1);
  ck_assert_int_eq(fsd_expect_take(&e, P("x"), 7), 1);
  ck_assert_int_eq(fsd_expect_take(&e, P("x"), 7), 0);
  fsd_expect_free(&e);
}
END_TEST

/* A change that did not happen is taken back; drop says whether an event
 * used it meanwhile (then that event went unlooked at). */
START_TEST(test_expect_drop) {
  struct fsd_expect e;

  fsd_expect_init(&e);
  ck_assert_int_eq(fsd_expect_add(&e, P("f"), 0), 0);
  ck_assert_int_eq(fsd_expect_drop(&e, P("f")), 1);
  ck_assert_int_eq(fsd_expect_take(&e, P("f"), 0), 0);
  ck_assert_int_eq(fsd_expect_add(&e, P("f"), 0), 0);
  ck_assert_int_eq(fsd_expect_take(&e, P("f"), 0), 1);
  ck_assert_int_eq(fsd_expect_drop(&e, P("f")), 0);
  fsd_expect_free(&e);
}
END_TEST

/* An event that never comes (a folder without a watch) leaves nothing
 * behind for long: past FSD_EXPECT_MS the path is looked at again. */
START_TEST(test_expect_expires) {
  struct fsd_expect e;

  fsd_expect_init(&e);
  ck_assert_int_eq(fsd_expect_add(&e, P("old"), 100), 0);
  ck_assert_int_eq(fsd_expect_add(&e, P("new"), 100 + FSD_EXPECT_MS), 0);
  ck_assert_int_eq(fsd_expect_take(&e, P("old"), 101 + FSD_EXPECT_MS), 0);
  ck_assert_uint_eq(e.n, 1);
  fsd_expect_expire(&e, 101 + 2 * FSD_EXPECT_MS);
  ck_assert_uint_eq(e.n, 0);
  ck_assert_int_eq(fsd_expect_take(&e, P("new"), 101 + 2 * FSD_EXPECT_MS), 0);
  fsd_expect_free(&e);
}
END_TEST

/* Bounded: past FSD_EXPECT_MAX paths, adding fails and the caller looks as
 * before. Many paths in the buckets stay found. */
START_TEST(test_expect_bounded) {
  struct fsd_expect e;
  char name[32];

  fsd_expect_init(&e);
  for (unsigned i = 0; i < FSD_EXPECT_MAX; i++) {
    snprintf(name, sizeof(name), "d/%u", i);
    ck_assert_int_eq(fsd_expect_add(&e, P(name), 1), 0);
  }
  ck_assert_int_eq(fsd_expect_add(&e, P("one/more"), 1), UV_ENOBUFS);
  for (unsigned i = 0; i < FSD_EXPECT_MAX; i++) {
    snprintf(name, sizeof(name), "d/%u", i);
    ck_assert_int_eq(fsd_expect_take(&e, P(name), 2), 1);
  }
  ck_assert_uint_eq(e.n, 0);
  fsd_expect_free(&e);
}
END_TEST

Suite *expect_suite(void) {
  Suite *s = suite_create("expect");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_expect_take_once);
  tcase_add_test(tc, test_expect_counts);
  tcase_add_test(tc, test_expect_drop);
  tcase_add_test(tc, test_expect_expires);
  tcase_add_test(tc, test_expect_bounded);
  suite_add_tcase(s, tc);
  return s;
}
