/* fsc get -r: the part of a recursive download that is not one file's
 * download. For each PATH it sends LIST RECURSIVE, makes the local folders
 * as the entries arrive (beneath -o DIR only, never through a local link),
 * refuses paths a hostile server may send, and adds one get job per file
 * to the run while the listing still streams. get.c runs those jobs as it
 * runs any download; this file and get.c share struct get_run. */
#ifndef FSC_GETR_H
#define FSC_GETR_H

#include <limits.h>
#include <stdint.h>

#include "batch.h"
#include "run.h"

/* What the downloads of one run share. */
struct get_run {
  struct fsc_progress prog;
  uint64_t waiting; /* downloaded bytes waiting for the disk */
  int paused;       /* we paused the connection's reading */
  int out_is_dir;   /* -o names a folder */
  /* get -r only. */
  int tree;
  struct fsc_req list;             /* the LIST in flight */
  int listing;                     /* operand being listed, or -1 */
  char base[PATH_MAX];             /* its local folder */
  int base_made;                   /* 1: made, -1: could not be, 0: not yet */
  char last_dir[FSP_PATH_MAX + 1]; /* the folder made last, below base */
  char rdir[FSP_PATH_MAX + 1];     /* its server folder */
  char **remote, **local;          /* per file: server path, local path */
  size_t nfiles, cap;
  uint64_t files_ok, bytes_ok; /* downloaded whole */
  uint64_t files_same;         /* get -r -c: already there, kept */
  struct fsb_batcher disk;     /* small files' stores */
};

/* get -r's begin: needs a version 3 server; holds the run and lists the
 * first PATH. Returns 0, an exit status after saying why, or UV_ENOMEM. */
int fsc_getr_begin(struct fsc_run *r, struct get_run *gr);

/* Frees what get -r keeps (the file list), and unregisters its LIST. */
void fsc_getr_free(struct fsc_run *r, struct get_run *gr);

#endif /* FSC_GETR_H */
