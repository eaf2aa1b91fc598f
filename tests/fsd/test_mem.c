/* Allocation failures: every allocation fsdcore handles is made to fail in
 * turn, through the allocation hook, and each must end in a clear error
 * (UV_ENOMEM or NULL) with nothing leaked. */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "bufpool.h"
#include "ctx.h"
#include "mem.h"
#include "register.h"
#include "suites.h"

/* A failing allocator: the call numbered fail_at (from 0) fails, and live
 * counts the blocks held. */
struct failmem {
  long calls;
  long fail_at;
  long live;
  int failed;
};

static struct failmem fm;

static int should_fail(void) {
  if (fm.calls++ == fm.fail_at) {
    fm.failed = 1;
    return 1;
  }
  return 0;
}

static void *f_malloc(size_t n, void *u) {
  void *p;
  (void)u;
  if (should_fail())
    return NULL;
  p = malloc(n);
  fm.live += p != NULL;
  return p;
}

static void *f_calloc(size_t n, size_t size, void *u) {
  void *p;
  (void)u;
  if (should_fail())
    return NULL;
  p = calloc(n, size);
  fm.live += p != NULL;
  return p;
}

static void *f_realloc(void *old, size_t n, void *u) {
  void *p;
  (void)u;
  if (should_fail())
    return NULL;
  p = realloc(old, n);
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

static void fail_at(long n) {
  fm.calls = 0;
  fm.fail_at = n;
  fm.live = 0;
  fm.failed = 0;
  fsd_mem_set_allocator(&failing);
}

/* The register grows past its first buckets and the event ring fills: a
 * failed allocation is UV_ENOMEM from init or set, or a denser map. */
static int ctx_scenario(void) {
  struct fsd_ctx ctx;
  char name[16];
  int r = fsd_ctx_init(&ctx, 1);

  if (r != 0)
    return r;
  for (int i = 0; i < 200 && r >= 0; i++) {
    int n = snprintf(name, sizeof(name), "f%d", i);
    r = fsd_ctx_update(&ctx, name, (size_t)n, 1, (uint64_t)i, i);
  }
  fsd_ctx_free(&ctx);
  return r < 0 ? r : 0;
}

START_TEST(test_mem_ctx_and_register_fail_cleanly) {
  long n;

  for (n = 0;; n++) {
    int r;
    fail_at(n);
    r = ctx_scenario();
    fsd_mem_set_allocator(NULL);
    ck_assert_int_eq(fm.live, 0); /* nothing leaked */
    if (!fm.failed) {
      ck_assert_int_eq(r, 0);
      break;
    }
    ck_assert(r == 0 || r == UV_ENOMEM);
  }
  ck_assert_int_gt(n, 2); /* the ring, the buckets and entries were tried */
}
END_TEST

START_TEST(test_mem_bufpool_get_fails_with_null) {
  struct fsd_bufpool p;
  struct fsd_buf *b;

  fsd_bufpool_init(&p, 64, 64, 0, 4, 1 << 20);
  fail_at(0);
  ck_assert_ptr_null(fsd_bufpool_get(&p, 64));
  b = fsd_bufpool_get(&p, 64); /* the next one works */
  ck_assert_ptr_nonnull(b);
  fsd_bufpool_put(&p, b);
  fsd_bufpool_free(&p);
  fsd_mem_set_allocator(NULL);
  ck_assert_int_eq(fm.live, 0);
}
END_TEST

Suite *mem_suite(void) {
  Suite *s = suite_create("mem");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_mem_ctx_and_register_fail_cleanly);
  tcase_add_test(tc, test_mem_bufpool_get_fails_with_null);
  suite_add_tcase(s, tc);
  return s;
}
