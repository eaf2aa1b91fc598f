/* Runner shared by the fstls test programs. Each program is this file, the
 * helpers and one test_<part>.c; meson passes the suite constructor's name
 * as FSTLS_TEST_SUITE. */
#include <check.h>
#include <stdlib.h>

#include "helpers.h"

Suite *FSTLS_TEST_SUITE(void);

int main(void) {
  SRunner *sr = srunner_create(FSTLS_TEST_SUITE());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
