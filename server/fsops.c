/* Blocking file system helpers; see fsops.h. */
#define _GNU_SOURCE
#include "fsops.h"

#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fsproto/fsproto.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "space.h"

/* Opens the root directory; see fsops.h. */
int fsd_root_open(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0 && errno == ENOENT) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return -errno;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  return fd < 0 ? -errno : fd;
}

/* Opens a file beneath the root; see fsops.h. */
int fsd_open_file(int rootfd, const char *name, struct stat *st) {
  /* O_NONBLOCK: a FIFO planted in the root must not hang a worker. */
  int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
  static int no_openat2;
  int fd = -1;

  if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    fd = (int)syscall(SYS_openat2, rootfd, name, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS)
      __atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
  }
  if (__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
    /* Without openat2, a path is opened one component at a time, none of
     * them a link (tree.c). */
    if (strchr(name, '/') != NULL) {
      fd = fsd_tree_open(rootfd, name, O_RDONLY | O_NONBLOCK);
      if (fd < 0)
        return fd == UV_ENOTDIR ? UV_ENOENT : fd;
    } else {
      fd = openat(rootfd, name, flags);
    }
  }
  if (fd < 0)
    return errno == ELOOP || errno == ENOTDIR || errno == EXDEV ? UV_ENOENT
                                                                : -errno;
  if (fstat(fd, st) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  if (!S_ISREG(st->st_mode)) {
    close(fd);
    return UV_ENOENT;
  }
  return fd;
}

/* Modification time in ns; see fsops.h. */
static int64_t timespec_ns(const struct timespec *ts) {
  return (int64_t)ts->tv_sec * FSD_NS_PER_S + (int64_t)ts->tv_nsec;
}

int64_t fsd_mtime_ns(const struct stat *st) {
  return timespec_ns(&st->st_mtim);
}

/* Status change time in ns; see fsops.h. */
int64_t fsd_ctime_ns(const struct stat *st) {
  return timespec_ns(&st->st_ctim);
}

/* The wall clock in ns; see fsops.h. */
int64_t fsd_now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return timespec_ns(&ts);
}

/* The version st describes; see fsops.h. */
void fsd_stamp_of(const struct stat *st, struct fsd_stamp *out) {
  out->size = (uint64_t)st->st_size;
  out->mtime_ns = fsd_mtime_ns(st);
  out->ino = (uint64_t)st->st_ino;
  out->ctime_ns = fsd_ctime_ns(st);
}

/* Looks at a name being replaced at most this often before giving up. */
#define STAT_TRIES 64

/* Runs fn on the folder that holds path and path's last name, that folder
 * opened beneath the root with no link on the way (tree.c): a *at() call
 * on a path would follow a link in its middle. A one-name path runs on
 * rootfd itself. */
static int in_parent(int rootfd, const char *path,
                     int (*fn)(int dirfd, const char *leaf, void *arg),
                     void *arg) {
  const char *leaf;
  int dirfd, r;

  if (strchr(path, '/') == NULL)
    return fn(rootfd, path, arg);
  dirfd = fsd_tree_open_parent(rootfd, path, &leaf);
  if (dirfd < 0)
    return dirfd == UV_ENOTDIR ? UV_ENOENT : dirfd;
  r = fn(dirfd, leaf, arg);
  close(dirfd);
  return r;
}

static int stat_leaf(int dirfd, const char *name, void *arg);

/* lstat of a file beneath the root; see fsops.h. */
int fsd_stat_file(int rootfd, const char *name, struct fsd_stamp *out) {
  return in_parent(rootfd, name, stat_leaf, out);
}

static int stat_leaf(int rootfd, const char *name, void *arg) {
  struct fsd_stamp *out = arg;
  struct stat st, again;
  int tries = 0;

  /* A stat that races with a rename over the name can find the file being
   * replaced with its ctime already moved by the unlink (and its link count
   * dropped a moment later): a version the name never held, which the
   * register would take for a change. Two looks in a row that agree, on a
   * file still linked, cannot both fall in that moment. */
  if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT || errno == ENOTDIR ? UV_ENOENT : -errno;
  for (;;) {
    if (fstatat(rootfd, name, &again, AT_SYMLINK_NOFOLLOW) != 0)
      return errno == ENOENT || errno == ENOTDIR ? UV_ENOENT : -errno;
    if (st.st_nlink != 0 && again.st_nlink != 0 && st.st_ino == again.st_ino &&
        st.st_mode == again.st_mode &&
        fsd_ctime_ns(&st) == fsd_ctime_ns(&again))
      break;
    st = again;
    if (++tries == STAT_TRIES)
      return UV_EAGAIN;
  }
  if (!S_ISREG(again.st_mode))
    return UV_ENOENT;
  fsd_stamp_of(&again, out);
  return 0;
}

/* The next temp name's number: random at the first call, then a step
 * that visits every 64-bit value before one comes again. Names need only
 * be unlikely to be taken (O_EXCL tells), not unguessable: a system call
 * per upload for fresh randomness buys nothing. */
static uint64_t temp_number(void) {
  static uint64_t next;
  static int seeded;
  uint64_t n;

  if (!__atomic_load_n(&seeded, __ATOMIC_ACQUIRE)) {
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
      rnd = (uint64_t)rand() << 32 ^ (uint64_t)rand() ^ (uint64_t)getpid();
    /* Threads racing here each add their own seed: still distinct. */
    __atomic_fetch_add(&next, rnd, __ATOMIC_RELAXED);
    __atomic_store_n(&seeded, 1, __ATOMIC_RELEASE);
  }
  n = __atomic_fetch_add(&next, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
  return n;
}

/* Creates a temp file; see fsops.h. */
int fsd_temp_create(int rootfd, char *name_out) {
  for (int tries = 0; tries < 8; tries++) {
    uint64_t rnd = temp_number();
    int fd;

    snprintf(name_out, FSD_TEMP_NAME_LEN, "%s%016llx", FSD_TEMP_PREFIX,
             (unsigned long long)rnd);
    fd = openat(rootfd, name_out,
                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0)
      return fd;
    if (errno != EEXIST)
      return -errno;
  }
  return UV_EEXIST;
}

/* Writes gathered buffers at an offset; see fsops.h. */
ssize_t fsd_write_at(int fd, struct iovec *iov, int n, uint64_t off) {
  uint64_t start = off;
  ssize_t w;

  while (n > 0) {
    if (iov->iov_len == 0) {
      iov++;
      n--;
      continue;
    }
    w = pwritev(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    if (w == 0)
      return UV_ENOSPC;
    off += (uint64_t)w;
    /* Skip what was written: whole buffers, then part of the next. */
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (w > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return (ssize_t)(off - start);
}

/* Sets aside the blocks of an upload; see fsops.h. */
int fsd_reserve(int fd, uint64_t off, uint64_t len) {
  if (len == 0)
    return 0;
  if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
    return 0;
  if (errno == EOPNOTSUPP || errno == ENOSYS)
    return 0;
  return -errno;
}

/* Starts the writeback of a range; see fsops.h. */
int fsd_writeback_start(int fd, uint64_t off, uint64_t len) {
  if (len == 0)
    return 0;
  if (sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE) != 0)
    return -errno;
  return 0;
}

/* Flushes a file or folder to disk; see fsops.h. */
int fsd_flush_fd(int fd) {
  return fsync(fd) == 0 ? 0 : -errno;
}

/* Moves a finished temp file into place; see fsops.h. */
int fsd_temp_commit(int rootfd, int fd, const char *temp, const char *name,
                    int no_clobber, struct stat *st) {
  int err = 0;

  if (no_clobber) {
    if (renameat2(rootfd, temp, rootfd, name, RENAME_NOREPLACE) != 0) {
      if (errno != EINVAL && errno != ENOSYS) {
        err = -errno;
        goto fail;
      }
      /* No RENAME_NOREPLACE here: link(2) fails on an existing name too. */
      if (linkat(rootfd, temp, rootfd, name, 0) != 0) {
        err = -errno;
        goto fail;
      }
      unlinkat(rootfd, temp, 0);
    }
  } else if (renameat(rootfd, temp, rootfd, name) != 0) {
    err = -errno;
    goto fail;
  }
  if (fstat(fd, st) != 0)
    memset(st, 0, sizeof(*st));
  return 0;

fail:
  unlinkat(rootfd, temp, 0);
  return err;
}

static int scan_push(struct fsd_scan *sc, const char *name, size_t len,
                     const struct stat *st) {
  struct fsd_scan_entry *e;

  if (sc->n == sc->cap) {
    size_t cap = sc->cap != 0 ? sc->cap * 2 : 64;
    struct fsd_scan_entry *v = realloc(sc->v, cap * sizeof(*v));
    if (v == NULL)
      return UV_ENOMEM;
    sc->v = v;
    sc->cap = cap;
  }
  e = &sc->v[sc->n];
  e->name = malloc(len + 1);
  if (e->name == NULL)
    return UV_ENOMEM;
  sc->n++;
  fsd_stamp_of(st, &e->st);
  e->type = S_ISDIR(st->st_mode) ? FSP_TYPE_FOLDER : FSP_TYPE_FILE;
  if (e->type == FSP_TYPE_FOLDER)
    e->st.size = 0;
  e->name_len = (uint16_t)len;
  memcpy(e->name, name, len);
  e->name[len] = '\0';
  return 0;
}

static int scan_visit(void *arg, const char *path, size_t len,
                      const struct stat *st) {
  return scan_push(arg, path, len, st);
}

/* Removes the temp files a crash left in the folder path; returns how
 * many. */
static int remove_temps_in(int rootfd, const char *path) {
  int dfd = fsd_tree_open(rootfd, path, O_RDONLY | O_DIRECTORY);
  struct dirent *de;
  int n = 0;
  DIR *d;

  if (dfd < 0)
    return 0;
  d = fdopendir(dfd);
  if (d == NULL) {
    close(dfd);
    return 0;
  }
  while ((de = readdir(d)) != NULL)
    if (strncmp(de->d_name, FSD_TEMP_PREFIX, strlen(FSD_TEMP_PREFIX)) == 0 &&
        unlinkat(dfd, de->d_name, 0) == 0)
      n++;
  closedir(d);
  return n;
}

/* Reads the whole tree; see fsops.h. */
int fsd_scan_tree(int rootfd, int remove_temps, struct fsd_scan *out) {
  int err = fsd_scan_dir(rootfd, remove_temps, out);

  if (err != 0)
    return err;
  /* The root's files again, with the folders and everything below. */
  for (size_t i = 0; i < out->n; i++)
    free(out->v[i].name);
  out->n = 0;
  err = fsd_tree_scan(rootfd, "", scan_visit, out);
  if (err != 0) {
    fsd_scan_free(out);
    return err;
  }
  /* Uploads go to a temp file in their target's folder. */
  for (size_t i = 0; remove_temps && i < out->n; i++)
    if (out->v[i].type == FSP_TYPE_FOLDER)
      out->removed_temps += remove_temps_in(rootfd, out->v[i].name);
  return 0;
}

/* Reads the root directory; see fsops.h. */
int fsd_scan_dir(int rootfd, int remove_temps, struct fsd_scan *out) {
  int dfd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct dirent *de;
  DIR *d;
  int err = 0;

  memset(out, 0, sizeof(*out));
  if (dfd < 0)
    return -errno;
  d = fdopendir(dfd);
  if (d == NULL) {
    err = -errno;
    close(dfd);
    return err;
  }
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    struct stat st;

    if (remove_temps &&
        strncmp(de->d_name, FSD_TEMP_PREFIX, strlen(FSD_TEMP_PREFIX)) == 0) {
      if (unlinkat(rootfd, de->d_name, 0) == 0)
        out->removed_temps++;
      continue;
    }
    if (fsp_name_check(de->d_name, len) != 0)
      continue; /* dotfiles and names the protocol cannot carry */
    if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
      continue;
    if (fstatat(rootfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode))
      continue;
    err = scan_push(out, de->d_name, len, &st);
    if (err != 0)
      break;
  }
  closedir(d);
  if (err != 0)
    fsd_scan_free(out);
  return err;
}

/* Frees a scan; see fsops.h. */
void fsd_scan_free(struct fsd_scan *sc) {
  for (size_t i = 0; i < sc->n; i++)
    free(sc->v[i].name);
  free(sc->v);
  sc->v = NULL;
  sc->n = sc->cap = 0;
}

/* Maps a UV_E* code to a wire status; see fsops.h. */
uint16_t fsd_status_from_uv(int err) {
  switch (err) {
  case UV_ENOENT:
  case UV_ENOTDIR:
  case UV_ELOOP:
  case UV_EISDIR:
    return FSP_ST_NOT_FOUND;
  case UV_EEXIST:
    return FSP_ST_EXISTS;
  case UV_ENOSPC:
  case -EDQUOT: /* libuv 1.44 has no UV_EDQUOT */
  case UV_EFBIG:
    return FSP_ST_NO_SPACE;
  case UV_EAGAIN:    /* a cluster's log is unreachable */
  case UV_ETIMEDOUT: /* another server held the name too long */
    return FSP_ST_BUSY;
  default:
    return FSP_ST_IO;
  }
}

/* Pages in a range; see fsops.h.
 *
 * readahead(2) only starts the reads: it returns while pages may still be
 * in flight, and a sendfile() that meets such a page would block the loop
 * thread until the disk delivers it. So residency is checked with mincore()
 * on a mapping of the range that is never touched (no page is mapped, no
 * RSS is charged), and only pages not yet up to date are read, one byte
 * each, which waits for their I/O. A cached file costs three system calls
 * per chunk instead of one pread per page. Where mincore() can not tell
 * (no mapping, or the kernel hides residency because we may not write the
 * file), every page is read a byte at a time. */
int fsd_page_in(int fd, uint64_t pos, size_t n) {
  /* One byte per page of the largest range, plus the partial pages at
   * either end, for pages of at least 4 KiB. */
  unsigned char vec[FSD_PAGE_IN_MAX / 4096 + 2];
  uint64_t psz = (uint64_t)sysconf(_SC_PAGESIZE);
  uint64_t start = pos & ~(psz - 1);
  size_t span = (size_t)(pos + n - start);
  size_t pages = (span + psz - 1) / psz;
  unsigned char *v = pages <= sizeof(vec) ? vec : NULL;
  void *map;

  if (n == 0)
    return 0;
  map = v != NULL ? mmap(NULL, span, PROT_READ, MAP_SHARED, fd, (off_t)start)
                  : MAP_FAILED;
  if (map == MAP_FAILED || mincore(map, span, v) != 0) {
    v = NULL;
  } else {
    size_t i;
    for (i = 0; i < pages && (v[i] & 1); i++)
      ;
    if (i == pages) {
      munmap(map, span);
      return 0; /* all resident: the usual case for a file served often */
    }
  }
  if (map != MAP_FAILED)
    munmap(map, span);
  /* Start the reads of the whole range at once, then wait page by page. */
  (void)readahead(fd, (off_t)pos, n);
  for (size_t i = 0; i < pages; i++) {
    uint64_t at = start + i * psz;
    uint8_t b;
    ssize_t k;

    if (v != NULL && (v[i] & 1))
      continue;
    if (at < pos)
      at = pos;
    do
      k = pread(fd, &b, 1, (off_t)at);
    while (k < 0 && errno == EINTR);
    if (k != 1)
      return k < 0 ? -errno : UV_EIO;
  }
  return 0;
}

/* Reads a whole range; see fsops.h. */
int fsd_read_at(int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;

  while (got < n) {
    ssize_t k = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return k < 0 ? -errno : UV_EIO; /* it shrank: changed in place */
    got += (size_t)k;
  }
  return 0;
}

/* Whether an open file changed in place; see fsops.h. */
int fsd_changed_in_place(int fd, const struct stat *st) {
  struct stat now;

  if (fstat(fd, &now) != 0)
    return 0;
  return now.st_size != st->st_size || fsd_mtime_ns(&now) != fsd_mtime_ns(st);
}

static int unlink_leaf(int dirfd, const char *name, void *arg) {
  struct fsd_stamp st;
  int err = stat_leaf(dirfd, name, &st);

  (void)arg;
  if (err == UV_EAGAIN)
    err = 0; /* being replaced by another regular file: unlink that */
  if (err == 0 && unlinkat(dirfd, name, 0) != 0)
    err = -errno;
  return err;
}

/* Unlinks a regular file; see fsops.h. */
int fsd_unlink_file(int rootfd, const char *name) {
  return in_parent(rootfd, name, unlink_leaf, NULL);
}

/* The file system's size and free space; see fsops.h. */
int fsd_disk_space(int rootfd, uint64_t *total, uint64_t *avail) {
  struct statvfs vfs;

  if (fstatvfs(rootfd, &vfs) != 0)
    return -errno;
  *total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
  *avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
  return 0;
}

/* Free bytes, or UINT64_MAX when unknown; see fsops.h. */
uint64_t fsd_free_bytes(int rootfd) {
  uint64_t total, avail;

  return fsd_disk_space(rootfd, &total, &avail) == 0 ? avail : UINT64_MAX;
}

/* Prepares an upload; see fsops.h. */
int fsd_put_prepare(int rootfd, const char *name, int no_clobber,
                    const struct fsd_put_room *room, char *temp,
                    uint64_t *avail) {
  struct stat st;
  int fd, err;

  temp[0] = '\0';
  *avail = UINT64_MAX;
  if (no_clobber && fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return UV_EEXIST;
  /* The size was promised against the last look at the disk; a fresh look
   * must still leave min_free with every promise made by then. */
  if (room->look)
    *avail = fsd_free_bytes(rootfd);
  if (*avail != UINT64_MAX &&
      !fsd_space_fits(*avail, room->reserved, room->min_free, 0))
    return UV_ENOSPC; /* refuse now rather than after the upload */
  fd = fsd_temp_create(rootfd, temp);
  if (fd < 0) {
    temp[0] = '\0';
    return fd;
  }
  /* The first blocks in one go: less work for the writeback. No more than
   * room->first: an announced size sets nothing aside that no data fills
   * (the writer sets more aside as the data comes). */
  err = fsd_reserve(fd, 0, room->first);
  if (err < 0) {
    fsd_temp_drop(rootfd, fd, temp);
    temp[0] = '\0';
    return err;
  }
  return fd;
}

/* Drops a temp file; see fsops.h. */
void fsd_temp_drop(int rootfd, int fd, const char *temp) {
  if (fd >= 0)
    close(fd);
  if (temp[0] != '\0')
    unlinkat(rootfd, temp, 0);
}
