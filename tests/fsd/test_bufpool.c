/* Buffers and the pool of spares. */
#include <string.h>

#include "bufpool.h"
#include "suites.h"

START_TEST(test_bufpool_reuses_given_back_buffer) {
  struct fsd_bufpool p;
  struct fsd_buf *a, *b;

  fsd_bufpool_init(&p, 256, 256, 0, 4, 1 << 20);
  a = fsd_bufpool_get(&p, 256);
  ck_assert_ptr_nonnull(a);
  ck_assert_uint_ge(a->cap, 256);
  ck_assert_uint_eq(a->refs, 1);
  ck_assert_uint_eq(a->len, 0);
  a->len = 10;
  fsd_bufpool_put(&p, a);
  ck_assert_uint_eq(p.n, 1);
  b = fsd_bufpool_get(&p, 256);
  ck_assert_ptr_eq(a, b); /* the spare, emptied */
  ck_assert_uint_eq(b->len, 0);
  ck_assert_uint_eq(p.n, 0);
  fsd_bufpool_put(&p, b);
  fsd_bufpool_free(&p);
  ck_assert_uint_eq(p.n, 0);
}
END_TEST

START_TEST(test_bufpool_keeps_only_kept_sizes_within_limits) {
  struct fsd_bufpool p;
  struct fsd_buf *small, *bufs[3];

  fsd_bufpool_init(&p, 1000, (size_t)-1, 1000, 2, 2500);
  /* Smaller than keep_min: freed, never kept, never rounded. */
  small = fsd_bufpool_get(&p, 10);
  ck_assert_uint_eq(small->cap, 10);
  fsd_bufpool_put(&p, small);
  ck_assert_uint_eq(p.n, 0);
  /* Above keep_min: rounded up to a multiple of round. */
  for (int i = 0; i < 3; i++) {
    bufs[i] = fsd_bufpool_get(&p, 1001);
    ck_assert_uint_eq(bufs[i]->cap, 2000);
  }
  fsd_bufpool_put(&p, bufs[0]);
  ck_assert_uint_eq(p.n, 1);
  /* A second one would pass max_bytes (4000 > 2500): freed. */
  fsd_bufpool_put(&p, bufs[1]);
  ck_assert_uint_eq(p.n, 1);
  ck_assert_uint_eq(p.bytes, 2000);
  fsd_bufpool_put(&p, bufs[2]);
  ck_assert_uint_eq(p.n, 1);
  fsd_bufpool_free(&p);
}
END_TEST

START_TEST(test_bufpool_picks_smallest_fit) {
  struct fsd_bufpool p;
  struct fsd_buf *big, *mid, *got;

  fsd_bufpool_init(&p, 100, (size_t)-1, 0, 8, 1 << 20);
  big = fsd_bufpool_get(&p, 5000);
  mid = fsd_bufpool_get(&p, 2000);
  fsd_bufpool_put(&p, big);
  fsd_bufpool_put(&p, mid);
  got = fsd_bufpool_get(&p, 1500);
  ck_assert_ptr_eq(got, mid);
  fsd_bufpool_put(&p, got);
  got = fsd_bufpool_get(&p, 3000);
  ck_assert_ptr_eq(got, big);
  fsd_bufpool_put(&p, got);
  /* Nothing big enough: a new buffer. */
  got = fsd_bufpool_get(&p, 6000);
  ck_assert_ptr_ne(got, big);
  ck_assert_uint_eq(got->cap, 6000);
  fsd_buf_free(got);
  fsd_bufpool_free(&p);
}
END_TEST

START_TEST(test_bufpool_refs_hold_buffer) {
  struct fsd_bufpool p;
  struct fsd_buf *b;

  fsd_bufpool_init(&p, 100, 100, 0, 8, 1 << 20);
  b = fsd_bufpool_get(&p, 100);
  b->refs++; /* a disk write points into it */
  fsd_buf_unref(&p, b);
  ck_assert_uint_eq(p.n, 0); /* still held */
  fsd_buf_unref(&p, b);
  ck_assert_uint_eq(p.n, 1);
  fsd_bufpool_free(&p);
}
END_TEST

START_TEST(test_bufpool_trim_frees_spares_of_idle_pool) {
  struct fsd_bufpool p;
  struct fsd_buf *a, *b;

  fsd_bufpool_init(&p, 64, 64, 0, 8, 1 << 20);
  a = fsd_bufpool_get(&p, 64);
  b = fsd_bufpool_get(&p, 64);
  fsd_bufpool_put(&p, a);
  fsd_bufpool_put(&p, b);
  a = fsd_bufpool_get(&p, 64); /* taken in this period */
  fsd_bufpool_trim(&p);
  ck_assert_uint_eq(p.n, 1); /* kept: the pool is in use */
  fsd_bufpool_trim(&p);
  ck_assert_uint_eq(p.n, 0); /* a period without takers */
  fsd_bufpool_put(&p, a);
  fsd_bufpool_free(&p);
}
END_TEST

Suite *bufpool_suite(void) {
  Suite *s = suite_create("bufpool");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_bufpool_reuses_given_back_buffer);
  tcase_add_test(tc, test_bufpool_keeps_only_kept_sizes_within_limits);
  tcase_add_test(tc, test_bufpool_picks_smallest_fit);
  tcase_add_test(tc, test_bufpool_refs_hold_buffer);
  tcase_add_test(tc, test_bufpool_trim_frees_spares_of_idle_pool);
  suite_add_tcase(s, tc);
  return s;
}
