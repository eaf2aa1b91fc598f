/* Runs fsc's unit suites: the command logic without sockets, and the
 * connection layer against a scripted server on loopback. */
#include <stdlib.h>

#include "suites.h"

int main(void) {
  SRunner *sr = srunner_create(cli_suite());
  srunner_add_suite(sr, fmt_suite());
  srunner_add_suite(sr, path_suite());
  srunner_add_suite(sr, rpath_suite());
  srunner_add_suite(sr, walk_suite());
  srunner_add_suite(sr, run_suite());
  srunner_add_suite(sr, snap_suite());
  srunner_add_suite(sr, store_suite());
  srunner_add_suite(sr, xfer_suite());
  srunner_add_suite(sr, edit_suite());
  srunner_add_suite(sr, conn_suite());
  srunner_add_suite(sr, alloc_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
