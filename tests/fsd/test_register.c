/* The register: fsd's in-memory index of files. */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include <fsproto/fsproto.h>

#include "register.h"
#include "suites.h"

START_TEST(test_register_set_get_update_remove) {
  struct fsd_register reg;
  struct fsd_file *f;

  ck_assert_int_eq(fsd_register_init(&reg), 0);
  ck_assert_ptr_null(fsd_register_get(&reg, "a.txt", 5));
  ck_assert_int_eq(fsd_register_set(&reg, "a.txt", 5, 10, 100), 1);
  f = fsd_register_get(&reg, "a.txt", 5);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(f->size, 10);
  ck_assert_int_eq(f->mtime_ns, 100);
  /* Same values: nothing changed, no event. */
  ck_assert_int_eq(fsd_register_set(&reg, "a.txt", 5, 10, 100), 0);
  ck_assert_int_eq(fsd_register_set(&reg, "a.txt", 5, 11, 100), 2);
  ck_assert_uint_eq(fsd_register_get(&reg, "a.txt", 5)->size, 11);
  /* A prefix is another name. */
  ck_assert_ptr_null(fsd_register_get(&reg, "a.tx", 4));
  ck_assert_uint_eq(reg.count, 1);
  ck_assert_int_eq(fsd_register_remove(&reg, "a.txt", 5), 1);
  ck_assert_int_eq(fsd_register_remove(&reg, "a.txt", 5), 0);
  ck_assert_ptr_null(fsd_register_get(&reg, "a.txt", 5));
  ck_assert_uint_eq(reg.count, 0);
  fsd_register_free(&reg);
}
END_TEST

/* A version is size, mtime, inode and ctime: any of them moving is a
 * change, the four unchanged is none. */
START_TEST(test_register_version_is_four_fields) {
  struct fsd_register reg;
  struct fsd_stamp st = {10, 100, 7, 200};
  const struct fsd_file *f;

  ck_assert_int_eq(fsd_register_init(&reg), 0);
  ck_assert_int_eq(fsd_register_put(&reg, "a", 1, &st), 1);
  ck_assert_int_eq(fsd_register_put(&reg, "a", 1, &st), 0);
  st.ino = 8; /* replaced by a new file of the same size and mtime */
  ck_assert_int_eq(fsd_register_put(&reg, "a", 1, &st), 2);
  st.ctime_ns = 201; /* written in place within one mtime tick */
  ck_assert_int_eq(fsd_register_put(&reg, "a", 1, &st), 2);
  st.size = 11;
  ck_assert_int_eq(fsd_register_put(&reg, "a", 1, &st), 2);
  st.mtime_ns = 101;
  ck_assert_int_eq(fsd_register_put(&reg, "a", 1, &st), 2);
  ck_assert_int_eq(fsd_register_put(&reg, "a", 1, &st), 0);
  f = fsd_register_get(&reg, "a", 1);
  ck_assert_uint_eq(f->ino, 8);
  ck_assert_int_eq(f->ctime_ns, 201);
  ck_assert_uint_eq(f->size, 11);
  ck_assert_int_eq(f->mtime_ns, 101);
  fsd_register_free(&reg);
}
END_TEST

START_TEST(test_register_rejects_bad_lengths) {
  struct fsd_register reg;
  char big[FSP_PATH_MAX + 8];

  /* Keys are paths (protocol.md section 12), up to FSP_PATH_MAX bytes. */
  memset(big, 'x', sizeof(big));
  ck_assert_int_eq(fsd_register_init(&reg), 0);
  ck_assert_int_eq(fsd_register_set(&reg, "", 0, 1, 1), UV_EINVAL);
  ck_assert_int_eq(fsd_register_set(&reg, big, FSP_PATH_MAX + 1, 1, 1),
                   UV_EINVAL);
  ck_assert_int_eq(fsd_register_set(&reg, big, FSP_PATH_MAX, 1, 1), 1);
  fsd_register_free(&reg);
}
END_TEST

static int count_each(void *arg, const struct fsd_file *f) {
  size_t *n = arg;
  (*n)++;
  return f->size == 999999 ? 7 : 0;
}

START_TEST(test_register_grows_and_visits_all) {
  struct fsd_register reg;
  char name[32];
  size_t n = 0;

  ck_assert_int_eq(fsd_register_init(&reg), 0);
  for (int i = 0; i < 20000; i++) {
    int len = snprintf(name, sizeof(name), "file-%d", i);
    ck_assert_int_eq(fsd_register_set(&reg, name, (size_t)len, (uint64_t)i, i),
                     1);
  }
  ck_assert_uint_eq(reg.count, 20000);
  ck_assert_uint_ge(reg.nbuckets, 16384);
  for (int i = 0; i < 20000; i += 997) {
    int len = snprintf(name, sizeof(name), "file-%d", i);
    struct fsd_file *f = fsd_register_get(&reg, name, (size_t)len);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(f->size, (uint64_t)i);
  }
  ck_assert_int_eq(fsd_register_each(&reg, count_each, &n), 0);
  ck_assert_uint_eq(n, 20000);
  /* A non-zero return stops the walk and is passed on. */
  fsd_register_set(&reg, "stop", 4, 999999, 0);
  n = 0;
  ck_assert_int_eq(fsd_register_each(&reg, count_each, &n), 7);
  ck_assert_uint_le(n, 20001);
  fsd_register_free(&reg);
}
END_TEST

START_TEST(test_register_generation_moves_on_change) {
  struct fsd_register reg;
  uint64_t g;

  ck_assert_int_eq(fsd_register_init(&reg), 0);
  g = reg.gen;
  fsd_register_set(&reg, "a", 1, 1, 1);
  ck_assert_uint_gt(reg.gen, g);
  g = reg.gen;
  fsd_register_set(&reg, "a", 1, 1, 1);
  ck_assert_uint_eq(reg.gen, g);
  fsd_register_remove(&reg, "a", 1);
  ck_assert_uint_gt(reg.gen, g);
  fsd_register_free(&reg);
}
END_TEST

static int mark_seen(void *arg, const struct fsd_file *f) {
  unsigned char *seen = arg;
  char name[32];
  int i = -1;

  /* Names in the register are not NUL-terminated. */
  ck_assert_uint_lt(f->name_len, sizeof(name));
  memcpy(name, f->name, f->name_len);
  name[f->name_len] = '\0';
  ck_assert_int_eq(sscanf(name, "n%d", &i), 1);
  ck_assert(i >= 0 && i < 9000);
  seen[i]++;
  return 0;
}

/* Entries present for the whole walk are seen exactly once, even when the
 * map doubles several times between steps. */
START_TEST(test_register_scan_survives_growth) {
  static unsigned char seen[9000];
  struct fsd_register reg;
  char name[32];
  uint64_t cursor = 0;
  int steps = 0, added = 100;

  memset(seen, 0, sizeof(seen));
  ck_assert_int_eq(fsd_register_init(&reg), 0);
  for (int i = 0; i < added; i++) {
    int n = snprintf(name, sizeof(name), "n%d", i);
    fsd_register_set(&reg, name, (size_t)n, 0, 0);
  }
  do {
    cursor = fsd_register_scan(&reg, cursor, mark_seen, seen);
    steps++;
    if (steps % 3 == 0 && added < 8000) {
      for (int k = 0; k < 400; k++, added++) {
        int n = snprintf(name, sizeof(name), "n%d", added);
        fsd_register_set(&reg, name, (size_t)n, 0, 0);
      }
    }
  } while (cursor != 0);
  ck_assert_uint_gt(reg.nbuckets, 64);
  for (int i = 0; i < 100; i++)
    ck_assert_msg(seen[i] == 1, "entry %d seen %d times", i, seen[i]);
  for (int i = 100; i < added; i++)
    ck_assert_msg(seen[i] <= 1, "entry %d seen %d times", i, seen[i]);
  fsd_register_free(&reg);
}
END_TEST

Suite *register_suite(void) {
  Suite *s = suite_create("register");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_register_set_get_update_remove);
  tcase_add_test(tc, test_register_version_is_four_fields);
  tcase_add_test(tc, test_register_rejects_bad_lengths);
  tcase_add_test(tc, test_register_grows_and_visits_all);
  tcase_add_test(tc, test_register_generation_moves_on_change);
  tcase_add_test(tc, test_register_scan_survives_growth);
  suite_add_tcase(s, tc);
  return s;
}
