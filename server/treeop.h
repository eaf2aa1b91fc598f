/* The host's work on the tree of folders (protocol.md section 12): MKDIR,
 * RENAME and the DELETE of a folder, each one threadpool job through the
 * blocking helpers of tree.h, its outcome recorded in the context (events)
 * and answered through the session; and the folder of a PUT's target,
 * made first with FSP_PUT_PARENTS. */
#ifndef FSD_TREEOP_H
#define FSD_TREEOP_H

#include "op.h"

/* Starts MKDIR, RENAME or DELETE of a folder (op->r->tree_op). Returns 0
 * or a negative UV_E* code (nothing was queued). */
int fsd_treeop_start(struct fsd_op *op);

/* Threadpool, in a PUT's open job: opens the folder of the target (made
 * first, with its parents, under FSP_PUT_PARENTS) into op->u.put.dirfd
 * and points op->u.put.leaf at the target's name. Returns 0, or UV_ENOENT
 * (a folder missing), UV_ENOTDIR (a file in the way), UV_EISDIR (the
 * target is a folder) or another UV_E*; dirfd is then -1. */
int fsd_treeop_put_dir(struct fsd_op *op);

/* Loop, before a PUT's open job: when the job may make folders
 * (FSP_PUT_PARENTS, and a folder of the path the register does not hold),
 * tells the watcher the topmost missing one (fsd_watch_making) until
 * fsd_treeop_put_made(). Else the watcher could see a new folder before
 * the job records it, take it for one made by another program and rescan
 * the whole tree for what that program put in it before its watch: once
 * or more per fsc put -r, each rescan reading every file served. */
void fsd_treeop_put_hold(struct fsd_op *op);

/* Loop, after that job: records the folders it made (an added event
 * each, parents first), whether the upload goes on or not, and tells the
 * watcher the job is over. */
void fsd_treeop_put_made(struct fsd_op *op);

/* Threadpool, after a PUT's commit: 1 when its path leads to the file it
 * stored (op->st), 0 when not (a RENAME moved its folder meanwhile: the
 * file is in the folder's new place). */
int fsd_treeop_put_landed(struct fsd_op *op);

/* The wire status of a PUT's failure err, with the tree's statuses. */
uint16_t fsd_treeop_status(int err);

#endif /* FSD_TREEOP_H */
