/* fsc's walk of a local folder for `put -r`: every file and every empty
 * folder below it, in a fixed order (names sorted byte-wise within a
 * folder, a folder's contents right after it), each with the path it gets
 * on the server. Symbolic links are never followed (they are skipped with
 * a warning), nor are devices, sockets or FIFOs. The walk keeps paths and
 * sizes only, never file contents. It runs before the first upload starts,
 * with plain blocking calls (this is the client, and nothing else is
 * waiting on the loop yet). */
#ifndef FSC_WALK_H
#define FSC_WALK_H

#include <stddef.h>
#include <stdint.h>

/* Folders below the top one that the walk enters at most, as fsd's own
 * removal does (protocol.md section 12). */
#define FSC_WALK_DEPTH 256

struct fsc_walk_item {
  char *local;   /* the path on this machine (owned) */
  char *remote;  /* the path on the server (owned) */
  uint64_t size; /* a file's size when walked */
  int folder;    /* an empty folder (made with MKDIR) rather than a file */
};

struct fsc_walk {
  struct fsc_walk_item *items; /* in upload order */
  size_t n, cap;
  size_t files;   /* items that are files */
  uint64_t bytes; /* their sizes added up */
  int failures;   /* entries left out that count as failures */
  /* Called for each entry left out: why, and whether it is a failure (a
   * name the server cannot hold, a folder that cannot be read) or only a
   * warning (a symbolic link, a special file). NULL: silent. */
  void (*warn)(void *arg, const char *local, const char *why, int failure);
  void *arg;
};

/* Walks the local folder dir (followed if it is itself a link: the user
 * named it), to be uploaded as the server folder remote (a path). w must be
 * zeroed apart from warn and arg. Returns 0, UV_ENOTDIR when dir is not a
 * folder, UV_ENOMEM, or another UV_E* code when dir cannot be read; w then
 * holds what it held and fsc_walk_free() frees it. */
int fsc_walk_tree(struct fsc_walk *w, const char *dir, const char *remote);

/* Frees the items. */
void fsc_walk_free(struct fsc_walk *w);

#endif /* FSC_WALK_H */
