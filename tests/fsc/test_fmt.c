/* Tests of fsc's output formatting (client/fmt.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmt.h"
#include "suites.h"

static struct fsp_str str(const char *s) {
  struct fsp_str r = {s, strlen(s)};
  return r;
}

START_TEST(test_fmt_human_sizes) {
  char b[32];
  fsc_fmt_human(b, sizeof b, 0);
  ck_assert_str_eq(b, "0");
  fsc_fmt_human(b, sizeof b, 1023);
  ck_assert_str_eq(b, "1023");
  fsc_fmt_human(b, sizeof b, 1024);
  ck_assert_str_eq(b, "1.0K");
  fsc_fmt_human(b, sizeof b, 1536);
  ck_assert_str_eq(b, "1.5K");
  /* Rounded up, never shown smaller than it is. */
  fsc_fmt_human(b, sizeof b, 1025);
  ck_assert_str_eq(b, "1.1K");
  fsc_fmt_human(b, sizeof b, 10 * 1024);
  ck_assert_str_eq(b, "10K");
  fsc_fmt_human(b, sizeof b, 1048576);
  ck_assert_str_eq(b, "1.0M");
  fsc_fmt_human(b, sizeof b, 1048575);
  ck_assert_str_eq(b, "1.0M");
  fsc_fmt_human(b, sizeof b, 1073741824ull * 5 / 2);
  ck_assert_str_eq(b, "2.5G");
  fsc_fmt_human(b, sizeof b, UINT64_MAX);
  ck_assert_str_eq(b, "16E");
  fsc_fmt_size(b, sizeof b, 123456789, 0);
  ck_assert_str_eq(b, "123456789");
  /* snprintf contract: the needed length comes back, output is cut. */
  ck_assert_uint_eq(fsc_fmt_size(b, 4, 123456789, 0), 9);
  ck_assert_str_eq(b, "123");
}
END_TEST

START_TEST(test_fmt_escape_controls) {
  char b[128];
  fsc_fmt_escape(b, sizeof b, "plain.txt", 9);
  ck_assert_str_eq(b, "plain.txt");
  /* An escape sequence that would clear the screen is made visible. */
  fsc_fmt_escape(b, sizeof b, "a\x1b[2Jb\n\x7f", 8);
  ck_assert_str_eq(b, "a\\x1b[2Jb\\x0a\\x7f");
  /* UTF-8 text passes, C1 CSI (U+009B) does not, nor do broken bytes. */
  fsc_fmt_escape(b, sizeof b, "caf\xc3\xa9 \xc2\x9b \xff", 10);
  ck_assert_str_eq(b, "caf\xc3\xa9 \\u009b \\xff");
  /* A NUL inside is escaped, not an end. */
  fsc_fmt_escape(b, sizeof b, "a\0b", 3);
  ck_assert_str_eq(b, "a\\x00b");
  /* Escaping twice changes nothing more: an error line may escape a
   * message that holds the server's words, escaped already. */
  char twice[128];
  fsc_fmt_escape(b, sizeof b, "caf\xc3\xa9 \xc2\x9b\x1b\\x", 10);
  fsc_fmt_escape(twice, sizeof twice, b, strlen(b));
  ck_assert_str_eq(twice, b);
}
END_TEST

START_TEST(test_fmt_json_strings) {
  char b[128];
  fsc_fmt_json_str(b, sizeof b, "a\"b\\c\n\x01", 7);
  ck_assert_str_eq(b, "\"a\\\"b\\\\c\\n\\u0001\"");
  fsc_fmt_json_str(b, sizeof b, "\xe2\x82\xac\xff", 4);
  ck_assert_str_eq(b, "\"\xe2\x82\xac\\ufffd\"");
}
END_TEST

START_TEST(test_fmt_ls_lines) {
  char b[256];
  setenv("TZ", "UTC", 1);
  struct fsp_entry e = {1234, 1700000000123456789, str("a.txt"), 0};
  fsc_fmt_ls_line(b, sizeof b, &e, 0, 0, 0);
  ck_assert_str_eq(b, "a.txt");
  fsc_fmt_ls_line(b, sizeof b, &e, 1, 0, 6);
  ck_assert_str_eq(b, "  1234  2023-11-14 22:13  a.txt");
  e.size = 4096;
  fsc_fmt_ls_line(b, sizeof b, &e, 1, 1, 4);
  ck_assert_str_eq(b, "4.0K  2023-11-14 22:13  a.txt");
  fsc_fmt_ls_json(b, sizeof b, &e);
  ck_assert_str_eq(b, "{\"name\":\"a.txt\",\"size\":4096,"
                      "\"mtime_ns\":1700000000123456789}");
  /* A hostile name never reaches the terminal raw. */
  struct fsp_entry h = {1, 0, str("x\x1b]0;pwned\x07"), 0};
  fsc_fmt_ls_line(b, sizeof b, &h, 0, 0, 0);
  ck_assert_str_eq(b, "x\\x1b]0;pwned\\x07");
}
END_TEST

START_TEST(test_fmt_push_lines) {
  char b[512];
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_EVENT;
  m.u.event.seq = 42;
  m.u.event.kind = FSP_EV_ADDED;
  m.u.event.file.size = 5;
  m.u.event.file.mtime_ns = 7;
  m.u.event.file.name = str("a.txt");
  fsc_fmt_push(b, sizeof b, &m, 0);
  ck_assert_str_eq(b, "added a.txt (5 bytes)");
  fsc_fmt_push(b, sizeof b, &m, 1);
  ck_assert_str_eq(b, "{\"type\":\"event\",\"seq\":42,\"kind\":\"added\","
                      "\"name\":\"a.txt\",\"size\":5,\"mtime_ns\":7}");
  m.u.event.kind = FSP_EV_REMOVED;
  fsc_fmt_push(b, sizeof b, &m, 0);
  ck_assert_str_eq(b, "removed a.txt");

  memset(&m, 0, sizeof m);
  m.op = FSP_OP_NOTIFY;
  m.u.text = str("hi\x1b[31m there");
  fsc_fmt_push(b, sizeof b, &m, 0);
  ck_assert_str_eq(b, "notice: hi\\x1b[31m there");
  fsc_fmt_push(b, sizeof b, &m, 1);
  ck_assert_str_eq(b, "{\"type\":\"notice\",\"text\":\"hi\\u001b[31m there\"}");

  m.op = FSP_OP_RESYNC;
  m.u.sub.epoch = 3;
  m.u.sub.seq = 9;
  fsc_fmt_push(b, sizeof b, &m, 1);
  ck_assert_str_eq(b, "{\"type\":\"resync\",\"epoch\":3,\"seq\":9}");
  m.op = FSP_OP_OK;
  ck_assert_uint_eq(fsc_fmt_push(b, sizeof b, &m, 0), 0);
}
END_TEST

/* Version 3: folders are marked with a trailing '/' (ls) and a "type"
 * (JSON); a file's JSON says "file"; version 1 entries (type 0) keep their
 * old JSON. */
START_TEST(test_fmt_folders_and_paths) {
  char b[256];
  setenv("TZ", "UTC", 1);
  struct fsp_entry d = {0, 1700000000123456789, str("photos/2024"),
                        FSP_TYPE_FOLDER};
  fsc_fmt_ls_line(b, sizeof b, &d, 0, 0, 0);
  ck_assert_str_eq(b, "photos/2024/");
  fsc_fmt_ls_line(b, sizeof b, &d, 1, 0, 4);
  ck_assert_str_eq(b, "   -  2023-11-14 22:13  photos/2024/");
  fsc_fmt_ls_json(b, sizeof b, &d);
  ck_assert_str_eq(b, "{\"name\":\"photos/2024\",\"type\":\"folder\","
                      "\"size\":0,\"mtime_ns\":1700000000123456789}");
  struct fsp_entry f = {3, 5, str("a b/\xc3\xa9.txt"), FSP_TYPE_FILE};
  fsc_fmt_ls_line(b, sizeof b, &f, 0, 0, 0);
  ck_assert_str_eq(b, "a b/\xc3\xa9.txt");
  fsc_fmt_ls_json(b, sizeof b, &f);
  ck_assert_str_eq(b, "{\"name\":\"a b/\xc3\xa9.txt\",\"type\":\"file\","
                      "\"size\":3,\"mtime_ns\":5}");
}
END_TEST

START_TEST(test_fmt_push_tree_events) {
  char b[512];
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_EVENT;
  m.u.event.seq = 43;
  m.u.event.kind = FSP_EV_RENAMED;
  m.u.event.file.size = 5;
  m.u.event.file.mtime_ns = 7;
  m.u.event.file.type = FSP_TYPE_FILE;
  m.u.event.file.name = str("b/y.txt");
  m.u.event.from = str("a/x.txt");
  fsc_fmt_push(b, sizeof b, &m, 0);
  ck_assert_str_eq(b, "renamed a/x.txt -> b/y.txt");
  fsc_fmt_push(b, sizeof b, &m, 1);
  ck_assert_str_eq(b, "{\"type\":\"event\",\"seq\":43,\"kind\":\"renamed\","
                      "\"name\":\"b/y.txt\",\"from\":\"a/x.txt\","
                      "\"entry\":\"file\",\"size\":5,\"mtime_ns\":7}");
  m.u.event.kind = FSP_EV_ADDED;
  m.u.event.file.type = FSP_TYPE_FOLDER;
  m.u.event.file.size = 0;
  m.u.event.file.name = str("new/dir");
  m.u.event.from = str("");
  fsc_fmt_push(b, sizeof b, &m, 0);
  ck_assert_str_eq(b, "added new/dir/");
  m.u.event.kind = FSP_EV_RENAMED;
  m.u.event.from = str("old\x1b");
  fsc_fmt_push(b, sizeof b, &m, 0);
  ck_assert_str_eq(b, "renamed old\\x1b/ -> new/dir/");
}
END_TEST

START_TEST(test_fmt_push_long_notice) {
  /* A 4096-byte notice full of control bytes is escaped whole, even across
   * the pieces the formatter works in, and multi-byte characters survive. */
  static char text[4096];
  static char out[6 * 4096 + 64];
  for (size_t i = 0; i < sizeof text; i += 4)
    memcpy(text + i,
           i % 8 ? "\xe2\x82\xac\x01"
                 : "ab\x1b"
                   "c",
           4);
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_NOTIFY;
  m.u.text.ptr = text;
  m.u.text.len = sizeof text;
  size_t n = fsc_fmt_push(out, sizeof out, &m, 0);
  ck_assert_uint_eq(n, strlen(out));
  ck_assert_ptr_null(strchr(out, 0x1b));
  ck_assert_ptr_null(strchr(out, 0x01));
  ck_assert_ptr_nonnull(strstr(out, "ab\\x1bc\xe2\x82\xac\\x01ab"));
}
END_TEST

START_TEST(test_fmt_progress_bar) {
  char b[256];
  fsc_fmt_progress(b, sizeof b, 80, "big.bin", 512 * 1024, 1024 * 1024,
                   256 * 1024);
  ck_assert_ptr_nonnull(strstr(b, "big.bin"));
  ck_assert_ptr_nonnull(strstr(b, " 50%"));
  ck_assert_ptr_nonnull(strstr(b, "512K/1.0M"));
  ck_assert_ptr_nonnull(strstr(b, "256K/s"));
  ck_assert_ptr_nonnull(strstr(b, "ETA 0:02"));
  ck_assert_int_le((int)strlen(b), 80);
  /* Narrow terminal: still fits. */
  fsc_fmt_progress(b, sizeof b, 40, "a-very-long-file-name.iso", 1, 3, 1);
  ck_assert_int_le((int)strlen(b), 40);
  /* Unknown total: no percentage, no ETA. */
  fsc_fmt_progress(b, sizeof b, 80, "x", 2048, 0, 0);
  ck_assert_ptr_null(strchr(b, '%'));
  ck_assert_ptr_null(strstr(b, "ETA"));
  ck_assert_ptr_nonnull(strstr(b, "2.0K"));
}
END_TEST

static char grid[8][128];
static int ngrid;

static void collect(void *arg, const char *line) {
  (void)arg;
  if (ngrid < 8)
    snprintf(grid[ngrid++], sizeof grid[0], "%s", line);
}

START_TEST(test_fmt_columns_like_ls) {
  const char *names[] = {"a", "bb", "ccc", "d", "caf\xc3\xa9", "f", "g"};
  ngrid = 0;
  /* Widest is 4 columns (the UTF-8 name counts 4), so a column is 6 wide;
   * 20 columns fit 3 across, giving 3 rows filled top to bottom. */
  fsc_fmt_columns(names, 7, 20, collect, NULL);
  ck_assert_int_eq(ngrid, 3);
  ck_assert_str_eq(grid[0], "a     d     g");
  ck_assert_str_eq(grid[1], "bb    caf\xc3\xa9");
  ck_assert_str_eq(grid[2], "ccc   f");
  /* Too narrow for two columns: one name per line. */
  ngrid = 0;
  fsc_fmt_columns(names, 3, 4, collect, NULL);
  ck_assert_int_eq(ngrid, 3);
  ck_assert_str_eq(grid[2], "ccc");
  ngrid = 0;
  fsc_fmt_columns(names, 0, 80, collect, NULL);
  ck_assert_int_eq(ngrid, 0);
}
END_TEST

Suite *fmt_suite(void) {
  Suite *s = suite_create("fmt");
  TCase *tc = tcase_create("fmt");
  tcase_add_test(tc, test_fmt_human_sizes);
  tcase_add_test(tc, test_fmt_escape_controls);
  tcase_add_test(tc, test_fmt_json_strings);
  tcase_add_test(tc, test_fmt_ls_lines);
  tcase_add_test(tc, test_fmt_push_lines);
  tcase_add_test(tc, test_fmt_push_long_notice);
  tcase_add_test(tc, test_fmt_folders_and_paths);
  tcase_add_test(tc, test_fmt_push_tree_events);
  tcase_add_test(tc, test_fmt_progress_bar);
  tcase_add_test(tc, test_fmt_columns_like_ls);
  suite_add_tcase(s, tc);
  return s;
}
