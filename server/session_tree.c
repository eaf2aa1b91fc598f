/* The session's answers from the register, LIST and STAT, in the flat view
 * of versions 1 and 2 (the files directly in the root) and in the tree of
 * version 3; and its checks of the version 3 requests on paths before the
 * host runs them (MKDIR, RENAME, DELETE of a folder), so that what the
 * register already tells is answered without disk access. See session.h
 * and protocol.md section 12. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "session.h"
#include "session_int.h"

/* The path field of m; see session_int.h. */
const struct fsp_str *fsd__msg_path(const struct fsd_session *s,
                                    const struct fsp_msg *m) {
  int tree = s->version >= FSP_TREE_VERSION;

  switch (m->op) {
  case FSP_OP_STAT:
    return &m->u.name;
  case FSP_OP_GET:
  case FSP_OP_HASH:
    return &m->u.range.name;
  case FSP_OP_PUT:
    return &m->u.put.name;
  case FSP_OP_DELETE:
    return tree ? &m->u.tree.path : &m->u.name;
  case FSP_OP_LIST:
    return tree ? &m->u.tree.path : NULL;
  case FSP_OP_MKDIR:
    return &m->u.tree.path;
  case FSP_OP_RENAME:
    return &m->u.rename.from;
  case FSP_OP_SUBSCRIBE:
    return tree ? &m->u.sub.path : NULL;
  default:
    return NULL;
  }
}

/* Why path[0..len), absent from the register, cannot be: NOT_FOLDER when
 * one of the folders on its way is a file there, else NOT_FOUND. */
static uint16_t missing_status(const struct fsd_ctx *ctx, const char *path,
                               size_t len) {
  for (size_t i = 0; i < len; i++) {
    const struct fsd_node *n;

    if (path[i] != '/')
      continue;
    n = fsd_treereg_get(&ctx->tree, path, i);
    if (n == NULL)
      return FSP_ST_NOT_FOUND;
    if (n->type == FSP_TYPE_FILE)
      return FSP_ST_NOT_FOLDER;
  }
  return FSP_ST_NOT_FOUND;
}

/* What the register says of a request on a file; see session_int.h. */
uint16_t fsd__tree_check(struct fsd_session *s, const struct fsp_msg *m,
                         const struct fsp_str *name, uint8_t *tree_op) {
  const struct fsd_node *n =
      fsd_treereg_get(&s->ctx->tree, name->ptr, name->len);
  uint16_t st;

  *tree_op = 0;
  if (n == NULL) {
    st = missing_status(s->ctx, name->ptr, name->len);
    if (st == FSP_ST_NOT_FOLDER)
      return st;
    /* A file the register does not know yet may be on the disk, which
     * decides; a DELETE of nothing known is NOT_FOUND, as in version 1. */
    if (m->op == FSP_OP_DELETE &&
        fsd_register_get(&s->ctx->reg, name->ptr, name->len) == NULL)
      return FSP_ST_NOT_FOUND;
    return 0;
  }
  if (n->type == FSP_TYPE_FILE)
    return 0;
  if (m->op != FSP_OP_DELETE)
    return FSP_ST_IS_FOLDER;
  if (!(m->u.tree.flags & FSP_DELETE_RECURSIVE) && n->nchildren > 0)
    return FSP_ST_NOT_EMPTY;
  *tree_op = 1;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* LIST                                                                      */

struct list_state {
  struct fsd_session *s;
  struct fsp_entries_builder b;
  uint8_t *buf;
  size_t cap;
  uint32_t id;
};

static void list_flush(struct list_state *ls) {
  size_t n;

  if (ls->b.count == 0)
    return;
  n = fsp_entries_finish(&ls->b);
  ls->s->ops->send(ls->s->host, ls->buf, n);
  fsp_entries_begin_v(&ls->b, ls->buf, ls->cap, ls->id, ls->s->version);
}

static void list_add(struct list_state *ls, const struct fsp_entry *e) {
  int r = fsp_entries_add(&ls->b, e);

  if (r == FSP_ENOBUFS) {
    list_flush(ls);
    r = fsp_entries_add(&ls->b, e);
  }
  if (r != 0)
    fsd_warn("LIST skips an entry: %s", fsp_strerror(r));
}

/* Versions 1 and 2 see the files directly in the root only. */
static int list_one(void *arg, const struct fsd_file *f) {
  struct fsp_entry e;

  if (memchr(f->name, '/', f->name_len) != NULL)
    return 0;
  memset(&e, 0, sizeof(e));
  e.size = f->size;
  e.mtime_ns = f->mtime_ns;
  e.name.ptr = f->name;
  e.name.len = f->name_len;
  list_add(arg, &e);
  return 0;
}

/* One step of a flat LIST: a bucket of the register. r->offset holds the
 * register cursor. Returns 1 when the walk is complete. */
static int flat_step(struct fsd_session *s, struct fsd_req *r,
                     struct list_state *ls) {
  r->offset = fsd_register_scan(&s->ctx->reg, r->offset, list_one, ls);
  return r->offset == 0;
}

/* One step of a tree LIST: one entry of the walk, its path relative to
 * the folder listed. Returns 1 when the walk is complete. */
static int tree_step(struct fsd_session *s, struct fsd_req *r,
                     struct list_state *ls) {
  const struct fsd_node *n = fsd_treereg_walk_next(&s->ctx->tree, r->cur);
  struct fsp_entry e;

  if (n == NULL)
    return 1;
  memset(&e, 0, sizeof(e));
  e.size = n->size;
  e.mtime_ns = n->mtime_ns;
  e.type = n->type;
  e.name.ptr = n->path + r->list_skip;
  e.name.len = (size_t)n->path_len - r->list_skip;
  list_add(ls, &e);
  return 0;
}

/* Sends ENTRIES batches of a LIST while the host's backlog is short, so a
 * register of any size streams out in bounded memory. */
void fsd__list_pump(struct fsd_session *s, struct fsd_req *r) {
  struct list_state ls;
  uint32_t batch = s->peer_max < FSD_LIST_BATCH ? s->peer_max : FSD_LIST_BATCH;
  size_t room = r->cur != NULL ? FSP_ENTRY2_LEN(FSP_PATH_MAX)
                               : FSP_ENTRY_LEN(FSP_NAME_MAX);

  ls.s = s;
  ls.id = r->id;
  ls.cap = FSP_HDR_LEN + batch;
  ls.buf = malloc(ls.cap);
  if (ls.buf == NULL) {
    fsd_session_fail(s, r, FSP_ST_IO, "out of memory");
    return;
  }
  fsp_entries_begin_v(&ls.b, ls.buf, ls.cap, ls.id, s->version);
  for (;;) {
    int done = r->cur != NULL ? tree_step(s, r, &ls) : flat_step(s, r, &ls);

    r->size = 1;
    if (done) {
      list_flush(&ls);
      free(ls.buf);
      fsd__send_empty(s, FSP_OP_OK, r->id);
      fsd__end_req(s, r, 0);
      return;
    }
    if (ls.cap - ls.b.len < room) {
      list_flush(&ls);
      if (s->ops->backlog(s->host) >= FSD_LIST_BATCH)
        break; /* fsd_session_writable() goes on */
    }
  }
  free(ls.buf);
}

/* LIST: the flat register, or a walk of the tree register. */
void fsd__on_list(struct fsd_session *s, const struct fsp_msg *m) {
  static const struct fsp_str none = {"", 0};
  const struct fsp_str *path = &m->u.tree.path;
  struct fsd_tree_cursor *cur;
  struct fsd_req *r;
  int rc;

  if (s->version < FSP_TREE_VERSION) {
    r = fsd__new_req(s, m, &none);
    if (r != NULL)
      fsd__list_pump(s, r);
    return;
  }
  cur = malloc(sizeof(*cur));
  if (cur == NULL) {
    fsd__send_error(s, m->id, FSP_ST_BUSY, "out of memory", NULL, 0);
    return;
  }
  rc = fsd_treereg_walk_open(&s->ctx->tree, cur, path->ptr, path->len,
                             (m->u.tree.flags & FSP_LIST_RECURSIVE) != 0);
  if (rc != 0) {
    uint16_t st = rc == UV_ENOTDIR
                      ? FSP_ST_NOT_FOLDER
                      : missing_status(s->ctx, path->ptr, path->len);
    free(cur);
    fsd__send_error(s, m->id, st, NULL, path->ptr, path->len);
    fsd__note_done(s, m->op, path->ptr, path->len, 0, st, s->clock_us);
    return;
  }
  r = fsd__new_req(s, m, path);
  if (r == NULL) {
    fsd_treereg_walk_close(&s->ctx->tree, cur);
    free(cur);
    return;
  }
  r->cur = cur;
  r->flags = m->u.tree.flags;
  r->list_skip = (uint16_t)(path->len > 0 ? path->len + 1 : 0);
  fsd__list_pump(s, r);
}

/* ------------------------------------------------------------------------ */
/* STAT                                                                      */

void fsd__on_stat(struct fsd_session *s, const struct fsp_msg *m) {
  const struct fsp_str *name = &m->u.name;
  struct fsp_msg a;
  uint16_t st = 0;

  memset(&a, 0, sizeof(a));
  a.op = FSP_OP_INFO;
  a.id = m->id;
  if (s->version >= FSP_TREE_VERSION) {
    const struct fsd_node *n =
        fsd_treereg_get(&s->ctx->tree, name->ptr, name->len);
    if (n == NULL) {
      st = missing_status(s->ctx, name->ptr, name->len);
    } else {
      a.u.entry.size = n->size;
      a.u.entry.mtime_ns = n->mtime_ns;
      a.u.entry.type = n->type;
    }
  } else {
    const struct fsd_file *f =
        fsd_register_get(&s->ctx->reg, name->ptr, name->len);
    if (f == NULL) {
      st = FSP_ST_NOT_FOUND;
    } else {
      a.u.entry.size = f->size;
      a.u.entry.mtime_ns = f->mtime_ns;
    }
  }
  if (st != 0)
    fsd__send_error(s, m->id, st, NULL, name->ptr, name->len);
  else
    fsd__send_msg(s, &a);
  fsd__note_done(s, m->op, name->ptr, name->len, 0, st, s->clock_us);
}

/* ------------------------------------------------------------------------ */
/* MKDIR and RENAME                                                          */

/* Refuses a change the server cannot make now; returns 1 when it did. (A
 * read-only server refused it before rights were looked at.) */
static int refuse_change(struct fsd_session *s, const struct fsp_msg *m) {
  if (fsd_ctx_log_down(s->ctx)) {
    fsd__send_error(s, m->id, FSP_ST_BUSY,
                    "cluster log unreachable: writes refused, reads go on",
                    NULL, 0);
    return 1;
  }
  return 0;
}

/* Answers a request from the register alone: OK or ERROR st. */
static void answer(struct fsd_session *s, const struct fsp_msg *m,
                   const struct fsp_str *path, uint16_t st) {
  if (st == 0)
    fsd__send_empty(s, FSP_OP_OK, m->id);
  else
    fsd__send_error(s, m->id, st, NULL, path->ptr, path->len);
  fsd__note_done(s, m->op, path->ptr, path->len, 0, st, s->clock_us);
}

void fsd__on_mkdir(struct fsd_session *s, const struct fsp_msg *m) {
  const struct fsp_str *path = &m->u.tree.path;
  const struct fsd_node *n;
  struct fsd_req *r;
  uint16_t st;

  if (refuse_change(s, m))
    return;
  n = fsd_treereg_get(&s->ctx->tree, path->ptr, path->len);
  if (n != NULL) {
    /* mkdir -p of a folder that is there is done already. */
    st = n->type == FSP_TYPE_FOLDER && (m->u.tree.flags & FSP_MKDIR_PARENTS)
             ? 0
             : FSP_ST_EXISTS;
    answer(s, m, path, st);
    return;
  }
  if (missing_status(s->ctx, path->ptr, path->len) == FSP_ST_NOT_FOLDER) {
    answer(s, m, path, FSP_ST_NOT_FOLDER);
    return;
  }
  r = fsd__new_req(s, m, path);
  if (r == NULL)
    return;
  r->flags = m->u.tree.flags;
  s->ops->start(s->host, r);
}

void fsd__on_rename(struct fsd_session *s, const struct fsp_msg *m) {
  const struct fsp_str *from = &m->u.rename.from, *to = &m->u.rename.to;
  const struct fsd_node *n;
  struct fsd_req *r;

  if (refuse_change(s, m))
    return;
  n = fsd_treereg_get(&s->ctx->tree, from->ptr, from->len);
  if (from->len == to->len && memcmp(from->ptr, to->ptr, to->len) == 0) {
    answer(s, m, from,
           n != NULL ? 0 : missing_status(s->ctx, from->ptr, from->len));
    return;
  }
  if (n != NULL && n->type == FSP_TYPE_FOLDER &&
      fsp_path_within(to->ptr, to->len, from->ptr, from->len)) {
    answer(s, m, to, FSP_ST_INTO_SELF);
    return;
  }
  if (fsd_treereg_get(&s->ctx->tree, to->ptr, to->len) == NULL &&
      missing_status(s->ctx, to->ptr, to->len) == FSP_ST_NOT_FOLDER) {
    answer(s, m, to, FSP_ST_NOT_FOLDER);
    return;
  }
  r = fsd__new_req(s, m, from);
  if (r == NULL)
    return;
  r->to = malloc(to->len + 1);
  if (r->to == NULL) {
    fsd_session_fail(s, r, FSP_ST_BUSY, "out of memory");
    return;
  }
  memcpy(r->to, to->ptr, to->len);
  r->to[to->len] = '\0';
  r->to_len = (uint16_t)to->len;
  r->flags = m->u.rename.flags;
  s->ops->start(s->host, r);
}
