/* The Check suites of fsd's folder modules (tree.c, treereg.c), run by
 * tree_main.c until fsd serves folders. */
#ifndef FSD_TEST_TREE_SUITES_H
#define FSD_TEST_TREE_SUITES_H

#include <check.h>

Suite *tree_suite(void);
Suite *treereg_suite(void);

#endif /* FSD_TEST_TREE_SUITES_H */
