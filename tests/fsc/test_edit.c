/* Tests of the shell's line editor (client/edit.c), typing bytes as a
 * terminal in raw mode sends them. */
#include <string.h>

#include "edit.h"
#include "suites.h"

static enum fsc_edit_result type(struct fsc_edit *e, const char *keys) {
  enum fsc_edit_result r = FSC_EDIT_NONE;
  for (const char *p = keys; *p; p++)
    r = fsc_edit_key(e, (unsigned char)*p);
  return r;
}

START_TEST(test_edit_type_and_enter) {
  struct fsc_edit e;
  fsc_edit_init(&e);
  ck_assert_int_eq(type(&e, "ls -l"), FSC_EDIT_REDRAW);
  ck_assert_int_eq(type(&e, "\r"), FSC_EDIT_LINE);
  ck_assert_str_eq(fsc_edit_take(&e), "ls -l");
  ck_assert_uint_eq(e.len, 0);
  fsc_edit_free(&e);
}
END_TEST

START_TEST(test_edit_cursor_moves_and_deletes) {
  struct fsc_edit e;
  fsc_edit_init(&e);
  /* Type "get b", go left 1, insert "a ", so "get a b". */
  type(&e, "get b\x1b[D");
  ck_assert_uint_eq(e.pos, 4);
  type(&e, "a ");
  ck_assert_str_eq(e.buf, "get a b");
  /* Home, Delete, End, Backspace. */
  type(&e, "\x1b[H\x1b[3~\x1b[F\x7f");
  ck_assert_str_eq(e.buf, "et a ");
  /* Ctrl-W deletes the word before the cursor, Ctrl-U the start. */
  type(&e, "x\x17");
  ck_assert_str_eq(e.buf, "et a ");
  type(&e, "\x01\x06\x0b");
  ck_assert_str_eq(e.buf, "e");
  type(&e, "\x15");
  ck_assert_str_eq(e.buf, "");
  fsc_edit_free(&e);
}
END_TEST

START_TEST(test_edit_utf8_is_one_step) {
  struct fsc_edit e;
  fsc_edit_init(&e);
  type(&e, "caf\xc3\xa9");
  type(&e, "\x1b[D");
  ck_assert_uint_eq(e.pos, 3);
  type(&e, "\x7f\x1b[C\x7f");
  ck_assert_str_eq(e.buf, "ca");
  fsc_edit_free(&e);
}
END_TEST

START_TEST(test_edit_ctrl_keys) {
  struct fsc_edit e;
  fsc_edit_init(&e);
  ck_assert_int_eq(type(&e, "\x04"), FSC_EDIT_EOF);
  type(&e, "abc");
  ck_assert_int_eq(type(&e, "\x04"), FSC_EDIT_REDRAW); /* not empty */
  ck_assert_int_eq(type(&e, "\x03"), FSC_EDIT_INTR);
  ck_assert_str_eq(e.buf, "");
  /* Other control bytes are not inserted. */
  type(&e, "a\x07"
           "b");
  ck_assert_str_eq(e.buf, "ab");
  fsc_edit_free(&e);
}
END_TEST

START_TEST(test_edit_history) {
  struct fsc_edit e;
  fsc_edit_init(&e);
  type(&e, "one\r");
  fsc_edit_take(&e);
  type(&e, "two\r");
  fsc_edit_take(&e);
  type(&e, "two\r"); /* repeats are kept once */
  fsc_edit_take(&e);
  type(&e, "   \r"); /* blank lines are not kept */
  fsc_edit_take(&e);
  ck_assert_int_eq(e.nhist, 2);
  type(&e, "\x1b[A");
  ck_assert_str_eq(e.buf, "two");
  type(&e, "\x1b[A");
  ck_assert_str_eq(e.buf, "one");
  ck_assert_int_eq(type(&e, "\x1b[A"), FSC_EDIT_NONE);
  type(&e, "\x1bOB"); /* SS3 arrows, as in application mode */
  ck_assert_str_eq(e.buf, "two");
  type(&e, "\x1b[B");
  ck_assert_str_eq(e.buf, "");
  fsc_edit_free(&e);
}
END_TEST

START_TEST(test_edit_render) {
  struct fsc_edit e;
  char out[256];
  fsc_edit_init(&e);
  type(&e, "ls");
  fsc_edit_render(&e, "fsc> ", 0, out, sizeof out);
  ck_assert_str_eq(out, "\rfsc> ls\x1b[K");
  type(&e, "\x1b[D\x1b[D");
  fsc_edit_render(&e, "fsc> ", 0, out, sizeof out);
  ck_assert_str_eq(out, "\rfsc> ls\x1b[K\x1b[2D");
  fsc_edit_free(&e);
}
END_TEST

/* Wide characters take two columns, combining marks none: moving the cursor
 * back over them moves as many columns as the terminal drew. */
START_TEST(test_edit_render_columns) {
  struct fsc_edit e;
  char out[256];
  fsc_edit_init(&e);
  /* "get 日本" then cursor left over both wide characters */
  type(&e, "get \xe6\x97\xa5\xe6\x9c\xac\x1b[D\x1b[D");
  fsc_edit_render(&e, "> ", 0, out, sizeof out);
  ck_assert_str_eq(out, "\r> get \xe6\x97\xa5\xe6\x9c\xac\x1b[K\x1b[4D");
  fsc_edit_free(&e);
  fsc_edit_init(&e);
  /* "e" + combining acute, "x": left once lands before the x */
  type(&e, "e\xcc\x81x\x1b[D");
  fsc_edit_render(&e, "> ", 0, out, sizeof out);
  ck_assert_str_eq(out, "\r> e\xcc\x81x\x1b[K\x1b[1D");
  fsc_edit_free(&e);
}
END_TEST

/* Bytes that are not UTF-8 are drawn as '?' so a stray 0x9b cannot reach
 * the terminal as a control sequence introducer. */
START_TEST(test_edit_render_invalid_utf8) {
  struct fsc_edit e;
  char out[256];
  fsc_edit_init(&e);
  type(&e, "a\x9b[2Jb");
  ck_assert_uint_eq(e.len, 6);
  fsc_edit_render(&e, "> ", 0, out, sizeof out);
  ck_assert_str_eq(out, "\r> a?[2Jb\x1b[K");
  fsc_edit_free(&e);
}
END_TEST

/* A line wider than the terminal scrolls sideways: what is drawn fits in
 * width - 1 columns (no auto-wrap) and always shows the cursor. */
START_TEST(test_edit_render_scrolls) {
  struct fsc_edit e;
  char out[256];
  fsc_edit_init(&e);
  type(&e, "0123456789abcdefghij"); /* 20 columns */
  /* width 16: prompt "> " (2) leaves 13 columns for the line */
  fsc_edit_render(&e, "> ", 16, out, sizeof out);
  ck_assert_str_eq(out, "\r> 789abcdefghij\x1b[K");
  type(&e, "\x01"); /* Ctrl-A: the start comes into view */
  fsc_edit_render(&e, "> ", 16, out, sizeof out);
  ck_assert_str_eq(out, "\r> 0123456789abc\x1b[K\x1b[13D");
  type(&e, "\x06\x06\x06"); /* three right: still the same window */
  fsc_edit_render(&e, "> ", 16, out, sizeof out);
  ck_assert_str_eq(out, "\r> 0123456789abc\x1b[K\x1b[10D");
  /* a terminal too narrow to scroll sensibly: the line is drawn whole */
  fsc_edit_render(&e, "> ", 4, out, sizeof out);
  ck_assert_str_eq(out, "\r> 0123456789abcdefghij\x1b[K\x1b[17D");
  fsc_edit_free(&e);
}
END_TEST

START_TEST(test_edit_line_limit) {
  struct fsc_edit e;
  fsc_edit_init(&e);
  for (int i = 0; i < FSC_EDIT_MAX + 10; i++)
    fsc_edit_key(&e, 'x');
  ck_assert_uint_eq(e.len, FSC_EDIT_MAX);
  ck_assert_int_eq(type(&e, "\n"), FSC_EDIT_LINE);
  ck_assert_uint_eq(strlen(fsc_edit_take(&e)), FSC_EDIT_MAX);
  fsc_edit_free(&e);
}
END_TEST

Suite *edit_suite(void) {
  Suite *s = suite_create("edit");
  TCase *tc = tcase_create("edit");
  tcase_add_test(tc, test_edit_type_and_enter);
  tcase_add_test(tc, test_edit_cursor_moves_and_deletes);
  tcase_add_test(tc, test_edit_utf8_is_one_step);
  tcase_add_test(tc, test_edit_ctrl_keys);
  tcase_add_test(tc, test_edit_history);
  tcase_add_test(tc, test_edit_render);
  tcase_add_test(tc, test_edit_render_columns);
  tcase_add_test(tc, test_edit_render_invalid_utf8);
  tcase_add_test(tc, test_edit_render_scrolls);
  tcase_add_test(tc, test_edit_line_limit);
  suite_add_tcase(s, tc);
  return s;
}
