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
  fsc_edit_render(&e, "fsc> ", out, sizeof out);
  ck_assert_str_eq(out, "\rfsc> ls\x1b[K");
  type(&e, "\x1b[D\x1b[D");
  fsc_edit_render(&e, "fsc> ", out, sizeof out);
  ck_assert_str_eq(out, "\rfsc> ls\x1b[K\x1b[2D");
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
  tcase_add_test(tc, test_edit_line_limit);
  suite_add_tcase(s, tc);
  return s;
}
