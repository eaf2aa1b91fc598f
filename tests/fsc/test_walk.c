/* Tests of fsc's local walk for put -r (client/walk.c): the order of the
 * items, empty folders, links and names the server cannot hold. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "alloc.h"
#include "suites.h"
#include "walk.h"

static char top[64];

static void mk(const char *rel, const char *data) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", top, rel);
  if (data == NULL) {
    ck_assert_int_eq(mkdir(p, 0755), 0);
    return;
  }
  FILE *f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  fputs(data, f);
  fclose(f);
}

static char warned[1024];

static void on_warn(void *arg, const char *local, const char *why,
                    int failure) {
  (void)arg;
  size_t n = strlen(warned);
  snprintf(warned + n, sizeof warned - n, "%s%s:%s;", failure ? "FAIL " : "",
           local + strlen(top) + 1, why);
}

START_TEST(test_walk_order_and_kinds) {
  snprintf(top, sizeof top, "/tmp/fsc-walk-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(top));
  mk("b.txt", "bb");
  mk("a", NULL);
  mk("a/z.bin", "");
  mk("a/sub", NULL);
  mk("a/sub/x y", "xyz");
  mk("empty", NULL);
  mk("nest", NULL);
  mk("nest/deeper", NULL);
  mk("caf\xc3\xa9", "1");
  mk(".hidden", "h");
  char p[256], t[256];
  snprintf(p, sizeof p, "%s/link", top);
  snprintf(t, sizeof t, "%s/b.txt", top);
  ck_assert_int_eq(symlink(t, p), 0);

  struct fsc_walk w;
  memset(&w, 0, sizeof w);
  w.warn = on_warn;
  warned[0] = '\0';
  ck_assert_int_eq(fsc_walk_tree(&w, top, "up"), 0);
  const char *want[] = {"up/a/sub/x y",   "up/a/z.bin", "up/b.txt",
                        "up/caf\xc3\xa9", "up/empty",   "up/nest/deeper"};
  const int folder[] = {0, 0, 0, 0, 1, 1};
  ck_assert_uint_eq(w.n, 6);
  for (size_t i = 0; i < w.n; i++) {
    ck_assert_str_eq(w.items[i].remote, want[i]);
    ck_assert_int_eq(w.items[i].folder, folder[i]);
    ck_assert_str_eq(w.items[i].local + strlen(top) + 1, want[i] + 3);
  }
  ck_assert_uint_eq(w.files, 4);
  ck_assert_uint_eq(w.bytes, 3 + 0 + 2 + 1);
  ck_assert_int_eq(w.failures, 1); /* .hidden */
  ck_assert_ptr_nonnull(strstr(warned, "FAIL .hidden:"));
  ck_assert_ptr_nonnull(strstr(warned, "link:skipping a symbolic link"));
  fsc_walk_free(&w);

  /* An empty top folder is one folder item; a file is no folder. */
  memset(&w, 0, sizeof w);
  snprintf(p, sizeof p, "%s/empty", top);
  ck_assert_int_eq(fsc_walk_tree(&w, p, "e"), 0);
  ck_assert_uint_eq(w.n, 1);
  ck_assert_int_eq(w.items[0].folder, 1);
  ck_assert_str_eq(w.items[0].remote, "e");
  fsc_walk_free(&w);
  memset(&w, 0, sizeof w);
  ck_assert_int_eq(fsc_walk_tree(&w, t, "e"), UV_ENOTDIR);
  fsc_walk_free(&w);

  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Every allocation of a walk fails in turn: the walk says UV_ENOMEM and,
 * once freed, holds nothing; past the last one it finds the whole tree. */
START_TEST(test_walk_allocation_failures_are_clean) {
  snprintf(top, sizeof top, "/tmp/fsc-walk-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(top));
  mk("a", NULL);
  mk("a/b", NULL);
  mk("a/b/c.txt", "c");
  mk("d.txt", "d");
  mk("e", NULL);
  int failures = 0;
  for (long n = 0; n < 1000; n++) {
    struct fsc_walk w;
    memset(&w, 0, sizeof w);
    fsc_alloc_fail_after(n, 0);
    int rc = fsc_walk_tree(&w, top, "t");
    fsc_alloc_fail_after(-1, 0);
    size_t items = w.n;
    fsc_walk_free(&w);
    ck_assert_int_eq(fsc_alloc_live(), 0);
    if (rc == 0) {
      ck_assert_uint_eq(items, 3);
      break;
    }
    ck_assert_int_eq(rc, UV_ENOMEM);
    failures++;
  }
  ck_assert_int_gt(failures, 5);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *walk_suite(void) {
  Suite *s = suite_create("walk");
  TCase *tc = tcase_create("walk");
  tcase_add_test(tc, test_walk_order_and_kinds);
  tcase_add_test(tc, test_walk_allocation_failures_are_clean);
  suite_add_tcase(s, tc);
  return s;
}
