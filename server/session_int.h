/* Internal to the session: the helpers session.c shares with
 * session_done.c (the host's completions). Not for the host. */
#ifndef FSD_SESSION_INT_H
#define FSD_SESSION_INT_H

#include "session.h"

/* Encodes m and hands it to the host (nothing once the session closed). */
void fsd__send_msg(struct fsd_session *s, const struct fsp_msg *m);

/* Sends a frame with no payload. */
void fsd__send_empty(struct fsd_session *s, uint8_t op, uint32_t id);

/* Sends ERROR status; the text is msg (or the status's default text),
 * followed by ": name" when name is given. */
void fsd__send_error(struct fsd_session *s, uint32_t id, uint16_t status,
                     const char *msg, const char *name, size_t name_len);

/* Ends request r after its final frame went out; with drain, a failed
 * upload's late DATA is swallowed instead of answered. */
void fsd__end_req(struct fsd_session *s, struct fsd_req *r, int drain);

/* SUBSCRIBE (session_sub.c): subscribes, then replays the events the
 * client missed or sends RESYNC. */
void fsd__on_subscribe(struct fsd_session *s, const struct fsp_msg *m);

/* Frees the subtree a version 3 subscription watched (session_sub.c). */
void fsd__sub_folder_free(struct fsd_session *s);

/* Tells the host (its access log) that a request ended. */
void fsd__note_done(struct fsd_session *s, uint8_t op, const char *name,
                    size_t name_len, uint64_t bytes, uint16_t status,
                    uint64_t t0_us);

/* Makes request r for m, naming name (copied), in flight; NULL when out of
 * memory (ERROR BUSY was sent). */
struct fsd_req *fsd__new_req(struct fsd_session *s, const struct fsp_msg *m,
                             const struct fsp_str *name);

/* The path (or name) field of request m in the version s speaks, or NULL
 * for a request without one (session_tree.c). */
const struct fsp_str *fsd__msg_path(const struct fsd_session *s,
                                    const struct fsp_msg *m);

/* LIST and STAT, answered from the register in the version s speaks, and
 * the version 3 requests MKDIR and RENAME (session_tree.c). */
void fsd__on_list(struct fsd_session *s, const struct fsp_msg *m);
void fsd__on_stat(struct fsd_session *s, const struct fsp_msg *m);
void fsd__on_mkdir(struct fsd_session *s, const struct fsp_msg *m);
void fsd__on_rename(struct fsd_session *s, const struct fsp_msg *m);

/* Sends the next ENTRIES batches of LIST r while the host's backlog is
 * short; OK at the end. */
void fsd__list_pump(struct fsd_session *s, struct fsd_req *r);

/* Version 3: what the tree register says of a GET, HASH, PUT or DELETE of
 * name before the host runs it: 0 to go on, or the ERROR status to answer
 * (NOT_FOLDER, IS_FOLDER, NOT_FOUND, NOT_EMPTY). Sets *tree_op for a
 * DELETE of a folder. */
uint16_t fsd__tree_check(struct fsd_session *s, const struct fsp_msg *m,
                         const struct fsp_str *name, uint8_t *tree_op);

#endif
