/* Each command's operations, defined by the file that implements the
 * command and gathered into one table by commands.c. */
#ifndef FSC_CMDS_H
#define FSC_CMDS_H

#include "run.h"

extern const struct fsc_run_ops fsc_ls_ops;       /* ls.c */
extern const struct fsc_run_ops fsc_size_ops;     /* small.c */
extern const struct fsc_run_ops fsc_rm_ops;       /* small.c */
extern const struct fsc_run_ops fsc_announce_ops; /* small.c */
extern const struct fsc_run_ops fsc_mkdir_ops;    /* small.c */
extern const struct fsc_run_ops fsc_mv_ops;       /* small.c */
extern const struct fsc_run_ops fsc_cd_ops;       /* small.c */
extern const struct fsc_run_ops fsc_watch_ops;    /* watch.c */
extern const struct fsc_run_ops fsc_get_ops;      /* get.c */
extern const struct fsc_run_ops fsc_put_ops;      /* put.c */

/* Requests of short commands (LIST, STAT, DELETE) in flight at once: they
 * cost the server a lookup each, so many may run. */
#define FSC_SMALL_PARALLEL 32

#endif /* FSC_CMDS_H */
