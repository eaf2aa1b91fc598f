/* fsc local paths: where downloads go, their temporary files, and the names
 * uploads get. Pure string functions. A file name always comes from the
 * server's namespace and is checked with fsp_name_check() before it becomes
 * part of a local path, so a name can never lead outside the folder the user
 * chose (no "..", no "/", no dotfiles; compare scp's CVE-2019-6111). */
#ifndef FSC_PATH_H
#define FSC_PATH_H

#include <stddef.h>

/* Suffix of the partial copy that `get --continue` keeps and resumes. */
#define FSC_PART_SUFFIX ".fsc-part"

/* Returns 0 when name is a valid server file name that is safe to use as one
 * component of a local path, else -1. */
int fsc_name_safe(const char *name);

/* The local path for downloading name: "name" in the current folder when out
 * is NULL, "out/name" when out_is_dir, else out itself. Returns 0, or -1 when
 * the name is not safe or the result does not fit cap bytes. */
int fsc_target_path(char *buf, size_t cap, const char *out, int out_is_dir,
                    const char *name);

/* The partial-copy path of a target: target + FSC_PART_SUFFIX. Returns 0 or
 * -1 when it does not fit. */
int fsc_part_path(char *buf, size_t cap, const char *target);

/* A mkstemp() template for a temporary file beside target, hidden and
 * clearly named: "DIR/.BASE.fsc-XXXXXX". Returns 0 or -1 when it does not
 * fit. */
int fsc_temp_template(char *buf, size_t cap, const char *target);

/* The name an upload of file gets: as when not NULL, else the last component
 * of file (trailing slashes ignored). Returns a pointer into file or as, with
 * its length in *len. */
const char *fsc_put_name(const char *file, const char *as, size_t *len);

#endif /* FSC_PATH_H */
