/* Server-wide state: the event ring and register updates. */
#include <fsproto/fsproto.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "suites.h"

START_TEST(test_ctx_update_emits_kinds_and_seq) {
  struct fsd_ctx ctx;
  const struct fsd_event *ev;

  ck_assert_int_eq(fsd_ctx_init(&ctx, 42), 0);
  ck_assert_uint_eq(ctx.epoch, 42);
  ck_assert_uint_eq(ctx.seq, 0);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 5, 100), FSP_EV_ADDED);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 5, 100), 0);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 6, 101), FSP_EV_REPLACED);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 0, 0, 200), FSP_EV_REMOVED);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 0, 0, 201), 0);
  ck_assert_uint_eq(ctx.seq, 3);
  ev = fsd_ctx_event(&ctx, 2);
  ck_assert_ptr_nonnull(ev);
  ck_assert_uint_eq(ev->kind, FSP_EV_REPLACED);
  ck_assert_uint_eq(ev->size, 6);
  ev = fsd_ctx_event(&ctx, 3);
  ck_assert_uint_eq(ev->kind, FSP_EV_REMOVED);
  ck_assert_uint_eq(ev->size, 0);
  ck_assert_int_eq(ev->mtime_ns, 200);
  ck_assert_mem_eq(ev->path, "a", 1);
  ck_assert_ptr_null(fsd_ctx_event(&ctx, 0));
  ck_assert_ptr_null(fsd_ctx_event(&ctx, 4));
  fsd_ctx_free(&ctx);
}
END_TEST

START_TEST(test_ctx_ring_keeps_last_4096) {
  struct fsd_ctx ctx;
  char name[16];

  ck_assert_int_eq(fsd_ctx_init(&ctx, 1), 0);
  for (int i = 0; i < 5000; i++) {
    int n = snprintf(name, sizeof(name), "f%d", i);
    ck_assert_int_eq(fsd_ctx_update(&ctx, name, (size_t)n, 1, 1, 1),
                     FSP_EV_ADDED);
  }
  ck_assert_uint_eq(ctx.seq, 5000);
  ck_assert_ptr_null(fsd_ctx_event(&ctx, 5000 - FSD_RING_SIZE));
  ck_assert_ptr_nonnull(fsd_ctx_event(&ctx, 5000 - FSD_RING_SIZE + 1));
  ck_assert_mem_eq(fsd_ctx_event(&ctx, 4999)->path, "f4998", 5);
  fsd_ctx_free(&ctx);
}
END_TEST

/* Regression: replaces with the same size and mtime (one tick of the file
 * system's clock) made no event. The inode and ctime tell them apart; only
 * the very same version twice (our commit, then the watcher's stat of it)
 * is not a change. */
START_TEST(test_ctx_same_size_and_mtime_still_one_event_each) {
  struct fsd_ctx ctx;

  ck_assert_int_eq(fsd_ctx_init(&ctx, 42), 0);
  for (uint64_t i = 0; i < 1000; i++) {
    struct fsd_stamp st = {8, 1700000000000000000, 1000 + i,
                           1700000000000000000};
    ck_assert_int_eq(fsd_ctx_put(&ctx, "f", 1, &st),
                     i == 0 ? FSP_EV_ADDED : FSP_EV_REPLACED);
    ck_assert_int_eq(fsd_ctx_put(&ctx, "f", 1, &st), 0);
    ck_assert_uint_eq(ctx.seq, i + 1);
  }
  /* A write in place: same inode, same size and mtime, a new ctime. */
  ck_assert_int_eq(fsd_ctx_put(&ctx, "f", 1,
                               &(struct fsd_stamp){8, 1700000000000000000, 1999,
                                                   1700000000000000001}),
                   FSP_EV_REPLACED);
  ck_assert_uint_eq(ctx.seq, 1001);
  ck_assert_uint_eq(fsd_ctx_event(&ctx, 1001)->kind, FSP_EV_REPLACED);
  fsd_ctx_free(&ctx);
}
END_TEST

/* A log that keeps what it is given, as the cluster's publisher would. */
struct kept_log {
  struct fsd_ctx_log log;
  struct fsd_event last;
  struct fsd_stamp now, prev;
  int now_null;
  int appended, notices;
};

static void kept_append(struct fsd_ctx_log *log, const struct fsd_event *ev,
                        const struct fsd_stamp *now,
                        const struct fsd_stamp *prev) {
  struct kept_log *k = (struct kept_log *)log;

  k->last = *ev;
  k->now_null = now == NULL;
  if (now != NULL)
    k->now = *now;
  k->prev = *prev;
  k->appended++;
}

static void kept_notify(struct fsd_ctx_log *log, const char *t, size_t n) {
  (void)t;
  (void)n;
  ((struct kept_log *)log)->notices++;
}

struct pushed {
  struct fsd_subscriber sub;
  int frames;
};

static void count_push(struct fsd_subscriber *sub, const void *f, size_t n) {
  (void)f;
  (void)n;
  ((struct pushed *)sub)->frames++;
}

static struct fsd_event event(uint64_t seq, uint8_t kind, const char *name,
                              uint64_t size, int64_t mtime) {
  struct fsd_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.seq = seq;
  ev.kind = kind;
  ev.type = FSP_TYPE_FILE;
  ev.path_len = (uint16_t)strlen(name);
  ev.path = name;
  ev.from = "";
  ev.size = size;
  ev.mtime_ns = mtime;
  return ev;
}

/* With a shared log, a change updates the register at once (reads on this
 * server see it) but is numbered by the log alone: no seq, no EVENT yet. */
START_TEST(test_ctx_log_publishes_instead_of_numbering) {
  struct fsd_ctx ctx;
  struct kept_log k;
  struct pushed p = {.sub.push = count_push};

  memset(&k, 0, sizeof(k));
  k.log.append = kept_append;
  k.log.notify = kept_notify;
  atomic_store(&k.log.writable, 1);
  ck_assert_int_eq(fsd_ctx_init(&ctx, 7), 0);
  ctx.log = &k.log;
  fsd_ctx_subscribe(&ctx, &p.sub);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 5, 100), FSP_EV_ADDED);
  ck_assert_int_eq(k.appended, 1);
  ck_assert_uint_eq(k.last.seq, 0);
  ck_assert_uint_eq(k.last.kind, FSP_EV_ADDED);
  ck_assert_uint_eq(k.prev.size, 0);
  ck_assert_uint_eq(k.now.size, 5);
  ck_assert_ptr_nonnull(fsd_register_get(&ctx.reg, "a", 1));
  ck_assert_uint_eq(ctx.seq, 0);
  ck_assert_int_eq(p.frames, 0);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 5, 100), 0);
  ck_assert_int_eq(k.appended, 1);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 0, 0, 300), FSP_EV_REMOVED);
  ck_assert_int_eq(k.now_null, 1);
  ck_assert_uint_eq(k.prev.size, 5);
  ck_assert_int_eq(k.prev.mtime_ns, 100);
  fsd_ctx_notify(&ctx, "hi", 2);
  ck_assert_int_eq(k.notices, 1);
  ck_assert_int_eq(p.frames, 0);
  fsd_ctx_relay(&ctx, "hi", 2);
  ck_assert_int_eq(p.frames, 1);
  fsd_ctx_unsubscribe(&ctx, &p.sub);
  fsd_ctx_free(&ctx);
}
END_TEST

/* While the log is unreachable the register does not move, so that the
 * rescan finds the change again when it is back; writes are refused. */
START_TEST(test_ctx_log_down_keeps_register) {
  struct fsd_ctx ctx;
  struct kept_log k;

  memset(&k, 0, sizeof(k));
  k.log.append = kept_append;
  k.log.notify = kept_notify;
  ck_assert_int_eq(fsd_ctx_init(&ctx, 7), 0);
  ck_assert_int_eq(fsd_ctx_log_down(&ctx), 0);
  ctx.log = &k.log;
  ck_assert_int_eq(fsd_ctx_log_down(&ctx), 1);
  ck_assert_int_eq(fsd_ctx_update(&ctx, "a", 1, 1, 5, 100), 0);
  ck_assert_ptr_null(fsd_register_get(&ctx.reg, "a", 1));
  ck_assert_int_eq(k.appended, 0);
  atomic_store(&k.log.writable, 1);
  ck_assert_int_eq(fsd_ctx_log_down(&ctx), 0);
  fsd_ctx_free(&ctx);
}
END_TEST

/* Events of the log set the register whatever it held, keep the log's seq,
 * and reach subscribers once; a replayed event is ignored. */
START_TEST(test_ctx_apply_takes_the_log_order) {
  struct fsd_ctx ctx;
  struct pushed p = {.sub.push = count_push};
  struct fsd_event ev;
  const struct fsd_file *f;

  ck_assert_int_eq(fsd_ctx_init(&ctx, 7), 0);
  fsd_ctx_subscribe(&ctx, &p.sub);
  /* The log's first event held is 10: older ones are past its retention. */
  ev = event(10, FSP_EV_ADDED, "x", 3, 30);
  ck_assert_int_eq(fsd_ctx_apply(&ctx, &ev, NULL), 1);
  ck_assert_uint_eq(ctx.seq, 10);
  ck_assert_ptr_null(fsd_ctx_event(&ctx, 9));
  ck_assert_ptr_nonnull(fsd_ctx_event(&ctx, 10));
  ck_assert_int_eq(fsd_ctx_apply(&ctx, &ev, NULL), 0);
  ck_assert_int_eq(p.frames, 1);
  /* Another server's later version wins over what this one held. */
  ck_assert_int_eq(fsd_register_set(&ctx.reg, "x", 1, 99, 99), 2);
  ev = event(11, FSP_EV_REPLACED, "x", 4, 40);
  ck_assert_int_eq(fsd_ctx_apply(&ctx, &ev, NULL), 1);
  f = fsd_register_get(&ctx.reg, "x", 1);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(f->size, 4);
  ck_assert_int_eq(f->mtime_ns, 40);
  /* With the version's inode and ctime, the watcher's stat of the same
   * file is no change: one event per commit, on every server. */
  ev = event(12, FSP_EV_REPLACED, "x", 5, 50);
  ck_assert_int_eq(fsd_ctx_apply(&ctx, &ev, &(struct fsd_stamp){5, 50, 77, 51}),
                   1);
  ck_assert_int_eq(
      fsd_ctx_put(&ctx, "x", 1, &(struct fsd_stamp){5, 50, 77, 51}), 0);
  ck_assert_uint_eq(ctx.seq, 12);
  ev = event(13, FSP_EV_REMOVED, "x", 0, 50);
  ck_assert_int_eq(fsd_ctx_apply(&ctx, &ev, NULL), 1);
  ck_assert_ptr_null(fsd_register_get(&ctx.reg, "x", 1));
  ck_assert_uint_eq(fsd_ctx_event(&ctx, 13)->kind, FSP_EV_REMOVED);
  ck_assert_int_eq(p.frames, 4);
  fsd_ctx_unsubscribe(&ctx, &p.sub);
  fsd_ctx_free(&ctx);
}
END_TEST

/* A file deep in the tree brings its folders into the tree register, each
 * with its event, parents first; a folder's removal removes what it holds
 * from both registers, contents first. */
START_TEST(test_ctx_tree_parents_and_removal_order) {
  struct fsd_ctx ctx;
  struct fsd_stamp st = {3, 10, 1, 1};
  const struct fsd_event *ev;
  static const char *const added[] = {"a", "a/b", "a/b/f.txt"};
  static const char *const removed[] = {"a/b/f.txt", "a/b", "a"};

  ck_assert_int_eq(fsd_ctx_init(&ctx, 1), 0);
  ck_assert_int_eq(fsd_ctx_put(&ctx, "a/b/f.txt", 9, &st), FSP_EV_ADDED);
  ck_assert_uint_eq(ctx.seq, 3);
  for (int i = 0; i < 3; i++) {
    ev = fsd_ctx_event(&ctx, (uint64_t)i + 1);
    ck_assert_uint_eq(ev->kind, FSP_EV_ADDED);
    ck_assert_uint_eq(ev->path_len, strlen(added[i]));
    ck_assert_mem_eq(ev->path, added[i], ev->path_len);
    ck_assert_uint_eq(ev->type, i < 2 ? FSP_TYPE_FOLDER : FSP_TYPE_FILE);
  }
  ck_assert_uint_eq(fsd_treereg_get(&ctx.tree, "a/b", 3)->type,
                    FSP_TYPE_FOLDER);
  ck_assert_int_eq(fsd_ctx_remove(&ctx, "a", 1, 50), FSP_EV_REMOVED);
  ck_assert_uint_eq(ctx.seq, 6);
  for (int i = 0; i < 3; i++) {
    ev = fsd_ctx_event(&ctx, (uint64_t)i + 4);
    ck_assert_uint_eq(ev->kind, FSP_EV_REMOVED);
    ck_assert_mem_eq(ev->path, removed[i], strlen(removed[i]));
  }
  ck_assert_ptr_null(fsd_register_get(&ctx.reg, "a/b/f.txt", 9));
  ck_assert_ptr_null(fsd_treereg_get(&ctx.tree, "a", 1));
  ck_assert_int_eq(fsd_ctx_remove(&ctx, "a", 1, 60), 0);
  fsd_ctx_free(&ctx);
}
END_TEST

/* A folder's rename moves the versions of the files below it, and is one
 * event carrying both paths; applied from a shared log, it does the same
 * without an event of its own making. */
START_TEST(test_ctx_rename_moves_versions) {
  struct fsd_ctx ctx, other;
  struct fsd_stamp st = {3, 10, 77, 11}, dir = {0, 20, 5, 0};
  const struct fsd_file *f;
  const struct fsd_event *ev;

  ck_assert_int_eq(fsd_ctx_init(&ctx, 1), 0);
  ck_assert_int_eq(fsd_ctx_init(&other, 1), 0);
  fsd_ctx_put(&ctx, "p/q/f.txt", 9, &st);
  ck_assert_int_eq(fsd_ctx_rename(&ctx, "p", 1, "z", 1, FSP_TYPE_FOLDER, &dir),
                   FSP_EV_RENAMED);
  ev = fsd_ctx_event(&ctx, ctx.seq);
  ck_assert_uint_eq(ev->kind, FSP_EV_RENAMED);
  ck_assert_mem_eq(ev->path, "z", 1);
  ck_assert_mem_eq(ev->from, "p", 1);
  f = fsd_register_get(&ctx.reg, "z/q/f.txt", 9);
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(f->ino, 77);
  ck_assert_ptr_null(fsd_register_get(&ctx.reg, "p/q/f.txt", 9));
  ck_assert_ptr_nonnull(fsd_treereg_get(&ctx.tree, "z/q", 3));
  /* The same events applied on another server give the same registers. */
  for (uint64_t q = 1; q <= ctx.seq; q++)
    ck_assert_int_eq(fsd_ctx_apply(&other, fsd_ctx_event(&ctx, q), NULL), 1);
  ck_assert_ptr_nonnull(fsd_register_get(&other.reg, "z/q/f.txt", 9));
  ck_assert_ptr_null(fsd_treereg_get(&other.tree, "p", 1));
  ck_assert_uint_eq(other.seq, ctx.seq);
  fsd_ctx_free(&other);
  fsd_ctx_free(&ctx);
}
END_TEST

Suite *ctx_suite(void) {
  Suite *s = suite_create("ctx");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_ctx_update_emits_kinds_and_seq);
  tcase_add_test(tc, test_ctx_ring_keeps_last_4096);
  tcase_add_test(tc, test_ctx_same_size_and_mtime_still_one_event_each);
  tcase_add_test(tc, test_ctx_log_publishes_instead_of_numbering);
  tcase_add_test(tc, test_ctx_log_down_keeps_register);
  tcase_add_test(tc, test_ctx_apply_takes_the_log_order);
  tcase_add_test(tc, test_ctx_tree_parents_and_removal_order);
  tcase_add_test(tc, test_ctx_rename_moves_versions);
  suite_add_tcase(s, tc);
  return s;
}
