/* The tree register: a hash map of paths over a tree of nodes. See
 * treereg.h. */
#include "treereg.h"

#include "fnv.h"
#include "mem.h"

#include <fsproto/fsproto.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define INITIAL_BUCKETS 64u

static struct fsd_node **find_slot(const struct fsd_treereg *reg, const char *p,
                                   size_t len, uint32_t h) {
  struct fsd_node **pp = &reg->buckets[h & (reg->nbuckets - 1)];
  for (; *pp != NULL; pp = &(*pp)->hnext) {
    struct fsd_node *n = *pp;
    if (n->hash == h && n->path_len == len && memcmp(n->path, p, len) == 0)
      break;
  }
  return pp;
}

static void hash_insert(struct fsd_treereg *reg, struct fsd_node *n) {
  struct fsd_node **b = &reg->buckets[n->hash & (reg->nbuckets - 1)];
  n->hnext = *b;
  *b = n;
}

static void hash_remove(struct fsd_treereg *reg, struct fsd_node *n) {
  struct fsd_node **pp = find_slot(reg, n->path, n->path_len, n->hash);
  if (*pp == n)
    *pp = n->hnext;
}

/* Doubles the bucket array; on allocation failure the map stays denser,
 * which is slower but still correct. */
static void grow(struct fsd_treereg *reg) {
  size_t n = reg->nbuckets * 2;
  struct fsd_node **b = fsd_calloc(n, sizeof(*b));
  if (b == NULL)
    return;
  for (size_t i = 0; i < reg->nbuckets; i++) {
    struct fsd_node *f = reg->buckets[i];
    while (f != NULL) {
      struct fsd_node *next = f->hnext;
      f->hnext = b[f->hash & (n - 1)];
      b[f->hash & (n - 1)] = f;
      f = next;
    }
  }
  fsd_free(reg->buckets);
  reg->buckets = b;
  reg->nbuckets = n;
}

static void link_child(struct fsd_node *parent, struct fsd_node *n) {
  n->parent = parent;
  n->next = parent->child;
  if (n->next != NULL)
    n->next->pprev = &n->next;
  parent->child = n;
  n->pprev = &parent->child;
  parent->nchildren++;
}

static void unlink_child(struct fsd_node *n) {
  *n->pprev = n->next;
  if (n->next != NULL)
    n->next->pprev = n->pprev;
  n->parent->nchildren--;
  n->next = NULL;
  n->pprev = NULL;
}

static void free_node(struct fsd_node *n) {
  fsd_free(n->path);
  fsd_free(n);
}

/* Initialises a register with its root; see treereg.h. */
int fsd_treereg_init(struct fsd_treereg *reg) {
  memset(reg, 0, sizeof(*reg));
  reg->buckets = fsd_calloc(INITIAL_BUCKETS, sizeof(*reg->buckets));
  reg->root = fsd_calloc(1, sizeof(*reg->root));
  if (reg->root != NULL)
    reg->root->path = fsd_calloc(1, 1);
  if (reg->buckets == NULL || reg->root == NULL || reg->root->path == NULL) {
    fsd_free(reg->buckets);
    if (reg->root != NULL)
      free_node(reg->root);
    return UV_ENOMEM;
  }
  reg->nbuckets = INITIAL_BUCKETS;
  reg->root->type = FSP_TYPE_FOLDER;
  reg->root->hash = fsd_fnv1a("", 0);
  hash_insert(reg, reg->root);
  reg->folders = 1;
  return 0;
}

/* The node at path; see treereg.h. */
struct fsd_node *fsd_treereg_get(const struct fsd_treereg *reg,
                                 const char *path, size_t len) {
  return *find_slot(reg, path, len, fsd_fnv1a(path, len));
}

/* Length of the parent's path: up to the last '/', or 0 (the root). */
static size_t parent_len(const char *path, size_t len) {
  while (len > 0 && path[len - 1] != '/')
    len--;
  return len > 0 ? len - 1 : 0;
}

/* Records a file or folder; see treereg.h. */
int fsd_treereg_set(struct fsd_treereg *reg, const char *path, size_t len,
                    uint8_t type, uint64_t size, int64_t mtime_ns) {
  struct fsd_node *n, *parent;
  uint32_t h;

  if (len == 0 || len > FSP_PATH_MAX ||
      (type != FSP_TYPE_FILE && type != FSP_TYPE_FOLDER))
    return UV_EINVAL;
  if (type == FSP_TYPE_FOLDER)
    size = 0;
  h = fsd_fnv1a(path, len);
  n = *find_slot(reg, path, len, h);
  if (n != NULL) {
    if (n->type != type)
      return UV_EEXIST;
    if (n->size == size && n->mtime_ns == mtime_ns)
      return 0;
    n->size = size;
    n->mtime_ns = mtime_ns;
    n->gen = ++reg->gen;
    return FSP_EV_REPLACED;
  }
  parent = fsd_treereg_get(reg, path, parent_len(path, len));
  if (parent == NULL)
    return UV_ENOENT;
  if (parent->type != FSP_TYPE_FOLDER)
    return UV_ENOTDIR;
  n = fsd_calloc(1, sizeof(*n));
  if (n != NULL)
    n->path = fsd_malloc(len + 1);
  if (n == NULL || n->path == NULL) {
    fsd_free(n);
    return UV_ENOMEM;
  }
  memcpy(n->path, path, len);
  n->path[len] = '\0';
  n->path_len = (uint16_t)len;
  n->hash = h;
  n->type = type;
  n->size = size;
  n->mtime_ns = mtime_ns;
  n->gen = ++reg->gen;
  hash_insert(reg, n);
  link_child(parent, n);
  reg->count++;
  reg->folders += type == FSP_TYPE_FOLDER;
  if (reg->count > reg->nbuckets)
    grow(reg);
  return FSP_EV_ADDED;
}

/* 1 when n is s or lies below it (by the tree links, not the paths). */
static int in_subtree(const struct fsd_node *n, const struct fsd_node *s) {
  for (; n != NULL; n = n->parent)
    if (n == s)
      return 1;
  return 0;
}

/* The node after n in the pre-order walk of top; with skip, n's subtree is
 * left out. */
static struct fsd_node *successor(const struct fsd_node *n,
                                  const struct fsd_node *top, int recursive,
                                  int skip) {
  if (recursive && !skip && n->child != NULL)
    return n->child;
  while (n != top) {
    if (n->next != NULL)
      return n->next;
    n = n->parent;
  }
  return NULL;
}

/* Before the subtree s leaves its place (removed or moved): every walk
 * whose next node lies in it goes on after it, and a walk of a folder
 * being removed ends. */
static void cursors_leave(struct fsd_treereg *reg, const struct fsd_node *s,
                          int removing) {
  for (struct fsd_tree_cursor *c = reg->cursors; c != NULL;
       c = c->next_cursor) {
    if (c->top == NULL)
      continue;
    if (in_subtree(c->top, s)) {
      /* The listed folder goes too, or moves with everything under it. */
      if (removing)
        c->top = c->at = NULL;
      continue;
    }
    if (c->at != NULL && in_subtree(c->at, s))
      c->at = successor(s, c->top, c->recursive, 1);
  }
}

/* Frees the subtree s, deepest nodes first. */
static size_t drop_subtree(struct fsd_treereg *reg, struct fsd_node *s,
                           fsd_treereg_drop_fn *drop, void *arg) {
  struct fsd_node *cur = s;
  size_t n = 0;

  for (;;) {
    struct fsd_node *parent;
    int last;

    while (cur->child != NULL)
      cur = cur->child;
    parent = cur->parent;
    last = cur == s;
    hash_remove(reg, cur);
    unlink_child(cur);
    reg->count--;
    reg->folders -= cur->type == FSP_TYPE_FOLDER;
    if (drop != NULL)
      drop(arg, cur);
    free_node(cur);
    n++;
    if (last)
      break;
    cur = parent;
  }
  reg->gen++;
  return n;
}

/* Removes a path and its subtree; see treereg.h. */
size_t fsd_treereg_remove(struct fsd_treereg *reg, const char *path, size_t len,
                          fsd_treereg_drop_fn *drop, void *arg) {
  struct fsd_node *n = fsd_treereg_get(reg, path, len);

  if (n == NULL || n == reg->root)
    return 0;
  cursors_leave(reg, n, 1);
  return drop_subtree(reg, n, drop, arg);
}

/* The next node of s's subtree after n in pre-order, or NULL. */
static struct fsd_node *subtree_next(struct fsd_node *n,
                                     const struct fsd_node *s) {
  return successor(n, s, 1, 0);
}

/* Builds the new path of every node below from (to + the rest of its old
 * path), in pre-order, into a heap array. NULL on allocation failure or a
 * path too long (*err says which). */
static char **new_paths(struct fsd_node *from, const char *to, size_t to_len,
                        size_t *count, int *err) {
  size_t n = 0, i = 0;
  char **v;

  for (struct fsd_node *c = from; c != NULL; c = subtree_next(c, from))
    n++;
  v = fsd_calloc(n, sizeof(*v));
  *err = UV_ENOMEM;
  if (v == NULL)
    return NULL;
  for (struct fsd_node *c = from; c != NULL; c = subtree_next(c, from), i++) {
    size_t rest = c->path_len - from->path_len;

    if (to_len + rest > FSP_PATH_MAX)
      *err = UV_ENAMETOOLONG;
    else
      v[i] = fsd_malloc(to_len + rest + 1);
    if (v[i] == NULL) {
      for (size_t k = 0; k < i; k++)
        fsd_free(v[k]);
      fsd_free(v);
      return NULL;
    }
    memcpy(v[i], to, to_len);
    memcpy(v[i] + to_len, c->path + from->path_len, rest + 1);
  }
  *count = n;
  return v;
}

/* Moves a subtree; see treereg.h. */
int fsd_treereg_rename(struct fsd_treereg *reg, const char *from,
                       size_t from_len, const char *to, size_t to_len,
                       fsd_treereg_drop_fn *drop, void *arg) {
  struct fsd_node *src = fsd_treereg_get(reg, from, from_len);
  struct fsd_node *parent, *old;
  size_t count = 0, i = 0;
  char **paths;
  int err;

  if (src == NULL)
    return UV_ENOENT;
  if (src == reg->root || to_len == 0)
    return UV_EINVAL;
  if (from_len == to_len && memcmp(from, to, to_len) == 0)
    return 0;
  /* Into itself, or onto the folder that holds it. */
  if (fsp_path_within(to, to_len, from, from_len) ||
      fsp_path_within(from, from_len, to, to_len))
    return UV_EINVAL;
  parent = fsd_treereg_get(reg, to, parent_len(to, to_len));
  if (parent == NULL)
    return UV_ENOENT;
  if (parent->type != FSP_TYPE_FOLDER)
    return UV_ENOTDIR;
  paths = new_paths(src, to, to_len, &count, &err);
  if (paths == NULL)
    return err;
  old = fsd_treereg_get(reg, to, to_len);
  if (old != NULL)
    fsd_treereg_remove(reg, to, to_len, drop, arg);
  cursors_leave(reg, src, 0);
  /* Rehash under the new paths, then hang the subtree in its new folder. */
  for (struct fsd_node *c = src; c != NULL; c = subtree_next(c, src), i++) {
    hash_remove(reg, c);
    fsd_free(c->path);
    c->path = paths[i];
    c->path_len = (uint16_t)strlen(paths[i]);
    c->hash = fsd_fnv1a(c->path, c->path_len);
    hash_insert(reg, c);
  }
  fsd_free(paths);
  unlink_child(src);
  link_child(parent, src);
  src->gen = ++reg->gen;
  return 0;
}

/* Frees every node; see treereg.h. */
void fsd_treereg_free(struct fsd_treereg *reg) {
  if (reg->root == NULL)
    return;
  while (reg->root->child != NULL)
    drop_subtree(reg, reg->root->child, NULL, NULL);
  free_node(reg->root);
  fsd_free(reg->buckets);
  memset(reg, 0, sizeof(*reg));
}

/* Opens a walk; see treereg.h. */
int fsd_treereg_walk_open(struct fsd_treereg *reg, struct fsd_tree_cursor *c,
                          const char *path, size_t len, int recursive) {
  struct fsd_node *top = fsd_treereg_get(reg, path, len);

  memset(c, 0, sizeof(*c));
  if (top == NULL)
    return UV_ENOENT;
  if (top->type != FSP_TYPE_FOLDER)
    return UV_ENOTDIR;
  c->top = top;
  c->at = top->child;
  c->recursive = recursive;
  c->next_cursor = reg->cursors;
  reg->cursors = c;
  return 0;
}

/* One step of a walk; see treereg.h. */
const struct fsd_node *fsd_treereg_walk_next(struct fsd_treereg *reg,
                                             struct fsd_tree_cursor *c) {
  struct fsd_node *n = c->at;

  (void)reg;
  if (n != NULL)
    c->at = successor(n, c->top, c->recursive, 0);
  return n;
}

/* Closes a walk; see treereg.h. */
void fsd_treereg_walk_close(struct fsd_treereg *reg,
                            struct fsd_tree_cursor *c) {
  for (struct fsd_tree_cursor **pp = &reg->cursors; *pp != NULL;
       pp = &(*pp)->next_cursor)
    if (*pp == c) {
      *pp = c->next_cursor;
      break;
    }
  c->top = c->at = NULL;
}
