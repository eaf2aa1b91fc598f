/* Runs the unit suites of fsd's authentication modules: the users file,
 * signature checks, a connection's authentication state, the
 * per-address failure table and the access log; and fsc's side of the
 * handshake against fsd's. */
#include <check.h>
#include <stdlib.h>

#include "log.h"

Suite *users_suite(void);
Suite *verify_suite(void);
Suite *guard_suite(void);
Suite *alog_suite(void);
Suite *gate_suite(void);
Suite *handshake_suite(void);
Suite *session_auth_suite(void);

int main(void) {
  SRunner *sr = srunner_create(users_suite());
  int failed;

  fsd_log_threshold = FSD_LOG_ERROR;
  srunner_add_suite(sr, verify_suite());
  srunner_add_suite(sr, guard_suite());
  srunner_add_suite(sr, alog_suite());
  srunner_add_suite(sr, gate_suite());
  srunner_add_suite(sr, handshake_suite());
  srunner_add_suite(sr, session_auth_suite());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
