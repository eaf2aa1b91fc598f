/* Runs fsd's unit test suites. */
#include <stdlib.h>

#include "log.h"
#include "suites.h"

int main(void) {
  SRunner *sr = srunner_create(register_suite());
  int failed;

  fsd_log_threshold = FSD_LOG_ERROR;
  srunner_add_suite(sr, ctx_suite());
  srunner_add_suite(sr, session_suite());
  srunner_add_suite(sr, session_tree_suite());
  srunner_add_suite(sr, fsops_suite());
  srunner_add_suite(sr, addr_suite());
  srunner_add_suite(sr, bufpool_suite());
  srunner_add_suite(sr, hcache_suite());
  srunner_add_suite(sr, commitq_suite());
  srunner_add_suite(sr, mem_suite());
  srunner_add_suite(sr, conn_suite());
  srunner_add_suite(sr, budget_suite());
  srunner_add_suite(sr, peers_suite());
  srunner_add_suite(sr, space_suite());
  srunner_add_suite(sr, expect_suite());
  srunner_add_suite(sr, sd_suite());
  srunner_add_suite(sr, batch_suite());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
