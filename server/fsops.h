/* Blocking file system helpers of fsd. They run on threadpool workers (or
 * before the loop starts), never on the loop thread while it serves. Every
 * path is one file name relative to the root directory's fd, checked with
 * fsp_name_check() before it gets here. Errors are negative UV_E* codes. */
#ifndef FSD_FSOPS_H
#define FSD_FSOPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Prefix of fsd's temp files: hidden, so never listed or served. */
#define FSD_TEMP_PREFIX ".fsd-tmp-"
/* Room for a temp file name with its NUL. */
#define FSD_TEMP_NAME_LEN 32u

/* Opens (creating it first when missing, one level only) the root directory.
 * Returns the fd (O_DIRECTORY, close-on-exec) or a negative UV_E* code. */
int fsd_root_open(const char *path);

/* Opens name for reading beneath rootfd: openat2 with RESOLVE_BENEATH,
 * RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS, or openat with O_NOFOLLOW on
 * kernels without openat2. Refuses anything but a regular file, and never
 * blocks on a FIFO. On success returns the fd and fills *st. Errors:
 * UV_ENOENT (also for symlinks and non-regular files) or another UV_E*. */
int fsd_open_file(int rootfd, const char *name, struct stat *st);

/* lstat of name beneath rootfd. Returns 0 and fills size and mtime when it is
 * a regular file, UV_ENOENT when it is absent or not a regular file. */
int fsd_stat_file(int rootfd, const char *name, uint64_t *size,
                  int64_t *mtime_ns);

/* Modification time of st in ns since the epoch. */
int64_t fsd_mtime_ns(const struct stat *st);

/* Creates a new empty temp file with a random hidden name beneath rootfd.
 * Writes the name (NUL-terminated) to name_out, which has FSD_TEMP_NAME_LEN
 * bytes. Returns the fd (write-only) or a negative UV_E* code. */
int fsd_temp_create(int rootfd, char *name_out);

struct iovec;

/* Writes the n buffers of iov one after the other at offset off of fd
 * (pwritev, repeated after a short write). iov may be changed. Returns the
 * bytes written (all of them) or a negative UV_E* code; UV_ENOSPC when the
 * file system took nothing. */
ssize_t fsd_write_at(int fd, struct iovec *iov, int n, uint64_t off);

/* Sets aside size bytes of disk for fd from offset 0 without changing its
 * size (fallocate FALLOC_FL_KEEP_SIZE), so that the file system allocates
 * an upload's blocks at once instead of page by page as they are written.
 * Returns 0 (also where the file system cannot do it), UV_ENOSPC when the
 * space is not there, or another negative UV_E* code. */
int fsd_reserve(int fd, uint64_t size);

/* Asks the kernel to start writing the dirty pages of len bytes at off of
 * fd to the disk, without waiting for the writes to finish
 * (sync_file_range(SYNC_FILE_RANGE_WRITE); it may still wait for room in
 * the disk's queue). Returns 0 or a negative UV_E* code. */
int fsd_writeback_start(int fd, uint64_t off, uint64_t len);

/* Flushes fd to disk (when durable is set), then renames temp to name
 * beneath rootfd: replacing what is there, or with no_clobber failing with
 * UV_EEXIST when name exists (renameat2 RENAME_NOREPLACE, or link+unlink
 * where the file system lacks it). Fills *st from fd after the move. On
 * failure the temp is removed. Never closes fd. Returns 0 or a negative
 * UV_E* code. */
int fsd_temp_commit(int rootfd, int fd, const char *temp, const char *name,
                    int no_clobber, int durable, struct stat *st);

/* One regular file found by fsd_scan(). */
struct fsd_scan_entry {
  uint64_t size;
  int64_t mtime_ns;
  uint16_t name_len;
  char name[256]; /* NUL-terminated */
};

/* A scan result: a heap array, freed with fsd_scan_free(). */
struct fsd_scan {
  struct fsd_scan_entry *v;
  size_t n;
  size_t cap;
  int removed_temps; /* stale temp files removed (when asked to) */
};

/* Reads the root: every regular file with a valid name (dotfiles, symlinks
 * and anything else skipped). With remove_temps, also deletes FSD_TEMP_PREFIX
 * files left by a crash. Returns 0 or a negative UV_E* code. */
int fsd_scan_dir(int rootfd, int remove_temps, struct fsd_scan *out);

/* Frees a scan result. */
void fsd_scan_free(struct fsd_scan *sc);

/* The wire status for a UV_E* code from the functions above: NOT_FOUND,
 * EXISTS, NO_SPACE or IO. */
uint16_t fsd_status_from_uv(int err);

#endif /* FSD_FSOPS_H */
