/* Tests of fsc's local path rules (client/path.c). */
#include <string.h>

#include "path.h"
#include "suites.h"

START_TEST(test_path_hostile_names_rejected) {
  /* A server or a user must not make a download land outside -o. */
  const char *bad[] = {"..",   ".", "../x", "a/b",  "/etc/passwd",
                       ".ssh", "",  "a\nb", "x\x1b"};
  char buf[256];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(fsc_name_safe(bad[i]), -1);
    ck_assert_int_eq(fsc_target_path(buf, sizeof buf, "out", 1, bad[i]), -1);
  }
  ck_assert_int_eq(fsc_name_safe("a..b"), 0);
  ck_assert_int_eq(fsc_name_safe("caf\xc3\xa9.txt"), 0);
}
END_TEST

START_TEST(test_path_targets) {
  char buf[256];
  ck_assert_int_eq(fsc_target_path(buf, sizeof buf, NULL, 0, "a.txt"), 0);
  ck_assert_str_eq(buf, "a.txt");
  ck_assert_int_eq(fsc_target_path(buf, sizeof buf, "dl", 1, "a.txt"), 0);
  ck_assert_str_eq(buf, "dl/a.txt");
  ck_assert_int_eq(fsc_target_path(buf, sizeof buf, "dl/", 1, "a.txt"), 0);
  ck_assert_str_eq(buf, "dl/a.txt");
  ck_assert_int_eq(fsc_target_path(buf, sizeof buf, "x/y.bin", 0, "a.txt"), 0);
  ck_assert_str_eq(buf, "x/y.bin");
  ck_assert_int_eq(fsc_target_path(buf, 5, "dl", 1, "a.txt"), -1);
}
END_TEST

START_TEST(test_path_temp_names) {
  char buf[256];
  ck_assert_int_eq(fsc_temp_template(buf, sizeof buf, "a.txt"), 0);
  ck_assert_str_eq(buf, ".a.txt.fsc-XXXXXX");
  ck_assert_int_eq(fsc_temp_template(buf, sizeof buf, "/tmp/d/a.txt"), 0);
  ck_assert_str_eq(buf, "/tmp/d/.a.txt.fsc-XXXXXX");
  ck_assert_int_eq(fsc_part_path(buf, sizeof buf, "d/a.txt"), 0);
  ck_assert_str_eq(buf, "d/a.txt.fsc-part");
  ck_assert_int_eq(fsc_part_path(buf, 8, "d/a.txt"), -1);
}
END_TEST

START_TEST(test_path_put_names) {
  size_t n;
  const char *p = fsc_put_name("/home/u/report.pdf", NULL, &n);
  ck_assert_int_eq((int)n, 10);
  ck_assert_int_eq(memcmp(p, "report.pdf", n), 0);
  p = fsc_put_name("dir/sub/", NULL, &n);
  ck_assert_int_eq(memcmp(p, "sub", n), 0);
  ck_assert_uint_eq(n, 3);
  p = fsc_put_name("-", "in.bin", &n);
  ck_assert_str_eq(p, "in.bin");
  ck_assert_uint_eq(n, 6);
}
END_TEST

Suite *path_suite(void) {
  Suite *s = suite_create("path");
  TCase *tc = tcase_create("path");
  tcase_add_test(tc, test_path_hostile_names_rejected);
  tcase_add_test(tc, test_path_targets);
  tcase_add_test(tc, test_path_temp_names);
  tcase_add_test(tc, test_path_put_names);
  suite_add_tcase(s, tc);
  return s;
}
