/* Runner shared by the unit test programs. Each program is built from this
 * file plus one test_<module>.c; meson passes the suite constructor's name as
 * FSP_TEST_SUITE, so `meson test --list` shows one entry per module. */
#include <check.h>
#include <stdlib.h>

#include "helpers.h"

Suite *FSP_TEST_SUITE(void);

int fsp_test_argc;
char **fsp_test_argv;

int main(int argc, char **argv) {
  SRunner *sr;
  int failed;

  fsp_test_argc = argc;
  fsp_test_argv = argv;
  sr = srunner_create(FSP_TEST_SUITE());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
