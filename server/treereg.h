/* The tree register: fsd's in-memory index of the files and folders below
 * its root (protocol.md section 12), the tree-aware successor of
 * register.h.
 *
 * Every entry is a node reachable two ways: by its full path, through a
 * chained hash map, for STAT and for applying changes; and through tree
 * links (parent, first child, siblings), so that LIST of one folder visits
 * only that folder's children and a recursive LIST only that subtree,
 * folders before their contents. The root is a folder node with the empty
 * path. Each folder node has a `watch` slot for the watcher that keeps the
 * register current (inotify and libuv's fs-event do not recurse, so every
 * folder gets a watch of its own); the register never looks inside it, and
 * reports each folder it drops so that its watch can be closed.
 *
 * A LIST answer is sent over many callbacks while the tree changes: a
 * cursor walks it in pre-order and survives any change. Removing or moving
 * the subtree that holds a cursor's next node first moves the cursor past
 * that subtree, so no cursor ever points at freed memory; an entry present
 * for the whole walk is visited exactly once, and entries added, removed or
 * moved meanwhile may or may not be.
 *
 * Pure data structure: no I/O. Errors are negative UV_E* codes. */
#ifndef FSD_TREEREG_H
#define FSD_TREEREG_H

#include <stddef.h>
#include <stdint.h>

struct fsd_node {
  struct fsd_node *hnext;  /* next in the hash chain */
  struct fsd_node *parent; /* the folder holding it; NULL for the root */
  struct fsd_node *child;  /* first entry of a folder, NULL when empty */
  struct fsd_node *next;   /* next entry of the same folder */
  struct fsd_node **pprev; /* the pointer that points at this node */
  void *watch;             /* folders: the watcher's handle, or NULL */
  uint64_t size;           /* files: size in bytes; folders: 0 */
  int64_t mtime_ns;        /* modification time, ns since the epoch */
  uint64_t gen;            /* register generation of the last change */
  uint32_t hash;           /* hash of the path */
  uint32_t nchildren;      /* folders: entries directly inside */
  uint8_t type;            /* FSP_TYPE_FILE or FSP_TYPE_FOLDER */
  uint16_t path_len;       /* bytes in path (at most FSP_PATH_MAX) */
  char *path;              /* full path from the root, NUL-terminated */
};

struct fsd_tree_cursor;

struct fsd_treereg {
  struct fsd_node **buckets;       /* nbuckets chains */
  size_t nbuckets;                 /* a power of two */
  size_t count;                    /* nodes, the root not counted */
  size_t folders;                  /* folder nodes, the root counted */
  uint64_t gen;                    /* bumped on every change */
  struct fsd_node *root;           /* the root folder */
  struct fsd_tree_cursor *cursors; /* open walks, kept safe from changes */
};

/* Initialises a register holding only the root folder. 0 or UV_ENOMEM. */
int fsd_treereg_init(struct fsd_treereg *reg);

/* Frees every node. Cursors must have been closed. */
void fsd_treereg_free(struct fsd_treereg *reg);

/* The node at path[0..len) (len 0: the root), or NULL. Valid until the
 * next change. */
struct fsd_node *fsd_treereg_get(const struct fsd_treereg *reg,
                                 const char *path, size_t len);

/* Records a file or folder at path[0..len) (not the root), whose parent
 * must be a folder in the register. Returns FSP_EV_ADDED (1) when it is
 * new, FSP_EV_REPLACED (2) when a file's size or mtime changed or a
 * folder's mtime did, 0 when nothing changed, or UV_ENOENT (no parent),
 * UV_ENOTDIR (the parent is a file), UV_EEXIST (an entry of the other
 * type is there: remove it first), UV_EINVAL (bad length or type),
 * UV_ENOMEM. */
int fsd_treereg_set(struct fsd_treereg *reg, const char *path, size_t len,
                    uint8_t type, uint64_t size, int64_t mtime_ns);

/* Called for each node a removal or replacement drops, contents before
 * their folder, just before it is freed (close its watch here). */
typedef void fsd_treereg_drop_fn(void *arg, const struct fsd_node *n);

/* Removes path[0..len) and, for a folder, everything below it, calling
 * drop (may be NULL) for each node. Returns the number of nodes removed
 * (0 when path is not there; the root cannot be removed). */
size_t fsd_treereg_remove(struct fsd_treereg *reg, const char *path, size_t len,
                          fsd_treereg_drop_fn *drop, void *arg);

/* Moves the node at from (with its subtree) to the path to, whose parent
 * must be a folder in the register; what was at to is removed first
 * (through drop). Every path below is rewritten. Returns 0 or UV_ENOENT
 * (from, or to's parent, missing), UV_ENOTDIR, UV_EINVAL (a folder into
 * itself, or the root), UV_ENOMEM (then nothing changed). */
int fsd_treereg_rename(struct fsd_treereg *reg, const char *from,
                       size_t from_len, const char *to, size_t to_len,
                       fsd_treereg_drop_fn *drop, void *arg);

/* A walk in pre-order over the folder it was opened on: that folder's
 * entries, and with recursive everything below them. Fields are private. */
struct fsd_tree_cursor {
  struct fsd_tree_cursor *next_cursor; /* in reg->cursors */
  struct fsd_node *top;                /* the folder being listed */
  struct fsd_node *at;                 /* next node to visit, NULL: done */
  int recursive;                       /* descend into folders */
};

/* Opens a walk of the folder at path[0..len) and links it into reg.
 * Returns 0, UV_ENOENT or UV_ENOTDIR (path is a file). */
int fsd_treereg_walk_open(struct fsd_treereg *reg, struct fsd_tree_cursor *c,
                          const char *path, size_t len, int recursive);

/* The next node of the walk (valid until the next change), or NULL when
 * the walk is complete. */
const struct fsd_node *fsd_treereg_walk_next(struct fsd_treereg *reg,
                                             struct fsd_tree_cursor *c);

/* Unlinks the walk from reg. Always call it, complete or not. */
void fsd_treereg_walk_close(struct fsd_treereg *reg, struct fsd_tree_cursor *c);

#endif /* FSD_TREEREG_H */
