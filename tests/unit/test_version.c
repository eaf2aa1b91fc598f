/* Library version (version.c). */
#include <stdio.h>

#include "helpers.h"

START_TEST(test_version_matches_header) {
  char expect[32];

  ck_assert_uint_eq(fsp_version(), FSP_VERSION_HEX);
  ck_assert_uint_eq(fsp_version() >> 16, FSP_VERSION_MAJOR);
  ck_assert_uint_eq((fsp_version() >> 8) & 0xff, FSP_VERSION_MINOR);
  ck_assert_uint_eq(fsp_version() & 0xff, FSP_VERSION_PATCH);
  snprintf(expect, sizeof(expect), "%d.%d.%d", FSP_VERSION_MAJOR,
           FSP_VERSION_MINOR, FSP_VERSION_PATCH);
  ck_assert_str_eq(fsp_version_string(), expect);
  ck_assert_str_eq(fsp_version_string(), FSP_VERSION_STRING);
}
END_TEST

Suite *version_suite(void) {
  Suite *s = suite_create("version");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_version_matches_header);
  suite_add_tcase(s, tc);
  return s;
}
