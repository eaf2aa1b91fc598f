/* The commit queue: one commit or unlink per name at a time, in order. */
#include "commitq.h"
#include "suites.h"

START_TEST(test_commitq_same_name_waits_in_order) {
  struct fsd_commitq q;
  struct fsd_commitq_entry a = {.name = "x"}, b = {.name = "x"},
                           c = {.name = "x"};

  fsd_commitq_init(&q);
  ck_assert_int_eq(fsd_commitq_enter(&q, &a), 1);
  ck_assert_int_eq(fsd_commitq_enter(&q, &b), 0);
  ck_assert_int_eq(fsd_commitq_enter(&q, &c), 0);
  ck_assert_ptr_eq(fsd_commitq_leave(&q, &a), &b);
  ck_assert_ptr_eq(fsd_commitq_leave(&q, &b), &c);
  ck_assert_ptr_null(fsd_commitq_leave(&q, &c));
  ck_assert(fsd_list_empty(&q.running));
  ck_assert(fsd_list_empty(&q.waiting));
}
END_TEST

START_TEST(test_commitq_other_names_run_side_by_side) {
  struct fsd_commitq q;
  struct fsd_commitq_entry a = {.name = "x"}, b = {.name = "y"},
                           c = {.name = "x"};

  fsd_commitq_init(&q);
  ck_assert_int_eq(fsd_commitq_enter(&q, &a), 1);
  ck_assert_int_eq(fsd_commitq_enter(&q, &b), 1);
  ck_assert_int_eq(fsd_commitq_enter(&q, &c), 0);
  /* y's end hands over to nobody: x's waiter is not y's. */
  ck_assert_ptr_null(fsd_commitq_leave(&q, &b));
  ck_assert_ptr_eq(fsd_commitq_leave(&q, &a), &c);
  /* Once c runs, a new x waits for it. */
  ck_assert_int_eq(fsd_commitq_enter(&q, &a), 0);
  ck_assert_ptr_eq(fsd_commitq_leave(&q, &c), &a);
  ck_assert_ptr_null(fsd_commitq_leave(&q, &a));
}
END_TEST

Suite *commitq_suite(void) {
  Suite *s = suite_create("commitq");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_commitq_same_name_waits_in_order);
  tcase_add_test(tc, test_commitq_other_names_run_side_by_side);
  suite_add_tcase(s, tc);
  return s;
}
