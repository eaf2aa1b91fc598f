/* Paths awaiting the event of our own change.
 *
 * An upload's commit is a rename into its path, which the folder's watch
 * reports as one event. The register learns the new version from the
 * commit itself, so the stat that event would cost (a threadpool job and
 * two lookups per uploaded file) buys nothing. The commit adds its path
 * here just before the rename; the watcher takes one expectation per
 * event and skips the stat for it. Any other change of the path makes an
 * event of its own, which finds no expectation and is looked at as
 * before. An expectation that no event takes (a folder beyond the
 * kernel's watch limit) expires after FSD_EXPECT_MS; the set holds at
 * most FSD_EXPECT_MAX paths. Loop thread only. */
#ifndef FSD_EXPECT_H
#define FSD_EXPECT_H

#include <stddef.h>
#include <stdint.h>

#define FSD_EXPECT_MS 2000u
#define FSD_EXPECT_MAX 4096u
#define FSD_EXPECT_BUCKETS 1024u /* a power of two */

struct fsd_expect_ent;

struct fsd_expect {
  struct fsd_expect_ent *b[FSD_EXPECT_BUCKETS];
  size_t n; /* paths held */
};

/* Initialises e, empty. */
void fsd_expect_init(struct fsd_expect *e);

/* One more event of path[0..len) is ours, as of now (uv_now() ms).
 * Returns 0, or UV_ENOBUFS / UV_ENOMEM when it cannot be held (then the
 * event is looked at as any other). */
int fsd_expect_add(struct fsd_expect *e, const char *path, size_t len,
                   uint64_t now);

/* An event of path came: 1 when it was expected (one expectation is used
 * up), 0 when it must be looked at. */
int fsd_expect_take(struct fsd_expect *e, const char *path, size_t len,
                    uint64_t now);

/* The change did not happen: takes one expectation of path back. Returns
 * 1 when there was one, 0 when an event used it already (that event was
 * somebody else's and went unlooked at: the caller looks now). */
int fsd_expect_drop(struct fsd_expect *e, const char *path, size_t len);

/* Forgets what is older than FSD_EXPECT_MS. */
void fsd_expect_expire(struct fsd_expect *e, uint64_t now);

/* Frees what e holds. */
void fsd_expect_free(struct fsd_expect *e);

#endif /* FSD_EXPECT_H */
