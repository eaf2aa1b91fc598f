/* Blocking tree helpers (server/tree.c), on a temporary root with an
 * "outside" folder beside it that no call may ever change. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <fsproto/fsproto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "tree.h"
#include "tree_suites.h"
#include "treereg.h"

static char tmpdir[64];
static char outside[128];
static int rootfd = -1;

static void setup(void) {
  char root[128];

  strcpy(tmpdir, "/tmp/fsd-tree-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
  snprintf(root, sizeof(root), "%s/root", tmpdir);
  snprintf(outside, sizeof(outside), "%s/outside", tmpdir);
  ck_assert_int_eq(mkdir(root, 0755), 0);
  ck_assert_int_eq(mkdir(outside, 0755), 0);
  rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_ge(rootfd, 0);
  /* The file every attack aims at. */
  {
    char p[160];
    int fd;
    snprintf(p, sizeof(p), "%s/secret", outside);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "keep", 4), 4);
    close(fd);
  }
}

static void teardown(void) {
  char cmd[160];

  close(rootfd);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  ck_assert_int_eq(system(cmd), 0);
}

/* The outside folder still holds exactly its one file, unchanged. */
static void check_outside_intact(void) {
  char p[160], buf[8];
  struct stat st;
  int fd;

  snprintf(p, sizeof(p), "%s/secret", outside);
  fd = open(p, O_RDONLY);
  ck_assert_msg(fd >= 0, "the file outside the root is gone");
  ck_assert_int_eq(read(fd, buf, sizeof(buf)), 4);
  ck_assert_int_eq(memcmp(buf, "keep", 4), 0);
  close(fd);
  ck_assert_int_eq(stat(outside, &st), 0);
  ck_assert_uint_eq(st.st_nlink, 2); /* no folder was made in it */
}

static void put(const char *path, const char *text) {
  int fd = openat(rootfd, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static void mk(const char *path) {
  ck_assert_msg(mkdirat(rootfd, path, 0755) == 0, "mkdir %s", path);
}

static int exists(const char *path) {
  struct stat st;
  return fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A link inside the root pointing at the outside folder. */
static void plant_link(const char *path) {
  ck_assert_int_eq(symlinkat(outside, rootfd, path), 0);
}

START_TEST(test_tree_open_and_stat) {
  struct fsd_tree_info in;
  int fd;

  mk("a");
  mk("a/b");
  put("a/b/f.txt", "hello");
  fd = fsd_tree_open(rootfd, "a/b/f.txt", O_RDONLY);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(fsd_tree_stat(rootfd, "a/b/f.txt", &in), 0);
  ck_assert_uint_eq(in.type, FSP_TYPE_FILE);
  ck_assert_uint_eq(in.size, 5);
  ck_assert_int_eq(fsd_tree_stat(rootfd, "a/b", &in), 0);
  ck_assert_uint_eq(in.type, FSP_TYPE_FOLDER);
  ck_assert_uint_eq(in.size, 0);
  ck_assert_int_eq(fsd_tree_stat(rootfd, "a/x", &in), UV_ENOENT);
  ck_assert_int_eq(fsd_tree_stat(rootfd, "a/b/f.txt/x", &in), UV_ENOTDIR);
  fd = fsd_tree_open(rootfd, "", O_RDONLY | O_DIRECTORY);
  ck_assert_int_ge(fd, 0);
  close(fd);
}
END_TEST

/* A link to a folder outside, anywhere on a path, is absence: not opened,
 * not stat'ed, not listed. */
START_TEST(test_tree_planted_link_never_followed) {
  struct fsd_tree_info in;

  mk("a");
  plant_link("a/out");
  ck_assert_int_eq(fsd_tree_open(rootfd, "a/out/secret", O_RDONLY), UV_ENOENT);
  ck_assert_int_eq(fsd_tree_open(rootfd, "a/out", O_RDONLY | O_DIRECTORY),
                   UV_ENOENT);
  ck_assert_int_eq(fsd_tree_stat(rootfd, "a/out", &in), UV_ENOENT);
  ck_assert_int_eq(fsd_tree_stat(rootfd, "a/out/secret", &in), UV_ENOENT);
  check_outside_intact();
}
END_TEST

START_TEST(test_tree_mkdir_parents) {
  struct fsd_tree_info in;
  size_t created;

  mk("a");
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "a/b/c", 1, 1, &created), 0);
  ck_assert_uint_eq(created, 2); /* "a/b" and "a/b/c" are new */
  ck_assert_int_eq(fsd_tree_stat(rootfd, "a/b/c", &in), 0);
  ck_assert_uint_eq(in.type, FSP_TYPE_FOLDER);
  /* Again: nothing to do, no error, nothing created. */
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "a/b/c", 1, 0, &created), 0);
  ck_assert_uint_eq(created, strlen("a/b/c"));
  /* Without parents: exists, or parent missing. */
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "a/b/c", 0, 0, &created), UV_EEXIST);
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "x/y", 0, 0, &created), UV_ENOENT);
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "a/d", 0, 0, &created), 0);
  ck_assert_uint_eq(created, 2);
  /* A file in the way. */
  put("a/f", "x");
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "a/f/g", 1, 0, &created), UV_ENOTDIR);
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "a/f", 1, 0, &created), UV_EEXIST);
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "a/f/g", 0, 0, &created), UV_ENOTDIR);
}
END_TEST

/* mkdir -p through a link planted in the path makes nothing outside. */
START_TEST(test_tree_mkdir_through_link_refused) {
  size_t created;

  plant_link("l");
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "l/new", 1, 0, &created), UV_ENOTDIR);
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "l/new", 0, 0, &created), UV_ENOENT);
  ck_assert_int_eq(fsd_tree_mkdir(rootfd, "l", 1, 0, &created), UV_EEXIST);
  check_outside_intact();
}
END_TEST

START_TEST(test_tree_rename_file_and_folder) {
  struct fsd_tree_info in;

  mk("a");
  mk("b");
  put("a/x.txt", "one");
  ck_assert_int_eq(fsd_tree_rename(rootfd, "a/x.txt", "b/y.txt", 0, 1, &in), 0);
  ck_assert_uint_eq(in.type, FSP_TYPE_FILE);
  ck_assert_uint_eq(in.size, 3);
  ck_assert(!exists("a/x.txt"));
  ck_assert(exists("b/y.txt"));
  ck_assert_int_eq(fsd_tree_rename(rootfd, "b", "a/b", 0, 0, &in), 0);
  ck_assert_uint_eq(in.type, FSP_TYPE_FOLDER);
  ck_assert(exists("a/b/y.txt"));
  /* Same name: nothing changes, and it still must exist. */
  ck_assert_int_eq(fsd_tree_rename(rootfd, "a/b", "a/b", 0, 0, &in), 0);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "nope", "nope", 0, 0, &in),
                   UV_ENOENT);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "a/b", "x/b", 0, 0, &in), UV_ENOENT);
}
END_TEST

START_TEST(test_tree_rename_replace_and_no_replace) {
  struct fsd_tree_info in;
  char buf[8];
  int fd;

  put("old", "old");
  put("new", "new!");
  ck_assert_int_eq(fsd_tree_rename(rootfd, "new", "old", 1, 0, &in), UV_EEXIST);
  ck_assert(exists("new"));
  ck_assert_int_eq(fsd_tree_rename(rootfd, "new", "old", 0, 0, &in), 0);
  ck_assert(!exists("new"));
  fd = openat(rootfd, "old", O_RDONLY);
  ck_assert_int_eq(read(fd, buf, sizeof(buf)), 4);
  close(fd);
  /* Folders and files do not replace one another; a full folder stays. */
  mk("d");
  mk("full");
  put("full/f", "f");
  ck_assert_int_eq(fsd_tree_rename(rootfd, "old", "d", 0, 0, &in), UV_EISDIR);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "d", "old", 0, 0, &in), UV_ENOTDIR);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "d", "full", 0, 0, &in),
                   UV_ENOTEMPTY);
  mk("empty");
  ck_assert_int_eq(fsd_tree_rename(rootfd, "d", "empty", 0, 0, &in), 0);
  ck_assert(!exists("d"));
}
END_TEST

/* A reader that opened a file before it was renamed away, or replaced by
 * a rename, reads the file it opened, whole (what a GET in flight relies
 * on). */
START_TEST(test_tree_rename_during_read) {
  struct fsd_tree_info in;
  char buf[32];
  int fd;

  mk("a");
  put("a/x", "the old content");
  put("new", "new");
  fd = fsd_tree_open(rootfd, "a/x", O_RDONLY);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(read(fd, buf, 4), 4);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "a/x", "moved", 0, 0, &in), 0);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "new", "moved", 0, 0, &in), 0);
  ck_assert_int_eq(read(fd, buf + 4, sizeof(buf) - 4), 11);
  ck_assert_int_eq(memcmp(buf, "the old content", 15), 0);
  close(fd);
}
END_TEST

START_TEST(test_tree_rename_into_itself_refused) {
  struct fsd_tree_info in;

  mk("a");
  mk("a/b");
  ck_assert_int_eq(fsd_tree_rename(rootfd, "a", "a/b/a", 0, 0, &in),
                   FSD_TREE_EINTOSELF);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "a", "a/c", 1, 0, &in),
                   FSD_TREE_EINTOSELF);
  ck_assert_uint_eq(fsd_tree_status(FSD_TREE_EINTOSELF), FSP_ST_INTO_SELF);
  ck_assert(exists("a/b"));
  /* "ab" is not inside "a". */
  ck_assert_int_eq(fsd_tree_rename(rootfd, "a", "ab", 0, 0, &in), 0);
}
END_TEST

/* A link is neither moved by name nor replaced by a rename. */
START_TEST(test_tree_rename_leaves_links_alone) {
  struct fsd_tree_info in;

  plant_link("l");
  put("f", "x");
  ck_assert_int_eq(fsd_tree_rename(rootfd, "l", "m", 0, 0, &in), UV_ENOENT);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "f", "l", 0, 0, &in), UV_EEXIST);
  ck_assert_int_eq(fsd_tree_rename(rootfd, "f", "l/secret", 0, 0, &in),
                   UV_ENOENT);
  ck_assert(exists("f"));
  check_outside_intact();
}
END_TEST

struct seen {
  char paths[64][64];
  int errs[64];
  uint8_t types[64];
  int n;
  void (*hook)(struct seen *s); /* run at the first report */
};

static int record(void *arg, const char *path, size_t len, uint8_t type,
                  int err) {
  struct seen *s = arg;

  ck_assert_uint_eq(strlen(path), len);
  ck_assert_int_lt(s->n, 64);
  snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", path);
  s->errs[s->n] = err;
  s->types[s->n] = type;
  if (s->n++ == 0 && s->hook != NULL)
    s->hook(s);
  return 0;
}

static int seen_index(const struct seen *s, const char *path) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->paths[i], path) == 0)
      return i;
  return -1;
}

START_TEST(test_tree_remove_file_and_empty_folder) {
  struct seen s = {0};

  mk("d");
  put("d/f", "x");
  ck_assert_int_eq(fsd_tree_remove(rootfd, "d", 0, 0, record, &s),
                   UV_ENOTEMPTY);
  ck_assert_int_eq(s.n, 0);
  ck_assert_int_eq(fsd_tree_remove(rootfd, "d/f", 0, 1, record, &s), 0);
  ck_assert_int_eq(s.n, 1);
  ck_assert_str_eq(s.paths[0], "d/f");
  ck_assert_uint_eq(s.types[0], FSP_TYPE_FILE);
  ck_assert_int_eq(fsd_tree_remove(rootfd, "d", 0, 1, record, &s), 0);
  ck_assert_str_eq(s.paths[1], "d");
  ck_assert_uint_eq(s.types[1], FSP_TYPE_FOLDER);
  ck_assert_int_eq(fsd_tree_remove(rootfd, "d", 0, 0, record, &s), UV_ENOENT);
}
END_TEST

START_TEST(test_tree_remove_recursive_reports_each) {
  struct seen s = {0};

  mk("t");
  mk("t/a");
  mk("t/a/b");
  mk("t/empty");
  put("t/a/b/f1", "1");
  put("t/a/f2", "22");
  put("t/f3", "");
  ck_assert_int_eq(fsd_tree_remove(rootfd, "t", 1, 1, record, &s), 0);
  ck_assert(!exists("t"));
  ck_assert_int_eq(s.n, 7);
  for (int i = 0; i < s.n; i++)
    ck_assert_int_eq(s.errs[i], 0);
  /* Contents before their folder, the top last. */
  ck_assert_int_lt(seen_index(&s, "t/a/b/f1"), seen_index(&s, "t/a/b"));
  ck_assert_int_lt(seen_index(&s, "t/a/b"), seen_index(&s, "t/a"));
  ck_assert_int_lt(seen_index(&s, "t/a/f2"), seen_index(&s, "t/a"));
  ck_assert_int_ge(seen_index(&s, "t/empty"), 0);
  ck_assert_str_eq(s.paths[s.n - 1], "t");
}
END_TEST

/* A planted link inside the tree: not followed, not removed, reported; its
 * folder stays; nothing outside changes. */
START_TEST(test_tree_remove_recursive_planted_link) {
  struct seen s = {0};
  int i;

  mk("t");
  mk("t/sub");
  put("t/sub/f", "x");
  plant_link("t/sub/out");
  ck_assert_int_eq(fsd_tree_remove(rootfd, "t", 1, 0, record, &s),
                   UV_ENOTEMPTY);
  i = seen_index(&s, "t/sub/out");
  ck_assert_int_ge(i, 0);
  ck_assert_int_eq(s.errs[i], UV_ENOENT);
  ck_assert_int_eq(s.errs[seen_index(&s, "t/sub/f")], 0);
  ck_assert_int_lt(seen_index(&s, "t/sub"), 0); /* not reported again */
  ck_assert(exists("t/sub/out"));
  ck_assert(!exists("t/sub/f"));
  check_outside_intact();
  /* A link as the path itself is absence. */
  ck_assert_int_eq(fsd_tree_remove(rootfd, "t/sub/out", 1, 0, record, &s),
                   UV_ENOENT);
  ck_assert_int_eq(
      fsd_tree_remove(rootfd, "t/sub/out/secret", 0, 0, record, &s), UV_ENOENT);
  check_outside_intact();
}
END_TEST

/* The race: while a recursive removal runs, every folder it has not yet
 * entered is swapped for a link to the outside folder (done from the
 * report of the first entry removed, so inside the walk). The removal must
 * not go through the links. */
static void swap_unvisited(struct seen *s) {
  static const char *dirs[] = {"t/d1", "t/d2", "t/d3"};
  char moved[32];

  for (size_t i = 0; i < 3; i++) {
    size_t l = strlen(dirs[i]);
    if (strncmp(s->paths[0], dirs[i], l) == 0 && s->paths[0][l] == '/')
      continue; /* the folder being worked on now */
    snprintf(moved, sizeof(moved), "moved%zu", i);
    ck_assert_int_eq(renameat(rootfd, dirs[i], rootfd, moved), 0);
    ck_assert_int_eq(symlinkat(outside, rootfd, dirs[i]), 0);
  }
}

START_TEST(test_tree_remove_recursive_swap_race) {
  struct seen s = {0};

  mk("t");
  mk("t/d1");
  mk("t/d2");
  mk("t/d3");
  put("t/d1/secret", "1");
  put("t/d2/secret", "2");
  put("t/d3/secret", "3");
  s.hook = swap_unvisited;
  ck_assert_int_eq(fsd_tree_remove(rootfd, "t", 1, 0, record, &s),
                   UV_ENOTEMPTY);
  check_outside_intact();
  /* The two swapped folders kept their files in their new place. */
  ck_assert_int_eq(exists("moved0/secret") + exists("moved1/secret") +
                       exists("moved2/secret"),
                   2);
}
END_TEST

/* The narrow race: the folder is swapped for a link after the removal has
 * seen it as a folder and before it enters it. */
static void swap_now(const char *path) {
  if (strcmp(path, "t/d") != 0)
    return;
  ck_assert_int_eq(renameat(rootfd, "t/d", rootfd, "moved"), 0);
  ck_assert_int_eq(symlinkat(outside, rootfd, "t/d"), 0);
}

START_TEST(test_tree_remove_recursive_swap_after_stat) {
  struct seen s = {0};
  int i;

  mk("t");
  mk("t/d");
  put("t/d/secret", "mine");
  fsd_tree__enter_hook = swap_now;
  ck_assert_int_eq(fsd_tree_remove(rootfd, "t", 1, 0, record, &s),
                   UV_ENOTEMPTY);
  fsd_tree__enter_hook = NULL;
  check_outside_intact();
  ck_assert(exists("moved/secret"));
  i = seen_index(&s, "t/d");
  ck_assert_int_ge(i, 0);
  ck_assert_int_eq(s.errs[i], UV_ENOENT);
}
END_TEST

/* Entries the protocol cannot name stay, and their folder is reported. */
START_TEST(test_tree_remove_recursive_hidden_entries_stay) {
  struct seen s = {0};
  int i;

  mk("t");
  mk("t/h");
  put("t/h/.fsd-tmp-0123", "upload in progress");
  put("t/h/seen", "x");
  ck_assert_int_eq(fsd_tree_remove(rootfd, "t", 1, 0, record, &s),
                   UV_ENOTEMPTY);
  ck_assert(exists("t/h/.fsd-tmp-0123"));
  i = seen_index(&s, "t/h");
  ck_assert_int_ge(i, 0);
  ck_assert_int_eq(s.errs[i], UV_ENOTEMPTY);
  ck_assert_uint_eq(fsd_tree_status(s.errs[i]), FSP_ST_NOT_EMPTY);
}
END_TEST

struct listing {
  char paths[32][64];
  int folder[32];
  int n;
};

static int collect(void *arg, const char *path, size_t len,
                   const struct stat *st) {
  struct listing *l = arg;

  ck_assert_uint_eq(strlen(path), len);
  ck_assert_int_lt(l->n, 32);
  snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s", path);
  l->folder[l->n] = S_ISDIR(st->st_mode);
  l->n++;
  return 0;
}

static int find(const struct listing *l, const char *path) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->paths[i], path) == 0)
      return i;
  return -1;
}

START_TEST(test_tree_scan_whole_tree) {
  struct listing l = {0};

  mk("a");
  mk("a/b");
  mk("e");
  put("a/b/f", "x");
  put("top", "y");
  put(".hidden", "z");
  put("a/.fsd-tmp-1", "z");
  plant_link("a/out");
  ck_assert_int_eq(mkfifoat(rootfd, "a/fifo", 0644), 0);
  ck_assert_int_eq(fsd_tree_scan(rootfd, "", collect, &l), 0);
  ck_assert_int_eq(l.n, 5);
  ck_assert_int_ge(find(&l, "top"), 0);
  ck_assert_int_ge(find(&l, "e"), 0);
  ck_assert(l.folder[find(&l, "a/b")]);
  ck_assert(!l.folder[find(&l, "a/b/f")]);
  /* Folders before their contents. */
  ck_assert_int_lt(find(&l, "a"), find(&l, "a/b"));
  ck_assert_int_lt(find(&l, "a/b"), find(&l, "a/b/f"));
  /* A subtree: paths relative to it. */
  memset(&l, 0, sizeof(l));
  ck_assert_int_eq(fsd_tree_scan(rootfd, "a", collect, &l), 0);
  ck_assert_int_eq(l.n, 2);
  ck_assert_int_ge(find(&l, "b/f"), 0);
  ck_assert_int_eq(fsd_tree_scan(rootfd, "a/out", collect, &l), UV_ENOENT);
  ck_assert_int_eq(fsd_tree_scan(rootfd, "top", collect, &l), UV_ENOTDIR);
}
END_TEST

/* What fsd will do at start: a scan of the disk fills the tree register
 * (folders come before their contents, so every parent is there in time),
 * and a recursive walk of it gives back exactly the files and folders on
 * disk, links and hidden names left out. */
static int fill(void *arg, const char *path, size_t len,
                const struct stat *st) {
  struct fsd_treereg *reg = arg;
  int r = fsd_treereg_set(
      reg, path, len, S_ISDIR(st->st_mode) ? FSP_TYPE_FOLDER : FSP_TYPE_FILE,
      (uint64_t)st->st_size, 0);
  ck_assert_msg(r == FSP_EV_ADDED, "%s: %d", path, r);
  return 0;
}

START_TEST(test_tree_scan_fills_register) {
  struct fsd_treereg reg;
  struct fsd_tree_cursor c;
  const struct fsd_node *n;
  int files = 0, folders = 0;

  mk("p");
  mk("p/2024");
  mk("p/empty");
  put("p/2024/a b.jpg", "12345");
  put("p/2024/caf\xc3\xa9", "");
  put("top", "x");
  put(".hidden", "x");
  plant_link("p/out");
  ck_assert_int_eq(fsd_treereg_init(&reg), 0);
  ck_assert_int_eq(fsd_tree_scan(rootfd, "", fill, &reg), 0);
  ck_assert_int_eq(fsd_treereg_walk_open(&reg, &c, "", 0, 1), 0);
  while ((n = fsd_treereg_walk_next(&reg, &c)) != NULL) {
    files += n->type == FSP_TYPE_FILE;
    folders += n->type == FSP_TYPE_FOLDER;
  }
  fsd_treereg_walk_close(&reg, &c);
  ck_assert_int_eq(files, 3);
  ck_assert_int_eq(folders, 3);
  ck_assert_uint_eq(fsd_treereg_get(&reg, "p/2024/a b.jpg", 14)->size, 5);
  ck_assert_ptr_null(fsd_treereg_get(&reg, "p/out", 5));
  fsd_treereg_free(&reg);
}
END_TEST

/* Every allocation of a recursive removal and of a scan fails in turn: the
 * call ends with a clear error or works, nothing outside the root changes,
 * nothing leaks. */
static void ensure(const char *dir, const char *file) {
  int fd;

  if (mkdirat(rootfd, dir, 0755) != 0)
    ck_assert_int_eq(errno, EEXIST);
  fd = openat(rootfd, file, O_WRONLY | O_CREAT, 0644);
  ck_assert_int_ge(fd, 0);
  close(fd);
}

static int count_visit(void *arg, const char *path, size_t len,
                       const struct stat *st) {
  (void)path;
  (void)len;
  (void)st;
  (*(int *)arg)++;
  return 0;
}

START_TEST(test_tree_allocation_failures) {
  for (long n = 0;; n++) {
    int r, visits = 0, failed;

    ensure("t", "t/f");
    ensure("t/d", "t/d/g");
    tree_fail_at(n);
    r = fsd_tree_scan(rootfd, "", count_visit, &visits);
    ck_assert(r == 0 || r == UV_ENOMEM);
    r = fsd_tree_remove(rootfd, "t", 1, 0, NULL, NULL);
    ck_assert_msg(r == 0 || r == UV_ENOMEM || r == UV_ENOTEMPTY,
                  "failing call %ld: %s", n, uv_err_name(r));
    failed = tree_fail_failed();
    ck_assert_msg(tree_fail_end() == 0, "failing call %ld leaks", n);
    check_outside_intact();
    if (!failed) {
      ck_assert_int_eq(r, 0);
      ck_assert_int_eq(visits, 4);
      break;
    }
  }
}
END_TEST

START_TEST(test_tree_sync_dir) {
  mk("a");
  ck_assert_int_eq(fsd_tree_sync_dir(rootfd, ""), 0);
  ck_assert_int_eq(fsd_tree_sync_dir(rootfd, "a"), 0);
  ck_assert_int_eq(fsd_tree_sync_dir(rootfd, "b"), UV_ENOENT);
}
END_TEST

START_TEST(test_tree_status_map) {
  ck_assert_uint_eq(fsd_tree_status(UV_ENOENT), FSP_ST_NOT_FOUND);
  ck_assert_uint_eq(fsd_tree_status(UV_EEXIST), FSP_ST_EXISTS);
  ck_assert_uint_eq(fsd_tree_status(UV_ENOTDIR), FSP_ST_NOT_FOLDER);
  ck_assert_uint_eq(fsd_tree_status(UV_EISDIR), FSP_ST_IS_FOLDER);
  ck_assert_uint_eq(fsd_tree_status(UV_ENOSPC), FSP_ST_NO_SPACE);
  ck_assert_uint_eq(fsd_tree_status(UV_E2BIG), FSP_ST_TOO_LARGE);
  ck_assert_uint_eq(fsd_tree_status(UV_EIO), FSP_ST_IO);
}
END_TEST

Suite *tree_suite(void) {
  Suite *s = suite_create("tree");
  TCase *tc = tcase_create("tree");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_tree_open_and_stat);
  tcase_add_test(tc, test_tree_planted_link_never_followed);
  tcase_add_test(tc, test_tree_mkdir_parents);
  tcase_add_test(tc, test_tree_mkdir_through_link_refused);
  tcase_add_test(tc, test_tree_rename_file_and_folder);
  tcase_add_test(tc, test_tree_rename_replace_and_no_replace);
  tcase_add_test(tc, test_tree_rename_during_read);
  tcase_add_test(tc, test_tree_rename_into_itself_refused);
  tcase_add_test(tc, test_tree_rename_leaves_links_alone);
  tcase_add_test(tc, test_tree_remove_file_and_empty_folder);
  tcase_add_test(tc, test_tree_remove_recursive_reports_each);
  tcase_add_test(tc, test_tree_remove_recursive_planted_link);
  tcase_add_test(tc, test_tree_remove_recursive_swap_race);
  tcase_add_test(tc, test_tree_remove_recursive_swap_after_stat);
  tcase_add_test(tc, test_tree_remove_recursive_hidden_entries_stay);
  tcase_add_test(tc, test_tree_scan_whole_tree);
  tcase_add_test(tc, test_tree_scan_fills_register);
  tcase_add_test(tc, test_tree_allocation_failures);
  tcase_add_test(tc, test_tree_sync_dir);
  tcase_add_test(tc, test_tree_status_map);
  suite_add_tcase(s, tc);
  return s;
}
