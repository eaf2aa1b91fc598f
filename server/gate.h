/* A connection's authentication state (protocol.md section 11), kept apart
 * from the session so that the rules are in one place and testable alone:
 * what HELLO answers, which frames may pass before AUTH, the check of AUTH
 * itself, and the rights each request needs afterwards.
 *
 * The gate sends nothing: it returns verdicts, and the session (or any
 * host) turns them into frames. No I/O; the only outside calls are the
 * nonce (OpenSSL's CSPRNG) and the signature check (auth.c). */
#ifndef FSD_GATE_H
#define FSD_GATE_H

#include <fsproto/fsproto.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "users.h"

/* The highest protocol version fsd speaks, announced in its HELLO. */
#define FSD_PROTO_VERSION FSP_TREE_VERSION

enum fsd_gate_state {
  FSD_GATE_OPEN = 0,       /* serving: no authentication needed, or done */
  FSD_GATE_HELLO = 1,      /* authentication needed; HELLO not yet seen */
  FSD_GATE_CHALLENGED = 2, /* CHALLENGE sent; waiting for AUTH */
  FSD_GATE_HELD = 3,       /* AUTH received; the host holds it, then verify */
  FSD_GATE_REFUSED = 4     /* AUTH failed: the connection is closing */
};

/* What to do with a frame (fsd_gate_frame). */
enum fsd_gate_verdict {
  FSD_GATE_PASS = 0,      /* handle it as usual */
  FSD_GATE_TAKE_AUTH = 1, /* it is the AUTH: fsd_gate_take() it */
  FSD_GATE_REFUSE = 2,    /* ERROR UNAUTHENTICATED with its id, close */
  FSD_GATE_STRAY = 3,     /* AUTH out of sequence: ERROR PROTOCOL, ignore */
  FSD_GATE_WAIT = 4       /* AUTH is being checked: read nothing yet */
};

struct fsd_gate {
  uint8_t state;                 /* enum fsd_gate_state */
  uint8_t required;              /* the server has users */
  uint8_t user_len;              /* bytes in user, 0 before AUTH */
  unsigned rights;               /* FSD_RIGHT_* granted now */
  char user[FSP_USER_MAX + 1];   /* who authenticated (or tries to) */
  uint8_t nonce[FSP_NONCE_LEN];  /* the server nonce sent in CHALLENGE */
  uint8_t cnonce[FSP_NONCE_LEN]; /* AUTH's client nonce, while held */
  uint8_t sig[FSP_SIG_LEN];      /* AUTH's signature, while held */
};

/* Starts a connection's gate. required: the server has a users file (then
 * nothing but HELLO, AUTH, PING and BYE passes until AUTH succeeds).
 * Otherwise the gate is open with anon_rights (FSD_RIGHTS_ALL, or
 * FSD_RIGHT_READ for a read-only server). */
void fsd_gate_init(struct fsd_gate *g, int required, unsigned anon_rights);

/* The client's HELLO announced client_version. Sets *version to the version
 * our HELLO announces (FSP_HELLO_VERSION) and adds FSP_CAP_AUTH to *caps when a
 * CHALLENGE must follow, in which case the nonce for it is drawn into g->nonce.
 * Returns 0, or FSP_ST_VERSION (the client is too old to authenticate: answer
 * ERROR VERSION and close) or FSP_ST_IO (no random nonce: close). */
int fsd_gate_hello(struct fsd_gate *g, uint16_t client_version,
                   uint16_t *version, uint64_t *caps);

/* The verdict for a frame with opcode op (any frame after HELLO). */
enum fsd_gate_verdict fsd_gate_frame(const struct fsd_gate *g, uint8_t op);

/* Keeps a decoded AUTH for checking (state HELD). Returns 0, or
 * FSP_ST_UNAUTHENTICATED when it cannot be (the caller refuses). */
int fsd_gate_take(struct fsd_gate *g, const struct fsp_msg *m);

/* Checks the AUTH held, for this connection's channel binding (binding_len
 * 0 without TLS). Returns 0 (state OPEN, rights set) or UV_EACCES (state
 * REFUSED), or UV_ENOMEM (state REFUSED too: nobody is let in on an
 * error). Wipes what it held either way. */
int fsd_gate_verify(struct fsd_gate *g, const struct fsd_verifier *v,
                    const struct fsd_users *users, const uint8_t *binding,
                    size_t binding_len);

/* Whether the session may run a frame with opcode op now: 1, or 0 when
 * the user lacks the right it needs (answer ERROR FORBIDDEN). Frames that
 * need no right (PING, BYE, CANCEL, ...) are always allowed. */
int fsd_gate_allows(const struct fsd_gate *g, uint8_t op);

/* The users file was reloaded: looks the user up again. Returns 0 when
 * nothing changed for this connection, 1 when its rights changed (now in
 * g->rights), or -1 when the user is gone (close the connection). Open
 * connections without users are not affected. */
int fsd_gate_reload(struct fsd_gate *g, const struct fsd_users *users);

#endif /* FSD_GATE_H */
