/* Tests of fsc watch's picture of the server's files (client/snap.c): the
 * table, EVENTs and ENTRIES applied to it, the event log of a listing, and
 * the difference printed after a RESYNC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap.h"
#include "suites.h"
#include "xfer.h"

static struct fsp_msg event(uint8_t kind, const char *name, uint64_t size,
                            int64_t mtime) {
  struct fsp_msg m;
  memset(&m, 0, sizeof m);
  m.op = FSP_OP_EVENT;
  m.u.event.seq = 1;
  m.u.event.kind = kind;
  m.u.event.file.name.ptr = name;
  m.u.event.file.name.len = strlen(name);
  m.u.event.file.size = size;
  m.u.event.file.mtime_ns = mtime;
  return m;
}

/* What a diff emitted, one "KIND NAME SIZE MTIME SEQ" line per event. */
struct record {
  char lines[64][128];
  int n;
};

static void record_emit(void *arg, const struct fsp_msg *m) {
  struct record *r = arg;
  ck_assert_int_eq(m->op, FSP_OP_EVENT);
  ck_assert_int_lt(r->n, 64);
  snprintf(r->lines[r->n++], sizeof r->lines[0], "%d %.*s %llu %lld %llu",
           m->u.event.kind, (int)m->u.event.file.name.len,
           m->u.event.file.name.ptr, (unsigned long long)m->u.event.file.size,
           (long long)m->u.event.file.mtime_ns,
           (unsigned long long)m->u.event.seq);
}

static void apply_emit(void *arg, const struct fsp_msg *m) {
  ck_assert_int_eq(fsc_snap_apply(arg, m), 0);
}

/* a and b hold the same files with the same size and time. */
static int snap_equal(const struct fsc_snap *a, const struct fsc_snap *b) {
  if (a->n != b->n)
    return 0;
  for (size_t i = 0; i < a->cap; i++) {
    const struct fsc_snap_file *f = &a->slots[i];
    if (f->name == NULL)
      continue;
    const struct fsc_snap_file *g = fsc_snap_get(b, f->name, f->len);
    if (g == NULL || g->size != f->size || g->mtime_ns != f->mtime_ns)
      return 0;
  }
  return 1;
}

START_TEST(test_snap_set_get_remove) {
  struct fsc_snap s = {0};
  ck_assert_ptr_null(fsc_snap_get(&s, "a", 1));
  ck_assert_int_eq(fsc_snap_remove(&s, "a", 1), 0);
  ck_assert_int_eq(fsc_snap_set(&s, "a", 1, 5, 100), 1);
  ck_assert_int_eq(fsc_snap_set(&s, "ab", 2, 6, 200), 1);
  ck_assert_int_eq(fsc_snap_set(&s, "a", 1, 7, 300), 0); /* an update */
  ck_assert_uint_eq(s.n, 2);
  const struct fsc_snap_file *f = fsc_snap_get(&s, "a", 1);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(f->size, 7);
  ck_assert_int_eq(f->mtime_ns, 300);
  ck_assert_str_eq(f->name, "a");
  /* A prefix is another name. */
  ck_assert_ptr_null(fsc_snap_get(&s, "abc", 3));
  ck_assert_int_eq(fsc_snap_remove(&s, "a", 1), 1);
  ck_assert_int_eq(fsc_snap_remove(&s, "a", 1), 0);
  ck_assert_ptr_null(fsc_snap_get(&s, "a", 1));
  ck_assert_ptr_nonnull(fsc_snap_get(&s, "ab", 2));
  ck_assert_uint_eq(s.n, 1);
  fsc_snap_free(&s);
  ck_assert_uint_eq(s.n, 0);
  /* Reusable after free. */
  ck_assert_int_eq(fsc_snap_set(&s, "x", 1, 0, 0), 1);
  fsc_snap_free(&s);
}
END_TEST

/* Many names, removed in an order that punches holes into probe runs: every
 * name left must still be found (the deletion moves the run up). */
START_TEST(test_snap_many_names_survive_removals) {
  struct fsc_snap s = {0};
  char name[32];
  enum { N = 20000 };
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "file-%d", i);
    ck_assert_int_eq(fsc_snap_set(&s, name, strlen(name), (uint64_t)i, i), 1);
  }
  ck_assert_uint_eq(s.n, N);
  for (int i = 0; i < N; i += 3) {
    snprintf(name, sizeof name, "file-%d", i);
    ck_assert_int_eq(fsc_snap_remove(&s, name, strlen(name)), 1);
  }
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "file-%d", i);
    const struct fsc_snap_file *f = fsc_snap_get(&s, name, strlen(name));
    if (i % 3 == 0)
      ck_assert_ptr_null(f);
    else {
      ck_assert_ptr_nonnull(f);
      ck_assert_uint_eq(f->size, (uint64_t)i);
    }
  }
  ck_assert_uint_eq(s.n, N - (N + 2) / 3);
  fsc_snap_free(&s);
}
END_TEST

START_TEST(test_snap_apply_events) {
  struct fsc_snap s = {0};
  struct fsp_msg m = event(FSP_EV_ADDED, "a.txt", 5, 10);
  ck_assert_int_eq(fsc_snap_apply(&s, &m), 0);
  m = event(FSP_EV_REPLACED, "a.txt", 9, 20);
  ck_assert_int_eq(fsc_snap_apply(&s, &m), 0);
  ck_assert_uint_eq(fsc_snap_get(&s, "a.txt", 5)->size, 9);
  /* A "replaced" for a file never seen adds it: the state is what counts. */
  m = event(FSP_EV_REPLACED, "b.txt", 1, 1);
  ck_assert_int_eq(fsc_snap_apply(&s, &m), 0);
  ck_assert_uint_eq(s.n, 2);
  m = event(FSP_EV_REMOVED, "a.txt", 0, 30);
  ck_assert_int_eq(fsc_snap_apply(&s, &m), 0);
  ck_assert_ptr_null(fsc_snap_get(&s, "a.txt", 5));
  /* Removing what is not there, and frames other than EVENT, change nothing. */
  ck_assert_int_eq(fsc_snap_apply(&s, &m), 0);
  m.op = FSP_OP_NOTIFY;
  ck_assert_int_eq(fsc_snap_apply(&s, &m), 0);
  ck_assert_uint_eq(s.n, 1);
  fsc_snap_free(&s);
}
END_TEST

/* An ENTRIES batch as fsd sends it, decoded as fsc receives it. */
START_TEST(test_snap_add_entries) {
  uint8_t buf[512];
  struct fsp_entries_builder b;
  struct fsp_entry e[2] = {{5, 100, {"a.txt", 5}, 0}, {7, 200, {"b", 1}, 0}};
  fsp_entries_begin(&b, buf, sizeof buf, 3);
  ck_assert_int_eq(fsp_entries_add(&b, &e[0]), 0);
  ck_assert_int_eq(fsp_entries_add(&b, &e[1]), 0);
  size_t len = fsp_entries_finish(&b);
  struct fsp_frame f;
  ck_assert_int_eq(fsp_frame_decode(buf, len, FSP_DEFAULT_PAYLOAD, &f),
                   (ssize_t)len);
  struct fsp_msg m;
  ck_assert_int_eq(fsp_msg_decode(&f, &m), 0);
  struct fsc_snap s = {0};
  ck_assert_int_eq(fsc_snap_add_entries(&s, &m), 0);
  ck_assert_uint_eq(s.n, 2);
  ck_assert_uint_eq(fsc_snap_get(&s, "a.txt", 5)->size, 5);
  ck_assert_int_eq(fsc_snap_get(&s, "b", 1)->mtime_ns, 200);
  fsc_snap_free(&s);
}
END_TEST

/* Version 3: a subtree's listing gives full paths and leaves folders out;
 * renames move a file, or every file below a folder; the event log
 * replays them the same way. */
START_TEST(test_snap_tree_paths_and_renames) {
  uint8_t buf[512];
  struct fsp_entries_builder b;
  struct fsp_entry e[3] = {{0, 1, {"sub", 3}, FSP_TYPE_FOLDER},
                           {5, 100, {"sub/a.txt", 9}, FSP_TYPE_FILE},
                           {7, 200, {"b", 1}, FSP_TYPE_FILE}};
  fsp_entries_begin_v(&b, buf, sizeof buf, 3, 3);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(fsp_entries_add(&b, &e[i]), 0);
  size_t len = fsp_entries_finish(&b);
  struct fsp_frame f;
  ck_assert_int_eq(fsp_frame_decode(buf, len, FSP_DEFAULT_PAYLOAD, &f),
                   (ssize_t)len);
  struct fsp_msg m;
  ck_assert_int_eq(fsp_msg_decode_v(&f, 3, &m), 0);
  struct fsc_snap s = {0};
  ck_assert_int_eq(fsc_snap_add_entries_in(&s, &m, "w"), 0);
  ck_assert_uint_eq(s.n, 2);
  ck_assert_ptr_nonnull(fsc_snap_get(&s, "w/sub/a.txt", 11));
  ck_assert_ptr_nonnull(fsc_snap_get(&s, "w/b", 3));

  struct fsp_msg ev = event(FSP_EV_RENAMED, "w/c", 7, 200);
  ev.u.event.file.type = FSP_TYPE_FILE;
  ev.u.event.from.ptr = "w/b";
  ev.u.event.from.len = 3;
  struct fsc_evlog log = {0};
  ck_assert_int_eq(fsc_evlog_add(&log, &ev), 0);
  ck_assert_int_eq(fsc_snap_apply(&s, &ev), 0);
  ck_assert_ptr_null(fsc_snap_get(&s, "w/b", 3));
  ck_assert_ptr_nonnull(fsc_snap_get(&s, "w/c", 3));

  struct fsp_msg fe = event(FSP_EV_RENAMED, "w/moved", 0, 300);
  fe.u.event.file.type = FSP_TYPE_FOLDER;
  fe.u.event.from.ptr = "w/sub";
  fe.u.event.from.len = 5;
  ck_assert_int_eq(fsc_evlog_add(&log, &fe), 0);
  ck_assert_int_eq(fsc_snap_apply(&s, &fe), 0);
  ck_assert_ptr_null(fsc_snap_get(&s, "w/sub/a.txt", 11));
  ck_assert_uint_eq(fsc_snap_get(&s, "w/moved/a.txt", 13)->size, 5);
  ck_assert_uint_eq(s.n, 2);
  /* A folder's own added event adds no file. */
  struct fsp_msg fa = event(FSP_EV_ADDED, "w/new", 0, 1);
  fa.u.event.file.type = FSP_TYPE_FOLDER;
  ck_assert_int_eq(fsc_snap_apply(&s, &fa), 0);
  ck_assert_uint_eq(s.n, 2);

  /* The same two renames, replayed from the log on a fresh listing. */
  struct fsc_snap t = {0};
  ck_assert_int_eq(fsc_snap_add_entries_in(&t, &m, "w"), 0);
  ck_assert_int_eq(fsc_evlog_replay(&log, &t), 0);
  ck_assert_ptr_nonnull(fsc_snap_get(&t, "w/moved/a.txt", 13));
  ck_assert_ptr_nonnull(fsc_snap_get(&t, "w/c", 3));
  ck_assert_uint_eq(t.n, 2);
  fsc_evlog_free(&log);
  fsc_snap_free(&s);
  fsc_snap_free(&t);
}
END_TEST

START_TEST(test_snap_diff_kinds_sorted) {
  struct fsc_snap old = {0}, cur = {0};
  fsc_snap_set(&old, "same", 4, 1, 1);
  fsc_snap_set(&old, "gone", 4, 2, 2);
  fsc_snap_set(&old, "bigger", 6, 3, 3);
  fsc_snap_set(&old, "touched", 7, 4, 4);
  fsc_snap_set(&cur, "same", 4, 1, 1);
  fsc_snap_set(&cur, "bigger", 6, 30, 3);
  fsc_snap_set(&cur, "touched", 7, 4, 40);
  fsc_snap_set(&cur, "new", 3, 5, 5);
  fsc_snap_set(&cur, "a-new", 5, 6, 6);
  struct record r = {.n = 0};
  ck_assert_int_eq(fsc_snap_diff(&old, &cur, 77, record_emit, &r), 5);
  ck_assert_int_eq(r.n, 5);
  /* By name, whatever the kind; a removal has no size or time. */
  ck_assert_str_eq(r.lines[0], "1 a-new 6 6 77");
  ck_assert_str_eq(r.lines[1], "2 bigger 30 3 77");
  ck_assert_str_eq(r.lines[2], "3 gone 0 0 77");
  ck_assert_str_eq(r.lines[3], "1 new 5 5 77");
  ck_assert_str_eq(r.lines[4], "2 touched 4 40 77");
  /* Applying the difference to the old picture gives the new one. */
  ck_assert(!snap_equal(&old, &cur));
  ck_assert_int_eq(fsc_snap_diff(&old, &cur, 77, apply_emit, &old), 5);
  ck_assert(snap_equal(&old, &cur));
  /* Nothing changed: nothing emitted. */
  r.n = 0;
  ck_assert_int_eq(fsc_snap_diff(&old, &cur, 78, record_emit, &r), 0);
  ck_assert_int_eq(r.n, 0);
  fsc_snap_free(&old);
  fsc_snap_free(&cur);
}
END_TEST

START_TEST(test_snap_diff_empty_sides) {
  struct fsc_snap none = {0}, some = {0};
  struct record r = {.n = 0};
  ck_assert_int_eq(fsc_snap_diff(&none, &none, 1, record_emit, &r), 0);
  fsc_snap_set(&some, "b", 1, 2, 3);
  fsc_snap_set(&some, "a", 1, 1, 1);
  ck_assert_int_eq(fsc_snap_diff(&none, &some, 1, record_emit, &r), 2);
  ck_assert_str_eq(r.lines[0], "1 a 1 1 1");
  ck_assert_str_eq(r.lines[1], "1 b 2 3 1");
  r.n = 0;
  ck_assert_int_eq(fsc_snap_diff(&some, &none, 2, record_emit, &r), 2);
  ck_assert_str_eq(r.lines[0], "3 a 0 0 2");
  ck_assert_str_eq(r.lines[1], "3 b 0 0 2");
  fsc_snap_free(&some);
}
END_TEST

/* Names compare bytewise, a shorter prefix first, as ls sorts them. */
START_TEST(test_snap_diff_order_bytewise) {
  struct fsc_snap old = {0}, cur = {0};
  fsc_snap_set(&cur, "ab", 2, 0, 0);
  fsc_snap_set(&cur, "a", 1, 0, 0);
  fsc_snap_set(&cur, "B", 1, 0, 0);
  fsc_snap_set(&cur, "\xc3\xa9", 2, 0, 0);
  struct record r = {.n = 0};
  ck_assert_int_eq(fsc_snap_diff(&old, &cur, 0, record_emit, &r), 4);
  ck_assert_str_eq(r.lines[0], "1 B 0 0 0");
  ck_assert_str_eq(r.lines[1], "1 a 0 0 0");
  ck_assert_str_eq(r.lines[2], "1 ab 0 0 0");
  ck_assert_str_eq(r.lines[3], "1 \xc3\xa9 0 0 0");
  fsc_snap_free(&cur);
}
END_TEST

/* Events that arrive while a LIST streams may or may not be in it; replayed
 * on top of the listing, they give the same state either way. */
START_TEST(test_snap_evlog_replay_either_way) {
  struct fsc_evlog log = {0};
  struct fsp_msg m = event(FSP_EV_ADDED, "new", 3, 30);
  ck_assert_int_eq(fsc_evlog_add(&log, &m), 0);
  m = event(FSP_EV_REMOVED, "old", 0, 31);
  ck_assert_int_eq(fsc_evlog_add(&log, &m), 0);
  m = event(FSP_EV_REPLACED, "kept", 9, 32);
  ck_assert_int_eq(fsc_evlog_add(&log, &m), 0);
  m = event(FSP_EV_REPLACED, "kept", 10, 33); /* the last one wins */
  ck_assert_int_eq(fsc_evlog_add(&log, &m), 0);
  m.op = FSP_OP_NOTIFY; /* not an event: not logged */
  ck_assert_int_eq(fsc_evlog_add(&log, &m), 0);
  ck_assert_uint_eq(log.n, 4);

  /* The listing was taken before the events... */
  struct fsc_snap before = {0}, after = {0};
  fsc_snap_set(&before, "old", 3, 1, 1);
  fsc_snap_set(&before, "kept", 4, 1, 1);
  /* ... or after them. */
  fsc_snap_set(&after, "new", 3, 3, 30);
  fsc_snap_set(&after, "kept", 4, 10, 33);
  ck_assert_int_eq(fsc_evlog_replay(&log, &before), 0);
  ck_assert_int_eq(fsc_evlog_replay(&log, &after), 0);
  ck_assert(snap_equal(&before, &after));
  ck_assert_uint_eq(before.n, 2);
  ck_assert_uint_eq(fsc_snap_get(&before, "kept", 4)->size, 10);
  fsc_evlog_free(&log);
  ck_assert_uint_eq(log.n, 0);
  fsc_snap_free(&before);
  fsc_snap_free(&after);
}
END_TEST

Suite *snap_suite(void) {
  Suite *s = suite_create("snap");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_snap_set_get_remove);
  tcase_add_test(tc, test_snap_many_names_survive_removals);
  tcase_add_test(tc, test_snap_apply_events);
  tcase_add_test(tc, test_snap_add_entries);
  tcase_add_test(tc, test_snap_tree_paths_and_renames);
  tcase_add_test(tc, test_snap_diff_kinds_sorted);
  tcase_add_test(tc, test_snap_diff_empty_sides);
  tcase_add_test(tc, test_snap_diff_order_bytewise);
  tcase_add_test(tc, test_snap_evlog_replay_either_way);
  suite_add_tcase(s, tc);
  return s;
}
