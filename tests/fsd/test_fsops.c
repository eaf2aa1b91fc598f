/* Blocking file helpers, on a temporary root. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include "fsops.h"
#include "suites.h"

static char tmpdir[64];
static int rootfd = -1;

static void setup(void) {
  char root[128];

  strcpy(tmpdir, "/tmp/fsd-fsops-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  snprintf(root, sizeof(root), "%s/root", tmpdir);
  rootfd = fsd_root_open(root); /* created: it does not exist yet */
  ck_assert_int_ge(rootfd, 0);
}

static void teardown(void) {
  char cmd[160];

  close(rootfd);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

static void put_file(const char *name, const char *text) {
  int fd = openat(rootfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

START_TEST(test_fsops_open_regular_file) {
  struct stat st;
  char buf[8];
  int fd;

  put_file("a.txt", "hello");
  fd = fsd_open_file(rootfd, "a.txt", &st);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(st.st_size, 5);
  ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
  close(fd);
  ck_assert_int_eq(fsd_open_file(rootfd, "missing", &st), UV_ENOENT);
}
END_TEST

START_TEST(test_fsops_refuses_symlink_dir_fifo) {
  char target[160];
  struct stat st;
  struct fsd_stamp stamp;

  snprintf(target, sizeof(target), "%s/outside", tmpdir);
  put_file("real", "x");
  ck_assert_int_eq(symlinkat(target, rootfd, "abs-link"), 0);
  ck_assert_int_eq(symlinkat("real", rootfd, "rel-link"), 0);
  ck_assert_int_eq(mkdirat(rootfd, "dir", 0755), 0);
  ck_assert_int_eq(mkfifoat(rootfd, "fifo", 0644), 0);
  /* Neither followed nor opened, and a FIFO does not hang the call. */
  ck_assert_int_eq(fsd_open_file(rootfd, "abs-link", &st), UV_ENOENT);
  ck_assert_int_eq(fsd_open_file(rootfd, "rel-link", &st), UV_ENOENT);
  ck_assert_int_eq(fsd_open_file(rootfd, "dir", &st), UV_ENOENT);
  ck_assert_int_eq(fsd_open_file(rootfd, "fifo", &st), UV_ENOENT);
  ck_assert_int_eq(fsd_stat_file(rootfd, "rel-link", &stamp), UV_ENOENT);
  ck_assert_int_eq(fsd_stat_file(rootfd, "fifo", &stamp), UV_ENOENT);
  ck_assert_int_eq(fsd_stat_file(rootfd, "real", &stamp), 0);
  ck_assert_uint_eq(stamp.size, 1);
  ck_assert_int_eq(fstatat(rootfd, "real", &st, 0), 0);
  ck_assert_uint_eq(stamp.ino, (uint64_t)st.st_ino);
  ck_assert_int_eq(stamp.mtime_ns, fsd_mtime_ns(&st));
  ck_assert_int_eq(stamp.ctime_ns, (int64_t)st.st_ctim.tv_sec * 1000000000 +
                                       st.st_ctim.tv_nsec);
}
END_TEST

START_TEST(test_fsops_temp_commit_replace_and_no_clobber) {
  char temp[FSD_TEMP_NAME_LEN];
  struct stat st;
  int fd;

  put_file("target", "old");
  fd = fsd_temp_create(rootfd, temp);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(strncmp(temp, FSD_TEMP_PREFIX, strlen(FSD_TEMP_PREFIX)), 0);
  ck_assert_int_eq(write(fd, "new!", 4), 4);
  /* No clobber: fails, the old file stays, the temp is gone. */
  ck_assert_int_eq(fsd_temp_commit(rootfd, fd, temp, "target", 1, &st),
                   UV_EEXIST);
  ck_assert_int_eq(faccessat(rootfd, temp, F_OK, 0), -1);
  close(fd);
  ck_assert_int_eq(fsd_open_file(rootfd, "target", &st) >= 0, 1);
  ck_assert_int_eq(st.st_size, 3);

  fd = fsd_temp_create(rootfd, temp);
  ck_assert_int_eq(write(fd, "new!", 4), 4);
  ck_assert_int_eq(fsd_temp_commit(rootfd, fd, temp, "target", 0, &st), 0);
  ck_assert_int_eq(st.st_size, 4);
  close(fd);
  fd = fsd_temp_create(rootfd, temp);
  ck_assert_int_eq(fsd_temp_commit(rootfd, fd, temp, "fresh", 1, &st), 0);
  close(fd);
  ck_assert_int_eq(faccessat(rootfd, "fresh", F_OK, 0), 0);
  /* A second replace of the same name. */
  fd = fsd_temp_create(rootfd, temp);
  ck_assert_int_eq(write(fd, "quick", 5), 5);
  ck_assert_int_eq(fsd_temp_commit(rootfd, fd, temp, "target", 0, &st), 0);
  ck_assert_int_eq(st.st_size, 5);
  close(fd);
  ck_assert_int_eq(faccessat(rootfd, temp, F_OK, 0), -1);
  ck_assert_int_eq(fsd_open_file(rootfd, "target", &st) >= 0, 1);
  ck_assert_int_eq(st.st_size, 5);
}
END_TEST

START_TEST(test_fsops_write_at_gathers_pieces_in_order) {
  char temp[FSD_TEMP_NAME_LEN], back[16];
  struct iovec iov[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
  int fd = fsd_temp_create(rootfd, temp);
  int rfd;

  ck_assert_int_ge(fd, 0);
  /* Pieces land one after the other at the offset, the hole before it
   * reads as zeros, and the count is of all bytes written. */
  ck_assert_int_eq(fsd_write_at(fd, iov, 3, 2), 8);
  ck_assert_int_eq(fsd_write_at(fd, iov + 2, 1, 10), 5);
  ck_assert_int_eq(fsd_write_at(fd, iov, 0, 15), 0);
  rfd = openat(rootfd, temp, O_RDONLY);
  ck_assert_int_ge(rfd, 0);
  ck_assert_int_eq(read(rfd, back, sizeof(back)), 15);
  ck_assert_int_eq(memcmp(back, "\0\0abcdefghdefgh", 15), 0);
  close(rfd);
  /* A descriptor that cannot be written gives a negative UV_E* code. */
  rfd = openat(rootfd, temp, O_RDONLY);
  ck_assert_int_eq(fsd_write_at(rfd, iov, 1, 0), UV_EBADF);
  close(rfd);
  close(fd);
}
END_TEST

START_TEST(test_fsops_reserve_keeps_size) {
  char temp[FSD_TEMP_NAME_LEN];
  struct stat st;
  int fd = fsd_temp_create(rootfd, temp);

  ck_assert_int_ge(fd, 0);
  /* The blocks are set aside, the size still counts only what is written. */
  ck_assert_int_eq(fsd_reserve(fd, 0, 1 << 20), 0);
  ck_assert_int_eq(fstat(fd, &st), 0);
  ck_assert_int_eq(st.st_size, 0);
  ck_assert_int_ge((long long)st.st_blocks * 512, 1 << 20);
  /* A further step beyond the first, as an upload sets aside more. */
  ck_assert_int_eq(fsd_reserve(fd, 1 << 20, 1 << 20), 0);
  ck_assert_int_eq(fstat(fd, &st), 0);
  ck_assert_int_ge((long long)st.st_blocks * 512, 2 << 20);
  ck_assert_int_eq(write(fd, "abc", 3), 3);
  ck_assert_int_eq(fstat(fd, &st), 0);
  ck_assert_int_eq(st.st_size, 3);
  ck_assert_int_eq(fsd_reserve(fd, 0, 0), 0);
  close(fd);
}
END_TEST

START_TEST(test_fsops_scan_skips_and_cleans) {
  struct fsd_scan sc;
  char temp[FSD_TEMP_NAME_LEN];
  int fd;

  put_file("visible", "v");
  put_file(".hidden", "h");
  ck_assert_int_eq(symlinkat("visible", rootfd, "link"), 0);
  ck_assert_int_eq(mkdirat(rootfd, "sub", 0755), 0);
  fd = fsd_temp_create(rootfd, temp);
  close(fd);

  ck_assert_int_eq(fsd_scan_dir(rootfd, 0, &sc), 0);
  ck_assert_uint_eq(sc.n, 1);
  ck_assert_str_eq(sc.v[0].name, "visible");
  ck_assert_uint_eq(sc.v[0].st.size, 1);
  ck_assert_int_eq(sc.removed_temps, 0);
  fsd_scan_free(&sc);
  ck_assert_int_eq(faccessat(rootfd, temp, F_OK, 0), 0);

  ck_assert_int_eq(fsd_scan_dir(rootfd, 1, &sc), 0);
  ck_assert_int_eq(sc.removed_temps, 1);
  fsd_scan_free(&sc);
  ck_assert_int_eq(faccessat(rootfd, temp, F_OK, 0), -1);
  ck_assert_int_eq(faccessat(rootfd, ".hidden", F_OK, 0), 0);
}
END_TEST

START_TEST(test_fsops_status_mapping) {
  ck_assert_uint_eq(fsd_status_from_uv(UV_ENOENT), 1);
  ck_assert_uint_eq(fsd_status_from_uv(UV_EEXIST), 2);
  ck_assert_uint_eq(fsd_status_from_uv(UV_ENOSPC), 9);
  ck_assert_uint_eq(fsd_status_from_uv(UV_EIO), 6);
  ck_assert_uint_eq(fsd_status_from_uv(UV_EACCES), 6);
}
END_TEST

Suite *fsops_suite(void) {
  Suite *s = suite_create("fsops");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_fsops_open_regular_file);
  tcase_add_test(tc, test_fsops_refuses_symlink_dir_fifo);
  tcase_add_test(tc, test_fsops_temp_commit_replace_and_no_clobber);
  tcase_add_test(tc, test_fsops_write_at_gathers_pieces_in_order);
  tcase_add_test(tc, test_fsops_reserve_keeps_size);
  tcase_add_test(tc, test_fsops_scan_skips_and_cleans);
  tcase_add_test(tc, test_fsops_status_mapping);
  suite_add_tcase(s, tc);
  return s;
}
