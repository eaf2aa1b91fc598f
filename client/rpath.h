/* fsc remote paths (protocol.md section 12): the shell's current folder and
 * the paths typed relative to it, paths joined and split, the local path a
 * recursive download writes for a server path, and the frames whose layout
 * differs by protocol version (LIST, DELETE, MKDIR, SUBSCRIBE). Pure string
 * functions: no I/O. */
#ifndef FSC_RPATH_H
#define FSC_RPATH_H

#include <stddef.h>
#include <stdint.h>

#include "fsproto/fsproto.h"

/* Resolves arg against cwd, the shell's current folder (a folder path; ""
 * is the root), as a shell does: a leading '/' starts from the root, empty
 * and "." components are dropped, ".." goes up one folder. Writes the path
 * (possibly "", the root) to out. Returns its length, or -1 when ".." would
 * climb above the root, or the path does not fit cap bytes or
 * FSP_PATH_MAX. */
int fsc_rpath_resolve(char *out, size_t cap, const char *cwd, const char *arg);

/* dir + "/" + name into out ("" dir: name alone). Returns the length, or -1
 * when it does not fit cap bytes or FSP_PATH_MAX. */
int fsc_rpath_join(char *out, size_t cap, const char *dir, const char *name,
                   size_t name_len);

/* The last component of a path (the path itself when it has no '/'). */
const char *fsc_rpath_base(const char *path);

/* Checks a path the user gave for a request: on a version 3 connection a
 * path (fsp_path_check; with folder_ok, "" for the root is allowed too),
 * before it a plain name (fsp_name_check). Returns 0 or FSP_EBADNAME. */
int fsc_rpath_check(unsigned version, const char *path, int folder_ok);

/* The local path of server path rel (relative to the folder being
 * downloaded) beneath the local folder dir: "dir/rel". rel must pass
 * fsp_path_check() and no component may start with '.', so the result can
 * never leave dir whatever the server sends. Returns 0, or -1 when rel is
 * refused or the result does not fit. */
int fsc_rpath_local(char *out, size_t cap, const char *dir, const char *rel,
                    size_t rel_len);

/* Fills m for LIST, DELETE, STAT or MKDIR of path on a connection speaking
 * version: from version 3 the flags-and-path layout of section 12 (STAT: the
 * path), before it a name (LIST: no payload; flags are then dropped).
 * m->u points into path, which must outlive the send. */
void fsc_rpath_msg(struct fsp_msg *m, uint8_t op, unsigned version,
                   uint8_t flags, const char *path);

#endif /* FSC_RPATH_H */
