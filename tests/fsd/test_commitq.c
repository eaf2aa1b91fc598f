/* The commit queue: one commit or unlink per name at a time, in order;
 * renames answered only after a folder flush that began after them, one
 * flush per batch. */
#include "commitq.h"
#include "suites.h"

/* Pops the entries a flush made durable, in their order, into out[];
 * returns how many. */
static int durable(struct fsd_list *done, struct fsd_commitq_entry **out,
                   int max) {
  struct fsd_list *l;
  int n = 0;

  while ((l = fsd_list_pop(done)) != NULL) {
    ck_assert_int_lt(n, max);
    out[n++] = fsd_container_of(l, struct fsd_commitq_entry, flink);
  }
  return n;
}

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

START_TEST(test_commitq_first_change_starts_a_flush_of_its_own) {
  struct fsd_commitq q;
  struct fsd_commitq_entry a = {.name = "a"};
  struct fsd_commitq_entry *got[4];
  struct fsd_list done;

  fsd_commitq_init(&q);
  ck_assert_int_eq(fsd_commitq_enter(&q, &a), 1);
  /* Nothing flushes: the caller starts a flush for a, carried by a. */
  ck_assert_ptr_eq(fsd_commitq_changed(&q, &a), &a);
  ck_assert_ptr_null(fsd_commitq_flushed(&q, &done));
  ck_assert_int_eq(durable(&done, got, 4), 1);
  ck_assert_ptr_eq(got[0], &a);
  ck_assert_ptr_null(fsd_commitq_leave(&q, &a));
  ck_assert(fsd_list_empty(&q.running));
}
END_TEST

START_TEST(test_commitq_changes_during_a_flush_wait_for_the_next) {
  struct fsd_commitq q;
  struct fsd_commitq_entry a = {.name = "a"}, b = {.name = "b"},
                           c = {.name = "c"}, d = {.name = "d"};
  struct fsd_commitq_entry *got[4];
  struct fsd_list done;

  fsd_commitq_init(&q);
  ck_assert_int_eq(fsd_commitq_enter(&q, &a), 1);
  ck_assert_int_eq(fsd_commitq_enter(&q, &b), 1);
  ck_assert_int_eq(fsd_commitq_enter(&q, &c), 1);
  ck_assert_int_eq(fsd_commitq_enter(&q, &d), 1);
  ck_assert_ptr_eq(fsd_commitq_changed(&q, &a), &a);
  /* b, c and d renamed while a's flush runs: that flush may have begun
   * before their renames reached the folder, so it answers for a alone,
   * and one more flush (not one each) covers the three, in their order. */
  ck_assert_ptr_null(fsd_commitq_changed(&q, &c));
  ck_assert_ptr_null(fsd_commitq_changed(&q, &b));
  ck_assert_ptr_null(fsd_commitq_changed(&q, &d));
  ck_assert_ptr_eq(fsd_commitq_flushed(&q, &done), &c);
  ck_assert_int_eq(durable(&done, got, 4), 1);
  ck_assert_ptr_eq(got[0], &a);
  ck_assert_ptr_null(fsd_commitq_flushed(&q, &done));
  ck_assert_int_eq(durable(&done, got, 4), 3);
  ck_assert_ptr_eq(got[0], &c);
  ck_assert_ptr_eq(got[1], &b);
  ck_assert_ptr_eq(got[2], &d);
  /* No flush runs now: the next change starts one again. */
  ck_assert_ptr_null(fsd_commitq_leave(&q, &a));
  ck_assert_int_eq(fsd_commitq_enter(&q, &a), 1);
  ck_assert_ptr_eq(fsd_commitq_changed(&q, &a), &a);
}
END_TEST

START_TEST(test_commitq_same_name_waits_for_the_flush) {
  struct fsd_commitq q;
  struct fsd_commitq_entry a = {.name = "x"}, b = {.name = "x"};
  struct fsd_commitq_entry *got[4];
  struct fsd_list done;

  fsd_commitq_init(&q);
  ck_assert_int_eq(fsd_commitq_enter(&q, &a), 1);
  ck_assert_ptr_eq(fsd_commitq_changed(&q, &a), &a);
  /* a renamed but is not durable yet: the next commit of x still waits,
   * so the register learns of x's versions in the disk's order. */
  ck_assert_int_eq(fsd_commitq_enter(&q, &b), 0);
  ck_assert_ptr_null(fsd_commitq_flushed(&q, &done));
  ck_assert_int_eq(durable(&done, got, 4), 1);
  ck_assert_ptr_eq(fsd_commitq_leave(&q, &a), &b);
  ck_assert_ptr_eq(fsd_commitq_changed(&q, &b), &b);
}
END_TEST

Suite *commitq_suite(void) {
  Suite *s = suite_create("commitq");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_commitq_same_name_waits_in_order);
  tcase_add_test(tc, test_commitq_other_names_run_side_by_side);
  tcase_add_test(tc, test_commitq_first_change_starts_a_flush_of_its_own);
  tcase_add_test(tc, test_commitq_changes_during_a_flush_wait_for_the_next);
  tcase_add_test(tc, test_commitq_same_name_waits_for_the_flush);
  suite_add_tcase(s, tc);
  return s;
}
