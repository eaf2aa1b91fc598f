/* fsc small files: one blocking call per file, for the threadpool. See
 * store.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_TMPFILE, getrandom */
#endif
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "path.h"

static struct fsc_store_res res(int err, enum fsc_store_step step) {
  struct fsc_store_res r = {err, step};
  return r;
}

/* Writes all of data to fd. Returns 0 or a negative errno (ENOSPC when the
 * file system takes nothing more without saying why). */
static int write_all(int fd, const uint8_t *data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      return -ENOSPC;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* What is at target, without following a link: 0 (nothing, or a regular
 * file that may be replaced), or the step that says why it is left alone. */
static enum fsc_store_step in_the_way(const char *target) {
  struct stat st;
  if (lstat(target, &st) != 0 || S_ISREG(st.st_mode))
    return FSC_STEP_NONE;
  return S_ISDIR(st.st_mode) ? FSC_STEP_FOLDER : FSC_STEP_SPECIAL;
}

/* Fills the XXXXXX at the end of tmpl with random letters. */
static void fill_random(char *tmpl) {
  static const char abc[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t n = strlen(tmpl);
  unsigned char rnd[6];
  if (n < 6 || getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
    memset(rnd, (int)(n + (size_t)getpid()), sizeof rnd);
  for (size_t i = 0; i < 6; i++)
    tmpl[n - 6 + i] = abc[rnd[i] % (sizeof abc - 1)];
}

/* Something is at target: when it is a regular file, puts the file behind
 * fd (given a hidden temporary name beside target first) or, fd < 0, the
 * file at from in its place with rename(). On failure the temporary name
 * made here is gone again. */
static struct fsc_store_res replace(const char *target, int fd,
                                    const char *from) {
  char tmpl[PATH_MAX], proc[64];
  enum fsc_store_step why = in_the_way(target);
  if (why != FSC_STEP_NONE)
    return res(UV_EEXIST, why);
  if (fd < 0)
    return rename(from, target) == 0 ? res(0, FSC_STEP_NONE)
                                     : res(-errno, FSC_STEP_RENAME);
  if (fsc_temp_template(tmpl, sizeof tmpl, target) < 0)
    return res(UV_ENAMETOOLONG, FSC_STEP_CREATE);
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  for (int tries = 0;; tries++) {
    fill_random(tmpl);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, tmpl, AT_SYMLINK_FOLLOW) == 0)
      break;
    if (errno != EEXIST || tries == 100)
      return res(-errno, FSC_STEP_CREATE);
  }
  if (rename(tmpl, target) != 0) {
    int err = -errno;
    unlink(tmpl);
    return res(err, FSC_STEP_RENAME);
  }
  return res(0, FSC_STEP_NONE);
}

struct fsc_store_res fsc_store_small_named(const char *target,
                                           const uint8_t *data, size_t len,
                                           unsigned mode) {
  char tmpl[PATH_MAX];
  int fd = -1;
  if (fsc_temp_template(tmpl, sizeof tmpl, target) < 0)
    return res(UV_ENAMETOOLONG, FSC_STEP_CREATE);
  for (int tries = 0; fd < 0; tries++) {
    fill_random(tmpl);
    fd = open(tmpl, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd < 0 && (errno != EEXIST || tries == 100))
      return res(-errno, FSC_STEP_CREATE);
  }
  int err = write_all(fd, data, len);
  /* Some file systems report write errors only at close. */
  if (close(fd) != 0 && err == 0)
    err = -errno;
  struct fsc_store_res r = res(err, FSC_STEP_WRITE);
  if (err == 0)
    r = replace(target, -1, tmpl);
  if (r.err != 0)
    unlink(tmpl);
  return r;
}

struct fsc_store_res fsc_store_small(const char *target, const uint8_t *data,
                                     size_t len, unsigned mode) {
  char dir[PATH_MAX], proc[64];
  const char *slash = strrchr(target, '/');
  size_t dlen = slash == NULL ? 0 : (size_t)(slash - target);
  if (slash == target)
    dlen = 1; /* the root folder */
  if (dlen >= sizeof dir)
    return res(UV_ENAMETOOLONG, FSC_STEP_CREATE);
  if (dlen == 0)
    snprintf(dir, sizeof dir, ".");
  else {
    memcpy(dir, target, dlen);
    dir[dlen] = '\0';
  }
  int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
  if (fd < 0) {
    /* No O_TMPFILE here (an old kernel or a file system without it). */
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
      return fsc_store_small_named(target, data, len, mode);
    return res(-errno, FSC_STEP_CREATE);
  }
  /* An unnamed file: whatever fails from here on leaves nothing behind. */
  int err = write_all(fd, data, len);
  if (err != 0) {
    close(fd);
    return res(err, FSC_STEP_WRITE);
  }
  /* Linked only when nothing is at target (linkat never follows a link
   * there): the usual case of a fresh folder costs no stat. */
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  struct fsc_store_res r = res(0, FSC_STEP_NONE);
  if (linkat(AT_FDCWD, proc, AT_FDCWD, target, AT_SYMLINK_FOLLOW) != 0) {
    if (errno == EEXIST)
      r = replace(target, fd, NULL);
    else {
      /* No /proc to link through, or a file system that links no unnamed
       * file: the named way, which also says what a real error is. */
      close(fd);
      return fsc_store_small_named(target, data, len, mode);
    }
  }
  if (close(fd) != 0 && r.err == 0) {
    r = res(-errno, FSC_STEP_WRITE);
    unlink(target);
  }
  return r;
}

struct fsc_store_res fsc_load_small(const char *path, int nofollow,
                                    uint8_t *buf, size_t cap, uint64_t *size,
                                    unsigned *mode, size_t *got, int *fd) {
  struct stat st;
  *got = 0;
  *fd = open(path, O_RDONLY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
  if (*fd < 0)
    return res(-errno, FSC_STEP_OPEN);
  if (fstat(*fd, &st) != 0) {
    int err = -errno;
    close(*fd);
    *fd = -1;
    return res(err, FSC_STEP_OPEN);
  }
  *size = (uint64_t)st.st_size;
  *mode = (unsigned)st.st_mode;
  if (!S_ISREG(st.st_mode) || *size > cap)
    return res(0, FSC_STEP_NONE); /* the caller goes on with *fd */
  while (*got < *size) {
    ssize_t n = read(*fd, buf + *got, (size_t)*size - *got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = -errno;
      close(*fd);
      *fd = -1;
      return res(err, FSC_STEP_READ);
    }
    if (n == 0)
      break; /* it shrank: the caller says so */
    *got += (size_t)n;
  }
  close(*fd);
  *fd = -1;
  return res(0, FSC_STEP_NONE);
}
