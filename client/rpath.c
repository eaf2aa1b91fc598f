/* fsc remote paths. See rpath.h. */
#include "rpath.h"

#include <string.h>

int fsc_rpath_resolve(char *out, size_t cap, const char *cwd, const char *arg) {
  size_t len = 0;
  if (cap == 0)
    return -1;
  out[0] = '\0';
  /* Two passes over the same rules: the current folder (unless arg starts
   * at the root), then arg. */
  const char *parts[2] = {arg[0] == '/' ? "" : cwd, arg};
  for (int k = 0; k < 2; k++) {
    const char *p = parts[k];
    while (*p != '\0') {
      while (*p == '/')
        p++;
      size_t n = strcspn(p, "/");
      if (n == 0 || (n == 1 && p[0] == '.')) {
        p += n;
        continue;
      }
      if (n == 2 && p[0] == '.' && p[1] == '.') {
        /* Up one folder. Above the top folder there is nothing: rather
         * than stay there as a shell does, refuse, so that a path meant to
         * climb out ("../etc/passwd") never names something else. */
        if (len == 0)
          return -1;
        while (len > 0 && out[len - 1] != '/')
          len--;
        if (len > 0)
          len--;
        out[len] = '\0';
        p += n;
        continue;
      }
      size_t need = len + (len > 0) + n;
      if (need >= cap || need > FSP_PATH_MAX)
        return -1;
      if (len > 0)
        out[len++] = '/';
      memcpy(out + len, p, n);
      len += n;
      out[len] = '\0';
      p += n;
    }
  }
  return (int)len;
}

int fsc_rpath_join(char *out, size_t cap, const char *dir, const char *name,
                   size_t name_len) {
  size_t dl = strlen(dir);
  size_t need = dl + (dl > 0) + name_len;
  if (need >= cap || need > FSP_PATH_MAX)
    return -1;
  memcpy(out, dir, dl);
  if (dl > 0)
    out[dl++] = '/';
  memcpy(out + dl, name, name_len);
  out[need] = '\0';
  return (int)need;
}

const char *fsc_rpath_base(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}

int fsc_rpath_check(unsigned version, const char *path, int folder_ok) {
  size_t len = strlen(path);
  if (version < FSP_TREE_VERSION)
    return fsp_name_check(path, len) == 0 ? 0 : FSP_EBADNAME;
  if (folder_ok)
    return fsp_folder_path_check(path, len) == 0 ? 0 : FSP_EBADNAME;
  return fsp_path_check(path, len) == 0 ? 0 : FSP_EBADNAME;
}

int fsc_rpath_local(char *out, size_t cap, const char *dir, const char *rel,
                    size_t rel_len) {
  /* fsp_path_check rules out "..", ".", empty components, a leading '/'
   * and control characters; the dot test is repeated in plain terms, as in
   * path.c, because this is the line that keeps a recursive download inside
   * the folder the user chose. */
  if (fsp_path_check(rel, rel_len) != 0 || memchr(rel, '\0', rel_len) != NULL)
    return -1;
  for (size_t i = 0; i < rel_len; i++)
    if (rel[i] == '.' && (i == 0 || rel[i - 1] == '/'))
      return -1;
  size_t dl = strlen(dir);
  while (dl > 1 && dir[dl - 1] == '/')
    dl--;
  size_t sep = dir[dl - 1 < dl ? dl - 1 : 0] != '/';
  size_t need = dl + sep + rel_len;
  if (dl == 0 || need >= cap)
    return -1;
  memcpy(out, dir, dl);
  out[dl] = '/';
  memcpy(out + dl + sep, rel, rel_len);
  out[need] = '\0';
  return 0;
}

void fsc_rpath_msg(struct fsp_msg *m, uint8_t op, unsigned version,
                   uint8_t flags, const char *path) {
  memset(m, 0, sizeof *m);
  m->op = op;
  if (version >= FSP_TREE_VERSION && op != FSP_OP_STAT) {
    m->u.tree.flags = flags;
    m->u.tree.path.ptr = path;
    m->u.tree.path.len = strlen(path);
  } else if (op != FSP_OP_LIST) {
    m->u.name.ptr = path;
    m->u.name.len = strlen(path);
  }
}
