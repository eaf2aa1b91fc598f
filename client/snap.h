/* fsc watch's picture of the server's files, apart from any I/O: a table of
 * name -> (size, mtime_ns) kept current from EVENTs, the events that arrive
 * while a LIST streams, and the difference between two pictures as the
 * EVENTs that turn one into the other. `fsc watch` uses it to act on RESYNC
 * ("you missed events; list again") and on a server restart: it lists
 * again and prints what changed while it was not looking.
 *
 * Memory is proportional to the number of files: a 32-byte slot in a
 * table at most half full, plus the name in its own allocation (99 MB for
 * a million 16-byte names), twice that while a new listing is compared
 * with the old one. */
#ifndef FSC_SNAP_H
#define FSC_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "fsproto/fsproto.h"

/* One file. name is NULL in an empty slot. */
struct fsc_snap_file {
  char *name;       /* owned, NUL-terminated */
  size_t len;       /* bytes in name */
  uint64_t size;    /* bytes */
  int64_t mtime_ns; /* modification time, ns since the Unix epoch */
};

/* A set of files by name (open addressing, linear probing). Zero-filled is
 * an empty table; fsc_snap_free() releases it. */
struct fsc_snap {
  struct fsc_snap_file *slots; /* cap slots, or NULL */
  size_t cap;                  /* 0 or a power of two */
  size_t n;                    /* files in the table */
};

/* Frees every name and the slots, and leaves s empty (and reusable). */
void fsc_snap_free(struct fsc_snap *s);

/* The file called name[0..len), or NULL. Valid until s changes. */
const struct fsc_snap_file *fsc_snap_get(const struct fsc_snap *s,
                                         const char *name, size_t len);

/* Adds the file or updates its size and time. Returns 1 when the name is
 * new, 0 when it was there, or FSC_ENOMEM (s unchanged). */
int fsc_snap_set(struct fsc_snap *s, const char *name, size_t len,
                 uint64_t size, int64_t mtime_ns);

/* Removes the file. Returns 1 when it was there, 0 when not. */
int fsc_snap_remove(struct fsc_snap *s, const char *name, size_t len);

/* Applies an EVENT frame: added and replaced set the file, removed removes
 * it, renamed moves it (a folder renamed moves every file below it; other
 * folder events change nothing, as the table holds files only). Other
 * frames are ignored. Returns 0 or FSC_ENOMEM. */
int fsc_snap_apply(struct fsc_snap *s, const struct fsp_msg *m);

/* Adds every entry of an ENTRIES frame. Returns 0, FSC_ENOMEM, or
 * FSP_EMALFORMED when the batch does not decode. */
int fsc_snap_add_entries(struct fsc_snap *s, const struct fsp_msg *m);

/* The same for a recursive LIST of the folder dir (version 3): the files'
 * paths are dir/PATH, as events give them; folders are left out. */
int fsc_snap_add_entries_in(struct fsc_snap *s, const struct fsp_msg *m,
                            const char *dir);

/* The difference from old to cur, as the EVENTs that would turn old into
 * cur: a name only in cur is "added", a name in both whose size or mtime
 * differs is "replaced", a name only in old is "removed" (size 0, mtime 0:
 * the time of the removal is not known). They are passed to emit one by
 * one, sorted by name (bytewise), each an EVENT with id 0 and the given
 * seq; m and its name are valid during the call only. Returns the number
 * of events, or FSC_ENOMEM (nothing emitted). */
long fsc_snap_diff(const struct fsc_snap *old, const struct fsc_snap *cur,
                   uint64_t seq,
                   void (*emit)(void *arg, const struct fsp_msg *m), void *arg);

/* Events seen while a LIST streams. The listing may or may not include
 * them, so they are applied again on top of it once it is complete: for
 * every name the last event wins, and the result is the server's state as
 * of the last event received. */
struct fsc_evlog_item {
  char *name; /* owned */
  size_t len;
  char *from; /* version 3 renamed: the old path (owned), else NULL */
  size_t from_len;
  uint8_t kind; /* FSP_EV_* */
  uint8_t type; /* FSP_TYPE_* (version 3), else 0 */
  uint64_t size;
  int64_t mtime_ns;
};

struct fsc_evlog {
  struct fsc_evlog_item *items;
  size_t n, cap;
};

/* Appends an EVENT (other frames are ignored). Returns 0 or FSC_ENOMEM. */
int fsc_evlog_add(struct fsc_evlog *l, const struct fsp_msg *m);

/* Applies the logged events to s in order. Returns 0 or FSC_ENOMEM. */
int fsc_evlog_replay(const struct fsc_evlog *l, struct fsc_snap *s);

/* Empties the log and frees its memory. */
void fsc_evlog_free(struct fsc_evlog *l);

#endif /* FSC_SNAP_H */
