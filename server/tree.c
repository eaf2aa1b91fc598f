/* Blocking helpers for a tree of folders; see tree.h. */
#define _GNU_SOURCE
#include "tree.h"

#include "mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fsproto/fsproto.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Set once openat2() answered ENOSYS: the kernel is older than 5.6. */
static int no_openat2;

/* See tree.h: NULL except in tests. */
void (*fsd_tree__enter_hook)(const char *path);

/* A link met while resolving is reported as absence: links are never
 * served, so to a client there is nothing at that path. EXDEV is what
 * RESOLVE_BENEATH says about an escape, which a checked path cannot ask
 * for; it is absence too. */
static int resolve_err(int e) {
  return e == ELOOP || e == EXDEV ? UV_ENOENT : -e;
}

/* Without openat2: one openat(O_NOFOLLOW) per component, each folder
 * opened with O_DIRECTORY, so no component can be a link either. */
static int open_walk(int dirfd, const char *path, int flags) {
  int cur = dirfd;

  for (;;) {
    const char *slash = strchr(path, '/');
    char name[FSP_NAME_MAX + 1];
    size_t len = slash != NULL ? (size_t)(slash - path) : strlen(path);
    int next;

    if (len > FSP_NAME_MAX) {
      next = -ENAMETOOLONG;
    } else {
      memcpy(name, path, len);
      name[len] = '\0';
      next =
          openat(cur, name,
                 slash != NULL ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                               : flags);
      if (next < 0)
        next = -errno;
    }
    if (cur != dirfd)
      close(cur);
    if (next < 0 || slash == NULL)
      return next;
    cur = next;
    path = slash + 1;
  }
}

/* Opens path beneath dirfd, never through a link. Returns the fd or a
 * negative errno value. */
static int open_beneath(int dirfd, const char *path, int flags) {
  /* openat2() refuses O_PATH with any flag it ignores, such as O_NOCTTY. */
  flags |= O_CLOEXEC | O_NOFOLLOW | ((flags & O_PATH) ? 0 : O_NOCTTY);
  if (path[0] == '\0')
    path = ".";
  if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
    struct open_how how;
    int fd;

    memset(&how, 0, sizeof(how));
    how.flags = (uint64_t)flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    if (fd >= 0 || errno != ENOSYS)
      return fd >= 0 ? fd : -errno;
    __atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
  }
  return open_walk(dirfd, path, flags);
}

/* O_DIRECTORY | O_NOFOLLOW says ENOTDIR both when a component is a file
 * and when the last one is a link. Only the first is NOT_FOLDER; a link is
 * absence. An O_PATH open, which returns the link itself, tells them
 * apart. */
static int why_not_dir(int dirfd, const char *path) {
  int fd = open_beneath(dirfd, path, O_PATH);
  struct stat st;
  int err;

  if (fd < 0)
    return resolve_err(-fd);
  err = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? UV_ENOTDIR : UV_ENOENT;
  close(fd);
  return err;
}

/* Opens a path beneath the root; see tree.h. */
int fsd_tree_open(int rootfd, const char *path, int flags) {
  int fd = open_beneath(rootfd, path, flags);

  if (fd == -ENOTDIR && (flags & O_DIRECTORY))
    return why_not_dir(rootfd, path);
  return fd >= 0 ? fd : resolve_err(-fd);
}

/* Opens the folder holding path; see tree.h. */
int fsd_tree_open_parent(int rootfd, const char *path, const char **leaf) {
  const char *slash = strrchr(path, '/');
  char parent[FSP_PATH_MAX + 1];
  size_t len;

  if (slash == NULL) {
    *leaf = path;
    return fsd_tree_open(rootfd, "", O_RDONLY | O_DIRECTORY);
  }
  len = (size_t)(slash - path);
  if (len > FSP_PATH_MAX)
    return UV_ENAMETOOLONG;
  memcpy(parent, path, len);
  parent[len] = '\0';
  *leaf = slash + 1;
  return fsd_tree_open(rootfd, parent, O_RDONLY | O_DIRECTORY);
}

static int64_t mtime_ns(const struct stat *st) {
  return (int64_t)st->st_mtim.tv_sec * 1000000000 +
         (int64_t)st->st_mtim.tv_nsec;
}

/* Fills *out from st; UV_ENOENT for anything but a file or a folder. */
static int info_of(const struct stat *st, struct fsd_tree_info *out) {
  if (S_ISREG(st->st_mode)) {
    out->type = FSP_TYPE_FILE;
    out->size = (uint64_t)st->st_size;
  } else if (S_ISDIR(st->st_mode)) {
    out->type = FSP_TYPE_FOLDER;
    out->size = 0;
  } else {
    return UV_ENOENT;
  }
  out->mtime_ns = mtime_ns(st);
  out->ino = (uint64_t)st->st_ino;
  return 0;
}

/* lstat of leaf in the folder dfd, as a file or folder. */
static int stat_leaf(int dfd, const char *leaf, struct fsd_tree_info *out) {
  struct stat st;

  if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return -errno;
  return info_of(&st, out);
}

/* Looks a path up; see tree.h. */
int fsd_tree_stat(int rootfd, const char *path, struct fsd_tree_info *out) {
  const char *leaf;
  int dfd = fsd_tree_open_parent(rootfd, path, &leaf);
  int err;

  if (dfd < 0)
    return dfd;
  err = stat_leaf(dfd, leaf, out);
  close(dfd);
  return err;
}

/* mkdir of one folder leaf in dfd. Returns 1 when it made it, 0 when
 * something was already there, or a negative errno value. */
static int make_one(int dfd, const char *leaf, int durable) {
  if (mkdirat(dfd, leaf, 0755) != 0)
    return errno == EEXIST ? 0 : -errno;
  /* The new name lives in dfd: flush dfd for it to survive a crash. */
  if (durable && fsync(dfd) != 0)
    return -errno;
  return 1;
}

/* Creates a folder, with its parents when asked; see tree.h. */
int fsd_tree_mkdir(int rootfd, const char *path, int parents, int durable,
                   size_t *created) {
  size_t len = strlen(path), pos = 0;
  const char *leaf;
  int cur, err = 0;

  *created = len;
  if (!parents) {
    cur = fsd_tree_open_parent(rootfd, path, &leaf);
    if (cur < 0)
      return cur;
    err = make_one(cur, leaf, durable);
    close(cur);
    if (err == 1)
      *created = (size_t)(leaf - path);
    return err == 0 ? UV_EEXIST : err < 0 ? err : 0;
  }
  cur = fsd_tree_open(rootfd, "", O_RDONLY | O_DIRECTORY);
  if (cur < 0)
    return cur;
  for (;;) {
    const char *slash = strchr(path + pos, '/');
    size_t end = slash != NULL ? (size_t)(slash - path) : len;
    char name[FSP_NAME_MAX + 1];
    int next, made;

    if (end - pos > FSP_NAME_MAX) {
      err = UV_ENAMETOOLONG;
      break;
    }
    memcpy(name, path + pos, end - pos);
    name[end - pos] = '\0';
    made = make_one(cur, name, durable);
    if (made < 0) {
      err = made;
      break;
    }
    if (made == 1 && *created == len)
      *created = pos;
    /* Whatever is there now must be a folder reached without a link: a
     * file or a link planted in the way stops the walk here. */
    next = open_beneath(cur, name, O_RDONLY | O_DIRECTORY);
    if (next < 0) {
      err = next == -ENOTDIR || next == -ELOOP
                ? (end == len ? UV_EEXIST : UV_ENOTDIR)
                : resolve_err(-next);
      break;
    }
    close(cur);
    cur = next;
    if (end == len)
      break;
    pos = end + 1;
  }
  close(cur);
  return err;
}

/* Renames when the file system has no RENAME_NOREPLACE: checking first
 * leaves a short window in which a name created by another program can be
 * replaced; fsd's own requests on one name are ordered by the caller. */
static int rename_noreplace_fallback(int fdir, const char *fleaf, int tdir,
                                     const char *tleaf) {
  struct stat st;

  if (fstatat(tdir, tleaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return UV_EEXIST;
  if (errno != ENOENT)
    return -errno;
  return renameat(fdir, fleaf, tdir, tleaf) == 0 ? 0 : -errno;
}

/* The renameat2() step of fsd_tree_rename(), with its error mapping. */
static int rename_leaf(int fdir, const char *fleaf, int tdir, const char *tleaf,
                       int no_replace) {
  struct stat st;
  int err;

  /* Replacing removes what is at `to`: never a link or special file, which
   * fsd leaves alone everywhere. */
  if (!no_replace && fstatat(tdir, tleaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
    return UV_EEXIST;
  if (renameat2(fdir, fleaf, tdir, tleaf, no_replace ? RENAME_NOREPLACE : 0) ==
      0)
    return 0;
  err = -errno;
  if (err == UV_EINVAL && no_replace)
    return rename_noreplace_fallback(fdir, fleaf, tdir, tleaf);
  /* Linux says EEXIST or ENOTEMPTY for a folder onto a non-empty one. */
  if (err == UV_EEXIST && !no_replace)
    return UV_ENOTEMPTY;
  return err;
}

/* Moves a file or folder; see tree.h. */
int fsd_tree_rename(int rootfd, const char *from, const char *to,
                    int no_replace, int durable, struct fsd_tree_info *info) {
  size_t flen = strlen(from), tlen = strlen(to);
  const char *fleaf, *tleaf;
  int fdir, tdir, err;

  if (tlen > flen && fsp_path_within(to, tlen, from, flen))
    return FSD_TREE_EINTOSELF;
  fdir = fsd_tree_open_parent(rootfd, from, &fleaf);
  if (fdir < 0)
    return fdir;
  tdir = fsd_tree_open_parent(rootfd, to, &tleaf);
  if (tdir < 0) {
    close(fdir);
    return tdir;
  }
  err = stat_leaf(fdir, fleaf, info);
  if (err == 0 && !(flen == tlen && memcmp(from, to, flen) == 0)) {
    err = rename_leaf(fdir, fleaf, tdir, tleaf, no_replace);
    if (err == 0 && durable) {
      if (fsync(tdir) != 0 || fsync(fdir) != 0)
        err = -errno;
    }
  }
  close(tdir);
  close(fdir);
  return err;
}

/* The names in folder dfd ("." and ".." left out), read in one go and
 * NUL-separated in a heap buffer, so that the folder can change while the
 * caller works through them. Returns the buffer (*len bytes; fsd_free() it) or
 * NULL with *err set. */
static char *read_names(int dfd, size_t *len, int *err) {
  int fd = dup(dfd);
  size_t cap = 4096, n = 0;
  char *buf = NULL;
  struct dirent *de;
  DIR *d = NULL;

  *err = 0;
  if (fd < 0 || (d = fdopendir(fd)) == NULL) {
    *err = -errno;
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  /* fdopendir() shares the offset with dfd's dup: start at the top. */
  rewinddir(d);
  buf = fsd_malloc(cap);
  while (buf != NULL && (de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name) + 1;

    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (cap - n < l) {
      char *b = fsd_realloc(buf, cap * 2);
      if (b == NULL) {
        fsd_free(buf);
        buf = NULL;
        break;
      }
      buf = b;
      cap *= 2;
    }
    memcpy(buf + n, de->d_name, l);
    n += l;
  }
  if (buf == NULL)
    *err = UV_ENOMEM;
  closedir(d);
  *len = n;
  return buf;
}

/* A path being built during a walk: the start's path, then one name per
 * level. */
struct walk_path {
  char s[FSP_PATH_MAX + 1];
  size_t len;
};

/* Appends "/name" (or "name" at the top); 0 or UV_E2BIG when the result
 * could not travel as a path. Returns the old length in *old. */
static int path_push(struct walk_path *p, const char *name, size_t *old) {
  size_t l = strlen(name), sep = p->len > 0;

  *old = p->len;
  if (p->len + sep + l > FSP_PATH_MAX)
    return UV_E2BIG;
  if (sep)
    p->s[p->len++] = '/';
  memcpy(p->s + p->len, name, l + 1);
  p->len += l;
  return 0;
}

static void path_pop(struct walk_path *p, size_t old) {
  p->len = old;
  p->s[old] = '\0';
}

/* State of one fsd_tree_remove(). */
struct rm {
  struct walk_path p;         /* the entry being worked on */
  fsd_tree_report_fn *report; /* told of each entry */
  void *arg;                  /* for report */
  int durable;                /* fsync folders that lost entries */
  int stopped;                /* report asked to stop */
};

static void rm_tell(struct rm *rm, uint8_t type, int err) {
  if (rm->report != NULL && !rm->stopped &&
      rm->report(rm->arg, rm->p.s, rm->p.len, type, err) != 0)
    rm->stopped = 1;
}

static size_t rm_contents(struct rm *rm, int dfd, int depth, size_t *quiet);

/* Removes the folder name in dfd and everything in it (rm->p names it).
 * Returns 1 when it stayed, 0 when it is gone. */
static int rm_folder(struct rm *rm, int dfd, const char *name, int depth) {
  size_t left, quiet = 0;
  int sub;

  if (depth >= FSD_TREE_MAX_DEPTH) {
    rm_tell(rm, FSP_TYPE_FOLDER, UV_E2BIG);
    return 1;
  }
  if (fsd_tree__enter_hook != NULL)
    fsd_tree__enter_hook(rm->p.s);
  /* Opened beneath dfd without links: a folder swapped for a link since
   * the lstat is refused here, and nothing below it is touched. */
  sub = open_beneath(dfd, name, O_RDONLY | O_DIRECTORY);
  if (sub < 0) {
    /* ENOTDIR: no longer a folder (a link now): absence, as links are. */
    rm_tell(rm, FSP_TYPE_FOLDER,
            sub == -ENOTDIR ? UV_ENOENT : resolve_err(-sub));
    return 1;
  }
  left = rm_contents(rm, sub, depth + 1, &quiet);
  close(sub);
  if (left > 0) {
    /* Say why it stayed, unless what stayed inside was reported. */
    if (quiet == left)
      rm_tell(rm, FSP_TYPE_FOLDER, UV_ENOTEMPTY);
    return 1;
  }
  /* AT_REMOVEDIR never follows a link that replaced the folder. */
  if (unlinkat(dfd, name, AT_REMOVEDIR) != 0) {
    rm_tell(rm, FSP_TYPE_FOLDER, -errno);
    return 1;
  }
  rm_tell(rm, FSP_TYPE_FOLDER, 0);
  return 0;
}

/* Removes one entry name of the folder dfd. Returns 1 when it stayed and
 * was reported, 2 when it stayed silently, 0 when it is gone. */
static int rm_entry(struct rm *rm, int dfd, const char *name, int depth) {
  struct stat st;

  if (fsp_name_check(name, strlen(name)) != 0)
    return 2; /* not ours to name or remove */
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT)
      return 0; /* removed by someone else meanwhile */
    rm_tell(rm, FSP_TYPE_FILE, -errno);
    return 1;
  }
  if (S_ISDIR(st.st_mode))
    return rm_folder(rm, dfd, name, depth);
  if (!S_ISREG(st.st_mode)) {
    rm_tell(rm, FSP_TYPE_FILE, UV_ENOENT); /* a link or special file */
    return 1;
  }
  /* unlinkat() removes a name, never what a link points to. */
  if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT) {
    rm_tell(rm, FSP_TYPE_FILE, -errno);
    return 1;
  }
  rm_tell(rm, FSP_TYPE_FILE, 0);
  return 0;
}

/* Removes what the folder dfd holds. Returns how many entries stayed;
 * *quiet counts those of them that were not reported. */
static size_t rm_contents(struct rm *rm, int dfd, int depth, size_t *quiet) {
  size_t len, left = 0, removed = 0;
  int err;
  char *names = read_names(dfd, &len, &err);

  *quiet = 0;
  if (names == NULL) {
    rm_tell(rm, FSP_TYPE_FOLDER, err);
    return 1;
  }
  for (size_t at = 0; at < len && !rm->stopped;) {
    const char *name = names + at;
    size_t old;
    int r;

    at += strlen(name) + 1;
    if (path_push(&rm->p, name, &old) != 0) {
      left++;
      (*quiet)++; /* a path too long to report */
      continue;
    }
    r = rm_entry(rm, dfd, name, depth);
    path_pop(&rm->p, old);
    left += r != 0;
    *quiet += r == 2;
    removed += r == 0;
  }
  fsd_free(names);
  if (rm->durable && removed > 0)
    fsync(dfd);
  if (rm->stopped && left == 0)
    left = 1;
  return left;
}

/* Removes a file or folder; see tree.h. */
int fsd_tree_remove(int rootfd, const char *path, int recursive, int durable,
                    fsd_tree_report_fn *report, void *arg) {
  struct rm *rm = fsd_malloc(sizeof(*rm));
  struct fsd_tree_info info = {0};
  const char *leaf;
  int pfd, err;

  if (rm == NULL)
    return UV_ENOMEM;
  rm->report = report;
  rm->arg = arg;
  rm->durable = durable;
  rm->stopped = 0;
  rm->p.len = strlen(path);
  if (rm->p.len > FSP_PATH_MAX) {
    fsd_free(rm);
    return UV_ENAMETOOLONG;
  }
  memcpy(rm->p.s, path, rm->p.len + 1);
  pfd = fsd_tree_open_parent(rootfd, path, &leaf);
  if (pfd < 0) {
    fsd_free(rm);
    return pfd;
  }
  err = stat_leaf(pfd, leaf, &info);
  if (err == 0 && info.type == FSP_TYPE_FILE) {
    err = unlinkat(pfd, leaf, 0) == 0 ? 0 : -errno;
  } else if (err == 0 && !recursive) {
    err = unlinkat(pfd, leaf, AT_REMOVEDIR) == 0 ? 0 : -errno;
    if (err == UV_EEXIST)
      err = UV_ENOTEMPTY;
  } else if (err == 0) {
    size_t quiet;
    int sub = open_beneath(pfd, leaf, O_RDONLY | O_DIRECTORY);

    if (sub < 0) {
      err = sub == -ENOTDIR ? UV_ENOENT : resolve_err(-sub);
    } else {
      size_t left = rm_contents(rm, sub, 1, &quiet);
      close(sub);
      if (rm->stopped)
        err = UV_ECANCELED;
      else if (left > 0)
        err = UV_ENOTEMPTY;
      else if (unlinkat(pfd, leaf, AT_REMOVEDIR) != 0)
        err = errno == EEXIST ? UV_ENOTEMPTY : -errno;
    }
  }
  if (err == 0) {
    rm->p.len = strlen(path);
    memcpy(rm->p.s, path, rm->p.len + 1);
    rm_tell(rm, info.type, 0);
    if (durable && fsync(pfd) != 0)
      err = -errno;
  }
  close(pfd);
  fsd_free(rm);
  return err;
}

/* Flushes a folder; see tree.h. */
int fsd_tree_sync_dir(int rootfd, const char *path) {
  int fd = fsd_tree_open(rootfd, path, O_RDONLY | O_DIRECTORY);
  int err = 0;

  if (fd < 0)
    return fd;
  if (fsync(fd) != 0)
    err = -errno;
  close(fd);
  return err;
}

/* State of one fsd_tree_scan(). */
struct scan {
  struct walk_path p;       /* relative to the start */
  fsd_tree_visit_fn *visit; /* told of each file and folder */
  void *arg;                /* for visit */
};

static int scan_dir(struct scan *sc, int dfd, int depth) {
  size_t len;
  int err, r = 0;
  char *names = read_names(dfd, &len, &err);

  if (names == NULL)
    return 0; /* an unreadable folder is skipped, as documented */
  for (size_t at = 0; at < len && r == 0;) {
    const char *name = names + at;
    struct stat st;
    size_t old;

    at += strlen(name) + 1;
    if (fsp_name_check(name, strlen(name)) != 0 ||
        fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) ||
        path_push(&sc->p, name, &old) != 0)
      continue;
    r = sc->visit(sc->arg, sc->p.s, sc->p.len, &st);
    if (r == 0 && S_ISDIR(st.st_mode) && depth < FSD_TREE_MAX_DEPTH) {
      int sub = open_beneath(dfd, name, O_RDONLY | O_DIRECTORY);
      if (sub >= 0) {
        r = scan_dir(sc, sub, depth + 1);
        close(sub);
      }
    }
    path_pop(&sc->p, old);
  }
  fsd_free(names);
  return r;
}

/* Walks a subtree; see tree.h. */
int fsd_tree_scan(int rootfd, const char *path, fsd_tree_visit_fn *visit,
                  void *arg) {
  struct scan *sc = fsd_malloc(sizeof(*sc));
  int dfd, r;

  if (sc == NULL)
    return UV_ENOMEM;
  dfd = fsd_tree_open(rootfd, path, O_RDONLY | O_DIRECTORY);
  if (dfd < 0) {
    fsd_free(sc);
    return dfd;
  }
  sc->p.len = 0;
  sc->p.s[0] = '\0';
  sc->visit = visit;
  sc->arg = arg;
  r = scan_dir(sc, dfd, 1);
  close(dfd);
  fsd_free(sc);
  return r;
}

/* Maps a UV_E* code to a wire status; see tree.h. */
uint16_t fsd_tree_status(int err) {
  switch (err) {
  case UV_ENOENT:
  case UV_ELOOP:
    return FSP_ST_NOT_FOUND;
  case UV_EEXIST:
    return FSP_ST_EXISTS;
  case UV_ENOTDIR:
    return FSP_ST_NOT_FOLDER;
  case UV_EISDIR:
    return FSP_ST_IS_FOLDER;
  case UV_ENOTEMPTY:
    return FSP_ST_NOT_EMPTY;
  case FSD_TREE_EINTOSELF:
    return FSP_ST_INTO_SELF;
  case UV_ENOSPC:
  case -EDQUOT: /* libuv 1.44 has no UV_EDQUOT */
  case UV_EFBIG:
    return FSP_ST_NO_SPACE;
  case UV_E2BIG:
  case UV_ENAMETOOLONG:
    return FSP_ST_TOO_LARGE;
  default:
    return FSP_ST_IO;
  }
}
