/* Disk space promised to uploads (server/space.c). */
#include <stdint.h>
#include <uv.h>

#include "space.h"
#include "suites.h"

#define MIB (1024ull * 1024)
#define GIB (1024ull * MIB)

START_TEST(test_space_default_min_free) {
  ck_assert_uint_eq(fsd_space_default_min_free(0), 256 * MIB);
  ck_assert_uint_eq(fsd_space_default_min_free(2 * GIB), 256 * MIB);
  /* Past 25.6 GiB, 1% is more. */
  ck_assert_uint_eq(fsd_space_default_min_free(100 * GIB), GIB);
  ck_assert_uint_eq(fsd_space_default_min_free(UINT64_MAX), UINT64_MAX / 100);
}
END_TEST

START_TEST(test_space_reserve_keeps_min_free) {
  struct fsd_space s;

  fsd_space_init(&s, 16 * MIB, 64 * MIB);
  ck_assert_int_eq(fsd_space_reserve(&s, 20 * GIB), UV_ENOSPC);
  ck_assert_int_eq(fsd_space_reserve(&s, UINT64_MAX), UV_ENOSPC);
  ck_assert_uint_eq(s.reserved, 0);
  ck_assert_int_eq(fsd_space_reserve(&s, 40 * MIB), 0);
  ck_assert_int_eq(fsd_space_reserve(&s, 20 * MIB), UV_ENOSPC);
  ck_assert_int_eq(fsd_space_reserve(&s, 8 * MIB), 0);
  ck_assert_int_eq(fsd_space_reserve(&s, 1), UV_ENOSPC);
  /* Exactly at the line: 64 - 16 = 48 = 40 + 8. */
  ck_assert_uint_eq(s.reserved, 48 * MIB);
  fsd_space_release(&s, 40 * MIB);
  ck_assert_int_eq(fsd_space_reserve(&s, 20 * MIB), 0);
}
END_TEST

/* Bytes written move from the reservation to the disk: the room left for
 * others does not change, until a look shows what really happened. */
START_TEST(test_space_used_and_seen) {
  struct fsd_space s;
  uint64_t mark;

  fsd_space_init(&s, 10 * MIB, 100 * MIB);
  ck_assert_int_eq(fsd_space_reserve(&s, 80 * MIB), 0);
  mark = fsd_space_mark(&s);
  fsd_space_used(&s, 80 * MIB);
  ck_assert_uint_eq(s.reserved, 0);
  ck_assert_uint_eq(s.avail, 20 * MIB);
  /* Another upload of 80 MiB: the disk has 20, not 100. */
  ck_assert_int_eq(fsd_space_reserve(&s, 80 * MIB), UV_ENOSPC);
  /* A look that failed changes nothing. */
  fsd_space_seen(&s, UINT64_MAX, mark);
  ck_assert_uint_eq(s.avail, 20 * MIB);
  /* A look that began before those writes may not show them. */
  fsd_space_seen(&s, 100 * MIB, mark);
  ck_assert_uint_eq(s.avail, 20 * MIB);
  /* A look after them shows them; another program freed 50 MiB. */
  fsd_space_seen(&s, 70 * MIB, fsd_space_mark(&s));
  ck_assert_uint_eq(s.avail, 70 * MIB);
  ck_assert_int_eq(fsd_space_reserve(&s, 60 * MIB), 0);
  /* A dropped upload's temp file is removed: its bytes are free again. */
  fsd_space_freed(&s, 10 * MIB);
  ck_assert_uint_eq(s.avail, 80 * MIB);
  fsd_space_freed(&s, UINT64_MAX);
  ck_assert_uint_eq(s.avail, UINT64_MAX);
  fsd_space_seen(&s, 70 * MIB, fsd_space_mark(&s));
  /* A look showing less than what we used since clamps at zero. */
  fsd_space_seen(&s, 1, mark);
  ck_assert_uint_eq(s.avail, 0);
  ck_assert_int_eq(fsd_space_reserve(&s, 1), UV_ENOSPC);
}
END_TEST

START_TEST(test_space_fits_edges) {
  ck_assert(fsd_space_fits(100, 0, 0, 100));
  ck_assert(!fsd_space_fits(100, 0, 0, 101));
  ck_assert(!fsd_space_fits(100, 0, 101, 0));
  ck_assert(!fsd_space_fits(100, 91, 10, 0));
  ck_assert(fsd_space_fits(100, 90, 10, 0));
  ck_assert(fsd_space_fits(UINT64_MAX, UINT64_MAX - 1, 0, 1));
  ck_assert(!fsd_space_fits(UINT64_MAX, UINT64_MAX - 1, 0, 2));
}
END_TEST

START_TEST(test_space_parse_size) {
  static const struct {
    const char *s;
    uint64_t v;
  } good[] = {
      {"0", 0},
      {"1048576", 1048576},
      {"512M", 512 * MIB},
      {"2G", 2 * GIB},
      {"2g", 2 * GIB},
      {"64k", 65536},
      {"1T", 1024 * GIB},
      {"3GiB", 3 * GIB},
      {"5MB", 5 * MIB},
      {"0G", 0},
      {"16777215T", 16777215ull << 40},
      {"18446744073709551615", UINT64_MAX},
  };
  static const char *const bad[] = {"",
                                    "x",
                                    "-1",
                                    " 1",
                                    "1 ",
                                    "12X",
                                    "1.5G",
                                    "G",
                                    "1GG",
                                    "1Gi",
                                    "16777216T",
                                    "18446744073709551616",
                                    "99999999999999999999T",
                                    "1iB",
                                    "1B"};
  uint64_t v;

  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    ck_assert_msg(fsd_parse_size(good[i].s, &v) == 0, "refused %s", good[i].s);
    ck_assert_uint_eq(v, good[i].v);
  }
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(fsd_parse_size(bad[i], &v) == UV_EINVAL, "accepted %s",
                  bad[i]);
}
END_TEST

Suite *space_suite(void) {
  Suite *s = suite_create("space");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_space_default_min_free);
  tcase_add_test(tc, test_space_reserve_keeps_min_free);
  tcase_add_test(tc, test_space_used_and_seen);
  tcase_add_test(tc, test_space_fits_edges);
  tcase_add_test(tc, test_space_parse_size);
  suite_add_tcase(s, tc);
  return s;
}
