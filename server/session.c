/* The per-connection protocol state machine. See session.h. */
#include "session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "session_int.h"

/* Failed uploads whose late DATA we still swallow quietly, per connection. */
#define MAX_DRAINS 4u

/* Room for any frame the session encodes itself, except ENTRIES and NOTIFY
 * (which have their own buffers): an ERROR with a name in its text. */
#define SMALL_FRAME 1024u

void fsd__send_msg(struct fsd_session *s, const struct fsp_msg *m) {
  uint8_t small[SMALL_FRAME];
  uint8_t *buf = small;
  ssize_t n;

  if (s->state == FSD_SESS_CLOSED)
    return;
  /* Before HELLO (version 0), errors go out in version 1's layout, which
   * every client reads (protocol.md section 3). */
  n = fsp_msg_encode_v(small, sizeof(small), s->version ? s->version : 1u, m);
  if (n < 0) {
    fsd_error("cannot encode %s: %s", fsp_op_name(m->op), fsp_strerror((int)n));
    return;
  }
  if ((size_t)n > sizeof(small)) {
    buf = malloc((size_t)n);
    if (buf == NULL)
      return;
    n = fsp_msg_encode_v(buf, (size_t)n, s->version ? s->version : 1u, m);
  }
  s->ops->send(s->host, buf, (size_t)n);
  if (buf != small)
    free(buf);
}

void fsd__send_empty(struct fsd_session *s, uint8_t op, uint32_t id) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = op;
  m.id = id;
  fsd__send_msg(s, &m);
}

/* Sends ERROR status; the text is msg (or the status's default text),
 * followed by ": name" when name is given. */
void fsd__send_error(struct fsd_session *s, uint32_t id, uint16_t status,
                     const char *msg, const char *name, size_t name_len) {
  char text[512];
  struct fsp_msg m;
  int n;

  /* A folder is "not found" to versions 1 and 2, which know none of the
   * statuses about folders (protocol.md section 12). */
  if (s->version < FSP_TREE_VERSION && status >= FSP_ST_NOT_FOLDER &&
      status <= FSP_ST_INTO_SELF) {
    status = FSP_ST_NOT_FOUND;
    msg = NULL;
  }
  if (msg == NULL)
    msg = fsp_status_str(status);
  if (name != NULL)
    n = snprintf(text, sizeof(text), "%s: %.*s", msg, (int)name_len, name);
  else
    n = snprintf(text, sizeof(text), "%s", msg);
  if (n < 0)
    n = 0;
  if ((size_t)n >= sizeof(text))
    n = (int)strlen(msg) < (int)sizeof(text) ? (int)strlen(msg) : 0;
  /* Answers a client expects in normal use stay at debug level; the rest
   * (its mistakes, our failures) are worth a line. */
  fsd_log(status == FSP_ST_NOT_FOUND || status == FSP_ST_EXISTS ||
                  status == FSP_ST_RANGE || status == FSP_ST_CANCELED
              ? FSD_LOG_DEBUG
              : FSD_LOG_INFO,
          "%s: request %u: %s: %.*s", s->label, (unsigned)id,
          fsp_status_name(status), n, text);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_ERROR;
  m.id = id;
  m.u.error.status = status;
  m.u.error.text.ptr = text;
  m.u.error.text.len = (size_t)n;
  fsd__send_msg(s, &m);
}

/* Reports a bad frame that is not a request of its own (a CANCEL, PING or
 * BYE, DATA or END that fits no upload, a server-only opcode) or a request
 * whose id is taken. The ERROR goes out on id 0: with the frame's id it
 * would end, in the client's eyes, the request that holds that id. */
static void stray_error(struct fsd_session *s, const struct fsp_frame *f,
                        uint16_t status, const char *why) {
  const char *name = fsp_op_name(f->op);
  char msg[128];

  if (name != NULL)
    snprintf(msg, sizeof(msg), "%s with id %u: %s", name, (unsigned)f->id, why);
  else
    snprintf(msg, sizeof(msg), "opcode 0x%02x with id %u: %s", (unsigned)f->op,
             (unsigned)f->id, why);
  fsd__send_error(s, FSP_EVENT_ID, status, msg, NULL, 0);
}

static void do_close(struct fsd_session *s);

/* Tells the host (its access log) that a request ended. */
void fsd__note_done(struct fsd_session *s, uint8_t op, const char *name,
                    size_t name_len, uint64_t bytes, uint16_t status,
                    uint64_t t0_us) {
  struct fsd_done d;

  if (s->ops->done == NULL)
    return;
  d.op = op;
  d.status = status;
  d.name = name_len > 0 ? name : NULL;
  d.name_len = name_len;
  d.bytes = bytes;
  d.t0_us = t0_us;
  s->ops->done(s->host, &d);
}

/* Initialises a session; see session.h. */
void fsd_session_init(struct fsd_session *s, struct fsd_ctx *ctx,
                      const struct fsd_host_ops *ops, void *host) {
  memset(s, 0, sizeof(*s));
  s->ctx = ctx;
  s->ops = ops;
  s->host = host;
  s->label = "client";
  /* The client may send up to what we are about to announce; before it
   * authenticates, only small frames (protocol.md section 11). */
  fsd_gate_init(&s->gate, ctx->users != NULL, ctx->anon_rights);
  fsp_decoder_init(&s->dec,
                   s->gate.required ? FSP_PREAUTH_MAX : FSD_MAX_PAYLOAD);
  s->peer_max = FSP_MIN_PAYLOAD;
  s->state = FSD_SESS_HELLO;
}

static struct fsd_req *find_req(struct fsd_session *s, uint32_t id) {
  for (struct fsd_req *r = s->reqs; r != NULL; r = r->next)
    if (r->id == id)
      return r;
  return NULL;
}

static void unlink_req(struct fsd_session *s, struct fsd_req *r) {
  for (struct fsd_req **pp = &s->reqs; *pp != NULL; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      return;
    }
}

static void free_req(struct fsd_req *r) {
  if (r->hash != NULL)
    XXH3_freeState(r->hash);
  if (r->cur != NULL) {
    fsd_treereg_walk_close(&r->s->ctx->tree, r->cur);
    free(r->cur);
  }
  free(r->to);
  free(r);
}

static void drop_drain(struct fsd_session *s, struct fsd_req *r) {
  unlink_req(s, r);
  s->ndrain--;
  free_req(r);
}

static void finish_bye(struct fsd_session *s) {
  struct fsp_msg m;

  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_BYE;
  m.id = s->bye_id;
  m.u.error.status = s->bye_status;
  fsd__send_msg(s, &m);
  do_close(s);
}

/* Ends an active request: frees it, or keeps it as a drain entry so the
 * client's DATA still in flight for a failed upload is swallowed instead of
 * drawing one PROTOCOL error per frame. */
void fsd__end_req(struct fsd_session *s, struct fsd_req *r, int drain) {
  fsd__note_done(s, r->opcode, r->name, r->name_len, r->done_bytes,
                 r->done_status, r->t0_us);
  s->nactive--;
  if (drain && s->state == FSD_SESS_OPEN) {
    r->state = FSD_REQ_DRAIN;
    r->op = NULL;
    if (r->hash != NULL) {
      XXH3_freeState(r->hash);
      r->hash = NULL;
    }
    s->ndrain++;
    if (s->ndrain > MAX_DRAINS) {
      struct fsd_req *oldest = NULL;
      for (struct fsd_req *q = s->reqs; q != NULL; q = q->next)
        if (q->state == FSD_REQ_DRAIN)
          oldest = q; /* requests are pushed at the head */
      drop_drain(s, oldest);
    }
  } else {
    unlink_req(s, r);
    free_req(r);
  }
  if (s->state == FSD_SESS_BYE && s->nactive == 0)
    finish_bye(s);
}

static void abort_req(struct fsd_session *s, struct fsd_req *r, uint16_t status,
                      const char *msg, int drain) {
  if (r->opcode == FSP_OP_LIST) {
    /* The session streams LIST itself: nothing for the host to stop. */
    fsd__send_error(s, r->id, status, msg, NULL, 0);
    r->done_status = status;
    fsd__end_req(s, r, 0);
    return;
  }
  r->fail_status = status;
  r->fail_msg = msg;
  r->drain_after = (uint8_t)drain;
  r->state = FSD_REQ_ABORTING;
  s->ops->abort(s->host, r);
}

/* Aborts every request the host can still stop, and frees the drains. */
static void abort_all(struct fsd_session *s, uint16_t status) {
  struct fsd_req *r, *next;

  for (r = s->reqs; r != NULL; r = next) {
    next = r->next;
    if (r->state == FSD_REQ_DRAIN)
      drop_drain(s, r);
  }
  for (r = s->reqs; r != NULL; r = next) {
    next = r->next;
    if (r->state == FSD_REQ_RUNNING || r->state == FSD_REQ_RECEIVING)
      abort_req(s, r, status, NULL, 0);
  }
}

static void unsubscribe(struct fsd_session *s) {
  if (!s->subscribed)
    return;
  fsd_ctx_unsubscribe(s->ctx, &s->sub);
  fsd__sub_folder_free(s);
  s->subscribed = 0;
  s->behind = 0;
}

/* Asks the host to close after the flush; nothing is sent after this. */
static void do_close(struct fsd_session *s) {
  if (s->state == FSD_SESS_CLOSED)
    return;
  s->state = FSD_SESS_CLOSED;
  unsubscribe(s);
  abort_all(s, FSP_ST_CANCELED);
  s->ops->close(s->host);
}

/* Starts the orderly end: requests are stopped, BYE goes out when the last
 * one has ended. */
static void begin_bye(struct fsd_session *s, uint32_t id, uint16_t status) {
  if (s->state == FSD_SESS_CLOSED || s->state == FSD_SESS_BYE)
    return;
  s->state = FSD_SESS_BYE;
  s->bye_id = id;
  s->bye_status = status;
  unsubscribe(s);
  abort_all(s, status == FSP_ST_SHUTDOWN ? FSP_ST_SHUTDOWN : FSP_ST_CANCELED);
  if (s->nactive == 0)
    finish_bye(s);
}

/* Closes the connection (see session.h). */
void fsd_session_close(struct fsd_session *s) {
  do_close(s);
}

/* Server shutdown (see session.h). */
void fsd_session_shutdown(struct fsd_session *s) {
  if (s->state == FSD_SESS_HELLO) {
    do_close(s);
    return;
  }
  begin_bye(s, FSP_EVENT_ID, FSP_ST_SHUTDOWN);
}

/* Idle timeout (see session.h). */
void fsd_session_timeout(struct fsd_session *s) {
  fsd__send_error(s, FSP_EVENT_ID, FSP_ST_TIMEOUT, NULL, NULL, 0);
  do_close(s);
}

/* Requests the host still works on (see session.h). */
unsigned fsd_session_busy(const struct fsd_session *s) {
  return s->nactive;
}

/* Whether the connection counts as active (see session.h). */
int fsd_session_active(const struct fsd_session *s) {
  return s->subscribed || s->nactive > 0;
}

/* The client's DATA payload limit (see session.h). */
uint32_t fsd_session_peer_max(const struct fsd_session *s) {
  return s->peer_max;
}

/* Bytes still needed for the frame at buf (see session.h). */
size_t fsd_session_need(const struct fsd_session *s, const uint8_t *buf,
                        size_t len) {
  ssize_t n = fsp_frame_need(buf, len, s->dec.max_payload);
  return n > 0 ? (size_t)n : 0;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

/* The host wrote some output (see session.h). */
void fsd_session_writable(struct fsd_session *s) {
  struct fsd_req *r, *next;

  for (r = s->reqs; r != NULL; r = next) {
    next = r->next;
    if (r->opcode == FSP_OP_LIST && r->state == FSD_REQ_RUNNING &&
        s->state == FSD_SESS_OPEN && s->ops->backlog(s->host) < FSD_LIST_BATCH)
      fsd__list_pump(s, r);
  }
  if (s->ops->backlog(s->host) == 0)
    fsd_session_drained(s);
}

struct fsd_req *fsd__new_req(struct fsd_session *s, const struct fsp_msg *m,
                             const struct fsp_str *name) {
  struct fsd_req *r = calloc(1, sizeof(*r) + name->len + 1);

  if (r == NULL) {
    fsd__send_error(s, m->id, FSP_ST_BUSY, "out of memory", NULL, 0);
    return NULL;
  }
  r->s = s;
  r->id = m->id;
  r->opcode = m->op;
  r->state = FSD_REQ_RUNNING;
  r->t0_us = s->clock_us;
  r->name_len = (uint16_t)name->len;
  memcpy(r->name, name->ptr, name->len);
  r->name[name->len] = '\0';
  r->next = s->reqs;
  s->reqs = r;
  s->nactive++;
  return r;
}

static void on_file_request(struct fsd_session *s, const struct fsp_msg *m) {
  const struct fsp_str *name = fsd__msg_path(s, m);
  uint8_t tree_op = 0;
  struct fsd_req *r;
  uint16_t st;

  if (fsd_ctx_log_down(s->ctx) &&
      (m->op == FSP_OP_PUT || m->op == FSP_OP_DELETE)) {
    fsd__send_error(s, m->id, FSP_ST_BUSY,
                    "cluster log unreachable: writes refused, reads go on",
                    NULL, 0);
    return;
  }
  if (s->version >= FSP_TREE_VERSION) {
    /* Folders and files in each other's way are told from the register. */
    st = fsd__tree_check(s, m, name, &tree_op);
    if (st != 0) {
      fsd__send_error(s, m->id, st, NULL, name->ptr, name->len);
      return;
    }
  } else if (m->op == FSP_OP_DELETE &&
             fsd_register_get(&s->ctx->reg, name->ptr, name->len) == NULL) {
    fsd__send_error(s, m->id, FSP_ST_NOT_FOUND, NULL, name->ptr, name->len);
    return;
  }
  if (m->op == FSP_OP_PUT && (m->u.put.mode & FSP_PUT_NO_CLOBBER) &&
      fsd_register_get(&s->ctx->reg, name->ptr, name->len) != NULL) {
    fsd__send_error(s, m->id, FSP_ST_EXISTS, NULL, name->ptr, name->len);
    return;
  }
  r = fsd__new_req(s, m, name);
  if (r == NULL)
    return;
  r->tree_op = tree_op;
  if (m->op == FSP_OP_DELETE && s->version >= FSP_TREE_VERSION)
    r->flags = m->u.tree.flags;
  if (m->op == FSP_OP_GET || m->op == FSP_OP_HASH) {
    r->offset = m->u.range.offset;
    r->length = m->u.range.length;
  } else if (m->op == FSP_OP_PUT) {
    r->size = m->u.put.size;
    r->mode = m->u.put.mode & FSP_PUT_NO_CLOBBER;
    r->flags = m->u.put.mode;
    r->hash = XXH3_createState();
    if (r->hash == NULL) {
      fsd_session_fail(s, r, FSP_ST_BUSY, "out of memory");
      return;
    }
    XXH3_64bits_reset(r->hash);
  }
  s->ops->start(s->host, r);
}

static void on_cancel(struct fsd_session *s, uint32_t id) {
  struct fsd_req *r = find_req(s, id);

  if (r == NULL || r->opcode == FSP_OP_DELETE || r->opcode == FSP_OP_LIST)
    return;
  if (r->state == FSD_REQ_RUNNING || r->state == FSD_REQ_RECEIVING)
    abort_req(s, r, FSP_ST_CANCELED, NULL, 0);
}

static void on_data(struct fsd_session *s, const struct fsp_item *it) {
  struct fsd_req *r = find_req(s, it->frame.id);

  if (r == NULL || r->opcode != FSP_OP_PUT) {
    if (it->data_off == 0)
      stray_error(s, &it->frame, FSP_ST_PROTOCOL, "no upload has this id");
    return;
  }
  switch (r->state) {
  case FSD_REQ_RECEIVING:
    break;
  case FSD_REQ_RUNNING:
    if (it->data_off == 0)
      abort_req(s, r, FSP_ST_PROTOCOL, "DATA before READY", 1);
    return;
  default:
    return; /* aborting, committing or drained: late bytes are dropped */
  }
  if (it->data_len > r->size - r->received) {
    abort_req(s, r, FSP_ST_SIZE, "more data than the declared size", 1);
    return;
  }
  if (it->data_len == 0)
    return;
  XXH3_64bits_update(r->hash, it->data, it->data_len);
  if (s->ops->put_write(s->host, r, it->data, it->data_len, r->received) == 0)
    r->received += it->data_len;
}

static void on_end(struct fsd_session *s, const struct fsp_frame *f) {
  struct fsd_req *r = find_req(s, f->id);
  struct fsp_msg m;
  int rc;

  if (r == NULL || r->opcode != FSP_OP_PUT) {
    stray_error(s, f, FSP_ST_PROTOCOL, "no upload has this id");
    return;
  }
  switch (r->state) {
  case FSD_REQ_DRAIN:
    drop_drain(s, r);
    return;
  case FSD_REQ_ABORTING:
    r->drain_after = 0; /* the client is done sending */
    return;
  case FSD_REQ_RUNNING:
    abort_req(s, r, FSP_ST_PROTOCOL, "END before READY", 0);
    return;
  case FSD_REQ_RECEIVING:
    break;
  default:
    /* The upload is committing: its INFO (or ERROR) is still to come. */
    stray_error(s, f, FSP_ST_PROTOCOL, "second END");
    return;
  }
  rc = fsp_msg_decode(f, &m);
  if (rc != 0) {
    abort_req(s, r, FSP_ST_BAD_REQUEST, "malformed END", 0);
    return;
  }
  if (m.u.end.size != r->size || r->received != r->size) {
    abort_req(s, r, FSP_ST_SIZE, NULL, 0);
    return;
  }
  if (m.u.end.hash != XXH3_64bits_digest(r->hash)) {
    abort_req(s, r, FSP_ST_CHECKSUM, NULL, 0);
    return;
  }
  r->state = FSD_REQ_COMMITTING;
  s->ops->put_commit(s->host, r);
}

static void on_hello(struct fsd_session *s, const struct fsp_frame *f) {
  struct fsp_msg m, a;
  int rc;

  if (f->op != FSP_OP_HELLO) {
    fsd__send_error(s, FSP_EVENT_ID, FSP_ST_PROTOCOL,
                    "the first frame must be HELLO", NULL, 0);
    do_close(s);
    return;
  }
  rc = fsp_msg_decode(f, &m);
  if (rc == 0 && m.u.hello.version < FSP_PROTO_VERSION) {
    fsd__send_error(s, FSP_EVENT_ID, FSP_ST_VERSION, NULL, NULL, 0);
    do_close(s);
    return;
  }
  if (rc != 0) {
    fsd__send_error(s, FSP_EVENT_ID, FSP_ST_BAD_REQUEST, "malformed HELLO",
                    NULL, 0);
    do_close(s);
    return;
  }
  /* fsp_msg_decode() refused a max_payload outside 64 KiB..16 MiB. */
  s->peer_max = m.u.hello.max_payload;
  memset(&a, 0, sizeof(a));
  a.op = FSP_OP_HELLO;
  a.id = FSP_EVENT_ID;
  a.u.hello.max_payload = FSD_MAX_PAYLOAD;
  a.u.hello.max_inflight = FSD_MAX_INFLIGHT;
  a.u.hello.caps = FSP_CAP_EVENTS | FSP_CAP_NOTICE |
                   (s->ctx->read_only ? FSP_CAP_READ_ONLY : 0);
  a.u.hello.agent.ptr = s->ctx->agent;
  a.u.hello.agent.len = strlen(s->ctx->agent);
  rc = fsd_gate_hello(&s->gate, m.u.hello.version, &a.u.hello.version,
                      &a.u.hello.caps);
  if (rc != 0) {
    fsd__send_error(s, FSP_EVENT_ID, (uint16_t)rc,
                    rc == FSP_ST_VERSION
                        ? "authentication required: this server needs protocol "
                          "version 2; upgrade the client"
                        : "cannot make a challenge",
                    NULL, 0);
    do_close(s);
    return;
  }
  /* Both sides speak the lower of the two versions (protocol.md section
   * 3); our HELLO still announces our highest. */
  s->version =
      (uint8_t)(m.u.hello.version < a.u.hello.version ? m.u.hello.version
                                                      : a.u.hello.version);
  fsd__send_msg(s, &a);
  if (s->gate.state == FSD_GATE_CHALLENGED) {
    memset(&a, 0, sizeof(a));
    a.op = FSP_OP_CHALLENGE;
    a.id = FSP_EVENT_ID;
    a.u.challenge.nonce = s->gate.nonce;
    fsd__send_msg(s, &a);
  }
  s->state = FSD_SESS_OPEN;
}

/* ------------------------------------------------------------------------ */
/* Authentication (protocol.md section 11; the rules live in gate.c)         */

/* Refuses a frame before authentication: nothing of it runs. */
static void refuse_unauthenticated(struct fsd_session *s, uint32_t id) {
  fsd__send_error(s, id, FSP_ST_UNAUTHENTICATED,
                  "authentication required: send AUTH first", NULL, 0);
  do_close(s);
}

static void on_auth(struct fsd_session *s, const struct fsp_frame *f) {
  struct fsp_msg m;

  if (fsp_msg_decode(f, &m) != 0 || fsd_gate_take(&s->gate, &m) != 0) {
    s->gate.state = FSD_GATE_REFUSED;
    fsd__send_error(s, FSP_EVENT_ID, FSP_ST_UNAUTHENTICATED, "malformed AUTH",
                    NULL, 0);
    do_close(s);
    return;
  }
  if (s->ops->auth != NULL)
    s->ops->auth(s->host);
  else
    fsd_session_auth_check(s);
}

/* Checks the AUTH held (see session.h). */
int fsd_session_auth_check(struct fsd_session *s) {
  uint8_t binding[FSP_BINDING_MAX];
  size_t blen = 0;
  char msg[160];
  int r;

  if (s->gate.state != FSD_GATE_HELD || s->state == FSD_SESS_CLOSED)
    return UV_EACCES;
  if (s->ops->binding != NULL)
    blen = s->ops->binding(s->host, binding, sizeof(binding));
  r = fsd_gate_verify(&s->gate, s->ctx->verifier, s->ctx->users, binding,
                      blen > sizeof(binding) ? 0 : blen);
  if (r != 0) {
    snprintf(msg, sizeof(msg), "authentication failed for user %s",
             s->gate.user);
    fsd__send_error(s, FSP_EVENT_ID, FSP_ST_UNAUTHENTICATED, msg, NULL, 0);
    do_close(s);
    return UV_EACCES;
  }
  /* The binding's length says whether the signature is tied to a TLS
   * channel: worth a word in the log. */
  fsd_log(FSD_LOG_INFO,
          "%s: user %s authenticated (channel binding: %zu bytes)", s->label,
          s->gate.user, blen > sizeof(binding) ? 0 : blen);
  s->dec.max_payload = FSD_MAX_PAYLOAD;
  fsd__send_empty(s, FSP_OP_OK, FSP_EVENT_ID);
  return 0;
}

/* The deadline passed (see session.h). */
void fsd_session_auth_expired(struct fsd_session *s) {
  fsd__send_error(s, FSP_EVENT_ID, FSP_ST_TIMEOUT,
                  "authentication not completed in time", NULL, 0);
  do_close(s);
}

/* Whether requests are served (see session.h). */
int fsd_session_authenticated(const struct fsd_session *s) {
  return s->state != FSD_SESS_HELLO && s->gate.state == FSD_GATE_OPEN;
}

/* The user's name (see session.h). */
const char *fsd_session_user(const struct fsd_session *s) {
  return s->gate.user_len > 0 && s->gate.state == FSD_GATE_OPEN ? s->gate.user
                                                                : NULL;
}

/* Answers a request the user has no right for. */
static void forbid(struct fsd_session *s, const struct fsp_msg *m) {
  const struct fsp_str *name = fsd__msg_path(s, m);
  unsigned missing = fsd_op_right(m->op) & ~s->gate.rights;
  char msg[128];

  if (name != NULL && name->len == 0)
    name = NULL;
  /* RENAME needs two rights: name the first one missing. */
  missing &= ~(missing - 1u);
  snprintf(msg, sizeof(msg), "user %s lacks the %s right",
           s->gate.user_len > 0 ? s->gate.user : "(anonymous)",
           fsd_right_name(missing));
  fsd__send_error(s, m->id, FSP_ST_FORBIDDEN, msg,
                  name != NULL ? name->ptr : NULL,
                  name != NULL ? name->len : 0);
  fsd__note_done(s, m->op, name != NULL ? name->ptr : NULL,
                 name != NULL ? name->len : 0, 0, FSP_ST_FORBIDDEN,
                 s->clock_us);
}

/* A reload (see session.h). */
void fsd_session_reload(struct fsd_session *s, const struct fsd_users *users) {
  struct fsd_req *r, *next;
  char msg[160];

  if (s->state == FSD_SESS_CLOSED)
    return;
  switch (fsd_gate_reload(&s->gate, users)) {
  case -1:
    snprintf(msg, sizeof(msg), "user %s was removed from this server",
             s->gate.user);
    fsd__send_error(s, FSP_EVENT_ID, FSP_ST_UNAUTHENTICATED, msg, NULL, 0);
    do_close(s);
    return;
  case 1:
    break;
  default:
    return;
  }
  if (!(s->gate.rights & FSD_RIGHT_READ))
    unsubscribe(s);
  for (r = s->reqs; r != NULL; r = next) {
    next = r->next;
    if ((r->state == FSD_REQ_RUNNING || r->state == FSD_REQ_RECEIVING) &&
        !fsd_gate_allows(&s->gate, r->opcode))
      abort_req(s, r, FSP_ST_FORBIDDEN, "the user's rights changed", 0);
  }
}

/* The requests of protocol.md sections 4 and 12: each ends with one final
 * frame. CANCEL has an id but no answer of its own, so it is not one. */
static int is_request(uint8_t op) {
  return (op >= FSP_OP_LIST && op < FSP_OP_CANCEL) || op == FSP_OP_MKDIR ||
         op == FSP_OP_RENAME;
}

/* SUBSCRIBE as a request: answered, then logged. */
static void on_sub_req(struct fsd_session *s, const struct fsp_msg *m) {
  fsd__on_subscribe(s, m);
  fsd__note_done(s, m->op, NULL, 0, 0, 0, s->clock_us);
}

static void on_unsubscribe(struct fsd_session *s, const struct fsp_msg *m) {
  unsubscribe(s);
  fsd__send_empty(s, FSP_OP_OK, m->id);
  fsd__note_done(s, m->op, NULL, 0, 0, 0, s->clock_us);
}

static void on_notice(struct fsd_session *s, const struct fsp_msg *m) {
  fsd_ctx_notify(s->ctx, m->u.text.ptr, m->u.text.len);
  fsd__send_empty(s, FSP_OP_OK, m->id);
  fsd__note_done(s, m->op, NULL, 0, m->u.text.len, 0, s->clock_us);
}

/* Request handlers, indexed by opcode - FSP_OP_LIST. */
static void (*const request_fns[])(struct fsd_session *,
                                   const struct fsp_msg *) = {
    fsd__on_list,    /* LIST */
    fsd__on_stat,    /* STAT */
    on_file_request, /* DELETE */
    on_file_request, /* GET */
    on_file_request, /* PUT */
    on_file_request, /* HASH */
    on_sub_req,      /* SUBSCRIBE */
    on_unsubscribe,  /* UNSUBSCRIBE */
    on_notice,       /* NOTICE */
    NULL,            /* CANCEL: not a request */
    fsd__on_mkdir,   /* MKDIR */
    fsd__on_rename,  /* RENAME */
};

/* An opcode of the folders version (MKDIR, RENAME) is unknown to a
 * connection that speaks an earlier one, as protocol.md section 12 says.
 * (AUTH is known to all: the gate answers it.) */
static int spoken_op(const struct fsd_session *s, uint8_t op) {
  unsigned v = fsp_op_version(op);

  return v != 0 && (v < FSP_TREE_VERSION || s->version >= v);
}

/* A request, or a frame of an unknown opcode, which may be a request of a
 * newer protocol: answered on its own id unless that id is taken. */
static void on_request(struct fsd_session *s, const struct fsp_frame *f) {
  int known = spoken_op(s, f->op);
  struct fsd_req *r;
  struct fsp_msg m;
  int rc;

  if (f->id == FSP_EVENT_ID) {
    stray_error(s, f, known ? FSP_ST_PROTOCOL : FSP_ST_UNKNOWN_OP,
                "request id 0 is reserved");
    return;
  }
  r = find_req(s, f->id);
  if (r != NULL) {
    if (r->state != FSD_REQ_DRAIN) {
      stray_error(s, f, known ? FSP_ST_PROTOCOL : FSP_ST_UNKNOWN_OP,
                  "request id already in flight");
      return;
    }
    drop_drain(s, r); /* the client reuses the id of a failed upload */
  }
  if (!known) {
    fsd__send_error(s, f->id, FSP_ST_UNKNOWN_OP, NULL, NULL, 0);
    return;
  }
  /* One rule for every request, whether the disk or memory answers it. */
  if (s->nactive >= FSD_MAX_INFLIGHT) {
    fsd__send_error(s, f->id, FSP_ST_BUSY, "too many requests in flight", NULL,
                    0);
    return;
  }
  rc = fsp_msg_decode_v(f, s->version, &m);
  if (rc != 0) {
    fsd__send_error(s, f->id,
                    rc == FSP_EBADNAME ? FSP_ST_BAD_NAME : FSP_ST_BAD_REQUEST,
                    NULL, NULL, 0);
    return;
  }
  /* A read-only server says so to everyone, whatever their rights. */
  if (s->ctx->read_only && (m.op == FSP_OP_PUT || m.op == FSP_OP_DELETE ||
                            m.op == FSP_OP_MKDIR || m.op == FSP_OP_RENAME)) {
    fsd__send_error(s, m.id, FSP_ST_READ_ONLY, NULL, NULL, 0);
    return;
  }
  if (!fsd_gate_allows(&s->gate, m.op)) {
    forbid(s, &m);
    return;
  }
  request_fns[m.op - FSP_OP_LIST](s, &m);
}

/* PING, BYE and CANCEL: frames with an id that end no request. */
static void on_control(struct fsd_session *s, const struct fsp_frame *f) {
  struct fsp_msg m;

  if (fsp_msg_decode(f, &m) != 0) {
    stray_error(s, f, FSP_ST_BAD_REQUEST, "malformed payload");
    return;
  }
  switch (m.op) {
  case FSP_OP_PING:
    m.op = FSP_OP_PONG;
    fsd__send_msg(s, &m);
    return;
  case FSP_OP_BYE:
    begin_bye(s, m.id, 0);
    return;
  default:
    on_cancel(s, m.id);
    return;
  }
}

static void on_frame(struct fsd_session *s, const struct fsp_frame *f) {
  if (s->state == FSD_SESS_HELLO) {
    on_hello(s, f);
    return;
  }
  switch (fsd_gate_frame(&s->gate, f->op)) {
  case FSD_GATE_PASS:
    break;
  case FSD_GATE_TAKE_AUTH:
    on_auth(s, f);
    return;
  case FSD_GATE_STRAY:
    fsd__send_error(s, f->id, FSP_ST_PROTOCOL, "AUTH out of sequence", NULL, 0);
    return;
  default:
    refuse_unauthenticated(s, f->id);
    return;
  }
  if (!spoken_op(s, f->op) || is_request(f->op)) {
    on_request(s, f);
    return;
  }
  switch (f->op) {
  case FSP_OP_PONG:
    return; /* fsd sends no PING, so a PONG answers nothing; ignore it */
  case FSP_OP_END:
    on_end(s, f);
    return;
  case FSP_OP_PING:
  case FSP_OP_BYE:
  case FSP_OP_CANCEL:
    on_control(s, f);
    return;
  default:
    stray_error(s, f, FSP_ST_PROTOCOL,
                f->op == FSP_OP_HELLO ? "second HELLO" : "not a client frame");
    return;
  }
}

static void framing_error(struct fsd_session *s, ssize_t err) {
  uint16_t st = err == FSP_EVERSION  ? FSP_ST_VERSION
                : err == FSP_ETOOBIG ? FSP_ST_TOO_LARGE
                                     : FSP_ST_PROTOCOL;
  fsd_debug("broken framing: %s", fsp_strerror((int)err));
  fsd__send_error(s, FSP_EVENT_ID, st, fsp_strerror((int)err), NULL, 0);
  do_close(s);
}

/* Feeds client bytes (see session.h). */
size_t fsd_session_feed(struct fsd_session *s, const uint8_t *buf, size_t len) {
  size_t pos = 0;

  while (pos < len) {
    struct fsp_item it;
    ssize_t n;

    if (s->state == FSD_SESS_BYE || s->state == FSD_SESS_CLOSED)
      return len; /* nothing after BYE or a fatal error is read */
    if (s->gate.state == FSD_GATE_HELD)
      break; /* frames behind AUTH wait for its check */
    n = fsp_decoder_feed(&s->dec, buf + pos, len - pos, &it);
    if (n < 0) {
      framing_error(s, n);
      return len;
    }
    if (it.type == FSP_ITEM_NONE)
      break;
    pos += (size_t)n;
    if (it.type == FSP_ITEM_DATA) {
      if (s->state == FSD_SESS_HELLO) {
        on_hello(s, &it.frame);
        continue;
      }
      if (fsd_gate_frame(&s->gate, FSP_OP_DATA) != FSD_GATE_PASS) {
        refuse_unauthenticated(s, it.frame.id);
        continue;
      }
      on_data(s, &it);
    } else {
      on_frame(s, &it.frame);
    }
  }
  return pos;
}
