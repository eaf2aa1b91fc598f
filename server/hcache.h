/* The hash cache: the whole-file hashes of the files served lately, so that
 * a GET of an unchanged file sends its END hash without reading the file
 * (its payload then goes out with sendfile() straight from the page cache).
 * A file is the same file while its device, inode, size, mtime and ctime
 * are. Pure: the caller passes the clock. */
#ifndef FSD_HCACHE_H
#define FSD_HCACHE_H

#include <stdint.h>

/* Files whose hash is remembered. A handful of hot files is the case it
 * serves; a miss costs only the hashing the GET would do anyway. */
#define FSD_HCACHE_SLOTS 64u
/* File times tick coarsely (a few ms), so a file changed twice within one
 * tick keeps its times. Like git's "racily clean" entries, a file changed
 * this recently (in ns) is not cached. */
#define FSD_HCACHE_RACY_NS 2000000000

/* What identifies one version of a file. */
struct fsd_file_id {
  uint64_t dev, ino; /* the inode */
  uint64_t size;     /* bytes */
  int64_t mtime_ns;  /* data changed */
  int64_t ctime_ns;  /* data or inode changed */
};

struct fsd_hcache {
  struct fsd_hcache_entry {
    struct fsd_file_id
        id;        /* the file version hashed; size 0 and ino 0 unused */
    uint64_t hash; /* XXH3-64 of all its bytes */
  } slot[FSD_HCACHE_SLOTS];
  unsigned next; /* slot to replace next (round robin) */
};

/* Makes hc empty. */
void fsd_hcache_init(struct fsd_hcache *hc);

/* Looks up the file version id. Returns 1 and sets *hash when its hash is
 * known, 0 when not. */
int fsd_hcache_find(const struct fsd_hcache *hc, const struct fsd_file_id *id,
                    uint64_t *hash);

/* Remembers hash for the file version id, replacing the oldest entry,
 * unless the file changed within FSD_HCACHE_RACY_NS before now_ns (then
 * nothing is kept). Returns 1 when kept, 0 when not. */
int fsd_hcache_put(struct fsd_hcache *hc, const struct fsd_file_id *id,
                   uint64_t hash, int64_t now_ns);

#endif /* FSD_HCACHE_H */
