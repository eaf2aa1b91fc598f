/* Path validation (protocol.md section 12): names joined by '/'. */
#include <string.h>

#include "fsp_int.h"

/* Each component must pass fsp_name_check(), which already refuses "." and
 * ".." (a name never starts with '.'), NUL and control bytes. Splitting on
 * '/' first turns a leading, trailing or doubled '/' into an empty
 * component, which fsp_name_check() refuses too, so no separate rule is
 * needed for them. */
int fsp_path_check(const void *path, size_t len) {
  const uint8_t *p = path;
  size_t start = 0;

  if (len == 0 || len > FSP_PATH_MAX || p == NULL)
    return FSP_EBADNAME;
  while (start <= len) {
    const uint8_t *slash = memchr(p + start, '/', len - start);
    size_t end = slash != NULL ? (size_t)(slash - p) : len;

    if (fsp_name_check(p + start, end - start) != 0)
      return FSP_EBADNAME;
    start = end + 1;
  }
  return 0;
}

int fsp_folder_path_check(const void *path, size_t len) {
  return len == 0 ? 0 : fsp_path_check(path, len);
}

/* Comparing bytes and then looking for the '/' keeps "ab" out of "a". */
int fsp_path_within(const char *path, size_t len, const char *dir,
                    size_t dir_len) {
  if (dir_len == 0)
    return 1;
  if (len < dir_len || memcmp(path, dir, dir_len) != 0)
    return 0;
  return len == dir_len || path[dir_len] == '/';
}
