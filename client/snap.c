/* fsc watch's picture of the server's files. See snap.h. */
#include "snap.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "xfer.h" /* FSC_ENOMEM */

/* FNV-1a: names are short and the table only needs an even spread. */
static uint64_t name_hash(const char *p, size_t len) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ull;
  }
  return h;
}

/* The slot holding name, or the empty slot where it would go. cap > 0. */
static size_t find_slot(const struct fsc_snap *s, const char *name,
                        size_t len) {
  size_t mask = s->cap - 1;
  size_t i = (size_t)name_hash(name, len) & mask;
  while (s->slots[i].name != NULL) {
    if (s->slots[i].len == len && memcmp(s->slots[i].name, name, len) == 0)
      return i;
    i = (i + 1) & mask;
  }
  return i;
}

void fsc_snap_free(struct fsc_snap *s) {
  for (size_t i = 0; i < s->cap; i++)
    fsc_free(s->slots[i].name);
  fsc_free(s->slots);
  s->slots = NULL;
  s->cap = 0;
  s->n = 0;
}

const struct fsc_snap_file *fsc_snap_get(const struct fsc_snap *s,
                                         const char *name, size_t len) {
  if (s->cap == 0)
    return NULL;
  size_t i = find_slot(s, name, len);
  return s->slots[i].name != NULL ? &s->slots[i] : NULL;
}

/* Doubles the table (or makes the first one); names move, not copied. */
static int grow(struct fsc_snap *s) {
  size_t ncap = s->cap ? 2 * s->cap : 64;
  if (ncap < s->cap || ncap > SIZE_MAX / sizeof(struct fsc_snap_file))
    return FSC_ENOMEM;
  struct fsc_snap_file *ns = fsc_calloc(ncap, sizeof *ns);
  if (ns == NULL)
    return FSC_ENOMEM;
  struct fsc_snap old = *s;
  s->slots = ns;
  s->cap = ncap;
  for (size_t i = 0; i < old.cap; i++)
    if (old.slots[i].name != NULL)
      s->slots[find_slot(s, old.slots[i].name, old.slots[i].len)] =
          old.slots[i];
  fsc_free(old.slots);
  return 0;
}

int fsc_snap_set(struct fsc_snap *s, const char *name, size_t len,
                 uint64_t size, int64_t mtime_ns) {
  if (s->cap > 0) {
    struct fsc_snap_file *f = &s->slots[find_slot(s, name, len)];
    if (f->name != NULL) {
      f->size = size;
      f->mtime_ns = mtime_ns;
      return 0;
    }
  }
  /* At most half full keeps the probe runs short. */
  if ((s->n + 1) * 2 > s->cap && grow(s) != 0)
    return FSC_ENOMEM;
  char *copy = fsc_malloc(len + 1);
  if (copy == NULL)
    return FSC_ENOMEM;
  memcpy(copy, name, len);
  copy[len] = '\0';
  struct fsc_snap_file *f = &s->slots[find_slot(s, name, len)];
  f->name = copy;
  f->len = len;
  f->size = size;
  f->mtime_ns = mtime_ns;
  s->n++;
  return 1;
}

int fsc_snap_remove(struct fsc_snap *s, const char *name, size_t len) {
  if (s->cap == 0)
    return 0;
  size_t mask = s->cap - 1;
  size_t i = find_slot(s, name, len);
  if (s->slots[i].name == NULL)
    return 0;
  fsc_free(s->slots[i].name);
  s->slots[i].name = NULL;
  s->n--;
  /* Backward-shift deletion: move later members of the probe run into the
   * hole when their home slot is at or before it, so that lookups never
   * stop early at the hole (no tombstones to clean up later). */
  size_t hole = i;
  for (size_t j = (i + 1) & mask; s->slots[j].name != NULL;
       j = (j + 1) & mask) {
    size_t home = (size_t)name_hash(s->slots[j].name, s->slots[j].len) & mask;
    /* Does home lie cyclically in (hole, j]? Then j stays. */
    int stays =
        hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays)
      continue;
    s->slots[hole] = s->slots[j];
    s->slots[j].name = NULL;
    hole = j;
  }
  return 1;
}

/* A folder moved: every file below from/ moves below to/. The moves are
 * gathered first, since the table cannot change while it is walked. */
static int move_folder(struct fsc_snap *s, const struct fsp_str *from,
                       const struct fsp_str *to) {
  struct fsc_snap moved;
  memset(&moved, 0, sizeof moved);
  for (size_t i = 0; i < s->cap; i++) {
    const struct fsc_snap_file *f = &s->slots[i];
    if (f->name == NULL || f->len <= from->len || f->name[from->len] != '/' ||
        memcmp(f->name, from->ptr, from->len) != 0)
      continue;
    size_t nl = to->len + f->len - from->len;
    char *nn = fsc_malloc(nl + 1);
    if (nn == NULL) {
      fsc_snap_free(&moved);
      return FSC_ENOMEM;
    }
    memcpy(nn, to->ptr, to->len);
    memcpy(nn + to->len, f->name + from->len, f->len - from->len);
    int rc = fsc_snap_set(&moved, nn, nl, f->size, f->mtime_ns);
    fsc_free(nn);
    if (rc < 0) {
      fsc_snap_free(&moved);
      return rc;
    }
  }
  /* Drop the old names (each removal may shift others, so start over
   * from the moved set rather than from a slot index). */
  for (size_t i = 0; i < moved.cap; i++) {
    const struct fsc_snap_file *f = &moved.slots[i];
    if (f->name == NULL)
      continue;
    size_t ol = from->len + f->len - to->len;
    char *on = fsc_malloc(ol + 1);
    if (on == NULL) {
      fsc_snap_free(&moved);
      return FSC_ENOMEM;
    }
    memcpy(on, from->ptr, from->len);
    memcpy(on + from->len, f->name + to->len, f->len - to->len);
    fsc_snap_remove(s, on, ol);
    fsc_free(on);
  }
  int rc = 0;
  for (size_t i = 0; i < moved.cap && rc >= 0; i++)
    if (moved.slots[i].name != NULL)
      rc = fsc_snap_set(s, moved.slots[i].name, moved.slots[i].len,
                        moved.slots[i].size, moved.slots[i].mtime_ns);
  fsc_snap_free(&moved);
  return rc < 0 ? rc : 0;
}

int fsc_snap_apply(struct fsc_snap *s, const struct fsp_msg *m) {
  if (m->op != FSP_OP_EVENT)
    return 0;
  const struct fsp_entry *e = &m->u.event.file;
  /* The table holds files only: a folder's own events change nothing but
   * a move, which moves what it holds. */
  if (e->type == FSP_TYPE_FOLDER)
    return m->u.event.kind == FSP_EV_RENAMED
               ? move_folder(s, &m->u.event.from, &e->name)
               : 0;
  if (m->u.event.kind == FSP_EV_RENAMED)
    fsc_snap_remove(s, m->u.event.from.ptr, m->u.event.from.len);
  if (m->u.event.kind == FSP_EV_REMOVED) {
    fsc_snap_remove(s, e->name.ptr, e->name.len);
    return 0;
  }
  int rc = fsc_snap_set(s, e->name.ptr, e->name.len, e->size, e->mtime_ns);
  return rc < 0 ? rc : 0;
}

int fsc_snap_add_entries(struct fsc_snap *s, const struct fsp_msg *m) {
  return fsc_snap_add_entries_in(s, m, "");
}

int fsc_snap_add_entries_in(struct fsc_snap *s, const struct fsp_msg *m,
                            const char *dir) {
  size_t pos = 0, dl = strlen(dir);
  struct fsp_entry e;
  int rc;
  char *full = NULL;
  while ((rc = fsp_entries_next(m, &pos, &e)) == 1) {
    if (e.type == FSP_TYPE_FOLDER)
      continue;
    const char *name = e.name.ptr;
    size_t len = e.name.len;
    if (dl > 0) { /* full paths, as events carry */
      char *nf = fsc_realloc(full, dl + 1 + len);
      if (nf == NULL) {
        fsc_free(full);
        return FSC_ENOMEM;
      }
      full = nf;
      memcpy(full, dir, dl);
      full[dl] = '/';
      memcpy(full + dl + 1, e.name.ptr, len);
      name = full;
      len += dl + 1;
    }
    int set = fsc_snap_set(s, name, len, e.size, e.mtime_ns);
    if (set < 0) {
      fsc_free(full);
      return set;
    }
  }
  fsc_free(full);
  return rc < 0 ? FSP_EMALFORMED : 0;
}

/* One difference, before sorting. */
struct change {
  const struct fsc_snap_file *f;
  uint8_t kind;
};

static int change_cmp(const void *x, const void *y) {
  const struct fsc_snap_file *a = ((const struct change *)x)->f;
  const struct fsc_snap_file *b = ((const struct change *)y)->f;
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->name, b->name, n);
  if (c != 0)
    return c;
  return (a->len > b->len) - (a->len < b->len);
}

long fsc_snap_diff(const struct fsc_snap *old, const struct fsc_snap *cur,
                   uint64_t seq,
                   void (*emit)(void *arg, const struct fsp_msg *m),
                   void *arg) {
  /* Count first, so one allocation holds them all. */
  size_t n = 0;
  for (int pass = 0; pass < 2; pass++) {
    struct change *v = NULL;
    if (pass == 1) {
      if (n == 0)
        return 0;
      v = fsc_malloc(n * sizeof *v);
      if (v == NULL)
        return FSC_ENOMEM;
      n = 0;
    }
    for (size_t i = 0; i < cur->cap; i++) {
      const struct fsc_snap_file *f = &cur->slots[i];
      if (f->name == NULL)
        continue;
      const struct fsc_snap_file *o = fsc_snap_get(old, f->name, f->len);
      uint8_t kind = o == NULL ? FSP_EV_ADDED
                     : (o->size != f->size || o->mtime_ns != f->mtime_ns)
                         ? FSP_EV_REPLACED
                         : 0;
      if (kind != 0 && v != NULL)
        v[n] = (struct change){f, kind};
      n += kind != 0;
    }
    for (size_t i = 0; i < old->cap; i++) {
      const struct fsc_snap_file *o = &old->slots[i];
      if (o->name == NULL || fsc_snap_get(cur, o->name, o->len) != NULL)
        continue;
      if (v != NULL)
        v[n] = (struct change){o, FSP_EV_REMOVED};
      n++;
    }
    if (pass == 0)
      continue;
    qsort(v, n, sizeof *v, change_cmp);
    for (size_t i = 0; i < n; i++) {
      struct fsp_msg m;
      memset(&m, 0, sizeof m);
      m.op = FSP_OP_EVENT;
      m.id = FSP_EVENT_ID;
      m.u.event.seq = seq;
      m.u.event.kind = v[i].kind;
      m.u.event.file.name.ptr = v[i].f->name;
      m.u.event.file.name.len = v[i].f->len;
      if (v[i].kind != FSP_EV_REMOVED) {
        m.u.event.file.size = v[i].f->size;
        m.u.event.file.mtime_ns = v[i].f->mtime_ns;
      }
      emit(arg, &m);
    }
    fsc_free(v);
  }
  return (long)n;
}

int fsc_evlog_add(struct fsc_evlog *l, const struct fsp_msg *m) {
  if (m->op != FSP_OP_EVENT)
    return 0;
  if (l->n == l->cap) {
    size_t nc = l->cap ? 2 * l->cap : 16;
    struct fsc_evlog_item *ni = fsc_realloc(l->items, nc * sizeof *ni);
    if (ni == NULL)
      return FSC_ENOMEM;
    l->items = ni;
    l->cap = nc;
  }
  const struct fsp_entry *e = &m->u.event.file;
  const struct fsp_str *f = &m->u.event.from;
  char *name = fsc_malloc(e->name.len + 1);
  char *from = f->len > 0 ? fsc_malloc(f->len + 1) : NULL;
  if (name == NULL || (f->len > 0 && from == NULL)) {
    fsc_free(name);
    fsc_free(from);
    return FSC_ENOMEM;
  }
  memcpy(name, e->name.ptr, e->name.len);
  name[e->name.len] = '\0';
  if (from != NULL) {
    memcpy(from, f->ptr, f->len);
    from[f->len] = '\0';
  }
  l->items[l->n++] = (struct fsc_evlog_item){name,    e->name.len,     from,
                                             f->len,  m->u.event.kind, e->type,
                                             e->size, e->mtime_ns};
  return 0;
}

int fsc_evlog_replay(const struct fsc_evlog *l, struct fsc_snap *s) {
  for (size_t i = 0; i < l->n; i++) {
    const struct fsc_evlog_item *it = &l->items[i];
    struct fsp_msg m;
    memset(&m, 0, sizeof m);
    m.op = FSP_OP_EVENT;
    m.u.event.kind = it->kind;
    m.u.event.file.name.ptr = it->name;
    m.u.event.file.name.len = it->len;
    m.u.event.file.type = it->type;
    m.u.event.file.size = it->size;
    m.u.event.file.mtime_ns = it->mtime_ns;
    m.u.event.from.ptr = it->from;
    m.u.event.from.len = it->from_len;
    if (fsc_snap_apply(s, &m) < 0)
      return FSC_ENOMEM;
  }
  return 0;
}

void fsc_evlog_free(struct fsc_evlog *l) {
  for (size_t i = 0; i < l->n; i++) {
    fsc_free(l->items[i].name);
    fsc_free(l->items[i].from);
  }
  fsc_free(l->items);
  l->items = NULL;
  l->n = l->cap = 0;
}
