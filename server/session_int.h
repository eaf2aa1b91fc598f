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

#endif
