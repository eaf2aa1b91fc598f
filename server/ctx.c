/* Server-wide state and event fan-out. See ctx.h. */
#include "ctx.h"

#include "users.h"

#include <fsproto/fsproto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "mem.h"

/* Initialises the context; see ctx.h. */
int fsd_ctx_init(struct fsd_ctx *ctx, uint64_t epoch) {
  int r;

  memset(ctx, 0, sizeof(*ctx));
  fsd_list_init(&ctx->subs);
  r = fsd_register_init(&ctx->reg);
  if (r != 0)
    return r;
  r = fsd_treereg_init(&ctx->tree);
  if (r != 0) {
    fsd_register_free(&ctx->reg);
    return r;
  }
  /* calloc'd pages stay untouched (and out of RSS) until events fill them. */
  ctx->ring = fsd_calloc(FSD_RING_SIZE, sizeof(*ctx->ring));
  if (ctx->ring == NULL) {
    fsd_treereg_free(&ctx->tree);
    fsd_register_free(&ctx->reg);
    return UV_ENOMEM;
  }
  ctx->epoch = epoch != 0 ? epoch : 1;
  snprintf(ctx->agent, sizeof(ctx->agent), "fsd/%s", fsp_version_string());
  ctx->anon_rights = FSD_RIGHTS_ALL;
  return 0;
}

/* Frees the context; see ctx.h. */
void fsd_ctx_free(struct fsd_ctx *ctx) {
  fsd_register_free(&ctx->reg);
  fsd_treereg_free(&ctx->tree);
  if (ctx->ring != NULL)
    for (size_t i = 0; i < FSD_RING_SIZE; i++)
      fsd_free(ctx->ring[i].own);
  fsd_free(ctx->ring);
  ctx->ring = NULL;
}

/* Returns a held event; see ctx.h. */
const struct fsd_event *fsd_ctx_event(const struct fsd_ctx *ctx, uint64_t seq) {
  const struct fsd_event *ev;

  if (seq == 0 || seq > ctx->seq)
    return NULL;
  ev = &ctx->ring[seq % FSD_RING_SIZE];
  return ev->seq == seq ? ev : NULL;
}

/* The EVENT frame of ev; see ctx.h. */
void fsd_event_msg(const struct fsd_event *ev, struct fsp_msg *m) {
  memset(m, 0, sizeof(*m));
  m->op = FSP_OP_EVENT;
  m->id = FSP_EVENT_ID;
  m->u.event.seq = ev->seq;
  m->u.event.kind = ev->kind;
  m->u.event.file.type = ev->type;
  m->u.event.file.size = ev->size;
  m->u.event.file.mtime_ns = ev->mtime_ns;
  m->u.event.file.name.ptr = ev->path;
  m->u.event.file.name.len = ev->path_len;
  if (ev->kind == FSP_EV_RENAMED) {
    m->u.event.from.ptr = ev->from;
    m->u.event.from.len = ev->from_len;
  }
}

/* A path of one component: a file directly in the root. */
static int in_root(const char *path, size_t len) {
  return len > 0 && memchr(path, '/', len) == NULL;
}

/* Room for the frames a version 1 or 2 subscriber gets for one event. */
#define FLAT_FRAME (FSP_HDR_LEN + 8u + 1u + 8u + 8u + 2u + FSP_NAME_MAX)

/* The frames of ev in the flat view of versions 1 and 2 (protocol.md
 * section 12): files directly in the root only, a rename as a removal
 * and an addition. Returns how many were written to out. */
static int flat_frames(const struct fsd_event *ev, uint8_t out[2][FLAT_FRAME],
                       size_t lens[2]) {
  struct fsp_msg m;
  int n = 0;

  if (ev->type == FSP_TYPE_FOLDER)
    return 0;
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_EVENT;
  m.id = FSP_EVENT_ID;
  m.u.event.seq = ev->seq;
  if (ev->kind == FSP_EV_RENAMED && in_root(ev->from, ev->from_len)) {
    m.u.event.kind = FSP_EV_REMOVED;
    m.u.event.file.mtime_ns = ev->mtime_ns;
    m.u.event.file.name.ptr = ev->from;
    m.u.event.file.name.len = ev->from_len;
    ssize_t k = fsp_msg_encode_v(out[n], FLAT_FRAME, 1, &m);
    if (k > 0 && (size_t)k <= FLAT_FRAME)
      lens[n++] = (size_t)k;
  }
  if (!in_root(ev->path, ev->path_len))
    return n;
  m.u.event.kind = ev->kind == FSP_EV_RENAMED ? FSP_EV_ADDED : ev->kind;
  m.u.event.file.size = ev->size;
  m.u.event.file.mtime_ns = ev->mtime_ns;
  m.u.event.file.name.ptr = ev->path;
  m.u.event.file.name.len = ev->path_len;
  ssize_t k = fsp_msg_encode_v(out[n], FLAT_FRAME, 1, &m);
  if (k > 0 && (size_t)k <= FLAT_FRAME)
    lens[n++] = (size_t)k;
  return n;
}

/* Whether a version 3 subscriber of the subtree folder sees ev. */
static int tree_sees(const struct fsd_event *ev, const char *folder,
                     size_t folder_len) {
  return fsp_path_within(ev->path, ev->path_len, folder, folder_len) ||
         (ev->kind == FSP_EV_RENAMED &&
          fsp_path_within(ev->from, ev->from_len, folder, folder_len));
}

/* The frames a subscriber gets for ev; see ctx.h. */
void fsd_event_frames(const struct fsd_event *ev, unsigned version,
                      const char *folder, size_t folder_len,
                      void (*fn)(void *arg, const void *frame, size_t len),
                      void *arg) {
  if (version < FSP_TREE_VERSION) {
    uint8_t flat[2][FLAT_FRAME];
    size_t lens[2];
    int n = flat_frames(ev, flat, lens);

    for (int i = 0; i < n; i++)
      fn(arg, flat[i], lens[i]);
    return;
  }
  if (tree_sees(ev, folder, folder_len)) {
    uint8_t frame[FSD_PUSH_MAX];
    struct fsp_msg m;
    ssize_t n;

    fsd_event_msg(ev, &m);
    n = fsp_msg_encode_v(frame, sizeof(frame), FSP_TREE_VERSION, &m);
    if (n > 0 && (size_t)n <= sizeof(frame))
      fn(arg, frame, (size_t)n);
  }
}

/* Sends an EVENT, encoded once per layout (and not per subscriber: with
 * 10,000 subscribers that was 10,000 encodes), to every subscriber that
 * sees it. */
static void broadcast_event(struct fsd_ctx *ctx, const struct fsd_event *ev) {
  uint8_t frame[FSD_PUSH_MAX];
  uint8_t flat[2][FLAT_FRAME];
  size_t lens[2];
  struct fsd_list *l, *next;
  struct fsp_msg m;
  ssize_t n;
  int nflat;

  if (fsd_list_empty(&ctx->subs))
    return;
  fsd_event_msg(ev, &m);
  n = fsp_msg_encode_v(frame, sizeof(frame), FSP_TREE_VERSION, &m);
  if (n < 0 || (size_t)n > sizeof(frame)) {
    fsd_error("cannot encode an event: %s", fsp_strerror((int)n));
    return;
  }
  nflat = flat_frames(ev, flat, lens);
  fsd_list_each_safe(l, next, &ctx->subs) {
    struct fsd_subscriber *sub =
        fsd_container_of(l, struct fsd_subscriber, link);
    if (sub->version >= FSP_TREE_VERSION) {
      if (tree_sees(ev, sub->folder, sub->folder_len))
        sub->push(sub, frame, (size_t)n);
    } else {
      for (int i = 0; i < nflat; i++)
        sub->push(sub, flat[i], lens[i]);
    }
  }
}

/* Encodes a NOTIFY once and hands the same bytes to every subscriber. */
static void broadcast(struct fsd_ctx *ctx, const struct fsp_msg *m) {
  uint8_t frame[FSP_HDR_LEN + FSP_NOTICE_MAX];
  struct fsd_list *l, *next;
  ssize_t n;

  if (fsd_list_empty(&ctx->subs))
    return;
  n = fsp_msg_encode(frame, sizeof(frame), m);
  if (n < 0) {
    fsd_error("cannot encode %s: %s", fsp_op_name(m->op), fsp_strerror((int)n));
    return;
  }
  /* A push may not unsubscribe, but fetch next first all the same. */
  fsd_list_each_safe(l, next, &ctx->subs) {
    struct fsd_subscriber *sub =
        fsd_container_of(l, struct fsd_subscriber, link);
    sub->push(sub, frame, (size_t)n);
  }
}

/* Adds a subscriber; see ctx.h. */
void fsd_ctx_subscribe(struct fsd_ctx *ctx, struct fsd_subscriber *sub) {
  fsd_list_push(&ctx->subs, &sub->link);
}

/* Removes a subscriber; see ctx.h. */
void fsd_ctx_unsubscribe(struct fsd_ctx *ctx, struct fsd_subscriber *sub) {
  (void)ctx;
  fsd_list_remove(&sub->link);
}

/* Keeps ev under its seq in the ring (with copies of its paths) and sends
 * its EVENT to every subscriber. Without memory for the copies the slot
 * stays empty: a replay that needs it answers RESYNC. */
static void log_event(struct fsd_ctx *ctx, const struct fsd_event *in) {
  struct fsd_event *ev = &ctx->ring[in->seq % FSD_RING_SIZE];
  char *own = fsd_malloc((size_t)in->path_len + in->from_len + 1u);

  fsd_free(ev->own);
  memset(ev, 0, sizeof(*ev));
  if (own != NULL) {
    *ev = *in;
    memcpy(own, in->path, in->path_len);
    if (in->from_len > 0)
      memcpy(own + in->path_len, in->from, in->from_len);
    ev->path = own;
    ev->from = own + in->path_len;
    ev->own = own;
  }
  ctx->seq = in->seq;
  broadcast_event(ctx, in);
}

/* Logs one event and fans it out, or, in a cluster, hands it to the
 * shared log, which numbers it (now: the version after, NULL for a
 * removal; prev: the version before). */
static void emit(struct fsd_ctx *ctx, struct fsd_event *ev,
                 const struct fsd_stamp *now, const struct fsd_stamp *prev) {
  ev->own = NULL;
  if (ctx->log != NULL) {
    ev->seq = 0; /* it comes back numbered, through fsd_ctx_apply */
    ctx->log->append(ctx->log, ev, now, prev);
    return;
  }
  ev->seq = ctx->seq + 1;
  log_event(ctx, ev);
}

/* Fills an event of kind about path. */
static void event_of(struct fsd_event *ev, int kind, uint8_t type,
                     const char *path, size_t len, uint64_t size,
                     int64_t mtime_ns) {
  memset(ev, 0, sizeof(*ev));
  ev->kind = (uint8_t)kind;
  ev->type = type;
  ev->path = path;
  ev->path_len = (uint16_t)len;
  ev->from = "";
  ev->size = size;
  ev->mtime_ns = mtime_ns;
}

/* The version the register holds for name, or zeros when it has none. */
static struct fsd_stamp held(const struct fsd_ctx *ctx, const char *name,
                             size_t len) {
  const struct fsd_file *f = fsd_register_get(&ctx->reg, name, len);
  struct fsd_stamp st = {0, 0, 0, 0};

  if (f != NULL) {
    st.size = f->size;
    st.mtime_ns = f->mtime_ns;
    st.ino = f->ino;
    st.ctime_ns = f->ctime_ns;
  }
  return st;
}

static void drop_cb(void *arg, const struct fsd_node *n) {
  struct fsd_ctx *ctx = arg;

  if (ctx->dropped != NULL)
    ctx->dropped(ctx->dropped_arg, n);
}

/* fsd_treereg_set(), and the watcher told of a folder new to the tree. */
static int tree_set(struct fsd_ctx *ctx, const char *path, size_t len,
                    uint8_t type, uint64_t size, int64_t mtime_ns) {
  int r = fsd_treereg_set(&ctx->tree, path, len, type, size, mtime_ns);

  if (r == FSP_EV_ADDED && type == FSP_TYPE_FOLDER && ctx->added != NULL) {
    const struct fsd_node *n = fsd_treereg_get(&ctx->tree, path, len);
    if (n != NULL)
      ctx->added(ctx->dropped_arg, n);
  }
  return r;
}

/* Calls hook for the node at path and every folder below it (a rename
 * moves their watches: each is closed before and made again after). */
static void each_folder(struct fsd_ctx *ctx, const char *path, size_t len,
                        fsd_treereg_drop_fn *hook) {
  const struct fsd_node *n = fsd_treereg_get(&ctx->tree, path, len);
  struct fsd_tree_cursor c;

  if (hook == NULL || n == NULL || n->type != FSP_TYPE_FOLDER)
    return;
  hook(ctx->dropped_arg, n);
  if (fsd_treereg_walk_open(&ctx->tree, &c, path, len, 1) != 0)
    return;
  while ((n = fsd_treereg_walk_next(&ctx->tree, &c)) != NULL)
    if (n->type == FSP_TYPE_FOLDER)
      hook(ctx->dropped_arg, n);
  fsd_treereg_walk_close(&ctx->tree, &c);
}

/* Entries of a subtree, copied out of the tree register so that events
 * can be sent about them while it changes. */
struct subtree {
  struct fsd_event *v; /* kind, type and path (owned) of each, pre-order */
  size_t n;
};

static void subtree_free(struct subtree *t) {
  for (size_t i = 0; i < t->n; i++)
    fsd_free(t->v[i].own);
  fsd_free(t->v);
  t->v = NULL;
  t->n = 0;
}

/* Copies every entry below the folder path (not the folder itself), in
 * pre-order: each folder before its contents. Returns 0 or UV_ENOMEM. */
static int subtree_of(struct fsd_ctx *ctx, const char *path, size_t len,
                      struct subtree *t) {
  struct fsd_tree_cursor c;
  const struct fsd_node *n;
  size_t cap = 0;

  t->v = NULL;
  t->n = 0;
  if (fsd_treereg_walk_open(&ctx->tree, &c, path, len, 1) != 0)
    return 0;
  while ((n = fsd_treereg_walk_next(&ctx->tree, &c)) != NULL) {
    struct fsd_event *e;
    if (t->n == cap) {
      size_t ncap = cap != 0 ? cap * 2 : 16;
      void *v = fsd_realloc(t->v, ncap * sizeof(*t->v));
      if (v == NULL)
        goto nomem;
      t->v = v;
      cap = ncap;
    }
    e = &t->v[t->n];
    event_of(e, 0, n->type, NULL, n->path_len, n->size, n->mtime_ns);
    e->own = fsd_malloc((size_t)n->path_len + 1u);
    if (e->own == NULL)
      goto nomem;
    memcpy(e->own, n->path, n->path_len + 1u);
    e->path = e->own;
    t->n++;
  }
  fsd_treereg_walk_close(&ctx->tree, &c);
  return 0;

nomem:
  fsd_treereg_walk_close(&ctx->tree, &c);
  subtree_free(t);
  return UV_ENOMEM;
}

/* What forget() tells the subscribers. */
#define FORGET_SILENT 0 /* nothing (applying the shared log) */
#define FORGET_EVENTS 1 /* one removed event per entry */
#define FORGET_CONTENTS                                                        \
  2 /* events for what was below path, not for path                            \
       (a rename's target: replaced without an event                           \
       of its own, but what the register believed in                           \
       it is gone) */

/* Removes path (and a folder's subtree) from both registers, with the
 * events that events asks for, contents before their folder. Returns 1
 * when something was there. */
static int forget(struct fsd_ctx *ctx, const char *path, size_t len,
                  int64_t now_ns, int events) {
  const struct fsd_node *node = fsd_treereg_get(&ctx->tree, path, len);
  struct fsd_event ev;
  struct fsd_stamp prev;
  uint8_t type = FSP_TYPE_FILE;

  if (node != NULL && node->type == FSP_TYPE_FOLDER) {
    struct subtree t;

    type = FSP_TYPE_FOLDER;
    subtree_of(ctx, path, len, &t);
    for (size_t i = t.n; i-- > 0;) {
      struct fsd_event *e = &t.v[i];
      prev = held(ctx, e->path, e->path_len);
      fsd_register_remove(&ctx->reg, e->path, e->path_len);
      fsd_treereg_remove(&ctx->tree, e->path, e->path_len, drop_cb, ctx);
      if (events) {
        event_of(&ev, FSP_EV_REMOVED, e->type, e->path, e->path_len, 0, now_ns);
        emit(ctx, &ev, NULL, &prev);
      }
    }
    subtree_free(&t);
  }
  prev = held(ctx, path, len);
  /* The flat register may hold a file the tree does not (tests of the
   * version 1 session fill it alone). */
  if (!fsd_register_remove(&ctx->reg, path, len) && node == NULL)
    return 0;
  fsd_treereg_remove(&ctx->tree, path, len, drop_cb, ctx);
  if (events == FORGET_EVENTS) {
    event_of(&ev, FSP_EV_REMOVED, type, path, len, 0, now_ns);
    emit(ctx, &ev, NULL, &prev);
  }
  return 1;
}

/* Makes sure every folder above path is in the tree register, as the disk
 * says it is (a file of this path was just seen there): each one missing
 * is added, with its event when events is set; a file in the way is
 * forgotten first. */
static void ensure_parents(struct fsd_ctx *ctx, const char *path, size_t len,
                           int64_t mtime_ns, int events) {
  for (size_t i = 0; i < len; i++) {
    const struct fsd_node *n;
    struct fsd_event ev;
    struct fsd_stamp now = {0, mtime_ns, 0, 0};
    struct fsd_stamp none = {0, 0, 0, 0};

    if (path[i] != '/')
      continue;
    n = fsd_treereg_get(&ctx->tree, path, i);
    if (n != NULL && n->type == FSP_TYPE_FOLDER)
      continue;
    if (n != NULL)
      forget(ctx, path, i, mtime_ns, events);
    if (tree_set(ctx, path, i, FSP_TYPE_FOLDER, 0, mtime_ns) != FSP_EV_ADDED ||
        !events)
      continue;
    event_of(&ev, FSP_EV_ADDED, FSP_TYPE_FOLDER, path, i, 0, mtime_ns);
    emit(ctx, &ev, &now, &none);
  }
}

/* Sets a file in both registers, without events. Returns the kind of
 * change, as fsd_register_put(). */
static int set_file(struct fsd_ctx *ctx, const char *path, size_t len,
                    const struct fsd_stamp *st, int events) {
  const struct fsd_node *n = fsd_treereg_get(&ctx->tree, path, len);
  int kind;

  if (n != NULL && n->type == FSP_TYPE_FOLDER)
    forget(ctx, path, len, st->mtime_ns, events);
  ensure_parents(ctx, path, len, st->mtime_ns, events);
  kind = fsd_register_put(&ctx->reg, path, len, st);
  if (kind >= 0)
    fsd_treereg_set(&ctx->tree, path, len, FSP_TYPE_FILE, st->size,
                    st->mtime_ns);
  return kind;
}

/* Applies a new version and fans out its event; see ctx.h. */
int fsd_ctx_put(struct fsd_ctx *ctx, const char *name, size_t len,
                const struct fsd_stamp *st) {
  struct fsd_stamp prev = held(ctx, name, len);
  struct fsd_event ev;
  int kind;

  /* With the shared log unreachable, the register stays as the log left
   * it: the rescan finds the change again once the log is back. */
  if (fsd_ctx_log_down(ctx))
    return 0;
  kind = set_file(ctx, name, len, st, 1);
  if (kind > 0) {
    event_of(&ev, kind, FSP_TYPE_FILE, name, len, st->size, st->mtime_ns);
    emit(ctx, &ev, st, &prev);
  }
  return kind;
}

/* Records a folder; see ctx.h. */
int fsd_ctx_folder(struct fsd_ctx *ctx, const char *path, size_t len,
                   const struct fsd_stamp *st) {
  const struct fsd_node *n;
  struct fsd_stamp now = {0, st->mtime_ns, st->ino, 0};
  struct fsd_stamp prev = {0, 0, 0, 0};
  int64_t mtime_ns = st->mtime_ns;
  struct fsd_event ev;
  int r;

  if (fsd_ctx_log_down(ctx) || len == 0)
    return 0;
  n = fsd_treereg_get(&ctx->tree, path, len);
  if (n != NULL && n->type == FSP_TYPE_FOLDER)
    return 0;
  if (n != NULL)
    forget(ctx, path, len, mtime_ns, 1);
  ensure_parents(ctx, path, len, mtime_ns, 1);
  r = tree_set(ctx, path, len, FSP_TYPE_FOLDER, 0, mtime_ns);
  if (r != FSP_EV_ADDED)
    return r < 0 ? r : 0;
  event_of(&ev, FSP_EV_ADDED, FSP_TYPE_FOLDER, path, len, 0, mtime_ns);
  emit(ctx, &ev, &now, &prev);
  return FSP_EV_ADDED;
}

/* Records a removal; see ctx.h. */
int fsd_ctx_remove(struct fsd_ctx *ctx, const char *path, size_t len,
                   int64_t now_ns) {
  if (fsd_ctx_log_down(ctx) || len == 0)
    return 0;
  return forget(ctx, path, len, now_ns, 1) ? FSP_EV_REMOVED : 0;
}

/* Moves from to to in both registers: the files' versions go with them.
 * With events, the folders above to that the register lacked are added
 * and what it believed inside a replaced folder is removed, each with its
 * event (the move itself is the caller's). Returns 0, UV_ENOENT or
 * UV_ENOMEM. */
static int move(struct fsd_ctx *ctx, const char *from, size_t from_len,
                const char *to, size_t to_len, int64_t mtime_ns, int events) {
  const struct fsd_node *n = fsd_treereg_get(&ctx->tree, from, from_len);
  const struct fsd_node *there;
  struct subtree t = {NULL, 0};
  char *buf;
  int r;

  if (n == NULL)
    return UV_ENOENT;
  ensure_parents(ctx, to, to_len, mtime_ns, events);
  there = fsd_treereg_get(&ctx->tree, to, to_len);
  if (there != NULL && there != n)
    forget(ctx, to, to_len, mtime_ns, events ? FORGET_CONTENTS : FORGET_SILENT);
  if (n->type == FSP_TYPE_FOLDER && subtree_of(ctx, from, from_len, &t) != 0)
    return UV_ENOMEM;
  buf = fsd_malloc(FSP_PATH_MAX + 1u);
  if (buf == NULL) {
    subtree_free(&t);
    return UV_ENOMEM;
  }
  /* The versions of the files move to their new paths. */
  for (size_t i = 0; i <= t.n; i++) {
    const char *old = i < t.n ? t.v[i].path : from;
    size_t old_len = i < t.n ? t.v[i].path_len : from_len;
    size_t new_len = to_len + (old_len - from_len);
    struct fsd_stamp st = held(ctx, old, old_len);

    if (new_len > FSP_PATH_MAX ||
        fsd_register_get(&ctx->reg, old, old_len) == NULL)
      continue;
    memcpy(buf, to, to_len);
    memcpy(buf + to_len, old + from_len, old_len - from_len);
    fsd_register_remove(&ctx->reg, old, old_len);
    fsd_register_put(&ctx->reg, buf, new_len, &st);
  }
  fsd_free(buf);
  subtree_free(&t);
  each_folder(ctx, from, from_len, ctx->dropped);
  r = fsd_treereg_rename(&ctx->tree, from, from_len, to, to_len, drop_cb, ctx);
  each_folder(ctx, r == 0 ? to : from, r == 0 ? to_len : from_len, ctx->added);
  return r;
}

/* Records a rename; see ctx.h. */
int fsd_ctx_rename(struct fsd_ctx *ctx, const char *from, size_t from_len,
                   const char *to, size_t to_len, uint8_t type,
                   const struct fsd_stamp *st) {
  struct fsd_stamp prev;
  struct fsd_event ev;
  int r;

  if (fsd_ctx_log_down(ctx))
    return 0;
  if (from_len == to_len && memcmp(from, to, from_len) == 0)
    return 0;
  if (fsd_treereg_get(&ctx->tree, from, from_len) == NULL) {
    if (type == FSP_TYPE_FOLDER)
      return fsd_ctx_folder(ctx, to, to_len, st);
    return fsd_ctx_put(ctx, to, to_len, st);
  }
  prev = held(ctx, from, from_len);
  r = move(ctx, from, from_len, to, to_len, st->mtime_ns, 1);
  if (r != 0)
    return r;
  /* The moved file's version is what the disk says now. */
  if (type == FSP_TYPE_FILE)
    fsd_register_put(&ctx->reg, to, to_len, st);
  event_of(&ev, FSP_EV_RENAMED, type, to, to_len, st->size, st->mtime_ns);
  ev.from = from;
  ev.from_len = (uint16_t)from_len;
  emit(ctx, &ev, st, &prev);
  return FSP_EV_RENAMED;
}

/* Applies a change and fans out its event; see ctx.h. */
int fsd_ctx_update(struct fsd_ctx *ctx, const char *name, size_t len,
                   int present, uint64_t size, int64_t mtime_ns) {
  struct fsd_stamp st = {size, mtime_ns, 0, 0};

  if (present)
    return fsd_ctx_put(ctx, name, len, &st);
  return fsd_ctx_remove(ctx, name, len, mtime_ns);
}

/* Applies an event of the shared log; see ctx.h. */
int fsd_ctx_apply(struct fsd_ctx *ctx, const struct fsd_event *ev,
                  const struct fsd_stamp *st) {
  struct fsd_stamp known = {ev->size, ev->mtime_ns, 0, 0};
  int r = 0;

  if (ev->seq <= ctx->seq)
    return 0;
  if (ev->kind == FSP_EV_REMOVED) {
    forget(ctx, ev->path, ev->path_len, ev->mtime_ns, 0);
  } else if (ev->kind == FSP_EV_RENAMED) {
    r = move(ctx, ev->from, ev->from_len, ev->path, ev->path_len, ev->mtime_ns,
             0);
  } else if (ev->type == FSP_TYPE_FOLDER) {
    ensure_parents(ctx, ev->path, ev->path_len, ev->mtime_ns, 0);
    r = tree_set(ctx, ev->path, ev->path_len, FSP_TYPE_FOLDER, 0, ev->mtime_ns);
  } else {
    r = set_file(ctx, ev->path, ev->path_len, st != NULL ? st : &known, 0);
  }
  if (r == UV_ENOMEM)
    return r;
  log_event(ctx, ev);
  return 1;
}

/* Whether the shared log refuses writes; see ctx.h. */
int fsd_ctx_log_down(const struct fsd_ctx *ctx) {
  return ctx->log != NULL && !atomic_load(&ctx->log->writable);
}

/* Relays a notice; see ctx.h. */
void fsd_ctx_notify(struct fsd_ctx *ctx, const char *text, size_t len) {
  if (ctx->log != NULL)
    ctx->log->notify(ctx->log, text, len);
  else
    fsd_ctx_relay(ctx, text, len);
}

/* Relays a notice to this server's subscribers; see ctx.h. */
void fsd_ctx_relay(struct fsd_ctx *ctx, const char *text, size_t len) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_NOTIFY;
  m.id = FSP_EVENT_ID;
  m.u.text.ptr = text;
  m.u.text.len = len;
  broadcast(ctx, &m);
}
