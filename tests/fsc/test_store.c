/* store.c (a small file's disk work in one call), batch/batch.c (many of
 * them to a threadpool trip, as fsc uses it) and outq.c (a turn's frames in one
 * write), on real files in a fresh folder and a real loop. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "batch.h"
#include "outq.h"
#include "store.h"
#include "suites.h"

static char dir[64];

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/fsc-store-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  umask(022);
}

static void rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[PATH_MAX];
    while (d != NULL && (e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
      rm_rf(sub);
    }
    if (d != NULL)
      closedir(d);
    rmdir(path);
  } else
    unlink(path);
}

static void teardown(void) {
  rm_rf(dir);
}

static void path_in(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
}

/* Entries in the test folder (a left-over temporary file shows here). */
static int entries(void) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while (d != NULL && (e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  if (d != NULL)
    closedir(d);
  return n;
}

/* The file's bytes (up to cap) and their count, or -1. */
static ssize_t slurp(const char *path, uint8_t *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, cap);
  close(fd);
  return n;
}

/* Each store test runs with the usual call (_i 0) and its named-file
 * fallback (_i 1). */
typedef struct fsc_store_res (*store_fn)(const char *, const uint8_t *, size_t,
                                         unsigned);
static const store_fn stores[] = {fsc_store_small, fsc_store_small_named};

static void fill(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 31 + seed);
}

START_TEST(test_store_small_new_file) {
  static uint8_t data[FSC_SMALL_MAX], back[FSC_SMALL_MAX + 1];
  char target[PATH_MAX];
  struct stat st;
  fill(data, sizeof data, 7);
  path_in(target, sizeof target, "f.bin");
  struct fsc_store_res r = stores[_i](target, data, sizeof data, 0666);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(slurp(target, back, sizeof back), sizeof data);
  ck_assert_mem_eq(back, data, sizeof data);
  ck_assert_int_eq(lstat(target, &st), 0);
  ck_assert(S_ISREG(st.st_mode));
  ck_assert_int_eq(st.st_mode & 07777, 0644); /* the umask applies */
  ck_assert_int_eq(entries(), 1);
  /* An empty file is a file too. */
  path_in(target, sizeof target, "zero");
  r = stores[_i](target, data, 0, 0666);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(slurp(target, back, sizeof back), 0);
  ck_assert_int_eq(entries(), 2);
}
END_TEST

START_TEST(test_store_small_replaces_a_file) {
  uint8_t back[16];
  char target[PATH_MAX];
  path_in(target, sizeof target, "f");
  ck_assert_int_eq(stores[_i](target, (const uint8_t *)"old", 3, 0666).err, 0);
  struct fsc_store_res r =
      stores[_i](target, (const uint8_t *)"newer", 5, 0666);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(slurp(target, back, sizeof back), 5);
  ck_assert_mem_eq(back, "newer", 5);
  ck_assert_int_eq(entries(), 1); /* no temporary name left */
}
END_TEST

START_TEST(test_store_small_leaves_folders_and_links) {
  uint8_t back[16];
  char target[PATH_MAX], outside[PATH_MAX];
  path_in(target, sizeof target, "d");
  ck_assert_int_eq(mkdir(target, 0777), 0);
  struct fsc_store_res r = stores[_i](target, (const uint8_t *)"x", 1, 0666);
  ck_assert_int_ne(r.err, 0);
  ck_assert_int_eq(r.step, FSC_STEP_FOLDER);
  /* A link planted where a file goes is never written through. */
  path_in(outside, sizeof outside, "outside");
  ck_assert_int_eq(stores[_i](outside, (const uint8_t *)"keep", 4, 0666).err,
                   0);
  path_in(target, sizeof target, "link");
  ck_assert_int_eq(symlink(outside, target), 0);
  r = stores[_i](target, (const uint8_t *)"evil", 4, 0666);
  ck_assert_int_ne(r.err, 0);
  ck_assert_int_eq(r.step, FSC_STEP_SPECIAL);
  ck_assert_int_eq(slurp(outside, back, sizeof back), 4);
  ck_assert_mem_eq(back, "keep", 4);
  ck_assert_int_eq(entries(), 3); /* d, outside, link: nothing more */
}
END_TEST

/* A write that fails midway (the file size limit, as a full disk would)
 * leaves no partial file, and leaves a file being replaced as it was. */
START_TEST(test_store_small_fails_midway) {
  static uint8_t data[8192];
  uint8_t back[16];
  char target[PATH_MAX];
  struct rlimit old, lim;
  fill(data, sizeof data, 3);
  path_in(target, sizeof target, "kept");
  ck_assert_int_eq(stores[_i](target, (const uint8_t *)"old", 3, 0666).err, 0);
  void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim.rlim_cur = 4096;
  lim.rlim_max = old.rlim_max; /* kept, so the old limit can come back */
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  struct fsc_store_res r = stores[_i](target, data, sizeof data, 0666);
  char fresh[PATH_MAX];
  path_in(fresh, sizeof fresh, "fresh");
  struct fsc_store_res r2 = stores[_i](fresh, data, sizeof data, 0666);
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, was);
  ck_assert_int_eq(r.err, UV_EFBIG);
  ck_assert_int_eq(r.step, FSC_STEP_WRITE);
  ck_assert_int_eq(r2.err, UV_EFBIG);
  ck_assert_int_eq(slurp(target, back, sizeof back), 3);
  ck_assert_mem_eq(back, "old", 3);
  ck_assert_int_eq(access(fresh, F_OK), -1);
  ck_assert_int_eq(entries(), 1);
}
END_TEST

START_TEST(test_load_small) {
  static uint8_t data[5000], buf[FSC_SMALL_MAX];
  char path[PATH_MAX], link[PATH_MAX];
  uint64_t size;
  unsigned mode;
  size_t got;
  int fd;
  fill(data, sizeof data, 9);
  path_in(path, sizeof path, "f");
  ck_assert_int_eq(fsc_store_small(path, data, sizeof data, 0666).err, 0);
  struct fsc_store_res r =
      fsc_load_small(path, 1, buf, sizeof buf, &size, &mode, &got, &fd);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(fd, -1);
  ck_assert_int_eq(size, sizeof data);
  ck_assert_int_eq(got, sizeof data);
  ck_assert(S_ISREG(mode));
  ck_assert_mem_eq(buf, data, sizeof data);
  /* Bigger than the room given: left open, nothing read. */
  r = fsc_load_small(path, 1, buf, 100, &size, &mode, &got, &fd);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(size, sizeof data);
  ck_assert_int_eq(got, 0);
  close(fd);
  /* A folder is no small file either: the caller says what it is. */
  r = fsc_load_small(dir, 1, buf, sizeof buf, &size, &mode, &got, &fd);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert(S_ISDIR(mode));
  close(fd);
  /* A link is not followed when asked not to. */
  path_in(link, sizeof link, "link");
  ck_assert_int_eq(symlink(path, link), 0);
  r = fsc_load_small(link, 1, buf, sizeof buf, &size, &mode, &got, &fd);
  ck_assert_int_eq(r.err, UV_ELOOP);
  ck_assert_int_eq(r.step, FSC_STEP_OPEN);
  ck_assert_int_eq(fd, -1);
  path_in(link, sizeof link, "missing");
  r = fsc_load_small(link, 1, buf, sizeof buf, &size, &mode, &got, &fd);
  ck_assert_int_eq(r.err, UV_ENOENT);
}
END_TEST

/* batch/batch.c: every item's work runs once, on a worker, before its done,
 * which runs once. */
struct bitem {
  struct fsb_item it;
  int worked;
  int dones;
};

static int done_count;

static void bwork(struct fsb_item *it) {
  ((struct bitem *)it)->worked++;
}

static void bdone(struct fsb_item *it, int status) {
  struct bitem *b = (struct bitem *)it;
  ck_assert_int_eq(status, 0);
  ck_assert_int_eq(b->worked, 1);
  b->dones++;
  done_count++;
}

START_TEST(test_batch_runs_every_item) {
  uv_loop_t loop;
  static struct bitem items[200];
  struct fsb_batcher b;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  memset(&b, 0, sizeof b);
  b.loop = &loop;
  done_count = 0;
  for (int i = 0; i < 200; i++) {
    memset(&items[i], 0, sizeof items[i]);
    items[i].it.work = bwork;
    items[i].it.done = bdone;
    ck_assert_int_eq(fsb_add(&b, &items[i].it), 0);
  }
  ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(done_count, 200);
  for (int i = 0; i < 200; i++)
    ck_assert_int_eq(items[i].dones, 1);
  ck_assert_ptr_null(b.head);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* outq.c: small frames and callers' buffers come out in order, adjacent
 * small frames as one buffer, and each caller hears the batch's status. */
static int cb_calls[3];
static int cb_status;

static void qcb(uv_write_t *req, int status) {
  cb_calls[(int)(intptr_t)req->data]++;
  cb_status = status;
}

START_TEST(test_outq_order) {
  struct fsc_outq *q = fsc_outq_new();
  uv_write_t w1, w2;
  uv_buf_t *bufs;
  unsigned n;
  w1.data = (void *)(intptr_t)1;
  w2.data = (void *)(intptr_t)2;
  ck_assert_ptr_nonnull(q);
  memcpy(fsc_outq_reserve(q, 2), "ab", 2);
  memcpy(fsc_outq_reserve(q, 3), "cde", 3);
  ck_assert_int_eq(fsc_outq_add(q, (const uint8_t *)"XYZ", 3, &w1, qcb), 0);
  /* Enough small frames to move the own buffer: offsets still hold. */
  for (int i = 0; i < 3000; i++)
    memcpy(fsc_outq_reserve(q, 2), "fg", 2);
  ck_assert_int_eq(fsc_outq_add(q, (const uint8_t *)"W", 1, &w2, qcb), 0);
  ck_assert_int_eq(q->bytes, 5 + 3 + 6000 + 1);
  ck_assert_int_eq(fsc_outq_bufs(q, &bufs, &n), 0);
  ck_assert_uint_eq(n, 4);
  ck_assert_uint_eq(bufs[0].len, 5);
  ck_assert_mem_eq(bufs[0].base, "abcde", 5);
  ck_assert_ptr_eq(bufs[1].base, "XYZ");
  ck_assert_uint_eq(bufs[2].len, 6000);
  ck_assert_mem_eq(bufs[2].base + 5998, "fg", 2);
  ck_assert_uint_eq(bufs[3].len, 1);
  memset(cb_calls, 0, sizeof cb_calls);
  fsc_outq_done(q, UV_ECANCELED);
  ck_assert_int_eq(cb_calls[1], 1);
  ck_assert_int_eq(cb_calls[2], 1);
  ck_assert_int_eq(cb_status, UV_ECANCELED);
  fsc_outq_free(q);
}
END_TEST

Suite *store_suite(void) {
  Suite *s = suite_create("store");
  TCase *tc = tcase_create("files");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_loop_test(tc, test_store_small_new_file, 0, 2);
  tcase_add_loop_test(tc, test_store_small_replaces_a_file, 0, 2);
  tcase_add_loop_test(tc, test_store_small_leaves_folders_and_links, 0, 2);
  tcase_add_loop_test(tc, test_store_small_fails_midway, 0, 2);
  tcase_add_test(tc, test_load_small);
  suite_add_tcase(s, tc);
  tc = tcase_create("batch");
  tcase_add_test(tc, test_batch_runs_every_item);
  tcase_add_test(tc, test_outq_order);
  suite_add_tcase(s, tc);
  return s;
}
