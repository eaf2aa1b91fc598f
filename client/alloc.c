/* fsc's allocator with its failure hook. See alloc.h. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

/* Allocations still to let through before failing; -1: never fail. Plain
 * globals: fsc allocates on the loop thread only. */
static long fail_after = -1;
static int fail_sticky;
static long allocs;
static long live;

int fsc_alloc_inject(void) {
  if (fail_after < 0)
    return 0;
  if (fail_after == 0) {
    if (!fail_sticky)
      fail_after = -1;
    return 1;
  }
  fail_after--;
  allocs++;
  return 0;
}

void fsc_alloc_fail_after(long n, int sticky) {
  fail_after = n;
  fail_sticky = sticky;
  allocs = 0;
}

long fsc_alloc_count(void) {
  return allocs;
}

long fsc_alloc_live(void) {
  return live;
}

void *fsc_malloc(size_t n) {
  if (fsc_alloc_inject())
    return NULL;
  void *p = malloc(n);
  live += p != NULL;
  return p;
}

void *fsc_calloc(size_t count, size_t size) {
  if (fsc_alloc_inject())
    return NULL;
  void *p = calloc(count, size);
  live += p != NULL;
  return p;
}

void *fsc_realloc(void *p, size_t n) {
  if (fsc_alloc_inject())
    return NULL;
  void *q = realloc(p, n);
  live += p == NULL && q != NULL;
  return q;
}

char *fsc_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = fsc_malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

void fsc_free(void *p) {
  live -= p != NULL;
  free(p);
}
