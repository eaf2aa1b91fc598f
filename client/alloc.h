/* fsc's allocator: every heap allocation of fsc goes through these, so
 * that the tests can make the N-th one fail and check that the code which
 * handles a failed allocation reports it clearly and leaks nothing. In the
 * program the hook is never armed and they are malloc and friends. */
#ifndef FSC_ALLOC_H
#define FSC_ALLOC_H

#include <stddef.h>

/* As malloc, calloc, realloc, strdup and free. */
void *fsc_malloc(size_t n);
void *fsc_calloc(size_t count, size_t size);
void *fsc_realloc(void *p, size_t n);
char *fsc_strdup(const char *s);
void fsc_free(void *p);

/* Before an allocation made by other means (a library's own allocator):
 * returns 1 when the hook says this one fails, else 0. */
int fsc_alloc_inject(void);

/* Tests only. Makes the allocation n allocations from now fail (0: the
 * next one), and every one after it while sticky is set; n < 0 disarms the
 * hook. Counting starts afresh with each call. */
void fsc_alloc_fail_after(long n, int sticky);

/* Tests only. Allocations made so far that the hook let through, and
 * allocations made by fsc_malloc, fsc_calloc, fsc_realloc(NULL, ...) and
 * fsc_strdup not yet given back to fsc_free: a test that frees what it
 * made expects 0. */
long fsc_alloc_count(void);
long fsc_alloc_live(void);

#endif /* FSC_ALLOC_H */
