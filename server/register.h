/* The register: fsd's in-memory index of the regular files below its root,
 * by full path (a name for a file directly in the root), with the version
 * of each. The tree register (treereg.h, in the context beside it) holds
 * the folders and the links between entries; this map keeps what tells one
 * version of a file from another.
 *
 * A chained hash map from path to (size, mtime_ns, inode, ctime). LIST and STAT
 * are answered from it without touching the disk. It knows nothing of I/O; the
 * server keeps it current from its own PUT and DELETE and from what the
 * folder watcher confirms. */
#ifndef FSD_REGISTER_H
#define FSD_REGISTER_H

#include <stddef.h>
#include <stdint.h>

/* What tells one version of a file from another. Size and mtime are not
 * enough: a file system's clock ticks coarsely, so two replaces of a name
 * with the same size in one tick look alike. The inode (a replace is a new
 * file) and the ctime (a write in place moves it) tell them apart. */
struct fsd_stamp {
  uint64_t size;    /* file size in bytes */
  int64_t mtime_ns; /* modification time, ns since the epoch */
  uint64_t ino;     /* inode number, 0 when unknown */
  int64_t ctime_ns; /* status change time, 0 when unknown */
};

struct fsd_file {
  struct fsd_file *next; /* next in the hash chain */
  uint64_t size;         /* file size in bytes */
  int64_t mtime_ns;      /* modification time, ns since the epoch */
  uint64_t ino;          /* inode number (0: unknown) */
  int64_t ctime_ns;      /* status change time (0: unknown) */
  uint64_t gen;          /* register generation of the last change */
  uint32_t hash;         /* hash of the name, kept to speed up resizes */
  uint16_t name_len;     /* bytes in name */
  char name[];           /* not NUL-terminated */
};

struct fsd_register {
  struct fsd_file **buckets; /* nbuckets chains */
  size_t nbuckets;           /* always a power of two */
  size_t count;              /* files in the register */
  uint64_t gen;              /* bumped on every change */
};

/* Initialises an empty register. Returns 0 or UV_ENOMEM. */
int fsd_register_init(struct fsd_register *reg);

/* Frees every entry and the bucket array. */
void fsd_register_free(struct fsd_register *reg);

/* Looks up name[0..len). Returns the entry (owned by the register, valid until
 * the next change) or NULL. */
struct fsd_file *fsd_register_get(const struct fsd_register *reg,
                                  const char *name, size_t len);

/* Inserts or updates name[0..len) with the version st describes. Returns 1
 * when the name was added, 2 when an existing entry changed, 0 when nothing
 * changed (the same size, mtime, inode and ctime), or UV_ENOMEM / UV_EINVAL
 * (len 0 or over FSP_PATH_MAX). These match FSP_EV_ADDED and FSP_EV_REPLACED.
 */
int fsd_register_put(struct fsd_register *reg, const char *name, size_t len,
                     const struct fsd_stamp *st);

/* fsd_register_put() of a version known only by its size and mtime (inode
 * and ctime unknown, 0). */
int fsd_register_set(struct fsd_register *reg, const char *name, size_t len,
                     uint64_t size, int64_t mtime_ns);

/* Removes name[0..len). Returns 1 when it was there, 0 when not. */
int fsd_register_remove(struct fsd_register *reg, const char *name, size_t len);

/* Calls fn(arg, file) for every entry, in unspecified order, until fn returns
 * non-zero (which is then returned). fn must not change the register. */
int fsd_register_each(const struct fsd_register *reg,
                      int (*fn)(void *arg, const struct fsd_file *f),
                      void *arg);

/* Incremental walk, for answers sent over many callbacks: visits the
 * entries of one bucket and returns the cursor for the next call, 0 when the
 * walk is complete (start with 0). The cursor counts in reversed bit order
 * (as redis's dictScan does), so an entry present for the whole walk is
 * visited exactly once even when the map grows between calls; entries added
 * or removed meanwhile may or may not be visited. */
uint64_t fsd_register_scan(const struct fsd_register *reg, uint64_t cursor,
                           int (*fn)(void *arg, const struct fsd_file *f),
                           void *arg);

#endif /* FSD_REGISTER_H */
