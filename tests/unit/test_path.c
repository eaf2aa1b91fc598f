/* Path validation and subtree tests (path.c). */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

struct pcase {
  const char *s;
  size_t len; /* 0: strlen(s) */
  const char *why;
};

static size_t plen(const struct pcase *c) {
  return c->len != 0 ? c->len : strlen(c->s);
}

static const struct pcase good[] = {
    {"a", 0, "one name"},
    {"a/b", 0, "two names"},
    {"photos/2024/a b.jpg", 0, "spaces"},
    {"caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80", 0, "UTF-8"},
    {"a./b..", 0, "dots inside or at the end of a name"},
    {"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", 0, "deep"},
};

/* The attacks of protocol.md section 12, and every other way to break a
 * component. Each must be refused on its own. */
static const struct pcase bad[] = {
    {"", 0, "empty"},
    {"a/../../x", 0, "climbing out"},
    {"..", 0, "parent"},
    {"a/..", 0, "parent at the end"},
    {"../a", 0, "parent at the start"},
    {"a/./b", 0, "current folder"},
    {".", 0, "current folder alone"},
    {"./a", 0, "current folder first"},
    {"a//b", 0, "empty component"},
    {"/abs", 0, "absolute"},
    {"/", 0, "root as a slash"},
    {"a/", 0, "trailing slash"},
    {"a/b/", 0, "trailing slash, deeper"},
    {"a/.hidden", 0, "dotfile below"},
    {".hidden/a", 0, "dot folder"},
    {"a\0b", 3, "NUL inside a name"},
    {"a/\0", 3, "NUL as a name"},
    {"a/b\nc", 0, "newline"},
    {"a/\x1b[2J", 0, "escape"},
    {"a/\x7f", 0, "DEL"},
    {"a\\..\\b/\xc0\xaf", 0, "overlong '/' in the last name"},
    {"a/\xed\xa0\x80", 0, "surrogate"},
    {"a/\xff", 0, "not UTF-8"},
};

START_TEST(test_path_check_good) {
  const struct pcase *c = &good[_i];
  size_t len = plen(c);

  ck_assert_msg(fsp_path_check(c->s, len) == 0, "%s refused", c->why);
  ck_assert_int_eq(fsp_folder_path_check(c->s, len), 0);
}
END_TEST

START_TEST(test_path_check_bad) {
  const struct pcase *c = &bad[_i];
  size_t len = plen(c);
  uint8_t *g = th_guard_copy(c->s, len);

  /* The input ends at a guard page: a check that reads past it crashes. */
  ck_assert_msg(fsp_path_check(g, len) == FSP_EBADNAME, "%s accepted", c->why);
  if (len > 0)
    ck_assert_int_eq(fsp_folder_path_check(g, len), FSP_EBADNAME);
  th_guard_free(g, len);
}
END_TEST

/* A name is a path of one component, with the same limits. */
START_TEST(test_path_name_limit_per_component) {
  char buf[2 * 256 + 2];

  memset(buf, 'n', sizeof(buf));
  buf[255] = '/';
  ck_assert_int_eq(fsp_path_check(buf, 255), 0);
  ck_assert_int_eq(fsp_path_check(buf, 255 + 1 + 255), 0);
  ck_assert_int_eq(fsp_path_check(buf, 256 + 256), FSP_EBADNAME);
  buf[255] = 'n';
  ck_assert_int_eq(fsp_path_check(buf, 256), FSP_EBADNAME);
}
END_TEST

/* FSP_PATH_MAX bytes pass, one more does not, whatever the components. */
START_TEST(test_path_total_limit) {
  size_t cap = FSP_PATH_MAX + 2;
  char *buf = malloc(cap);

  ck_assert_ptr_nonnull(buf);
  /* Names of 15 bytes and a '/' fill 4096 bytes with a name at the end. */
  for (size_t i = 0; i < cap; i++)
    buf[i] = (i % 16 == 15) ? '/' : 'x';
  buf[FSP_PATH_MAX - 1] = 'x';
  buf[FSP_PATH_MAX] = 'x';
  ck_assert_int_eq(fsp_path_check(buf, FSP_PATH_MAX), 0);
  ck_assert_int_eq(fsp_path_check(buf, FSP_PATH_MAX + 1), FSP_EBADNAME);
  ck_assert_int_eq(fsp_path_check(buf, SIZE_MAX), FSP_EBADNAME);
  ck_assert_int_eq(fsp_path_check(NULL, 1), FSP_EBADNAME);
  free(buf);
}
END_TEST

START_TEST(test_path_folder_may_be_root) {
  ck_assert_int_eq(fsp_folder_path_check("", 0), 0);
  ck_assert_int_eq(fsp_folder_path_check(NULL, 0), 0);
  ck_assert_int_eq(fsp_path_check("", 0), FSP_EBADNAME);
}
END_TEST

START_TEST(test_path_within) {
  ck_assert_int_eq(fsp_path_within("a/b", 3, "a", 1), 1);
  ck_assert_int_eq(fsp_path_within("a", 1, "a", 1), 1);
  ck_assert_int_eq(fsp_path_within("ab", 2, "a", 1), 0);
  ck_assert_int_eq(fsp_path_within("ab/c", 4, "a", 1), 0);
  ck_assert_int_eq(fsp_path_within("a", 1, "a/b", 3), 0);
  ck_assert_int_eq(fsp_path_within("x/a/b", 5, "a", 1), 0);
  ck_assert_int_eq(fsp_path_within("anything", 8, "", 0), 1);
  ck_assert_int_eq(fsp_path_within("a/b/c", 5, "a/b", 3), 1);
  ck_assert_int_eq(fsp_path_within("a/bc", 4, "a/b", 3), 0);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *path_suite(void) {
  Suite *s = suite_create("path");
  TCase *tc = tcase_create("check");

  tcase_add_loop_test(tc, test_path_check_good, 0, N(good));
  tcase_add_loop_test(tc, test_path_check_bad, 0, N(bad));
  tcase_add_test(tc, test_path_name_limit_per_component);
  tcase_add_test(tc, test_path_total_limit);
  tcase_add_test(tc, test_path_folder_may_be_root);
  tcase_add_test(tc, test_path_within);
  suite_add_tcase(s, tc);
  return s;
}
