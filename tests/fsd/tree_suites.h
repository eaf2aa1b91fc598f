/* The Check suites of fsd's folder modules (tree.c, treereg.c), run by
 * tree_main.c until fsd serves folders. */
#ifndef FSD_TEST_TREE_SUITES_H
#define FSD_TEST_TREE_SUITES_H

#include <check.h>

Suite *tree_suite(void);
Suite *treereg_suite(void);

/* A failing allocator (tree_failmem.c): from tree_fail_at(n) on, fsd's
 * allocation call number n (from 0) fails. tree_fail_failed() says whether
 * it has; tree_fail_end() puts the C library's allocator back and returns
 * how many blocks allocated meanwhile are still held (a leak when > 0). */
void tree_fail_at(long n);
int tree_fail_failed(void);
long tree_fail_end(void);

#endif /* FSD_TEST_TREE_SUITES_H */
