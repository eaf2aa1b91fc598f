/* Tests of fsc's remote paths (client/rpath.c): the shell's current folder,
 * paths typed relative to it, and the local paths of a recursive download,
 * which must stay beneath the chosen folder whatever the server sends. */
#include <string.h>

#include "rpath.h"
#include "suites.h"

static const char *resolve(const char *cwd, const char *arg) {
  static char buf[FSP_PATH_MAX + 1];
  if (fsc_rpath_resolve(buf, sizeof buf, cwd, arg) < 0)
    return NULL;
  return buf;
}

START_TEST(test_rpath_resolve_like_a_shell) {
  ck_assert_str_eq(resolve("", "a"), "a");
  ck_assert_str_eq(resolve("", "a/b/"), "a/b");
  ck_assert_str_eq(resolve("photos", "2024/a.jpg"), "photos/2024/a.jpg");
  ck_assert_str_eq(resolve("photos/2024", ".."), "photos");
  ck_assert_str_eq(resolve("photos/2024", "../.."), "");
  /* Nothing is above the top folder: such a path is refused. */
  ck_assert_ptr_null(resolve("photos", "../../x"));
  ck_assert_ptr_null(resolve("", ".."));
  ck_assert_ptr_null(resolve("", "../escape"));
  ck_assert_ptr_null(resolve("a", "/../a"));
  ck_assert_str_eq(resolve("photos", "/docs//a.txt"), "docs/a.txt");
  ck_assert_str_eq(resolve("photos", "/"), "");
  ck_assert_str_eq(resolve("photos", "."), "photos");
  ck_assert_str_eq(resolve("a/b", "./c/../d"), "a/b/d");
  ck_assert_str_eq(resolve("", ""), "");
  ck_assert_str_eq(resolve("caf\xc3\xa9", "x y"), "caf\xc3\xa9/x y");
}
END_TEST

START_TEST(test_rpath_resolve_too_long) {
  static char big[FSP_PATH_MAX + 2];
  char out[64];
  memset(big, 'a', FSP_PATH_MAX + 1);
  big[FSP_PATH_MAX + 1] = '\0';
  ck_assert_ptr_null(resolve("", big));
  ck_assert_int_eq(fsc_rpath_resolve(out, sizeof out, "", big + 4000), -1);
  big[FSP_PATH_MAX] = '\0';
  ck_assert_ptr_nonnull(resolve("", big));
}
END_TEST

START_TEST(test_rpath_join_and_base) {
  char out[32];
  ck_assert_int_eq(fsc_rpath_join(out, sizeof out, "", "a", 1), 1);
  ck_assert_str_eq(out, "a");
  ck_assert_int_eq(fsc_rpath_join(out, sizeof out, "d/e", "f.txt", 5), 9);
  ck_assert_str_eq(out, "d/e/f.txt");
  ck_assert_int_eq(fsc_rpath_join(out, 5, "d/e", "f.txt", 5), -1);
  ck_assert_str_eq(fsc_rpath_base("a/b/c.txt"), "c.txt");
  ck_assert_str_eq(fsc_rpath_base("c.txt"), "c.txt");
}
END_TEST

START_TEST(test_rpath_check_by_version) {
  ck_assert_int_eq(fsc_rpath_check(3, "a/b", 0), 0);
  ck_assert_int_eq(fsc_rpath_check(2, "a/b", 0), FSP_EBADNAME);
  ck_assert_int_eq(fsc_rpath_check(2, "a", 0), 0);
  ck_assert_int_eq(fsc_rpath_check(3, "", 0), FSP_EBADNAME);
  ck_assert_int_eq(fsc_rpath_check(3, "", 1), 0);
  ck_assert_int_eq(fsc_rpath_check(3, "a/../b", 1), FSP_EBADNAME);
  ck_assert_int_eq(fsc_rpath_check(3, "/a", 1), FSP_EBADNAME);
}
END_TEST

START_TEST(test_rpath_local_refuses_hostile_paths) {
  /* What a lying server may send in a recursive LIST: nothing may lead a
   * download outside -o DIR. */
  const char *bad[] = {"..",    "../x",     "a/../../x", "/etc/passwd",
                       "a//b",  "a/",       ".ssh/key",  "a/.hidden",
                       "a/./b", "x\x1b[2J", ""};
  char out[256];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_int_eq(
        fsc_rpath_local(out, sizeof out, "dl", bad[i], strlen(bad[i])), -1);
  /* An embedded NUL must not cut the path short. */
  ck_assert_int_eq(fsc_rpath_local(out, sizeof out, "dl", "a\0/../x", 7), -1);
  ck_assert_int_eq(fsc_rpath_local(out, sizeof out, "dl/", "a/b c.txt", 9), 0);
  ck_assert_str_eq(out, "dl/a/b c.txt");
  ck_assert_int_eq(fsc_rpath_local(out, sizeof out, "/", "x", 1), 0);
  ck_assert_str_eq(out, "/x");
  ck_assert_int_eq(fsc_rpath_local(out, 6, "dl", "abcdef", 6), -1);
}
END_TEST

START_TEST(test_rpath_msg_layout_by_version) {
  struct fsp_msg m;
  uint8_t buf[64];
  fsc_rpath_msg(&m, FSP_OP_DELETE, 3, FSP_DELETE_RECURSIVE, "old");
  m.id = 7;
  /* protocol.md section 12, "delete-recursive". */
  static const uint8_t want[] = {0xf5, 0x01, 0x12, 0, 0,    0,    0,    7,
                                 0,    0,    0,    4, 0x01, 0x6f, 0x6c, 0x64};
  ck_assert_int_eq(fsp_msg_encode_v(buf, sizeof buf, 3, &m), sizeof want);
  ck_assert_mem_eq(buf, want, sizeof want);
  fsc_rpath_msg(&m, FSP_OP_DELETE, 2, FSP_DELETE_RECURSIVE, "old");
  m.id = 7;
  ck_assert_int_eq(fsp_msg_encode_v(buf, sizeof buf, 2, &m), 12 + 3);
  fsc_rpath_msg(&m, FSP_OP_LIST, 2, FSP_LIST_RECURSIVE, "x");
  m.id = 1;
  ck_assert_int_eq(fsp_msg_encode_v(buf, sizeof buf, 2, &m), 12);
  fsc_rpath_msg(&m, FSP_OP_STAT, 3, 0, "a/b");
  ck_assert_int_eq(m.u.name.len, 3);
}
END_TEST

Suite *rpath_suite(void) {
  Suite *s = suite_create("rpath");
  TCase *tc = tcase_create("rpath");
  tcase_add_test(tc, test_rpath_resolve_like_a_shell);
  tcase_add_test(tc, test_rpath_resolve_too_long);
  tcase_add_test(tc, test_rpath_join_and_base);
  tcase_add_test(tc, test_rpath_check_by_version);
  tcase_add_test(tc, test_rpath_local_refuses_hostile_paths);
  tcase_add_test(tc, test_rpath_msg_layout_by_version);
  suite_add_tcase(s, tc);
  return s;
}
