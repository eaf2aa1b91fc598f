/* The Check suites of fsd's unit tests, one per module. */
#ifndef FSD_TEST_SUITES_H
#define FSD_TEST_SUITES_H

#include <check.h>

Suite *register_suite(void);
Suite *ctx_suite(void);
Suite *session_suite(void);
Suite *session_tree_suite(void);
Suite *fsops_suite(void);
Suite *addr_suite(void);
Suite *bufpool_suite(void);
Suite *hcache_suite(void);
Suite *commitq_suite(void);
Suite *mem_suite(void);
Suite *conn_suite(void);
Suite *budget_suite(void);
Suite *peers_suite(void);
Suite *space_suite(void);
Suite *expect_suite(void);
Suite *sd_suite(void);
Suite *batch_suite(void);

#endif /* FSD_TEST_SUITES_H */
