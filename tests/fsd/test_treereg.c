/* The tree register (server/treereg.c): paths, folders, subtrees, moves,
 * and walks that survive changes. */
#include <fsproto/fsproto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "tree_suites.h"
#include "treereg.h"

static struct fsd_treereg reg;

static void setup(void) {
  ck_assert_int_eq(fsd_treereg_init(&reg), 0);
}

static void teardown(void) {
  fsd_treereg_free(&reg);
}

static int set(const char *path, uint8_t type, uint64_t size) {
  return fsd_treereg_set(&reg, path, strlen(path), type, size, 7);
}

static void folder(const char *path) {
  ck_assert_int_eq(set(path, FSP_TYPE_FOLDER, 0), FSP_EV_ADDED);
}

static void file(const char *path, uint64_t size) {
  ck_assert_int_eq(set(path, FSP_TYPE_FILE, size), FSP_EV_ADDED);
}

static const struct fsd_node *get(const char *path) {
  return fsd_treereg_get(&reg, path, strlen(path));
}

/* The paths a walk of folder gives, joined by spaces in visiting order. */
static void walk(const char *folder_path, int recursive, char *out,
                 size_t cap) {
  struct fsd_tree_cursor c;
  const struct fsd_node *n;

  out[0] = '\0';
  ck_assert_int_eq(fsd_treereg_walk_open(&reg, &c, folder_path,
                                         strlen(folder_path), recursive),
                   0);
  while ((n = fsd_treereg_walk_next(&reg, &c)) != NULL) {
    size_t l = strlen(out);
    snprintf(out + l, cap - l, "%s%s", l > 0 ? " " : "", n->path);
  }
  fsd_treereg_walk_close(&reg, &c);
}

/* Number of space-separated words in s that equal w. */
static int count_word(const char *s, const char *w) {
  size_t l = strlen(w);
  int n = 0;

  for (const char *p = s; (p = strstr(p, w)) != NULL; p += l)
    if ((p == s || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\0'))
      n++;
  return n;
}

static const char *word_at(const char *s, const char *w) {
  size_t l = strlen(w);

  for (const char *p = s; (p = strstr(p, w)) != NULL; p += l)
    if ((p == s || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\0'))
      return p;
  return NULL;
}

START_TEST(test_treereg_set_needs_parent_folder) {
  ck_assert_int_eq(set("a/b", FSP_TYPE_FILE, 1), UV_ENOENT);
  folder("a");
  file("a/b", 1);
  ck_assert_int_eq(set("a/b/c", FSP_TYPE_FILE, 1), UV_ENOTDIR);
  ck_assert_int_eq(set("a/b", FSP_TYPE_FILE, 1), 0);
  ck_assert_int_eq(set("a/b", FSP_TYPE_FILE, 2), FSP_EV_REPLACED);
  ck_assert_int_eq(set("a/b", FSP_TYPE_FOLDER, 0), UV_EEXIST);
  ck_assert_int_eq(set("a", FSP_TYPE_FILE, 0), UV_EEXIST);
  ck_assert_int_eq(set("", FSP_TYPE_FOLDER, 0), UV_EINVAL);
  ck_assert_int_eq(set("x", 3, 0), UV_EINVAL);
  ck_assert_uint_eq(get("a/b")->size, 2);
  ck_assert_uint_eq(get("a")->nchildren, 1);
  ck_assert_ptr_eq(get("a/b")->parent, get("a"));
  ck_assert_ptr_eq(get(""), reg.root);
  ck_assert_uint_eq(reg.count, 2);
  ck_assert_uint_eq(reg.folders, 2);
}
END_TEST

/* LIST of one folder lists its own entries only; recursive lists the
 * subtree, every folder before what it holds. */
START_TEST(test_treereg_walk_folder_and_subtree) {
  char out[512];

  folder("p");
  folder("p/2024");
  file("p/2024/a.jpg", 5);
  folder("p/2024/deep");
  file("p/2024/deep/z", 1);
  file("p/top", 1);
  folder("q");
  file("q/other", 1);
  file("pp", 1);
  walk("p", 0, out, sizeof(out));
  ck_assert_int_eq(count_word(out, "p/2024"), 1);
  ck_assert_int_eq(count_word(out, "p/top"), 1);
  ck_assert_ptr_null(word_at(out, "p/2024/a.jpg"));
  walk("p", 1, out, sizeof(out));
  ck_assert_int_eq(count_word(out, "p/2024/deep/z"), 1);
  ck_assert_ptr_null(word_at(out, "q/other"));
  ck_assert_ptr_null(word_at(out, "pp"));
  ck_assert_ptr_null(word_at(out, "p"));
  ck_assert(word_at(out, "p/2024") < word_at(out, "p/2024/a.jpg"));
  ck_assert(word_at(out, "p/2024/deep") < word_at(out, "p/2024/deep/z"));
  walk("", 1, out, sizeof(out));
  ck_assert_int_eq(count_word(out, "q/other") + count_word(out, "pp") +
                       count_word(out, "p/top"),
                   3);
  {
    struct fsd_tree_cursor c;
    ck_assert_int_eq(fsd_treereg_walk_open(&reg, &c, "pp", 2, 0), UV_ENOTDIR);
    ck_assert_int_eq(fsd_treereg_walk_open(&reg, &c, "zz", 2, 0), UV_ENOENT);
  }
}
END_TEST

struct drops {
  char paths[16][32];
  int n;
};

static void on_drop(void *arg, const struct fsd_node *n) {
  struct drops *d = arg;
  ck_assert_int_lt(d->n, 16);
  snprintf(d->paths[d->n++], sizeof(d->paths[0]), "%s", n->path);
}

START_TEST(test_treereg_remove_subtree_contents_first) {
  struct drops d = {0};

  folder("a");
  folder("a/b");
  file("a/b/f", 1);
  file("a/g", 1);
  file("ab", 1);
  ck_assert_uint_eq(fsd_treereg_remove(&reg, "a", 1, on_drop, &d), 4);
  ck_assert_int_eq(d.n, 4);
  ck_assert_str_eq(d.paths[3], "a");
  for (int i = 0; i < d.n; i++)
    if (strcmp(d.paths[i], "a/b") == 0)
      ck_assert_str_eq(d.paths[i - 1], "a/b/f");
  ck_assert_ptr_null(get("a/b/f"));
  ck_assert_ptr_nonnull(get("ab"));
  ck_assert_uint_eq(reg.count, 1);
  ck_assert_uint_eq(reg.folders, 1);
  ck_assert_uint_eq(fsd_treereg_remove(&reg, "", 0, NULL, NULL), 0);
  ck_assert_uint_eq(fsd_treereg_remove(&reg, "a", 1, NULL, NULL), 0);
}
END_TEST

START_TEST(test_treereg_rename_rewrites_subtree) {
  struct drops d = {0};

  folder("a");
  folder("a/b");
  file("a/b/f", 3);
  folder("z");
  file("z/b", 9); /* replaced by the move */
  ck_assert_int_eq(fsd_treereg_rename(&reg, "a/b", 3, "z/b", 3, on_drop, &d),
                   0);
  ck_assert_int_eq(d.n, 1);
  ck_assert_str_eq(d.paths[0], "z/b");
  ck_assert_ptr_null(get("a/b"));
  ck_assert_ptr_null(get("a/b/f"));
  ck_assert_uint_eq(get("z/b")->type, FSP_TYPE_FOLDER);
  ck_assert_uint_eq(get("z/b/f")->size, 3);
  ck_assert_ptr_eq(get("z/b/f")->parent, get("z/b"));
  ck_assert_uint_eq(get("a")->nchildren, 0);
  ck_assert_uint_eq(get("z")->nchildren, 1);
  /* Into itself, onto its folder, from nowhere, to nowhere. */
  ck_assert_int_eq(fsd_treereg_rename(&reg, "z", 1, "z/b/z", 5, NULL, NULL),
                   UV_EINVAL);
  ck_assert_int_eq(fsd_treereg_rename(&reg, "z/b", 3, "z", 1, NULL, NULL),
                   UV_EINVAL);
  ck_assert_int_eq(fsd_treereg_rename(&reg, "q", 1, "r", 1, NULL, NULL),
                   UV_ENOENT);
  ck_assert_int_eq(fsd_treereg_rename(&reg, "z", 1, "q/z", 3, NULL, NULL),
                   UV_ENOENT);
  ck_assert_int_eq(fsd_treereg_rename(&reg, "z", 1, "z", 1, NULL, NULL), 0);
  ck_assert_int_eq(fsd_treereg_rename(&reg, "a", 1, "ab", 2, NULL, NULL), 0);
  ck_assert_ptr_nonnull(get("ab"));
}
END_TEST

/* A walk holds its place while the tree changes under it: removing the
 * subtree that holds its next node skips that subtree, nodes present
 * throughout are each seen once, and removing the listed folder ends it. */
START_TEST(test_treereg_walk_survives_changes) {
  struct fsd_tree_cursor c;
  const struct fsd_node *n;
  char seen[512] = "";
  int steps = 0;

  folder("t");
  for (int i = 0; i < 5; i++) {
    char p[16];
    snprintf(p, sizeof(p), "t/d%d", i);
    folder(p);
    snprintf(p, sizeof(p), "t/d%d/f", i);
    file(p, 1);
  }
  file("t/keep", 1);
  ck_assert_int_eq(fsd_treereg_walk_open(&reg, &c, "t", 1, 1), 0);
  while ((n = fsd_treereg_walk_next(&reg, &c)) != NULL) {
    size_t l = strlen(seen);
    snprintf(seen + l, sizeof(seen) - l, " %s", n->path);
    if (steps++ == 0) {
      /* Remove every other folder, whatever the walk's position, and one
       * whose next node is the cursor's. */
      for (int i = 0; i < 5; i++) {
        char p[16];
        snprintf(p, sizeof(p), "t/d%d", i);
        if (strncmp(n->path, p, strlen(p)) != 0)
          fsd_treereg_remove(&reg, p, strlen(p), NULL, NULL);
      }
    }
  }
  fsd_treereg_walk_close(&reg, &c);
  ck_assert_int_eq(count_word(seen + 1, "t/keep"), 1);
  ck_assert_ptr_null(reg.cursors);
  /* The walk of a folder that is removed ends at once. */
  folder("t/x");
  file("t/x/1", 1);
  file("t/x/2", 1);
  ck_assert_int_eq(fsd_treereg_walk_open(&reg, &c, "t/x", 3, 1), 0);
  ck_assert_ptr_nonnull(fsd_treereg_walk_next(&reg, &c));
  fsd_treereg_remove(&reg, "t", 1, NULL, NULL);
  ck_assert_ptr_null(fsd_treereg_walk_next(&reg, &c));
  fsd_treereg_walk_close(&reg, &c);
}
END_TEST

/* Moving the subtree that holds a walk's next node out of the listed
 * folder: the walk goes on after it, never into the new place. */
START_TEST(test_treereg_walk_survives_move_out) {
  struct fsd_tree_cursor c;
  const struct fsd_node *n;
  int seen_other = 0, count = 0;

  folder("t");
  folder("o");
  folder("t/m");
  file("t/m/1", 1);
  file("t/m/2", 1);
  ck_assert_int_eq(fsd_treereg_walk_open(&reg, &c, "t", 1, 1), 0);
  n = fsd_treereg_walk_next(&reg, &c);
  ck_assert_str_eq(n->path, "t/m");
  ck_assert_int_eq(fsd_treereg_rename(&reg, "t/m", 3, "o/m", 3, NULL, NULL), 0);
  while ((n = fsd_treereg_walk_next(&reg, &c)) != NULL) {
    seen_other += strncmp(n->path, "o/", 2) == 0;
    count++;
  }
  fsd_treereg_walk_close(&reg, &c);
  ck_assert_int_eq(seen_other, 0);
  ck_assert_int_eq(count, 0);
}
END_TEST

/* Many entries: the map grows and every path is still found, a large
 * folder lists whole. */
START_TEST(test_treereg_many_entries) {
  char p[32];
  struct fsd_tree_cursor c;
  int n = 0;

  folder("big");
  for (int i = 0; i < 5000; i++) {
    snprintf(p, sizeof(p), "big/f%d", i);
    file(p, (uint64_t)i);
  }
  for (int i = 0; i < 5000; i += 499) {
    snprintf(p, sizeof(p), "big/f%d", i);
    ck_assert_uint_eq(get(p)->size, (uint64_t)i);
  }
  ck_assert_int_eq(fsd_treereg_walk_open(&reg, &c, "big", 3, 0), 0);
  while (fsd_treereg_walk_next(&reg, &c) != NULL)
    n++;
  fsd_treereg_walk_close(&reg, &c);
  ck_assert_int_eq(n, 5000);
  ck_assert_uint_ge(reg.nbuckets, 5000);
}
END_TEST

/* Every allocation of a register's life fails in turn: each call reports
 * UV_ENOMEM or works, a failed set or rename changes nothing, and nothing
 * leaks. */
START_TEST(test_treereg_allocation_failures) {
  for (long n = 0;; n++) {
    struct fsd_treereg r;
    int rc, failed;

    tree_fail_at(n);
    rc = fsd_treereg_init(&r);
    if (rc != 0) {
      ck_assert_int_eq(rc, UV_ENOMEM);
      ck_assert_int_eq(tree_fail_end(), 0);
      continue;
    }
    rc = fsd_treereg_set(&r, "a", 1, FSP_TYPE_FOLDER, 0, 1);
    if (rc == FSP_EV_ADDED)
      rc = fsd_treereg_set(&r, "a/f", 3, FSP_TYPE_FILE, 5, 1);
    if (rc == FSP_EV_ADDED)
      rc = fsd_treereg_set(&r, "b", 1, FSP_TYPE_FOLDER, 0, 1);
    if (rc == FSP_EV_ADDED) {
      rc = fsd_treereg_rename(&r, "a", 1, "b/a", 3, NULL, NULL);
      if (rc == 0) {
        ck_assert_ptr_nonnull(fsd_treereg_get(&r, "b/a/f", 5));
      } else {
        ck_assert_int_eq(rc, UV_ENOMEM);
        ck_assert_ptr_nonnull(fsd_treereg_get(&r, "a/f", 3));
        ck_assert_ptr_null(fsd_treereg_get(&r, "b/a", 3));
      }
    } else {
      ck_assert_int_eq(rc, UV_ENOMEM);
    }
    fsd_treereg_free(&r);
    failed = tree_fail_failed();
    ck_assert_msg(tree_fail_end() == 0, "failing call %ld leaks", n);
    if (!failed)
      break;
  }
}
END_TEST

Suite *treereg_suite(void) {
  Suite *s = suite_create("treereg");
  TCase *tc = tcase_create("treereg");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_treereg_set_needs_parent_folder);
  tcase_add_test(tc, test_treereg_walk_folder_and_subtree);
  tcase_add_test(tc, test_treereg_remove_subtree_contents_first);
  tcase_add_test(tc, test_treereg_rename_rewrites_subtree);
  tcase_add_test(tc, test_treereg_walk_survives_changes);
  tcase_add_test(tc, test_treereg_walk_survives_move_out);
  tcase_add_test(tc, test_treereg_many_entries);
  tcase_add_test(tc, test_treereg_allocation_failures);
  suite_add_tcase(s, tc);
  return s;
}
