/* The known_servers file: keys, lookups through hostile text with the line
 * numbers the "remove line N" message needs, and appends. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers.h"

#define FP_A "SHA256:c60ik4YI3BLDpnmxA2Z+nwFpHABi1qf8gCOlE3XKBao"
#define FP_B "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

START_TEST(test_known_key) {
  char buf[300];

  ck_assert_int_eq(fstls_known_key("Example.COM", 7878, buf, sizeof(buf)), 16);
  ck_assert_str_eq(buf, "example.com:7878");
  ck_assert_int_gt(fstls_known_key("::1", 7878, buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "[::1]:7878");
  ck_assert_int_gt(fstls_known_key("FE80::A", 1, buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "[fe80::a]:1");
  ck_assert_int_gt(fstls_known_key("10.0.0.1", 65535, buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "10.0.0.1:65535");
  ck_assert_int_eq(fstls_known_key("", 1, buf, sizeof(buf)), FSTLS_EINVAL);
  ck_assert_int_eq(fstls_known_key(NULL, 1, buf, sizeof(buf)), FSTLS_EINVAL);
  ck_assert_int_eq(fstls_known_key("a b", 1, buf, sizeof(buf)), FSTLS_EINVAL);
  ck_assert_int_eq(fstls_known_key("a\tb", 1, buf, sizeof(buf)), FSTLS_EINVAL);
  ck_assert_int_eq(fstls_known_key("a\nb", 1, buf, sizeof(buf)), FSTLS_EINVAL);
  ck_assert_int_eq(fstls_known_key("a#b", 1, buf, sizeof(buf)), FSTLS_EINVAL);
  ck_assert_int_eq(fstls_known_key("[::1]", 1, buf, sizeof(buf)), FSTLS_EINVAL);
  ck_assert_int_eq(fstls_known_key("a", 65536, buf, sizeof(buf)), FSTLS_EINVAL);
  ck_assert_int_eq(fstls_known_key("example.com", 7878, buf, 16), FSTLS_EINVAL);
}
END_TEST

/* Looks key up in text and returns the line (0: not found). */
static unsigned line_of(const char *text, size_t len, const char *key,
                        const char *want_fp) {
  struct fstls_known_hit hit;
  int rc = fstls_known_lookup(text, len, key, &hit);

  if (rc == FSTLS_ENOTFOUND)
    return 0;
  ck_assert_int_eq(rc, 0);
  if (want_fp != NULL)
    ck_assert_str_eq(hit.fp, want_fp);
  return hit.line;
}

START_TEST(test_known_lookup_lines) {
  static const char text[] = "# fsc known servers\n"
                             "\n"
                             "a.test:7878 " FP_A "\n"
                             "   \t\n"
                             "b.test:7878\t" FP_B "\r\n"
                             "  c.test:1   " FP_A "  \n"
                             "a.test:7878 " FP_B "\n"
                             "d.test:2 " FP_B;
  size_t n = sizeof(text) - 1;

  ck_assert_uint_eq(line_of(text, n, "a.test:7878", FP_A), 3);
  ck_assert_uint_eq(line_of(text, n, "b.test:7878", FP_B), 5);
  ck_assert_uint_eq(line_of(text, n, "c.test:1", FP_A), 6);
  /* The last line has no newline; the buffer is not NUL-terminated. */
  ck_assert_uint_eq(line_of(text, n, "d.test:2", FP_B), 8);
  ck_assert_uint_eq(line_of(text, n - 1, "d.test:2", NULL), 0);
  /* Keys compare whole: no prefixes, no other port. */
  ck_assert_uint_eq(line_of(text, n, "a.test:787", NULL), 0);
  ck_assert_uint_eq(line_of(text, n, "a.test:78780", NULL), 0);
  ck_assert_uint_eq(line_of(text, n, "a.test", NULL), 0);
  ck_assert_uint_eq(line_of(text, n, "# fsc", NULL), 0);
  ck_assert_uint_eq(line_of("", 0, "a.test:7878", NULL), 0);
  ck_assert_uint_eq(line_of(NULL, 0, "a.test:7878", NULL), 0);
}
END_TEST

/* Malformed lines never match, and never hide the lines after them. */
START_TEST(test_known_lookup_hostile) {
  static const char nul_line[] = "h:1 " FP_A "\0x\n";
  char *text = malloc(8192), *p = text;
  size_t i;

  ck_assert_ptr_nonnull(text);
  /* 1: a NUL byte inside the key's line. */
  memcpy(p, nul_line, sizeof(nul_line) - 1);
  p += sizeof(nul_line) - 1;
  /* 2: a third field. */
  p += sprintf(p, "h:1 %s extra\n", FP_A);
  /* 3: a broken fingerprint. */
  p += sprintf(p, "h:1 SHA256:short\n");
  /* 4: no fingerprint. */
  p += sprintf(p, "h:1\n");
  /* 5: an overlong line that would otherwise match. */
  p += sprintf(p, "h:1 %s", FP_A);
  for (i = 0; i < FSTLS_KNOWN_LINE_MAX; i++)
    *p++ = ' ';
  *p++ = '\n';
  /* 6: another hash name. */
  p += sprintf(p, "h:1 MD5:%s\n", &FP_A[7]);
  /* 7: CR in the middle. */
  p += sprintf(p, "h:1\r%s\n", FP_A);
  /* 8: the real one. */
  p += sprintf(p, "h:1 %s\n", FP_B);
  ck_assert_uint_eq(line_of(text, (size_t)(p - text), "h:1", FP_B), 8);
  ck_assert_int_eq(fstls_known_lookup(text, 5, "", NULL), FSTLS_EINVAL);
  free(text);
}
END_TEST

START_TEST(test_known_append) {
  char path[PATH_MAX + 32], dir[PATH_MAX];
  const char *top = tt_tmpdir();
  char *buf;
  size_t len;
  unsigned line = 0;
  struct stat st;

  snprintf(dir, sizeof(dir), "%s/cfg/fsc", top);
  snprintf(path, sizeof(path), "%s/known_servers", dir);
  /* Missing file: reads as empty. */
  ck_assert_int_eq(fstls_known_read(path, &buf, &len, NULL, 0), 0);
  ck_assert_uint_eq(len, 0);
  free(buf);

  ck_assert_int_eq(fstls_known_append(path, "a.test:1", FP_A, &line, NULL, 0),
                   0);
  ck_assert_uint_eq(line, 1);
  ck_assert_int_eq(stat(dir, &st), 0);
  ck_assert_uint_eq(st.st_mode & 0777, 0700);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 0777, 0600);
  ck_assert_int_eq(fstls_known_append(path, "b.test:1", FP_B, &line, NULL, 0),
                   0);
  ck_assert_uint_eq(line, 2);

  /* A hand-edited file that does not end in a newline. */
  tt_write(dir, "known_servers", "# mine\nx:1 " FP_A, 0600);
  ck_assert_int_eq(fstls_known_append(path, "a.test:1", FP_B, &line, NULL, 0),
                   0);
  ck_assert_uint_eq(line, 3);
  ck_assert_int_eq(fstls_known_read(path, &buf, &len, NULL, 0), 0);
  ck_assert_uint_eq(line_of(buf, len, "x:1", FP_A), 2);
  ck_assert_uint_eq(line_of(buf, len, "a.test:1", FP_B), 3);
  free(buf);

  /* Refused: a key with a blank, a bad fingerprint. */
  ck_assert_int_eq(fstls_known_append(path, "a b:1", FP_A, NULL, NULL, 0),
                   FSTLS_EINVAL);
  ck_assert_int_eq(
      fstls_known_append(path, "a:1", "SHA256:nope", NULL, NULL, 0),
      FSTLS_EINVAL);
  tt_rmdir(top);
}
END_TEST

START_TEST(test_known_path) {
  char buf[PATH_MAX];

  setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
  setenv("HOME", "/home/u", 1);
  ck_assert_int_eq(fstls_known_path(buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "/x/cfg/fsc/known_servers");
  unsetenv("XDG_CONFIG_HOME");
  ck_assert_int_eq(fstls_known_path(buf, sizeof(buf)), 0);
  ck_assert_str_eq(buf, "/home/u/.config/fsc/known_servers");
  unsetenv("HOME");
  ck_assert_int_eq(fstls_known_path(buf, sizeof(buf)), FSTLS_EINVAL);
}
END_TEST

Suite *known_suite(void) {
  Suite *s = suite_create("known");
  TCase *tc = tcase_create("known");

  tcase_add_test(tc, test_known_key);
  tcase_add_test(tc, test_known_lookup_lines);
  tcase_add_test(tc, test_known_lookup_hostile);
  tcase_add_test(tc, test_known_append);
  tcase_add_test(tc, test_known_path);
  suite_add_tcase(s, tc);
  return s;
}
