/* Blocking helpers for a tree of folders (protocol.md section 12). Like
 * fsops.h they run on threadpool workers, never on the loop thread while it
 * serves. Every path is relative to the root folder's fd and has passed
 * fsp_path_check() (the empty path, where allowed, is the root itself).
 *
 * Confinement: every component of every path is resolved with openat2()
 * and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS (or,
 * on kernels without openat2, one openat(O_NOFOLLOW) per component), and
 * every change is made with *at() calls on a folder fd opened that way, so
 * a symbolic link anywhere in the tree, planted before or during a call,
 * is never followed. Symbolic links, devices, FIFOs and sockets are treated
 * as absent (UV_ENOENT): never listed, never served, never removed.
 *
 * Errors are negative UV_E* codes; fsd_tree_status() turns them into wire
 * statuses. */
#ifndef FSD_TREE_H
#define FSD_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

/* How deep a recursive scan or removal descends below its start. Deeper
 * folders are left alone (a removal reports them with UV_E2BIG), so that
 * one call holds at most this many folder fds. */
#define FSD_TREE_MAX_DEPTH 256

/* A folder moved into itself or below itself (RENAME). */
#define FSD_TREE_EINTOSELF UV_EINVAL

/* Opens path beneath rootfd with the open(2) flags (O_CLOEXEC, O_NOFOLLOW
 * and O_NOCTTY are added; pass O_DIRECTORY for a folder). An empty path
 * opens the root itself. Returns the fd or UV_ENOENT (missing, or a link
 * on the way), UV_ENOTDIR (a component is a file) or another UV_E*. */
int fsd_tree_open(int rootfd, const char *path, int flags);

/* Opens the folder that holds path (the root for a one-name path) and sets
 * *leaf to the last name of path (pointing into path). Returns the folder
 * fd or an error as fsd_tree_open(). */
int fsd_tree_open_parent(int rootfd, const char *path, const char **leaf);

/* What fsd_tree_stat() found. */
struct fsd_tree_info {
  uint8_t type;     /* FSP_TYPE_FILE or FSP_TYPE_FOLDER */
  uint64_t size;    /* 0 for a folder */
  int64_t mtime_ns; /* modification time, ns since the epoch */
  uint64_t ino;     /* inode number (names a folder across servers) */
};

/* Looks path up without following links. Returns 0 and fills *out for a
 * regular file or a folder; UV_ENOENT for anything else or nothing;
 * UV_ENOTDIR when a parent is a file. */
int fsd_tree_stat(int rootfd, const char *path, struct fsd_tree_info *out);

/* Creates the folder path (mode 0755). With parents, creates the missing
 * folders above it too and succeeds when path already is a folder (as
 * `mkdir -p`). *created is set to the offset in path of the first folder
 * this call created ("a/b/c" with "a" present: 2, so "a/b" and "a/b/c"
 * were made), or to strlen(path) when it made none. With durable, every
 * folder that gained an entry is fsynced. Returns 0, UV_EEXIST (path
 * exists; as a file even with parents), UV_ENOENT (a parent is missing,
 * without parents), UV_ENOTDIR (a parent is a file) or another UV_E*. */
int fsd_tree_mkdir(int rootfd, const char *path, int parents, int durable,
                   size_t *created);

/* Moves from to to in one step (renameat2). With no_replace, fails with
 * UV_EEXIST when to exists; otherwise a file at to is replaced, and an
 * empty folder at to is replaced by a folder. from equal to to succeeds
 * without change when from exists. With durable, the folders that changed
 * are fsynced afterwards. Fills *info with what was moved. Returns 0 or
 * UV_ENOENT (from missing or not a file or folder, or to's parent
 * missing), UV_EEXIST, FSD_TREE_EINTOSELF (a folder into its own subtree),
 * UV_ENOTDIR (a folder onto a file, or a parent is a file), UV_EISDIR (a
 * file onto a folder), UV_ENOTEMPTY (onto a folder that is not empty) or
 * another UV_E*. */
int fsd_tree_rename(int rootfd, const char *from, const char *to,
                    int no_replace, int durable, struct fsd_tree_info *info);

/* Called by fsd_tree_remove() for each entry removed (err 0) and each one
 * it could not remove (err < 0), with its full path (path[len] is NUL) and
 * type. Contents come before their folder. Returning non-zero stops the
 * removal (which then returns UV_ECANCELED). */
typedef int fsd_tree_report_fn(void *arg, const char *path, size_t len,
                               uint8_t type, int err);

/* Removes the file or folder path. A folder must be empty unless recursive
 * is set; then everything below it that can be removed is removed first,
 * never following a link: a link or special file inside is reported with
 * UV_ENOENT and left, a folder swapped for a link while the removal runs is
 * not entered, names the protocol cannot carry (dotfiles, uploads in
 * progress) are left, and a folder left non-empty by any of these is
 * reported with UV_ENOTEMPTY. Each entry removed is reported. With
 * durable, each folder that lost entries is fsynced. Returns 0 when path is
 * gone, UV_ENOTEMPTY when something remained (recursive) or the folder is
 * not empty (not recursive), UV_ENOENT, UV_ENOTDIR or another UV_E*. */
int fsd_tree_remove(int rootfd, const char *path, int recursive, int durable,
                    fsd_tree_report_fn *report, void *arg);

/* Flushes the folder path's entries to disk (fsync of the folder), so that
 * names created, renamed or removed in it survive a crash. */
int fsd_tree_sync_dir(int rootfd, const char *path);

/* Called by fsd_tree_scan() for each regular file and folder below the
 * start, folders before their contents, with its path relative to the
 * start (path[len] is NUL) and its lstat. Returning non-zero stops the
 * scan, which returns that value. */
typedef int fsd_tree_visit_fn(void *arg, const char *path, size_t len,
                              const struct stat *st);

/* Walks the tree below the folder path (empty: the root), never following
 * a link, skipping names the protocol cannot carry, and descending at most
 * FSD_TREE_MAX_DEPTH folders. Returns 0, what visit returned, or a UV_E*
 * from opening the start. Folders that cannot be read are skipped. */
int fsd_tree_scan(int rootfd, const char *path, fsd_tree_visit_fn *visit,
                  void *arg);

/* For tests only (NULL otherwise): called by a recursive removal with the
 * path of a folder after its lstat and before it is entered, the window in
 * which another program could swap the folder for a link. */
extern void (*fsd_tree__enter_hook)(const char *path);

/* The wire status for a UV_E* code of these functions: NOT_FOUND, EXISTS,
 * NOT_FOLDER, IS_FOLDER, NOT_EMPTY, INTO_SELF, NO_SPACE, TOO_LARGE or IO. */
uint16_t fsd_tree_status(int err);

#endif /* FSD_TREE_H */
