/* A failing allocator for the folder modules' tests; see tree_suites.h. */
#include <stdlib.h>

#include "mem.h"
#include "tree_suites.h"

/* A failing allocator: call number fail_at (from 0) fails; live counts
 * the blocks held, so a leak shows as live > 0 after the free. */
static struct {
  long calls, fail_at, live;
  int failed;
} fm;

static int should_fail(void) {
  if (fm.calls++ != fm.fail_at)
    return 0;
  fm.failed = 1;
  return 1;
}

static void *f_malloc(size_t n, void *u) {
  void *p = should_fail() ? NULL : malloc(n);
  (void)u;
  fm.live += p != NULL;
  return p;
}

static void *f_calloc(size_t n, size_t size, void *u) {
  void *p = should_fail() ? NULL : calloc(n, size);
  (void)u;
  fm.live += p != NULL;
  return p;
}

static void *f_realloc(void *old, size_t n, void *u) {
  void *p = should_fail() ? NULL : realloc(old, n);
  (void)u;
  fm.live += old == NULL && p != NULL;
  return p;
}

static void f_free(void *p, void *u) {
  (void)u;
  fm.live -= p != NULL;
  free(p);
}

static const struct fsd_mem failing = {f_malloc, f_calloc, f_realloc, f_free,
                                       NULL};

void tree_fail_at(long n) {
  fm.calls = fm.live = 0;
  fm.fail_at = n;
  fm.failed = 0;
  fsd_mem_set_allocator(&failing);
}

int tree_fail_failed(void) {
  return fm.failed;
}

long tree_fail_end(void) {
  fsd_mem_set_allocator(NULL);
  return fm.live;
}
