/* A connection's authentication state. See gate.h. */
#include "gate.h"

#include <openssl/crypto.h>
#include <string.h>
#include <uv.h>

/* Starts the gate (see gate.h). */
void fsd_gate_init(struct fsd_gate *g, int required, unsigned anon_rights) {
  memset(g, 0, sizeof(*g));
  g->required = (uint8_t)(required != 0);
  g->state = required ? FSD_GATE_HELLO : FSD_GATE_OPEN;
  g->rights = required ? 0 : anon_rights;
}

/* Answers HELLO (see gate.h). */
int fsd_gate_hello(struct fsd_gate *g, uint16_t client_version,
                   uint16_t *version, uint64_t *caps) {
  /* HELLO announces the highest version we speak; both sides then speak
   * the lower of the two (protocol.md section 3). */
  *version = (uint16_t)FSD_PROTO_VERSION;
  if (!g->required)
    return 0;
  /* A version 1 client would send requests that are all refused; tell it
   * why at once, in the ERROR it can read. */
  if (client_version < FSP_AUTH_VERSION)
    return FSP_ST_VERSION;
  if (fsd_auth_nonce(g->nonce) != 0)
    return FSP_ST_IO;
  *caps |= FSP_CAP_AUTH;
  g->state = FSD_GATE_CHALLENGED;
  return 0;
}

/* Sorts a frame (see gate.h). */
enum fsd_gate_verdict fsd_gate_frame(const struct fsd_gate *g, uint8_t op) {
  switch (g->state) {
  case FSD_GATE_OPEN:
    return op == FSP_OP_AUTH ? FSD_GATE_STRAY : FSD_GATE_PASS;
  case FSD_GATE_CHALLENGED:
    if (op == FSP_OP_AUTH)
      return FSD_GATE_TAKE_AUTH;
    /* A second HELLO passes to the session, which calls it out of
     * sequence; PING and BYE work as ever. */
    if (op == FSP_OP_HELLO || op == FSP_OP_PING || op == FSP_OP_BYE)
      return FSD_GATE_PASS;
    return FSD_GATE_REFUSE;
  case FSD_GATE_HELD:
    return FSD_GATE_WAIT;
  default: /* HELLO is the session's business; REFUSED reads nothing */
    return FSD_GATE_REFUSE;
  }
}

/* Keeps the AUTH (see gate.h). */
int fsd_gate_take(struct fsd_gate *g, const struct fsp_msg *m) {
  if (g->state != FSD_GATE_CHALLENGED || m->op != FSP_OP_AUTH ||
      fsp_user_check(m->u.auth.user.ptr, m->u.auth.user.len) != 0) {
    g->state = FSD_GATE_REFUSED;
    return FSP_ST_UNAUTHENTICATED;
  }
  memcpy(g->user, m->u.auth.user.ptr, m->u.auth.user.len);
  g->user[m->u.auth.user.len] = '\0';
  g->user_len = (uint8_t)m->u.auth.user.len;
  memcpy(g->cnonce, m->u.auth.nonce, FSP_NONCE_LEN);
  memcpy(g->sig, m->u.auth.sig, FSP_SIG_LEN);
  g->state = FSD_GATE_HELD;
  return 0;
}

/* Checks the AUTH held (see gate.h). */
int fsd_gate_verify(struct fsd_gate *g, const struct fsd_verifier *v,
                    const struct fsd_users *users, const uint8_t *binding,
                    size_t binding_len) {
  const struct fsd_user *who = NULL;
  struct fsp_msg m;
  int r = UV_EACCES;

  if (g->state == FSD_GATE_HELD) {
    memset(&m, 0, sizeof(m));
    m.op = FSP_OP_AUTH;
    m.u.auth.nonce = g->cnonce;
    m.u.auth.sig = g->sig;
    m.u.auth.user.ptr = g->user;
    m.u.auth.user.len = g->user_len;
    r = fsd_auth_verify(v, users, &m, g->nonce, binding, binding_len, &who);
  }
  /* One nonce, one attempt: nothing held survives the check. */
  OPENSSL_cleanse(g->nonce, sizeof(g->nonce));
  OPENSSL_cleanse(g->cnonce, sizeof(g->cnonce));
  OPENSSL_cleanse(g->sig, sizeof(g->sig));
  if (r != 0 || who == NULL) {
    g->state = FSD_GATE_REFUSED;
    g->rights = 0;
    return r != 0 ? r : UV_EACCES;
  }
  g->rights = who->rights;
  g->state = FSD_GATE_OPEN;
  return 0;
}

/* Checks a request's right (see gate.h). Before AUTH and after a refusal
 * the rights are 0, so only what needs no right is allowed. */
int fsd_gate_allows(const struct fsd_gate *g, uint8_t op) {
  unsigned need = fsd_op_right(op);

  return (need & g->rights) == need;
}

/* Applies a reloaded users file (see gate.h). A connection still waiting
 * for AUTH needs nothing: its check will use the new file. */
int fsd_gate_reload(struct fsd_gate *g, const struct fsd_users *users) {
  const struct fsd_user *u;

  if (!g->required || g->state != FSD_GATE_OPEN)
    return 0;
  u = fsd_users_find(users, g->user, g->user_len);
  if (u == NULL) {
    g->state = FSD_GATE_REFUSED;
    g->rights = 0;
    return -1;
  }
  if (u->rights == g->rights)
    return 0;
  g->rights = u->rights;
  return 1;
}
