/* Disk space promised to uploads in progress. Each upload reserves the size
 * it announced when it starts; the bytes reach the disk as it is written
 * (or set aside with fallocate), and what is left of its reservation is
 * returned when it ends, is dropped or times out. Together the reservations
 * never take the file system's free space below min_free: an upload that
 * would is refused at once (NO_SPACE), however little data it sends.
 *
 * Free space is what statvfs() said at the last look, which runs on the
 * threadpool; bytes our uploads put on disk since are taken off it, so the
 * figure errs on the side of less space until the next look. No I/O. */
#ifndef FSD_SPACE_H
#define FSD_SPACE_H

#include <stdint.h>

struct fsd_space {
  uint64_t min_free; /* bytes kept free (--min-free) */
  uint64_t avail;    /* free bytes: last look, less what we used since */
  uint64_t reserved; /* bytes promised to uploads, not yet on disk */
  uint64_t used;     /* bytes our uploads put on disk, ever (a counter) */
  uint64_t looked;   /* uv_now() of an upload's last fresh look */
};

/* The default --min-free for a file system of total bytes: 1% of it or 256
 * MiB, whichever is larger. */
uint64_t fsd_space_default_min_free(uint64_t total);

/* Initialises s: nothing reserved, avail as given. */
void fsd_space_init(struct fsd_space *s, uint64_t min_free, uint64_t avail);

/* A mark to pass with a look at the file system (see fsd_space_seen). */
uint64_t fsd_space_mark(const struct fsd_space *s);

/* A look at the file system found avail free bytes (UINT64_MAX: the look
 * failed, and nothing changes). mark is what fsd_space_mark() returned
 * before the look started: bytes used since may not show in avail yet, so
 * they are taken off. */
void fsd_space_seen(struct fsd_space *s, uint64_t avail, uint64_t mark);

/* Whether n more bytes can be promised with reserved bytes already
 * promised, avail free and min_free to keep. The test the threadpool makes
 * with a fresh look. Never overflows. */
int fsd_space_fits(uint64_t avail, uint64_t reserved, uint64_t min_free,
                   uint64_t n);

/* Promises n bytes to an upload: 0, or UV_ENOSPC when that would take free
 * space below min_free (nothing is then reserved). */
int fsd_space_reserve(struct fsd_space *s, uint64_t n);

/* n bytes of a reservation reached the disk. */
void fsd_space_used(struct fsd_space *s, uint64_t n);

/* n bytes our uploads had put on disk are free again (a dropped upload's
 * temp file was removed). */
void fsd_space_freed(struct fsd_space *s, uint64_t n);

/* n bytes of a reservation are given back unused (the upload ended). */
void fsd_space_release(struct fsd_space *s, uint64_t n);

/* Parses a size: decimal digits with an optional suffix K, M, G or T
 * (powers of 1024, either case; "KiB" style also accepted), like 512M or
 * 2G. Returns 0 and sets *out, or UV_EINVAL (also on overflow). */
int fsd_parse_size(const char *s, uint64_t *out);

#endif /* FSD_SPACE_H */
