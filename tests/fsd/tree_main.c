/* Runs the Check suites of fsd's folder modules. */
#include <stdlib.h>

#include "tree_suites.h"

int main(void) {
  SRunner *sr = srunner_create(tree_suite());
  int failed;

  srunner_add_suite(sr, treereg_suite());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
