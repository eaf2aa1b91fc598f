/* Blocking file system helpers of fsd. They run on threadpool workers (or
 * before the loop starts), never on the loop thread while it serves. Every
 * path is one file name relative to the root directory's fd, checked with
 * fsp_name_check() before it gets here. Errors are negative UV_E* codes. */
#ifndef FSD_FSOPS_H
#define FSD_FSOPS_H

#include <fsproto/fsproto.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "register.h"

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

/* lstat of name beneath rootfd. Returns 0 and fills *st (size, mtime,
 * inode, ctime) when it is a regular file, UV_ENOENT when it is absent or
 * not a regular file, UV_EAGAIN when no two looks in a row agreed (a
 * rename over the name was in progress: look again later). */
int fsd_stat_file(int rootfd, const char *name, struct fsd_stamp *st);

/* Modification time of st in ns since the epoch. */
int64_t fsd_mtime_ns(const struct stat *st);

/* Status change time of st in ns since the epoch. */
int64_t fsd_ctime_ns(const struct stat *st);

/* Nanoseconds in a second: file times and event times count in ns. */
#define FSD_NS_PER_S 1000000000

/* The wall clock (CLOCK_REALTIME) in ns since the epoch, the clock file
 * times use. */
int64_t fsd_now_ns(void);

/* The version of a file that st describes: size, mtime, inode and ctime. */
void fsd_stamp_of(const struct stat *st, struct fsd_stamp *out);

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

/* Sets aside len bytes of disk for fd from offset off without changing its
 * size (fallocate FALLOC_FL_KEEP_SIZE), so that the file system allocates
 * an upload's blocks in large runs instead of page by page as they are
 * written. Returns 0 (also where the file system cannot do it), UV_ENOSPC
 * when the space is not there, or another negative UV_E* code. */
int fsd_reserve(int fd, uint64_t off, uint64_t len);

/* Asks the kernel to start writing the dirty pages of len bytes at off of
 * fd to the disk, without waiting for the writes to finish
 * (sync_file_range(SYNC_FILE_RANGE_WRITE); it may still wait for room in
 * the disk's queue). Returns 0 or a negative UV_E* code. */
int fsd_writeback_start(int fd, uint64_t off, uint64_t len);

/* Flushes fd, a file's or a folder's, to disk (fsync): its data and what
 * it takes to find them, or for a folder its entries. Returns 0 or a
 * negative UV_E* code. */
int fsd_flush_fd(int fd);

/* Renames temp to name beneath rootfd (the caller flushed fd first when the
 * upload must be durable): replacing what is there, or with no_clobber failing
 * with UV_EEXIST when name exists (renameat2 RENAME_NOREPLACE, or link+unlink
 * where the file system lacks it). Fills *st from fd after the move. On
 * failure the temp is removed. Never closes fd. Returns 0 or a negative
 * UV_E* code. */
int fsd_temp_commit(int rootfd, int fd, const char *temp, const char *name,
                    int no_clobber, struct stat *st);

/* One regular file (or folder, in a scan of the tree) that a scan found. */
struct fsd_scan_entry {
  struct fsd_stamp st; /* its version (a folder's size is 0) */
  uint8_t type;        /* FSP_TYPE_FILE or FSP_TYPE_FOLDER */
  uint16_t name_len;
  char *name; /* its name, or path from the root; NUL-terminated, owned */
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

/* Reads the whole tree below the root: every regular file and folder with
 * a valid path (fsd_tree_scan: no link followed, dot-names skipped), each
 * folder before its contents. With remove_temps, also deletes the
 * FSD_TEMP_PREFIX files left by a crash in every folder. Returns 0 or a
 * negative UV_E* code. */
int fsd_scan_tree(int rootfd, int remove_temps, struct fsd_scan *out);

/* Frees a scan result. */
void fsd_scan_free(struct fsd_scan *sc);

/* Largest range fsd_page_in() checks with one mincore() call; longer
 * ranges are paged in a page at a time. */
#define FSD_PAGE_IN_MAX 1048576u

/* Brings the bytes [pos, pos + n) of fd into the page cache and returns
 * once every page of the range is there (0), or a negative UV_E* code. */
int fsd_page_in(int fd, uint64_t pos, size_t n);

/* Reads exactly n bytes at off of fd into buf (pread, repeated after a
 * short read). Returns 0, UV_EIO when the file ended first (it shrank), or
 * a negative UV_E* code. */
int fsd_read_at(int fd, void *buf, size_t n, uint64_t off);

/* Non-zero when the open file fd was changed in place (written to or
 * truncated, not replaced) since st was taken: its size or mtime moved.
 * (Not its ctime: a replace by rename, which leaves the open file intact,
 * changes the old file's ctime as it drops its link.) */
int fsd_changed_in_place(int fd, const struct stat *st);

/* Removes the regular file name beneath rootfd. Returns 0, UV_ENOENT when
 * there is no such regular file, or another negative UV_E* code. */
int fsd_unlink_file(int rootfd, const char *name);

/* The size and the free space (for an unprivileged user) of the file system
 * of rootfd, in bytes. Returns 0 or a negative UV_E* code. */
int fsd_disk_space(int rootfd, uint64_t *total, uint64_t *avail);

/* The free bytes of rootfd's file system, or UINT64_MAX when unknown. */
uint64_t fsd_free_bytes(int rootfd);

/* The disk room an upload may take (see space.h). */
struct fsd_put_room {
  uint64_t reserved; /* bytes promised to uploads, this one's included */
  uint64_t min_free; /* free bytes to keep */
  uint64_t first;    /* bytes to set aside at once */
  uint8_t look;      /* take a fresh look at the disk (else the last
                        look, recent and roomy, stands) */
};

/* Gets an upload to name ready: refuses with UV_EEXIST when no_clobber and
 * name exists, with UV_ENOSPC when a fresh look at the disk (if room->look)
 * finds that the promised room->reserved bytes would take its free space below
 * room->min_free, else creates a temp file (its name to temp,
 * FSD_TEMP_NAME_LEN bytes) with room->first bytes set aside. *avail gets
 * the free bytes seen (UINT64_MAX when unknown). Returns the temp file's fd
 * or a negative UV_E* code (then no temp file is left and temp is ""). */
int fsd_put_prepare(int rootfd, const char *name, int no_clobber,
                    const struct fsd_put_room *room, char *temp,
                    uint64_t *avail);

/* Closes fd (when >= 0) and removes the temp file temp (when not ""). */
void fsd_temp_drop(int rootfd, int fd, const char *temp);

/* The wire status for a UV_E* code from the functions above: NOT_FOUND,
 * EXISTS, NO_SPACE or IO. */
uint16_t fsd_status_from_uv(int err);

#endif /* FSD_FSOPS_H */
