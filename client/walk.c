/* fsc's walk of a local folder for put -r. See walk.h. */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "alloc.h"
#include "fsproto/fsproto.h"

static char *join(const char *a, const char *b) {
  size_t al = strlen(a), bl = strlen(b);
  char *s = fsc_malloc(al + bl + 2);
  if (s == NULL)
    return NULL;
  memcpy(s, a, al);
  size_t at = al;
  if (al > 0 && a[al - 1] != '/')
    s[at++] = '/';
  memcpy(s + at, b, bl + 1);
  return s;
}

static int add(struct fsc_walk *w, const char *local, const char *remote,
               uint64_t size, int folder) {
  if (w->n == w->cap) {
    size_t nc = w->cap ? 2 * w->cap : 64;
    struct fsc_walk_item *ni = fsc_realloc(w->items, nc * sizeof *ni);
    if (ni == NULL)
      return UV_ENOMEM;
    w->items = ni;
    w->cap = nc;
  }
  struct fsc_walk_item *it = &w->items[w->n];
  it->local = fsc_strdup(local);
  it->remote = fsc_strdup(remote);
  if (it->local == NULL || it->remote == NULL) {
    fsc_free(it->local);
    fsc_free(it->remote);
    return UV_ENOMEM;
  }
  it->size = size;
  it->folder = folder;
  w->n++;
  if (!folder) {
    w->files++;
    w->bytes += size;
  }
  return 0;
}

static void warn(struct fsc_walk *w, const char *local, const char *why,
                 int failure) {
  if (failure)
    w->failures++;
  if (w->warn != NULL)
    w->warn(w->arg, local, why, failure);
}

static int name_cmp(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The names in the open folder fd (consumed), sorted. Returns their
 * number, or a UV_E* code. */
static int read_names(int fd, char ***out) {
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int err = -errno;
    close(fd);
    return err;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (n == cap) {
      size_t nc = cap ? 2 * cap : 16;
      char **nn = fsc_realloc(names, nc * sizeof *nn);
      if (nn == NULL) {
        rc = UV_ENOMEM;
        break;
      }
      names = nn;
      cap = nc;
    }
    if ((names[n] = fsc_strdup(de->d_name)) == NULL) {
      rc = UV_ENOMEM;
      break;
    }
    n++;
  }
  closedir(d);
  if (rc < 0) {
    for (size_t i = 0; i < n; i++)
      fsc_free(names[i]);
    fsc_free(names);
    return rc;
  }
  if (n > 1)
    qsort(names, n, sizeof *names, name_cmp);
  *out = names;
  return (int)n;
}

/* One folder, open as dfd (consumed): its entries in name order, each
 * subfolder's right after it. Adds the folder itself when it holds nothing
 * to upload. */
static int walk_dir(struct fsc_walk *w, int dfd, const char *local,
                    const char *remote, int depth) {
  char **names = NULL;
  int dup_fd = dup(dfd);
  int n = dup_fd < 0 ? -errno : read_names(dup_fd, &names);
  if (n < 0) {
    close(dfd);
    if (n == UV_ENOMEM)
      return n;
    char why[128];
    snprintf(why, sizeof why, "cannot read the folder: %s", uv_strerror(n));
    warn(w, local, why, 1);
    return 0;
  }
  size_t before = w->n;
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    char *lp = join(local, names[i]);
    char *rp = join(remote, names[i]);
    if (lp == NULL || rp == NULL) {
      rc = UV_ENOMEM;
    } else if (fsp_name_check(names[i], strlen(names[i])) != 0) {
      warn(w, lp, "not a valid name on the server", 1);
    } else {
      struct stat st;
      /* Never follow a link: a link in the tree is skipped, whatever it
       * points to. */
      int sr = fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW);
      int sub = -1;
      if (sr == 0 && S_ISDIR(st.st_mode) && depth < FSC_WALK_DEPTH)
        sub = openat(dfd, names[i],
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int err = errno;
      if (sr != 0)
        warn(w, lp, strerror(err), 1);
      else if (S_ISLNK(st.st_mode))
        warn(w, lp, "skipping a symbolic link", 0);
      else if (S_ISREG(st.st_mode))
        rc = add(w, lp, rp, (uint64_t)st.st_size, 0);
      else if (!S_ISDIR(st.st_mode))
        warn(w, lp, "skipping a special file (not a regular file)", 0);
      else if (depth >= FSC_WALK_DEPTH)
        warn(w, lp, "too deep; not entered", 1);
      else if (sub < 0)
        warn(w, lp, strerror(err), 1);
      else
        rc = walk_dir(w, sub, lp, rp, depth + 1);
    }
    fsc_free(lp);
    fsc_free(rp);
  }
  close(dfd);
  for (int i = 0; i < n; i++)
    fsc_free(names[i]);
  fsc_free(names);
  if (rc == 0 && w->n == before)
    rc = add(w, local, remote, 0, 1);
  return rc;
}

int fsc_walk_tree(struct fsc_walk *w, const char *dir, const char *remote) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  return walk_dir(w, fd, dir, remote, 0);
}

void fsc_walk_free(struct fsc_walk *w) {
  for (size_t i = 0; i < w->n; i++) {
    fsc_free(w->items[i].local);
    fsc_free(w->items[i].remote);
  }
  fsc_free(w->items);
  w->items = NULL;
  w->n = w->cap = 0;
}
