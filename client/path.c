/* fsc local paths. See path.h. */
#include "path.h"

#include <stdio.h>
#include <string.h>

#include "fsproto/fsproto.h"

int fsc_name_safe(const char *name) {
  size_t len = strlen(name);
  /* fsp_name_check already rules out '/', "..", dotfiles and control
   * characters; the check is repeated here in plain terms because this is
   * the line that keeps downloads inside the chosen folder. */
  if (fsp_name_check(name, len) != 0)
    return -1;
  if (strchr(name, '/') != NULL || name[0] == '.')
    return -1;
  return 0;
}

int fsc_target_path(char *buf, size_t cap, const char *out, int out_is_dir,
                    const char *name) {
  int n;
  if (fsc_name_safe(name) != 0)
    return -1;
  if (out == NULL)
    n = snprintf(buf, cap, "%s", name);
  else if (out_is_dir) {
    size_t ol = strlen(out);
    const char *sep = (ol > 0 && out[ol - 1] == '/') ? "" : "/";
    n = snprintf(buf, cap, "%s%s%s", out, sep, name);
  } else
    n = snprintf(buf, cap, "%s", out);
  return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int fsc_part_path(char *buf, size_t cap, const char *target) {
  int n = snprintf(buf, cap, "%s%s", target, FSC_PART_SUFFIX);
  return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int fsc_temp_template(char *buf, size_t cap, const char *target) {
  const char *slash = strrchr(target, '/');
  int n;
  if (slash == NULL)
    n = snprintf(buf, cap, ".%s.fsc-XXXXXX", target);
  else
    n = snprintf(buf, cap, "%.*s/.%s.fsc-XXXXXX", (int)(slash - target), target,
                 slash + 1);
  return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

const char *fsc_put_name(const char *file, const char *as, size_t *len) {
  if (as != NULL) {
    *len = strlen(as);
    return as;
  }
  size_t end = strlen(file);
  while (end > 1 && file[end - 1] == '/')
    end--;
  size_t start = end;
  while (start > 0 && file[start - 1] != '/')
    start--;
  *len = end - start;
  return file + start;
}
