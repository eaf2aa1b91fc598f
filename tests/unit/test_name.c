/* UTF-8 and file name validation (name.c). */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

struct bytes {
  const char *s;
  size_t len; /* 0: strlen(s) */
  const char *why;
};

static size_t blen(const struct bytes *b) {
  return b->len != 0 ? b->len : strlen(b->s);
}

static const struct bytes utf8_good[] = {
    {"", 0, "empty"},
    {"plain ascii", 0, "ascii"},
    {"a\0b", 3, "NUL is valid UTF-8"},
    {"\x7f", 0, "U+007F, last one-byte"},
    {"\xc2\x80", 0, "U+0080, first two-byte"},
    {"\xdf\xbf", 0, "U+07FF, last two-byte"},
    {"\xe0\xa0\x80", 0, "U+0800, first three-byte"},
    {"\xed\x9f\xbf", 0, "U+D7FF, just below the surrogates"},
    {"\xee\x80\x80", 0, "U+E000, just above the surrogates"},
    {"\xef\xbf\xbf", 0, "U+FFFF"},
    {"\xf0\x90\x80\x80", 0, "U+10000, first four-byte"},
    {"\xf4\x8f\xbf\xbf", 0, "U+10FFFF, the last code point"},
    {"\xef\xbb\xbf"
     "bom",
     0, "byte order mark"},
    {"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", 0, "mixed"},
};

static const struct bytes utf8_bad[] = {
    {"\x80", 0, "lone continuation byte"},
    {"\xbf", 0, "lone continuation byte"},
    {"a\x80", 0, "continuation after ascii"},
    {"\xc0\x80", 0, "overlong NUL"},
    {"\xc0\xaf", 0, "overlong '/'"},
    {"\xc1\xbf", 0, "overlong U+007F"},
    {"\xe0\x80\xaf", 0, "overlong '/' in three bytes"},
    {"\xe0\x9f\xbf", 0, "overlong U+07FF"},
    {"\xf0\x80\x80\xaf", 0, "overlong '/' in four bytes"},
    {"\xf0\x8f\xbf\xbf", 0, "overlong U+FFFF"},
    {"\xed\xa0\x80", 0, "surrogate U+D800"},
    {"\xed\xbf\xbf", 0, "surrogate U+DFFF"},
    {"\xed\xa0\xbd\xed\xb8\x80", 0, "CESU-8 surrogate pair"},
    {"\xf4\x90\x80\x80", 0, "U+110000, above the last code point"},
    {"\xf5\x80\x80\x80", 0, "F5 lead byte"},
    {"\xf8\x88\x80\x80\x80", 0, "five-byte form"},
    {"\xfc\x84\x80\x80\x80\x80", 0, "six-byte form"},
    {"\xfe", 0, "FE"},
    {"\xff", 0, "FF"},
    {"\xc2", 0, "truncated two-byte"},
    {"\xe0\xa0", 0, "truncated three-byte"},
    {"\xf0\x90\x80", 0, "truncated four-byte"},
    {"\xc2\x41", 0, "bad continuation"},
    {"\xe0\xa0\x41", 0, "bad third byte"},
    {"\xf0\x90\x80\xc0", 0, "bad fourth byte"},
    {"ok\xe2\x82", 0, "truncated at the end"},
};

START_TEST(test_name_utf8_good) {
  const struct bytes *b = &utf8_good[_i];

  ck_assert_msg(fsp_utf8_check(b->s, blen(b)) == 0, "rejected: %s", b->why);
}
END_TEST

START_TEST(test_name_utf8_bad) {
  const struct bytes *b = &utf8_bad[_i];

  ck_assert_msg(fsp_utf8_check(b->s, blen(b)) == FSP_EUTF8, "accepted: %s",
                b->why);
}
END_TEST

/* A reference written differently from the library: decode the code point
 * arithmetically, then check that it is in range, not a surrogate and not
 * encoded longer than needed. */
static int ref_utf8(const uint8_t *p, size_t len) {
  size_t i = 0;

  while (i < len) {
    uint32_t cp;
    size_t n;

    if (p[i] < 0x80) {
      i++;
      continue;
    } else if ((p[i] & 0xe0) == 0xc0) {
      n = 2;
      cp = p[i] & 0x1fu;
    } else if ((p[i] & 0xf0) == 0xe0) {
      n = 3;
      cp = p[i] & 0x0fu;
    } else if ((p[i] & 0xf8) == 0xf0) {
      n = 4;
      cp = p[i] & 0x07u;
    } else {
      return -1;
    }
    if (len - i < n)
      return -1;
    for (size_t k = 1; k < n; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        return -1;
      cp = cp << 6 | (p[i + k] & 0x3fu);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
        (n == 4 && cp < 0x10000))
      return -1;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return -1;
    i += n;
  }
  return 0;
}

/* Every sequence of one to three bytes, and every four-byte sequence whose
 * last two bytes are from a small representative set, compared with the
 * reference. */
START_TEST(test_name_utf8_matches_reference_exhaustively) {
  static const uint8_t tails[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
                                  0x9f, 0xa0, 0xbf, 0xc0, 0xf4, 0xff};
  uint8_t b[4];

  for (uint32_t v = 0; v < (1u << 24); v++) {
    b[0] = (uint8_t)(v >> 16);
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)v;
    for (size_t n = 1; n <= 3; n++) {
      /* Shorter lengths only once per prefix. */
      if ((n == 1 && (v & 0xffff) != 0) || (n == 2 && (v & 0xff) != 0))
        continue;
      int got = fsp_utf8_check(b, n) == 0;
      int want = ref_utf8(b, n) == 0;
      if (got != want)
        ck_abort_msg("%zu bytes %02x %02x %02x: library %d, reference %d", n,
                     b[0], b[1], b[2], got, want);
    }
  }
  for (uint32_t v = 0; v < (1u << 16); v++) {
    for (size_t t = 0; t < sizeof(tails) * sizeof(tails); t++) {
      b[0] = (uint8_t)(v >> 8);
      b[1] = (uint8_t)v;
      b[2] = tails[t / sizeof(tails)];
      b[3] = tails[t % sizeof(tails)];
      int got = fsp_utf8_check(b, 4) == 0;
      int want = ref_utf8(b, 4) == 0;
      if (got != want)
        ck_abort_msg("4 bytes %02x %02x %02x %02x: library %d, reference %d",
                     b[0], b[1], b[2], b[3], got, want);
    }
  }
}
END_TEST

/* A sequence cut off by the end of the input must not be completed by
 * reading past it: the input ends right at a PROT_NONE page. */
START_TEST(test_name_utf8_no_over_read) {
  static const char *const cut[] = {"\xc2", "\xe0\xa0", "\xf0\x90\x80",
                                    "ab\xf4\x8f\xbf", "\xed"};

  for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
    size_t n = strlen(cut[i]);
    uint8_t *p = th_guard_copy(cut[i], n);
    ck_assert_int_eq(fsp_utf8_check(p, n), FSP_EUTF8);
    ck_assert_int_eq(fsp_name_check(p, n), FSP_EBADNAME);
    th_guard_free(p, n);
  }
}
END_TEST

static const struct bytes names_good[] = {
    {"a", 0, "one byte"},
    {"a.txt", 0, "with extension"},
    {"a..b", 0, "dots inside"},
    {"a.", 0, "trailing dot"},
    {"-", 0, "dash"},
    {" space", 0, "leading space"},
    {"r\xc3\xa9sum\xc3\xa9.txt", 0, "two-byte UTF-8"},
    {"\xe6\x97\xa5\xe6\x9c\xac", 0, "three-byte UTF-8"},
    {"\xf0\x9f\x98\x80", 0, "four-byte UTF-8"},
    {"\xc2\x80", 0, "U+0080 (C1 control, allowed: not a byte below 0x20)"},
    {"back\\slash", 0, "backslash is an ordinary byte"},
    {"~", 0, "tilde"},
};

START_TEST(test_name_good) {
  const struct bytes *b = &names_good[_i];

  ck_assert_msg(fsp_name_check(b->s, blen(b)) == 0, "rejected: %s", b->why);
}
END_TEST

static const struct bytes names_bad[] = {
    {".", 0, "dot"},
    {"..", 0, "dot dot"},
    {".hidden", 0, "leading dot"},
    {"a/b", 0, "slash"},
    {"/", 0, "slash alone"},
    {"/etc", 0, "absolute"},
    {"../x", 0, "parent"},
    {"a\0b", 3, "NUL inside"},
    {"\0", 1, "NUL alone"},
    {"a\x01", 0, "control 0x01"},
    {"a\nb", 0, "newline"},
    {"a\tb", 0, "tab"},
    {"\x1f", 0, "control 0x1f"},
    {"a\x7f", 0, "DEL"},
    {"a\x1b[31m", 0, "escape sequence"},
    {"\xff", 0, "invalid UTF-8"},
    {"a\x80", 0, "lone continuation"},
    {"\xc0\xaf", 0, "overlong '/'"},
    {"\xc0\xae\xc0\xae", 0, "overlong '..'"},
    {"\xe0\x80\xae", 0, "overlong '.'"},
    {"\xed\xa0\x80", 0, "surrogate"},
    {"\xf4\x90\x80\x80", 0, "above U+10FFFF"},
    {"ab\xe6\x97", 0, "truncated sequence"},
};

START_TEST(test_name_bad) {
  const struct bytes *b = &names_bad[_i];

  ck_assert_msg(fsp_name_check(b->s, blen(b)) == FSP_EBADNAME, "accepted: %s",
                b->why);
}
END_TEST

START_TEST(test_name_length_limits) {
  char buf[FSP_NAME_MAX + 2];

  memset(buf, 'x', sizeof(buf));
  ck_assert_int_eq(fsp_name_check(buf, 0), FSP_EBADNAME);
  ck_assert_int_eq(fsp_name_check(buf, 1), 0);
  ck_assert_int_eq(fsp_name_check(buf, FSP_NAME_MAX), 0);
  ck_assert_int_eq(fsp_name_check(buf, FSP_NAME_MAX + 1), FSP_EBADNAME);
  ck_assert_int_eq(fsp_name_check(buf, (size_t)-1), FSP_EBADNAME);
  /* 85 three-byte characters are exactly 255 bytes; one more byte is not. */
  for (size_t i = 0; i + 3 <= FSP_NAME_MAX; i += 3)
    memcpy(buf + i, "\xe2\x82\xac", 3);
  ck_assert_int_eq(fsp_name_check(buf, FSP_NAME_MAX), 0);
  buf[FSP_NAME_MAX] = 'x';
  ck_assert_int_eq(fsp_name_check(buf, FSP_NAME_MAX + 1), FSP_EBADNAME);
  ck_assert_int_eq(fsp_name_check(NULL, 0), FSP_EBADNAME);
  ck_assert_int_eq(fsp_name_check(NULL, 3), FSP_EBADNAME);
  ck_assert_int_eq(fsp_utf8_check(NULL, 0), 0);
}
END_TEST

/* Every single byte as a one-byte name: only printable ASCII other than '/'
 * and '.' is a name on its own. */
START_TEST(test_name_every_single_byte) {
  for (unsigned c = 0; c < 256; c++) {
    uint8_t b = (uint8_t)c;
    int want = c >= 0x20 && c < 0x7f && c != '/' && c != '.';
    ck_assert_msg((fsp_name_check(&b, 1) == 0) == want, "byte 0x%02x", c);
  }
}
END_TEST

START_TEST(test_name_no_over_read) {
  static const char name[] = "good-name.txt";
  uint8_t *p = th_guard_copy(name, sizeof(name) - 1);

  ck_assert_int_eq(fsp_name_check(p, sizeof(name) - 1), 0);
  th_guard_free(p, sizeof(name) - 1);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *name_suite(void) {
  Suite *s = suite_create("name");
  TCase *tc = tcase_create("utf8");
  TCase *tn = tcase_create("name");

  tcase_add_loop_test(tc, test_name_utf8_good, 0, N(utf8_good));
  tcase_add_loop_test(tc, test_name_utf8_bad, 0, N(utf8_bad));
  tcase_add_test(tc, test_name_utf8_matches_reference_exhaustively);
  tcase_add_test(tc, test_name_utf8_no_over_read);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);

  tcase_add_loop_test(tn, test_name_good, 0, N(names_good));
  tcase_add_loop_test(tn, test_name_bad, 0, N(names_bad));
  tcase_add_test(tn, test_name_length_limits);
  tcase_add_test(tn, test_name_every_single_byte);
  tcase_add_test(tn, test_name_no_over_read);
  suite_add_tcase(s, tn);
  return s;
}
