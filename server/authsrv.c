/* Server-side authentication: admission, held checks, deadlines, reloads.
 * See authsrv.h. */
#include "authsrv.h"

#include <string.h>

#include "conn.h"
#include "ctx.h"
#include "log.h"

/* Starts authentication (see authsrv.h). */
int fsd_authsrv_init(struct fsd_authsrv *a, uv_loop_t *loop,
                     struct fsd_ctx *ctx, struct fsd_net *net, const char *path,
                     unsigned max_unauth, unsigned deadline_ms, char *err,
                     size_t errlen) {
  int r;

  memset(a, 0, sizeof(*a));
  a->loop = loop;
  a->ctx = ctx;
  a->net = net;
  a->path = path;
  a->max_unauth = max_unauth;
  a->deadline_ms = deadline_ms;
  fsd_list_init(&a->held);
  net->auth = a;
  if (path == NULL)
    return 0;
  r = fsd_users_load(path, &a->users, err, errlen);
  if (r != 0)
    return r;
  r = fsd_verifier_init(&a->verifier);
  if (r == 0)
    r = fsd_guard_init(&a->guard, FSD_GUARD_SLOTS);
  if (r != 0) {
    snprintf(err, errlen, "cannot set up authentication: %s", uv_strerror(r));
    fsd_users_free(&a->users);
    return r;
  }
  uv_timer_init(loop, &a->timer);
  a->timer.data = a;
  ctx->users = &a->users;
  ctx->verifier = &a->verifier;
  fsd_info("users file %s: %zu user(s)", path, a->users.n);
  return 0;
}

/* Frees (see authsrv.h). */
void fsd_authsrv_close(struct fsd_authsrv *a) {
  /* The timer was closed with the loop's other handles. */
  if (a->path == NULL)
    return;
  fsd_users_free(&a->users);
  fsd_guard_free(&a->guard);
  a->ctx->users = NULL;
}

/* Refuses c: ERROR LIMIT, then close. Its session never starts. */
static void refuse(struct fsd_authsrv *a, struct fsd_conn *c, const char *why) {
  uint8_t frame[FSP_HDR_LEN + 128];
  struct fsp_msg m;
  ssize_t n;

  fsd_warn("client %s refused: %s (%u waiting)", c->peer, why, a->nunauth);
  memset(&m, 0, sizeof(m));
  m.op = FSP_OP_ERROR;
  m.u.error.status = FSP_ST_LIMIT;
  m.u.error.text.ptr = why;
  m.u.error.text.len = strlen(why);
  n = fsp_msg_encode(frame, sizeof(frame), &m);
  if (n > 0 && (size_t)n <= sizeof(frame))
    fsd_conn_send(c, frame, (size_t)n);
  c->sess.state = FSD_SESS_CLOSED;
  fsd_conn_close(c);
}

/* Connections from key that wait for AUTH: a walk of the connections, done
 * only once the pool is half full, cheaper than a table to keep. */
static unsigned waiting_from(struct fsd_authsrv *a,
                             const struct fsd_guard_key *key) {
  unsigned n = 0;
  struct fsd_list *l;

  for (l = a->net->conns.next; l != &a->net->conns; l = l->next) {
    const struct fsd_conn *o = fsd_container_of(l, struct fsd_conn, link);
    n += o->unauth && memcmp(o->auth_key.b, key->b, sizeof(key->b)) == 0;
  }
  return n;
}

/* Counts a new connection (see authsrv.h). One address may hold only half
 * of the pool, so that a flood from one place leaves room for others. */
int fsd_authsrv_admit(struct fsd_authsrv *a, struct fsd_conn *c) {
  unsigned per_addr = a->max_unauth > 1 ? a->max_unauth / 2 : 1;
  struct sockaddr_storage ss;
  int len = sizeof(ss);

  if (a->path == NULL)
    return 0;
  if (a->nunauth >= a->max_unauth) {
    refuse(a, c, "too many connections waiting to authenticate");
    return FSP_ST_LIMIT;
  }
  memset(&ss, 0, sizeof(ss));
  uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
  fsd_guard_key_of((struct sockaddr *)&ss, &c->auth_key);
  if (a->nunauth >= per_addr && waiting_from(a, &c->auth_key) >= per_addr) {
    refuse(a, c,
           "too many connections from this address waiting to authenticate");
    return FSP_ST_LIMIT;
  }
  c->unauth = 1;
  c->auth_since = uv_now(a->loop);
  a->nunauth++;
  return 0;
}

/* Books the outcome of a check: an authenticated connection stops waiting,
 * a refused one counts against its address. */
static void settle(struct fsd_authsrv *a, struct fsd_conn *c, int r) {
  if (r == 0 && c->unauth) {
    c->unauth = 0;
    a->nunauth--;
  } else if (r == UV_EACCES) {
    fsd_guard_fail(&a->guard, &c->auth_key, uv_now(a->loop));
  }
}

static void on_due(uv_timer_t *t);

/* Starts the timer for the earliest held AUTH. */
static void rearm(struct fsd_authsrv *a) {
  struct fsd_conn *first;
  uint64_t now = uv_now(a->loop);

  if (fsd_list_empty(&a->held)) {
    uv_timer_stop(&a->timer);
    return;
  }
  first = fsd_container_of(a->held.next, struct fsd_conn, auth_link);
  uv_timer_start(&a->timer, on_due,
                 first->auth_due > now ? first->auth_due - now : 0, 0);
}

/* Checks c's AUTH now, and lets the connection read what it kept. */
static void check_now(struct fsd_authsrv *a, struct fsd_conn *c) {
  int r;

  if (c->closing || c->hard)
    return;
  r = fsd_session_auth_check(&c->sess);
  settle(a, c, r);
  /* Frames the client sent behind AUTH wait in the read buffer. */
  if (r == 0 && c->rb != NULL && c->rb->len > 0)
    c->tp->bytes_in(c);
  if (!c->hard)
    fsd_conn_update_reading(c);
}

static void on_due(uv_timer_t *t) {
  struct fsd_authsrv *a = t->data;
  uint64_t now = uv_now(a->loop);

  while (!fsd_list_empty(&a->held)) {
    struct fsd_conn *c =
        fsd_container_of(a->held.next, struct fsd_conn, auth_link);
    if (c->auth_due > now)
      break;
    fsd_list_remove(&c->auth_link);
    c->auth_held = 0;
    check_now(a, c);
    fsd_conn_unref(c);
  }
  rearm(a);
}

/* Holds or checks an AUTH (see authsrv.h). */
void fsd_authsrv_hold(struct fsd_authsrv *a, struct fsd_conn *c) {
  uint64_t now = uv_now(a->loop);
  uint64_t d = fsd_guard_delay(&a->guard, &c->auth_key, now);
  struct fsd_list *pos;

  if (d == 0) {
    /* Inside the session's feed: it reads on by itself. */
    settle(a, c, fsd_session_auth_check(&c->sess));
    return;
  }
  fsd_info("holding AUTH from %s for %llu ms (failures from there)", c->peer,
           (unsigned long long)d);
  c->auth_held = 1;
  c->auth_due = now + d;
  fsd_conn_ref(c);
  /* Keep the list by due time: walk from the back, where most land. */
  for (pos = a->held.prev; pos != &a->held; pos = pos->prev)
    if (fsd_container_of(pos, struct fsd_conn, auth_link)->auth_due <=
        c->auth_due)
      break;
  fsd_list_push(pos, &c->auth_link);
  rearm(a);
}

/* A connection goes (see authsrv.h). Held connections hold a reference,
 * so they are never freed while in the list. */
void fsd_authsrv_forget(struct fsd_authsrv *a, struct fsd_conn *c) {
  if (c->unauth) {
    c->unauth = 0;
    a->nunauth--;
  }
}

/* Deadlines (see authsrv.h). */
void fsd_authsrv_sweep(struct fsd_authsrv *a) {
  uint64_t now = uv_now(a->loop);
  struct fsd_list *l, *n;

  if (a->path == NULL || a->nunauth == 0)
    return;
  fsd_list_each_safe(l, n, &a->net->conns) {
    struct fsd_conn *c = fsd_container_of(l, struct fsd_conn, link);
    if (c->unauth && !c->auth_held && !c->closing && !c->hard &&
        now - c->auth_since >= a->deadline_ms) {
      fsd_info("client %s did not authenticate within %u ms, closing", c->peer,
               a->deadline_ms);
      fsd_session_auth_expired(&c->sess);
    }
  }
}

/* --- Reloads --- */

static void reload_work(uv_work_t *w) {
  struct fsd_authsrv *a = w->data;

  memset(&a->next, 0, sizeof(a->next));
  a->next_rc =
      fsd_users_load(a->path, &a->next, a->next_err, sizeof(a->next_err));
}

static void reload_done(uv_work_t *w, int status) {
  struct fsd_authsrv *a = w->data;
  struct fsd_users old;
  struct fsd_list *l, *n;

  a->reloading = 0;
  if (status != 0 || a->next_rc != 0) {
    fsd_error("users file not reloaded, the old one stays: %s",
              status != 0 ? uv_strerror(status) : a->next_err);
  } else {
    old = a->users;
    a->users = a->next;
    fsd_list_each_safe(l, n, &a->net->conns) {
      struct fsd_conn *c = fsd_container_of(l, struct fsd_conn, link);
      if (!c->hard && !c->closing)
        fsd_session_reload(&c->sess, &a->users);
    }
    fsd_users_free(&old);
    fsd_info("users file %s reloaded: %zu user(s)", a->path, a->users.n);
  }
  if (a->again) {
    a->again = 0;
    fsd_authsrv_reload(a);
  }
}

/* SIGHUP (see authsrv.h). */
void fsd_authsrv_reload(struct fsd_authsrv *a) {
  if (a->path == NULL) {
    fsd_info("SIGHUP: no users file to reload");
    return;
  }
  if (a->reloading) {
    a->again = 1;
    return;
  }
  a->work.data = a;
  if (uv_queue_work(a->loop, &a->work, reload_work, reload_done) == 0)
    a->reloading = 1;
}
