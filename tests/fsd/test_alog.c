/* The access log (alog.c): line format, and writing through a real loop to a
 * real file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "alog.h"

Suite *alog_suite(void);

static struct fsd_alog_rec rec(const char *op, const char *name) {
  struct fsd_alog_rec r;

  memset(&r, 0, sizeof(r));
  r.when_ms = 1764857015123ll; /* 2025-12-04T14:03:35.123Z */
  r.peer = "192.0.2.7:51234";
  r.user = "alice";
  r.op = op;
  r.name = name;
  r.name_len = name != NULL ? strlen(name) : 0;
  r.bytes = 1048576;
  r.status = "OK";
  r.duration_us = 12345;
  return r;
}

START_TEST(test_alog_format) {
  char buf[FSD_ALOG_LINE_MAX];
  struct fsd_alog_rec r = rec("GET", "a.txt");
  size_t n = fsd_alog_format(buf, sizeof(buf), &r);

  buf[n] = '\0';
  ck_assert_str_eq(buf, "2025-12-04T14:03:35.123Z 192.0.2.7:51234 alice GET "
                        "\"a.txt\" 1048576 OK 12.345ms\n");
  r = rec("LIST", NULL);
  r.user = NULL;
  r.bytes = 0;
  r.status = "FORBIDDEN";
  r.duration_us = 7;
  n = fsd_alog_format(buf, sizeof(buf), &r);
  buf[n] = '\0';
  ck_assert_str_eq(buf, "2025-12-04T14:03:35.123Z 192.0.2.7:51234 - LIST - 0 "
                        "FORBIDDEN 0.007ms\n");
}
END_TEST

/* A name cannot break the line or fake a field: quotes, backslashes,
 * non-ASCII bytes are escaped. */
START_TEST(test_alog_format_escapes) {
  char buf[FSD_ALOG_LINE_MAX];
  struct fsd_alog_rec r = rec("PUT", "a \"b\"\\c\xc3\xa9");
  size_t n = fsd_alog_format(buf, sizeof(buf), &r);

  buf[n] = '\0';
  ck_assert_ptr_nonnull(
      strstr(buf, " PUT \"a \\x22b\\x22\\x5cc\\xc3\\xa9\" 1048576 OK "));
  ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);
}
END_TEST

/* The longest name still leaves a whole line, cut but ending in its
 * fields. */
START_TEST(test_alog_format_long_name) {
  char buf[FSD_ALOG_LINE_MAX], name[256];
  struct fsd_alog_rec r;
  size_t n;

  memset(name, 0xff, sizeof(name) - 1); /* every byte escaped: 4x */
  name[255] = '\0';
  r = rec("GET", name);
  n = fsd_alog_format(buf, sizeof(buf), &r);
  ck_assert_uint_le(n, sizeof(buf));
  ck_assert_uint_eq(buf[n - 1], '\n');
  buf[n] = '\0';
  ck_assert_ptr_nonnull(strstr(buf, " 1048576 OK 12.345ms\n"));
}
END_TEST

static long slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;

  if (f == NULL)
    return -1;
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}

/* Lines reach the file in order, appended to what was there, and closing
 * flushes them and frees everything (the loop closes cleanly). */
START_TEST(test_alog_writes_in_order) {
  char path[] = "/tmp/fsd-alog-XXXXXX", err[256], *buf;
  uv_loop_t loop;
  struct fsd_alog *a;
  int fd = mkstemp(path);
  char name[16];
  long n;

  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "old line\n", 9), 9);
  close(fd);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(fsd_alog_open(&loop, path, 0, &a, err, sizeof(err)), 0);
  for (int i = 0; i < 1000; i++) {
    struct fsd_alog_rec r;
    snprintf(name, sizeof(name), "f%04d", i);
    r = rec("STAT", name);
    fsd_alog_write(a, &r);
    if (i % 100 == 0)
      uv_run(&loop, UV_RUN_NOWAIT);
  }
  fsd_alog_close(a);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  buf = malloc(1 << 20);
  n = slurp(path, buf, 1 << 20);
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(strncmp(buf, "old line\n", 9), 0);
  {
    char *p = buf + 9;
    for (int i = 0; i < 1000; i++) {
      char want[32];
      char *nl = strchr(p, '\n');
      ck_assert_ptr_nonnull(nl);
      snprintf(want, sizeof(want), " STAT \"f%04d\" ", i);
      *nl = '\0';
      ck_assert_msg(strstr(p, want) != NULL, "line %d: %s", i, p);
      p = nl + 1;
    }
    ck_assert_str_eq(p, "");
  }
  free(buf);
  unlink(path);
}
END_TEST

/* With a small buffer and a loop that does not run, lines beyond the buffer
 * are dropped and counted, never queued without bound; a note says how many
 * were lost. */
START_TEST(test_alog_bounded) {
  char path[] = "/tmp/fsd-alog-XXXXXX", err[256], buf[65536];
  uv_loop_t loop;
  struct fsd_alog *a;
  int fd = mkstemp(path);

  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(fsd_alog_open(&loop, path, 4096, &a, err, sizeof(err)), 0);
  for (int i = 0; i < 500; i++) {
    struct fsd_alog_rec r = rec("STAT", "x");
    fsd_alog_write(a, &r);
  }
  ck_assert_uint_gt(fsd_alog_dropped(a), 400);
  {
    struct fsd_alog_rec r = rec("STAT", "after");
    uv_run(&loop, UV_RUN_DEFAULT); /* the first write completes */
    fsd_alog_write(a, &r);
  }
  fsd_alog_close(a);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  ck_assert_int_gt(slurp(path, buf, sizeof(buf)), 0);
  ck_assert_ptr_nonnull(strstr(buf, "access log lines lost"));
  ck_assert_ptr_nonnull(strstr(buf, "\"after\""));
  ck_assert_uint_eq(buf[strlen(buf) - 1], '\n');
  unlink(path);
}
END_TEST

/* A log that never got a line closes cleanly too. */
START_TEST(test_alog_close_unused) {
  char path[] = "/tmp/fsd-alog-XXXXXX", err[256];
  uv_loop_t loop;
  struct fsd_alog *a;
  int fd = mkstemp(path);

  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(fsd_alog_open(&loop, path, 0, &a, err, sizeof(err)), 0);
  fsd_alog_close(a);
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  unlink(path);
}
END_TEST

START_TEST(test_alog_open_fails_clearly) {
  char err[256];
  uv_loop_t loop;
  struct fsd_alog *a;

  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(fsd_alog_open(&loop, "/nonexistent-dir/access.log", 0, &a,
                                 err, sizeof(err)),
                   UV_ENOENT);
  ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/access.log"));
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

Suite *alog_suite(void) {
  Suite *s = suite_create("alog");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_alog_format);
  tcase_add_test(tc, test_alog_format_escapes);
  tcase_add_test(tc, test_alog_format_long_name);
  tcase_add_test(tc, test_alog_writes_in_order);
  tcase_add_test(tc, test_alog_bounded);
  tcase_add_test(tc, test_alog_close_unused);
  tcase_add_test(tc, test_alog_open_fails_clearly);
  suite_add_tcase(s, tc);
  return s;
}
