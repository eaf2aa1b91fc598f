/* The hash cache of whole-file hashes. */
#include "hcache.h"
#include "suites.h"

#define NOW (100 * (int64_t)1000000000)

static struct fsd_file_id file(uint64_t ino, int64_t ctime_ns) {
  struct fsd_file_id id = {.dev = 1,
                           .ino = ino,
                           .size = 42,
                           .mtime_ns = ctime_ns,
                           .ctime_ns = ctime_ns};
  return id;
}

START_TEST(test_hcache_finds_same_version_only) {
  struct fsd_hcache hc;
  struct fsd_file_id id = file(7, NOW - 10 * (int64_t)1000000000);
  struct fsd_file_id other;
  uint64_t h = 0;

  fsd_hcache_init(&hc);
  ck_assert_int_eq(fsd_hcache_find(&hc, &id, &h), 0);
  ck_assert_int_eq(fsd_hcache_put(&hc, &id, 0xabc, NOW), 1);
  ck_assert_int_eq(fsd_hcache_find(&hc, &id, &h), 1);
  ck_assert_uint_eq(h, 0xabc);
  /* Any field that moved makes it another version. */
  other = id;
  other.size++;
  ck_assert_int_eq(fsd_hcache_find(&hc, &other, &h), 0);
  other = id;
  other.mtime_ns++;
  ck_assert_int_eq(fsd_hcache_find(&hc, &other, &h), 0);
  other = id;
  other.ctime_ns++;
  ck_assert_int_eq(fsd_hcache_find(&hc, &other, &h), 0);
  other = id;
  other.dev++;
  ck_assert_int_eq(fsd_hcache_find(&hc, &other, &h), 0);
}
END_TEST

START_TEST(test_hcache_skips_racily_recent_files) {
  struct fsd_hcache hc;
  struct fsd_file_id id = file(7, NOW - FSD_HCACHE_RACY_NS + 1);
  uint64_t h;

  fsd_hcache_init(&hc);
  ck_assert_int_eq(fsd_hcache_put(&hc, &id, 1, NOW), 0);
  ck_assert_int_eq(fsd_hcache_find(&hc, &id, &h), 0);
  id.ctime_ns = NOW - FSD_HCACHE_RACY_NS;
  ck_assert_int_eq(fsd_hcache_put(&hc, &id, 1, NOW), 1);
}
END_TEST

START_TEST(test_hcache_replaces_oldest_when_full) {
  struct fsd_hcache hc;
  struct fsd_file_id id;
  uint64_t h;

  fsd_hcache_init(&hc);
  for (uint64_t i = 1; i <= FSD_HCACHE_SLOTS + 1; i++) {
    id = file(i, 0);
    ck_assert_int_eq(fsd_hcache_put(&hc, &id, i, NOW), 1);
  }
  id = file(1, 0);
  ck_assert_int_eq(fsd_hcache_find(&hc, &id, &h), 0); /* replaced */
  id = file(2, 0);
  ck_assert_int_eq(fsd_hcache_find(&hc, &id, &h), 1);
  ck_assert_uint_eq(h, 2);
  id = file(FSD_HCACHE_SLOTS + 1, 0);
  ck_assert_int_eq(fsd_hcache_find(&hc, &id, &h), 1);
}
END_TEST

Suite *hcache_suite(void) {
  Suite *s = suite_create("hcache");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_hcache_finds_same_version_only);
  tcase_add_test(tc, test_hcache_skips_racily_recent_files);
  tcase_add_test(tc, test_hcache_replaces_oldest_when_full);
  suite_add_tcase(s, tc);
  return s;
}
