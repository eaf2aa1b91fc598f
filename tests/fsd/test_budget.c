/* The shared transfer budget of a connection (server/budget.c). */
#include <string.h>

#include "budget.h"
#include "suites.h"

START_TEST(test_budget_grants_up_to_cap) {
  struct fsd_budget b;
  struct fsd_budget_wait w1, w2;

  memset(&w1, 0, sizeof(w1));
  memset(&w2, 0, sizeof(w2));
  fsd_budget_init(&b, 1000);
  ck_assert_uint_eq(fsd_budget_take(&b, &w1, 600, 100), 600);
  /* 400 left: a partial grant, as long as it is at least the least. */
  ck_assert_uint_eq(fsd_budget_take(&b, &w2, 600, 100), 400);
  ck_assert_uint_eq(b.used, 1000);
  ck_assert_ptr_null(b.head);
  fsd_budget_give(&b, 600);
  fsd_budget_give(&b, 400);
  ck_assert_uint_eq(b.used, 0);
  ck_assert_uint_eq(fsd_budget_take(&b, &w1, 0, 100), 0);
  ck_assert_ptr_null(b.head); /* asking for nothing is not waiting */
}
END_TEST

START_TEST(test_budget_waits_when_spent) {
  struct fsd_budget b;
  struct fsd_budget_wait w1, w2;

  memset(&w1, 0, sizeof(w1));
  memset(&w2, 0, sizeof(w2));
  fsd_budget_init(&b, 1000);
  ck_assert_uint_eq(fsd_budget_take(&b, &w1, 950, 100), 950);
  /* 50 free, less than the least w2 can use: it waits. */
  ck_assert_uint_eq(fsd_budget_take(&b, &w2, 600, 100), 0);
  ck_assert_ptr_eq(b.head, &w2);
  ck_assert_ptr_null(fsd_budget_next(&b));
  fsd_budget_give(&b, 100);
  ck_assert_ptr_eq(fsd_budget_next(&b), &w2);
  ck_assert_uint_eq(fsd_budget_take(&b, &w2, 600, 100), 150);
  ck_assert_ptr_null(b.head);
  ck_assert(!w2.queued);
}
END_TEST

/* A small remainder of a transfer is granted whole even when its least is
 * larger than the remainder. */
START_TEST(test_budget_least_clamped_to_want) {
  struct fsd_budget b;
  struct fsd_budget_wait w1, w2;

  memset(&w1, 0, sizeof(w1));
  memset(&w2, 0, sizeof(w2));
  fsd_budget_init(&b, 1000);
  ck_assert_uint_eq(fsd_budget_take(&b, &w1, 990, 100), 990);
  ck_assert_uint_eq(fsd_budget_take(&b, &w2, 10, 100), 10);
}
END_TEST

/* Transfers take turns: one that just had its grant cannot take bytes an
 * older waiter is waiting for, and the queue keeps its order. */
START_TEST(test_budget_fifo_turns) {
  struct fsd_budget b;
  struct fsd_budget_wait w[3];

  memset(w, 0, sizeof(w));
  fsd_budget_init(&b, 300);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[0], 300, 100), 300);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[1], 300, 100), 0);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[2], 300, 100), 0);
  fsd_budget_give(&b, 300);
  /* w[0] asks again first: w[1] and w[2] are older waiters. */
  ck_assert_uint_eq(fsd_budget_take(&b, &w[0], 300, 100), 0);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[2], 300, 100), 0);
  ck_assert_ptr_eq(fsd_budget_next(&b), &w[1]);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[1], 100, 100), 100);
  ck_assert_ptr_eq(fsd_budget_next(&b), &w[2]);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[2], 100, 100), 100);
  ck_assert_ptr_eq(fsd_budget_next(&b), &w[0]);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[0], 300, 100), 100);
  ck_assert_ptr_null(b.head);
  ck_assert_ptr_eq(b.tail, &b.head);
  ck_assert_uint_eq(b.used, 300);
}
END_TEST

START_TEST(test_budget_cancel) {
  struct fsd_budget b;
  struct fsd_budget_wait w[3];

  memset(w, 0, sizeof(w));
  fsd_budget_init(&b, 100);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[0], 100, 100), 100);
  for (int i = 0; i < 3; i++)
    ck_assert_uint_eq(fsd_budget_take(&b, &w[i], 100, 100), 0);
  /* The last one goes: the tail must follow, so later waiters link. */
  fsd_budget_cancel(&b, &w[2]);
  fsd_budget_cancel(&b, &w[2]);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[2], 50, 50), 0);
  fsd_budget_cancel(&b, &w[0]);
  ck_assert_ptr_eq(b.head, &w[1]);
  ck_assert_ptr_eq(w[1].next, &w[2]);
  fsd_budget_cancel(&b, &w[1]);
  fsd_budget_give(&b, 100);
  ck_assert_ptr_eq(fsd_budget_next(&b), &w[2]);
  ck_assert_uint_eq(fsd_budget_take(&b, &w[2], 50, 50), 50);
  ck_assert_ptr_null(b.head);
  ck_assert_ptr_eq(b.tail, &b.head);
}
END_TEST

Suite *budget_suite(void) {
  Suite *s = suite_create("budget");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_budget_grants_up_to_cap);
  tcase_add_test(tc, test_budget_waits_when_spent);
  tcase_add_test(tc, test_budget_least_clamped_to_want);
  tcase_add_test(tc, test_budget_fifo_turns);
  tcase_add_test(tc, test_budget_cancel);
  suite_add_tcase(s, tc);
  return s;
}
