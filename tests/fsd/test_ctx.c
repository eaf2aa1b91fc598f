/* Server-wide state: the event ring and register updates. */
#include <fsproto/fsproto.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "suites.h"

START_TEST(test_ctx_update_emits_kinds_and_seq) {
  struct fsd_ctx ctx;
  const struct fsd_event *ev;

  ck_assert_int_eq(fsd_ctx_init(&ctx, 42), 0);
  ck_assert_uint_eq(ctx.epoch, 42);
  ck_assert_uint_eq(ctx.seq, 0);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 5, 100), FSP_EV_ADDED);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 5, 100), 0);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 6, 101), FSP_EV_REPLACED);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 0, 0, 200), FSP_EV_REMOVED);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 0, 0, 201), 0);
  ck_assert_uint_eq(ctx.seq, 3);
  ev = fsd_ctx_event(&ctx, 2);
  ck_assert_ptr_nonnull(ev);
  ck_assert_uint_eq(ev->kind, FSP_EV_REPLACED);
  ck_assert_uint_eq(ev->size, 6);
  ev = fsd_ctx_event(&ctx, 3);
  ck_assert_uint_eq(ev->kind, FSP_EV_REMOVED);
  ck_assert_uint_eq(ev->size, 0);
  ck_assert_int_eq(ev->mtime_ns, 200);
  ck_assert_mem_eq(ev->name, "a", 1);
  ck_assert_ptr_null(fsd_ctx_event(&ctx, 0));
  ck_assert_ptr_null(fsd_ctx_event(&ctx, 4));
  fsd_ctx_free(&ctx);
}
END_TEST

START_TEST(test_ctx_ring_keeps_last_4096) {
  struct fsd_ctx ctx;
  char name[16];

  ck_assert_int_eq(fsd_ctx_init(&ctx, 1), 0);
  for (int i = 0; i < 5000; i++) {
    int n = snprintf(name, sizeof(name), "f%d", i);
    ck_assert_int_eq(fsd_ctx_update(&ctx, name, (size_t)n, 1, 1, 1),
                     FSP_EV_ADDED);
  }
  ck_assert_uint_eq(ctx.seq, 5000);
  ck_assert_ptr_null(fsd_ctx_event(&ctx, 5000 - FSD_RING_SIZE));
  ck_assert_ptr_nonnull(fsd_ctx_event(&ctx, 5000 - FSD_RING_SIZE + 1));
  ck_assert_mem_eq(fsd_ctx_event(&ctx, 4999)->name, "f4998", 5);
  fsd_ctx_free(&ctx);
}
END_TEST

/* Regression: replaces with the same size and mtime (one tick of the file
 * system's clock) made no event. The inode and ctime tell them apart; only
 * the very same version twice (our commit, then the watcher's stat of it)
 * is not a change. */
START_TEST(test_ctx_same_size_and_mtime_still_one_event_each) {
  struct fsd_ctx ctx;

  ck_assert_int_eq(fsd_ctx_init(&ctx, 42), 0);
  for (uint64_t i = 0; i < 1000; i++) {
    struct fsd_stamp st = {8, 1700000000000000000, 1000 + i,
                           1700000000000000000};
    ck_assert_int_eq(fsd_ctx_put(&ctx, "f", 1, &st),
                     i == 0 ? FSP_EV_ADDED : FSP_EV_REPLACED);
    ck_assert_int_eq(fsd_ctx_put(&ctx, "f", 1, &st), 0);
    ck_assert_uint_eq(ctx.seq, i + 1);
  }
  /* A write in place: same inode, same size and mtime, a new ctime. */
  ck_assert_int_eq(fsd_ctx_put(&ctx, "f", 1,
                               &(struct fsd_stamp){8, 1700000000000000000, 1999,
                                                   1700000000000000001}),
                   FSP_EV_REPLACED);
  ck_assert_uint_eq(ctx.seq, 1001);
  ck_assert_uint_eq(fsd_ctx_event(&ctx, 1001)->kind, FSP_EV_REPLACED);
  fsd_ctx_free(&ctx);
}
END_TEST

Suite *ctx_suite(void) {
  Suite *s = suite_create("ctx");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_ctx_update_emits_kinds_and_seq);
  tcase_add_test(tc, test_ctx_ring_keeps_last_4096);
  tcase_add_test(tc, test_ctx_same_size_and_mtime_still_one_event_each);
  suite_add_tcase(s, tc);
  return s;
}
