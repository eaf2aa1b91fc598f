/* fsc small files: all the disk work of one small file as one blocking
 * call, made to run as one threadpool job (uv_queue_work) instead of one
 * trip through the threadpool per step. get -r stores a small download
 * whose bytes it holds in memory; put -r loads a small file before its PUT
 * goes out. Nothing here touches the loop: these run on a worker thread. */
#ifndef FSC_STORE_H
#define FSC_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Files of at most this many bytes take the one-job path: each holds
 * its whole content in memory while it is on its way, and a run holds at
 * most its jobs' worth (get -r: 32 in flight and 32 parked, x 64 KiB). */
#define FSC_SMALL_MAX (64u << 10)

/* What a store or a load did: 0 or a negative UV_E* code, and the step
 * that failed, for the message. */
enum fsc_store_step {
  FSC_STEP_NONE,
  FSC_STEP_CREATE,  /* making the new file */
  FSC_STEP_WRITE,   /* writing it (UV_ENOSPC when nothing could be) */
  FSC_STEP_FOLDER,  /* the target is a folder: left alone */
  FSC_STEP_SPECIAL, /* the target is a link or a device: left alone */
  FSC_STEP_RENAME,  /* moving it into place */
  FSC_STEP_OPEN,    /* opening the file to send */
  FSC_STEP_READ,    /* reading it (UV_E2BIG: it is bigger than held) */
};

struct fsc_store_res {
  int err;
  enum fsc_store_step step;
};

/* Writes data[0..len) as a new regular file at target, with mode (which
 * the umask reduces), so that target never shows anything but the whole
 * file: the bytes go into an unnamed file (O_TMPFILE) that is linked as
 * target when nothing is there. Something in the way is replaced only when
 * it is a regular file (a link is never followed; a folder, link or device
 * is left alone), through a hidden temporary name and rename(). Where
 * O_TMPFILE is missing, a hidden temporary file and rename() do the same.
 * On failure nothing is left behind (no partial file, no temporary file).
 * Blocks: call it on a worker thread. */
struct fsc_store_res fsc_store_small(const char *target, const uint8_t *data,
                                     size_t len, unsigned mode);

/* fsc_store_small's way where O_TMPFILE or /proc is missing: a hidden
 * temporary file beside target, written whole and closed, then renamed
 * over target (after the same check of what is in the way). Same promises;
 * public so that tests run it where O_TMPFILE works. */
struct fsc_store_res fsc_store_small_named(const char *target,
                                           const uint8_t *data, size_t len,
                                           unsigned mode);

/* Opens path for reading (never through a final link when nofollow),
 * fstats it into *size and *mode, and when it is a regular file of at most
 * cap bytes reads it into buf (*got bytes: fewer than *size when it shrank
 * meanwhile) and closes it (*fd = -1). Otherwise
 * (a bigger file, a pipe, a device) it leaves the file open in *fd for the
 * caller to go on with, and reads nothing. res.err is 0 or a UV_E* code
 * (*fd = -1 then). Blocks: call it on a worker thread. */
struct fsc_store_res fsc_load_small(const char *path, int nofollow,
                                    uint8_t *buf, size_t cap, uint64_t *size,
                                    unsigned *mode, size_t *got, int *fd);

#endif /* FSC_STORE_H */
