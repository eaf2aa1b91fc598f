/* The Check suites of fsc's command logic, one per module. */
#ifndef FSC_TEST_SUITES_H
#define FSC_TEST_SUITES_H

#include <check.h>

Suite *cli_suite(void);
Suite *conn_suite(void);
Suite *fmt_suite(void);
Suite *path_suite(void);
Suite *rpath_suite(void);
Suite *walk_suite(void);
Suite *run_suite(void);
Suite *snap_suite(void);
Suite *store_suite(void);
Suite *xfer_suite(void);
Suite *edit_suite(void);
Suite *alloc_suite(void);

#endif
